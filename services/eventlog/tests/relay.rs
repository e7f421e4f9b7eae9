//! The relay against a real nats-server: what the writer's feed lacks comes from the log, so the
//! stream holds every position once, in order, with sequence = position.

use chrono::Utc;
use invitebus_eventlog::relay::{self, Relay};
use invitebus_eventlog::{AppendCommand, EventLog, LogReader, NewEvent, Options};
use invitebus_events::subject::{Subjects, EVENTS_STREAM};
use invitebus_natsrun::NatsServer;
use serde_json::json;
use std::time::Duration;
use tokio::sync::watch;

fn command(n: u64) -> AppendCommand {
    AppendCommand {
        actor: "fang".into(),
        command_type: "MarkInviteRead",
        command_digest: "d".into(),
        command_id: Some(format!("c{n}")),
        correlation_id: None,
        traceparent: None,
        causation_id: None,
        events: vec![NewEvent {
            stream_id: format!("invite-i{n}"),
            stream_type: "invite",
            version: 1,
            event_type: "InviteRead",
            schema: 1,
            data: json!({"invite_id": format!("i{n}")}).to_string(),
        }],
        reply_data: json!({}),
    }
}

/// A relay of the log at `path`, with no lease, fed by `feed`; and where it reports its position.
fn relay_of(
    path: &std::path::Path,
    js: &async_nats::jetstream::Context,
    feed: tokio::sync::mpsc::Receiver<Vec<invitebus_eventlog::Published>>,
) -> (Relay, watch::Receiver<u64>) {
    let (published, seen) = watch::channel(0);
    let relay = Relay {
        log_path: path.to_path_buf(),
        jetstream: js.clone(),
        subjects: Subjects::default(),
        feed,
        published,
        tenure: None,
    };
    (relay, seen)
}

/// A nats-server of its own with JetStream, and where the log goes (`path`).
struct World {
    _nats: NatsServer,
    js: async_nats::jetstream::Context,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

async fn world() -> World {
    let nats = NatsServer::start_temp().unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    World {
        _nats: nats,
        js,
        _dir: dir,
        path,
    }
}

/// Waits until the relay reports position `n` (30 s at most).
async fn reached(seen: &watch::Receiver<u64>, n: u64) {
    tokio::time::timeout(Duration::from_secs(30), seen.clone().wait_for(|p| *p >= n))
        .await
        .unwrap_or_else(|_| panic!("the relay did not get to position {n}"))
        .unwrap();
}

/// The writer drops a batch from its feed when the relay lags (the channel is full): the relay
/// must not publish the next batch right after the one before the hole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hole_in_the_feed_is_filled_from_the_log() {
    let nats = NatsServer::start_temp().unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let mut log = EventLog::open(&path, &Options::default()).unwrap();
    for n in 1..=10 {
        log.append(&[command(n)], Utc::now()).unwrap();
    }
    let all = LogReader::open(&path).unwrap().read_published(0, 100).unwrap();
    assert_eq!(all.len(), 10);

    let (feed, rx) = relay::feed();
    feed.send(all[0..3].to_vec()).await.unwrap();
    // Positions 4..=7 were dropped from the feed.
    feed.send(all[7..10].to_vec()).await.unwrap();
    drop(feed);
    let js = async_nats::jetstream::new(client.clone());
    let (relay, _) = relay_of(&path, &js, rx);
    let (_stop, stop) = watch::channel(false);
    tokio::time::timeout(Duration::from_secs(30), relay.run(stop))
        .await
        .unwrap()
        .unwrap();

    let mut stream = js.get_stream(EVENTS_STREAM).await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    assert_eq!((state.messages, state.last_sequence), (10, 10));
    for seq in 1..=10u64 {
        let msg = stream.get_raw_message(seq).await.unwrap();
        assert_eq!(
            msg.headers.get("Nats-Msg-Id").unwrap().as_str(),
            seq.to_string(),
            "sequence {seq}"
        );
    }
}

/// A position JetStream refuses (here: too large for the stream, for now) holds back every
/// later one: each goes out with `Nats-Expected-Last-Sequence`, so the stream can never hold a
/// later position while an earlier one is lost, and the relay resumes from the last
/// acknowledged position (never from the stream's last message) once the refusal ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_lost_between_two_stored_ones_is_published() {
    let World { js, path, .. } = &world().await;
    let mut log = EventLog::open(path, &Options::default()).unwrap();
    for n in 1..=5 {
        log.append(&[command(n)], Utc::now()).unwrap();
    }
    let (_feed, rx) = relay::feed();
    let (relay, seen) = relay_of(path, js, rx);
    let (stop_tx, stop) = watch::channel(false);
    let running = tokio::spawn(relay.run(stop));
    reached(&seen, 5).await;

    // The stream takes small messages only, for now.
    let mut config = js.get_stream(EVENTS_STREAM).await.unwrap().cached_info().config.clone();
    config.max_message_size = 1024;
    js.update_stream(&config).await.unwrap();
    let mut big = command(6);
    big.events[0].data = json!({"invite_id": "i6", "note": "x".repeat(4000)}).to_string();
    log.append(&[big], Utc::now()).unwrap();
    for n in 7..=8 {
        log.append(&[command(n)], Utc::now()).unwrap();
    }
    // While 6 is refused the relay stays at 5, whatever the stream's last message says.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(*seen.borrow(), 5, "the relay moved past a position JetStream refused");
    let info = js
        .get_stream(EVENTS_STREAM)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .clone();
    assert_eq!(info.last_sequence, 5, "7 and 8 were refused while 6 was missing");
    config.max_message_size = -1;
    js.update_stream(&config).await.unwrap();
    reached(&seen, 8).await;
    stop_tx.send(true).unwrap();
    let _ = running.await;

    let mut stream = js.get_stream(EVENTS_STREAM).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut ids = Vec::new();
    for seq in 1..=last {
        if let Ok(msg) = stream.get_raw_message(seq).await {
            ids.push(msg.headers.get("Nats-Msg-Id").unwrap().as_str().parse::<u64>().unwrap());
        }
    }
    assert_eq!(
        ids,
        (1..=8).collect::<Vec<_>>(),
        "every position once, at its own sequence"
    );
}

