//! Decisions of the invite aggregate, part one: creating, updating and cancelling.

mod support;

use chrono::Duration;
use invitebus_events::command::{InviteDetail, InviteSpec, PushInfo, RemindType, UpdateInvite};
use invitebus_events::event::{InviteCancelled, InviteCreated, InviteUpdated};
use invitebus_events::ErrorCode::*;
use invitebus_events::{Command, Event, RecordStatus};
use serde_json::json;
use support::invite::{group, room};
use support::typed::*;
use support::{id, Scenario};

/// `spec` with the client's invite id `invite`.
fn with_id(invite: &str, spec: InviteSpec) -> InviteSpec {
    InviteSpec {
        invite_id: Some(id(invite)),
        ..spec
    }
}

// ---- CreateInvite ----

#[test]
fn create_invite_on_an_unknown_resource_is_not_found() {
    let mut s = Scenario::conference();
    s.when_typed("xuan", &[], create_invite("nope", invitee("fang")))
        .then_field_error(NotFound, "resource_id");
}

#[test]
fn create_invite_by_a_non_member_is_not_member() {
    let mut s = Scenario::conference();
    s.when_typed("fang", &[], create_invite("conf", invitee("li")))
        .then_error(NotMember);
}

#[test]
fn create_invite_to_a_member_is_already_member() {
    let mut s = Scenario::conference();
    s.given_typed("fang", &[], join("conf"));
    s.when_typed("xuan", &[], create_invite("conf", invitee("fang")))
        .then_field_error(AlreadyMember, "invitee");
    s.when_typed("xuan", &[], create_invite("conf", invitees(&["li", "fang"])))
        .then_field_error(AlreadyMember, "invitees");
}

#[test]
fn create_invite_to_yourself_is_invalid_field() {
    let mut s = Scenario::conference();
    s.when_typed("xuan", &[], create_invite("conf", invitee("xuan")))
        .then_field_error(InvalidField, "invitee");
    s.when_typed("xuan", &[], create_invite("conf", invitees(&["fang", "xuan"])))
        .then_field_error(InvalidField, "invitees");
}

#[test]
fn create_invite_with_more_invitees_than_room_is_resource_full() {
    let mut s = room(3);
    s.when_typed("xuan", &[], create_invite("room", invitees(&["a", "b", "c"])))
        .then_error(ResourceFull);
    let then = s.when_typed("xuan", &[], create_invite("room", invitees(&["a", "b"])));
    let [Event::InviteCreated(c)] = then.then_events() else {
        panic!("expected one InviteCreated, got {:?}", then.then_events())
    };
    assert_eq!(c.invitees, ids(&["a", "b"]));
}

#[test]
fn create_invite_with_a_taken_invite_id_is_resource_exists() {
    let mut s = Scenario::invited();
    s.when_typed("xuan", &[], create_invite("conf", with_id("inv", invitee("li"))))
        .then_field_error(ResourceExists, "invite_id");
}

#[test]
fn create_invite_defaults() {
    let mut s = Scenario::conference();
    let then = s.when_typed("xuan", &[], create_invite("conf", invitee("fang")));
    then.then(&[Event::InviteCreated(InviteCreated {
        code: None,
        created_at: s.at(),
        detail: None,
        expires_at: None,
        ext: None,
        invite_id: id("id-1"),
        invitees: ids(&["fang"]),
        inviter: id("xuan"),
        message: None,
        offline_enabled: true,
        push: None,
        requires_approval: false,
        resource_id: id("conf"),
        resource_kind: id("conference"),
        role: "member".into(),
    })]);
}

#[test]
fn create_invite_expires_in_sets_expires_at() {
    let mut s = Scenario::conference();
    let now = s.at();
    let expiring = |secs| {
        let spec = InviteSpec {
            expires_in: Some(secs),
            ..invitee("fang")
        };
        create_invite("conf", spec)
    };
    let then = s.when_typed("xuan", &[], expiring(3600));
    let [Event::InviteCreated(c)] = then.then_events() else {
        panic!("not InviteCreated")
    };
    assert_eq!(c.expires_at, Some(now + Duration::hours(1)));
    let then = s.when_typed("xuan", &[], expiring(0));
    let [Event::InviteCreated(c)] = then.then_events() else {
        panic!("not InviteCreated")
    };
    assert_eq!(c.expires_at, None);
}

#[test]
fn create_invite_with_a_huge_expires_in_is_refused_without_panicking() {
    let mut s = Scenario::conference();
    let spec = InviteSpec {
        expires_in: Some(u64::MAX),
        ..invitee("fang")
    };
    let then = s.when_typed("xuan", &[], create_invite("conf", spec));
    // Past the calendar (9999-12-31): refused, where adding the seconds could overflow.
    then.then_field_error(InvalidField, "expires_in");
}

