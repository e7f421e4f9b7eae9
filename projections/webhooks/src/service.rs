//! The webhooks role: the registry's feed (a projection like the others: health, watchdog,
//! rebuilds), a supervisor that keeps one worker per live endpoint (a new one for each
//! generation: a replay), and the `webhooks` query.

use crate::deliveries::{Deliveries, Delivery};
use crate::registry::{self, Endpoint, Registry, NAME};
use crate::worker::{self, DeliverySettings, Shared, Stopped};
use crate::WebhookError;
use async_nats::Client;
use invitebus_events::command::{check_body, decode_fields};
use invitebus_events::subject::Subjects;
use invitebus_events::{ErrorCode, Id, ProtocolError, ADMIN_ROLE};
use invitebus_keys::MasterKey;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

#[derive(Debug, Clone)]
pub struct WebhooksConfig {
    /// The registry's file (`webhooks.db`); the deliveries' file sits beside it
    /// (`webhooks-deliveries.db`).
    pub path: PathBuf,
    pub subjects: Subjects,
    /// Opens the endpoints' sealed secrets (the same key as the commands role's).
    pub master_key: MasterKey,
    pub delivery: DeliverySettings,
    pub bus_auth: invitebus_auth::BusAuth,
    pub feed: invitebus_feed::FeedSettings,
}

impl WebhooksConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        WebhooksConfig {
            path: path.into(),
            subjects: Subjects::default(),
            master_key: MasterKey::dev(),
            delivery: DeliverySettings::default(),
            bus_auth: Default::default(),
            feed: invitebus_feed::FeedSettings::default(),
        }
    }

    /// The deliveries' file, beside the registry's.
    pub fn deliveries_path(&self) -> PathBuf {
        let name = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| NAME.into());
        self.path.with_file_name(format!("{name}-deliveries.db"))
    }
}

pub struct WebhooksService {
    run: invitebus_feed::Running,
}

impl WebhooksService {
    pub async fn start(client: Client, config: WebhooksConfig) -> Result<WebhooksService, WebhookError> {
        let lock = invitebus_filelock::lock(&config.path, "the webhooks role")?;
        let registry = Registry::open(&config.path)?;
        let deliveries = Deliveries::open(&config.deliveries_path())?;
        let shared = Arc::new(Shared {
            js: async_nats::jetstream::new(client.clone()),
            subjects: config.subjects.clone(),
            registry: registry.file().reader()?,
            deliveries,
            key: config.master_key.clone(),
            settings: config.delivery.clone(),
        });
        let queries = client
            .subscribe(config.subjects.query("webhooks"))
            .await
            .map_err(|e| WebhookError::Nats(e.into()))?;
        let mut run = invitebus_feed::Running::start(&client, &config.subjects, NAME, registry, config.feed.clone());
        run.hold(lock);
        let s = shared.clone();
        run.spawn(move |applied, shutdown| supervise(s, applied, shutdown));
        let (auth, registry) = (config.bus_auth.clone(), shared.registry.clone());
        // Answered like every projection's queries (min_position, damage reports, a task each).
        let answer = move |conn: &rusqlite::Connection, body: &[u8]| {
            check_body(body)?;
            let q: WebhooksQuery = decode_fields(body)?;
            list(conn, &shared.deliveries, &q)
        };
        run.spawn(move |applied, shutdown| {
            invitebus_feed::answer_queries(client, queries, registry, auth, applied, shutdown, answer)
        });
        info!(path = %config.path.display(), "webhooks ready");
        Ok(WebhooksService { run })
    }

    pub fn applied(&self) -> watch::Receiver<u64> {
        self.run.applied()
    }

    pub async fn shutdown(self) {
        self.run.shutdown().await;
    }
}

/// Says why a worker that ended by itself did, before another takes its place: a panic at
/// error level, anything but failing or a change at warn; every end counted by reason.
async fn said_why_it_ended(webhook_id: &str, worker: JoinHandle<Stopped>) {
    let reason = match worker.await {
        Ok(Stopped::Failing) => "failing",
        Ok(Stopped::Changed) => "changed",
        Ok(Stopped::Shutdown) => "shutdown",
        Err(e) if e.is_panic() => {
            tracing::error!(webhook_id, error = %e, "a webhook worker panicked; starting it again");
            "panic"
        }
        Err(_) => "cancelled",
    };
    if !matches!(reason, "failing" | "changed" | "panic") {
        warn!(webhook_id, reason, "a webhook worker ended; starting it again");
    }
    metrics::counter!("invitebus_webhook_worker_exits_total", "reason" => reason).increment(1);
}

