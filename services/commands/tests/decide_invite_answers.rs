//! Decisions of the invite aggregate, part two: answers, reads, hiding, resends, approval,
//! expiry, `expected_version` and StartCall.

mod support;

use invitebus_events::ErrorCode::*;
use invitebus_events::RecordStatus;
use serde_json::json;
use support::invite::*;
use support::{with, Scenario};

// ---- AcceptInvite ----

#[test]
fn accept_invite_by_a_non_invitee_is_forbidden() {
    let mut s = Scenario::invited();
    s.when("AcceptInvite", by("li")).then_error(Forbidden);
    s.when("AcceptInvite", by("xuan")).then_error(Forbidden);
}

#[test]
fn accept_invite_joins_via_the_invite_with_the_inviter() {
    let mut s = Scenario::invited();
    let then = s.when("AcceptInvite", by("fang"));
    assert_eq!(then.data(0)["role"], "pcmember");
    assert_eq!(then.data(1)["via"], json!({"invite_id":"inv"}));
    assert_eq!(then.data(1)["inviter"], "xuan");
    assert_eq!(then.data(1)["member_count"], 2);
}

#[test]
fn accept_invite_after_reading_is_allowed() {
    let mut s = Scenario::invited();
    s.given("MarkInviteRead", by("fang"));
    s.when("AcceptInvite", by("fang"))
        .then_types(&["InviteAccepted", "MemberJoined"]);
}

#[test]
fn accept_invite_after_cancel_is_cancelled() {
    let mut s = Scenario::invited();
    s.given("CancelInvite", by("xuan"));
    s.when("AcceptInvite", by("fang")).then_error(Cancelled);
}

#[test]
fn accept_invite_past_expires_at_is_expired() {
    let mut s = Scenario::conference();
    s.given(
        "CreateInvite",
        create(json!({"invitee":"fang","invite_id":"inv","expires_in":60})),
    );
    s.advance(59);
    s.when("AcceptInvite", on("fang", json!({"auto_join":false})))
        .then_types(&["InviteAccepted"]);
    s.given(
        "CreateInvite",
        create(json!({"invitee":"li","invite_id":"late","expires_in":60})),
    );
    s.advance(60);
    s.when("AcceptInvite", to("late", "li")).then_error(Expired);
}

#[test]
fn accept_invite_without_auto_join_does_not_join() {
    let mut s = Scenario::invited();
    let then = s.when("AcceptInvite", on("fang", json!({"auto_join":false})));
    then.then_types(&["InviteAccepted"]);
    assert_eq!(then.reply()["status"], "accepted");
    assert_eq!(s.record_status("inv", "fang"), Some(RecordStatus::Accepted));
    assert!(!s.is_member("conf", "fang"));
}

#[test]
fn accept_invite_requiring_approval_is_applying_without_joining() {
    let mut s = Scenario::conference();
    let body = json!({"invitee":"fang","invite_id":"inv","requires_approval":true});
    s.given("CreateInvite", create(body));
    let then = s.when("AcceptInvite", by("fang"));
    then.then_types(&["InviteAccepted"]);
    assert_eq!(then.reply()["status"], "applying");
    assert_eq!(s.record_status("inv", "fang"), Some(RecordStatus::Applying));
    assert!(!s.is_member("conf", "fang"));
}

#[test]
fn accept_invite_when_the_resource_filled_up_is_resource_full() {
    let mut s = room(2);
    s.given(
        "CreateInvite",
        json!({"actor":"xuan","resource_id":"room","invitee":"fang","invite_id":"inv"}),
    )
    .given("JoinResource", json!({"actor":"li","resource_id":"room"}));
    s.when("AcceptInvite", by("fang")).then_error(ResourceFull);
    assert_eq!(s.record_status("inv", "fang"), Some(RecordStatus::Pending));
}

#[test]
fn accept_invite_when_already_a_member_only_accepts() {
    let mut s = Scenario::invited();
    s.given("JoinResource", json!({"actor":"fang","resource_id":"conf"}));
    s.when("AcceptInvite", by("fang")).then_types(&["InviteAccepted"]);
}

