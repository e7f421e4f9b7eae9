//! Decisions of the user and resource aggregates: UpsertUser, RegisterResource, JoinResource,
//! LeaveResource.

mod support;

use invitebus_events::ErrorCode;
use serde_json::json;
use support::Scenario;

// ---- UpsertUser ----

#[test]
fn upsert_user_by_the_user_themself_appends_user_upserted() {
    let mut s = Scenario::new();
    let then = s.when(
        "UpsertUser",
        json!({"actor":"fang","user_id":"fang","name":"Fang","phone":"123"}),
    );
    then.then_types(&["UserUpserted"]);
    assert_eq!(then.reply()["user_id"], "fang");
    assert_eq!(then.data(0)["name"], "Fang");
    assert_eq!(then.data(0)["phone"], "123");
}

#[test]
fn upsert_user_of_another_user_is_forbidden() {
    let mut s = Scenario::conference();
    s.when("UpsertUser", json!({"actor":"xuan","user_id":"fang","name":"Not Fang"}))
        .then_error(ErrorCode::Forbidden);
}

#[test]
fn upsert_user_by_an_admin_is_allowed() {
    let mut s = Scenario::conference();
    s.when(
        "UpsertUser",
        json!({"actor":"boss","roles":["admin"],"user_id":"fang","name":"Fang Li"}),
    )
    .then_types(&["UserUpserted"]);
}

#[test]
fn upsert_user_with_a_role_other_than_admin_is_forbidden() {
    let mut s = Scenario::conference();
    s.when(
        "UpsertUser",
        json!({"actor":"xuan","roles":["moderator"],"user_id":"fang","name":"X"}),
    )
    .then_error(ErrorCode::Forbidden);
}

#[test]
fn upsert_user_by_system_is_allowed() {
    let mut s = Scenario::conference();
    s.when(
        "UpsertUser",
        json!({"actor":"system","user_id":"fang","name":"Fang Li"}),
    )
    .then_types(&["UserUpserted"]);
}

#[test]
fn upsert_user_with_an_unchanged_profile_appends_nothing() {
    let mut s = Scenario::conference();
    s.advance(3600);
    let then = s.when("UpsertUser", json!({"actor":"fang","user_id":"fang","name":"Fang"}));
    then.then_nothing();
    assert_eq!(then.reply()["user_id"], "fang");
}

#[test]
fn upsert_user_with_a_changed_field_appends_again() {
    let mut s = Scenario::conference();
    s.when(
        "UpsertUser",
        json!({"actor":"fang","user_id":"fang","name":"Fang","area":"Shanghai"}),
    )
    .then_types(&["UserUpserted"]);
}

// ---- RegisterResource ----

#[test]
fn register_resource_appends_registered_and_owner_joined() {
    let mut s = Scenario::new();
    let then = s.when(
        "RegisterResource",
        json!({"actor":"xuan","resource_id":"conf","kind":"conference","name":"RustConf","capacity":10}),
    );
    then.then_types(&["ResourceRegistered", "MemberJoined"]);
    assert_eq!(then.reply()["resource_id"], "conf");
    let registered = then.data(0);
    assert_eq!(registered["owner"], "xuan");
    assert_eq!(registered["kind"], "conference");
    assert_eq!(registered["capacity"], 10);
    let joined = then.data(1);
    assert_eq!(joined["user_id"], "xuan");
    assert_eq!(joined["via"], json!({"owner":true}));
    assert_eq!(joined["inviter"], json!(null));
    assert_eq!(joined["member_count"], 1);
    assert!(s.is_member("conf", "xuan"));
}

#[test]
fn register_resource_defaults_to_unlimited_capacity() {
    let mut s = Scenario::new();
    let then = s.when(
        "RegisterResource",
        json!({"actor":"xuan","resource_id":"g","kind":"guild","name":"G"}),
    );
    assert_eq!(then.data(0)["capacity"], 0);
}

#[test]
fn register_resource_with_a_taken_id_is_resource_exists() {
    let mut s = Scenario::conference();
    s.when(
        "RegisterResource",
        json!({"actor":"fang","resource_id":"conf","kind":"meeting","name":"Other"}),
    )
    .then_field_error(ErrorCode::ResourceExists, "resource_id");
    assert!(!s.is_member("conf", "fang"));
}

// ---- JoinResource ----

