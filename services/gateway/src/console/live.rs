//! The console's live routes, as Server-Sent Events: the overview (health every second and
//! commands per second), the tail of the event stream, an export's progress.

use super::{failure, Session};
use crate::bus::GatewayConfig;
use async_nats::jetstream::{self, consumer};
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::{Stream, StreamExt};
use invitebus_events::event::StreamType;
use invitebus_events::subject::{COMMAND_SPAN_HEADER, EVENTS_STREAM};
use invitebus_events::{ProtocolError, Reply};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub fn routes() -> Router<Arc<GatewayConfig>> {
    Router::new()
        .route("/console/api/overview", get(overview))
        .route("/console/api/tail", get(tail))
        .route("/console/api/exports/{id}/progress", get(export_progress))
}

/// True for the first event of a command: one without a span (a command of one event), or the
/// one at its span's first position (`Nats-Msg-Id` is the position).
fn starts_command(msg: &async_nats::jetstream::Message) -> bool {
    let Some(headers) = msg.headers.as_ref() else {
        return true;
    };
    match headers.get(COMMAND_SPAN_HEADER) {
        None => true,
        Some(span) => {
            let first = span.as_str().split('-').next();
            first.is_some() && first == headers.get("Nats-Msg-Id").map(|id| id.as_str())
        }
    }
}

/// Seconds of commands per second the overview keeps and shows.
const RATE_WINDOW: usize = 300;

fn sse(frames: impl Stream<Item = Value> + Send + 'static) -> Response {
    let events = frames.map(|v| Ok::<_, Infallible>(Event::default().data(v.to_string())));
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

/// Every second: `{"health": <the health answer's data>, "ok", "rates": [commands per second,
/// oldest first, the last five minutes]}`. Commands that appended events are counted from the
/// stream by their first event (headers only are read, from five minutes back); refusals
/// append nothing and are not in it.
async fn overview(State(cfg): State<Arc<GatewayConfig>>, Session(caller): Session) -> Response {
    let caller = match caller {
        Ok(c) => c,
        Err(e) => return failure(e),
    };
    let until = session_end(&cfg, &caller.token);
    let (tx, rx) = mpsc::channel::<Value>(4);
    tokio::spawn(overview_loop(cfg, tx, until));
    sse(tokio_stream(rx))
}

/// When a live route's session ends: its token's expiry (a stream outlives no session).
fn session_end(cfg: &GatewayConfig, token: &str) -> tokio::time::Instant {
    let left = super::seconds_left(cfg, token).max(0) as u64;
    tokio::time::Instant::now() + Duration::from_secs(left)
}

/// Commands per second by second (unix seconds), from the stream's headers.
async fn count_commands(cfg: Arc<GatewayConfig>, counts: Arc<std::sync::Mutex<HashMap<i64, u64>>>) {
    let js = jetstream::new(cfg.client.clone());
    loop {
        let run = async {
            let stream = js.get_stream(EVENTS_STREAM).await.map_err(|e| e.to_string())?;
            // Each (re)start counts the whole window again.
            counts.lock().unwrap_or_else(|p| p.into_inner()).clear();
            let since = time::OffsetDateTime::now_utc() - time::Duration::seconds(RATE_WINDOW as i64);
            let consumer = stream
                .create_consumer(consumer::pull::OrderedConfig {
                    headers_only: true,
                    deliver_policy: consumer::DeliverPolicy::ByStartTime { start_time: since },
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
            while let Some(msg) = messages.next().await {
                let msg = msg.map_err(|e| e.to_string())?;
                let Ok(info) = msg.info() else { continue };
                // An ordered consumer made again before its first message starts from the
                // beginning of the stream: what is older than the window is not counted.
                if info.published < since {
                    continue;
                }
                if starts_command(&msg) {
                    let second = info.published.unix_timestamp();
                    *counts
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(second)
                        .or_default() += 1;
                }
            }
            Ok::<(), String>(())
        };
        if let Err(e) = run.await {
            tracing::warn!(error = %e, "the console's command count stopped; counting again");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn overview_loop(cfg: Arc<GatewayConfig>, tx: mpsc::Sender<Value>, until: tokio::time::Instant) {
    let counts = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let counter = tokio::spawn(count_commands(cfg.clone(), counts.clone()));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while tokio::time::Instant::now() < until {
        tick.tick().await;
        let reply: Reply = cfg.request(cfg.subjects.health(), b"{}".to_vec()).await;
        let now = chrono::Utc::now().timestamp();
        let rates: VecDeque<u64> = {
            let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
            counts.retain(|s, _| *s > now - RATE_WINDOW as i64);
            (now - RATE_WINDOW as i64 + 1..=now)
                .map(|s| counts.get(&s).copied().unwrap_or(0))
                .collect()
        };
        let frame = json!({"ok": reply.ok, "health": reply.data, "error": reply.error, "rates": rates, "at": now});
        if tx.send(frame).await.is_err() {
            break;
        }
    }
    counter.abort();
}

/// The live events from now on (`?type=` one event type, `?stream=` one stream), each envelope
/// as it is stored (personal fields sealed: the Streams page opens them).
async fn tail(
    State(cfg): State<Arc<GatewayConfig>>,
    Query(params): Query<HashMap<String, String>>,
    Session(caller): Session,
) -> Response {
    let run = async {
        let caller = caller?;
        let event_type = params.get("type").filter(|t| !t.is_empty());
        if let Some(t) = event_type {
            if !invitebus_events::Event::TYPES.contains(&t.as_str()) {
                return Err(ProtocolError::invalid("type", format!("no event type `{t}`")));
            }
        }
        let stream = match params.get("stream").filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(
                StreamType::parse_stream_id(s).ok_or_else(|| ProtocolError::invalid("stream", "not a stream id"))?,
            ),
        };
        let filter = cfg
            .subjects
            .stream_events_filter(event_type.map(String::as_str), stream.as_ref().map(|(t, id)| (*t, id)));
        let unavailable = |e: &dyn std::fmt::Display| ProtocolError::unavailable(format!("following events: {e}"));
        let js = jetstream::new(cfg.client.clone());
        let mut stream = js.get_stream(EVENTS_STREAM).await.map_err(|e| unavailable(&e))?;
        let after = stream.info().await.map_err(|e| unavailable(&e))?.state.last_sequence;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: filter,
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: after + 1,
                },
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable(&e))?;
        let messages = consumer.messages().await.map_err(|e| unavailable(&e))?;
        let events = messages.filter_map(move |m| async move {
            let m = match m {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "the console's tail lost a message; it goes on");
                    return None;
                }
            };
            // An ordered consumer made again before its first message starts from the
            // beginning of the stream: the tail shows only what came after it opened.
            let seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
            (seq > after)
                .then(|| serde_json::from_slice::<Value>(&m.payload).ok())
                .flatten()
        });
        Ok(events.take_until(tokio::time::sleep_until(session_end(&cfg, &caller.token))))
    };
    match run.await {
        Ok(events) => sse(events),
        Err(e) => failure(e),
    }
}

/// An export's progress, for the console's progress bar.
async fn export_progress(
    State(cfg): State<Arc<GatewayConfig>>,
    Path(id): Path<String>,
    Session(caller): Session,
) -> Response {
    match crate::exports::progress_for(&cfg, caller, &id).await {
        Ok(frames) => sse(frames),
        Err(e) => failure(e),
    }
}

/// The receiver as a stream.
fn tokio_stream(mut rx: mpsc::Receiver<Value>) -> impl Stream<Item = Value> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