#[test]
fn accept_invite_after_reject_is_already_rejected() {
    let mut s = Scenario::invited();
    s.given("RejectInvite", by("fang"));
    s.when("AcceptInvite", by("fang")).then_error(AlreadyRejected);
}

#[test]
fn accept_invite_unknown_is_not_found() {
    let mut s = Scenario::conference();
    s.when("AcceptInvite", by("fang")).then_error(NotFound);
}

// ---- RejectInvite ----

#[test]
fn reject_invite_records_the_reason() {
    let mut s = Scenario::invited();
    let then = s.when("RejectInvite", on("fang", json!({"reason":"busy"})));
    then.then_types(&["InviteRejected"]);
    assert_eq!(then.data(0)["reason"], "busy");
    assert_eq!(s.record_status("inv", "fang"), Some(RecordStatus::Rejected));
    assert!(!s.is_member("conf", "fang"));
}

#[test]
fn reject_invite_twice_is_already_rejected() {
    let mut s = Scenario::invited();
    s.given("RejectInvite", by("fang"));
    s.when("RejectInvite", by("fang")).then_error(AlreadyRejected);
}

#[test]
fn reject_invite_by_a_non_invitee_is_forbidden() {
    let mut s = Scenario::invited();
    s.when("RejectInvite", by("li")).then_error(Forbidden);
}

#[test]
fn reject_invite_after_cancel_is_cancelled() {
    let mut s = Scenario::invited();
    s.given("CancelInvite", by("xuan"));
    s.when("RejectInvite", by("fang")).then_error(Cancelled);
}

#[test]
fn reject_invite_past_expires_at_is_expired() {
    let mut s = Scenario::conference();
    s.given(
        "CreateInvite",
        create(json!({"invitee":"fang","invite_id":"inv","expires_in":5})),
    );
    s.advance(5);
    s.when("RejectInvite", by("fang")).then_error(Expired);
}

// ---- MarkInviteRead ----

#[test]
fn mark_read_appends_only_the_first_read() {
    let mut s = Scenario::invited();
    s.when("MarkInviteRead", by("fang")).then_types(&["InviteRead"]);
    assert_eq!(s.record_status("inv", "fang"), Some(RecordStatus::Read));
    s.when("MarkInviteRead", by("fang")).then_nothing();
}

#[test]
fn mark_read_after_answering_appends_nothing() {
    let mut s = Scenario::invited();
    s.given("AcceptInvite", by("fang"));
    s.when("MarkInviteRead", by("fang")).then_nothing();
    assert_eq!(s.record_status("inv", "fang"), Some(RecordStatus::Accepted));
}

#[test]
fn mark_read_by_a_non_invitee_is_forbidden() {
    let mut s = Scenario::invited();
    s.when("MarkInviteRead", by("xuan")).then_error(Forbidden);
}

// ---- HideInvite ----

#[test]
fn hide_invite_by_inviter_or_invitee_appends_invite_hidden() {
    let mut s = Scenario::invited();
    let then = s.when("HideInvite", by("xuan"));
    then.then_types(&["InviteHidden"]);
    assert_eq!(then.data(0)["user_id"], "xuan");
    s.when("HideInvite", by("fang")).then_types(&["InviteHidden"]);
}

#[test]
fn hide_invite_by_a_stranger_is_forbidden() {
    let mut s = Scenario::invited();
    s.when("HideInvite", by("li")).then_error(Forbidden);
}

#[test]
fn hide_invite_twice_appends_nothing() {
    let mut s = Scenario::invited();
    s.given("HideInvite", by("fang"));
    s.when("HideInvite", by("fang")).then_nothing();
}

// ---- ResendInvite ----

#[test]
fn resend_within_a_minute_of_creation_is_rate_limited() {
    let mut s = Scenario::invited();
    s.advance(59);
    s.when("ResendInvite", by("xuan")).then_error(RateLimited);
}

#[test]
fn resend_after_a_minute_is_allowed_then_rate_limited_again() {
    let mut s = Scenario::invited();
    s.advance(61);
    let then = s.when("ResendInvite", by("xuan"));
    then.then_types(&["InviteResent"]);
    assert_eq!(then.data(0)["invitees"], json!(["fang"]));
    s.when("ResendInvite", by("xuan")).then_error(RateLimited);
    s.advance(60);
    s.when("ResendInvite", by("xuan")).then_types(&["InviteResent"]);
}

