//! The client as a Rust program on the bus uses it, against a real nats-server, the command
//! service on a real SQLite log and, for queries, the views role.

use futures::StreamExt;
use invitebus_client::{Client, ClientError, EventFilter, Query};
use invitebus_commands::{CommandService, ServiceConfig, WriterConfig};
use invitebus_events::command::{CreateInvite, InviteSpec, JoinResource, RegisterResource};
use invitebus_events::{Command, ErrorCode, Id};
use invitebus_testkit::Bus;
use invitebus_views::{ViewService, ViewsConfig};
use std::time::Duration;

fn id(s: &str) -> Id {
    Id::parse(s).unwrap()
}

fn register(resource: &str) -> Command {
    Command::RegisterResource(RegisterResource {
        resource_id: id(resource),
        kind: id("conference"),
        name: "PC".into(),
        capacity: 0,
        parent_id: None,
        info: None,
    })
}

fn join(resource: &str) -> Command {
    Command::JoinResource(JoinResource {
        resource_id: id(resource),
    })
}

fn invite(resource: &str, invitee: &str) -> Command {
    Command::CreateInvite(CreateInvite {
        resource_id: id(resource),
        spec: InviteSpec {
            invitees: Some(vec![id(invitee)]),
            ..Default::default()
        },
    })
}

