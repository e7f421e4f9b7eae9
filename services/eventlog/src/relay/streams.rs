//! Where the relay meets the streams: making `INVITES_EVENTS` and `INVITES_RESTS`, storing a
//! large command's rest, and reading back what the stream holds (where to start, and how far a
//! failed session's messages were stored after all).

use super::{Relay, RelayError, ACK_TIMEOUT, RESTS_MAX_AGE};
use crate::query::Published;
use crate::read::LogReader;
use crate::stored::REST_MAX;
use crate::RELAY_CHECKPOINT;
use async_nats::jetstream::{self, stream};
use invitebus_events::subject::{Subjects, EVENTS_STREAM, RESTS_STREAM};
use std::time::Duration;
use tracing::{error, warn};

/// Creates `INVITES_EVENTS` (file storage) when missing.
pub async fn ensure_events_stream(js: &jetstream::Context, subjects: &Subjects) -> Result<stream::Stream, RelayError> {
    ensure_stream(js, subjects, EVENTS_STREAM, subjects.all_events(), Duration::ZERO).await
}

/// Creates `INVITES_RESTS` (file storage) when missing. A rest matters only while the stream
/// ends inside its command, which a standby or a restore completes: kept for [`RESTS_MAX_AGE`].
pub async fn ensure_rests_stream(js: &jetstream::Context, subjects: &Subjects) -> Result<stream::Stream, RelayError> {
    ensure_stream(js, subjects, RESTS_STREAM, subjects.all_rests(), RESTS_MAX_AGE).await
}

/// One of the relay's streams: file storage, a 2-minute duplicate window, `--replicas` copies,
/// kept for `max_age` (zero: for ever).
async fn ensure_stream(
    js: &jetstream::Context,
    subjects: &Subjects,
    name: &str,
    subject: String,
    max_age: Duration,
) -> Result<stream::Stream, RelayError> {
    js.get_or_create_stream(stream::Config {
        name: name.to_string(),
        subjects: vec![subject],
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        max_age,
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

impl Relay {
    /// Stores a rest too large for a header in `INVITES_RESTS`, in parts of [`REST_MAX`], each
    /// acknowledged before its command's first event goes out; returns how many parts. Each
    /// part's id is `<hash>.<part>`, so a session that sends them again stores nothing twice.
    pub(super) async fn store_rest(&self, first_hash: &str, rest: &str) -> Result<usize, RelayError> {
        let nats = |e: Box<dyn std::error::Error + Send + Sync>| RelayError::Nats(e);
        ensure_rests_stream(&self.jetstream, &self.subjects).await?;
        let parts: Vec<&[u8]> = rest.as_bytes().chunks(REST_MAX).collect();
        for (part, bytes) in parts.iter().enumerate() {
            let Some(subject) = self.subjects.rest(first_hash, part) else {
                return Err(nats(format!("the event's hash {first_hash:?} is not a hash").into()));
            };
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("{first_hash}.{part}").as_str());
            let stored = async {
                let ack = self
                    .jetstream
                    .publish_with_headers(subject, headers, bytes.to_vec().into())
                    .await?;
                ack.await.map(|_| ()).map_err(Into::into)
            };
            match tokio::time::timeout(ACK_TIMEOUT, stored).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(nats(e)),
                Err(_) => {
                    return Err(nats(
                        format!("no ack for a rest's part in {} s", ACK_TIMEOUT.as_secs()).into(),
                    ))
                }
            }
        }
        metrics::counter!("invitebus_relay_rests_stored_total").increment(1);
        Ok(parts.len())
    }

    /// The stream's last sequence when it is short of `published` (what this relay had
    /// stored there is gone); None when it is not, or cannot be read (the caller retries).
    pub(super) async fn stream_short_of(&self, published: u64) -> Option<u64> {
        let mut stream = self.jetstream.get_stream(EVENTS_STREAM).await.ok()?;
        let last = stream.info().await.ok()?.state.last_sequence;
        (last < published).then_some(last)
    }

    /// The last position of the unbroken run of `ours` (the log's events right after `from`)
    /// that the stream holds, each message checked by its hash: on invitebus's stream sequence =
    /// position, so message `p` must be position `p`. Where the stream holds nothing the run ends
    /// and the relay publishes from there (the stream is made again if it went missing); where it
    /// holds another event, the stream belongs to another writer from there: [`RelayError::Fenced`].
    pub(super) async fn stored_after(&self, from: u64, ours: &[Published]) -> Result<u64, RelayError> {
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

    /// Where the relay starts: its checkpoint, moved to what the stream holds of this log (never
    /// past the log's head). The chain makes one read enough: the stream's event at `q` carrying
    /// this log's hash at `q` means the stream holds this log's `1..=q`.
    /// - Further than the checkpoint: published before a crash; the relay goes on from there.
    /// - Short of it: the stream lost what it had acknowledged (made anew, or restored from an
    ///   older copy). The relay publishes again from there, said at error level and counted
    ///   (`invitebus_relay_stream_rewinds_total`); trusting the checkpoint left the stream
    ///   without those events while health read the relay as at the head.
    /// - Another writer's event there: the relay starts at its checkpoint and its first
    ///   publish is refused, which finds where the stream and the log part.
    ///
    /// Not stored here (the reader is read-only): the relay reports it on `published`, and the
    /// writer stores it (with its next batch, or within a second when idle).
    pub(super) async fn start_position(&self, reader: &mut LogReader) -> Result<u64, RelayError> {
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
            let ours = match q {
                0 => None,
                q => reader.read_published(q - 1, 1)?.into_iter().next().map(|e| e.hash),
            };
            (checkpoint, q, ours)
        };
        if q == checkpoint {
            return Ok(checkpoint);
        }
        let holds_ours = match ours {
            None => q == 0,
            Some(ours) => hash_at(&stream, q).await?.is_some_and(|theirs| theirs == ours),
        };
        match (holds_ours, q < checkpoint) {
            (false, _) => Ok(checkpoint),
            (true, false) => Ok(q),
            (true, true) => {
                error!(
                    position = q,
                    checkpoint,
                    "INVITES_EVENTS holds less of this log than the relay had published: publishing again from there"
                );
                metrics::counter!("invitebus_relay_stream_rewinds_total").increment(1);
                Ok(q)
            }
        }
    }
}
