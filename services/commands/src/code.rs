//! The invite-code aggregate (`code-<code>`, seed 003): a shareable code for a resource with a
//! max age and a max number of uses; with `requires_approval` a redemption becomes an
//! `applying` invite whose inviter is the code's creator.

use crate::aggregate::aggregate;
use crate::decision::{Loaded, Store};
use crate::error::{into_protocol_error, Rejection, StoreError};
use crate::resource::{ResourceError, ResourceState};
use invitebus_events::event::{InviteCodeCreated, StreamType};
use invitebus_events::{ErrorCode, Event, Id};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CodeState {
    pub info: Option<InviteCodeCreated>,
    pub uses: u32,
    pub deleted: bool,
    /// Each redeemer's latest application through this code (approval codes only).
    pub applying: BTreeMap<Id, Id>,
}

aggregate!(CodeState, StreamType::Code, evolve);

/// What a command on an existing code reads: the code (its own stream) and its resource.
pub struct OnCode<'s> {
    pub state: &'s CodeState,
    pub resource_id: Id,
    pub resource: &'s ResourceState,
}

impl<'s> OnCode<'s> {
    /// Loads the code and its resource; returns the resource's id (`not_found` on `code` when
    /// there is no such code).
    pub fn read(store: &mut Store<'s>, code: &Id) -> Result<Id, CodeError> {
        let resource_id = store
            .own::<CodeState>(code)?
            .info
            .as_ref()
            .map(|i| i.resource_id.clone())
            .ok_or_else(|| CodeError::NotFound(code.clone()))?;
        store.read::<ResourceState>(&resource_id)?;
        Ok(resource_id)
    }

    /// The code and resource [`OnCode::read`] loaded.
    pub fn get(loaded: Loaded<'s>, code: &Id, resource_id: Id) -> Result<OnCode<'s>, CodeError> {
        Ok(OnCode {
            state: loaded.get::<CodeState>(code)?,
            resource: loaded.get::<ResourceState>(&resource_id)?,
            resource_id,
        })
    }
}

/// The code's info, or `not_found` when it does not exist or was deleted.
pub fn live<'a>(state: &'a CodeState, code: &Id) -> Result<&'a InviteCodeCreated, CodeError> {
    match &state.info {
        Some(info) if !state.deleted => Ok(info),
        _ => Err(CodeError::NotFound(code.clone())),
    }
}

pub fn evolve(mut state: CodeState, event: &Event) -> CodeState {
    match event {
        Event::InviteCodeCreated(e) => state.info = Some(e.clone()),
        Event::InviteCodeRedeemed(e) => {
            state.uses = e.uses;
            if let Some(invite) = &e.invite_id {
                state.applying.insert(e.user_id.clone(), invite.clone());
            }
        }
        Event::InviteCodeDeleted(_) => state.deleted = true,
        _ => {}
    }
    state
}

/// Why the invite-code aggregate refuses a command. Each variant's doc names its wire code, its
/// HTTP status and the field it points at.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// No such code, or it was deleted: `not_found`, 404, on `code`.
    #[error("no such code: {0}")]
    NotFound(Id),
    /// The client's `code` is taken: `resource_exists`, 409, on `code`.
    #[error("{0} is taken")]
    Taken(Id),
    /// Past its max age: `expired`, 409.
    #[error("code {0} has expired")]
    Expired(Id),
    /// Used `max_uses` times: `exhausted`, 409.
    #[error("code {code} was used {uses} times")]
    Exhausted { code: Id, uses: u32 },
    /// Deleting by someone neither its creator, the resource's owner nor an admin: `forbidden`, 403.
    #[error("only the code's creator or the resource's owner may delete it")]
    NotDeleter,
    /// `now + max_age` is past the calendar: `invalid_field`, 400, on `max_age`.
    #[error("invalid `max_age`: ends after 9999-12-31")]
    EndsTooLate,
    /// The code's resource refused (not found, not a member, full, …): its own code.
    #[error(transparent)]
    Resource(#[from] ResourceError),
    /// Loading failed: see [`StoreError`].
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Rejection for CodeError {
    fn code(&self) -> ErrorCode {
        match self {
            CodeError::NotFound(_) => ErrorCode::NotFound,
            CodeError::Taken(_) => ErrorCode::ResourceExists,
            CodeError::Expired(_) => ErrorCode::Expired,
            CodeError::Exhausted { .. } => ErrorCode::Exhausted,
            CodeError::NotDeleter => ErrorCode::Forbidden,
            CodeError::EndsTooLate => ErrorCode::InvalidField,
            CodeError::Resource(e) => e.code(),
            CodeError::Store(e) => e.code(),
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            CodeError::NotFound(_) | CodeError::Taken(_) => Some("code"),
            CodeError::EndsTooLate => Some("max_age"),
            CodeError::Expired(_) | CodeError::Exhausted { .. } | CodeError::NotDeleter => None,
            CodeError::Resource(e) => e.field(),
            CodeError::Store(e) => e.field(),
        }
    }
}

into_protocol_error!(CodeError);
