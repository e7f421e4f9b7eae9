//! The native API over real HTTP: tokens decide the actor; no token, an expired token, a token
//! of another key and a body naming another actor are refused with nothing appended.

mod support;

use invitebus_gateway::auth::mint;
use invitebus_testkit::Bus;
use serde_json::Value;

const SECRET: &str = "test-secret";

/// One HTTP/1.1 POST; returns (status, JSON body).
async fn post(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let (status, body) = support::post(addr, path, headers, body).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_decide_the_actor_and_bad_ones_change_nothing() {
    let bus = Bus::start().await;
    let client = bus.client.clone();
    let addr = support::gateway(client.clone(), SECRET).await;

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
