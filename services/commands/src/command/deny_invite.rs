//! `DenyInvite`: an admin or the resource's owner turns an `applying` invitee away (the rules
//! are [`super::approve_invite::settle`]'s).

use super::approve_invite::settle;
use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::invite::InviteError;
use crate::invite::OnInvite;
use invitebus_events::command as cmd;
use invitebus_events::Event;
use serde_json::{json, Value};

pub struct DenyInvite(pub cmd::DenyInvite);

impl Decision for DenyInvite {
    type State<'s> = OnInvite<'s>;
    type Error = InviteError;

    fn load<'s>(&mut self, store: Store<'s>, _: &Ctx) -> Result<OnInvite<'s>, InviteError> {
        OnInvite::load(store, &self.0.invite_id)
    }

    fn decide(&self, on: &OnInvite<'_>, ctx: &Ctx) -> Result<Vec<Event>, InviteError> {
        settle(on, ctx, &self.0, false)
    }

    fn reply(&self, on: &OnInvite<'_>, _: &[Event]) -> Value {
        json!({"invite_id": on.invite_id})
    }
}
