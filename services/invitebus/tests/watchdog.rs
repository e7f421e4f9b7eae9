//! Projections never stall silently: consumers deleted on the server, a frozen nats-server, a
//! feed that stops taking messages while its consumer lives, and a file another writer locks —
//! each is noticed, logged, counted, shown in health, and recovered.

mod support;

use invitebus_natsrun::NatsServer;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{connect, healthy, relayed_all, send, Serve, BIN};

const PROJECTIONS: [&str; 4] = ["views", "notifier", "scheduler", "exporter"];

/// `serve` (all roles) with its log (warnings) in `log`, and extra environment; its gateway
/// listens on a free port, returned.
fn serve_logged(nats_url: &str, data: &Path, log: &Path, env: &[(&str, &str)]) -> (Serve, std::net::SocketAddr) {
    let http = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let child = Command::new(BIN)
        .args(["serve", "--http", &http.to_string(), "--nats", nats_url, "--data"])
        .arg(data)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    (Serve { child }, http)
}

async fn load(client: &async_nats::Client, from: usize, n: usize) {
    let mut tasks = Vec::new();
    for chunk in (from..from + n).collect::<Vec<_>>().chunks(n.div_ceil(8)) {
        let (client, chunk) = (client.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for i in chunk {
                let body =
                    json!({"actor":"xuan","resource_id":"conf","invitee":format!("u{i}"),"invite_id":format!("w{i}")});
                assert!(send(&client, "CreateInvite", &body).await.unwrap().ok);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

async fn setup(client: &async_nats::Client) {
    healthy(client).await;
    let conf = json!({"actor":"xuan","resource_id":"conf","kind":"conference","name":"C"});
    assert!(send(client, "RegisterResource", &conf).await.unwrap().ok);
}

/// Waits until every projection in health's `status` is at `head`; returns health's data.
async fn all_at(client: &async_nats::Client, head: u64, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let h = healthy(client).await;
        if PROJECTIONS
            .iter()
            .all(|p| h["status"][p]["position"].as_u64() == Some(head))
        {
            return h;
        }
        assert!(
            Instant::now() < deadline,
            "not every projection reached {head} in {within:?}: {h}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn stalls(h: &Value, p: &str) -> u64 {
    h["status"][p]["stalls"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_consumers_and_a_frozen_server_are_recovered_and_counted() {
    let nats = NatsServer::start_temp().unwrap();
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("serve.log");
    let (_serve, _) = serve_logged(&nats.url(), data.path(), &log, &[]);
    let client = connect(&nats.url()).await;
    setup(&client).await;

    // Under load, delete every consumer of INVITES_EVENTS on the server.
    let writer = {
        let client = client.clone();
        tokio::spawn(async move { load(&client, 0, 1500).await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    let js = async_nats::jetstream::new(client.clone());
    let stream = js.get_stream("INVITES_EVENTS").await.unwrap();
    let names: Vec<String> = {
        use futures::StreamExt;
        stream
            .consumer_names()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .map(|n| n.unwrap())
            .collect()
    };
    assert!(
        names.len() >= PROJECTIONS.len(),
        "one consumer per projection: {names:?}"
    );
    for n in &names {
        let _ = stream.delete_consumer(n).await;
    }
    writer.await.unwrap();
    let head = relayed_all(&client).await;
    let h = all_at(&client, head, Duration::from_secs(10)).await;
    for p in PROJECTIONS {
        assert!(stalls(&h, p) >= 1, "{p}'s lost consumer is counted: {h}");
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("stopped delivering"), "a warning was logged:\n{text}");

    // nats-server frozen (SIGSTOP) for longer than the heartbeat, then thawed.
    let before: Vec<u64> = PROJECTIONS.iter().map(|p| stalls(&h, p)).collect();
    let pid = nats.pid().expect("its nats-server runs");
    let signal = |s: &str| {
        assert!(Command::new("kill")
            .args([s, &pid.to_string()])
            .status()
            .unwrap()
            .success())
    };
    signal("-STOP");
    std::thread::sleep(Duration::from_secs(4));
    signal("-CONT");
    load(&client, 1500, 300).await;
    let head = relayed_all(&client).await;
    let h = all_at(&client, head, Duration::from_secs(10)).await;
    let after: Vec<u64> = PROJECTIONS.iter().map(|p| stalls(&h, p)).collect();
    assert!(
        after.iter().zip(&before).any(|(a, b)| a > b),
        "missed heartbeats are counted: {h}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_frozen_with_its_consumer_alive_is_recovered_by_the_watchdog_alone() {
    let nats = NatsServer::start_temp().unwrap();
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("serve.log");
    let env = [
        ("INVITEBUS_FAULT_FREEZE_FEED", "scheduler:3"),
        ("INVITEBUS_STALL_AFTER", "2"),
    ];
    let (_serve, _) = serve_logged(&nats.url(), data.path(), &log, &env);
    let client = connect(&nats.url()).await;
    setup(&client).await;
    load(&client, 0, 800).await;
    let head = relayed_all(&client).await;
    let started = Instant::now();
    let h = all_at(&client, head, Duration::from_secs(15)).await;
    assert!(stalls(&h, "scheduler") >= 1, "the watchdog found the stall: {h}");
    assert!(started.elapsed() < Duration::from_secs(12), "within its bound");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("has not moved"), "the watchdog's warning:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_that_cannot_apply_is_stalled_in_health_until_its_file_is_free() {
    let nats = NatsServer::start_temp().unwrap();
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("serve.log");
    let env = [("INVITEBUS_STALL_AFTER", "1"), ("INVITEBUS_UNHEALTHY_AFTER", "2")];
    let (_serve, http) = serve_logged(&nats.url(), data.path(), &log, &env);
    let client = connect(&nats.url()).await;
    setup(&client).await;
    let head = relayed_all(&client).await;
    all_at(&client, head, Duration::from_secs(10)).await;

    // Another writer holds views.db.
    let other = rusqlite::Connection::open(data.path().join("views.db")).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    load(&client, 0, 50).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let unhealthy = loop {
        let msg = client.request("invites.health", "{}".into()).await.unwrap();
        let r: invitebus_events::Reply = serde_json::from_slice(&msg.payload).unwrap();
        let d = r.data.clone().unwrap();
        if !r.ok && d["status"]["views"]["state"] == "stalled" {
            break r;
        }
        assert!(Instant::now() < deadline, "views never showed stalled: {r:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let err = unhealthy.error.unwrap();
    assert_eq!(err.code, invitebus_events::ErrorCode::Unavailable);
    assert!(err.message.contains("views"), "{}", err.message);
    assert!(unhealthy.data.unwrap()["head"].as_u64().is_some(), "data is kept");
    // Seed 000's heartbeat says so too.
    let check = support::http::get(http, "/api/invitation/check", &[]).await;
    assert_eq!(check.status, 503, "{}", String::from_utf8_lossy(&check.body));

    other.execute_batch("ROLLBACK").unwrap();
    drop(other);
    let head = relayed_all(&client).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let msg = client.request("invites.health", "{}".into()).await.unwrap();
        let r: invitebus_events::Reply = serde_json::from_slice(&msg.payload).unwrap();
        let d = r.data.clone().unwrap();
        if r.ok && d["status"]["views"]["position"] == head && d["status"]["views"]["state"] == "following" {
            assert_eq!(support::http::get(http, "/api/invitation/check", &[]).await.status, 200);
            break;
        }
        assert!(Instant::now() < deadline, "views never recovered: {r:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
