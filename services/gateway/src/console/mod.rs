//! The operator's console at `/console`: a page an admin opens in a browser to watch and drive
//! invitebus (overview, streams, tail, trace, records, exports).
//!
//! Stack: one static page, a stylesheet and a vanilla JavaScript file compiled into the binary
//! (`include_str!`), talking to the JSON and Server-Sent-Events routes below. No template
//! engine, no npm build, no vendored framework: `cargo build` stays self-contained, every page is
//! data from the bus, and the page's Content-Security-Policy allows only its own script.
//!
//! Signing in: the admin's token goes once in a `POST /console/session` body and comes back as
//! an `HttpOnly`, `SameSite=Strict` cookie scoped to `/console` (a browser's `EventSource`
//! cannot send an `Authorization` header, and a token must never sit in a URL the server logs).
//! Every write also carries `X-Invitebus-CSRF`, a value derived from the token that the page
//! learns from the sign-in answer (or `GET /console/api/me`) and a foreign site cannot read.

mod api;
mod live;

use crate::bus::{Caller, GatewayConfig};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use invitebus_events::{ErrorCode, ProtocolError, RecordStatus};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::Arc;

/// The cookie that holds the admin's token.
pub const COOKIE: &str = "invitebus_console";
/// The header every write carries.
pub const CSRF_HEADER: &str = "x-invitebus-csrf";

const PAGE: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

pub fn routes() -> Router<Arc<GatewayConfig>> {
    Router::new()
        .route("/console", get(page))
        .route("/console/app.js", get(script))
        .route("/console/app.css", get(style))
        .route("/console/session", post(sign_in).delete(sign_out))
        .route("/console/api/me", get(me))
        .merge(api::routes())
        .merge(live::routes())
}

/// The page: every page of the console, shown one at a time by the script.
async fn page() -> Response {
    let csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, csp),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PAGE,
    )
        .into_response()
}

async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT).into_response()
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

/// A console route's error: the native API's reply, with the HTTP status of its code.
pub fn failure(e: ProtocolError) -> Response {
    crate::native::failure(e)
}

/// The CSRF value of a session: derived from its token, so nothing is stored.
fn csrf_of(token: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(token.as_bytes()).expect("HMAC takes any key");
    mac.update(b"invitebus-console-csrf");
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// The token in the console's cookie, if the request has one.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// An admin, as the token of a request's cookie names them: the console is for admins only.
fn admin_of(cfg: &GatewayConfig, token: &str, address: Option<IpAddr>) -> Result<Caller, ProtocolError> {
    let claims = cfg
        .verifier
        .verify(token)
        .map_err(|e| ProtocolError::with_field(ErrorCode::Unauthenticated, "token", e.to_string()))?;
    let caller = Caller {
        user: claims.sub,
        roles: claims.roles,
        token: token.to_string(),
        address,
    };
    if !caller.is_admin() {
        return Err(ProtocolError::forbidden("the console is for admins"));
    }
    Ok(caller)
}

/// The signed-in admin of a console request, every route's first extractor: the same rate
/// limits as every other route (the address's before the token is read, the user's after),
/// then the cookie, then for a write (any method but GET) the CSRF header.
pub struct Session(pub Result<Caller, ProtocolError>);

impl FromRequestParts<Arc<GatewayConfig>> for Session {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, cfg: &Arc<GatewayConfig>) -> Result<Session, Self::Rejection> {
        let address = address_of(parts);
        let run = || -> Result<Caller, ProtocolError> {
            limited(parts, cfg.limits.check_address(address))?;
            let token = cookie_token(&parts.headers)
                .ok_or_else(|| ProtocolError::with_field(ErrorCode::Unauthenticated, "token", "not signed in"))?;
            let caller = admin_of(cfg, &token, address)?;
            limited(parts, cfg.limits.check_user(&caller.user))?;
            if parts.method != Method::GET {
                let sent = parts
                    .headers
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if sent != csrf_of(&caller.token) {
                    return Err(ProtocolError::with_field(
                        ErrorCode::Forbidden,
                        CSRF_HEADER,
                        "missing or wrong CSRF header",
                    ));
                }
            }
            Ok(caller)
        };
        Ok(Session(run()))
    }
}

fn address_of(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// A rate limit's refusal as an error, its `Retry-After` set as every route's is.
fn limited(parts: &Parts, checked: Result<(), crate::limits::Refusal>) -> Result<(), ProtocolError> {
    checked.map_err(|r| {
        if let Some(slot) = parts.extensions.get::<crate::limits::RetrySlot>() {
            slot.set(r.retry_after);
        }
        r.error
    })
}

fn cookie(value: &str, max_age: i64) -> HeaderValue {
    let text = format!("{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invitebus_console=; Max-Age=0"))
}

/// `POST /console/session {"token"}` (JSON only: a form from another site cannot sign anyone
/// in): an admin's token becomes the session cookie.
async fn sign_in(State(cfg): State<Arc<GatewayConfig>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let run = async {
        limited(&parts, cfg.limits.check_address(address_of(&parts)))?;
        let json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/json"));
        if !json {
            return Err(ProtocolError::invalid_command("the body must be application/json"));
        }
        let body = axum::body::to_bytes(body, crate::bus::MAX_HTTP_BODY)
            .await
            .map_err(|e| ProtocolError::invalid_command(format!("the body: {e}")))?;
        let body: Value =
            serde_json::from_slice(&body).map_err(|_| ProtocolError::invalid_command("the body is not JSON"))?;
        let token = body["token"]
            .as_str()
            .ok_or_else(|| ProtocolError::missing("token"))?
            .trim();
        // Only a token a cookie can carry as it is (JWTs are base64url and dots).
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            return Err(ProtocolError::invalid("token", "not a token"));
        }
        let caller = admin_of(&cfg, token, address_of(&parts))?;
        limited(&parts, cfg.limits.check_user(&caller.user))?;
        let mut answer = Json(json!({"ok": true, "data": session_data(&caller)})).into_response();
        answer
            .headers_mut()
            .insert(header::SET_COOKIE, cookie(token, seconds_left(&cfg, token)));
        Ok(answer)
    };
    run.await.unwrap_or_else(failure)
}

/// Seconds until `token` expires (0 when it does not verify).
pub fn seconds_left(cfg: &GatewayConfig, token: &str) -> i64 {
    cfg.verifier
        .verify(token)
        .map(|c| (c.exp as i64 - chrono::Utc::now().timestamp()).max(0))
        .unwrap_or(0)
}

/// `DELETE /console/session`: forgets the cookie.
async fn sign_out(Session(caller): Session) -> Response {
    match caller {
        Ok(_) => {
            let mut answer = (StatusCode::OK, Json(json!({"ok": true}))).into_response();
            answer.headers_mut().insert(header::SET_COOKIE, cookie("", 0));
            answer
        }
        Err(e) => failure(e),
    }
}

/// What the page needs of a session: the admin, the CSRF value, the record statuses.
fn session_data(caller: &Caller) -> Value {
    let statuses: Vec<&str> = RecordStatus::ALL.iter().map(|s| s.as_str()).collect();
    json!({"user": caller.user, "csrf": csrf_of(&caller.token), "statuses": statuses})
}

/// `GET /console/api/me`: who is signed in, and the CSRF value of the session.
async fn me(Session(caller): Session) -> Response {
    match caller {
        Ok(caller) => Json(json!({"ok": true, "data": session_data(&caller)})).into_response(),
        Err(e) => failure(e),
    }
}
