//! `RegisterResource`: a new resource, its registrant its owner and first member.

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::resource::ResourceError;
use crate::resource::ResourceState;
use invitebus_events::command as cmd;
use invitebus_events::event::{MemberJoined, ResourceRegistered, Via};
use invitebus_events::Event;
use serde_json::{json, Value};

pub struct RegisterResource(pub cmd::RegisterResource);

impl Decision for RegisterResource {
    type State<'s> = &'s ResourceState;
    type Error = ResourceError;

    fn load<'s>(&mut self, store: Store<'s>, _: &Ctx) -> Result<&'s ResourceState, ResourceError> {
        ResourceState::load_own(store, &self.0.resource_id)
    }

    fn decide(&self, state: &&ResourceState, ctx: &Ctx) -> Result<Vec<Event>, ResourceError> {
        register(state, ctx, &self.0)
    }

    fn reply(&self, _: &&ResourceState, _: &[Event]) -> Value {
        json!({"resource_id": self.0.resource_id})
    }
}

/// The rule, shared with `StartCall`: a taken id is `resource_exists`.
pub fn register(state: &ResourceState, ctx: &Ctx, c: &cmd::RegisterResource) -> Result<Vec<Event>, ResourceError> {
    if state.exists() {
        return Err(ResourceError::Taken(c.resource_id.clone()));
    }
    let registered = ResourceRegistered {
        resource_id: c.resource_id.clone(),
        kind: c.kind.clone(),
        name: c.name.clone(),
        capacity: c.capacity,
        parent_id: c.parent_id.clone(),
        info: c.info.clone(),
        owner: ctx.actor.clone(),
        at: ctx.now,
    };
    let owner = MemberJoined {
        resource_id: c.resource_id.clone(),
        user_id: ctx.actor.clone(),
        via: Via::owner(),
        inviter: None,
        member_count: 1,
        at: ctx.now,
    };
    Ok(vec![Event::ResourceRegistered(registered), Event::MemberJoined(owner)])
}
