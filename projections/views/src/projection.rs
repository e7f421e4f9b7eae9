//! [`Views`], the views projection's writer: batches event by event ([`crate::apply`]), a fresh
//! bulk load folded in memory ([`crate::fold`]), each with its checkpoint in the same
//! transaction; events at or below the checkpoint are skipped, so applying one twice changes
//! nothing.

use crate::apply::Rows;
use crate::counts::Counts;
use crate::fold::{self, Fold};
use crate::schema;
use invitebus_events::Envelope;
use invitebus_feed::store::FileState;
use invitebus_feed::{Decoded, ProjectionFile};
use std::path::Path;
use std::sync::Arc;

/// The name of this projection's checkpoint.
pub const NAME: &str = "views";

/// Why the views could not be read or updated.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("event at position {position}: {reason}")]
    Event { position: u64, reason: String },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Lock(#[from] invitebus_filelock::LockError),
    /// The local event log could not be read (an as-of load of one resource reads it).
    #[error("event log: {0}")]
    Log(#[from] invitebus_eventlog::LogError),
    /// NATS or JetStream refused or did not answer; the cause is kept.
    #[error("nats: {0}")]
    Nats(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The writer of the view file.
pub struct Views {
    store: ProjectionFile,
    /// A fresh bulk load's rows, folded in memory until it ends or they pass `budget`.
    fold: Option<Fold>,
    budget: usize,
    /// When the fold began, for the log line that ends it.
    folding_since: std::time::Instant,
    /// Keys the phones' hashes (the deployment's master key).
    phone_key: invitebus_keys::MasterKey,
}

impl Views {
    /// Opens (checking it: a damaged or outdated file is set aside, see
    /// [`invitebus_feed::store::open_checked`]) or creates the view file.
    pub fn open(path: impl AsRef<Path>) -> Result<Views, ViewError> {
        Ok(Views {
            store: ProjectionFile::open(path.as_ref(), NAME, schema::LAYOUT)?,
            fold: None,
            budget: fold::DEFAULT_BUDGET,
            folding_since: std::time::Instant::now(),
            phone_key: invitebus_keys::MasterKey::dev(),
        })
    }

    /// Hashes phones with `key`, the deployment's master key (the development one by default):
    /// the admin filters look phones up by that hash.
    pub fn with_phone_key(mut self, key: invitebus_keys::MasterKey) -> Views {
        self.phone_key = key;
        self
    }

    /// At most `bytes` of rows folded in memory in a fresh bulk load (default
    /// [`fold::DEFAULT_BUDGET`]); past it the load writes them and goes on event by event.
    pub fn with_fold_budget(mut self, bytes: usize) -> Views {
        self.budget = bytes;
        self
    }

    /// Writes the folded rows, with the checkpoint, into the loading file; `whole` at the end of
    /// a load folded from its start, whose counts are then written too (the swap skips them).
    fn spill(&mut self, whole: bool) -> Result<(), ViewError> {
        let Some(fold) = self.fold.take() else {
            return Ok(());
        };
        let (bytes, started) = (fold.bytes(), std::time::Instant::now());
        let fold_secs = self.folding_since.elapsed().as_secs_f64();
        self.store
            .apply_then(&[], |_, _, _| Ok::<_, ViewError>(()), |tx| Ok(fold.write(tx, whole)?))?;
        if whole {
            self.store.filled();
        }
        tracing::info!(
            position = self.store.position(),
            bytes,
            fold_secs,
            write_secs = started.elapsed().as_secs_f64(),
            "views: folded rows written"
        );
        Ok(())
    }

    /// What the views' readers share with this writer.
    pub fn file(&self) -> &Arc<FileState> {
        self.store.state()
    }

    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// Applies `events` (skipping those at or below the checkpoint) and moves the checkpoint,
    /// in one transaction.
    pub fn apply_batch(&mut self, events: &[Envelope]) -> Result<(), ViewError> {
        invitebus_feed::Projection::apply(self, events)
    }
}

impl invitebus_feed::Projection for Views {
    type Error = ViewError;
    fn name(&self) -> &str {
        NAME
    }
    fn store(&self) -> &ProjectionFile {
        &self.store
    }
    fn store_mut(&mut self) -> &mut ProjectionFile {
        &mut self.store
    }
    fn apply_owned(&mut self, events: Vec<Decoded>) -> Result<(), ViewError> {
        let Some(fold) = self.fold.as_mut() else {
            return self.apply_decoded(&events);
        };
        let from = self.store.position();
        for d in events.into_iter().filter(|d| d.env.position > from) {
            let at = d.env.position;
            fold.apply(d.event);
            self.store.folded(at);
        }
        if fold.bytes() > self.budget {
            tracing::info!(
                bytes = fold.bytes(),
                budget = self.budget,
                "views: fold budget reached, writing"
            );
            self.spill(false)?;
        }
        Ok(())
    }
    fn apply_decoded(&mut self, events: &[Decoded]) -> Result<(), ViewError> {
        if self.fold.is_some() {
            return self.apply_owned(events.to_vec());
        }
        // A bulk load counts nothing: the counts are filled once at its end.
        let rows = std::cell::RefCell::new(Rows {
            counts: (!self.store.loading()).then(Counts::default),
            phone_key: self.phone_key.clone(),
        });
        self.store.apply_then(
            events,
            |tx, event, _| Ok::<_, ViewError>(rows.borrow_mut().apply(tx, event)?),
            |tx| Ok(rows.borrow_mut().counts.as_mut().map_or(Ok(()), |c| c.write(tx))?),
        )
    }
    fn begin_load(&mut self) -> Result<(), ViewError> {
        self.store.begin_load()?;
        if self.store.position() == 0 {
            self.fold = Some(Fold::with_phone_key(self.phone_key.clone()));
            self.folding_since = std::time::Instant::now();
        }
        Ok(())
    }
    fn write_held(&mut self) -> Result<(), ViewError> {
        self.spill(true)
    }
    fn drop_held(&mut self) {
        self.fold = None;
    }
    fn unreadable(position: u64, reason: String) -> ViewError {
        ViewError::Event { position, reason }
    }
    fn is_damage(e: &ViewError) -> bool {
        matches!(e, ViewError::Sqlite(e) if invitebus_feed::store::is_damage(e))
    }
}
