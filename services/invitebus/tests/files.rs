//! The roles' files as an operator meets them: a damaged view file is set aside and rebuilt
//! from the log (on start, and while running), a file is written by one process at a time, and
//! no rebuild sends a notification twice.

mod support;

use invitebus_natsrun::NatsServer;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{connect, healthy, projection_at, relayed_all, run, send, Serve};

async fn setup(client: &async_nats::Client, invites: usize) -> u64 {
    for body in [
        json!({"actor":"xuan","user_id":"xuan","name":"Xuan"}),
        json!({"actor":"fang","user_id":"fang","name":"Fang"}),
    ] {
        assert!(send(client, "UpsertUser", &body).await.unwrap().ok);
    }
    let conf = json!({"actor":"xuan","resource_id":"conf","kind":"conference","name":"C"});
    assert!(send(client, "RegisterResource", &conf).await.unwrap().ok);
    for i in 0..invites {
        let body = json!({"actor":"xuan","resource_id":"conf","invitee":"fang","invite_id":format!("i{i}")});
        assert!(send(client, "CreateInvite", &body).await.unwrap().ok);
    }
    relayed_all(client).await
}

async fn query(client: &async_nats::Client, name: &str, body: Value) -> invitebus_events::Reply {
    let subject = invitebus_events::subject::Subjects::default().query(name);
    let msg = client.request(subject, body.to_string().into()).await.unwrap();
    serde_json::from_slice(&msg.payload).unwrap()
}

