//! Seed 004's export, followed over HTTP: its status, its progress as Server-Sent Events or over a
//! WebSocket (the frames seed 004 pushes on its faye channel), and the finished file.
//! Only the requester and admins get any of it (the `export` query decides).

use crate::admin::{failure, ok};
use crate::bus::{Authed, Caller, GatewayConfig};
use crate::listen::Stopping;
use async_nats::jetstream::{self, consumer};
use axum::body::Body;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Path, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::{Stream, StreamExt};
use invitebus_events::subject::{EXPORTS_BUCKET, EXPORTS_STREAM};
use invitebus_events::{ErrorCode, Id, ProtocolError};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

pub fn routes() -> Router<Arc<GatewayConfig>> {
    Router::new()
        .route("/api/exports/{uuid}", get(status))
        .route("/api/exports/{uuid}/progress", get(progress_sse))
        .route("/api/exports/{uuid}/ws", get(progress_ws))
        .route("/api/exports/{uuid}/file", get(file))
}

/// The export as the `export` query has it, for a caller allowed to see it.
async fn export(
    cfg: &GatewayConfig,
    caller: Result<Caller, ProtocolError>,
    id: &str,
) -> Result<(Caller, Value), ProtocolError> {
    let caller = caller?;
    let view = cfg.fresh_query(&caller, "export", json!({"export_id": id})).await?;
    Ok((caller, view))
}

/// Where the finished file is served: the gateway's own route, not the object store's name.
pub fn file_path(id: &str) -> String {
    format!("/api/exports/{id}/file")
}

/// A progress message in seed 004's shape (`uuid`, `file_url` a URL a browser can fetch).
fn seed_progress(p: &Value) -> Value {
    let id = p["export_id"].as_str().unwrap_or_default();
    let mut frame = p.clone();
    frame["uuid"] = json!(id);
    if !p["file_url"].is_null() {
        frame["file_url"] = json!(file_path(id));
    }
    frame
}

fn finished(p: &Value) -> bool {
    matches!(p["status"].as_str(), Some("success" | "failed" | "upload_failure"))
}

/// The export's progress from its last message on, ending after the final one.
async fn progress(cfg: &GatewayConfig, id: &str) -> Result<impl Stream<Item = Value>, ProtocolError> {
    let id = Id::parse(id).map_err(|e| ProtocolError::invalid("uuid", e))?;
    let js = jetstream::new(cfg.client.clone());
    let unavailable = |e: &dyn std::fmt::Display| ProtocolError::unavailable(format!("export progress: {e}"));
    let stream = js.get_stream(EXPORTS_STREAM).await.map_err(|e| unavailable(&e))?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: cfg.subjects.export_progress(&id),
            deliver_policy: consumer::DeliverPolicy::LastPerSubject,
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(&e))?;
    let messages = consumer.messages().await.map_err(|e| unavailable(&e))?;
    let frames = messages
        .filter_map(|m| async move { m.ok().and_then(|m| serde_json::from_slice::<Value>(&m.payload).ok()) })
        .map(|p| seed_progress(&p));
    Ok(until_final(frames, cfg.bounds.session_idle))
}

/// `frames` up to the final one (without waiting for another), and none once `idle` has passed
/// without one: an EventSource reconnects by itself, and gets the last message again.
fn until_final(frames: impl Stream<Item = Value> + Send, idle: Duration) -> impl Stream<Item = Value> + Send {
    futures::stream::unfold((Box::pin(frames), false), move |(mut frames, done)| async move {
        if done {
            return None;
        }
        let Ok(next) = tokio::time::timeout(idle, frames.next()).await else {
            metrics::counter!("invitebus_gateway_sessions_idle_closed_total", "kind" => "export_progress").increment(1);
            return None;
        };
        let p = next?;
        let done = finished(&p);
        Some((p, (frames, done)))
    })
}

async fn status(State(cfg): State<Arc<GatewayConfig>>, Path(id): Path<String>, Authed(caller): Authed) -> Response {
    match export(&cfg, caller, &id).await {
        Ok((_, mut view)) => {
            if view["status"] == "success" {
                view["file_url"] = json!(file_path(&id));
            }
            view["uuid"] = json!(id);
            ok("成功", view)
        }
        Err(e) => failure(e),
    }
}

async fn progress_sse(
    State(cfg): State<Arc<GatewayConfig>>,
    Path(id): Path<String>,
    Authed(caller): Authed,
) -> Response {
    let run = async {
        export(&cfg, caller, &id).await?;
        progress(&cfg, &id).await
    };
    match run.await {
        Ok(frames) => {
            let events = frames.map(|p| Ok::<_, Infallible>(Event::default().data(p.to_string())));
            Sse::new(events).keep_alive(KeepAlive::default()).into_response()
        }
        Err(e) => failure(e),
    }
}

