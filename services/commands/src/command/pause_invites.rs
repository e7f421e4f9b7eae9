//! `PauseInvites`: the resource's owner or an admin stops new invites to it (Discord's "pause
//! invites"), until resumed or until `until`. A pause again replaces the first one's `until`.

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::resource::{ResourceError, ResourceState};
use chrono::SubsecRound;
use invitebus_events::command as cmd;
use invitebus_events::event::InvitesPaused;
use invitebus_events::Event;
use serde_json::{json, Value};

pub struct PauseInvites(pub cmd::PauseInvites);

impl Decision for PauseInvites {
    type State<'s> = &'s ResourceState;
    type Error = ResourceError;

    fn load<'s>(&mut self, store: Store<'s>, _: &Ctx) -> Result<&'s ResourceState, ResourceError> {
        ResourceState::load_own(store, &self.0.resource_id)
    }

    fn decide(&self, state: &&ResourceState, ctx: &Ctx) -> Result<Vec<Event>, ResourceError> {
        let resource_id = &self.0.resource_id;
        state.require(resource_id)?;
        state.require_manager(ctx, false)?;
        // Milliseconds, as every stored time: the scheduler's resume names this `until` exactly.
        let until = self.0.until.map(|u| u.trunc_subsecs(3));
        if until.is_some_and(|u| u <= ctx.now) {
            return Err(ResourceError::PastUntil);
        }
        if state.pause_at(ctx.now) == Some(until) {
            return Ok(vec![]);
        }
        Ok(vec![Event::InvitesPaused(InvitesPaused {
            at: ctx.now,
            by: ctx.actor.clone(),
            resource_id: resource_id.clone(),
            until,
        })])
    }

    fn reply(&self, _: &&ResourceState, _: &[Event]) -> Value {
        let until = self
            .0
            .until
            .map(|u| invitebus_events::envelope::format_time(&u.trunc_subsecs(3)));
        json!({"resource_id": self.0.resource_id, "paused": true, "until": until})
    }
}
