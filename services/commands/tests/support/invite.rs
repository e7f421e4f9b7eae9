//! Bodies and scenarios shared by the invite decision tests.

use super::{with, Scenario};
use serde_json::{json, Value};

/// A CreateInvite body from xuan for `conf`, with `extra` fields.
pub fn create(extra: Value) -> Value {
    with(json!({"actor":"xuan","resource_id":"conf"}), extra)
}

/// A body for invite `inv` acted on by `actor`, with `extra` fields.
pub fn on(actor: &str, extra: Value) -> Value {
    with(json!({"actor": actor, "invite_id": "inv"}), extra)
}

/// A body for invite `inv` acted on by `actor`.
pub fn by(actor: &str) -> Value {
    on(actor, json!({}))
}

/// A body for invite `app` acted on by `actor`.
pub fn app(actor: &str) -> Value {
    to("app", actor)
}

/// A body for invite `grp` acted on by `actor`.
pub fn grp(actor: &str) -> Value {
    to("grp", actor)
}

/// A body for invite `invite` acted on by `actor`.
pub fn to(invite: &str, actor: &str) -> Value {
    json!({"actor": actor, "invite_id": invite})
}

/// `conference()` plus invite `grp` from xuan to fang, li and mei.
pub fn group() -> Scenario {
    let mut s = Scenario::conference();
    s.given(
        "CreateInvite",
        create(json!({"invitees":["fang","li","mei"],"invite_id":"grp"})),
    );
    s
}

/// `conference()` plus invite `app` needing approval, which fang has accepted (so `applying`).
pub fn applying() -> Scenario {
    let mut s = Scenario::conference();
    let body = json!({"invitee":"fang","invite_id":"app","requires_approval":true});
    s.given("CreateInvite", create(body)).given("AcceptInvite", app("fang"));
    s
}

/// A resource `room` of `capacity` owned by xuan, and nothing else.
pub fn room(capacity: u32) -> Scenario {
    let mut s = Scenario::new();
    let body = json!({"actor":"xuan","resource_id":"room","kind":"meeting","name":"Room","capacity":capacity});
    s.given("RegisterResource", body);
    s
}
