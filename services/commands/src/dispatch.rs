//! From a command to its events and reply: which streams it reads, which aggregate decides it,
//! and what the reply says. Ids the server makes (invite, resource, code) are made here, before
//! deciding, so that `decide` stays pure.

use crate::cache::{Cache, StreamSource};
use crate::code::{self, CodeCommand};
use crate::ctx::Ctx;
use crate::export::{self, ExportCommand, UserExports};
use crate::invite::{self, InviteCommand, InviteState};
use crate::resource::{self, ResourceCommand, ResourceState};
use crate::user;
use invitebus_events::command::{CallSpec, CreateInvite, RegisterResource};
use invitebus_events::event::StreamType;
use invitebus_events::{Command, CommandMeta, ErrorCode, Event, Id, ProtocolError};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Makes the ids the server hands out.
pub trait IdGen {
    /// A time-ordered id (UUIDv7) for invites, calls and exports.
    fn new_id(&mut self) -> Id;
    /// 8 random base62 characters for invite codes.
    fn new_code(&mut self) -> Id;
}

/// Real ids: UUIDv7 and random codes.
pub struct RandomIds;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl IdGen for RandomIds {
    fn new_id(&mut self) -> Id {
        Id::parse(uuid::Uuid::now_v7().to_string()).expect("a uuid is a valid id")
    }
    fn new_code(&mut self) -> Id {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let code: String = bytes
            .iter()
            .take(8)
            .map(|b| BASE62[(*b as usize) % 62] as char)
            .collect();
        Id::parse(code).expect("base62 is a valid id")
    }
}

/// What a command decided: the events to append and the reply data.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub events: Vec<Event>,
    pub reply: Value,
}

static NO_RESOURCE: ResourceState = ResourceState {
    info: None,
    members: BTreeSet::new(),
};

fn resource_state<'a>(cache: &'a Cache, id: &Id) -> &'a ResourceState {
    cache.resources.get(id).map(|v| &v.state).unwrap_or(&NO_RESOURCE)
}

/// `expected_version` must equal the version of the command's own stream.
fn check_version(cache: &Cache, meta: &CommandMeta, ty: StreamType, id: &Id) -> Result<(), ProtocolError> {
    match meta.expected_version {
        Some(expected) if expected != cache.version(ty, id) => Err(ProtocolError::with_field(
            ErrorCode::Conflict,
            "expected_version",
            format!(
                "{} is at version {}, not {expected}",
                ty.stream_id(id),
                cache.version(ty, id)
            ),
        )),
        _ => Ok(()),
    }
}

