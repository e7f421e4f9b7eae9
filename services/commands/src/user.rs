//! The user aggregate: a profile that views use for enrichment (`user-<user_id>`).

use crate::aggregate::aggregate;
use invitebus_events::event::{StreamType, UserUpserted};
use invitebus_events::Event;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserState {
    pub profile: Option<UserUpserted>,
}

aggregate!(UserState, StreamType::User, evolve);

pub fn evolve(mut state: UserState, event: &Event) -> UserState {
    if let Event::UserUpserted(e) = event {
        state.profile = Some(e.clone());
    }
    state
}
