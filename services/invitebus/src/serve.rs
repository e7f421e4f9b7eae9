//! `invitebus serve`: the roles in one process, stopped cleanly by SIGINT or SIGTERM.

use crate::natsauth::User;
use crate::Common;
use anyhow::Context;
use invitebus_commands::{CommandService, ServiceConfig, WriterConfig};
use invitebus_eventlog::Sync;
use invitebus_exporter::{ExporterConfig, ExporterService};
use invitebus_notifier::{NotifierConfig, NotifierService};
use invitebus_scheduler::{SchedulerConfig, SchedulerService};
use invitebus_views::{ViewService, ViewsConfig};
use invitebus_webhooks::{WebhooksConfig, WebhooksService};

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: Common,
    /// Which part to run: `commands` (the write side and relay), `views` (read models and their
    /// queries), `notifier` (notifications and the inbox), `scheduler` (expiry and reminder timers),
    /// `exporter` (export jobs), `webhooks` (webhook deliveries), `gateway` (HTTP), or `all`.
    #[arg(long, value_enum, default_value_t = Role::All)]
    pub role: Role,
    /// Where the HTTP gateway listens.
    #[arg(long = "http", env = "INVITEBUS_HTTP", default_value = "127.0.0.1:5004")]
    pub http: String,
    #[command(flatten)]
    pub tokens: crate::tokens::TokenArgs,
    #[command(flatten)]
    pub edge: crate::edge::EdgeArgs,
    /// The key of invitebus's own command ids (timers, export steps): every scheduler and exporter
    /// of one deployment needs the same, so a restarted or moved one repeats its ids.
    #[arg(
        long,
        env = "INVITEBUS_SERVICE_SECRET",
        default_value = "invitebus-dev-service-key",
        hide_env_values = true
    )]
    pub service_secret: String,
    /// Let webhooks target loopback and private addresses (refused otherwise, at registration
    /// for an address in the URL and at each delivery for what its host resolves to).
    #[arg(long, env = "INVITEBUS_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,
    /// The only hosts webhooks may target (comma-separated; each allows its subdomains too);
    /// empty: any host. Checked at registration and before each delivery looks a host up.
    #[arg(long, env = "INVITEBUS_WEBHOOK_ALLOW_HOSTS", value_delimiter = ',')]
    pub webhook_allow_hosts: Vec<String>,
    /// Failed attempts in a row at one event before a webhook is marked failing (retries wait
    /// 1 s, doubling with jitter up to 5 minutes: 12 attempts take about 20 minutes).
    #[arg(long, env = "INVITEBUS_WEBHOOK_ATTEMPTS", default_value_t = 12)]
    pub webhook_attempts: u32,
    /// Accept RequestExport in the commands role. On by itself when this process also runs the
    /// exporter (`all`); set it when an exporter runs elsewhere.
    #[arg(long, env = "INVITEBUS_EXPORTS")]
    pub exports: bool,
    /// `full`: every commit survives a power cut; `normal`: survives a crash of the process.
    #[arg(long, env = "INVITEBUS_SYNC", value_enum, default_value_t = SyncArg::Full)]
    pub sync: SyncArg,
    /// `local`: a command is answered once its events are in the log on this machine;
    /// `replicated`: once JetStream has acknowledged them too (on an R3 stream, a majority).
    #[arg(long, env = "INVITEBUS_DURABILITY", value_enum, default_value_t = DurabilityArg::Local)]
    pub durability: DurabilityArg,
    /// Take part in the election of the writer, so that several commands roles may run on one
    /// cluster: one holds the lease (bucket `invites-leader`) and takes commands, the others
    /// follow INVITES_EVENTS and take over when it goes. Needs `--durability replicated`.
    #[arg(long, env = "INVITEBUS_LEASE")]
    pub lease: bool,
    /// Seconds the writer's lease lives unrenewed (the bucket's max_age): takeover after a lost
    /// writer comes this long after its last renewal, plus a poll and the catch-up.
    #[arg(long, env = "INVITEBUS_LEASE_TTL", default_value_t = 3.0)]
    pub lease_ttl: f64,
    /// This instance's name in the lease and in health (`standby-<name>`); host and pid by default.
    #[arg(long, env = "INVITEBUS_INSTANCE", value_parser = crate::prefix)]
    pub instance: Option<String>,
    /// A projection behind the stream's head that has not moved for this many seconds is
    /// stalled: the watchdog logs it, counts it and gives it a fresh consumer.
    #[arg(long, env = "INVITEBUS_STALL_AFTER", default_value_t = 5.0)]
    pub stall_after: f64,
    /// A projection this many events or more behind, on a machine whose data folder holds the
    /// event log, catches up from that file in bulk (from 0: a rebuild into a fresh file swapped
    /// in when complete; else in place); 0 turns the bulk path off.
    #[arg(long, env = "INVITEBUS_BULK_AFTER", default_value_t = invitebus_feed::bulk::DEFAULT_MIN_LAG)]
    pub bulk_after: u64,
    /// Health answers `ok: false` once a projection has been stalled or missing, or the relay
    /// behind and still, for this many seconds.
    #[arg(long, env = "INVITEBUS_UNHEALTHY_AFTER", default_value_t = 30.0)]
    pub unhealthy_after: f64,
    /// Test-only fault: `<projection>:<batches>` stops that feed taking messages after that many
    /// batches while its consumer stays alive (what only the watchdog can recover).
    #[arg(long, env = "INVITEBUS_FAULT_FREEZE_FEED", hide = true)]
    pub fault_freeze_feed: Option<String>,
    /// Where `GET /metrics` (Prometheus text format) is served for roles without the gateway;
    /// the gateway serves it on its own address too.
    #[arg(long, env = "INVITEBUS_METRICS")]
    pub metrics: Option<String>,
    /// Most commands per transaction (1 turns group commit off).
    #[arg(long, env = "INVITEBUS_MAX_BATCH", default_value_t = 1024)]
    pub max_batch: usize,
    /// `token`: every command and query on NATS carries `Authorization: Bearer <jwt>`, and acts
    /// as that token's subject with its roles (users' tokens signed with INVITEBUS_JWT_SECRET,
    /// invitebus's own workers' with INVITEBUS_SERVICE_SECRET); `off`: bodies are believed.
    #[arg(long, env = "INVITEBUS_BUS_AUTH", value_enum, default_value_t = BusAuthArg::Off)]
    pub bus_auth: BusAuthArg,
    /// Each role connects to NATS as its own user, allowed only its own subjects: with no
    /// credential given, the users of the data folder (nats-users.json), and when nothing
    /// answers at a loopback URL, nats-server started with their config (nats-auth.conf).
    #[arg(long, env = "INVITEBUS_NATS_AUTH")]
    pub nats_auth: bool,
}

