//! `invitebus`: run the service, send commands, follow and audit the event log.
//!
//! Layout: [`serve`] runs the roles (and a local nats-server when none answers), [`client`]
//! holds `send`, `query`, `tail` and `health`, [`audit`] reads the log file, [`replay`] rebuilds
//! projections, [`restore`] rebuilds a lost event log from JetStream, [`export`] runs an export from the shell. The benchmarks are a binary of their
//! own, `invitebus-bench` (services/bench), so that their dependencies (cqrs-es, postgres-es,
//! sqlx, plotters) stay out of this one.

/// mimalloc instead of glibc malloc: bulk loads free on one thread what decoders allocated on
/// others; with it the bulk reader went from 600k to 1M events/s and the scheduler's rebuild
/// from 377k to 617k (`bench queries`, same machine, runs alternated).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod audit;
mod client;
mod edge;
mod export;
mod logging;
mod memory;
mod metrics;
mod nats;
mod natsauth;
mod out;
mod replay;
mod restore;
mod serve;
mod tokens;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// The gateway's token secret when none is set: fine on loopback, refused anywhere else.
pub const DEV_JWT_SECRET: &str = "invitebus-dev-secret";

#[derive(Parser)]
#[command(name = "invitebus", version, about = "Event-sourced invitations on NATS")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// Where NATS is and where data lives; shared by most subcommands.
#[derive(clap::Args, Clone, Debug)]
pub struct Common {
    /// NATS server URL.
    #[arg(
        long = "nats",
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        global = true
    )]
    pub nats_url: String,
    /// Data folder: the event log (events.db) and, when invitebus starts NATS itself, its store.
    #[arg(long = "data", env = "INVITEBUS_DATA", default_value = "./data", global = true)]
    pub data: PathBuf,
    /// The subject prefix: commands on `<prefix>.cmd.*`, events on `<prefix>.evt.…`.
    #[arg(long = "prefix", env = "INVITEBUS_PREFIX", default_value = invitebus_events::subject::DEFAULT_PREFIX, global = true, value_parser = prefix)]
    pub prefix: String,
    /// Copies JetStream keeps of the streams and bucket invitebus creates (3 on a three-node cluster).
    #[arg(long = "replicas", env = "INVITEBUS_REPLICAS", default_value_t = 1, global = true, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub replicas: u8,
    /// Connect to NATS as the user of this file, written by `invitebus creds`.
    #[arg(long = "nats-creds", env = "INVITEBUS_NATS_CREDS", global = true)]
    pub nats_creds: Option<PathBuf>,
    /// Connect to NATS as this user (with --nats-password); a creds file wins over it.
    #[arg(long = "nats-user", env = "INVITEBUS_NATS_USER", global = true)]
    pub nats_user: Option<String>,
    #[arg(
        long = "nats-password",
        env = "INVITEBUS_NATS_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub nats_password: Option<String>,
    /// The deployment's master key: seals secrets and wraps the data keys kept inside events
    /// (webhooks' signing secrets, users' personal fields); every role of one deployment needs
    /// the same, and `tail` and `audit history` use it to open personal fields. Kept secret.
    #[arg(
        long = "master-key",
        env = "INVITEBUS_MASTER_KEY",
        default_value = invitebus_keys::DEV_MASTER_KEY,
        global = true,
        hide_env_values = true
    )]
    pub master_key: String,
}

impl Common {
    /// The data keys, to open personal fields with, when this bus and credential reach them;
    /// else None, said once on stderr (the fields are then printed as stored, sealed).
    pub async fn keys_if_reachable(&self) -> Option<invitebus_keys::KeyRing> {
        let opened = async {
            let client = crate::nats::connect(&self.nats_url, self.login()?.as_ref()).await?;
            self.key_ring(&client, false).await
        };
        match tokio::time::timeout(std::time::Duration::from_secs(5), opened).await {
            Ok(Ok(keys)) => Some(keys),
            Ok(Err(e)) => {
                eprintln!("note: personal fields are printed sealed ({e:#}); invitebus's service credential and INVITEBUS_MASTER_KEY open them");
                None
            }
            Err(_) => {
                eprintln!("note: personal fields are printed sealed (NATS did not answer within 5 s)");
                None
            }
        }
    }

    /// The users' data keys, over the bucket of the bus at these settings (made when missing
    /// only if `create`): what opens personal fields.
    pub async fn key_ring(&self, client: &async_nats::Client, create: bool) -> anyhow::Result<invitebus_keys::KeyRing> {
        let js = async_nats::jetstream::new(client.clone());
        invitebus_keys::KeyRing::open(
            &js,
            invitebus_keys::MasterKey::new(&self.master_key),
            self.subjects().replicas(),
            create,
        )
        .await
        .map_err(|e| anyhow::anyhow!("the data keys' bucket: {e}"))
    }

    /// Where this process's messages go on the bus.
    pub fn subjects(&self) -> invitebus_events::subject::Subjects {
        invitebus_events::subject::Subjects::new(self.prefix.clone()).with_replicas(self.replicas.into())
    }