/// The stream's events of `stream_id`, through the client's `history` query.
async fn history(client: &Client, stream_id: &str) -> Vec<String> {
    let data = client
        .query(Query::History {
            stream_id: stream_id.into(),
            as_of: None,
        })
        .await
        .unwrap();
    data["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_sent_again_with_its_id_appends_once_and_gets_the_first_reply() {
    let bus = Bus::start().await;
    let xuan = Client::new(bus.client.clone(), id("xuan"));
    let fang = Client::new(bus.client.clone(), id("fang"));
    xuan.send(register("conf")).await.unwrap();

    let first = fang.send_with_id(join("conf"), "join-1").await.unwrap();
    let again = fang.send_with_id(join("conf"), "join-1").await.unwrap();
    assert_eq!(first, again, "the retry is answered with the first reply");
    assert!(first.position.is_some());
    let events = history(&xuan.clone().with_roles(["admin"]), "resource-conf").await;
    assert_eq!(
        events.iter().filter(|t| *t == "MemberJoined").count(),
        2,
        "owner and fang, once: {events:?}"
    );

    // A new id is a new command: already a member now, refused with the catalogue's code.
    match fang.send(join("conf")).await {
        Err(ClientError::Refused(e)) => assert_eq!(e.code, ErrorCode::AlreadyMember),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_whose_reply_is_lost_is_sent_again_with_its_id_and_applies_once() {
    let bus = Bus::start().await;
    let xuan = Client::new(bus.client.clone(), id("xuan"));
    xuan.send(register("conf")).await.unwrap();

    // Between the client and the command service, a hop that passes every request on and
    // loses the first reply (as a dropped connection would).
    let mut requests = bus.client.subscribe("lossy.cmd.*").await.unwrap();
    let hop = bus.client.clone();
    let ids = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = ids.clone();
    let relay = tokio::spawn(async move {
        while let Some(msg) = requests.next().await {
            let name = msg.subject.as_str().rsplit('.').next().unwrap().to_string();
            let answer = hop
                .request(format!("invites.cmd.{name}"), msg.payload.clone())
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
            let first = {
                let mut ids = seen.lock().unwrap();
                ids.push(body["command_id"].as_str().unwrap().to_string());
                ids.len() == 1
            };
            if !first {
                hop.publish(msg.reply.unwrap(), answer.payload).await.unwrap();
            }
        }
    });
    let fang = Client::new(bus.client.clone(), id("fang"))
        .with_subjects(invitebus_events::subject::Subjects::new("lossy"))
        .with_timeout(Duration::from_secs(1));
    let sent = fang.send(join("conf")).await.unwrap();
    relay.abort();

    let ids = ids.lock().unwrap().clone();
    assert_eq!(ids.len(), 2, "sent twice: {ids:?}");
    assert_eq!(ids[0], ids[1], "with the same command_id");
    assert_eq!(fang.seen_position(), sent.position.unwrap());
    let events = history(&xuan, "resource-conf").await;
    assert_eq!(
        events,
        ["ResourceRegistered", "MemberJoined", "MemberJoined"],
        "fang joined once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_sent_while_no_writer_answers_is_retried_until_one_does() {
    // The nats-server and the client first; the command service only a second later, as a
    // standby taking over would (no responders meanwhile).
    let nats = invitebus_natsrun::NatsServer::start_temp().unwrap();
    let conn = async_nats::connect(nats.url()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let xuan = Client::new(conn.clone(), id("xuan"))
        .with_timeout(Duration::from_millis(500))
        .with_attempts(20);
    let sending = tokio::spawn({
        let xuan = xuan.clone();
        async move { xuan.send_with_id(register("conf"), "reg-1").await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!sending.is_finished(), "no reply without a writer");
    let config = ServiceConfig::new(WriterConfig::new(dir.path().join("events.db")));
    let service = CommandService::start(conn.clone(), config).await.unwrap();
    let sent = sending.await.unwrap().unwrap();
    assert_eq!(sent.data["resource_id"], "conf");
    let events = history(&xuan, "resource-conf").await;
    assert_eq!(events, ["ResourceRegistered", "MemberJoined"]);

    // A client that gives up says so, naming the subject.
    let none = Client::new(conn, id("xuan"))
        .with_subjects(invitebus_events::subject::Subjects::new("nobody"))
        .with_timeout(Duration::from_millis(200))
        .with_attempts(2);
    match none.send(register("other")).await {
        Err(ClientError::NoReply { subject, attempts: 2 }) => assert_eq!(subject, "nobody.cmd.RegisterResource"),
        other => panic!("{other:?}"),
    }
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_after_a_command_sees_it() {
    let bus = Bus::start().await;
    let mut config = ViewsConfig::new(bus.path("views.db"));
    config.subjects = bus.subjects.clone();
    config.feed.keys = Some(bus.keys.clone());
    let _views = ViewService::start(bus.client.clone(), config).await.unwrap();

    let xuan = Client::new(bus.client.clone(), id("xuan"));
    xuan.send(register("conf")).await.unwrap();
    for n in 0..20 {
        let sent = xuan.send(invite("conf", &format!("guest{n}"))).await.unwrap();
        assert_eq!(xuan.seen_position(), sent.position.unwrap());
        // At once, no sleeping: the query waits for the views to reach the command's position.
        let page = xuan
            .query(Query::Sent {
                status: None,
                page: None,
                per_page: Some(100),
            })
            .await
            .unwrap();
        assert_eq!(page["total"], n + 1, "{page}");
        let invite_id = sent.data["invite_id"].as_str().unwrap();
        assert!(page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["invite_id"] == invite_id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_resume_after_a_nats_server_restart_with_no_gap_and_no_duplicate() {
    let mut bus = Bus::start().await;
    let xuan = Client::new(bus.client.clone(), id("xuan")).with_attempts(40);
    xuan.send(register("conf")).await.unwrap();
    for n in 0..20 {
        xuan.send(invite("conf", &format!("a{n}"))).await.unwrap();
    }
    let mut events = xuan.events(1, None).await.unwrap();
    let mut positions = Vec::new();
    while positions.len() < 10 {
        positions.push(next(&mut events).await);
    }

    bus.nats.restart().unwrap();
    for n in 0..20 {
        xuan.send(invite("conf", &format!("b{n}"))).await.unwrap();
    }
    let head = xuan.seen_position();
    while positions.last() != Some(&head) {
        positions.push(next(&mut events).await);
    }
    let expected: Vec<u64> = (1..=head).collect();
    assert_eq!(positions, expected);

    // A filtered stream from a later position gives only that type, in order.
    let mut accepted = xuan
        .events(
            12,
            Some(EventFilter {
                event_type: Some("InviteCreated".into()),
                stream_id: None,
            }),
        )
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), accepted.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.event_type.as_str(), first.position >= 12),
        ("InviteCreated", true)
    );
}

async fn next(events: &mut invitebus_client::Events) -> u64 {
    let envelope = tokio::time::timeout(Duration::from_secs(30), events.next())
        .await
        .expect("an event within 30 s")
        .expect("the stream goes on")
        .expect("an envelope");
    envelope.position
}
