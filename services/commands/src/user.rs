//! The user aggregate: a profile that views use for enrichment (`user-<user_id>`).

use crate::aggregate::aggregate;
use crate::error::{into_protocol_error, Rejection, StoreError};
use invitebus_events::event::{StreamType, UserUpserted};
use invitebus_events::{ErrorCode, Event};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserState {
    /// The profile as stored: its personal fields sealed with the user's data key.
    pub profile: Option<UserUpserted>,
    /// Some profile was stored in plain text (before fields were sealed): a forget can only
    /// be partial.
    pub plain: bool,
    /// Forgotten and not upserted since.
    pub forgotten: bool,
}

aggregate!(UserState, StreamType::User, evolve);

pub fn evolve(mut state: UserState, event: &Event) -> UserState {
    match event {
        Event::UserUpserted(e) => {
            state.plain |= event.has_plain_personal_data();
            state.profile = Some(e.clone());
            state.forgotten = false;
        }
        Event::UserForgotten(_) => {
            state.profile = None;
            state.forgotten = true;
        }
        _ => {}
    }
    state
}

/// Why the user aggregate refuses a command. Each variant's doc names its wire code and HTTP
/// status.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A profile changed, or a user forgotten, by someone neither that user nor an admin:
    /// `forbidden`, 403.
    #[error("only the user or an admin may change a profile or forget a user")]
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
