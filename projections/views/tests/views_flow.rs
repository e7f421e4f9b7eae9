//! The views as their readers see them, over a real NATS.

mod support;

use invitebus_events::ErrorCode;
use serde_json::json;
use support::{conference, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000_received_and_sent_with_profiles_and_status_filters() {
    let s = Stack::start().await;
    conference(&s).await;
    let r = s
        .ok(
            "CreateInvite",
            json!({"actor":"xuan","resource_id":"conf","invitee":"fang","role":"pcmember"}),
        )
        .await;
    let invite_id = r.data.unwrap()["invite_id"].as_str().unwrap().to_string();
    let p = r.position.flatten().unwrap();

    let received = s.q("received", json!({"actor":"fang","min_position":p})).await;
    assert_eq!(received["total"], 1);
    let item = &received["items"][0];
    assert_eq!(item["invite_id"], invite_id.as_str());
    assert_eq!(item["role"], "pcmember");
    assert_eq!(item["status"], "pending");
    assert_eq!(item["user_info"]["name"], "Xuan", "the inviter's profile");
    assert_eq!(item["resource_info"]["name"], "RustConf");

    let sent = s.q("sent", json!({"actor":"xuan"})).await;
    assert_eq!(sent["items"][0]["invitees"][0]["user_id"], "fang");
    assert_eq!(sent["items"][0]["invitees"][0]["user_info"]["name"], "Fang");

    // Seed 000's `init` is every status it shows as `init`: read and tentative too.
    s.ok("MarkInviteRead", json!({"actor":"fang","invite_id":invite_id}))
        .await;
    let p = s
        .ok("TentativelyAcceptInvite", json!({"actor":"fang","invite_id":invite_id}))
        .await
        .position
        .flatten()
        .unwrap();
    let init = s
        .q("received", json!({"actor":"fang","status":"init","min_position":p}))
        .await;
    assert_eq!(init["total"], 1, "a tentative record reads as init: {init}");
    assert_eq!(s.q("sent", json!({"actor":"xuan","status":"init"})).await["total"], 1);
    assert_eq!(
        s.q("received", json!({"actor":"fang","status":"pending"})).await["total"],
        0
    );
    let p = s
        .ok("AcceptInvite", json!({"actor":"fang","invite_id":invite_id}))
        .await
        .position
        .flatten()
        .unwrap();
    let accepted = s
        .q("received", json!({"actor":"fang","status":"accepted","min_position":p}))
        .await;
    assert_eq!(accepted["total"], 1);
    let seed_alias = s.q("received", json!({"actor":"fang","status":"accept"})).await;
    assert_eq!(seed_alias["total"], 1, "seed 000's `accept` means accepted");
    assert_eq!(
        s.q("received", json!({"actor":"fang","status":"init"})).await["total"],
        0
    );
    assert_eq!(
        s.q("sent", json!({"actor":"xuan","status":"accepted"})).await["total"],
        1
    );
    assert_eq!(
        s.q("sent", json!({"actor":"xuan","status":"pending"})).await["total"],
        0
    );
    assert_eq!(
        s.q("received", json!({"actor":"xuan"})).await["total"],
        0,
        "nobody invited xuan"
    );

    let bad = s.query("received", json!({"actor":"fang","status":"maybe"})).await;
    assert_eq!(bad.error.unwrap().code, ErrorCode::InvalidField);
    let anonymous = s.query("received", json!({})).await;
    assert_eq!(anonymous.error.unwrap().code, ErrorCode::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_with_the_reply_position_always_sees_the_command() {
    let s = Stack::start().await;
    conference(&s).await;
    for i in 0..40 {
        let r = s
            .ok(
                "CreateInvite",
                json!({"actor":"xuan","resource_id":"conf","invitee":format!("u{i}")}),
            )
            .await;
        let p = r.position.flatten().unwrap();
        let got = s.q("received", json!({"actor":format!("u{i}"),"min_position":p})).await;
        assert_eq!(got["total"], 1, "invite {i} visible at its own position");
    }
    let far = s
        .query("received", json!({"actor":"u1","min_position":1_000_000}))
        .await;
    assert_eq!(
        far.error.unwrap().code,
        ErrorCode::Unavailable,
        "a position never reached times out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invite_detail_is_for_its_parties_and_admins() {
    let s = Stack::start().await;
    conference(&s).await;
    let detail = json!({"content":"PC meeting","address":"Room 1","remind_min":15,"remind_type":"in_app"});
    let r = s
        .ok(
            "CreateInvite",
            json!({"actor":"xuan","resource_id":"conf","invitees":["fang","li"],"invite_id":"d1","detail":detail}),
        )
        .await;
    let p = r.position.flatten().unwrap();
    let d = s
        .q("invite", json!({"actor":"li","invite_id":"d1","min_position":p}))
        .await;
    assert_eq!(d["inviter_info"]["name"], "Xuan");
    assert_eq!(d["members"].as_array().unwrap().len(), 2);
    assert_eq!(d["members"][0]["remind"], 15);
    assert_eq!(d["push_status"], 1);
    assert_eq!(d["detail"]["address"], "Room 1");
    let stranger = s.query("invite", json!({"actor":"mallory","invite_id":"d1"})).await;
    assert_eq!(stranger.error.unwrap().code, ErrorCode::Forbidden);
    assert!(
        s.query("invite", json!({"actor":"root","roles":["admin"],"invite_id":"d1"}))
            .await
            .ok
    );
    let missing = s.query("invite", json!({"actor":"xuan","invite_id":"nope"})).await;
    assert_eq!(missing.error.unwrap().code, ErrorCode::NotFound);
    let p = s
        .ok("CancelInvite", json!({"actor":"xuan","invite_id":"d1"}))
        .await
        .position
        .flatten()
        .unwrap();
    let d = s
        .q("invite", json!({"actor":"xuan","invite_id":"d1","min_position":p}))
        .await;
    assert_eq!(d["status"], "cancelled");
    assert_eq!(d["push_status"], 2);
    assert_eq!(d["members"][1]["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_invites_leave_only_the_hiders_list() {
    let s = Stack::start().await;
    conference(&s).await;
    s.ok(
        "CreateInvite",
        json!({"actor":"xuan","resource_id":"conf","invitee":"fang","invite_id":"h1"}),
    )
    .await;
    let p = s
        .ok("HideInvite", json!({"actor":"fang","invite_id":"h1"}))
        .await
        .position
        .flatten()
        .unwrap();
    assert_eq!(
        s.q("received", json!({"actor":"fang","min_position":p})).await["total"],
        0
    );
    assert_eq!(s.q("sent", json!({"actor":"xuan"})).await["total"], 1);
    let p = s
        .ok("HideInvite", json!({"actor":"xuan","invite_id":"h1"}))
        .await
        .position
        .flatten()
        .unwrap();
    assert_eq!(s.q("sent", json!({"actor":"xuan","min_position":p})).await["total"], 0);
}