#[test]
fn create_invite_keeps_message_detail_push_and_ext() {
    let mut s = Scenario::conference();
    let detail = InviteDetail {
        content: Some("Keynote".into()),
        remind_type: Some(RemindType::Sms),
        ..InviteDetail::default()
    };
    let push = PushInfo {
        title: Some("Hi".into()),
        ..PushInfo::default()
    };
    let spec = InviteSpec {
        message: Some("join us".into()),
        offline_enabled: Some(false),
        detail: Some(detail.clone()),
        push: Some(push.clone()),
        ext: Some(json!({"k": 1})),
        ..invitee("fang")
    };
    let then = s.when_typed("xuan", &[], create_invite("conf", spec));
    then.then(&[Event::InviteCreated(InviteCreated {
        code: None,
        created_at: s.at(),
        detail: Some(detail),
        expires_at: None,
        ext: Some(json!({"k": 1})),
        invite_id: id("id-1"),
        invitees: ids(&["fang"]),
        inviter: id("xuan"),
        message: Some("join us".into()),
        offline_enabled: false,
        push: Some(push),
        requires_approval: false,
        resource_id: id("conf"),
        resource_kind: id("conference"),
        role: "member".into(),
    })]);
}

#[test]
fn create_invite_with_an_invitees_list_makes_a_pending_record_each() {
    let mut s = group();
    for who in ["fang", "li", "mei"] {
        assert_eq!(s.record_status("grp", who), Some(RecordStatus::Pending));
    }
    let then = s.when_typed("xuan", &[], create_invite("conf", invitees(&["mei", "li"])));
    let [Event::InviteCreated(c)] = then.then_events() else {
        panic!("not InviteCreated")
    };
    assert_eq!(c.invitees, ids(&["mei", "li"]), "in the order given");
}

// ---- UpdateInvite ----

#[test]
fn update_invite_by_anyone_but_the_inviter_is_forbidden() {
    let mut s = Scenario::invited();
    s.when_typed("fang", &[], update_message("inv", "x"))
        .then_error(Forbidden);
}

#[test]
fn update_invite_adds_invitees() {
    let mut s = Scenario::invited();
    let then = s.when_typed("xuan", &[], add_invitees("inv", &["li"]));
    then.then(&[Event::InviteUpdated(InviteUpdated {
        added: ids(&["li"]),
        at: s.at(),
        detail: None,
        expires_at: None,
        invite_id: id("inv"),
        invitees: ids(&["fang", "li"]),
        inviter: id("xuan"),
        message: None,
        removed: vec![],
        resource_id: id("conf"),
        role: "pcmember".into(),
        tentative_reset: vec![],
    })]);
    assert_eq!(s.record_status("inv", "li"), Some(RecordStatus::Pending));
}

#[test]
fn update_invite_removes_unanswered_invitees() {
    let mut s = group();
    let then = s.when_typed("xuan", &[], remove_invitees("grp", &["li"]));
    then.then(&[Event::InviteUpdated(InviteUpdated {
        added: vec![],
        at: s.at(),
        detail: None,
        expires_at: None,
        invite_id: id("grp"),
        invitees: ids(&["fang", "mei"]),
        inviter: id("xuan"),
        message: None,
        removed: ids(&["li"]),
        resource_id: id("conf"),
        role: "member".into(),
        tentative_reset: vec![],
    })]);
    assert_eq!(s.record_status("grp", "li"), None);
}

#[test]
fn update_invite_removing_someone_who_answered_is_invalid_field() {
    let mut s = group();
    s.given_typed("fang", &[], accept("grp"));
    s.when_typed("xuan", &[], remove_invitees("grp", &["fang"]))
        .then_field_error(InvalidField, "remove_invitees");
}

#[test]
fn update_invite_removing_someone_not_invited_is_invalid_field() {
    let mut s = Scenario::invited();
    s.when_typed("xuan", &[], remove_invitees("inv", &["li"]))
        .then_field_error(InvalidField, "remove_invitees");
}

#[test]
fn update_invite_removing_every_invitee_is_invalid_field() {
    let mut s = Scenario::invited();
    s.when_typed("xuan", &[], remove_invitees("inv", &["fang"]))
        .then_error(InvalidField);
}

#[test]
fn update_invite_adding_someone_already_invited_is_invalid_field() {
    let mut s = Scenario::invited();
    s.when_typed("xuan", &[], add_invitees("inv", &["fang"]))
        .then_field_error(InvalidField, "add_invitees");
}

#[test]
fn update_invite_adding_a_member_is_already_member() {
    let mut s = Scenario::invited();
    s.given_typed("li", &[], join("conf"));
    s.when_typed("xuan", &[], add_invitees("inv", &["li"]))
        .then_error(AlreadyMember);
}

