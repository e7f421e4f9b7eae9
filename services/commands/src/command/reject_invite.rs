//! `RejectInvite`: an invitee refuses, with an optional reason.

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::invite::guards::answering;
use crate::invite::InviteError;
use crate::invite::OnInvite;
use invitebus_events::command as cmd;
use invitebus_events::event::InviteRejected;
use invitebus_events::Event;
use serde_json::{json, Value};

pub struct RejectInvite(pub cmd::RejectInvite);

impl Decision for RejectInvite {
    type State<'s> = OnInvite<'s>;
    type Error = InviteError;

    fn load<'s>(&mut self, store: Store<'s>, _: &Ctx) -> Result<OnInvite<'s>, InviteError> {
        OnInvite::load(store, &self.0.invite_id)
    }

    fn decide(&self, on: &OnInvite<'_>, ctx: &Ctx) -> Result<Vec<Event>, InviteError> {
        let invite = on.invite()?;
        answering(invite, ctx)?;
        Ok(vec![Event::InviteRejected(InviteRejected {
            invite_id: invite.invite_id.clone(),
            resource_id: invite.resource_id.clone(),
            inviter: invite.inviter.clone(),
            invitee: ctx.actor.clone(),
            role: invite.role.clone(),
            reason: self.0.reason.clone(),
            at: ctx.now,
        })])
    }

    fn reply(&self, on: &OnInvite<'_>, _: &[Event]) -> Value {
        json!({"invite_id": on.invite_id})
    }
}
