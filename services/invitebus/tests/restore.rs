//! `invitebus restore --from-jetstream`: a commands role loses its data folder; the log comes
//! back from `INVITES_EVENTS` event for event (hash chain verified), with the replies of the
//! commands sent with a command_id, and `serve` goes on from it: a retry is answered from the
//! restored log, a new command takes the next position.

mod support;

use invitebus_eventlog::LogReader;
use invitebus_natsrun::NatsServer;
use serde_json::json;
use support::{connect, relayed_all, run, send, Serve};

/// A remembered reply: command_id, command type, position, data.
type Remembered = (String, String, Option<u64>, serde_json::Value);

/// Every event as the relay publishes it, and every remembered reply, of the log in `data`.
fn contents(data: &std::path::Path) -> (Vec<Vec<u8>>, Vec<Remembered>) {
    let reader = LogReader::open(support::db(data)).unwrap();
    let events = reader
        .read_published(0, 100_000)
        .unwrap()
        .into_iter()
        .map(|e| e.payload)
        .collect();
    let mut replies = Vec::new();
    let conn = reader.connection();
    let mut stmt = conn
        .prepare("SELECT command_id, command_type, position, data FROM command_replies ORDER BY command_id")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<i64>>(2)?.map(|p| p as u64),
                serde_json::from_str(&r.get::<_, String>(3)?).unwrap(),
            ))
        })
        .unwrap();
    for row in rows {
        replies.push(row.unwrap());
    }
    (events, replies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_log_is_restored_from_jetstream_and_serve_goes_on_from_it() {
    let nats = NatsServer::start_temp().unwrap();
    let url = nats.url();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut serve = Serve::start_role(&url, &data, "commands");
    let client = connect(&url).await;
    support::healthy(&client).await;
    let register =
        json!({"actor": "xuan", "resource_id": "conf", "kind": "conference", "name": "C", "command_id": "r1"});
    let made = send(&client, "RegisterResource", &register).await.unwrap();
    assert!(made.ok, "{made:?}");
    for n in 0..40 {
        let invite = json!({"actor": "xuan", "resource_id": "conf", "invitee": format!("u{n}"),
            "invite_id": format!("i{n}"), "command_id": format!("c{n}")});
        let r = send(&client, "CreateInvite", &invite).await.unwrap();
        assert!(r.ok, "{r:?}");
    }
    let head = relayed_all(&client).await;
    assert!(serve.terminate().success());
    let before = contents(&data);
    assert_eq!(before.0.len() as u64, head);

    // The disk is lost (the NATS cluster is elsewhere and keeps the stream).
    std::fs::remove_dir_all(&data).unwrap();
    let restored = run(&["restore", "--from-jetstream", "--nats", &url], &data);
    let stdout = String::from_utf8_lossy(&restored.stdout);
    assert!(
        restored.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert!(
        stdout.contains(&format!("restored {head} events")) && stdout.contains("hash chain verified"),
        "{stdout}"
    );
    assert_eq!(
        contents(&data),
        before,
        "every event and every remembered reply, byte for byte"
    );
    let verify = run(&["audit", "verify"], &data);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));

    // Run again, it has nothing to copy and changes nothing.
    let again = run(&["restore", "--from-jetstream", "--nats", &url], &data);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("restored 0 events"));

    let _serve = Serve::start_role(&url, &data, "commands");
    support::healthy(&client).await;
    // A retry is answered from the restored log: same reply, same position, nothing appended.
    let retry = send(&client, "RegisterResource", &register).await.unwrap();
    assert_eq!(
        (retry.ok, retry.position, retry.data),
        (made.ok, made.position, made.data)
    );
    let next =
        json!({"actor": "xuan", "resource_id": "conf", "invitee": "new", "invite_id": "i-new", "command_id": "c-new"});
    let r = send(&client, "CreateInvite", &next).await.unwrap();
    assert!(r.ok, "{r:?}");
    assert_eq!(r.position.flatten(), Some(head + 1));
    assert_eq!(
        relayed_all(&client).await,
        head + 1,
        "the relay goes on from the restored log"
    );
}

/// A log that is not a prefix of the stream is never "restored" over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_log_that_differs_from_the_stream() {
    let nats = NatsServer::start_temp().unwrap();
    let url = nats.url();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let client = connect(&url).await;
    {
        let mut serve = Serve::start_role(&url, &a, "commands");
        support::healthy(&client).await;
        for n in 0..20 {
            let register = json!({"actor": "xuan", "resource_id": format!("r{n}"), "kind": "conference", "name": "C"});
            let r = send(&client, "RegisterResource", &register).await.unwrap();
            assert!(r.ok, "{r:?}");
        }
        relayed_all(&client).await;
        assert!(serve.terminate().success());
    }
    // Another log, shorter than the stream, with events of its own, never published.
    std::fs::create_dir_all(&b).unwrap();
    invitebus_testkit::history::write_log(&support::db(&b), invitebus_testkit::history::mixed(1), false).unwrap();
    let before = contents(&b);
    let refused = run(&["restore", "--from-jetstream", "--nats", &url], &b);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("and INVITES_EVENTS differ at position"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(contents(&b), before, "nothing was changed");
}