/// Polls `received` for fang until it lists `n` invites with xuan's name, or the deadline.
async fn received_ok(client: &async_nats::Client, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let subject = invitebus_events::subject::Subjects::default().query("received");
        let body = json!({"actor":"fang","per_page":100}).to_string();
        let r = match client.request(subject, body.into()).await {
            Ok(msg) => serde_json::from_slice::<invitebus_events::Reply>(&msg.payload).unwrap(),
            Err(_) => invitebus_events::Reply::err(invitebus_events::ProtocolError::unavailable("not up yet")),
        };
        if let Ok(v) = r.clone().into_result() {
            if v["total"] == n && v["items"][0]["user_info"]["name"] == "Xuan" {
                return v;
            }
        }
        assert!(Instant::now() < deadline, "received never recovered: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn aside(data: &Path, name: &str) -> usize {
    std::fs::read_dir(data)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|f| f.starts_with(&format!("{name}.damaged-")) && !f.ends_with("-wal"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_view_file_is_set_aside_and_rebuilt_on_start_and_while_running() {
    let nats = NatsServer::start_temp().unwrap();
    let data = tempfile::tempdir().unwrap();
    let _commands = Serve::start_role(&nats.url(), data.path(), "commands");
    let mut views = Serve::start_role(&nats.url(), data.path(), "views");
    let client = connect(&nats.url()).await;
    healthy(&client).await;
    let head = setup(&client, 20).await;
    projection_at(&client, "views", head).await;
    received_ok(&client, 20).await;

    // While running: a row that cannot be read (text that is not UTF-8), as a flipped byte gives.
    let file = data.path().join("views.db");
    let conn = rusqlite::Connection::open(&file).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.execute(
        "UPDATE users SET name = CAST(X'58FF75616E' AS TEXT) WHERE user_id = 'xuan'",
        [],
    )
    .unwrap();
    drop(conn);
    let r = query(&client, "received", json!({"actor":"fang"})).await;
    assert_eq!(r.error.unwrap().code, invitebus_events::ErrorCode::Unavailable);
    received_ok(&client, 20).await;
    assert_eq!(aside(data.path(), "views.db"), 1, "the bad file is kept aside");
    // Health hears of it with the role's next status report (they come every 200 ms or so).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let h = healthy(&client).await;
        if h["rebuilds"]["views"]["reason"].is_string() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "health says so: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // On start: a zeroed page.
    assert_eq!(views.terminate().code(), Some(0));
    let mut bytes = std::fs::read(&file).unwrap();
    assert!(bytes.len() > 3 * 4096, "the file has pages to break");
    bytes[4096..2 * 4096].fill(0);
    std::fs::write(&file, bytes).unwrap();
    let _ = std::fs::remove_file(data.path().join("views.db-wal"));
    let _views = Serve::start_role(&nats.url(), data.path(), "views");
    received_ok(&client, 20).await;
    assert_eq!(aside(data.path(), "views.db"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_writes_a_file_and_replay_will_not_swap_it_under_a_running_role() {
    let nats = NatsServer::start_temp().unwrap();
    let data = tempfile::tempdir().unwrap();
    let _commands = Serve::start_role(&nats.url(), data.path(), "commands");
    let _views = Serve::start_role(&nats.url(), data.path(), "views");
    let client = connect(&nats.url()).await;
    healthy(&client).await;
    let head = setup(&client, 3).await;
    projection_at(&client, "views", head).await;

    let url = nats.url();
    let refused = run(&["replay", "--projection", "views", "--nats", &url], data.path());
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("in use by another invitebus process"), "{err}");
    assert!(err.contains("--until"), "it says what may run instead: {err}");

    // An as-of snapshot only reads: allowed while serving.
    let out = data.path().join("asof.json");
    let snap = run(
        &[
            "replay",
            "--until",
            &head.to_string(),
            "--out",
            out.to_str().unwrap(),
            "--nats",
            &url,
        ],
        data.path(),
    );
    assert!(snap.status.success(), "{}", String::from_utf8_lossy(&snap.stderr));

    // A second views role on the same folder stops at once with the reason.
    let mut second = Serve::start_role(&url, data.path(), "views");
    let status = second.child.wait().unwrap();
    assert!(!status.success());
    // And a second writer of the log.
    let mut writer = Serve::start_role(&url, data.path(), "commands");
    assert!(!writer.child.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notifier_rebuilt_from_nothing_sends_nothing_twice_past_the_dedupe_window() {
    let nats = NatsServer::start_temp().unwrap();
    let data = tempfile::tempdir().unwrap();
    let client = connect(&nats.url()).await;
    // A dedupe window of one second, so that JetStream's window cannot be what prevents doubles.
    let js = async_nats::jetstream::new(client.clone());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: invitebus_events::subject::NOTIFY_STREAM.to_string(),
        subjects: vec!["invites.notify.*".into()],
        duplicate_window: Duration::from_secs(1),
        ..Default::default()
    })
    .await
    .unwrap();
    let _commands = Serve::start_role(&nats.url(), data.path(), "commands");
    let mut notifier = Serve::start_role(&nats.url(), data.path(), "notifier");
    healthy(&client).await;
    let head = setup(&client, 10).await;
    projection_at(&client, "notifier", head).await;
    let stored = || async {
        let mut s = js.get_stream(invitebus_events::subject::NOTIFY_STREAM).await.unwrap();
        s.info().await.unwrap().state.messages
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while stored().await < 10 {
        assert!(Instant::now() < deadline, "the notifications were not sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(notifier.terminate().code(), Some(0));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The notifier's file is gone (lost disk, a rebuild from nothing): it starts from 0.
    for f in ["notifier.db", "notifier.db-wal", "notifier.db-shm"] {
        let _ = std::fs::remove_file(data.path().join(f));
    }
    let _notifier = Serve::start_role(&nats.url(), data.path(), "notifier");
    tokio::time::sleep(Duration::from_secs(2)).await;
    projection_at(&client, "notifier", head).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stored().await, 10, "nothing was sent twice");
    // New events are still sent.
    let body = json!({"actor":"xuan","resource_id":"conf","invitee":"fang","invite_id":"late"});
    assert!(send(&client, "CreateInvite", &body).await.unwrap().ok);
    let deadline = Instant::now() + Duration::from_secs(20);
    while stored().await < 11 {
        assert!(Instant::now() < deadline, "a new notification was not sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
