//! The user aggregate: a profile that views use for enrichment (`user-<user_id>`).

use crate::aggregate::aggregate;
use crate::error::{into_protocol_error, Rejection, StoreError};
use invitebus_events::event::{StreamType, UserUpserted};
use invitebus_events::{ErrorCode, Event};

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

/// Why the user aggregate refuses a command. Each variant's doc names its wire code and HTTP
/// status.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A profile changed by someone neither that user nor an admin: `forbidden`, 403.
    #[error("only the user or an admin may change a profile")]
    NotSelfOrAdmin,
    /// Loading failed: see [`StoreError`].
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Rejection for UserError {
    fn code(&self) -> ErrorCode {
        match self {
            UserError::NotSelfOrAdmin => ErrorCode::Forbidden,
            UserError::Store(e) => e.code(),
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            UserError::NotSelfOrAdmin => None,
            UserError::Store(e) => e.field(),
        }
    }
}

into_protocol_error!(UserError);