#[test]
fn update_invite_changes_message_and_expiry_and_keeps_the_rest() {
    let mut s = Scenario::conference();
    let detail = InviteDetail {
        content: Some("c".into()),
        ..InviteDetail::default()
    };
    let spec = InviteSpec {
        message: Some("old".into()),
        detail: Some(detail.clone()),
        ..with_id("inv", invitee("fang"))
    };
    s.given_typed("xuan", &[], create_invite("conf", spec));
    let update = Command::UpdateInvite(UpdateInvite {
        message: Some("new".into()),
        expires_in: Some(60),
        ..changes("inv")
    });
    let then = s.when_typed("xuan", &[], update);
    then.then(&[Event::InviteUpdated(InviteUpdated {
        added: vec![],
        at: s.at(),
        detail: Some(detail),
        expires_at: Some(s.at() + Duration::seconds(60)),
        invite_id: id("inv"),
        invitees: ids(&["fang"]),
        inviter: id("xuan"),
        message: Some("new".into()),
        removed: vec![],
        resource_id: id("conf"),
        role: "member".into(),
        tentative_reset: vec![],
    })]);
}

#[test]
fn update_invite_with_a_huge_expires_in_is_refused_without_panicking() {
    let mut s = Scenario::invited();
    let then = s.when_typed("xuan", &[], update_expiry("inv", u64::MAX));
    // Past the calendar (9999-12-31): refused, where adding the seconds could overflow.
    then.then_field_error(InvalidField, "expires_in");
}

#[test]
fn update_invite_after_cancel_is_cancelled() {
    let mut s = Scenario::invited();
    s.given_typed("xuan", &[], cancel("inv"));
    s.when_typed("xuan", &[], update_message("inv", "x"))
        .then_error(Cancelled);
}

#[test]
fn update_invite_past_expiry_is_expired() {
    let mut s = Scenario::conference();
    let spec = InviteSpec {
        expires_in: Some(10),
        ..with_id("inv", invitee("fang"))
    };
    s.given_typed("xuan", &[], create_invite("conf", spec));
    s.advance(11);
    s.when_typed("xuan", &[], update_message("inv", "x"))
        .then_error(Expired);
}

#[test]
fn update_invite_when_everyone_answered_is_invalid_state() {
    let mut s = Scenario::invited();
    s.given_typed("fang", &[], reject("inv"));
    s.when_typed("xuan", &[], update_message("inv", "x"))
        .then_error(InvalidState);
}

// ---- CancelInvite ----

#[test]
fn cancel_invite_by_anyone_but_the_inviter_is_forbidden() {
    let mut s = Scenario::invited();
    s.when_typed("fang", &[], cancel("inv")).then_error(Forbidden);
}

#[test]
fn cancel_invite_cancels_only_unanswered_records() {
    let mut s = group();
    s.given_typed("fang", &[], accept("grp"))
        .given_typed("li", &[], mark_read("grp"));
    let then = s.when_typed("xuan", &[], cancel("grp"));
    then.then(&[Event::InviteCancelled(InviteCancelled {
        at: s.at(),
        cancelled: ids(&["li", "mei"]),
        invite_id: id("grp"),
        inviter: id("xuan"),
        resource_id: id("conf"),
        role: "member".into(),
    })]);
    assert_eq!(s.record_status("grp", "fang"), Some(RecordStatus::Accepted));
    assert_eq!(s.record_status("grp", "li"), Some(RecordStatus::Cancelled));
    assert_eq!(s.record_status("grp", "mei"), Some(RecordStatus::Cancelled));
}

#[test]
fn cancel_invite_after_the_one_invitee_accepted_is_already_accepted() {
    let mut s = Scenario::invited();
    s.given_typed("fang", &[], accept("inv"));
    s.when_typed("xuan", &[], cancel("inv")).then_error(AlreadyAccepted);
}

#[test]
fn cancel_invite_after_the_one_invitee_rejected_is_already_rejected() {
    let mut s = Scenario::invited();
    s.given_typed("fang", &[], reject("inv"));
    s.when_typed("xuan", &[], cancel("inv")).then_error(AlreadyRejected);
}

#[test]
fn cancel_invite_when_answers_differ_is_invalid_state() {
    let mut s = Scenario::conference();
    let spec = with_id("inv", invitees(&["fang", "li"]));
    s.given_typed("xuan", &[], create_invite("conf", spec))
        .given_typed("fang", &[], accept("inv"))
        .given_typed("li", &[], reject("inv"));
    s.when_typed("xuan", &[], cancel("inv")).then_error(InvalidState);
}

#[test]
fn cancel_invite_twice_is_cancelled() {
    let mut s = Scenario::invited();
    s.given_typed("xuan", &[], cancel("inv"));
    s.when_typed("xuan", &[], cancel("inv")).then_error(Cancelled);
}

#[test]
fn cancel_invite_unknown_is_not_found() {
    let mut s = Scenario::conference();
    s.when_typed("xuan", &[], cancel("inv"))
        .then_field_error(NotFound, "invite_id");
}
