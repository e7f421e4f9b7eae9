//! `HideInvite`: the inviter or an invitee hides an invite from their own lists.

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::invite::InviteError;
use crate::invite::OnInvite;
use invitebus_events::command as cmd;
use invitebus_events::event::InviteHidden;
use invitebus_events::Event;
use serde_json::{json, Value};

pub struct HideInvite(pub cmd::HideInvite);

impl Decision for HideInvite {
    type State<'s> = OnInvite<'s>;
    type Error = InviteError;

    fn load<'s>(&mut self, store: Store<'s>, _: &Ctx) -> Result<OnInvite<'s>, InviteError> {
        OnInvite::load(store, &self.0.invite_id)
    }

    fn decide(&self, on: &OnInvite<'_>, ctx: &Ctx) -> Result<Vec<Event>, InviteError> {
        let invite = on.invite()?;
        if invite.inviter != ctx.actor && invite.record(&ctx.actor).is_none() {
            return Err(InviteError::NotInviterOrInvitee);
        }
        if invite.hidden_by.contains(&ctx.actor) {
            return Ok(vec![]);
        }
        Ok(vec![Event::InviteHidden(InviteHidden {
            invite_id: invite.invite_id.clone(),
            resource_id: invite.resource_id.clone(),
            user_id: ctx.actor.clone(),
            at: ctx.now,
        })])
    }

    fn reply(&self, on: &OnInvite<'_>, _: &[Event]) -> Value {
        json!({"invite_id": on.invite_id})
    }
}
