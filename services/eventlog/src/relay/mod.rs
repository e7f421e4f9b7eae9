//! The outbox relay: publishes every committed event to the JetStream stream `INVITES_EVENTS`
//! in position order, with `Nats-Msg-Id: <position>`.
//!
//! The writer hands each committed batch to the relay in memory ([`RelayFeed`]); whenever the
//! relay finds a gap (it started behind, fell behind, or a batch was dropped because it was
//! slow) it reads the missing positions from the log instead, through a read-only [`LogReader`].
//! Publishing is pipelined ([`flight`]): up to [`RELAY_WINDOW`] messages in flight, and the
//! published position moves with each ack, not at the end of a round.
//! The relay's checkpoint is written by the writer inside its next batch (a second after the
//! relay moves when no batch comes, and when it stops):
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
//! stops with [`RelayError::Fenced`]: another writer owns the stream from there. So that a
//! duplicate can never be followed by a message whose expected sequence matches another
//! writer's event, each session (a start, a failure, a lapse of the lease) opens with one
//! message alone, the probe, and sends the rest only once it is stored fresh.

mod flight;
mod outbox;
mod streams;
pub use flight::RELAY_WINDOW;
pub use streams::{ensure_events_stream, ensure_rests_stream};

use crate::error::LogError;
use crate::query::Published;
use crate::read::LogReader;
use crate::stored::{Stamp, REST_HEADER, REST_MAX, REST_PARTS_HEADER, SPAN_HEADER};
use async_nats::jetstream;
use flight::Flight;
use futures::{FutureExt, StreamExt};
use invitebus_events::subject::Subjects;
use outbox::Outbox;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

/// Events read from the log, or stamped, at once.
pub const RELAY_BATCH: usize = 1000;
/// A publish that cannot even be handed to the client for this long (a dead connection ends
/// the session, counted as a stall, and the relay goes on from the last acknowledged position.
pub const RELAY_STALL: Duration = Duration::from_secs(10);
/// Messages in flight with no ack for this long end the session the same way.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Back-off between two sessions of a relay that failed, doubling up to [`RESTART_MAX`].
const RESTART_MIN: Duration = Duration::from_millis(200);
const RESTART_MAX: Duration = Duration::from_secs(30);
/// Attempts (each a session, with the relay's back-off) to store one command's rest before its
/// first event goes out without it.
const REST_TRIES: u32 = 5;
/// How long `INVITES_RESTS` keeps a rest.
pub const RESTS_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// How far back a relay resuming inside a command looks for where it began (more than the
/// largest command: 500 invitees make about 1,000 events).
const COMMAND_SCAN: u64 = 4096;
/// Events taken from the writer's feed and not yet sent; past it the feed is left to fill (the
/// writer then drops batches) and the relay reads from the log.
const QUEUE_CAP: usize = 16 * RELAY_BATCH;
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

/// How the sending part of a turn ended.
enum Sending {
    /// Everything the log holds past the last position sent is out (or nothing is to send).
    Done,
    /// The window (or the probe) allows no more until acks come back.
    Full,
    /// The lease's tenure is over: nothing more goes out until it is back.
    Paused,
}

