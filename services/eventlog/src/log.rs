//! The writer side of the log. One [`EventLog`] owns the write connection; it appends whole
//! batches of commands in one transaction, so one fsync serves them all.

use crate::checkpoint;
use crate::error::LogError;
use crate::query::{self, Published, StoredReply};
use crate::read::LogReader;
use crate::schema;
use chrono::{DateTime, Utc};
use invitebus_events::envelope::{
    chain_hash, envelope_json, format_time, Envelope, HashedFields, Unhashed, GENESIS_HASH,
};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sync {
    /// `synchronous=FULL`: a commit survives a power cut. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: a commit survives a process crash, not a power cut.
    Normal,
}

/// How to open the log.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub sync: Sync,
}

/// An event the writer has decided, with the version it takes in its stream.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub stream_id: String,
    pub stream_type: &'static str,
    pub version: u64,
    pub event_type: &'static str,
    pub schema: u32,
    /// The data as canonical JSON text (compact, keys sorted): it is hashed and stored as is.
    pub data: String,
}

/// One command's share of a batch: its events and the reply data to remember for its command_id.
#[derive(Debug, Clone)]
pub struct AppendCommand {
    pub actor: String,
    /// The command's name; with `actor` and `command_id` the key a retry is known by.
    pub command_type: &'static str,
    /// [`invitebus_events::Command::digest`]: a retry must carry the same fields.
    pub command_digest: String,
    pub command_id: Option<String>,
    pub correlation_id: Option<String>,
    /// The W3C trace context the command came with, kept (unhashed) with each of its events.
    pub traceparent: Option<String>,
    pub causation_id: Option<String>,
    pub events: Vec<NewEvent>,
    /// Stored under `command_id` so a retry gets the same reply.
    pub reply_data: Value,
}

/// What a committed batch produced.
#[derive(Debug)]
pub struct Appended {
    /// Per command, the position of its last event.
    pub positions: Vec<Option<u64>>,
    /// Every event of the batch, ready for the relay, in position order.
    pub published: Vec<Published>,
}

/// A batch inside its transaction, before commit.
struct Staged {
    positions: Vec<Option<u64>>,
    head: u64,
    last_hash: String,
    new_keys: Vec<(String, i64)>,
    published: Vec<Published>,
}

/// Stream keys kept in memory, cleared when this many are held.
const STREAM_KEY_CACHE: usize = 200_000;

/// The single writer of the event log.
pub struct EventLog {
    pub(crate) conn: Connection,
    path: PathBuf,
    pub(crate) head: u64,
    pub(crate) last_hash: String,
    pub(crate) stream_keys: HashMap<String, i64>,
}

