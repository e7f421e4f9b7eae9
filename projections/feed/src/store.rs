//! What every projection's SQLite file shares: opening it with the same pragmas, checking it
//! on open (a damaged or outdated file is set aside and the projection rebuilt from the log),
//! and applying a batch of events with the checkpoint in the same transaction (skipping what is
//! at or below it).

use invitebus_events::ProtocolError;
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tracing::{error, info};

/// A projection file's tables and their version (`PRAGMA user_version`; files written before
/// versions were kept count as 1). A file of another version is rebuilt from the log.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub schema: &'static str,
    pub version: u32,
    /// Indexes the projection's own updates look rows up by: a bulk load keeps them from the
    /// start (without one, each such update scans the table); the others come after the load.
    pub load_indexes: &'static [&'static str],
    /// Fills the tables a projection keeps from its others (counts the queries read instead of
    /// counting rows) in one pass at the end of a bulk load, which maintains none row by row.
    pub fill: &'static str,
    /// Files of these older versions are brought to this one in place, keeping what a rebuild
    /// from the log cannot give back (which notifications were sent, say); any other version
    /// is rebuilt.
    pub migrations: &'static [Migration],
}

/// Brings a file of version `from` to its layout's version in one transaction: `before` runs
/// on the old tables, then the schema (creating what is new), then `after` (moving rows over).
/// Killed half way, the file stays at `from` and the next open migrates it again.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub from: u32,
    pub before: &'static str,
    pub after: &'static str,
}

impl Layout {
    /// The schema's statements other than `CREATE INDEX`: what a bulk load writes into.
    pub fn tables(&self) -> String {
        self.statements(|s| !s.starts_with("CREATE INDEX"))
    }

    /// What ends a bulk load: the schema's `CREATE INDEX` statements, built once and not row by
    /// row (`IF NOT EXISTS`: those of [`Layout::load_indexes`] are there already), then
    /// [`Layout::fill`].
    pub fn after_load(&self) -> String {
        format!("{}{}", self.indexes(), self.fill)
    }

    /// The schema's `CREATE INDEX` statements.
    pub fn indexes(&self) -> String {
        self.statements(|s| s.starts_with("CREATE INDEX"))
    }

    /// The indexes a bulk load needs while it runs.
    pub fn load_indexes(&self) -> String {
        self.statements(|s| {
            s.starts_with("CREATE INDEX") && self.load_indexes.iter().any(|n| s.contains(&format!(" {n} ")))
        })
    }

    fn statements(&self, keep: impl Fn(&str) -> bool) -> String {
        self.schema
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty() && keep(s))
            .map(|s| format!("{s};\n"))
            .collect()
    }
}

/// Why a projection file was set aside and its projection started again from position 0.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rebuilt {
    pub reason: String,
    /// Where the bad file went (kept for a look at it).
    pub set_aside: String,
    pub at: String,
}

/// The start of a query error that a damaged file caused (see [`read_error`]).
pub const DAMAGED: &str = "the projection file is damaged";

/// True for errors that mean the file itself is bad: SQLITE_CORRUPT, not a database, or a
/// stored value that cannot be decoded (text that is not UTF-8, as a flipped byte gives).
pub fn is_damage(e: &rusqlite::Error) -> bool {
    use rusqlite::Error::*;
    match e {
        SqliteFailure(f, _) => matches!(
            f.code,
            rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
        ),
        // Not InvalidColumnType: a query asking for the wrong type is a bug, and treating it as
        // damage would rebuild the file on every such query.
        FromSqlConversionFailure(..) | Utf8Error(..) => true,
        _ => false,
    }
}

/// The error a query answers when reading its view failed: `unavailable`, and when the file is
/// damaged, a message starting with [`DAMAGED`] so the role rebuilds it.
pub fn read_error(e: rusqlite::Error) -> ProtocolError {
    match is_damage(&e) {
        true => ProtocolError::unavailable(format!("{DAMAGED} ({e}); it is being rebuilt from the log, retry")),
        false => ProtocolError::unavailable(format!("reading the view: {e}")),
    }
}

