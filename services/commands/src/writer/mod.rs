//! The single writer: group commit over an in-memory cache.
//!
//! One thread owns the SQLite connection. It takes every command that has arrived (up to
//! `max_batch`), decides them in order against the cache (each sees the ones before it),
//! appends all their events in one transaction, commits, and only then answers them all.
//! If the commit fails, every command of the batch gets `unavailable` and the cache is dropped.

mod batch;

use crate::cache::Cache;
use crate::command;
use crate::ctx::Ctx;
use crate::decision::{IdGen, RandomIds};
use invitebus_eventlog::relay::RelayFeed;
use invitebus_eventlog::{AppendCommand, Appended, EventLog, LogError, Options, Sync, RELAY_CHECKPOINT};
use invitebus_events::envelope::truncate_millis;
use invitebus_events::{CommandRequest, ProtocolError, Reply};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, warn};

/// How the writer runs.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub log_path: PathBuf,
    pub sync: Sync,
    /// Most commands per transaction; 1 turns group commit off.
    pub max_batch: usize,
    /// Commands waiting for the writer before senders wait too.
    pub queue: usize,
    /// With standby writers: until when this instance holds the writer's lease (None: it does
    /// not). Checked before every commit; a batch past it is refused, nothing appended.
    pub tenure: Option<watch::Receiver<Option<std::time::Instant>>>,
}

impl WriterConfig {
    pub fn new(log_path: impl Into<PathBuf>) -> Self {
        WriterConfig {
            log_path: log_path.into(),
            sync: Sync::Full,
            max_batch: 1024,
            queue: 16_384,
            tenure: None,
        }
    }
}

/// Called once with the command's reply, after its batch has committed.
pub type Responder = Box<dyn FnOnce(Reply) + Send>;

/// What reaches the writer thread: a command, the relay's word that another writer owns the
/// stream (the writer then drops its unpublished tail at once, not at its next command), or a
/// request to store the relay's position while no batch comes to carry it.
/// Unboxed: commands are nearly all of it, and boxing would allocate once per command.
#[allow(clippy::large_enum_variant)]
enum Work {
    Command(Job),
    StepDown,
    /// Store the relay's position now: no batch may come to carry it.
    Checkpoint,
}

struct Job {
    request: CommandRequest,
    respond: Responder,
    /// When it reached the writer's queue: `invitebus_command_duration_seconds` counts from here.
    received: std::time::Instant,
}

/// Sends commands to the writer. Cheap to clone; the writer stops when every handle is dropped.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Work>,
    head: watch::Receiver<u64>,
}

impl WriterHandle {
    /// Queues a command; `respond` gets its reply after commit.
    pub async fn submit_with(&self, request: CommandRequest, respond: Responder) {
        if let Err(mpsc::error::SendError(Work::Command(job))) = self
            .tx
            .send(Work::Command(Job {
                request,
                respond,
                received: std::time::Instant::now(),
            }))
            .await
        {
            (job.respond)(Reply::err(ProtocolError::unavailable("the writer has stopped")));
        }
    }

    /// A way to tell the writer to step down, or to store the relay's checkpoint, that does not
    /// keep it running (the writer stops when every handle is gone; the relay, which outlives
    /// it, holds one).
    pub fn stepper(&self) -> Stepper {
        Stepper(self.tx.downgrade())
    }

    /// Queues a command and waits for its reply.
    pub async fn submit(&self, request: CommandRequest) -> Reply {
        let (tx, rx) = oneshot::channel();
        self.submit_with(request, Box::new(move |r| drop(tx.send(r)))).await;
        rx.await
            .unwrap_or_else(|_| Reply::err(ProtocolError::unavailable("the writer has stopped")))
    }

    /// The last committed position; changes wake the relay.
    pub fn head(&self) -> watch::Receiver<u64> {
        self.head.clone()
    }
}

/// Wakes the writer between commands (see [`WriterHandle::stepper`]).
pub struct Stepper(mpsc::WeakSender<Work>);

impl Stepper {
    /// Asks the writer, if it still runs, to act on the deposed position now.
    pub async fn step_down(&self) {
        if let Some(tx) = self.0.upgrade() {
            let _ = tx.send(Work::StepDown).await;
        }
    }

    /// Asks the writer, if it still runs, to store how far the relay has published, as a
    /// batch would: an idle writer's checkpoint then stays current too.
    pub async fn store_checkpoint(&self) {
        if let Some(tx) = self.0.upgrade() {
            let _ = tx.send(Work::Checkpoint).await;
        }
    }
}

/// The writer thread.
pub struct Writer {
    thread: std::thread::JoinHandle<()>,
}

/// The writer's ties to the relay: where committed batches go, and how far the relay has
/// published (stored as its checkpoint inside the writer's next transaction, when asked while
/// idle, and when the writer stops: the relay reads the log and never writes it).
#[derive(Default)]
pub struct RelayLink {
    pub feed: Option<RelayFeed>,
    pub relayed: Option<watch::Receiver<u64>>,
    /// Set by the relay when JetStream holds another writer's event: the position up to which
    /// this log is published. The writer drops what follows and refuses every command since.
    pub deposed: Option<watch::Receiver<Option<u64>>>,
    /// Whether a deposed writer drops its unpublished tail: only under `replicated` durability,
    /// where nothing unpublished was acknowledged. Under `local` it may have been, so it stays.
    pub drop_unpublished: bool,
}

/// What the writer thread owns.
struct Owned {
    _lock: invitebus_filelock::FileLock,
    log: EventLog,
    cache: Cache,
    ids: RandomIds,
    relay: RelayLink,
    checkpointed: u64,
    /// The tail after the deposed position has been dropped.
    stepped_down: bool,
    tenure: Option<watch::Receiver<Option<std::time::Instant>>>,
}

