//! The open-loop curves of `invitebus-bench all`: latency against offered load. Pairs of CreateInvite and
//! AcceptInvite start on a fixed schedule whatever the answers do, and a command's latency counts
//! from when it was due, so a slow server cannot hide its queue by slowing the clients down
//! (coordinated omission). Run for invitebus and for the baseline (one transaction per command).

use super::commands::{start_service, Service, Store};
use invitebus_natsrun::NatsServer;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Commands in flight beyond which a rate counts as past saturation and sending stops.
const MAX_IN_FLIGHT: usize = 50_000;

/// One offered rate's outcome.
#[derive(Debug, Clone)]
pub struct Point {
    pub offered: f64,
    pub achieved: f64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub errors: u64,
    /// Sending stopped early: more than `MAX_IN_FLIGHT` commands were waiting.
    pub saturated: bool,
}

impl Point {
    /// The point of `rate` offered for `secs`, from each answer's latency in microseconds.
    pub fn from_latencies(
        rate: u64,
        secs: u64,
        elapsed: f64,
        mut latencies: Vec<u32>,
        errors: u64,
        saturated: bool,
    ) -> Point {
        latencies.sort_unstable();
        Point {
            offered: rate as f64,
            achieved: latencies.len() as f64 / elapsed.max(secs as f64),
            p50: pct(&latencies, 0.50),
            p99: pct(&latencies, 0.99),
            p999: pct(&latencies, 0.999),
            errors,
            saturated,
        }
    }

    pub fn line(&self, label: &str) -> String {
        format!(
            "{label:<34} offered {:>7.0}/s  achieved {:>7.0}/s  p50 {:>8.2} ms  p99 {:>8.2} ms  p999 {:>8.2} ms  errors {}{}",
            self.offered,
            self.achieved,
            self.p50,
            self.p99,
            self.p999,
            self.errors,
            if self.saturated { "  (saturated)" } else { "" }
        )
    }
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

/// Offers `rate` commands/s (rate/2 pairs) for `secs` seconds against a running service.
pub(super) async fn offer(service: &Service, rate: u64, secs: u64) -> Point {
    let pairs = rate / 2 * secs;
    let period = Duration::from_secs_f64(2.0 / rate as f64);
    let (tx, mut rx) = mpsc::unbounded_channel::<(Option<u32>, Option<u32>)>();
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now() + Duration::from_millis(50);
    let mut saturated = false;
    for i in 0..pairs {
        let due = start + period * i as u32;
        tokio::time::sleep_until(due.into()).await;
        if in_flight.load(std::sync::atomic::Ordering::Relaxed) > MAX_IN_FLIGHT {
            saturated = true;
            break;
        }
        let (client, subjects, tx, in_flight) = (
            service.client(i as usize).clone(),
            service.subjects.clone(),
            tx.clone(),
            in_flight.clone(),
        );
        in_flight.fetch_add(2, std::sync::atomic::Ordering::Relaxed);
        let resource = format!("bench-{}", i % 16);
        tokio::spawn(async move {
            let invitee = format!("o{i}");
            let body = format!(r#"{{"actor":"owner","resource_id":"{resource}","invitee":"{invitee}"}}"#);
            let created = client.request(subjects.command("CreateInvite"), body.into()).await.ok();
            let invite_id = created
                .as_ref()
                .and_then(|m| serde_json::from_slice::<serde_json::Value>(&m.payload).ok())
                .and_then(|r| r["data"]["invite_id"].as_str().map(str::to_string));
            let create_lat = invite_id.as_ref().map(|_| due.elapsed().as_micros() as u32);
            let accept_lat = match invite_id {
                Some(id) => {
                    let sent = Instant::now();
                    let body = format!(r#"{{"actor":"{invitee}","invite_id":"{id}"}}"#);
                    match client.request(subjects.command("AcceptInvite"), body.into()).await {
                        Ok(m) if m.payload.starts_with(br#"{"ok":true"#) => Some(sent.elapsed().as_micros() as u32),
                        _ => None,
                    }
                }
                None => None,
            };
            in_flight.fetch_sub(2, std::sync::atomic::Ordering::Relaxed);
            let _ = tx.send((create_lat, accept_lat));
        });
    }
    drop(tx);
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Ok(Some((c, a))) = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
        for l in [c, a] {
            match l {
                Some(l) => latencies.push(l),
                None => errors += 1,
            }
        }
    }
    Point::from_latencies(rate, secs, start.elapsed().as_secs_f64(), latencies, errors, saturated)
}

/// The curve of one store, each rate on a fresh log; it stops at the first rate it cannot keep up with.
pub async fn curve(
    nats: &NatsServer,
    store: Store,
    rates: &[u64],
    secs: u64,
    label: &str,
) -> anyhow::Result<Vec<Point>> {
    let mut points = Vec::new();
    for &rate in rates {
        let service = start_service(nats, store, None, 8).await?;
        let point = offer(&service, rate, secs).await;
        println!("{}", point.line(label));
        service.stop().await;
        points.push(point);
        // Past the knee every further rate only measures a longer queue.
        if points
            .last()
            .is_some_and(|p| p.saturated || p.achieved < 0.9 * p.offered)
        {
            break;
        }
    }
    Ok(points)
}
