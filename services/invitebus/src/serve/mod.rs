//! `invitebus serve`: the roles in one process, stopped cleanly by SIGINT or SIGTERM. Its
//! settings and their checks are in `args`; starting a role and waiting for signals in `start`.

mod args;
mod start;

pub use args::*;
use start::{default_instance, retrying, Signals};

use crate::natsauth::User;
use anyhow::Context;
use invitebus_commands::{CommandService, ServiceConfig, WriterConfig};
use invitebus_eventlog::Sync;
use invitebus_exporter::{ExporterConfig, ExporterService};
use invitebus_notifier::{NotifierConfig, NotifierService};
use invitebus_scheduler::{SchedulerConfig, SchedulerService};
use invitebus_views::{ViewService, ViewsConfig};
use invitebus_webhooks::{WebhooksConfig, WebhooksService};

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
