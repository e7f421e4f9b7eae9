//! Feeds a projection from `INVITES_EVENTS`: every event after the projection's own checkpoint,
//! in position order, in batches, for as long as it runs.
//!
//! The position a projection has reached lives with its rows (written in the same transaction),
//! so the feed starts an ordered consumer at `checkpoint + 1` each time: a rebuilt, restored or
//! replayed view file is followed from exactly where it is, and a JetStream-side cursor can never
//! disagree with the rows.
#![forbid(unsafe_code)]

pub mod store;

use async_nats::jetstream::{self, consumer};
use async_nats::Client;
use futures::StreamExt;
use invitebus_events::query::MIN_POSITION_WAIT_MS;
use invitebus_events::subject::{Subjects, EVENTS_STREAM};
use invitebus_events::Envelope;
use invitebus_events::ProtocolError;
use serde_json::json;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// Events applied per transaction, at most.
pub const BATCH: usize = 500;

/// A read model fed by the event stream. `apply` must store the rows and the new position in
/// one transaction, and must ignore events at or below its position.
pub trait Projection: Send + 'static {
    type Error: std::fmt::Display + Send;
    fn name(&self) -> &str;
    /// The last position applied.
    fn position(&self) -> u64;
    fn apply(&mut self, events: &[Envelope]) -> Result<(), Self::Error>;
    /// The file the projection writes, shared with its readers.
    fn file(&self) -> &std::sync::Arc<store::FileState>;
    /// True when `e` says the file itself is damaged (not a passing failure).
    fn is_damage(e: &Self::Error) -> bool;
    /// Sets the damaged file aside and starts again, at position 0, in a fresh one.
    fn rebuild(&mut self, reason: &str) -> Result<store::Rebuilt, Self::Error>;
}

/// Sets a damaged projection file aside and starts the projection again from position 0;
/// readers follow to the fresh file, health reports the rebuild.
fn rebuild<P: Projection>(projection: &mut P, applied: &watch::Sender<u64>, reason: &str) {
    match projection.rebuild(reason) {
        Ok(r) => {
            projection.file().rebuilt(r);
            let _ = applied.send(projection.position());
        }
        Err(e) => warn!(projection = projection.name(), error = %e, "rebuilding the damaged file failed; retrying"),
    }
}

/// Why following stopped.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("jetstream: {0}")]
    Nats(String),
    #[error("projection: {0}")]
    Projection(String),
}

