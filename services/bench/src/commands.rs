//! `invitebus-bench commands`: end-to-end command throughput and latency over NATS, against an
//! in-run baseline (group commit off: one transaction per command), optionally again with a
//! large log already in place. Everything runs on this machine: a private nats-server, the
//! command service in this process, and the clients.

use anyhow::Context;
use chrono::Utc;
use invitebus_commands::{CommandService, ServiceConfig, WriterConfig};
use invitebus_eventlog::{AppendCommand, EventLog, NewEvent, Options, RELAY_CHECKPOINT};
use invitebus_events::subject::Subjects;
use invitebus_events::Reply;
use invitebus_natsrun::NatsServer;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

use super::CommandsArgs;

/// One client's counts: what it sent between the warm-up and the end.
pub(super) struct Tally {
    warmup: Instant,
    end: Instant,
    ok: u64,
    errors: u64,
    latencies_us: Vec<u32>,
}

impl Tally {
    pub fn new(warmup: Instant, end: Instant) -> Tally {
        Tally {
            warmup,
            end,
            ok: 0,
            errors: 0,
            latencies_us: Vec::new(),
        }
    }

    /// A request sent at `started` came back, well or not.
    pub fn count(&mut self, started: Instant, success: bool) {
        if started >= self.warmup && Instant::now() <= self.end {
            if success {
                self.ok += 1;
                self.latencies_us
                    .push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
            } else {
                self.errors += 1;
            }
        }
    }
}

/// One run's figures.
pub(super) struct Figures {
    pub commands: u64,
    pub errors: u64,
    pub seconds: f64,
    pub latencies_us: Vec<u32>,
}

impl Figures {
    /// Every client's counts of a run that measured `seconds`.
    pub fn gather(seconds: f64, tallies: impl IntoIterator<Item = Tally>) -> Figures {
        let mut figures = Figures {
            commands: 0,
            errors: 0,
            seconds,
            latencies_us: Vec::new(),
        };
        for t in tallies {
            figures.commands += t.ok;
            figures.errors += t.errors;
            figures.latencies_us.extend(t.latencies_us);
        }
        figures.latencies_us.sort_unstable();
        figures
    }

    pub fn rate(&self) -> f64 {
        self.commands as f64 / self.seconds
    }

    pub fn pct(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }

    pub fn print(&self, label: &str) {
        println!(
            "{label:<44} {:>9.0} commands/s   p50 {:>7.2} ms   p99 {:>7.2} ms   p999 {:>7.2} ms   ({} commands, {} errors)",
            self.rate(),
            self.pct(0.50),
            self.pct(0.99),
            self.pct(0.999),
            self.commands,
            self.errors
        );
    }
}

pub async fn commands(args: CommandsArgs) -> anyhow::Result<()> {
    // The recorder serve installs: the figures include what recording metrics costs the writer.
    let _metrics = invitebus_metrics::install()?;
    println!(
        "invitebus-bench commands: {} clients, {} s per run, {} cores, {}",
        args.clients,
        args.duration,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        cpu_model()
    );
    let nats = NatsServer::start_temp().context("starting a private nats-server")?;
    // Rounds alternate the configurations so that a noisy moment hurts both alike; each
    // configuration is reported by its median round.
    let (mut grouped, mut single) = (Vec::new(), Vec::new());
    for round in 1..=args.rounds.max(1) {
        let g = one_run(&nats, &args, Store::Invitebus { max_batch: 1024 }, None).await?;
        g.print(&format!("round {round}: group commit, empty log"));
        grouped.push(g);
        let b = one_run(&nats, &args, Store::Invitebus { max_batch: 1 }, None).await?;
        b.print(&format!("round {round}: one transaction per command"));
        single.push(b);
    }
    let grouped = median(grouped);
    let single = median(single);
    println!();
    grouped.print("median: group commit (batch <= 1024)");
    single.print("median: baseline, one transaction per command");
    println!(
        "ratio group commit / baseline: {:.1}x",
        grouped.rate() / single.rate().max(1e-9)
    );
    let js = one_run(&nats, &args, Store::JetStream, None).await?;
    js.print("alternative: JetStream as the event store");
    println!(
        "ratio JetStream store / invitebus: {:.2}x",
        js.rate() / grouped.rate().max(1e-9)
    );
    let pg = one_run(&nats, &args, Store::Cqrs, None).await?;
    pg.print("alternative: cqrs-es + postgres-es");
    println!(
        "ratio cqrs-es + postgres-es / invitebus: {:.2}x",
        pg.rate() / grouped.rate().max(1e-9)
    );
    if let Some(n) = args.prefill {
        let prefilled = one_run(&nats, &args, Store::Invitebus { max_batch: 1024 }, Some(n)).await?;
        prefilled.print(&format!("group commit, {n} events already in the log"));
        println!(
            "ratio prefilled / empty: {:.2}x",
            prefilled.rate() / grouped.rate().max(1e-9)
        );
    }
    Ok(())
}

