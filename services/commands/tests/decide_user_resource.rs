//! Decisions of the user and resource aggregates: UpsertUser, RegisterResource, JoinResource,
//! LeaveResource.

mod support;

use invitebus_events::command::UpsertUser;
use invitebus_events::event::{MemberJoined, MemberLeft, ResourceRegistered, UserUpserted, Via};
use invitebus_events::{Command, ErrorCode, Event};
use serde_json::json;
use support::typed::*;
use support::{id, Scenario};

/// `fang`'s profile as `name`, as a command.
fn fang_named(name: &str) -> Command {
    upsert_user("fang", name)
}

/// Only `user` joining `resource` directly, as its second member.
fn joins_second(e: &[Event], resource: &str, user: &str) -> bool {
    matches!(e, [Event::MemberJoined(j)]
        if j.resource_id == id(resource) && j.user_id == id(user) && j.via == Via::direct() && j.member_count == 2)
}

// ---- UpsertUser ----

#[test]
fn upsert_user_by_the_user_themself_appends_user_upserted() {
    let mut s = Scenario::new();
    let with_phone = Command::UpsertUser(UpsertUser {
        phone: Some("123".into()),
        ..profile("fang", "Fang")
    });
    let then = s.when_typed("fang", &[], with_phone);
    then.then(&[Event::UserUpserted(UserUpserted {
        area: None,
        at: s.at(),
        company_name: None,
        department: None,
        email: None,
        name: "Fang".into(),
        phone: Some("123".into()),
        position: None,
        user_id: id("fang"),
    })]);
    assert_eq!(then.reply()["user_id"], "fang");
}

#[test]
fn upsert_user_of_another_user_is_forbidden() {
    let mut s = Scenario::conference();
    s.when_typed("xuan", &[], fang_named("Not Fang"))
        .then_error(ErrorCode::Forbidden);
}

#[test]
fn upsert_user_by_an_admin_is_allowed() {
    let mut s = Scenario::conference();
    s.when_typed("boss", &["admin"], fang_named("Fang Li"))
        .then_match(|e| matches!(e, [Event::UserUpserted(u)] if u.user_id == id("fang") && u.name == "Fang Li"));
}

#[test]
fn upsert_user_with_a_role_other_than_admin_is_forbidden() {
    let mut s = Scenario::conference();
    s.when_typed("xuan", &["moderator"], fang_named("X"))
        .then_error(ErrorCode::Forbidden);
}

#[test]
fn upsert_user_by_system_is_allowed() {
    let mut s = Scenario::conference();
    s.when_typed("system", &[], fang_named("Fang Li"))
        .then_match(|e| matches!(e, [Event::UserUpserted(u)] if u.user_id == id("fang") && u.name == "Fang Li"));
}

#[test]
fn upsert_user_with_an_unchanged_profile_appends_nothing() {
    let mut s = Scenario::conference();
    s.advance(3600);
    let then = s.when_typed("fang", &[], fang_named("Fang"));
    then.then_nothing();
    assert_eq!(then.reply()["user_id"], "fang");
}

#[test]
fn upsert_user_with_a_changed_field_appends_again() {
    let mut s = Scenario::conference();
    let with_area = Command::UpsertUser(UpsertUser {
        area: Some("Shanghai".into()),
        ..profile("fang", "Fang")
    });
    s.when_typed("fang", &[], with_area)
        .then_match(|e| matches!(e, [Event::UserUpserted(u)] if u.area.as_deref() == Some("Shanghai")));
}

// ---- RegisterResource ----

#[test]
fn register_resource_appends_registered_and_owner_joined() {
    let mut s = Scenario::new();
    let then = s.when_typed("xuan", &[], register("conf", "conference", "RustConf", 10));
    let at = s.at();
    then.then(&[
        Event::ResourceRegistered(ResourceRegistered {
            at,
            capacity: 10,
            info: None,
            kind: id("conference"),
            name: "RustConf".into(),
            owner: id("xuan"),
            parent_id: None,
            resource_id: id("conf"),
        }),
        Event::MemberJoined(MemberJoined {
            at,
            inviter: None,
            member_count: 1,
            resource_id: id("conf"),
            user_id: id("xuan"),
            via: Via::owner(),
        }),
    ]);
    assert_eq!(then.reply()["resource_id"], "conf");
    assert!(s.is_member("conf", "xuan"));
}

