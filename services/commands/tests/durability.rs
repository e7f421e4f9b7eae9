//! `--durability`: under `replicated` a command is answered only once JetStream holds its
//! events; under `local` the log on this machine is enough. JetStream is made to refuse every
//! publish (a message size limit no event fits) to tell the two apart.

mod bus;

use async_nats::jetstream;
use bus::Bus;
use invitebus_commands::durability::Durability;
use invitebus_events::subject::{Subjects, EVENTS_STREAM};
use serde_json::{json, Value};
use std::time::Duration;

/// Sets the events stream's largest message (-1: none); JetStream refuses what is larger.
async fn max_message_size(client: &async_nats::Client, size: i32) {
    let js = jetstream::new(client.clone());
    let mut config = js.get_stream(EVENTS_STREAM).await.unwrap().cached_info().config.clone();
    config.max_message_size = size;
    js.update_stream(&config).await.unwrap();
}

/// The stream's last sequence (= the last published position on invitebus's stream).
async fn in_stream(client: &async_nats::Client) -> u64 {
    let js = jetstream::new(client.clone());
    let mut stream = js.get_stream(EVENTS_STREAM).await.unwrap();
    stream.info().await.unwrap().state.last_sequence
}

/// One request with a client-side deadline; None when nothing came back in time.
async fn within(bus: &Bus, name: &str, body: &Value, wait: Duration) -> Option<invitebus_events::Reply> {
    let request = bus
        .client
        .request(Subjects::default().command(name), body.to_string().into());
    match tokio::time::timeout(wait, request).await {
        Ok(Ok(msg)) => Some(serde_json::from_slice(&msg.payload).unwrap()),
        _ => None,
    }
}

fn invite(n: u32) -> Value {
    json!({"actor": "xuan", "resource_id": "conf", "invitee": "fang", "invite_id": format!("i{n}"),
        "command_id": format!("create-i{n}")})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_answers_only_what_jetstream_holds() {
    let bus = Bus::start_with(|c| c.durability = Durability::Replicated).await;
    let made = bus
        .ok(
            "RegisterResource",
            json!({"actor": "xuan", "resource_id": "conf", "kind": "conference", "name": "C"}),
        )
        .await;
    let position = made.position.flatten().unwrap();
    assert!(
        in_stream(&bus.client).await >= position,
        "answered before JetStream had it"
    );

    max_message_size(&bus.client, 16).await;
    let asked = within(&bus, "CreateInvite", &invite(1), Duration::from_secs(3)).await;
    assert!(asked.is_none(), "answered while JetStream refuses: {asked:?}");
    assert_eq!(bus.head(), position + 1, "decided and in the local log all the same");
    assert_eq!(in_stream(&bus.client).await, position);

    // JetStream takes messages again: the relay catches up, and the retry (same command_id)
    // is answered with the first decision, now that JetStream holds it.
    max_message_size(&bus.client, -1).await;
    let again = within(&bus, "CreateInvite", &invite(1), Duration::from_secs(20))
        .await
        .expect("answered once JetStream has it");
    assert!(again.ok, "{again:?}");
    assert_eq!(again.position, Some(Some(position + 1)));
    assert!(in_stream(&bus.client).await > position);
    assert_eq!(bus.head(), position + 1, "decided once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_answers_from_the_log_alone() {
    let bus = Bus::start().await;
    bus.ok(
        "RegisterResource",
        json!({"actor": "xuan", "resource_id": "conf", "kind": "conference", "name": "C"}),
    )
    .await;
    max_message_size(&bus.client, 16).await;
    let asked = within(&bus, "CreateInvite", &invite(1), Duration::from_secs(3)).await;
    let reply = asked.expect("answered from the local log");
    assert!(reply.ok, "{reply:?}");
    assert!(in_stream(&bus.client).await < reply.position.flatten().unwrap());
}

/// A batch stores how far the relay had published before it; once commands stop coming, the
/// writer stores the rest by itself within a second or two, not only at a clean stop: a
/// standby that finds the stream short after a crash keeps everything up to this checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_writer_keeps_the_relays_checkpoint_current() {
    let bus = Bus::start_with(|c| c.durability = Durability::Replicated).await;
    bus.ok(
        "RegisterResource",
        json!({"actor": "xuan", "resource_id": "conf", "kind": "conference", "name": "C"}),
    )
    .await;
    for n in 1..=3 {
        bus.ok("CreateInvite", invite(n)).await;
    }
    settled(&bus).await;
    // Then one more command, and a flood of commands refused by their decision (no such
    // resource) from 8 requesters: batches that append nothing, which the writer's wake-up to
    // store the checkpoint, a second after the relay moves, lands among.
    bus.ok("CreateInvite", invite(4)).await;
    let until = std::time::Instant::now() + Duration::from_millis(2500);
    let flood: Vec<_> = (0..8)
        .map(|w| {
            let client = bus.client.clone();
            tokio::spawn(async move {
                let mut n = 0;
                while std::time::Instant::now() < until {
                    n += 1;
                    let body = json!({"actor": "xuan", "resource_id": "nowhere", "invitee": "fang",
                        "invite_id": format!("x{w}-{n}"), "command_id": format!("x{w}-{n}")});
                    let subject = Subjects::default().command("CreateInvite");
                    let reply = client.request(subject, body.to_string().into()).await.unwrap();
                    let reply: invitebus_events::Reply = serde_json::from_slice(&reply.payload).unwrap();
                    assert!(!reply.ok, "refused: {reply:?}");
                }
            })
        })
        .collect();
    for f in flood {
        f.await.unwrap();
    }
    settled(&bus).await;
}

/// Waits until the log's relay checkpoint is its head (replicated: all of it is in the stream).
async fn settled(bus: &Bus) {
    let head = bus.head();
    assert_eq!(in_stream(&bus.client).await, head, "replicated: answered once stored");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stored = bus.reader().checkpoint(invitebus_eventlog::RELAY_CHECKPOINT).unwrap();
        if stored == head {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the relay's checkpoint stayed at {stored} of {head}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
