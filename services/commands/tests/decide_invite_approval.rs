//! Decisions of the invite aggregate, part three: what the inviter, the owner and `system` do
//! after the invite went out: resends, approval and denial, expiry, and meeting reminders.

mod support;

use chrono::{TimeZone, Utc};
use invitebus_events::command::{Decision, InviteDetail, InviteSpec, RemindType};
use invitebus_events::event::{InviteExpired, InviteReminded, InviteResent};
use invitebus_events::ErrorCode::*;
use invitebus_events::{Command, Event, RecordStatus};
use support::invite::{applying, decided_app, group, joined_conf_via, room};
use support::typed::*;
use support::{id, Scenario};

// ---- ResendInvite ----

#[test]
fn resend_within_a_minute_of_creation_is_rate_limited() {
    let mut s = Scenario::invited();
    s.advance(59);
    s.when_typed("xuan", &[], resend("inv")).then_error(RateLimited);
}

#[test]
fn resend_after_a_minute_is_allowed_then_rate_limited_again() {
    let mut s = Scenario::invited();
    let resent = |at| {
        Event::InviteResent(InviteResent {
            at,
            invite_id: id("inv"),
            invitees: ids(&["fang"]),
            inviter: id("xuan"),
            resource_id: id("conf"),
            role: "pcmember".into(),
        })
    };
    s.advance(61);
    let then = s.when_typed("xuan", &[], resend("inv"));
    then.then(&[resent(s.at())]);
    s.when_typed("xuan", &[], resend("inv")).then_error(RateLimited);
    s.advance(60);
    let then = s.when_typed("xuan", &[], resend("inv"));
    then.then(&[resent(s.at())]);
}

#[test]
fn resend_by_anyone_but_the_inviter_is_forbidden() {
    let mut s = Scenario::invited();
    s.advance(61);
    s.when_typed("fang", &[], resend("inv")).then_error(Forbidden);
}

#[test]
fn resend_by_default_goes_to_unanswered_invitees_only() {
    let mut s = group();
    s.given_typed("li", &[], reject("grp"));
    s.advance(61);
    let then = s.when_typed("xuan", &[], resend("grp"));
    then.then(&[Event::InviteResent(InviteResent {
        at: s.at(),
        invite_id: id("grp"),
        invitees: ids(&["fang", "mei"]),
        inviter: id("xuan"),
        resource_id: id("conf"),
        role: "member".into(),
    })]);
}

#[test]
fn resend_to_someone_not_invited_is_invalid_field() {
    let mut s = Scenario::invited();
    s.advance(61);
    s.when_typed("xuan", &[], resend_to("inv", &["li"]))
        .then_field_error(InvalidField, "invitees");
}

#[test]
fn resend_when_nobody_is_waiting_is_invalid_state() {
    let mut s = group();
    for who in ["fang", "li", "mei"] {
        s.given_typed(who, &[], reject("grp"));
    }
    s.advance(61);
    s.when_typed("xuan", &[], resend("grp")).then_error(InvalidState);
}

#[test]
fn resend_after_cancel_is_cancelled() {
    let mut s = Scenario::invited();
    s.given_typed("xuan", &[], cancel("inv"));
    s.advance(61);
    s.when_typed("xuan", &[], resend("inv")).then_error(Cancelled);
}

// ---- ApproveInvite / DenyInvite ----

#[test]
fn approve_or_deny_by_neither_admin_nor_owner_is_forbidden() {
    let mut s = applying();
    s.given_typed("li", &[], join("conf"));
    s.when_typed("li", &[], approve("app")).then_error(Forbidden);
    s.when_typed("fang", &[], deny("app")).then_error(Forbidden);
}

#[test]
fn approve_what_is_not_applying_is_invalid_state() {
    let mut s = Scenario::invited();
    s.when_typed("xuan", &[], approve("inv")).then_error(InvalidState);
    s.when_typed("xuan", &[], deny("inv")).then_error(InvalidState);
}

#[test]
fn approve_by_the_owner_approves_and_joins() {
    let mut s = applying();
    let welcome = Command::ApproveInvite(Decision {
        description: Some("welcome".into()),
        ..decision("app")
    });
    let then = s.when_typed("xuan", &[], welcome);
    let at = s.at();
    then.then(&[
        Event::InviteApproved(decided_app(at, "xuan", Some("welcome"))),
        joined_conf_via(at, "app", "fang"),
    ]);
    assert_eq!(s.record_status("app", "fang"), Some(RecordStatus::Approved));
    assert!(s.is_member("conf", "fang"));
    s.when_typed("xuan", &[], approve("app")).then_error(InvalidState);
}

#[test]
fn approve_by_an_admin_is_allowed() {
    let mut s = applying();
    let then = s.when_typed("boss", &["admin"], approve("app"));
    let at = s.at();
    then.then(&[
        Event::InviteApproved(decided_app(at, "boss", None)),
        joined_conf_via(at, "app", "fang"),
    ]);
}

#[test]
fn deny_marks_the_record_denied() {
    let mut s = applying();
    let then = s.when_typed("xuan", &[], deny("app"));
    then.then(&[Event::InviteDenied(decided_app(s.at(), "xuan", None))]);
    assert_eq!(s.record_status("app", "fang"), Some(RecordStatus::Denied));
    assert!(!s.is_member("conf", "fang"));
    s.when_typed("xuan", &[], approve("app")).then_error(InvalidState);
}

