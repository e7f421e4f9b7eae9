//! What `INVITES_EVENTS` holds at a sequence, and the headers that let a copy of the stream
//! finish a command the stream holds only part of.
//!
//! nats-server 2.9 has no atomic batch: a writer stopped between two publishes of one command
//! (killed, or paused past its lease with the rest still queued) leaves the command's first
//! events in the stream and the rest nowhere. So every event of a command of several carries
//! [`SPAN_HEADER`] (`<first>-<last>` position), and the first one also [`REST_HEADER`]: the rest
//! of the command's envelopes and its reply. A copy whose tip is inside a span (a standby that
//! won the lease, `restore`) appends that rest itself and its relay publishes it
//! ([`crate::copy::complete_tip`]): the command is whole again, a retry is answered with its
//! reply, and nothing is decided on half of it. A rest too large for a header goes first into
//! the stream `INVITES_RESTS`, in parts, and the first event says how many
//! ([`REST_PARTS_HEADER`]).

use crate::query::Published;
use async_nats::jetstream::{
    self,
    context::GetStreamErrorKind,
    message::StreamMessage,
    stream::{self, RawMessageError},
};
use async_nats::HeaderMap;
use invitebus_events::subject::{Subjects, RESTS_STREAM};
use invitebus_events::Envelope;
use serde::Deserialize;

/// `<first>-<last>`: the positions of the command this event is part of.
pub const SPAN_HEADER: &str = invitebus_events::subject::COMMAND_SPAN_HEADER;
/// On a command's first event: `{"events": [the rest's envelopes], "reply": …}`.
pub const REST_HEADER: &str = "Invitebus-Command-Rest";
/// The largest rest carried in the header: the message must stay under NATS's `max_payload`
/// (1 MiB by default). A larger one (a command of over ~300 events) is stored in
/// `INVITES_RESTS` in parts of this size before the command's first event is published.
pub const REST_MAX: usize = 256 * 1024;
/// On a command's first event, instead of [`REST_HEADER`]: how many parts of its rest
/// `INVITES_RESTS` holds, on `<prefix>.rest.<the first event's hash>.<part>`.
pub const REST_PARTS_HEADER: &str = "Invitebus-Command-Rest-Parts";

/// The headers one event gets from its command: its span, and the rest on the first.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamp {
    pub span: String,
    pub rest: Option<String>,
}

/// The rest of a command, as its first event carries it.
#[derive(Debug, Deserialize)]
pub struct Rest {
    pub events: Vec<Envelope>,
    pub reply: Option<serde_json::Value>,
}

/// The stamps of one round's events, by index: each command of several events that ends inside
/// `rows`. A round that begins inside a command (resumed after a failed round, a restart, or the
/// rest a takeover completed) passes where that command began as `resumed_from`: its events get
/// the span only, its first event (in the stream already) carried the rest.
pub fn stamps(rows: &[Published], resumed_from: Option<u64>) -> Vec<Option<Stamp>> {
    let mut out = vec![None; rows.len()];
    let mut i = 0;
    while let Some(first) = rows.get(i) {
        let Some(end) = rows[i..].iter().position(|e| e.ends_command).map(|n| i + n) else {
            break;
        };
        let start = match (first.starts_command, i, resumed_from) {
            (true, _, _) => Some(first.position),
            (false, 0, Some(p)) if p < first.position => Some(p),
            _ => None,
        };
        if let Some(start) = start.filter(|&s| end > i || s < first.position) {
            let last = &rows[end];
            let span = format!("{start}-{}", last.position);
            let reply = last.reply.as_deref().unwrap_or("null");
            let size: usize = rows[i + 1..=end].iter().map(|e| e.payload.len() + 1).sum::<usize>() + reply.len() + 24;
            // Only a command's first event carries it (in a header, or in parts past REST_MAX).
            let rest = first.starts_command.then(|| {
                let events: Vec<&[u8]> = rows[i + 1..=end].iter().map(|e| e.payload.as_slice()).collect();
                let mut rest = Vec::with_capacity(size);
                rest.extend_from_slice(b"{\"events\":[");
                rest.extend_from_slice(&events.join(&b','));
                rest.extend_from_slice(b"],\"reply\":");
                rest.extend_from_slice(reply.as_bytes());
                rest.push(b'}');
                String::from_utf8(rest).expect("envelopes are UTF-8")
            });
            for (k, slot) in out[i..=end].iter_mut().enumerate() {
                *slot = Some(Stamp {
                    span: span.clone(),
                    rest: if k == 0 { rest.clone() } else { None },
                });
            }
        }
        i = end + 1;
    }
    out
}