    /// The NATS login these settings give, if any.
    pub fn login(&self) -> anyhow::Result<Option<natsauth::files::Login>> {
        if let Some(path) = &self.nats_creds {
            return Ok(Some(natsauth::files::Creds::read(path)?.login));
        }
        match (&self.nats_user, &self.nats_password) {
            (Some(user), Some(password)) => Ok(Some(natsauth::files::Login::new(user, password))),
            (None, None) => Ok(None),
            _ => anyhow::bail!("--nats-user and --nats-password go together"),
        }
    }
}

/// A prefix is one subject token: an id (letters, digits, `-`, `_`).
fn prefix(s: &str) -> Result<String, String> {
    match invitebus_events::ids::is_valid_id(s) {
        true => Ok(s.to_string()),
        false => Err("a prefix is one subject token: letters, digits, '-' or '_'".into()),
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Run invitebus (all roles by default) until SIGINT or SIGTERM.
    Serve(Box<serve::ServeArgs>),
    /// Send one command and print its reply: `send CreateInvite '{"actor":"xuan",…}'`, `@file` or `-` for stdin.
    Send(client::SendArgs),
    /// Ask one query and print its answer: `query received '{"actor":"fang"}'`.
    Query(client::SendArgs),
    /// Print events as JSON lines: history first, then live.
    Tail(client::TailArgs),
    /// Mint a gateway token: `token --user fang [--role admin] [--ttl 3600]`.
    Token {
        #[arg(long)]
        user: String,
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Seconds the token lives.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        #[arg(long, env = "INVITEBUS_JWT_SECRET", default_value = crate::DEV_JWT_SECRET)]
        jwt_secret: String,
    },
    /// Ask `invites.health` and print the answer.
    Health {
        #[command(flatten)]
        common: Common,
    },
    /// Read the event log file: a stream's history, or verify the hash chain.
    Audit(audit::AuditArgs),
    /// Export the admin view to xlsx or csv (needs a running exporter), with a progress bar.
    Export(export::ExportArgs),
    /// Rebuild projections from position 0, or write an as-of snapshot of the views.
    Replay(replay::ReplayArgs),
    /// Rebuild a lost event log from JetStream: `restore --from-jetstream --data DIR`.
    Restore(restore::RestoreArgs),
    /// Write what a NATS user needs to connect to a `serve --nats-auth` bus (mode 0600):
    /// `creds --role client --out client.creds`.
    Creds(natsauth::CredsArgs),
    /// Write the AsyncAPI 3.0 document of the NATS API (the gateway serves it at /asyncapi.json).
    Asyncapi {
        #[command(flatten)]
        common: Common,
        /// Write it to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Exit codes: 0 ok, 1 an error reply or a failed check (send, query, audit verify), 2 the
/// command itself failed (its reason on stderr, one line per cause).
fn main() {
    let cli = Cli::parse();
    logging::init(if matches!(cli.command, Cmd::Serve(_)) {
        "info"
    } else {
        "warn"
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(memory::on_park)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(2);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Cmd::Serve(args) => serve::run(*args).await.map(|_| 0),
            Cmd::Send(args) => client::send(args, client::Kind::Command).await,
            Cmd::Query(args) => client::send(args, client::Kind::Query).await,
            Cmd::Tail(args) => client::tail(args).await.map(|_| 0),
            Cmd::Health { common } => client::health(common).await,
            Cmd::Token {
                user,
                roles,
                ttl,
                jwt_secret,
            } => {
                if !invitebus_events::ids::is_valid_id(&user) {
                    Err(anyhow::anyhow!("`{user}` is not a valid user id"))
                } else if invitebus_gateway::auth::is_reserved(&user) {
                    Err(anyhow::anyhow!(
                        "`{user}` is reserved for invitebus's own workers; the gateway refuses its tokens"
                    ))
                } else if roles.len() > invitebus_gateway::auth::MAX_ROLES
                    || !roles.iter().all(|r| invitebus_events::ids::is_valid_id(r))
                {
                    Err(anyhow::anyhow!(
                        "roles must be at most {} valid ids",
                        invitebus_gateway::auth::MAX_ROLES
                    ))
                } else {
                    println!("{}", invitebus_gateway::auth::mint(&jwt_secret, &user, &roles, ttl));
                    Ok(0)
                }
            }
            Cmd::Audit(args) => audit::run(args).await,
            Cmd::Export(args) => export::run(args).await,
            Cmd::Replay(args) => replay::run(args).await.map(|_| 0),
            Cmd::Restore(args) => restore::run(args).await.map(|_| 0),
            Cmd::Creds(args) => natsauth::write_creds(args).map(|_| 0),
            Cmd::Asyncapi { common, out } => {
                let doc = invitebus_asyncapi::document(&invitebus_events::subject::Subjects::new(common.prefix));
                let text = serde_json::to_string_pretty(&doc)? + "\n";
                match out {
                    Some(path) => {
                        std::fs::write(&path, text).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?
                    }
                    None => print!("{text}"),
                }
                Ok(0)
            }
        }
    });
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
