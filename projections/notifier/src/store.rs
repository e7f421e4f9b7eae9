//! The notifier projection: what it remembers (names, push info), the notifications it made
//! (the inbox), and which of them were sent. Rows and checkpoint change in one transaction.

use crate::load::{self, InMemory};
use crate::texts::{notifications, shown, Memory, Notification};
use invitebus_events::personal::FORGOTTEN;
use invitebus_events::{Envelope, Event, Id};
use invitebus_feed::store::{FileState, Layout, Migration};
use invitebus_feed::{Decoded, ProjectionFile};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

/// The name of this projection's checkpoint.
pub const NAME: &str = "notifier";

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS names (user_id TEXT PRIMARY KEY, name TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pushes (invite_id TEXT PRIMARY KEY, push TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS live_only (invite_id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notifications (
    id TEXT NOT NULL, user_id TEXT NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL, invite_id TEXT,
    resource_id TEXT, from_user TEXT, at TEXT NOT NULL, position INTEGER NOT NULL, push TEXT,
    read INTEGER NOT NULL DEFAULT 0, sent INTEGER NOT NULL DEFAULT 0, sms INTEGER NOT NULL DEFAULT 0,
    live_only INTEGER NOT NULL DEFAULT 0, traceparent TEXT, nseq INTEGER, name_len INTEGER,
    PRIMARY KEY (position, user_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS forget_erase (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, nseq INTEGER) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS notifications_user ON notifications (user_id, position);
CREATE INDEX IF NOT EXISTS notifications_unsent ON notifications (position, user_id) WHERE sent = 0;
CREATE INDEX IF NOT EXISTS notifications_from ON notifications (from_user) WHERE name_len IS NOT NULL;
";

#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("event at position {position}: {reason}")]
    Event { position: u64, reason: String },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// NATS or JetStream refused or did not answer; the cause is kept.
    #[error("nats: {0}")]
    Nats(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("{0}")]
    Lock(#[from] invitebus_filelock::LockError),
}

/// The notifier file's layout. Version 2 keeps each notification's `traceparent`, version 3
/// its sequence in `INVITES_NOTIFY` and the erasures a forget asks; version 4 keys the
/// notifications by `(position, user_id)`, the order they are made in, and indexes only the
/// unsent ones. A version 3 file is migrated in place ([`FROM_3`]), keeping which
/// notifications were sent and read; an older one is rebuilt from the log on open (sending
/// nothing twice, see the service).
///
/// Measured (`bench queries`, 1,770,200 events, a fresh load as the service's catch-up makes
/// it, every row unsent; two runs each, same hour): keyed by their text id
/// (`"{position}-{user}"`, whose order is not the positions') 190,557 and 205,496 events/s;
/// keyed by `(position, user_id)` 232,909 and 232,381 (rows appended, `notifications_user`
/// built in 1.2 s instead of 1.8); with the partial unsent index kept from the start of the
/// load (appended to as well) 235,016 and 235,304.
pub const LAYOUT: Layout = Layout {
    schema: CREATE,
    version: 4,
    // Reads are deferred until `notifications_user` is built once, at the load's end. The
    // unsent index is kept from the start: rows come in its order, and a replay's rebuild,
    // which writes every row sent, leaves it empty instead of scanning 1.5 million rows at
    // the end for nothing.
    load_indexes: &["notifications_unsent"],
    fill: load::READS_APPLIED,
    migrations: &[FROM_3],
};

/// Version 3 to 4: the notifications, as they were, into the table keyed by `(position,
/// user_id)` (the same rows: an id is `"{position}-{user}"`), under the new indexes.
const FROM_3: Migration = Migration {
    from: 3,
    before: "ALTER TABLE notifications RENAME TO notifications_3;
        DROP INDEX IF EXISTS notifications_user;
        DROP INDEX IF EXISTS notifications_unsent;
        DROP INDEX IF EXISTS notifications_from;",
    after: "INSERT INTO notifications SELECT * FROM notifications_3 ORDER BY position, user_id;
        DROP TABLE notifications_3;",
};

/// Opens a connection to the notifier file.
pub fn connect(path: &Path) -> Result<Connection, NotifierError> {
    Ok(invitebus_feed::store::open(path, CREATE)?)
}

/// The notifier's writer.
pub struct Notifier {
    store: ProjectionFile,
    /// A rebuild records notifications as already sent, so that replaying sends nothing.
    rebuild: bool,
    /// What a fresh bulk load remembers, in memory until it ends or passes `budget`.
    load: Option<InMemory>,
    budget: usize,
}

/// The notifier's memory, read from its file. A look-up that fails is kept, not turned into
/// "no name" or "no push": the batch then fails with it and is taken again.
struct Remembered<'a> {
    tx: &'a Connection,
    failed: std::cell::RefCell<Option<rusqlite::Error>>,
}

impl<'a> Remembered<'a> {
    fn new(tx: &'a Connection) -> Self {
        Remembered {
            tx,
            failed: std::cell::RefCell::new(None),
        }
    }

    /// The one value `sql` selects for `key`, if there; a failure is kept for [`Self::check`].
    fn one<T: rusqlite::types::FromSql>(&self, sql: &str, key: &str) -> Option<T> {
        let found = self
            .tx
            .prepare_cached(sql)
            .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional());
        match found {
            Ok(v) => v,
            Err(e) => {
                self.failed.borrow_mut().get_or_insert(e);
                None
            }
        }
    }

    /// The first look-up that failed, if one did.
    fn check(self) -> rusqlite::Result<()> {
        match self.failed.into_inner() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Memory for Remembered<'_> {
    fn offline_enabled(&self, invite: &Id) -> bool {
        self.one::<i64>("SELECT 1 FROM live_only WHERE invite_id = ?1", invite.as_str())
            .is_none()
    }

    fn name(&self, user: &Id) -> String {
        self.one("SELECT name FROM names WHERE user_id = ?1", user.as_str())
            .unwrap_or_else(|| user.to_string())
    }

    fn push(&self, invite: &Id) -> Option<Value> {
        self.one::<String>("SELECT push FROM pushes WHERE invite_id = ?1", invite.as_str())
            .and_then(|t| serde_json::from_str(&t).ok())
    }
}

impl Notifier {
    /// Opens the notifier file for following live events.
    pub fn open(path: &Path) -> Result<Notifier, NotifierError> {
        Self::open_with(path, false)
    }

    /// Opens it for a rebuild: notifications are recorded as sent, never published.
    pub fn open_rebuild(path: &Path) -> Result<Notifier, NotifierError> {
        Self::open_with(path, true)
    }

    fn open_with(path: &Path, rebuild: bool) -> Result<Notifier, NotifierError> {
        Ok(Notifier {
            store: ProjectionFile::open(path, NAME, LAYOUT)?,
            rebuild,
            load: None,
            budget: load::DEFAULT_BUDGET,
        })
    }

    /// At most `bytes` remembered in memory in a fresh bulk load (default
    /// [`load::DEFAULT_BUDGET`]); past it they are written and looked up in SQL.
    pub fn with_load_budget(mut self, bytes: usize) -> Notifier {
        self.budget = bytes;
        self
    }

    /// Writes what a load remembers in memory into the loading file.
    fn spill(&mut self) -> Result<(), NotifierError> {
        let Some(memory) = self.load.take() else {
            return Ok(());
        };
        let bytes = memory.bytes();
        self.store
            .apply_then(&[], |_, _, _| Ok::<_, NotifierError>(()), |tx| Ok(memory.write(tx)?))?;
        tracing::debug!(
            position = self.store.position(),
            bytes,
            "notifier: remembered rows written"
        );
        Ok(())
    }

    /// What the notifier's readers (the sender, the inbox) share with this writer.
    pub fn file(&self) -> &Arc<FileState> {
        self.store.state()
    }

    pub fn apply_batch(&mut self, events: &[Envelope]) -> Result<(), NotifierError> {
        invitebus_feed::Projection::apply(self, events)
    }

    fn apply_events(&mut self, events: &[Decoded]) -> Result<(), NotifierError> {
        let (rebuild, loading) = (self.rebuild, self.store.loading());
        let (store, held) = (&mut self.store, &mut self.load);
        store.apply(events, |tx, event, env| {
            if let Event::UserForgotten(e) = event {
                if let Some(memory) = held.as_mut() {
                    memory.forget(&e.user_id);
                }
                forget(tx, e.user_id.as_str())?;
            }
            let made = match held.as_mut() {
                Some(memory) => {
                    memory.remember(event);
                    named(notifications(event, env.position, memory), memory)
                }
                None => {
                    remember(tx, event)?;
                    let memory = Remembered::new(tx);
                    let made = named(notifications(event, env.position, &memory), &memory);
                    memory.check()?;
                    made
                }
            };
            for (mut n, name_len) in made {
                n.traceparent = env.traceparent.clone();
                insert(tx, &n, name_len, rebuild)?;
            }
            if let Event::InviteRead(e) = event {
                match loading {
                    true => tx
                        .prepare_cached("INSERT INTO load_reads (user_id, invite_id, position) VALUES (?1, ?2, ?3)")?
                        .execute(params![e.invitee.as_str(), e.invite_id.as_str(), env.position as i64])?,
                    false => tx
                        .prepare_cached("UPDATE notifications SET read = 1 WHERE user_id = ?1 AND invite_id = ?2")?
                        .execute(params![e.invitee.as_str(), e.invite_id.as_str()])?,
                };
            }
            Ok::<_, NotifierError>(())
        })?;
        if self.load.as_ref().is_some_and(|m| m.bytes() > self.budget) {
            tracing::info!(budget = self.budget, "notifier: load memory budget reached, writing");
            self.spill()?;
        }
        Ok(())
    }
}

fn remember(tx: &Connection, event: &Event) -> rusqlite::Result<()> {
    match event {
        Event::UserUpserted(e) => {
            tx.prepare_cached("INSERT OR REPLACE INTO names (user_id, name) VALUES (?1, ?2)")?
                .execute(params![e.user_id.as_str(), e.name])?;
        }
        Event::InviteCreated(e) => {
            if !e.offline_enabled {
                tx.prepare_cached("INSERT OR IGNORE INTO live_only (invite_id) VALUES (?1)")?
                    .execute([e.invite_id.as_str()])?;
            }
            if let Some(push) = &e.push {
                tx.prepare_cached("INSERT OR REPLACE INTO pushes (invite_id, push) VALUES (?1, ?2)")?
                    .execute(params![
                        e.invite_id.as_str(),
                        serde_json::to_string(push).unwrap_or_default()
                    ])?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Each notification with the length, in characters, of the name its text begins with, when
/// it begins with its sender's (what a forget of the sender rewrites, whatever they were called
/// then).
fn named(made: Vec<Notification>, memory: &dyn Memory) -> Vec<(Notification, Option<usize>)> {
    made.into_iter()
        .map(|n| {
            let name = n.from.as_ref().map(|f| shown(&memory.name(f)));
            let len = name
                .filter(|name| n.text.starts_with(name.as_str()))
                .map(|name| name.chars().count());
            (n, len)
        })
        .collect()
}

/// A forgotten user: their name reads `[forgotten]`, in the names the texts are made from and in
/// every text made with any name of theirs (each begins with it); those already stored in
/// `INVITES_NOTIFY` are queued for erasure there (the service's eraser deletes them by
/// sequence). Unsent ones go out rewritten.
fn forget(tx: &Connection, user: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE names SET name = ?2 WHERE user_id = ?1")?
        .execute(params![user, FORGOTTEN])?;
    tx.prepare_cached(
        "INSERT OR IGNORE INTO forget_erase (id, user_id, nseq) SELECT id, user_id, nseq FROM notifications \
         WHERE from_user = ?1 AND name_len IS NOT NULL AND sent = 1 AND live_only = 0 AND substr(text, 1, name_len) <> ?2",
    )?
    .execute(params![user, FORGOTTEN])?;
    tx.prepare_cached(
        "UPDATE notifications SET text = ?2 || substr(text, name_len + 1), name_len = length(?2) \
         WHERE from_user = ?1 AND name_len IS NOT NULL",
    )?
    .execute(params![user, FORGOTTEN])?;
    Ok(())
}

fn insert(tx: &Connection, n: &Notification, name_len: Option<usize>, sent: bool) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO notifications (id, user_id, kind, text, invite_id, resource_id, from_user, at, position, push, sent, sms, live_only, traceparent, name_len) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        n.id,
        n.user_id.as_str(),
        n.kind,
        n.text,
        n.invite_id.as_ref().map(|i| i.as_str()),
        n.resource_id.as_ref().map(|i| i.as_str()),
        n.from.as_ref().map(|i| i.as_str()),
        n.at,
        n.position as i64,
        n.push.as_ref().map(|p| p.to_string()),
        sent,
        n.sms,
        n.live_only,
        n.traceparent,
        name_len.map(|l| l as i64)
    ])?;
    Ok(())
}

impl invitebus_feed::Projection for Notifier {
    type Error = NotifierError;
    fn name(&self) -> &str {
        NAME
    }
    fn store(&self) -> &ProjectionFile {
        &self.store
    }
    fn store_mut(&mut self) -> &mut ProjectionFile {
        &mut self.store
    }
    /// A rebuilt file's notifications are unsent; the sender sends only what `INVITES_NOTIFY`
    /// does not hold yet, so a rebuild sends nothing twice.
    fn apply_decoded(&mut self, events: &[Decoded]) -> Result<(), NotifierError> {
        self.apply_events(events)
    }
    fn begin_load(&mut self) -> Result<(), NotifierError> {
        self.store.begin_load()?;
        self.store.apply_then(
            &[],
            |_, _, _| Ok::<_, NotifierError>(()),
            |tx| Ok(tx.execute_batch(load::READS)?),
        )?;
        if self.store.position() == 0 && self.load.is_none() {
            self.load = Some(InMemory::default());
        }
        Ok(())
    }
    fn write_held(&mut self) -> Result<(), NotifierError> {
        self.spill()
    }
    fn drop_held(&mut self) {
        self.load = None;
    }
    fn unreadable(position: u64, reason: String) -> NotifierError {
        NotifierError::Event { position, reason }
    }
    fn is_damage(e: &NotifierError) -> bool {
        matches!(e, NotifierError::Sqlite(e) if invitebus_feed::store::is_damage(e))
    }
}

/// Reads a notification row (the columns of [`COLUMNS`]).
pub fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Notification, bool)> {
    let id = |i: usize| -> rusqlite::Result<Option<Id>> {
        Ok(r.get::<_, Option<String>>(i)?.and_then(|s| Id::parse(s).ok()))
    };
    let user: String = r.get(1)?;
    Ok((
        Notification {
            id: r.get(0)?,
            user_id: Id::parse(user).map_err(|e| rusqlite::Error::InvalidColumnName(e.to_string()))?,
            kind: r.get(2)?,
            text: r.get(3)?,
            invite_id: id(4)?,
            resource_id: id(5)?,
            from: id(6)?,
            at: r.get(7)?,
            position: r.get::<_, i64>(8)? as u64,
            push: r
                .get::<_, Option<String>>(9)?
                .and_then(|t| serde_json::from_str(&t).ok()),
            sms: r.get::<_, bool>(11)?,
            live_only: r.get::<_, bool>(12)?,
            traceparent: r.get(13)?,
        },
        r.get::<_, bool>(10)?,
    ))
}

/// The columns [`from_row`] reads.
pub const COLUMNS: &str =
    "id, user_id, kind, text, invite_id, resource_id, from_user, at, position, push, read, sms, live_only, traceparent";