impl Relay {
    /// Runs until the writer has stopped and everything committed is published, `shutdown`
    /// fires, or another writer owns the stream ([`RelayError::Fenced`], the only error it
    /// returns). Any other failure (the log unreadable for a while, the ack subscription refused)
    /// ends the session, logged at error level and counted (`invitebus_relay_restarts_total`),
    /// and a new one starts from the log after a back-off: a relay never stops publishing
    /// silently, and health says `stalled` meanwhile.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), RelayError> {
        let mut backoff = RESTART_MIN;
        loop {
            let began = std::time::Instant::now();
            match self.session(&mut shutdown).await {
                Ok(()) => return Ok(()),
                Err(e @ RelayError::Fenced { .. }) => return Err(e),
                Err(e) => {
                    metrics::counter!("invitebus_relay_restarts_total").increment(1);
                    // A session that ran for a while earns a quick restart again.
                    if began.elapsed() > RESTART_MAX * 2 {
                        backoff = RESTART_MIN;
                    }
                    error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "relay failed; starting again from the log");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return Ok(()),
                    }
                    backoff = (backoff * 2).min(RESTART_MAX);
                }
            }
        }
    }

    /// One session: from where the stream and the log agree, publishing until done, stopped or
    /// failed. NATS errors within it are retried with back-off; they never lose an event.
    async fn session(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<(), RelayError> {
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
            .subscribe(format!("{inbox}.>"))
            .await
            .map_err(|e| RelayError::Nats(e.into()))?;
        let mut out = Outbox::default();
        let mut flight = Flight::new(0, published);
        let mut writer_done = false;
        let mut backoff = Duration::from_millis(100);
        loop {
            while let Ok(batch) = self.feed.try_recv() {
                out.queue.extend(batch);
            }
            let outcome = match self.send_ready(&mut reader, &mut out, &mut flight, &inbox).await {
                Err(e) => Err(e),
                Ok(sending) => {
                    let paused = matches!(sending, Sending::Paused);
                    if paused {
                        // No lease, no publishing: what this log holds beyond the stream is
                        // dropped when the writer steps down, or re-read (and probed again) when
                        // the lease comes back.
                        out.clear();
                        if flight.settled() {
                            flight = Flight::new(flight.session + 1, flight.sent);
                        }
                    }
                    let drained = matches!(sending, Sending::Done) || paused;
                    if writer_done && drained && flight.settled() {
                        return Ok(());
                    }
                    let idle = flight.settled() && matches!(sending, Sending::Done);
                    let deadline = tokio::time::Instant::from_std(flight.since + ACK_TIMEOUT);
                    tokio::select! {
                        msg = acks.next(), if !flight.settled() => match msg {
                            Some(msg) => take_acks(msg, &mut acks, &mut flight),
                            None => Err(RelayError::Nats("ack subscription closed".into())),
                        },
                        batch = self.feed.recv(), if !writer_done && out.queue.len() < QUEUE_CAP => {
                            match batch {
                                Some(batch) => out.queue.extend(batch),
                                None => writer_done = true,
                            }
                            Ok(())
                        }
                        // Catches commits made by another process on the same file.
                        _ = tokio::time::sleep(Duration::from_secs(1)), if idle => Ok(()),
                        _ = tokio::time::sleep(Duration::from_millis(100)), if paused => Ok(()),
                        // The relay's watchdog: acks that stop coming (a dead connection, a
                        // server that lost its quorum) end the session, counted.
                        _ = tokio::time::sleep_until(deadline), if !flight.settled() => {
                            metrics::counter!("invitebus_relay_stalls_total").increment(1);
                            Err(RelayError::Nats(format!(
                                "no ack for {} s with the log ahead of the stream",
                                ACK_TIMEOUT.as_secs()
                            ).into()))
                        }
                        _ = shutdown.changed() => return Ok(()),
                    }
                }
            };
            // Positions are sent in order: all below the first unacknowledged one are stored.
            let through = flight.acked_through();
            if through > published {
                published = through;
                let _ = self.published.send(published);
                debug!(position = published, "relayed");
                backoff = Duration::from_millis(100);
            }
            let Err(e) = outcome else { continue };
            warn!(error = %e, position = published, "relay publish failed; retrying from the last acknowledged position");
            out.clear();
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return Ok(()),
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
            // Never on from the stream's last message: across a leader change a later position
            // can be stored while an earlier one was lost. On from the run stored right after
            // `published` (acks can be lost while the messages are not), so what is published
            // again stays within the duplicate window.
            // A stream that lost what was published (deleted under a running relay) refuses
            // every publish for ever: end the session, so the next one starts from what the
            // stream holds ([`Relay::start_position`]).
            if let Some(last) = self.stream_short_of(published).await {
                return Err(RelayError::Nats(
                    format!("INVITES_EVENTS ends at {last}, short of position {published} this relay had published")
                        .into(),
                ));
            }
            let ours = reader.read_published(published, RELAY_BATCH)?;
            let stored = self.stored_after(published, &ours).await?;
            if stored > published {
                published = stored;
                let _ = self.published.send(published);
            }
            flight = Flight::new(flight.session + 1, published);
        }
    }

    /// Sends what the window allows, a chunk of whole commands at a time, each position with
    /// its fencing headers; stops between two commands once the lease's tenure is over.
    async fn send_ready(
        &self,
        reader: &mut LogReader,
        out: &mut Outbox,
        flight: &mut Flight,
        inbox: &str,
    ) -> Result<Sending, RelayError> {
        let client = self.jetstream.client();
        while flight.room() > 0 {
            // A holder paused past its lease must not go on publishing when it resumes, not
            // even the rest of a command: the writer that took over completes a command the
            // stream holds part of from its first event's rest, with these very events.
            // Checked before anything is read, and again right before each publish.
            if self.tenure_over() {
                return Ok(Sending::Paused);
            }
            if out.pending.is_empty() {
                let rows = out.next_rows(reader, flight.sent)?;
                if rows.is_empty() {
                    return Ok(Sending::Done);
                }
                let resumed_from = match rows.first() {
                    Some(r) if !r.starts_command => reader.command_start(r.position, COMMAND_SCAN)?,
                    _ => None,
                };
                let stamps = crate::stored::stamps(&rows, resumed_from);
                out.pending.extend(rows.into_iter().zip(stamps));
            }
            let Some((env, mut stamp)) = out.pending.pop_front() else {
                break;
            };
            let position = env.position;
            let parts = match stamp.as_ref().and_then(|s| s.rest.as_deref()) {
                Some(rest) if rest.len() > REST_MAX => match self.store_rest(&env.hash, rest).await {
                    Ok(parts) => Some(parts),
                    Err(e) if out.rest_failed(position) < REST_TRIES => return Err(e),
                    // Never a relay stuck on one command (a stream it may not write, a limit):
                    // it goes out as before rests were stored, said loudly.
                    Err(e) => {
                        tracing::error!(position, error = %e, "the rest of a large command could not be stored in INVITES_RESTS: its first event goes out without it, and a writer change before the command is whole would leave it partial");
                        metrics::counter!("invitebus_relay_rests_unstored_total").increment(1);
                        if let Some(s) = stamp.as_mut() {
                            s.rest = None;
                        }
                        None
                    }
                },
                _ => None,
            };
            // Storing a rest can take seconds: the lease is checked again before the event.
            if parts.is_some() && self.tenure_over() {
                return Ok(Sending::Paused);
            }
            let (subject, headers, payload) = self.message(env, stamp, parts);
            let reply_to = flight.reply_to(inbox, position);
            // Under a lease each message is flushed to the socket before the next is handed
            // over, so at most one is ever queued inside this process: a holder paused past its
            // lease cannot send a run of stale messages when it resumes, which could fork the
            // stream (what the kernel holds goes out during the pause). PROTOCOL.md, "Standby
            // writers". A single writer has nobody to fork with and does not pay for it.
            let publish = async {
                client
                    .publish_with_reply_and_headers(subject, reply_to, headers, payload.into())
                    .await
                    .map_err(|e| RelayError::Nats(e.into()))?;
                match self.tenure.is_some() {
                    true => client.flush().await.map_err(|e| RelayError::Nats(e.into())),
                    false => Ok(()),
                }
            };
            match tokio::time::timeout(RELAY_STALL, publish).await {
                Ok(sent) => sent?,
                Err(_) => {
                    metrics::counter!("invitebus_relay_stalls_total").increment(1);
                    return Err(RelayError::Nats(
                        format!("a publish blocked for {} s", RELAY_STALL.as_secs()).into(),
                    ));
                }
            }
            flight.sent(position);
        }
        Ok(Sending::Full)
    }

    /// One position's message: its subject, its headers (`Nats-Msg-Id`, the fencing
    /// `Nats-Expected-Last-Sequence`, the reply, the trace, a command's span and rest) and body.
    fn message(
        &self,
        env: Published,
        stamp: Option<Stamp>,
        parts: Option<usize>,
    ) -> (String, async_nats::HeaderMap, Vec<u8>) {
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
            match (&stamp.rest, parts) {
                (Some(_), Some(parts)) => headers.insert(REST_PARTS_HEADER, parts.to_string().as_str()),
                (Some(rest), None) => headers.insert(REST_HEADER, rest.as_str()),
                (None, _) => {}
            }
        }
        (subject, headers, env.payload)
    }

    /// True when this relay runs under a lease whose tenure is over.
    fn tenure_over(&self) -> bool {
        self.tenure
            .as_ref()
            .is_some_and(|t| t.borrow().is_none_or(|until| std::time::Instant::now() >= until))
    }
}

/// Takes `first` and every ack already waiting behind it, so that a burst of acks moves the
/// published position (and wakes the held replies) once.
fn take_acks(
    first: async_nats::Message,
    acks: &mut async_nats::Subscriber,
    flight: &mut Flight,
) -> Result<(), RelayError> {
    flight.ack(first.subject.as_str(), &first.payload)?;
    while let Some(Some(msg)) = acks.next().now_or_never() {
        flight.ack(msg.subject.as_str(), &msg.payload)?;
    }
    Ok(())
}
