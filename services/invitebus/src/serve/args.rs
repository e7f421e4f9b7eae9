//! `serve`'s settings (flags and their environment variables) and the checks made on them
//! before any role starts.

use crate::Common;

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
pub(super) fn check_master_key(args: &ServeArgs) -> anyhow::Result<()> {
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
