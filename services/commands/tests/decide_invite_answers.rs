//! Decisions of the invite aggregate, part two: an invitee's answers (accept, reject), reads
//! and hiding. Resends, approval, expiry and reminders are in `decide_invite_approval.rs`.

mod support;

use invitebus_events::command::InviteSpec;
use invitebus_events::event::{InviteHidden, InviteRead, InviteRejected};
use invitebus_events::ErrorCode::*;
use invitebus_events::{Command, Event, RecordStatus};
use support::invite::{fang_accepts_inv, room};
use support::typed::*;
use support::{id, Scenario};

/// CreateInvite in `conf` of `invite` to `who`, expiring after `secs`.
fn expiring_invite(invite: &str, who: &str, secs: u64) -> Command {
    let spec = InviteSpec {
        invite_id: Some(id(invite)),
        expires_in: Some(secs),
        ..invitee(who)
    };
    create_invite("conf", spec)
}

// ---- AcceptInvite ----

#[test]
fn accept_invite_by_a_non_invitee_is_forbidden() {
    let mut s = Scenario::invited();
    s.when_typed("li", &[], accept("inv")).then_error(Forbidden);
    s.when_typed("xuan", &[], accept("inv")).then_error(Forbidden);
}

#[test]
fn accept_invite_joins_via_the_invite_with_the_inviter() {
    let mut s = Scenario::invited();
    let then = s.when_typed("fang", &[], accept("inv"));
    then.then(&fang_accepts_inv(s.at()));
}

#[test]
fn accept_invite_after_reading_is_allowed() {
    let mut s = Scenario::invited();
    s.given_typed("fang", &[], mark_read("inv"));
    let then = s.when_typed("fang", &[], accept("inv"));
    then.then(&fang_accepts_inv(s.at()));
}

#[test]
fn accept_invite_after_cancel_is_cancelled() {
    let mut s = Scenario::invited();
    s.given_typed("xuan", &[], cancel("inv"));
    s.when_typed("fang", &[], accept("inv")).then_error(Cancelled);
}

#[test]
fn accept_invite_past_expires_at_is_expired() {
    let mut s = Scenario::conference();
    s.given_typed("xuan", &[], expiring_invite("inv", "fang", 60));
    s.advance(59);
    s.when_typed("fang", &[], accept_without_joining("inv"))
        .then_match(|e| matches!(e, [Event::InviteAccepted(a)] if a.status == RecordStatus::Accepted));
    s.given_typed("xuan", &[], expiring_invite("late", "li", 60));
    s.advance(60);
    s.when_typed("li", &[], accept("late")).then_error(Expired);
}

#[test]
fn accept_invite_without_auto_join_does_not_join() {
    let mut s = Scenario::invited();
    let then = s.when_typed("fang", &[], accept_without_joining("inv"));
    then.then(&fang_accepts_inv(s.at())[..1]);
    assert_eq!(then.reply()["status"], "accepted");
    assert_eq!(s.record_status("inv", "fang"), Some(RecordStatus::Accepted));
    assert!(!s.is_member("conf", "fang"));
}

#[test]
fn accept_invite_requiring_approval_is_applying_without_joining() {
    let mut s = Scenario::conference();
    let spec = InviteSpec {
        invite_id: Some(id("inv")),
        requires_approval: true,
        ..invitee("fang")
    };
    s.given_typed("xuan", &[], create_invite("conf", spec));
    let then = s.when_typed("fang", &[], accept("inv"));
    then.then_match(
        |e| matches!(e, [Event::InviteAccepted(a)] if a.status == RecordStatus::Applying && a.invitee == id("fang")),
    );
    assert_eq!(then.reply()["status"], "applying");
    assert_eq!(s.record_status("inv", "fang"), Some(RecordStatus::Applying));
    assert!(!s.is_member("conf", "fang"));
}

#[test]
fn accept_invite_when_the_resource_filled_up_is_resource_full() {
    let mut s = room(2);
    let spec = InviteSpec {
        invite_id: Some(id("inv")),
        ..invitee("fang")
    };
    s.given_typed("xuan", &[], create_invite("room", spec))
        .given_typed("li", &[], join("room"));
    s.when_typed("fang", &[], accept("inv")).then_error(ResourceFull);
    assert_eq!(s.record_status("inv", "fang"), Some(RecordStatus::Pending));
}