#[test]
fn join_resource_joins_directly() {
    let mut s = Scenario::conference();
    let then = s.when("JoinResource", json!({"actor":"fang","resource_id":"conf"}));
    then.then_types(&["MemberJoined"]);
    assert_eq!(then.data(0)["via"], json!({"direct":true}));
    assert_eq!(then.data(0)["inviter"], json!(null));
    assert_eq!(then.data(0)["member_count"], 2);
    assert!(s.is_member("conf", "fang"));
}

#[test]
fn join_resource_when_already_a_member_is_already_member() {
    let mut s = Scenario::conference();
    s.when("JoinResource", json!({"actor":"xuan","resource_id":"conf"}))
        .then_error(ErrorCode::AlreadyMember);
    s.given("JoinResource", json!({"actor":"fang","resource_id":"conf"}));
    s.when("JoinResource", json!({"actor":"fang","resource_id":"conf"}))
        .then_error(ErrorCode::AlreadyMember);
}

#[test]
fn join_resource_at_capacity_is_resource_full() {
    let mut s = Scenario::new();
    s.given(
        "RegisterResource",
        json!({"actor":"xuan","resource_id":"room","kind":"meeting","name":"Room","capacity":2}),
    )
    .given("JoinResource", json!({"actor":"fang","resource_id":"room"}));
    s.when("JoinResource", json!({"actor":"li","resource_id":"room"}))
        .then_error(ErrorCode::ResourceFull);
    assert!(!s.is_member("room", "li"));
}

#[test]
fn join_resource_with_capacity_one_is_full_with_the_owner() {
    let mut s = Scenario::new();
    s.given(
        "RegisterResource",
        json!({"actor":"xuan","resource_id":"solo","kind":"meeting","name":"Solo","capacity":1}),
    );
    s.when("JoinResource", json!({"actor":"fang","resource_id":"solo"}))
        .then_error(ErrorCode::ResourceFull);
}

#[test]
fn join_resource_unknown_is_not_found() {
    let mut s = Scenario::conference();
    s.when("JoinResource", json!({"actor":"fang","resource_id":"nope"}))
        .then_field_error(ErrorCode::NotFound, "resource_id");
}

// ---- LeaveResource ----

#[test]
fn leave_resource_appends_member_left() {
    let mut s = Scenario::conference();
    s.given("JoinResource", json!({"actor":"fang","resource_id":"conf"}));
    let then = s.when("LeaveResource", json!({"actor":"fang","resource_id":"conf"}));
    then.then_types(&["MemberLeft"]);
    assert_eq!(then.data(0)["user_id"], "fang");
    assert_eq!(then.data(0)["member_count"], 1);
    assert!(!s.is_member("conf", "fang"));
}

#[test]
fn leave_resource_when_not_a_member_is_not_member() {
    let mut s = Scenario::conference();
    s.when("LeaveResource", json!({"actor":"fang","resource_id":"conf"}))
        .then_error(ErrorCode::NotMember);
}

#[test]
fn leave_resource_twice_is_not_member() {
    let mut s = Scenario::conference();
    s.given("JoinResource", json!({"actor":"fang","resource_id":"conf"}))
        .given("LeaveResource", json!({"actor":"fang","resource_id":"conf"}));
    s.when("LeaveResource", json!({"actor":"fang","resource_id":"conf"}))
        .then_error(ErrorCode::NotMember);
}

#[test]
fn leave_resource_unknown_is_not_found() {
    let mut s = Scenario::conference();
    s.when("LeaveResource", json!({"actor":"fang","resource_id":"nope"}))
        .then_error(ErrorCode::NotFound);
}

#[test]
fn leaving_frees_a_place_and_allows_rejoining() {
    let mut s = Scenario::new();
    s.given(
        "RegisterResource",
        json!({"actor":"xuan","resource_id":"room","kind":"meeting","name":"Room","capacity":2}),
    )
    .given("JoinResource", json!({"actor":"fang","resource_id":"room"}))
    .given("LeaveResource", json!({"actor":"fang","resource_id":"room"}));
    s.when("JoinResource", json!({"actor":"li","resource_id":"room"}))
        .then_types(&["MemberJoined"]);
    s.given("LeaveResource", json!({"actor":"li","resource_id":"room"}));
    s.when("JoinResource", json!({"actor":"fang","resource_id":"room"}))
        .then_types(&["MemberJoined"]);
}