#[test]
fn resend_by_anyone_but_the_inviter_is_forbidden() {
    let mut s = Scenario::invited();
    s.advance(61);
    s.when("ResendInvite", by("fang")).then_error(Forbidden);
}

#[test]
fn resend_by_default_goes_to_unanswered_invitees_only() {
    let mut s = group();
    s.given("RejectInvite", grp("li"));
    s.advance(61);
    let then = s.when("ResendInvite", grp("xuan"));
    assert_eq!(then.data(0)["invitees"], json!(["fang", "mei"]));
}

#[test]
fn resend_to_someone_not_invited_is_invalid_field() {
    let mut s = Scenario::invited();
    s.advance(61);
    s.when("ResendInvite", on("xuan", json!({"invitees":["li"]})))
        .then_field_error(InvalidField, "invitees");
}

#[test]
fn resend_when_nobody_is_waiting_is_invalid_state() {
    let mut s = group();
    for who in ["fang", "li", "mei"] {
        s.given("RejectInvite", grp(who));
    }
    s.advance(61);
    s.when("ResendInvite", grp("xuan")).then_error(InvalidState);
}

#[test]
fn resend_after_cancel_is_cancelled() {
    let mut s = Scenario::invited();
    s.given("CancelInvite", by("xuan"));
    s.advance(61);
    s.when("ResendInvite", by("xuan")).then_error(Cancelled);
}

// ---- ApproveInvite / DenyInvite ----

#[test]
fn approve_or_deny_by_neither_admin_nor_owner_is_forbidden() {
    let mut s = applying();
    s.given("JoinResource", json!({"actor":"li","resource_id":"conf"}));
    s.when("ApproveInvite", app("li")).then_error(Forbidden);
    s.when("DenyInvite", app("fang")).then_error(Forbidden);
}

#[test]
fn approve_what_is_not_applying_is_invalid_state() {
    let mut s = Scenario::invited();
    s.when("ApproveInvite", by("xuan")).then_error(InvalidState);
    s.when("DenyInvite", by("xuan")).then_error(InvalidState);
}

#[test]
fn approve_by_the_owner_approves_and_joins() {
    let mut s = applying();
    let then = s.when("ApproveInvite", with(app("xuan"), json!({"description":"welcome"})));
    then.then_types(&["InviteApproved", "MemberJoined"]);
    assert_eq!(then.data(0)["by"], "xuan");
    assert_eq!(then.data(0)["description"], "welcome");
    assert_eq!(then.data(1)["via"], json!({"invite_id":"app"}));
    assert_eq!(s.record_status("app", "fang"), Some(RecordStatus::Approved));
    assert!(s.is_member("conf", "fang"));
    s.when("ApproveInvite", app("xuan")).then_error(InvalidState);
}

#[test]
fn approve_by_an_admin_is_allowed() {
    let mut s = applying();
    s.when("ApproveInvite", with(app("boss"), json!({"roles":["admin"]})))
        .then_types(&["InviteApproved", "MemberJoined"]);
}

#[test]
fn deny_marks_the_record_denied() {
    let mut s = applying();
    s.when("DenyInvite", app("xuan")).then_types(&["InviteDenied"]);
    assert_eq!(s.record_status("app", "fang"), Some(RecordStatus::Denied));
    assert!(!s.is_member("conf", "fang"));
    s.when("ApproveInvite", app("xuan")).then_error(InvalidState);
}

#[test]
fn approve_with_several_invitees_needs_invitee() {
    let mut s = Scenario::conference();
    let body = json!({"invitees":["fang","li"],"invite_id":"inv","requires_approval":true});
    s.given("CreateInvite", create(body))
        .given("AcceptInvite", by("fang"))
        .given("AcceptInvite", by("li"));
    s.when("ApproveInvite", by("xuan"))
        .then_field_error(MissingField, "invitee");
    s.when("DenyInvite", by("xuan"))
        .then_field_error(MissingField, "invitee");
    s.when("ApproveInvite", on("xuan", json!({"invitee":"li"})))
        .then_types(&["InviteApproved", "MemberJoined"]);
    assert_eq!(s.record_status("inv", "li"), Some(RecordStatus::Approved));
    assert_eq!(s.record_status("inv", "fang"), Some(RecordStatus::Applying));
}