/// Keeps one worker per endpoint that is neither deleted nor failing, a new one for each new
/// generation (a replay), never one for a generation older than the delivery's (the registry is
/// behind: rebuilt, or lost its last commits); reports the endpoints failing and the largest
/// lag as metrics. A worker's own watchdog restarts its reading when it gets stuck.
async fn supervise(shared: Arc<Shared>, mut applied: watch::Receiver<u64>, mut shutdown: watch::Receiver<bool>) {
    let mut running: HashMap<String, (u64, JoinHandle<Stopped>)> = HashMap::new();
    loop {
        let endpoints = {
            let mut reader = shared.registry.lock().unwrap_or_else(|p| p.into_inner());
            reader.conn().and_then(registry::all)
        };
        match endpoints {
            Err(e) => warn!(error = %e, "webhooks: reading the registry failed; retrying"),
            Ok(endpoints) => {
                let head = *applied.borrow();
                let (mut lag, mut failing) = (0u64, 0u64);
                for endpoint in endpoints {
                    let id = endpoint.webhook_id.clone();
                    if endpoint.deleted_position.is_some() {
                        if let Some((_, h)) = running.remove(&id) {
                            h.abort();
                        }
                        continue;
                    }
                    let delivery = shared.deliveries.get(&id).ok().flatten();
                    if delivery.as_ref().is_some_and(|d| d.generation > endpoint.generation) {
                        continue;
                    }
                    let this_generation = delivery.as_ref().filter(|d| d.generation == endpoint.generation);
                    if let Some(d) = this_generation {
                        match d.failing {
                            true => failing += 1,
                            false => lag = lag.max(head.saturating_sub(d.position)),
                        }
                    }
                    match running.get(&id) {
                        Some((g, h)) if *g == endpoint.generation && !h.is_finished() => continue,
                        // Stopped on its own at this generation: failing stays stopped.
                        _ if this_generation.is_some_and(|d| d.failing) => continue,
                        _ => {}
                    }
                    if let Some((_, h)) = running.remove(&id) {
                        match h.is_finished() {
                            true => said_why_it_ended(&id, h).await,
                            false => h.abort(),
                        }
                    }
                    let worker = worker::run(shared.clone(), endpoint.clone(), applied.clone(), shutdown.clone());
                    running.insert(id, (endpoint.generation, tokio::spawn(worker)));
                }
                metrics::gauge!("invitebus_webhooks_failing").set(failing as f64);
                metrics::gauge!("invitebus_webhook_lag_events").set(lag as f64);
            }
        }
        tokio::select! {
            _ = invitebus_feed::moved_or(&mut applied, Duration::from_secs(1)) => {}
            _ = shutdown.changed() => break,
        }
    }
    for (_, (_, h)) in running {
        let _ = h.await;
    }
}

/// The `webhooks` query (its `min_position` is read by `answer_queries`).
#[derive(Debug, Deserialize)]
struct WebhooksQuery {
    actor: Option<Id>,
    #[serde(default)]
    roles: Vec<String>,
    webhook_id: Option<Id>,
}

/// The webhooks the actor may see (an admin: all; anyone else: those they registered), each
/// with its delivery; never a secret.
fn list(conn: &rusqlite::Connection, deliveries: &Deliveries, q: &WebhooksQuery) -> Result<Value, ProtocolError> {
    let actor = q
        .actor
        .as_ref()
        .ok_or_else(|| ProtocolError::with_field(ErrorCode::Unauthenticated, "actor", "no actor"))?;
    let admin = q.roles.iter().any(|r| r == ADMIN_ROLE);
    let endpoints = registry::all(conn).map_err(invitebus_feed::store::read_error)?;
    let mut items = Vec::new();
    for e in endpoints {
        if !(admin || e.registered_by == actor.as_str())
            || q.webhook_id.as_ref().is_some_and(|w| w.as_str() != e.webhook_id)
        {
            continue;
        }
        let delivery = deliveries
            .get(&e.webhook_id)
            .map_err(|e| ProtocolError::unavailable(format!("reading deliveries: {e}")))?
            .filter(|d| d.generation == e.generation);
        items.push(item(&e, delivery));
    }
    Ok(json!({ "items": items }))
}

/// One webhook as the query shows it: `status` is `active`, `failing` or `deleted`.
fn item(e: &Endpoint, d: Option<Delivery>) -> Value {
    let d = d.unwrap_or(Delivery {
        position: e.start_after,
        ..Default::default()
    });
    let status = match (e.deleted_position.is_some(), d.failing) {
        (true, _) => "deleted",
        (false, true) => "failing",
        (false, false) => "active",
    };
    json!({
        "webhook_id": e.webhook_id, "url": e.url, "events": e.events, "resource_id": e.resource_id,
        "registered_by": e.registered_by, "registered_at": e.registered_at, "status": status,
        "position": d.position, "delivered_position": d.delivered_position, "delivered": d.delivered,
        "failures": d.failures, "last_error": d.last_error, "last_attempt_at": d.last_attempt_at,
        "last_delivered_at": d.last_delivered_at,
    })
}