/// `--bus-auth`: whether requests on the bus must carry a token.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusAuthArg {
    Off,
    Token,
}

impl ServeArgs {
    /// The bus auth of these settings, users' tokens checked by `users`; refused when users'
    /// tokens would verify as the service's.
    pub fn bus_auth(
        &self,
        users: &std::sync::Arc<invitebus_auth::Verifier>,
    ) -> anyhow::Result<invitebus_auth::BusAuth> {
        match self.bus_auth {
            BusAuthArg::Off => Ok(invitebus_auth::BusAuth::Off),
            BusAuthArg::Token if self.tokens.jwt_secret == self.service_secret => anyhow::bail!(
                "--bus-auth token with INVITEBUS_SERVICE_SECRET equal to INVITEBUS_JWT_SECRET: any user's token could then act as `system`; give the service a secret of its own"
            ),
            BusAuthArg::Token => Ok(invitebus_auth::BusAuth::Token {
                users: users.clone(),
                service: self.service_secret.clone(),
            }),
        }
    }
}

/// Which part of invitebus a `serve` runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    All,
    Commands,
    Views,
    Notifier,
    Scheduler,
    Exporter,
    Webhooks,
    Gateway,
}

/// How the event log syncs a commit: `full` survives power loss, `normal` only a crash.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncArg {
    Full,
    Normal,
}

/// When a command is answered (`--durability`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurabilityArg {
    Local,
    Replicated,
}

