//! `--bus-auth token`, from outside: on NATS a request acts as its token says, whatever its
//! body says. Raw requests beside the gateway (whose routes all pass their own tests with it
//! on: `support::gateway` starts every gateway test this way).

mod support;

use invitebus_auth::jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use invitebus_events::subject::Subjects;
use invitebus_events::{ErrorCode, Reply};
use invitebus_testkit::idp::{self, Key};
use serde_json::{json, Value};
use std::time::Duration;
use support::ask;
use support::gateway::{Gateway, SECRET, SERVICE_SECRET};

fn code(r: &Reply) -> Option<ErrorCode> {
    r.error.as_ref().map(|e| e.code)
}

fn cmd(name: &str) -> String {
    Subjects::default().command(name)
}

fn query(name: &str) -> String {
    Subjects::default().query(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_bus_auth_on_a_request_acts_as_its_token_says() {
    let g = Gateway::start().await;
    let c = &g.client;
    let (xuan, fang) = (Gateway::token("xuan"), Gateway::token("fang"));
    let conf = json!({"resource_id":"conf","kind":"conference","name":"C"});
    let r = ask(c, cmd("RegisterResource"), Some(&xuan), conf).await;
    assert!(r.ok, "{r:?}");

    let invite = json!({"actor":"xuan","resource_id":"conf","invitee":"fang","invite_id":"i1"});
    // No token, a token of another key, an expired one: unauthenticated, and nothing appended.
    for token in [
        None,
        Some(Gateway::foreign_token("xuan")),
        Some(Gateway::expired_token("xuan")),
    ] {
        let r = ask(c, cmd("CreateInvite"), token.as_deref(), invite.clone()).await;
        assert_eq!(code(&r), Some(ErrorCode::Unauthenticated), "{token:?}: {r:?}");
    }
    // fang's token naming xuan: forbidden.
    let r = ask(c, cmd("CreateInvite"), Some(&fang), invite.clone()).await;
    assert_eq!(code(&r), Some(ErrorCode::Forbidden), "{r:?}");
    // xuan's own, the body naming xuan or no one: accepted.
    let r = ask(c, cmd("CreateInvite"), Some(&xuan), invite).await;
    assert!(r.ok, "{r:?}");
    let r = ask(
        c,
        cmd("CreateInvite"),
        Some(&xuan),
        json!({"resource_id":"conf","invitee":"fang","invite_id":"i2"}),
    )
    .await;
    assert!(r.ok, "{r:?}");

    // `system` is the service token's alone.
    let system = json!({"actor":"system","invite_id":"i1"});
    let r = ask(c, cmd("ExpireInvite"), Some(&fang), system.clone()).await;
    assert_eq!(code(&r), Some(ErrorCode::Forbidden), "a user naming system: {r:?}");
    let r = ask(c, cmd("ExpireInvite"), Some(&fang), json!({"invite_id":"i1"})).await;
    assert_eq!(code(&r), Some(ErrorCode::Forbidden), "a user's ExpireInvite: {r:?}");
    let forged = invitebus_auth::mint(SECRET, "system", &[], 600);
    let r = ask(c, cmd("ExpireInvite"), Some(&forged), system.clone()).await;
    assert_eq!(
        code(&r),
        Some(ErrorCode::Unauthenticated),
        "system signed with the users' secret: {r:?}"
    );
    let r = ask(
        c,
        cmd("CompleteExport"),
        Some(&fang),
        json!({"actor":"system","export_id":"e1","file_url":"https://evil.example/x.xlsx","file_size":1,"count":1}),
    )
    .await;
    assert_eq!(code(&r), Some(ErrorCode::Forbidden), "{r:?}");
    let service = invitebus_auth::mint(SERVICE_SECRET, "system", &[], 600);
    let r = ask(c, cmd("ExpireInvite"), Some(&service), system).await;
    assert!(r.ok, "the service token expires an invite: {r:?}");

    // Roles come from the token: a body's `roles` make no admin.
    let admin_query = json!({"actor":"fang","roles":["admin"],"page":1});
    let r = ask(c, query("admin"), Some(&fang), admin_query.clone()).await;
    assert_eq!(code(&r), Some(ErrorCode::Forbidden), "{r:?}");
    let r = ask(
        c,
        query("admin"),
        Some(&Gateway::admin_token("root")),
        json!({"page":1}),
    )
    .await;
    assert!(r.ok, "an admin's token: {r:?}");
    // Every role's queries are bound: views, the log's (history), the notifier's (inbox).
    for name in ["received", "history", "inbox"] {
        let r = ask(c, query(name), None, json!({"actor":"fang","stream_id":"invite-i1"})).await;
        assert_eq!(code(&r), Some(ErrorCode::Unauthenticated), "{name}: {r:?}");
    }
    let r = ask(c, query("received"), Some(&fang), json!({"actor":"fang"})).await;
    assert!(r.ok, "{r:?}");
    // Health stays open to anyone on the bus.
    let r = ask(c, Subjects::default().health(), None, json!({})).await;
    assert!(r.data.is_some(), "{r:?}");

    // The CLI sends its token with --token (or INVITEBUS_TOKEN), as a client of the bus.
    let client_creds = g.creds("client");
    let send = |token: Option<&str>| {
        let mut cli = std::process::Command::new(support::BIN);
        cli.args([
            "send",
            "CreateInvite",
            r#"{"resource_id":"conf","invitee":"fang","invite_id":"i3"}"#,
        ])
        .args(["--nats", &g.nats_url])
        .arg("--nats-creds")
        .arg(&client_creds)
        .env_remove("INVITEBUS_TOKEN");
        if let Some(t) = token {
            cli.args(["--token", t]);
        }
        cli.output().expect("invitebus send runs")
    };
    let without = send(None);
    assert_eq!(
        without.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&without.stdout)
    );
    assert!(String::from_utf8_lossy(&without.stdout).contains("unauthenticated"));
    let with = send(Some(&xuan));
    assert_eq!(with.status.code(), Some(0), "{}", String::from_utf8_lossy(&with.stdout));
}

#[test]
fn serve_refuses_token_mode_when_users_tokens_would_verify_as_the_services() {
    let out = std::process::Command::new(support::BIN)
        .args(["serve", "--bus-auth", "token", "--nats", "nats://127.0.0.1:1", "--data"])
        .arg(tempfile::tempdir().unwrap().path())
        .env("INVITEBUS_JWT_SECRET", "one-secret-for-both-of-them-0123456789")
        .env("INVITEBUS_SERVICE_SECRET", "one-secret-for-both-of-them-0123456789")
        .output()
        .expect("invitebus serve runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("INVITEBUS_SERVICE_SECRET"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The provider's claims for `sub` with this deployment's `iss` and `aud`.
fn provider_claims(sub: &str, roles: &[&str]) -> Value {
    let mut c = idp::claims(sub, roles, 600);
    c["iss"] = json!("https://idp.test");
    c["aud"] = json!(["invitebus", "another-app"]);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_provider_tokens_act_on_the_bus_and_through_the_gateway_and_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, idp::JWKS).unwrap();
    let jwks_path = jwks.to_str().unwrap().to_string();
    let env = [
        ("INVITEBUS_JWKS", jwks_path.as_str()),
        ("INVITEBUS_JWKS_REFRESH", "1"),
        ("INVITEBUS_JWT_ISSUER", "https://idp.test"),
        ("INVITEBUS_JWT_AUDIENCE", "invitebus"),
    ];
    let g = Gateway::start_with(dir, &env).await;
    let c = &g.client;

    // Every key of the provider: a command on the bus, a query through the gateway.
    for (i, key) in Key::ALL.into_iter().enumerate() {
        let token = key.sign(&provider_claims("xuan", &[]), true);
        let r = ask(
            c,
            cmd("RegisterResource"),
            Some(&token),
            json!({"resource_id": format!("conf{i}"), "kind":"conference","name":"C"}),
        )
        .await;
        assert!(r.ok, "{key:?}: {r:?}");
        let data = g.query(&token, "sent", json!({})).await;
        assert!(data.is_array() || data.is_object(), "{key:?}: {data}");
    }
    // Roles come from the provider's token too.
    let admin = Key::Es256.sign(&provider_claims("root", &["admin"]), true);
    let r = ask(c, query("admin"), Some(&admin), json!({"page":1})).await;
    assert!(r.ok, "{r:?}");

    // Another audience, another issuer, none, or an HS256 token signed with the RSA public key
    // (algorithm confusion): unauthenticated on the bus and 401 at the gateway.
    let mut other_aud = provider_claims("xuan", &[]);
    other_aud["aud"] = json!("another-app");
    let mut other_iss = provider_claims("xuan", &[]);
    other_iss["iss"] = json!("https://evil.test");
    let mut no_iss = provider_claims("xuan", &[]);
    no_iss.as_object_mut().unwrap().remove("iss");
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(Key::Rs256.kid().into());
    let confused = encode(
        &header,
        &provider_claims("xuan", &[]),
        &EncodingKey::from_secret(idp::RS256_PUBLIC_PEM.as_bytes()),
    )
    .unwrap();
    let refused = [
        Key::Rs256.sign(&other_aud, true),
        Key::Rs256.sign(&other_iss, true),
        Key::Rs256.sign(&no_iss, true),
        confused,
    ];
    for token in &refused {
        let r = ask(c, query("sent"), Some(token), json!({})).await;
        assert_eq!(code(&r), Some(ErrorCode::Unauthenticated), "{r:?}");
        let bearer = format!("Bearer {token}");
        let a = g.post("/v1/queries/sent", &[("Authorization", &bearer)], "{}").await;
        assert_eq!(a.status, 401, "{}", String::from_utf8_lossy(&a.body));
    }

    // The provider drops its RSA key: within the refresh, RS256 tokens are refused (the
    // verified-token cache forgets them) and the others still pass.
    let rsa = Key::Rs256.sign(&provider_claims("xuan", &[]), true);
    assert!(ask(c, query("sent"), Some(&rsa), json!({})).await.ok);
    let mut set: Value = serde_json::from_str(idp::JWKS).unwrap();
    set["keys"]
        .as_array_mut()
        .unwrap()
        .retain(|k| k["kid"] != Key::Rs256.kid());
    std::fs::write(&jwks, set.to_string()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = ask(c, query("sent"), Some(&rsa), json!({})).await;
        if code(&r) == Some(ErrorCode::Unauthenticated) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the rotated JWKS was not taken: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let eddsa = Key::EdDsa.sign(&provider_claims("xuan", &[]), true);
    assert!(ask(c, query("sent"), Some(&eddsa), json!({})).await.ok);

    // A broken document on refresh keeps the keys there were.
    std::fs::write(&jwks, "not json").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(ask(c, query("sent"), Some(&eddsa), json!({})).await.ok);
    // ... and says so: the failures are counted, the keys in use are a gauge.
    let metrics = String::from_utf8(g.get("/metrics", &[]).await.body).unwrap();
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    };
    assert!(value("invitebus_jwks_refresh_failures_total") >= 1.0);
    assert_eq!(value("invitebus_jwks_keys"), 2.0);
}

#[test]
fn serve_refuses_to_start_without_a_usable_jwks() {
    let dir = tempfile::tempdir().unwrap();
    let oct = dir.path().join("oct.json");
    std::fs::write(&oct, r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","alg":"HS256"}]}"#).unwrap();
    for (jwks, says) in [
        (dir.path().join("missing.json"), "reading the JWKS file"),
        (oct, "no key that can verify"),
    ] {
        let out = std::process::Command::new(support::BIN)
            .args(["serve", "--nats", "nats://127.0.0.1:1", "--data"])
            .arg(dir.path().join("data"))
            .arg("--jwks")
            .arg(&jwks)
            .output()
            .expect("invitebus serve runs");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{jwks:?}: {err}");
    }
}
