//! The queries the log itself answers: `history` (a stream's events up to `as_of`) and `state`
//! (the stream folded up to `as_of`). Both are for admins and the stream's participants.

use crate::{code, invite, resource, user, webhook};
use invitebus_eventlog::{LogError, LogReader};
use invitebus_events::command::{check_body, decode_fields};
use invitebus_events::event::StreamType;
use invitebus_events::{Envelope, ErrorCode, Event, Id, ProtocolError, ADMIN_ROLE};
use invitebus_keys::{FreshReveal, KeyRing};
use serde::Deserialize;
use serde_json::{json, Value};

/// The request of `history` and `state`.
#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    pub actor: Option<Id>,
    #[serde(default)]
    pub roles: Vec<String>,
    pub stream_id: String,
    /// A position (number) or an RFC 3339 time; absent = now.
    #[serde(default)]
    pub as_of: Option<Value>,
}

fn unavailable(e: LogError) -> ProtocolError {
    ProtocolError::unavailable(format!("reading the log: {e}"))
}

/// A stream read for a caller: its events (personal fields opened) and the positions among them
/// whose stored hash does not match their stored contents.
struct Read {
    query: StreamQuery,
    stream_type: StreamType,
    events: Vec<Envelope>,
    broken: Vec<u64>,
}

/// Decodes the request and reads the stream as of its `as_of`, checking who may see it.
fn read(reader: &LogReader, keys: Option<&KeyRing>, body: &[u8]) -> Result<Read, ProtocolError> {
    check_body(body)?;
    let q: StreamQuery = decode_fields(body)?;
    let actor = q
        .actor
        .clone()
        .ok_or_else(|| ProtocolError::with_field(ErrorCode::Unauthenticated, "actor", "no actor"))?;
    let (ty, _) = StreamType::parse_stream_id(&q.stream_id)
        .ok_or_else(|| ProtocolError::invalid("stream_id", "want <user|resource|invite|code|export>-<id>"))?;
    let until = match &q.as_of {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .filter(|p| *p <= MAX_POSITION)
                .ok_or_else(|| ProtocolError::invalid("as_of", "not a position (0 to 2^63-1)"))?,
        ),
        Some(Value::String(s)) => match s.parse::<u64>() {
            Ok(p) if p > MAX_POSITION => return Err(ProtocolError::invalid("as_of", "not a position (0 to 2^63-1)")),
            Ok(p) => Some(p),
            Err(_) => {
                chrono::DateTime::parse_from_rfc3339(s).map_err(|e| ProtocolError::invalid("as_of", e))?;
                Some(reader.position_at(s).map_err(unavailable)?)
            }
        },
        Some(_) => return Err(ProtocolError::invalid("as_of", "a position or an RFC 3339 time")),
    };
    let events = reader.read_stream(&q.stream_id, until).map_err(unavailable)?;
    let admin = q.roles.iter().any(|r| r == ADMIN_ROLE);
    if !admin && !events.iter().any(|e| names(e, &actor)) {
        // Unknown streams and others' streams look alike, so nothing leaks.
        return Err(ProtocolError::forbidden(
            "only admins and the stream's participants may read it",
        ));
    }
    // Checked on the stored bytes, before personal fields are opened.
    let broken = events
        .iter()
        .filter(|e| !e.hash_is_valid())
        .map(|e| e.position)
        .collect();
    let mut events = events;
    if let Some(keys) = keys {
        let mut fresh = keys.fresh();
        for env in events.iter_mut() {
            reveal(env, &mut fresh)?;
        }
    }
    Ok(Read {
        query: q,
        stream_type: ty,
        events,
        broken,
    })
}

/// Opens the sealed personal fields of `env` for a caller allowed to read it: `[forgotten]`
/// where the key is gone. Envelopes of other types pass untouched (no decoding).
pub fn reveal(env: &mut Envelope, keys: &mut FreshReveal<'_>) -> Result<(), ProtocolError> {
    if !invitebus_events::personal::is_personal(&env.event_type) {
        return Ok(());
    }
    let mut event = env
        .event()
        .map_err(|e| ProtocolError::internal(format!("position {}: {e}", env.position)))?;
    keys.reveal_blocking(&mut event)
        .map_err(|e| ProtocolError::unavailable(format!("{e}; retry")))?;
    env.data = event.data();
    Ok(())
}

