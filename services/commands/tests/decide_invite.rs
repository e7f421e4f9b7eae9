//! Decisions of the invite aggregate, part one: creating, updating and cancelling.

mod support;

use chrono::Duration;
use invitebus_events::ErrorCode::*;
use invitebus_events::{Event, RecordStatus};
use serde_json::json;
use support::invite::*;
use support::{with, Scenario};

// ---- CreateInvite ----

#[test]
fn create_invite_on_an_unknown_resource_is_not_found() {
    let mut s = Scenario::conference();
    let body = json!({"actor":"xuan","resource_id":"nope","invitee":"fang"});
    s.when("CreateInvite", body).then_field_error(NotFound, "resource_id");
}

#[test]
fn create_invite_by_a_non_member_is_not_member() {
    let mut s = Scenario::conference();
    let body = json!({"actor":"fang","resource_id":"conf","invitee":"li"});
    s.when("CreateInvite", body).then_error(NotMember);
}

#[test]
fn create_invite_to_a_member_is_already_member() {
    let mut s = Scenario::conference();
    s.given("JoinResource", json!({"actor":"fang","resource_id":"conf"}));
    s.when("CreateInvite", create(json!({"invitee":"fang"})))
        .then_field_error(AlreadyMember, "invitee");
    s.when("CreateInvite", create(json!({"invitees":["li","fang"]})))
        .then_field_error(AlreadyMember, "invitees");
}

#[test]
fn create_invite_to_yourself_is_invalid_field() {
    let mut s = Scenario::conference();
    s.when("CreateInvite", create(json!({"invitee":"xuan"})))
        .then_field_error(InvalidField, "invitee");
    s.when("CreateInvite", create(json!({"invitees":["fang","xuan"]})))
        .then_field_error(InvalidField, "invitees");
}

#[test]
fn create_invite_with_more_invitees_than_room_is_resource_full() {
    let mut s = room(3);
    let body = |list: &[&str]| json!({"actor":"xuan","resource_id":"room","invitees":list});
    s.when("CreateInvite", body(&["a", "b", "c"])).then_error(ResourceFull);
    s.when("CreateInvite", body(&["a", "b"])).then_types(&["InviteCreated"]);
}

#[test]
fn create_invite_with_a_taken_invite_id_is_resource_exists() {
    let mut s = Scenario::invited();
    s.when("CreateInvite", create(json!({"invitee":"li","invite_id":"inv"})))
        .then_field_error(ResourceExists, "invite_id");
}

#[test]
fn create_invite_defaults() {
    let mut s = Scenario::conference();
    let d = s.when("CreateInvite", create(json!({"invitee":"fang"}))).data(0);
    assert_eq!(d["role"], "member");
    assert_eq!(d["inviter"], "xuan");
    assert_eq!(d["resource_kind"], "conference");
    assert_eq!(d["requires_approval"], false);
    assert_eq!(d["offline_enabled"], true);
    assert_eq!(d["expires_at"], json!(null));
}

#[test]
fn create_invite_expires_in_sets_expires_at() {
    let mut s = Scenario::conference();
    let now = s.now;
    let then = s.when("CreateInvite", create(json!({"invitee":"fang","expires_in":3600})));
    let Event::InviteCreated(c) = &then.then_events()[0] else {
        panic!("not InviteCreated")
    };
    assert_eq!(c.expires_at, Some(now + Duration::hours(1)));
    let then = s.when("CreateInvite", create(json!({"invitee":"fang","expires_in":0})));
    assert_eq!(then.data(0)["expires_at"], json!(null));
}

#[test]
fn create_invite_with_a_huge_expires_in_is_refused_without_panicking() {
    let mut s = Scenario::conference();
    let then = s.when("CreateInvite", create(json!({"invitee":"fang","expires_in":u64::MAX})));
    if then.result.is_err() {
        then.then_field_error(InvalidField, "expires_in");
    }
}

