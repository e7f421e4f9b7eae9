//! Issue 11's holes in the native API, over real HTTP against the gateway and a real command
//! service on a real nats-server: reserved actors, unknown names, the body limit, replies passed
//! on unchanged, JWT `nbf` / `crit` / conflicting tokens, and errors that quote input. Every
//! refusal is typed and appends nothing.

mod support;

use invitebus_events::subject::Subjects;

use invitebus_gateway::auth::mint;
use invitebus_testkit::Bus;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::net::SocketAddr;
use support::post;

const SECRET: &str = "holes-test-secret";

struct World {
    addr: SocketAddr,
    client: async_nats::Client,
    _bus: Bus,
}

impl World {
    async fn start() -> World {
        let bus = Bus::start().await;
        let client = bus.client.clone();
        let addr = support::gateway(client.clone(), SECRET).await;
        World {
            addr,
            client,
            _bus: bus,
        }
    }

    /// The log's last position, from `invites.health`.
    async fn head(&self) -> u64 {
        let msg = self
            .client
            .request(Subjects::default().health(), "{}".into())
            .await
            .unwrap();
        let health: Value = serde_json::from_slice(&msg.payload).unwrap();
        health["data"]["head"].as_u64().unwrap()
    }

    async fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value, String) {
        let (status, raw) = post(self.addr, path, headers, body).await;
        (status, serde_json::from_str(&raw).unwrap_or(Value::Null), raw)
    }
}

