//! The log's queries, on any connection to it (the writer's own or a reader's), and what they
//! return. Below both [`crate::log`] and [`crate::read`]: it imports neither.

use crate::error::LogError;
use crate::schema::{self, ENVELOPE_COLUMNS};
use invitebus_events::envelope::{envelope_json, HashedFields, Unhashed};
use invitebus_events::Envelope;
use rusqlite::{params, Connection};
use serde_json::Value;

/// A committed command's remembered reply, with the identity it was committed under.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReply {
    pub command_id: String,
    pub actor: String,
    /// None for a reply remembered before command types were kept: it answers any type.
    pub command_type: Option<String>,
    /// None for a reply remembered before digests were kept: it answers any body.
    pub digest: Option<String>,
    pub position: Option<u64>,
    pub data: Value,
}

impl StoredReply {
    /// True when this reply belongs to `actor`'s command `command_type` (the same command_id
    /// sent by someone else, or for another command, is another command).
    pub fn answers(&self, actor: &str, command_type: &str) -> bool {
        self.actor == actor && self.command_type.as_deref().is_none_or(|t| t == command_type)
    }

    /// True when a retry with `digest` carries the same fields as the command remembered.
    pub fn same_body(&self, digest: &str) -> bool {
        self.digest.as_deref().is_none_or(|d| d == digest)
    }
}

/// An event ready to publish: its subject parts and its envelope as JSON bytes.
#[derive(Debug, Clone)]
pub struct Published {
    pub position: u64,
    /// Published as the message's `traceparent` header.
    pub traceparent: Option<String>,
    pub event_type: String,
    pub stream_id: String,
    pub payload: Vec<u8>,
    /// The event's chain hash: a message JetStream already holds at this sequence is this event
    /// only if it carries the same one (the relay's fencing).
    pub hash: String,
    /// On the last event of a command sent with a `command_id`: the reply remembered for it, as
    /// JSON text, published as the `Invitebus-Reply` header so a log copied from the stream
    /// (`restore`, a standby) answers a retry the same way.
    pub reply: Option<String>,
    /// The first event of its command: the relay stamps a command of several events on its
    /// first message with the rest of it ([`crate::stored`]).
    pub starts_command: bool,
    /// The last event of its command: the relay cuts rounds, and stops when its lease ends,
    /// only after one, so that a writer change never leaves half a command in the stream.
    pub ends_command: bool,
}

/// The events after `?1`, at most `?2`, in position order: what the live reader, the bulk
/// reader and the relay each read, one statement for the three.
fn events_after(conn: &Connection) -> rusqlite::Result<rusqlite::CachedStatement<'_>> {
    conn.prepare_cached(&format!(
        "SELECT {ENVELOPE_COLUMNS} FROM events e JOIN streams s ON s.stream_key = e.stream_key \
         WHERE e.position > ?1 ORDER BY e.position LIMIT ?2"
    ))
}

/// Up to `limit` events after position `after`, in position order.
pub(crate) fn read_from(conn: &Connection, after: u64, limit: usize) -> Result<Vec<Envelope>, LogError> {
    let mut stmt = events_after(conn)?;
    let rows = collect(stmt.query(params![after as i64, limit as i64])?);
    rows
}

/// An event as stored: its envelope without `data` (Null), and `data` as the stored JSON text.
#[derive(Debug, Clone)]
pub struct Stored {
    pub envelope: Envelope,
    pub data: String,
}

/// Up to `limit` events after position `after`, in position order, their data left as text.
pub(crate) fn read_stored(conn: &Connection, after: u64, limit: usize) -> Result<Vec<Stored>, LogError> {
    let mut stmt = events_after(conn)?;
    let mut rows = stmt.query(params![after as i64, limit as i64])?;
    let mut out = Vec::with_capacity(limit.min(16_384));
    while let Some(row) = rows.next()? {
        match schema::stored_from_row(row)? {
            Ok(envelope) => out.push(Stored {
                envelope,
                data: row.get(11)?,
            }),
            Err(reason) => {
                let position = row.get::<_, i64>(0)? as u64;
                return Err(LogError::Corrupt { position, reason });
            }
        }
    }
    Ok(out)
}

