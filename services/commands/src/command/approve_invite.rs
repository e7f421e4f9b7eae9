//! `ApproveInvite`: an admin or the resource's owner lets an `applying` invitee in (they join in
//! the same append). [`settle`] is shared with `DenyInvite`.

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::invite::guards::via;
use crate::invite::InviteError;
use crate::invite::OnInvite;
use invitebus_events::command as cmd;
use invitebus_events::event::InviteDecided;
use invitebus_events::{Event, RecordStatus};
use serde_json::{json, Value};

pub struct ApproveInvite(pub cmd::ApproveInvite);

impl Decision for ApproveInvite {
    type State<'s> = OnInvite<'s>;
    type Error = InviteError;

    fn load<'s>(&mut self, store: Store<'s>, _: &Ctx) -> Result<OnInvite<'s>, InviteError> {
        OnInvite::load(store, &self.0.invite_id)
    }

    fn decide(&self, on: &OnInvite<'_>, ctx: &Ctx) -> Result<Vec<Event>, InviteError> {
        settle(on, ctx, &self.0, true)
    }

    fn reply(&self, on: &OnInvite<'_>, _: &[Event]) -> Value {
        json!({"invite_id": on.invite_id})
    }
}

/// Approves (`approve`) or denies one `applying` record: the named invitee, or the only one.
pub fn settle(on: &OnInvite<'_>, ctx: &Ctx, c: &cmd::ApproveInvite, approve: bool) -> Result<Vec<Event>, InviteError> {
    let (invite, resource) = (on.invite()?, on.resource);
    if !ctx.is_admin() && !resource.is_owner(&ctx.actor) {
        return Err(InviteError::NotDecider);
    }
    let record = match (&c.invitee, invite.records.as_slice()) {
        (Some(i), _) => invite.record(i).ok_or_else(|| InviteError::NotInvited {
            field: "invitee",
            user: i.clone(),
        })?,
        (None, [only]) => only,
        (None, _) => return Err(InviteError::WhichInvitee),
    };
    if record.status != RecordStatus::Applying {
        return Err(InviteError::NotApplying {
            invitee: record.invitee.clone(),
            status: record.status,
        });
    }
    let decided = InviteDecided {
        invite_id: invite.invite_id.clone(),
        resource_id: invite.resource_id.clone(),
        inviter: invite.inviter.clone(),
        invitee: record.invitee.clone(),
        role: invite.role.clone(),
        description: c.description.clone(),
        by: ctx.actor.clone(),
        at: ctx.now,
    };
    if !approve {
        return Ok(vec![Event::InviteDenied(decided)]);
    }
    let mut events = vec![Event::InviteApproved(decided)];
    if !resource.is_member(&record.invitee) {
        resource.require(&invite.resource_id)?;
        events.push(Event::MemberJoined(resource.join(
            &record.invitee,
            via(invite),
            Some(invite.inviter.clone()),
            ctx,
        )?));
    }
    Ok(events)
}
