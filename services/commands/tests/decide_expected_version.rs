//! `expected_version`: optimistic concurrency on the command's own stream, for invites (an
//! existing one, or a new one at version 0) and for resources.

mod support;

use invitebus_events::command::InviteSpec;
use invitebus_events::ErrorCode::*;
use invitebus_events::{CommandMeta, Event};
use support::invite::fang_accepts_inv;
use support::typed::*;
use support::{id, meta, Scenario};

/// The common fields of `actor` expecting its stream at `version`.
fn at_version(actor: &str, version: u64) -> CommandMeta {
    CommandMeta {
        expected_version: Some(version),
        ..meta(actor)
    }
}

#[test]
fn expected_version_mismatch_is_conflict() {
    let mut s = Scenario::invited();
    s.when_meta(at_version("fang", 0), accept("inv"))
        .then_field_error(Conflict, "expected_version");
    s.when_meta(at_version("fang", 2), accept("inv")).then_error(Conflict);
}

#[test]
fn expected_version_match_is_accepted() {
    let mut s = Scenario::invited();
    s.when_meta(at_version("fang", 1), mark_read("inv"))
        .then_match(|e| matches!(e, [Event::InviteRead(r)] if r.invitee == id("fang")));
    let then = s.when_meta(at_version("fang", 2), accept("inv"));
    then.then(&fang_accepts_inv(s.at()));
}

#[test]
fn expected_version_zero_creates_a_new_invite_only() {
    let mut s = Scenario::invited();
    let create = |invite: &str| {
        let spec = InviteSpec {
            invite_id: Some(id(invite)),
            ..invitee("li")
        };
        create_invite("conf", spec)
    };
    s.when_meta(at_version("xuan", 0), create("new"))
        .then_match(|e| matches!(e, [Event::InviteCreated(c)] if c.invite_id == id("new")));
    s.when_meta(at_version("xuan", 0), create("inv")).then_error(Conflict);
}

#[test]
fn expected_version_applies_to_resource_commands() {
    let mut s = Scenario::conference();
    s.when_meta(at_version("fang", 1), join("conf")).then_error(Conflict);
    s.when_meta(at_version("fang", 2), join("conf"))
        .then_match(|e| matches!(e, [Event::MemberJoined(j)] if j.user_id == id("fang")));
}