#[test]
fn approve_naming_someone_not_invited_is_invalid_field() {
    let mut s = applying();
    s.when("ApproveInvite", with(app("xuan"), json!({"invitee":"li"})))
        .then_field_error(InvalidField, "invitee");
}

#[test]
fn approve_into_a_full_resource_is_resource_full() {
    let mut s = room(2);
    let body = json!({"actor":"xuan","resource_id":"room","invitee":"fang","invite_id":"inv","requires_approval":true});
    s.given("CreateInvite", body)
        .given("AcceptInvite", by("fang"))
        .given("JoinResource", json!({"actor":"li","resource_id":"room"}));
    s.when("ApproveInvite", by("xuan")).then_error(ResourceFull);
}

// ---- ExpireInvite ----

#[test]
fn expire_invite_by_anyone_but_system_is_forbidden() {
    let mut s = Scenario::invited();
    s.when("ExpireInvite", by("xuan")).then_error(Forbidden);
    s.when("ExpireInvite", on("boss", json!({"roles":["admin"]})))
        .then_error(Forbidden);
}

#[test]
fn expire_invite_by_system_expires_unanswered_records() {
    let mut s = group();
    s.given("AcceptInvite", grp("fang"));
    let then = s.when("ExpireInvite", grp("system"));
    then.then_types(&["InviteExpired"]);
    assert_eq!(then.data(0)["expired"], json!(["li", "mei"]));
    assert_eq!(s.record_status("grp", "fang"), Some(RecordStatus::Accepted));
    assert_eq!(s.record_status("grp", "li"), Some(RecordStatus::Expired));
    s.when("AcceptInvite", grp("li")).then_error(Expired);
    s.when("ExpireInvite", grp("system")).then_error(Expired);
}

#[test]
fn expire_invite_after_cancel_is_cancelled() {
    let mut s = Scenario::invited();
    s.given("CancelInvite", by("xuan"));
    s.when("ExpireInvite", by("system")).then_error(Cancelled);
}

#[test]
fn expire_invite_when_everyone_answered_is_invalid_state() {
    let mut s = Scenario::invited();
    s.given("AcceptInvite", by("fang"));
    s.when("ExpireInvite", by("system")).then_error(InvalidState);
}

// ---- expected_version ----

#[test]
fn expected_version_mismatch_is_conflict() {
    let mut s = Scenario::invited();
    s.when("AcceptInvite", on("fang", json!({"expected_version":0})))
        .then_field_error(Conflict, "expected_version");
    s.when("AcceptInvite", on("fang", json!({"expected_version":2})))
        .then_error(Conflict);
}

#[test]
fn expected_version_match_is_accepted() {
    let mut s = Scenario::invited();
    s.when("MarkInviteRead", on("fang", json!({"expected_version":1})))
        .then_types(&["InviteRead"]);
    s.when("AcceptInvite", on("fang", json!({"expected_version":2})))
        .then_types(&["InviteAccepted", "MemberJoined"]);
}

#[test]
fn expected_version_zero_creates_a_new_invite_only() {
    let mut s = Scenario::invited();
    let body = |id: &str| create(json!({"invitee":"li","invite_id":id,"expected_version":0}));
    s.when("CreateInvite", body("new")).then_types(&["InviteCreated"]);
    s.when("CreateInvite", body("inv")).then_error(Conflict);
}

#[test]
fn expected_version_applies_to_resource_commands() {
    let mut s = Scenario::conference();
    let body = |v: u64| json!({"actor":"fang","resource_id":"conf","expected_version":v});
    s.when("JoinResource", body(1)).then_error(Conflict);
    s.when("JoinResource", body(2)).then_types(&["MemberJoined"]);
}

// ---- StartCall ----

