//! Named positions stored beside the events (the relay's, and any other follower's that keeps
//! its progress in the log file). Reading is open to every connection; writing is for the one
//! writer only: [`crate::EventLog`] calls [`set`], inside a batch's transaction or alone.

use crate::error::LogError;
use rusqlite::{params, Connection, OptionalExtension};

/// The position stored under `name`, 0 when none is.
pub(crate) fn get(conn: &Connection, name: &str) -> Result<u64, LogError> {
    Ok(conn
        .prepare_cached("SELECT position FROM checkpoints WHERE name = ?1")?
        .query_row([name], |r| r.get::<_, i64>(0))
        .optional()?
        .unwrap_or(0) as u64)
}

/// Stores `position` under `name`: the writer's connection only (a reader's is read-only).
pub(crate) fn set(conn: &Connection, name: &str, position: u64) -> Result<(), LogError> {
    conn.prepare_cached(
        "INSERT INTO checkpoints (name, position) VALUES (?1, ?2) \
         ON CONFLICT(name) DO UPDATE SET position = excluded.position",
    )?
    .execute(params![name, position as i64])?;
    Ok(())
}