#[test]
fn accept_invite_when_already_a_member_only_accepts() {
    let mut s = Scenario::invited();
    s.given_typed("fang", &[], join("conf"));
    let then = s.when_typed("fang", &[], accept("inv"));
    then.then(&fang_accepts_inv(s.at())[..1]);
}

#[test]
fn accept_invite_after_reject_is_already_rejected() {
    let mut s = Scenario::invited();
    s.given_typed("fang", &[], reject("inv"));
    s.when_typed("fang", &[], accept("inv")).then_error(AlreadyRejected);
}

#[test]
fn accept_invite_unknown_is_not_found() {
    let mut s = Scenario::conference();
    s.when_typed("fang", &[], accept("inv")).then_error(NotFound);
}

// ---- RejectInvite ----

#[test]
fn reject_invite_records_the_reason() {
    let mut s = Scenario::invited();
    let then = s.when_typed("fang", &[], reject_because("inv", "busy"));
    then.then(&[Event::InviteRejected(InviteRejected {
        at: s.at(),
        invite_id: id("inv"),
        invitee: id("fang"),
        inviter: id("xuan"),
        reason: Some("busy".into()),
        resource_id: id("conf"),
        role: "pcmember".into(),
    })]);
    assert_eq!(s.record_status("inv", "fang"), Some(RecordStatus::Rejected));
    assert!(!s.is_member("conf", "fang"));
}

#[test]
fn reject_invite_twice_is_already_rejected() {
    let mut s = Scenario::invited();
    s.given_typed("fang", &[], reject("inv"));
    s.when_typed("fang", &[], reject("inv")).then_error(AlreadyRejected);
}

#[test]
fn reject_invite_by_a_non_invitee_is_forbidden() {
    let mut s = Scenario::invited();
    s.when_typed("li", &[], reject("inv")).then_error(Forbidden);
}

#[test]
fn reject_invite_after_cancel_is_cancelled() {
    let mut s = Scenario::invited();
    s.given_typed("xuan", &[], cancel("inv"));
    s.when_typed("fang", &[], reject("inv")).then_error(Cancelled);
}

#[test]
fn reject_invite_past_expires_at_is_expired() {
    let mut s = Scenario::conference();
    s.given_typed("xuan", &[], expiring_invite("inv", "fang", 5));
    s.advance(5);
    s.when_typed("fang", &[], reject("inv")).then_error(Expired);
}

// ---- MarkInviteRead ----

#[test]
fn mark_read_appends_only_the_first_read() {
    let mut s = Scenario::invited();
    let then = s.when_typed("fang", &[], mark_read("inv"));
    then.then(&[Event::InviteRead(InviteRead {
        at: s.at(),
        invite_id: id("inv"),
        invitee: id("fang"),
        inviter: id("xuan"),
        resource_id: id("conf"),
    })]);
    assert_eq!(s.record_status("inv", "fang"), Some(RecordStatus::Read));
    s.when_typed("fang", &[], mark_read("inv")).then_nothing();
}

#[test]
fn mark_read_after_answering_appends_nothing() {
    let mut s = Scenario::invited();
    s.given_typed("fang", &[], accept("inv"));
    s.when_typed("fang", &[], mark_read("inv")).then_nothing();
    assert_eq!(s.record_status("inv", "fang"), Some(RecordStatus::Accepted));
}

#[test]
fn mark_read_by_a_non_invitee_is_forbidden() {
    let mut s = Scenario::invited();
    s.when_typed("xuan", &[], mark_read("inv")).then_error(Forbidden);
}

// ---- HideInvite ----

#[test]
fn hide_invite_by_inviter_or_invitee_appends_invite_hidden() {
    let mut s = Scenario::invited();
    let hidden = |at, user| {
        Event::InviteHidden(InviteHidden {
            at,
            invite_id: id("inv"),
            resource_id: id("conf"),
            user_id: id(user),
        })
    };
    let then = s.when_typed("xuan", &[], hide("inv"));
    then.then(&[hidden(s.at(), "xuan")]);
    let then = s.when_typed("fang", &[], hide("inv"));
    then.then(&[hidden(s.at(), "fang")]);
}

#[test]
fn hide_invite_by_a_stranger_is_forbidden() {
    let mut s = Scenario::invited();
    s.when_typed("li", &[], hide("inv")).then_error(Forbidden);
}

#[test]
fn hide_invite_twice_appends_nothing() {
    let mut s = Scenario::invited();
    s.given_typed("fang", &[], hide("inv"));
    s.when_typed("fang", &[], hide("inv")).then_nothing();
}
