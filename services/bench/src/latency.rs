//! The query half of `invitebus-bench queries`: p50/p99 of the admin page for each filter and
//! deep pages, and of the per-user lists (`received`, `sent`, seed 000's whole list), timed
//! while a writer applies new invites and answers to old ones, so that no figure comes from a
//! file that stands still.

use crate::queries::{accepted, envelope, phone, record, RESOURCES, USERS};
use anyhow::Context;
use chrono::{Duration, TimeZone, Utc};
use invitebus_feed::Projection;
use invitebus_views::query::{self, QueryRequest};
use invitebus_views::Views;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Events the writer applies per second while queries are timed: about what `serve` sustains on
/// this machine (`bench soak`: 2,310 commands/s).
const WRITES_PER_S: u64 = 2_000;
/// Events per writer transaction (one every 20 ms).
const WRITE_BATCH: u64 = 40;

/// Writes to the views from its own thread until dropped.
struct Writer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<u64>>>,
}

impl Writer {
    /// Half new invites (records numbered from `records`), half acceptances of pending ones.
    /// Returns once the first batch is applied (opening a big view file checks it first).
    fn start(path: PathBuf, head: u64, records: u64) -> anyhow::Result<Writer> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (ready, started) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || -> anyhow::Result<u64> {
            let mut views = Views::open(&path)?;
            // New invites number on from those the file holds, and acceptances name pending
            // ones it holds (`i % 4 == 3`), whatever history `--log` brought.
            let held: i64 = views
                .store()
                .conn()
                .query_row("SELECT COUNT(*) FROM invites", [], |r| r.get(0))?;
            let records = (held as u64).min(records);
            let (mut position, mut next) = (head, held as u64);
            let mut seed = 7u64;
            let period = std::time::Duration::from_millis(1000 * WRITE_BATCH / WRITES_PER_S);
            while !flag.load(Ordering::Relaxed) {
                let started = Instant::now();
                let mut batch = Vec::with_capacity(WRITE_BATCH as usize);
                while (batch.len() as u64) < WRITE_BATCH {
                    let at = Utc::now();
                    let pending = {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                        ((seed >> 33) % (records / 4).max(1)) * 4 + 3
                    };
                    let created = record(next, at).next().context("an invite")?;
                    next += 1;
                    for event in [created, accepted(pending, at)] {
                        position += 1;
                        batch.push(envelope(position, &event));
                    }
                }
                views.apply_batch(&batch)?;
                let _ = ready.send(());
                std::thread::sleep(period.saturating_sub(started.elapsed()));
            }
            Ok(position - head)
        });
        let writer = Writer {
            stop,
            thread: Some(thread),
        };
        match started.recv() {
            Ok(()) => Ok(writer),
            Err(_) => writer
                .finish()
                .and_then(|_| anyhow::bail!("the writer stopped before writing")),
        }
    }

    /// Fails if the writer has stopped (its figures would be those of a file at rest).
    fn check(&mut self) -> anyhow::Result<()> {
        match self.thread.as_ref().is_some_and(|t| t.is_finished()) {
            true => self
                .stop_and_join()
                .and_then(|n| anyhow::bail!("the writer stopped after {n} events")),
            false => Ok(()),
        }
    }

    /// Stops it; the events it applied.
    fn finish(mut self) -> anyhow::Result<u64> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> anyhow::Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(applied)) => applied,
            Some(Err(_)) => anyhow::bail!("the writer panicked"),
            None => Ok(0),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

type Body = Box<dyn FnMut(&mut dyn FnMut(u64) -> u64) -> Value>;

/// The admin cases of the table: a label and the filters of each sample.
fn admin_cases(records: u64) -> Vec<(&'static str, Body)> {
    let statuses = ["applying", "accepted", "rejected", "pending"];
    let last = records.div_ceil(15);
    vec![
        ("no filter, page 1", Box::new(|_| json!({}))),
        (
            "resource_id",
            Box::new(|r| json!({"resource_id": format!("expo{}", r(RESOURCES))})),
        ),
        ("inviter_phone", Box::new(|r| json!({"inviter_phone": phone(r(USERS))}))),
        ("invitee_phone", Box::new(|r| json!({"invitee_phone": phone(r(USERS))}))),
        (
            "status",
            Box::new(move |r| json!({ "status": statuses[r(4) as usize] })),
        ),
        (
            "created range (one week)",
            Box::new(|r| {
                let from = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(r(350) as i64);
                json!({"created_from": from, "created_to": from + Duration::days(7)})
            }),
        ),
        (
            "resource_id + status",
            Box::new(move |r| {
                let resource = r(RESOURCES);
                json!({"resource_id": format!("expo{resource}"), "status": statuses[(resource % 4) as usize]})
            }),
        ),
        ("page 1,000", Box::new(|_| json!({"page": 1000}))),
        ("page 10,000", Box::new(|_| json!({"page": 10_000}))),
        ("last page", Box::new(move |_| json!({ "page": last }))),
        (
            "status, last page",
            Box::new(move |r| json!({"status": statuses[r(4) as usize], "page": last / 4})),
        ),
    ]
}

