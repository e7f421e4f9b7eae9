//! `DeleteInviteCode`: the code's creator, the resource's owner or an admin deletes a code.

use crate::code::CodeError;
use crate::code::{live, OnCode};
use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use invitebus_events::command as cmd;
use invitebus_events::event::InviteCodeDeleted;
use invitebus_events::Event;
use serde_json::{json, Value};

pub struct DeleteInviteCode(pub cmd::DeleteInviteCode);

impl Decision for DeleteInviteCode {
    type State<'s> = OnCode<'s>;
    type Error = CodeError;

    fn load<'s>(&mut self, mut store: Store<'s>, _: &Ctx) -> Result<OnCode<'s>, CodeError> {
        let resource_id = OnCode::read(&mut store, &self.0.code)?;
        OnCode::get(store.loaded(), &self.0.code, resource_id)
    }

    fn decide(&self, on: &OnCode<'_>, ctx: &Ctx) -> Result<Vec<Event>, CodeError> {
        let info = live(on.state, &self.0.code)?;
        if info.inviter != ctx.actor && !on.resource.is_owner(&ctx.actor) && !ctx.is_admin() {
            return Err(CodeError::NotDeleter);
        }
        Ok(vec![Event::InviteCodeDeleted(InviteCodeDeleted {
            code: self.0.code.clone(),
            resource_id: info.resource_id.clone(),
            by: ctx.actor.clone(),
            at: ctx.now,
        })])
    }

    fn reply(&self, _: &OnCode<'_>, _: &[Event]) -> Value {
        json!({"code": self.0.code})
    }
}
