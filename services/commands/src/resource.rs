//! The resource aggregate (`resource-<resource_id>`): what can be joined, its owner, its members,
//! its capacity, and whether new invites to it are paused.

use crate::aggregate::aggregate;
use crate::ctx::Ctx;
use crate::decision::Store;
use crate::error::{into_protocol_error, Rejection, StoreError};
use chrono::{DateTime, Utc};
use invitebus_events::event::{MemberJoined, ResourceRegistered, StreamType, Via};
use invitebus_events::{ErrorCode, Event, Id};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceState {
    pub info: Option<ResourceRegistered>,
    pub members: BTreeSet<Id>,
    /// Paused new invites: `Some(until)` (`None` inside: until resumed).
    pub paused: Option<Option<DateTime<Utc>>>,
}

aggregate!(ResourceState, StreamType::Resource, evolve);

/// The resource of an invite that does not exist: none, with no members.
pub static NO_RESOURCE: ResourceState = ResourceState {
    info: None,
    members: BTreeSet::new(),
    paused: None,
};

impl ResourceState {
    pub fn exists(&self) -> bool {
        self.info.is_some()
    }

    pub fn is_member(&self, user: &Id) -> bool {
        self.members.contains(user)
    }

    pub fn is_owner(&self, user: &Id) -> bool {
        self.info.as_ref().is_some_and(|i| &i.owner == user)
    }

    /// The pause in force at `now`: `Some(until)`; a pause past its `until` is over even before
    /// the scheduler records the resume, so the refusal never outlasts it.
    pub fn pause_at(&self, now: DateTime<Utc>) -> Option<Option<DateTime<Utc>>> {
        self.paused.filter(|until| until.is_none_or(|u| now < u))
    }

    /// `invites_paused` while the resource's owner or an admin has paused new invites on it.
    pub fn require_open(&self, resource_id: &Id, now: DateTime<Utc>) -> Result<(), ResourceError> {
        match self.pause_at(now) {
            None => Ok(()),
            Some(until) => Err(ResourceError::Paused {
                resource_id: resource_id.clone(),
                until,
            }),
        }
    }

    /// `forbidden` unless the actor owns the resource or is an admin (or `system`, when allowed).
    pub fn require_manager(&self, ctx: &Ctx, system_too: bool) -> Result<(), ResourceError> {
        match self.is_owner(&ctx.actor) || ctx.is_admin() || (system_too && ctx.is_system()) {
            true => Ok(()),
            false => Err(ResourceError::Forbidden(
                "only the resource's owner or an admin may do this",
            )),
        }
    }

    /// Places left; None = unlimited.
    pub fn room(&self) -> Option<usize> {
        match self.info.as_ref().map(|i| i.capacity).unwrap_or(0) {
            0 => None,
            cap => Some((cap as usize).saturating_sub(self.members.len())),
        }
    }

    /// Loads `resource_id`'s stream for a command that appends to it: what the resource
    /// commands' `load` is.
    pub fn load_own<'s>(mut store: Store<'s>, resource_id: &Id) -> Result<&'s ResourceState, ResourceError> {
        store.own::<ResourceState>(resource_id)?;
        Ok(store.loaded().get::<ResourceState>(resource_id)?)
    }

    /// The resource's info, or `not_found`.
    pub fn require(&self, resource_id: &Id) -> Result<&ResourceRegistered, ResourceError> {
        self.info
            .as_ref()
            .ok_or_else(|| ResourceError::NotFound(resource_id.to_string()))
    }

    /// `not_member` (on `resource_id`) unless `user` is a member.
    pub fn require_member(&self, user: &Id, resource_id: &Id) -> Result<(), ResourceError> {
        match self.is_member(user) {
            true => Ok(()),
            false => Err(ResourceError::NotMember {
                user: user.clone(),
                resource_id: resource_id.clone(),
            }),
        }
    }

    /// The event of `user` joining, checked against membership and capacity.
    pub fn join(&self, user: &Id, via: Via, inviter: Option<Id>, ctx: &Ctx) -> Result<MemberJoined, ResourceError> {
        let info = self.info.as_ref().ok_or_else(|| ResourceError::NotFound("?".into()))?;
        if self.is_member(user) {
            return Err(ResourceError::AlreadyMember {
                user: user.clone(),
                resource_id: info.resource_id.clone(),
            });
        }
        if self.room() == Some(0) {
            return Err(full(&info.resource_id));
        }
        Ok(MemberJoined {
            resource_id: info.resource_id.clone(),
            user_id: user.clone(),
            via,
            inviter,
            member_count: self.members.len() as u32 + 1,
            at: ctx.now,
        })
    }
}

