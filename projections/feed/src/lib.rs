//! Feeds a projection from `INVITES_EVENTS`: every event after the projection's own checkpoint,
//! in position order, in batches, for as long as it runs.
//!
//! The position a projection has reached lives with its rows (written in the same transaction),
//! so the feed starts a consumer at `checkpoint + 1` each time: a rebuilt, restored or replayed
//! view file is followed from exactly where it is, and a JetStream-side cursor can never disagree
//! with the rows.
//!
//! Layout:
//! - [`follow`]: the loop that feeds a projection from its own pull consumer.
//! - [`watchdog`]: position against the stream's head, stalls, and the status health reads.
//! - [`queries`]: answering a projection's queries (read-your-writes, damage reports).
//! - [`store`]: what every projection file shares (opening, checks, readers, damage).
//! - [`file`]: the writer's side of a projection file: batches, rebuilds, bulk loads and swaps.
//! - [`bulk`]: reading the local log in parallel for rebuilds, replays and catching up.
#![forbid(unsafe_code)]

pub mod bulk;
pub mod file;
pub mod follow;
pub mod queries;
pub mod store;
pub mod watchdog;

pub use bulk::LocalLog;
pub use file::{Decoded, ProjectionFile};
pub use follow::{follow, FeedError};
pub use queries::{answer_queries, wait_for};

/// Waits until `applied` moves or `wait` passes, whichever comes first. When the feed has
/// stopped (its sender gone), `changed` would answer at once for ever, turning a caller's loop
/// into a busy one: it then just waits.
pub async fn moved_or(applied: &mut tokio::sync::watch::Receiver<u64>, wait: std::time::Duration) {
    tokio::select! {
        moved = applied.changed() => if moved.is_err() { tokio::time::sleep(wait).await },
        _ = tokio::time::sleep(wait) => {}
    }
}
pub use watchdog::{FeedSettings, FeedState, Watch};

use async_nats::jetstream;
use async_nats::Client;
use invitebus_events::subject::Subjects;
use invitebus_events::Envelope;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::warn;

/// Events applied per transaction, at most.
pub const BATCH: usize = 500;

/// A read model fed by the event stream. It keeps its rows in a [`ProjectionFile`] and says
/// how one event changes them (`apply_decoded`, rows and checkpoint in one transaction, events
/// at or below the position ignored); batches, rebuilds and bulk loads come with the file.
pub trait Projection: Send + 'static {
    type Error: std::fmt::Display + Send + From<rusqlite::Error>;
    fn name(&self) -> &str;
    /// The projection's file.
    fn store(&self) -> &ProjectionFile;
    fn store_mut(&mut self) -> &mut ProjectionFile;
    /// Applies events already decoded, after the position, and moves the checkpoint.
    fn apply_decoded(&mut self, events: &[Decoded]) -> Result<(), Self::Error>;
    /// [`Projection::apply_decoded`] of events handed over (a bulk load's chunk): one that
    /// keeps parts of them may take them instead of copying. The same rows either way.
    fn apply_owned(&mut self, events: Vec<Decoded>) -> Result<(), Self::Error> {
        self.apply_decoded(&events)
    }
    /// The error for an event that does not decode.
    fn unreadable(position: u64, reason: String) -> Self::Error;
    /// True when `e` says the file itself is damaged (not a passing failure).
    fn is_damage(e: &Self::Error) -> bool;

    /// The last position applied.
    fn position(&self) -> u64 {
        self.store().position()
    }
    /// The file the projection writes, shared with its readers.
    fn file(&self) -> &std::sync::Arc<store::FileState> {
        self.store().state()
    }
    /// Decodes `events` (those after the position) and applies them.
    fn apply(&mut self, events: &[Envelope]) -> Result<(), Self::Error> {
        let decoded = file::decode(events, self.position(), Self::unreadable)?;
        self.apply_decoded(&decoded)
    }
    /// What a fresh bulk load keeps in memory instead of the file (the views' fold, the
    /// notifier's memory), written into the loading file before the swap.
    fn write_held(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    /// Forgets what a bulk load kept in memory (the load is dropped, or the file rebuilt).
    fn drop_held(&mut self) {}
    /// Sets the damaged file aside and starts again, at position 0, in a fresh one.
    fn rebuild(&mut self, reason: &str) -> Result<store::Rebuilt, Self::Error> {
        self.drop_held();
        Ok(self.store_mut().rebuild(reason)?)
    }
    /// Starts a bulk load into a fresh file (see [`ProjectionFile::begin_load`]).
    fn begin_load(&mut self) -> Result<(), Self::Error> {
        Ok(self.store_mut().begin_load()?)
    }
    /// Writes what the load held in memory, then swaps the loaded file in (see
    /// [`ProjectionFile::finish_load`]); the load is dropped if the writing fails.
    fn finish_load(&mut self) -> Result<(), Self::Error> {
        if let Err(e) = self.write_held() {
            self.drop_held();
            self.store_mut().abandon_load()?;
            return Err(e);
        }
        Ok(self.store_mut().finish_load()?)
    }
    /// Drops a bulk load; the live file stays.
    fn abandon_load(&mut self) -> Result<(), Self::Error> {
        self.drop_held();
        Ok(self.store_mut().abandon_load()?)
    }
}

