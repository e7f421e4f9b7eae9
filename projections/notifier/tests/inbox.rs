//! Notifications as users get them: exact texts in the inbox, stored on INVITES_NOTIFY for
//! offline users, the push hand-off, and rebuilds that send nothing.

use futures::StreamExt;
use invitebus_events::subject::Subjects;
use invitebus_events::{Envelope, ErrorCode, Reply};
use invitebus_notifier::{Notifier, NotifierConfig, NotifierService};
use invitebus_testkit::Bus;
use serde_json::{json, Value};
use std::time::Duration;

struct Stack {
    bus: Bus,
    notifier: NotifierService,
}

impl std::ops::Deref for Stack {
    type Target = Bus;
    fn deref(&self) -> &Bus {
        &self.bus
    }
}

async fn start() -> Stack {
    let bus = Bus::start().await;
    let mut n = NotifierConfig::new(bus.path("notifier.db"));
    n.subjects = bus.subjects.clone();
    n.feed.keys = Some(bus.keys.clone());
    let notifier = NotifierService::start(bus.client.clone(), n).await.unwrap();
    Stack { bus, notifier }
}

impl Stack {
    async fn request(&self, subject: String, body: Value) -> Reply {
        self.bus.request(subject, &body).await
    }
    async fn ok(&self, name: &str, body: Value) -> u64 {
        self.bus.ok(name, body).await.position().unwrap_or(0)
    }
    async fn inbox(&self, user: &str, min_position: u64) -> Vec<Value> {
        let body = json!({"actor": user, "min_position": min_position});
        let r = self.request(Subjects::default().query("inbox"), body).await;
        r.into_result().unwrap()["items"].as_array().unwrap().clone()
    }
}

