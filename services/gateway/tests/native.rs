//! The native API over real HTTP: tokens decide the actor; no token, an expired token, a token
//! of another key and a body naming another actor are refused with nothing appended.

use invitebus_events::subject::Subjects;
use invitebus_gateway::auth::mint;
use invitebus_gateway::{router, GatewayConfig};
use invitebus_testkit::Bus;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "test-secret";

/// One HTTP/1.1 POST; returns (status, JSON body).
async fn post(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    let status: u16 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_decide_the_actor_and_bad_ones_change_nothing() {
    let bus = Bus::start().await;
    let client = bus.client.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(GatewayConfig {
        client: client.clone(),
        subjects: Subjects::default(),
        verifier: std::sync::Arc::new(invitebus_gateway::auth::Verifier::hs256(SECRET)),
        metrics: None,
        limits: std::sync::Arc::new(invitebus_gateway::limits::Limits::new(&Default::default())),
        bounds: Default::default(),
    });
    tokio::spawn(invitebus_gateway::serve(
        listener,
        app,
        Default::default(),
        std::future::pending(),
    ));

    let xuan = format!("Bearer {}", mint(SECRET, "xuan", &[], 3600));
    let body = r#"{"resource_id":"conf","kind":"conference","name":"RustConf"}"#;
    let (status, reply) = post(addr, "/v1/commands/RegisterResource", &[("Authorization", &xuan)], body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["position"], 2);

    // The owner is the token's user: xuan may invite.
    let invite = r#"{"resource_id":"conf","invitee":"fang","invite_id":"i1"}"#;
    let (status, _) = post(
        addr,
        "/v1/commands/CreateInvite",
        &[("ACCESS-TOKEN", &xuan[7..])],
        invite,
    )
    .await;
    assert_eq!(status, 200);

    // (why, headers, body, HTTP status, error code)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a str, u16, &'a str);
    let refused: Vec<Case> = vec![
        ("no token", vec![], invite, 401, "unauthenticated"),
        (
            "expired",
            vec![("Authorization", format!("Bearer {}", expired()))],
            invite,
            401,
            "unauthenticated",
        ),
        (
            "other key",
            vec![("Authorization", format!("Bearer {}", mint("other", "xuan", &[], 3600)))],
            invite,
            401,
            "unauthenticated",
        ),
        (
            "another actor",
            vec![("Authorization", xuan.clone())],
            r#"{"actor":"fang","resource_id":"conf","invitee":"li"}"#,
            403,
            "forbidden",
        ),
    ];
    for (why, headers, body, want, code) in refused {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, reply) = post(addr, "/v1/commands/CreateInvite", &headers, body).await;
        assert_eq!(status, want, "{why}: {reply}");
        assert_eq!(reply["error"]["code"], code, "{why}");
    }
    // Nothing of the refused requests was appended: the next position follows the last ok one.
    let fang = format!("Bearer {}", mint(SECRET, "fang", &[], 3600));
    let (status, reply) = post(
        addr,
        "/v1/commands/AcceptInvite",
        &[("Authorization", &fang)],
        r#"{"invite_id":"i1"}"#,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["position"], 5,
        "positions 4 and 5: accepted and joined, nothing in between"
    );
    let (status, reply) = post(
        addr,
        "/v1/commands/AcceptInvite?accessToken=x",
        &[],
        r#"{"invite_id":"i1"}"#,
    )
    .await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, reply) = post(
        addr,
        "/v1/queries/state",
        &[("Authorization", &fang)],
        r#"{"stream_id":"invite-i1"}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reply["data"]["state"]["records"][0]["status"], "accepted");
    let (status, _) = post(addr, "/v1/commands/Accept.Invite", &[("Authorization", &fang)], "{}").await;
    assert_eq!(status, 400);
}

fn expired() -> String {
    invitebus_gateway::auth::mint_until(SECRET, "xuan", &[], 1)
}
