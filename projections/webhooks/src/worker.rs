//! One endpoint's deliveries: read `INVITES_EVENTS` from the endpoint's position (an ordered
//! consumer: sequence = position), go no further than the registry has applied (so the endpoint
//! is known as it stands at each event), and POST each event it takes, one at a time, in
//! order, retried with exponential backoff and jitter; after `max_attempts` failures in a row
//! the endpoint is marked failing and its worker stops until a `ReplayWebhook`.

use crate::deliveries::Deliveries;
use crate::registry::{self, Endpoint};
use crate::sign::{signature, SIGNATURE_HEADER};
use crate::target::{self, Target};
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use invitebus_events::command::{webhook_takes, webhook_takes_type};
use invitebus_events::subject::{Subjects, EVENTS_STREAM};
use invitebus_events::Envelope;
use invitebus_feed::store::Reader;
use invitebus_keys::{MasterKey, Purpose};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// How deliveries are tried.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Failed attempts in a row at one event before the endpoint is marked failing.
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles after each (with jitter) …
    pub first_backoff: Duration,
    /// … up to this.
    pub max_backoff: Duration,
    /// One request, connecting included.
    pub timeout: Duration,
    /// Loopback and private targets are allowed (`INVITEBUS_WEBHOOK_ALLOW_PRIVATE`).
    pub allow_private: bool,
    /// The only hosts (and their subdomains) targets may name; empty: any
    /// (`INVITEBUS_WEBHOOK_ALLOW_HOSTS`).
    pub allow_hosts: Vec<String>,
}

impl Default for DeliverySettings {
    /// 12 attempts over 9 to 20 minutes (jitter): a receiver down for a deploy or a restart
    /// gets everything after it returns; one down for longer is marked failing.
    fn default() -> Self {
        DeliverySettings {
            max_attempts: 12,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
            allow_private: false,
            allow_hosts: Vec::new(),
        }
    }
}

impl DeliverySettings {
    /// The wait after the `failures`-th failure in a row: `first · 2^(failures-1)`, capped,
    /// drawn uniformly from its upper half (jitter, so endpoints that failed together do not
    /// retry together).
    pub fn backoff(&self, failures: u32, random: u64) -> Duration {
        let doubled = self
            .first_backoff
            .saturating_mul(1u32 << failures.saturating_sub(1).min(20));
        let full = doubled.min(self.max_backoff).as_millis().max(2) as u64;
        Duration::from_millis(full / 2 + random % (full / 2 + 1))
    }
}

/// What every worker shares.
pub struct Shared {
    pub js: jetstream::Context,
    pub subjects: Subjects,
    pub registry: Arc<Mutex<Reader>>,
    pub deliveries: Deliveries,
    pub key: MasterKey,
    pub settings: DeliverySettings,
}

/// Skipped events are recorded at most this many apart, or this long (a restart reads them
/// again, and sends none of them).
const PASS_EVERY: u64 = 1000;
const PASS_AFTER: Duration = Duration::from_secs(1);

/// The worker's watchdog: behind the registry with no event arriving for this long, its
/// reading is stuck; it is counted, logged and started again from the position.
pub const WORKER_STALL: Duration = Duration::from_secs(30);

/// Why a worker stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Marked failing: nothing until a replay.
    Failing,
    /// The endpoint was deleted, or replayed (its supervisor starts the new generation).
    Changed,
    /// The role stops.
    Shutdown,
}

/// Runs `endpoint`'s deliveries until it fails for good, changes, or the role stops. Errors of
/// the bus or the files are retried here, each logged.
pub async fn run(
    shared: Arc<Shared>,
    endpoint: Endpoint,
    mut applied: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) -> Stopped {
    let id = endpoint.webhook_id.clone();
    let generation = endpoint.generation;
    let mut at = loop {
        match shared.deliveries.begin(&endpoint) {
            Ok(None) => return Stopped::Changed,
            Ok(Some(d)) if d.failing => return Stopped::Failing,
            Ok(Some(d)) => break d.position,
            Err(e) => warn!(webhook_id = %id, error = %e, "reading the delivery state failed; retrying"),
        }
        if pause(&mut stop, Duration::from_secs(1)).await {
            return Stopped::Shutdown;
        }
    };
    let secret = match shared.key.open(Purpose::WebhookSecret, &endpoint.secret) {
        Ok(s) => s,
        Err(e) => {
            let why = format!("the webhook's secret: {e} (is INVITEBUS_MASTER_KEY the deployment's?)");
            warn!(webhook_id = %id, error = %why, "webhook marked failing");
            let _ = shared.deliveries.failed(&id, generation, &why, 1);
            return Stopped::Failing;
        }
    };
    let mut delivery = Delivery {
        shared: shared.clone(),
        endpoint,
        secret,
        client: None,
    };
    info!(webhook_id = %id, position = at, "webhook deliveries start");
    loop {
        match delivery.follow(&mut at, &mut applied, &mut stop).await {
            Ok(stopped) => return stopped,
            Err(e) => {
                warn!(webhook_id = %id, position = at, error = %e, "webhook: reading the events failed; retrying")
            }
        }
        if pause(&mut stop, Duration::from_secs(1)).await {
            return Stopped::Shutdown;
        }
    }
}

