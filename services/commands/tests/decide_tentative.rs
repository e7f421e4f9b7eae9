//! Tentative answers (TentativelyAcceptInvite) and how the other commands treat a `tentative`
//! record: it is still unanswered (accept, reject, cancel, expire, the invite stays open), and an
//! UpdateInvite with new times asks the invitee again (`pending`), other changes do not.

mod support;

use chrono::Duration;
use invitebus_events::event::InviteTentativelyAccepted;
use invitebus_events::ErrorCode::{AlreadyAccepted, Forbidden, InvalidField};
use invitebus_events::{Event, InviteStatus, RecordStatus};
use serde_json::json;
use support::typed::*;
use support::{id, Scenario};

/// `invited()` (xuan invited fang to `inv`), and fang answered "maybe", proposing a day later.
fn tentative_fang() -> Scenario {
    let mut s = Scenario::invited();
    let later = s.at() + Duration::days(1);
    s.given_typed("fang", &[], tentative("inv", Some(later)));
    s
}

#[test]
fn an_invitee_answers_maybe_with_a_proposal() {
    let mut s = Scenario::invited();
    let later = s.at() + Duration::days(1);
    let then = s.when_typed("fang", &[], tentative("inv", Some(later)));
    then.then(&[Event::InviteTentativelyAccepted(InviteTentativelyAccepted {
        at: s.at(),
        comment: Some("can we move it?".into()),
        invite_id: id("inv"),
        invitee: id("fang"),
        inviter: id("xuan"),
        proposed_begin_time: Some(later),
        proposed_end_time: None,
        resource_id: id("conf"),
        role: "pcmember".into(),
    })]);
    assert_eq!(then.reply()["status"], "tentative");
    assert_eq!(s.record_status("inv", "fang"), Some(RecordStatus::Tentative));
}

#[test]
fn only_an_invitee_may_answer_maybe() {
    let mut s = Scenario::invited();
    s.when_typed("li", &[], tentative("inv", None)).then_error(Forbidden);
}

/// Refused when decoded, before any decision: nothing is loaded or appended.
#[test]
fn a_proposal_that_ends_before_it_begins_is_invalid_field() {
    let body = json!({"actor": "fang", "invite_id": "inv", "proposed_begin_time": "2030-01-01T10:00:00Z",
        "proposed_end_time": "2030-01-01T09:00:00Z"});
    let err = invitebus_events::CommandRequest::decode("TentativelyAcceptInvite", body.to_string().as_bytes())
        .expect_err("an end before the begin");
    assert_eq!(
        (err.code, err.field.as_deref()),
        (InvalidField, Some("proposed_end_time"))
    );
}

#[test]
fn a_tentative_invitee_may_still_accept_reject_or_answer_maybe_again() {
    let mut s = tentative_fang();
    s.when_typed("fang", &[], tentative("inv", None))
        .then_types(&["InviteTentativelyAccepted"]);
    s.when_typed("fang", &[], reject("inv")).then_types(&["InviteRejected"]);
    let mut s = tentative_fang();
    s.when_typed("fang", &[], accept("inv"))
        .then_types(&["InviteAccepted", "MemberJoined"]);
    s.when_typed("fang", &[], tentative("inv", None))
        .then_error(AlreadyAccepted);
}

#[test]
fn a_tentative_record_keeps_the_invite_open_and_is_cancelled_or_expired_like_an_unanswered_one() {
    let mut s = tentative_fang();
    assert_eq!(s.invite_status("inv"), Some(InviteStatus::Open));
    s.when_typed("xuan", &[], cancel("inv"))
        .then_match(|e| matches!(e, [Event::InviteCancelled(c)] if c.cancelled == [id("fang")]));
    let mut s = Scenario::conference();
    let spec = invitebus_events::command::InviteSpec {
        invite_id: Some(id("soon")),
        expires_in: Some(60),
        ..invitee("fang")
    };
    s.given_typed("xuan", &[], create_invite("conf", spec));
    s.given_typed("fang", &[], tentative("soon", None));
    s.advance(61);
    s.when_typed("system", &[], expire("soon"))
        .then_match(|e| matches!(e, [Event::InviteExpired(x)] if x.expired == [id("fang")]));
}

#[test]
fn new_times_ask_a_tentative_invitee_again_and_other_changes_do_not() {
    let mut s = tentative_fang();
    s.when_typed("xuan", &[], update_message("inv", "agenda attached"))
        .then_match(|e| matches!(e, [Event::InviteUpdated(u)] if u.tentative_reset.is_empty()));
    assert_eq!(s.record_status("inv", "fang"), Some(RecordStatus::Tentative));
    let moved = s.at() + Duration::days(1);
    s.when_typed("xuan", &[], update_begin("inv", moved))
        .then_match(|e| matches!(e, [Event::InviteUpdated(u)] if u.tentative_reset == [id("fang")]));
    assert_eq!(s.record_status("inv", "fang"), Some(RecordStatus::Pending));
    // The same times again: nothing to ask.
    s.given_typed("fang", &[], tentative("inv", None));
    s.when_typed("xuan", &[], update_begin("inv", moved))
        .then_match(|e| matches!(e, [Event::InviteUpdated(u)] if u.tentative_reset.is_empty()));
}

#[test]
fn the_seeds_read_a_tentative_record_as_not_yet_answered() {
    assert_eq!(RecordStatus::Tentative.seed_001_msg_status(), 1);
    assert_eq!(RecordStatus::Tentative.seed_000_status(), "init");
    assert!(RecordStatus::Tentative.reminded());
    assert!(RecordStatus::Tentative.is_unanswered());
}
