//! What a client can break, and what the bus can do to us: bad input, restarts, NATS outages.

mod bus;

use bus::Bus;
use invitebus_commands::CommandService;
use invitebus_events::ErrorCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_its_typed_error_and_appends_nothing() {
    let bus = Bus::start().await;
    bus.ok(
        "RegisterResource",
        json!({"actor":"xuan","resource_id":"conf","kind":"conference","name":"C"}),
    )
    .await;
    let head = bus.head();
    let cases: Vec<(&str, Vec<u8>, ErrorCode, Option<&str>)> = vec![
        ("CreateInvite", b"not json".to_vec(), ErrorCode::InvalidCommand, None),
        ("CreateInvite", b"[1,2]".to_vec(), ErrorCode::InvalidCommand, None),
        ("CreateInvite", b"\"text\"".to_vec(), ErrorCode::InvalidCommand, None),
        (
            "Explode",
            b"{\"actor\":\"xuan\"}".to_vec(),
            ErrorCode::InvalidCommand,
            None,
        ),
        (
            "CreateInvite",
            br#"{"resource_id":"conf","invitee":"fang"}"#.to_vec(),
            ErrorCode::Unauthenticated,
            Some("actor"),
        ),
        (
            "CreateInvite",
            br#"{"actor":"xuan","invitee":"fang"}"#.to_vec(),
            ErrorCode::MissingField,
            Some("resource_id"),
        ),
        (
            "CreateInvite",
            br#"{"actor":"xuan","resource_id":7,"invitee":"fang"}"#.to_vec(),
            ErrorCode::InvalidField,
            Some("resource_id"),
        ),
        (
            "CreateInvite",
            br#"{"actor":"xuan","resource_id":"conf","invitee":"fang","expires_in":"soon"}"#.to_vec(),
            ErrorCode::InvalidField,
            Some("expires_in"),
        ),
        (
            "CreateInvite",
            br#"{"actor":"xuan","resource_id":"conf","invitees":"fang"}"#.to_vec(),
            ErrorCode::InvalidField,
            Some("invitees"),
        ),
        (
            "AcceptInvite",
            br#"{"actor":"fang","invite_id":"a.b"}"#.to_vec(),
            ErrorCode::InvalidField,
            Some("invite_id"),
        ),
        (
            "AcceptInvite",
            br#"{"actor":"fang","invite_id":"a*"}"#.to_vec(),
            ErrorCode::InvalidField,
            Some("invite_id"),
        ),
        (
            "AcceptInvite",
            br#"{"actor":"fang","invite_id":">"}"#.to_vec(),
            ErrorCode::InvalidField,
            Some("invite_id"),
        ),
        (
            "AcceptInvite",
            br#"{"actor":"fang","invite_id":"a b"}"#.to_vec(),
            ErrorCode::InvalidField,
            Some("invite_id"),
        ),
        (
            "AcceptInvite",
            br#"{"actor":"fa ng","invite_id":"ab"}"#.to_vec(),
            ErrorCode::InvalidField,
            Some("actor"),
        ),
        (
            "AcceptInvite",
            format!(r#"{{"actor":"fang","invite_id":"{}"}}"#, "a".repeat(65)).into_bytes(),
            ErrorCode::InvalidField,
            Some("invite_id"),
        ),
        (
            "CreateInvite",
            format!(
                r#"{{"actor":"xuan","resource_id":"conf","invitees":["{}"]}}"#,
                "b".repeat(65)
            )
            .into_bytes(),
            ErrorCode::InvalidField,
            Some("invitees[0]"),
        ),
    ];
    for (name, body, code, field) in cases {
        let shown = String::from_utf8_lossy(&body).chars().take(80).collect::<String>();
        let reply = bus.send_raw(name, body).await;
        let err = reply.error.unwrap_or_else(|| panic!("{name} {shown} was accepted"));
        assert_eq!(err.code, code, "{name} {shown}: {}", err.message);
        if let Some(field) = field {
            assert_eq!(err.field.as_deref(), Some(field), "{name} {shown}");
        }
    }
    // A body of (almost) 1 MiB, as large as NATS lets through.
    let huge = format!(
        r#"{{"actor":"xuan","resource_id":"conf","invitee":"fang","message":"{}"}}"#,
        "x".repeat(1_040_000)
    );
    let reply = bus.send_raw("CreateInvite", huge.into_bytes()).await;
    assert_eq!(reply.error.unwrap().code, ErrorCode::InvalidCommand);

    assert_eq!(bus.head(), head, "nothing was appended");
    // Still answering.
    bus.ok("UpsertUser", json!({"actor":"fang","user_id":"fang","name":"Fang"}))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedupe_and_state_survive_a_restart_of_the_service() {
    let mut bus = Bus::start().await;
    bus.ok(
        "RegisterResource",
        json!({"actor":"xuan","resource_id":"conf","kind":"conference","name":"C"}),
    )
    .await;
    let body = json!({"actor":"xuan","resource_id":"conf","invitee":"fang","invite_id":"r","command_id":"k1"});
    let first = bus.ok("CreateInvite", body.clone()).await;
    bus.service.take().unwrap().shutdown().await;
    let service = CommandService::start(bus.client.clone(), bus::config(&bus.log_path))
        .await
        .unwrap();
    bus.service = Some(service);
    let head = bus.head();
    assert_eq!(bus.ok("CreateInvite", body).await, first);
    assert_eq!(bus.head(), head);
    // State is rebuilt from the log: the invite exists and can be answered once.
    bus.ok("AcceptInvite", json!({"actor":"fang","invite_id":"r"})).await;
    let again = bus.send("AcceptInvite", json!({"actor":"fang","invite_id":"r"})).await;
    assert_eq!(again.error.unwrap().code, ErrorCode::AlreadyAccepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_resumes_after_a_nats_outage_and_publishes_everything_once() {
    let mut bus = Bus::start().await;
    bus.ok(
        "RegisterResource",
        json!({"actor":"xuan","resource_id":"conf","kind":"conference","name":"C"}),
    )
    .await;
    bus.relayed(bus.head()).await;

    bus.nats.stop();
    // Commands still reach the writer in-process while NATS is down; they commit to SQLite.
    let writer = bus.service().writer();
    for i in 0..20 {
        let req = invitebus_events::CommandRequest::decode(
            "UpsertUser",
            json!({"actor":format!("u{i}"),"user_id":format!("u{i}"),"name":"U"})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert!(writer.submit(req).await.ok);
    }
    let head = bus.head();
    bus.nats.restart().unwrap();
    bus.relayed(head).await;

    let js = bus.jetstream_events().await;
    assert_eq!(js.len() as u64, head, "every position once, none twice");
    for (seq, msg_id, env) in &js {
        assert_eq!(*seq, env.position);
        assert_eq!(msg_id, &env.position.to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_limits_are_decided_from_events_and_survive_a_restart() {
    let mut bus = Bus::start_with(|c| c.exports_enabled = true).await;
    let request = json!({"actor":"root","roles":["admin"]});
    bus.ok("RequestExport", request.clone()).await;
    bus.service.take().unwrap().shutdown().await;
    let mut config = bus::config(&bus.log_path);
    config.exports_enabled = true;
    bus.service = Some(CommandService::start(bus.client.clone(), config).await.unwrap());
    let again = bus.send("RequestExport", request).await;
    assert_eq!(again.error.unwrap().code, ErrorCode::ExportInProgress);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_export_is_refused_while_no_exporter_runs() {
    let bus = Bus::start().await;
    let reply = bus
        .send("RequestExport", json!({"actor":"root","roles":["admin"]}))
        .await;
    assert_eq!(reply.error.unwrap().code, ErrorCode::InvalidCommand);
    assert_eq!(bus.head(), 0);
}