/// What the file at `path` is: `quick_check` and the layout's version.
fn inspect(path: &Path, layout: &Layout) -> rusqlite::Result<Found> {
    let conn = match Connection::open(path) {
        Ok(c) => c,
        Err(e) if is_damage(&e) => return Ok(Found::Unusable(format!("cannot open: {e}"))),
        Err(e) => return Err(e),
    };
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let check: rusqlite::Result<Vec<String>> = conn
        .prepare("PRAGMA quick_check(5)")
        .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect());
    match check {
        Ok(rows) if rows == ["ok"] => {}
        Ok(rows) => return Ok(Found::Unusable(format!("quick_check: {}", rows.join("; ")))),
        Err(e) if is_damage(&e) => return Ok(Found::Unusable(format!("quick_check: {e}"))),
        Err(e) => return Err(e),
    }
    let version: u32 = match conn.query_row("PRAGMA user_version", [], |r| r.get(0)) {
        Ok(v) => v,
        Err(e) if is_damage(&e) => return Ok(Found::Unusable(format!("user_version: {e}"))),
        Err(e) => return Err(e),
    };
    let version = version.max(1);
    if version == layout.version {
        return Ok(Found::Sound);
    }
    if let Some(m) = layout.migrations.iter().find(|m| m.from == version) {
        return Ok(Found::Older(*m));
    }
    Ok(Found::Unusable(format!(
        "its tables are version {version}, this build's are version {}",
        layout.version
    )))
}

/// What [`inspect`] found.
enum Found {
    Sound,
    /// Of an older version this layout migrates from.
    Older(Migration),
    /// Damaged, or of a version it cannot be migrated from: the reason.
    Unusable(String),
}

/// Runs `m` on the file at `path` (see [`Migration`]).
fn migrate(path: &Path, layout: &Layout, m: &Migration) -> rusqlite::Result<()> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(m.before)?;
    tx.execute_batch(layout.schema)?;
    tx.execute_batch(m.after)?;
    tx.pragma_update(None, "user_version", layout.version)?;
    tx.commit()
}

/// Moves `path` (and its `-wal`) aside as `<path>.damaged-<time>`, removing its `-shm`.
pub fn set_aside(path: &Path, reason: &str) -> std::io::Result<Rebuilt> {
    let at = invitebus_events::envelope::format_time(&chrono::Utc::now());
    let stamp = at.replace([':', '.'], "-");
    let aside = PathBuf::from(format!("{}.damaged-{stamp}", path.display()));
    std::fs::rename(path, &aside)?;
    let side = |suffix: &str| PathBuf::from(format!("{}{suffix}", path.display()));
    if side("-wal").exists() {
        std::fs::rename(side("-wal"), format!("{}-wal", aside.display()))?;
    }
    let _ = std::fs::remove_file(side("-shm"));
    error!(file = %path.display(), set_aside = %aside.display(), reason, "projection file set aside; rebuilding it from the log");
    Ok(Rebuilt {
        reason: reason.to_string(),
        set_aside: aside.display().to_string(),
        at,
    })
}

/// Opens a projection's file for writing: a file of a version the layout migrates from is
/// migrated; one that fails `quick_check`, cannot be read, has another version or fails its
/// migration is set aside first and a fresh one made (position 0).
pub fn open_checked(path: &Path, layout: &Layout) -> rusqlite::Result<(Connection, Option<Rebuilt>)> {
    let mut unusable = None;
    if path.exists() {
        match inspect(path, layout)? {
            Found::Sound => {}
            Found::Unusable(reason) => unusable = Some(reason),
            Found::Older(m) => match migrate(path, layout, &m) {
                Ok(()) => info!(file = %path.display(), from = m.from, to = layout.version, "projection file migrated"),
                Err(e) => unusable = Some(format!("migrating it from version {} failed: {e}", m.from)),
            },
        }
    }
    let mut rebuilt = None;
    if let Some(reason) = unusable {
        let aside = set_aside(path, &reason).map_err(|_| rusqlite::Error::InvalidPath(path.to_path_buf()))?;
        rebuilt = Some(aside);
    }
    let conn = open(path, layout.schema)?;
    conn.pragma_update(None, "user_version", layout.version)?;
    Ok((conn, rebuilt))
}

