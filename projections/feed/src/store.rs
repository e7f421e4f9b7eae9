//! What every projection's SQLite file shares: opening it with the same pragmas, and applying a
//! batch of events with the checkpoint in the same transaction (skipping what is at or below it).

use invitebus_events::{Envelope, Event};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

const CHECKPOINTS: &str =
    "CREATE TABLE IF NOT EXISTS checkpoints (name TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID;";

/// Opens (creating folder and file) a projection file in WAL mode and runs its `schema`.
pub fn open(path: &Path, schema: &str) -> rusqlite::Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|_| rusqlite::Error::InvalidPath(dir.to_path_buf()))?;
    }
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(CHECKPOINTS)?;
    conn.execute_batch(schema)?;
    Ok(conn)
}

/// The position checkpoint `name` has reached (0 when none).
pub fn checkpoint(conn: &Connection, name: &str) -> rusqlite::Result<u64> {
    Ok(conn
        .query_row("SELECT position FROM checkpoints WHERE name = ?1", [name], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?
        .unwrap_or(0) as u64)
}

/// Applies the events after `*position` with `apply` (given each event and its position), then stores the new position as checkpoint
/// `name`, all in one IMMEDIATE transaction (other connections write the same file; a deferred one
/// that read first would fail with SQLITE_BUSY instead of waiting). `*position` moves on commit.
pub fn apply_batch<E: From<rusqlite::Error>>(
    conn: &mut Connection,
    name: &str,
    position: &mut u64,
    events: &[Envelope],
    unreadable: impl Fn(u64, String) -> E,
    mut apply: impl FnMut(&Connection, &Event, u64) -> Result<(), E>,
) -> Result<(), E> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut at = *position;
    for env in events {
        if env.position <= at {
            continue;
        }
        let event = env.event().map_err(|e| unreadable(env.position, e.to_string()))?;
        apply(&tx, &event, env.position)?;
        at = env.position;
    }
    tx.prepare_cached(
        "INSERT INTO checkpoints (name, position) VALUES (?1, ?2) \
         ON CONFLICT(name) DO UPDATE SET position = excluded.position",
    )?
    .execute(params![name, at as i64])?;
    tx.commit()?;
    *position = at;
    Ok(())
}
