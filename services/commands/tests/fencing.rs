//! A writer deposed by another: JetStream holds another writer's event at the position this
//! writer appends next. Its publish is refused (answered as a duplicate and read back), and the
//! writer steps down: under `replicated` durability the command is answered `unavailable` (never
//! acknowledged) and its event and remembered reply are dropped from the log; under `local` the
//! tail (acknowledged) is kept. Either way every later command is refused and health says so.

mod bus;

use async_nats::jetstream;
use bus::Bus;
use invitebus_commands::durability::Durability;
use invitebus_events::subject::{Subjects, EVENTS_STREAM};
use invitebus_events::ErrorCode;
use serde_json::json;
use std::time::Duration;

/// A writer with one published command (`c1`, invite `i1`), then another writer's event at
/// the next position, stored in the stream first. Returns the bus and that event's hash.
async fn deposed_writer(durability: Durability) -> (Bus, u64, String) {
    let bus = Bus::start_with(|c| c.durability = durability).await;
    bus.ok(
        "RegisterResource",
        json!({"actor": "xuan", "resource_id": "conf", "kind": "conference", "name": "C"}),
    )
    .await;
    let made = bus
        .ok(
            "CreateInvite",
            json!({"actor": "xuan", "resource_id": "conf", "invitee": "fang", "invite_id": "i1", "command_id": "c1"}),
        )
        .await;
    let kept = made.position.flatten().unwrap();
    bus.relayed(kept).await;

    // The other writer's next event continues the same chain, then lands in the stream first.
    let events = bus.jetstream_events().await;
    let (_, _, second) = events.last().unwrap().clone();
    let mut theirs = second.clone();
    theirs.position = kept + 1;
    theirs.stream_id = "invite-other".into();
    theirs.command_id = Some("their-command".into());
    theirs.prev_hash = second.hash.clone();
    theirs.hash = theirs.compute_hash();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", (kept + 1).to_string().as_str());
    headers.insert("Nats-Expected-Last-Sequence", kept.to_string().as_str());
    let js = jetstream::new(bus.client.clone());
    js.publish_with_headers(
        Subjects::default().event(&theirs.event_type, &theirs.stream_id),
        headers,
        serde_json::to_vec(&theirs).unwrap().into(),
    )
    .await
    .unwrap()
    .await
    .expect("the other writer's event is stored");
    (bus, kept, theirs.hash)
}

async fn health(bus: &Bus) -> serde_json::Value {
    let health = bus
        .client
        .request(Subjects::default().health(), "{}".into())
        .await
        .unwrap();
    serde_json::from_slice(&health.payload).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_whose_next_position_another_writer_published_steps_down() {
    let (bus, kept, theirs) = deposed_writer(Durability::Replicated).await;
    let js = jetstream::new(bus.client.clone());
    let refused = bus
        .send(
            "CreateInvite",
            json!({"actor": "xuan", "resource_id": "conf", "invitee": "gao", "invite_id": "i2", "command_id": "c2"}),
        )
        .await;
    let error = refused
        .error
        .clone()
        .unwrap_or_else(|| panic!("a deposed writer acknowledges nothing: {refused:?}"));
    assert_eq!(error.code, ErrorCode::Unavailable, "{error:?}");
    assert!(error.message.contains("deposed"), "{}", error.message);

    // Its tail is gone: the event, the remembered reply, the stream it made.
    let reader = bus.reader();
    let dropped = async {
        while reader.head().unwrap() != kept {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), dropped)
        .await
        .expect("the writer drops its unpublished tail");
    assert!(reader.lookup_command("xuan", "CreateInvite", "c2").unwrap().is_none());
    assert!(reader.read_stream("invite-i2", None).unwrap().is_empty());
    assert!(reader.lookup_command("xuan", "CreateInvite", "c1").unwrap().is_some());

    // Every later command is refused, health fails and says why; the stream is the other's.
    let later = bus
        .send(
            "RegisterResource",
            json!({"actor": "gao", "resource_id": "meet", "kind": "meeting", "name": "M"}),
        )
        .await;
    assert_eq!(later.error.map(|e| e.code), Some(ErrorCode::Unavailable));
    let health = health(&bus).await;
    assert_eq!(health["ok"], false, "{health}");
    assert_eq!(health["data"]["status"]["relay"]["state"], "fenced", "{health}");
    let stream = bus.jetstream_events().await;
    assert_eq!(stream.len() as u64, kept + 1);
    assert_eq!(stream.last().unwrap().2.hash, theirs);
    let mut s = js.get_stream(EVENTS_STREAM).await.unwrap();
    assert_eq!(s.info().await.unwrap().state.last_sequence, kept + 1);
}

/// Under `local` durability a command is acknowledged once it is in the log: a deposed writer
/// keeps its unpublished tail (it holds acknowledged commands), refuses everything after, and
/// health says it is fenced. The stream stays the other writer's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_writer_under_local_durability_keeps_what_it_acknowledged() {
    let (bus, kept, theirs) = deposed_writer(Durability::Local).await;
    let acked = bus
        .ok(
            "CreateInvite",
            json!({"actor": "xuan", "resource_id": "conf", "invitee": "gao", "invite_id": "i2", "command_id": "c2"}),
        )
        .await;
    assert_eq!(acked.position.flatten(), Some(kept + 1), "acknowledged on commit");
    let fenced = async {
        loop {
            if health(&bus).await["data"]["status"]["relay"]["state"] == "fenced" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), fenced)
        .await
        .expect("the relay finds the other writer's event and says so");
    let later = bus
        .send(
            "RegisterResource",
            json!({"actor": "gao", "resource_id": "meet", "kind": "meeting", "name": "M"}),
        )
        .await;
    assert_eq!(later.error.map(|e| e.code), Some(ErrorCode::Unavailable));
    let reader = bus.reader();
    assert_eq!(reader.head().unwrap(), kept + 1, "the acknowledged tail is kept");
    assert!(reader.lookup_command("xuan", "CreateInvite", "c2").unwrap().is_some());
    assert_eq!(reader.read_stream("invite-i2", None).unwrap().len(), 1);
    let stream = bus.jetstream_events().await;
    assert_eq!(stream.len() as u64, kept + 1);
    assert_eq!(stream.last().unwrap().2.hash, theirs);
}
