//! `LeaveResource`: a member leaves.

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::resource::ResourceError;
use crate::resource::ResourceState;
use invitebus_events::command as cmd;
use invitebus_events::event::MemberLeft;
use invitebus_events::Event;
use serde_json::{json, Value};

pub struct LeaveResource(pub cmd::LeaveResource);

impl Decision for LeaveResource {
    type State<'s> = &'s ResourceState;
    type Error = ResourceError;

    fn load<'s>(&mut self, store: Store<'s>, _: &Ctx) -> Result<&'s ResourceState, ResourceError> {
        ResourceState::load_own(store, &self.0.resource_id)
    }

    fn decide(&self, state: &&ResourceState, ctx: &Ctx) -> Result<Vec<Event>, ResourceError> {
        let resource_id = &self.0.resource_id;
        state.require(resource_id)?;
        state.require_member(&ctx.actor, resource_id)?;
        Ok(vec![Event::MemberLeft(MemberLeft {
            resource_id: resource_id.clone(),
            user_id: ctx.actor.clone(),
            member_count: (state.members.len() as u32).saturating_sub(1),
            at: ctx.now,
        })])
    }

    fn reply(&self, _: &&ResourceState, _: &[Event]) -> Value {
        json!({"resource_id": self.0.resource_id})
    }
}
