//! `ResumeInvites`: the resource's owner or an admin lets new invites in again; the scheduler
//! sends it with the pause's `until` when that time comes. With `until`, only the pause that
//! lasts until that time is resumed: a timer of an earlier pause never lifts a later one (the
//! "silently unpaused" bug Discord's users reported).

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::resource::{ResourceError, ResourceState};
use chrono::SubsecRound;
use invitebus_events::command as cmd;
use invitebus_events::event::InvitesResumed;
use invitebus_events::Event;
use serde_json::{json, Value};

pub struct ResumeInvites(pub cmd::ResumeInvites);

impl Decision for ResumeInvites {
    type State<'s> = &'s ResourceState;
    type Error = ResourceError;

    fn load<'s>(&mut self, store: Store<'s>, _: &Ctx) -> Result<&'s ResourceState, ResourceError> {
        ResourceState::load_own(store, &self.0.resource_id)
    }

    fn decide(&self, state: &&ResourceState, ctx: &Ctx) -> Result<Vec<Event>, ResourceError> {
        let resource_id = &self.0.resource_id;
        state.require(resource_id)?;
        state.require_manager(ctx, true)?;
        // The recorded pause, even one past its `until`: its resume is what the scheduler records.
        let Some(until) = state.paused else {
            return Err(ResourceError::NotPaused(format!(
                "new invites to {resource_id} are not paused"
            )));
        };
        let named = self.0.until.map(|u| u.trunc_subsecs(3));
        if named.is_some() && named != until {
            return Err(ResourceError::NotPaused(format!(
                "{resource_id} is paused, but not until the time given: that pause was replaced"
            )));
        }
        Ok(vec![Event::InvitesResumed(InvitesResumed {
            at: ctx.now,
            by: ctx.actor.clone(),
            resource_id: resource_id.clone(),
        })])
    }

    fn reply(&self, _: &&ResourceState, _: &[Event]) -> Value {
        json!({"resource_id": self.0.resource_id, "paused": false})
    }
}