/// Applies `events` (those after the projection's position) with their personal fields opened
/// with `keys` (None: as stored). A key bucket that does not answer fails the batch, with
/// nothing applied: it is taken again.
pub fn apply_revealed<P: Projection>(
    projection: &mut P,
    events: &[Envelope],
    keys: Option<&invitebus_keys::KeyRing>,
) -> Result<(), P::Error> {
    let mut decoded = file::decode(events, projection.position(), P::unreadable)?;
    if let Some(keys) = keys {
        for d in decoded.iter_mut() {
            keys.reveal_blocking(&mut d.event)
                .map_err(|e| P::unreadable(d.env.position, e.to_string()))?;
        }
    }
    projection.apply_decoded(&decoded)
}

/// How long to wait before rebuilding a damaged file again. A file damaged again soon after
/// its rebuild (a failing disk, a full one) would otherwise be set aside and rebuilt in a loop,
/// filling the folder with copies: each rebuild within [`RebuildBackoff::CALM`] of the last
/// doubles the wait, up to [`RebuildBackoff::MAX`]; a calm spell starts again from none.
#[derive(Debug, Default)]
pub struct RebuildBackoff {
    last: Option<std::time::Instant>,
    wait: std::time::Duration,
}

impl RebuildBackoff {
    pub const CALM: std::time::Duration = std::time::Duration::from_secs(60);
    pub const FIRST: std::time::Duration = std::time::Duration::from_secs(1);
    pub const MAX: std::time::Duration = std::time::Duration::from_secs(60);

    /// The wait before a rebuild asked at `now` (and counts it).
    pub fn next(&mut self, now: std::time::Instant) -> std::time::Duration {
        self.wait = match self.last {
            Some(last) if now.duration_since(last) < Self::CALM => (self.wait * 2).clamp(Self::FIRST, Self::MAX),
            _ => std::time::Duration::ZERO,
        };
        self.last = Some(now + self.wait);
        self.wait
    }
}

