//! Nothing stalls silently: a watchdog per feed compares the projection's position with the
//! stream's last sequence once a second. Behind and without progress for `stall_after`, it logs a
//! warning, counts a stall (`invitebus_projection_stalls_total`) and has the feed drop its
//! consumer and follow again from its checkpoint. Ordered consumers that stop delivering while
//! the server thinks all is well are a known failure class (nats.rs #860, nats-server #3292);
//! this does not depend on the client library noticing.

use crate::store::FileState;
use async_nats::jetstream;
use async_nats::Client;
use invitebus_events::envelope::format_time;
use invitebus_events::subject::{Subjects, EVENTS_STREAM};
use serde::Serialize;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tracing::warn;

/// Lag beyond which a projection that moves is `catching_up` rather than `following`.
pub const CATCHING_UP_LAG: u64 = 10_000;

/// How a feed follows, and when it calls itself stalled.
#[derive(Debug, Clone)]
pub struct FeedSettings {
    /// Behind the stream's head with no progress for this long: a stall.
    pub stall_after: Duration,
    /// The idle heartbeat asked of the server on the pull consumer (requests expire after 5).
    pub heartbeat: Duration,
    /// Test-only fault hook: the first consumer's messages stop being taken after this many
    /// batches while the consumer stays alive on the server (only the watchdog can end that).
    pub freeze_after_batches: Option<u64>,
    /// The local event log, when this machine has one: far behind, catch up from it in bulk.
    pub local_log: Option<crate::LocalLog>,
    /// Opens personal fields before the projection applies an event (None: they stay sealed,
    /// as stored). The bulk path uses the same keys.
    pub keys: Option<std::sync::Arc<invitebus_keys::KeyRing>>,
}

impl Default for FeedSettings {
    fn default() -> Self {
        FeedSettings {
            stall_after: Duration::from_secs(5),
            heartbeat: Duration::from_secs(1),
            freeze_after_batches: None,
            local_log: None,
            keys: None,
        }
    }
}

/// Where a feed stands, as health reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedState {
    /// At the head, or close behind it and moving.
    Following,
    /// Far behind (more than [`CATCHING_UP_LAG`]) and moving.
    CatchingUp,
    /// Behind and not moving for `stall_after`.
    Stalled,
    /// Its feed ended with an error (a panic in its apply, a file it cannot open): nothing
    /// moves it again until the role restarts. Health fails on it.
    Stopped,
}

#[derive(Debug)]
struct Status {
    head: u64,
    progress_at: (u64, Instant, chrono::DateTime<chrono::Utc>),
    state: FeedState,
    stalls: u64,
    /// A bulk load's position into a fresh file, not yet swapped in (queries still read the
    /// live file): progress for the watchdog, `loading` in the status.
    loading: Option<u64>,
}

/// What the feed, its watchdog and its reporter share.
#[derive(Debug, Clone)]
pub struct Watch {
    status: Arc<Mutex<Status>>,
    restart: Arc<Notify>,
}

impl Watch {
    pub fn new(position: u64) -> Watch {
        Watch {
            status: Arc::new(Mutex::new(Status {
                head: position,
                progress_at: (position, Instant::now(), chrono::Utc::now()),
                state: FeedState::Following,
                stalls: 0,
                loading: None,
            })),
            restart: Arc::new(Notify::new()),
        }
    }

    /// Resolves when the watchdog wants the consumer dropped.
    pub async fn restart_asked(&self) {
        self.restart.notified().await
    }

    /// The consumer stopped delivering and the feed noticed it itself (deleted, heartbeats
    /// missed): counted and logged like a stall the watchdog finds.
    pub fn lost_consumer(&self, name: &str, position: u64, why: &str) {
        self.lock().stalls += 1;
        warn!(
            projection = name,
            position,
            reason = why,
            "the projection's consumer stopped delivering; following again from its checkpoint"
        );
        metrics::counter!("invitebus_projection_stalls_total", "projection" => name.to_string()).increment(1);
    }

    /// A bulk load into a fresh file reached `position` (None: the load ended).
    pub fn loading(&self, position: Option<u64>) {
        let mut s = self.lock();
        s.loading = position;
        match position {
            Some(p) => {
                s.progress_at = (p, Instant::now(), chrono::Utc::now());
                s.state = FeedState::CatchingUp;
            }
            // The applied position is measured afresh (a failed load's is not the file's).
            None => s.progress_at = (0, Instant::now(), chrono::Utc::now()),
        }
    }

    /// The feed ended with an error: `stopped` from now on.
    pub fn stopped(&self) {
        self.lock().state = FeedState::Stopped;
    }

    /// The stream's last sequence, as the watchdog last saw it.
    pub fn head(&self) -> u64 {
        self.lock().head
    }

