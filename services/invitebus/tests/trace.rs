//! One action followed across the roles: a W3C `traceparent` sent with a command is kept with
//! its events, published as a header with each of them, and carried into the notifications
//! they cause.

mod support;

use invitebus_natsrun::NatsServer;
use serde_json::{json, Value};
use std::time::Duration;
use support::{connect, healthy, relayed_all, send, Serve};

const TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_reaches_the_events_their_headers_and_the_notifications() {
    let nats = NatsServer::start_temp().unwrap();
    let data = tempfile::tempdir().unwrap();
    let _serve = Serve::start(&nats.url(), data.path());
    let client = connect(&nats.url()).await;
    healthy(&client).await;
    let conf = json!({"actor":"xuan","resource_id":"conf","kind":"conference","name":"C"});
    assert!(send(&client, "RegisterResource", &conf).await.unwrap().ok);

    let mut headers = async_nats::HeaderMap::new();
    headers.insert("traceparent", TRACE);
    let body = json!({"actor":"xuan","resource_id":"conf","invitee":"fang","invite_id":"traced"});
    let msg = client
        .request_with_headers("invites.cmd.CreateInvite", headers, body.to_string().into())
        .await
        .unwrap();
    let reply: invitebus_events::Reply = serde_json::from_slice(&msg.payload).unwrap();
    let position = reply.position().expect("appended");
    relayed_all(&client).await;

    // In the event's metadata, with the trace id as correlation id (none was given).
    let reader = invitebus_eventlog::LogReader::open(data.path().join("events.db")).unwrap();
    let event = reader.read_from(position - 1, 1).unwrap().remove(0);
    assert_eq!(event.traceparent.as_deref(), Some(TRACE));
    assert_eq!(
        event.correlation_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert!(event.hash_is_valid());

    // On the JetStream message: header and envelope.
    let js = async_nats::jetstream::new(client.clone());
    let stream = js.get_stream("INVITES_EVENTS").await.unwrap();
    let stored = stream.get_raw_message(position).await.unwrap();
    assert_eq!(stored.headers.get("traceparent").map(|v| v.as_str()), Some(TRACE));
    let envelope: Value = serde_json::from_slice(&stored.payload).unwrap();
    assert_eq!(envelope["traceparent"], TRACE);

    // On the notification it produced.
    let notify = js.get_stream("INVITES_NOTIFY").await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let note = loop {
        if let Ok(m) = notify.get_last_raw_message_by_subject("invites.notify.fang").await {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "no notification for fang");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(note.headers.get("traceparent").map(|v| v.as_str()), Some(TRACE));
    let body: Value = serde_json::from_slice(&note.payload).unwrap();
    assert_eq!(body["traceparent"], TRACE);
    assert_eq!(body["invite_id"], "traced");

    // A command without one carries none, and a malformed one is ignored.
    let mut bad = async_nats::HeaderMap::new();
    bad.insert("traceparent", "not-a-trace");
    let body = json!({"actor":"xuan","resource_id":"conf","invitee":"ann","invite_id":"plain"});
    let msg = client
        .request_with_headers("invites.cmd.CreateInvite", bad, body.to_string().into())
        .await
        .unwrap();
    let reply: invitebus_events::Reply = serde_json::from_slice(&msg.payload).unwrap();
    let plain = reader.read_from(reply.position().unwrap() - 1, 1).unwrap().remove(0);
    assert_eq!((plain.traceparent, plain.correlation_id), (None, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_on_an_http_command_reaches_its_events_and_notification() {
    let gw = support::gateway::Gateway::start().await;
    let bearer = format!("Bearer {}", support::gateway::Gateway::token("xuan"));
    let conf = json!({"resource_id":"conf","kind":"conference","name":"C"}).to_string();
    let headers = [("Authorization", bearer.as_str())];
    assert_eq!(
        support::http::post(gw.addr, "/v1/commands/RegisterResource", &headers, &conf)
            .await
            .status,
        200
    );
    let traced = [("Authorization", bearer.as_str()), ("traceparent", TRACE)];
    let body = json!({"resource_id":"conf","invitee":"fang","invite_id":"viahttp"}).to_string();
    let a = support::http::post(gw.addr, "/v1/commands/CreateInvite", &traced, &body).await;
    assert_eq!(a.status, 200);
    let position = a.json()["position"].as_u64().unwrap();
    relayed_all(&gw.client).await;
    let js = async_nats::jetstream::new(gw.client.clone());
    let stored = js
        .get_stream("INVITES_EVENTS")
        .await
        .unwrap()
        .get_raw_message(position)
        .await
        .unwrap();
    assert_eq!(stored.headers.get("traceparent").map(|v| v.as_str()), Some(TRACE));
    let envelope: Value = serde_json::from_slice(&stored.payload).unwrap();
    assert_eq!(envelope["traceparent"], TRACE, "in the event's metadata");
    let notify = js.get_stream("INVITES_NOTIFY").await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(m) = notify.get_last_raw_message_by_subject("invites.notify.fang").await {
            assert_eq!(m.headers.get("traceparent").map(|v| v.as_str()), Some(TRACE));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no notification for fang");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
