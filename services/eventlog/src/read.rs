//! Reading the log: for the relay, audits, history queries and the writer's cache misses.
//!
//! A [`LogReader`] opens the file read-only and never writes: only [`crate::EventLog`], the one
//! writer, changes the file (its events, replies and checkpoints, the relay's among them).

use crate::checkpoint;
use crate::error::LogError;
use crate::query::{self, Published, Stored, StoredReply};
use crate::schema;
use invitebus_events::Envelope;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// A read-only connection to the log; many may be open beside the writer (WAL).
pub struct LogReader {
    conn: Connection,
}

impl LogReader {
    /// Opens the log at `path` read-only. The file must exist and have been opened by the
    /// writer at least once (it creates the tables and brings an older file up to date); a
    /// missing file is [`LogError::Missing`], never created. Works while the writer has the file
    /// open in WAL mode (the reader shares its `-wal` and `-shm` files) and after it has closed.
    pub fn open(path: impl AsRef<Path>) -> Result<LogReader, LogError> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(LogError::Missing(path.to_path_buf()));
        }
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        // No journal_mode here: setting it writes the header; the writer set WAL. query_only
        // refuses even what a read-only open would let through (e.g. on a temporary table).
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "query_only", true)?;
        if let Some(column) = schema::missing_column(&conn)? {
            return Err(LogError::Outdated {
                path: path.to_path_buf(),
                column,
            });
        }
        Ok(LogReader { conn })
    }

    /// The position of the last event, 0 for an empty log.
    pub fn head(&self) -> Result<u64, LogError> {
        Ok(self
            .conn
            .query_row("SELECT IFNULL(MAX(position), 0) FROM events", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
    }

    /// Every event of one stream, in version order; `until` keeps only positions up to it.
    pub fn read_stream(&self, stream_id: &str, until: Option<u64>) -> Result<Vec<Envelope>, LogError> {
        query::read_stream(&self.conn, stream_id, until)
    }

    /// The users whose stream ends with `UserForgotten` (forgotten, and not back since): whose
    /// data keys must be gone. Read at a writer's start, to finish a forget a crash interrupted
    /// between its commit and the key's erasure.
    pub fn forgotten_users(&self) -> Result<Vec<String>, LogError> {
        let mut stmt = self.conn.prepare(
            "SELECT substr(s.stream_id, 6) FROM streams s JOIN events e ON e.stream_key = s.stream_key \
             WHERE s.stream_type = 'user' AND e.type = 'UserForgotten' \
             AND e.version = (SELECT MAX(version) FROM events WHERE stream_key = s.stream_key)",
        )?;
        let users = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<_, _>>()?;
        Ok(users)
    }

    /// Up to `limit` events after position `after`, in position order.
    pub fn read_from(&self, after: u64, limit: usize) -> Result<Vec<Envelope>, LogError> {
        query::read_from(&self.conn, after, limit)
    }

    /// Up to `limit` events after position `after`, their data as stored text (for readers
    /// that decode on other threads: the bulk loads).
    pub fn read_stored(&self, after: u64, limit: usize) -> Result<Vec<Stored>, LogError> {
        query::read_stored(&self.conn, after, limit)
    }

    /// Up to `limit` events after `after`, as the relay publishes them (stored `data` passed through).
    pub fn read_published(&self, after: u64, limit: usize) -> Result<Vec<Published>, LogError> {
        query::read_published(&self.conn, after, limit)
    }

    /// The position of the first event of the command that `position` is part of, when it began
    /// at most `within` events before (one read): the relay stamps a command it resumes in the
    /// middle with its whole span. None past that (the relay looks 4,096 events back, more
    /// than the largest command).
    pub fn command_start(&self, position: u64, within: u64) -> Result<Option<u64>, LogError> {
        query::command_start(&self.conn, position, within)
    }

    /// Every event after `after`, read page by page, for replays and audits of the whole log.
    pub fn iter_from(&self, after: u64) -> impl Iterator<Item = Result<Envelope, LogError>> + '_ {
        let mut next = after;
        let mut page: std::vec::IntoIter<Envelope> = Vec::new().into_iter();
        let mut done = false;
        std::iter::from_fn(move || loop {
            if let Some(e) = page.next() {
                next = e.position;
                return Some(Ok(e));
            }
            if done {
                return None;
            }
            match self.read_from(next, 1000) {
                Ok(rows) => {
                    done = rows.len() < 1000;
                    page = rows.into_iter();
                }
                Err(e) => {
                    done = true;
                    return Some(Err(e));
                }
            }
        })
    }

    /// The last position whose `recorded_at` is at or before `time` (RFC 3339).
    pub fn position_at(&self, time: &str) -> Result<u64, LogError> {
        let t = chrono::DateTime::parse_from_rfc3339(time)
            .map(|t| invitebus_events::envelope::format_time(&t.with_timezone(&chrono::Utc)))
            .unwrap_or_else(|_| time.to_string());
        Ok(self.conn.query_row(
            "SELECT IFNULL(MAX(position), 0) FROM events WHERE recorded_at <= ?1",
            [t],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// The reply remembered for `actor`'s command `command_type` with `command_id`, if committed.
    pub fn lookup_command(
        &self,
        actor: &str,
        command_type: &str,
        command_id: &str,
    ) -> Result<Option<StoredReply>, LogError> {
        Ok(query::lookup_commands(&self.conn, &[command_id])?
            .into_iter()
            .find(|r| r.answers(actor, command_type)))
    }

    /// The position stored under checkpoint `name`, 0 when none is. Only the writer stores one.
    pub fn checkpoint(&self, name: &str) -> Result<u64, LogError> {
        checkpoint::get(&self.conn, name)
    }

    /// The underlying connection, read-only, for audits that need their own SQL.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}
