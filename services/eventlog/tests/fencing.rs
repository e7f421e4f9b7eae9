//! Fencing against a real nats-server: two writers whose logs part after position 3 cannot fork
//! `INVITES_EVENTS`. The one that publishes second is refused (as a duplicate, or by
//! `Nats-Expected-Last-Sequence` once the duplicate window has passed), finds the other's event
//! at its position, and stops with `Fenced`; it then drops its tail and copies the stream.

use chrono::Utc;
use invitebus_eventlog::copy::{complete_tip, copy_from_stream};
use invitebus_eventlog::relay::{self, ensure_events_stream, Relay, RelayError};
use invitebus_eventlog::stored::{REST_HEADER, REST_PARTS_HEADER};
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
        .read_published(0, 10_000)
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

/// Command 2 of three events, after command 1 of one, with its own id.
fn three_event_command() -> AppendCommand {
    let mut c = command("x", 2);
    c.command_type = "AcceptInvite";
    c.events = (1..=3)
        .map(|v| NewEvent {
            stream_id: "invite-x2".into(),
            stream_type: "invite",
            version: v,
            event_type: "InviteRead",
            schema: 1,
            data: json!({"invite_id": "x2", "v": v}).to_string(),
        })
        .collect();
    c
}

/// Every event of a command of several carries its span; the first also the rest of it.
#[test]
fn a_command_of_several_events_carries_its_rest_on_its_first_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let mut log = EventLog::open(&path, &Options::default()).unwrap();
    log.append(&[command("x", 1), three_event_command(), command("x", 3)], Utc::now())
        .unwrap();
    let rows = LogReader::open(&path).unwrap().read_published(0, 10).unwrap();
    let starts: Vec<bool> = rows.iter().map(|e| e.starts_command).collect();
    assert_eq!(starts, [true, true, false, false, true]);
    let stamps = invitebus_eventlog::stored::stamps(&rows, None);
    let spans: Vec<Option<&str>> = stamps.iter().map(|s| s.as_ref().map(|s| s.span.as_str())).collect();
    assert_eq!(spans, [None, Some("2-4"), Some("2-4"), Some("2-4"), None]);
    let rest: invitebus_eventlog::stored::Rest =
        serde_json::from_str(stamps[1].as_ref().unwrap().rest.as_deref().unwrap()).unwrap();
    let positions: Vec<u64> = rest.events.iter().map(|e| e.position).collect();
    assert_eq!(positions, [3, 4]);
    assert_eq!(rest.reply, Some(json!({"n": 2})));
    assert!(stamps[2].as_ref().unwrap().rest.is_none());
    // Read from inside the command, its events are not a command's start; the relay finds where
    // it began and stamps them with the whole span (no rest: the first event carried it).
    let reader = LogReader::open(&path).unwrap();
    let rows = reader.read_published(2, 10).unwrap();
    assert_eq!(
        rows.iter().map(|e| e.starts_command).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert_eq!(reader.command_start(3, 10).unwrap(), Some(2));
    assert_eq!(reader.command_start(4, 10).unwrap(), Some(2));
    assert_eq!(
        reader.command_start(4, 1).unwrap(),
        None,
        "began further back than asked"
    );
    assert_eq!(reader.command_start(5, 10).unwrap(), Some(5));
    assert_eq!(reader.command_start(1, 10).unwrap(), Some(1));
    let stamps = invitebus_eventlog::stored::stamps(&rows, Some(2));
    let spans: Vec<Option<&str>> = stamps.iter().map(|s| s.as_ref().map(|s| s.span.as_str())).collect();
    assert_eq!(spans, [Some("2-4"), Some("2-4"), None]);
    assert!(stamps.iter().flatten().all(|s| s.rest.is_none()));
    let rows = reader.read_published(3, 10).unwrap();
    let spans: Vec<Option<String>> = invitebus_eventlog::stored::stamps(&rows, Some(2))
        .into_iter()
        .map(|s| s.map(|s| s.span))
        .collect();
    assert_eq!(spans, [Some("2-4".to_string()), None], "the command's last event alone");
}

