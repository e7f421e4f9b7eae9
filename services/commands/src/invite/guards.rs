//! The checks the invite decisions share: the invite exists and is still valid, who may act on
//! it, which invitees may be invited, and when an invite ends.

use super::{Invite, InviteState, Record};
use crate::ctx::Ctx;
use crate::resource::ResourceState;
use invitebus_events::event::Via;
use invitebus_events::{ErrorCode, Id, ProtocolError, RecordStatus};

pub fn existing<'a>(state: &'a InviteState, invite_id: &Id) -> Result<&'a Invite, ProtocolError> {
    state
        .invite
        .as_ref()
        .ok_or_else(|| ProtocolError::not_found("invite_id", invite_id))
}

/// Refuses a cancelled or expired invite with its own code.
pub fn still_valid(invite: &Invite, ctx: &Ctx) -> Result<(), ProtocolError> {
    if invite.cancelled {
        return Err(ProtocolError::new(
            ErrorCode::Cancelled,
            format!("invite {} was cancelled", invite.invite_id),
        ));
    }
    if invite.is_past_expiry(ctx.now) {
        return Err(ProtocolError::new(
            ErrorCode::Expired,
            format!("invite {} has expired", invite.invite_id),
        ));
    }
    Ok(())
}

pub fn only_inviter(invite: &Invite, ctx: &Ctx) -> Result<(), ProtocolError> {
    if invite.inviter != ctx.actor {
        return Err(ProtocolError::forbidden("only the inviter may do this"));
    }
    Ok(())
}

/// The actor's own record: they must be an invitee.
pub fn own_record<'a>(invite: &'a Invite, ctx: &Ctx) -> Result<&'a Record, ProtocolError> {
    invite
        .record(&ctx.actor)
        .ok_or_else(|| ProtocolError::forbidden("only an invitee may do this"))
}

/// The code for a record that was already answered.
pub fn answered(status: RecordStatus, invite: &Invite) -> ProtocolError {
    let id = &invite.invite_id;
    match status {
        RecordStatus::Accepted | RecordStatus::Applying | RecordStatus::Approved => {
            ProtocolError::new(ErrorCode::AlreadyAccepted, format!("invite {id} was already accepted"))
        }
        RecordStatus::Rejected => {
            ProtocolError::new(ErrorCode::AlreadyRejected, format!("invite {id} was already rejected"))
        }
        RecordStatus::Cancelled => ProtocolError::new(ErrorCode::Cancelled, format!("invite {id} was cancelled")),
        RecordStatus::Expired => ProtocolError::new(ErrorCode::Expired, format!("invite {id} has expired")),
        RecordStatus::Denied | RecordStatus::Pending | RecordStatus::Read => {
            ProtocolError::new(ErrorCode::InvalidState, format!("invite {id} is {}", status.as_str()))
        }
    }
}

/// Each invitee must be new to the resource and to the invite, and not the inviter.
pub fn check_invitees(invitees: &[Id], resource: &ResourceState, ctx: &Ctx, field: &str) -> Result<(), ProtocolError> {
    for invitee in invitees {
        if invitee == &ctx.actor {
            return Err(ProtocolError::invalid(field, "you cannot invite yourself"));
        }
        if resource.is_member(invitee) {
            return Err(ProtocolError::with_field(
                ErrorCode::AlreadyMember,
                field,
                format!("{invitee} is already a member"),
            ));
        }
    }
    Ok(())
}

/// `now + expires_in`; absent or 0 = never; a time past the calendar is `invalid_field`.
pub fn expires_at(expires_in: Option<u64>, ctx: &Ctx) -> Result<Option<chrono::DateTime<chrono::Utc>>, ProtocolError> {
    match expires_in {
        None | Some(0) => Ok(None),
        Some(s) => invitebus_events::envelope::after_seconds(ctx.now, s)
            .map(Some)
            .ok_or_else(|| ProtocolError::invalid("expires_in", "ends after 9999-12-31")),
    }
}

/// How a member joins through `invite` (and the code it came from, if any).
pub fn via(invite: &Invite) -> Via {
    Via {
        code: invite.code.clone(),
        ..Via::invite(&invite.invite_id)
    }
}
