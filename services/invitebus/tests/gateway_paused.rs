//! A resource whose owner paused new invites (PauseInvites), through each seed's REST API: the
//! refusal comes in that API's shape with its code for `invites_paused`, appends nothing, and
//! after ResumeInvites the same request goes through. (Seed 002's socket: `gateway_ws.rs`.)

mod support;

use serde_json::{json, Value};
use support::gateway::Gateway;

/// Pauses `resource` as `token`'s user and checks the reply.
async fn pause(gw: &Gateway, token: &str, resource: &str) {
    let a = gw
        .command(token, "PauseInvites", json!({"resource_id": resource}))
        .await;
    assert_eq!(a["data"]["paused"], true, "{a}");
}

async fn resume(gw: &Gateway, token: &str, resource: &str) {
    let a = gw
        .command(token, "ResumeInvites", json!({"resource_id": resource}))
        .await;
    assert_eq!(a["data"]["paused"], false, "{a}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_resource_refuses_in_each_seeds_shape_and_takes_invites_once_resumed() {
    let gw = Gateway::start().await;

    // Seed 000: a conference invitation; its code 1 (anything that product never had).
    let xuan = Gateway::token("xuan");
    gw.command(
        &xuan,
        "RegisterResource",
        json!({"resource_id": "1", "kind": "conference", "name": "ICSE"}),
    )
    .await;
    pause(&gw, &xuan, "1").await;
    let bearer = format!("Bearer {xuan}");
    let create = r#"{"invitee": "fang", "confId": "1"}"#;
    let before = gw.head().await;
    let a = gw
        .post(
            "/api/invitation/createInvitation",
            &[("Authorization", &bearer)],
            create,
        )
        .await;
    assert_eq!(a.status, 200);
    let body = a.json();
    assert_eq!(
        (&body["code"], &body["error"]),
        (&json!(1), &json!("invites_paused")),
        "{body}"
    );
    assert_eq!(gw.head().await, before, "a refusal appends nothing");
    resume(&gw, &xuan, "1").await;
    let a = gw
        .post(
            "/api/invitation/createInvitation",
            &[("Authorization", &bearer)],
            create,
        )
        .await;
    assert_eq!(a.json(), json!({"code": 0, "data": null}));

    // Seed 001: a meeting makes its own resource, so a pause is of that meeting: adding members
    // is refused with status 4009 (changing its details is not).
    let wei = Gateway::token("wei");
    let at = |action: &str| format!("/openapi/workbench/meetinginvite/{action}?accessToken={wei}");
    let meeting = |members: &[&str]| {
        let members: Vec<Value> = members.iter().map(|u| json!({"uid": u, "name": u})).collect();
        json!({"requesterUid": "wei", "requesterName": "Wei", "detail": {"createTime": "1763700000000",
            "content": "Review", "address": "Room 5", "beginTime": "1893456000000", "endTime": 1893459600000i64,
            "remindMin": "15", "remindType": "1", "members": members}})
    };
    let created = gw
        .post(&at("create"), &[], &meeting(&["fang"]).to_string())
        .await
        .json();
    assert_eq!(created["status"], 0, "{created}");
    let id = created["data"]["meetingInviteId"].as_str().unwrap().to_string();
    let state = gw
        .query(&wei, "state", json!({"stream_id": format!("invite-{id}")}))
        .await;
    let room = state["state"]["resource_id"].as_str().unwrap().to_string();
    pause(&gw, &wei, &room).await;
    let mut more = meeting(&["fang", "li"]);
    more["meetingInviteId"] = json!(id);
    let before = gw.head().await;
    let a = gw.post(&at("update"), &[], &more.to_string()).await.json();
    assert_eq!(
        (a["status"].as_u64(), a["error"].as_str()),
        (Some(4009), Some("invites_paused")),
        "{a}"
    );
    assert_eq!(gw.head().await, before, "a refusal appends nothing");
    resume(&gw, &wei, &room).await;
    let a = gw.post(&at("update"), &[], &more.to_string()).await.json();
    assert_eq!(a, json!({"status": 0}));

    // Seed 003: creating a code and redeeming one, 409 with the code's name.
    let mono = Gateway::token("monoceros");
    let channel = "136412396142460928";
    gw.command(
        &mono,
        "RegisterResource",
        json!({"resource_id": channel, "kind": "channel", "name": "庆祝"}),
    )
    .await;
    let bearer = format!("Bearer {mono}");
    let path = format!("/channels/{channel}/invites");
    let made = gw
        .post(&path, &[("Authorization", &bearer)], r#"{"max_age": 0, "max_uses": 0}"#)
        .await;
    assert_eq!(made.status, 200, "{}", made.json());
    let code = made.json()["code"].as_str().unwrap().to_string();
    pause(&gw, &mono, channel).await;
    let before = gw.head().await;
    let a = gw
        .post(&path, &[("Authorization", &bearer)], r#"{"max_age": 0, "max_uses": 0}"#)
        .await;
    assert_eq!(
        (a.status, a.json()["code"].as_str()),
        (409, Some("invites_paused")),
        "{}",
        a.json()
    );
    let guest = format!("Bearer {}", Gateway::token("guest"));
    let a = gw
        .post(&format!("/invites/{code}"), &[("Authorization", &guest)], "{}")
        .await;
    assert_eq!(
        (a.status, a.json()["code"].as_str()),
        (409, Some("invites_paused")),
        "{}",
        a.json()
    );
    assert_eq!(gw.head().await, before, "refusals append nothing");
    resume(&gw, &mono, channel).await;
    let a = gw
        .post(&format!("/invites/{code}"), &[("Authorization", &guest)], "{}")
        .await;
    assert_eq!(a.status, 200, "{}", a.json());
}
