//! Following `INVITES_EVENTS` from a projection's checkpoint: a plain ephemeral pull consumer
//! the feed owns (server heartbeats, so a dead consumer is noticed within two of them even when
//! nothing is published), a fresh one whenever anything goes wrong, and the watchdog's word to
//! drop it when it stops delivering.

use crate::watchdog::{FeedSettings, Watch};
use crate::{rebuild, Projection, BATCH};
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use invitebus_events::subject::{Subjects, EVENTS_STREAM};
use invitebus_events::Envelope;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

/// Why following stopped.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// NATS or JetStream refused or did not answer; the cause is kept.
    #[error("jetstream: {0}")]
    Nats(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("projection: {0}")]
    Projection(String),
}

/// Applies every event after the projection's position, then follows live ones, until
/// `shutdown` fires. Reports each applied position on `applied`. NATS trouble is retried; a
/// restart asked by the watchdog (`watch`) drops the consumer and follows from the checkpoint.
pub async fn follow<P: Projection>(
    js: jetstream::Context,
    subjects: Subjects,
    mut projection: P,
    mut applied: watch::Sender<u64>,
    settings: FeedSettings,
    watch: Watch,
    mut shutdown: watch::Receiver<bool>,
) -> Result<P, FeedError> {
    let _ = applied.send(projection.position());
    // The test-only fault (a feed that stops taking messages while its consumer lives) hits the
    // first consumer only: what replaces it works.
    let mut freeze_after = settings.freeze_after_batches;
    // When the bulk path last looked: far behind, it is asked again at most every 2 s.
    let mut bulk_tried = std::time::Instant::now();
    let mut backoff = crate::RebuildBackoff::default();
    loop {
        // JetStream's last sequence caps the bulk part too: a log ahead of the stream (one
        // reset, or a deposed writer's) never gives a view what the stream does not hold.
        let stored = match settings.local_log.is_some() {
            true => js
                .get_stream(EVENTS_STREAM)
                .await
                .ok()
                .map(|s| s.cached_info().state.last_sequence),
            false => None,
        };
        if let (Some(mut log), Some(stored)) = (settings.local_log.clone(), stored) {
            log.read.keys = settings.keys.clone();
            let (w, stop) = (watch.clone(), shutdown.clone());
            let (p, a, result) = tokio::task::spawn_blocking(move || {
                let r = crate::bulk::catch_up(&mut projection, &log, stored, &w, &applied, &stop);
                (projection, applied, r)
            })
            .await
            .map_err(|e| FeedError::Projection(e.to_string()))?;
            (projection, applied) = (p, a);
            bulk_tried = std::time::Instant::now();
            if let Err(e) = result {
                warn!(projection = projection.name(), error = %e, "catching up in bulk failed; following the stream instead");
            }
            if *shutdown.borrow() {
                return Ok(projection);
            }
        }
        let from = projection.position() + 1;
        let (stream, name, mut messages) = match open(&js, &subjects, from, &settings).await {
            Ok(m) => m,
            Err(e) => {
                warn!(projection = projection.name(), error = %e, "cannot follow the events yet; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    _ = shutdown.changed() => return Ok(projection),
                }
            }
        };
        info!(projection = projection.name(), position = from - 1, consumer = %name, "following events");
        let file = projection.file().clone();
        let mut batches = 0u64;
        loop {
            let frozen = freeze_after.is_some_and(|n| batches >= n);
            let chunk = tokio::select! {
                c = messages.next(), if !frozen => c,
                _ = watch.restart_asked() => break,
                reason = file.damaged() => {
                    rebuild(&mut projection, &applied, &reason, &mut backoff, &shutdown).await;
                    break;
                }
                _ = shutdown.changed() => {
                    let _ = stream.delete_consumer(&name).await;
                    return Ok(projection);
                }
            };
            let Some(chunk) = chunk else { break };
            batches += 1;
            let mut batch = Vec::with_capacity(chunk.len());
            let mut broken = false;
            for msg in chunk {
                use consumer::pull::MessagesErrorKind as Kind;
                let read = match msg {
                    Ok(m) => {
                        serde_json::from_slice::<Envelope>(&m.payload).map_err(|e| format!("not an envelope: {e}"))
                    }
                    Err(e) if matches!(e.kind(), Kind::ConsumerDeleted | Kind::MissingHeartbeat) => {
                        watch.lost_consumer(projection.name(), projection.position(), &e.to_string());
                        broken = true;
                        break;
                    }
                    Err(e) => Err(e.to_string()),
                };
                match read {
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
                let keys = settings.keys.clone();
                let (p, result) = tokio::task::spawn_blocking(move || {
                    let forgets = batch.iter().any(|e| e.event_type == "UserForgotten");
                    let r = crate::apply_revealed(&mut projection, &batch, keys.as_deref())
                        .map_err(|e| (P::is_damage(&e), e.to_string()));
                    if forgets && r.is_ok() {
                        checkpoint_truncate(&projection);
                    }
                    (projection, r)
                })
                .await
                .map_err(|e| FeedError::Projection(e.to_string()))?;
                projection = p;
                if let Err((true, e)) = result {
                    rebuild(&mut projection, &applied, &e, &mut backoff, &shutdown).await;
                    break;
                }
                if let Err((false, e)) = result {
                    // Nothing of the batch was stored; take it again from the projection's position.
                    warn!(projection = projection.name(), error = %e, "applying events failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
                let _ = applied.send(projection.position());
                // Far behind with the log at hand: drop the consumer and catch up in bulk.
                if let Some(log) = &settings.local_log {
                    let far = watch.head().saturating_sub(projection.position()) >= log.min_lag;
                    if far && bulk_tried.elapsed() >= Duration::from_secs(2) {
                        info!(
                            projection = projection.name(),
                            position = projection.position(),
                            head = watch.head(),
                            "far behind; catching up in bulk"
                        );
                        break;
                    }
                }
            }
            if broken {
                break;
            }
        }
        if freeze_after.is_some_and(|n| batches >= n) {
            freeze_after = None;
        }
        // An ephemeral consumer would linger until its inactivity threshold; delete it now.
        let _ = stream.delete_consumer(&name).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// After a forget: the WAL's frames (the rows as they were before the rewrite) are copied into
/// the file, whose freed content `secure_delete` zeroes, and the WAL is cut to nothing. Readers
/// in the middle of a read can hold it up: then it is logged, and the next forget tries again.
fn checkpoint_truncate<P: Projection>(projection: &P) {
    let done = projection
        .store()
        .conn()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0));
    match done {
        Ok(0) => info!(
            projection = projection.name(),
            "forgotten: the WAL is checkpointed and truncated"
        ),
        Ok(_) => warn!(
            projection = projection.name(),
            "forgotten, but a reader kept the WAL from being truncated"
        ),
        Err(e) => warn!(projection = projection.name(), error = %e, "checkpointing the WAL after a forget failed"),
    }
}

type Chunks = futures::stream::ReadyChunks<jetstream::consumer::pull::Stream>;

/// A fresh ephemeral pull consumer from `from`, without acks (the checkpoint is the cursor).
async fn open(
    js: &jetstream::Context,
    subjects: &Subjects,
    from: u64,
    settings: &FeedSettings,
) -> Result<(jetstream::stream::Stream, String, Chunks), FeedError> {
    let stream = js
        .get_stream(EVENTS_STREAM)
        .await
        .map_err(|e| FeedError::Nats(e.into()))?;
    let consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: subjects.all_events(),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: from },
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .map_err(|e| FeedError::Nats(e.into()))?;
    let name = consumer.cached_info().name.clone();
    let messages = consumer
        .stream()
        .max_messages_per_batch(BATCH)
        .heartbeat(settings.heartbeat)
        .expires(settings.heartbeat * 5)
        .messages()
        .await
        .map_err(|e| FeedError::Nats(e.into()))?;
    Ok((stream, name, messages.ready_chunks(BATCH)))
}
