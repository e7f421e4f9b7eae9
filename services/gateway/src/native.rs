//! The native API: `POST /v1/commands/{Command}` and `POST /v1/queries/{query}`. The body is the
//! command's or query's JSON; `actor` and `roles` come from the token (a body naming another
//! actor is refused, `forbidden`); the answer is the NATS reply, with an HTTP status for its code.

use crate::bus::{json_object, status_of, with_actor, GatewayConfig};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use invitebus_events::{ProtocolError, Reply};
use serde_json::Value;
use std::sync::Arc;

pub fn routes() -> Router<Arc<GatewayConfig>> {
    Router::new()
        .route("/v1/commands/{command}", post(command))
        .route("/v1/queries/{query}", post(query))
}

fn reply(r: Reply) -> Response {
    let status = r.error.as_ref().map(|e| status_of(e.code)).unwrap_or(StatusCode::OK);
    (status, axum::Json(r)).into_response()
}

/// The body with `actor` and `roles` from the token.
fn authorised(
    cfg: &GatewayConfig,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &Bytes,
) -> Result<Vec<u8>, ProtocolError> {
    let caller = cfg.caller(headers, query)?;
    let object = json_object(body)?;
    if let Some(actor) = object.get("actor") {
        if actor.as_str() != Some(caller.user.as_str()) {
            return Err(ProtocolError::forbidden("the body names another actor than the token"));
        }
    }
    Ok(with_actor(&caller, Value::Object(object)))
}

fn name_ok(name: &str) -> Result<(), ProtocolError> {
    if invitebus_events::ids::is_valid_id(name) {
        Ok(())
    } else {
        Err(ProtocolError::invalid_command(format!("`{name}` is not a name")))
    }
}

async fn command(
    State(cfg): State<Arc<GatewayConfig>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match name_ok(&name).and_then(|_| authorised(&cfg, &headers, q.as_deref(), &body)) {
        Ok(body) => reply(cfg.request(cfg.subjects.command(&name), body).await),
        Err(e) => reply(Reply::err(e)),
    }
}

async fn query(
    State(cfg): State<Arc<GatewayConfig>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match name_ok(&name).and_then(|_| authorised(&cfg, &headers, q.as_deref(), &body)) {
        Ok(body) => reply(cfg.request(cfg.subjects.query(&name), body).await),
        Err(e) => reply(Reply::err(e)),
    }
}
