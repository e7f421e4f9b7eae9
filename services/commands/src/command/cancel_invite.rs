//! `CancelInvite`: the inviter withdraws an invite while someone has not answered.

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::invite::guards::{answered, only_inviter, still_valid};
use crate::invite::InviteError;
use crate::invite::OnInvite;
use invitebus_events::command as cmd;
use invitebus_events::event::InviteCancelled;
use invitebus_events::{Event, Id, RecordStatus};
use serde_json::{json, Value};

pub struct CancelInvite(pub cmd::CancelInvite);

impl Decision for CancelInvite {
    type State<'s> = OnInvite<'s>;
    type Error = InviteError;

    fn load<'s>(&mut self, store: Store<'s>, _: &Ctx) -> Result<OnInvite<'s>, InviteError> {
        OnInvite::load(store, &self.0.invite_id)
    }

    fn decide(&self, on: &OnInvite<'_>, ctx: &Ctx) -> Result<Vec<Event>, InviteError> {
        let invite = on.invite()?;
        only_inviter(invite, ctx)?;
        still_valid(invite, ctx)?;
        let cancelled: Vec<Id> = invite
            .records
            .iter()
            .filter(|r| r.status.is_unanswered())
            .map(|r| r.invitee.clone())
            .collect();
        if cancelled.is_empty() {
            // Every invitee has answered; with one invitee, say how (seed 002).
            let first = invite
                .records
                .first()
                .map(|r| r.status)
                .unwrap_or(RecordStatus::Pending);
            return Err(if invite.records.iter().all(|r| r.status == first) {
                answered(first, invite)
            } else {
                InviteError::AllAnswered
            });
        }
        Ok(vec![Event::InviteCancelled(InviteCancelled {
            invite_id: invite.invite_id.clone(),
            resource_id: invite.resource_id.clone(),
            inviter: invite.inviter.clone(),
            role: invite.role.clone(),
            cancelled,
            at: ctx.now,
        })])
    }

    fn reply(&self, on: &OnInvite<'_>, _: &[Event]) -> Value {
        json!({"invite_id": on.invite_id})
    }
}