/// The shortest token secret a gateway beyond loopback takes: HS256's own key size, as a
/// shorter one can be guessed offline from any token.
pub const MIN_SECRET: usize = 32;

/// The shortest master key a deployment beyond this machine takes (AES-256's own key size).
pub const MIN_MASTER_KEY: usize = 32;

/// Beyond loopback, the development master key (public: it is in this repository) or a short
/// one would let every reader of `INVITES_EVENTS` open what the roles seal.
fn check_master_key(args: &ServeArgs) -> anyhow::Result<()> {
    let local = args
        .common
        .nats_url
        .split(',')
        .all(|u| crate::nats::loopback_port(u.trim()).is_some());
    let key = &args.common.master_key;
    if !local && (key == invitebus_keys::DEV_MASTER_KEY || key.len() < MIN_MASTER_KEY) {
        anyhow::bail!(
            "NATS is at {} (beyond this machine) and INVITEBUS_MASTER_KEY is the development key or shorter than {MIN_MASTER_KEY} bytes: set a master key of your own, the same for every role",
            args.common.nats_url
        );
    }
    Ok(())
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    check_master_key(&args)?;
    let verifier = args.tokens.verifier().await?;
    let bus_auth = args.bus_auth(&verifier)?;
    let mut signals = Signals::take();
    let metrics = crate::metrics::install()?;
    if let Some(addr) = &args.metrics {
        crate::metrics::serve(addr, metrics.clone()).await?;
    }
    std::fs::create_dir_all(&args.common.data).with_context(|| format!("creating {}", args.common.data.display()))?;
    let bus = crate::natsauth::bus::Bus::open(&args.common, args.nats_auth).await?;
    crate::nats::wait_for_jetstream(bus.first()).await?;
    let subjects = args.common.subjects();
    let mut writer = WriterConfig::new(args.common.data.join("events.db"));
    writer.sync = match args.sync {
        SyncArg::Full => Sync::Full,
        SyncArg::Normal => Sync::Normal,
    };
    writer.max_batch = args.max_batch;
    let runs = |role: Role| args.role == Role::All || args.role == role;
    let feed = |name: &str| invitebus_feed::FeedSettings {
        stall_after: std::time::Duration::from_secs_f64(args.stall_after.max(0.1)),
        freeze_after_batches: args
            .fault_freeze_feed
            .as_deref()
            .and_then(|f| f.split_once(':'))
            .filter(|(p, _)| *p == name)
            .and_then(|(_, n)| n.parse().ok()),
        local_log: (args.bulk_after > 0).then(|| invitebus_feed::LocalLog {
            min_lag: args.bulk_after,
            ..invitebus_feed::LocalLog::new(args.common.data.join("events.db"))
        }),
        ..Default::default()
    };
    let commands = match runs(Role::Commands) {
        true => {
            let mut config = ServiceConfig::new(writer);
            config.subjects = subjects.clone();
            config.relay_client = Some(bus.connect(User::Commands).await?);
            config.exports_enabled = args.exports || runs(Role::Exporter);
            config.health.unhealthy_after = std::time::Duration::from_secs_f64(args.unhealthy_after.max(0.1));
            config.bus_auth = bus_auth.clone();
            config.webhooks = invitebus_commands::webhook::WebhookIntake {
                key: invitebus_keys::MasterKey::new(&args.common.master_key),
                allow_private: args.webhook_allow_private,
                allow_hosts: args.webhook_allow_hosts.clone(),
            };
            config.durability = match args.durability {
                DurabilityArg::Local => invitebus_commands::durability::Durability::Local,
                DurabilityArg::Replicated => invitebus_commands::durability::Durability::Replicated,
            };
            let client = bus.client(User::Commands).await?;
            match args.lease {
                false => Some(Commands::Single(CommandService::start(client, config).await?)),
                true => {
                    if args.durability != DurabilityArg::Replicated {
                        anyhow::bail!(
                            "--lease needs --durability replicated: a writer that loses the lease drops what it \
                             had not published, and under `local` it may have acknowledged that already"
                        );
                    }
                    let settings = invitebus_commands::lease::LeaseSettings {
                        holder: args.instance.clone().unwrap_or_else(default_instance),
                        ttl: std::time::Duration::from_secs_f64(args.lease_ttl.clamp(0.5, 600.0)),
                        replicas: args.common.replicas.into(),
                    };
                    Some(Commands::Elected(
                        invitebus_commands::ElectedService::start(client, config, settings).await?,
                    ))
                }
            }
        }
        false => None,
    };
    // The data keys, for the roles that open personal fields (each with its own connection).
    let keys = |client: async_nats::Client| {
        let common = &args.common;
        async move {
            let ring = retrying("the data keys", || async {
                common
                    .key_ring(&client, true)
                    .await
                    .map_err(|e| std::io::Error::other(format!("{e:#}")))
            })
            .await?;
            anyhow::Ok(std::sync::Arc::new(ring))
        }
    };
    let views = match runs(Role::Views) {
        true => Some({
            let client = bus.client(User::Views).await?;
            let ring = keys(client.clone()).await?;
            retrying("views", || {
                let mut config = ViewsConfig::new(args.common.data.join("views.db"));
                config.subjects = subjects.clone();
                config.feed = feed("views");
                config.feed.keys = Some(ring.clone());
                config.master_key = invitebus_keys::MasterKey::new(&args.common.master_key);
                config.bus_auth = bus_auth.clone();
                ViewService::start(client.clone(), config)
            })
            .await?
        }),
        false => None,
    };
    let notifier = match runs(Role::Notifier) {
        true => Some({
            let client = bus.client(User::Notifier).await?;
            let ring = keys(client.clone()).await?;
            retrying("notifier", || {
                let mut config = NotifierConfig::new(args.common.data.join("notifier.db"));
                config.subjects = subjects.clone();
                config.feed = feed("notifier");
                config.feed.keys = Some(ring.clone());
                config.bus_auth = bus_auth.clone();
                NotifierService::start(client.clone(), config)
            })
            .await?
        }),
        false => None,
    };
    let scheduler = match runs(Role::Scheduler) {
        true => Some({
            let client = bus.client(User::Scheduler).await?;
            retrying("scheduler", || {
                let mut config = SchedulerConfig::new(args.common.data.join("scheduler.db"));
                config.subjects = subjects.clone();
                config.service_key = args.service_secret.as_bytes().to_vec();
                config.feed = feed("scheduler");
                config.bus_auth = bus_auth.clone();
                SchedulerService::start(client.clone(), config)
            })
            .await?
        }),
        false => None,
    };
    let exporter = match runs(Role::Exporter) {
        true => Some({
            let client = bus.client(User::Exporter).await?;
            let ring = keys(client.clone()).await?;
            retrying("exporter", || {
                let mut config = ExporterConfig::new(args.common.data.join("exporter.db"));
                config.subjects = subjects.clone();
                config.service_key = args.service_secret.as_bytes().to_vec();
                config.feed = feed("exporter");
                config.feed.keys = Some(ring.clone());
                config.master_key = invitebus_keys::MasterKey::new(&args.common.master_key);
                config.bus_auth = bus_auth.clone();
                ExporterService::start(client.clone(), config)
            })
            .await?
        }),
        false => None,
    };
    let webhooks = match runs(Role::Webhooks) {
        true => Some({
            let client = bus.client(User::Webhooks).await?;
            retrying("webhooks", || {
                let mut config = WebhooksConfig::new(args.common.data.join("webhooks.db"));
                config.subjects = subjects.clone();
                config.master_key = invitebus_keys::MasterKey::new(&args.common.master_key);
                config.delivery.allow_private = args.webhook_allow_private;
                config.delivery.max_attempts = args.webhook_attempts.max(1);
                config.delivery.allow_hosts = args.webhook_allow_hosts.clone();
                config.feed = feed("webhooks");
                config.bus_auth = bus_auth.clone();
                WebhooksService::start(client.clone(), config)
            })
            .await?
        }),
        false => None,
    };
    let (gateway_stop, gateway_stopped) = tokio::sync::oneshot::channel::<()>();
    let gateway = match runs(Role::Gateway) {
        true => {
            let listener = tokio::net::TcpListener::bind(&args.http)
                .await
                .with_context(|| format!("the gateway cannot listen on {}", args.http))?;
            let bounds = args.edge.bounds();
            let app = invitebus_gateway::router(invitebus_gateway::GatewayConfig {
                client: bus.client(User::Gateway).await?,
                subjects: subjects.clone(),
                verifier: verifier.clone(),
                metrics: Some({
                    let m = metrics.clone();
                    std::sync::Arc::new(move || m.render())
                }),
                limits: std::sync::Arc::new(invitebus_gateway::limits::Limits::new(&args.edge.limits())),
                bounds: bounds.clone(),
            });
            let addr = listener.local_addr()?;
            let secret = &args.tokens.jwt_secret;
            if secret.is_empty() && args.tokens.jwks.is_none() {
                anyhow::bail!("the gateway would take no token at all: set INVITEBUS_JWT_SECRET or INVITEBUS_JWKS");
            }
            if !addr.ip().is_loopback()
                && !secret.is_empty()
                && (secret == crate::DEV_JWT_SECRET || secret.len() < MIN_SECRET)
            {
                anyhow::bail!("the gateway listens on {addr}, beyond this machine, with the development JWT secret or one shorter than {MIN_SECRET} bytes: set INVITEBUS_JWT_SECRET to a secret of your own");
            }
            tracing::info!(http = %addr, "gateway listening");
            Some(tokio::spawn(invitebus_gateway::serve(
                listener,
                app,
                bounds,
                async move {
                    let _ = gateway_stopped.await;
                },
            )))
        }
        false => None,
    };
    tracing::info!(role = ?args.role, data = %args.common.data.display(), "invitebus serving; Ctrl-C stops");
    signals.wait().await;
    tracing::info!("stopping");
    let _ = gateway_stop.send(());
    if let Some(g) = gateway {
        // Open WebSockets and event streams would hold a graceful shutdown forever.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), g).await;
    }
    if let Some(w) = webhooks {
        w.shutdown().await;
    }
    if let Some(e) = exporter {
        e.shutdown().await;
    }
    if let Some(s) = scheduler {
        s.shutdown().await;
    }
    if let Some(n) = notifier {
        n.shutdown().await;
    }
    if let Some(v) = views {
        v.shutdown().await;
    }
    if let Some(c) = commands {
        c.shutdown().await;
    }
    bus.close().await;
    Ok(())
}

