//! `StartCall` (seed 002): registers a channel, joins the caller and invites into it, as one
//! append. The channel's defaults (kind `channel`, name `call`, no capacity) are this command's.

use super::{create, register};
use crate::aggregate::Aggregate;
use crate::ctx::Ctx;
use crate::decision::{Decision, IdGen, Store};
use crate::invite::InviteError;
use crate::invite::InviteState;
use crate::resource::ResourceState;
use invitebus_events::command as cmd;
use invitebus_events::{Event, Id};
use serde_json::{json, Value};

pub struct StartCall(pub cmd::StartCall);

/// The new channel's and the new invite's streams (empty unless the client's ids are taken).
pub struct Streams<'s> {
    resource_id: Id,
    invite_id: Id,
    resource: &'s ResourceState,
    invite: &'s InviteState,
}

impl Decision for StartCall {
    type State<'s> = Streams<'s>;
    type Error = InviteError;

    fn load<'s>(&mut self, mut store: Store<'s>, _: &Ctx) -> Result<Streams<'s>, InviteError> {
        let new_id = |g: &mut dyn IdGen| g.new_id();
        let resource_id = store.id_for::<ResourceState>(&mut self.0.call.resource_id, new_id);
        let invite_id = store.id_for::<InviteState>(&mut self.0.spec.invite_id, new_id);
        store.own::<ResourceState>(&resource_id)?;
        store.read::<InviteState>(&invite_id)?;
        let loaded = store.loaded();
        Ok(Streams {
            resource: loaded.get::<ResourceState>(&resource_id)?,
            invite: loaded.get::<InviteState>(&invite_id)?,
            resource_id,
            invite_id,
        })
    }

    fn decide(&self, s: &Streams<'_>, ctx: &Ctx) -> Result<Vec<Event>, InviteError> {
        let call = &self.0.call;
        let channel = cmd::RegisterResource {
            resource_id: s.resource_id.clone(),
            kind: call
                .kind
                .clone()
                .unwrap_or_else(|| Id::parse("channel").expect("valid")),
            name: call.name.clone().unwrap_or_else(|| "call".to_string()),
            capacity: call.capacity.unwrap_or(0),
            parent_id: None,
            info: call.info.clone(),
        };
        let mut events = register(s.resource, ctx, &channel)?;
        // The invite is decided against the channel as these events leave it.
        let registered = events.iter().fold(s.resource.clone(), |r, e| r.evolve(e));
        let invite = cmd::CreateInvite {
            resource_id: s.resource_id.clone(),
            spec: self.0.spec.clone(),
        };
        events.extend(create(s.invite, &registered, ctx, &invite)?);
        Ok(events)
    }

    fn reply(&self, s: &Streams<'_>, _: &[Event]) -> Value {
        json!({"resource_id": s.resource_id, "invite_id": s.invite_id})
    }
}
