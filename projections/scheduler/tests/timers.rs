//! Timers over a real NATS: a reminder due while the scheduler is stopped fires once after it
//! starts (inbox and SMS hand-off), none fires for a cancelled invite, expiry is sent by `system`,
//! and an update moves the expiry; a pause `until` a time is resumed by `system` at that time,
//! once, and a pause that replaced it is not lifted by its timer; a service token the command
//! service refuses leaves timers due.

use chrono::{Duration as Span, Utc};
use futures::StreamExt;
use invitebus_events::subject::Subjects;
use invitebus_events::Reply;
use invitebus_notifier::{NotifierConfig, NotifierService};
use invitebus_scheduler::{SchedulerConfig, SchedulerService};
use invitebus_testkit::Bus;
use serde_json::{json, Value};
use std::time::Duration;

struct Stack {
    bus: Bus,
    _notifier: NotifierService,
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
    Stack {
        bus,
        _notifier: notifier,
    }
}

impl Stack {
    async fn request(&self, subject: String, body: Value) -> Reply {
        self.bus.request(subject, &body).await
    }
    async fn ok(&self, name: &str, body: Value) -> u64 {
        self.bus.ok(name, body).await.position().unwrap_or(0)
    }
    async fn scheduler(&self) -> SchedulerService {
        let mut config = SchedulerConfig::new(self.dir.path().join("scheduler.db"));
        config.subjects = Subjects::default();
        config.tick = Duration::from_millis(50);
        SchedulerService::start(self.client.clone(), config).await.unwrap()
    }
    /// The types of one invite's events, as the log holds them.
    async fn history(&self, invite: &str) -> Vec<String> {
        self.types(&format!("invite-{invite}")).await
    }
    /// The types of one stream's events, as the log holds them.
    async fn types(&self, stream_id: &str) -> Vec<String> {
        let r = self
            .request(
                Subjects::default().query("history"),
                json!({"actor":"root","roles":["admin"],"stream_id":stream_id}),
            )
            .await;
        r.into_result().unwrap()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect()
    }
    async fn wait_for_type(&self, invite: &str, ty: &str) -> bool {
        for _ in 0..100 {
            if self.history(invite).await.iter().any(|t| t == ty) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
    async fn setup(&self) {
        self.ok("UpsertUser", json!({"actor":"boss","user_id":"boss","name":"Boss"}))
            .await;
        self.ok(
            "RegisterResource",
            json!({"actor":"boss","resource_id":"m1","kind":"meeting","name":"Weekly"}),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_due_while_stopped_fires_once_after_start() {
    let s = start().await;
    s.setup().await;
    let mut sms = s.client.subscribe("invites.sms.ann").await.unwrap();
    // Begins in 10 minutes, remind 10 minutes before: due now, while no scheduler runs.
    let begin = Utc::now() + Span::minutes(10);
    let detail = json!({"content":"Weekly sync","begin_time":begin,"remind_min":10,"remind_type":"sms"});
    s.ok(
        "CreateInvite",
        json!({"actor":"boss","resource_id":"m1","invitees":["ann","bob","cid"],"invite_id":"w1","detail":detail}),
    )
    .await;
    s.ok("RejectInvite", json!({"actor":"cid","invite_id":"w1"})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!s.history("w1").await.contains(&"InviteReminded".to_string()));

    let scheduler = s.scheduler().await;
    assert!(
        s.wait_for_type("w1", "InviteReminded").await,
        "the reminder fired after start"
    );
    let msg = tokio::time::timeout(Duration::from_secs(10), sms.next())
        .await
        .unwrap()
        .unwrap();
    let n: Value = serde_json::from_slice(&msg.payload).unwrap();
    assert_eq!(n["kind"], "reminder");
    assert!(n["text"]
        .as_str()
        .unwrap()
        .starts_with("Reminder: Weekly sync starts at "));

    // Again after a restart: still once.
    scheduler.shutdown().await;
    let scheduler = s.scheduler().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let reminders = s.history("w1").await.iter().filter(|t| *t == "InviteReminded").count();
    assert_eq!(reminders, 1);
    let inbox = s
        .request(Subjects::default().query("inbox"), json!({"actor":"bob"}))
        .await
        .into_result()
        .unwrap();
    assert!(inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["kind"] == "reminder"));
    let cid = s
        .request(Subjects::default().query("inbox"), json!({"actor":"cid"}))
        .await
        .into_result()
        .unwrap();
    assert!(
        !cid["items"].as_array().unwrap().iter().any(|n| n["kind"] == "reminder"),
        "no reminder for who refused"
    );
    scheduler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reminder_for_a_cancelled_invite() {
    let s = start().await;
    s.setup().await;
    let scheduler = s.scheduler().await;
    let begin = Utc::now() + Span::minutes(10) + Span::seconds(1);
    let detail = json!({"content":"Cancelled sync","begin_time":begin,"remind_min":10});
    s.ok(
        "CreateInvite",
        json!({"actor":"boss","resource_id":"m1","invitee":"ann","invite_id":"c1","detail":detail}),
    )
    .await;
    s.ok("CancelInvite", json!({"actor":"boss","invite_id":"c1"})).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(!s.history("c1").await.contains(&"InviteReminded".to_string()));
    scheduler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_is_sent_by_system_and_an_update_moves_it() {
    let s = start().await;
    s.setup().await;
    let scheduler = s.scheduler().await;
    s.ok(
        "CreateInvite",
        json!({"actor":"boss","resource_id":"m1","invitee":"ann","invite_id":"e1","expires_in":1}),
    )
    .await;
    s.ok(
        "CreateInvite",
        json!({"actor":"boss","resource_id":"m1","invitee":"bob","invite_id":"e2","expires_in":1}),
    )
    .await;
    s.ok(
        "UpdateInvite",
        json!({"actor":"boss","invite_id":"e2","expires_in":3600}),
    )
    .await;
    assert!(s.wait_for_type("e1", "InviteExpired").await, "e1 expired by its timer");
    let history = s
        .request(
            Subjects::default().query("history"),
            json!({"actor":"boss","stream_id":"invite-e1"}),
        )
        .await
        .into_result()
        .unwrap();
    assert_eq!(history["items"].as_array().unwrap().last().unwrap()["actor"], "system");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !s.history("e2").await.contains(&"InviteExpired".to_string()),
        "the update moved e2's expiry"
    );
    scheduler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_takes_a_timers_old_command_id_does_not_stop_the_expiry() {
    let s = start().await;
    s.setup().await;
    let scheduler = s.scheduler().await;
    s.ok(
        "CreateInvite",
        json!({"actor":"boss","resource_id":"m1","invitee":"ann","invite_id":"e3","expires_in":2}),
    )
    .await;
    let history = s
        .request(
            Subjects::default().query("history"),
            json!({"actor":"boss","stream_id":"invite-e3"}),
        )
        .await
        .into_result()
        .unwrap();
    let expires_at = history["items"][0]["data"]["expires_at"].as_str().unwrap().to_string();
    // What the scheduler's id used to be: predictable, and deduplicated for everyone.
    for guess in [format!("expire-e3-{expires_at}"), "expire-e3".to_string()] {
        s.ok(
            "UpsertUser",
            json!({"actor":"ann","user_id":"ann","name":"Ann","command_id":guess}),
        )
        .await;
    }
    assert!(s.wait_for_type("e3", "InviteExpired").await, "e3 expired all the same");
    scheduler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_until_a_time_is_resumed_once_and_a_replaced_pause_stays() {
    let s = start().await;
    s.setup().await;
    let scheduler = s.scheduler().await;
    let soon = |ms| invitebus_events::envelope::format_time(&(Utc::now() + Span::milliseconds(ms)));
    s.ok(
        "PauseInvites",
        json!({"actor":"boss","resource_id":"m1","until":soon(800)}),
    )
    .await;
    let refused = s
        .request(
            Subjects::default().command("CreateInvite"),
            json!({"actor":"boss","resource_id":"m1","invitee":"ann"}),
        )
        .await;
    assert_eq!(
        refused.error.map(|e| e.code),
        Some(invitebus_events::ErrorCode::InvitesPaused)
    );
    let mut resumed = false;
    for _ in 0..100 {
        if s.types("resource-m1").await.iter().any(|t| t == "InvitesResumed") {
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(resumed, "the scheduler resumed m1 at its until");
    s.ok(
        "CreateInvite",
        json!({"actor":"boss","resource_id":"m1","invitee":"ann"}),
    )
    .await;

    // Paused until soon, then again with no end: the first pause's time lifts nothing.
    s.ok(
        "PauseInvites",
        json!({"actor":"boss","resource_id":"m1","until":soon(300)}),
    )
    .await;
    s.ok("PauseInvites", json!({"actor":"boss","resource_id":"m1"})).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let types = s.types("resource-m1").await;
    assert_eq!(types.iter().filter(|t| *t == "InvitesResumed").count(), 1, "{types:?}");
    let refused = s
        .request(
            Subjects::default().command("CreateInvite"),
            json!({"actor":"boss","resource_id":"m1","invitee":"bob"}),
        )
        .await;
    assert_eq!(
        refused.error.map(|e| e.code),
        Some(invitebus_events::ErrorCode::InvitesPaused)
    );
    scheduler.shutdown().await;
}

/// A scheduler whose service token the command service refuses (its secret differs from the
/// other roles') keeps its timers due, and one with the right secret fires them afterwards: a
/// refusal is never taken for "no longer applies" (before 2026-12-07 it marked them fired).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_service_token_leaves_the_timer_due() {
    use invitebus_auth::{mint, BusAuth, Verifier};
    let users = std::sync::Arc::new(Verifier::hs256("users-secret"));
    let auth = |service: &str| BusAuth::Token {
        users: users.clone(),
        service: service.to_string(),
    };
    let bus = Bus::start_with(|c| c.bus_auth = auth("service-secret")).await;
    let send = |subject: String, actor: &str, roles: &[&str], body: Value| {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        let mut headers = async_nats::HeaderMap::new();
        let token = format!("Bearer {}", mint("users-secret", actor, &roles, 600));
        headers.insert(invitebus_auth::bus::AUTHORIZATION, token.as_str());
        let client = bus.client.clone();
        async move {
            let msg = client
                .request_with_headers(subject, headers, body.to_string().into())
                .await
                .unwrap();
            serde_json::from_slice::<Reply>(&msg.payload).unwrap()
        }
    };
    let subjects = Subjects::default();
    for (name, body) in [
        ("UpsertUser", json!({"user_id":"boss","name":"Boss"})),
        (
            "RegisterResource",
            json!({"resource_id":"m1","kind":"meeting","name":"Weekly"}),
        ),
        (
            "CreateInvite",
            json!({"resource_id":"m1","invitee":"ann","invite_id":"t1","expires_in":1}),
        ),
    ] {
        let r = send(subjects.command(name), "boss", &[], body).await;
        assert!(r.ok, "{name}: {r:?}");
    }
    let expired = || async {
        let r = send(
            subjects.query("history"),
            "root",
            &["admin"],
            json!({"stream_id":"invite-t1"}),
        )
        .await;
        r.into_result().unwrap()["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "InviteExpired")
    };
    let scheduler = |service: &str| {
        let mut config = SchedulerConfig::new(bus.path("scheduler.db"));
        config.tick = Duration::from_millis(50);
        config.bus_auth = auth(service);
        SchedulerService::start(bus.client.clone(), config)
    };

    let wrong = scheduler("not-the-service-secret").await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!expired().await, "a refused token expired nothing");
    wrong.shutdown().await;

    let right = scheduler("service-secret").await.unwrap();
    let mut fired = false;
    for _ in 0..100 {
        if expired().await {
            fired = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(fired, "the timer stayed due and fired with the right token");
    right.shutdown().await;
}
