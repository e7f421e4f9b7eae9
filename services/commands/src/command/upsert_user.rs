//! `UpsertUser`: the user themself, an admin or `system` sets a profile; an unchanged profile
//! appends nothing.

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::user::UserError;
use crate::user::UserState;
use invitebus_events::command as cmd;
use invitebus_events::event::UserUpserted;
use invitebus_events::Event;
use serde_json::{json, Value};

pub struct UpsertUser(pub cmd::UpsertUser);

impl Decision for UpsertUser {
    type State<'s> = &'s UserState;
    type Error = UserError;

    fn load<'s>(&mut self, mut store: Store<'s>, _: &Ctx) -> Result<&'s UserState, UserError> {
        store.own::<UserState>(&self.0.user_id)?;
        Ok(store.loaded().get::<UserState>(&self.0.user_id)?)
    }

    fn decide(&self, state: &&UserState, ctx: &Ctx) -> Result<Vec<Event>, UserError> {
        let c = &self.0;
        if ctx.actor != c.user_id && !ctx.is_admin() && !ctx.is_system() {
            return Err(UserError::NotSelfOrAdmin);
        }
        let next = UserUpserted {
            user_id: c.user_id.clone(),
            name: c.name.clone(),
            phone: c.phone.clone(),
            email: c.email.clone(),
            company_name: c.company_name.clone(),
            department: c.department.clone(),
            position: c.position.clone(),
            area: c.area.clone(),
            at: ctx.now,
        };
        match &state.profile {
            Some(p)
                if UserUpserted {
                    at: ctx.now,
                    ..p.clone()
                } == next =>
            {
                Ok(vec![])
            }
            _ => Ok(vec![Event::UserUpserted(next)]),
        }
    }

    fn reply(&self, _: &&UserState, _: &[Event]) -> Value {
        json!({"user_id": self.0.user_id})
    }
}
