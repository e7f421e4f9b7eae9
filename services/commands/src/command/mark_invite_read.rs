//! `MarkInviteRead`: an invitee has seen the invite; only the first read appends.

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::invite::guards::own_record;
use crate::invite::InviteError;
use crate::invite::OnInvite;
use invitebus_events::command as cmd;
use invitebus_events::event::InviteRead;
use invitebus_events::{Event, RecordStatus};
use serde_json::{json, Value};

pub struct MarkInviteRead(pub cmd::MarkInviteRead);

impl Decision for MarkInviteRead {
    type State<'s> = OnInvite<'s>;
    type Error = InviteError;

    fn load<'s>(&mut self, store: Store<'s>, _: &Ctx) -> Result<OnInvite<'s>, InviteError> {
        OnInvite::load(store, &self.0.invite_id)
    }

    fn decide(&self, on: &OnInvite<'_>, ctx: &Ctx) -> Result<Vec<Event>, InviteError> {
        let invite = on.invite()?;
        if own_record(invite, ctx)?.status != RecordStatus::Pending {
            return Ok(vec![]);
        }
        Ok(vec![Event::InviteRead(InviteRead {
            invite_id: invite.invite_id.clone(),
            resource_id: invite.resource_id.clone(),
            inviter: invite.inviter.clone(),
            invitee: ctx.actor.clone(),
            at: ctx.now,
        })])
    }

    fn reply(&self, on: &OnInvite<'_>, _: &[Event]) -> Value {
        json!({"invite_id": on.invite_id})
    }
}
