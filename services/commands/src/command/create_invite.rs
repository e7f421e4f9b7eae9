//! `CreateInvite`: a member of a resource invites one or more people into it.

use crate::ctx::Ctx;
use crate::decision::{Decision, IdGen, Store};
use crate::error::StoreError;
use crate::invite::guards::{check_invitees, expires_at};
use crate::invite::InviteError;
use crate::invite::InviteState;
use crate::resource::{full, ResourceState};
use invitebus_events::command as cmd;
use invitebus_events::event::InviteCreated;
use invitebus_events::{Event, Id};
use serde_json::{json, Value};

pub struct CreateInvite(pub cmd::CreateInvite);

/// The new invite's stream (empty unless the client's id is taken) and the resource.
pub struct Target<'s> {
    invite_id: Id,
    invite: &'s InviteState,
    resource: &'s ResourceState,
}

impl Decision for CreateInvite {
    type State<'s> = Target<'s>;
    type Error = InviteError;

    fn load<'s>(&mut self, mut store: Store<'s>, _: &Ctx) -> Result<Target<'s>, InviteError> {
        let invite_id = store.id_for::<InviteState>(&mut self.0.spec.invite_id, |g: &mut dyn IdGen| g.new_id());
        store.own::<InviteState>(&invite_id)?;
        store.read::<ResourceState>(&self.0.resource_id)?;
        let loaded = store.loaded();
        Ok(Target {
            invite: loaded.get::<InviteState>(&invite_id)?,
            resource: loaded.get::<ResourceState>(&self.0.resource_id)?,
            invite_id,
        })
    }

    fn decide(&self, t: &Target<'_>, ctx: &Ctx) -> Result<Vec<Event>, InviteError> {
        create(t.invite, t.resource, ctx, &self.0)
    }

    fn reply(&self, t: &Target<'_>, _: &[Event]) -> Value {
        json!({"invite_id": t.invite_id})
    }
}

/// The rule, shared with `StartCall`; `spec.invite_id` must be assigned already.
pub fn create(
    state: &InviteState,
    resource: &ResourceState,
    ctx: &Ctx,
    c: &cmd::CreateInvite,
) -> Result<Vec<Event>, InviteError> {
    let invite_id = c
        .spec
        .invite_id
        .clone()
        .ok_or_else(|| StoreError::NotLoaded("the new invite_id".into()))?;
    if state.invite.is_some() {
        return Err(InviteError::Taken(invite_id));
    }
    let info = resource.require(&c.resource_id)?;
    resource.require_member(&ctx.actor, &c.resource_id)?;
    resource.require_open(&c.resource_id, ctx.now)?;
    let invitees = c.spec.all_invitees();
    let field = if c.spec.invitees.is_some() {
        "invitees"
    } else {
        "invitee"
    };
    check_invitees(&invitees, resource, ctx, field)?;
    if resource.room().is_some_and(|room| invitees.len() > room) {
        return Err(full(&c.resource_id).into());
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
