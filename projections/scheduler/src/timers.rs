//! The timers projection: which timers the events imply. An invite with `expires_at` gets an
//! `expire` timer; one with `detail.begin_time` and `remind_min` gets a `remind` timer. An update
//! moves them, a cancel or an expiry drops them, and an expiry timer goes once nobody is left to
//! answer. A resource paused `until` a time gets a `resume` timer (keyed by the resource's id in
//! the `invite_id` column), moved by a new pause, dropped by a resume. Timers and checkpoint
//! change in one transaction.

use chrono::{DateTime, Duration, Utc};
use invitebus_events::command::InviteDetail;
use invitebus_events::envelope::format_time;
use invitebus_events::{Envelope, Event, Id};
use invitebus_feed::store::{FileState, Layout};
use invitebus_feed::{Decoded, ProjectionFile};
use rusqlite::{params, Connection};
use std::path::Path;
use std::sync::Arc;

/// The name of this projection's checkpoint.
pub const NAME: &str = "scheduler";

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS timers (
    kind TEXT NOT NULL, invite_id TEXT NOT NULL, due_at TEXT NOT NULL, fired INTEGER NOT NULL DEFAULT 0,
    traceparent TEXT,
    PRIMARY KEY (kind, invite_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS timers_due ON timers (fired, due_at);
CREATE TABLE IF NOT EXISTS unanswered (invite_id TEXT NOT NULL, invitee TEXT NOT NULL, PRIMARY KEY (invite_id, invitee)) WITHOUT ROWID;
";

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("event at position {position}: {reason}")]
    Event { position: u64, reason: String },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Lock(#[from] invitebus_filelock::LockError),
}

/// The scheduler file's layout (version 2 keeps each timer's `traceparent`). A rebuilt file
/// fires its timers again: their command ids are the same, so the log appends nothing twice.
pub const LAYOUT: Layout = Layout {
    schema: CREATE,
    version: 2,
    load_indexes: &[],
    fill: "",
    migrations: &[],
};

/// The command a due timer of `kind` sends, and the field its key goes in.
pub fn command_of(kind: &str) -> Option<(&'static str, &'static str)> {
    match kind {
        "expire" => Some(("ExpireInvite", "invite_id")),
        "remind" => Some(("RemindInvite", "invite_id")),
        "resume" => Some(("ResumeInvites", "resource_id")),
        _ => None,
    }
}

/// When a meeting's reminder is due: `remind_min` before `begin_time`.
pub fn remind_at(detail: &Option<InviteDetail>) -> Option<DateTime<Utc>> {
    let d = detail.as_ref()?;
    Some(d.begin_time? - Duration::minutes(d.remind_min? as i64))
}

pub struct Timers {
    store: ProjectionFile,
}

impl Timers {
    pub fn open(path: &Path) -> Result<Timers, SchedulerError> {
        Ok(Timers {
            store: ProjectionFile::open(path, NAME, LAYOUT)?,
        })
    }

    /// What the firing loop shares with this writer.
    pub fn file(&self) -> &Arc<FileState> {
        self.store.state()
    }

    pub fn apply_batch(&mut self, events: &[Envelope]) -> Result<(), SchedulerError> {
        invitebus_feed::Projection::apply(self, events)
    }
}

/// Sets (or moves, re-arming it) a timer; `None` drops it.
fn set(tx: &Connection, kind: &str, invite: &Id, due: Option<DateTime<Utc>>) -> rusqlite::Result<()> {
    match due {
        Some(due) => tx
            .prepare_cached(
                "INSERT INTO timers (kind, invite_id, due_at, fired) VALUES (?1, ?2, ?3, 0) \
                 ON CONFLICT(kind, invite_id) DO UPDATE SET due_at = excluded.due_at, fired = 0 \
                 WHERE timers.due_at <> excluded.due_at",
            )?
            .execute(params![kind, invite.as_str(), format_time(&due)])?,
        None => drop_timer(tx, kind, invite)?,
    };
    Ok(())
}

fn drop_timer(tx: &Connection, kind: &str, invite: &Id) -> rusqlite::Result<usize> {
    tx.prepare_cached("DELETE FROM timers WHERE kind = ?1 AND invite_id = ?2 AND fired = 0")?
        .execute(params![kind, invite.as_str()])
}

/// An invitee answered (or left the invite): once nobody is left, no expiry is needed.
fn answered(tx: &Connection, invite: &Id, invitee: &Id) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM unanswered WHERE invite_id = ?1 AND invitee = ?2")?
        .execute(params![invite.as_str(), invitee.as_str()])?;
    let left: i64 = tx
        .prepare_cached("SELECT COUNT(*) FROM unanswered WHERE invite_id = ?1")?
        .query_row([invite.as_str()], |r| r.get(0))?;
    if left == 0 {
        drop_timer(tx, "expire", invite)?;
    }
    Ok(())
}

