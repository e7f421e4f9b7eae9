//! The gateway's one way onto the bus: who is calling, and their commands and queries over NATS.
//! Every route of every seed goes through here, so the actor always comes from the token.

use crate::auth::{token_of, Claims};
use axum::http::{HeaderMap, StatusCode};
use invitebus_events::subject::Subjects;
use invitebus_events::{ErrorCode, ProtocolError, Reply};
use serde_json::{json, Value};
use std::time::Duration;

/// How long a route waits for invitebus to answer before `unavailable`.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// What the gateway needs: a NATS connection, the subjects and what checks users' tokens.
#[derive(Clone)]
pub struct GatewayConfig {
    pub client: async_nats::Client,
    pub subjects: Subjects,
    /// Users' tokens (HS256, or an identity provider's keys); the bus's own check shares it.
    pub verifier: std::sync::Arc<invitebus_auth::Verifier>,
    /// Renders `GET /metrics`; None when the process records no metrics.
    pub metrics: Option<crate::observe::Render>,
    /// The buckets every route's [`Authed`] draws from ([`crate::limits::LimitSettings`]).
    pub limits: std::sync::Arc<crate::limits::Limits>,
    /// Connection, body and session bounds ([`crate::listen`] serves with the same).
    pub bounds: crate::listen::Bounds,
}

/// The signed-in user of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    pub roles: Vec<String>,
    /// The verified token, forwarded on the bus (`Authorization`) for `--bus-auth token`.
    pub token: String,
    /// The client's address, when the server knows it: its misses count there too.
    pub address: Option<std::net::IpAddr>,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == invitebus_events::ADMIN_ROLE)
    }
}

/// A command that went through: its reply data and the position of its last event.
#[derive(Debug)]
pub struct Done {
    pub data: Value,
    pub position: Option<u64>,
}

/// The request's `traceparent`, as NATS headers for what the gateway sends on its behalf.
fn trace_headers() -> async_nats::HeaderMap {
    let mut headers = async_nats::HeaderMap::new();
    if let Some(t) = crate::observe::current_trace() {
        headers.insert(invitebus_events::trace::TRACEPARENT, t.as_str());
    }
    headers
}

/// The HTTP status for an error code, where a route answers with HTTP statuses
/// ([`ErrorCode::http_status`]: one table for every route).
pub fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The request's caller as its token names them, or why not: every route's first extractor.
/// It never rejects: the handler answers the error in its own seed's shape (`caller?` inside
/// its `run`), which a rejection could not. The rate limits are checked here, the address's
/// before the token is read and the user's after, so a refusal is an error like any other.
pub struct Authed(pub Result<Caller, ProtocolError>);

impl axum::extract::FromRequestParts<std::sync::Arc<GatewayConfig>> for Authed {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        cfg: &std::sync::Arc<GatewayConfig>,
    ) -> Result<Authed, Self::Rejection> {
        let address = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        let caller = (|| -> Result<Caller, Refused> {
            cfg.limits.check_address(address)?;
            let caller = cfg.caller(&parts.headers, parts.uri.query()).map_err(Refused::Not)?;
            cfg.limits.check_user(&caller.user)?;
            Ok(Caller { address, ..caller })
        })();
        Ok(Authed(caller.map_err(|refused| match refused {
            Refused::Limited(r) => {
                if let Some(slot) = parts.extensions.get::<crate::limits::RetrySlot>() {
                    slot.set(r.retry_after);
                }
                r.error
            }
            Refused::Not(e) => e,
        })))
    }
}

/// Why [`Authed`] has no caller.
enum Refused {
    Limited(crate::limits::Refusal),
    Not(ProtocolError),
}

impl From<crate::limits::Refusal> for Refused {
    fn from(r: crate::limits::Refusal) -> Refused {
        Refused::Limited(r)
    }
}

