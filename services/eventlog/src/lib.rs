//! The SQLite event log, the source of truth, and its relay to JetStream.
//!
//! Layout:
//! - [`log`]: [`EventLog`], the one writer, the only connection that writes the file: append
//!   batches (group commit) with command dedupe, gapless positions, per-stream versions and the
//!   hash chain; checkpoints (the relay's among them).
//! - [`read`]: [`LogReader`], a read-only connection for anyone else (the relay, audits, history
//!   queries): one stream, everything from a position, a remembered reply, a checkpoint.
//! - `query` (below both): the queries either connection runs, and [`StoredReply`] and
//!   [`Published`]; `checkpoint` (below both): reading and (the writer's) storing checkpoints.
//! - [`verify`]: recomputing the hash chain and naming the first altered position.
//! - [`copy`]: copying `INVITES_EVENTS` into a log, checked against the chain (`restore`), and
//!   dropping a deposed writer's unpublished tail.
//! - [`relay`]: the outbox loop that publishes every position, in order, to `INVITES_EVENTS`.
//! - [`stored`]: what the stream holds at a sequence, and the headers that let a copy of it
//!   finish a command the stream holds only part of.
//! - [`schema`]: the tables and pragmas.
#![forbid(unsafe_code)]

mod checkpoint;
pub mod copy;
mod error;
pub mod log;
mod query;
pub mod read;
pub mod relay;
mod schema;
pub mod stored;
pub mod verify;

pub use error::LogError;
pub use log::{AppendCommand, Appended, EventLog, NewEvent, Options, Sync};
pub use query::{Published, Stored, StoredReply};
pub use read::LogReader;
pub use verify::{verify, VerifyError, VerifyReport};

/// The name of the relay's checkpoint.
pub const RELAY_CHECKPOINT: &str = "relay";
