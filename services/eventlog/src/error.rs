use thiserror::Error;

/// Why the log could not do what was asked. Every one maps to `unavailable` for a client,
/// except `Conflict`, which is a race the writer lost on (stream, version).
#[derive(Debug, Error)]
pub enum LogError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored event at position {position} is unreadable: {reason}")]
    Corrupt { position: u64, reason: String },
    /// An event copied from elsewhere (JetStream) that does not continue this log's chain.
    #[error("position {position} does not continue the log's hash chain: {reason}")]
    Chain { position: u64, reason: String },
    #[error("stream {stream_id} already has version {version}")]
    Conflict { stream_id: String, version: u64 },
    /// A writer asked to append without holding the writer's lease (standby writers).
    #[error("this instance does not hold the writer's lease")]
    NotLeader,
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Lock(#[source] invitebus_filelock::LockError),
    /// A reader opened on a path with no file: only the writer creates the log.
    #[error("no event log at {}: the writer (the commands role) creates it; a reader never does", .0.display())]
    Missing(std::path::PathBuf),
    /// A reader opened a log an older invitebus wrote; only the writer brings a file up to date.
    #[error("the event log at {} was written by an older invitebus (no `{column}` column): open it once with the writer (`serve --role commands`, or any role that includes it) to bring it up to date", .path.display())]
    Outdated {
        path: std::path::PathBuf,
        column: &'static str,
    },
}