/// A session that fails for another reason than fencing (here: the log is not there yet) is
/// followed by another, from the log, after a back-off: the relay never stops silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_fails_starts_again_from_its_log() {
    let World { js, path, .. } = &world().await;
    let (_feed, rx) = relay::feed();
    let (relay, seen) = relay_of(path, js, rx);
    let (stop_tx, stop) = watch::channel(false);
    let running = tokio::spawn(relay.run(stop));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!running.is_finished(), "the relay gave up on a log it could not open");

    let mut log = EventLog::open(path, &Options::default()).unwrap();
    for n in 1..=3 {
        log.append(&[command(n)], Utc::now()).unwrap();
    }
    reached(&seen, 3).await;
    let mut stream = js.get_stream(EVENTS_STREAM).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.last_sequence, 3);
    stop_tx.send(true).unwrap();
    running.await.unwrap().unwrap();
}

/// The stream lost what the relay had published (deleted and made anew, or restored from an
/// older copy): the relay publishes it again from the log, instead of trusting its checkpoint
/// and leaving the stream short while reporting itself at the head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_lost_its_events_gets_them_again_from_the_log() {
    let World { js, path, .. } = &world().await;
    let mut log = EventLog::open(path, &Options::default()).unwrap();
    for n in 1..=5 {
        log.append(&[command(n)], Utc::now()).unwrap();
    }
    let relay_to = |n: u64| {
        let (feed, rx) = relay::feed();
        let (relay, seen) = relay_of(path, js, rx);
        async move {
            // The writer's end of the feed lives as long as this relay runs: with it dropped,
            // the relay ends by itself once it has drained the log (and `stop` finds no one).
            let _feed = feed;
            let (stop_tx, stop) = watch::channel(false);
            let running = tokio::spawn(relay.run(stop));
            reached(&seen, n).await;
            stop_tx.send(true).unwrap();
            running.await.unwrap().unwrap();
        }
    };
    relay_to(5).await;
    // What the writer does with the relay's report: the log says 1..=5 are in the stream.
    log.set_checkpoint(invitebus_eventlog::RELAY_CHECKPOINT, 5).unwrap();
    js.delete_stream(EVENTS_STREAM).await.unwrap();

    relay_to(5).await;
    let mut stream = js.get_stream(EVENTS_STREAM).await.unwrap();
    assert_eq!(
        stream.info().await.unwrap().state.last_sequence,
        5,
        "the stream holds the log again"
    );
    let reader = LogReader::open(path).unwrap();
    for event in reader.read_from(0, 10).unwrap() {
        let msg = stream.get_raw_message(event.position).await.unwrap();
        let id = msg.headers.get("Nats-Msg-Id").map(|v| v.as_str().to_string());
        assert_eq!(id, Some(event.position.to_string()));
        let hash = invitebus_eventlog::stored::hash_of(&msg.payload);
        assert_eq!(hash, event.hash, "position {}", event.position);
    }
}

/// The same loss under a running relay: its publishes are refused from then on, so its
/// session ends and the next one publishes again from what the stream holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_lost_under_a_running_relay_gets_the_log_again() {
    let World { js, path, .. } = &world().await;
    let mut log = EventLog::open(path, &Options::default()).unwrap();
    for n in 1..=5 {
        log.append(&[command(n)], Utc::now()).unwrap();
    }
    let (_feed, rx) = relay::feed();
    let (relay, seen) = relay_of(path, js, rx);
    let (stop_tx, stop) = watch::channel(false);
    let running = tokio::spawn(relay.run(stop));
    reached(&seen, 5).await;
    js.delete_stream(EVENTS_STREAM).await.unwrap();
    for n in 6..=7 {
        log.append(&[command(n)], Utc::now()).unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let last = match js.get_stream(EVENTS_STREAM).await {
            Ok(mut stream) => stream.info().await.unwrap().state.last_sequence,
            Err(_) => 0,
        };
        if last == 7 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stream holds {last} of 7 events"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_tx.send(true).unwrap();
    running.await.unwrap().unwrap();
    let stream = js.get_stream(EVENTS_STREAM).await.unwrap();
    for event in LogReader::open(path).unwrap().read_from(0, 10).unwrap() {
        let theirs = invitebus_eventlog::stored::hash_at(&stream, event.position)
            .await
            .unwrap();
        assert_eq!(theirs, Some(event.hash), "position {}", event.position);
    }
}
