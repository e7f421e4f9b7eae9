//! The scheduler role: keeps the timers up to date from the events, and fires those that are
//! due by sending `ExpireInvite`, `RemindInvite` or `ResumeInvites` as `system`. A timer's command id is an HMAC
//! of the timer and its due time under the service key, so firing it again after a crash appends
//! nothing (each timer fires once, also for what fell due while the scheduler was down), and no
//! user can guess it.

use crate::timers::{SchedulerError, Timers, NAME};
use async_nats::Client;
use invitebus_events::command::system_command_id;
use invitebus_events::subject::Subjects;
use invitebus_events::{ErrorCode, Reply, SYSTEM_ACTOR};
use invitebus_feed::store::Reader;
use rusqlite::params;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub path: PathBuf,
    pub subjects: Subjects,
    /// How often due timers are looked for, at most this long apart.
    pub tick: Duration,
    /// The key of the timers' command ids ([`invitebus_events::command::system_command_id`]).
    pub service_key: Vec<u8>,
    /// With bus auth on, timers fire with invitebus's service token (`--bus-auth`).
    pub bus_auth: invitebus_auth::BusAuth,
    /// The feed's watchdog and consumer settings.
    pub feed: invitebus_feed::FeedSettings,
}

impl SchedulerConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SchedulerConfig {
            path: path.into(),
            subjects: Subjects::default(),
            tick: Duration::from_millis(250),
            service_key: invitebus_events::command::DEV_SERVICE_KEY.to_vec(),
            bus_auth: Default::default(),
            feed: invitebus_feed::FeedSettings::default(),
        }
    }
}

pub struct SchedulerService {
    run: invitebus_feed::Running,
}

impl SchedulerService {
    pub async fn start(client: Client, config: SchedulerConfig) -> Result<SchedulerService, SchedulerError> {
        let lock = invitebus_filelock::lock(&config.path, "the scheduler role")?;
        let timers = Timers::open(&config.path)?;
        let conn = timers.file().reader()?;
        let mut run = invitebus_feed::Running::start(&client, &config.subjects, NAME, timers, config.feed.clone());
        run.hold(lock);
        let firing = Firing {
            conn,
            client,
            subjects: config.subjects.clone(),
            key: config.service_key.clone(),
            auth: config.bus_auth.clone(),
        };
        let tick = config.tick;
        run.spawn(move |applied, shutdown| firing.run(tick, applied, shutdown));
        info!(path = %config.path.display(), "scheduler ready");
        Ok(SchedulerService { run })
    }

    pub fn applied(&self) -> watch::Receiver<u64> {
        self.run.applied()
    }

    pub async fn shutdown(self) {
        self.run.shutdown().await;
    }
}

struct Firing {
    conn: std::sync::Arc<Mutex<Reader>>,
    client: Client,
    subjects: Subjects,
    key: Vec<u8>,
    auth: invitebus_auth::BusAuth,
}

/// A timer that is due.
struct Due {
    kind: String,
    invite_id: String,
    due_at: String,
    traceparent: Option<String>,
}

