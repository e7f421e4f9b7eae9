//! Projections run as their own processes: a views role killed mid-stream resumes exactly, and
//! `replay` rebuilds the same rows (and sends no notification twice).

mod support;

use invitebus_natsrun::NatsServer;
use serde_json::json;
use support::{connect, healthy, projection_at, relayed_all, run, send, Serve};

async fn traffic(client: &async_nats::Client, from: usize, to: usize) {
    for i in from..to {
        let body = json!({"actor":"xuan","resource_id":"conf","invitee":format!("u{i}"),"invite_id":format!("t{i}")});
        assert!(send(client, "CreateInvite", &body).await.unwrap().ok);
        if i % 2 == 0 {
            let accept = json!({"actor":format!("u{i}"),"invite_id":format!("t{i}")});
            assert!(send(client, "AcceptInvite", &accept).await.unwrap().ok);
        }
    }
}

fn rows(path: &std::path::Path) -> serde_json::Value {
    let mut s = invitebus_views::snapshot::snapshot(path).unwrap();
    s.as_object_mut().unwrap().remove("checkpoints");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_views_process_killed_mid_stream_resumes_and_replay_rebuilds_the_same_rows() {
    let nats = NatsServer::start_temp().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut commands = Serve::start_role(&nats.url(), data.path(), "commands");
    let mut notifier = Serve::start_role(&nats.url(), data.path(), "notifier");
    let client = connect(&nats.url()).await;
    healthy(&client).await;
    assert!(
        send(
            &client,
            "UpsertUser",
            &json!({"actor":"xuan","user_id":"xuan","name":"Xuan"})
        )
        .await
        .unwrap()
        .ok
    );
    let conf = json!({"actor":"xuan","resource_id":"conf","kind":"conference","name":"C"});
    assert!(send(&client, "RegisterResource", &conf).await.unwrap().ok);

    let mut views = Serve::start_role(&nats.url(), data.path(), "views");
    // Kill the views process while events flow, twice.
    let writer = {
        let client = client.clone();
        tokio::spawn(async move { traffic(&client, 0, 150).await })
    };
    for _ in 0..2 {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        views.kill();
        views = Serve::start_role(&nats.url(), data.path(), "views");
    }
    writer.await.unwrap();
    let head = relayed_all(&client).await;
    projection_at(&client, "views", head).await;
    projection_at(&client, "notifier", head).await;

    let received = send(
        &client,
        "CreateInvite",
        &json!({"actor":"xuan","resource_id":"conf","invitee":"zed"}),
    )
    .await
    .unwrap();
    let p = received.position().unwrap();
    // The restarted views process may still be subscribing: retry while nobody answers.
    let body = json!({"actor":"zed","min_position":p}).to_string();
    let mut answer = None;
    for _ in 0..100 {
        match client.request("invites.q.received", body.clone().into()).await {
            Ok(msg) => {
                answer = Some(serde_json::from_slice::<invitebus_events::Reply>(&msg.payload).unwrap());
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    assert_eq!(
        answer.expect("views answer").into_result().unwrap()["total"],
        1,
        "read-your-writes after restarts"
    );
    let head = relayed_all(&client).await;
    projection_at(&client, "views", head).await;
    projection_at(&client, "notifier", head).await;

    // Stop the projections, keep a copy of the live rows, and replay from zero.
    assert_eq!(views.terminate().code(), Some(0));
    assert_eq!(notifier.terminate().code(), Some(0));
    let live = rows(&data.path().join("views.db"));
    assert_eq!(live["records"].as_array().unwrap().len(), 151);
    let js = async_nats::jetstream::new(client.clone());
    let mut notify = js.get_stream("INVITES_NOTIFY").await.unwrap();
    let sent_before = notify.info().await.unwrap().state.messages;
    assert_eq!(
        sent_before,
        151 + 75,
        "one invite_received per invite, one invite_accepted per accept"
    );

    let out = run(&["replay", "--projection", "all", "--nats", &nats.url()], data.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(rows(&data.path().join("views.db")), live, "replay = live, row for row");

    // The rebuilt notifier sends nothing when it runs.
    let mut notifier = Serve::start_role(&nats.url(), data.path(), "notifier");
    projection_at(&client, "notifier", head).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(notify.info().await.unwrap().state.messages, sent_before);

    // An as-of snapshot for an audit, by position and by time.
    let url = nats.url();
    let as_of_with = |until: &str, file: &str, more: &[&str]| {
        let file = data.path().join(file);
        let mut args = vec![
            "replay",
            "--until",
            until,
            "--out",
            file.to_str().unwrap(),
            "--nats",
            &url,
        ];
        args.extend(more);
        let out = run(&args, data.path());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let snapshot = serde_json::from_slice::<serde_json::Value>(&std::fs::read(&file).unwrap()).unwrap();
        (snapshot, String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let as_of = |until: &str, file: &str| as_of_with(until, file, &[]).0;
    // A position past the stream's head is refused, not answered with a snapshot of less.
    let past = (head + 1000).to_string();
    let file = data.path().join("past.json");
    let out = run(
        &[
            "replay",
            "--until",
            &past,
            "--out",
            file.to_str().unwrap(),
            "--nats",
            &url,
        ],
        data.path(),
    );
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("holds positions up to {head} only")), "{err}");
    assert!(!file.exists(), "no snapshot written");
    let snap = as_of("4", "asof.json");
    assert_eq!(snap["as_of_position"], 4);
    assert_eq!(
        snap["records"].as_array().unwrap().len(),
        1,
        "position 4 is the first invite"
    );
    // The same moment named by time: everything recorded at or before position 4's time.
    let reader = invitebus_eventlog::LogReader::open(data.path().join("events.db")).unwrap();
    let fourth = reader.read_from(3, 1).unwrap().remove(0);
    let at = invitebus_events::envelope::format_time(&fourth.recorded_at);
    let then = reader.position_at(&at).unwrap();
    assert!(then >= 4, "{then}");
    let by_time = as_of(&at, "asof-time.json");
    assert_eq!(by_time["as_of_position"], then);
    assert_eq!(
        by_time,
        as_of(&then.to_string(), "asof-then.json"),
        "--until {at} = --until {then}"
    );
    if then == 4 {
        assert_eq!(by_time, snap);
    }
    // One resource as of a moment, from its own streams while the log holds that moment as
    // acknowledged by the relay, the long way past it: every invite here is of `conf`.
    let acked = reader.checkpoint(invitebus_eventlog::RELAY_CHECKPOINT).unwrap();
    assert!(acked > 4, "the relay acknowledged {acked}");
    let (acked, head) = (acked.to_string(), head.to_string());
    for (until, whole, own_streams) in [
        ("4", snap.clone(), true),
        (&*acked, as_of(&acked, "asof-acked.json"), true),
        (&*head, as_of(&head, "asof-head.json"), head == acked),
    ] {
        let (part, said) = as_of_with(until, "asof-conf.json", &["--resource", "conf"]);
        assert_eq!(
            said.contains("views of conf as of"),
            own_streams,
            "--until {until}: from its own streams? {said}"
        );
        assert_eq!(part["as_of_position"], whole["as_of_position"]);
        for table in ["invites", "records", "resources", "codes", "members", "users"] {
            assert_eq!(part[table], whole[table], "--until {until} --resource conf: {table}");
        }
        assert!(part.get("exports").is_none(), "only the resource's tables");
    }
    assert_eq!(
        as_of_with("4", "asof-other.json", &["--resource", "elsewhere"]).0["records"],
        json!([]),
        "another resource has no records"
    );

    notifier.terminate();
    commands.terminate();
}