/// Sleeps `d`; true when the role stops meanwhile.
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.changed() => true,
    }
}

struct Delivery {
    shared: Arc<Shared>,
    endpoint: Endpoint,
    secret: String,
    /// The client pinned to the last checked address, kept while the host resolves to it.
    client: Option<(Target, reqwest::Client)>,
}

impl Delivery {
    /// Follows the stream after `at` until the worker stops; `at` moves with what is done.
    async fn follow(
        &mut self,
        at: &mut u64,
        applied: &mut watch::Receiver<u64>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Stopped, Box<dyn std::error::Error + Send + Sync>> {
        let (id, generation) = (self.endpoint.webhook_id.clone(), self.endpoint.generation);
        let stream = self.shared.js.get_stream(EVENTS_STREAM).await?;
        // Every event, unfiltered: the position moves over what the webhook does not take too,
        // so that it says how far the endpoint is done and a restart reads little again.
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: self.shared.subjects.all_events(),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: *at + 1,
                },
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        let (mut passed_at, mut passed_when) = (*at, std::time::Instant::now());
        let mut last_event = std::time::Instant::now();
        loop {
            if *at > passed_at && (*at - passed_at >= PASS_EVERY || passed_when.elapsed() >= PASS_AFTER) {
                if !self.shared.deliveries.passed(&id, generation, *at)? {
                    return Ok(Stopped::Changed);
                }
                (passed_at, passed_when) = (*at, std::time::Instant::now());
            }
            let next = tokio::select! {
                m = tokio::time::timeout(PASS_AFTER, messages.next()) => m,
                _ = stop.changed() => return Ok(Stopped::Shutdown),
            };
            let msg = match next {
                Err(_) => {
                    // The worker's watchdog: behind, yet nothing arrives.
                    if *applied.borrow() > *at && last_event.elapsed() >= WORKER_STALL {
                        metrics::counter!("invitebus_webhook_stalls_total").increment(1);
                        warn!(webhook_id = %id, position = *at, "webhook: no event for {} s while behind; reading again", WORKER_STALL.as_secs());
                        return Err("no event while behind".into());
                    }
                    continue;
                }
                Ok(None) => return Err("the consumer ended".into()),
                Ok(Some(m)) => m?,
            };
            last_event = std::time::Instant::now();
            let position = msg.info()?.stream_sequence;
            if position <= *at {
                continue;
            }
            if self.endpoint.deleted_position.is_some_and(|d| position > d) {
                return Ok(Stopped::Changed);
            }
            tokio::select! {
                reached = applied.wait_for(|p| *p >= position) => { reached?; }
                _ = stop.changed() => return Ok(Stopped::Shutdown),
            }
            // Every endpoint reads every event: its type is checked before the data is decoded.
            let takes = serde_json::from_slice::<Envelope>(&msg.payload)
                .ok()
                .filter(|env| webhook_takes_type(&self.endpoint.events, &env.event_type))
                .and_then(|env| env.event().ok())
                .is_some_and(|event| webhook_takes(&self.endpoint.events, self.endpoint.resource_id.as_ref(), &event));
            if !takes {
                *at = position;
                continue;
            }
            // The endpoint as the registry holds it now: deleted or replayed since, stop here.
            let (now, _) = {
                let mut reader = self.shared.registry.lock().unwrap_or_else(|p| p.into_inner());
                registry::one(reader.conn()?, &id)?
            };
            match now {
                Some(e) if e.generation == generation && e.deleted_position.is_none_or(|d| position < d) => {}
                _ => return Ok(Stopped::Changed),
            }
            let traceparent = msg
                .headers
                .as_ref()
                .and_then(|h| h.get(invitebus_events::trace::TRACEPARENT))
                .map(|v| v.to_string());
            match self.deliver(position, &msg.payload, traceparent, stop).await? {
                None => {
                    *at = position;
                    passed_at = position;
                }
                Some(stopped) => return Ok(stopped),
            }
        }
    }

