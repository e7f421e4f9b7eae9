//! What the gateway tells an operator: `GET /metrics` (the process's Prometheus scrape, rendered
//! by whatever the binary installed), a count and a duration for every request by API, route
//! template and status (never an id: label cardinality stays bounded), and the W3C `traceparent`
//! of each request passed on as a header with every command and query it sends.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Instant;

tokio::task_local! {
    /// The `traceparent` of the request this task is answering.
    static TRACE: Option<invitebus_events::trace::Traceparent>;
}

/// The current request's trace context, for the NATS headers of what it sends.
pub fn current_trace() -> Option<invitebus_events::trace::Traceparent> {
    TRACE.try_with(|t| t.clone()).ok().flatten()
}

/// Which API a route template belongs to.
pub fn api_of(route: &str) -> &'static str {
    match route {
        r if r.starts_with("/v1/") => "native",
        r if r.starts_with("/api/invitation") || r.starts_with("/approve/") || r.starts_with("/reject/") => "seed000",
        r if r.starts_with("/openapi/workbench") => "seed001",
        "/ws" => "seed002",
        r if r.starts_with("/channels/") || r.starts_with("/invites/") => "seed003",
        r if r.starts_with("/api/admin") || r.starts_with("/api/exports") => "seed004",
        _ => "meta",
    }
}

/// A route template as a label: `/v1/commands/:command` (braces in label values are legal,
/// but some text-format parsers drop such lines; found with prometheus-parse 0.2).
pub fn label_of(template: &str) -> String {
    template.replace('{', ":").replace('}', "")
}

/// Counts and times every request; runs the handler with the request's trace context.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| label_of(p.as_str()))
        .unwrap_or_else(|| "unmatched".to_string());
    let trace = request
        .headers()
        .get(invitebus_events::trace::TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(invitebus_events::trace::Traceparent::parse);
    let response = TRACE.scope(trace, next.run(request)).await;
    let api = api_of(&route);
    let status = response.status().as_u16().to_string();
    metrics::counter!("invitebus_gateway_requests_total", "api" => api, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("invitebus_gateway_request_duration_seconds", "api" => api, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Renders the process's metrics in the Prometheus text format.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// `GET /metrics`.
pub async fn metrics(State(cfg): State<Arc<crate::GatewayConfig>>) -> Response {
    match &cfg.metrics {
        Some(render) => (
            [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            render(),
        )
            .into_response(),
        None => (axum::http::StatusCode::NOT_FOUND, "no metrics recorder in this process").into_response(),
    }
}

/// Counts an open WebSocket for as long as it lives (`invitebus_websocket_sessions`).
pub struct Session;

impl Session {
    pub fn open() -> Session {
        metrics::gauge!("invitebus_websocket_sessions").increment(1.0);
        Session
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        metrics::gauge!("invitebus_websocket_sessions").decrement(1.0);
    }
}
