//! The life of an invitation over a real NATS: commands in, events in SQLite and on JetStream.

mod bus;

use bus::Bus;
use invitebus_events::ErrorCode;
use serde_json::json;

async fn conference(bus: &Bus) {
    bus.ok("UpsertUser", json!({"actor":"xuan","user_id":"xuan","name":"Xuan"}))
        .await;
    bus.ok("UpsertUser", json!({"actor":"fang","user_id":"fang","name":"Fang"}))
        .await;
    bus.ok(
        "RegisterResource",
        json!({"actor":"xuan","resource_id":"conf","kind":"conference","name":"RustConf"}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_read_accept_lands_in_the_log_and_on_jetstream_identically() {
    let bus = Bus::start().await;
    conference(&bus).await;
    let created = bus
        .ok(
            "CreateInvite",
            json!({"actor":"xuan","resource_id":"conf","invitee":"fang","role":"pcmember"}),
        )
        .await;
    let invite_id = created.data.as_ref().unwrap()["invite_id"]
        .as_str()
        .unwrap()
        .to_string();
    bus.ok("MarkInviteRead", json!({"actor":"fang","invite_id":invite_id}))
        .await;
    let accepted = bus
        .ok("AcceptInvite", json!({"actor":"fang","invite_id":invite_id}))
        .await;
    assert_eq!(accepted.data.as_ref().unwrap()["status"], "accepted");

    let head = bus.head();
    assert_eq!(
        accepted.position(),
        Some(head),
        "the reply carries the position of the last event"
    );
    bus.relayed(head).await;

    let log: Vec<_> = bus.reader().read_from(0, 1000).unwrap();
    let positions: Vec<u64> = log.iter().map(|e| e.position).collect();
    assert_eq!(
        positions,
        (1..=head).collect::<Vec<_>>(),
        "positions are gapless from 1"
    );
    let types: Vec<&str> = log.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "UserUpserted",
            "UserUpserted",
            "ResourceRegistered",
            "MemberJoined",
            "InviteCreated",
            "InviteRead",
            "InviteAccepted",
            "MemberJoined"
        ]
    );

    let js = bus.jetstream_events().await;
    assert_eq!(js.len(), log.len(), "JetStream holds every event once");
    for ((seq, msg_id, env), stored) in js.iter().zip(&log) {
        assert_eq!(*seq, stored.position, "stream sequence = log position");
        assert_eq!(msg_id, &stored.position.to_string(), "Nats-Msg-Id = position");
        assert_eq!(env, stored, "the published envelope is the stored one");
        assert!(env.hash_is_valid());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_command_id_gets_the_first_reply_and_appends_nothing() {
    let bus = Bus::start().await;
    conference(&bus).await;
    let body = json!({"actor":"xuan","resource_id":"conf","invitee":"fang","command_id":"create-1"});
    let first = bus.ok("CreateInvite", body.clone()).await;
    let head = bus.head();
    let again = bus.ok("CreateInvite", body.clone()).await;
    assert_eq!(first, again, "identical reply");
    assert_eq!(bus.head(), head, "nothing appended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_id_belongs_to_its_actor_and_command() {
    let bus = Bus::start().await;
    conference(&bus).await;
    let xuans = bus
        .ok(
            "CreateInvite",
            json!({"actor":"xuan","resource_id":"conf","invitee":"fang","command_id":"shared-cid-1"}),
        )
        .await;
    // eve takes the same id for another command: hers is appended, and she gets her own reply.
    let eves = bus
        .ok(
            "RegisterResource",
            json!({"actor":"eve","resource_id":"eves","kind":"channel","name":"Eve's","command_id":"shared-cid-1"}),
        )
        .await;
    assert_ne!(eves, xuans);
    assert_eq!(eves.data.as_ref().unwrap()["resource_id"], "eves");
    assert_eq!(bus.reader().read_stream("resource-eves", None).unwrap().len(), 2);
    // xuan too may use it again for another command type.
    let upsert = bus
        .ok(
            "UpsertUser",
            json!({"actor":"xuan","user_id":"xuan","name":"X","command_id":"shared-cid-1"}),
        )
        .await;
    assert_ne!(upsert.position(), xuans.position());
    // The same actor, command and id with another body is a mistake, not a retry.
    let head = bus.head();
    let other = bus
        .send(
            "CreateInvite",
            json!({"actor":"xuan","resource_id":"conf","invitee":"eve","command_id":"shared-cid-1"}),
        )
        .await;
    let err = other.error.unwrap();
    assert_eq!(
        (err.code, err.field.as_deref()),
        (ErrorCode::Conflict, Some("command_id"))
    );
    assert!(err.message.contains("other fields"), "{}", err.message);
    assert_eq!(bus.head(), head, "nothing appended");
    // Within one batch as well: both at once, one appended, the other refused.
    let a = json!({"actor":"fang","user_id":"fang","name":"A","command_id":"batch-1"});
    let b = json!({"actor":"fang","user_id":"fang","name":"B","command_id":"batch-1"});
    let (ra, rb) = tokio::join!(bus.send("UpsertUser", a), bus.send("UpsertUser", b));
    assert_eq!([ra.ok, rb.ok].iter().filter(|ok| **ok).count(), 1, "{ra:?} {rb:?}");
    // The events keep the command's type and digest (outside the hash).
    let last = bus.reader().read_from(head, 10).unwrap();
    assert_eq!(last[0].command_type.as_deref(), Some("UpsertUser"));
    assert_eq!(last[0].command_digest.as_ref().map(String::len), Some(64));
    assert!(last[0].hash_is_valid());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_are_refused_in_names_and_kept_only_as_line_breaks_in_free_text() {
    let bus = Bus::start().await;
    conference(&bus).await;
    let head = bus.head();
    for name in ["Fa\u{0}ng", "\u{1b}[31mFang", "Fang\r\nX-Injected: 1", "Fang\u{7f}"] {
        let r = bus
            .send("UpsertUser", json!({"actor":"fang","user_id":"fang","name":name}))
            .await;
        let err = r.error.unwrap_or_else(|| panic!("{name:?} was accepted"));
        assert_eq!(
            (err.code, err.field.as_deref()),
            (ErrorCode::InvalidField, Some("name")),
            "{name:?}"
        );
    }
    let phone = bus
        .send(
            "UpsertUser",
            json!({"actor":"fang","user_id":"fang","name":"Fang","phone":"1\n2"}),
        )
        .await;
    assert_eq!(phone.error.unwrap().field.as_deref(), Some("phone"));
    let role = bus
        .send(
            "CreateInvite",
            json!({"actor":"xuan","resource_id":"conf","invitee":"fang","role":"pc\u{0}member"}),
        )
        .await;
    assert_eq!(role.error.unwrap().field.as_deref(), Some("role"));
    assert_eq!(bus.head(), head, "nothing appended");
    // Free text keeps its line breaks, not other control characters.
    bus.ok(
        "CreateInvite",
        json!({"actor":"xuan","resource_id":"conf","invitee":"fang","invite_id":"t1","message":"Dear Fang,\n\tcome"}),
    )
    .await;
    let nul = bus
        .send(
            "RejectInvite",
            json!({"actor":"fang","invite_id":"t1","reason":"no\u{0}"}),
        )
        .await;
    assert_eq!(nul.error.unwrap().field.as_deref(), Some("reason"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_past_the_year_9999_and_positions_past_i64_are_invalid_fields() {
    let bus = Bus::start().await;
    conference(&bus).await;
    let head = bus.head();
    let code = bus
        .send(
            "CreateInviteCode",
            json!({"actor":"xuan","resource_id":"conf","max_age":1_000_000_000_000u64}),
        )
        .await;
    let err = code.error.unwrap();
    assert_eq!(
        (err.code, err.field.as_deref()),
        (ErrorCode::InvalidField, Some("max_age"))
    );
    let invite = bus
        .send(
            "CreateInvite",
            json!({"actor":"xuan","resource_id":"conf","invitee":"fang","expires_in":1_000_000_000_000u64}),
        )
        .await;
    assert_eq!(invite.error.unwrap().field.as_deref(), Some("expires_in"));
    assert_eq!(bus.head(), head);
    // A year ahead is fine, and written as RFC 3339.
    let ok = bus
        .ok(
            "CreateInviteCode",
            json!({"actor":"xuan","resource_id":"conf","code":"YEAR","max_age":31_536_000}),
        )
        .await;
    let created = bus.reader().read_from(head, 10).unwrap();
    let expires = created[0].data["expires_at"].as_str().unwrap().to_string();
    assert!(
        chrono::DateTime::parse_from_rfc3339(&expires).is_ok(),
        "{expires} {ok:?}"
    );
    // history's as_of beyond what a position can be.
    let subject = invitebus_events::subject::Subjects::default().query("history");
    for as_of in [json!(9_223_372_036_854_775_808u64), json!("9223372036854775808")] {
        let body = json!({"actor":"xuan","stream_id":"resource-conf","as_of":as_of});
        let msg = bus
            .client
            .request(subject.clone(), body.to_string().into())
            .await
            .unwrap();
        let r: invitebus_events::Reply = serde_json::from_slice(&msg.payload).unwrap();
        let err = r.error.unwrap();
        assert_eq!(
            (err.code, err.field.as_deref()),
            (ErrorCode::InvalidField, Some("as_of"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_query_name_is_invalid_command() {
    let bus = Bus::start().await;
    for subject in ["invites.q.foo", "invites.q.foo.bar"] {
        let msg = bus.client.request(subject, "{}".into()).await.unwrap();
        let r: invitebus_events::Reply = serde_json::from_slice(&msg.payload).unwrap();
        assert_eq!(r.error.unwrap().code, ErrorCode::InvalidCommand, "{subject}");
    }
    // A known query is answered by its own role only (history: this one).
    let msg = bus
        .client
        .request(
            "invites.q.history",
            json!({"actor":"x","roles":["admin"],"stream_id":"user-x"})
                .to_string()
                .into(),
        )
        .await
        .unwrap();
    let r: invitebus_events::Reply = serde_json::from_slice(&msg.payload).unwrap();
    assert!(r.ok, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_cannot_take_the_workers_command_ids() {
    let bus = Bus::start().await;
    let head = bus.head();
    let r = bus
        .send(
            "UpsertUser",
            json!({"actor":"fang","user_id":"fang","name":"Fang","command_id":"sys-0123456789abcdef"}),
        )
        .await;
    let err = r.error.unwrap();
    assert_eq!(
        (err.code, err.field.as_deref()),
        (ErrorCode::InvalidField, Some("command_id"))
    );
    assert_eq!(bus.head(), head);
    // The timers' ids are keyed: the same timer gives the same id, another key another one.
    use invitebus_events::command::system_command_id;
    let a = system_command_id(b"k1", &["expire", "i1", "2026-12-01T00:00:00.000Z"]);
    assert_eq!(
        a,
        system_command_id(b"k1", &["expire", "i1", "2026-12-01T00:00:00.000Z"])
    );
    assert_ne!(
        a,
        system_command_id(b"k2", &["expire", "i1", "2026-12-01T00:00:00.000Z"])
    );
    assert_ne!(
        a,
        system_command_id(b"k1", &["expire", "i1-2026", "12-01T00:00:00.000Z"])
    );
    assert!(a.starts_with("sys-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_racing_answers_on_one_invite_have_exactly_one_winner() {
    let bus = Bus::start().await;
    conference(&bus).await;
    bus.ok(
        "CreateInvite",
        json!({"actor":"xuan","resource_id":"conf","invitee":"fang","invite_id":"race"}),
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let client = bus.client.clone();
        let name = if i % 2 == 0 { "AcceptInvite" } else { "RejectInvite" };
        tasks.push(tokio::spawn(async move {
            let subject = invitebus_events::subject::Subjects::default().command(name);
            let body = json!({"actor":"fang","invite_id":"race"}).to_string();
            let msg = client.request(subject, body.into()).await.unwrap();
            serde_json::from_slice::<invitebus_events::Reply>(&msg.payload).unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        let r = t.await.unwrap();
        if r.ok {
            winners += 1;
        } else {
            let code = r.error.unwrap().code;
            assert!(
                matches!(code, ErrorCode::AlreadyAccepted | ErrorCode::AlreadyRejected),
                "got {code}"
            );
        }
    }
    assert_eq!(winners, 1);
    let answers = bus
        .reader()
        .read_stream("invite-race", None)
        .unwrap()
        .iter()
        .filter(|e| e.event_type == "InviteAccepted" || e.event_type == "InviteRejected")
        .count();
    assert_eq!(answers, 1, "one answer in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_version_guards_the_stream() {
    let bus = Bus::start().await;
    conference(&bus).await;
    bus.ok(
        "CreateInvite",
        json!({"actor":"xuan","resource_id":"conf","invitee":"fang","invite_id":"v"}),
    )
    .await;
    let stale = bus
        .send(
            "MarkInviteRead",
            json!({"actor":"fang","invite_id":"v","expected_version":0}),
        )
        .await;
    assert_eq!(stale.error.unwrap().code, ErrorCode::Conflict);
    bus.ok(
        "MarkInviteRead",
        json!({"actor":"fang","invite_id":"v","expected_version":1}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_state_queries_read_the_log_as_of_a_position() {
    let bus = Bus::start().await;
    conference(&bus).await;
    let created = bus
        .ok(
            "CreateInvite",
            json!({"actor":"xuan","resource_id":"conf","invitee":"fang","invite_id":"h"}),
        )
        .await;
    bus.ok("AcceptInvite", json!({"actor":"fang","invite_id":"h"})).await;
    let q = |name: &str, body: serde_json::Value| {
        let client = bus.client.clone();
        let subject = invitebus_events::subject::Subjects::default().query(name);
        async move {
            let msg = client.request(subject, body.to_string().into()).await.unwrap();
            serde_json::from_slice::<invitebus_events::Reply>(&msg.payload).unwrap()
        }
    };
    let now = q("state", json!({"actor":"fang","stream_id":"invite-h"}))
        .await
        .into_result()
        .unwrap();
    assert_eq!(now["state"]["records"][0]["status"], "accepted");
    assert_eq!(now["version"], 2);
    let then = q(
        "state",
        json!({"actor":"fang","stream_id":"invite-h","as_of":created.position()}),
    )
    .await
    .into_result()
    .unwrap();
    assert_eq!(then["state"]["records"][0]["status"], "pending");
    assert_eq!(then["state"]["status"], "open");
    let history = q("history", json!({"actor":"xuan","stream_id":"invite-h"}))
        .await
        .into_result()
        .unwrap();
    assert_eq!(history["items"].as_array().unwrap().len(), 2);
    assert_eq!(history["broken"], json!([]), "every stored hash holds");
    let stranger = q("history", json!({"actor":"mallory","stream_id":"invite-h"})).await;
    assert_eq!(stranger.error.unwrap().code, ErrorCode::Forbidden);
    let admin = q(
        "history",
        json!({"actor":"root","roles":["admin"],"stream_id":"invite-h"}),
    )
    .await;
    assert!(admin.ok);
    let bad = q("state", json!({"actor":"fang","stream_id":"invite.h"})).await;
    assert_eq!(bad.error.unwrap().code, ErrorCode::InvalidField);
    // A row altered in the file is named: its stored hash no longer matches what is stored.
    let accepted = history["items"][1]["position"].as_u64().unwrap();
    let file = rusqlite::Connection::open(bus.dir.path().join("events.db")).unwrap();
    file.execute(
        "UPDATE events SET actor = 'mallory' WHERE position = ?1",
        [accepted as i64],
    )
    .unwrap();
    let history = q("history", json!({"actor":"xuan","stream_id":"invite-h"}))
        .await
        .into_result()
        .unwrap();
    assert_eq!(history["broken"], json!([accepted]));
}
