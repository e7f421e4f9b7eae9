//! Standby writers: two `serve --role commands --lease --durability replicated` on one NATS.
//! One holds the lease and takes commands; the other follows INVITES_EVENTS into its own log and
//! shows in health as `standby-<name>`. When the leader is killed, the standby takes over (the
//! figure is printed), answers retries from its copy of the log, and appends gaplessly; the old
//! leader, started again, is a standby that catches up.

mod support;

use invitebus_eventlog::LogReader;
use invitebus_natsrun::NatsServer;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{connect, healthy, relayed_all, send, Serve};

fn elected(url: &str, data: &Path, name: &str) -> Serve {
    Serve::start_role_with(
        url,
        data,
        "commands",
        &[
            ("INVITEBUS_LEASE", "true"),
            ("INVITEBUS_LEASE_TTL", "2"),
            ("INVITEBUS_DURABILITY", "replicated"),
            ("INVITEBUS_INSTANCE", name),
        ],
    )
}

/// Waits until health (answered by the leader) lists `standby-<name>` at the head.
async fn standby_at_head(client: &async_nats::Client, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = healthy(client).await;
        let s = &h["status"][format!("standby-{name}")];
        if s["state"] == "standby" && s["position"].as_u64() == h["head"].as_u64() {
            return h;
        }
        assert!(Instant::now() < deadline, "standby {name} did not catch up: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until health (answered by the leader) shows everything published and exactly one
/// standby following at the head; returns (leader, standby) by instance name.
async fn settled(client: &async_nats::Client) -> (&'static str, &'static str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = healthy(client).await;
        let relay = &h["status"]["relay"];
        let published = relay["state"] == "following" && relay["position"] == h["head"];
        let following = |name: &str| {
            let s = &h["status"][format!("standby-{name}")];
            s["state"] == "standby" && s["position"] == h["head"]
        };
        match (published, following("a"), following("b")) {
            (true, true, false) => return ("b", "a"),
            (true, false, true) => return ("a", "b"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "no leader with one standby at the head: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn hashes(data: &Path) -> Vec<String> {
    let reader = LogReader::open(support::db(data)).unwrap();
    reader
        .read_published(0, 100_000)
        .unwrap()
        .into_iter()
        .map(|e| e.hash)
        .collect()
}

fn invite(n: u32) -> Value {
    json!({"actor": "xuan", "resource_id": "conf", "invitee": format!("u{n}"), "invite_id": format!("i{n}"),
        "command_id": format!("c{n}")})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_follows_takes_over_when_the_leader_dies_and_the_old_leader_follows_again() {
    let nats = NatsServer::start_temp().unwrap();
    let url = nats.url();
    let dir = tempfile::tempdir().unwrap();
    let (a_data, b_data) = (dir.path().join("a"), dir.path().join("b"));
    let client = connect(&url).await;
    let mut a = elected(&url, &a_data, "a");
    healthy(&client).await;
    let _b = elected(&url, &b_data, "b");

    let register =
        json!({"actor": "xuan", "resource_id": "conf", "kind": "conference", "name": "C", "command_id": "r"});
    let first = send(&client, "RegisterResource", &register).await.unwrap();
    assert!(first.ok, "{first:?}");
    let mut replies = vec![];
    for n in 0..30 {
        let r = send(&client, "CreateInvite", &invite(n)).await.unwrap();
        assert!(r.ok, "{r:?}");
        replies.push(r);
    }
    let h = standby_at_head(&client, "b").await;
    let head = h["head"].as_u64().unwrap();
    // One writer: positions are gapless and every answer came from the same log.
    let positions: Vec<u64> = replies.iter().map(|r| r.position.flatten().unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!(*positions.last().unwrap(), head);
    assert_eq!(
        hashes(&b_data),
        hashes(&a_data),
        "the standby's log is the leader's, event for event"
    );

    // The leader dies. Requesters retry with their command_id until someone answers.
    a.kill();
    let killed = Instant::now();
    let next = invite(100);
    let taken = loop {
        match send(&client, "CreateInvite", &next).await {
            Ok(r) if r.ok => break r,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
        assert!(killed.elapsed() < Duration::from_secs(30), "no takeover");
    };
    println!(
        "takeover: the standby answered {:.2} s after SIGKILL of the leader (lease TTL 2 s)",
        killed.elapsed().as_secs_f64()
    );
    assert_eq!(taken.position.flatten(), Some(head + 1), "the next position, no gap");
    // What the old leader acknowledged is answered from the new leader's copy of the log.
    for (n, before) in replies.iter().enumerate() {
        let again = send(&client, "CreateInvite", &invite(n as u32)).await.unwrap();
        assert_eq!(
            (again.ok, again.position, &again.data),
            (true, before.position, &before.data)
        );
    }
    let h = healthy(&client).await;
    assert_eq!(h["head"].as_u64(), Some(head + 1), "retries appended nothing: {h}");

    // The old leader comes back: it is a standby now, and catches up.
    let _a = elected(&url, &a_data, "a");
    standby_at_head(&client, "a").await;
    assert_eq!(hashes(&a_data), hashes(&b_data));
}

/// Requesters that each send `CreateInvite`s with their own command ids, retrying each until it
/// is acknowledged, until `stop`; they return every (command_id, position) acknowledged.
fn load(
    client: &async_nats::Client,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<Vec<(String, u64)>>> {
    (0..4)
        .map(|w| {
            let client = client.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for n in 0.. {
                    if *stop.borrow() {
                        break;
                    }
                    let id = format!("w{w}-{n}");
                    let body = json!({"actor": "xuan", "resource_id": "conf", "invitee": format!("p{w}x{n}"),
                        "invite_id": id, "command_id": id});
                    loop {
                        match send(&client, "CreateInvite", &body).await {
                            Ok(r) if r.ok => {
                                acked.push((id.clone(), r.position.flatten().unwrap()));
                                break;
                            }
                            _ => tokio::time::sleep(Duration::from_millis(50)).await,
                        }
                    }
                }
                acked
            })
        })
        .collect()
}

/// Every acknowledged command is in the log exactly once, at the position it was answered
/// with; the log is gapless and its chain verifies.
fn assert_acknowledged_once(data: &Path, acked: &[(String, u64)]) {
    let reader = LogReader::open(support::db(data)).unwrap();
    let events = reader.read_from(0, 1_000_000).unwrap();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.position, i as u64 + 1, "gapless");
    }
    invitebus_eventlog::verify(&reader).expect("the chain verifies");
    for (id, position) in acked {
        let with_id: Vec<u64> = events
            .iter()
            .filter(|e| e.command_id.as_deref() == Some(id.as_str()))
            .map(|e| e.position)
            .collect();
        assert!(
            with_id.contains(position),
            "{id} acknowledged at {position}, in the log at {with_id:?}"
        );
        assert_eq!(with_id.len(), 1, "{id} appended once (CreateInvite appends one event)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_past_its_lease_never_forks_the_stream_and_steps_down() {
    let nats = NatsServer::start_temp().unwrap();
    let url = nats.url();
    let dir = tempfile::tempdir().unwrap();
    let (a_data, b_data) = (dir.path().join("a"), dir.path().join("b"));
    let client = connect(&url).await;
    let a = elected(&url, &a_data, "a");
    healthy(&client).await;
    let _b = elected(&url, &b_data, "b");
    let register =
        json!({"actor": "xuan", "resource_id": "conf", "kind": "conference", "name": "C", "command_id": "r"});
    assert!(send(&client, "RegisterResource", &register).await.unwrap().ok);
    standby_at_head(&client, "b").await;

    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let workers = load(&client, stop);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let pid = a.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    let paused = Instant::now();
    // Past the lease (TTL 2 s): the standby takes over and the load goes on through it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = healthy(&client).await;
        if h["status"]["standby-a"].is_null() && h["status"]["standby-b"].is_null() && h["head"].as_u64() > Some(1) {
            println!(
                "takeover: the standby answers health {:.2} s after SIGSTOP of the leader",
                paused.elapsed().as_secs_f64()
            );
            break;
        }
        assert!(Instant::now() < deadline, "no takeover: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap()
        .success());
    // The old leader finds its lease gone and steps down. At most one message of its, held in
    // its process through the pause, can still reach the stream: a duplicate of a position the
    // new leader published, or, when the new leader has published nothing yet, the chain's
    // next event, which fences the new leader too (PROTOCOL.md, "Standby writers"). Either
    // way the two settle with one leader, whichever wins the lease next, and one standby.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop_tx.send(true).unwrap();
    let mut acked = Vec::new();
    for w in workers {
        acked.extend(w.await.unwrap());
    }
    assert!(acked.len() > 20, "the load ran: {}", acked.len());
    let (leader, standby) = settled(&client).await;
    println!("after the pause: {leader} leads, {standby} follows at the head");
    let data = |name: &str| if name == "a" { &a_data } else { &b_data };
    assert_acknowledged_once(data(leader), &acked);
    assert_eq!(hashes(&a_data), hashes(&b_data), "both logs hold the same history");
    let stream = support::jetstream_hashes(&client).await;
    assert_eq!(stream, hashes(data(leader)), "JetStream equals the leader's log");
    println!(
        "split brain: {} commands acknowledged, all in the leader's log once",
        acked.len()
    );
}

/// `INVITES_EVENTS` deleted while the only writer is stopped: started again, the instance is a
/// standby first, and keeps what its relay had published instead of dropping it as an
/// unpublished tail; once it leads, its relay publishes it again, and it goes on from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_lost_acknowledged_events_gets_them_again_from_the_leader() {
    let nats = NatsServer::start_temp().unwrap();
    let url = nats.url();
    let dir = tempfile::tempdir().unwrap();
    let a_data = dir.path().join("a");
    let client = connect(&url).await;
    let mut a = elected(&url, &a_data, "a");
    healthy(&client).await;
    let register =
        json!({"actor": "xuan", "resource_id": "conf", "kind": "conference", "name": "C", "command_id": "r"});
    assert!(send(&client, "RegisterResource", &register).await.unwrap().ok);
    let mut acked = Vec::new();
    for n in 1..=5 {
        let r = send(&client, "CreateInvite", &invite(n)).await.unwrap();
        assert!(r.ok, "{r:?}");
        acked.push((format!("c{n}"), r.position.flatten().unwrap()));
    }
    let before = relayed_all(&client).await;
    assert!(a.terminate().success(), "a clean stop");
    let js = async_nats::jetstream::new(client.clone());
    js.delete_stream(invitebus_events::subject::EVENTS_STREAM)
        .await
        .unwrap();

    let _a = elected(&url, &a_data, "a");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = healthy(&client).await;
        if h["head"].as_u64() == Some(before) && h["projections"]["relay"].as_u64() == Some(before) {
            break;
        }
        assert!(Instant::now() < deadline, "the log was not published again: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = send(&client, "CreateInvite", &invite(6)).await.unwrap();
    assert_eq!(r.position.flatten(), Some(before + 1), "{r:?}");
    acked.push(("c6".to_string(), before + 1));
    relayed_all(&client).await;
    assert_acknowledged_once(&a_data, &acked);
    assert_eq!(
        support::jetstream_hashes(&client).await,
        hashes(&a_data),
        "JetStream holds the log again"
    );
}