    /// Sends the event at `position` until it is delivered (None) or the worker must stop.
    async fn deliver(
        &mut self,
        position: u64,
        body: &[u8],
        traceparent: Option<String>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Option<Stopped>, rusqlite::Error> {
        let (id, generation) = (self.endpoint.webhook_id.clone(), self.endpoint.generation);
        let settings = self.shared.settings.clone();
        loop {
            match self.post(position, body, traceparent.as_deref()).await {
                Ok(()) => {
                    metrics::counter!("invitebus_webhook_deliveries_total", "outcome" => "delivered").increment(1);
                    debug!(webhook_id = %id, position, "webhook delivered");
                    return Ok(match self.shared.deliveries.delivered(&id, generation, position)? {
                        true => None,
                        false => Some(Stopped::Changed),
                    });
                }
                Err(why) => {
                    metrics::counter!("invitebus_webhook_deliveries_total", "outcome" => "failed").increment(1);
                    let (failures, failing) =
                        self.shared
                            .deliveries
                            .failed(&id, generation, &why, settings.max_attempts)?;
                    if failures == 0 {
                        // No row of this generation any more: a replay replaced it.
                        return Ok(Some(Stopped::Changed));
                    }
                    if failing {
                        warn!(webhook_id = %id, position, failures, error = %why, "webhook marked failing: nothing more is sent until a ReplayWebhook");
                        return Ok(Some(Stopped::Failing));
                    }
                    let wait = settings.backoff(failures, uuid::Uuid::new_v4().as_u128() as u64);
                    warn!(webhook_id = %id, position, failures, retry_in_ms = wait.as_millis() as u64, error = %why, "webhook delivery failed; retrying");
                    if pause(stop, wait).await {
                        return Ok(Some(Stopped::Shutdown));
                    }
                }
            }
        }
    }

    /// One attempt: check the target, sign, POST; Ok on a 2xx answer.
    async fn post(&mut self, position: u64, body: &[u8], traceparent: Option<&str>) -> Result<(), String> {
        let settings = &self.shared.settings;
        let target = target::resolve(&self.endpoint.url, settings.allow_private, &settings.allow_hosts).await?;
        let client = match &self.client {
            Some((t, c)) if *t == target => c.clone(),
            _ => {
                let c = target::client(&target, settings.timeout)?;
                self.client = Some((target, c.clone()));
                c
            }
        };
        let event_type = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
            .unwrap_or_default();
        let t = chrono::Utc::now().timestamp();
        let mut request = client
            .post(&self.endpoint.url)
            .header("Content-Type", "application/json")
            .header(SIGNATURE_HEADER, signature(&self.secret, t, body))
            .header("Invitebus-Webhook-Id", self.endpoint.webhook_id.as_str())
            .header("Invitebus-Event-Type", event_type)
            .header("Invitebus-Position", position.to_string())
            .body(body.to_vec());
        if let Some(tp) = traceparent {
            request = request.header(invitebus_events::trace::TRACEPARENT, tp);
        }
        // Errors without the URL: its query string may hold the receiver's token.
        let mut response = request
            .send()
            .await
            .map_err(|e| format!("request failed: {}", e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // The start of the answer only: a receiver must not fill memory with its error page.
        let mut head = Vec::new();
        while head.len() < 1024 {
            match response.chunk().await {
                Ok(Some(chunk)) => head.extend_from_slice(&chunk),
                _ => break,
            }
        }
        let text: String = String::from_utf8_lossy(&head).chars().take(200).collect();
        Err(format!("HTTP {}: {text}", status.as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_within_its_upper_half_and_stops_growing_at_the_cap() {
        let s = DeliverySettings {
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..Default::default()
        };
        for (failures, full) in [(1, 100u64), (2, 200), (3, 400), (4, 800), (5, 1000), (30, 1000)] {
            for random in [0u64, 7, 12345, u64::MAX] {
                let ms = s.backoff(failures, random).as_millis() as u64;
                assert!((full / 2..=full).contains(&ms), "failures {failures}: {ms} ms");
            }
        }
        assert_ne!(s.backoff(3, 1), s.backoff(3, 97), "jitter");
    }
}
