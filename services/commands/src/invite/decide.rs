//! Every rule of the invite commands. Pure: state, resource, context and command in; events out.

use super::guards::{answered, check_invitees, existing, expires_at, only_inviter, own_record, still_valid};
use super::{Invite, InviteState};
use crate::ctx::Ctx;
use crate::resource::{full, ResourceState};
use chrono::Duration;
use invitebus_events::command::{
    AcceptInvite, CreateInvite, Decision, InviteRef, RejectInvite, ResendInvite, UpdateInvite,
};
use invitebus_events::event::{
    InviteAccepted, InviteCancelled, InviteCreated, InviteDecided, InviteExpired, InviteHidden, InviteRead,
    InviteRejected, InviteReminded, InviteResent, InviteUpdated, Via,
};
use invitebus_events::{ErrorCode, Event, Id, ProtocolError, RecordStatus};

/// The shortest time between two sends of one record.
pub const RESEND_INTERVAL_SECS: i64 = 60;

/// The invite commands.
#[derive(Debug, Clone, PartialEq)]
pub enum InviteCommand {
    /// `spec.invite_id` is filled in by the dispatcher before deciding.
    Create(CreateInvite),
    Update(UpdateInvite),
    Cancel(InviteRef),
    Accept(AcceptInvite),
    Reject(RejectInvite),
    Resend(ResendInvite),
    MarkRead(InviteRef),
    Hide(InviteRef),
    Approve(Decision),
    Deny(Decision),
    Expire(InviteRef),
    Remind(InviteRef),
}

pub fn decide(
    state: &InviteState,
    resource: &ResourceState,
    ctx: &Ctx,
    cmd: &InviteCommand,
) -> Result<Vec<Event>, ProtocolError> {
    match cmd {
        InviteCommand::Create(c) => create(state, resource, ctx, c),
        InviteCommand::Update(c) => update(existing(state, &c.invite_id)?, resource, ctx, c),
        InviteCommand::Cancel(c) => cancel(existing(state, &c.invite_id)?, ctx),
        InviteCommand::Accept(c) => accept(existing(state, &c.invite_id)?, resource, ctx, c),
        InviteCommand::Reject(c) => reject(existing(state, &c.invite_id)?, ctx, c),
        InviteCommand::Resend(c) => resend(existing(state, &c.invite_id)?, ctx, c),
        InviteCommand::MarkRead(c) => mark_read(existing(state, &c.invite_id)?, ctx),
        InviteCommand::Hide(c) => hide(existing(state, &c.invite_id)?, ctx),
        InviteCommand::Approve(c) => decision(existing(state, &c.invite_id)?, resource, ctx, c, true),
        InviteCommand::Deny(c) => decision(existing(state, &c.invite_id)?, resource, ctx, c, false),
        InviteCommand::Expire(c) => expire(existing(state, &c.invite_id)?, ctx),
        InviteCommand::Remind(c) => remind(existing(state, &c.invite_id)?, ctx),
    }
}

fn create(
    state: &InviteState,
    resource: &ResourceState,
    ctx: &Ctx,
    c: &CreateInvite,
) -> Result<Vec<Event>, ProtocolError> {
    let invite_id = c
        .spec
        .invite_id
        .clone()
        .ok_or_else(|| ProtocolError::internal("invite_id was not assigned"))?;
    if state.invite.is_some() {
        return Err(ProtocolError::with_field(
            ErrorCode::ResourceExists,
            "invite_id",
            format!("{invite_id} is taken"),
        ));
    }
    let info = resource.require(&c.resource_id)?;
    if !resource.is_member(&ctx.actor) {
        return Err(ProtocolError::with_field(
            ErrorCode::NotMember,
            "resource_id",
            format!("{} is not in {}", ctx.actor, c.resource_id),
        ));
    }
    let invitees = c.spec.all_invitees();
    let field = if c.spec.invitees.is_some() {
        "invitees"
    } else {
        "invitee"
    };
    check_invitees(&invitees, resource, ctx, field)?;
    if resource.room().is_some_and(|room| invitees.len() > room) {
        return Err(full(&c.resource_id));
    }
    Ok(vec![Event::InviteCreated(InviteCreated {
        invite_id,
        resource_id: c.resource_id.clone(),
        resource_kind: info.kind.clone(),
        inviter: ctx.actor.clone(),
        invitees,
        role: c.spec.role().to_string(),
        message: c.spec.message.clone(),
        detail: c.spec.detail.clone(),
        expires_at: expires_at(c.spec.expires_in, ctx)?,
        requires_approval: c.spec.requires_approval,
        offline_enabled: c.spec.offline_enabled.unwrap_or(true),
        push: c.spec.push.clone(),
        ext: c.spec.ext.clone(),
        code: None,
        created_at: ctx.now,
    })])
}

