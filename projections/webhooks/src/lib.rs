//! Webhooks: each matching event delivered to its endpoints as an HTTP POST of the event's
//! envelope, signed, in position order per endpoint, one at a time, retried with backoff.
//!
//! Layout:
//! - [`registry`]: the projection of the endpoints from `WebhookRegistered` / `Deleted` /
//!   `Replayed` (rebuildable from the events like every projection).
//! - [`deliveries`]: where each endpoint's delivery stands, in a file of its own (it is not
//!   derived from events, so a rebuilt registry never moves it back).
//! - [`sign`]: the `Invitebus-Signature` header (Stripe's scheme) and its check.
//! - [`target`]: which addresses a delivery may connect to, checked at delivery time.
//! - [`worker`]: one endpoint's loop: read the stream from its position, POST what matches.
//! - [`service`]: the role: the registry's feed, a worker per live endpoint, the `webhooks`
//!   query.
#![forbid(unsafe_code)]

pub mod deliveries;
pub mod registry;
pub mod service;
pub mod sign;
pub mod target;
pub mod worker;

pub use service::{WebhooksConfig, WebhooksService};

/// Why the webhooks role cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("event at position {position}: {reason}")]
    Event { position: u64, reason: String },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Lock(#[from] invitebus_filelock::LockError),
    #[error("nats: {0}")]
    Nats(#[source] Box<dyn std::error::Error + Send + Sync>),
}