fn bearer(user: &str) -> String {
    format!("Bearer {}", mint(SECRET, user, &[], 3600))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token with any claims under any header, signed with the gateway's secret.
fn signed(header: &Header, claims: Value) -> String {
    encode(header, &claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
}

/// xuan's conference and an invite `i1` to fang; returns the head after them.
async fn an_invite(w: &World) -> u64 {
    let xuan = bearer("xuan");
    let (s, r, _) = w
        .post(
            "/v1/commands/RegisterResource",
            &[("Authorization", &xuan)],
            r#"{"resource_id":"conf","kind":"conference","name":"RustConf"}"#,
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let (s, r, _) = w
        .post(
            "/v1/commands/CreateInvite",
            &[("Authorization", &xuan)],
            r#"{"resource_id":"conf","invitee":"fang","invite_id":"i1"}"#,
        )
        .await;
    assert_eq!(s, 200, "{r}");
    w.head().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_tokens_are_refused_and_change_nothing() {
    let w = World::start().await;
    let head = an_invite(&w).await;
    for user in ["system", "System"] {
        let token = mint(SECRET, user, &[], 3600);
        let (s, r, _) = w
            .post(
                "/v1/commands/ExpireInvite",
                &[("Authorization", &format!("Bearer {token}"))],
                r#"{"invite_id":"i1"}"#,
            )
            .await;
        assert_eq!(
            (s, r["error"]["code"].as_str()),
            (401, Some("unauthenticated")),
            "{user}: {r}"
        );
        let (s, r, _) = w.post(&format!("/approve/i1?accessToken={token}"), &[], "").await;
        assert_eq!(
            (s, r["code"].as_u64()),
            (200, Some(8)),
            "seed 000 refuses {user} too: {r}"
        );
    }
    assert_eq!(w.head().await, head, "nothing appended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_are_invalid_command() {
    let w = World::start().await;
    let xuan = bearer("xuan");
    for path in ["/v1/queries/foo", "/v1/commands/DropTables", "/v1/queries/health"] {
        let (s, r, _) = w.post(path, &[("Authorization", &xuan)], "{}").await;
        assert_eq!(
            (s, r["error"]["code"].as_str()),
            (400, Some("invalid_command")),
            "{path}: {r}"
        );
    }
    let (s, r, _) = w.post("/v1/queries/foo", &[], "{}").await;
    assert_eq!(s, 401, "signed out first: {r}");
}

/// No bytes at all is `{}`; whitespace alone is not JSON (schemathesis sent a lone tab to
/// `/v1/queries/admin` and got the unfiltered admin page).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whitespace_alone_is_not_a_body() {
    let w = World::start().await;
    let admin = format!("Bearer {}", mint(SECRET, "st-admin", &["admin".to_string()], 3600));
    // `{}` reaches the command service, which names the field it lacks.
    let (s, r, _) = w
        .post("/v1/commands/UpsertUser", &[("Authorization", &admin)], "")
        .await;
    assert_eq!(
        (s, r["error"]["code"].as_str(), r["error"]["field"].as_str()),
        (400, Some("missing_field"), Some("user_id")),
        "an empty body is {{}}: {r}"
    );
    for body in ["\t", " ", "\r\n", " \n\t "] {
        for path in ["/v1/queries/admin", "/v1/commands/UpsertUser", "/v1/queries/received"] {
            let (s, r, _) = w.post(path, &[("Authorization", &admin)], body).await;
            assert_eq!(
                (s, r["error"]["code"].as_str()),
                (400, Some("invalid_command")),
                "{path} with {body:?}: {r}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_pass_unchanged_with_position_null() {
    let w = World::start().await;
    let xuan = bearer("xuan");
    // An unchanged profile appends nothing: the reply says `"position": null`, and HTTP keeps it.
    let profile = r#"{"user_id":"xuan","name":"Xuan"}"#;
    let (s, first, _) = w
        .post("/v1/commands/UpsertUser", &[("Authorization", &xuan)], profile)
        .await;
    assert_eq!((s, first["position"].as_u64()), (200, Some(1)), "{first}");
    let (s, again, raw) = w
        .post("/v1/commands/UpsertUser", &[("Authorization", &xuan)], profile)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        again.as_object().and_then(|o| o.get("position")),
        Some(&Value::Null),
        "position null is in the reply: {raw}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_limit_counts_the_clients_bytes_only() {
    let w = World::start().await;
    let xuan = bearer("xuan");
    let body = |size: usize| {
        let head = r#"{"user_id":"xuan","name":"Xuan","pad":""#;
        let tail = r#""}"#;
        format!("{head}{}{tail}", "x".repeat(size - head.len() - tail.len()))
    };
    let fits = body(65_511);
    assert_eq!(fits.len(), 65_511);
    let (s, r, _) = w
        .post("/v1/commands/UpsertUser", &[("Authorization", &xuan)], &fits)
        .await;
    assert_eq!(
        s,
        200,
        "65,511 bytes are within 64 KiB: {}",
        &r.to_string()[..200.min(r.to_string().len())]
    );
    let exact = body(64 * 1024);
    let (s, r, _) = w
        .post("/v1/commands/UpsertUser", &[("Authorization", &xuan)], &exact)
        .await;
    assert_eq!(s, 200, "exactly 64 KiB: {r}");
    let head = w.head().await;
    let over = body(64 * 1024 + 1);
    let (s, r, _) = w
        .post("/v1/commands/UpsertUser", &[("Authorization", &xuan)], &over)
        .await;
    assert_eq!((s, r["error"]["code"].as_str()), (400, Some("invalid_command")), "{r}");
    assert_eq!(w.head().await, head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_not_yet_valid_critical_or_conflicting_are_refused() {
    let w = World::start().await;
    let head = an_invite(&w).await;
    let hs = Header::new(Algorithm::HS256);
    let later = signed(&hs, json!({"sub": "fang", "exp": now() + 3600, "nbf": now() + 600}));
    let mut crit = Header::new(Algorithm::HS256);
    crit.crit = Some(vec!["urn:example:must-understand".into()]);
    let critical = signed(&crit, json!({"sub": "fang", "exp": now() + 3600}));
    let fang = mint(SECRET, "fang", &[], 3600);
    let xuan = mint(SECRET, "xuan", &[], 3600);
    let accept = r#"{"invite_id":"i1"}"#;
    /// (why, query string, headers)
    type Case<'a> = (&'a str, String, Vec<(&'a str, String)>);
    let cases: Vec<Case> = vec![
        (
            "nbf in the future",
            String::new(),
            vec![("Authorization", format!("Bearer {later}"))],
        ),
        (
            "unknown crit",
            String::new(),
            vec![("Authorization", format!("Bearer {critical}"))],
        ),
        (
            "Bearer and ACCESS-TOKEN differ",
            String::new(),
            vec![
                ("Authorization", format!("Bearer {fang}")),
                ("ACCESS-TOKEN", xuan.clone()),
            ],
        ),
        (
            "two accessToken",
            format!("?accessToken={fang}&accessToken={xuan}"),
            vec![],
        ),
        (
            "Bearer and accessToken differ",
            format!("?accessToken={xuan}"),
            vec![("Authorization", format!("Bearer {fang}"))],
        ),
    ];
    let mut accepted = Vec::new();
    for (why, query, headers) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let path = format!("/v1/commands/AcceptInvite{query}");
        let (s, r, _) = w.post(&path, &headers, accept).await;
        let got = (s, r["error"]["code"].as_str(), r["error"]["field"].as_str());
        if got != (401, Some("unauthenticated"), Some("token")) {
            accepted.push(format!("{why}: {r}"));
        }
    }
    assert!(accepted.is_empty(), "not refused: {accepted:#?}");
    assert_eq!(w.head().await, head, "nothing appended");
    // The same token twice is one token.
    let (s, r, _) = w
        .post(
            &format!("/v1/commands/AcceptInvite?accessToken={fang}"),
            &[("ACCESS-TOKEN", &fang)],
            accept,
        )
        .await;
    assert_eq!(s, 200, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_quote_at_most_a_few_hundred_characters_of_input() {
    let w = World::start().await;
    let xuan = bearer("xuan");
    let long = "A".repeat(5_000);
    let (s, r, raw) = w
        .post(&format!("/v1/commands/{long}"), &[("Authorization", &xuan)], "{}")
        .await;
    assert_eq!(s, 400, "{raw:.200}");
    assert!(raw.len() < 1_000, "the name is not echoed whole: {} bytes", raw.len());
    assert_eq!(r["error"]["code"], "invalid_command");
    // An error of the command service that quotes a 5,000-character value.
    let dots = ".".repeat(5_000);
    let body = json!({"invite_id": dots}).to_string();
    let (s, r, raw) = w
        .post("/v1/commands/AcceptInvite", &[("Authorization", &xuan)], &body)
        .await;
    assert_eq!(
        (s, r["error"]["code"].as_str()),
        (400, Some("invalid_field")),
        "{raw:.300}"
    );
    assert_eq!(r["error"]["field"], "invite_id");
    assert!(raw.len() < 1_000, "the value is not echoed whole: {} bytes", raw.len());
    let (_, _, raw) = w.post(&format!("/v1/commands/{long}"), &[], "{}").await;
    assert!(raw.len() < 1_000, "{} bytes", raw.len());
}
