//! `invitebus serve`: the roles in one process, stopped cleanly by SIGINT or SIGTERM.

use crate::Common;
use anyhow::Context;
use invitebus_commands::{CommandService, ServiceConfig, WriterConfig};
use invitebus_eventlog::Sync;
use invitebus_exporter::{ExporterConfig, ExporterService};
use invitebus_notifier::{NotifierConfig, NotifierService};
use invitebus_scheduler::{SchedulerConfig, SchedulerService};
use invitebus_views::{ViewService, ViewsConfig};

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: Common,
    /// Which part to run: `commands` (the write side and relay), `views` (read models and their
    /// queries), `notifier` (notifications and the inbox), `scheduler` (expiry and reminder timers),
    /// `exporter` (export jobs), `gateway` (HTTP), or `all`.
    #[arg(long, default_value = "all", value_parser = ["all", "commands", "views", "notifier", "scheduler", "exporter", "gateway"])]
    pub role: String,
    /// Where the HTTP gateway listens.
    #[arg(long = "http", env = "INVITEBUS_HTTP", default_value = "127.0.0.1:5004")]
    pub http: String,
    /// The HS256 secret of the gateway's tokens (`invitebus token` signs with the same).
    #[arg(long, env = "INVITEBUS_JWT_SECRET", default_value = crate::DEV_JWT_SECRET)]
    pub jwt_secret: String,
    /// Accept RequestExport in the commands role. On by itself when this process also runs the
    /// exporter (`all`); set it when an exporter runs elsewhere.
    #[arg(long, env = "INVITEBUS_EXPORTS")]
    pub exports: bool,
    /// `full`: every commit survives a power cut; `normal`: survives a crash of the process.
    #[arg(long, env = "INVITEBUS_SYNC", default_value = "full", value_parser = ["full", "normal"])]
    pub sync: String,
    /// Most commands per transaction (1 turns group commit off).
    #[arg(long, env = "INVITEBUS_MAX_BATCH", default_value_t = 1024)]
    pub max_batch: usize,
}

/// The shortest token secret a gateway beyond loopback takes: HS256's own key size, as a
/// shorter one can be guessed offline from any token.
pub const MIN_SECRET: usize = 32;

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.common.data).with_context(|| format!("creating {}", args.common.data.display()))?;
    let (client, nats_server) = crate::nats::connect_or_start(&args.common.nats_url, &args.common.data).await?;
    crate::nats::wait_for_jetstream(&client).await?;
    let mut writer = WriterConfig::new(args.common.data.join("events.db"));
    writer.sync = if args.sync == "normal" {
        Sync::Normal
    } else {
        Sync::Full
    };
    writer.max_batch = args.max_batch;
    let runs = |role: &str| args.role == "all" || args.role == role;
    let commands = match runs("commands") {
        true => {
            let mut config = ServiceConfig::new(writer);
            let url = nats_server
                .as_ref()
                .map(|s| s.url())
                .unwrap_or_else(|| args.common.nats_url.clone());
            config.relay_client = Some(crate::nats::connect(&url).await?);
            config.exports_enabled = args.exports || runs("exporter");
            Some(CommandService::start(client.clone(), config).await?)
        }
        false => None,
    };
    let views = match runs("views") {
        true => Some(
            retrying("views", || {
                ViewService::start(client.clone(), ViewsConfig::new(args.common.data.join("views.db")))
            })
            .await?,
        ),
        false => None,
    };
    let notifier = match runs("notifier") {
        true => Some(
            retrying("notifier", || {
                NotifierService::start(
                    client.clone(),
                    NotifierConfig::new(args.common.data.join("notifier.db")),
                )
            })
            .await?,
        ),
        false => None,
    };
    let scheduler = match runs("scheduler") {
        true => Some(
            retrying("scheduler", || {
                SchedulerService::start(
                    client.clone(),
                    SchedulerConfig::new(args.common.data.join("scheduler.db")),
                )
            })
            .await?,
        ),
        false => None,
    };
    let exporter = match runs("exporter") {
        true => Some(
            retrying("exporter", || {
                ExporterService::start(
                    client.clone(),
                    ExporterConfig::new(args.common.data.join("exporter.db")),
                )
            })
            .await?,
        ),
        false => None,
    };
    let (gateway_stop, gateway_stopped) = tokio::sync::oneshot::channel::<()>();
    let gateway = match runs("gateway") {
        true => {
            let listener = tokio::net::TcpListener::bind(&args.http)
                .await
                .with_context(|| format!("the gateway cannot listen on {}", args.http))?;
            let app = invitebus_gateway::router(invitebus_gateway::GatewayConfig {
                client: client.clone(),
                subjects: invitebus_events::subject::Subjects::from_env(),
                jwt_secret: args.jwt_secret.clone(),
            });
            let addr = listener.local_addr()?;
            if !addr.ip().is_loopback()
                && (args.jwt_secret == crate::DEV_JWT_SECRET || args.jwt_secret.len() < MIN_SECRET)
            {
                anyhow::bail!("the gateway listens on {addr}, beyond this machine, with the development JWT secret or one shorter than {MIN_SECRET} bytes: set INVITEBUS_JWT_SECRET to a secret of your own");
            }
            tracing::info!(http = %addr, "gateway listening");
            Some(tokio::spawn(invitebus_gateway::serve(listener, app, async move {
                let _ = gateway_stopped.await;
            })))
        }
        false => None,
    };
    tracing::info!(role = %args.role, data = %args.common.data.display(), "invitebus serving; Ctrl-C stops");
    wait_for_signal().await;
    tracing::info!("stopping");
    let _ = gateway_stop.send(());
    if let Some(g) = gateway {
        // Open WebSockets and event streams would hold a graceful shutdown forever.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), g).await;
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
    let _ = client.flush().await;
    drop(nats_server);
    Ok(())
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
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
            Err(e) if std::time::Instant::now() < deadline => {
                tracing::warn!(role, error = %e, "the role did not start; trying again");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("starting the {role} role")),
        }
    }
}
