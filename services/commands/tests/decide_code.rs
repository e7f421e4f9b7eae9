//! Decisions of the invite-code aggregate: CreateInviteCode, RedeemInviteCode, DeleteInviteCode.

mod support;

use chrono::Duration;
use invitebus_events::{ErrorCode, Event, RecordStatus};
use serde_json::{json, Value};
use support::Scenario;

/// `conference()` plus code `JOIN` made by xuan for `conf`, with `extra` fields.
fn with_code(extra: Value) -> Scenario {
    let mut s = Scenario::conference();
    let mut body = json!({"actor":"xuan","resource_id":"conf","code":"JOIN"});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    s.given("CreateInviteCode", body);
    s
}

fn redeem(actor: &str) -> Value {
    json!({"actor": actor, "code": "JOIN"})
}

// ---- CreateInviteCode ----

#[test]
fn create_code_by_a_non_member_is_not_member() {
    let mut s = Scenario::conference();
    s.when("CreateInviteCode", json!({"actor":"fang","resource_id":"conf"}))
        .then_error(ErrorCode::NotMember);
}

#[test]
fn create_code_for_an_unknown_resource_is_not_found() {
    let mut s = Scenario::conference();
    s.when("CreateInviteCode", json!({"actor":"xuan","resource_id":"nope"}))
        .then_error(ErrorCode::NotFound);
}

#[test]
fn create_code_generates_a_code_that_lives_a_day_by_default() {
    let mut s = Scenario::conference();
    let now = s.now;
    let then = s.when("CreateInviteCode", json!({"actor":"xuan","resource_id":"conf"}));
    then.then_types(&["InviteCodeCreated"]);
    assert_eq!(then.reply()["code"], "CODE0001");
    let Event::InviteCodeCreated(c) = &then.then_events()[0] else {
        panic!("not InviteCodeCreated")
    };
    assert_eq!(c.code, "CODE0001");
    assert_eq!(c.inviter, "xuan");
    assert_eq!(c.max_age, 86_400);
    assert_eq!(c.max_uses, 0);
    assert!(!c.requires_approval);
    assert_eq!(c.expires_at, Some(now + Duration::days(1)));
}

#[test]
fn create_code_with_max_age_zero_never_expires() {
    let mut s = Scenario::conference();
    let then = s.when(
        "CreateInviteCode",
        json!({"actor":"xuan","resource_id":"conf","max_age":0}),
    );
    assert_eq!(then.data(0)["expires_at"], json!(null));
}

#[test]
fn create_code_with_a_taken_code_is_resource_exists() {
    let mut s = with_code(json!({}));
    s.when(
        "CreateInviteCode",
        json!({"actor":"xuan","resource_id":"conf","code":"JOIN"}),
    )
    .then_field_error(ErrorCode::ResourceExists, "code");
}

// ---- RedeemInviteCode ----

#[test]
fn redeem_code_joins_via_the_code() {
    let mut s = with_code(json!({}));
    let then = s.when("RedeemInviteCode", redeem("fang"));
    then.then_types(&["InviteCodeRedeemed", "MemberJoined"]);
    assert_eq!(then.data(0)["uses"], 1);
    assert_eq!(then.data(0)["inviter"], "xuan");
    assert_eq!(then.data(1)["via"], json!({"code":"JOIN"}));
    assert_eq!(then.data(1)["inviter"], "xuan");
    assert_eq!(then.reply()["resource_id"], "conf");
    assert_eq!(then.reply()["already_member"], false);
    assert_eq!(then.reply()["invite_id"], json!(null));
    assert!(s.is_member("conf", "fang"));
    assert_eq!(s.code_uses("JOIN"), 1);
}

#[test]
fn redeem_code_beyond_max_uses_is_exhausted() {
    let mut s = with_code(json!({"max_uses":2}));
    s.when("RedeemInviteCode", redeem("a"))
        .then_types(&["InviteCodeRedeemed", "MemberJoined"]);
    s.when("RedeemInviteCode", redeem("b"))
        .then_types(&["InviteCodeRedeemed", "MemberJoined"]);
    s.when("RedeemInviteCode", redeem("c")).then_error(ErrorCode::Exhausted);
    assert!(!s.is_member("conf", "c"));
    assert_eq!(s.code_uses("JOIN"), 2);
}

