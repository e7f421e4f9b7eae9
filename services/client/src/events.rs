//! Following `INVITES_EVENTS` as a `Stream` of envelopes that survives disconnects.
//!
//! A task of its own reads the stream with an ordered consumer from a position and hands each
//! envelope on. When the consumer fails (a server restarted, a connection lost, heartbeats
//! missed) it makes a new one from the position after the last it handed on, so the stream
//! never skips an event; one the server sends again (position at or below that) is dropped, so
//! none comes twice.

use crate::ClientError;
use async_nats::jetstream::{self, consumer};
use futures::{Stream, StreamExt};
use invitebus_events::event::StreamType;
use invitebus_events::subject::{Subjects, EVENTS_STREAM};
use invitebus_events::{Envelope, Event, ProtocolError};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// Which events to follow; the default is all of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    /// One event type (`InviteAccepted`, …).
    pub event_type: Option<String>,
    /// One stream (`invite-<id>`, …).
    pub stream_id: Option<String>,
}

/// Envelopes in log order, from the position asked for, then live; ends only when dropped
/// (or with an error the client cannot get past, e.g. an event it cannot decode).
pub struct Events {
    rx: mpsc::Receiver<Result<Envelope, ClientError>>,
    task: tokio::task::JoinHandle<()>,
}

/// How many envelopes wait for the reader before the follower pauses.
const BUFFER: usize = 1024;
/// The longest pause between two attempts to follow again.
const MAX_PAUSE: Duration = Duration::from_secs(2);

impl Events {
    pub(crate) async fn follow(
        nats: async_nats::Client,
        subjects: Subjects,
        from: u64,
        filter: EventFilter,
    ) -> Result<Events, ClientError> {
        if let Some(t) = &filter.event_type {
            if !Event::TYPES.contains(&t.as_str()) {
                return Err(ClientError::Refused(ProtocolError::invalid(
                    "event_type",
                    format!("no event type `{t}`"),
                )));
            }
        }
        let stream = match &filter.stream_id {
            None => None,
            Some(s) => Some(StreamType::parse_stream_id(s).ok_or_else(|| {
                ClientError::Refused(ProtocolError::invalid("stream_id", format!("`{s}` is not a stream id")))
            })?),
        };
        let filter_subject =
            subjects.stream_events_filter(filter.event_type.as_deref(), stream.as_ref().map(|(t, id)| (*t, id)));
        // Said at once rather than retried for ever: no stream yet, or no permission to read it.
        let js = jetstream::new(nats);
        js.get_stream(EVENTS_STREAM).await.map_err(ClientError::nats)?;
        let (tx, rx) = mpsc::channel(BUFFER);
        let task = tokio::spawn(run(js, filter_subject, from.max(1), tx));
        Ok(Events { rx, task })
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stream for Events {
    type Item = Result<Envelope, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// Follows from `next` until the reader goes away, starting over after every failure.
async fn run(js: jetstream::Context, filter: String, mut next: u64, tx: mpsc::Sender<Result<Envelope, ClientError>>) {
    let mut pause = Duration::from_millis(100);
    loop {
        let before = next;
        match follow_once(&js, &filter, &mut next, &tx).await {
            Ok(Stop::Done) => return,
            Ok(Stop::Ended) => tracing::info!(position = next, "the event consumer ended; following again"),
            Err(e) => tracing::warn!(position = next, error = %e, "following events failed; following again"),
        }
        if tx.is_closed() {
            return;
        }
        if next > before {
            pause = Duration::from_millis(100); // it made progress: a new failure starts short
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

enum Stop {
    /// The reader went away, or was handed an error it cannot get past.
    Done,
    Ended,
}

/// One ordered consumer from `*next`, moving `*next` past each envelope handed on.
async fn follow_once(
    js: &jetstream::Context,
    filter: &str,
    next: &mut u64,
    tx: &mpsc::Sender<Result<Envelope, ClientError>>,
) -> Result<Stop, ClientError> {
    let stream = js.get_stream(EVENTS_STREAM).await.map_err(ClientError::nats)?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: filter.to_string(),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: *next },
            ..Default::default()
        })
        .await
        .map_err(ClientError::nats)?;
    let mut messages = consumer.messages().await.map_err(ClientError::nats)?;
    while let Some(msg) = messages.next().await {
        let msg = msg.map_err(ClientError::nats)?;
        let envelope: Envelope = match serde_json::from_slice(&msg.payload) {
            Ok(e) => e,
            Err(e) => {
                let _ = tx.send(Err(ClientError::Decode(e))).await;
                return Ok(Stop::Done);
            }
        };
        if envelope.position < *next {
            continue; // sent again after a reconnect: already handed on
        }
        *next = envelope.position + 1;
        if tx.send(Ok(envelope)).await.is_err() {
            return Ok(Stop::Done);
        }
    }
    Ok(Stop::Ended)
}
