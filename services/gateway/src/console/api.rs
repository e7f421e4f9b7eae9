//! The console's JSON routes: a stream and its state, a correlation id's trace, the admin
//! records with their filters, approving and denying, starting an export and its file. Each is
//! the bus's own query or command on behalf of the signed-in admin.

use super::{failure, Session};
use crate::bus::GatewayConfig;
use async_nats::jetstream::{self, consumer};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use invitebus_events::subject::{EVENTS_STREAM, NOTIFY_STREAM};
use invitebus_events::{ProtocolError, RecordStatus};
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

pub fn routes() -> Router<Arc<GatewayConfig>> {
    Router::new()
        .route("/console/api/streams/{stream_id}", get(stream))
        .route("/console/api/trace/{correlation_id}", get(trace))
        .route("/console/api/records", get(records))
        .route("/console/api/records/{id}/{decision}", post(decide))
        .route("/console/api/exports", post(start_export))
        .route("/console/api/exports/{id}/file", get(export_file))
}

fn answer(result: Result<Value, ProtocolError>) -> Response {
    match result {
        Ok(data) => Json(json!({"ok": true, "data": data})).into_response(),
        Err(e) => failure(e),
    }
}

/// A stream's events (with the positions whose stored hash does not hold) and its state as of
/// `as_of` (a position or a time; absent: now).
async fn stream(
    State(cfg): State<Arc<GatewayConfig>>,
    Path(stream_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    Session(caller): Session,
) -> Response {
    let run = async {
        let caller = caller?;
        let history = cfg.query(&caller, "history", json!({"stream_id": stream_id})).await?;
        let mut fields = json!({"stream_id": stream_id});
        if let Some(as_of) = params.get("as_of").filter(|a| !a.is_empty()) {
            fields["as_of"] = json!(as_of);
        }
        let state = cfg.query(&caller, "state", fields).await?;
        Ok(json!({"items": history["items"], "broken": history["broken"], "state": state}))
    };
    answer(run.await)
}

/// The most recent messages a trace reads of each stream.
const TRACE_WINDOW: u64 = 100_000;
/// The most a trace keeps of each stream, and how long it reads in all.
const TRACE_MATCHES: usize = 1_000;
const TRACE_WITHIN: Duration = Duration::from_secs(20);

/// Every event carrying `correlation_id` among the last [`TRACE_WINDOW`] of the log, the
/// notifications those events caused, and the exports among them; `complete` is false when a
/// scan was cut short (time, or more than [`TRACE_MATCHES`] matches).
async fn trace(
    State(cfg): State<Arc<GatewayConfig>>,
    Path(correlation_id): Path<String>,
    Session(caller): Session,
) -> Response {
    let run = async {
        caller?;
        let deadline = tokio::time::Instant::now() + TRACE_WITHIN;
        let (events, mut complete) = scan(&cfg, EVENTS_STREAM, deadline, |e: &Value| {
            e["correlation_id"] == correlation_id.as_str()
        })
        .await?;
        let positions: BTreeSet<u64> = events.iter().filter_map(|e| e["position"].as_u64()).collect();
        let notifications = match positions.is_empty() {
            true => vec![],
            false => {
                let (found, whole) = scan(&cfg, NOTIFY_STREAM, deadline, |n: &Value| {
                    n["position"].as_u64().is_some_and(|p| positions.contains(&p))
                })
                .await?;
                complete &= whole;
                found
            }
        };
        let exports: Vec<Value> = events
            .iter()
            .filter(|e| e["stream_type"] == "export")
            .map(|e| json!({"export_id": e["data"]["export_id"], "type": e["type"], "position": e["position"]}))
            .collect();
        Ok(
            json!({"correlation_id": correlation_id, "events": events, "notifications": notifications,
            "exports": exports, "window": TRACE_WINDOW, "complete": complete}),
        )
    };
    answer(run.await)
}

/// The messages of `stream_name` among its last [`TRACE_WINDOW`] whose JSON body `keep` takes,
/// and whether the scan read them all (before `deadline`, within [`TRACE_MATCHES`]).
async fn scan(
    cfg: &GatewayConfig,
    stream_name: &str,
    deadline: tokio::time::Instant,
    keep: impl Fn(&Value) -> bool,
) -> Result<(Vec<Value>, bool), ProtocolError> {
    let unavailable = |e: &dyn std::fmt::Display| ProtocolError::unavailable(format!("reading {stream_name}: {e}"));
    let js = jetstream::new(cfg.client.clone());
    let mut stream = js.get_stream(stream_name).await.map_err(|e| unavailable(&e))?;
    let last = stream.info().await.map_err(|e| unavailable(&e))?.state.last_sequence;
    if last == 0 {
        return Ok((vec![], true));
    }
    let start = last.saturating_sub(TRACE_WINDOW).max(1);
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: start },
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(&e))?;
    let mut messages = consumer.messages().await.map_err(|e| unavailable(&e))?;
    let mut kept = Vec::new();
    loop {
        let Ok(next) = tokio::time::timeout_at(deadline, messages.next()).await else {
            return Ok((kept, false));
        };
        let Some(msg) = next else {
            return Ok((kept, false));
        };
        let msg = msg.map_err(|e| unavailable(&e))?;
        let (seq, pending) = msg.info().map(|i| (i.stream_sequence, i.pending)).unwrap_or((last, 0));
        // Made again before its first message, an ordered consumer starts from the beginning.
        if seq >= start {
            if let Ok(body) = serde_json::from_slice::<Value>(&msg.payload) {
                if keep(&body) {
                    if kept.len() == TRACE_MATCHES {
                        return Ok((kept, false));
                    }
                    kept.push(body);
                }
            }
        }
        // Nothing left that was there when it started (deleted messages have no turn).
        if seq >= last || pending == 0 {
            return Ok((kept, true));
        }
    }
}

