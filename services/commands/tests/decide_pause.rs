//! Pausing invites on a resource (PauseInvites, ResumeInvites): who may, what a pause refuses
//! (CreateInvite, CreateInviteCode, RedeemInviteCode: `invites_paused` on `resource_id`), what
//! it leaves alone (answering invites already sent), and `until`, which ends the pause at that
//! time even before the scheduler's resume, and whose resume lifts that pause only, once.

mod support;

use chrono::Duration;
use invitebus_events::event::{InvitesPaused, InvitesResumed};
use invitebus_events::ErrorCode::{Forbidden, InvalidField, InvalidState, InvitesPaused as Paused};
use invitebus_events::Event;
use support::typed::*;
use support::{id, Scenario};

/// `invited()` (xuan owns `conf`, invited fang to `inv`) plus code `JOIN`, then paused by xuan.
fn paused(until_secs: Option<i64>) -> Scenario {
    let mut s = Scenario::invited();
    s.given_typed("xuan", &[], create_code("conf", "JOIN"));
    let until = until_secs.map(|secs| s.at() + Duration::seconds(secs));
    s.given_typed("xuan", &[], pause("conf", until));
    s
}

#[test]
fn the_owner_pauses_new_invites() {
    let mut s = Scenario::conference();
    let until = s.at() + Duration::hours(1);
    let then = s.when_typed("xuan", &[], pause("conf", Some(until)));
    then.then(&[Event::InvitesPaused(InvitesPaused {
        at: s.at(),
        by: id("xuan"),
        resource_id: id("conf"),
        until: Some(until),
    })]);
    assert_eq!(then.reply()["paused"], true);
}

#[test]
fn a_member_who_is_not_the_owner_may_not_pause_and_an_admin_may() {
    let mut s = Scenario::conference();
    s.given_typed("fang", &[], join("conf"));
    s.when_typed("fang", &[], pause("conf", None)).then_error(Forbidden);
    s.when_typed("boss", &["admin"], pause("conf", None))
        .then_match(|e| matches!(e, [Event::InvitesPaused(p)] if p.by == id("boss") && p.until.is_none()));
}

#[test]
fn a_pause_until_a_time_that_has_passed_is_invalid_field() {
    let mut s = Scenario::conference();
    let past = s.at() - Duration::seconds(1);
    s.when_typed("xuan", &[], pause("conf", Some(past)))
        .then_field_error(InvalidField, "until");
}

#[test]
fn pausing_again_with_the_same_until_appends_nothing_and_another_until_replaces_it() {
    let mut s = paused(Some(600));
    let until = s.at() + Duration::seconds(600);
    s.when_typed("xuan", &[], pause("conf", Some(until))).then_nothing();
    s.when_typed("xuan", &[], pause("conf", None))
        .then_match(|e| matches!(e, [Event::InvitesPaused(p)] if p.until.is_none()));
}

#[test]
fn a_paused_resource_refuses_new_invites_codes_and_redemptions() {
    let mut s = paused(None);
    s.when_typed("xuan", &[], create_invite("conf", invitee("li")))
        .then_field_error(Paused, "resource_id");
    s.when_typed("xuan", &[], create_code("conf", "MORE"))
        .then_field_error(Paused, "resource_id");
    s.when_typed("li", &[], redeem("JOIN"))
        .then_field_error(Paused, "resource_id");
}

#[test]
fn an_invite_sent_before_the_pause_can_still_be_answered() {
    let mut s = paused(None);
    s.when_typed("fang", &[], accept("inv"))
        .then_types(&["InviteAccepted", "MemberJoined"]);
}

#[test]
fn a_pause_ends_at_its_until_even_before_it_is_resumed() {
    let mut s = paused(Some(60));
    s.when_typed("xuan", &[], create_invite("conf", invitee("li")))
        .then_error(Paused);
    s.advance(60);
    s.when_typed("xuan", &[], create_invite("conf", invitee("li")))
        .then_types(&["InviteCreated"]);
}

#[test]
fn the_owner_resumes_and_new_invites_are_taken_again() {
    let mut s = paused(None);
    s.when_typed("xuan", &[], resume("conf", None))
        .then(&[Event::InvitesResumed(InvitesResumed {
            at: s.at(),
            by: id("xuan"),
            resource_id: id("conf"),
        })]);
    s.when_typed("li", &[], redeem("JOIN"))
        .then_types(&["InviteCodeRedeemed", "MemberJoined"]);
}

#[test]
fn resuming_what_is_not_paused_is_invalid_state() {
    let mut s = Scenario::conference();
    s.when_typed("xuan", &[], resume("conf", None))
        .then_field_error(InvalidState, "resource_id");
}

#[test]
fn a_member_who_is_not_the_owner_may_not_resume() {
    let mut s = paused(None);
    s.given_typed("fang", &[], accept("inv"));
    s.when_typed("fang", &[], resume("conf", None)).then_error(Forbidden);
}

/// The scheduler's resume names the pause's `until`: it lifts that pause, once; a timer of a
/// pause that was replaced since lifts nothing (Discord's "silently unpaused" servers).
#[test]
fn the_schedulers_resume_lifts_only_the_pause_it_was_set_for() {
    let mut s = paused(Some(60));
    let first = s.at() + Duration::seconds(60);
    let second = s.at() + Duration::seconds(3600);
    s.given_typed("xuan", &[], pause("conf", Some(second)));
    s.advance(60);
    s.when_typed("system", &[], resume("conf", Some(first)))
        .then_field_error(InvalidState, "resource_id");
    s.when_typed("xuan", &[], create_invite("conf", invitee("li")))
        .then_error(Paused);
    s.advance(3540);
    s.when_typed("system", &[], resume("conf", Some(second)))
        .then_match(|e| matches!(e, [Event::InvitesResumed(r)] if r.by == id("system")));
    s.when_typed("system", &[], resume("conf", Some(second)))
        .then_error(InvalidState);
}

#[test]
fn pausing_a_resource_that_does_not_exist_is_not_found() {
    let mut s = Scenario::conference();
    s.when_typed("xuan", &[], pause("nope", None))
        .then_field_error(invitebus_events::ErrorCode::NotFound, "resource_id");
}

#[test]
fn adding_invitees_to_an_invite_is_refused_while_paused_and_other_changes_go_through() {
    let mut s = paused(None);
    s.when_typed("xuan", &[], add_invitees("inv", &["li"]))
        .then_field_error(Paused, "resource_id");
    s.when_typed("xuan", &[], update_message("inv", "see you there"))
        .then_types(&["InviteUpdated"]);
}
