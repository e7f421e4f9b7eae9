//! StartCall (seed 002): a channel registered, the caller joined and the invite created, all
//! in one outcome, with the channel's defaults and the invite rules of CreateInvite.

mod support;

use invitebus_events::command::{CallSpec, InviteSpec, StartCall};
use invitebus_events::event::{InviteCreated, MemberJoined, ResourceRegistered, Via};
use invitebus_events::ErrorCode::*;
use invitebus_events::{Command, Event, RecordStatus};
use serde_json::json;
use support::typed::*;
use support::{id, Scenario};

#[test]
fn start_call_registers_joins_and_invites_in_one_outcome() {
    let mut s = Scenario::conference();
    let then = s.when_typed("xuan", &[], start_call(invitee("fang")));
    let at = s.at();
    then.then(&[
        Event::ResourceRegistered(ResourceRegistered {
            at,
            capacity: 0,
            info: None,
            kind: id("channel"),
            name: "call".into(),
            owner: id("xuan"),
            parent_id: None,
            resource_id: id("id-1"),
        }),
        Event::MemberJoined(MemberJoined {
            at,
            inviter: None,
            member_count: 1,
            resource_id: id("id-1"),
            user_id: id("xuan"),
            via: Via::owner(),
        }),
        Event::InviteCreated(InviteCreated {
            code: None,
            created_at: at,
            detail: None,
            expires_at: None,
            ext: None,
            invite_id: id("id-2"),
            invitees: ids(&["fang"]),
            inviter: id("xuan"),
            message: None,
            offline_enabled: true,
            push: None,
            requires_approval: false,
            resource_id: id("id-1"),
            resource_kind: id("channel"),
            role: "member".into(),
        }),
    ]);
    assert_eq!(then.reply(), &json!({"resource_id":"id-1","invite_id":"id-2"}));
    assert!(s.is_member("id-1", "xuan"));
    assert_eq!(s.record_status("id-2", "fang"), Some(RecordStatus::Pending));
    s.when_typed("fang", &[], accept("id-2")).then_match(|e| {
        matches!(e, [Event::InviteAccepted(a), Event::MemberJoined(j)]
            if a.invitee == id("fang") && j.resource_id == id("id-1") && j.via == Via::invite(&id("id-2")))
    });
}

#[test]
fn start_call_with_given_ids_uses_them() {
    let mut s = Scenario::conference();
    let call = Command::StartCall(StartCall {
        call: CallSpec {
            resource_id: Some(id("call1")),
            name: Some("Standup".into()),
            ..CallSpec::default()
        },
        spec: InviteSpec {
            invite_id: Some(id("ring1")),
            ..invitees(&["fang", "li"])
        },
    });
    let then = s.when_typed("xuan", &[], call);
    assert_eq!(then.reply(), &json!({"resource_id":"call1","invite_id":"ring1"}));
    then.then_match(|e| {
        matches!(e, [Event::ResourceRegistered(r), Event::MemberJoined(_), Event::InviteCreated(c)]
            if r.resource_id == id("call1") && r.name == "Standup" && c.invite_id == id("ring1"))
    });
}

#[test]
fn start_call_with_an_existing_resource_id_is_resource_exists() {
    let mut s = Scenario::conference();
    let call = Command::StartCall(StartCall {
        call: CallSpec {
            resource_id: Some(id("conf")),
            ..CallSpec::default()
        },
        spec: invitee("fang"),
    });
    s.when_typed("xuan", &[], call)
        .then_field_error(ResourceExists, "resource_id");
}

#[test]
fn start_call_with_a_taken_invite_id_is_resource_exists() {
    let mut s = Scenario::invited();
    let spec = InviteSpec {
        invite_id: Some(id("inv")),
        ..invitee("li")
    };
    s.when_typed("xuan", &[], start_call(spec))
        .then_field_error(ResourceExists, "invite_id");
}

#[test]
fn start_call_inviting_yourself_is_invalid_field() {
    let mut s = Scenario::conference();
    s.when_typed("xuan", &[], start_call(invitee("xuan")))
        .then_error(InvalidField);
}

#[test]
fn start_call_with_too_little_capacity_is_resource_full() {
    let mut s = Scenario::conference();
    let call = |who: &[&str]| {
        Command::StartCall(StartCall {
            call: CallSpec {
                capacity: Some(2),
                ..CallSpec::default()
            },
            spec: invitees(who),
        })
    };
    s.when_typed("xuan", &[], call(&["fang", "li"]))
        .then_error(ResourceFull);
    s.when_typed("xuan", &[], call(&["fang"])).then_match(|e| {
        matches!(e, [Event::ResourceRegistered(r), Event::MemberJoined(_), Event::InviteCreated(c)]
            if r.capacity == 2 && c.invitees == ids(&["fang"]))
    });
}
