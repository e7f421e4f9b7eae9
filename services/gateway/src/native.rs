//! The native API: `POST /v1/commands/{Command}` and `POST /v1/queries/{query}`. The body is the
//! command's or query's JSON; `actor` and `roles` come from the token (a body naming another
//! actor is refused, `forbidden`); the reply is the NATS reply, with an HTTP status for its code.

use crate::auth::{token_of, verify, AuthError};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use invitebus_events::subject::Subjects;
use invitebus_events::{ErrorCode, ProtocolError, Reply};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// What the gateway needs.
#[derive(Clone)]
pub struct GatewayConfig {
    pub client: async_nats::Client,
    pub subjects: Subjects,
    pub jwt_secret: String,
}

pub fn router(config: GatewayConfig) -> Router {
    Router::new()
        .route("/v1/commands/{command}", post(command))
        .route("/v1/queries/{query}", post(query))
        .with_state(Arc::new(config))
}

/// The HTTP status for an error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidCommand | ErrorCode::MissingField | ErrorCode::InvalidField => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::RateLimited | ErrorCode::ExportQuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::CONFLICT,
    }
}

fn reply(r: Reply) -> Response {
    let status = r.error.as_ref().map(|e| status_of(e.code)).unwrap_or(StatusCode::OK);
    (status, axum::Json(r)).into_response()
}

fn error(e: ProtocolError) -> Response {
    reply(Reply::err(e))
}

/// The body with `actor` and `roles` from the token.
fn authorised(
    cfg: &GatewayConfig,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &Bytes,
) -> Result<Vec<u8>, ProtocolError> {
    let token = token_of(headers, query).ok_or(AuthError::Missing);
    let claims = token
        .and_then(|t| verify(&cfg.jwt_secret, &t))
        .map_err(|e| ProtocolError::with_field(ErrorCode::Unauthenticated, "token", e.to_string()))?;
    let mut value: Value = if body.iter().all(|b| b.is_ascii_whitespace()) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(body).map_err(|e| ProtocolError::invalid_command(format!("body is not JSON: {e}")))?
    };
    let object = value
        .as_object_mut()
        .ok_or_else(|| ProtocolError::invalid_command("body is not a JSON object"))?;
    if let Some(actor) = object.get("actor") {
        if actor.as_str() != Some(claims.sub.as_str()) {
            return Err(ProtocolError::forbidden("the body names another actor than the token"));
        }
    }
    object.insert("actor".into(), Value::String(claims.sub));
    object.insert("roles".into(), serde_json::json!(claims.roles));
    Ok(serde_json::to_vec(&value).expect("json serializes"))
}

async fn forward(cfg: &GatewayConfig, subject: String, body: Vec<u8>) -> Response {
    let request = cfg.client.request(subject, body.into());
    match tokio::time::timeout(Duration::from_secs(10), request).await {
        Ok(Ok(msg)) => match serde_json::from_slice::<Reply>(&msg.payload) {
            Ok(r) => reply(r),
            Err(e) => error(ProtocolError::internal(format!("a reply that is not a reply: {e}"))),
        },
        _ => error(ProtocolError::unavailable(
            "no answer from invitebus; retry with the same command_id",
        )),
    }
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
        Ok(body) => forward(&cfg, cfg.subjects.command(&name), body).await,
        Err(e) => error(e),
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
        Ok(body) => forward(&cfg, cfg.subjects.query(&name), body).await,
        Err(e) => error(e),
    }
}