/// Sets a damaged projection file aside and starts the projection again from position 0;
/// readers follow to the fresh file, health reports the rebuild. Repeated soon, it waits first
/// (see [`RebuildBackoff`]) and says so.
async fn rebuild<P: Projection>(
    projection: &mut P,
    applied: &watch::Sender<u64>,
    reason: &str,
    backoff: &mut RebuildBackoff,
    shutdown: &watch::Receiver<bool>,
) {
    let wait = backoff.next(std::time::Instant::now());
    if !wait.is_zero() {
        tracing::error!(
            projection = projection.name(),
            wait_s = wait.as_secs_f64(),
            reason,
            "the projection file is damaged again soon after its rebuild; waiting before the next"
        );
        // A clone, so that the feed's own receiver still sees a shutdown asked meanwhile.
        let mut stop = shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
    match projection.rebuild(reason) {
        Ok(r) => {
            projection.file().rebuilt(r);
            let _ = applied.send(projection.position());
        }
        Err(e) => warn!(projection = projection.name(), error = %e, "rebuilding the damaged file failed; retrying"),
    }
}

/// A projection role at work: the feed that follows the events into the projection, the
/// position reports for health, and whatever else the role spawns; stopped together.
pub struct Running {
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    applied: watch::Receiver<u64>,
    locks: Vec<invitebus_filelock::FileLock>,
}

impl Running {
    /// Starts following the events with `projection`, its watchdog, and reporting its status
    /// as `name`.
    pub fn start<P: Projection>(
        client: &Client,
        subjects: &Subjects,
        name: &'static str,
        projection: P,
        settings: FeedSettings,
    ) -> Running {
        let (applied_tx, applied) = watch::channel(projection.position());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let file = projection.file().clone();
        let watch = Watch::new(projection.position());
        let (js, subjects_) = (jetstream::new(client.clone()), subjects.clone());
        let follow_shutdown = shutdown_rx.clone();
        let (settings_, watch_, stopped) = (settings.clone(), watch.clone(), watch.clone());
        let follow = tokio::spawn(async move {
            if let Err(e) = follow(
                js,
                subjects_,
                projection,
                applied_tx,
                settings_,
                watch_,
                follow_shutdown,
            )
            .await
            {
                // Nothing restarts it here (the projection went with it): said loudly, counted,
                // and `stopped` in its status, which fails health, until the role restarts.
                tracing::error!(projection = name, error = %e, "the projection stopped");
                metrics::counter!("invitebus_projection_exits_total", "projection" => name).increment(1);
                stopped.stopped();
            }
        });
        let dog = watchdog::watchdog(
            jetstream::new(client.clone()),
            name,
            settings,
            watch.clone(),
            applied.clone(),
            shutdown_rx.clone(),
        );
        let report = watchdog::report_position(
            client.clone(),
            subjects,
            name,
            file,
            watch,
            applied.clone(),
            shutdown_rx,
        );
        Running {
            shutdown,
            tasks: vec![follow, dog, report],
            applied,
            locks: vec![],
        }
    }

    /// Keeps `lock` (the role's hold on its file) until the role stops.
    pub fn hold(&mut self, lock: invitebus_filelock::FileLock) {
        self.locks.push(lock);
    }

    /// Runs `task` until the role stops; it gets the applied position and the shutdown signal.
    pub fn spawn<F, Fut>(&mut self, task: F)
    where
        F: FnOnce(watch::Receiver<u64>, watch::Receiver<bool>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks
            .push(tokio::spawn(task(self.applied.clone(), self.shutdown.subscribe())));
    }

    /// The last position the projection applied.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }

    /// Stops every task and waits for them.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        drop(self.locks);
    }
}

#[cfg(test)]
mod tests {
    use super::RebuildBackoff;
    use std::time::{Duration, Instant};

    #[test]
    fn rebuilds_close_together_wait_longer_each_time_and_a_calm_spell_resets() {
        let mut b = RebuildBackoff::default();
        let t0 = Instant::now();
        assert_eq!(b.next(t0), Duration::ZERO, "the first rebuild waits for nothing");
        let waits: Vec<u64> = (1..=8).map(|i| b.next(t0 + Duration::from_secs(i)).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        let later = t0 + Duration::from_secs(600);
        assert_eq!(b.next(later), Duration::ZERO, "calm for long enough");
        assert_eq!(b.next(later + Duration::from_secs(5)), Duration::from_secs(1));
    }
}