fn apply(tx: &Connection, event: &Event) -> rusqlite::Result<()> {
    match event {
        Event::InviteCreated(e) => {
            set(tx, "expire", &e.invite_id, e.expires_at)?;
            set(tx, "remind", &e.invite_id, remind_at(&e.detail))?;
            for i in &e.invitees {
                tx.prepare_cached("INSERT OR IGNORE INTO unanswered (invite_id, invitee) VALUES (?1, ?2)")?
                    .execute(params![e.invite_id.as_str(), i.as_str()])?;
            }
        }
        Event::InviteUpdated(e) => {
            for i in &e.added {
                tx.prepare_cached("INSERT OR IGNORE INTO unanswered (invite_id, invitee) VALUES (?1, ?2)")?
                    .execute(params![e.invite_id.as_str(), i.as_str()])?;
            }
            set(tx, "expire", &e.invite_id, e.expires_at)?;
            set(tx, "remind", &e.invite_id, remind_at(&e.detail))?;
            for i in &e.removed {
                answered(tx, &e.invite_id, i)?;
            }
        }
        Event::InviteCancelled(e) => {
            drop_timer(tx, "expire", &e.invite_id)?;
            drop_timer(tx, "remind", &e.invite_id)?;
        }
        Event::InviteExpired(e) => {
            drop_timer(tx, "expire", &e.invite_id)?;
            drop_timer(tx, "remind", &e.invite_id)?;
        }
        Event::InviteAccepted(e) => answered(tx, &e.invite_id, &e.invitee)?,
        Event::InviteRejected(e) => answered(tx, &e.invite_id, &e.invitee)?,
        Event::InvitesPaused(e) => set(tx, "resume", &e.resource_id, e.until)?,
        Event::InvitesResumed(e) => {
            drop_timer(tx, "resume", &e.resource_id)?;
        }
        Event::InviteReminded(e) => {
            tx.prepare_cached("UPDATE timers SET fired = 1 WHERE kind = 'remind' AND invite_id = ?1")?
                .execute([e.invite_id.as_str()])?;
        }
        _ => {}
    }
    Ok(())
}

impl invitebus_feed::Projection for Timers {
    type Error = SchedulerError;
    fn name(&self) -> &str {
        NAME
    }
    fn store(&self) -> &ProjectionFile {
        &self.store
    }
    fn store_mut(&mut self) -> &mut ProjectionFile {
        &mut self.store
    }
    fn apply_decoded(&mut self, events: &[Decoded]) -> Result<(), SchedulerError> {
        self.store.apply(events, |tx, event, env| {
            apply(tx, event)?;
            // A timer's command carries the trace of the command that set it.
            if let (Event::InviteCreated(_) | Event::InviteUpdated(_), Some(t)) = (event, &env.traceparent) {
                let invite = env.stream_id.strip_prefix("invite-").unwrap_or_default();
                tx.prepare_cached(
                    "UPDATE timers SET traceparent = ?2 WHERE invite_id = ?1 AND kind IN ('expire', 'remind') AND fired = 0",
                )?
                    .execute(params![invite, t])?;
            }
            Ok::<_, SchedulerError>(())
        })
    }
    fn unreadable(position: u64, reason: String) -> SchedulerError {
        SchedulerError::Event { position, reason }
    }
    fn is_damage(e: &SchedulerError) -> bool {
        matches!(e, SchedulerError::Sqlite(e) if invitebus_feed::store::is_damage(e))
    }
}
