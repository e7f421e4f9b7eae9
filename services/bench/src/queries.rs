//! `invitebus-bench queries`: writes a history of a million records into an event log, then, in
//! one run over those events: the raw read + decode rate of the bulk reader, each projection's
//! bulk rebuild rate and its ratio to it, the per-batch apply path of before (the baseline), and
//! the admin query for each filter and deep pages on the rebuilt views (no NATS in the figures).

use chrono::{Duration, TimeZone, Utc};
use invitebus_events::envelope::GENESIS_HASH;
use invitebus_events::event::*;
use invitebus_events::{Envelope, Event, Id, RecordStatus};
use invitebus_feed::bulk::{self, ReadSettings};
use invitebus_feed::Projection;
use invitebus_notifier::Notifier;
use invitebus_scheduler::Timers;

use invitebus_views::Views;

use std::time::Instant;

#[derive(clap::Args, Clone)]
pub struct QueriesArgs {
    /// Invite records to load.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Skip the per-batch baseline (the slow path of before), for a quick look.
    #[arg(long)]
    pub no_baseline: bool,
    /// Keep the event log here, and reuse it when it is there already (profiling a rebuild).
    #[arg(long)]
    pub log: Option<std::path::PathBuf>,
    /// Queries timed per case.
    #[arg(long, default_value_t = 200)]
    pub samples: usize,
    /// Time only these projections' rebuilds (and skip the admin table unless `views` is one):
    /// for profiling one of them. Default: all.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

impl QueriesArgs {
    fn times(&self, projection: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| p == projection)
    }
}

pub(super) const USERS: u64 = 20_000;
pub(super) const RESOURCES: u64 = 200;

pub async fn run(args: QueriesArgs) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || run_sync(args)).await?
}

fn id(s: String) -> Id {
    Id::parse(s).expect("bench ids are valid")
}

pub(super) fn phone(u: u64) -> String {
    format!("138{u:08}")
}

/// The whole synthetic history, event by event, in position order.
pub(super) fn history(records: u64) -> impl Iterator<Item = Event> {
    let base = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let users = (0..USERS).map(move |u| {
        Event::UserUpserted(UserUpserted {
            area: Some("Shanghai".into()),
            at: base,
            company_name: Some(format!("Company {}", u % 500)),
            department: Some("Sales".into()),
            email: None,
            name: format!("User {u}"),
            phone: Some(phone(u)),
            position: Some("Buyer".into()),
            user_id: id(format!("u{u}")),
        })
    });
    let resources = (0..RESOURCES).map(move |r| {
        Event::ResourceRegistered(ResourceRegistered {
            at: base,
            capacity: 0,
            info: None,
            kind: id("exhibition".into()),
            name: format!("Expo {r}"),
            owner: id(format!("u{r}")),
            parent_id: None,
            resource_id: id(format!("expo{r}")),
        })
    });
    let invites = (0..records).flat_map(move |i| record(i, created_at(i, records)));
    users.chain(resources).chain(invites)
}

/// Record `i` of the history: its invite created at `at`, then accepted (half of them, a
/// quarter of all into `applying`), rejected (a quarter) or left pending (the rest, `i % 4 == 3`).
pub(super) fn record(i: u64, at: chrono::DateTime<Utc>) -> impl Iterator<Item = Event> {
    let invite_id = id(format!("inv{i:08}"));
    let resource_id = id(format!("expo{}", i % RESOURCES));
    let inviter = id(format!("u{}", (i * 7) % USERS));
    let invitee = id(format!("u{}", (i * 13 + 1) % USERS));
    let created = Event::InviteCreated(InviteCreated {
        code: None,
        created_at: at,
        detail: None,
        expires_at: None,
        ext: None,
        invite_id: invite_id.clone(),
        invitees: vec![invitee.clone()],
        inviter: inviter.clone(),
        message: None,
        offline_enabled: true,
        push: None,
        requires_approval: i.is_multiple_of(4),
        resource_id: resource_id.clone(),
        resource_kind: id("exhibition".into()),
        role: "visitor".into(),
    });
    let answer = match i % 4 {
        0 | 1 => Some(accepted(i, at)),
        2 => Some(Event::InviteRejected(InviteRejected {
            at,
            invite_id,
            invitee,
            inviter,
            reason: None,
            resource_id,
            role: "visitor".into(),
        })),
        _ => None,
    };
    std::iter::once(created).chain(answer)
}

