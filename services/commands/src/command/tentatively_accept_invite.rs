//! `TentativelyAcceptInvite`: an invitee answers "maybe" (Microsoft Graph's `tentativelyAccept`),
//! perhaps proposing other times and saying why. The record becomes `tentative`, which still
//! counts as unanswered: the invitee may accept or reject later, or answer "maybe" again with
//! another proposal; the inviter may answer with new times (UpdateInvite).

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::invite::guards::answering;
use crate::invite::InviteError;
use crate::invite::OnInvite;
use invitebus_events::command as cmd;
use invitebus_events::event::InviteTentativelyAccepted;
use invitebus_events::{Event, RecordStatus};
use serde_json::{json, Value};

pub struct TentativelyAcceptInvite(pub cmd::TentativelyAcceptInvite);

impl Decision for TentativelyAcceptInvite {
    type State<'s> = OnInvite<'s>;
    type Error = InviteError;

    fn load<'s>(&mut self, store: Store<'s>, _: &Ctx) -> Result<OnInvite<'s>, InviteError> {
        OnInvite::load(store, &self.0.invite_id)
    }

    fn decide(&self, on: &OnInvite<'_>, ctx: &Ctx) -> Result<Vec<Event>, InviteError> {
        let invite = on.invite()?;
        answering(invite, ctx)?;
        let c = &self.0;
        Ok(vec![Event::InviteTentativelyAccepted(InviteTentativelyAccepted {
            invite_id: invite.invite_id.clone(),
            resource_id: invite.resource_id.clone(),
            inviter: invite.inviter.clone(),
            invitee: ctx.actor.clone(),
            role: invite.role.clone(),
            proposed_begin_time: c.proposed_begin_time,
            proposed_end_time: c.proposed_end_time,
            comment: c.comment.clone(),
            at: ctx.now,
        })])
    }

    fn reply(&self, on: &OnInvite<'_>, _: &[Event]) -> Value {
        json!({"invite_id": on.invite_id, "status": RecordStatus::Tentative})
    }
}
