//! Fencing against a real nats-server: two writers whose logs part after position 3 cannot fork
//! `INVITES_EVENTS`. The one that publishes second is refused (as a duplicate, or by
//! `Nats-Expected-Last-Sequence` once the duplicate window has passed), finds the other's event
//! at its position, and stops with `Fenced`; it then drops its tail and copies the stream.

use chrono::Utc;
use invitebus_eventlog::copy::copy_from_stream;
use invitebus_eventlog::relay::{self, ensure_events_stream, Relay, RelayError};
use invitebus_eventlog::{AppendCommand, EventLog, LogReader, NewEvent, Options};
use invitebus_events::subject::{Subjects, EVENTS_STREAM};
use invitebus_natsrun::NatsServer;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

fn command(writer: &str, n: u64) -> AppendCommand {
    AppendCommand {
        actor: "fang".into(),
        command_type: "MarkInviteRead",
        command_digest: "d".into(),
        command_id: Some(format!("{writer}-c{n}")),
        correlation_id: None,
        traceparent: None,
        causation_id: None,
        events: vec![NewEvent {
            stream_id: format!("invite-{writer}{n}"),
            stream_type: "invite",
            version: 1,
            event_type: "InviteRead",
            schema: 1,
            data: json!({"invite_id": format!("{writer}{n}")}).to_string(),
        }],
        reply_data: json!({"n": n}),
    }
}

/// Runs a relay over `path` until it stops by itself or reaches `until`; returns how it ended
/// (None: it reached `until` and was stopped) and the position it reported.
async fn relay_once(js: &async_nats::jetstream::Context, path: &Path, until: u64) -> (Option<RelayError>, u64) {
    let (_feed, rx) = relay::feed();
    let (published, mut seen) = watch::channel(0);
    let relay = Relay {
        log_path: path.to_path_buf(),
        jetstream: js.clone(),
        subjects: Subjects::default(),
        feed: rx,
        published,
        tenure: None,
    };
    let (stop_tx, stop) = watch::channel(false);
    let mut running = tokio::spawn(relay.run(stop));
    let outcome = tokio::select! {
        ended = &mut running => Some(ended.unwrap().err()),
        // Err when the relay has stopped (its sender is gone): then the branch above answers.
        Ok(_) = seen.wait_for(|p| *p >= until) => None,
        _ = tokio::time::sleep(Duration::from_secs(30)) => panic!("the relay neither stopped nor reached {until}"),
    };
    let at = *seen.borrow();
    match outcome {
        Some(ended) => (ended, at),
        None => {
            let _ = stop_tx.send(true);
            let ended = running.await.unwrap();
            assert!(ended.is_ok(), "the relay reached {until} and then failed: {ended:?}");
            (None, at)
        }
    }
}

/// Two logs with the same three events, then `a` gets `a_tail` more and `b` two of its own.
fn two_writers(dir: &Path, a_tail: u64) -> (PathBuf, PathBuf) {
    let (a, b) = (dir.join("a.db"), dir.join("b.db"));
    let mut log = EventLog::open(&a, &Options::default()).unwrap();
    for n in 1..=3 {
        log.append(&[command("x", n)], Utc::now()).unwrap();
    }
    drop(log);
    std::fs::copy(&a, &b).unwrap();
    let mut log = EventLog::open(&a, &Options::default()).unwrap();
    for n in 4..4 + a_tail {
        log.append(&[command("a", n)], Utc::now()).unwrap();
    }
    let mut log = EventLog::open(&b, &Options::default()).unwrap();
    for n in 4..=5 {
        log.append(&[command("b", n)], Utc::now()).unwrap();
    }
    (a, b)
}

async fn stream_hashes(js: &async_nats::jetstream::Context) -> Vec<String> {
    let mut stream = js.get_stream(EVENTS_STREAM).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let msg = stream.get_raw_message(seq).await.unwrap();
        let env: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
        assert_eq!(env["position"], seq, "sequence = position");
        out.push(env["hash"].as_str().unwrap().to_string());
    }
    out
}

fn log_hashes(path: &Path) -> Vec<String> {
    LogReader::open(path)
        .unwrap()
        .read_published(0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.hash)
        .collect()
}

/// Inside the duplicate window the second writer's positions 4.. are answered `duplicate`
/// (nats-server 2.9 checks ids before the expected sequence): read back, they are not its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_that_is_another_writers_event_fences_the_relay() {
    let nats = NatsServer::start_temp().unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_writers(dir.path(), 3);

    let (ended, at) = relay_once(&js, &b, 5).await;
    assert!(ended.is_none(), "b publishes its log: {ended:?}");
    assert_eq!(at, 5);
    let (ended, _) = relay_once(&js, &a, 6).await;
    match ended {
        Some(RelayError::Fenced { position, kept, .. }) => assert_eq!((position, kept), (4, 3)),
        other => panic!("a must be fenced at 4 keeping 3, got {other:?}"),
    }
    assert_eq!(stream_hashes(&js).await, log_hashes(&b), "the stream is b's, untouched");

    // Stepping down: a drops its tail (and its commands' replies), then copies b's events.
    let mut log = EventLog::open(&a, &Options::default()).unwrap();
    assert_eq!(log.discard_after(3).unwrap(), 3);
    let reader = LogReader::open(&a).unwrap();
    assert_eq!(reader.head().unwrap(), 3);
    assert!(reader
        .lookup_command("fang", "MarkInviteRead", "a-c4")
        .unwrap()
        .is_none());
    assert!(reader.read_stream("invite-a4", None).unwrap().is_empty());
    let log = copy_from_stream(&js, log, None, |_| {}).await.unwrap();
    assert_eq!(log.head(), 5);
    assert_eq!(log_hashes(&a), log_hashes(&b), "a now holds b's history");
    let reply = reader
        .lookup_command("fang", "MarkInviteRead", "b-c5")
        .unwrap()
        .expect("b's reply came along");
    assert_eq!((reply.position, reply.data), (Some(5), json!({"n": 5})));
    // And a's relay, started again, finds everything published.
    let (ended, at) = relay_once(&js, &a, 5).await;
    assert!(ended.is_none(), "{ended:?}");
    assert_eq!(at, 5);
}

/// Past the duplicate window the id no longer answers: `Nats-Expected-Last-Sequence` refuses
/// position 4 (the stream's last is 5), and the read-back finds b's event there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_expected_sequence_is_refused_and_fences_the_relay() {
    let nats = NatsServer::start_temp().unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_writers(dir.path(), 1);
    let mut config = ensure_events_stream(&js, &Subjects::default())
        .await
        .unwrap()
        .cached_info()
        .config
        .clone();
    config.duplicate_window = Duration::from_millis(500);
    js.update_stream(&config).await.unwrap();

    let (ended, _) = relay_once(&js, &b, 5).await;
    assert!(ended.is_none(), "{ended:?}");
    // a's relay starts from its checkpoint, past the positions both logs share.
    EventLog::open(&a, &Options::default())
        .unwrap()
        .set_checkpoint(invitebus_eventlog::RELAY_CHECKPOINT, 3)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (ended, _) = relay_once(&js, &a, 4).await;
    match ended {
        Some(RelayError::Fenced { position, kept, .. }) => assert_eq!((position, kept), (4, 3)),
        other => panic!("a must be fenced at 4 keeping 3, got {other:?}"),
    }
    assert_eq!(stream_hashes(&js).await, log_hashes(&b));
}