pub fn full(resource_id: &Id) -> ResourceError {
    ResourceError::Full(resource_id.clone())
}

/// Why the resource aggregate refuses a command. Each variant's doc names its wire code, its
/// HTTP status and the field it points at.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// No such resource: `not_found`, 404, on `resource_id`.
    #[error("no such resource_id: {0}")]
    NotFound(String),
    /// The client's `resource_id` is taken: `resource_exists`, 409, on `resource_id`.
    #[error("{0} is taken")]
    Taken(Id),
    /// The actor must be a member: `not_member`, 409, on `resource_id`.
    #[error("{user} is not in {resource_id}")]
    NotMember { user: Id, resource_id: Id },
    /// The user is a member already: `already_member`, 409, on `user_id`.
    #[error("{user} is already in {resource_id}")]
    AlreadyMember { user: Id, resource_id: Id },
    /// Its capacity is reached: `resource_full`, 409, on `resource_id`.
    #[error("{0} is full")]
    Full(Id),
    /// New invites are paused on it: `invites_paused`, 409, on `resource_id`.
    #[error("new invites to {resource_id} are paused{}", until.map(|u| format!(" until {}", invitebus_events::envelope::format_time(&u))).unwrap_or_default())]
    Paused {
        resource_id: Id,
        until: Option<DateTime<Utc>>,
    },
    /// Not its owner nor an admin: `forbidden`, 403.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Nothing to resume, or not the pause named by `until`: `invalid_state`, 409, on
    /// `resource_id`.
    #[error("{0}")]
    NotPaused(String),
    /// A pause's `until` that has passed already: `invalid_field`, 400, on `until`.
    #[error("until must be in the future")]
    PastUntil,
    /// Loading failed: see [`StoreError`].
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Rejection for ResourceError {
    fn code(&self) -> ErrorCode {
        match self {
            ResourceError::NotFound(_) => ErrorCode::NotFound,
            ResourceError::Taken(_) => ErrorCode::ResourceExists,
            ResourceError::NotMember { .. } => ErrorCode::NotMember,
            ResourceError::AlreadyMember { .. } => ErrorCode::AlreadyMember,
            ResourceError::Full(_) => ErrorCode::ResourceFull,
            ResourceError::Paused { .. } => ErrorCode::InvitesPaused,
            ResourceError::Forbidden(_) => ErrorCode::Forbidden,
            ResourceError::NotPaused(_) => ErrorCode::InvalidState,
            ResourceError::PastUntil => ErrorCode::InvalidField,
            ResourceError::Store(e) => e.code(),
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            ResourceError::NotFound(_)
            | ResourceError::Taken(_)
            | ResourceError::NotMember { .. }
            | ResourceError::Full(_)
            | ResourceError::Paused { .. }
            | ResourceError::NotPaused(_) => Some("resource_id"),
            ResourceError::AlreadyMember { .. } => Some("user_id"),
            ResourceError::PastUntil => Some("until"),
            ResourceError::Forbidden(_) => None,
            ResourceError::Store(e) => e.field(),
        }
    }
}

into_protocol_error!(ResourceError);

pub fn evolve(mut state: ResourceState, event: &Event) -> ResourceState {
    match event {
        Event::ResourceRegistered(e) => state.info = Some(e.clone()),
        Event::MemberJoined(e) => {
            state.members.insert(e.user_id.clone());
        }
        Event::MemberLeft(e) => {
            state.members.remove(&e.user_id);
        }
        Event::InvitesPaused(e) => state.paused = Some(e.until),
        Event::InvitesResumed(_) => state.paused = None,
        _ => {}
    }
    state
}
