//! `CreateInviteCode` (seed 003): a member makes a shareable code for a resource, with a max
//! age (default a day, 0 = forever) and a max number of uses (0 = unlimited).

use crate::code::CodeError;
use crate::code::CodeState;
use crate::ctx::Ctx;
use crate::decision::{Decision, IdGen, Store};
use crate::resource::ResourceState;
use invitebus_events::command::{self as cmd, DEFAULT_CODE_MAX_AGE};
use invitebus_events::event::InviteCodeCreated;
use invitebus_events::{Event, Id};
use serde_json::{json, Value};

pub struct CreateInviteCode(pub cmd::CreateInviteCode);

/// The new code's stream (empty unless the client's code is taken) and its resource.
pub struct Target<'s> {
    code: Id,
    state: &'s CodeState,
    resource: &'s ResourceState,
}

impl Decision for CreateInviteCode {
    type State<'s> = Target<'s>;
    type Error = CodeError;

    fn load<'s>(&mut self, mut store: Store<'s>, _: &Ctx) -> Result<Target<'s>, CodeError> {
        let code = store.id_for::<CodeState>(&mut self.0.code, |g: &mut dyn IdGen| g.new_code());
        store.own::<CodeState>(&code)?;
        store.read::<ResourceState>(&self.0.resource_id)?;
        let loaded = store.loaded();
        Ok(Target {
            state: loaded.get::<CodeState>(&code)?,
            resource: loaded.get::<ResourceState>(&self.0.resource_id)?,
            code,
        })
    }

    fn decide(&self, t: &Target<'_>, ctx: &Ctx) -> Result<Vec<Event>, CodeError> {
        let c = &self.0;
        if t.state.info.is_some() {
            return Err(CodeError::Taken(t.code.clone()));
        }
        t.resource.require(&c.resource_id)?;
        t.resource.require_member(&ctx.actor, &c.resource_id)?;
        t.resource.require_open(&c.resource_id, ctx.now)?;
        let max_age = c.max_age.unwrap_or(DEFAULT_CODE_MAX_AGE);
        let expires_at = match max_age {
            0 => None,
            s => Some(invitebus_events::envelope::after_seconds(ctx.now, s).ok_or(CodeError::EndsTooLate)?),
        };
        Ok(vec![Event::InviteCodeCreated(InviteCodeCreated {
            code: t.code.clone(),
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

    fn reply(&self, t: &Target<'_>, _: &[Event]) -> Value {
        json!({"code": t.code})
    }
}
