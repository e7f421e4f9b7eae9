//! `ForgetUser`: the user themself or an admin forgets a person. The command service has
//! destroyed their data key before this decides ([`crate::personal`]), so every personal field
//! sealed with it reads `[forgotten]` from now on; `UserForgotten` tells every reader to rewrite
//! what it holds. `erased` is `partial` when some of their profile was stored in plain text.

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::user::{UserError, UserState};
use invitebus_events::command as cmd;
use invitebus_events::event::UserForgotten;
use invitebus_events::Event;
use serde_json::{json, Value};

pub struct ForgetUser(pub cmd::ForgetUser);

/// Who may forget `user`: the user, or an admin (the command service's edge asks it too,
/// before it destroys the key).
pub fn may_forget(actor: &str, admin: bool, user: &str) -> bool {
    actor == user || admin
}

fn erased(state: &UserState) -> &'static str {
    match state.plain {
        true => "partial",
        false => "full",
    }
}

impl Decision for ForgetUser {
    type State<'s> = &'s UserState;
    type Error = UserError;

    fn load<'s>(&mut self, mut store: Store<'s>, _: &Ctx) -> Result<&'s UserState, UserError> {
        store.own::<UserState>(&self.0.user_id)?;
        Ok(store.loaded().get::<UserState>(&self.0.user_id)?)
    }

    fn decide(&self, state: &&UserState, ctx: &Ctx) -> Result<Vec<Event>, UserError> {
        if !may_forget(ctx.actor.as_str(), ctx.is_admin(), self.0.user_id.as_str()) {
            return Err(UserError::NotSelfOrAdmin);
        }
        if state.forgotten {
            return Ok(vec![]);
        }
        Ok(vec![Event::UserForgotten(UserForgotten {
            at: ctx.now,
            by: ctx.actor.clone(),
            erased: erased(state).to_string(),
            user_id: self.0.user_id.clone(),
        })])
    }

    fn reply(&self, state: &&UserState, _: &[Event]) -> Value {
        json!({"user_id": self.0.user_id, "forgotten": true, "erased": erased(state)})
    }
}