async fn progress_ws(
    State(cfg): State<Arc<GatewayConfig>>,
    Path(id): Path<String>,
    Authed(caller): Authed,
    stopping: Option<Extension<Stopping>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let stopping = stopping.map(|Extension(s)| s);
    let run = async {
        export(&cfg, caller, &id).await?;
        let upgrade = upgrade.map_err(crate::signaling::not_a_socket)?;
        Ok((upgrade, progress(&cfg, &id).await?))
    };
    match run.await {
        Ok((upgrade, frames)) => {
            crate::signaling::limited(upgrade).on_upgrade(move |socket| send_all(socket, frames, stopping))
        }
        Err(e) => {
            let status = crate::signaling::refusal_status(&e);
            let mut answer = failure(e);
            *answer.status_mut() = status;
            answer
        }
    }
}

async fn send_all(mut socket: WebSocket, frames: impl Stream<Item = Value>, stopping: Option<Stopping>) {
    let _open = crate::observe::Session::open();
    let mut frames = std::pin::pin!(frames);
    let mut stop = std::pin::pin!(Stopping::wait(stopping));
    loop {
        let next = tokio::select! {
            next = frames.next() => next,
            () = &mut stop => return crate::signaling::close_stopping(&mut socket).await,
        };
        let Some(p) = next else { break };
        if socket.send(Message::Text(p.to_string().into())).await.is_err() {
            return;
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

async fn file(State(cfg): State<Arc<GatewayConfig>>, Path(id): Path<String>, Authed(caller): Authed) -> Response {
    file_for(&cfg, caller, &id).await.unwrap_or_else(failure)
}

/// The export's progress for `caller`, once the `export` query lets them see it (the console's
/// progress bar reads the same).
pub(crate) async fn progress_for(
    cfg: &GatewayConfig,
    caller: Result<Caller, ProtocolError>,
    id: &str,
) -> Result<impl Stream<Item = Value>, ProtocolError> {
    export(cfg, caller, id).await?;
    progress(cfg, id).await
}

/// The finished file of export `id`, streamed from the object store, for `caller`.
pub(crate) async fn file_for(
    cfg: &GatewayConfig,
    caller: Result<Caller, ProtocolError>,
    id: &str,
) -> Result<Response, ProtocolError> {
    let run = async {
        let (_, view) = export(cfg, caller, id).await?;
        // The view decides who may; the object store decides whether the file is there (the
        // `success` progress message can come before the view has recorded CompleteExport).
        if view["status"] == "failed" {
            return Err(ProtocolError::new(ErrorCode::InvalidState, "the export failed"));
        }
        let format = view["format"].as_str().unwrap_or("xlsx").to_string();
        let name = format!("{id}.{format}");
        let js = jetstream::new(cfg.client.clone());
        let unavailable = |e: &dyn std::fmt::Display| ProtocolError::unavailable(format!("export file: {e}"));
        let store = js.get_object_store(EXPORTS_BUCKET).await.map_err(|e| unavailable(&e))?;
        let object = store
            .get(&name)
            .await
            .map_err(|e| ProtocolError::new(ErrorCode::InvalidState, format!("the file is not ready: {e}")))?;
        let content_type = match format.as_str() {
            "csv" => "text/csv; charset=utf-8",
            _ => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        };
        let body = Body::from_stream(tokio_util::io::ReaderStream::new(object));
        Ok((
            [
                (header::CONTENT_TYPE, content_type.to_string()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            ],
            body,
        )
            .into_response())
    };
    run.await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(status: &str) -> Value {
        json!({"export_id": "e1", "status": status})
    }

    #[tokio::test(start_paused = true)]
    async fn progress_ends_after_the_final_message_or_a_quiet_bound() {
        let idle = Duration::from_secs(120);
        // The final message ends it, whatever follows.
        let frames = futures::stream::iter([frame("start"), frame("success"), frame("start")]);
        let seen: Vec<Value> = until_final(frames, idle).collect().await;
        assert_eq!(seen, [frame("start"), frame("success")]);
        // A stream that goes quiet ends once the bound has passed, not before.
        let frames = futures::stream::iter([frame("start")]).chain(futures::stream::pending());
        let started = tokio::time::Instant::now();
        let seen: Vec<Value> = until_final(frames, idle).collect().await;
        assert_eq!(seen, [frame("start")]);
        assert_eq!(started.elapsed(), idle);
    }
}