fn texts(items: &[Value]) -> Vec<&str> {
    items.iter().map(|n| n["text"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000_texts_reach_the_inbox_and_the_stored_stream() {
    let s = start().await;
    s.ok("UpsertUser", json!({"actor":"xuan","user_id":"xuan","name":"Xuan"}))
        .await;
    s.ok("UpsertUser", json!({"actor":"fang","user_id":"fang","name":"Fang"}))
        .await;
    s.ok(
        "RegisterResource",
        json!({"actor":"xuan","resource_id":"conf","kind":"conference","name":"C"}),
    )
    .await;
    let p = s
        .ok(
            "CreateInvite",
            json!({"actor":"xuan","resource_id":"conf","invitee":"fang","role":"pcmember","invite_id":"i1"}),
        )
        .await;
    let fang = s.inbox("fang", p).await;
    assert_eq!(
        texts(&fang),
        ["You have received an invitation about becoming pcmember!"]
    );
    assert_eq!(fang[0]["kind"], "invite_received");
    assert_eq!(fang[0]["from"], "xuan");
    assert_eq!(fang[0]["read"], false);
    let p = s.ok("AcceptInvite", json!({"actor":"fang","invite_id":"i1"})).await;
    let xuan = s.inbox("xuan", p).await;
    assert_eq!(texts(&xuan), ["Fang has agreed to become pcmember"]);

    // Someone without a profile is named by id; other kinds have their texts.
    s.ok(
        "CreateInvite",
        json!({"actor":"xuan","resource_id":"conf","invitees":["li","wu"],"role":"reviewer","invite_id":"i2"}),
    )
    .await;
    s.ok("RejectInvite", json!({"actor":"li","invite_id":"i2"})).await;
    let p = s.ok("CancelInvite", json!({"actor":"xuan","invite_id":"i2"})).await;
    assert_eq!(texts(&s.inbox("xuan", p).await)[1], "li has refused to become reviewer");
    assert_eq!(
        texts(&s.inbox("wu", p).await),
        [
            "You have received an invitation about becoming reviewer!",
            "Xuan cancelled the invitation to become reviewer"
        ]
    );
    assert_eq!(
        texts(&s.inbox("li", p).await).len(),
        1,
        "li had answered: no cancel notice"
    );

    // Offline users get them later from INVITES_NOTIFY.
    let js = async_nats::jetstream::new(s.client.clone());
    let stream = js.get_stream("INVITES_NOTIFY").await.unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: "invites.notify.fang".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), messages.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let n: Value = serde_json::from_slice(&first.payload).unwrap();
    assert_eq!(n["text"], "You have received an invitation about becoming pcmember!");
    assert_eq!(
        first
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .unwrap()
            .as_str(),
        n["id"].as_str().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_info_is_handed_to_the_push_subject_and_reads_mark_the_inbox() {
    let s = start().await;
    let mut push = s.client.subscribe("invites.push.fang").await.unwrap();
    s.ok(
        "RegisterResource",
        json!({"actor":"xuan","resource_id":"ch","kind":"channel","name":"C"}),
    )
    .await;
    let invite = json!({"actor":"xuan","resource_id":"ch","invitee":"fang","invite_id":"p1","push":{"title":"Call","content":"Xuan calls","badge":true}});
    s.ok("CreateInvite", invite).await;
    let msg = tokio::time::timeout(Duration::from_secs(10), push.next())
        .await
        .unwrap()
        .unwrap();
    let n: Value = serde_json::from_slice(&msg.payload).unwrap();
    assert_eq!(n["push"]["title"], "Call");
    assert_eq!(n["user_id"], "fang");
    let p = s.ok("MarkInviteRead", json!({"actor":"fang","invite_id":"p1"})).await;
    let unread = s
        .request(
            Subjects::default().query("inbox"),
            json!({"actor":"fang","min_position":p,"unread_only":true}),
        )
        .await;
    assert_eq!(unread.into_result().unwrap()["total"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_the_notifier_sends_nothing_and_makes_the_same_inbox() {
    let s = start().await;
    s.ok("UpsertUser", json!({"actor":"fang","user_id":"fang","name":"Fang"}))
        .await;
    s.ok(
        "RegisterResource",
        json!({"actor":"xuan","resource_id":"conf","kind":"conference","name":"C"}),
    )
    .await;
    let mut last = 0;
    for i in 0..5 {
        last = s
            .ok(
                "CreateInvite",
                json!({"actor":"xuan","resource_id":"conf","invitee":"fang","invite_id":format!("r{i}")}),
            )
            .await;
    }
    s.inbox("fang", last).await;
    let js = async_nats::jetstream::new(s.client.clone());
    let mut notify = js.get_stream("INVITES_NOTIFY").await.unwrap();
    // Wait until the live notifier has sent all five.
    for _ in 0..100 {
        if notify.info().await.unwrap().state.messages == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(notify.info().await.unwrap().state.messages, 5);

    // Rebuild into a fresh file from every event: same inbox rows, all recorded as sent.
    let events = js.get_stream("INVITES_EVENTS").await.unwrap();
    let consumer = events
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut batch = Vec::new();
    while let Some(m) = messages.next().await {
        let env: Envelope = serde_json::from_slice(&m.unwrap().payload).unwrap();
        let done = env.position == last;
        batch.push(env);
        if done {
            break;
        }
    }
    let rebuilt = s.dir.path().join("rebuilt.db");
    Notifier::open_rebuild(&rebuilt).unwrap().apply_batch(&batch).unwrap();
    let conn = rusqlite::Connection::open(&rebuilt).unwrap();
    let (count, unsent): (i64, i64) = conn
        .query_row("SELECT COUNT(*), SUM(sent = 0) FROM notifications", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((count, unsent), (5, 0));
    // Start a notifier on the rebuilt file: it has nothing to send.
    let mut config = NotifierConfig::new(rebuilt);
    config.subjects = Subjects::default();
    config.queue_group = "rebuilt".into();
    config.feed.keys = Some(s.keys.clone());
    let second = NotifierService::start(s.client.clone(), config).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(notify.info().await.unwrap().state.messages, 5, "nothing sent twice");
    second.shutdown().await;
    drop(s.notifier);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_disabled_invites_are_sent_live_only() {
    let s = start().await;
    let mut live = s.client.subscribe("invites.notify.fang.live").await.unwrap();
    s.ok(
        "RegisterResource",
        json!({"actor":"xuan","resource_id":"ch","kind":"channel","name":"C"}),
    )
    .await;
    s.ok(
        "CreateInvite",
        json!({"actor":"xuan","resource_id":"ch","invitee":"fang","invite_id":"l1","offline_enabled":false}),
    )
    .await;
    let p = s
        .ok(
            "CreateInvite",
            json!({"actor":"xuan","resource_id":"ch","invitee":"fang","invite_id":"l2"}),
        )
        .await;
    let msg = tokio::time::timeout(Duration::from_secs(10), live.next())
        .await
        .unwrap()
        .unwrap();
    let n: Value = serde_json::from_slice(&msg.payload).unwrap();
    assert_eq!(n["invite_id"], "l1");
    assert_eq!(n["live_only"], true);
    assert_eq!(s.inbox("fang", p).await.len(), 2, "the inbox lists both");
    // Only l2's notification is kept for offline delivery.
    let js = async_nats::jetstream::new(s.client.clone());
    let mut notify = js.get_stream("INVITES_NOTIFY").await.unwrap();
    for _ in 0..100 {
        if notify.info().await.unwrap().state.messages >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(notify.info().await.unwrap().state.messages, 1);
    let kept = notify.get_raw_message(1).await.unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&kept.payload).unwrap()["invite_id"],
        "l2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applicants_hear_of_approval_and_denial() {
    let s = start().await;
    s.ok(
        "RegisterResource",
        json!({"actor":"host","resource_id":"expo","kind":"exhibition","name":"Expo"}),
    )
    .await;
    let body = json!({"actor":"host","resource_id":"expo","invitees":["ann","bob"],"invite_id":"a1","requires_approval":true,"role":"visitor"});
    s.ok("CreateInvite", body).await;
    s.ok("AcceptInvite", json!({"actor":"ann","invite_id":"a1"})).await;
    s.ok("AcceptInvite", json!({"actor":"bob","invite_id":"a1"})).await;
    s.ok(
        "ApproveInvite",
        json!({"actor":"host","invite_id":"a1","invitee":"ann","description":"ok"}),
    )
    .await;
    let p = s
        .ok(
            "DenyInvite",
            json!({"actor":"root","roles":["admin"],"invite_id":"a1","invitee":"bob"}),
        )
        .await;
    assert_eq!(
        texts(&s.inbox("ann", p).await)[1],
        "Your application to become visitor was approved"
    );
    assert_eq!(
        texts(&s.inbox("bob", p).await)[1],
        "Your application to become visitor was denied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_positions_past_i64_and_pages_over_500_are_invalid_fields() {
    let s = start().await;
    let subject = Subjects::default().query("inbox");
    for (body, field) in [
        (json!({"actor":"fang","after":9_223_372_036_854_775_808u64}), "after"),
        (json!({"actor":"fang","per_page":501}), "per_page"),
        (json!({"actor":"fang","per_page":0}), "per_page"),
    ] {
        let r = s.request(subject.clone(), body.clone()).await;
        let err = r.error.unwrap_or_else(|| panic!("{body} was answered"));
        assert_eq!(
            (err.code, err.field.as_deref()),
            (ErrorCode::InvalidField, Some(field)),
            "{body}"
        );
    }
    assert!(s.request(subject, json!({"actor":"fang","per_page":500})).await.ok);
}
