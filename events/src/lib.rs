//! The invitebus wire contract, shared by every part and every client.
//!
//! Layout:
//! - [`ids`]: the id rule (`^[A-Za-z0-9_-]{1,64}$`) and the validated [`Id`] type.
//! - [`error`]: the error catalogue ([`ErrorCode`]) and the error a command or query answers with.
//! - [`command`]: every command's fields, the common fields, and decoding a request body.
//! - [`event`]: every event's data, schema numbers and upcasting.
//! - [`envelope`]: the stored and published form of an event.
//! - [`status`]: record and invite statuses.
//! - [`subject`]: subject builders for the `invites` prefix (or `INVITEBUS_PREFIX`).
//! - [`reply`]: the reply body of commands and queries.
//! - [`query`]: query names.
//! - [`seeds`]: our error codes and statuses in each seed product's own words.
//! - [`trace`]: the W3C `traceparent` carried from a command to all it causes.
//!
//! Nothing here does I/O: a client can depend on this crate alone.
#![forbid(unsafe_code)]

pub mod command;
pub mod envelope;
pub mod error;
pub mod event;
pub mod ids;
pub mod personal;
pub mod query;
pub mod reply;
pub mod seeds;
pub mod status;
pub mod subject;
pub mod trace;

pub use command::{Command, CommandMeta, CommandRequest};
pub use envelope::Envelope;
pub use error::{ErrorCode, ProtocolError};
pub use event::Event;
pub use ids::Id;
pub use reply::Reply;
pub use status::{InviteStatus, RecordStatus};

/// The user id reserved for invitebus's own workers (scheduler, exporter).
pub const SYSTEM_ACTOR: &str = "system";
/// The role that may read and approve everything.
pub const ADMIN_ROLE: &str = "admin";