    /// Stalls recovered so far.
    pub fn stalls(&self) -> u64 {
        self.lock().stalls
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes in the applied position and the stream's head; true when this is a new stall.
    fn observe(&self, position: u64, head: u64, stall_after: Duration) -> bool {
        let mut s = self.lock();
        s.head = head.max(position);
        if s.state == FeedState::Stopped {
            return false;
        }
        if s.loading.is_some() {
            // A bulk load moves the clock itself (see `loading`): one that does not move for the
            // bound says `stalled` (a consumer restart would not help it; its errors are logged).
            s.state = match s.progress_at.1.elapsed() >= stall_after {
                true => FeedState::Stalled,
                false => FeedState::CatchingUp,
            };
            return false;
        }
        let moved = position > s.progress_at.0;
        if moved {
            s.progress_at = (position, Instant::now(), chrono::Utc::now());
        }
        let behind = position < s.head;
        let still = s.progress_at.1.elapsed() >= stall_after;
        let was_stalled = s.state == FeedState::Stalled;
        s.state = match (behind, still) {
            (true, true) => FeedState::Stalled,
            (true, false) if was_stalled && !moved => FeedState::Stalled,
            (true, false) if s.head - position > CATCHING_UP_LAG => FeedState::CatchingUp,
            _ => FeedState::Following,
        };
        if behind && still {
            // Counted once per bound: the clock starts again for the fresh consumer.
            s.stalls += 1;
            s.progress_at.1 = Instant::now();
            return true;
        }
        false
    }

    /// The status body for `invites.status.<name>`.
    fn report(&self, name: &str, position: u64) -> serde_json::Value {
        let s = self.lock();
        json!({
            "name": name,
            "position": position,
            "head": s.head.max(position),
            "lag": s.head.saturating_sub(position),
            "state": s.state,
            "last_progress_at": format_time(&s.progress_at.2),
            "stalls": s.stalls,
            "loading": s.loading,
        })
    }
}

/// Watches one feed until shutdown (see the module's doc).
pub fn watchdog(
    js: jetstream::Context,
    name: &'static str,
    settings: FeedSettings,
    watch: Watch,
    applied: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut stream: Option<jetstream::stream::Stream> = None;
        let mut blind = 0u64;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
            let head = match &stream {
                Some(s) => s
                    .get_info()
                    .await
                    .map(|info| info.state.last_sequence)
                    .map_err(|e| e.to_string()),
                None => match js.get_stream(EVENTS_STREAM).await {
                    Ok(s) => {
                        let head = s.cached_info().state.last_sequence;
                        stream = Some(s);
                        Ok(head)
                    }
                    Err(e) => Err(e.to_string()),
                },
            };
            // A watchdog that cannot see the stream cannot tell a stall: said (every 30 s at
            // most) and counted, never a silent pause of the only check there is.
            let head = match head {
                Ok(head) => {
                    blind = 0;
                    head
                }
                Err(e) => {
                    if blind.is_multiple_of(30) {
                        warn!(projection = name, error = %e, "the watchdog cannot read INVITES_EVENTS' head; stalls go unseen meanwhile");
                    }
                    blind += 1;
                    metrics::counter!("invitebus_projection_watchdog_errors_total", "projection" => name).increment(1);
                    continue;
                }
            };
            let position = *applied.borrow();
            metrics::gauge!("invitebus_projection_position", "projection" => name).set(position as f64);
            metrics::gauge!("invitebus_projection_lag_events", "projection" => name)
                .set(head.saturating_sub(position) as f64);
            if watch.observe(position, head, settings.stall_after) {
                warn!(
                    projection = name,
                    position,
                    head,
                    stalled_for_s = settings.stall_after.as_secs_f64(),
                    "the projection is behind and has not moved; dropping its consumer and following again from its checkpoint"
                );
                metrics::counter!("invitebus_projection_stalls_total", "projection" => name).increment(1);
                watch.restart.notify_one();
            }
        }
    })
}

/// Publishes the feed's status (`{"name","position","head","lag","state","last_progress_at",
/// "stalls"}`, and `rebuilt` after a rebuild) on the status subject whenever the position moves
/// (at most every 200 ms) and every 500 ms regardless, until shutdown.
pub fn report_position(
    client: Client,
    subjects: &Subjects,
    name: &'static str,
    file: Arc<FileState>,
    watch: Watch,
    mut applied: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let subject = subjects.status(name);
    tokio::spawn(async move {
        loop {
            let position = *applied.borrow_and_update();
            let mut body = watch.report(name, position);
            if let Some(r) = file.last_rebuild() {
                body["rebuilt"] = json!(r);
            }
            let _ = client.publish(subject.clone(), body.to_string().into()).await;
            tokio::select! {
                _ = crate::moved_or(&mut applied, Duration::from_millis(500)) => tokio::time::sleep(Duration::from_millis(200)).await,
                _ = shutdown.changed() => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_feed_stays_stopped() {
        let w = Watch::new(10);
        w.stopped();
        assert!(!w.observe(10, 10, Duration::from_millis(1)));
        assert!(
            !w.observe(10, 50, Duration::ZERO),
            "no restart is asked of a feed that is gone"
        );
        assert_eq!(w.report("v", 10)["state"], "stopped");
    }

    #[test]
    fn behind_and_still_is_a_stall_counted_once_per_bound() {
        let w = Watch::new(10);
        let bound = Duration::from_millis(30);
        assert!(!w.observe(10, 10, bound), "at the head");
        assert!(!w.observe(10, 20, bound), "behind, but only just");
        std::thread::sleep(Duration::from_millis(40));
        assert!(w.observe(10, 20, bound), "behind and still for the bound");
        assert_eq!(w.report("v", 10)["state"], "stalled");
        assert!(!w.observe(10, 20, bound), "the clock started again");
        assert_eq!(w.report("v", 10)["state"], "stalled", "still stalled until it moves");
        assert!(!w.observe(15, 20, bound));
        assert_eq!(w.report("v", 15)["state"], "following");
        assert!(!w.observe(16, 50_000, bound));
        assert_eq!(w.report("v", 16)["state"], "catching_up");
        assert_eq!(w.stalls(), 1);
    }
}
