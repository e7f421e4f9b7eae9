//! `--bus-auth token`, from outside: on NATS a request acts as its token says, whatever its
//! body says. Raw requests beside the gateway (whose routes all pass their own tests with it
//! on: `support::gateway` starts every gateway test this way).

mod support;

use invitebus_events::subject::Subjects;
use invitebus_events::{ErrorCode, Reply};
use serde_json::{json, Value};
use std::time::Duration;
use support::gateway::{Gateway, SECRET, SERVICE_SECRET};

async fn ask(client: &async_nats::Client, subject: String, token: Option<&str>, body: Value) -> Reply {
    let mut headers = async_nats::HeaderMap::new();
    if let Some(t) = token {
        headers.insert("Authorization", format!("Bearer {t}").as_str());
    }
    let request = client.request_with_headers(subject, headers, body.to_string().into());
    let msg = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .expect("an answer")
        .expect("a reply");
    serde_json::from_slice(&msg.payload).expect("a protocol reply")
}

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

    // The CLI sends its token with --token (or INVITEBUS_TOKEN).
    let send = |token: Option<&str>| {
        let mut cli = std::process::Command::new(support::BIN);
        cli.args([
            "send",
            "CreateInvite",
            r#"{"resource_id":"conf","invitee":"fang","invite_id":"i3"}"#,
        ])
        .args(["--nats", &g.nats.url()])
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
