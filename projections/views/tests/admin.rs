//! Seed 004's admin page: its shape, and totals for every filter combination.

mod support;

use serde_json::{json, Value};
use support::Stack;

async fn fill(s: &Stack) -> u64 {
    for (u, phone) in [
        ("ref1", "111"),
        ("ref2", "222"),
        ("a", "900"),
        ("b", "901"),
        ("c", "902"),
    ] {
        s.ok(
            "UpsertUser",
            json!({"actor":u,"user_id":u,"name":u.to_uppercase(),"phone":phone,"company_name":"ACME"}),
        )
        .await;
    }
    s.ok(
        "RegisterResource",
        json!({"actor":"ref1","resource_id":"expo1","kind":"exhibition","name":"Expo One"}),
    )
    .await;
    s.ok(
        "RegisterResource",
        json!({"actor":"ref2","resource_id":"expo2","kind":"exhibition","name":"Expo Two"}),
    )
    .await;
    // ref1 invites a, b, c to expo1 (a accepts, b rejects); ref2 invites a and b to expo2 with approval.
    s.ok(
        "CreateInvite",
        json!({"actor":"ref1","resource_id":"expo1","invitees":["a","b","c"],"invite_id":"e1"}),
    )
    .await;
    s.ok("AcceptInvite", json!({"actor":"a","invite_id":"e1"})).await;
    s.ok("RejectInvite", json!({"actor":"b","invite_id":"e1"})).await;
    s.ok(
        "CreateInvite",
        json!({"actor":"ref2","resource_id":"expo2","invitees":["a","b"],"invite_id":"e2","requires_approval":true}),
    )
    .await;
    s.ok("AcceptInvite", json!({"actor":"a","invite_id":"e2"})).await;
    s.ok("AcceptInvite", json!({"actor":"b","invite_id":"e2"})).await;
    s.ok(
        "ApproveInvite",
        json!({"actor":"ref2","invite_id":"e2","invitee":"a","description":"welcome"}),
    )
    .await;
    s.head()
}

async fn page(s: &Stack, filters: Value) -> Value {
    let mut body = json!({"actor":"root","roles":["admin"],"per_page":2});
    body.as_object_mut()
        .unwrap()
        .extend(filters.as_object().unwrap().clone());
    s.q("admin", body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_page_has_seed_004s_shape_and_correct_totals() {
    let s = Stack::start().await;
    let head = fill(&s).await;
    s.views_at(head).await;

    let all = page(&s, json!({})).await;
    assert_eq!(all["total_count"], 5);
    assert_eq!(all["total_pages"], 3);
    assert_eq!(all["current_page"], 1);
    assert_eq!(all["per_page"], 2);
    assert_eq!(all["next_page"], 2);
    assert_eq!(all["prev_page"], Value::Null);
    assert_eq!(all["models"].as_array().unwrap().len(), 2);
    let newest = &all["models"][0];
    assert_eq!(newest["invite_id"], "e2");
    for key in ["invite_id", "invitee", "created_at", "status", "approve_description"] {
        assert!(newest.get(key).is_some(), "model has {key}");
    }
    for key in ["id", "name", "phone", "company_name", "department", "position", "area"] {
        assert!(newest["user"].get(key).is_some(), "user has {key}");
    }
    assert_eq!(newest["recommend_user"]["phone"], "222");
    assert_eq!(newest["resource"]["name"], "Expo Two");

    let last = page(&s, json!({"page":3})).await;
    assert_eq!(last["models"].as_array().unwrap().len(), 1);
    assert_eq!(last["next_page"], Value::Null);
    assert_eq!(last["prev_page"], 2);

    let cases = [
        (json!({"resource_id":"expo1"}), 3),
        (json!({"resource_id":"expo2"}), 2),
        (json!({"inviter_phone":"111"}), 3),
        (json!({"inviter_phone":"222"}), 2),
        (json!({"invitee_phone":"900"}), 2),
        (json!({"invitee_phone":"900","resource_id":"expo2"}), 1),
        (json!({"status":"approved"}), 1),
        (json!({"status":"applying"}), 1),
        (json!({"status":"rejected","inviter_phone":"111"}), 1),
        (json!({"status":"pending"}), 1),
        (json!({"inviter_phone":"999"}), 0),
        (
            json!({"created_from":"2000-01-01T00:00:00Z","created_to":"2100-01-01T00:00:00Z"}),
            5,
        ),
        (json!({"created_from":"2100-01-01T00:00:00Z"}), 0),
        (json!({"created_to":"2000-01-01T00:00:00Z"}), 0),
    ];
    for (filters, total) in cases {
        let got = page(&s, filters.clone()).await;
        assert_eq!(got["total_count"], total, "filters {filters}");
        assert_eq!(
            got["models"].as_array().unwrap().len(),
            (total as usize).min(2),
            "filters {filters}"
        );
    }
    let approved = page(&s, json!({"status":"approved"})).await;
    assert_eq!(approved["models"][0]["approve_description"], "welcome");
    let not_admin = s.query("admin", json!({"actor":"a"})).await;
    assert_eq!(not_admin.error.unwrap().code, invitebus_events::ErrorCode::Forbidden);
}
