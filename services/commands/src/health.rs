//! `invites.health`: what every role reports, told truthfully. Projections report their status
//! on `invites.status.<name>` wherever they run; health keeps every role it has heard from, so
//! one that stops reporting shows as `missing` instead of dropping out of the answer.
//!
//! `projections: {name: position}` is as it always was (those heard from in the last 5 s, and
//! `relay`). `status: {name: {position, lag, last_progress_at, state}}` adds the truth: state
//! `following`, `catching_up`, `stalled` or `missing`. When a projection has been stalled or
//! missing, or the relay has been behind the log without moving, for longer than
//! `unhealthy_after`, health answers `ok: false` (`unavailable`, naming them) and keeps `data`.

use async_nats::Client;
use futures::StreamExt;
use invitebus_events::envelope::format_time;
use invitebus_events::{ProtocolError, Reply};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A role that has not reported for this long is not running.
pub const STALE: Duration = Duration::from_secs(5);

/// When health turns unhealthy.
#[derive(Debug, Clone)]
pub struct HealthSettings {
    /// Stalled, missing, or a relay behind and still, for longer than this: `ok: false`.
    pub unhealthy_after: Duration,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            unhealthy_after: Duration::from_secs(30),
        }
    }
}

/// The last report of one projection.
struct Heard {
    report: Value,
    at: Instant,
    /// Since when it has been stalled (or missing), if it is.
    bad_since: Option<Instant>,
}

/// What health has heard so far.
pub struct Health {
    heard: BTreeMap<String, Heard>,
    relay: (u64, Instant, chrono::DateTime<chrono::Utc>),
}

impl Default for Health {
    fn default() -> Self {
        Health {
            heard: BTreeMap::new(),
            relay: (0, Instant::now(), chrono::Utc::now()),
        }
    }
}

impl Health {
    /// Takes in one status report.
    pub fn report(&mut self, report: Value) {
        let Some(name) = report["name"].as_str().map(str::to_string) else {
            return;
        };
        if report["position"].as_u64().is_none() {
            return;
        }
        let stalled = report["state"] == "stalled" || report["state"] == "stopped";
        let bad_since = match (stalled, self.heard.get(&name)) {
            (false, _) => None,
            (true, Some(Heard { bad_since: Some(s), .. })) => Some(*s),
            (true, _) => Some(Instant::now()),
        };
        self.heard.insert(
            name,
            Heard {
                report,
                at: Instant::now(),
                bad_since,
            },
        );
    }

    /// The answer to `invites.health`.
    pub fn answer(&mut self, head: u64, relayed: u64, settings: &HealthSettings) -> Reply {
        self.answer_with(head, relayed, Writer::Running, settings)
    }

    /// [`answer`](Self::answer) for a writer that may have been deposed (the relay is then
    /// `fenced`) or have stopped: either fails health.
    pub fn answer_with(&mut self, head: u64, relayed: u64, writer: Writer, settings: &HealthSettings) -> Reply {
        let now = Instant::now();
        // Any move is progress: a relay publishing again into a stream that lost events starts
        // below where it was.
        if relayed != self.relay.0 || relayed >= head {
            self.relay = (relayed, now, chrono::Utc::now());
        }
        let mut projections = Map::new();
        let mut status = Map::new();
        let mut bad = Vec::new();
        for (name, h) in self.heard.iter_mut() {
            let position = h.report["position"].as_u64().unwrap_or(0);
            let fresh = h.at.elapsed() < STALE;
            let mut s = json!({
                "position": position,
                "lag": head.saturating_sub(position),
                "last_progress_at": h.report["last_progress_at"].clone(),
                "state": h.report["state"].as_str().unwrap_or("following"),
                "stalls": h.report["stalls"].as_u64().unwrap_or(0),
            });
            if fresh {
                projections.insert(name.clone(), json!(position));
            } else {
                s["state"] = json!("missing");
                h.bad_since.get_or_insert(h.at + STALE);
            }
            if let Some(r) = h.report.get("rebuilt").filter(|r| r.is_object()) {
                s["rebuilt"] = r.clone();
            }
            if h.bad_since
                .is_some_and(|t| now.saturating_duration_since(t) > settings.unhealthy_after)
            {
                bad.push(format!("{name} is {}", s["state"].as_str().unwrap_or("stalled")));
            }
            status.insert(name.clone(), s);
        }
        projections.insert("relay".into(), json!(relayed));
        let relay_still = head > relayed && self.relay.1.elapsed() > settings.unhealthy_after;
        status.insert(
            "relay".into(),
            json!({"position": relayed, "lag": head.saturating_sub(relayed),
                "last_progress_at": format_time(&self.relay.2),
                "state": if relay_still { "stalled" } else { "following" }}),
        );
        if relay_still {
            bad.push(format!("the relay is {} events behind and not moving", head - relayed));
        }
        match writer {
            Writer::Running => {}
            Writer::Deposed { kept } => {
                status["relay"]["state"] = json!("fenced");
                bad.push(format!(
                    "this writer was deposed: another writer owns INVITES_EVENTS after position {kept}"
                ));
            }
            Writer::Stopped => {
                status.insert("writer".into(), json!({"state": "stopped"}));
                bad.push("the writer has stopped: no command is taken (see the log)".to_string());
            }
        }
        let rebuilds: Map<String, Value> = self
            .heard
            .iter()
            .filter_map(|(n, h)| {
                h.report
                    .get("rebuilt")
                    .filter(|r| r.is_object())
                    .map(|r| (n.clone(), r.clone()))
            })
            .collect();
        let mut data = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "head": head,
            "projections": projections,
            "status": status,
        });
        if !rebuilds.is_empty() {
            data["rebuilds"] = json!(rebuilds);
        }
        match bad.is_empty() {
            true => Reply::query_ok(data),
            false => Reply {
                ok: false,
                data: Some(data),
                error: Some(ProtocolError::unavailable(format!("unhealthy: {}", bad.join("; ")))),
                position: None,
            },
        }
    }
}

