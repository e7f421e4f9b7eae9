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
use invitebus_eventlog::{LogError, LogReader, Published, RELAY_CHECKPOINT};
use invitebus_events::Envelope;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tracing::{info, warn};

/// How bulk reads go: events per chunk (one transaction each) and decoding threads.
#[derive(Debug, Clone)]
pub struct ReadSettings {
    pub chunk: usize,
    pub workers: usize,
}

impl Default for ReadSettings {
    fn default() -> Self {
        ReadSettings {
            chunk: 8192,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()).max(1),
        }
    }
}

/// A live projection's bulk path: the local log, and how far behind it must be to use it.
#[derive(Debug, Clone)]
pub struct LocalLog {
    pub path: PathBuf,
    /// Behind the relay's acknowledged position by at least this many events: catch up in bulk.
    pub min_lag: u64,
    pub read: ReadSettings,
}

impl LocalLog {
    /// The log at `path`, used when 100,000 events or more behind.
    pub fn new(path: impl Into<PathBuf>) -> LocalLog {
        LocalLog {
            path: path.into(),
            min_lag: 100_000,
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

fn decode(p: &Published) -> Result<Decoded, (u64, String)> {
    let env: Envelope = serde_json::from_slice(&p.payload).map_err(|e| (p.position, e.to_string()))?;
    let event = env.event().map_err(|e| (p.position, e.to_string()))?;
    Ok(Decoded { env, event })
}

type Chunk = (usize, Result<Vec<Decoded>, (u64, String)>);

/// Reads the events after `after` up to `until` from the log at `log`, decodes them beside the
/// reader, and hands them to `apply` in position order, a chunk at a time. Returns the last
/// position handed on (`after` when there was nothing).
pub fn read<E: std::fmt::Display>(
    log: &Path,
    after: u64,
    until: u64,
    settings: &ReadSettings,
    mut apply: impl FnMut(&[Decoded]) -> Result<(), E>,
) -> Result<u64, BulkError<E>> {
    let reader = LogReader::open(log)?;
    let (chunk, workers) = (settings.chunk.max(1), settings.workers.max(1));
    std::thread::scope(|scope| {
        let (raw_tx, raw_rx) = sync_channel::<(usize, Vec<Published>)>(workers * 2);
        let (done_tx, done_rx) = sync_channel::<Chunk>(workers * 2);
        let reading = scope.spawn(move || -> Result<(), LogError> {
            let (mut next, mut i) = (after, 0);
            while next < until {
                let mut rows = reader.read_published(next, chunk)?;
                rows.retain(|r| r.position <= until);
                let Some(last) = rows.last() else { break };
                next = last.position;
                if raw_tx.send((i, rows)).is_err() {
                    break;
                }
                i += 1;
            }
            Ok(())
        });
        // Each worker holds the queue; when the last one stops, the reader's send fails.
        let raw_rx = Arc::new(Mutex::new(raw_rx));
        for _ in 0..workers {
            let (rx, tx) = (raw_rx.clone(), done_tx.clone());
            scope.spawn(move || loop {
                let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok((i, rows)) = job else { break };
                if tx.send((i, rows.iter().map(decode).collect())).is_err() {
                    break;
                }
            });
        }
        drop((raw_rx, done_tx));
        let mut applied = || -> Result<u64, BulkError<E>> {
            let (mut waiting, mut next, mut last) = (BTreeMap::new(), 0, after);
            for (i, chunk) in done_rx.iter() {
                waiting.insert(i, chunk);
                while let Some(chunk) = waiting.remove(&next) {
                    let events = chunk.map_err(|(position, reason)| BulkError::Unreadable { position, reason })?;
                    apply(&events).map_err(BulkError::Apply)?;
                    last = events.last().map_or(last, |d| d.env.position);
                    next += 1;
                }
            }
            Ok(last)
        };
        let result = applied();
        drop(done_rx);
        let read = reading.join().map_err(|_| BulkError::Thread)?;
        let last = result?;
        read?;
        Ok(last)
    })
}

/// Applies the log's events after the projection's position up to `until` in bulk: from position
/// 0 (or after the caller's own `begin_load`, a rebuild whatever the position) into a fresh file
/// swapped in at the end (killed or failed before that, the live file is as it was), else in
/// place, a transaction per chunk. `progress` hears each chunk's last position
/// and may stop the load by answering an error. Returns the events applied.
pub fn load<P: Projection>(
    projection: &mut P,
    log: &Path,
    until: u64,
    settings: &ReadSettings,
    mut progress: impl FnMut(u64) -> Result<(), String>,
) -> Result<u64, String> {
    let from = projection.position();
    let fresh = from == 0;
    if until <= from && !projection.store().loading() {
        return Ok(0);
    }
    if fresh {
        projection.begin_load().map_err(|e| e.to_string())?;
    }
    let result = read(log, from, until, settings, |events| {
        projection.apply_decoded(events).map_err(|e| e.to_string())?;
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
            if fresh {
                if let Err(e) = projection.abandon_load() {
                    warn!(projection = projection.name(), error = %e, "dropping the half-loaded file failed");
                }
            }
            Err(e)
        }
    }
}

/// Brings `projection` up to the relay's acknowledged position from the local log when it is at
/// least `log.min_lag` behind (see [`load`]). The watchdog counts the load's progress: a fresh
/// load reports `loading` (queries keep the live file until the swap), one in place moves the
/// applied position. True when it loaded anything.
pub fn catch_up<P: Projection>(
    projection: &mut P,
    log: &LocalLog,
    watch: &Watch,
    applied: &tokio::sync::watch::Sender<u64>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Result<bool, String> {
    // A log being created (no tables yet) or missing has nothing to load from.
    let Ok(until) = acknowledged(&log.path) else {
        return Ok(false);
    };
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
