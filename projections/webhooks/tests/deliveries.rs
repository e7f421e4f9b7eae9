//! Webhooks over a real nats-server, delivered to a real HTTP receiver on 127.0.0.1: every
//! matching event once, in order, signed; retried after failures; everything after a receiver
//! that was down comes back; a failing endpoint is marked and a replay starts it again; a
//! resource owner's webhook gets that resource's events only; loopback targets are refused
//! unless allowed.

use invitebus_testkit::receiver::{Got, Receiver};
use invitebus_testkit::Bus;
use invitebus_webhooks::sign;
use invitebus_webhooks::worker::DeliverySettings;
use invitebus_webhooks::{WebhooksConfig, WebhooksService};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;

const SECRET: &str = "whsec_test_0123456789";

/// Quick retries for tests.
fn quick(max_attempts: u32) -> DeliverySettings {
    DeliverySettings {
        max_attempts,
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(300),
        timeout: Duration::from_secs(5),
        allow_private: true,
        allow_hosts: vec![],
    }
}

async fn stack(delivery: DeliverySettings) -> (Bus, WebhooksService) {
    let bus = Bus::start_with(|c| c.webhooks.allow_private = true).await;
    let service = webhooks(&bus, delivery).await;
    bus.ok("UpsertUser", json!({"actor":"xuan","user_id":"xuan","name":"Xuan"}))
        .await;
    bus.ok("UpsertUser", json!({"actor":"fang","user_id":"fang","name":"Fang"}))
        .await;
    bus.ok(
        "RegisterResource",
        json!({"actor":"xuan","resource_id":"conf","kind":"conference","name":"RustConf"}),
    )
    .await;
    (bus, service)
}

async fn webhooks(bus: &Bus, delivery: DeliverySettings) -> WebhooksService {
    let mut config = WebhooksConfig::new(bus.path("webhooks.db"));
    config.subjects = bus.subjects.clone();
    config.delivery = delivery;
    WebhooksService::start(bus.client.clone(), config).await.unwrap()
}

async fn register(bus: &Bus, id: &str, url: &str, events: Value, resource: Option<&str>) -> u64 {
    let (actor, roles) = match resource {
        Some(_) => ("xuan", json!([])),
        None => ("root", json!(["admin"])),
    };
    let mut body = json!({"actor":actor,"roles":roles,"webhook_id":id,"url":url,"events":events,"secret":SECRET});
    if let Some(r) = resource {
        body["resource_id"] = json!(r);
    }
    bus.ok("RegisterWebhook", body).await.position().unwrap()
}

/// Invites `u-<invite>` to `conf` as `invite` and has them accept: InviteCreated,
/// InviteAccepted, MemberJoined; the last position.
async fn invite_and_accept(bus: &Bus, invite: &str) -> u64 {
    let invitee = format!("u-{invite}");
    bus.ok(
        "CreateInvite",
        json!({"actor":"xuan","resource_id":"conf","invitee":invitee,"invite_id":invite}),
    )
    .await;
    bus.ok("AcceptInvite", json!({"actor":invitee,"invite_id":invite}))
        .await
        .position()
        .unwrap()
}

/// Waits until `check` holds, up to `secs` seconds.
async fn until(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..secs * 20 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within {secs} s: {what}");
}

async fn status(bus: &Bus, id: &str) -> Value {
    let r = bus
        .q("webhooks", json!({"actor":"root","roles":["admin"],"webhook_id":id}))
        .await;
    r["items"][0].clone()
}

