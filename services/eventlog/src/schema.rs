//! Tables and pragmas. Streams get a small integer key so the (stream, version) index stays
//! small and new streams land together at its end.

use rusqlite::{Connection, TransactionBehavior};

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
    command_type   TEXT,
    command_digest TEXT,
    traceparent    TEXT,
    UNIQUE (stream_key, version)
);
-- A command's identity is (actor, command_type, command_id); '' in command_type and digest marks
-- a reply remembered before they were kept (it matches any type and any body of that actor).
CREATE TABLE IF NOT EXISTS command_replies (
    command_id   TEXT NOT NULL,
    actor        TEXT NOT NULL,
    command_type TEXT NOT NULL,
    digest       TEXT NOT NULL,
    position     INTEGER,
    data         TEXT NOT NULL,
    PRIMARY KEY (command_id, actor, command_type)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The columns of an envelope, joined with its stream, in this order.
pub(crate) const ENVELOPE_COLUMNS: &str = "e.position, s.stream_id, s.stream_type, e.version, e.type, e.schema, \
     e.recorded_at, e.actor, e.command_id, e.correlation_id, e.causation_id, e.data, e.prev_hash, e.hash, \
     e.command_type, e.command_digest, e.traceparent";

/// The envelope columns later versions added to `events`.
const ADDED_COLUMNS: [&str; 3] = ["command_type", "command_digest", "traceparent"];

/// The first added column an older file lacks; None when it has them all (or has no `events`
/// table yet, which only the writer creates).
pub(crate) fn missing_column(conn: &Connection) -> rusqlite::Result<Option<&'static str>> {
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('events')")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if columns.is_empty() {
        return Ok(None);
    }
    Ok(ADDED_COLUMNS
        .into_iter()
        .find(|c| !columns.iter().any(|have| have == c)))
}

/// Creates the tables, and brings a log written by an earlier version up to date: events get
/// the command's type and digest (empty for old rows), and replies remembered by `command_id`
/// alone move to `command_replies` under the actor of their events, for any type and body.
/// Replies of commands that appended nothing have no actor to keep and are dropped.
///
/// The writer's connection only: one transaction, rolled back whole on any error.
pub(crate) fn prepare(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let conn = &*tx;
    conn.execute_batch(CREATE)?;
    while let Some(column) = missing_column(conn)? {
        conn.execute_batch(&format!("ALTER TABLE events ADD COLUMN {column} TEXT;"))?;
    }
    let old_table: bool = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'commands'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if old_table {
        conn.execute_batch(
            "INSERT OR IGNORE INTO command_replies (command_id, actor, command_type, digest, position, data) \
             SELECT c.command_id, e.actor, '', '', c.position, c.data FROM commands c JOIN events e ON e.position = c.position; \
             DROP TABLE commands;",
        )?;
    }
    tx.commit()
}

/// The writer's pragmas (a reader only sets its busy timeout: `journal_mode` writes the header).
pub(crate) fn pragmas(conn: &Connection, synchronous: &str) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    // What is deleted (a deposed writer's tail, a discarded command row) is overwritten.
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(())
}

/// Reads one row of [`ENVELOPE_COLUMNS`].
pub(crate) fn envelope_from_row(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<Result<invitebus_events::Envelope, String>> {
    let data: String = row.get(11)?;
    let data = match serde_json::from_str(&data) {
        Ok(d) => d,
        Err(e) => return Ok(Err(format!("data: {e}"))),
    };
    Ok(stored_from_row(row)?.map(|mut env| {
        env.data = data;
        env
    }))
}

/// Reads one row of [`ENVELOPE_COLUMNS`] leaving `data` as stored text (the envelope's is Null),
/// for readers that decode it themselves, on other threads.
pub(crate) fn stored_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<invitebus_events::Envelope, String>> {
    let position: i64 = row.get(0)?;
    let recorded_at: String = row.get(6)?;
    let recorded_at = match chrono::DateTime::parse_from_rfc3339(&recorded_at) {
        Ok(t) => t.with_timezone(&chrono::Utc),
        Err(e) => return Ok(Err(format!("recorded_at: {e}"))),
    };
    let data = serde_json::Value::Null;
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
        command_type: row.get(14)?,
        command_digest: row.get(15)?,
        traceparent: row.get(16)?,
        data,
        prev_hash: row.get(12)?,
        hash: row.get(13)?,
    }))
}
