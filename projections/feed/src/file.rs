//! A projection's own file as its writer holds it: the connection, the position it has reached,
//! what its readers share, and a bulk load into a fresh file beside it that replaces it only
//! when complete. Every projection (views, notifier, scheduler, the exporter's copy) embeds one.

use crate::store::{self, FileState, Layout, Rebuilt};
use invitebus_events::{Envelope, Event};
use rusqlite::{params, Connection};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing::{debug, info};

/// An event read and decoded, as projections apply it. `env.data` is Null: the typed `event` is
/// the data (on the bulk path decoded once, straight from the stored text).
#[derive(Debug, Clone)]
pub struct Decoded {
    pub env: Envelope,
    pub event: Event,
}

/// Decodes the events after `position` (those at or below it are skipped unread).
pub fn decode<E>(events: &[Envelope], position: u64, unreadable: impl Fn(u64, String) -> E) -> Result<Vec<Decoded>, E> {
    events
        .iter()
        .filter(|env| env.position > position)
        .map(|env| match env.event() {
            Ok(event) => Ok(Decoded {
                env: env.clone(),
                event,
            }),
            Err(e) => Err(unreadable(env.position, e.to_string())),
        })
        .collect()
}

/// The writer's side of a projection file.
pub struct ProjectionFile {
    conn: Connection,
    path: PathBuf,
    position: u64,
    name: &'static str,
    layout: Layout,
    state: Arc<FileState>,
    /// During a bulk load: the live connection and its position, kept until the swap.
    live: Option<(Connection, u64)>,
    /// The bulk load wrote what the layout's `fill` computes: the swap builds the indexes only.
    filled: bool,
}

impl ProjectionFile {
    /// Opens (checking it, see [`store::open_checked`]) or creates the file at `path`, whose
    /// checkpoint is called `name`.
    pub fn open(path: &Path, name: &'static str, layout: Layout) -> rusqlite::Result<ProjectionFile> {
        let (conn, rebuilt) = store::open_checked(path, &layout)?;
        let position = store::checkpoint(&conn, name)?;
        Ok(ProjectionFile {
            conn,
            path: path.to_path_buf(),
            position,
            name,
            layout,
            state: FileState::new(path, layout, rebuilt),
            live: None,
            filled: false,
        })
    }

    /// The last position applied (during a bulk load: the load's).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// What the readers share with the writer.
    pub fn state(&self) -> &Arc<FileState> {
        &self.state
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The writer's connection (during a bulk load, the loading file's).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// True while a bulk load writes a fresh file.
    pub fn loading(&self) -> bool {
        self.live.is_some()
    }

    /// Applies `events` after the position with `apply`, then stores the new position as the
    /// checkpoint, in one IMMEDIATE transaction (other connections write the same file; a
    /// deferred one that read first would fail with SQLITE_BUSY instead of waiting).
    pub fn apply<E: From<rusqlite::Error>>(
        &mut self,
        events: &[Decoded],
        apply: impl FnMut(&Connection, &Event, &Envelope) -> Result<(), E>,
    ) -> Result<(), E> {
        self.apply_then(events, apply, |_| Ok(()))
    }