/// Every delivery carries the envelope of its position, signed with the secret.
fn check_signed(got: &[Got]) {
    let now = chrono::Utc::now().timestamp();
    for g in got {
        assert!(
            sign::verify(SECRET, &g.signature, &g.body, now, 300),
            "signature of {}",
            g.position
        );
        let env: Value = serde_json::from_slice(&g.body).unwrap();
        assert_eq!(env["position"], g.position);
        assert_eq!(env["type"], g.event_type.as_str());
        assert!(!String::from_utf8_lossy(&g.body).contains(SECRET));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_fails_twice_gets_every_event_once_in_order_and_signed() {
    let (bus, _service) = stack(quick(10)).await;
    let receiver = Receiver::start().await;
    receiver.behaviour.fail.store(2, Ordering::SeqCst);
    let from = register(&bus, "all", &receiver.url(), json!(["*"]), None).await;
    let mut last = 0;
    for i in 0..5 {
        last = invite_and_accept(&bus, &format!("inv{i}")).await;
    }
    let expected: Vec<u64> = (from + 1..=last).collect();
    until(20, "every event delivered", || receiver.positions("all") == expected).await;
    let got = receiver.got();
    check_signed(&got);
    assert_eq!(got[0].event_type, "InviteCreated");
    let s = status(&bus, "all").await;
    assert_eq!(s["status"], "active");
    assert_eq!(s["delivered_position"], last);
    assert_eq!(s["delivered"], expected.len());
    assert_eq!(s["failures"], 0);
    assert!(s["last_error"].as_str().unwrap().starts_with("HTTP 500"), "{s}");
    assert!(s.get("secret").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_a_while_gets_everything_after_it_returns() {
    let (bus, _service) = stack(quick(50)).await;
    let receiver = Receiver::start().await;
    let from = register(
        &bus,
        "w",
        &receiver.url(),
        json!(["InviteCreated", "InviteAccepted"]),
        None,
    )
    .await;
    let (addr, got) = receiver.down().await;
    let mut last = 0;
    for i in 0..3 {
        last = invite_and_accept(&bus, &format!("inv{i}")).await;
    }
    let b = &bus;
    for _ in 0..100 {
        if status(b, "w").await["failures"].as_u64().unwrap_or(0) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = status(&bus, "w").await;
    assert!(s["failures"].as_u64().unwrap() >= 2, "{s}");
    assert!(s["last_error"].as_str().unwrap().contains("request failed"), "{s}");
    assert_eq!(s["status"], "active");
    let receiver = Receiver::on(addr, got).await;
    // Created and accepted of each invite; MemberJoined is not named.
    until(20, "everything after the receiver came back", || {
        receiver.positions("w").len() == 6
    })
    .await;
    let got = receiver.got();
    let types: Vec<&str> = got.iter().map(|g| g.event_type.as_str()).collect();
    assert_eq!(types, ["InviteCreated", "InviteAccepted"].repeat(3));
    assert!(got.windows(2).all(|w| w[0].position < w[1].position));
    assert!(got[0].position > from && got[5].position < last);
    check_signed(&got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_is_marked_and_a_replay_delivers_again_from_its_position() {
    let (bus, _service) = stack(quick(3)).await;
    let receiver = Receiver::start().await;
    receiver.behaviour.fail.store(3, Ordering::SeqCst);
    let from = register(&bus, "w", &receiver.url(), json!(["*"]), None).await;
    let first = invite_and_accept(&bus, "inv0").await;
    let b = &bus;
    for _ in 0..200 {
        if status(b, "w").await["status"] == "failing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = status(&bus, "w").await;
    assert_eq!(s["status"], "failing", "{s}");
    assert_eq!(s["failures"], 3);
    assert_eq!(s["position"], from, "nothing delivered: {s}");
    // Failing: nothing more is tried.
    let last = invite_and_accept(&bus, "inv1").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(receiver.got().is_empty());
    let replayed = bus
        .ok(
            "ReplayWebhook",
            json!({"actor":"root","roles":["admin"],"webhook_id":"w","from_position":from + 1}),
        )
        .await
        .position()
        .unwrap();
    // `*` takes the replay's own event too.
    assert_eq!(replayed, last + 1);
    let expected: Vec<u64> = (from + 1..=replayed).collect();
    until(20, "the replay delivers", || receiver.positions("w") == expected).await;
    let s = status(&bus, "w").await;
    assert_eq!(
        (s["status"].as_str(), s["failures"].as_u64()),
        (Some("active"), Some(0)),
        "{s}"
    );
    // Once more, from an earlier position: delivered again, in order.
    let before = receiver.got().len();
    let second = bus
        .ok(
            "ReplayWebhook",
            json!({"actor":"root","roles":["admin"],"webhook_id":"w","from_position":first}),
        )
        .await
        .position()
        .unwrap();
    let expected: Vec<u64> = (first..=second).collect();
    until(20, "the second replay delivers", || {
        receiver
            .got()
            .get(before..)
            .map(|g| g.iter().map(|g| g.position).collect::<Vec<_>>())
            == Some(expected.clone())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owners_webhook_gets_its_resources_events_only_and_stops_when_deleted() {
    let (bus, _service) = stack(quick(10)).await;
    bus.ok(
        "RegisterResource",
        json!({"actor":"fang","resource_id":"other","kind":"conference","name":"Other"}),
    )
    .await;
    let receiver = Receiver::start().await;
    register(&bus, "mine", &receiver.url(), json!(["*"]), Some("conf")).await;
    bus.ok(
        "CreateInvite",
        json!({"actor":"fang","resource_id":"other","invitee":"xuan","invite_id":"elsewhere"}),
    )
    .await;
    let last = invite_and_accept(&bus, "inv0").await;
    until(20, "conf's events", || receiver.positions("mine").last() == Some(&last)).await;
    let got = receiver.got();
    assert_eq!(got.len(), 3, "InviteCreated, InviteAccepted, MemberJoined of conf only");
    for g in &got {
        let env: Value = serde_json::from_slice(&g.body).unwrap();
        assert_eq!(env["data"]["resource_id"], "conf");
    }
    // Others see only their own webhooks; an admin sees all.
    let theirs = bus.q("webhooks", json!({"actor":"fang"})).await;
    assert_eq!(theirs["items"].as_array().unwrap().len(), 0);
    let mine = bus.q("webhooks", json!({"actor":"xuan"})).await;
    assert_eq!(mine["items"][0]["webhook_id"], "mine");
    bus.ok("DeleteWebhook", json!({"actor":"xuan","webhook_id":"mine"}))
        .await;
    invite_and_accept(&bus, "inv1").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(receiver.got().len(), 3, "nothing after the delete");
    assert_eq!(status(&bus, "mine").await["status"], "deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_targets_are_refused_unless_allowed() {
    // The command service refuses an address it can read in the URL at once …
    let bus = Bus::start().await;
    let r = bus
        .send(
            "RegisterWebhook",
            json!({"actor":"root","roles":["admin"],"webhook_id":"w","url":"http://127.0.0.1:9/in","events":["*"],"secret":SECRET}),
        )
        .await;
    let e = r.into_result().unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.field.as_deref()),
        ("invalid_field", Some("url")),
        "{e}"
    );
    assert!(e.message.contains("INVITEBUS_WEBHOOK_ALLOW_PRIVATE"), "{e}");
    // … and delivery refuses a name that resolves to one, with the reason in the query.
    let receiver = Receiver::start().await;
    let service = webhooks(
        &bus,
        DeliverySettings {
            allow_private: false,
            ..quick(2)
        },
    )
    .await;
    let url = format!("http://localhost:{}/in", receiver.addr.port());
    bus.ok(
        "RegisterWebhook",
        json!({"actor":"root","roles":["admin"],"webhook_id":"w","url":url,"events":["*"],"secret":SECRET}),
    )
    .await;
    bus.ok("UpsertUser", json!({"actor":"xuan","user_id":"xuan","name":"Xuan"}))
        .await;
    let b = &bus;
    for _ in 0..100 {
        if status(b, "w").await["status"] == "failing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = status(&bus, "w").await;
    assert_eq!(s["status"], "failing", "{s}");
    assert!(
        s["last_error"]
            .as_str()
            .unwrap()
            .contains("refused: localhost resolves to"),
        "{s}"
    );
    assert!(receiver.got().is_empty());
    service.shutdown().await;
}