/// The commands role: the one writer, or one of several taking part in the election.
enum Commands {
    Single(CommandService),
    Elected(invitebus_commands::ElectedService),
}

impl Commands {
    async fn shutdown(self) {
        match self {
            Commands::Single(c) => c.shutdown().await,
            Commands::Elected(c) => c.shutdown().await,
        }
    }
}

/// `<host>-<pid>` as an id: what names this instance in the lease when `--instance` is not set.
fn default_instance() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    match host.is_empty() {
        true => format!("commands-{}", std::process::id()),
        false => format!("{host}-{}", std::process::id()),
    }
}

/// SIGINT and SIGTERM, taken over before any role starts: a signal during a slow start then
/// stops `serve` cleanly once it has started, instead of killing it half-way.
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn take() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }

    async fn wait(&mut self) {
        async fn one(s: &mut Option<tokio::signal::unix::Signal>) {
            match s.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = one(&mut self.term) => {}
            _ = one(&mut self.int) => {}
        }
    }
}

/// True when `e` (or its cause) is another process's hold on the role's file.
fn held_elsewhere(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<invitebus_filelock::LockError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Starts a role, again while it fails, for up to a minute: creating a replicated stream on a
/// cluster that is busy electing leaders can time out, and that should not end `serve`.
async fn retrying<T, E, F, Fut>(role: &str, start: F) -> anyhow::Result<T>
where
    E: std::error::Error + Send + std::marker::Sync + 'static,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match start().await {
            Ok(started) => return Ok(started),
            // Another process holds the role's file: waiting would not help, say so at once.
            Err(e) if held_elsewhere(&e) => return Err(e).with_context(|| format!("starting the {role} role")),
            Err(e) if std::time::Instant::now() < deadline => {
                tracing::warn!(role, error = %e, "the role did not start; trying again");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("starting the {role} role")),
        }
    }
}