/// What a projection's writer and its readers share about their file: a generation that moves
/// when the writer rebuilt it into a fresh file (readers then reopen), a damage report from a
/// reader (the writer then rebuilds), and the last rebuild (for health).
#[derive(Debug)]
pub struct FileState {
    pub path: PathBuf,
    pub layout: Layout,
    generation: AtomicU64,
    /// (generation the damage was seen in, reason): one rebuild per generation.
    damage: Mutex<(Option<u64>, Option<String>)>,
    rebuilt: Mutex<Option<Rebuilt>>,
    notify: tokio::sync::Notify,
    /// Every reader handed out, so that a swap can close them all first (see [`FileState::swap`]).
    readers: Mutex<Vec<std::sync::Weak<Mutex<Reader>>>>,
}

impl FileState {
    pub fn new(path: &Path, layout: Layout, rebuilt: Option<Rebuilt>) -> Arc<FileState> {
        Arc::new(FileState {
            path: path.to_path_buf(),
            layout,
            generation: AtomicU64::new(0),
            damage: Mutex::new((None, None)),
            rebuilt: Mutex::new(rebuilt),
            notify: tokio::sync::Notify::new(),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// A reader of file generation `generation` found it damaged: the writer rebuilds it, once
    /// however many readers say so, and not again for a file already replaced.
    pub fn report_damage(&self, generation: u64, reason: &str) {
        let mut d = self.damage.lock().unwrap_or_else(|p| p.into_inner());
        if generation == self.generation.load(Ordering::SeqCst) && d.0 != Some(generation) {
            *d = (Some(generation), Some(reason.to_string()));
            self.notify.notify_one();
        }
    }

    /// Waits for a damage report on the current file and takes it.
    pub async fn damaged(&self) -> String {
        loop {
            {
                let mut d = self.damage.lock().unwrap_or_else(|p| p.into_inner());
                let current = d.0 == Some(self.generation.load(Ordering::SeqCst));
                if let (true, Some(r)) = (current, d.1.take()) {
                    return r;
                }
            }
            self.notify.notified().await;
        }
    }

    /// The writer made a fresh file: readers reopen, health says so; reports about the old
    /// file are dropped.
    pub fn rebuilt(&self, r: Rebuilt) {
        *self.rebuilt.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        let mut d = self.damage.lock().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        d.1 = None;
    }

    /// The last rebuild, if the file was ever set aside since the role started.
    pub fn last_rebuild(&self) -> Option<Rebuilt> {
        self.rebuilt.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A reading connection that follows the file through rebuilds and swaps.
    pub fn reader(self: &Arc<Self>) -> rusqlite::Result<Arc<Mutex<Reader>>> {
        let reader = Arc::new(Mutex::new(Reader {
            conn: Some(open(&self.path, self.layout.schema)?),
            seen: self.generation.load(Ordering::SeqCst),
            state: self.clone(),
        }));
        let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        readers.retain(|r| r.strong_count() > 0);
        readers.push(Arc::downgrade(&reader));
        Ok(reader)
    }

    /// Runs `replace` (which puts another file at [`FileState::path`]) with every reader of the
    /// old file closed and held: a connection that outlived the rename and closed later would
    /// checkpoint into, or delete, the new file's `-wal` (SQLite finds it by name). Readers
    /// reopen the new file on their next query; the generation moves as after a rebuild.
    pub fn swap<T>(&self, replace: impl FnOnce() -> T) -> T {
        let readers: Vec<Arc<Mutex<Reader>>> = {
            let readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
            readers.iter().filter_map(|r| r.upgrade()).collect()
        };
        let mut held: Vec<_> = readers
            .iter()
            .map(|r| r.lock().unwrap_or_else(|p| p.into_inner()))
            .collect();
        for r in held.iter_mut() {
            r.conn = None;
        }
        let out = replace();
        let mut d = self.damage.lock().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        d.1 = None;
        drop(held);
        out
    }
}

/// A connection beside the writer's, reopened when the writer rebuilt or swapped the file.
pub struct Reader {
    state: Arc<FileState>,
    seen: u64,
    /// None while closed for a swap, until the next query opens the new file.
    conn: Option<Connection>,
}

impl Reader {
    /// The connection, to the current file.
    pub fn conn(&mut self) -> rusqlite::Result<&Connection> {
        let now = self.state.generation.load(Ordering::SeqCst);
        if now != self.seen || self.conn.is_none() {
            self.conn = None;
            self.conn = Some(open(&self.state.path, self.state.layout.schema)?);
            self.seen = now;
        }
        self.conn.as_ref().ok_or(rusqlite::Error::InvalidQuery)
    }

    /// Reports that this reader's file is damaged (see [`FileState::report_damage`]).
    pub fn report_damage(&self, reason: &str) {
        self.state.report_damage(self.seen, reason);
    }
}

/// While running: closes `conn`, sets its damaged file aside and opens a fresh one in its place.
pub fn reopen_fresh(conn: &mut Connection, path: &Path, layout: &Layout, reason: &str) -> rusqlite::Result<Rebuilt> {
    drop(std::mem::replace(conn, Connection::open_in_memory()?));
    let rebuilt = set_aside(path, reason).map_err(|_| rusqlite::Error::InvalidPath(path.to_path_buf()))?;
    *conn = open(path, layout.schema)?;
    conn.pragma_update(None, "user_version", layout.version)?;
    Ok(rebuilt)
}

/// Prepared statements a projection connection keeps.
pub(crate) const STATEMENTS: usize = 128;

pub(crate) const CHECKPOINTS: &str =
    "CREATE TABLE IF NOT EXISTS checkpoints (name TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID;";

/// Opens (creating folder and file) a projection file in WAL mode and runs its `schema`.
pub fn open(path: &Path, schema: &str) -> rusqlite::Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|_| rusqlite::Error::InvalidPath(dir.to_path_buf()))?;
    }
    let conn = Connection::open(path)?;
    // More statements than rusqlite's default 16 (views alone has 30): past it every event
    // prepared its SQL again (7% of a bulk load's time in sqlite3Prepare, measured with perf).
    conn.set_prepared_statement_cache_capacity(STATEMENTS);
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // A forgotten user's rows are rewritten: what they held is overwritten, not left in free
    // pages (the WAL is checkpointed with TRUNCATE after a forget, see `follow`).
    conn.pragma_update(None, "secure_delete", "ON")?;
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

#[cfg(test)]
mod tests {
    use super::Layout;

    const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT);
CREATE INDEX IF NOT EXISTS t_v ON t (v);
CREATE TABLE IF NOT EXISTS n (v TEXT PRIMARY KEY, c INTEGER NOT NULL);
";

    #[test]
    fn a_bulk_load_writes_tables_first_then_indexes_and_fills() {
        let layout = Layout {
            schema: SCHEMA,
            version: 1,
            load_indexes: &[],
            fill: "INSERT INTO n (v, c) SELECT v, COUNT(*) FROM t GROUP BY v;",
            migrations: &[],
        };
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        assert!(!layout.tables().contains("INDEX"), "{}", layout.tables());
        conn.execute_batch(&layout.tables()).unwrap();
        conn.execute_batch("INSERT INTO t VALUES ('a', 'x'), ('b', 'x'), ('c', 'y');")
            .unwrap();
        conn.execute_batch(&layout.after_load()).unwrap();
        let counts: Vec<(String, i64)> = conn
            .prepare("SELECT v, c FROM n ORDER BY v")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(counts, [("x".into(), 2), ("y".into(), 1)]);
        let index: i64 = conn
            .query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 't_v'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(index, 1, "the index is built after the load");
    }
}
