//! What the routes never see, answered in each API's own shape (not the framework's plain text):
//! bodies over the limits, unknown paths and methods, paths the router cannot read, and upgrade
//! requests that are not WebSocket handshakes.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::gateway::Gateway;
use support::http::Answer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A request whose head declares `length` body bytes, of which only the first few are sent:
/// the answer the gateway gives without reading the rest.
async fn declared(gw: &Gateway, method: &str, path: &str, token: &str, length: usize) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nACCESS-TOKEN: {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{\"a\":\""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await;
    support::http::parse(&raw)
}

/// The shape of an answer: which API's envelope it is.
fn shape(json: &Value) -> &'static str {
    if json.get("ok") == Some(&Value::Bool(false)) && json["error"]["code"].is_string() {
        "native"
    } else if json.get("remark").is_some() && json["code"].is_number() {
        "seed 004"
    } else if json.get("data").is_some() && json["code"].is_number() {
        "seed 000"
    } else if json["status"].is_number() && json.get("message").is_some() {
        "seed 001"
    } else if json["code"].is_number() && json["error"]["code"].is_string() {
        "seed 002"
    } else if json["code"].is_string() && json.get("message").is_some() {
        "seed 003"
    } else {
        "none"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_frameworks_refusals_come_in_each_apis_shape() {
    let gw = Gateway::start().await;
    let token = Gateway::admin_token("boss");
    let bearer = format!("Bearer {token}");
    let auth: &[(&str, &str)] = &[("Authorization", &bearer), ("ACCESS-TOKEN", &token)];

    // Bodies over 1 MiB are refused before they are read; over 64 KiB by the routes: both in
    // the API's shape, saying the same limit.
    let huge = 2 * 1024 * 1024;
    let big = "x".repeat(70 * 1024);
    let bodies = [
        ("POST", "/v1/commands/RegisterResource", "native"),
        ("POST", "/api/invitation/received", "seed 000"),
        ("POST", "/openapi/workbench/meetinginvite/create", "seed 001"),
        ("POST", "/channels/ch1/invites", "seed 003"),
        ("PUT", "/api/admin/invitations/i1/approve", "seed 004"),
    ];
    for (method, path, api) in bodies {
        let answer = declared(&gw, method, path, &token, huge).await;
        let json = answer.json();
        assert_eq!(
            shape(&json),
            api,
            "{method} {path} over 1 MiB: {} {json}",
            answer.status
        );
        assert!(json.to_string().contains("over 65536 bytes"), "{path}: {json}");
        assert_eq!(answer.status, 413, "{path}: {json}");
        assert_eq!(answer.header("connection"), Some("close"), "{path}");
        let answer = gw.send(method, path, auth, &format!("{{\"a\":\"{big}\"}}")).await;
        let json = answer.json();
        assert_eq!(
            shape(&json),
            api,
            "{method} {path} over 64 KiB: {} {json}",
            answer.status
        );
        assert!(json.to_string().contains("over 65536 bytes"), "{path}: {json}");
    }
    let native = declared(&gw, "POST", "/v1/commands/RegisterResource", &token, huge).await;
    assert_eq!(native.json()["error"]["code"], "invalid_command");

    // Unknown paths and methods; paths the router cannot decode.
    let routes = [
        ("GET", "/v1/commands/RegisterResource", "native", 405),
        ("GET", "/v1/nothing-here", "native", 404),
        ("GET", "/api/invitation/received", "seed 000", 405),
        ("GET", "/openapi/workbench/meetinginvite/create", "seed 001", 405),
        ("GET", "/ws/deeper", "seed 002", 404),
        ("GET", "/invites/%FF%FE", "seed 003", 400),
        ("PATCH", "/invites/abc", "seed 003", 405),
        ("GET", "/api/exports/%FF", "seed 004", 400),
        ("GET", "/api/admin/nothing", "seed 004", 404),
    ];
    for (method, path, api, status) in routes {
        let answer = gw.send(method, path, auth, "").await;
        let json = answer.json();
        assert_eq!(shape(&json), api, "{method} {path}: {} {json}", answer.status);
        assert_eq!(answer.status, status, "{method} {path}: {json}");
        if status == 405 {
            assert!(answer.header("allow").is_some(), "{method} {path}: Allow");
        }
        assert!(
            answer
                .header("content-type")
                .unwrap_or_default()
                .starts_with("application/json"),
            "{method} {path}"
        );
    }

    // Upgrade requests that are not WebSocket handshakes: seed 002's and seed 004's own shape.
    let handshake: &[(&str, &str)] = &[
        ("Authorization", &bearer),
        ("ACCESS-TOKEN", &token),
        ("Upgrade", "websocket"),
        ("Connection", "upgrade"),
    ];
    let answer = gw.get(&format!("/ws?accessToken={token}"), handshake).await;
    let json = answer.json();
    assert_eq!(shape(&json), "seed 002", "{} {json}", answer.status);
    assert!((400..500).contains(&answer.status), "{}", answer.status);
    let answer = gw.get("/api/exports/e1/ws", handshake).await;
    let json = answer.json();
    assert_eq!(shape(&json), "seed 004", "{} {json}", answer.status);
}
