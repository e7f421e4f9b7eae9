//! `invitebus serve` killed with SIGKILL under load loses no acknowledged command, duplicates
//! none, and relays everything after it starts again.

mod support;

use futures::stream::{FuturesUnordered, StreamExt};
use invitebus_natsrun::NatsServer;
use serde_json::json;
use support::{connect, healthy, relayed_all, send, Serve};

const COMMANDS: usize = 3000;

fn body(i: usize) -> serde_json::Value {
    json!({"actor":"xuan","resource_id":"conf","invitee":format!("u{i}"),"invite_id":format!("i{i}"),"command_id":format!("c{i}")})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_commands_in_flight_loses_nothing_acknowledged() {
    let nats = NatsServer::start_temp().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut serve = Serve::start(&nats.url(), data.path());
    let client = connect(&nats.url()).await;
    healthy(&client).await;
    let reg = send(
        &client,
        "RegisterResource",
        &json!({"actor":"xuan","resource_id":"conf","kind":"channel","name":"C"}),
    )
    .await;
    assert!(reg.unwrap().ok);

    // Everything at once; kill after the first few hundred answers.
    let mut inflight: FuturesUnordered<_> = (0..COMMANDS)
        .map(|i| {
            let client = client.clone();
            async move { (i, send(&client, "CreateInvite", &body(i)).await) }
        })
        .collect();
    let mut acked = Vec::new();
    while let Some((i, reply)) = inflight.next().await {
        if let Ok(r) = reply {
            if r.ok {
                acked.push((i, r.position().unwrap()));
            }
        }
        if acked.len() >= 300 {
            break;
        }
    }
    serve.kill();
    let unanswered = inflight.len();
    // Answers that raced the kill still count as acknowledged.
    while let Some((i, reply)) = inflight.next().await {
        if let Ok(r) = reply {
            if r.ok {
                acked.push((i, r.position().unwrap()));
            }
        }
    }
    assert!(
        unanswered > 1000,
        "only {unanswered} commands were in flight at the kill"
    );

    let mut serve = Serve::start(&nats.url(), data.path());
    healthy(&client).await;
    let conn = rusqlite::Connection::open(support::db(data.path())).unwrap();
    let count = |cid: &str| -> (i64, Option<i64>) {
        conn.query_row(
            "SELECT COUNT(*), MAX(position) FROM events WHERE command_id = ?1",
            [cid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    for (i, position) in &acked {
        let (n, pos) = count(&format!("c{i}"));
        assert_eq!(n, 1, "acknowledged command c{i} is in the log exactly once");
        assert_eq!(pos, Some(*position as i64), "at the position its reply named");
    }

    // Clients retry everything with the same command ids: each lands exactly once.
    let retries: Vec<_> = (0..COMMANDS)
        .map(|i| {
            let client = client.clone();
            async move { send(&client, "CreateInvite", &body(i)).await }
        })
        .collect();
    let replies = futures::future::join_all(retries).await;
    for (i, r) in replies.into_iter().enumerate() {
        let r = r.unwrap_or_else(|e| panic!("retry of c{i} failed: {e}"));
        assert!(r.ok, "retry of c{i}: {r:?}");
    }
    let dupes: i64 = conn
        .query_row("SELECT COUNT(*) FROM (SELECT command_id FROM events WHERE command_id IS NOT NULL GROUP BY command_id HAVING COUNT(*) > 1)", [], |r| r.get(0))
        .unwrap();
    assert_eq!(dupes, 0, "no command appended twice");
    let created: i64 = conn
        .query_row("SELECT COUNT(*) FROM events WHERE type = 'InviteCreated'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(created as usize, COMMANDS);

    // The relay publishes every position, once, in order.
    let head = relayed_all(&client).await;
    let js = async_nats::jetstream::new(client.clone());
    let mut stream = js.get_stream("INVITES_EVENTS").await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    assert_eq!(state.messages, head);
    assert_eq!(state.last_sequence, head);
    let last = stream.get_raw_message(head).await.unwrap();
    assert_eq!(last.headers.get("Nats-Msg-Id").unwrap().as_str(), head.to_string());

    let out = support::run(&["audit", "verify"], data.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(serve.terminate().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nats_server_serve_started_dies_with_a_sigkilled_serve() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("nats://127.0.0.1:{port}");
    let data = tempfile::tempdir().unwrap();
    // Nothing answers at `url`: serve starts its own nats-server there.
    let mut serve = Serve::start_role(&url, data.path(), "commands");
    let client = connect(&url).await;
    healthy(&client).await;
    drop(client);
    serve.kill();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the nats-server on {port} outlived its serve"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
