//! The outbox relay: publishes every committed event to the JetStream stream `INVITES_EVENTS`
//! in position order, with `Nats-Msg-Id: <position>`.
//!
//! The writer hands each committed batch to the relay in memory ([`RelayFeed`]); whenever the
//! relay finds a gap (it started behind, fell behind, or a batch was dropped because it was
//! slow) it reads the missing positions from the log instead, through a read-only [`LogReader`].
//! The relay's checkpoint is written by the writer inside its next batch (and when it stops):
//! no second writer on the file, the relay only reports its position on [`Relay::published`].
//! On start the relay also reads the position of the stream's last message, so nothing is
//! published twice even when the checkpoint lags, and a crash between commit and publish only
//! delays an event. After a failed round it goes on from the last position JetStream
//! acknowledged, never from the stream's last message (a later one may be stored while an
//! earlier one was lost).

use crate::error::LogError;
use crate::query::Published;
use crate::read::LogReader;
use crate::RELAY_CHECKPOINT;
use async_nats::jetstream::{self, stream};
use invitebus_events::subject::{Subjects, EVENTS_STREAM};
use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

/// Events published per round; also the most acks in flight.
pub const RELAY_BATCH: usize = 1000;
/// A publishing round with no progress for this long is abandoned and retried from the last
/// acknowledged position (acks themselves time out after 5 s inside a round).
pub const RELAY_STALL: Duration = Duration::from_secs(10);
/// Committed batches the writer may hand over before the relay must catch up from the log.
pub const FEED_DEPTH: usize = 256;

/// The writer's end of the in-memory feed.
pub type RelayFeed = mpsc::Sender<Vec<Published>>;

/// Makes the feed: the writer keeps the sender, the relay the receiver.
pub fn feed() -> (RelayFeed, mpsc::Receiver<Vec<Published>>) {
    mpsc::channel(FEED_DEPTH)
}

/// What the relay needs: where the log is, where to publish, and what the writer committed.
pub struct Relay {
    pub log_path: PathBuf,
    pub jetstream: jetstream::Context,
    pub subjects: Subjects,
    /// Committed batches from the writer; closed when the writer stops.
    pub feed: mpsc::Receiver<Vec<Published>>,
    /// The relay reports each position it has published here (health, tests, the writer's checkpoint).
    pub published: watch::Sender<u64>,
}

