//! `invitebus-bench soak`: a long mixed load through a real `invitebus serve` (a child process
//! running every role, on its own nats-server and data folder), then how long each
//! projection took to reach the log head after the last reply, and how many stalls its watchdog
//! recovered. Goal (issue 12): every projection at the head within 2 s, no stall unrecovered.

use anyhow::Context;
use invitebus_events::subject::Subjects;
use invitebus_natsrun::NatsServer;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The roles `serve` runs that follow the event stream, and the relay that feeds them.
const FOLLOWERS: [&str; 5] = ["relay", "views", "notifier", "scheduler", "exporter"];

/// How often health is asked while waiting; a report is at most a second old, so the time to
/// the head is an upper bound at that resolution.
const POLL: Duration = Duration::from_millis(20);

#[derive(clap::Args, Clone)]
pub struct SoakArgs {
    /// Commands to send in all (CreateInvite, then AcceptInvite, RejectInvite or MarkInviteRead).
    #[arg(long, default_value_t = 1_000_000)]
    pub commands: u64,
    /// Concurrent clients, each waiting for its reply before sending again.
    #[arg(long, default_value_t = 256)]
    pub clients: usize,
    /// NATS connections the clients share.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Seconds to wait after the last reply for every projection to reach the head; one that
    /// does not is reported as unrecovered and the bench fails.
    #[arg(long, default_value_t = 120)]
    pub settle: u64,
    /// Commands per second offered in all (0 = as fast as the clients get replies). Each client
    /// keeps its own schedule and sends at once when it has fallen behind it.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Keep serve's data folder (event log, projection files, serve.log) here instead of a
    /// temporary one; it must not exist yet.
    #[arg(long)]
    pub data: Option<std::path::PathBuf>,
    /// The `invitebus` binary to run `serve` with; by default the one beside this binary
    /// (target/release/invitebus after `cargo build --release -p invitebus`).
    #[arg(long = "invitebus", env = "INVITEBUS_BIN")]
    pub invitebus: Option<std::path::PathBuf>,
}

/// The `invitebus` binary: `explicit` (`--invitebus`, `INVITEBUS_BIN`) or the one beside this
/// binary; an error saying how to build it when it is not there.
pub fn invitebus_binary(explicit: Option<&std::path::Path>) -> anyhow::Result<std::path::PathBuf> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let exe = std::env::current_exe().context("finding this binary's path")?;
            exe.parent()
                .context("this binary has no parent folder")?
                .join("invitebus")
        }
    };
    anyhow::ensure!(
        path.is_file(),
        "the soak runs `invitebus serve`, and there is no invitebus binary at {}: build it with \
         `cargo build --release -p invitebus` (it lands beside invitebus-bench), or point \
         --invitebus / INVITEBUS_BIN at one",
        path.display()
    );
    Ok(path)
}

/// `serve` as a child process; stopped with SIGTERM (then killed) when dropped.
struct Serve {
    child: Child,
    log: std::path::PathBuf,
}

