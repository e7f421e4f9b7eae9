//! `serve --nats-auth`, from outside: serve starts nats-server with a user per role; a client's
//! credential (`invitebus creds --role client`) may send commands and queries and read the
//! events, and nothing else. Every gateway test runs on such a bus too (`support::gateway`).

mod support;

use async_nats::jetstream::{self, consumer, object_store};
use futures::StreamExt;
use invitebus_events::subject::{Subjects, EVENTS_STREAM, EXPORTS_BUCKET};
use invitebus_events::Reply;
use serde_json::json;
use std::path::Path;
use std::time::Duration;
use support::gateway::Gateway;
use tokio::sync::mpsc;

/// A connection as the user of `creds` and the server's errors it is told of.
async fn connect_as(url: &str, creds: &Path) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = support::options(creds)
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = tx.send(e.to_string());
                }
            }
        })
        .connect(url)
        .await
        .expect("the client's credential connects");
    (client, rx)
}

/// Waits (bounded) for the server's `Permissions Violation` naming `subject`.
async fn refused(errors: &mut mpsc::UnboundedReceiver<String>, subject: &str) {
    let wait = async {
        while let Some(e) = errors.recv().await {
            if e.to_lowercase().contains("permissions violation") && e.contains(subject) {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("no Permissions Violation for {subject}"));
}

async fn ask(client: &async_nats::Client, subject: String, token: &str, body: serde_json::Value) -> Reply {
    support::ask(client, subject, Some(token), body).await
}

/// A JetStream context that gives up on an unanswered request after a second.
fn js(client: &async_nats::Client) -> jetstream::Context {
    let mut js = jetstream::new(client.clone());
    js.set_timeout(Duration::from_secs(1));
    js
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_credential_requests_and_reads_events_and_nothing_more() {
    let g = Gateway::start().await;
    let s = Subjects::default();
    let xuan = Gateway::token("xuan");
    // The tour through the gateway: a command, then its view.
    g.command(
        &xuan,
        "RegisterResource",
        json!({"resource_id":"conf","kind":"conference","name":"C"}),
    )
    .await;
    let created = g
        .command(
            &xuan,
            "CreateInvite",
            json!({"resource_id":"conf","invitee":"fang","invite_id":"i1"}),
        )
        .await;
    let sent = g
        .query(&xuan, "sent", json!({"min_position": created["position"]}))
        .await;
    assert_eq!(sent["items"][0]["invite_id"], "i1", "{sent}");

    let creds = g.creds("client");
    let (client, mut errors) = connect_as(&g.nats_url, &creds).await;
    // It may send a command and ask a query.
    let r = ask(
        &client,
        s.command("CreateInvite"),
        &xuan,
        json!({"resource_id":"conf","invitee":"lan","invite_id":"i2"}),
    )
    .await;
    assert!(r.ok, "{r:?}");
    let position = r.position.expect("a position");
    let r = ask(&client, s.query("sent"), &xuan, json!({"min_position": position})).await;
    assert!(r.ok, "{r:?}");
    // And read INVITES_EVENTS with a consumer.
    let js = js(&client);
    let stream = js
        .get_stream(EVENTS_STREAM)
        .await
        .expect("the client reads the stream's info");
    let ordered = stream
        .create_consumer(consumer::pull::OrderedConfig::default())
        .await
        .expect("an ordered consumer");
    let mut messages = ordered.messages().await.expect("messages");
    let first = tokio::time::timeout(Duration::from_secs(10), messages.next())
        .await
        .expect("an event in time")
        .expect("an event")
        .expect("not an error");
    assert!(first.subject.starts_with("invites.evt."), "{}", first.subject);
    drop(messages);

    // It may not publish an event.
    client
        .publish("invites.evt.InviteExpired.invite-i1", "{}".into())
        .await
        .unwrap();
    refused(&mut errors, "invites.evt.InviteExpired.invite-i1").await;
    // Nor answer a command: the subscription is refused, and the writer still answers.
    let _answering = client.subscribe("invites.cmd.CreateInvite").await.unwrap();
    refused(&mut errors, "invites.cmd.CreateInvite").await;
    let r = ask(
        &client,
        s.command("CreateInvite"),
        &xuan,
        json!({"resource_id":"conf","invitee":"mei","invite_id":"i3"}),
    )
    .await;
    assert!(r.ok, "the command service still answers: {r:?}");
    // Nor delete the stream, a message, or a consumer (not even its own).
    let mine = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("mine".into()),
            ..Default::default()
        })
        .await
        .expect("a durable consumer of its own");
    assert_eq!(mine.cached_info().name, "mine");
    assert!(js.delete_stream(EVENTS_STREAM).await.is_err());
    refused(&mut errors, "$JS.API.STREAM.DELETE.INVITES_EVENTS").await;
    assert!(stream.delete_message(1).await.is_err());
    refused(&mut errors, "$JS.API.STREAM.MSG.DELETE.INVITES_EVENTS").await;
    assert!(stream.delete_consumer("mine").await.is_err());
    refused(&mut errors, "$JS.API.CONSUMER.DELETE.INVITES_EVENTS.mine").await;
    // Nor read the export files, through the bucket or a direct get.
    assert!(js.get_object_store(EXPORTS_BUCKET).await.is_err());
    refused(&mut errors, "$JS.API.STREAM.INFO.OBJ_invites-exports").await;
    client
        .publish("$JS.API.DIRECT.GET.OBJ_invites-exports", "{\"seq\":1}".into())
        .await
        .unwrap();
    refused(&mut errors, "$JS.API.DIRECT.GET.OBJ_invites-exports").await;
    let _files = client.subscribe("$O.invites-exports.>").await.unwrap();
    refused(&mut errors, "$O.invites-exports.>").await;

    // All of it still there, as the service sees it.
    let service = js_of_service(&g).await;
    let mut events = service.get_stream(EVENTS_STREAM).await.expect("the stream is there");
    let info = events.info().await.unwrap();
    assert!(info.state.messages >= 4, "{:?}", info.state);
    assert!(events.get_raw_message(1).await.is_ok(), "message 1 is there");
    assert!(events.consumer_info("mine").await.is_ok(), "the consumer is there");
}

async fn js_of_service(g: &Gateway) -> jetstream::Context {
    let creds = g.creds("service");
    js(&support::connect_with(&g.nats_url, &creds).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_credential_reads_the_export_bucket() {
    let g = Gateway::start().await;
    let js = js_of_service(&g).await;
    // The exporter made the bucket when it started.
    let store = js
        .get_object_store(EXPORTS_BUCKET)
        .await
        .expect("the service reads the bucket");
    store
        .put(
            object_store::ObjectMetadata {
                name: "probe.csv".into(),
                ..Default::default()
            },
            &mut &b"a,b\n"[..],
        )
        .await
        .expect("the service writes it");
    let mut object = store.get("probe.csv").await.expect("and reads it back");
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut object, &mut bytes)
        .await
        .unwrap();
    assert_eq!(bytes, b"a,b\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_or_with_a_wrong_password_the_bus_refuses_the_connection() {
    let g = Gateway::start().await;
    let bare = async_nats::ConnectOptions::new().connect(&g.nats_url).await;
    let Err(e) = bare else {
        panic!("connected without credentials")
    };
    assert_eq!(e.kind(), async_nats::ConnectErrorKind::AuthorizationViolation, "{e}");
    let wrong = async_nats::ConnectOptions::new()
        .user_and_password("client".into(), "guess".into())
        .connect(&g.nats_url)
        .await;
    let Err(e) = wrong else {
        panic!("connected with a wrong password")
    };
    assert_eq!(e.kind(), async_nats::ConnectErrorKind::AuthorizationViolation, "{e}");
    // The CLI without its creds file is refused too, and works with it.
    let health = |creds: Option<&Path>| {
        let mut cli = std::process::Command::new(support::BIN);
        cli.args(["health", "--nats", &g.nats_url])
            .env_remove("INVITEBUS_NATS_CREDS");
        if let Some(c) = creds {
            cli.arg("--nats-creds").arg(c);
        }
        cli.output().expect("invitebus health runs")
    };
    assert_eq!(health(None).status.code(), Some(2));
    let creds = g.creds("client");
    let with = health(Some(&creds));
    assert_eq!(with.status.code(), Some(0), "{}", String::from_utf8_lossy(&with.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_files_are_private_and_restarts_keep_the_passwords() {
    use std::os::unix::fs::PermissionsExt;
    let mut g = Gateway::start().await;
    let creds = g.creds("client");
    for file in ["nats-auth.conf", "nats-users.json", "client.creds"] {
        let mode = std::fs::metadata(g.dir.path().join(file)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let before = support::login(&creds);
    // serve again on the same folder: the same users and passwords.
    g.serve.terminate();
    let dir = g.dir;
    let g = Gateway::start_with(dir, &[]).await;
    let again = support::login(&g.creds("client"));
    assert_eq!(before.1, again.1, "the client's password survived the restart");
    let (client, _errors) = connect_as(&g.nats_url, &creds).await;
    let health = client.request(Subjects::default().health(), "{}".into());
    assert!(tokio::time::timeout(Duration::from_secs(10), health).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_consumer_onto_request_subjects_gets_no_answer_and_runs_nothing() {
    let g = Gateway::start().await;
    let s = Subjects::default();
    let xuan = Gateway::token("xuan");
    g.command(
        &xuan,
        "RegisterResource",
        json!({"resource_id":"conf","kind":"conference","name":"C"}),
    )
    .await;
    let (client, _errors) = connect_as(&g.nats_url, &g.creds("client")).await;
    let mut stream = js_of_service(&g).await.get_stream(EVENTS_STREAM).await.unwrap();
    // The relay publishes after the reply: wait for the stream to hold what the log has.
    let head = g.head().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stream.info().await.unwrap().state.last_sequence < head {
        assert!(std::time::Instant::now() < deadline, "the relay did not get to {head}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = stream.cached_info().state.messages;
    let stream = js(&client).get_stream(EVENTS_STREAM).await.unwrap();
    // nats-server 2.9 lets a client aim a push consumer at any subject: here the command
    // service's and the views' request subjects, in their queue groups (a push consumer
    // without one sees no interest where only queue subscribers listen), every event there is.
    let aims = [
        ("cmd", s.command("RegisterResource"), "invitebus-commands"),
        ("q", s.query("sent"), "invitebus-views"),
    ];
    for (name, deliver, group) in aims {
        stream
            .create_consumer(consumer::push::Config {
                name: Some(format!("rogue-{name}")),
                deliver_subject: deliver,
                deliver_group: Some(group.into()),
                deliver_policy: consumer::DeliverPolicy::All,
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .expect("the server lets a client make it");
    }
    // The responders drop what it delivers, and say so.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let dropped = loop {
        let metrics = String::from_utf8(g.get("/metrics", &[]).await.body).unwrap();
        let n = metrics
            .lines()
            .find_map(|l| l.strip_prefix("invitebus_bus_deliveries_dropped_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if n >= 2.0 || std::time::Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(dropped >= 2.0, "deliveries dropped: {dropped}");
    // Nothing was decided from them, and none was answered (an answer would ack it).
    let mut stream = stream;
    assert_eq!(stream.info().await.unwrap().state.messages, before);
    for name in ["rogue-cmd", "rogue-q"] {
        let info = stream.consumer_info(name).await.unwrap();
        assert_eq!(info.ack_floor.stream_sequence, 0, "{name}: nothing acked: {info:?}");
    }
}