/// Every export event requested by `user`, in position order (exports are few; this scans them).
pub(crate) fn read_exports_of(conn: &Connection, user: &str) -> Result<Vec<Envelope>, LogError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENVELOPE_COLUMNS} FROM streams s JOIN events e ON e.stream_key = s.stream_key \
         WHERE s.stream_type = 'export' AND json_extract(e.data, '$.requested_by') = ?1 ORDER BY e.position"
    ))?;
    let rows = collect(stmt.query(params![user])?);
    rows
}

pub(crate) fn read_stream(conn: &Connection, stream_id: &str, until: Option<u64>) -> Result<Vec<Envelope>, LogError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENVELOPE_COLUMNS} FROM streams s JOIN events e ON e.stream_key = s.stream_key \
         WHERE s.stream_id = ?1 AND e.position <= ?2 ORDER BY e.version"
    ))?;
    let rows = collect(stmt.query(params![stream_id, until.map(|u| u as i64).unwrap_or(i64::MAX)])?);
    rows
}

fn collect(mut rows: rusqlite::Rows<'_>) -> Result<Vec<Envelope>, LogError> {
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        match schema::envelope_from_row(row)? {
            Ok(env) => out.push(env),
            Err(reason) => {
                let position = row.get::<_, i64>(0)? as u64;
                return Err(LogError::Corrupt { position, reason });
            }
        }
    }
    Ok(out)
}

/// Every reply remembered under one of `command_ids`, in one query.
pub(crate) fn lookup_commands(conn: &Connection, command_ids: &[&str]) -> Result<Vec<StoredReply>, LogError> {
    let mut out = Vec::new();
    if command_ids.is_empty() {
        return Ok(out);
    }
    let ids = serde_json::to_string(command_ids).expect("strings serialize");
    let mut stmt = conn.prepare_cached(
        "SELECT command_id, actor, command_type, digest, position, data FROM command_replies \
         WHERE command_id IN (SELECT value FROM json_each(?1))",
    )?;
    let mut rows = stmt.query([ids])?;
    let nonempty = |s: String| Some(s).filter(|s| !s.is_empty());
    while let Some(row) = rows.next()? {
        let position: Option<i64> = row.get(4)?;
        let data: String = row.get(5)?;
        out.push(StoredReply {
            command_id: row.get(0)?,
            actor: row.get(1)?,
            command_type: nonempty(row.get(2)?),
            digest: nonempty(row.get(3)?),
            position: position.map(|p| p as u64),
            data: serde_json::from_str(&data).map_err(|e| LogError::Corrupt {
                position: position.unwrap_or(0) as u64,
                reason: format!("the reply remembered for a command: {e}"),
            })?,
        });
    }
    Ok(out)
}

/// Up to `limit` events after `after`, as the relay publishes them (stored `data` passed through).
///
/// Where a command starts and ends comes from the neighbours (one row read on each side): an
/// event ends its command when the next one was appended by another command (other actor,
/// command, id, digest, correlation or time) or there is none (the writer commits whole
/// commands). Two identical commands of one batch without a `command_id` read as one: a larger
/// unit, harmless for cutting rounds. Replies are looked up only for events that end a command.
pub(crate) fn read_published(conn: &Connection, after: u64, limit: usize) -> Result<Vec<Published>, LogError> {
    let from = after.saturating_sub(1);
    let mut rows = read_published_rows(conn, from, limit.saturating_add(1 + (after - from) as usize))?;
    let before = match after > 0 && rows.first().is_some_and(|(e, _)| e.position == after) {
        true => Some(rows.remove(0).1),
        false => None,
    };
    // Flags first, from borrowed neighbours (no key is copied on the relay's path).
    let flags: Vec<(bool, bool)> = (0..rows.len().min(limit))
        .map(|i| {
            let key = &rows[i].1;
            let previous = match i {
                0 => before.as_ref(),
                _ => rows.get(i - 1).map(|(_, k)| k),
            };
            (previous != Some(key), rows.get(i + 1).map(|(_, k)| k) != Some(key))
        })
        .collect();
    let mut out = Vec::with_capacity(flags.len());
    for ((mut event, key), (starts, ends)) in rows.into_iter().zip(flags) {
        (event.starts_command, event.ends_command) = (starts, ends);
        if let (true, [Some(actor), Some(command_id), Some(command_type), ..]) = (ends, &key) {
            event.reply = reply_at(conn, command_id, actor, command_type, event.position)?;
        }
        out.push(event);
    }
    Ok(out)
}

