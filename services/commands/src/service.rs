//! The command service on NATS: `invites.cmd.*` (queue group) → decode → writer → reply;
//! `invites.health`; the `history` and `state` queries; and the relay to JetStream.

use crate::durability::Durability;
use crate::queries;
use crate::writer::{RelayLink, Writer, WriterConfig, WriterHandle};
use async_nats::{Client, Subject};
use futures::StreamExt;
use invitebus_auth::BusAuth;
use invitebus_eventlog::relay::{self, Relay, RelayError};
use invitebus_eventlog::{LogError, LogReader};
use invitebus_events::subject::Subjects;
use invitebus_events::{CommandRequest, ProtocolError, Reply};
use invitebus_keys::KeyRing;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

/// How long shutdown waits for the relay to publish what was committed.
pub const RELAY_DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// How the command service runs.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub subjects: Subjects,
    pub writer: WriterConfig,
    /// The queue group shared by every command service instance.
    pub queue_group: String,
    /// A connection of its own for the relay, so that its publishes and acks do not queue behind
    /// commands and replies on one connection; None shares the service's connection.
    pub relay_client: Option<Client>,
    /// Accept RequestExport. Off until an exporter role exists to run exports: a request nobody
    /// runs would stay queued and block its requester's next one (`export_in_progress`).
    pub exports_enabled: bool,
    /// When `invites.health` says unhealthy.
    pub health: crate::health::HealthSettings,
    /// Whether commands and the log's queries must carry a token (`--bus-auth`); health never.
    pub bus_auth: BusAuth,
    /// When a command is answered: its events in the local log, or acknowledged by JetStream too.
    pub durability: Durability,
    /// Sealing webhooks' secrets, and whether their targets may be private addresses.
    pub webhooks: crate::webhook::WebhookIntake,
    /// Seal personal fields with their person's data key (kept in the `invites-keys` bucket,
    /// wrapped with `webhooks.key`, the master key), and open them for the log's queries.
    pub seal_personal: bool,
}