#[test]
fn redeem_code_by_a_member_is_ok_with_nothing_appended() {
    let mut s = with_code(json!({}));
    s.given("RedeemInviteCode", redeem("fang"));
    let then = s.when("RedeemInviteCode", redeem("fang"));
    then.then_nothing();
    assert_eq!(then.reply()["already_member"], true);
    assert_eq!(then.reply()["resource_id"], "conf");
    assert_eq!(s.code_uses("JOIN"), 1);
    let then = s.when("RedeemInviteCode", redeem("xuan"));
    then.then_nothing();
    assert_eq!(then.reply()["already_member"], true);
}

#[test]
fn redeem_code_past_max_age_is_expired() {
    let mut s = with_code(json!({"max_age":1}));
    s.advance(2);
    s.when("RedeemInviteCode", redeem("fang"))
        .then_error(ErrorCode::Expired);
}

#[test]
fn redeem_code_before_max_age_is_allowed() {
    let mut s = with_code(json!({"max_age":10}));
    s.advance(9);
    s.when("RedeemInviteCode", redeem("fang"))
        .then_types(&["InviteCodeRedeemed", "MemberJoined"]);
}

#[test]
fn redeem_a_deleted_code_is_not_found() {
    let mut s = with_code(json!({}));
    s.given("DeleteInviteCode", json!({"actor":"xuan","code":"JOIN"}));
    s.when("RedeemInviteCode", redeem("fang"))
        .then_error(ErrorCode::NotFound);
}

#[test]
fn redeem_an_unknown_code_is_not_found() {
    let mut s = Scenario::conference();
    s.when("RedeemInviteCode", redeem("fang"))
        .then_field_error(ErrorCode::NotFound, "code");
}

#[test]
fn redeem_code_into_a_full_resource_is_resource_full() {
    let mut s = Scenario::new();
    s.given(
        "RegisterResource",
        json!({"actor":"xuan","resource_id":"room","kind":"meeting","name":"Room","capacity":1}),
    )
    .given(
        "CreateInviteCode",
        json!({"actor":"xuan","resource_id":"room","code":"JOIN"}),
    );
    s.when("RedeemInviteCode", redeem("fang"))
        .then_error(ErrorCode::ResourceFull);
    assert_eq!(s.code_uses("JOIN"), 0);
}

#[test]
fn redeem_code_requiring_approval_makes_an_applying_invite() {
    let mut s = with_code(json!({"requires_approval":true}));
    let then = s.when("RedeemInviteCode", redeem("fang"));
    then.then_types(&["InviteCodeRedeemed", "InviteCreated", "InviteAccepted"]);
    let invite_id = then.reply()["invite_id"].as_str().expect("an invite id").to_string();
    assert_eq!(then.reply()["already_member"], false);
    assert_eq!(then.data(0)["invite_id"], invite_id.as_str());
    assert_eq!(then.data(1)["inviter"], "xuan");
    assert_eq!(then.data(1)["code"], "JOIN");
    assert_eq!(then.data(1)["requires_approval"], true);
    assert_eq!(then.data(2)["status"], "applying");
    assert_eq!(s.record_status(&invite_id, "fang"), Some(RecordStatus::Applying));
    assert!(!s.is_member("conf", "fang"));

    let then = s.when("ApproveInvite", json!({"actor":"xuan","invite_id":invite_id}));
    then.then_types(&["InviteApproved", "MemberJoined"]);
    assert_eq!(then.data(1)["via"], json!({"invite_id":invite_id,"code":"JOIN"}));
    assert_eq!(s.record_status(&invite_id, "fang"), Some(RecordStatus::Approved));
    assert!(s.is_member("conf", "fang"));
}

#[test]
fn redeem_code_again_while_applying_appends_nothing_and_names_the_invite() {
    let mut s = with_code(json!({"requires_approval":true}));
    let first = s.when("RedeemInviteCode", redeem("fang"));
    let invite_id = first.reply()["invite_id"].clone();
    let then = s.when("RedeemInviteCode", redeem("fang"));
    then.then_nothing();
    assert_eq!(then.reply()["invite_id"], invite_id);
    assert_eq!(then.reply()["already_member"], false);
    assert_eq!(s.code_uses("JOIN"), 1);
}