/// Decides `command` against the cached state (loading what it needs from `source`).
/// The cache is not changed by deciding; the writer applies the events once decided.
pub fn execute(
    cache: &mut Cache,
    source: &dyn StreamSource,
    ids: &mut dyn IdGen,
    ctx: &Ctx,
    meta: &CommandMeta,
    command: &Command,
) -> Result<Outcome, ProtocolError> {
    let done = |events: Vec<Event>, reply: Value| Ok(Outcome { events, reply });
    match command {
        Command::UpsertUser(c) => {
            cache.ensure(StreamType::User, &c.user_id, source)?;
            check_version(cache, meta, StreamType::User, &c.user_id)?;
            done(
                user::decide(&cache.users[&c.user_id].state, ctx, c)?,
                json!({"user_id": c.user_id}),
            )
        }
        Command::RegisterResource(c) => resource_cmd(
            cache,
            source,
            ctx,
            meta,
            &c.resource_id,
            ResourceCommand::Register(c.clone()),
        ),
        Command::JoinResource(c) => resource_cmd(
            cache,
            source,
            ctx,
            meta,
            &c.resource_id,
            ResourceCommand::Join(c.clone()),
        ),
        Command::LeaveResource(c) => resource_cmd(
            cache,
            source,
            ctx,
            meta,
            &c.resource_id,
            ResourceCommand::Leave(c.clone()),
        ),
        Command::CreateInvite(c) => {
            let mut c = c.clone();
            let invite_id = fresh_or_given(
                cache,
                ids,
                StreamType::Invite,
                &mut c.spec.invite_id,
                |g: &mut dyn IdGen| g.new_id(),
            );
            cache.ensure(StreamType::Invite, &invite_id, source)?;
            cache.ensure(StreamType::Resource, &c.resource_id, source)?;
            check_version(cache, meta, StreamType::Invite, &invite_id)?;
            let events = invite::decide(
                &cache.invites[&invite_id].state,
                resource_state(cache, &c.resource_id),
                ctx,
                &InviteCommand::Create(c),
            )?;
            done(events, json!({"invite_id": invite_id}))
        }
        Command::UpdateInvite(c) => {
            invite_cmd(cache, source, ctx, meta, &c.invite_id, InviteCommand::Update(c.clone()))
        }
        Command::CancelInvite(c) => {
            invite_cmd(cache, source, ctx, meta, &c.invite_id, InviteCommand::Cancel(c.clone()))
        }
        Command::AcceptInvite(c) => {
            let mut out = invite_cmd(cache, source, ctx, meta, &c.invite_id, InviteCommand::Accept(c.clone()))?;
            let status = out.events.iter().find_map(|e| match e {
                Event::InviteAccepted(a) => Some(a.status),
                _ => None,
            });
            out.reply["status"] = json!(status);
            Ok(out)
        }
        Command::RejectInvite(c) => {
            invite_cmd(cache, source, ctx, meta, &c.invite_id, InviteCommand::Reject(c.clone()))
        }
        Command::ResendInvite(c) => {
            invite_cmd(cache, source, ctx, meta, &c.invite_id, InviteCommand::Resend(c.clone()))
        }
        Command::MarkInviteRead(c) => invite_cmd(
            cache,
            source,
            ctx,
            meta,
            &c.invite_id,
            InviteCommand::MarkRead(c.clone()),
        ),
        Command::HideInvite(c) => invite_cmd(cache, source, ctx, meta, &c.invite_id, InviteCommand::Hide(c.clone())),
        Command::ApproveInvite(c) => invite_cmd(
            cache,
            source,
            ctx,
            meta,
            &c.invite_id,
            InviteCommand::Approve(c.clone()),
        ),
        Command::DenyInvite(c) => invite_cmd(cache, source, ctx, meta, &c.invite_id, InviteCommand::Deny(c.clone())),
        Command::ExpireInvite(c) => {
            invite_cmd(cache, source, ctx, meta, &c.invite_id, InviteCommand::Expire(c.clone()))
        }
        Command::RemindInvite(c) => {
            invite_cmd(cache, source, ctx, meta, &c.invite_id, InviteCommand::Remind(c.clone()))
        }
        Command::StartCall(c) => start_call(cache, source, ids, ctx, meta, &c.call, &c.spec),
        Command::CreateInviteCode(c) => {
            let mut c = c.clone();
            let code = fresh_or_given(cache, ids, StreamType::Code, &mut c.code, |g: &mut dyn IdGen| {
                g.new_code()
            });
            cache.ensure(StreamType::Code, &code, source)?;
            cache.ensure(StreamType::Resource, &c.resource_id, source)?;
            check_version(cache, meta, StreamType::Code, &code)?;
            let state = &cache.codes[&code].state;
            let events = code::decide(
                state,
                resource_state(cache, &c.resource_id),
                ctx,
                &CodeCommand::Create(c),
            )?;
            done(events, json!({"code": code}))
        }
        Command::RedeemInviteCode(c) => {
            let resource_id = code_and_resource(cache, source, meta, &c.code)?;
            // An earlier application through this code still waiting for approval answers again.
            let earlier = cache.codes[&c.code].state.applying.get(&ctx.actor).cloned();
            let still_applying = match &earlier {
                Some(invite) => {
                    cache.ensure(StreamType::Invite, invite, source)?;
                    let state = &cache.invites[invite].state;
                    let record = state.invite.as_ref().and_then(|i| i.record(&ctx.actor));
                    record.is_some_and(|r| r.status == invitebus_events::RecordStatus::Applying)
                }
                None => false,
            };
            let invite_id = ids.new_id();
            cache.insert_new(StreamType::Invite, &invite_id);
            let cmd = CodeCommand::Redeem {
                code: c.code.clone(),
                invite_id,
                still_applying,
            };
            let state = &cache.codes[&c.code].state;
            let events = code::decide(state, resource_state(cache, &resource_id), ctx, &cmd)?;
            let already_member = resource_state(cache, &resource_id).is_member(&ctx.actor);
            let invite_id = events
                .iter()
                .find_map(|e| match e {
                    Event::InviteCodeRedeemed(r) => r.invite_id.clone(),
                    _ => None,
                })
                .or(if still_applying { earlier } else { None });
            let reply = json!({"resource_id": resource_id, "invite_id": invite_id, "already_member": already_member});
            done(events, reply)
        }
        Command::DeleteInviteCode(c) => {
            let resource_id = code_and_resource(cache, source, meta, &c.code)?;
            let state = &cache.codes[&c.code].state;
            let events = code::decide(
                state,
                resource_state(cache, &resource_id),
                ctx,
                &CodeCommand::Delete(c.clone()),
            )?;
            done(events, json!({"code": c.code}))
        }
        Command::RequestExport(c) => {
            let export_id = ids.new_id();
            cache.insert_new(StreamType::Export, &export_id);
            cache.ensure_user_exports(&ctx.actor, source)?;
            let cmd = ExportCommand::Request {
                export_id: export_id.clone(),
                request: c.clone(),
            };
            let events = export::decide(
                &cache.exports[&export_id].state,
                &cache.user_exports[&ctx.actor],
                ctx,
                &cmd,
            )?;
            done(events, json!({"export_id": export_id}))
        }
        Command::StartExport(c) => export_cmd(cache, source, ctx, meta, &c.export_id, ExportCommand::Start(c.clone())),
        Command::CompleteExport(c) => export_cmd(
            cache,
            source,
            ctx,
            meta,
            &c.export_id,
            ExportCommand::Complete(c.clone()),
        ),
        Command::FailExport(c) => export_cmd(cache, source, ctx, meta, &c.export_id, ExportCommand::Fail(c.clone())),
    }
}

