//! The native API: `POST /v1/commands/{Command}` and `POST /v1/queries/{query}`. The body is the
//! command's or query's JSON; `actor` and `roles` come from the token (a body naming another
//! actor is refused, `forbidden`); the answer is the NATS reply as it came (`"position": null`
//! included), with an HTTP status for its code.

use crate::bus::{clip, status_of, trimmed, Authed, Caller, GatewayConfig, MAX_BODY, MAX_FIELD, MAX_MESSAGE};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use invitebus_events::query::QUERIES;
use invitebus_events::{Command, ErrorCode, ProtocolError, Reply};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn routes() -> Router<Arc<GatewayConfig>> {
    Router::new()
        .route("/v1/commands/{command}", post(command))
        .route("/v1/queries/{query}", post(query))
}

/// The native API's error: invitebus's own reply, with the HTTP status of its code.
pub fn failure(e: ProtocolError) -> Response {
    let status = status_of(e.code);
    (status, axum::Json(Reply::err(trimmed(e)))).into_response()
}

/// invitebus's reply, byte for byte, unless its error quotes too much input to pass on.
fn passed_on(payload: Bytes) -> Response {
    let Ok(reply) = serde_json::from_slice::<Value>(&payload) else {
        return failure(ProtocolError::internal("a reply that is not JSON"));
    };
    let error = reply
        .get("error")
        .cloned()
        .and_then(|e| serde_json::from_value::<ProtocolError>(e).ok());
    let (status, body) = match error {
        None if reply["ok"] == true => (StatusCode::OK, payload),
        None => return failure(ProtocolError::internal("an error reply without an error")),
        Some(e) => {
            let long = e.message.chars().count() > MAX_MESSAGE
                || e.field.as_ref().is_some_and(|f| f.chars().count() > MAX_FIELD);
            let status = status_of(e.code);
            if long {
                let mut reply = reply;
                reply["error"] = serde_json::to_value(trimmed(e)).expect("an error serializes");
                (status, Bytes::from(reply.to_string()))
            } else {
                (status, payload)
            }
        }
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The client's body with `actor` and `roles` from the token. The client's values are kept as
/// they came (no re-encoding), so what the bus measures is the client's body plus ours.
fn authorised(caller: &Caller, body: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    if body.len() > MAX_BODY {
        return Err(ProtocolError::invalid_command(format!(
            "the body is over {MAX_BODY} bytes"
        )));
    }
    let mut fields: BTreeMap<String, Box<RawValue>> = BTreeMap::new();
    if !body.is_empty() {
        fields = serde_json::from_slice(body).map_err(|e| match serde_json::from_slice::<Value>(body) {
            Ok(_) => ProtocolError::invalid_command("body is not a JSON object"),
            Err(_) => ProtocolError::invalid_command(format!("body is not JSON: {e}")),
        })?;
    }
    if let Some(actor) = fields.get("actor") {
        let named: Option<String> = serde_json::from_str(actor.get()).ok().flatten();
        if named.as_deref() != Some(caller.user.as_str()) {
            return Err(ProtocolError::forbidden("the body names another actor than the token"));
        }
    }
    let raw = |v: Value| RawValue::from_string(v.to_string()).expect("JSON is JSON");
    fields.insert("actor".into(), raw(json!(caller.user)));
    fields.insert("roles".into(), raw(json!(caller.roles)));
    Ok(serde_json::to_vec(&fields).expect("json serializes"))
}

/// A name the bus answers: one of `names`, else `invalid_command` without asking NATS.
fn known(kind: &str, names: &[&str], name: &str) -> Result<(), ProtocolError> {
    if names.contains(&name) {
        Ok(())
    } else {
        Err(ProtocolError::new(
            ErrorCode::InvalidCommand,
            format!("no {kind} `{}`", clip(name, 64)),
        ))
    }
}

/// Signed in, a known name, a body within limits: then onto the bus.
async fn forward(
    cfg: &GatewayConfig,
    (caller, body): (Result<Caller, ProtocolError>, &[u8]),
    (kind, names, name): (&str, &[&str], &str),
    subject: String,
) -> Response {
    let sent = async {
        let caller = caller?;
        known(kind, names, name)?;
        let body = authorised(&caller, body)?;
        cfg.request_raw(subject, body, Some(&caller)).await
    };
    match sent.await {
        Ok(payload) if name == "export" => passed_on(own_file_url(payload)),
        Ok(payload) => passed_on(payload),
        Err(e) => failure(e),
    }
}

/// An `export` reply with the file at the gateway's own route: the URL the exporter recorded is
/// the object store's name, and whatever a `CompleteExport` said is never handed to a browser.
fn own_file_url(payload: Bytes) -> Bytes {
    let Ok(mut reply) = serde_json::from_slice::<Value>(&payload) else {
        return payload;
    };
    let id = reply["data"]["export_id"].as_str().map(crate::exports::file_path);
    match (id, reply["data"].get("file_url")) {
        (Some(path), Some(url)) if !url.is_null() => {
            reply["data"]["file_url"] = json!(path);
            Bytes::from(reply.to_string())
        }
        _ => payload,
    }
}

async fn command(
    State(cfg): State<Arc<GatewayConfig>>,
    Path(name): Path<String>,
    Authed(caller): Authed,
    body: Bytes,
) -> Response {
    let request = (caller, &body[..]);
    forward(
        &cfg,
        request,
        ("command", Command::NAMES, &name),
        cfg.subjects.command(&name),
    )
    .await
}

async fn query(
    State(cfg): State<Arc<GatewayConfig>>,
    Path(name): Path<String>,
    Authed(caller): Authed,
    body: Bytes,
) -> Response {
    let request = (caller, &body[..]);
    forward(&cfg, request, ("query", QUERIES, &name), cfg.subjects.query(&name)).await
}