/// Left JSON: what it checks is that a body without `capacity` decodes to 0 (unlimited).
#[test]
fn register_resource_defaults_to_unlimited_capacity() {
    let mut s = Scenario::new();
    let then = s.when(
        "RegisterResource",
        json!({"actor":"xuan","resource_id":"g","kind":"guild","name":"G"}),
    );
    then.then_match(|e| matches!(e, [Event::ResourceRegistered(r), Event::MemberJoined(_)] if r.capacity == 0));
}

#[test]
fn register_resource_with_a_taken_id_is_resource_exists() {
    let mut s = Scenario::conference();
    s.when_typed("fang", &[], register("conf", "meeting", "Other", 0))
        .then_field_error(ErrorCode::ResourceExists, "resource_id");
    assert!(!s.is_member("conf", "fang"));
}

// ---- JoinResource ----

#[test]
fn join_resource_joins_directly() {
    let mut s = Scenario::conference();
    let then = s.when_typed("fang", &[], join("conf"));
    then.then(&[Event::MemberJoined(MemberJoined {
        at: s.at(),
        inviter: None,
        member_count: 2,
        resource_id: id("conf"),
        user_id: id("fang"),
        via: Via::direct(),
    })]);
    assert!(s.is_member("conf", "fang"));
}

#[test]
fn join_resource_when_already_a_member_is_already_member() {
    let mut s = Scenario::conference();
    s.when_typed("xuan", &[], join("conf"))
        .then_error(ErrorCode::AlreadyMember);
    s.given_typed("fang", &[], join("conf"));
    s.when_typed("fang", &[], join("conf"))
        .then_error(ErrorCode::AlreadyMember);
}

#[test]
fn join_resource_at_capacity_is_resource_full() {
    let mut s = Scenario::new();
    s.given_typed("xuan", &[], register("room", "meeting", "Room", 2))
        .given_typed("fang", &[], join("room"));
    s.when_typed("li", &[], join("room"))
        .then_error(ErrorCode::ResourceFull);
    assert!(!s.is_member("room", "li"));
}

#[test]
fn join_resource_with_capacity_one_is_full_with_the_owner() {
    let mut s = Scenario::new();
    s.given_typed("xuan", &[], register("solo", "meeting", "Solo", 1));
    s.when_typed("fang", &[], join("solo"))
        .then_error(ErrorCode::ResourceFull);
}

#[test]
fn join_resource_unknown_is_not_found() {
    let mut s = Scenario::conference();
    s.when_typed("fang", &[], join("nope"))
        .then_field_error(ErrorCode::NotFound, "resource_id");
}

// ---- LeaveResource ----

#[test]
fn leave_resource_appends_member_left() {
    let mut s = Scenario::conference();
    s.given_typed("fang", &[], join("conf"));
    let then = s.when_typed("fang", &[], leave("conf"));
    then.then(&[Event::MemberLeft(MemberLeft {
        at: s.at(),
        member_count: 1,
        resource_id: id("conf"),
        user_id: id("fang"),
    })]);
    assert!(!s.is_member("conf", "fang"));
}

#[test]
fn leave_resource_when_not_a_member_is_not_member() {
    let mut s = Scenario::conference();
    s.when_typed("fang", &[], leave("conf"))
        .then_error(ErrorCode::NotMember);
}

#[test]
fn leave_resource_twice_is_not_member() {
    let mut s = Scenario::conference();
    s.given_typed("fang", &[], join("conf"))
        .given_typed("fang", &[], leave("conf"));
    s.when_typed("fang", &[], leave("conf"))
        .then_error(ErrorCode::NotMember);
}

#[test]
fn leave_resource_unknown_is_not_found() {
    let mut s = Scenario::conference();
    s.when_typed("fang", &[], leave("nope")).then_error(ErrorCode::NotFound);
}

#[test]
fn leaving_frees_a_place_and_allows_rejoining() {
    let mut s = Scenario::new();
    s.given_typed("xuan", &[], register("room", "meeting", "Room", 2))
        .given_typed("fang", &[], join("room"))
        .given_typed("fang", &[], leave("room"));
    s.when_typed("li", &[], join("room"))
        .then_match(|e| joins_second(e, "room", "li"));
    s.given_typed("li", &[], leave("room"));
    s.when_typed("fang", &[], join("room"))
        .then_match(|e| joins_second(e, "room", "fang"));
}
