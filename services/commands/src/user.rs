//! The user aggregate: a profile that views use for enrichment (`user-<user_id>`).

use crate::ctx::Ctx;
use invitebus_events::command::UpsertUser;
use invitebus_events::event::UserUpserted;
use invitebus_events::{Event, ProtocolError};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserState {
    pub profile: Option<UserUpserted>,
}

/// The user themself, an admin or `system` may set a profile; an unchanged profile appends nothing.
pub fn decide(state: &UserState, ctx: &Ctx, cmd: &UpsertUser) -> Result<Vec<Event>, ProtocolError> {
    if ctx.actor != cmd.user_id && !ctx.is_admin() && !ctx.is_system() {
        return Err(ProtocolError::forbidden(
            "only the user or an admin may change a profile",
        ));
    }
    let next = UserUpserted {
        user_id: cmd.user_id.clone(),
        name: cmd.name.clone(),
        phone: cmd.phone.clone(),
        email: cmd.email.clone(),
        company_name: cmd.company_name.clone(),
        department: cmd.department.clone(),
        position: cmd.position.clone(),
        area: cmd.area.clone(),
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

pub fn evolve(mut state: UserState, event: &Event) -> UserState {
    if let Event::UserUpserted(e) = event {
        state.profile = Some(e.clone());
    }
    state
}
