//! The outbox relay: publishes every committed event to the JetStream stream `INVITES_EVENTS`
//! in position order, with `Nats-Msg-Id: <position>`, and keeps its checkpoint in the log file.
//!
//! A crash between commit and publish only delays an event: the relay starts again from its
//! checkpoint, JetStream drops a repeated `Nats-Msg-Id` inside its duplicate window, and on start
//! the relay also reads the position of the stream's last message, so nothing is published twice
//! even after the window has passed.

use crate::error::LogError;
use crate::read::LogReader;
use crate::read::Published;
use crate::RELAY_CHECKPOINT;
use async_nats::jetstream::{self, message::PublishMessage, stream};
use invitebus_events::subject::{Subjects, EVENTS_STREAM};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// Events read and published per round; also the most acks in flight.
pub const RELAY_BATCH: usize = 1000;

/// What the relay needs: where the log is, where to publish, and how to learn of new commits.
pub struct Relay {
    pub log_path: PathBuf,
    pub jetstream: jetstream::Context,
    pub subjects: Subjects,
    /// The writer's head position; a change wakes the relay.
    pub head: watch::Receiver<u64>,
    /// The relay reports each position it has published here (for health and tests).
    pub published: watch::Sender<u64>,
}

/// Why the relay stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("jetstream: {0}")]
    Nats(String),
}

/// Creates `INVITES_EVENTS` (file storage) when missing.
pub async fn ensure_events_stream(js: &jetstream::Context, subjects: &Subjects) -> Result<stream::Stream, RelayError> {
    js.get_or_create_stream(stream::Config {
        name: EVENTS_STREAM.to_string(),
        subjects: vec![subjects.all_events()],
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(|e| RelayError::Nats(e.to_string()))
}

/// The position carried by the stream's last message, 0 when it is empty.
async fn last_published(stream: &mut stream::Stream) -> Result<u64, RelayError> {
    let info = stream.info().await.map_err(|e| RelayError::Nats(e.to_string()))?;
    let last = info.state.last_sequence;
    if info.state.messages == 0 || last == 0 {
        return Ok(0);
    }
    let msg = stream
        .get_raw_message(last)
        .await
        .map_err(|e| RelayError::Nats(e.to_string()))?;
    let from_header = msg
        .headers
        .get("Nats-Msg-Id")
        .and_then(|v| v.as_str().parse::<u64>().ok());
    Ok(from_header.unwrap_or(0))
}

/// The checkpoint, moved forward to what the stream already holds (never past the log's head).
fn sync_checkpoint(reader: &LogReader, in_stream: u64) -> Result<u64, RelayError> {
    let checkpoint = reader.checkpoint(RELAY_CHECKPOINT)?;
    let position = checkpoint.max(in_stream.min(reader.head()?));
    if position != checkpoint {
        reader.set_checkpoint(RELAY_CHECKPOINT, position)?;
    }
    Ok(position)
}

impl Relay {
    /// Runs until the head channel closes (the writer stopped) and everything is published, or
    /// `shutdown` fires. NATS errors are retried with back-off; they never lose an event.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), RelayError> {
        let reader = LogReader::open(&self.log_path)?;
        let mut published = loop {
            match self.in_stream().await {
                Ok(p) => break sync_checkpoint(&reader, p)?,
                Err(e) => {
                    warn!(error = %e, "relay cannot reach JetStream yet; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = shutdown.changed() => return Ok(()),
                    }
                }
            }
        };
        let _ = self.published.send(published);
        info!(position = published, "relay starts");
        let mut backoff = Duration::from_millis(100);
        loop {
            let rows = reader.read_published(published, RELAY_BATCH)?;
            if rows.is_empty() {
                let head_closed = tokio::select! {
                    r = self.head.changed() => r.is_err(),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => false,
                    _ = shutdown.changed() => return Ok(()),
                };
                if head_closed && reader.read_from(published, 1)?.is_empty() {
                    return Ok(());
                }
                continue;
            }
            let last = rows.last().map(|e| e.position).unwrap_or(published);
            let count = rows.len();
            match self.publish_all(rows).await {
                Ok(()) => {
                    published = last;
                    reader.set_checkpoint(RELAY_CHECKPOINT, published)?;
                    let _ = self.published.send(published);
                    debug!(position = published, count, "relayed");
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    warn!(error = %e, position = published, "relay publish failed; retrying from checkpoint");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return Ok(()),
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    if let Ok(p) = self.in_stream().await {
                        published = sync_checkpoint(&reader, p)?;
                    }
                }
            }
        }
    }

    /// The position of the stream's last message (creating the stream when missing).
    async fn in_stream(&self) -> Result<u64, RelayError> {
        let mut stream = ensure_events_stream(&self.jetstream, &self.subjects).await?;
        last_published(&mut stream).await
    }

    /// Publishes `rows` with every ack in flight at once, then waits for each, in order.
    async fn publish_all(&self, rows: Vec<Published>) -> Result<(), RelayError> {
        let mut acks = Vec::with_capacity(rows.len());
        for env in rows {
            let subject = self.subjects.event(&env.event_type, &env.stream_id);
            let publish = PublishMessage::build()
                .payload(env.payload.into())
                .message_id(env.position.to_string());
            let ack = self
                .jetstream
                .send_publish(subject, publish)
                .await
                .map_err(|e| RelayError::Nats(e.to_string()))?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await.map_err(|e| RelayError::Nats(e.to_string()))?;
        }
        Ok(())
    }
}