fn update(invite: &Invite, resource: &ResourceState, ctx: &Ctx, c: &UpdateInvite) -> Result<Vec<Event>, ProtocolError> {
    only_inviter(invite, ctx)?;
    still_valid(invite, ctx)?;
    if invite.status() != invitebus_events::InviteStatus::Open {
        return Err(ProtocolError::new(
            ErrorCode::InvalidState,
            "every invitee has answered",
        ));
    }
    check_invitees(&c.add_invitees, resource, ctx, "add_invitees")?;
    for added in &c.add_invitees {
        if invite.record(added).is_some() {
            return Err(ProtocolError::invalid(
                "add_invitees",
                format!("{added} is already invited"),
            ));
        }
    }
    for removed in &c.remove_invitees {
        match invite.record(removed) {
            None => {
                return Err(ProtocolError::invalid(
                    "remove_invitees",
                    format!("{removed} is not invited"),
                ))
            }
            Some(r) if !r.status.is_unanswered() => {
                return Err(ProtocolError::invalid(
                    "remove_invitees",
                    format!("{removed} has already answered"),
                ))
            }
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
        return Err(ProtocolError::invalid(
            "remove_invitees",
            "an invite needs at least one invitee",
        ));
    }
    if invitees.len() > invitebus_events::command::MAX_INVITEES {
        return Err(ProtocolError::invalid("add_invitees", "too many invitees"));
    }
    if resource.room().is_some_and(|room| c.add_invitees.len() > room) {
        return Err(full(&invite.resource_id));
    }
    Ok(vec![Event::InviteUpdated(InviteUpdated {
        invite_id: invite.invite_id.clone(),
        resource_id: invite.resource_id.clone(),
        inviter: invite.inviter.clone(),
        role: invite.role.clone(),
        message: c.message.clone().or_else(|| invite.message.clone()),
        detail: c.detail.clone().or_else(|| invite.detail.clone()),
        expires_at: match c.expires_in {
            Some(_) => expires_at(c.expires_in, ctx)?,
            None => invite.expires_at,
        },
        added: c.add_invitees.clone(),
        removed: c.remove_invitees.clone(),
        invitees,
        at: ctx.now,
    })])
}

fn cancel(invite: &Invite, ctx: &Ctx) -> Result<Vec<Event>, ProtocolError> {
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
            ProtocolError::new(ErrorCode::InvalidState, "every invitee has answered")
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

fn accept(invite: &Invite, resource: &ResourceState, ctx: &Ctx, c: &AcceptInvite) -> Result<Vec<Event>, ProtocolError> {
    let record = own_record(invite, ctx)?;
    if !record.status.is_unanswered() {
        return Err(answered(record.status, invite));
    }
    still_valid(invite, ctx)?;
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
    if status == RecordStatus::Accepted && c.auto_join.unwrap_or(true) && !resource.is_member(&ctx.actor) {
        resource.require(&invite.resource_id)?;
        let joined = resource.join(&ctx.actor, via(invite), Some(invite.inviter.clone()), ctx)?;
        events.push(Event::MemberJoined(joined));
    }
    Ok(events)
}

fn via(invite: &Invite) -> Via {
    Via {
        code: invite.code.clone(),
        ..Via::invite(&invite.invite_id)
    }
}

fn reject(invite: &Invite, ctx: &Ctx, c: &RejectInvite) -> Result<Vec<Event>, ProtocolError> {
    let record = own_record(invite, ctx)?;
    if !record.status.is_unanswered() {
        return Err(answered(record.status, invite));
    }
    still_valid(invite, ctx)?;
    Ok(vec![Event::InviteRejected(InviteRejected {
        invite_id: invite.invite_id.clone(),
        resource_id: invite.resource_id.clone(),
        inviter: invite.inviter.clone(),
        invitee: ctx.actor.clone(),
        role: invite.role.clone(),
        reason: c.reason.clone(),
        at: ctx.now,
    })])
}

fn resend(invite: &Invite, ctx: &Ctx, c: &ResendInvite) -> Result<Vec<Event>, ProtocolError> {
    only_inviter(invite, ctx)?;
    still_valid(invite, ctx)?;
    let due = |r: &&super::Record| ctx.now - r.last_sent_at >= Duration::seconds(RESEND_INTERVAL_SECS);
    let targets: Vec<&super::Record> = match &c.invitees {
        // Everyone unanswered who is due; rate_limited only when someone waits but nobody is due.
        None => {
            let waiting: Vec<&super::Record> = invite.records.iter().filter(|r| r.status.is_unanswered()).collect();
            if waiting.is_empty() {
                return Err(ProtocolError::new(
                    ErrorCode::InvalidState,
                    "no invitee is waiting for an answer",
                ));
            }
            let due: Vec<&super::Record> = waiting.into_iter().filter(due).collect();
            if due.is_empty() {
                return Err(ProtocolError::new(
                    ErrorCode::RateLimited,
                    "every waiting invitee was sent this invite less than a minute ago",
                ));
            }
            due
        }
        // Exactly those named: each must be waiting and due.
        Some(list) => {
            let mut out = Vec::new();
            for i in list {
                match invite.record(i) {
                    None => return Err(ProtocolError::invalid("invitees", format!("{i} is not invited"))),
                    Some(r) if !r.status.is_unanswered() => return Err(answered(r.status, invite)),
                    Some(r) if !due(&r) => {
                        return Err(ProtocolError::new(
                            ErrorCode::RateLimited,
                            format!("{i} was sent this invite less than a minute ago"),
                        ))
                    }
                    Some(r) => out.push(r),
                }
            }
            out
        }
    };
    Ok(vec![Event::InviteResent(InviteResent {
        invite_id: invite.invite_id.clone(),
        resource_id: invite.resource_id.clone(),
        inviter: invite.inviter.clone(),
        role: invite.role.clone(),
        invitees: targets.iter().map(|r| r.invitee.clone()).collect(),
        at: ctx.now,
    })])
}

fn mark_read(invite: &Invite, ctx: &Ctx) -> Result<Vec<Event>, ProtocolError> {
    let record = own_record(invite, ctx)?;
    if record.status != RecordStatus::Pending {
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

fn hide(invite: &Invite, ctx: &Ctx) -> Result<Vec<Event>, ProtocolError> {
    if invite.inviter != ctx.actor && invite.record(&ctx.actor).is_none() {
        return Err(ProtocolError::forbidden(
            "only the inviter or an invitee may hide an invite",
        ));
    }
    if invite.hidden_by.contains(&ctx.actor) {
        return Ok(vec![]);
    }
    Ok(vec![Event::InviteHidden(InviteHidden {
        invite_id: invite.invite_id.clone(),
        resource_id: invite.resource_id.clone(),
        user_id: ctx.actor.clone(),
        at: ctx.now,
    })])
}

fn decision(
    invite: &Invite,
    resource: &ResourceState,
    ctx: &Ctx,
    c: &Decision,
    approve: bool,
) -> Result<Vec<Event>, ProtocolError> {
    if !ctx.is_admin() && !resource.is_owner(&ctx.actor) {
        return Err(ProtocolError::forbidden(
            "only an admin or the resource's owner may decide",
        ));
    }
    let record = match &c.invitee {
        Some(i) => invite
            .record(i)
            .ok_or_else(|| ProtocolError::invalid("invitee", format!("{i} is not invited")))?,
        None if invite.records.len() == 1 => &invite.records[0],
        None => return Err(ProtocolError::missing("invitee")),
    };
    if record.status != RecordStatus::Applying {
        return Err(ProtocolError::new(
            ErrorCode::InvalidState,
            format!("{} is {}, not applying", record.invitee, record.status.as_str()),
        ));
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
    let mut events = vec![];
    if !resource.is_member(&record.invitee) {
        resource.require(&invite.resource_id)?;
        events.push(Event::MemberJoined(resource.join(
            &record.invitee,
            via(invite),
            Some(invite.inviter.clone()),
            ctx,
        )?));
    }
    events.insert(0, Event::InviteApproved(decided));
    Ok(events)
}

fn expire(invite: &Invite, ctx: &Ctx) -> Result<Vec<Event>, ProtocolError> {
    if !ctx.is_system() {
        return Err(ProtocolError::forbidden("only system may expire an invite"));
    }
    if invite.cancelled {
        return Err(ProtocolError::new(
            ErrorCode::Cancelled,
            format!("invite {} was cancelled", invite.invite_id),
        ));
    }
    if invite.expired {
        return Err(ProtocolError::new(
            ErrorCode::Expired,
            format!("invite {} has expired", invite.invite_id),
        ));
    }
    let expired: Vec<Id> = invite
        .records
        .iter()
        .filter(|r| r.status.is_unanswered())
        .map(|r| r.invitee.clone())
        .collect();
    if expired.is_empty() {
        return Err(ProtocolError::new(
            ErrorCode::InvalidState,
            "every invitee has answered",
        ));
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

/// Who is reminded: the inviter and every invitee who has not refused, or been cancelled,
/// expired or denied. Refused once the invite is cancelled or expired.
fn remind(invite: &Invite, ctx: &Ctx) -> Result<Vec<Event>, ProtocolError> {
    if !ctx.is_system() {
        return Err(ProtocolError::forbidden("only system may send reminders"));
    }
    still_valid(invite, ctx)?;
    let mut recipients = vec![invite.inviter.clone()];
    recipients.extend(
        invite
            .records
            .iter()
            .filter(|r| {
                !matches!(
                    r.status,
                    RecordStatus::Rejected | RecordStatus::Cancelled | RecordStatus::Expired | RecordStatus::Denied
                )
            })
            .map(|r| r.invitee.clone()),
    );
    let detail = invite.detail.clone().unwrap_or_default();
    Ok(vec![Event::InviteReminded(InviteReminded {
        at: ctx.now,
        begin_time: detail.begin_time,
        content: detail.content,
        invite_id: invite.invite_id.clone(),
        inviter: invite.inviter.clone(),
        recipients,
        remind_type: detail.remind_type,
        resource_id: invite.resource_id.clone(),
        role: invite.role.clone(),
    })])
}
