//! Issue 11's holes seen from outside, against `invitebus serve` (gateway, services, its own
//! nats-server): `token` and `serve` with reserved actors and weak secrets, WebSocket frame
//! limits, seed 004's parameters named in errors, and an OpenAPI document a schema-driven tester
//! can check answers against.

mod support;

use futures::{SinkExt, StreamExt};
use invitebus_natsrun::NatsServer;
use serde_json::Value;
use std::time::Duration;
use support::gateway::Gateway;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

#[test]
fn token_refuses_reserved_actors() {
    for user in ["system", "SYSTEM"] {
        let out = std::process::Command::new(support::BIN)
            .args(["token", "--user", user])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{user}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(out.stdout.is_empty(), "no token printed");
        assert!(String::from_utf8_lossy(&out.stderr).contains("reserved"));
    }
}

/// `serve --role gateway` on every interface with `secret`; whether it is still running after 2 s.
fn serves_beyond_loopback(nats: &NatsServer, secret: &str) -> (bool, String) {
    let data = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(support::BIN)
        .args([
            "serve",
            "--role",
            "gateway",
            "--http",
            "0.0.0.0:0",
            "--nats",
            &nats.url(),
            "--data",
        ])
        .arg(data.path())
        .args(["--jwt-secret", secret])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    (running, String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn serve_beyond_loopback_wants_a_secret_of_32_bytes() {
    let nats = NatsServer::start_temp().unwrap();
    for weak in ["", "a", &"k".repeat(31)] {
        let (running, stderr) = serves_beyond_loopback(&nats, weak);
        assert!(!running, "secret {weak:?} was taken");
        assert!(stderr.contains("INVITEBUS_JWT_SECRET"), "{stderr}");
    }
    let (running, stderr) = serves_beyond_loopback(&nats, &"k".repeat(32));
    assert!(running, "a 32-byte secret is enough: {stderr}");
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn socket(gw: &Gateway, user: &str) -> Socket {
    let url = format!("ws://{}/ws?accessToken={}", gw.addr, Gateway::token(user));
    tokio_tungstenite::connect_async(url).await.expect("the socket opens").0
}

/// The next frame that is not a notification (a reply, an error or a close), within 10 s.
async fn next(ws: &mut Socket) -> Option<Message> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")?;
        match msg {
            Ok(Message::Text(t)) if serde_json::from_str::<Value>(t.as_str()).unwrap()["op"] == "notify" => continue,
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(m) => return Some(m),
            Err(_) => return None,
        }
    }
}

fn json_of(m: Option<Message>) -> Value {
    match m {
        Some(Message::Text(t)) => serde_json::from_str(t.as_str()).unwrap(),
        other => panic!("a text frame, not {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_frames_are_limited_and_binary_ones_answered() {
    let gw = Gateway::start().await;
    let mut ws = socket(&gw, "cs1").await;
    // A binary frame gets an error frame, before the ping sent after it is answered.
    ws.send(Message::Binary(b"{\"op\":\"ping\"}".to_vec().into()))
        .await
        .unwrap();
    ws.send(Message::Text(r#"{"op":"ping"}"#.into())).await.unwrap();
    let answer = json_of(next(&mut ws).await);
    assert_eq!(
        (answer["op"].as_str(), answer["code"].as_u64()),
        (Some("error"), Some(414)),
        "{answer}"
    );
    assert_eq!(answer["error"]["code"], "invalid_command");
    assert_eq!(json_of(next(&mut ws).await)["data"], "pong");

    // Up to 64 KiB is read; one byte more closes the socket with 1009.
    let frame = |size: usize| {
        let head = r#"{"op":"ping","pad":""#;
        format!("{head}{}\"}}", "x".repeat(size - head.len() - 2))
    };
    ws.send(Message::Text(frame(64 * 1024).into())).await.unwrap();
    assert_eq!(json_of(next(&mut ws).await)["data"], "pong");
    ws.send(Message::Text(frame(64 * 1024 + 1).into())).await.unwrap();
    match next(&mut ws).await {
        Some(Message::Close(Some(close))) => assert_eq!(close.code, CloseCode::Size, "{close:?}"),
        other => panic!("a close frame with 1009, not {other:?}"),
    }

    // A frame far over the limit (16 MiB was the old one) is refused the same way.
    let mut ws = socket(&gw, "cs1").await;
    let _ = ws.send(Message::Text("x".repeat(17 << 20).into())).await;
    match next(&mut ws).await {
        Some(Message::Close(Some(close))) => assert_eq!(close.code, CloseCode::Size, "{close:?}"),
        other => panic!("a close frame with 1009, not {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_004_errors_name_the_parameter() {
    let gw = Gateway::start().await;
    let boss = Gateway::admin_token("boss");
    let before = gw.head().await;
    for (query, field) in [
        ("approve_status=bogus", "approve_status"),
        ("status=bogus", "status"),
        ("exhibition_id=a.b", "exhibition_id"),
        ("page=0", "page"),
        ("page=99999999999", "page"),
        ("per_page=1000", "per_page"),
        ("created_at_gtq=yesterday", "created_at_gtq"),
        ("export_format=pdf", "export_format"),
        ("export_format=xlsx&approve_status=bogus", "approve_status"),
    ] {
        let a = gw
            .get(&format!("/api/admin/invitations?{query}"), &[("ACCESS-TOKEN", &boss)])
            .await;
        let body = a.json();
        assert_eq!(
            (a.status, body["reason"].as_str(), body["field"].as_str()),
            (400, Some("invalid_field"), Some(field)),
            "{query}: {body}"
        );
    }
    assert_eq!(gw.head().await, before, "no export was requested");
    // Empty parameters are no filter (seed 004's clients send them), `export_format` too.
    let a = gw
        .get(
            "/api/admin/invitations?exhibition_id=&export_format=&page=",
            &[("ACCESS-TOKEN", &boss)],
        )
        .await;
    assert_eq!((a.status, a.json()["code"].as_i64()), (200, Some(0)), "{}", a.json());
    assert_eq!(gw.head().await, before, "a list, not an export");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_schemathesis_found_seed_003_numbers_and_plain_http_on_sockets() {
    let gw = Gateway::start().await;
    let xuan = Gateway::token("xuan");
    gw.command(
        &xuan,
        "RegisterResource",
        serde_json::json!({"resource_id": "g1", "kind": "channel", "name": "g"}),
    )
    .await;
    let bearer = format!("Bearer {xuan}");
    // JSON has one kind of number: 86400.0 is an integer (JSON Schema agrees).
    let a = gw
        .post(
            "/channels/g1/invites",
            &[("Authorization", &bearer)],
            r#"{"max_age": 86400.0, "max_uses": 5.0}"#,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.json());
    assert_eq!(
        (a.json()["max_age"].as_u64(), a.json()["max_uses"].as_u64()),
        (Some(86400), Some(5))
    );
    let a = gw
        .post(
            "/channels/g1/invites",
            &[("Authorization", &bearer)],
            r#"{"max_age": 604801}"#,
        )
        .await;
    assert_eq!(
        (a.status, a.json()["field"].as_str()),
        (400, Some("max_age")),
        "{}",
        a.json()
    );
    // A plain HTTP request to a socket route: 426 in the route's envelope, not axum's text.
    let a = gw.get("/ws", &[("Authorization", &bearer)]).await;
    assert_eq!((a.status, a.header("content-type")), (426, Some("application/json")));
    assert_eq!(a.json()["error"]["code"], "invalid_command");
    let a = gw.get("/ws?after=null", &[("Authorization", &bearer)]).await;
    assert_eq!(
        (a.status, a.json()["error"]["field"].as_str()),
        (400, Some("after")),
        "{}",
        a.json()
    );
    let a = gw.get("/api/exports/x/ws", &[("Authorization", &bearer)]).await;
    assert_eq!(
        (a.status, a.header("content-type")),
        (404, Some("application/json")),
        "no such export"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_every_status_its_body_and_id_patterns() {
    let gw = Gateway::start().await;
    let doc = gw.get("/openapi.json", &[]).await.json();
    let mut operations = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            operations += 1;
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.contains_key("default"), "{method} {path}: no catch-all");
            let tag = op["tags"][0].as_str().unwrap_or_default();
            let enveloped = tag.starts_with("seed 000") || tag.starts_with("seed 001");
            if op.get("security").is_some() && !enveloped {
                assert!(
                    responses.contains_key("401"),
                    "{method} {path}: 401 documented: {responses:?}"
                );
                let limited = &responses
                    .get("429")
                    .unwrap_or_else(|| panic!("{method} {path}: 429 documented"));
                assert!(
                    limited["headers"].get("Retry-After").is_some(),
                    "{method} {path}: {limited}"
                );
            }
            if op.get("security").is_some() && enveloped {
                assert!(
                    responses["200"]["headers"].get("Retry-After").is_some(),
                    "{method} {path}"
                );
            }
            for (status, response) in responses {
                if status == "204" || status == "101" {
                    continue;
                }
                let content = response["content"].as_object();
                assert!(
                    content.is_some_and(|c| c.values().all(|m| m.get("schema").is_some())),
                    "{method} {path} {status}: a body with a schema: {response}"
                );
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "path" {
                    let schema = &p["schema"];
                    assert!(
                        schema.get("pattern").is_some() || schema.get("enum").is_some(),
                        "{method} {path}: parameter {} has a pattern: {p}",
                        p["name"]
                    );
                }
            }
        }
    }
    assert!(operations >= 23, "{operations}");
}
