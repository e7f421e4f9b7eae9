//! `UpdateInvite`: the inviter changes an open invite's message, detail, expiry or invitees.

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::invite::guards::{check_invitees, expires_at, only_inviter, still_valid};
use crate::invite::InviteError;
use crate::invite::OnInvite;
use crate::resource::full;
use invitebus_events::command as cmd;
use invitebus_events::event::InviteUpdated;
use invitebus_events::{Event, Id, InviteStatus, RecordStatus};
use serde_json::{json, Value};

pub struct UpdateInvite(pub cmd::UpdateInvite);

impl Decision for UpdateInvite {
    type State<'s> = OnInvite<'s>;
    type Error = InviteError;

    fn load<'s>(&mut self, store: Store<'s>, _: &Ctx) -> Result<OnInvite<'s>, InviteError> {
        OnInvite::load(store, &self.0.invite_id)
    }

    fn decide(&self, on: &OnInvite<'_>, ctx: &Ctx) -> Result<Vec<Event>, InviteError> {
        let (c, invite, resource) = (&self.0, on.invite()?, on.resource);
        only_inviter(invite, ctx)?;
        still_valid(invite, ctx)?;
        if invite.status() != InviteStatus::Open {
            return Err(InviteError::AllAnswered);
        }
        check_invitees(&c.add_invitees, resource, ctx, "add_invitees")?;
        if !c.add_invitees.is_empty() {
            // Inviting more people is a new invite: a pause refuses it (changes alone go through).
            resource.require_open(&invite.resource_id, ctx.now)?;
        }
        for added in &c.add_invitees {
            if invite.record(added).is_some() {
                return Err(InviteError::AlreadyInvited(added.clone()));
            }
        }
        for removed in &c.remove_invitees {
            match invite.record(removed) {
                None => {
                    return Err(InviteError::NotInvited {
                        field: "remove_invitees",
                        user: removed.clone(),
                    })
                }
                Some(r) if !r.status.is_unanswered() => return Err(InviteError::RemovesAnswered(removed.clone())),
                Some(_) => {}
            }
        }
        let mut invitees: Vec<Id> = invite
            .records
            .iter()
            .map(|r| r.invitee.clone())
            .filter(|i| !c.remove_invitees.contains(i))
            .collect();
        invitees.extend(c.add_invitees.iter().cloned());
        if invitees.is_empty() {
            return Err(InviteError::NoInviteeLeft);
        }
        if invitees.len() > cmd::MAX_INVITEES {
            return Err(InviteError::TooManyInvitees);
        }
        if resource.room().is_some_and(|room| c.add_invitees.len() > room) {
            return Err(full(&invite.resource_id).into());
        }
        let detail = c.detail.clone().or_else(|| invite.detail.clone());
        let times = |d: &Option<cmd::InviteDetail>| d.as_ref().map(|d| (d.begin_time, d.end_time));
        // New times answer a tentative invitee's proposal: they are asked again (`pending`).
        let tentative_reset = match times(&detail) != times(&invite.detail) {
            true => invite
                .records
                .iter()
                .filter(|r| r.status == RecordStatus::Tentative && !c.remove_invitees.contains(&r.invitee))
                .map(|r| r.invitee.clone())
                .collect(),
            false => vec![],
        };
        Ok(vec![Event::InviteUpdated(InviteUpdated {
            invite_id: invite.invite_id.clone(),
            resource_id: invite.resource_id.clone(),
            inviter: invite.inviter.clone(),
            role: invite.role.clone(),
            message: c.message.clone().or_else(|| invite.message.clone()),
            detail,
            expires_at: match c.expires_in {
                Some(_) => expires_at(c.expires_in, ctx)?,
                None => invite.expires_at,
            },
            added: c.add_invitees.clone(),
            removed: c.remove_invitees.clone(),
            invitees,
            tentative_reset,
            at: ctx.now,
        })])
    }

    fn reply(&self, on: &OnInvite<'_>, _: &[Event]) -> Value {
        json!({"invite_id": on.invite_id})
    }
}