/// Why a command's rest cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// It is not there or cannot be used (none carried, its parts gone, altered): the command
    /// stays partial.
    #[error("{0}")]
    Gone(String),
    /// JetStream did not answer: a takeover must try again rather than decide on half a command.
    #[error("{0}")]
    Nats(String),
}

/// More parts than this is a corrupt header, not a rest (the largest command, 500 invitees,
/// makes about 4).
const PARTS_MAX: usize = 64;

/// The rest a command's first event carries, as JSON text: from its header, or joined from its
/// parts in `INVITES_RESTS` (each part the first message on its subject: the writer stored it
/// before the event).
pub async fn rest_of(js: &jetstream::Context, subjects: &Subjects, first: &StreamMessage) -> Result<String, RestError> {
    if let Some(rest) = first.headers.get(REST_HEADER) {
        return Ok(rest.as_str().to_string());
    }
    let gone = |why: String| RestError::Gone(why);
    let Some(parts) = first.headers.get(REST_PARTS_HEADER) else {
        return Err(gone(format!(
            "its first event carries neither {REST_HEADER} nor {REST_PARTS_HEADER}"
        )));
    };
    let parts: usize = match parts.as_str().parse() {
        Ok(n) if (1..=PARTS_MAX).contains(&n) => n,
        _ => {
            return Err(gone(format!(
                "{REST_PARTS_HEADER}: {:?} is not 1 to {PARTS_MAX}",
                parts.as_str()
            )))
        }
    };
    let hash = hash_of(&first.payload);
    let stream = match js.get_stream(RESTS_STREAM).await {
        Ok(stream) => stream,
        Err(e) => {
            return Err(match e.kind() {
                GetStreamErrorKind::JetStream(j) if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND => {
                    gone(format!("no {RESTS_STREAM} stream"))
                }
                _ => RestError::Nats(format!("{RESTS_STREAM}: {e}")),
            })
        }
    };
    let mut rest = Vec::new();
    for part in 0..parts {
        let subject = subjects
            .rest(&hash, part)
            .ok_or_else(|| gone(format!("its first event's hash {hash:?} is not a hash")))?;
        let message = stream
            .raw_message_builder()
            .sequence(1)
            .next_by_subject(subject.clone())
            .send()
            .await
            .map_err(|e| match e.kind() {
                stream::RawMessageErrorKind::NoMessageFound => gone(format!("{subject}: no message (aged out?)")),
                _ => RestError::Nats(format!("{subject}: {e}")),
            })?;
        rest.extend_from_slice(&message.payload);
    }
    String::from_utf8(rest).map_err(|e| gone(format!("its rest's parts: {e}")))
}

/// The span a message carries: `(first, last)`.
pub fn span_of(headers: &HeaderMap) -> Option<(u64, u64)> {
    let (first, last) = headers.get(SPAN_HEADER)?.as_str().split_once('-')?;
    Some((first.parse().ok()?, last.parse().ok()?))
}

/// The hash of the event stored at sequence `position` (empty when the message is not an
/// envelope), None when there is none.
pub async fn hash_at(stream: &stream::Stream, position: u64) -> Result<Option<String>, RawMessageError> {
    match stream.get_raw_message(position).await {
        Ok(message) => Ok(Some(hash_of(&message.payload))),
        Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The `hash` of an envelope's JSON, empty when it has none.
pub fn hash_of(payload: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Hashed {
        hash: String,
    }
    serde_json::from_slice::<Hashed>(payload)
        .map(|h| h.hash)
        .unwrap_or_default()
}
