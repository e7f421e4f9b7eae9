//! Bulk loads from the local event log: rebuilds, as-of replays and a projection that finds
//! itself far behind. One thread reads the log in chunks, `workers` threads decode them, and the
//! caller applies them in position order in large transactions; a rebuild from position 0 writes
//! a fresh file that replaces the live one only when complete ([`crate::file::ProjectionFile`]).
//!
//! Only what the relay has acknowledged is read (its checkpoint in the log): an event JetStream
//! never stored, such as a deposed writer's unpublished tail, never reaches a view.

use crate::file::Decoded;
use crate::watchdog::Watch;
use crate::Projection;
use invitebus_eventlog::{LogError, LogReader, Stored, RELAY_CHECKPOINT};
use invitebus_events::Event;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::sync_channel;
use std::sync::Mutex;
use std::time::Instant;
use tracing::{info, warn};

/// How bulk reads go: events per chunk (one transaction each), decoding threads, and the keys
/// the decoders open personal fields with (None: they stay as stored).
#[derive(Debug, Clone)]
pub struct ReadSettings {
    pub chunk: usize,
    pub workers: usize,
    pub keys: Option<std::sync::Arc<invitebus_keys::KeyRing>>,
}

impl Default for ReadSettings {
    fn default() -> Self {
        ReadSettings {
            chunk: 8192,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()).max(1),
            keys: None,
        }
    }
}

/// How far behind a live projection turns to the local log. At 100,000 the views and the
/// exporter's copy stood about 105,000 behind through `bench soak`'s saturating million
/// commands and reached the head 1.4–2.5 s after the last reply (four runs); at 20,000 they
/// stood under 30,000 behind and took 0.35–0.84 s (two runs, alternated with two of those;
/// 7,557 and 8,120 commands/s against 8,116 and 8,205).
pub const DEFAULT_MIN_LAG: u64 = 20_000;

/// A live projection's bulk path: the local log, and how far behind it must be to use it.
#[derive(Debug, Clone)]
pub struct LocalLog {
    pub path: PathBuf,
    /// Behind the relay's acknowledged position by at least this many events: catch up in bulk.
    pub min_lag: u64,
    pub read: ReadSettings,
}

impl LocalLog {
    /// The log at `path`, used when [`DEFAULT_MIN_LAG`] events or more behind.
    pub fn new(path: impl Into<PathBuf>) -> LocalLog {
        LocalLog {
            path: path.into(),
            min_lag: DEFAULT_MIN_LAG,
            read: ReadSettings::default(),
        }
    }
}

/// Why a bulk read stopped.
#[derive(Debug, thiserror::Error)]
pub enum BulkError<E: std::fmt::Display> {
    #[error("reading the log: {0}")]
    Log(#[from] LogError),
    #[error("event at position {position}: {reason}")]
    Unreadable { position: u64, reason: String },
    #[error("applying: {0}")]
    Apply(E),
    #[error("a reading thread failed")]
    Thread,
}

/// The relay's acknowledged position in the log at `path`: as far as a bulk read may go.
pub fn acknowledged(path: &Path) -> Result<u64, LogError> {
    LogReader::open(path)?.checkpoint(RELAY_CHECKPOINT)
}

/// The stored data read straight into its typed event ([`Event::decode_str`]), its personal
/// fields opened with `keys`.
fn decode(s: Stored, keys: Option<&invitebus_keys::KeyRing>) -> Result<Decoded, (u64, String)> {
    let env = s.envelope;
    let mut event =
        Event::decode_str(&env.event_type, env.schema, &s.data).map_err(|e| (env.position, e.to_string()))?;
    if let Some(keys) = keys {
        keys.reveal_blocking(&mut event)
            .map_err(|e| (env.position, e.to_string()))?;
    }
    Ok(Decoded { env, event })
}

type Chunk = (u64, Result<Vec<Decoded>, BulkError<String>>);

/// How far the caller has applied, in chunks, so that readers stay at most a window ahead
/// (memory stays bounded however slow the projection is); `stop` ends them early.
struct Progress {
    applied: Mutex<(u64, bool)>,
    moved: std::sync::Condvar,
}

/// Stops every reader when dropped: the applier's and each reader's guard, so that a panic
/// anywhere ends the others instead of leaving them waiting for their turn.
struct StopOnDrop<'a>(&'a Progress);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let mut state = self.0.applied.lock().unwrap_or_else(|p| p.into_inner());
        state.1 = true;
        self.0.moved.notify_all();
    }
}