/// The exporter's commands on one export (the requester's list is loaded so it stays current).
fn export_cmd(
    cache: &mut Cache,
    source: &dyn StreamSource,
    ctx: &Ctx,
    meta: &CommandMeta,
    export_id: &Id,
    cmd: ExportCommand,
) -> Result<Outcome, ProtocolError> {
    cache.ensure(StreamType::Export, export_id, source)?;
    check_version(cache, meta, StreamType::Export, export_id)?;
    let requester = cache.exports[export_id]
        .state
        .requested
        .as_ref()
        .map(|r| r.requested_by.clone());
    if let Some(user) = &requester {
        cache.ensure_user_exports(user, source)?;
    }
    let none = UserExports::default();
    let user = requester
        .as_ref()
        .and_then(|u| cache.user_exports.get(u))
        .unwrap_or(&none);
    let events = export::decide(&cache.exports[export_id].state, user, ctx, &cmd)?;
    Ok(Outcome {
        events,
        reply: json!({"export_id": export_id}),
    })
}

/// The client's id, or a new one made here; a new one is known to be an empty stream.
fn fresh_or_given(
    cache: &mut Cache,
    ids: &mut dyn IdGen,
    ty: StreamType,
    slot: &mut Option<Id>,
    make: fn(&mut dyn IdGen) -> Id,
) -> Id {
    match slot {
        Some(id) => id.clone(),
        None => {
            let id = make(ids);
            cache.insert_new(ty, &id);
            *slot = Some(id.clone());
            id
        }
    }
}

