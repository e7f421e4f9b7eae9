//! Seed 003's invite codes and seed 004's referral approvals, over a real NATS.

mod support;

use invitebus_events::{ErrorCode, Reply};
use serde_json::json;
use support::Stack;

async fn send(s: &Stack, name: &str, body: serde_json::Value) -> Reply {
    let msg = s
        .client
        .request(
            invitebus_events::subject::Subjects::default().command(name),
            body.to_string().into(),
        )
        .await
        .unwrap();
    serde_json::from_slice(&msg.payload).unwrap()
}

async fn guild(s: &Stack) {
    s.ok(
        "UpsertUser",
        json!({"actor":"owner","user_id":"owner","name":"Owner","phone":"100"}),
    )
    .await;
    s.ok(
        "RegisterResource",
        json!({"actor":"owner","resource_id":"guild","kind":"guild","name":"Rustaceans"}),
    )
    .await;
    s.ok(
        "RegisterResource",
        json!({"actor":"owner","resource_id":"general","kind":"channel","name":"general","parent_id":"guild"}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_uses_max_age_members_and_deletion() {
    let s = Stack::start().await;
    guild(&s).await;
    let body = json!({"actor":"owner","resource_id":"general","code":"TWOUSES","max_uses":2,"temporary":true});
    s.ok("CreateInviteCode", body).await;
    for user in ["a", "b"] {
        let r = s.ok("RedeemInviteCode", json!({"actor":user,"code":"TWOUSES"})).await;
        assert_eq!(r.data.as_ref().unwrap()["already_member"], false);
    }
    let third = send(&s, "RedeemInviteCode", json!({"actor":"c","code":"TWOUSES"})).await;
    assert_eq!(third.error.unwrap().code, ErrorCode::Exhausted);
    let again = s.ok("RedeemInviteCode", json!({"actor":"a","code":"TWOUSES"})).await;
    assert_eq!(again.data.as_ref().unwrap()["already_member"], true);
    assert_eq!(again.position(), None, "nothing appended");

    let p = s.head();
    let code = s
        .q("code", json!({"actor":"a","code":"TWOUSES","min_position":p}))
        .await;
    assert_eq!(code["code"], "TWOUSES");
    assert_eq!(code["uses"], 2, "a member redeeming again counts no use");
    assert_eq!(code["max_uses"], 2);
    assert_eq!(code["max_age"], 86400);
    assert_eq!(code["temporary"], true);
    assert_eq!(code["resource"]["id"], "general");
    assert_eq!(code["resource"]["member_count"], 3);
    assert_eq!(code["parent"]["id"], "guild");
    assert_eq!(code["parent"]["name"], "Rustaceans");
    assert_eq!(code["inviter"]["name"], "Owner");
    assert!(code["expires_at"].is_string() && code["created_at"].is_string());

    // The member came in via the code.
    let history = s
        .q("history", json!({"actor":"a","stream_id":"resource-general"}))
        .await;
    let joined = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["data"]["user_id"] == "a")
        .unwrap()
        .clone();
    assert_eq!(joined["data"]["via"]["code"], "TWOUSES");
    assert_eq!(joined["data"]["inviter"], "owner");

    s.ok(
        "CreateInviteCode",
        json!({"actor":"owner","resource_id":"general","code":"SHORT","max_age":1}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let late = send(&s, "RedeemInviteCode", json!({"actor":"d","code":"SHORT"})).await;
    assert_eq!(late.error.unwrap().code, ErrorCode::Expired);

    let p = s
        .ok("DeleteInviteCode", json!({"actor":"owner","code":"TWOUSES"}))
        .await
        .position()
        .unwrap();
    let gone = send(&s, "RedeemInviteCode", json!({"actor":"e","code":"TWOUSES"})).await;
    assert_eq!(gone.error.unwrap().code, ErrorCode::NotFound);
    let gone = s
        .query("code", json!({"actor":"e","code":"TWOUSES","min_position":p}))
        .await;
    assert_eq!(gone.error.unwrap().code, ErrorCode::NotFound);
    let unknown = send(&s, "RedeemInviteCode", json!({"actor":"e","code":"NOPE"})).await;
    assert_eq!(unknown.error.unwrap().code, ErrorCode::NotFound);
    let list = s
        .q(
            "codes",
            json!({"actor":"owner","resource_id":"general","min_position":p}),
        )
        .await;
    assert_eq!(list["total"], 1, "only SHORT is left");
    assert_eq!(list["items"][0]["code"], "SHORT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referral_code_with_approval_ends_approved_with_its_description() {
    let s = Stack::start().await;
    guild(&s).await;
    s.ok(
        "UpsertUser",
        json!({"actor":"visitor","user_id":"visitor","name":"Visitor","phone":"900"}),
    )
    .await;
    s.ok(
        "CreateInviteCode",
        json!({"actor":"owner","resource_id":"guild","code":"REFER","requires_approval":true}),
    )
    .await;
    let r = s
        .ok("RedeemInviteCode", json!({"actor":"visitor","code":"REFER"}))
        .await;
    let invite_id = r.data.unwrap()["invite_id"].as_str().unwrap().to_string();
    let state = s
        .q(
            "state",
            json!({"actor":"visitor","stream_id":format!("invite-{invite_id}")}),
        )
        .await;
    assert_eq!(state["state"]["records"][0]["status"], "applying");
    assert_eq!(state["state"]["inviter"], "owner", "the code's creator is the inviter");

    let p = s
        .ok(
            "ApproveInvite",
            json!({"actor":"root","roles":["admin"],"invite_id":invite_id,"description":"verified buyer"}),
        )
        .await
        .position()
        .unwrap();
    let history = s
        .q("history", json!({"actor":"visitor","stream_id":"resource-guild"}))
        .await;
    let joined = history["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(joined["type"], "MemberJoined");
    assert_eq!(joined["data"]["via"]["code"], "REFER");
    assert_eq!(joined["data"]["via"]["invite_id"], invite_id.as_str());

    let admin = s
        .q(
            "admin",
            json!({"actor":"root","roles":["admin"],"invitee_phone":"900","min_position":p}),
        )
        .await;
    assert_eq!(admin["total_count"], 1);
    assert_eq!(admin["models"][0]["status"], "approved");
    assert_eq!(admin["models"][0]["approve_description"], "verified buyer");
    assert_eq!(admin["models"][0]["recommend_user"]["phone"], "100");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_are_listed_for_those_who_may_invite_and_show_no_contact_details() {
    let s = Stack::start().await;
    guild(&s).await;
    s.ok(
        "UpsertUser",
        json!({"actor":"owner","user_id":"owner","name":"Owner","phone":"100","email":"o@example.org"}),
    )
    .await;
    s.ok(
        "CreateInviteCode",
        json!({"actor":"owner","resource_id":"general","code":"PRIVATE1"}),
    )
    .await;
    s.ok("JoinResource", json!({"actor":"member","resource_id":"general"}))
        .await;
    let p = s.head();
    let list = |actor: &str, roles: serde_json::Value| json!({"actor":actor,"roles":roles,"resource_id":"general","min_position":p});
    // A stranger may not list the room's codes (and so cannot join with one of them).
    let stranger = s.query("codes", list("stranger", json!([]))).await;
    assert_eq!(stranger.error.unwrap().code, ErrorCode::Forbidden);
    // Its owner, its members and admins may.
    for (actor, roles) in [("owner", json!([])), ("member", json!([])), ("root", json!(["admin"]))] {
        let r = s.q("codes", list(actor, roles)).await;
        assert_eq!(r["total"], 1, "{actor}");
        assert!(
            r["items"][0]["inviter"].get("phone").is_none(),
            "no phone in a listed code"
        );
    }
    // Whoever holds a code sees it as seed 003 shows it: the inviter's id and name, no phone or email.
    let one = s
        .q("code", json!({"actor":"stranger","code":"PRIVATE1","min_position":p}))
        .await;
    assert_eq!(one["inviter"], json!({"id":"owner","name":"Owner"}));
}
