//! The export files this exporter put in the object store, and whom each holds, in a file of its
//! own beside the copy of the views (`<copy>-files.db`: not derived from events, so it outlives
//! the copy's rebuilds). A forgotten user's files are queued and erased from the object store
//! chunk by chunk by sequence: a message delete overwrites the stored bytes, where
//! `ObjectStore::delete` is a purge that leaves them.

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use invitebus_events::subject::EXPORTS_BUCKET;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{info, warn};

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS files (export_id TEXT PRIMARY KEY, name TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS people (user_id TEXT NOT NULL, export_id TEXT NOT NULL, PRIMARY KEY (user_id, export_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS erase (export_id TEXT PRIMARY KEY, name TEXT NOT NULL) WITHOUT ROWID;
";

/// The files store, shared by the exporter and its eraser.
#[derive(Clone)]
pub struct ExportFiles {
    conn: Arc<Mutex<Connection>>,
}

/// Where the files store of the copy at `copy` lives.
pub fn path_beside(copy: &Path) -> PathBuf {
    let stem = copy
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "exporter".into());
    copy.with_file_name(format!("{stem}-files.db"))
}

impl ExportFiles {
    pub fn open(path: &Path) -> rusqlite::Result<ExportFiles> {
        let conn = invitebus_feed::store::open(path, CREATE)?;
        Ok(ExportFiles {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn)
    }

    /// Export `export_id` was put as `name` and holds `people`.
    pub fn put(&self, export_id: &str, name: &str, people: &HashSet<String>) -> rusqlite::Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.prepare_cached("INSERT OR REPLACE INTO files (export_id, name) VALUES (?1, ?2)")?
                .execute(params![export_id, name])?;
            let mut stmt = tx.prepare_cached("INSERT OR IGNORE INTO people (user_id, export_id) VALUES (?1, ?2)")?;
            for p in people {
                stmt.execute(params![p, export_id])?;
            }
            drop(stmt);
            tx.commit()
        })
    }

    /// Queues every file that holds `user` for erasure; returns how many.
    pub fn forget(&self, user: &str) -> rusqlite::Result<usize> {
        self.with(|c| {
            let tx = c.transaction()?;
            let n = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO erase (export_id, name) SELECT f.export_id, f.name FROM people p \
                     JOIN files f ON f.export_id = p.export_id WHERE p.user_id = ?1",
                )?
                .execute([user])?;
            tx.prepare_cached("DELETE FROM people WHERE user_id = ?1")?
                .execute([user])?;
            tx.commit()?;
            Ok(n)
        })
    }

    fn next_queued(&self) -> rusqlite::Result<Option<(String, String)>> {
        self.with(|c| {
            c.prepare_cached("SELECT export_id, name FROM erase LIMIT 1")?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
    }

    fn erased(&self, export_id: &str) -> rusqlite::Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            for sql in [
                "DELETE FROM erase WHERE export_id = ?1",
                "DELETE FROM files WHERE export_id = ?1",
                "DELETE FROM people WHERE export_id = ?1",
            ] {
                tx.prepare_cached(sql)?.execute([export_id])?;
            }
            tx.commit()?;
            // The names of people gone with the rows: nothing of them stays in the file.
            c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        })
    }

    /// Erases the queued files, each message by sequence; the errors are logged and left
    /// queued for the next turn. Returns how many files went.
    pub async fn erase_queued(&self, js: &jetstream::Context) -> usize {
        let mut done = 0;
        loop {
            let next = match self.next_queued() {
                Ok(Some(n)) => n,
                Ok(None) => return done,
                Err(e) => {
                    warn!(error = %e, "reading the export files to erase failed");
                    return done;
                }
            };
            match erase_object(js, &next.1).await {
                Ok(messages) => {
                    info!(export_id = %next.0, messages, "an export file holding a forgotten user was erased");
                    metrics::counter!("invitebus_export_files_erased_total").increment(1);
                    if let Err(e) = self.erased(&next.0) {
                        warn!(error = %e, "recording an erased export file failed");
                        return done;
                    }
                    done += 1;
                }
                Err(e) => {
                    warn!(export_id = %next.0, error = %e, "erasing an export file failed; retrying later");
                    return done;
                }
            }
        }
    }
}

/// Deletes object `name` of the exports bucket message by message (its chunks, then its
/// metadata); returns how many messages went. An object already gone deletes nothing.
pub async fn erase_object(js: &jetstream::Context, name: &str) -> Result<u64, String> {
    let store = js.get_object_store(EXPORTS_BUCKET).await.map_err(|e| e.to_string())?;
    let nuid = match store.info(name).await {
        Ok(info) => Some(info.nuid),
        Err(e) if e.kind() == jetstream::object_store::InfoErrorKind::NotFound => None,
        Err(e) => return Err(e.to_string()),
    };
    let stream = js
        .get_stream(format!("OBJ_{EXPORTS_BUCKET}"))
        .await
        .map_err(|e| e.to_string())?;
    let mut gone = 0;
    if let Some(nuid) = nuid {
        for seq in sequences(&stream, &format!("$O.{EXPORTS_BUCKET}.C.{nuid}"), |_| true).await? {
            stream.delete_message(seq).await.map_err(|e| e.to_string())?;
            gone += 1;
        }
    }
    let named = |payload: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(payload).is_ok_and(|m| m["name"].as_str() == Some(name))
    };
    for seq in sequences(&stream, &format!("$O.{EXPORTS_BUCKET}.M.>"), named).await? {
        stream.delete_message(seq).await.map_err(|e| e.to_string())?;
        gone += 1;
    }
    Ok(gone)
}

/// The sequences of the messages on `subject` whose payload `keep` accepts.
async fn sequences(
    stream: &jetstream::stream::Stream,
    subject: &str,
    keep: impl Fn(&[u8]) -> bool,
) -> Result<Vec<u64>, String> {
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: subject.to_string(),
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(500), messages.next()).await {
        let msg = msg.map_err(|e| e.to_string())?;
        let info = msg.info().map_err(|e| e.to_string())?;
        let (seq, pending) = (info.stream_sequence, info.pending);
        if keep(&msg.payload) {
            out.push(seq);
        }
        if pending == 0 {
            break;
        }
    }
    Ok(out)
}