#[test]
fn redeem_code_requiring_approval_can_be_denied() {
    let mut s = with_code(json!({"requires_approval":true}));
    let then = s.when("RedeemInviteCode", redeem("fang"));
    let invite_id = then.reply()["invite_id"].as_str().unwrap().to_string();
    s.when("DenyInvite", json!({"actor":"xuan","invite_id":invite_id}))
        .then_types(&["InviteDenied"]);
    assert_eq!(s.record_status(&invite_id, "fang"), Some(RecordStatus::Denied));
    assert!(!s.is_member("conf", "fang"));
}

#[test]
fn redeem_code_again_after_approval_and_leaving_applies_again() {
    let mut s = with_code(json!({"requires_approval":true}));
    let then = s.when("RedeemInviteCode", redeem("fang"));
    let invite_id = then.reply()["invite_id"].as_str().unwrap().to_string();
    s.given("ApproveInvite", json!({"actor":"xuan","invite_id":invite_id}))
        .given("LeaveResource", json!({"actor":"fang","resource_id":"conf"}));
    s.when("RedeemInviteCode", redeem("fang"))
        .then_types(&["InviteCodeRedeemed", "InviteCreated", "InviteAccepted"]);
}

#[test]
fn redeem_code_again_after_denial_does_not_claim_success_silently() {
    let mut s = with_code(json!({"requires_approval":true}));
    let then = s.when("RedeemInviteCode", redeem("fang"));
    let invite_id = then.reply()["invite_id"].as_str().unwrap().to_string();
    s.given("DenyInvite", json!({"actor":"xuan","invite_id":invite_id}));
    let then = s.when("RedeemInviteCode", redeem("fang"));
    assert!(
        then.result.as_ref().map_or(true, |out| !out.events.is_empty()),
        "ok with nothing appended for a non-member"
    );
}

#[test]
fn create_code_with_a_huge_max_age_is_refused_without_panicking() {
    let mut s = Scenario::conference();
    let body = json!({"actor":"xuan","resource_id":"conf","max_age":u64::MAX});
    let then = s.when("CreateInviteCode", body);
    if then.result.is_err() {
        then.then_field_error(ErrorCode::InvalidField, "max_age");
    }
}

// ---- DeleteInviteCode ----

#[test]
fn delete_code_by_its_creator_is_allowed() {
    let mut s = Scenario::conference();
    s.given("JoinResource", json!({"actor":"fang","resource_id":"conf"}))
        .given(
            "CreateInviteCode",
            json!({"actor":"fang","resource_id":"conf","code":"JOIN"}),
        );
    let then = s.when("DeleteInviteCode", json!({"actor":"fang","code":"JOIN"}));
    then.then_types(&["InviteCodeDeleted"]);
    assert_eq!(then.data(0)["by"], "fang");
}

#[test]
fn delete_code_by_the_resource_owner_is_allowed() {
    let mut s = Scenario::conference();
    s.given("JoinResource", json!({"actor":"fang","resource_id":"conf"}))
        .given(
            "CreateInviteCode",
            json!({"actor":"fang","resource_id":"conf","code":"JOIN"}),
        );
    s.when("DeleteInviteCode", json!({"actor":"xuan","code":"JOIN"}))
        .then_types(&["InviteCodeDeleted"]);
}

#[test]
fn delete_code_by_a_stranger_is_forbidden() {
    let mut s = with_code(json!({}));
    s.when("DeleteInviteCode", json!({"actor":"fang","code":"JOIN"}))
        .then_error(ErrorCode::Forbidden);
    s.given("JoinResource", json!({"actor":"li","resource_id":"conf"}));
    s.when("DeleteInviteCode", json!({"actor":"li","code":"JOIN"}))
        .then_error(ErrorCode::Forbidden);
}

#[test]
fn delete_code_twice_is_not_found() {
    let mut s = with_code(json!({}));
    s.given("DeleteInviteCode", json!({"actor":"xuan","code":"JOIN"}));
    s.when("DeleteInviteCode", json!({"actor":"xuan","code":"JOIN"}))
        .then_error(ErrorCode::NotFound);
}

#[test]
fn delete_an_unknown_code_is_not_found() {
    let mut s = Scenario::conference();
    s.when("DeleteInviteCode", json!({"actor":"xuan","code":"NOPE"}))
        .then_error(ErrorCode::NotFound);
}
