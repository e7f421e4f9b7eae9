//! Webhooks through `invitebus serve`: SIGKILLed in the middle of a delivery and started again,
//! it delivers every event and sends again at most the one that was in flight.

mod support;

use invitebus_natsrun::NatsServer;
use invitebus_testkit::receiver::Receiver;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::{connect, healthy, send, Serve};

const EVENTS: u64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serve_killed_mid_delivery_sends_again_at_most_the_one_in_flight() {
    let nats = NatsServer::start_temp().unwrap();
    let data = tempfile::tempdir().unwrap();
    let env = [("INVITEBUS_WEBHOOK_ALLOW_PRIVATE", "true")];
    let mut serve = Serve::start_role_with(&nats.url(), data.path(), "all", &env);
    let client = connect(&nats.url()).await;
    healthy(&client).await;
    let receiver = Receiver::start().await;
    // Slow enough that the kill lands with a delivery in flight.
    receiver.behaviour.delay_ms.store(150, Ordering::SeqCst);
    let ok = |r: Result<invitebus_events::Reply, String>| {
        let r = r.expect("an answer");
        assert!(r.ok, "{r:?}");
        r.position().unwrap()
    };
    let from = ok(send(
        &client,
        "RegisterWebhook",
        &json!({"actor":"root","roles":["admin"],"webhook_id":"w","url":receiver.url(),"events":["UserUpserted"],
            "secret":"whsec_0123456789abcdef"}),
    )
    .await);
    let mut last = 0;
    for i in 0..EVENTS {
        last = ok(send(
            &client,
            "UpsertUser",
            &json!({"actor":format!("u{i}"),"user_id":format!("u{i}"),"name":"U"}),
        )
        .await);
    }
    assert_eq!(last, from + EVENTS);
    for _ in 0..200 {
        if receiver.got().len() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(receiver.got().len() >= 5, "deliveries started");
    serve.kill();
    let at_kill = receiver.got().len();
    assert!(at_kill < EVENTS as usize, "the kill came before the end ({at_kill})");
    receiver.behaviour.delay_ms.store(0, Ordering::SeqCst);
    let _serve = Serve::start_role_with(&nats.url(), data.path(), "all", &env);
    let expected: Vec<u64> = (from + 1..=last).collect();
    for _ in 0..600 {
        let mut seen = receiver.positions("w");
        seen.dedup();
        if seen == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = receiver.positions("w");
    let mut unique = got.clone();
    unique.dedup();
    assert_eq!(unique, expected, "every event, in order: {got:?}");
    assert!(
        got.len() - unique.len() <= 1,
        "at most the one in flight again: {got:?}"
    );
    let w = healthy(&client).await;
    assert!(
        w["projections"]["webhooks"].as_u64().is_some(),
        "health knows the role: {w}"
    );
    let status: Value = {
        let r = send(
            &client,
            "ReplayWebhook",
            &json!({"actor":"nobody","webhook_id":"w","from_position":1}),
        )
        .await;
        serde_json::to_value(r.unwrap()).unwrap()
    };
    assert_eq!(status["error"]["code"], "forbidden");
}