/// One query's answer for `body` (with the caller added), by name.
fn ask(conn: &rusqlite::Connection, name: &str, mut body: Value, actor: &str) -> anyhow::Result<Value> {
    let object = body.as_object_mut().context("an object")?;
    object.insert("actor".into(), json!(actor));
    object.insert("roles".into(), json!(["admin"]));
    let bytes = body.to_string().into_bytes();
    let q = QueryRequest::decode(&bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let answer = match name {
        "admin" => invitebus_views::admin::page(conn, &q, &bytes, &invitebus_keys::MasterKey::dev()),
        "received" => query::received(conn, &q),
        _ => query::sent(conn, &q),
    };
    answer.map_err(|e| anyhow::anyhow!("{e}"))
}

/// Seed 000's list: every page of `received`, 100 at a time, as the gateway reads it.
fn whole_list(conn: &rusqlite::Connection, user: &str) -> anyhow::Result<usize> {
    let mut items = 0;
    for page in 1..=100 {
        let data = ask(conn, "received", json!({"page": page, "per_page": 100}), user)?;
        let batch = data["items"].as_array().map_or(0, Vec::len);
        items += batch;
        if batch < 100 {
            break;
        }
    }
    Ok(items)
}

/// Times every case while a [`Writer`] applies events, and prints the table.
pub fn run(path: &Path, head: u64, records: u64, samples: usize) -> anyhow::Result<()> {
    // Opened as the views role opens its readers (WAL, busy timeout, statement cache).
    let conn = invitebus_feed::store::open(path, "").context("opening the views")?;
    let mut writer = Writer::start(path.to_path_buf(), head, records)?;
    let started = Instant::now();
    let mut seed = 42u64;
    let mut rand = move |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n.max(1)
    };
    println!(
        "{:<28} {:>10} {:>10} {:>12}",
        "query (while writing)", "p50 ms", "p99 ms", "total"
    );
    let row = |label: &str, times: &mut Vec<f64>, total: Value| {
        times.sort_by(f64::total_cmp);
        let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
        println!("{label:<28} {:>10.2} {:>10.2} {:>12}", pct(0.5), pct(0.99), total);
    };
    for (label, mut make) in admin_cases(records) {
        let mut times = Vec::with_capacity(samples);
        let mut total = Value::Null;
        for _ in 0..samples {
            let mut body = json!({"per_page": 15});
            if let Value::Object(extra) = make(&mut rand) {
                body.as_object_mut().context("an object")?.extend(extra);
            }
            let t = Instant::now();
            let page = ask(&conn, "admin", body, "root")?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            total = page["total_count"].clone();
        }
        row(label, &mut times, total);
        writer.check()?;
    }
    for name in ["received", "sent"] {
        let mut times = Vec::with_capacity(samples);
        let mut total = Value::Null;
        for _ in 0..samples {
            let user = format!("u{}", rand(USERS));
            let t = Instant::now();
            let page = ask(&conn, name, json!({"per_page": 20}), &user)?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            total = page["total"].clone();
        }
        row(&format!("{name}, one user"), &mut times, total);
        writer.check()?;
    }
    let mut times = Vec::with_capacity(samples);
    let mut items = 0;
    for _ in 0..samples {
        let user = format!("u{}", rand(USERS));
        let t = Instant::now();
        items = whole_list(&conn, &user)?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    row("seed 000 list (every page)", &mut times, json!(items));
    let secs = started.elapsed().as_secs_f64();
    let applied = writer.finish()?;
    println!(
        "meanwhile the views applied {applied} events ({:.0} events/s) in transactions of {WRITE_BATCH}",
        applied as f64 / secs
    );
    Ok(())
}