impl Writer {
    /// Opens the log and starts the writer thread.
    pub fn start(config: WriterConfig, relay: RelayLink) -> Result<(Writer, WriterHandle), LogError> {
        // One writer per log: a second serve on the same data folder is refused here.
        let lock = invitebus_filelock::lock(&config.log_path, "the commands role").map_err(LogError::Lock)?;
        let log = EventLog::open(&config.log_path, &Options { sync: config.sync })?;
        let checkpointed = log.checkpoint(RELAY_CHECKPOINT)?;
        let (head_tx, head_rx) = watch::channel(log.head());
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let max_batch = config.max_batch.max(1);
        let owned = Owned {
            _lock: lock,
            log,
            cache: Cache::default(),
            ids: RandomIds,
            relay,
            checkpointed,
            stepped_down: false,
            tenure: config.tenure.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("invitebus-writer".into())
            .spawn(move || run(owned, rx, head_tx, max_batch))?;
        Ok((Writer { thread }, WriterHandle { tx, head: head_rx }))
    }

    /// Waits until every handle is gone and the last batch has committed.
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

fn run(mut owned: Owned, mut rx: mpsc::Receiver<Work>, head: watch::Sender<u64>, max_batch: usize) {
    let mut jobs = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        let mut checkpoint = false;
        match first {
            Work::Command(job) => jobs.push(job),
            Work::StepDown => {}
            Work::Checkpoint => checkpoint = true,
        }
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(Work::Command(job)) => jobs.push(job),
                Ok(Work::StepDown) => {}
                Ok(Work::Checkpoint) => checkpoint = true,
                Err(_) => break,
            }
        }
        if let Some(kept) = owned.relay.deposed.as_ref().and_then(|d| *d.borrow()) {
            step_down(&mut owned, kept, &head);
            for job in jobs.drain(..) {
                (job.respond)(Reply::err(deposed(kept)));
            }
            continue;
        }
        // Past the tenure nothing is answered from this log, refusals and remembered replies
        // included: the instance that holds the lease now may be deciding the same commands.
        if tenure_over(&owned.tenure) {
            metrics::counter!("invitebus_writer_lease_refusals_total").increment(jobs.len() as u64);
            for job in jobs.drain(..) {
                (job.respond)(Reply::err(ProtocolError::unavailable(
                    "this instance does not hold the writer's lease; retry with the same command_id",
                )));
            }
            if checkpoint {
                store_relayed(&mut owned);
            }
            continue;
        }
        if !jobs.is_empty() {
            batch::process(&mut owned, std::mem::take(&mut jobs), &head);
        }
        // After the batch too: one that appended nothing (retries, refusals) carried nothing.
        if checkpoint {
            store_relayed(&mut owned);
        }
    }
    store_relayed(&mut owned);
    debug!("writer stops: every sender is gone");
}

/// Stores the relay's progress since the last batch: when idle, and when the writer stops, so
/// the checkpoint is current after either (a standby keeps everything up to it, PROTOCOL.md).
/// The writer is the only connection that writes the file; the relay only reads.
fn store_relayed(owned: &mut Owned) {
    let relayed = owned.relay.relayed.as_ref().map(|r| *r.borrow());
    if let Some(r) = relayed.filter(|r| *r > owned.checkpointed) {
        match owned.log.set_checkpoint(RELAY_CHECKPOINT, r) {
            Ok(()) => owned.checkpointed = r,
            Err(e) => {
                warn!(error = %e, position = r, "the relay's checkpoint could not be stored; the next start reads the stream")
            }
        }
    }
}

/// True when this writer runs under a lease whose tenure is over (or was never granted).
fn tenure_over(tenure: &Option<watch::Receiver<Option<std::time::Instant>>>) -> bool {
    tenure
        .as_ref()
        .is_some_and(|t| t.borrow().is_none_or(|until| std::time::Instant::now() >= until))
}

/// The answer to every command once another writer owns the stream.
fn deposed(kept: u64) -> ProtocolError {
    ProtocolError::unavailable(format!(
        "this writer was deposed: another writer published position {} to INVITES_EVENTS; \
         retry with the same command_id (another instance answers)",
        kept + 1
    ))
}

/// Once: drops the events after `kept` (never published, and they never will be) with their
/// commands' replies, and forgets the cache decided from them.
fn step_down(owned: &mut Owned, kept: u64, head: &watch::Sender<u64>) {
    if owned.stepped_down {
        return;
    }
    owned.stepped_down = true;
    owned.cache.clear();
    if !owned.relay.drop_unpublished {
        // `local` durability: the tail may hold acknowledged commands. Keep every event and
        // refuse commands: the two histories have parted and an operator must choose.
        metrics::counter!("invitebus_writer_kept_unpublished_total").increment(1);
        error!(position = kept, head = owned.log.head(), "deposed: another writer owns INVITES_EVENTS after this position; this log's unpublished tail is kept (under local durability it may hold acknowledged commands) and commands are refused: run one writer per stream, or standbys with --durability replicated");
        return;
    }
    match owned.log.discard_after(kept) {
        Ok(gone) => {
            metrics::counter!("invitebus_writer_discarded_events_total").increment(gone);
            error!(position = kept, discarded = gone, "deposed: another writer owns INVITES_EVENTS after this position; the unpublished tail is dropped and commands are refused")
        }
        Err(e) => {
            error!(position = kept, error = %e, "deposed, and the unpublished tail could not be dropped; commands are refused")
        }
    }
    owned.checkpointed = owned.checkpointed.min(owned.log.head());
    head.send_replace(owned.log.head());
}
