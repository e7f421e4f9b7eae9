//! The resource aggregate (`resource-<resource_id>`): what can be joined, its owner, its members
//! and its capacity.

use crate::ctx::Ctx;
use invitebus_events::command::{JoinResource, LeaveResource, RegisterResource};
use invitebus_events::event::{MemberJoined, MemberLeft, ResourceRegistered, Via};
use invitebus_events::{ErrorCode, Event, Id, ProtocolError};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceState {
    pub info: Option<ResourceRegistered>,
    pub members: BTreeSet<Id>,
}

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

pub(crate) fn full(resource_id: &Id) -> ProtocolError {
    ProtocolError::with_field(ErrorCode::ResourceFull, "resource_id", format!("{resource_id} is full"))
}

/// The resource commands.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceCommand {
    Register(RegisterResource),
    Join(JoinResource),
    Leave(LeaveResource),
}

pub fn decide(state: &ResourceState, ctx: &Ctx, cmd: &ResourceCommand) -> Result<Vec<Event>, ProtocolError> {
    match cmd {
        ResourceCommand::Register(c) => {
            if state.exists() {
                return Err(ProtocolError::with_field(
                    ErrorCode::ResourceExists,
                    "resource_id",
                    format!("{} is taken", c.resource_id),
                ));
            }
            let registered = ResourceRegistered {
                resource_id: c.resource_id.clone(),
                kind: c.kind.clone(),
                name: c.name.clone(),
                capacity: c.capacity,
                parent_id: c.parent_id.clone(),
                info: c.info.clone(),
                owner: ctx.actor.clone(),
                at: ctx.now,
            };
            let owner = MemberJoined {
                resource_id: c.resource_id.clone(),
                user_id: ctx.actor.clone(),
                via: Via::owner(),
                inviter: None,
                member_count: 1,
                at: ctx.now,
            };
            Ok(vec![Event::ResourceRegistered(registered), Event::MemberJoined(owner)])
        }
        ResourceCommand::Join(c) => {
            state.require(&c.resource_id)?;
            Ok(vec![Event::MemberJoined(state.join(
                &ctx.actor,
                Via::direct(),
                None,
                ctx,
            )?)])
        }
        ResourceCommand::Leave(c) => {
            state.require(&c.resource_id)?;
            if !state.is_member(&ctx.actor) {
                return Err(ProtocolError::with_field(
                    ErrorCode::NotMember,
                    "resource_id",
                    format!("{} is not in {}", ctx.actor, c.resource_id),
                ));
            }
            Ok(vec![Event::MemberLeft(MemberLeft {
                resource_id: c.resource_id.clone(),
                user_id: ctx.actor.clone(),
                member_count: state.members.len() as u32 - 1,
                at: ctx.now,
            })])
        }
    }
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