#[test]
fn create_invite_keeps_message_detail_push_and_ext() {
    let mut s = Scenario::conference();
    let body = json!({"invitee":"fang","message":"join us","offline_enabled":false,
        "detail":{"content":"Keynote","remind_type":"sms"},"push":{"title":"Hi"},"ext":{"k":1}});
    let d = s.when("CreateInvite", create(body)).data(0);
    assert_eq!(d["message"], "join us");
    assert_eq!(d["detail"]["content"], "Keynote");
    assert_eq!(d["detail"]["remind_type"], "sms");
    assert_eq!(d["push"]["title"], "Hi");
    assert_eq!(d["ext"], json!({"k":1}));
    assert_eq!(d["offline_enabled"], false);
}

#[test]
fn create_invite_with_an_invitees_list_makes_a_pending_record_each() {
    let mut s = group();
    for who in ["fang", "li", "mei"] {
        assert_eq!(s.record_status("grp", who), Some(RecordStatus::Pending));
    }
    let then = s.when("CreateInvite", create(json!({"invitees":["mei","li"]})));
    assert_eq!(then.data(0)["invitees"], json!(["mei", "li"]));
}

// ---- UpdateInvite ----

#[test]
fn update_invite_by_anyone_but_the_inviter_is_forbidden() {
    let mut s = Scenario::invited();
    s.when("UpdateInvite", on("fang", json!({"message":"x"})))
        .then_error(Forbidden);
}

#[test]
fn update_invite_adds_invitees() {
    let mut s = Scenario::invited();
    let then = s.when("UpdateInvite", on("xuan", json!({"add_invitees":["li"]})));
    then.then_types(&["InviteUpdated"]);
    assert_eq!(then.data(0)["added"], json!(["li"]));
    assert_eq!(then.data(0)["invitees"], json!(["fang", "li"]));
    assert_eq!(s.record_status("inv", "li"), Some(RecordStatus::Pending));
}

#[test]
fn update_invite_removes_unanswered_invitees() {
    let mut s = group();
    let then = s.when("UpdateInvite", with(grp("xuan"), json!({"remove_invitees":["li"]})));
    assert_eq!(then.data(0)["removed"], json!(["li"]));
    assert_eq!(then.data(0)["invitees"], json!(["fang", "mei"]));
    assert_eq!(s.record_status("grp", "li"), None);
}

#[test]
fn update_invite_removing_someone_who_answered_is_invalid_field() {
    let mut s = group();
    s.given("AcceptInvite", grp("fang"));
    let body = with(grp("xuan"), json!({"remove_invitees":["fang"]}));
    s.when("UpdateInvite", body)
        .then_field_error(InvalidField, "remove_invitees");
}

#[test]
fn update_invite_removing_someone_not_invited_is_invalid_field() {
    let mut s = Scenario::invited();
    s.when("UpdateInvite", on("xuan", json!({"remove_invitees":["li"]})))
        .then_field_error(InvalidField, "remove_invitees");
}

#[test]
fn update_invite_removing_every_invitee_is_invalid_field() {
    let mut s = Scenario::invited();
    s.when("UpdateInvite", on("xuan", json!({"remove_invitees":["fang"]})))
        .then_error(InvalidField);
}

#[test]
fn update_invite_adding_someone_already_invited_is_invalid_field() {
    let mut s = Scenario::invited();
    s.when("UpdateInvite", on("xuan", json!({"add_invitees":["fang"]})))
        .then_field_error(InvalidField, "add_invitees");
}

#[test]
fn update_invite_adding_a_member_is_already_member() {
    let mut s = Scenario::invited();
    s.given("JoinResource", json!({"actor":"li","resource_id":"conf"}));
    s.when("UpdateInvite", on("xuan", json!({"add_invitees":["li"]})))
        .then_error(AlreadyMember);
}