/// The admin view's page for seed 004's filters (`resource_id`, `inviter_phone`,
/// `invitee_phone`, `status`, `created_from`, `created_to`, `page`, `per_page`).
async fn records(
    State(cfg): State<Arc<GatewayConfig>>,
    Query(params): Query<HashMap<String, String>>,
    Session(caller): Session,
) -> Response {
    let run = async {
        let caller = caller?;
        let mut fields = Map::new();
        for key in [
            "resource_id",
            "inviter_phone",
            "invitee_phone",
            "status",
            "created_from",
            "created_to",
        ] {
            if let Some(v) = params.get(key).filter(|v| !v.is_empty()) {
                fields.insert(key.into(), json!(v));
            }
        }
        for key in ["page", "per_page"] {
            if let Some(v) = params.get(key).filter(|v| !v.is_empty()) {
                let n: u32 = v.parse().map_err(|_| ProtocolError::invalid(key, "a number from 1"))?;
                fields.insert(key.into(), json!(n));
            }
        }
        cfg.fresh_query(&caller, "admin", Value::Object(fields)).await
    };
    answer(run.await)
}

/// `POST /console/api/records/{invite_id}.{invitee}/approve|deny {"description"}`.
async fn decide(
    State(cfg): State<Arc<GatewayConfig>>,
    Path((id, decision)): Path<(String, String)>,
    Session(caller): Session,
    body: axum::body::Bytes,
) -> Response {
    let run = async {
        let caller = caller?;
        let command = match decision.as_str() {
            "approve" => "ApproveInvite",
            "deny" => "DenyInvite",
            _ => return Err(ProtocolError::invalid("decision", "approve or deny")),
        };
        let body = crate::bus::json_object(&body)?;
        let description = body.get("description").filter(|d| d.as_str() != Some(""));
        let fields = crate::admin::decision_fields(&id, description);
        let done = cfg.command(&caller, command, fields).await?;
        Ok(json!({"position": done.position, "status": match command {
            "ApproveInvite" => RecordStatus::Approved.as_str(),
            _ => RecordStatus::Denied.as_str(),
        }}))
    };
    answer(run.await)
}

/// `POST /console/api/exports {"format", "filters"}`: an export of the admin view.
async fn start_export(
    State(cfg): State<Arc<GatewayConfig>>,
    Session(caller): Session,
    body: axum::body::Bytes,
) -> Response {
    let run = async {
        let caller = caller?;
        let body = crate::bus::json_object(&body)?;
        let format = body.get("format").cloned().unwrap_or(json!("xlsx"));
        let filters = body.get("filters").cloned().unwrap_or(json!({}));
        let done = cfg
            .command(
                &caller,
                "RequestExport",
                json!({"view": "admin", "format": format, "filters": filters}),
            )
            .await?;
        Ok(json!({"export_id": done.data["export_id"], "position": done.position}))
    };
    answer(run.await)
}

/// The finished file of an export, for the signed-in admin.
async fn export_file(
    State(cfg): State<Arc<GatewayConfig>>,
    Path(id): Path<String>,
    Session(caller): Session,
) -> Response {
    crate::exports::file_for(&cfg, caller, &id)
        .await
        .unwrap_or_else(failure)
}
