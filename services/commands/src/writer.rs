//! The single writer: group commit over an in-memory cache.
//!
//! One thread owns the SQLite connection. It takes every command that has arrived (up to
//! `max_batch`), decides them in order against the cache (each sees the ones before it),
//! appends all their events in one transaction, commits, and only then answers them all.
//! If the commit fails, every command of the batch gets `unavailable` and the cache is dropped.

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

/// A reply that is known once the batch has committed.
enum Pending {
    Ready(Reply),
    Appended { index: usize, data: Value },
    SameAs(usize),
}

/// A used command_id sent again with other fields: a mistake of the client, never a retry.
fn reused_id(command_id: &str, command_type: &str) -> ProtocolError {
    ProtocolError::with_field(
        invitebus_events::ErrorCode::Conflict,
        "command_id",
        format!(
            "command_id `{command_id}` was already used for a {command_type} with other fields; \
             a retry must repeat the same body, a new command needs a new command_id"
        ),
    )
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
            process(&mut owned, std::mem::take(&mut jobs), &head);
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

/// Decides, appends and answers one batch. `head` moves before any reply leaves, so a client that
/// asks `health` right after its reply sees its own position (a gateway test once saw the old one).
fn process(owned: &mut Owned, jobs: Vec<Job>, head: &watch::Sender<u64>) {
    let Owned {
        _lock: _,
        log,
        cache,
        ids,
        relay,
        checkpointed,
        stepped_down: _,
        tenure,
    } = owned;
    let ids: &mut dyn IdGen = ids;
    let now = truncate_millis(chrono::Utc::now());
    let mut batch: Vec<AppendCommand> = Vec::new();
    let mut pending: Vec<(Responder, &'static str, std::time::Instant, Pending)> = Vec::with_capacity(jobs.len());
    // A command is known by (actor, command type, command_id); the first of a batch is kept here.
    let mut seen: HashMap<(String, &'static str, String), (usize, String)> = HashMap::new();
    // One query finds every remembered reply under the batch's command_ids.
    let command_ids: Vec<&str> = jobs
        .iter()
        .filter_map(|j| j.request.meta.command_id.as_deref())
        .collect();
    let known = log.lookup_commands(&command_ids);
    drop(command_ids);
    let known = match known {
        Ok(known) => known,
        Err(e) => {
            for job in jobs {
                (job.respond)(Reply::err(ProtocolError::unavailable(format!("reading the log: {e}"))));
            }
            return;
        }
    };
    for Job {
        request,
        respond,
        received,
    } in jobs
    {
        let meta = &request.meta;
        let command_type = request.command.name();
        let digest = request.command.digest();
        if let Some(cid) = &meta.command_id {
            let key = (meta.actor.to_string(), command_type, cid.clone());
            if let Some((first, first_digest)) = seen.get(&key) {
                let reply = match first_digest == &digest {
                    true => Pending::SameAs(*first),
                    false => Pending::Ready(Reply::err(reused_id(cid, command_type))),
                };
                pending.push((respond, command_type, received, reply));
                continue;
            }
            // An exact (typed) reply first; one remembered before types were kept answers too.
            let stored = known
                .iter()
                .filter(|r| r.command_id == *cid && r.answers(meta.actor.as_str(), command_type))
                .max_by_key(|r| r.command_type.is_some());
            if let Some(stored) = stored {
                let reply = match stored.same_body(&digest) {
                    true => {
                        debug!(command_id = %cid, "repeated command answered from the log");
                        Reply::command_ok(stored.data.clone(), stored.position)
                    }
                    false => Reply::err(reused_id(cid, command_type)),
                };
                pending.push((respond, command_type, received, Pending::Ready(reply)));
                continue;
            }
        }
        let ctx = Ctx::new(meta.actor.clone(), meta.roles.clone(), now);
        let outcome = command::execute(cache, log, ids, &ctx, meta, &request.command).and_then(|outcome| {
            let events = outcome
                .events
                .iter()
                .map(|e| cache.apply(e, log))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((outcome.reply, events))
        });
        match outcome {
            Ok((data, events)) => {
                if let Some(cid) = &meta.command_id {
                    let key = (meta.actor.to_string(), command_type, cid.clone());
                    seen.insert(key, (pending.len(), digest.clone()));
                }
                batch.push(AppendCommand {
                    actor: meta.actor.to_string(),
                    command_type,
                    command_digest: digest,
                    command_id: meta.command_id.clone(),
                    correlation_id: meta.correlation_id.clone(),
                    traceparent: meta.traceparent.as_ref().map(|t| t.as_str().to_string()),
                    causation_id: None,
                    events,
                    reply_data: data.clone(),
                });
                pending.push((
                    respond,
                    command_type,
                    received,
                    Pending::Appended {
                        index: batch.len() - 1,
                        data,
                    },
                ));
            }
            Err(e) => {
                if e.code == invitebus_events::ErrorCode::Internal {
                    error!(command_id = ?meta.command_id, command = request.command.name(), error = %e, "internal error");
                }
                pending.push((respond, command_type, received, Pending::Ready(Reply::err(e))));
            }
        }
    }
    // The relay's progress rides along in the batch's transaction.
    let relayed = relay.relayed.as_ref().map(|r| *r.borrow()).filter(|p| p > checkpointed);
    // Checked as late as can be: a holder whose tenure ran out while deciding appends nothing.
    let lease_over = tenure_over(tenure);
    let appended = if batch.is_empty() {
        Ok(Appended {
            positions: vec![],
            published: vec![],
        })
    } else if lease_over {
        metrics::counter!("invitebus_writer_lease_refusals_total").increment(batch.len() as u64);
        Err(LogError::NotLeader)
    } else {
        log.append_batch(&batch, now, relayed.map(|p| (RELAY_CHECKPOINT, p)))
    };
    let positions: Result<Vec<Option<u64>>, String> = match appended {
        Ok(Appended {
            positions: p,
            published,
        }) => {
            // Stored only when a batch carried it (an empty batch commits nothing).
            if let (Some(r), false) = (relayed, batch.is_empty()) {
                *checkpointed = r;
            }
            // A full feed is fine: the relay reads what it missed from the log.
            if let (Some(feed), false) = (&relay.feed, published.is_empty()) {
                let _ = feed.try_send(published);
            }
            for (cmd, pos) in batch.iter().zip(&p) {
                debug!(command_id = ?cmd.command_id, position = ?pos, stream_id = ?cmd.events.first().map(|e| &e.stream_id), "appended");
            }
            Ok(p)
        }
        Err(e) => {
            warn!(error = %e, commands = batch.len(), "batch commit failed; every command in it gets unavailable");
            cache.clear();
            log.clear_cache();
            Err(e.to_string())
        }
    };
    head.send_replace(log.head());
    let mut replies: Vec<Reply> = Vec::with_capacity(pending.len());
    for (_, _, _, p) in &pending {
        let reply = match p {
            Pending::Ready(r) => r.clone(),
            Pending::Appended { index, data } => match &positions {
                Ok(pos) => Reply::command_ok(data.clone(), pos[*index]),
                Err(why) => Reply::err(ProtocolError::unavailable(format!(
                    "the event log could not commit ({why}); retry with the same command_id"
                ))),
            },
            Pending::SameAs(first) => replies[*first].clone(),
        };
        replies.push(reply);
    }
    // Counted per batch, not per command: one registry look-up per (command, outcome) and batch.
    let mut outcomes: HashMap<(&'static str, &'static str), u64> = HashMap::new();
    let duration = metrics::histogram!("invitebus_command_duration_seconds");
    metrics::histogram!("invitebus_batch_commands").record(pending.len() as f64);
    for ((respond, command, received, _), reply) in pending.into_iter().zip(replies) {
        let outcome = reply.error.as_ref().map(|e| e.code.as_str()).unwrap_or("ok");
        *outcomes.entry((command, outcome)).or_default() += 1;
        respond(reply);
        duration.record(received.elapsed().as_secs_f64());
    }
    for ((command, outcome), n) in outcomes {
        metrics::counter!("invitebus_commands_total", "command" => command, "outcome" => outcome).increment(n);
    }
    metrics::gauge!("invitebus_log_head_position").set(log.head() as f64);
    cache.trim();
}