impl EventLog {
    /// Opens (creating if needed) the log at `path`.
    pub fn open(path: impl AsRef<Path>, options: &Options) -> Result<EventLog, LogError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let mut conn = Connection::open(&path)?;
        let sync = match options.sync {
            Sync::Full => "FULL",
            Sync::Normal => "NORMAL",
        };
        schema::pragmas(&conn, sync)?;
        schema::prepare(&mut conn)?;
        let (head, last_hash) = tip(&conn)?;
        Ok(EventLog {
            conn,
            path,
            head,
            last_hash,
            stream_keys: HashMap::new(),
        })
    }

    /// The position of the last event, 0 for an empty log.
    pub fn head(&self) -> u64 {
        self.head
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A second, read-only connection to the same file ([`LogReader`] never writes).
    pub fn reader(&self) -> Result<LogReader, LogError> {
        LogReader::open(&self.path)
    }

    /// Reads through the writer's own connection (what the writer itself needs on a cache miss).
    pub fn read_stream(&self, stream_id: &str) -> Result<Vec<Envelope>, LogError> {
        if !self.stream_exists(stream_id)? {
            return Ok(vec![]);
        }
        query::read_stream(&self.conn, stream_id, None)
    }

    /// Every export event requested by `user` (for the per-user export limits).
    pub fn read_exports_of(&self, user: &str) -> Result<Vec<Envelope>, LogError> {
        query::read_exports_of(&self.conn, user)
    }

    /// Every reply remembered under one of `command_ids`, whoever sent it, in one query: the
    /// writer picks the one of the same actor and command ([`StoredReply::answers`]).
    pub fn lookup_commands(&self, command_ids: &[&str]) -> Result<Vec<StoredReply>, LogError> {
        query::lookup_commands(&self.conn, command_ids)
    }

    /// True when the stream has at least one event (a cheap check before reading it).
    pub fn stream_exists(&self, stream_id: &str) -> Result<bool, LogError> {
        if self.stream_keys.contains_key(stream_id) {
            return Ok(true);
        }
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM streams WHERE stream_id = ?1")?
            .query_row([stream_id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Appends every command's events in one transaction. Returns, per command, the position of
    /// its last event (None when it appended none). On error nothing of the batch is stored.
    pub fn append(
        &mut self,
        batch: &[AppendCommand],
        recorded_at: DateTime<Utc>,
    ) -> Result<Vec<Option<u64>>, LogError> {
        self.append_batch(batch, recorded_at, None).map(|a| a.positions)
    }

    /// [`append`](Self::append), also returning each event as the relay publishes it, and
    /// storing `checkpoint` (name, position) in the same transaction when given.
    pub fn append_batch(
        &mut self,
        batch: &[AppendCommand],
        recorded_at: DateTime<Utc>,
        checkpoint: Option<(&str, u64)>,
    ) -> Result<Appended, LogError> {
        // IMMEDIATE takes the write lock up front (waiting on busy_timeout); a deferred transaction
        // that reads first fails at once with SQLITE_BUSY if another connection wrote meanwhile.
        // Any error below drops `tx` uncommitted, which rolls the whole batch back (a failed
        // COMMIT too); the writer's own fields change only after the commit.
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let staged = stage(&tx, self.head, &self.last_hash, &self.stream_keys, batch, &recorded_at)?;
        if let Some((name, position)) = checkpoint {
            crate::checkpoint::set(&tx, name, position)?;
        }
        tx.commit()?;
        self.head = staged.head;
        self.last_hash = staged.last_hash;
        if self.stream_keys.len() + staged.new_keys.len() > STREAM_KEY_CACHE {
            self.stream_keys.clear();
        }
        self.stream_keys.extend(staged.new_keys);
        Ok(Appended {
            positions: staged.positions,
            published: staged.published,
        })
    }

    /// Forgets cached stream keys (after a failed commit, or to bound memory).
    pub fn clear_cache(&mut self) {
        self.stream_keys.clear();
    }

    /// The position stored under checkpoint `name`, 0 when none is.
    pub fn checkpoint(&self, name: &str) -> Result<u64, LogError> {
        checkpoint::get(&self.conn, name)
    }

    /// Stores checkpoint `name` in a transaction of its own ([`append_batch`](Self::append_batch)
    /// stores one inside a batch's). The writer is the only connection that writes the file.
    pub fn set_checkpoint(&self, name: &str, position: u64) -> Result<(), LogError> {
        checkpoint::set(&self.conn, name, position)
    }
}

/// One event's row, in the column order both the writer ([`stage`]) and a copy of the stream bind.
pub(crate) const INSERT_EVENT: &str =
    "INSERT INTO events (position, stream_key, version, type, schema, recorded_at, actor, \
     command_id, correlation_id, causation_id, data, prev_hash, hash, command_type, command_digest, traceparent) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";

/// Inserts the batch inside the open transaction `tx`, after `head` and `last_hash`, with the
/// stream keys the writer holds in memory.
fn stage(
    tx: &Connection,
    head: u64,
    last_hash: &str,
    stream_keys: &HashMap<String, i64>,
    batch: &[AppendCommand],
    recorded_at: &DateTime<Utc>,
) -> Result<Staged, LogError> {
    let recorded = format_time(recorded_at);
    let mut staged = Staged {
        positions: Vec::with_capacity(batch.len()),
        head,
        last_hash: last_hash.to_string(),
        new_keys: Vec::new(),
        published: Vec::new(),
    };
    let mut insert = tx.prepare_cached(INSERT_EVENT)?;
    let mut remember = tx.prepare_cached(
        "INSERT INTO command_replies (command_id, actor, command_type, digest, position, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for cmd in batch {
        let mut last = None;
        for ev in &cmd.events {
            let key = match stream_keys.get(&ev.stream_id) {
                Some(k) => *k,
                None => match staged.new_keys.iter().find(|(id, _)| id == &ev.stream_id) {
                    Some((_, k)) => *k,
                    None => {
                        let k = stream_key(tx, &ev.stream_id, ev.stream_type)?;
                        staged.new_keys.push((ev.stream_id.clone(), k));
                        k
                    }
                },
            };
            let position = staged.head + 1;
            let data = &ev.data;
            let fields = HashedFields {
                position,
                stream_id: &ev.stream_id,
                stream_type: ev.stream_type,
                version: ev.version,
                event_type: ev.event_type,
                schema: ev.schema,
                recorded_at,
                actor: &cmd.actor,
                command_id: cmd.command_id.as_deref(),
                correlation_id: cmd.correlation_id.as_deref(),
                causation_id: cmd.causation_id.as_deref(),
            };
            let unhashed = Unhashed {
                command_type: Some(cmd.command_type),
                command_digest: Some(&cmd.command_digest),
                traceparent: cmd.traceparent.as_deref(),
            };
            let hash = chain_hash(&staged.last_hash, &fields.canonical_bytes(data.as_bytes()));
            let res = insert.execute(params![
                position as i64,
                key,
                ev.version as i64,
                ev.event_type,
                ev.schema,
                recorded,
                cmd.actor,
                cmd.command_id,
                cmd.correlation_id,
                cmd.causation_id,
                data,
                staged.last_hash,
                hash,
                cmd.command_type,
                cmd.command_digest,
                cmd.traceparent,
            ]);
            if let Err(rusqlite::Error::SqliteFailure(f, _)) = &res {
                if f.code == rusqlite::ErrorCode::ConstraintViolation {
                    return Err(LogError::Conflict {
                        stream_id: ev.stream_id.clone(),
                        version: ev.version,
                    });
                }
            }
            res?;
            staged.published.push(Published {
                hash: hash.clone(),
                reply: None,
                starts_command: last.is_none(),
                ends_command: false,
                traceparent: cmd.traceparent.clone(),
                position,
                event_type: ev.event_type.to_string(),
                stream_id: ev.stream_id.clone(),
                payload: envelope_json(&fields, &unhashed, data, &staged.last_hash, &hash),
            });
            staged.head = position;
            staged.last_hash = hash;
            last = Some(position);
        }
        if let (Some(_), Some(event)) = (last, staged.published.last_mut()) {
            event.ends_command = true;
        }
        if let Some(id) = &cmd.command_id {
            let data = serde_json::to_string(&cmd.reply_data).expect("json values serialize");
            remember.execute(params![
                id,
                cmd.actor,
                cmd.command_type,
                cmd.command_digest,
                last.map(|p| p as i64),
                data
            ])?;
            if let (Some(_), Some(event)) = (last, staged.published.last_mut()) {
                event.reply = Some(data);
            }
        }
        staged.positions.push(last);
    }
    Ok(staged)
}

/// The log's last position and hash (0 and the genesis hash when empty).
pub(crate) fn tip(conn: &Connection) -> Result<(u64, String), LogError> {
    Ok(conn
        .query_row(
            "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?)),
        )
        .optional()?
        .unwrap_or((0, GENESIS_HASH.to_string())))
}

/// The key of `stream_id`, made when the stream is new.
pub(crate) fn stream_key(conn: &Connection, stream_id: &str, stream_type: &str) -> Result<i64, LogError> {
    let found = conn
        .prepare_cached("SELECT stream_key FROM streams WHERE stream_id = ?1")?
        .query_row([stream_id], |r| r.get(0))
        .optional()?;
    if let Some(k) = found {
        return Ok(k);
    }
    conn.prepare_cached("INSERT INTO streams (stream_id, stream_type) VALUES (?1, ?2)")?
        .execute([stream_id, stream_type])?;
    Ok(conn.last_insert_rowid())
}