impl Firing {
    async fn run(self, tick: Duration, mut applied: watch::Receiver<u64>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.fire_due().await {
                warn!(error = %e, "firing timers failed; retrying");
            }
            tokio::select! {
                _ = invitebus_feed::moved_or(&mut applied, tick) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    fn due(&self) -> Result<Vec<Due>, SchedulerError> {
        let now = invitebus_events::envelope::format_time(&chrono::Utc::now());
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let rows = conn
            .conn()?
            .prepare_cached(
                "SELECT kind, invite_id, due_at, traceparent FROM timers WHERE fired = 0 AND due_at <= ?1 ORDER BY due_at LIMIT 100",
            )?
            .query_map([now], |r| {
                Ok(Due {
                    kind: r.get(0)?,
                    invite_id: r.get(1)?,
                    due_at: r.get(2)?,
                    traceparent: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn mark_fired(&self, t: &Due) -> Result<(), SchedulerError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.conn()?
            .prepare_cached("UPDATE timers SET fired = 1 WHERE kind = ?1 AND invite_id = ?2 AND due_at = ?3")?
            .execute(params![t.kind, t.invite_id, t.due_at])?;
        Ok(())
    }

    async fn fire_due(&self) -> Result<(), SchedulerError> {
        for timer in self.due()? {
            let Some((command, field)) = crate::timers::command_of(&timer.kind) else {
                warn!(kind = %timer.kind, "a timer of an unknown kind: dropped");
                self.mark_fired(&timer)?;
                continue;
            };
            let mut body = json!({
                "actor": SYSTEM_ACTOR,
                field: timer.invite_id,
                "command_id": system_command_id(&self.key, &[&timer.kind, &timer.invite_id, &timer.due_at]),
            });
            if timer.kind == "resume" {
                // Only the pause this timer was set for: a replaced one's timer lifts nothing.
                body["until"] = json!(timer.due_at);
            }
            let mut headers = async_nats::HeaderMap::new();
            if let Some(t) = &timer.traceparent {
                headers.insert(invitebus_events::trace::TRACEPARENT, t.as_str());
            }
            if let Some(token) = self.auth.service_header(&[]) {
                headers.insert(invitebus_auth::bus::AUTHORIZATION, token.as_str());
            }
            let request =
                self.client
                    .request_with_headers(self.subjects.command(command), headers, body.to_string().into());
            let reply = match tokio::time::timeout(Duration::from_secs(5), request).await {
                Ok(Ok(msg)) => serde_json::from_slice::<Reply>(&msg.payload)
                    .map_err(|e| format!("the reply is not a protocol reply: {e}")),
                Ok(Err(e)) => Err(format!("the request failed: {e}")),
                Err(_) => Err("no reply in 5 s".to_string()),
            };
            let refused = match reply {
                Ok(r) if r.ok => {
                    debug!(invite_id = %timer.invite_id, kind = %timer.kind, position = ?r.position(), "timer fired");
                    self.mark_fired(&timer)?;
                    continue;
                }
                Ok(r) => r.error.map(|e| (e.code, e.message)),
                Err(why) => {
                    warn!(invite_id = %timer.invite_id, kind = %timer.kind, %why, "a due timer could not be fired; retrying on the next tick");
                    metrics::counter!("invitebus_scheduler_fire_failures_total", "reason" => "no_reply").increment(1);
                    return Ok(());
                }
            };
            match refused {
                // Nothing left to do for it (cancelled, expired, everyone answered, gone).
                Some((code, message)) if !code.leaves_work_due() => {
                    debug!(invite_id = %timer.invite_id, kind = %timer.kind, ?code, %message, "timer no longer applies");
                    self.mark_fired(&timer)?;
                }
                // Try again on the next tick: the service is down, or refuses invitebus's own
                // token (a secret that differs between roles): said loudly, never dropped
                // (before 2026-12-07 a token refusal marked the timer fired).
                refused => {
                    let code = refused.as_ref().map_or(ErrorCode::Internal, |r| r.0);
                    let message = refused.map(|r| r.1).unwrap_or_default();
                    let reason = serde_json::to_value(code)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string));
                    match code {
                        ErrorCode::Unauthenticated | ErrorCode::Forbidden => {
                            error!(invite_id = %timer.invite_id, kind = %timer.kind, ?code, %message, "the command service refuses the scheduler's token; due timers wait (check INVITEBUS_SERVICE_SECRET)")
                        }
                        _ => {
                            warn!(invite_id = %timer.invite_id, kind = %timer.kind, ?code, %message, "a due timer could not be fired; retrying on the next tick")
                        }
                    }
                    metrics::counter!("invitebus_scheduler_fire_failures_total", "reason" => reason.unwrap_or_default()).increment(1);
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}