/// The writer, as health sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    Running,
    /// Another writer owns the stream after `kept` (the relay was fenced).
    Deposed {
        kept: u64,
    },
    /// Its thread ended while the service runs (a panic, an error it could not go past).
    Stopped,
}

/// Answers `invites.health` until shutdown, from the reports on `status`.
pub async fn health_loop(
    client: Client,
    mut sub: async_nats::Subscriber,
    mut status: async_nats::Subscriber,
    (head, relayed, deposed): (watch::Receiver<u64>, watch::Receiver<u64>, watch::Receiver<Option<u64>>),
    settings: HealthSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut health = Health::default();
    let mut status_open = true;
    loop {
        let msg = tokio::select! {
            m = sub.next() => match m { Some(m) => m, None => break },
            s = status.next(), if status_open => {
                match s {
                    Some(s) => {
                        if let Ok(report) = serde_json::from_slice::<Value>(&s.payload) {
                            health.report(report);
                        }
                    }
                    // Every role then reads `missing` (health fails): said, never spun on.
                    None => {
                        tracing::error!("the status subscription ended; projections will read missing");
                        status_open = false;
                    }
                }
                continue;
            }
            _ = shutdown.changed() => break,
        };
        if invitebus_auth::bus::is_delivery(&msg) {
            continue;
        }
        if let Some(to) = msg.reply {
            // The writer's head channel closes when its thread ends; during a shutdown this
            // loop has stopped first.
            let writer = match (*deposed.borrow(), head.has_changed().is_err()) {
                (Some(kept), _) => Writer::Deposed { kept },
                (None, true) => Writer::Stopped,
                (None, false) => Writer::Running,
            };
            let reply = health.answer_with(*head.borrow(), *relayed.borrow(), writer, &settings);
            let _ = client.publish(to, reply.to_bytes().into()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalled_longer_than_the_bound_is_unhealthy_and_data_stays() {
        let settings = HealthSettings {
            unhealthy_after: Duration::from_millis(20),
        };
        let mut h = Health::default();
        h.report(json!({"name":"views","position":5,"state":"stalled","last_progress_at":"x"}));
        let r = h.answer(9, 9, &settings);
        assert!(r.ok, "not yet past the bound");
        assert_eq!(r.data.as_ref().unwrap()["status"]["views"]["lag"], 4);
        std::thread::sleep(Duration::from_millis(30));
        h.report(json!({"name":"views","position":5,"state":"stalled","last_progress_at":"x"}));
        let r = h.answer(9, 9, &settings);
        assert!(!r.ok);
        assert!(r.error.unwrap().message.contains("views is stalled"));
        assert_eq!(r.data.unwrap()["projections"]["views"], 5, "data is kept");
        h.report(json!({"name":"views","position":9,"state":"following","last_progress_at":"y"}));
        assert!(h.answer(9, 9, &settings).ok, "recovered");
    }

    #[test]
    fn a_stopped_writer_or_a_deposed_one_is_unhealthy() {
        let settings = HealthSettings {
            unhealthy_after: Duration::from_secs(30),
        };
        let mut h = Health::default();
        assert!(h.answer_with(9, 9, Writer::Running, &settings).ok);
        let r = h.answer_with(9, 9, Writer::Stopped, &settings);
        assert!(!r.ok);
        assert!(r.error.unwrap().message.contains("the writer has stopped"));
        assert_eq!(r.data.unwrap()["status"]["writer"]["state"], "stopped");
        let r = h.answer_with(9, 9, Writer::Deposed { kept: 7 }, &settings);
        assert!(!r.ok);
        assert_eq!(r.data.unwrap()["status"]["relay"]["state"], "fenced");
    }

    #[test]
    fn a_stopped_projection_is_unhealthy_even_at_the_head() {
        let settings = HealthSettings {
            unhealthy_after: Duration::from_millis(20),
        };
        let mut h = Health::default();
        h.report(json!({"name":"views","position":9,"state":"stopped","last_progress_at":"x"}));
        std::thread::sleep(Duration::from_millis(30));
        h.report(json!({"name":"views","position":9,"state":"stopped","last_progress_at":"x"}));
        let r = h.answer(9, 9, &settings);
        assert!(!r.ok);
        assert!(r.error.unwrap().message.contains("views is stopped"));
    }

    #[test]
    fn a_relay_publishing_again_from_below_is_moving_not_stalled() {
        let settings = HealthSettings {
            unhealthy_after: Duration::from_millis(300),
        };
        let mut h = Health::default();
        assert!(h.answer(100, 100, &settings).ok);
        // The stream lost its events: the relay starts again from 0 and climbs.
        for relayed in [0, 10, 20, 30] {
            std::thread::sleep(Duration::from_millis(150));
            let r = h.answer(100, relayed, &settings);
            assert!(r.ok, "at {relayed}: {:?}", r.error);
            assert_eq!(r.data.unwrap()["status"]["relay"]["lag"], 100 - relayed);
        }
        std::thread::sleep(Duration::from_millis(350));
        assert!(!h.answer(100, 30, &settings).ok, "still, past the bound: stalled");
    }
}
