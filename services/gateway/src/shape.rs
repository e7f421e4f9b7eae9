//! Requests the routes never see, answered in their API's own shape: a body that is too large
//! or does not arrive in time, an unknown path or method, a path or query the router cannot
//! read. axum answers those in plain text; a seed's client reads its own envelope, so every
//! refusal of the framework is turned into the API's error, chosen by the path's prefix.

use crate::bus::{GatewayConfig, MAX_BODY, MAX_HTTP_BODY, MAX_INJECTED};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use invitebus_events::{ErrorCode, ProtocolError};
use std::sync::Arc;

/// How one API answers an error.
type Failure = fn(ProtocolError) -> Response;

/// The API a path belongs to, by the prefixes of its routes (the native API's shape otherwise).
pub fn failure_for(path: &str) -> Failure {
    let under = |prefixes: &[&str]| prefixes.iter().any(|p| path.starts_with(p));
    if under(&["/api/admin/", "/api/exports/"]) {
        crate::admin::failure
    } else if under(&["/api/invitation/", "/approve/", "/reject/"]) {
        crate::conference::failure
    } else if under(&["/openapi/workbench/"]) {
        crate::meeting::failure
    } else if under(&["/channels/", "/invites/"]) {
        crate::codes::failure
    } else if path == "/ws" || path.starts_with("/ws/") {
        crate::signaling::failure
    } else {
        crate::native::failure
    }
}

/// Reads the body within the body deadline and the size bound, then runs the route; a refusal
/// by the framework itself comes back in the API's shape.
pub async fn bounded(State(cfg): State<Arc<GatewayConfig>>, request: Request, next: Next) -> Response {
    let failure = failure_for(request.uri().path());
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_HTTP_BODY as u64) {
        return too_large(failure);
    }
    let read = tokio::time::timeout(cfg.bounds.body_timeout, read_bounded(body));
    let body = match read.await {
        Ok(Ok(body)) => body,
        Ok(Err(Unread::TooLarge)) => return too_large(failure),
        Ok(Err(Unread::Broken(e))) => {
            let e = ProtocolError::invalid_command(format!("the body could not be read: {e}"));
            return closing(failure(e), StatusCode::BAD_REQUEST);
        }
        Err(_) => {
            metrics::counter!("invitebus_gateway_body_timeouts_total").increment(1);
            let e = ProtocolError::invalid_command(format!(
                "the body did not arrive within {} s",
                cfg.bounds.body_timeout.as_secs_f64()
            ));
            return closing(failure(e), StatusCode::REQUEST_TIMEOUT);
        }
    };
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    reshaped(response, failure).await
}

fn too_large(failure: Failure) -> Response {
    let e = ProtocolError::invalid_command(format!("the body is over {MAX_BODY} bytes"));
    closing(failure(e), StatusCode::PAYLOAD_TOO_LARGE)
}

/// Why a body was not read.
enum Unread {
    TooLarge,
    Broken(axum::Error),
}

/// What the routes are given of a body: no route takes more than [`MAX_BODY`] plus what the
/// gateway adds, so of a larger one only that much and a byte are kept (the route refuses it as
/// too large) while the rest is read and dropped, up to [`MAX_HTTP_BODY`]: a request holds at
/// most some 66 KiB here, whatever it sends.
const KEPT: usize = MAX_BODY + MAX_INJECTED + 1;

async fn read_bounded(mut body: Body) -> Result<Bytes, Unread> {
    let mut kept = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(Unread::Broken)?.into_data() else {
            continue;
        };
        total += data.len();
        if total > MAX_HTTP_BODY {
            return Err(Unread::TooLarge);
        }
        let room = KEPT.saturating_sub(kept.len());
        kept.extend_from_slice(data.get(..data.len().min(room)).unwrap_or_default());
    }
    Ok(Bytes::from(kept))
}

/// `response` with `status`, closing the connection, whose unread bytes nobody will read.
fn closing(mut response: Response, status: StatusCode) -> Response {
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A refusal the framework wrote (an error status whose body is not JSON) in the API's shape;
/// anything a route answered passes unchanged.
async fn reshaped(response: Response, failure: Failure) -> Response {
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let e = match status {
        StatusCode::NOT_FOUND => ProtocolError::new(ErrorCode::NotFound, "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => ProtocolError::invalid_command("this route does not take this method"),
        StatusCode::PAYLOAD_TOO_LARGE => ProtocolError::invalid_command(format!("the body is over {MAX_BODY} bytes")),
        _ if text.trim().is_empty() => ProtocolError::invalid_command(status.canonical_reason().unwrap_or("refused")),
        _ => ProtocolError::invalid_command(crate::bus::clip(text.trim(), 300)),
    };
    // The framework's status, even for seeds 000 and 001 (whose routes answer errors with 200):
    // a method a route does not take is 405 to any HTTP client.
    let mut answer = failure(e);
    *answer.status_mut() = status;
    if let Some(allow) = allow {
        answer.headers_mut().insert(header::ALLOW, allow);
    }
    answer
}