fn resource_cmd(
    cache: &mut Cache,
    source: &dyn StreamSource,
    ctx: &Ctx,
    meta: &CommandMeta,
    resource_id: &Id,
    cmd: ResourceCommand,
) -> Result<Outcome, ProtocolError> {
    cache.ensure(StreamType::Resource, resource_id, source)?;
    check_version(cache, meta, StreamType::Resource, resource_id)?;
    let events = resource::decide(resource_state(cache, resource_id), ctx, &cmd)?;
    Ok(Outcome {
        events,
        reply: json!({"resource_id": resource_id}),
    })
}

fn invite_cmd(
    cache: &mut Cache,
    source: &dyn StreamSource,
    ctx: &Ctx,
    meta: &CommandMeta,
    invite_id: &Id,
    cmd: InviteCommand,
) -> Result<Outcome, ProtocolError> {
    cache.ensure(StreamType::Invite, invite_id, source)?;
    check_version(cache, meta, StreamType::Invite, invite_id)?;
    let resource_id = cache.invites[invite_id]
        .state
        .invite
        .as_ref()
        .map(|i| i.resource_id.clone());
    if let Some(rid) = &resource_id {
        cache.ensure(StreamType::Resource, rid, source)?;
    }
    let state: &InviteState = &cache.invites[invite_id].state;
    let resource = resource_id
        .as_ref()
        .map(|r| resource_state(cache, r))
        .unwrap_or(&NO_RESOURCE);
    let events = invite::decide(state, resource, ctx, &cmd)?;
    Ok(Outcome {
        events,
        reply: json!({"invite_id": invite_id}),
    })
}

/// Loads a code and its resource; returns the resource's id.
fn code_and_resource(
    cache: &mut Cache,
    source: &dyn StreamSource,
    meta: &CommandMeta,
    code: &Id,
) -> Result<Id, ProtocolError> {
    cache.ensure(StreamType::Code, code, source)?;
    check_version(cache, meta, StreamType::Code, code)?;
    let resource_id = cache.codes[code]
        .state
        .info
        .as_ref()
        .map(|i| i.resource_id.clone())
        .ok_or_else(|| ProtocolError::not_found("code", code))?;
    cache.ensure(StreamType::Resource, &resource_id, source)?;
    Ok(resource_id)
}

/// Registers a channel, joins the caller and invites, as one command (seed 002's call).
fn start_call(
    cache: &mut Cache,
    source: &dyn StreamSource,
    ids: &mut dyn IdGen,
    ctx: &Ctx,
    meta: &CommandMeta,
    call: &CallSpec,
    spec: &invitebus_events::command::InviteSpec,
) -> Result<Outcome, ProtocolError> {
    let mut resource_id = call.resource_id.clone();
    let resource_id = fresh_or_given(
        cache,
        ids,
        StreamType::Resource,
        &mut resource_id,
        |g: &mut dyn IdGen| g.new_id(),
    );
    let mut spec = spec.clone();
    let invite_id = fresh_or_given(
        cache,
        ids,
        StreamType::Invite,
        &mut spec.invite_id,
        |g: &mut dyn IdGen| g.new_id(),
    );
    cache.ensure(StreamType::Resource, &resource_id, source)?;
    cache.ensure(StreamType::Invite, &invite_id, source)?;
    check_version(cache, meta, StreamType::Resource, &resource_id)?;
    let register = RegisterResource {
        resource_id: resource_id.clone(),
        kind: call
            .kind
            .clone()
            .unwrap_or_else(|| Id::parse("channel").expect("valid")),
        name: call.name.clone().unwrap_or_else(|| "call".to_string()),
        capacity: call.capacity.unwrap_or(0),
        parent_id: None,
        info: call.info.clone(),
    };
    let current = resource_state(cache, &resource_id);
    let mut events = resource::decide(current, ctx, &ResourceCommand::Register(register))?;
    let channel = events.iter().fold(current.clone(), resource::evolve);
    let create = CreateInvite {
        resource_id: resource_id.clone(),
        spec,
    };
    events.extend(invite::decide(
        &cache.invites[&invite_id].state,
        &channel,
        ctx,
        &InviteCommand::Create(create),
    )?);
    Ok(Outcome {
        events,
        reply: json!({"resource_id": resource_id, "invite_id": invite_id}),
    })
}