impl GatewayConfig {
    /// The caller named by the request's token (its address unknown here).
    pub fn caller(&self, headers: &HeaderMap, query: Option<&str>) -> Result<Caller, ProtocolError> {
        let refused =
            |e: crate::auth::AuthError| ProtocolError::with_field(ErrorCode::Unauthenticated, "token", e.to_string());
        let token = token_of(headers, query).map_err(refused)?;
        let claims: Claims = self.verifier.verify(&token).map_err(refused)?;
        Ok(Caller {
            user: claims.sub,
            roles: claims.roles,
            token,
            address: None,
        })
    }

    /// Sends a request body as it is, with the caller's token when there is one, and returns
    /// invitebus's reply as it came. A `not_found` answer spends one of the caller's misses
    /// ([`crate::limits`]): that is how code and id guessers are stopped.
    pub async fn request_raw(
        &self,
        subject: String,
        body: Vec<u8>,
        caller: Option<&Caller>,
    ) -> Result<axum::body::Bytes, ProtocolError> {
        if body.len() > MAX_BODY + MAX_INJECTED {
            return Err(ProtocolError::invalid_command(format!(
                "the body is over {MAX_BODY} bytes"
            )));
        }
        let mut headers = trace_headers();
        if let Some(c) = caller {
            headers.insert(
                invitebus_auth::bus::AUTHORIZATION,
                format!("Bearer {}", c.token).as_str(),
            );
        }
        let request = self.client.request_with_headers(subject, headers, body.into());
        match tokio::time::timeout(ANSWER_WITHIN, request).await {
            Ok(Ok(msg)) => {
                if let Some(c) = caller.filter(|_| not_found(&msg.payload)) {
                    self.limits.miss(&c.user, c.address);
                }
                Ok(msg.payload)
            }
            _ => Err(ProtocolError::unavailable(
                "no answer from invitebus; retry with the same command_id",
            )),
        }
    }

    /// Sends a request body as it is and returns invitebus's reply.
    pub async fn request(&self, subject: String, body: Vec<u8>) -> Reply {
        self.request_as(subject, body, None).await
    }

    /// [`GatewayConfig::request`] on behalf of `caller` (their token goes with it).
    pub async fn request_as(&self, subject: String, body: Vec<u8>, caller: Option<&Caller>) -> Reply {
        let reply = match self.request_raw(subject, body, caller).await {
            Ok(payload) => serde_json::from_slice::<Reply>(&payload)
                .unwrap_or_else(|e| Reply::err(ProtocolError::internal(format!("a reply that is not a reply: {e}")))),
            Err(e) => Reply::err(e),
        };
        reply
    }

    /// Sends command `name` with `fields` on behalf of `caller`.
    pub async fn command(&self, caller: &Caller, name: &str, fields: Value) -> Result<Done, ProtocolError> {
        let body = with_actor(caller, fields);
        let reply = self.request_as(self.subjects.command(name), body, Some(caller)).await;
        let position = reply.position();
        reply.into_result().map(|data| Done { data, position })
    }

    /// Reads query `name` with `fields` on behalf of `caller`.
    pub async fn query(&self, caller: &Caller, name: &str, fields: Value) -> Result<Value, ProtocolError> {
        let body = with_actor(caller, fields);
        self.request_as(self.subjects.query(name), body, Some(caller))
            .await
            .into_result()
    }

    /// Reads query `name` once the views hold every command acknowledged before this call: the
    /// seeds' clients carry no position, so the gateway asks for the log's head and waits for it.
    pub async fn fresh_query(&self, caller: &Caller, name: &str, mut fields: Value) -> Result<Value, ProtocolError> {
        if let (Some(head), Some(object)) = (self.head().await, fields.as_object_mut()) {
            object.entry("min_position").or_insert(json!(head));
        }
        self.query(caller, name, fields).await
    }

