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
//! acknowledged, never from the stream's last message.
//!
//! Fencing: each position `p` goes out with `Nats-Expected-Last-Sequence: p - 1` (sequence =
//! position on this stream), so JetStream refuses a position whose predecessor it does not hold
//! and anything a deposed writer publishes after another writer took over. On nats-server 2.9 a
//! message whose `Nats-Msg-Id` is still in the duplicate window is answered `duplicate` before
//! that check, whatever its body: a duplicate or a refusal counts as published only when the
//! message stored at that sequence carries this event's hash. When it carries another, the relay
//! stops with [`RelayError::Fenced`]: another writer owns the stream from there.

use crate::error::LogError;
use crate::query::Published;
use crate::read::LogReader;
use crate::stored::{Stamp, REST_HEADER, SPAN_HEADER};
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
    /// With standby writers: until when this instance holds the writer's lease (None: it does
    /// not). Past it the relay publishes nothing, so a leader paused past its lease does not
    /// depose the one that took over with what it committed before the pause.
    pub tenure: Option<watch::Receiver<Option<std::time::Instant>>>,
}

/// Why the relay stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Log(#[from] LogError),
    /// JetStream refused, did not acknowledge, or did not answer; the cause is kept.
    #[error("jetstream: {0}")]
    Nats(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The stream holds another writer's event at `position`: this log's events after `kept`
    /// were never published and never will be (the writer must step down and drop them).
    #[error("position {position} in INVITES_EVENTS is another writer's event (hash {theirs}, ours {ours}); this writer's log is published up to {kept} only")]
    Fenced {
        position: u64,
        kept: u64,
        ours: String,
        theirs: String,
    },
}

/// The header that carries a command's remembered reply on its last event.
pub const REPLY_HEADER: &str = "Invitebus-Reply";

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

async fn hash_at(stream: &stream::Stream, position: u64) -> Result<Option<String>, RelayError> {
    crate::stored::hash_at(stream, position)
        .await
        .map_err(|e| RelayError::Nats(e.into()))
}

/// Keeps in `rows` only whole commands (up to the last event that ends one) and returns the
/// rest, for the next round. A round that is part of one long command is kept whole.
fn whole_commands(rows: &mut Vec<Published>) -> Vec<Published> {
    match rows.iter().rposition(|e| e.ends_command) {
        Some(last) => rows.split_off(last + 1),
        None => Vec::new(),
    }
}