impl Serve {
    fn start(invitebus: &std::path::Path, nats: &NatsServer, data: &std::path::Path) -> anyhow::Result<Serve> {
        let http = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let log = data.join("serve.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(invitebus)
            .args(["serve", "--nats", &nats.url(), "--http", &http.to_string()])
            .arg("--data")
            .arg(data)
            .env("INVITEBUS_LOG", "json")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {} serve", invitebus.display()))?;
        Ok(Serve { child, log })
    }

    /// Warnings `serve` logged (the watchdogs' and the relay's among them).
    fn warnings(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(r#""level":"WARN""#))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn health(client: &async_nats::Client) -> Option<Value> {
    let ask = client.request(Subjects::default().health(), "{}".into());
    let msg = tokio::time::timeout(Duration::from_secs(2), ask).await.ok()?.ok()?;
    serde_json::from_slice::<Value>(&msg.payload).ok()?.get("data").cloned()
}

fn position(health: &Value, name: &str) -> Option<u64> {
    health["status"][name]["position"].as_u64()
}

pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
    let invitebus = invitebus_binary(args.invitebus.as_deref())?;
    let temp = tempfile::tempdir()?;
    let data = match &args.data {
        Some(d) => {
            std::fs::create_dir(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        None => temp.path().to_path_buf(),
    };
    let nats = NatsServer::start_temp().context("starting a private nats-server")?;
    let serve = Serve::start(&invitebus, &nats, &data)?;
    let client = async_nats::connect(nats.url()).await?;
    let ready = Instant::now() + Duration::from_secs(90);
    loop {
        let h = health(&client).await;
        if h.as_ref()
            .is_some_and(|h| FOLLOWERS.iter().all(|n| position(h, n).is_some()))
        {
            break;
        }
        anyhow::ensure!(
            Instant::now() < ready,
            "serve did not report every role within 90 s: {h:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let subjects = Subjects::default();
    for r in 0..16 {
        let body = json!({"actor":"owner","resource_id":format!("soak-{r}"),"kind":"channel","name":"soak"});
        let msg = client
            .request(subjects.command("RegisterResource"), body.to_string().into())
            .await?;
        anyhow::ensure!(msg.payload.starts_with(br#"{"ok":true"#), "setup failed");
    }
    println!(
        "invitebus-bench soak: {} commands{} from {} clients on {} connections through `serve` (all roles), {} cores",
        args.commands,
        match args.rate {
            0 => " (as fast as replies come)".to_string(),
            r => format!(" offered at {r}/s"),
        },
        args.clients,
        args.connections,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );

    // Load, with a sampler that keeps the largest lag each follower showed while it ran.
    let budget = Arc::new(AtomicU64::new(args.commands));
    let mut conns = Vec::new();
    for _ in 0..args.connections.max(1) {
        conns.push(async_nats::connect(nats.url()).await?);
    }
    let started = Instant::now();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let sampler = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut max_lag: BTreeMap<&str, u64> = BTreeMap::new();
            while !*stop_rx.borrow() {
                if let Some(h) = health(&client).await {
                    for n in FOLLOWERS {
                        let lag = h["status"][n]["lag"].as_u64().unwrap_or(0);
                        let m = max_lag.entry(n).or_default();
                        *m = (*m).max(lag);
                    }
                }
                let _ = tokio::time::timeout(Duration::from_millis(500), stop_rx.changed()).await;
            }
            max_lag
        })
    };
    let mut tasks = Vec::new();
    let clients = args.clients.max(1);
    // A client sends a pair of commands every `clients * 2 / rate` seconds, staggered.
    let pace = (args.rate > 0).then(|| Duration::from_secs_f64(clients as f64 * 2.0 / args.rate as f64));
    for c in 0..clients {
        let conn = conns[c % conns.len()].clone();
        let budget = budget.clone();
        let first = started + pace.map_or(Duration::ZERO, |p| p.mul_f64(c as f64 / clients as f64));
        tasks.push(tokio::spawn(client_loop(c, conn, budget, first, pace)));
    }
    let (mut ok, mut errors) = (0u64, 0u64);
    for t in tasks {
        let (o, e) = t.await?;
        ok += o;
        errors += e;
    }
    let last_reply = Instant::now();
    let load_s = (last_reply - started).as_secs_f64();
    let _ = stop_tx.send(true);
    let max_lag = sampler.await?;

    // Settle: when did each follower first report the head the last reply left?
    let head = health(&client)
        .await
        .and_then(|h| h["head"].as_u64())
        .context("no health after the load")?;
    let mut reached: BTreeMap<&str, f64> = BTreeMap::new();
    let mut last = Value::Null;
    let deadline = last_reply + Duration::from_secs(args.settle);
    while reached.len() < FOLLOWERS.len() && Instant::now() < deadline {
        if let Some(h) = health(&client).await {
            for n in FOLLOWERS {
                if !reached.contains_key(n) && position(&h, n).is_some_and(|p| p >= head) {
                    reached.insert(n, last_reply.elapsed().as_secs_f64());
                }
            }
            last = h;
        }
        tokio::time::sleep(POLL).await;
    }

    println!(
        "load: {ok} commands in {load_s:.1} s = {:.0} commands/s, {errors} errors; log head {head}",
        ok as f64 / load_s.max(1e-9)
    );
    println!(
        "{:<10} {:>12} {:>22} {:>16} {:>16}",
        "follower", "position", "to head after last", "max lag in load", "stalls recovered"
    );
    let mut met = true;
    for n in FOLLOWERS {
        let to_head = match reached.get(n) {
            Some(s) => format!("{s:.2} s"),
            None => {
                met = false;
                format!("not in {} s", args.settle)
            }
        };
        met &= reached.get(n).is_some_and(|s| *s <= 2.0);
        let stalls = last["status"][n]["stalls"].as_u64().unwrap_or(0);
        println!(
            "{n:<10} {:>12} {to_head:>22} {:>16} {stalls:>16}",
            position(&last, n).unwrap_or(0),
            max_lag.get(n).copied().unwrap_or(0)
        );
    }
    let warnings = serve.warnings();
    println!("warnings logged by serve: {}", warnings.len());
    for w in warnings.iter().take(10) {
        println!("  {w}");
    }
    println!(
        "goal (every follower at the head within 2 s of the last reply, no stall unrecovered): {}",
        if met { "met" } else { "NOT met" }
    );
    drop(serve);
    anyhow::ensure!(
        reached.len() == FOLLOWERS.len(),
        "a follower never reached the head: {last}"
    );
    Ok(())
}

/// CreateInvite, then one of AcceptInvite (half), RejectInvite or MarkInviteRead, until the
/// shared budget of commands is spent. Returns (ok, errors).
async fn client_loop(
    c: usize,
    client: async_nats::Client,
    budget: Arc<AtomicU64>,
    first: Instant,
    pace: Option<Duration>,
) -> (u64, u64) {
    let subjects = Subjects::default();
    let create = subjects.command("CreateInvite");
    let resource = format!("soak-{}", c % 16);
    let take = |n: u64| {
        budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(n))
            .is_ok()
    };
    let (mut ok, mut errors) = (0u64, 0u64);
    let mut n = 0u64;
    while take(2) {
        if let Some(p) = pace {
            tokio::time::sleep_until((first + p.mul_f64(n as f64)).into()).await;
        }
        n += 1;
        let invitee = format!("c{c}-{n}");
        // An expiry a day away: the scheduler holds a timer for every invite, none fires in the run.
        let body = format!(
            r#"{{"actor":"owner","resource_id":"{resource}","invitee":"{invitee}","expires_in":86400,"command_id":"{}"}}"#,
            uuid::Uuid::now_v7()
        );
        let invite_id = match client.request(create.clone(), body.into()).await {
            Ok(msg) => serde_json::from_slice::<Value>(&msg.payload)
                .ok()
                .and_then(|r| r["data"]["invite_id"].as_str().map(str::to_string)),
            Err(_) => None,
        };
        let Some(invite_id) = invite_id else {
            errors += 1;
            continue;
        };
        ok += 1;
        let then = match n % 4 {
            0 | 1 => "AcceptInvite",
            2 => "RejectInvite",
            _ => "MarkInviteRead",
        };
        let body = format!(
            r#"{{"actor":"{invitee}","invite_id":"{invite_id}","command_id":"{}"}}"#,
            uuid::Uuid::now_v7()
        );
        match client.request(subjects.command(then), body.into()).await {
            Ok(msg) if msg.payload.starts_with(br#"{"ok":true"#) => ok += 1,
            _ => errors += 1,
        }
    }
    (ok, errors)
}
