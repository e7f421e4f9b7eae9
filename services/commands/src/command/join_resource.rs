//! `JoinResource`: anyone joins a resource directly, within its capacity.

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::resource::ResourceError;
use crate::resource::ResourceState;
use invitebus_events::command as cmd;
use invitebus_events::event::Via;
use invitebus_events::Event;
use serde_json::{json, Value};

pub struct JoinResource(pub cmd::JoinResource);

impl Decision for JoinResource {
    type State<'s> = &'s ResourceState;
    type Error = ResourceError;

    fn load<'s>(&mut self, store: Store<'s>, _: &Ctx) -> Result<&'s ResourceState, ResourceError> {
        ResourceState::load_own(store, &self.0.resource_id)
    }

    fn decide(&self, state: &&ResourceState, ctx: &Ctx) -> Result<Vec<Event>, ResourceError> {
        state.require(&self.0.resource_id)?;
        Ok(vec![Event::MemberJoined(state.join(
            &ctx.actor,
            Via::direct(),
            None,
            ctx,
        )?)])
    }

    fn reply(&self, _: &&ResourceState, _: &[Event]) -> Value {
        json!({"resource_id": self.0.resource_id})
    }
}