#[test]
fn start_call_registers_joins_and_invites_in_one_outcome() {
    let mut s = Scenario::conference();
    let then = s.when("StartCall", json!({"actor":"xuan","invitee":"fang"}));
    then.then_types(&["ResourceRegistered", "MemberJoined", "InviteCreated"]);
    assert_eq!(then.reply(), &json!({"resource_id":"id-1","invite_id":"id-2"}));
    assert_eq!(then.data(0)["kind"], "channel");
    assert_eq!(then.data(1)["via"], json!({"owner":true}));
    assert_eq!(then.data(2)["resource_id"], "id-1");
    assert!(s.is_member("id-1", "xuan"));
    assert_eq!(s.record_status("id-2", "fang"), Some(RecordStatus::Pending));
    s.when("AcceptInvite", to("id-2", "fang"))
        .then_types(&["InviteAccepted", "MemberJoined"]);
}

#[test]
fn start_call_with_given_ids_uses_them() {
    let mut s = Scenario::conference();
    let body =
        json!({"actor":"xuan","invitees":["fang","li"],"resource_id":"call1","invite_id":"ring1","name":"Standup"});
    let then = s.when("StartCall", body);
    assert_eq!(then.reply(), &json!({"resource_id":"call1","invite_id":"ring1"}));
    assert_eq!(then.data(0)["name"], "Standup");
}

#[test]
fn start_call_with_an_existing_resource_id_is_resource_exists() {
    let mut s = Scenario::conference();
    let body = json!({"actor":"xuan","invitee":"fang","resource_id":"conf"});
    s.when("StartCall", body)
        .then_field_error(ResourceExists, "resource_id");
}

#[test]
fn start_call_with_a_taken_invite_id_is_resource_exists() {
    let mut s = Scenario::invited();
    let body = json!({"actor":"xuan","invitee":"li","invite_id":"inv"});
    s.when("StartCall", body).then_field_error(ResourceExists, "invite_id");
}

#[test]
fn start_call_inviting_yourself_is_invalid_field() {
    let mut s = Scenario::conference();
    s.when("StartCall", json!({"actor":"xuan","invitee":"xuan"}))
        .then_error(InvalidField);
}

#[test]
fn start_call_with_too_little_capacity_is_resource_full() {
    let mut s = Scenario::conference();
    let body = |who: &[&str]| json!({"actor":"xuan","invitees":who,"capacity":2});
    s.when("StartCall", body(&["fang", "li"])).then_error(ResourceFull);
    s.when("StartCall", body(&["fang"]))
        .then_types(&["ResourceRegistered", "MemberJoined", "InviteCreated"]);
}

// ---- RemindInvite ----

#[test]
fn remind_is_for_system_only() {
    let mut s = Scenario::invited();
    s.when("RemindInvite", json!({"actor":"xuan","invite_id":"inv"}))
        .then_error(Forbidden);
}

#[test]
fn remind_goes_to_the_inviter_and_invitees_who_did_not_refuse() {
    let mut s = Scenario::conference();
    let detail = json!({"content":"Sync","begin_time":"2026-11-21T13:00:00Z","remind_min":30,"remind_type":"sms"});
    s.given(
        "CreateInvite",
        json!({"actor":"xuan","resource_id":"conf","invitees":["fang","li","wu"],"invite_id":"m","detail":detail}),
    )
    .given("RejectInvite", json!({"actor":"li","invite_id":"m"}))
    .given("AcceptInvite", json!({"actor":"wu","invite_id":"m"}));
    let then = s.when("RemindInvite", json!({"actor":"system","invite_id":"m"}));
    then.then_types(&["InviteReminded"]);
    let data = then.data(0);
    assert_eq!(data["recipients"], json!(["xuan", "fang", "wu"]));
    assert_eq!(data["content"], "Sync");
    assert_eq!(data["remind_type"], "sms");
}

#[test]
fn remind_a_cancelled_invite_is_cancelled() {
    let mut s = Scenario::invited();
    s.given("CancelInvite", by("xuan"));
    s.when("RemindInvite", json!({"actor":"system","invite_id":"inv"}))
        .then_error(Cancelled);
}
