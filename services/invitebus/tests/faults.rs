//! The fault suite (issue 7): faults injected into `invitebus serve` under load, then the same
//! checks after each: every command that got an ok reply is in the log exactly once at the position
//! its reply named, no effect happened twice (one notification per invite and per accept, the relay
//! published every position once), the views equal a replay from zero, and `audit verify` passes.
//!
//! Slow, so ignored by `cargo test`; run them all with `.ci/faults` (release build, one at a time).

mod support;
#[path = "faults/writers.rs"]
mod writers;

use invitebus_natsrun::NatsServer;
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{connect, healthy, projection_at, relayed_all, run, send, Serve};

/// Requesters sending at once.
const CLIENTS: usize = 32;

/// A small deterministic generator for fault moments; the seed is printed so a run can be repeated.
struct Rng(u64);

impl Rng {
    fn from_time() -> Rng {
        let seed = std::env::var("FAULTS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        println!("faults: seed {seed} (FAULTS_SEED={seed} repeats it)");
        Rng(seed | 1)
    }

    /// Milliseconds in `lo..hi`.
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(lo + self.0 % (hi - lo))
    }
}

/// Invite-then-accept pairs from many requesters; each command is retried with its command_id
/// until it gets an ok reply, as a careful client does. Records every ok reply's position.
struct Load {
    acked: Arc<Mutex<HashMap<String, u64>>>,
    /// Replies of `unavailable` (or none) so far: the service said "not now", nothing was lost.
    refused: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(client: &async_nats::Client) -> Load {
        let acked = Arc::new(Mutex::new(HashMap::new()));
        let refused = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..CLIENTS)
            .map(|c| {
                let (client, acked, stop, refused) = (client.clone(), acked.clone(), stop.clone(), refused.clone());
                tokio::spawn(async move {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let id = format!("k{c}x{n}");
                        let create = json!({"actor": "xuan", "resource_id": "conf", "invitee": format!("u{id}"),
                            "invite_id": id, "command_id": format!("c-{id}")});
                        let accept =
                            json!({"actor": format!("u{id}"), "invite_id": id, "command_id": format!("a-{id}")});
                        for (name, body) in [("CreateInvite", create), ("AcceptInvite", accept)] {
                            let position = until_ok(&client, name, &body, &refused).await;
                            let cid = body["command_id"].as_str().unwrap().to_string();
                            acked.lock().unwrap().insert(cid, position);
                        }
                        n += 1;
                    }
                })
            })
            .collect();
        Load {
            acked,
            refused,
            stop,
            tasks,
        }
    }

    /// Stops after every requester finished its pair; the acknowledged commands and positions.
    async fn stop(self) -> HashMap<String, u64> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        Arc::try_unwrap(self.acked).unwrap().into_inner().unwrap()
    }
}

async fn until_ok(client: &async_nats::Client, name: &str, body: &serde_json::Value, refused: &AtomicUsize) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match send(client, name, body).await {
            Ok(r) if r.ok => return r.position().expect("a command that appends has a position"),
            Ok(r) => {
                let e = r.error.unwrap();
                assert_eq!(e.code, invitebus_events::ErrorCode::Unavailable, "{name} {body}: {e:?}");
            }
            Err(_) => {}
        }
        refused.fetch_add(1, Ordering::Relaxed);
        assert!(Instant::now() < deadline, "{name} {body} got no ok reply in 120 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn setup(nats: &NatsServer, data: &Path) -> (Serve, async_nats::Client) {
    let serve = Serve::start(&nats.url(), data);
    let client = connect(&nats.url()).await;
    healthy(&client).await;
    let reg = json!({"actor": "xuan", "resource_id": "conf", "kind": "channel", "name": "C", "command_id": "reg"});
    until_ok(&client, "RegisterResource", &reg, &AtomicUsize::new(0)).await;
    (serve, client)
}

/// The checks every fault ends with; prints one line of figures.
async fn check(
    fault: &str,
    injected: usize,
    client: &async_nats::Client,
    nats_url: &str,
    data: &Path,
    serve: Serve,
    acked: &HashMap<String, u64>,
) {
    check_with(fault, injected, client, nats_url, (data, data), vec![serve], acked).await
}