impl Relay {
    /// Runs until the writer has stopped and everything committed is published, or `shutdown`
    /// fires. NATS errors are retried with back-off; they never lose an event.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), RelayError> {
        let mut reader = LogReader::open(&self.log_path)?;
        let mut published = loop {
            match self.start_position(&mut reader).await {
                Ok(p) => break p,
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
                let mut rows: Vec<Published> = buffer.drain(..n).collect();
                for rest in whole_commands(&mut rows).into_iter().rev() {
                    buffer.push_front(rest);
                }
                rows
            } else {
                // A gap, or nothing in memory: the log has whatever the feed did not bring.
                let mut rows = reader.read_published(published, RELAY_BATCH)?;
                whole_commands(&mut rows);
                rows
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
            if self.tenure_over() {
                // No lease, no publishing: what this log holds beyond the stream is dropped when
                // the writer steps down. Wait for the lease to come back (or the stop).
                buffer.clear();
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
                if writer_done {
                    return Ok(());
                }
                continue;
            }
            let last = rows.last().map(|e| e.position).unwrap_or(published);
            let count = rows.len();
            // The relay's watchdog: a round that makes no progress for the bound (a publish that
            // blocks on a dead connection, acks that never come) is abandoned, counted, and the
            // relay goes on from the last position JetStream acknowledged.
            let mut waiting: BTreeSet<u64> = rows.iter().map(|r| r.position).collect();
            let resumed_from = match rows.first() {
                Some(r) if !r.starts_command => reader.command_start(r.position, 512)?,
                _ => None,
            };
            let round = tokio::time::timeout(RELAY_STALL, async {
                // The probe: the round's first position alone. Stored fresh (not a duplicate),
                // it proves the stream ended at this log's last published event, so the rest
                // may follow with every ack in flight. Without it a deposed writer's position
                // answered `duplicate` could be followed by one whose expected sequence matches
                // the other writer's event: a fork. One round trip per round (a round is up to
                // RELAY_BATCH events; at low rates a round is that one event anyway).
                let stamps = crate::stored::stamps(&rows, resumed_from);
                let mut rows = rows.into_iter().zip(stamps);
                let probe: Vec<_> = rows.by_ref().take(1).collect();
                self.publish_all(probe, &mut acks, &inbox, &mut waiting).await?;
                self.publish_all(rows.collect(), &mut acks, &inbox, &mut waiting).await
            })
            .await;
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
                    let ours = reader.read_published(published, RELAY_BATCH)?;
                    let stored = self.stored_after(published, &ours).await?;
                    if stored > published {
                        published = stored;
                        let _ = self.published.send(published);
                    }
                }
            }
        }
    }

    /// The last position of the unbroken run of `ours` (the log's events right after `from`)
    /// that the stream holds, each message checked by its hash: on invitebus's stream sequence =
    /// position, so message `p` must be position `p`. Where the stream holds nothing the run ends
    /// and the relay publishes from there (the stream is made again if it went missing); where it
    /// holds another event, the stream belongs to another writer from there: [`RelayError::Fenced`].
    async fn stored_after(&self, from: u64, ours: &[Published]) -> Result<u64, RelayError> {
        let stream = match ensure_events_stream(&self.jetstream, &self.subjects).await {
            Ok(stream) => stream,
            Err(e) => {
                warn!(error = %e, "relay cannot reach JetStream");
                return Ok(from);
            }
        };
        let mut at = from;
        for event in ours {
            let theirs = match hash_at(&stream, event.position).await {
                Ok(Some(theirs)) => theirs,
                Ok(None) => break,
                Err(e) => {
                    warn!(error = %e, position = event.position, "relay cannot read back the stream");
                    break;
                }
            };
            if theirs != event.hash {
                metrics::counter!("invitebus_relay_fenced_total").increment(1);
                return Err(RelayError::Fenced {
                    position: event.position,
                    kept: at,
                    ours: event.hash.clone(),
                    theirs,
                });
            }
            at = event.position;
        }
        Ok(at)
    }

    /// True when this relay runs under a lease whose tenure is over.
    fn tenure_over(&self) -> bool {
        self.tenure
            .as_ref()
            .is_some_and(|t| t.borrow().is_none_or(|until| std::time::Instant::now() >= until))
    }

    /// Where the relay starts: its checkpoint, moved forward to what the stream already holds of
    /// this log (never past the log's head). The chain makes one read enough: the stream's event
    /// at `q` carrying this log's hash at `q` means the stream holds this log's `1..=q`. When it
    /// carries another, the relay starts at its checkpoint and its first publish is refused, which
    /// finds where the stream and the log part. Not stored here (the reader is read-only): the
    /// relay reports it on `published`, and the writer stores it with its next batch.
    async fn start_position(&self, reader: &mut LogReader) -> Result<u64, RelayError> {
        let mut stream = ensure_events_stream(&self.jetstream, &self.subjects).await?;
        let last = stream
            .info()
            .await
            .map_err(|e| RelayError::Nats(e.into()))?
            .state
            .last_sequence;
        // `&mut`: a reader is Send, not Sync, so only an exclusive borrow may cross an await.
        let (checkpoint, q, ours) = {
            let checkpoint = reader.checkpoint(RELAY_CHECKPOINT)?;
            let q = last.min(reader.head()?);
            let ours = match q > checkpoint {
                true => reader.read_published(q - 1, 1)?.into_iter().next().map(|e| e.hash),
                false => None,
            };
            (checkpoint, q, ours)
        };
        let Some(ours) = ours else { return Ok(checkpoint) };
        match hash_at(&stream, q).await? {
            Some(theirs) if ours == theirs => Ok(q),
            _ => Ok(checkpoint),
        }
    }

    /// Publishes `rows` with every ack in flight at once (each ack comes back on
    /// `<inbox>.<position>` of one subscription), then waits until each of them is acknowledged;
    /// each acknowledged one leaves `waiting`, also when the round fails. A refusal, or a
    /// duplicate (which may be another writer's event), ends the round: the caller reads back.
    async fn publish_all(
        &self,
        rows: Vec<(Published, Option<Stamp>)>,
        acks: &mut async_nats::Subscriber,
        inbox: &str,
        waiting: &mut BTreeSet<u64>,
    ) -> Result<(), RelayError> {
        let client = self.jetstream.client();
        let (first, last) = match (rows.first(), rows.last()) {
            (Some((f, _)), Some((l, _))) => (f.position, l.position),
            _ => return Ok(()),
        };
        let mut between_commands = true;
        for (env, stamp) in rows {
            // Per command, not only per round: a holder paused mid-round must not go on
            // publishing when it resumes; never inside a command, which would leave half of it
            // in the stream. (What the client already queued still goes out: PROTOCOL.md,
            // "Standby writers", says what that can do.)
            if between_commands && self.tenure_over() {
                return Err(RelayError::Nats("the writer's lease tenure ran out mid-round".into()));
            }
            between_commands = env.ends_command;
            let subject = self.subjects.event(&env.event_type, &env.stream_id);
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", env.position.to_string().as_str());
            headers.insert("Nats-Expected-Last-Sequence", (env.position - 1).to_string().as_str());
            if let Some(reply) = &env.reply {
                headers.insert(REPLY_HEADER, reply.as_str());
            }
            if let Some(t) = &env.traceparent {
                headers.insert(invitebus_events::trace::TRACEPARENT, t.as_str());
            }
            if let Some(stamp) = stamp {
                headers.insert(SPAN_HEADER, stamp.span.as_str());
                if let Some(rest) = &stamp.rest {
                    headers.insert(REST_HEADER, rest.as_str());
                }
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
        while waiting.range(first..=last).next().is_some() {
            let msg = match tokio::time::timeout(Duration::from_secs(5), acks.next()).await {
                Ok(Some(m)) => m,
                Ok(None) => return Err(RelayError::Nats("ack subscription closed".into())),
                Err(_) => {
                    return Err(RelayError::Nats(
                        format!("{} acks missing after 5 s", waiting.range(first..=last).count()).into(),
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
            // Answered before the expected-sequence check: the round ends here and the recovery
            // reads back what the stream holds at that sequence (ours, or another writer's).
            if ack.get("duplicate").and_then(|d| d.as_bool()) == Some(true) {
                return Err(RelayError::Nats(
                    format!("position {position:?} answered as a duplicate: checking what the stream holds").into(),
                ));
            }
            if let Some(p) = position {
                waiting.remove(&p);
            }
        }
        Ok(())
    }
}