#[test]
fn update_invite_changes_message_and_expiry_and_keeps_the_rest() {
    let mut s = Scenario::conference();
    let body = json!({"invitee":"fang","invite_id":"inv","message":"old","detail":{"content":"c"}});
    s.given("CreateInvite", create(body));
    let now = s.now;
    let then = s.when("UpdateInvite", on("xuan", json!({"message":"new","expires_in":60})));
    let Event::InviteUpdated(u) = &then.then_events()[0] else {
        panic!("not InviteUpdated")
    };
    assert_eq!(u.message.as_deref(), Some("new"));
    assert_eq!(u.detail.as_ref().and_then(|d| d.content.as_deref()), Some("c"));
    assert_eq!(u.expires_at, Some(now + Duration::seconds(60)));
}

#[test]
fn update_invite_with_a_huge_expires_in_is_refused_without_panicking() {
    let mut s = Scenario::invited();
    let then = s.when("UpdateInvite", on("xuan", json!({"expires_in":u64::MAX})));
    if then.result.is_err() {
        then.then_field_error(InvalidField, "expires_in");
    }
}

#[test]
fn update_invite_after_cancel_is_cancelled() {
    let mut s = Scenario::invited();
    s.given("CancelInvite", by("xuan"));
    s.when("UpdateInvite", on("xuan", json!({"message":"x"})))
        .then_error(Cancelled);
}

#[test]
fn update_invite_past_expiry_is_expired() {
    let mut s = Scenario::conference();
    s.given(
        "CreateInvite",
        create(json!({"invitee":"fang","invite_id":"inv","expires_in":10})),
    );
    s.advance(11);
    s.when("UpdateInvite", on("xuan", json!({"message":"x"})))
        .then_error(Expired);
}

#[test]
fn update_invite_when_everyone_answered_is_invalid_state() {
    let mut s = Scenario::invited();
    s.given("RejectInvite", by("fang"));
    s.when("UpdateInvite", on("xuan", json!({"message":"x"})))
        .then_error(InvalidState);
}

// ---- CancelInvite ----

#[test]
fn cancel_invite_by_anyone_but_the_inviter_is_forbidden() {
    let mut s = Scenario::invited();
    s.when("CancelInvite", by("fang")).then_error(Forbidden);
}

#[test]
fn cancel_invite_cancels_only_unanswered_records() {
    let mut s = group();
    s.given("AcceptInvite", grp("fang")).given("MarkInviteRead", grp("li"));
    let then = s.when("CancelInvite", grp("xuan"));
    then.then_types(&["InviteCancelled"]);
    assert_eq!(then.data(0)["cancelled"], json!(["li", "mei"]));
    assert_eq!(s.record_status("grp", "fang"), Some(RecordStatus::Accepted));
    assert_eq!(s.record_status("grp", "li"), Some(RecordStatus::Cancelled));
    assert_eq!(s.record_status("grp", "mei"), Some(RecordStatus::Cancelled));
}

#[test]
fn cancel_invite_after_the_one_invitee_accepted_is_already_accepted() {
    let mut s = Scenario::invited();
    s.given("AcceptInvite", by("fang"));
    s.when("CancelInvite", by("xuan")).then_error(AlreadyAccepted);
}

#[test]
fn cancel_invite_after_the_one_invitee_rejected_is_already_rejected() {
    let mut s = Scenario::invited();
    s.given("RejectInvite", by("fang"));
    s.when("CancelInvite", by("xuan")).then_error(AlreadyRejected);
}

#[test]
fn cancel_invite_when_answers_differ_is_invalid_state() {
    let mut s = Scenario::conference();
    s.given(
        "CreateInvite",
        create(json!({"invitees":["fang","li"],"invite_id":"inv"})),
    )
    .given("AcceptInvite", by("fang"))
    .given("RejectInvite", by("li"));
    s.when("CancelInvite", by("xuan")).then_error(InvalidState);
}

#[test]
fn cancel_invite_twice_is_cancelled() {
    let mut s = Scenario::invited();
    s.given("CancelInvite", by("xuan"));
    s.when("CancelInvite", by("xuan")).then_error(Cancelled);
}

#[test]
fn cancel_invite_unknown_is_not_found() {
    let mut s = Scenario::conference();
    s.when("CancelInvite", by("xuan"))
        .then_field_error(NotFound, "invite_id");
}