    /// [`ProjectionFile::apply`], with `then` run in the same transaction after the events:
    /// where a projection writes what it gathered over the whole batch.
    pub fn apply_then<E: From<rusqlite::Error>>(
        &mut self,
        events: &[Decoded],
        mut apply: impl FnMut(&Connection, &Event, &Envelope) -> Result<(), E>,
        then: impl FnOnce(&Connection) -> Result<(), E>,
    ) -> Result<(), E> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut at = self.position;
        for d in events.iter().filter(|d| d.env.position > self.position) {
            apply(&tx, &d.event, &d.env)?;
            at = d.env.position;
        }
        then(&tx)?;
        tx.prepare_cached(
            "INSERT INTO checkpoints (name, position) VALUES (?1, ?2) \
             ON CONFLICT(name) DO UPDATE SET position = excluded.position",
        )?
        .execute(params![self.name, at as i64])?;
        tx.commit()?;
        self.position = at;
        Ok(())
    }

    /// A bulk load that folds its rows in memory has taken the events up to `at`: the position
    /// moves now, the checkpoint is written with the rows (an [`ProjectionFile::apply_then`]
    /// of no events).
    pub fn folded(&mut self, at: u64) {
        debug_assert!(self.loading(), "only a bulk load folds");
        self.position = self.position.max(at);
    }

    /// A bulk load has written the rows the layout's `fill` would compute from its tables
    /// (counted while folding): the swap skips it.
    pub fn filled(&mut self) {
        self.filled = self.loading();
    }

    /// Sets the damaged file aside and starts again, at position 0, in a fresh one.
    pub fn rebuild(&mut self, reason: &str) -> rusqlite::Result<Rebuilt> {
        let r = store::reopen_fresh(&mut self.conn, &self.path, &self.layout, reason)?;
        self.position = 0;
        Ok(r)
    }

    /// `<path>.loading`: where a bulk load writes.
    pub fn loading_path(&self) -> PathBuf {
        PathBuf::from(format!("{}.loading", self.path.display()))
    }

    /// Starts a bulk load at position 0 into a fresh `<path>.loading` opened for loading (no
    /// journal, no syncs, a big cache, tables without their secondary indexes); the live file
    /// and its readers are untouched until [`ProjectionFile::finish_load`].
    pub fn begin_load(&mut self) -> rusqlite::Result<()> {
        if self.live.is_some() {
            return Ok(());
        }
        let loading = self.loading_path();
        remove_db(&loading)?;
        let conn = open_for_load(&loading, &self.layout)?;
        self.filled = false;
        let live = std::mem::replace(&mut self.conn, conn);
        self.live = Some((live, self.position));
        self.position = 0;
        Ok(())
    }

    /// Drops a bulk load: the live file and position are as they were.
    pub fn abandon_load(&mut self) -> rusqlite::Result<()> {
        let Some((live, position)) = self.live.take() else {
            return Ok(());
        };
        drop(std::mem::replace(&mut self.conn, live));
        self.position = position;
        remove_db(&self.loading_path())
    }

    /// Ends a bulk load: builds the secondary indexes, syncs the loaded file, then swaps it in
    /// with every connection to the old one closed (its WAL checkpointed and truncated first),
    /// fsyncs the folder and reopens. Killed at any point before the rename, the live file is
    /// as it was; after it, the loaded one is complete. On an error the writer goes back to
    /// whichever file is at the path then, at that file's own checkpoint.
    pub fn finish_load(&mut self) -> rusqlite::Result<()> {
        if self.live.is_none() {
            return Ok(());
        }
        let result = self.swap_loaded();
        if result.is_err() {
            self.live = None;
            drop(std::mem::replace(&mut self.conn, Connection::open_in_memory()?));
            self.conn = store::open(&self.path, self.layout.schema)?;
            self.position = store::checkpoint(&self.conn, self.name)?;
            let _ = remove_db(&self.loading_path());
        }
        result
    }

    fn swap_loaded(&mut self) -> rusqlite::Result<()> {
        let started = std::time::Instant::now();
        let sql = match self.filled {
            true => self.layout.indexes(),
            false => self.layout.after_load(),
        };
        // Statement by statement, each timed: which index or fill a slow swap spends its time
        // on is what a rebuild's tuning starts from.
        // (The layouts' SQL holds no `;` but between statements.)
        for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let began = std::time::Instant::now();
            self.conn.execute_batch(statement)?;
            let head = statement.split_whitespace().take(8).collect::<Vec<_>>().join(" ");
            debug!(file = %self.path.display(), seconds = began.elapsed().as_secs_f64(), sql = head, "bulk load: after the rows");
        }
        let indexes_s = started.elapsed().as_secs_f64();
        self.conn.pragma_update(None, "user_version", self.layout.version)?;
        let Some((live, _)) = self.live.take() else {
            return Ok(());
        };
        drop(std::mem::replace(&mut self.conn, live));
        let loading = self.loading_path();
        let io = |e: std::io::Error| rusqlite::Error::ToSqlConversionFailure(Box::new(e));
        std::fs::File::open(&loading).and_then(|f| f.sync_all()).map_err(io)?;
        let (path, layout) = (self.path.clone(), self.layout);
        let conn = &mut self.conn;
        self.state.swap(|| -> rusqlite::Result<()> {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            drop(std::mem::replace(conn, Connection::open_in_memory()?));
            std::fs::rename(&loading, &path).map_err(io)?;
            for side in ["-wal", "-shm"] {
                let p = PathBuf::from(format!("{}{side}", path.display()));
                match std::fs::remove_file(&p) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
                    _ => {}
                }
            }
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
            }
            *conn = store::open(&path, layout.schema)?;
            Ok(())
        })?;
        self.position = store::checkpoint(&self.conn, self.name)?;
        info!(file = %self.path.display(), position = self.position, indexes_s, "bulk-loaded file swapped in");
        Ok(())
    }
}

/// Removes a database file and its `-wal`, `-shm` and `-journal`, if there.
fn remove_db(path: &Path) -> rusqlite::Result<()> {
    for side in ["", "-wal", "-shm", "-journal"] {
        let p = PathBuf::from(format!("{}{side}", path.display()));
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
            }
            _ => {}
        }
    }
    Ok(())
}

/// A bulk load's settings on `conn`, a fresh file nothing else opens until it is complete (also
/// what `bench queries` times SQLite alone with).
pub fn loading(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "OFF")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -512 * 1024)?;
    // Helper threads for the sorts that build the indexes at the end of a load.
    conn.pragma_update(None, "threads", 4)
}

/// A fresh file for a bulk load: nothing else opens it until it is complete, so no journal,
/// no syncs (the loaded file is synced once before the swap), an exclusive lock and a 512 MiB
/// page cache; the tables without their secondary indexes.
pub fn open_for_load(path: &Path, layout: &Layout) -> rusqlite::Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|_| rusqlite::Error::InvalidPath(dir.to_path_buf()))?;
    }
    let conn = Connection::open(path)?;
    conn.set_prepared_statement_cache_capacity(store::STATEMENTS);
    loading(&conn)?;
    conn.execute_batch(store::CHECKPOINTS)?;
    conn.execute_batch(&layout.tables())?;
    conn.execute_batch(&layout.load_indexes())?;
    Ok(conn)
}