/// Applies every event after the projection's position, then follows live ones, until
/// `shutdown` fires. Reports each applied position on `applied`. NATS trouble is retried.
pub async fn follow<P: Projection>(
    js: jetstream::Context,
    subjects: Subjects,
    mut projection: P,
    applied: watch::Sender<u64>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<P, FeedError> {
    let _ = applied.send(projection.position());
    loop {
        let from = projection.position() + 1;
        let mut messages = match open(&js, &subjects, from).await {
            Ok(m) => m,
            Err(e) => {
                warn!(projection = projection.name(), error = %e, "cannot follow the events yet; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    _ = shutdown.changed() => return Ok(projection),
                }
            }
        };
        info!(projection = projection.name(), position = from - 1, "following events");
        let file = projection.file().clone();
        loop {
            let chunk = tokio::select! {
                c = messages.next() => c,
                reason = file.damaged() => {
                    rebuild(&mut projection, &applied, &reason);
                    break;
                }
                _ = shutdown.changed() => return Ok(projection),
            };
            let Some(chunk) = chunk else { break };
            let mut batch = Vec::with_capacity(chunk.len());
            let mut broken = false;
            for msg in chunk {
                match msg.map_err(|e| e.to_string()).and_then(|m| {
                    serde_json::from_slice::<Envelope>(&m.payload).map_err(|e| format!("not an envelope: {e}"))
                }) {
                    Ok(env) => batch.push(env),
                    Err(e) => {
                        warn!(projection = projection.name(), error = %e, "reading events failed; resuming");
                        broken = true;
                        break;
                    }
                }
            }
            if !batch.is_empty() {
                let position = projection.position();
                let expected = position + 1;
                if batch.iter().any(|e| e.position > position) && batch[0].position > expected {
                    warn!(
                        projection = projection.name(),
                        expected,
                        got = batch[0].position,
                        "gap in the events; resuming"
                    );
                    break;
                }
                let (p, result) = tokio::task::spawn_blocking(move || {
                    let r = projection.apply(&batch).map_err(|e| (P::is_damage(&e), e.to_string()));
                    (projection, r)
                })
                .await
                .map_err(|e| FeedError::Projection(e.to_string()))?;
                projection = p;
                if let Err((true, e)) = result {
                    rebuild(&mut projection, &applied, &e);
                    break;
                }
                if let Err((false, e)) = result {
                    // Nothing of the batch was stored; take it again from the projection's position.
                    warn!(projection = projection.name(), error = %e, "applying events failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
                let _ = applied.send(projection.position());
            }
            if broken {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

type Chunks = futures::stream::ReadyChunks<jetstream::consumer::pull::Ordered>;

async fn open(js: &jetstream::Context, subjects: &Subjects, from: u64) -> Result<Chunks, FeedError> {
    let nats = |e: &dyn std::fmt::Display| FeedError::Nats(e.to_string());
    let stream = js.get_stream(EVENTS_STREAM).await.map_err(|e| nats(&e))?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: subjects.all_events(),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: from },
            ..Default::default()
        })
        .await
        .map_err(|e| nats(&e))?;
    let messages = consumer.messages().await.map_err(|e| nats(&e))?;
    Ok(messages.ready_chunks(BATCH))
}

/// Publishes `{"name","position"}` on the status subject whenever the position moves (at most
/// every 200 ms) and once a second regardless, until shutdown.
pub fn report_position(
    client: Client,
    subjects: &Subjects,
    name: &'static str,
    file: std::sync::Arc<store::FileState>,
    mut applied: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let subject = subjects.status(name);
    tokio::spawn(async move {
        loop {
            let position = *applied.borrow_and_update();
            let mut body = json!({"name": name, "position": position});
            if let Some(r) = file.last_rebuild() {
                body["rebuilt"] = json!(r);
            }
            let body = body.to_string();
            let _ = client.publish(subject.clone(), body.into()).await;
            tokio::select! {
                _ = applied.changed() => tokio::time::sleep(Duration::from_millis(200)).await,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
        }
    })
}

/// Waits (bounded) until a projection has applied `min_position`: read-your-writes for queries.
pub async fn wait_for(applied: &mut watch::Receiver<u64>, min_position: Option<u64>) -> Result<(), ProtocolError> {
    let Some(min) = min_position else { return Ok(()) };
    match tokio::time::timeout(
        Duration::from_millis(MIN_POSITION_WAIT_MS),
        applied.wait_for(|p| *p >= min),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        _ => Err(ProtocolError::unavailable(format!(
            "the view has not reached position {min} within {MIN_POSITION_WAIT_MS} ms; retry"
        ))),
    }
}

/// The `min_position` of any query body (absent when the body has none or is not JSON: the
/// handler then answers with the body's own error).
#[derive(serde::Deserialize)]
struct MinPosition {
    #[serde(default)]
    min_position: Option<u64>,
}

/// Answers the requests of `sub` until shutdown, each on its own task: waits for the body's
/// `min_position` (read-your-writes), then runs `handle` on a blocking thread with the read
/// connection, and replies. A query waiting for its position holds up no other.
/// A query that finds the file damaged ([`store::read_error`]) has the role rebuild it.
pub async fn answer_queries<F>(
    client: Client,
    mut sub: async_nats::Subscriber,
    reader: std::sync::Arc<std::sync::Mutex<store::Reader>>,
    applied: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
    handle: F,
) where
    F: Fn(&rusqlite::Connection, &[u8]) -> Result<serde_json::Value, ProtocolError> + Send + Sync + Copy + 'static,
{
    loop {
        let msg = tokio::select! {
            m = sub.next() => match m { Some(m) => m, None => break },
            _ = shutdown.changed() => break,
        };
        let Some(to) = msg.reply else { continue };
        let (reader, mut applied, client) = (reader.clone(), applied.clone(), client.clone());
        tokio::spawn(async move {
            let min = serde_json::from_slice::<MinPosition>(&msg.payload)
                .ok()
                .and_then(|m| m.min_position);
            let result = match wait_for(&mut applied, min).await {
                Err(e) => Err(e),
                Ok(()) => tokio::task::spawn_blocking(move || {
                    let mut reader = reader.lock().unwrap_or_else(|p| p.into_inner());
                    let result = reader
                        .conn()
                        .map_err(store::read_error)
                        .and_then(|conn| handle(conn, &msg.payload));
                    if let Err(e) = &result {
                        if e.message.starts_with(store::DAMAGED) {
                            reader.report_damage(&e.message);
                        }
                    }
                    result
                })
                .await
                .unwrap_or_else(|e| Err(ProtocolError::internal(format!("query task failed: {e}")))),
            };
            let _ = client
                .publish(to, invitebus_events::Reply::from(result).to_bytes().into())
                .await;
        });
    }
}

/// A projection role at work: the feed that follows the events into the projection, the
/// position reports for health, and whatever else the role spawns; stopped together.
pub struct Running {
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    applied: watch::Receiver<u64>,
    locks: Vec<invitebus_filelock::FileLock>,
}

impl Running {
    /// Starts following the events with `projection` and reporting its position as `name`.
    pub fn start<P: Projection>(client: &Client, subjects: &Subjects, name: &'static str, projection: P) -> Running {
        let (applied_tx, applied) = watch::channel(projection.position());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let file = projection.file().clone();
        let (js, subjects_) = (jetstream::new(client.clone()), subjects.clone());
        let follow_shutdown = shutdown_rx.clone();
        let follow = tokio::spawn(async move {
            if let Err(e) = follow(js, subjects_, projection, applied_tx, follow_shutdown).await {
                warn!(projection = name, error = %e, "the projection stopped");
            }
        });
        let report = report_position(client.clone(), subjects, name, file, applied.clone(), shutdown_rx);
        Running {
            shutdown,
            tasks: vec![follow, report],
            applied,
            locks: vec![],
        }
    }

    /// Keeps `lock` (the role's hold on its file) until the role stops.
    pub fn hold(&mut self, lock: invitebus_filelock::FileLock) {
        self.locks.push(lock);
    }

    /// Runs `task` until the role stops; it gets the applied position and the shutdown signal.
    pub fn spawn<F, Fut>(&mut self, task: F)
    where
        F: FnOnce(watch::Receiver<u64>, watch::Receiver<bool>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks
            .push(tokio::spawn(task(self.applied.clone(), self.shutdown.subscribe())));
    }

    /// The last position the projection applied.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }

    /// Stops every task and waits for them.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        drop(self.locks);
    }
}
