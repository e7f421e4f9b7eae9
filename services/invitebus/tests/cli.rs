//! The binary as an operator uses it: serve starts its own NATS, send/tail/health, audit, SIGTERM.

mod support;

use invitebus_natsrun::NatsServer;
use serde_json::json;
use support::{connect, healthy, relayed_all, run, send, Serve};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_its_own_nats_when_none_answers_and_stops_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let url = format!("nats://127.0.0.1:{}", free_port());
    let mut serve = Serve::start(&url, data.path());
    let client = connect(&url).await;
    let h = healthy(&client).await;
    assert_eq!(h["head"], 0);
    assert!(
        data.path().join("nats").is_dir(),
        "JetStream data lives under the data folder"
    );

    let out = std::process::Command::new(support::BIN)
        .args([
            "send",
            "UpsertUser",
            r#"{"actor":"fang","user_id":"fang","name":"Fang"}"#,
            "--nats",
            &url,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply, json!({"ok":true,"data":{"user_id":"fang"},"position":1}));

    let out = std::process::Command::new(support::BIN)
        .args([
            "send",
            "AcceptInvite",
            r#"{"actor":"fang","invite_id":"nope"}"#,
            "--nats",
            &url,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "an error reply exits 1");
    assert!(String::from_utf8_lossy(&out.stdout).contains("not_found"));

    relayed_all(&client).await;
    let out = std::process::Command::new(support::BIN)
        .args(["tail", "--no-follow", "--nats", &url])
        .output()
        .unwrap();
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("\"UserUpserted\""));
    for (flag, value, says) in [("--type", "Nope", "known: "), ("--stream", "nope", "not a stream id")] {
        let out = std::process::Command::new(support::BIN)
            .args(["tail", "--no-follow", flag, value, "--nats", &url])
            .output()
            .unwrap();
        assert!(!out.status.success(), "tail {flag} {value}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(says), "{out:?}");
    }

    assert_eq!(serve.terminate().code(), Some(0), "SIGTERM stops cleanly");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        std::net::TcpStream::connect(url.trim_start_matches("nats://")).is_err(),
        "its nats-server stopped too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_passes_untouched_and_names_an_altered_row() {
    let nats = NatsServer::start_temp().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut serve = Serve::start(&nats.url(), data.path());
    let client = connect(&nats.url()).await;
    healthy(&client).await;
    for body in [
        json!({"actor":"xuan","user_id":"xuan","name":"Xuan"}),
        json!({"actor":"fang","user_id":"fang","name":"Fang"}),
    ] {
        assert!(send(&client, "UpsertUser", &body).await.unwrap().ok);
    }
    let r = send(
        &client,
        "RegisterResource",
        &json!({"actor":"xuan","resource_id":"conf","kind":"conference","name":"C"}),
    )
    .await;
    assert!(r.unwrap().ok);

    let out = run(&["audit", "verify"], data.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 events"));

    let out = run(&["audit", "history", "resource-conf"], data.path());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);

    assert_eq!(serve.terminate().code(), Some(0));
    let conn = rusqlite::Connection::open(support::db(data.path())).unwrap();
    conn.execute("UPDATE events SET actor = 'mallory' WHERE position = 2", [])
        .unwrap();
    let out = run(&["audit", "verify"], data.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("position 2"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn the_gateway_refuses_the_development_secret_beyond_loopback() {
    let nats = NatsServer::start_temp().unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(support::BIN)
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
        .env_remove("INVITEBUS_JWT_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("INVITEBUS_JWT_SECRET"), "{stderr}");
    // With a secret of its own it starts (and is stopped here).
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
        .env("INVITEBUS_JWT_SECRET", "a-real-secret-of-at-least-32-bytes")
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        child.try_wait().unwrap().is_none(),
        "serve keeps running with a real secret"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// A standby writer drops what it never published when it loses the lease: under `local`
/// durability that may be acknowledged, so `serve` refuses the combination and says why.
#[test]
fn serve_refuses_a_lease_without_replicated_durability() {
    let nats = NatsServer::start_temp().unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(support::BIN)
        .args([
            "serve",
            "--role",
            "commands",
            "--lease",
            "--nats",
            &nats.url(),
            "--data",
        ])
        .arg(data.path())
        .env_remove("INVITEBUS_DURABILITY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--lease needs --durability replicated"), "{stderr}");
    assert!(!data.path().join("events.db").exists(), "nothing was started");
}

/// Beyond loopback, the development master key (public) or a short one would let every reader of
/// INVITES_EVENTS open what the roles seal: `serve` refuses before it connects anywhere.
#[test]
fn serve_refuses_the_development_master_key_beyond_loopback() {
    let data = tempfile::tempdir().unwrap();
    for key in [None, Some("too-short")] {
        let mut cmd = std::process::Command::new(support::BIN);
        cmd.args(["serve", "--nats", "nats://nats.invalid:4222", "--data"])
            .arg(data.path())
            .env_remove("INVITEBUS_MASTER_KEY");
        if let Some(k) = key {
            cmd.env("INVITEBUS_MASTER_KEY", k);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("INVITEBUS_MASTER_KEY is the development key or shorter than 32 bytes"),
            "{stderr}"
        );
    }
}

#[test]
fn asyncapi_writes_the_document_for_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("asyncapi.json");
    let out = std::process::Command::new(support::BIN)
        .args(["asyncapi", "--prefix", "acme", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["channels"]["cmd.CreateInvite"]["address"], "acme.cmd.CreateInvite");
    assert_eq!(doc["channels"]["events"]["address"], "acme.evt.{eventType}.{streamId}");
}