/// Why the relay stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Log(#[from] LogError),
    /// JetStream refused, did not acknowledge, or did not answer; the cause is kept.
    #[error("jetstream: {0}")]
    Nats(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Creates `INVITES_EVENTS` (file storage) when missing.
pub async fn ensure_events_stream(js: &jetstream::Context, subjects: &Subjects) -> Result<stream::Stream, RelayError> {
    js.get_or_create_stream(stream::Config {
        name: EVENTS_STREAM.to_string(),
        subjects: vec![subjects.all_events()],
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        num_replicas: subjects.replicas(),
        ..Default::default()
    })
    .await
    .map_err(|e| RelayError::Nats(e.into()))
}

/// The position carried by the stream's last message, 0 when it is empty.
async fn last_published(stream: &mut stream::Stream) -> Result<u64, RelayError> {
    let info = stream.info().await.map_err(|e| RelayError::Nats(e.into()))?;
    let last = info.state.last_sequence;
    if info.state.messages == 0 || last == 0 {
        return Ok(0);
    }
    let msg = stream
        .get_raw_message(last)
        .await
        .map_err(|e| RelayError::Nats(e.into()))?;
    Ok(msg
        .headers
        .get("Nats-Msg-Id")
        .and_then(|v| v.as_str().parse::<u64>().ok())
        .unwrap_or(0))
}

/// Where the relay starts: its checkpoint, moved forward to what the stream already holds (never
/// past the log's head). Not stored here (the reader is read-only): the relay reports it on
/// `published`, and the writer stores it with its next batch.
fn start_position(reader: &LogReader, in_stream: u64) -> Result<u64, RelayError> {
    let checkpoint = reader.checkpoint(RELAY_CHECKPOINT)?;
    Ok(checkpoint.max(in_stream.min(reader.head()?)))
}

impl Relay {
    /// Runs until the writer has stopped and everything committed is published, or `shutdown`
    /// fires. NATS errors are retried with back-off; they never lose an event.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), RelayError> {
        let reader = LogReader::open(&self.log_path)?;
        let mut published = loop {
            match self.in_stream().await {
                Ok(p) => break start_position(&reader, p)?,
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
        let client = self.jetstream.client();
        let inbox = client.new_inbox();
        let mut acks = client
            .subscribe(format!("{inbox}.*"))
            .await
            .map_err(|e| RelayError::Nats(e.into()))?;
        let mut buffer: VecDeque<Published> = VecDeque::new();
        let mut writer_done = false;
        let mut backoff = Duration::from_millis(100);
        loop {
            while let Ok(batch) = self.feed.try_recv() {
                buffer.extend(batch);
            }
            while buffer.front().is_some_and(|e| e.position <= published) {
                buffer.pop_front();
            }
            let rows: Vec<Published> = if buffer.front().is_some_and(|e| e.position == published + 1) {
                // Only the run without holes: the writer drops a batch when this feed is full, so
                // the buffer can jump; what follows a hole is read from the log next round.
                let limit = buffer.len().min(RELAY_BATCH);
                let n = (0..limit)
                    .take_while(|&i| buffer[i].position == published + 1 + i as u64)
                    .count();
                buffer.drain(..n).collect()
            } else {
                // A gap, or nothing in memory: the log has whatever the feed did not bring.
                reader.read_published(published, RELAY_BATCH)?
            };
            if rows.is_empty() {
                if writer_done {
                    return Ok(());
                }
                tokio::select! {
                    batch = self.feed.recv() => match batch {
                        Some(batch) => buffer.extend(batch),
                        None => writer_done = true,
                    },
                    // Catches commits made by another process on the same file.
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
                continue;
            }
            let last = rows.last().map(|e| e.position).unwrap_or(published);
            let count = rows.len();
            // The relay's watchdog: a round that makes no progress for the bound (a publish that
            // blocks on a dead connection, acks that never come) is abandoned, counted, and the
            // relay goes on from the last position JetStream acknowledged.
            let mut waiting: BTreeSet<u64> = rows.iter().map(|r| r.position).collect();
            let round =
                tokio::time::timeout(RELAY_STALL, self.publish_all(rows, &mut acks, &inbox, &mut waiting)).await;
            // Rows are consecutive positions: all below the first unacknowledged one are stored.
            let acked_through = waiting.first().map_or(last, |first| first - 1);
            let round = round.unwrap_or_else(|_| {
                metrics::counter!("invitebus_relay_stalls_total").increment(1);
                Err(RelayError::Nats(
                    format!(
                        "no progress for {} s with the log ahead of the stream",
                        RELAY_STALL.as_secs()
                    )
                    .into(),
                ))
            });
            match round {
                Ok(()) => {
                    published = last;
                    let _ = self.published.send(published);
                    debug!(position = published, count, "relayed");
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    if acked_through > published {
                        published = acked_through;
                        let _ = self.published.send(published);
                    }
                    warn!(error = %e, position = published, "relay publish failed; retrying from the last acknowledged position");
                    buffer.clear();
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return Ok(()),
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    // Never on from the stream's last message: across a leader change a later
                    // position can be stored while an earlier one was lost. On from the run
                    // stored right after `published` (acks can be lost while the messages are
                    // not), so what is published again stays within the duplicate window.
                    let limit = reader.head()?.min(published + RELAY_BATCH as u64);
                    let stored = self.stored_after(published, limit).await;
                    if stored > published {
                        published = stored;
                        let _ = self.published.send(published);
                    }
                }
            }
        }
    }

    /// The last position of the unbroken run the stream holds right after `from` (up to
    /// `limit`), each message checked by its `Nats-Msg-Id`: on invitebus's stream sequence =
    /// position, so message `p` is position `p`; where that fails the run ends, and the relay
    /// publishes from there (the stream is made again if it went missing).
    async fn stored_after(&self, from: u64, limit: u64) -> u64 {
        let stream = match ensure_events_stream(&self.jetstream, &self.subjects).await {
            Ok(stream) => stream,
            Err(e) => {
                warn!(error = %e, "relay cannot reach JetStream");
                return from;
            }
        };
        let mut at = from;
        while at < limit {
            let next = at + 1;
            match stream.get_raw_message(next).await {
                Ok(m)
                    if m.headers
                        .get("Nats-Msg-Id")
                        .and_then(|v| v.as_str().parse::<u64>().ok())
                        == Some(next) =>
                {
                    at = next;
                }
                _ => break,
            }
        }
        at
    }

    /// The position of the stream's last message (creating the stream when missing).
    async fn in_stream(&self) -> Result<u64, RelayError> {
        let mut stream = ensure_events_stream(&self.jetstream, &self.subjects).await?;
        last_published(&mut stream).await
    }

    /// Publishes `rows` with every ack in flight at once (each ack comes back on
    /// `<inbox>.<position>` of one subscription), then waits until every position is acknowledged;
    /// each acknowledged one leaves `waiting`, also when the round fails.
    async fn publish_all(
        &self,
        rows: Vec<Published>,
        acks: &mut async_nats::Subscriber,
        inbox: &str,
        waiting: &mut BTreeSet<u64>,
    ) -> Result<(), RelayError> {
        let client = self.jetstream.client();
        for env in rows {
            let subject = self.subjects.event(&env.event_type, &env.stream_id);
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", env.position.to_string().as_str());
            if let Some(t) = &env.traceparent {
                headers.insert(invitebus_events::trace::TRACEPARENT, t.as_str());
            }
            client
                .publish_with_reply_and_headers(
                    subject,
                    format!("{inbox}.{}", env.position),
                    headers,
                    env.payload.into(),
                )
                .await
                .map_err(|e| RelayError::Nats(e.into()))?;
        }
        use futures::StreamExt;
        while !waiting.is_empty() {
            let msg = match tokio::time::timeout(Duration::from_secs(5), acks.next()).await {
                Ok(Some(m)) => m,
                Ok(None) => return Err(RelayError::Nats("ack subscription closed".into())),
                Err(_) => {
                    return Err(RelayError::Nats(
                        format!("{} acks missing after 5 s", waiting.len()).into(),
                    ))
                }
            };
            let position = msg
                .subject
                .as_str()
                .rsplit('.')
                .next()
                .and_then(|p| p.parse::<u64>().ok());
            let ack: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap_or(serde_json::Value::Null);
            if ack.get("error").is_some() || ack.get("seq").is_none() {
                return Err(RelayError::Nats(
                    format!("JetStream refused position {position:?}: {ack}").into(),
                ));
            }
            if let Some(p) = position {
                waiting.remove(&p);
            }
        }
        Ok(())
    }
}