/// Stops every reader if the thread holding it unwinds.
struct PanicStop<'a>(&'a Progress);

impl Drop for PanicStop<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            drop(StopOnDrop(self.0));
        }
    }
}

impl Progress {
    /// Waits until chunk `k` is within `window` of the applied ones; false when stopped.
    fn wait_turn(&self, k: u64, window: u64) -> bool {
        let mut state = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        while !state.1 && k >= state.0 + window {
            state = self.moved.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        !state.1
    }

    fn advance(&self, stop: bool) {
        let mut state = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        state.0 += 1;
        state.1 |= stop;
        self.moved.notify_all();
    }
}

/// Reads the events after `after` up to `until` from the log at `log` and hands them to `apply`
/// in position order, a chunk at a time. Positions are dense, so chunk k is the positions
/// `(after + k·chunk, after + (k+1)·chunk]`: each of `workers` threads reads and decodes whole
/// chunks on its own read-only connection, beside the caller applying the previous ones (one
/// reader thread feeding decoders managed 200k events/s, its row reading the serial part).
/// Returns the last position handed on (`after` when there was nothing).
pub fn read<E: std::fmt::Display>(
    log: &Path,
    after: u64,
    until: u64,
    settings: &ReadSettings,
    mut apply: impl FnMut(Vec<Decoded>) -> Result<(), E>,
) -> Result<u64, BulkError<E>> {
    LogReader::open(log)?;
    if until <= after {
        return Ok(after);
    }
    let (chunk, workers) = (settings.chunk.max(1) as u64, settings.workers.max(1));
    let chunks = (until - after).div_ceil(chunk);
    let window = 2 * workers as u64;
    let next = std::sync::atomic::AtomicU64::new(0);
    let progress = Progress {
        applied: Mutex::new((0, false)),
        moved: std::sync::Condvar::new(),
    };
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = sync_channel::<Chunk>(window as usize);
        for _ in 0..workers {
            let (tx, next, progress) = (done_tx.clone(), &next, &progress);
            let keys = settings.keys.as_deref();
            scope.spawn(move || {
                // A reader that panics stops the others; the applier then misses its chunk.
                let _guard = PanicStop(progress);
                let reader = match LogReader::open(log) {
                    Ok(r) => r,
                    Err(e) => return drop(tx.send((next.fetch_add(1, Ordering::SeqCst), Err(e.into())))),
                };
                loop {
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    if k >= chunks || !progress.wait_turn(k, window) {
                        return;
                    }
                    let (lo, hi) = (after + k * chunk, (after + (k + 1) * chunk).min(until));
                    let decoded = reader
                        .read_stored(lo, (hi - lo) as usize)
                        .map_err(BulkError::from)
                        .and_then(|rows| {
                            // Sized up front: a collected `Result` grows from empty, and each
                            // growth of a chunk's vector faulted in fresh pages (perf: 5% of a
                            // views load zeroing them).
                            let mut out = Vec::with_capacity(rows.len());
                            for r in rows.into_iter().filter(|r| r.envelope.position <= hi) {
                                out.push(
                                    decode(r, keys)
                                        .map_err(|(position, reason)| BulkError::Unreadable { position, reason })?,
                                );
                            }
                            Ok(out)
                        });
                    if tx.send((k, decoded)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        // However the applier ends (an error, a panic in `apply`), the readers stop.
        let _stop = StopOnDrop(&progress);
        let mut applied = || -> Result<u64, BulkError<E>> {
            let (mut waiting, mut want, mut last) = (BTreeMap::new(), 0u64, after);
            for (k, chunk) in done_rx.iter() {
                waiting.insert(k, chunk);
                while let Some(chunk) = waiting.remove(&want) {
                    let events = chunk.map_err(|e| match e {
                        BulkError::Log(e) => BulkError::Log(e),
                        BulkError::Unreadable { position, reason } => BulkError::Unreadable { position, reason },
                        BulkError::Apply(_) | BulkError::Thread => BulkError::Thread,
                    })?;
                    last = events.last().map_or(last, |d| d.env.position);
                    apply(events).map_err(BulkError::Apply)?;
                    want += 1;
                    progress.advance(false);
                }
                if want >= chunks {
                    break;
                }
            }
            match want >= chunks {
                true => Ok(last),
                false => Err(BulkError::Thread),
            }
        };
        let result = applied();
        progress.advance(true);
        drop(done_rx);
        result
    })
}

/// Applies the log's events after the projection's position up to `until` in bulk: from position
/// 0 into a fresh file swapped in at the end (killed or failed before that, the live file is as
/// it was), else in place, a transaction per chunk. After the caller's own `begin_load` (a
/// rebuild whatever the live position) it writes the fresh file and leaves the swap to the
/// caller's `finish_load`; on an error the load is dropped either way. `progress` hears each chunk's last position
/// and may stop the load by answering an error. Returns the events applied.
pub fn load<P: Projection>(
    projection: &mut P,
    log: &Path,
    until: u64,
    settings: &ReadSettings,
    mut progress: impl FnMut(u64) -> Result<(), String>,
) -> Result<u64, String> {
    let from = projection.position();
    let begun = projection.store().loading();
    // A load the caller began is the caller's to finish (`replay` tops it up from the stream).
    let fresh = from == 0 && !begun;
    if until <= from {
        return Ok(0);
    }
    if fresh {
        projection.begin_load().map_err(|e| e.to_string())?;
    }
    let result = read(log, from, until, settings, |events| {
        projection.apply_owned(events).map_err(|e| e.to_string())?;
        progress(projection.position())
    })
    .map_err(|e| e.to_string())
    .and_then(|_| match fresh {
        true => projection.finish_load().map_err(|e| e.to_string()),
        false => Ok(()),
    });
    match result {
        Ok(()) => Ok(projection.position() - from),
        Err(e) => {
            if fresh || begun {
                if let Err(e) = projection.abandon_load() {
                    warn!(projection = projection.name(), error = %e, "dropping the half-loaded file failed");
                }
            }
            Err(e)
        }
    }
}

/// Brings `projection` up to the relay's acknowledged position (at most `stored`, JetStream's
/// last sequence) from the local log when it is at least `log.min_lag` behind (see [`load`]).
/// The watchdog counts the load's progress: a fresh load reports `loading` (queries keep the
/// live file until the swap), one in place moves the applied position. True when it loaded
/// anything.
pub fn catch_up<P: Projection>(
    projection: &mut P,
    log: &LocalLog,
    stored: u64,
    watch: &Watch,
    applied: &tokio::sync::watch::Sender<u64>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Result<bool, String> {
    // A log being created (no tables yet) or missing has nothing to load from.
    let Ok(acknowledged) = acknowledged(&log.path) else {
        return Ok(false);
    };
    let until = acknowledged.min(stored);
    let from = projection.position();
    if until <= from || until - from < log.min_lag {
        return Ok(false);
    }
    let fresh = from == 0;
    info!(
        projection = projection.name(),
        position = from,
        until,
        fresh,
        "catching up in bulk from the local log"
    );
    let started = Instant::now();
    let result = load(projection, &log.path, until, &log.read, |position| {
        if *stop.borrow() {
            return Err("stopping".to_string());
        }
        match fresh {
            true => watch.loading(Some(position)),
            false => {
                let _ = applied.send(position);
            }
        }
        Ok(())
    });
    watch.loading(None);
    let events = result?;
    let _ = applied.send(projection.position());
    let secs = started.elapsed().as_secs_f64();
    info!(
        projection = projection.name(),
        position = projection.position(),
        events,
        secs,
        rate = events as f64 / secs.max(1e-9),
        "caught up in bulk"
    );
    Ok(true)
}
