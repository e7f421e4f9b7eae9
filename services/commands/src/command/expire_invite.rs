//! `ExpireInvite`: `system` (the scheduler's timer) ends an invite past its expiry; every
//! unanswered record becomes `expired`.

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::invite::InviteError;
use crate::invite::OnInvite;
use invitebus_events::command as cmd;
use invitebus_events::event::InviteExpired;
use invitebus_events::{Event, Id};
use serde_json::{json, Value};

pub struct ExpireInvite(pub cmd::ExpireInvite);

impl Decision for ExpireInvite {
    type State<'s> = OnInvite<'s>;
    type Error = InviteError;

    fn load<'s>(&mut self, store: Store<'s>, _: &Ctx) -> Result<OnInvite<'s>, InviteError> {
        OnInvite::load(store, &self.0.invite_id)
    }

    fn decide(&self, on: &OnInvite<'_>, ctx: &Ctx) -> Result<Vec<Event>, InviteError> {
        let invite = on.invite()?;
        if !ctx.is_system() {
            return Err(InviteError::SystemOnly("expire an invite"));
        }
        if invite.cancelled {
            return Err(InviteError::Cancelled(invite.invite_id.clone()));
        }
        if invite.expired {
            return Err(InviteError::Expired(invite.invite_id.clone()));
        }
        let expired: Vec<Id> = invite
            .records
            .iter()
            .filter(|r| r.status.is_unanswered())
            .map(|r| r.invitee.clone())
            .collect();
        if expired.is_empty() {
            return Err(InviteError::AllAnswered);
        }
        Ok(vec![Event::InviteExpired(InviteExpired {
            invite_id: invite.invite_id.clone(),
            resource_id: invite.resource_id.clone(),
            inviter: invite.inviter.clone(),
            role: invite.role.clone(),
            expired,
            at: ctx.now,
        })])
    }

    fn reply(&self, on: &OnInvite<'_>, _: &[Event]) -> Value {
        json!({"invite_id": on.invite_id})
    }
}
