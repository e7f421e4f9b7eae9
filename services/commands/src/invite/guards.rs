//! The checks the invite decisions share: the invite exists and is still valid, who may act on
//! it, which invitees may be invited, and when an invite ends.

use super::{Invite, InviteState, Record};
use crate::ctx::Ctx;
use crate::resource::ResourceState;
use invitebus_events::event::Via;
use invitebus_events::{Id, RecordStatus};

pub use super::error::InviteError;

pub fn existing<'a>(state: &'a InviteState, invite_id: &Id) -> Result<&'a Invite, InviteError> {
    state
        .invite
        .as_ref()
        .ok_or_else(|| InviteError::NotFound(invite_id.clone()))
}

/// Refuses a cancelled or expired invite with its own code.
pub fn still_valid(invite: &Invite, ctx: &Ctx) -> Result<(), InviteError> {
    if invite.cancelled {
        return Err(InviteError::Cancelled(invite.invite_id.clone()));
    }
    if invite.is_past_expiry(ctx.now) {
        return Err(InviteError::Expired(invite.invite_id.clone()));
    }
    Ok(())
}

pub fn only_inviter(invite: &Invite, ctx: &Ctx) -> Result<(), InviteError> {
    if invite.inviter != ctx.actor {
        return Err(InviteError::NotInviter);
    }
    Ok(())
}

/// The actor's own record: they must be an invitee.
pub fn own_record<'a>(invite: &'a Invite, ctx: &Ctx) -> Result<&'a Record, InviteError> {
    invite.record(&ctx.actor).ok_or(InviteError::NotInvitee)
}

/// The actor's own record, still open to an answer (accept, reject, "maybe"): unanswered, and
/// the invite not cancelled or past its end.
pub fn answering<'a>(invite: &'a Invite, ctx: &Ctx) -> Result<&'a Record, InviteError> {
    let record = own_record(invite, ctx)?;
    if !record.status.is_unanswered() {
        return Err(answered(record.status, invite));
    }
    still_valid(invite, ctx)?;
    Ok(record)
}

/// The code for a record that was already answered.
pub fn answered(status: RecordStatus, invite: &Invite) -> InviteError {
    let id = invite.invite_id.clone();
    match status {
        RecordStatus::Accepted | RecordStatus::Applying | RecordStatus::Approved => InviteError::AlreadyAccepted(id),
        RecordStatus::Rejected => InviteError::AlreadyRejected(id),
        RecordStatus::Cancelled => InviteError::Cancelled(id),
        RecordStatus::Expired => InviteError::Expired(id),
        RecordStatus::Denied | RecordStatus::Pending | RecordStatus::Read | RecordStatus::Tentative => {
            InviteError::Unanswerable { invite_id: id, status }
        }
    }
}

/// Each invitee must be new to the resource and to the invite, and not the inviter.
pub fn check_invitees(
    invitees: &[Id],
    resource: &ResourceState,
    ctx: &Ctx,
    field: &'static str,
) -> Result<(), InviteError> {
    for invitee in invitees {
        if invitee == &ctx.actor {
            return Err(InviteError::InvitesSelf { field });
        }
        if resource.is_member(invitee) {
            return Err(InviteError::AlreadyMember {
                field,
                user: invitee.clone(),
            });
        }
    }
    Ok(())
}

/// `now + expires_in`; absent or 0 = never; a time past the calendar is `invalid_field`.
pub fn expires_at(expires_in: Option<u64>, ctx: &Ctx) -> Result<Option<chrono::DateTime<chrono::Utc>>, InviteError> {
    match expires_in {
        None | Some(0) => Ok(None),
        Some(s) => invitebus_events::envelope::after_seconds(ctx.now, s)
            .map(Some)
            .ok_or(InviteError::EndsTooLate),
    }
}

/// How a member joins through `invite` (and the code it came from, if any).
pub fn via(invite: &Invite) -> Via {
    Via {
        code: invite.code.clone(),
        ..Via::invite(&invite.invite_id)
    }
}
