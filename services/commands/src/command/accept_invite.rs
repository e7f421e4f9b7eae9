//! `AcceptInvite`: an invitee accepts; without approval (and with `auto_join`, the default) they
//! join the resource in the same append. The reply says the record's new status.

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::invite::guards::{answering, via};
use crate::invite::InviteError;
use crate::invite::OnInvite;
use invitebus_events::command as cmd;
use invitebus_events::event::InviteAccepted;
use invitebus_events::{Event, RecordStatus};
use serde_json::{json, Value};

pub struct AcceptInvite(pub cmd::AcceptInvite);

impl Decision for AcceptInvite {
    type State<'s> = OnInvite<'s>;
    type Error = InviteError;

    fn load<'s>(&mut self, store: Store<'s>, _: &Ctx) -> Result<OnInvite<'s>, InviteError> {
        OnInvite::load(store, &self.0.invite_id)
    }

    fn decide(&self, on: &OnInvite<'_>, ctx: &Ctx) -> Result<Vec<Event>, InviteError> {
        let (invite, resource) = (on.invite()?, on.resource);
        answering(invite, ctx)?;
        let status = if invite.requires_approval {
            RecordStatus::Applying
        } else {
            RecordStatus::Accepted
        };
        let mut events = vec![Event::InviteAccepted(InviteAccepted {
            invite_id: invite.invite_id.clone(),
            resource_id: invite.resource_id.clone(),
            inviter: invite.inviter.clone(),
            invitee: ctx.actor.clone(),
            role: invite.role.clone(),
            status,
            at: ctx.now,
        })];
        if status == RecordStatus::Accepted && self.0.auto_join.unwrap_or(true) && !resource.is_member(&ctx.actor) {
            resource.require(&invite.resource_id)?;
            let joined = resource.join(&ctx.actor, via(invite), Some(invite.inviter.clone()), ctx)?;
            events.push(Event::MemberJoined(joined));
        }
        Ok(events)
    }

    fn reply(&self, on: &OnInvite<'_>, events: &[Event]) -> Value {
        let status = events.iter().find_map(|e| match e {
            Event::InviteAccepted(a) => Some(a.status),
            _ => None,
        });
        json!({"invite_id": on.invite_id, "status": status})
    }
}
