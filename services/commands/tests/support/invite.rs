//! Scenarios, bodies and expected events shared by the invite decision tests.

use super::typed::{accept, create_invite, invitee, invitees, register};
use super::{id, Scenario};
use chrono::{DateTime, Utc};
use invitebus_events::command::InviteSpec;
use invitebus_events::event::{InviteAccepted, InviteDecided, MemberJoined, Via};
use invitebus_events::{Event, RecordStatus};
use serde_json::{json, Value};

/// A JSON body for invite `app` acted on by `actor` (for comparing the JSON and typed harness).
pub fn app(actor: &str) -> Value {
    json!({"actor": actor, "invite_id": "app"})
}

/// `conference()` plus invite `grp` from xuan to fang, li and mei.
pub fn group() -> Scenario {
    let mut s = Scenario::conference();
    let spec = InviteSpec {
        invite_id: Some(id("grp")),
        ..invitees(&["fang", "li", "mei"])
    };
    s.given_typed("xuan", &[], create_invite("conf", spec));
    s
}

/// `conference()` plus invite `app` needing approval, which fang has accepted (so `applying`).
pub fn applying() -> Scenario {
    let mut s = Scenario::conference();
    let spec = InviteSpec {
        invite_id: Some(id("app")),
        requires_approval: true,
        ..invitee("fang")
    };
    s.given_typed("xuan", &[], create_invite("conf", spec))
        .given_typed("fang", &[], accept("app"));
    s
}

/// A resource `room` of `capacity` owned by xuan, and nothing else.
pub fn room(capacity: u32) -> Scenario {
    let mut s = Scenario::new();
    s.given_typed("xuan", &[], register("room", "meeting", "Room", capacity));
    s
}

/// What fang accepting `inv` of [`Scenario::invited`] appends at `at`: the acceptance, and
/// the join as the second member, brought in by xuan.
pub fn fang_accepts_inv(at: DateTime<Utc>) -> Vec<Event> {
    vec![
        Event::InviteAccepted(InviteAccepted {
            at,
            invite_id: id("inv"),
            invitee: id("fang"),
            inviter: id("xuan"),
            resource_id: id("conf"),
            role: "pcmember".into(),
            status: RecordStatus::Accepted,
        }),
        joined_conf_via(at, "inv", "fang"),
    ]
}

/// `user` joining `conf` at `at` through xuan's invite `invite`, as its second member.
pub fn joined_conf_via(at: DateTime<Utc>, invite: &str, user: &str) -> Event {
    Event::MemberJoined(MemberJoined {
        at,
        inviter: Some(id("xuan")),
        member_count: 2,
        resource_id: id("conf"),
        user_id: id(user),
        via: Via::invite(&id(invite)),
    })
}

/// The decision `by` on fang's application of [`applying`], at `at`.
pub fn decided_app(at: DateTime<Utc>, by: &str, description: Option<&str>) -> InviteDecided {
    InviteDecided {
        at,
        by: id(by),
        description: description.map(String::from),
        invite_id: id("app"),
        invitee: id("fang"),
        inviter: id("xuan"),
        resource_id: id("conf"),
        role: "member".into(),
    }
}