/// A writer stopped between two publishes of one command (here JetStream refuses the third
/// message: `max_msgs` 2, discard new): the stream holds half of it. A copy of the stream
/// completes it from the first event's rest, unpublished; its relay publishes the rest, which is
/// the lost writer's own (same hashes), and a retry is answered with the command's reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_finishes_a_command_the_stream_holds_half_of() {
    let first = finishes_half_a_command(three_event_command()).await;
    assert!(
        first.headers.get(REST_HEADER).is_some(),
        "a small rest goes in the header"
    );
}

/// The same with a command whose rest is far over what a header may carry (1,200 events, more
/// than the relay's batch of 1,000, about 800 KiB): the relay read it whole, and its rest went
/// into `INVITES_RESTS` in parts before its first event was published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_finishes_a_command_too_large_for_a_header() {
    let mut c = three_event_command();
    let pad = "p".repeat(400);
    c.events = (1..=1200)
        .map(|v| NewEvent {
            stream_id: "invite-x2".into(),
            stream_type: "invite",
            version: v,
            event_type: "InviteRead",
            schema: 1,
            data: json!({"invite_id": "x2", "v": v, "pad": pad}).to_string(),
        })
        .collect();
    let first = finishes_half_a_command(c).await;
    assert!(first.headers.get(REST_HEADER).is_none());
    let parts: usize = first
        .headers
        .get(REST_PARTS_HEADER)
        .expect("the parts' count")
        .as_str()
        .parse()
        .unwrap();
    assert!(parts >= 2, "{parts} parts");
}

/// Runs the scenario above with `big` as the second command (after a one-event one) and returns
/// the stored message of its first event.
async fn finishes_half_a_command(big: AppendCommand) -> async_nats::jetstream::message::StreamMessage {
    let events = big.events.len() as u64;
    let nats = NatsServer::start_temp().unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let mut log = EventLog::open(&a, &Options::default()).unwrap();
    log.append(&[command("x", 1), big], Utc::now()).unwrap();
    drop(log);
    let mut config = ensure_events_stream(&js, &Subjects::default())
        .await
        .unwrap()
        .cached_info()
        .config
        .clone();
    config.max_messages = 2;
    config.discard = async_nats::jetstream::stream::DiscardPolicy::New;
    js.update_stream(&config).await.unwrap();
    // a's relay gets positions 1 and 2 stored, then is refused; it is stopped there (lost).
    let (ended, at) = relay_once(&js, &a, 2).await;
    assert!(ended.is_none(), "{ended:?}");
    assert_eq!(at, 2);
    assert_eq!(stream_hashes(&js).await, log_hashes(&a)[..2]);

    let log = EventLog::open(&b, &Options::default()).unwrap();
    let mut log = copy_from_stream(&js, log, None, |_| {}).await.unwrap();
    assert_eq!(log.head(), 2, "the copy ends inside command 2");
    let subjects = Subjects::default();
    assert_eq!(complete_tip(&js, &subjects, &mut log).await.unwrap(), events - 1);
    assert_eq!(log.head(), events + 1);
    assert_eq!(
        log_hashes(&b),
        log_hashes(&a),
        "the rest is the lost writer's own events"
    );
    assert_eq!(
        log.checkpoint(invitebus_eventlog::RELAY_CHECKPOINT).unwrap(),
        2,
        "published only to 2"
    );
    assert_eq!(
        complete_tip(&js, &subjects, &mut log).await.unwrap(),
        0,
        "the log is past the stream: nothing more to complete"
    );
    drop(log);
    let reply = LogReader::open(&b)
        .unwrap()
        .lookup_command("fang", "AcceptInvite", "x-c2")
        .unwrap()
        .expect("the command's reply came with its rest");
    assert_eq!((reply.position, reply.data), (Some(events + 1), json!({"n": 2})));

    config.max_messages = -1;
    js.update_stream(&config).await.unwrap();
    let (ended, at) = relay_once(&js, &b, events + 1).await;
    assert!(ended.is_none(), "{ended:?}");
    assert_eq!(at, events + 1);
    assert_eq!(
        stream_hashes(&js).await,
        log_hashes(&a),
        "the stream holds the whole command"
    );
    js.get_stream(EVENTS_STREAM)
        .await
        .unwrap()
        .get_raw_message(2)
        .await
        .unwrap()
}
