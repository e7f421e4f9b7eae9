//! A tentative answer end to end, through `invitebus serve` and seed 001's API: the invitee
//! answers "maybe" proposing another time; the inviter is notified and sees the proposal in the
//! meeting's detail (msgStatus 1); moving the meeting asks the invitee again (msgStatus 0).

mod support;

use serde_json::{json, Value};
use support::gateway::Gateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maybe_with_a_proposal_reaches_the_inviter_and_new_times_ask_again() {
    let gw = Gateway::start().await;
    let (wei, fang) = (Gateway::token("wei"), Gateway::token("fang"));
    let at = |action: &str| format!("/openapi/workbench/meetinginvite/{action}?accessToken={wei}");
    let meeting = |begin: i64| {
        json!({"requesterUid": "wei", "requesterName": "Wei", "detail": {"createTime": "1763700000000",
            "content": "Review", "address": "Room 5", "beginTime": begin.to_string(), "endTime": begin + 3_600_000,
            "remindMin": "15", "remindType": "1", "members": [{"uid": "fang", "name": "Fang"}]}})
    };
    let created = gw
        .post(&at("create"), &[], &meeting(1893456000000).to_string())
        .await
        .json();
    assert_eq!(created["status"], 0, "{created}");
    let id = created["data"]["meetingInviteId"].as_str().unwrap().to_string();

    let maybe = gw
        .command(
            &fang,
            "TentativelyAcceptInvite",
            json!({"invite_id": id, "proposed_begin_time": "2030-01-02T09:00:00Z", "comment": "a day later?"}),
        )
        .await;
    assert_eq!(maybe["data"]["status"], "tentative", "{maybe}");
    let head = gw.head().await;

    let inbox = gw.query(&wei, "inbox", json!({"min_position": head})).await;
    let texts: Vec<&str> = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["text"].as_str())
        .collect();
    assert!(
        texts.contains(&"fang has tentatively accepted to become member"),
        "{texts:?}"
    );

    let fang_in = |detail: &Value| {
        detail["data"]["detail"]["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["uid"] == "fang")
            .cloned()
            .unwrap()
    };
    let ask = json!({"requesterUid": "wei", "meetingInviteId": id}).to_string();
    let detail = gw.post(&at("detail"), &[], &ask).await.json();
    let member = fang_in(&detail);
    assert_eq!(
        (&member["msgStatus"], &member["status"]),
        (&json!(1), &json!("tentative")),
        "{detail}"
    );
    assert_eq!(member["proposal"]["beginTime"], 1893574800000i64, "{member}");
    assert_eq!(member["proposal"]["comment"], "a day later?");
    let invite = gw
        .query(&wei, "invite", json!({"invite_id": id, "min_position": head}))
        .await;
    assert_eq!(
        invite["status"], "open",
        "a tentative answer keeps the invite open: {invite}"
    );
    // Also once the views recompute the invite's status (any update does).
    let done = gw
        .command(
            &wei,
            "UpdateInvite",
            json!({"invite_id": id, "message": "agenda attached"}),
        )
        .await;
    let head = done["position"].as_u64().unwrap();
    let invite = gw
        .query(&wei, "invite", json!({"invite_id": id, "min_position": head}))
        .await;
    assert_eq!(invite["status"], "open", "{invite}");

    // Moved by a day: fang is asked again, and the proposal is gone.
    let mut moved = meeting(1893542400000);
    moved["meetingInviteId"] = json!(id);
    let a = gw.post(&at("update"), &[], &moved.to_string()).await.json();
    assert_eq!(a, json!({"status": 0}));
    let detail = gw.post(&at("detail"), &[], &ask).await.json();
    let member = fang_in(&detail);
    assert_eq!(
        (&member["msgStatus"], &member["status"]),
        (&json!(0), &json!("pending")),
        "{detail}"
    );
    assert!(member.get("proposal").is_none(), "{member}");
}
