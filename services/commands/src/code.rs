//! The invite-code aggregate (`code-<code>`, seed 003): a shareable code for a resource with a
//! max age and a max number of uses; with `requires_approval` a redemption becomes an
//! `applying` invite whose inviter is the code's creator.

use crate::ctx::Ctx;
use crate::resource::ResourceState;
use invitebus_events::command::{CodeRef, CreateInviteCode, DEFAULT_CODE_MAX_AGE, DEFAULT_ROLE};
use invitebus_events::event::{
    InviteAccepted, InviteCodeCreated, InviteCodeDeleted, InviteCodeRedeemed, InviteCreated, Via,
};
use invitebus_events::{ErrorCode, Event, Id, ProtocolError, RecordStatus};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CodeState {
    pub info: Option<InviteCodeCreated>,
    pub uses: u32,
    pub deleted: bool,
    /// Each redeemer's latest application through this code (approval codes only).
    pub applying: BTreeMap<Id, Id>,
}

/// The code commands; ids the command needs are filled in by the dispatcher.
#[derive(Debug, Clone, PartialEq)]
pub enum CodeCommand {
    /// `code` is filled in.
    Create(CreateInviteCode),
    /// `invite_id` is the id an approval invite would take; `still_applying` says whether the
    /// actor's earlier application through this code is still waiting (the dispatcher looks it up).
    Redeem {
        code: Id,
        invite_id: Id,
        still_applying: bool,
    },
    Delete(CodeRef),
}

pub fn decide(
    state: &CodeState,
    resource: &ResourceState,
    ctx: &Ctx,
    cmd: &CodeCommand,
) -> Result<Vec<Event>, ProtocolError> {
    match cmd {
        CodeCommand::Create(c) => create(state, resource, ctx, c),
        CodeCommand::Redeem {
            code,
            invite_id,
            still_applying,
        } => redeem(state, resource, ctx, code, invite_id, *still_applying),
        CodeCommand::Delete(c) => delete(state, resource, ctx, &c.code),
    }
}

fn create(
    state: &CodeState,
    resource: &ResourceState,
    ctx: &Ctx,
    c: &CreateInviteCode,
) -> Result<Vec<Event>, ProtocolError> {
    let code = c
        .code
        .clone()
        .ok_or_else(|| ProtocolError::internal("code was not assigned"))?;
    if state.info.is_some() {
        return Err(ProtocolError::with_field(
            ErrorCode::ResourceExists,
            "code",
            format!("{code} is taken"),
        ));
    }
    resource.require(&c.resource_id)?;
    if !resource.is_member(&ctx.actor) {
        return Err(ProtocolError::with_field(
            ErrorCode::NotMember,
            "resource_id",
            format!("{} is not in {}", ctx.actor, c.resource_id),
        ));
    }
    let max_age = c.max_age.unwrap_or(DEFAULT_CODE_MAX_AGE);
    let expires_at = match max_age {
        0 => None,
        s => Some(
            invitebus_events::envelope::after_seconds(ctx.now, s)
                .ok_or_else(|| ProtocolError::invalid("max_age", "ends after 9999-12-31"))?,
        ),
    };
    Ok(vec![Event::InviteCodeCreated(InviteCodeCreated {
        code,
        resource_id: c.resource_id.clone(),
        inviter: ctx.actor.clone(),
        max_age,
        max_uses: c.max_uses,
        temporary: c.temporary,
        requires_approval: c.requires_approval,
        expires_at,
        created_at: ctx.now,
    })])
}

fn live<'a>(state: &'a CodeState, code: &Id) -> Result<&'a InviteCodeCreated, ProtocolError> {
    match &state.info {
        Some(info) if !state.deleted => Ok(info),
        _ => Err(ProtocolError::not_found("code", code)),
    }
}

fn redeem(
    state: &CodeState,
    resource: &ResourceState,
    ctx: &Ctx,
    code: &Id,
    invite_id: &Id,
    still_applying: bool,
) -> Result<Vec<Event>, ProtocolError> {
    let info = live(state, code)?;
    if resource.is_member(&ctx.actor) || still_applying {
        return Ok(vec![]);
    }
    if info.expires_at.is_some_and(|t| t <= ctx.now) {
        return Err(ProtocolError::new(
            ErrorCode::Expired,
            format!("code {code} has expired"),
        ));
    }
    if info.max_uses > 0 && state.uses >= info.max_uses {
        return Err(ProtocolError::new(
            ErrorCode::Exhausted,
            format!("code {code} was used {} times", state.uses),
        ));
    }
    let resource_info = resource.require(&info.resource_id)?;
    let redeemed = InviteCodeRedeemed {
        code: code.clone(),
        resource_id: info.resource_id.clone(),
        inviter: info.inviter.clone(),
        user_id: ctx.actor.clone(),
        uses: state.uses + 1,
        invite_id: info.requires_approval.then(|| invite_id.clone()),
        at: ctx.now,
    };
    if !info.requires_approval {
        let joined = resource.join(&ctx.actor, Via::code(code), Some(info.inviter.clone()), ctx)?;
        return Ok(vec![Event::InviteCodeRedeemed(redeemed), Event::MemberJoined(joined)]);
    }
    if resource.room() == Some(0) {
        return Err(crate::resource::full(&info.resource_id));
    }
    let created = InviteCreated {
        invite_id: invite_id.clone(),
        resource_id: info.resource_id.clone(),
        resource_kind: resource_info.kind.clone(),
        inviter: info.inviter.clone(),
        invitees: vec![ctx.actor.clone()],
        role: DEFAULT_ROLE.to_string(),
        message: None,
        detail: None,
        expires_at: None,
        requires_approval: true,
        offline_enabled: true,
        push: None,
        ext: None,
        code: Some(code.clone()),
        created_at: ctx.now,
    };
    let accepted = InviteAccepted {
        invite_id: invite_id.clone(),
        resource_id: info.resource_id.clone(),
        inviter: info.inviter.clone(),
        invitee: ctx.actor.clone(),
        role: DEFAULT_ROLE.to_string(),
        status: RecordStatus::Applying,
        at: ctx.now,
    };
    Ok(vec![
        Event::InviteCodeRedeemed(redeemed),
        Event::InviteCreated(created),
        Event::InviteAccepted(accepted),
    ])
}

fn delete(state: &CodeState, resource: &ResourceState, ctx: &Ctx, code: &Id) -> Result<Vec<Event>, ProtocolError> {
    let info = live(state, code)?;
    if info.inviter != ctx.actor && !resource.is_owner(&ctx.actor) && !ctx.is_admin() {
        return Err(ProtocolError::forbidden(
            "only the code's creator or the resource's owner may delete it",
        ));
    }
    Ok(vec![Event::InviteCodeDeleted(InviteCodeDeleted {
        code: code.clone(),
        resource_id: info.resource_id.clone(),
        by: ctx.actor.clone(),
        at: ctx.now,
    })])
}

pub fn evolve(mut state: CodeState, event: &Event) -> CodeState {
    match event {
        Event::InviteCodeCreated(e) => state.info = Some(e.clone()),
        Event::InviteCodeRedeemed(e) => {
            state.uses = e.uses;
            if let Some(invite) = &e.invite_id {
                state.applying.insert(e.user_id.clone(), invite.clone());
            }
        }
        Event::InviteCodeDeleted(_) => state.deleted = true,
        _ => {}
    }
    state
}
