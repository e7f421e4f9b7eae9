//! Tables and pragmas. Streams get a small integer key so the (stream, version) index stays
//! small and new streams land together at its end.

use rusqlite::Connection;

pub(crate) const CREATE: &str = "
CREATE TABLE IF NOT EXISTS streams (
    stream_key  INTEGER PRIMARY KEY,
    stream_id   TEXT NOT NULL UNIQUE,
    stream_type TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    position       INTEGER PRIMARY KEY,
    stream_key     INTEGER NOT NULL,
    version        INTEGER NOT NULL,
    type           TEXT NOT NULL,
    schema         INTEGER NOT NULL,
    recorded_at    TEXT NOT NULL,
    actor          TEXT NOT NULL,
    command_id     TEXT,
    correlation_id TEXT,
    causation_id   TEXT,
    data           TEXT NOT NULL,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL,
    UNIQUE (stream_key, version)
);
CREATE TABLE IF NOT EXISTS commands (
    command_id TEXT PRIMARY KEY,
    position   INTEGER,
    data       TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The columns of an envelope, joined with its stream, in this order.
pub(crate) const ENVELOPE_COLUMNS: &str = "e.position, s.stream_id, s.stream_type, e.version, e.type, e.schema, \
     e.recorded_at, e.actor, e.command_id, e.correlation_id, e.causation_id, e.data, e.prev_hash, e.hash";

pub(crate) fn pragmas(conn: &Connection, synchronous: &str) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(())
}

/// Reads one row of [`ENVELOPE_COLUMNS`].
pub(crate) fn envelope_from_row(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<Result<invitebus_events::Envelope, String>> {
    let position: i64 = row.get(0)?;
    let recorded_at: String = row.get(6)?;
    let data: String = row.get(11)?;
    let recorded_at = match chrono::DateTime::parse_from_rfc3339(&recorded_at) {
        Ok(t) => t.with_timezone(&chrono::Utc),
        Err(e) => return Ok(Err(format!("recorded_at: {e}"))),
    };
    let data = match serde_json::from_str(&data) {
        Ok(d) => d,
        Err(e) => return Ok(Err(format!("data: {e}"))),
    };
    Ok(Ok(invitebus_events::Envelope {
        position: position as u64,
        stream_id: row.get(1)?,
        stream_type: row.get(2)?,
        version: row.get::<_, i64>(3)? as u64,
        event_type: row.get(4)?,
        schema: row.get::<_, i64>(5)? as u32,
        recorded_at,
        actor: row.get(7)?,
        command_id: row.get(8)?,
        correlation_id: row.get(9)?,
        causation_id: row.get(10)?,
        data,
        prev_hash: row.get(12)?,
        hash: row.get(13)?,
    }))
}
