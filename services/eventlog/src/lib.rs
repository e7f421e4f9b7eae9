//! The SQLite event log, the source of truth, and its relay to JetStream.
//!
//! Layout:
//! - [`log`]: [`EventLog`], the one writer: append batches (group commit) with command dedupe,
//!   gapless positions, per-stream versions and the hash chain; checkpoints.
//! - [`read`]: [`LogReader`], read-only access for anyone else: one stream, everything from a
//!   position, a remembered reply.
//! - [`verify`]: recomputing the hash chain and naming the first altered position.
//! - [`relay`]: the outbox loop that publishes every position, in order, to `INVITES_EVENTS`.
//! - [`schema`]: the tables and pragmas.
#![forbid(unsafe_code)]

mod error;
pub mod log;
pub mod read;
pub mod relay;
mod schema;
pub mod verify;

pub use error::LogError;
pub use log::{AppendCommand, Appended, EventLog, NewEvent, Options, Sync};
pub use read::{LogReader, Published, StoredReply};
pub use verify::{verify, VerifyError, VerifyReport};

/// The name of the relay's checkpoint.
pub const RELAY_CHECKPOINT: &str = "relay";