/// The largest position SQLite can hold (positions are stored as i64).
const MAX_POSITION: u64 = i64::MAX as u64;

/// The actor took part in this event: sent it, or is named in it.
fn names(env: &Envelope, actor: &Id) -> bool {
    if env.actor == actor.as_str() {
        return true;
    }
    let is = |v: Option<&Value>| v.and_then(Value::as_str) == Some(actor.as_str());
    let d = &env.data;
    ["inviter", "invitee", "user_id", "owner", "requested_by", "by"]
        .iter()
        .any(|k| is(d.get(*k)))
        || d.get("invitees")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(actor.as_str())))
}

/// `history`: `{"items": [envelope], "broken": [position]}` (`broken`: events whose stored hash
/// does not match what is stored, i.e. altered in the file).
pub fn history(reader: &LogReader, keys: Option<&KeyRing>, body: &[u8]) -> Result<Value, ProtocolError> {
    let read = read(reader, keys, body)?;
    Ok(json!({ "items": read.events, "broken": read.broken }))
}

/// `state`: `{"stream_id","version","state"}`.
pub fn state(reader: &LogReader, keys: Option<&KeyRing>, body: &[u8]) -> Result<Value, ProtocolError> {
    let Read {
        query: q,
        stream_type: ty,
        events: envelopes,
        ..
    } = read(reader, keys, body)?;
    let version = envelopes.last().map(|e| e.version).unwrap_or(0);
    let mut events = Vec::with_capacity(envelopes.len());
    for env in &envelopes {
        events.push(
            env.event()
                .map_err(|e| ProtocolError::internal(format!("position {}: {e}", env.position)))?,
        );
    }
    Ok(json!({ "stream_id": q.stream_id, "version": version, "state": fold(ty, &events) }))
}

/// A stream's events folded with its aggregate's `evolve`, as JSON.
pub fn fold(ty: StreamType, events: &[Event]) -> Value {
    match ty {
        StreamType::Invite => {
            let s = events.iter().fold(invite::InviteState::default(), invite::evolve);
            match s.invite {
                None => Value::Null,
                Some(i) => json!({
                    "invite_id": i.invite_id, "resource_id": i.resource_id, "inviter": i.inviter, "role": i.role,
                    "status": i.status(), "message": i.message, "detail": i.detail, "expires_at": i.expires_at,
                    "requires_approval": i.requires_approval, "code": i.code, "hidden_by": i.hidden_by,
                    "records": i.records.iter().map(|r| json!({"invitee": r.invitee, "status": r.status})).collect::<Vec<_>>(),
                }),
            }
        }
        StreamType::Resource => {
            let s = events.iter().fold(resource::ResourceState::default(), resource::evolve);
            match s.info {
                None => Value::Null,
                Some(i) => json!({
                    "resource_id": i.resource_id, "kind": i.kind, "name": i.name, "owner": i.owner,
                    "capacity": i.capacity, "parent_id": i.parent_id, "info": i.info, "members": s.members,
                    "paused": s.paused.map(|until| json!({"until": until})),
                }),
            }
        }
        StreamType::User => {
            let s = events.iter().fold(user::UserState::default(), user::evolve);
            match (s.profile, s.forgotten) {
                (Some(p), _) => serde_json::to_value(p).unwrap_or(Value::Null),
                (None, true) => json!({ "forgotten": true }),
                (None, false) => Value::Null,
            }
        }
        StreamType::Code => {
            let s = events.iter().fold(code::CodeState::default(), code::evolve);
            match s.info {
                None => Value::Null,
                Some(i) => json!({
                    "code": i.code, "resource_id": i.resource_id, "inviter": i.inviter, "uses": s.uses,
                    "max_uses": i.max_uses, "max_age": i.max_age, "temporary": i.temporary,
                    "requires_approval": i.requires_approval, "expires_at": i.expires_at, "deleted": s.deleted,
                }),
            }
        }
        StreamType::Export => json!({ "events": events.len() }),
        StreamType::Webhook => {
            let s = events.iter().fold(webhook::WebhookState::default(), webhook::evolve);
            // The sealed secret stays out of the answer.
            match s.registered {
                None => Value::Null,
                Some(r) => json!({
                    "webhook_id": r.webhook_id, "url": r.url, "events": r.events, "resource_id": r.resource_id,
                    "by": r.by, "deleted": s.deleted,
                }),
            }
        }
    }
}