/// Request/reply through nats-server to a responder that answers at once with a fixed reply.
pub async fn nats_floor(args: CommandsArgs) -> anyhow::Result<()> {
    let nats = NatsServer::start_temp().context("starting a private nats-server")?;
    let responder = async_nats::connect(nats.url()).await?;
    let mut sub = responder.queue_subscribe("floor.>", "floor".to_string()).await?;
    let r = responder.clone();
    tokio::spawn(async move {
        use futures::StreamExt;
        while let Some(msg) = sub.next().await {
            if let Some(to) = msg.reply {
                let _ = r
                    .publish(to, r#"{"ok":true,"data":{"invite_id":"x"},"position":1}"#.into())
                    .await;
            }
        }
    });
    let mut conns = Vec::new();
    for _ in 0..args.connections.max(1) {
        conns.push(async_nats::connect(nats.url()).await?);
    }
    let warmup = Instant::now() + Duration::from_secs(1);
    let end = warmup + Duration::from_secs(args.duration);
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let client = conns[c % conns.len()].clone();
        tasks.push(tokio::spawn(async move {
            client_loop(c, client, Subjects::new("floor"), warmup, end).await
        }));
    }
    let mut tallies = Vec::new();
    for t in tasks {
        tallies.push(t.await?);
    }
    let figures = Figures::gather(args.duration as f64, tallies);
    figures.print("NATS request/reply to an echo responder");
    Ok(())
}

/// The run with the median throughput.
pub(super) fn median(mut runs: Vec<Figures>) -> Figures {
    runs.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    runs.swap_remove(runs.len() / 2)
}