/// [`check`] where the writer's log (`log`) and the views (`views`) live in different data
/// folders, with every `serve` of the deployment (stopped before the views are replayed).
async fn check_with(
    fault: &str,
    injected: usize,
    client: &async_nats::Client,
    nats_url: &str,
    (log, data): (&Path, &Path),
    serves: Vec<Serve>,
    acked: &HashMap<String, u64>,
) {
    let head = relayed_all(client).await;
    projection_at(client, "views", head).await;
    projection_at(client, "notifier", head).await;

    let conn = rusqlite::Connection::open(support::db(log)).unwrap();
    // Each command's last position, in one pass over the log.
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut stmt = conn
        .prepare("SELECT command_id, MAX(position) FROM events WHERE command_id IS NOT NULL GROUP BY command_id")
        .unwrap();
    for row in stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .unwrap()
    {
        let (cid, position) = row.unwrap();
        last.insert(cid, position as u64);
    }
    let mut lost = 0;
    for (cid, position) in acked {
        match last.get(cid) {
            None => lost += 1,
            Some(at) => assert_eq!(at, position, "{fault}: {cid} is not where its reply said"),
        }
    }
    assert_eq!(lost, 0, "{fault}: acknowledged commands missing from the log");
    // A command appends several events (AcceptInvite: InviteAccepted and MemberJoined), each once.
    let twice: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE command_id IS NOT NULL GROUP BY command_id, stream_key, type HAVING COUNT(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(twice, 0, "{fault}: a command appended twice");
    let (creates, accepts) = (
        acked.keys().filter(|c| c.starts_with("c-")).count() as u64,
        acked.keys().filter(|c| c.starts_with("a-")).count() as u64,
    );

    // Effects once: every position relayed once, one notification per invite and per accept.
    let js = async_nats::jetstream::new(client.clone());
    let events = js
        .get_stream("INVITES_EVENTS")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .clone();
    if (events.messages, events.last_sequence) != (head, head) {
        let mut stream = js.get_stream("INVITES_EVENTS").await.unwrap();
        let info = stream.info().await.unwrap().clone();
        let id_at = |m: Result<async_nats::jetstream::message::StreamMessage, _>| {
            m.ok()
                .and_then(|m| m.headers.get("Nats-Msg-Id").map(|v| v.as_str().to_string()))
        };
        let first = id_at(stream.get_raw_message(info.state.first_sequence).await);
        let last = id_at(stream.get_raw_message(info.state.last_sequence).await);
        // Where the stream's sequence and the log's position part: the first sequence whose
        // message carries another position (found by bisection; sequence = position before it).
        let (mut lo, mut hi) = (1, info.state.last_sequence);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let at = id_at(stream.get_raw_message(mid).await).and_then(|p| p.parse::<u64>().ok());
            if at == Some(mid) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let around: Vec<_> = [lo.saturating_sub(1), lo, lo + 1]
            .into_iter()
            .filter(|s| *s >= 1)
            .collect();
        let mut parted = Vec::new();
        for seq in around {
            let m = stream.get_raw_message(seq).await.ok();
            parted.push((
                seq,
                m.as_ref()
                    .and_then(|m| m.headers.get("Nats-Msg-Id").map(|v| v.as_str().to_string())),
                m.map(|m| m.time),
            ));
        }
        println!(
            "faults: {fault}: stream state {:?}, created {:?}, first message's position {first:?}, last {last:?}, cluster {:?}; sequence and position part at {parted:?}",
            info.state, info.created, info.cluster
        );
    }
    assert_eq!(
        (events.messages, events.last_sequence),
        (head, head),
        "{fault}: the relay"
    );
    // JetStream equals the log, event for event (the chain's hashes).
    let ours: Vec<String> = invitebus_eventlog::LogReader::open(support::db(log))
        .unwrap()
        .read_published(0, usize::MAX >> 1)
        .unwrap()
        .into_iter()
        .map(|e| e.hash)
        .collect();
    assert!(
        support::jetstream_hashes(client).await == ours,
        "{fault}: JetStream and the log differ"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let notified = loop {
        let n = js
            .get_stream("INVITES_NOTIFY")
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .state
            .messages;
        if n >= creates + accepts || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        notified,
        creates + accepts,
        "{fault}: notifications, one per invite and one per accept"
    );

    // The views equal a replay from zero; the hash chain holds.
    for mut serve in serves {
        assert_eq!(serve.terminate().code(), Some(0), "{fault}: serve stops cleanly");
    }
    let live = rows(&data.join("views.db"));
    let out = run(&["replay", "--projection", "views", "--nats", nats_url], data);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(rows(&data.join("views.db")), live, "{fault}: views = replay from zero");
    let out = run(&["audit", "verify"], log);
    assert!(
        out.status.success(),
        "{fault}: audit verify: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    println!(
        "faults: {fault:<28} injected {injected:>3}   acknowledged {:>6}   in the log once {:>6}   lost {lost}   duplicated {twice}   events {head}   notifications {notified}   views = replay   audit verify ok",
        acked.len(),
        acked.len() - lost
    );
}

fn rows(path: &Path) -> serde_json::Value {
    let mut s = invitebus_views::snapshot::snapshot(path).unwrap();
    s.as_object_mut().unwrap().remove("checkpoints");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: run with .ci/faults"]
async fn sigkill_at_twenty_random_moments_under_load() {
    let mut rng = Rng::from_time();
    let nats = NatsServer::start_temp().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (mut serve, client) = setup(&nats, data.path()).await;
    let load = Load::start(&client);
    for _ in 0..20 {
        tokio::time::sleep(rng.ms(300, 2000)).await;
        serve.kill();
        tokio::time::sleep(rng.ms(1, 500)).await;
        serve = Serve::start(&nats.url(), data.path());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let acked = load.stop().await;
    check("SIGKILL of serve", 20, &client, &nats.url(), data.path(), serve, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: run with .ci/faults"]
async fn nats_server_restarts_under_load() {
    let mut rng = Rng::from_time();
    let mut nats = NatsServer::start_temp().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (serve, client) = setup(&nats, data.path()).await;
    let load = Load::start(&client);
    for _ in 0..3 {
        tokio::time::sleep(rng.ms(1000, 3000)).await;
        nats.restart().unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let acked = load.stop().await;
    check(
        "nats-server restart",
        3,
        &client,
        &nats.url(),
        data.path(),
        serve,
        &acked,
    )
    .await;
}

/// `INVITES_EVENTS` deleted under load (an operator's mistake, or a JetStream store lost): the
/// relay finds the stream short of what it published and publishes the log again, the
/// projections follow the stream again from where they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: run with .ci/faults"]
async fn the_events_stream_deleted_under_load() {
    let mut rng = Rng::from_time();
    let nats = NatsServer::start_temp().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (serve, client) = setup(&nats, data.path()).await;
    let load = Load::start(&client);
    tokio::time::sleep(rng.ms(1000, 3000)).await;
    let js = async_nats::jetstream::new(client.clone());
    js.delete_stream(invitebus_events::subject::EVENTS_STREAM)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let acked = load.stop().await;
    check(
        "INVITES_EVENTS deleted",
        1,
        &client,
        &nats.url(),
        data.path(),
        serve,
        &acked,
    )
    .await;
}

/// A tmpfs of `size` at `dir`, unmounted on drop (mounting needs root).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "the full-disk fault mounts a tmpfs: run it as root");
        Tmpfs(dir.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: run with .ci/faults"]
async fn a_full_disk_under_the_event_log() {
    let nats = NatsServer::start_temp().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(dir.path(), "24m");
    let (serve, client) = setup(&nats, dir.path()).await;
    let load = Load::start(&client);
    // Write until the disk is full and commands are refused, stay full a while, then make room.
    let deadline = Instant::now() + Duration::from_secs(300);
    while load.refused.load(Ordering::Relaxed) < 50 {
        assert!(Instant::now() < deadline, "the disk never filled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let full_at = load.acked.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        load.acked.lock().unwrap().len() <= full_at + CLIENTS,
        "nothing is acknowledged while the disk is full"
    );
    disk.resize("512m");
    let room_at = load.acked.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while load.acked.lock().unwrap().len() < room_at + 1000 {
        assert!(
            Instant::now() < deadline,
            "commands do not go through once there is room again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = load.refused.load(Ordering::Relaxed);
    let acked = load.stop().await;
    println!("faults: full disk: {full_at} acknowledged before it filled, {refused} refusals while full");
    check(
        "full disk (24 MB tmpfs)",
        1,
        &client,
        &nats.url(),
        dir.path(),
        serve,
        &acked,
    )
    .await;
    drop(disk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: run with .ci/faults"]
async fn a_node_of_a_three_node_nats_cluster_killed_under_load() {
    let mut rng = Rng::from_time();
    let mut cluster = invitebus_natsrun::Cluster::start_temp(3).unwrap();
    let urls = cluster.urls();
    let data = tempfile::tempdir().unwrap();
    // Streams with three copies, so a node's death loses nothing JetStream acknowledged.
    let serve = Serve::start_role_with(&urls, data.path(), "all", &[("INVITEBUS_REPLICAS", "3")]);
    let client = connect(&urls).await;
    healthy(&client).await;
    let reg = json!({"actor": "xuan", "resource_id": "conf", "kind": "channel", "name": "C", "command_id": "reg"});
    until_ok(&client, "RegisterResource", &reg, &AtomicUsize::new(0)).await;
    let load = Load::start(&client);
    tokio::time::sleep(rng.ms(1000, 3000)).await;
    // The first node: the one serve and the clients connected to first.
    cluster.nodes[0].stop();
    tokio::time::sleep(rng.ms(3000, 6000)).await;
    cluster.nodes[0].restart().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let acked = load.stop().await;
    let js = async_nats::jetstream::new(client.clone());
    let replicas = js
        .get_stream("INVITES_EVENTS")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .num_replicas;
    assert_eq!(replicas, 3);
    check(
        "cluster node killed (R3)",
        1,
        &client,
        &urls,
        data.path(),
        serve,
        &acked,
    )
    .await;
}
