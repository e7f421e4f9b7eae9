//! A first set of decisions, as the pattern for the rest.

mod support;

use invitebus_events::{ErrorCode, RecordStatus};
use serde_json::json;
use support::Scenario;

#[test]
fn creating_an_invite_records_every_field() {
    let mut s = Scenario::conference();
    let then = s.when(
        "CreateInvite",
        json!({"actor":"xuan","resource_id":"conf","invitee":"fang","role":"pcmember"}),
    );
    then.then_types(&["InviteCreated"]);
    assert_eq!(then.reply()["invite_id"], "id-1");
    assert_eq!(s.record_status("id-1", "fang"), Some(RecordStatus::Pending));
}

#[test]
fn accepting_joins_the_resource_via_the_invite() {
    let mut s = Scenario::invited();
    let then = s.when("AcceptInvite", json!({"actor":"fang","invite_id":"inv"}));
    then.then_types(&["InviteAccepted", "MemberJoined"]);
    assert_eq!(then.reply()["status"], "accepted");
    assert!(s.is_member("conf", "fang"));
    s.when("AcceptInvite", json!({"actor":"fang","invite_id":"inv"}))
        .then_error(ErrorCode::AlreadyAccepted);
    s.when("RejectInvite", json!({"actor":"fang","invite_id":"inv"}))
        .then_error(ErrorCode::AlreadyAccepted);
}