    /// Every item of a list query, page by page (the seeds list everything, unpaged), as of the
    /// log's head when the call came; at most 100 pages of 100.
    pub async fn every_item(&self, caller: &Caller, name: &str, filter: Value) -> Result<Vec<Value>, ProtocolError> {
        let mut items = Vec::new();
        for page in 1..=100u64 {
            let mut fields = filter.clone();
            fields["page"] = json!(page);
            fields["per_page"] = json!(100);
            let data = if page == 1 {
                self.fresh_query(caller, name, fields).await?
            } else {
                self.query(caller, name, fields).await?
            };
            let batch = data["items"].as_array().cloned().unwrap_or_default();
            let done = batch.len() < 100 || items.len() as u64 + 100 >= data["total"].as_u64().unwrap_or(0);
            items.extend(batch);
            if done {
                break;
            }
        }
        Ok(items)
    }

    /// The last committed position of the log, if the command service answers.
    pub async fn head(&self) -> Option<u64> {
        let reply = self.request(self.subjects.health(), b"{}".to_vec()).await;
        reply.data.as_ref()?.get("head")?.as_u64()
    }

    /// Whether `user` has a live connection on some gateway (seed 002's presence).
    pub async fn online(&self, user: &invitebus_events::Id) -> bool {
        let request = self.client.request(self.subjects.presence(user), "".into());
        matches!(
            tokio::time::timeout(Duration::from_millis(500), request).await,
            Ok(Ok(_))
        )
    }
}

/// Whether a reply is a `not_found` error, read without building its data (a success, which
/// always opens with `{"ok":true`, is not parsed at all).
fn not_found(payload: &[u8]) -> bool {
    if !payload.starts_with(br#"{"ok":false"#) {
        return false;
    }
    #[derive(serde::Deserialize)]
    struct Code {
        code: ErrorCode,
    }
    #[derive(serde::Deserialize)]
    struct Head {
        error: Option<Code>,
    }
    serde_json::from_slice::<Head>(payload).is_ok_and(|h| h.error.is_some_and(|e| e.code == ErrorCode::NotFound))
}

/// `fields` with `actor` and `roles` of the caller, whatever the fields said.
pub(crate) fn with_actor(caller: &Caller, fields: Value) -> Vec<u8> {
    let mut object = match fields {
        Value::Object(o) => o,
        _ => Default::default(),
    };
    object.insert("actor".into(), json!(caller.user));
    object.insert("roles".into(), json!(caller.roles));
    serde_json::to_vec(&object).expect("json serializes")
}

/// The largest body a route reads (NATS's default max_payload); anything larger is refused by
/// HTTP itself (413). Bodies over PROTOCOL.md's 64 KiB get `invalid_command`.
pub const MAX_HTTP_BODY: usize = 1024 * 1024;
/// PROTOCOL.md's limit on a client's body, and the bus's allowance for the fields we add to it.
pub use invitebus_events::command::{MAX_BODY, MAX_INJECTED};

/// The most characters of an error's message, and of its field, that leave the gateway: errors
/// may quote input, and a client's 5,000 characters have no business coming back.
pub const MAX_MESSAGE: usize = 300;
pub const MAX_FIELD: usize = 100;

/// `s` cut to `max` characters, with `…` where it was cut.
pub use invitebus_auth::clip;

/// `e` with its message and field clipped (see [`MAX_MESSAGE`]).
pub fn trimmed(mut e: ProtocolError) -> ProtocolError {
    e.message = clip(&e.message, MAX_MESSAGE);
    e.field = e.field.map(|f| clip(&f, MAX_FIELD));
    e
}

/// Reads a JSON object body; an empty body (no bytes at all) is `{}`. Anything else that is not
/// a JSON object, whitespace alone included, is `invalid_command`.
pub fn json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, ProtocolError> {
    if body.len() > MAX_BODY {
        return Err(ProtocolError::invalid_command(format!(
            "the body is over {MAX_BODY} bytes"
        )));
    }
    if body.is_empty() {
        return Ok(Default::default());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(ProtocolError::invalid_command("body is not a JSON object")),
        Err(e) => Err(ProtocolError::invalid_command(format!("body is not JSON: {e}"))),
    }
}
