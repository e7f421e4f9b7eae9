//! The HTTP gateway: every route turns into NATS commands and queries; it keeps no state.
//!
//! Layout: [`auth`] (JWT, where tokens come from), [`bus`] (the caller, commands and queries on
//! NATS: every route goes through it), one module per API: [`native`] (`/v1/commands`,
//! `/v1/queries`), [`conference`] (seed 000), [`meeting`] (seed 001), [`signaling`] (seed 002's
//! WebSocket), [`codes`] (seed 003), [`admin`] and [`exports`] (seed 004), [`openapi`] (the
//! document of all of them), [`observe`] (`/metrics`, request metrics, trace context), [`limits`] (rate limits), [`shape`] (bodies
//! within bounds, the framework's refusals in each API's shape); [`listen`]
//! ([`serve`]) runs it within connection bounds until shutdown.
#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod bus;
pub mod codes;
pub mod conference;
pub mod console;
pub mod exports;
pub mod limits;
pub mod listen;
pub mod meeting;
pub mod native;
pub mod observe;
pub mod openapi;
pub mod shape;
pub mod signaling;

pub use bus::GatewayConfig;

/// Every route of every API, sharing one configuration.
pub fn router(config: GatewayConfig) -> axum::Router {
    let config = std::sync::Arc::new(config);
    axum::Router::new()
        .merge(native::routes())
        .merge(conference::routes())
        .merge(meeting::routes())
        .merge(signaling::routes())
        .merge(codes::routes())
        .merge(admin::routes())
        .merge(exports::routes())
        .merge(openapi::routes(&config.subjects))
        .merge(console::routes())
        .route("/metrics", axum::routing::get(observe::metrics))
        .layer(axum::middleware::from_fn_with_state(config.clone(), shape::bounded))
        .layer(axum::middleware::from_fn(limits::retry_after))
        .layer(axum::middleware::from_fn(observe::track))
        .layer(axum::extract::DefaultBodyLimit::max(bus::MAX_HTTP_BODY))
        .with_state(config)
}

pub use listen::{serve, Bounds};