#[test]
fn approve_with_several_invitees_needs_invitee() {
    let mut s = Scenario::conference();
    let spec = InviteSpec {
        invite_id: Some(id("inv")),
        requires_approval: true,
        ..invitees(&["fang", "li"])
    };
    s.given_typed("xuan", &[], create_invite("conf", spec))
        .given_typed("fang", &[], accept("inv"))
        .given_typed("li", &[], accept("inv"));
    s.when_typed("xuan", &[], approve("inv"))
        .then_field_error(MissingField, "invitee");
    s.when_typed("xuan", &[], deny("inv"))
        .then_field_error(MissingField, "invitee");
    let li = Command::ApproveInvite(decision_on("inv", "li"));
    let then = s.when_typed("xuan", &[], li);
    then.then_match(|e| {
        matches!(e, [Event::InviteApproved(a), Event::MemberJoined(j)]
            if a.invitee == id("li") && j.user_id == id("li"))
    });
    assert_eq!(s.record_status("inv", "li"), Some(RecordStatus::Approved));
    assert_eq!(s.record_status("inv", "fang"), Some(RecordStatus::Applying));
}

#[test]
fn approve_naming_someone_not_invited_is_invalid_field() {
    let mut s = applying();
    let li = Command::ApproveInvite(decision_on("app", "li"));
    s.when_typed("xuan", &[], li).then_field_error(InvalidField, "invitee");
}

#[test]
fn approve_into_a_full_resource_is_resource_full() {
    let mut s = room(2);
    let spec = InviteSpec {
        invite_id: Some(id("inv")),
        requires_approval: true,
        ..invitee("fang")
    };
    s.given_typed("xuan", &[], create_invite("room", spec))
        .given_typed("fang", &[], accept("inv"))
        .given_typed("li", &[], join("room"));
    s.when_typed("xuan", &[], approve("inv")).then_error(ResourceFull);
}

// ---- ExpireInvite ----

#[test]
fn expire_invite_by_anyone_but_system_is_forbidden() {
    let mut s = Scenario::invited();
    s.when_typed("xuan", &[], expire("inv")).then_error(Forbidden);
    s.when_typed("boss", &["admin"], expire("inv")).then_error(Forbidden);
}

#[test]
fn expire_invite_by_system_expires_unanswered_records() {
    let mut s = group();
    s.given_typed("fang", &[], accept("grp"));
    let then = s.when_typed("system", &[], expire("grp"));
    then.then(&[Event::InviteExpired(InviteExpired {
        at: s.at(),
        expired: ids(&["li", "mei"]),
        invite_id: id("grp"),
        inviter: id("xuan"),
        resource_id: id("conf"),
        role: "member".into(),
    })]);
    assert_eq!(s.record_status("grp", "fang"), Some(RecordStatus::Accepted));
    assert_eq!(s.record_status("grp", "li"), Some(RecordStatus::Expired));
    s.when_typed("li", &[], accept("grp")).then_error(Expired);
    s.when_typed("system", &[], expire("grp")).then_error(Expired);
}

#[test]
fn expire_invite_after_cancel_is_cancelled() {
    let mut s = Scenario::invited();
    s.given_typed("xuan", &[], cancel("inv"));
    s.when_typed("system", &[], expire("inv")).then_error(Cancelled);
}

#[test]
fn expire_invite_when_everyone_answered_is_invalid_state() {
    let mut s = Scenario::invited();
    s.given_typed("fang", &[], accept("inv"));
    s.when_typed("system", &[], expire("inv")).then_error(InvalidState);
}

// ---- RemindInvite ----

#[test]
fn remind_is_for_system_only() {
    let mut s = Scenario::invited();
    s.when_typed("xuan", &[], remind("inv")).then_error(Forbidden);
}

#[test]
fn remind_goes_to_the_inviter_and_invitees_who_did_not_refuse() {
    let mut s = Scenario::conference();
    let begin = Utc.with_ymd_and_hms(2026, 11, 21, 13, 0, 0).unwrap();
    let detail = InviteDetail {
        content: Some("Sync".into()),
        begin_time: Some(begin),
        remind_min: Some(30),
        remind_type: Some(RemindType::Sms),
        ..InviteDetail::default()
    };
    let spec = InviteSpec {
        invite_id: Some(id("m")),
        detail: Some(detail),
        ..invitees(&["fang", "li", "wu"])
    };
    s.given_typed("xuan", &[], create_invite("conf", spec))
        .given_typed("li", &[], reject("m"))
        .given_typed("wu", &[], accept("m"));
    let then = s.when_typed("system", &[], remind("m"));
    then.then(&[Event::InviteReminded(InviteReminded {
        at: s.at(),
        begin_time: Some(begin),
        content: Some("Sync".into()),
        invite_id: id("m"),
        inviter: id("xuan"),
        recipients: ids(&["xuan", "fang", "wu"]),
        remind_type: Some(RemindType::Sms),
        resource_id: id("conf"),
        role: "member".into(),
    })]);
}

#[test]
fn remind_a_cancelled_invite_is_cancelled() {
    let mut s = Scenario::invited();
    s.given_typed("xuan", &[], cancel("inv"));
    s.when_typed("system", &[], remind("inv")).then_error(Cancelled);
}