/// See [`crate::LogReader::command_start`].
pub(crate) fn command_start(conn: &Connection, position: u64, within: u64) -> Result<Option<u64>, LogError> {
    let from = position.saturating_sub(within + 1);
    let rows = read_published_rows(conn, from, (position - from) as usize)?;
    let Some((_, key)) = rows.last().filter(|(e, _)| e.position == position) else {
        return Ok(None);
    };
    let same = rows.iter().rev().take_while(|(_, k)| k == key).count() as u64;
    Ok(match position - same {
        before if before > from || before == 0 => Some(before + 1),
        _ => None,
    })
}

/// What tells one command's events from the next one's: actor, command_id, command_type,
/// digest, correlation_id, recorded_at.
type CommandKey = [Option<String>; 6];

fn read_published_rows(conn: &Connection, after: u64, limit: usize) -> Result<Vec<(Published, CommandKey)>, LogError> {
    let mut stmt = events_after(conn)?;
    let mut rows = stmt.query(params![after as i64, limit as i64])?;
    let mut out = Vec::with_capacity(limit.min(1024));
    while let Some(row) = rows.next()? {
        let position = row.get::<_, i64>(0)? as u64;
        let text = |i: usize| row.get_ref(i).and_then(|v| v.as_str().map_err(Into::into));
        let opt = |i: usize| row.get_ref(i).and_then(|v| v.as_str_or_null().map_err(Into::into));
        let recorded_at = chrono::DateTime::parse_from_rfc3339(text(6)?)
            .map_err(|e| LogError::Corrupt {
                position,
                reason: format!("recorded_at: {e}"),
            })?
            .with_timezone(&chrono::Utc);
        let fields = HashedFields {
            position,
            stream_id: text(1)?,
            stream_type: text(2)?,
            version: row.get::<_, i64>(3)? as u64,
            event_type: text(4)?,
            schema: row.get::<_, i64>(5)? as u32,
            recorded_at: &recorded_at,
            actor: text(7)?,
            command_id: opt(8)?,
            correlation_id: opt(9)?,
            causation_id: opt(10)?,
        };
        let owned = |v: Option<&str>| v.map(str::to_string);
        let key = [
            Some(fields.actor.to_string()),
            owned(opt(8)?),
            owned(opt(14)?),
            owned(opt(15)?),
            owned(opt(9)?),
            Some(text(6)?.to_string()),
        ];
        let published = Published {
            hash: text(13)?.to_string(),
            reply: None,
            starts_command: false,
            ends_command: false,
            traceparent: opt(16)?.map(str::to_string),
            position,
            event_type: fields.event_type.to_string(),
            stream_id: fields.stream_id.to_string(),
            payload: envelope_json(
                &fields,
                &Unhashed {
                    command_type: opt(14)?,
                    command_digest: opt(15)?,
                    traceparent: opt(16)?,
                },
                text(11)?,
                text(12)?,
                text(13)?,
            ),
        };
        out.push((published, key));
    }
    Ok(out)
}

/// The reply remembered for a command whose last event is at `position` (a primary-key look-up).
fn reply_at(
    conn: &Connection,
    command_id: &str,
    actor: &str,
    command_type: &str,
    position: u64,
) -> Result<Option<String>, LogError> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached(
            "SELECT data FROM command_replies WHERE command_id = ?1 AND actor = ?2 AND command_type = ?3 \
             AND position = ?4",
        )?
        .query_row(params![command_id, actor, command_type, position as i64], |r| r.get(0))
        .optional()?)
}
