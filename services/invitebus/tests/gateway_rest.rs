//! The seeds' REST APIs over real HTTP against `invitebus serve` (gateway, services, its own
//! nats-server), with the seeds' own example bodies. Refusals append nothing.

mod support;

use serde_json::{json, Value};
use support::gateway::Gateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000_conference_invitations() {
    let gw = Gateway::start().await;
    let (xuan, fang) = (Gateway::token("xuan"), Gateway::token("fang"));
    gw.command(&xuan, "UpsertUser", json!({"user_id": "xuan", "name": "Xuan"}))
        .await;
    gw.command(&fang, "UpsertUser", json!({"user_id": "fang", "name": "Fang"}))
        .await;
    gw.command(
        &xuan,
        "RegisterResource",
        json!({"resource_id": "1", "kind": "conference", "name": "ICSE"}),
    )
    .await;
    let auth = |t: &str| format!("Bearer {t}");
    let create = r#"{"invitee": "fang", "confId": "1"}"#;

    // Refusals, each with seed 000's code, and nothing appended.
    let before = gw.head().await;
    let refused = [
        (vec![], create, 8),
        (
            vec![("Authorization", auth(&Gateway::expired_token("xuan")))],
            create,
            8,
        ),
        (
            vec![("Authorization", auth(&Gateway::foreign_token("xuan")))],
            create,
            8,
        ),
        (vec![("Authorization", auth(&xuan))], r#"{"invitee": "fang"}"#, 9),
        (vec![("Authorization", auth(&xuan))], r#"{"confId": "1"}"#, 9),
    ];
    for (headers, body, code) in refused {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let a = gw.post("/api/invitation/createInvitation", &headers, body).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.json()["code"], code, "{body}: {}", a.json());
    }
    let a = gw.post("/api/invitation/received", &[], "{}").await.json();
    assert_eq!((&a["code"], &a["data"]), (&json!(8), &json!("没有登录")), "{a}");
    assert_eq!(gw.head().await, before, "refused requests append nothing");

    let a = gw
        .post(
            "/api/invitation/createInvitation",
            &[("Authorization", &auth(&xuan))],
            create,
        )
        .await;
    assert_eq!(a.json(), json!({"code": 0, "data": null}));

    let received = gw
        .post("/api/invitation/received", &[("Authorization", &auth(&fang))], "{}")
        .await
        .json();
    assert_eq!(received["code"], 0);
    let items = received["data"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{received}");
    let iid = items[0]["_id"].as_str().unwrap().to_string();
    assert_eq!(items[0]["inviter"], "xuan");
    assert_eq!(items[0]["invitee"], "fang");
    assert_eq!(items[0]["confId"], "1");
    assert_eq!(items[0]["status"], "init");
    assert_eq!(items[0]["user_info"]["name"], "Xuan", "the inviter's profile");
    assert_eq!(items[0]["conference_info"]["name"], "ICSE");

    let sent = gw
        .post(
            "/api/invitation/sent",
            &[("Authorization", &auth(&xuan))],
            r#"{"data": {"status": "init"}}"#,
        )
        .await
        .json();
    assert_eq!(sent["data"][0]["_id"], iid.as_str(), "{sent}");
    assert_eq!(sent["data"][0]["invitee"], "fang");
    assert_eq!(sent["data"][0]["user_info"]["name"], "Fang", "the invitee's profile");

    // Only the invitee answers: the inviter gets code 10 and nothing changes.
    let before = gw.head().await;
    let a = gw
        .post(&format!("/approve/{iid}"), &[("Authorization", &auth(&xuan))], "")
        .await;
    assert_eq!(a.json()["code"], 10, "{}", a.json());
    assert_eq!(gw.head().await, before);

    let a = gw
        .post(&format!("/approve/{iid}"), &[("Authorization", &auth(&fang))], "")
        .await;
    assert_eq!(a.json(), json!({"code": 0, "data": null}));
    let accepted = gw
        .post(
            "/api/invitation/received",
            &[("Authorization", &auth(&fang))],
            r#"{"data": {"status": "accept"}}"#,
        )
        .await
        .json();
    assert_eq!(accepted["data"].as_array().unwrap().len(), 1, "{accepted}");
    assert_eq!(accepted["data"][0]["status"], "accept");
    let pending = gw
        .post(
            "/api/invitation/sent",
            &[("Authorization", &auth(&xuan))],
            r#"{"data": {"status": "init"}}"#,
        )
        .await
        .json();
    assert_eq!(pending["data"], json!([]), "{pending}");
    let inbox = gw.query(&xuan, "inbox", json!({"min_position": gw.head().await})).await;
    let texts: Vec<&str> = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["text"].as_str())
        .collect();
    assert!(texts.contains(&"Fang has agreed to become pcmember"), "{texts:?}");

    // A second invitation, refused.
    let li = Gateway::token("li");
    gw.command(
        &li,
        "RegisterResource",
        json!({"resource_id": "2", "kind": "conference", "name": "FSE"}),
    )
    .await;
    let create = r#"{"invitee": "fang", "confId": 2}"#;
    let a = gw
        .post(
            "/api/invitation/createInvitation",
            &[("Authorization", &auth(&li))],
            create,
        )
        .await;
    assert_eq!(a.json()["code"], 0, "{}", a.json());
    let received = gw
        .post(
            "/api/invitation/received",
            &[("Authorization", &auth(&fang))],
            r#"{"Data": {"status": "init"}}"#,
        )
        .await
        .json();
    let second = received["data"][0]["_id"].as_str().unwrap().to_string();
    let a = gw
        .post(&format!("/reject/{second}"), &[("Authorization", &auth(&fang))], "")
        .await;
    assert_eq!(a.json()["code"], 0);
    let rejected = gw
        .post(
            "/api/invitation/received",
            &[("Authorization", &auth(&fang))],
            r#"{"data": {"status": "reject"}}"#,
        )
        .await
        .json();
    assert_eq!(rejected["data"][0]["_id"], second.as_str(), "{rejected}");
    assert_eq!(rejected["data"][0]["status"], "reject");

    let check = gw.get("/api/invitation/check", &[]).await;
    assert_eq!((check.status, check.json()["code"].clone()), (200, json!(0)));
}

/// Seed 001's create body, with its millisecond times (given as strings, as its sample has them).
fn meeting_body(requester: &str, members: &[(&str, &str)], address: &str) -> Value {
    let members: Vec<Value> = members
        .iter()
        .map(|(uid, name)| json!({"uid": uid, "name": name}))
        .collect();
    json!({
        "requesterUid": requester,
        "requesterName": "Wei Zhang",
        "detail": {
            "createTime": "1763700000000",
            "content": "Quarterly review",
            "address": address,
            "beginTime": "1893456000000",
            "endTime": 1893459600000i64,
            "remindMin": "15",
            "remindType": "1",
            "members": members,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_001_meeting_invitations() {
    let gw = Gateway::start().await;
    let wei = Gateway::token("wei");
    let at = |t: &str, action: &str| format!("/openapi/workbench/meetinginvite/{action}?accessToken={t}");
    let body = meeting_body("wei", &[("fang", "Fang"), ("li", "Li Na")], "Room 5").to_string();

    let before = gw.head().await;
    for path in [
        "/openapi/workbench/meetinginvite/create".to_string(),
        at(&Gateway::expired_token("wei"), "create"),
        at(&Gateway::foreign_token("wei"), "create"),
    ] {
        let a = gw.post(&path, &[], &body).await.json();
        assert_eq!(a["status"], 4003, "{path}: {a}");
        assert_eq!(a["message"], "accessToken超时，请重新获取");
    }
    // The body names another requester than the token's user.
    let a = gw.post(&at(&Gateway::token("li"), "create"), &[], &body).await.json();
    assert_eq!(
        (a["status"].as_u64(), a["error"].as_str()),
        (Some(4001), Some("forbidden")),
        "{a}"
    );
    let a = gw
        .post(
            &at(&wei, "create"),
            &[],
            r#"{"requesterUid": "wei", "detail": {"content": "x"}}"#,
        )
        .await
        .json();
    assert_eq!(a["status"], 4000, "an incomplete detail: {a}");
    assert_eq!(gw.head().await, before, "refused requests append nothing");

    let created = gw.post(&at(&wei, "create"), &[], &body).await.json();
    assert_eq!(created["status"], 0, "{created}");
    let id = created["data"]["meetingInviteId"].as_str().unwrap().to_string();
    let ask = json!({"requesterUid": "wei", "meetingInviteId": id}).to_string();

    let detail = gw.post(&at(&wei, "detail"), &[], &ask).await.json();
    assert_eq!(detail["status"], 0, "{detail}");
    let d = &detail["data"];
    assert_eq!(
        (d["createrId"].as_str(), d["createrName"].as_str()),
        (Some("wei"), Some("Wei Zhang"))
    );
    assert!(d["pushStatus"].is_number(), "pushStatus is a number: {d}");
    assert_eq!(d["detail"]["beginTime"], 1893456000000i64);
    assert_eq!(d["detail"]["endTime"], 1893459600000i64);
    assert_eq!(d["detail"]["createTime"], 1763700000000i64);
    assert_eq!(
        (d["detail"]["remindMin"].as_u64(), d["detail"]["remindType"].as_u64()),
        (Some(15), Some(1))
    );
    let members = d["detail"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 2, "{d}");
    assert!(
        members.iter().all(|m| m["msgStatus"] == 0 && m["remind"] == true),
        "{members:?}"
    );
    assert!(members.iter().any(|m| m["uid"] == "li" && m["name"] == "Li Na"));

    // Update: a new address and one more member.
    let update = meeting_body("wei", &[("fang", "Fang"), ("li", "Li Na"), ("wang", "Wang")], "Room 7");
    let mut update = update.as_object().unwrap().clone();
    update.insert("meetingInviteId".into(), json!(id));
    let a = gw
        .post(&at(&wei, "update"), &[], &Value::Object(update).to_string())
        .await
        .json();
    assert_eq!(a, json!({"status": 0}));
    let d = gw.post(&at(&wei, "detail"), &[], &ask).await.json()["data"].clone();
    assert_eq!(d["detail"]["address"], "Room 7");
    assert!(
        d["detail"]["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["uid"] == "wang" && m["msgStatus"] == 0),
        "{d}"
    );

    // fang reads and accepts, li refuses: msgStatus 2 and 3, li no longer reminded.
    gw.command(&Gateway::token("fang"), "AcceptInvite", json!({"invite_id": id}))
        .await;
    gw.command(&Gateway::token("li"), "RejectInvite", json!({"invite_id": id}))
        .await;
    let d = gw.post(&at(&wei, "detail"), &[], &ask).await.json()["data"].clone();
    let status_of = |uid: &str| {
        let m = d["detail"]["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["uid"] == uid)
            .unwrap()
            .clone();
        (m["msgStatus"].as_u64().unwrap(), m["remind"].as_bool().unwrap())
    };
    assert_eq!(status_of("fang"), (2, true));
    assert_eq!(status_of("li"), (3, false));

    // Only the creator cancels; then pushStatus is 2.
    let fang_asks = json!({"requesterUid": "fang", "meetingInviteId": id}).to_string();
    let a = gw
        .post(&at(&Gateway::token("fang"), "cancel"), &[], &fang_asks)
        .await
        .json();
    assert_eq!(a["status"], 4001, "{a}");
    assert_eq!(
        gw.post(&at(&wei, "cancel"), &[], &ask).await.json(),
        json!({"status": 0})
    );
    let d = gw.post(&at(&wei, "detail"), &[], &ask).await.json()["data"].clone();
    assert_eq!(d["pushStatus"], 2, "{d}");
    assert_eq!(
        gw.post(&at(&wei, "delete"), &[], &ask).await.json(),
        json!({"status": 0})
    );
    let a = gw
        .post(
            &at(&wei, "detail"),
            &[],
            &json!({"requesterUid": "wei", "meetingInviteId": "nope"}).to_string(),
        )
        .await
        .json();
    assert_eq!(a["status"], 4004, "{a}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_003_invite_codes() {
    let gw = Gateway::start().await;
    let (mono, fang) = (Gateway::token("monoceros"), Gateway::token("fang"));
    gw.command(
        &mono,
        "UpsertUser",
        json!({"user_id": "monoceros", "name": "monoceros"}),
    )
    .await;
    gw.command(
        &mono,
        "RegisterResource",
        json!({"resource_id": "136412396083740672", "kind": "guild", "name": "bears🍻"}),
    )
    .await;
    gw.command(&mono, "RegisterResource",
        json!({"resource_id": "136412396142460928", "kind": "channel", "name": "庆祝", "parent_id": "136412396083740672"})).await;
    let bearer = |t: &str| format!("Bearer {t}");
    let channel = "/channels/136412396142460928/invites";

    let a = gw.post(channel, &[], r#"{ "max_age": 86400, "max_uses": 0 }"#).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.json()["code"], "unauthenticated");

    let a = gw
        .post(
            channel,
            &[("Authorization", &bearer(&mono))],
            r#"{ "max_age": 86400, "max_uses": 0 }"#,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.json());
    let invite = a.json();
    let code = invite["code"].as_str().unwrap().to_string();
    assert_eq!(invite["guild"]["id"], "136412396083740672");
    assert_eq!(invite["guild"]["name"], "bears🍻");
    assert_eq!(
        invite["channel"],
        json!({"id": "136412396142460928", "name": "庆祝", "type": 0, "kind": "channel"})
    );
    assert_eq!(invite["inviter"]["id"], "monoceros");
    assert_eq!(invite["inviter"]["username"], "monoceros");
    assert_eq!(
        (
            invite["uses"].as_u64(),
            invite["max_age"].as_u64(),
            invite["max_uses"].as_u64()
        ),
        (Some(0), Some(86400), Some(0))
    );
    assert_eq!(invite["temporary"], false);

    let list = gw.get(channel, &[("Authorization", &bearer(&mono))]).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json().as_array().unwrap().len(), 1);
    assert_eq!(list.json()[0]["code"], code.as_str());

    let shown = gw
        .get(&format!("/invites/{code}"), &[("Authorization", &bearer(&fang))])
        .await;
    assert_eq!(
        (shown.status, shown.json()["code"].as_str()),
        (200, Some(code.as_str()))
    );

    let joined = gw
        .post(&format!("/invites/{code}"), &[("Authorization", &bearer(&fang))], "")
        .await;
    assert_eq!(joined.status, 200, "{}", joined.json());
    assert_eq!(joined.json()["id"], "136412396083740672", "answers the guild");
    assert!(joined.json()["joined_at"].is_string());
    let again = gw
        .post(&format!("/invites/{code}"), &[("Authorization", &bearer(&fang))], "")
        .await;
    assert_eq!(
        (again.status, again.json()["already_member"].as_bool()),
        (200, Some(true)),
        "joining again is fine"
    );
    let shown = gw
        .get(&format!("/invites/{code}"), &[("Authorization", &bearer(&fang))])
        .await;
    assert_eq!(shown.json()["uses"], 1, "a member joining again uses nothing");

    let before = gw.head().await;
    let a = gw
        .send(
            "DELETE",
            &format!("/invites/{code}"),
            &[("Authorization", &bearer(&fang))],
            "",
        )
        .await;
    assert_eq!((a.status, a.json()["code"].as_str()), (403, Some("forbidden")));
    assert_eq!(gw.head().await, before);
    let a = gw
        .send(
            "DELETE",
            &format!("/invites/{code}"),
            &[("Authorization", &bearer(&mono))],
            "",
        )
        .await;
    assert_eq!((a.status, a.body.len()), (204, 0));
    let gone = gw
        .get(&format!("/invites/{code}"), &[("Authorization", &bearer(&fang))])
        .await;
    assert_eq!((gone.status, gone.json()["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_004_admin_list_approve_and_export() {
    let gw = Gateway::start().await;
    let (boss, rec) = (Gateway::admin_token("boss"), Gateway::token("u12"));
    gw.command(
        &rec,
        "UpsertUser",
        json!({"user_id": "u12", "name": "Rec", "phone": "13918305498"}),
    )
    .await;
    for (user, phone) in [("u42", "18229866151"), ("u41", "13761697577")] {
        let profile = json!({"user_id": user, "name": user, "phone": phone, "company_name": "ACME", "department": "R&D",
            "position": "engineer", "area": "Shanghai"});
        gw.command(&Gateway::token(user), "UpsertUser", profile).await;
    }
    gw.command(
        &rec,
        "RegisterResource",
        json!({"resource_id": "41296", "kind": "exhibition", "name": "物联传媒测试"}),
    )
    .await;
    gw.command(
        &rec,
        "CreateInvite",
        json!({"invite_id": "inv", "resource_id": "41296", "invitees": ["u42", "u41"],
        "requires_approval": true}),
    )
    .await;
    for user in ["u42", "u41"] {
        gw.command(&Gateway::token(user), "AcceptInvite", json!({"invite_id": "inv"}))
            .await;
    }
    let list = "/api/admin/invitations?exhibition_id=41296&approve_status=applying&page=1&per_page=15";

    let page = gw.get(list, &[("ACCESS-TOKEN", &boss)]).await.json();
    assert_eq!(
        (&page["code"], &page["message"]),
        (&json!(0), &json!("success")),
        "{page}"
    );
    let data = &page["data"];
    assert_eq!(
        (
            data["total_count"].as_u64(),
            data["current_page"].as_u64(),
            data["per_page"].as_u64()
        ),
        (Some(2), Some(1), Some(15))
    );
    assert_eq!(
        (data["next_page"].clone(), data["prev_page"].clone()),
        (Value::Null, Value::Null)
    );
    let models = data["models"].as_array().unwrap();
    let u42 = models
        .iter()
        .find(|m| m["user"]["phone"] == "18229866151")
        .expect("u42's record");
    assert_eq!(u42["id"], "inv.u42");
    assert_eq!(u42["approve_status"], "applying");
    assert_eq!(u42["user"]["company_name"], "ACME");
    assert_eq!(u42["recommend_user"]["phone"], "13918305498");
    assert_eq!(u42["exhibition"], json!({"id": "41296", "name": "物联传媒测试"}));
    let one = gw
        .get(
            "/api/admin/invitations?user_phone=13761697577",
            &[("ACCESS-TOKEN", &boss)],
        )
        .await
        .json();
    assert_eq!(one["data"]["total_count"], 1, "{one}");

    // Not signed in, or not an admin: 401 in seed 004's words, and nothing appended.
    let before = gw.head().await;
    for (headers, path) in [
        (vec![], list.to_string()),
        (vec![("ACCESS-TOKEN", rec.clone())], list.to_string()),
        (
            vec![("ACCESS-TOKEN", rec.clone())],
            format!("{list}&export_format=xlsx"),
        ),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let a = gw.get(&path, &headers).await.json();
        assert_eq!(
            (a["code"].as_i64(), a["error"].as_str()),
            (Some(401), Some("errors/unauthorized_error")),
            "{path}: {a}"
        );
    }
    let a = gw
        .send(
            "PUT",
            "/api/admin/invitations/inv.u42/approve",
            &[("ACCESS-TOKEN", &Gateway::token("u41"))],
            "{}",
        )
        .await;
    assert_eq!(a.json()["code"], 401, "{}", a.json());
    assert_eq!(gw.head().await, before);

    let approve = r#"{"approve_description": "xxxxx"}"#;
    let a = gw
        .send(
            "PUT",
            "/api/admin/invitations/inv.u42/approve",
            &[("ACCESS-TOKEN", &boss)],
            approve,
        )
        .await
        .json();
    assert_eq!(
        (a["code"].as_i64(), a["data"]["approve_status"].as_str()),
        (Some(0), Some("approved")),
        "{a}"
    );
    assert_eq!(a["data"]["approve_description"], "xxxxx");
    assert_eq!(a["data"]["user"]["phone"], "18229866151");
    let a = gw
        .send(
            "PUT",
            "/api/admin/invitations/inv.u41/reject",
            &[("ACCESS-TOKEN", &boss)],
            r#"{"approve_description": "no"}"#,
        )
        .await
        .json();
    assert_eq!(a["data"]["approve_status"], "denied", "{a}");
    let a = gw
        .send(
            "PUT",
            "/api/admin/invitations/inv.u41/approve",
            &[("ACCESS-TOKEN", &boss)],
            "{}",
        )
        .await
        .json();
    assert_eq!(
        (a["code"].as_i64(), a["message"].as_str()),
        (Some(-1), Some("failure")),
        "approving a denied record: {a}"
    );

    // Export: the uuid, then its progress over SSE to success, then the file. A first export of
    // 2,000 other records keeps the exporter busy, so the second one's stream is open before it
    // starts and carries every step live.
    gw.command(
        &rec,
        "RegisterResource",
        json!({"resource_id": "bulk", "kind": "exhibition", "name": "bulk"}),
    )
    .await;
    for batch in 0..4 {
        let invitees: Vec<String> = (0..500).map(|i| format!("guest{batch}x{i}")).collect();
        gw.command(
            &rec,
            "CreateInvite",
            json!({"resource_id": "bulk", "invitees": invitees}),
        )
        .await;
    }
    let first = gw
        .get(
            "/api/admin/invitations?export_format=xlsx",
            &[("ACCESS-TOKEN", &Gateway::admin_token("boss2"))],
        )
        .await
        .json();
    assert_eq!(first["code"], 0, "{first}");
    let started = gw
        .get(
            &format!("{}&export_format=xlsx", "/api/admin/invitations?exhibition_id=41296"),
            &[("ACCESS-TOKEN", &boss)],
        )
        .await
        .json();
    assert_eq!(
        (started["code"].as_i64(), started["remark"].as_str()),
        (Some(0), Some("导出任务已经加入队列,请耐心等待")),
        "{started}"
    );
    let uuid = started["data"]["uuid"].as_str().unwrap().to_string();
    let sse = gw
        .get(&format!("/api/exports/{uuid}/progress?accessToken={boss}"), &[])
        .await;
    assert_eq!(sse.status, 200);
    assert!(sse
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/event-stream"));
    let events = sse.events();
    let order = ["starting", "start", "writing_file", "before_upload", "success"];
    let ranks: Vec<usize> = events
        .iter()
        .map(|e| order.iter().position(|s| e["status"] == *s).expect("a known status"))
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "in order: {events:?}");
    assert_eq!(
        events[0]["status"], "starting",
        "the stream was open before the export started: {events:?}"
    );
    assert!(
        events.len() >= 4,
        "starting, start, before_upload, success at least: {events:?}"
    );
    let last = events.last().expect("at least the final event");
    assert_eq!(
        (last["status"].as_str(), last["progress"].as_u64()),
        (Some("success"), Some(100)),
        "{events:?}"
    );
    assert_eq!(
        (last["uuid"].as_str(), last["count"].as_u64()),
        (Some(uuid.as_str()), Some(2))
    );
    let file_url = last["file_url"].as_str().unwrap().to_string();
    assert_eq!(file_url, format!("/api/exports/{uuid}/file"));

    let stranger = gw.get(&file_url, &[("ACCESS-TOKEN", &rec)]).await;
    assert_eq!(stranger.json()["code"], 401, "only the requester and admins");
    let file = gw.get(&file_url, &[("ACCESS-TOKEN", &boss)]).await;
    assert_eq!(file.status, 200);
    assert_eq!(
        file.header("content-type"),
        Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    );
    assert!(file.body.starts_with(b"PK"), "an xlsx is a zip");
    assert_eq!(Some(file.body.len() as u64), last["file_size"].as_u64());
    // The native API hands out the same route, never the exporter's own name for the file.
    let native = gw
        .post(
            "/v1/queries/export",
            &[("Authorization", &format!("Bearer {boss}"))],
            &json!({"export_id": uuid}).to_string(),
        )
        .await;
    assert_eq!(native.status, 200, "{}", native.json());
    assert_eq!(native.json()["data"]["file_url"], json!(file_url), "{}", native.json());

    // The same progress over a WebSocket: a late subscriber gets the last message.
    let url = format!("ws://{}/api/exports/{uuid}/ws?accessToken={boss}", gw.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    use futures::StreamExt;
    let frame = ws.next().await.unwrap().unwrap();
    let frame: Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
    assert_eq!(
        (frame["status"].as_str(), frame["uuid"].as_str()),
        (Some("success"), Some(uuid.as_str()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_every_route_and_every_route_is_served() {
    let gw = Gateway::start().await;
    let doc = gw.get("/openapi.json", &[]).await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    // The NATS API's document beside it, for the gateway's prefix (its content: crate asyncapi).
    let asyncapi = gw.get("/asyncapi.json", &[]).await.json();
    assert_eq!(asyncapi["asyncapi"], "3.0.0");
    assert_eq!(
        asyncapi["channels"]["cmd.AcceptInvite"]["address"],
        "invites.cmd.AcceptInvite"
    );
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(
        paths.len(),
        invitebus_gateway::openapi::ROUTES
            .iter()
            .map(|r| r.path)
            .collect::<std::collections::HashSet<_>>()
            .len()
    );
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let concrete = path
                .replace("{command}", "UpsertUser")
                .replace("{query}", "received")
                .replace("{action}", "detail");
            let concrete = concrete
                .split('/')
                .map(|s| if s.starts_with('{') { "x" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let a = gw.send(&method.to_uppercase(), &concrete, &[], "").await;
            assert!(
                a.status != 404 || !a.body.is_empty(),
                "{method} {concrete} is not routed"
            );
            assert_ne!(a.status, 405, "{method} {concrete}");
        }
    }
}
