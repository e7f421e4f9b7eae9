//! The resource aggregate (`resource-<resource_id>`): what can be joined, its owner, its members
//! and its capacity.

use crate::aggregate::aggregate;
use crate::ctx::Ctx;
use invitebus_events::event::{MemberJoined, ResourceRegistered, StreamType, Via};
use invitebus_events::{ErrorCode, Event, Id, ProtocolError};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceState {
    pub info: Option<ResourceRegistered>,
    pub members: BTreeSet<Id>,
}

aggregate!(ResourceState, StreamType::Resource, evolve);

/// The resource of an invite that does not exist: none, with no members.
pub static NO_RESOURCE: ResourceState = ResourceState {
    info: None,
    members: BTreeSet::new(),
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

    /// Places left; None = unlimited.
    pub fn room(&self) -> Option<usize> {
        match self.info.as_ref().map(|i| i.capacity).unwrap_or(0) {
            0 => None,
            cap => Some((cap as usize).saturating_sub(self.members.len())),
        }
    }

    /// The resource's info, or `not_found`.
    pub fn require(&self, resource_id: &Id) -> Result<&ResourceRegistered, ProtocolError> {
        self.info
            .as_ref()
            .ok_or_else(|| ProtocolError::not_found("resource_id", resource_id))
    }

    /// `not_member` (on `resource_id`) unless `user` is a member.
    pub fn require_member(&self, user: &Id, resource_id: &Id) -> Result<(), ProtocolError> {
        match self.is_member(user) {
            true => Ok(()),
            false => Err(ProtocolError::with_field(
                ErrorCode::NotMember,
                "resource_id",
                format!("{user} is not in {resource_id}"),
            )),
        }
    }

    /// The event of `user` joining, checked against membership and capacity.
    pub fn join(&self, user: &Id, via: Via, inviter: Option<Id>, ctx: &Ctx) -> Result<MemberJoined, ProtocolError> {
        let info = self
            .info
            .as_ref()
            .ok_or_else(|| ProtocolError::not_found("resource_id", "?"))?;
        if self.is_member(user) {
            return Err(ProtocolError::with_field(
                ErrorCode::AlreadyMember,
                "user_id",
                format!("{user} is already in {}", info.resource_id),
            ));
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

pub fn full(resource_id: &Id) -> ProtocolError {
    ProtocolError::with_field(ErrorCode::ResourceFull, "resource_id", format!("{resource_id} is full"))
}

pub fn evolve(mut state: ResourceState, event: &Event) -> ResourceState {
    match event {
        Event::ResourceRegistered(e) => state.info = Some(e.clone()),
        Event::MemberJoined(e) => {
            state.members.insert(e.user_id.clone());
        }
        Event::MemberLeft(e) => {
            state.members.remove(&e.user_id);
        }
        _ => {}
    }
    state
}
