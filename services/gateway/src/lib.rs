//! The HTTP gateway: every route turns into NATS commands and queries; it keeps no state.
//!
//! Layout: [`auth`] (JWT, where tokens come from), [`native`] (`POST /v1/commands/{Command}` and
//! `POST /v1/queries/{query}`, one to one onto NATS), [`serve`] (the server and its shutdown).
//! The seeds' own REST shapes are not here yet.
#![forbid(unsafe_code)]

pub mod auth;
pub mod native;

pub use native::{router, GatewayConfig};

/// Serves `router` on `addr` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