impl ServiceConfig {
    pub fn new(writer: WriterConfig) -> Self {
        ServiceConfig {
            subjects: Subjects::default(),
            writer,
            queue_group: invitebus_events::subject::COMMANDS_QUEUE_GROUP.into(),
            relay_client: None,
            exports_enabled: false,
            health: crate::health::HealthSettings::default(),
            bus_auth: BusAuth::Off,
            durability: Durability::Local,
            webhooks: Default::default(),
            seal_personal: true,
        }
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Log(#[from] LogError),
    /// NATS or JetStream refused or did not answer; the cause is kept.
    #[error("nats: {0}")]
    Nats(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Keys(#[from] invitebus_keys::keyring::RingError),
}

/// The data keys of `config`'s deployment (the bucket made when missing), or None when personal
/// fields are not sealed.
pub async fn key_ring(client: &Client, config: &ServiceConfig) -> Result<Option<Arc<KeyRing>>, ServiceError> {
    if !config.seal_personal {
        return Ok(None);
    }
    let js = async_nats::jetstream::new(client.clone());
    // A cluster still electing its leaders can refuse to make the bucket for a while.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match KeyRing::open(&js, config.webhooks.key.clone(), config.subjects.replicas(), true).await {
            Ok(ring) => return Ok(Some(Arc::new(ring))),
            Err(e) if std::time::Instant::now() < deadline => {
                warn!(error = %e, "the data keys' bucket is not there yet; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A running command service; [`CommandService::shutdown`] stops it cleanly.
pub struct CommandService {
    shutdown: watch::Sender<bool>,
    abort_relay: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    relay: JoinHandle<()>,
    writer: Option<Writer>,
    handle: Option<WriterHandle>,
    relayed: watch::Receiver<u64>,
    deposed: watch::Receiver<Option<u64>>,
}

impl CommandService {
    /// Opens the log, starts the writer and the relay, and subscribes.
    pub async fn start(client: Client, config: ServiceConfig) -> Result<CommandService, ServiceError> {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (relayed_tx, relayed) = watch::channel(0);
        let (feed, feed_rx) = relay::feed();
        let (deposed_tx, deposed) = watch::channel(None);
        let link = RelayLink {
            feed: Some(feed),
            relayed: Some(relayed.clone()),
            deposed: Some(deposed.clone()),
            drop_unpublished: config.durability == Durability::Replicated,
        };
        let keys = key_ring(&client, &config).await?;
        let (writer, handle) = Writer::start(config.writer.clone(), link)?;
        if let Some(keys) = keys.clone() {
            // Forgets a crash left between their commit and their key's erasure.
            match LogReader::open(&config.writer.log_path).and_then(|r| r.forgotten_users()) {
                Ok(users) => drop(tokio::spawn(async move {
                    crate::personal::finish_forgets(&keys, users).await
                })),
                Err(e) => warn!(error = %e, "reading the log for forgotten users failed"),
            }
        }
        let nats = |e: async_nats::SubscribeError| ServiceError::Nats(e.into());
        let subjects = config.subjects.clone();

        let relay = Relay {
            log_path: config.writer.log_path.clone(),
            jetstream: async_nats::jetstream::new(config.relay_client.clone().unwrap_or_else(|| client.clone())),
            subjects: subjects.clone(),
            feed: feed_rx,
            published: relayed_tx,
            tenure: config.writer.tenure.clone(),
        };
        let (abort_relay, abort_rx) = watch::channel(false);
        let stepper = handle.stepper();
        let relay = tokio::spawn(async move {
            match relay.run(abort_rx).await {
                Ok(()) => {}
                // Another writer owns the stream from there: step down at once.
                Err(e @ RelayError::Fenced { kept, .. }) => {
                    error!(error = %e, "relay fenced off");
                    deposed_tx.send_replace(Some(kept));
                    stepper.step_down().await;
                }
                // Unreachable today: the relay restarts itself after any other failure.
                Err(e) => error!(error = %e, "relay stopped"),
            }
        });

        let (reply_tx, reply_rx) = mpsc::unbounded_channel();
        // Standby writers: only the leader subscribes, so a queue group adds nothing, and it
        // would keep handing a share of the commands to a leader paused past its lease (NATS
        // holds a paused client's subscriptions until its pings time out).
        let (commands, health) = match config.writer.tenure.is_some() {
            false => (
                client
                    .queue_subscribe(subjects.all_commands(), config.queue_group.clone())
                    .await,
                client
                    .queue_subscribe(subjects.health(), config.queue_group.clone())
                    .await,
            ),
            true => (
                client.subscribe(subjects.all_commands()).await,
                client.subscribe(subjects.health()).await,
            ),
        };
        let (commands, health) = (commands.map_err(nats)?, health.map_err(nats)?);
        let status = client.subscribe(subjects.all_status()).await.map_err(nats)?;
        let history = client
            .queue_subscribe(subjects.query("history"), config.queue_group.clone())
            .await
            .map_err(nats)?;
        let state = client
            .queue_subscribe(subjects.query("state"), config.queue_group.clone())
            .await
            .map_err(nats)?;
        // A queue group of its own: NATS gives a message to one member of a group whatever
        // subject each member subscribed, so in the commands' group it would take `history`.
        let unknown = client
            .queue_subscribe(subjects.query(">"), format!("{}-unknown-queries", config.queue_group))
            .await
            .map_err(nats)?;
        let reader = Arc::new(Mutex::new(LogReader::open(&config.writer.log_path)?));

        let tasks = vec![
            tokio::spawn(command_loop(
                commands,
                handle.clone(),
                reply_tx,
                config.exports_enabled,
                config.bus_auth.clone(),
                (config.webhooks.clone(), keys.clone()),
                shutdown_rx.clone(),
            )),
            tokio::spawn(crate::durability::reply_loop(
                client.clone(),
                reply_rx,
                (config.durability == Durability::Replicated).then(|| relayed.clone()),
                deposed.clone(),
            )),
            tokio::spawn(crate::health::health_loop(
                client.clone(),
                health,
                status,
                (handle.head(), relayed.clone(), deposed.clone()),
                config.health.clone(),
                shutdown_rx.clone(),
            )),
            tokio::spawn(query_loop(
                client.clone(),
                history,
                reader.clone(),
                (queries::history, config.bus_auth.clone(), keys.clone()),
                shutdown_rx.clone(),
            )),
            tokio::spawn(unknown_queries(
                client.clone(),
                unknown,
                subjects.query(""),
                shutdown_rx.clone(),
            )),
            tokio::spawn(relay_gauges(handle.head(), relayed.clone(), shutdown_rx.clone())),
            tokio::spawn(checkpoint_when_idle(
                handle.stepper(),
                relayed.clone(),
                shutdown_rx.clone(),
            )),
            tokio::spawn(query_loop(
                client.clone(),
                state,
                reader,
                (queries::state, config.bus_auth.clone(), keys),
                shutdown_rx,
            )),
        ];
        info!(prefix = subjects.prefix(), "command service ready");
        Ok(CommandService {
            shutdown,
            abort_relay,
            tasks,
            relay,
            writer: Some(writer),
            handle: Some(handle),
            relayed,
            deposed,
        })
    }

    /// The writer's handle, for in-process senders (benchmarks, tests).
    pub fn writer(&self) -> WriterHandle {
        self.handle.clone().expect("running")
    }

    /// The last position the relay has published.
    pub fn relayed(&self) -> watch::Receiver<u64> {
        self.relayed.clone()
    }

    /// Set once the relay found another writer's event in the stream: the position up to which
    /// this log is published (the writer has stepped down).
    pub fn deposed(&self) -> watch::Receiver<Option<u64>> {
        self.deposed.clone()
    }

    /// Stops without waiting for the relay (a writer stepping down: what it has not published
    /// is dropped by the standby it becomes).
    pub async fn stop_now(self) {
        let _ = self.abort_relay.send(true);
        self.shutdown().await;
    }

    /// Stops taking commands, lets the writer commit and answer what it holds, gives the relay
    /// up to [`RELAY_DRAIN`] to publish everything committed (what it cannot publish by then is
    /// published by the next start), then returns.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        drop(self.handle.take());
        if let Some(w) = self.writer.take() {
            let _ = tokio::task::spawn_blocking(move || w.join()).await;
        }
        if tokio::time::timeout(RELAY_DRAIN, &mut self.relay).await.is_err() {
            warn!("relay did not finish publishing in time; the next start publishes the rest");
            let _ = self.abort_relay.send(true);
            let _ = (&mut self.relay).await;
        }
        info!("command service stopped");
    }
}

async fn command_loop(
    mut sub: async_nats::Subscriber,
    writer: WriterHandle,
    replies: mpsc::UnboundedSender<(Subject, Reply)>,
    exports_enabled: bool,
    auth: BusAuth,
    (webhooks, keys): (crate::webhook::WebhookIntake, Option<Arc<KeyRing>>),
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let msg = tokio::select! {
            m = sub.next() => match m { Some(m) => m, None => break },
            _ = shutdown.changed() => break,
        };
        if invitebus_auth::bus::is_delivery(&msg) {
            continue;
        }
        let name = msg.subject.as_str().rsplit('.').next().unwrap_or("");
        let reply_to = msg.reply.clone();
        let traceparent = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(invitebus_events::trace::TRACEPARENT))
            .and_then(|v| invitebus_events::trace::Traceparent::parse(v.as_str()));
        let decoded = auth
            .bind_message(&msg)
            .and_then(|body| CommandRequest::decode(name, &body));
        let decoded = decoded.map(|mut r| {
            // The trace names the action when the client gave no correlation id.
            if r.meta.correlation_id.is_none() {
                r.meta.correlation_id = traceparent.as_ref().map(|t| t.trace_id().to_string());
            }
            r.meta.traceparent = traceparent;
            r
        });
        let decoded = decoded.and_then(|mut r| match r.command {
            invitebus_events::Command::RequestExport(_) if !exports_enabled => Err(ProtocolError::invalid_command(
                "RequestExport is not served by this build yet: no exporter runs exports",
            )),
            _ => crate::webhook::at_edge(&mut r, &webhooks).map(|()| r),
        });
        let decoded = match (decoded, &keys) {
            (Ok(mut r), Some(keys)) => crate::personal::at_edge(&mut r, keys).await.map(|forget| (r, forget)),
            (decoded, _) => decoded.map(|r| (r, None)),
        };
        match decoded {
            Err(e) => {
                if let Some(to) = reply_to {
                    let _ = replies.send((to, Reply::err(e)));
                }
            }
            Ok((request, forget)) => {
                let replies = replies.clone();
                let respond: crate::writer::Responder = match (forget, keys.clone()) {
                    // A forget is answered once the user's key is gone too.
                    (Some(user), Some(keys)) => {
                        let runtime = tokio::runtime::Handle::current();
                        Box::new(move |reply: Reply| {
                            runtime.spawn(async move {
                                let reply = crate::personal::forget_after(&keys, &user, reply).await;
                                if let Some(to) = reply_to {
                                    let _ = replies.send((to, reply));
                                }
                            });
                        })
                    }
                    _ => Box::new(move |reply: Reply| {
                        if let Some(to) = reply_to {
                            let _ = replies.send((to, reply));
                        }
                    }),
                };
                writer.submit_with(request, respond).await;
            }
        }
    }
    let _ = sub.unsubscribe().await;
}

/// Keeps `invitebus_relay_position` and `invitebus_relay_lag_events` (log head minus relayed)
/// up to date as either moves.
async fn relay_gauges(
    mut head: watch::Receiver<u64>,
    mut relayed: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (h, r) = (*head.borrow_and_update(), *relayed.borrow_and_update());
        metrics::gauge!("invitebus_relay_position").set(r as f64);
        metrics::gauge!("invitebus_relay_lag_events").set(h.saturating_sub(r) as f64);
        tokio::select! {
            Ok(()) = head.changed() => {}
            Ok(()) = relayed.changed() => {}
            _ = shutdown.changed() => return,
            else => return,
        }
        // At most ten updates a second: the writer moves the head thousands of times a second.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Answers `invalid_command` on `invites.q.<name>` for a name that is no query (the role that
/// owns a known one answers it; without this a typo would wait for a timeout, or get
/// "no responders" like a role that is down).
async fn unknown_queries(
    client: Client,
    mut sub: async_nats::Subscriber,
    prefix: String,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let msg = tokio::select! {
            m = sub.next() => match m { Some(m) => m, None => break },
            _ = shutdown.changed() => break,
        };
        let name = msg.subject.as_str().strip_prefix(prefix.as_str()).unwrap_or_default();
        if invitebus_events::query::QUERIES.contains(&name) || invitebus_auth::bus::is_delivery(&msg) {
            continue;
        }
        let Some(to) = msg.reply else { continue };
        let shown: String = name.chars().take(64).collect();
        let e = ProtocolError::invalid_command(format!(
            "unknown query `{shown}`; the queries are {}",
            invitebus_events::query::QUERIES.join(", ")
        ));
        let _ = client.publish(to, Reply::err(e).to_bytes().into()).await;
    }
}

pub(crate) type QueryFn = fn(&LogReader, Option<&KeyRing>, &[u8]) -> Result<serde_json::Value, ProtocolError>;

pub(crate) async fn query_loop(
    client: Client,
    mut sub: async_nats::Subscriber,
    reader: Arc<Mutex<LogReader>>,
    (query, auth, keys): (QueryFn, BusAuth, Option<Arc<KeyRing>>),
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let msg = tokio::select! {
            m = sub.next() => match m { Some(m) => m, None => break },
            _ = shutdown.changed() => break,
        };
        if invitebus_auth::bus::is_delivery(&msg) {
            continue;
        }
        let Some(to) = msg.reply.clone() else { continue };
        let (reader, keys) = (reader.clone(), keys.clone());
        let result = match auth.bind_message(&msg) {
            Err(e) => Err(e),
            Ok(body) => tokio::task::spawn_blocking(move || {
                let reader = reader.lock().unwrap_or_else(|p| p.into_inner());
                query(&reader, keys.as_deref(), &body)
            })
            .await
            .unwrap_or_else(|e| Err(ProtocolError::internal(format!("query task failed: {e}")))),
        };
        let _ = client.publish(to, Reply::from(result).to_bytes().into()).await;
    }
}

/// Has the writer store the relay's position a second after it moves. A batch carries it while
/// commands come; without this an idle writer's checkpoint stayed one batch behind until a clean
/// stop, and a standby that finds the stream short keeps only up to it (PROTOCOL.md).
async fn checkpoint_when_idle(
    stepper: crate::writer::Stepper,
    mut relayed: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            changed = relayed.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
        stepper.store_checkpoint().await;
    }
}