pub(super) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Writes `n` events straight into the log (invite streams of two events each, UUIDv7 ids as
/// in real use) and marks them relayed, so the run measures commands against a large log.
fn prefill(path: &Path, n: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut log = EventLog::open(path, &Options::default())?;
    let mut written = 0;
    while written < n {
        let mut batch = Vec::with_capacity(1000);
        while batch.len() < 500 && written < n {
            let id = uuid::Uuid::now_v7().to_string();
            let stream_id = format!("invite-{id}");
            let ev = |version: u64, ty: &'static str| NewEvent {
                stream_id: stream_id.clone(),
                stream_type: "invite",
                version,
                event_type: ty,
                schema: 1,
                data: json!({"invite_id": id, "resource_id": "prefill", "inviter": "owner", "invitee": "someone"})
                    .to_string(),
            };
            let events = if n - written >= 2 {
                vec![ev(1, "InviteCreated"), ev(2, "InviteRead")]
            } else {
                vec![ev(1, "InviteCreated")]
            };
            written += events.len() as u64;
            batch.push(AppendCommand {
                actor: "owner".into(),
                command_type: "MarkInviteRead",
                command_digest: "d".into(),
                command_id: Some(uuid::Uuid::now_v7().to_string()),
                correlation_id: None,
                traceparent: None,
                causation_id: None,
                events,
                reply_data: json!({"invite_id": id}),
            });
        }
        log.append(&batch, Utc::now())?;
    }
    log.set_checkpoint(RELAY_CHECKPOINT, log.head())?;
    println!("prefilled {n} events in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// A command service for one run: its own log file, subjects, stream and client connections.
/// The invitebus service (`max_batch` 1 = one transaction per command), or the JetStream-as-store
/// alternative.
pub(super) struct Service {
    pub subjects: Subjects,
    conns: Vec<async_nats::Client>,
    backend: Backend,
    _dir: tempfile::TempDir,
}

enum Backend {
    Invitebus(Box<(CommandService, async_nats::jetstream::Context)>),
    JetStream(super::jsstore::JsStore),
    Cqrs(super::cqrs_pg::CqrsStore),
}

impl Service {
    /// The connection client `i` uses.
    pub fn client(&self, i: usize) -> &async_nats::Client {
        &self.conns[i % self.conns.len()]
    }

    pub async fn stop(self) {
        match self.backend {
            Backend::Invitebus(both) => {
                let (service, js) = *both;
                service.shutdown().await;
                let _ = js.delete_stream(invitebus_events::subject::EVENTS_STREAM).await;
            }
            Backend::JetStream(store) => drop(store),
            Backend::Cqrs(store) => drop(store),
        }
    }
}

/// Which store answers: invitebus with at most `max_batch` commands per transaction, or JetStream.
#[derive(Clone, Copy, Debug)]
pub(super) enum Store {
    Invitebus {
        max_batch: usize,
    },
    JetStream,
    /// cqrs-es + postgres-es on the PostgreSQL at `INVITEBUS_BENCH_POSTGRES`
    /// (default `postgresql://postgres@127.0.0.1:5432`).
    Cqrs,
}

pub(super) async fn start_service(
    nats: &NatsServer,
    store: Store,
    prefilled: Option<u64>,
    connections: usize,
) -> anyhow::Result<Service> {
    start_service_with(&nats.url(), store, prefilled, connections, Tuning::default()).await
}

/// How invitebus's command service runs in a bench, besides its store.
#[derive(Clone, Default)]
pub(super) struct Tuning {
    /// Bus auth (on, the bench resources are left to the caller).
    pub auth: invitebus_auth::BusAuth,
    pub durability: invitebus_commands::durability::Durability,
    /// Replicas of the events stream (3 on a cluster); 0 or 1 for one.
    pub replicas: usize,
}

/// [`start_service`] on the NATS servers at `url` (comma-separated), tuned.
pub(super) async fn start_service_with(
    url: &str,
    store: Store,
    prefilled: Option<u64>,
    connections: usize,
    tuning: Tuning,
) -> anyhow::Result<Service> {
    let nats_url: Vec<&str> = url.split(',').collect();
    let setup = !tuning.auth.is_on();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.db");
    if let Some(n) = prefilled {
        let p = path.clone();
        tokio::task::spawn_blocking(move || prefill(&p, n)).await??;
    }
    let service_client = async_nats::connect(nats_url.clone()).await?;
    let (subjects, backend) = match store {
        Store::Invitebus { max_batch } => {
            // A fresh subject prefix per run; the events stream has one name, so any earlier one goes.
            let subjects =
                Subjects::new(format!("bench{}", uuid::Uuid::now_v7().simple())).with_replicas(tuning.replicas.max(1));
            let mut writer = WriterConfig::new(&path);
            writer.max_batch = max_batch;
            let mut config = ServiceConfig::new(writer);
            config.subjects = subjects.clone();
            config.bus_auth = tuning.auth;
            config.durability = tuning.durability;
            config.relay_client = Some(async_nats::connect(nats_url.clone()).await?);
            let js = async_nats::jetstream::new(service_client.clone());
            let _ = js.delete_stream(invitebus_events::subject::EVENTS_STREAM).await;
            let service = CommandService::start(service_client, config).await?;
            (subjects, Backend::Invitebus(Box::new((service, js))))
        }
        Store::JetStream => {
            let store = super::jsstore::JsStore::start(service_client).await?;
            (Subjects::new(super::jsstore::PREFIX), Backend::JetStream(store))
        }
        Store::Cqrs => {
            let url = std::env::var("INVITEBUS_BENCH_POSTGRES")
                .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432".into());
            let store = super::cqrs_pg::CqrsStore::start(service_client, &url).await?;
            (Subjects::new(super::cqrs_pg::PREFIX), Backend::Cqrs(store))
        }
    };
    let mut conns = Vec::new();
    for _ in 0..connections.max(1) {
        conns.push(async_nats::connect(nats_url.clone()).await?);
    }
    for r in (0..16).filter(|_| setup) {
        let body = json!({"actor":"owner","resource_id":format!("bench-{r}"),"kind":"channel","name":"bench"});
        let reply = request(&conns[0], &subjects.command("RegisterResource"), &body).await?;
        anyhow::ensure!(reply.ok, "setup failed: {reply:?}");
    }
    Ok(Service {
        subjects,
        conns,
        backend,
        _dir: dir,
    })
}

async fn one_run(
    nats: &NatsServer,
    args: &CommandsArgs,
    store: Store,
    prefilled: Option<u64>,
) -> anyhow::Result<Figures> {
    let service = start_service(nats, store, prefilled, args.connections).await?;
    let figures = drive(&service, args).await?;
    service.stop().await;
    Ok(figures)
}

/// `args.clients` closed-loop clients against `service` for a second of warm-up and
/// `args.duration` seconds measured.
pub(super) async fn drive(service: &Service, args: &CommandsArgs) -> anyhow::Result<Figures> {
    let warmup = Instant::now() + Duration::from_secs(1);
    let end = warmup + Duration::from_secs(args.duration);
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let client = service.client(c).clone();
        let subjects = service.subjects.clone();
        tasks.push(tokio::spawn(async move {
            client_loop(c, client, subjects, warmup, end).await
        }));
    }
    let mut tallies = Vec::new();
    for t in tasks {
        tallies.push(t.await?);
    }
    Ok(Figures::gather(args.duration as f64, tallies))
}

async fn request(client: &async_nats::Client, subject: &str, body: &serde_json::Value) -> anyhow::Result<Reply> {
    let msg = client.request(subject.to_string(), body.to_string().into()).await?;
    Ok(serde_json::from_slice(&msg.payload)?)
}

/// Sends CreateInvite then AcceptInvite, again and again, until `end`; counts what falls after `warmup`.
async fn client_loop(c: usize, client: async_nats::Client, subjects: Subjects, warmup: Instant, end: Instant) -> Tally {
    let create = subjects.command("CreateInvite");
    let accept = subjects.command("AcceptInvite");
    let resource = format!("bench-{}", c % 16);
    let mut tally = Tally::new(warmup, end);
    let mut n = 0u64;
    while Instant::now() < end {
        n += 1;
        let invitee = format!("c{c}-{n}");
        // Lean clients (bodies built as text, replies barely parsed): the server is what is measured.
        // The invite id is the server's (a UUIDv7), as most clients would leave it.
        let body = format!(
            r#"{{"actor":"owner","resource_id":"{resource}","invitee":"{invitee}","command_id":"{}"}}"#,
            uuid::Uuid::now_v7()
        );
        let started = Instant::now();
        let invite_id = match client.request(create.clone(), body.into()).await {
            Ok(msg) => serde_json::from_slice::<LeanReply>(&msg.payload)
                .ok()
                .and_then(|r| r.data)
                .and_then(|d| d.invite_id),
            Err(_) => None,
        };
        tally.count(started, invite_id.is_some());
        let Some(invite_id) = invite_id else { continue };
        let body = format!(
            r#"{{"actor":"{invitee}","invite_id":"{invite_id}","command_id":"{}"}}"#,
            uuid::Uuid::now_v7()
        );
        let started = Instant::now();
        let accepted = match client.request(accept.clone(), body.into()).await {
            Ok(msg) => msg.payload.starts_with(br#"{"ok":true"#),
            Err(_) => false,
        };
        tally.count(started, accepted);
    }
    tally
}

/// Just what a bench client reads of a reply.
#[derive(serde::Deserialize)]
struct LeanReply {
    data: Option<LeanData>,
}

#[derive(serde::Deserialize)]
struct LeanData {
    invite_id: Option<String>,
}
