//! Exports against separate processes: an exporter SIGKILLed mid-job finishes the job after it
//! restarts, with one ExportCompleted; `invitebus export` downloads the file.

mod support;

use futures::StreamExt;
use invitebus_natsrun::NatsServer;
use serde_json::{json, Value};
use std::time::Duration;
use support::{connect, healthy, send, Serve};

const BATCHES: usize = 40;
const PER_INVITE: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exporter_killed_mid_job_finishes_it_once_after_restart() {
    let nats = NatsServer::start_temp().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut commands = Serve::start_role(&nats.url(), data.path(), "commands");
    let client = connect(&nats.url()).await;
    healthy(&client).await;
    let mut views = Serve::start_role(&nats.url(), data.path(), "views");
    let mut exporter = Serve::start_role(&nats.url(), data.path(), "exporter");
    let reg = json!({"actor":"ref","resource_id":"expo","kind":"exhibition","name":"Expo"});
    assert!(send(&client, "RegisterResource", &reg).await.unwrap().ok);
    for b in 0..BATCHES {
        let invitees: Vec<String> = (0..PER_INVITE).map(|i| format!("v{b}x{i}")).collect();
        let body = json!({"actor":"ref","resource_id":"expo","invitees":invitees});
        assert!(send(&client, "CreateInvite", &body).await.unwrap().ok);
    }
    let mut progress = client.subscribe("invites.export.*.progress").await.unwrap();
    // The commands role here runs without an exporter in-process: it refuses exports...
    let refused = send(&client, "RequestExport", &json!({"actor":"root","roles":["admin"]}))
        .await
        .unwrap();
    assert_eq!(refused.error.unwrap().code, invitebus_events::ErrorCode::InvalidCommand);
    // ...until told that one runs elsewhere.
    assert_eq!(commands.terminate().code(), Some(0));
    let mut commands = Serve::start_role_with(&nats.url(), data.path(), "commands", &[("INVITEBUS_EXPORTS", "true")]);
    healthy(&client).await;
    let body = json!({"actor":"root","roles":["admin"],"filters":{"resource_id":"expo"},"format":"xlsx"});
    let r = send(&client, "RequestExport", &body).await.unwrap();
    let export_id = r.data.unwrap()["export_id"].as_str().unwrap().to_string();

    let mut starts = 0;
    let mut killed = false;
    let last = loop {
        let msg = tokio::time::timeout(Duration::from_secs(120), progress.next())
            .await
            .unwrap()
            .unwrap();
        let p: Value = serde_json::from_slice(&msg.payload).unwrap();
        match p["status"].as_str().unwrap() {
            "starting" => starts += 1,
            "writing_file" if !killed => {
                exporter.kill();
                killed = true;
                exporter = Serve::start_role(&nats.url(), data.path(), "exporter");
            }
            "success" | "failed" | "upload_failure" => break p,
            _ => {}
        }
    };
    assert_eq!(last["status"], "success");
    assert_eq!(last["count"], BATCHES * PER_INVITE);
    assert!(
        killed && starts >= 2,
        "the job was interrupted and ran again (starts: {starts})"
    );
    // The success message goes out before CompleteExport is recorded: wait for the record.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let types = loop {
        let history = client
            .request(
                "invites.q.history",
                json!({"actor":"root","roles":["admin"],"stream_id":format!("export-{export_id}")})
                    .to_string()
                    .into(),
            )
            .await
            .unwrap();
        let history: invitebus_events::Reply = serde_json::from_slice(&history.payload).unwrap();
        let types: Vec<String> = history.into_result().unwrap()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect();
        if types.iter().any(|t| t == "ExportCompleted") || std::time::Instant::now() > deadline {
            break types;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(types.iter().filter(|t| *t == "ExportCompleted").count(), 1, "{types:?}");

    // The CLI: request, watch, download.
    let out = data.path().join("visitors.csv");
    let run = std::process::Command::new(support::BIN)
        .args([
            "export",
            "--filter",
            "resource_id=expo",
            "--format",
            "csv",
            "--actor",
            "root",
            "--out",
        ])
        .arg(&out)
        .args(["--nats", &nats.url()])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        text.lines().count(),
        BATCHES * PER_INVITE + 1,
        "a header and every record"
    );
    assert!(text.starts_with("invite_id,created_at,status"));

    exporter.terminate();
    views.terminate();
    commands.terminate();
}
