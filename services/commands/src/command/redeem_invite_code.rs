//! `RedeemInviteCode` (seed 003): anyone redeems a live code. Without approval they join; with
//! approval the redemption becomes an `applying` invite from the code's creator. A member gets
//! ok with `already_member` and nothing appended; so does someone whose earlier application
//! through this code is still waiting (the reply names that invite).

use crate::code::CodeError;
use crate::code::{live, OnCode};
use crate::ctx::Ctx;
use crate::decision::{Decision, IdGen, Store};
use crate::invite::InviteState;
use crate::resource::full;
use invitebus_events::command::{self as cmd, DEFAULT_ROLE};
use invitebus_events::event::{InviteAccepted, InviteCodeRedeemed, InviteCreated, MemberJoined, Via};
use invitebus_events::{Event, Id, RecordStatus};
use serde_json::{json, Value};

pub struct RedeemInviteCode(pub cmd::RedeemInviteCode);

/// The code, its resource, and the redeemer's earlier application through it.
pub struct Redeeming<'s> {
    on: OnCode<'s>,
    /// The id an approval invite would take (made here, so known to be new).
    invite_id: Id,
    /// The redeemer's earlier application, when it is still `applying`.
    still_applying: Option<Id>,
    already_member: bool,
}

impl Decision for RedeemInviteCode {
    type State<'s> = Redeeming<'s>;
    type Error = CodeError;

    fn load<'s>(&mut self, mut store: Store<'s>, ctx: &Ctx) -> Result<Redeeming<'s>, CodeError> {
        let code = &self.0.code;
        let resource_id = OnCode::read(&mut store, code)?;
        let earlier = store
            .read::<crate::code::CodeState>(code)?
            .applying
            .get(&ctx.actor)
            .cloned();
        let still_applying = match earlier {
            Some(invite) => {
                let state = store.read::<InviteState>(&invite)?;
                let record = state.invite.as_ref().and_then(|i| i.record(&ctx.actor));
                record
                    .is_some_and(|r| r.status == RecordStatus::Applying)
                    .then_some(invite)
            }
            None => None,
        };
        let invite_id = store.fresh::<InviteState>(|g: &mut dyn IdGen| g.new_id());
        let on = OnCode::get(store.loaded(), code, resource_id)?;
        Ok(Redeeming {
            already_member: on.resource.is_member(&ctx.actor),
            on,
            invite_id,
            still_applying,
        })
    }

    fn decide(&self, r: &Redeeming<'_>, ctx: &Ctx) -> Result<Vec<Event>, CodeError> {
        let (code, state, resource) = (&self.0.code, r.on.state, r.on.resource);
        let info = live(state, code)?;
        if r.already_member || r.still_applying.is_some() {
            return Ok(vec![]);
        }
        if info.expires_at.is_some_and(|t| t <= ctx.now) {
            return Err(CodeError::Expired(code.clone()));
        }
        if info.max_uses > 0 && state.uses >= info.max_uses {
            return Err(CodeError::Exhausted {
                code: code.clone(),
                uses: state.uses,
            });
        }
        let resource_info = resource.require(&info.resource_id)?;
        resource.require_open(&info.resource_id, ctx.now)?;
        let redeemed = InviteCodeRedeemed {
            code: code.clone(),
            resource_id: info.resource_id.clone(),
            inviter: info.inviter.clone(),
            user_id: ctx.actor.clone(),
            uses: state.uses + 1,
            invite_id: info.requires_approval.then(|| r.invite_id.clone()),
            at: ctx.now,
        };
        if !info.requires_approval {
            let joined: MemberJoined = resource.join(&ctx.actor, Via::code(code), Some(info.inviter.clone()), ctx)?;
            return Ok(vec![Event::InviteCodeRedeemed(redeemed), Event::MemberJoined(joined)]);
        }
        if resource.room() == Some(0) {
            return Err(full(&info.resource_id).into());
        }
        let created = InviteCreated {
            invite_id: r.invite_id.clone(),
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
            invite_id: r.invite_id.clone(),
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

    fn reply(&self, r: &Redeeming<'_>, events: &[Event]) -> Value {
        let invite_id = events
            .iter()
            .find_map(|e| match e {
                Event::InviteCodeRedeemed(e) => e.invite_id.clone(),
                _ => None,
            })
            .or_else(|| r.still_applying.clone());
        json!({"resource_id": r.on.resource_id, "invite_id": invite_id, "already_member": r.already_member})
    }
}