/// Record `i`'s invitee accepts (into `applying` when its invite needs approval).
pub(super) fn accepted(i: u64, at: chrono::DateTime<Utc>) -> Event {
    Event::InviteAccepted(InviteAccepted {
        at,
        invite_id: id(format!("inv{i:08}")),
        invitee: id(format!("u{}", (i * 13 + 1) % USERS)),
        inviter: id(format!("u{}", (i * 7) % USERS)),
        resource_id: id(format!("expo{}", i % RESOURCES)),
        role: "visitor".into(),
        status: if i.is_multiple_of(4) {
            RecordStatus::Applying
        } else {
            RecordStatus::Accepted
        },
    })
}

/// When record `i` of a history of `records` is created: spread over 2026.
pub(super) fn created_at(i: u64, records: u64) -> chrono::DateTime<Utc> {
    let base = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    base + Duration::milliseconds((365 * 86_400_000 / records.max(1)) as i64) * i as i32
}

pub(super) fn envelope(position: u64, event: &Event) -> Envelope {
    Envelope {
        position,
        stream_id: event.stream_id(),
        stream_type: event.stream_type().as_str().into(),
        version: 1,
        event_type: event.event_type().into(),
        schema: event.schema(),
        recorded_at: Utc::now(),
        actor: "bench".into(),
        command_id: None,
        correlation_id: None,
        causation_id: None,
        command_type: None,
        command_digest: None,
        traceparent: None,
        data: event.data(),
        prev_hash: GENESIS_HASH.into(),
        hash: String::new(),
    }
}

