//! The invite-code aggregate (`code-<code>`, seed 003): a shareable code for a resource with a
//! max age and a max number of uses; with `requires_approval` a redemption becomes an
//! `applying` invite whose inviter is the code's creator.

use crate::aggregate::aggregate;
use crate::decision::{Loaded, Store};
use crate::resource::ResourceState;
use invitebus_events::event::{InviteCodeCreated, StreamType};
use invitebus_events::{Event, Id, ProtocolError};
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
    pub fn read(store: &mut Store<'s>, code: &Id) -> Result<Id, ProtocolError> {
        let resource_id = store
            .own::<CodeState>(code)?
            .info
            .as_ref()
            .map(|i| i.resource_id.clone())
            .ok_or_else(|| ProtocolError::not_found("code", code))?;
        store.read::<ResourceState>(&resource_id)?;
        Ok(resource_id)
    }

    /// The code and resource [`OnCode::read`] loaded.
    pub fn get(loaded: Loaded<'s>, code: &Id, resource_id: Id) -> Result<OnCode<'s>, ProtocolError> {
        Ok(OnCode {
            state: loaded.get::<CodeState>(code)?,
            resource: loaded.get::<ResourceState>(&resource_id)?,
            resource_id,
        })
    }
}

/// The code's info, or `not_found` when it does not exist or was deleted.
pub fn live<'a>(state: &'a CodeState, code: &Id) -> Result<&'a InviteCodeCreated, ProtocolError> {
    match &state.info {
        Some(info) if !state.deleted => Ok(info),
        _ => Err(ProtocolError::not_found("code", code)),
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