fn run_sync(args: QueriesArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let log = args.log.clone().unwrap_or_else(|| dir.path().join("events.db"));
    println!(
        "invitebus-bench queries: {} records, {} samples per case",
        args.records, args.samples
    );
    let started = Instant::now();
    let head = match log.is_file() {
        true => invitebus_eventlog::LogReader::open(&log)?.head()?,
        false => invitebus_testkit::history::write_log(&log, history(args.records), true)?,
    };
    println!("log written: {head} events in {:.1} s", started.elapsed().as_secs_f64());
    let settings = ReadSettings::default();
    let read_all = || -> anyhow::Result<f64> {
        let started = Instant::now();
        let mut seen = 0u64;
        bulk::read(&log, 0, head, &settings, |events| {
            seen += events.len() as u64;
            Ok::<(), String>(())
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(seen == head, "read {seen} of {head} events");
        Ok(head as f64 / started.elapsed().as_secs_f64())
    };
    // A log read from a cold page cache ran at 88,969 events/s against 628,851 warm (two runs
    // in a row): an untimed pass first, so that the ratios below compare with the warm rate.
    read_all()?;
    let raw = read_all()?;
    println!(
        "read + decode (bulk reader, {} decoders, page cache warm): {raw:.0} events/s",
        settings.workers
    );
    if args.times("views") {
        views(&args, dir.path(), &log, head, &settings, raw)?;
    }
    if args.times("notifier") {
        notifier(dir.path(), &log, head, &settings, raw)?;
    }
    if args.times("scheduler") {
        let mut timers = Timers::open(&dir.path().join("scheduler.db"))?;
        rebuild(
            "scheduler",
            timed(head, || load(&mut timers, &log, head, &settings))?,
            raw,
        );
        drop(timers);
        floor("scheduler", &dir.path().join("scheduler.db"), head, raw)?;
    }
    Ok(())
}

fn rebuild(name: &str, rate: f64, raw: f64) {
    println!(
        "{name:<10} bulk rebuild: {rate:>9.0} events/s = {:.2} × read + decode",
        rate / raw
    );
}

/// The views' rebuild, the same load event by event, the per-batch baseline, and the admin table.
fn views(
    args: &QueriesArgs,
    dir: &std::path::Path,
    log: &std::path::Path,
    head: u64,
    settings: &ReadSettings,
    raw: f64,
) -> anyhow::Result<()> {
    let path = dir.join("views.db");
    let mut views = Views::open(&path)?;
    let views_rate = timed(head, || load(&mut views, log, head, settings))?;
    rebuild("views", views_rate, raw);
    drop(views);
    floor("views", &path, head, raw)?;
    {
        // The same load with no memory to fold in: every event through SQL, as before the fold.
        let mut sql = Views::open(dir.join("by-event.db"))?.with_fold_budget(0);
        let rate = timed(head, || load(&mut sql, log, head, settings))?;
        println!(
            "views bulk, event by event (fold budget 0): {rate:.0} events/s; folding is {:.2}× that",
            views_rate / rate
        );
        drop(sql);
        std::fs::remove_file(dir.join("by-event.db"))?;
    }
    if !args.no_baseline {
        // Before: the events applied through `apply_batch`, 10,000 at a time, into a live file.
        let mut views = Views::open(dir.join("baseline.db"))?;
        let reader = invitebus_eventlog::LogReader::open(log)?;
        let secs = {
            let started = Instant::now();
            let mut after = 0;
            loop {
                let batch = reader.read_from(after, 10_000)?;
                let Some(last) = batch.last() else { break };
                after = last.position;
                views.apply_batch(&batch)?;
            }
            started.elapsed().as_secs_f64()
        };
        let rate = head as f64 / secs;
        println!(
            "views per-batch apply (before, 10,000 a transaction): {rate:.0} events/s; bulk is {:.1}× that",
            views_rate / rate
        );
    }

    crate::latency::run(&path, head, args.records, args.samples)
}

/// The notifier's rebuild, and the same load with its look-ups in SQL.
fn notifier(
    dir: &std::path::Path,
    log: &std::path::Path,
    head: u64,
    settings: &ReadSettings,
    raw: f64,
) -> anyhow::Result<()> {
    let mut notifier = Notifier::open(&dir.join("notifier.db"))?;
    let notifier_rate = timed(head, || load(&mut notifier, log, head, settings))?;
    rebuild("notifier", notifier_rate, raw);
    drop(notifier);
    floor("notifier", &dir.join("notifier.db"), head, raw)?;
    // The same load looking names and push info up in SQL, event by event, as before.
    let path = dir.join("notifier-sql.db");
    let mut sql = Notifier::open(&path)?.with_load_budget(0);
    let rate = timed(head, || load(&mut sql, log, head, settings))?;
    println!(
        "notifier bulk, look-ups in SQL (load budget 0): {rate:.0} events/s; memory is {:.2}× that",
        notifier_rate / rate
    );
    drop(sql);
    std::fs::remove_file(path)?;
    Ok(())
}

/// The rebuilt file at `rebuilt` written again by SQLite alone, and the ceiling that puts on a
/// rebuild (see [`crate::floor`]).
fn floor(name: &str, rebuilt: &std::path::Path, head: u64, raw: f64) -> anyhow::Result<()> {
    let scratch = rebuilt.with_extension("floor.db");
    crate::floor::Floor::measure(rebuilt, &scratch)?.print(name, head, raw);
    std::fs::remove_file(scratch)?;
    Ok(())
}

/// Runs `f` (which loads `events`) and returns events per second.
fn timed(events: u64, f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let started = Instant::now();
    f()?;
    Ok(events as f64 / started.elapsed().as_secs_f64())
}

fn load<P: Projection>(p: &mut P, log: &std::path::Path, head: u64, settings: &ReadSettings) -> anyhow::Result<()> {
    let n = bulk::load(p, log, head, settings, |_| Ok(())).map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::ensure!(n == head, "loaded {n} of {head}");
    Ok(())
}
