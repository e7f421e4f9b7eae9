//! The schemas no struct of the wire contract gives: each query's request (the roles decode
//! them with structs of their own), notifications, export progress, projection status, and the
//! headers. Written from PROTOCOL.md; `tests/document.rs` checks that every query has one.

use invitebus_events::subject::{COMMANDS_QUEUE_GROUP, COMMAND_SPAN_HEADER, NOTIFIER_QUEUE_GROUP, VIEWS_QUEUE_GROUP};
use serde_json::{json, Map, Value};

fn id() -> Value {
    json!({"$ref": "#/components/schemas/Id"})
}

fn id_or_null() -> Value {
    json!({"anyOf": [id(), {"type": "null"}]})
}

fn string() -> Value {
    json!({"type": "string"})
}

fn position() -> Value {
    json!({"type": "integer", "minimum": 0})
}

/// Each query's own fields and which of them are required; `None` for a name this table lacks.
fn query_fields(name: &str) -> Option<(Value, &'static [&'static str])> {
    let page = json!({"type": "integer", "minimum": 1, "description": "from 1"});
    let per_page = json!({"type": "integer", "minimum": 1, "maximum": 100, "description": "default 15"});
    let status = json!({"type": "string", "description": "a record status (seed 000's init, accept, reject too)"});
    let as_of = json!({"description": "a position (a number, or digits in a string), or an RFC 3339 time; absent: now",
        "type": ["integer", "string"]});
    Some(match name {
        "received" | "sent" => (json!({"page": page, "per_page": per_page, "status": status}), &[]),
        "invite" => (json!({"invite_id": id()}), &["invite_id"]),
        "admin" => (
            json!({"resource_id": id(), "inviter_phone": string(), "invitee_phone": string(),
                "created_from": {"type": "string", "format": "date-time"}, "created_to": {"type": "string", "format": "date-time"},
                "status": {"$ref": "#/components/schemas/RecordStatus"}, "page": page, "per_page": per_page}),
            &[],
        ),
        "code" => (json!({"code": id()}), &["code"]),
        "codes" => (json!({"resource_id": id()}), &["resource_id"]),
        "inbox" => (
            json!({"unread_only": {"type": "boolean"}, "after": position(),
                "per_page": {"type": "integer", "minimum": 1, "maximum": 500}}),
            &[],
        ),
        "history" | "state" => (json!({"stream_id": string(), "as_of": as_of}), &["stream_id"]),
        "export" => (json!({"export_id": id()}), &["export_id"]),
        "webhooks" => (json!({"webhook_id": id()}), &[]),
        _ => return None,
    })
}

/// The request of query `name`: the fields every query takes and its own.
pub fn query_request(name: &str) -> Value {
    let mut properties = Map::new();
    properties.insert("actor".into(), id());
    properties.insert("roles".into(), json!({"type": "array", "items": {"type": "string"}}));
    properties.insert(
        "min_position".into(),
        json!({"type": "integer", "minimum": 0, "description": "wait up to 5 s until the view has applied it (read your writes)"}),
    );
    let (own, required) = query_fields(name).unwrap_or((json!({}), &[]));
    if let Value::Object(own) = own {
        properties.extend(own);
    }
    json!({"type": "object", "properties": properties, "required": required})
}

/// The queue group of the role answering query `name` (none: every member answers).
pub fn query_queue(name: &str) -> Option<&'static str> {
    match name {
        "history" | "state" => Some(COMMANDS_QUEUE_GROUP),
        "inbox" => Some(NOTIFIER_QUEUE_GROUP),
        "webhooks" => None,
        _ => Some(VIEWS_QUEUE_GROUP),
    }
}

/// Headers a command or query may carry.
pub fn request_headers() -> Value {
    json!({"type": "object", "properties": {
        "Authorization": {"type": "string", "pattern": "^Bearer ", "description": "with --bus-auth token: the caller's JWT (PROTOCOL.md, Bus authentication)"},
        "traceparent": {"type": "string", "description": "W3C trace context, copied into the events"}}})
}

/// Headers of a message on the events stream.
pub fn event_headers() -> Value {
    json!({"type": "object", "properties": {
        "Nats-Msg-Id": {"type": "string", "pattern": "^[0-9]+$", "description": "the event's position"},
        "Nats-Expected-Last-Sequence": {"type": "string", "pattern": "^[0-9]+$", "description": "position - 1 (fencing)"},
        "Invitebus-Reply": {"type": "string", "description": "on a command's last event: the command's reply"},
        (COMMAND_SPAN_HEADER): {"type": "string", "pattern": "^[0-9]+-[0-9]+$", "description": "on every event of a command of several: its first and last positions"},
        "Invitebus-Command-Rest": {"type": "string", "description": "on the first of those: the rest's envelopes and the reply"},
        "Invitebus-Command-Rest-Parts": {"type": "string", "pattern": "^[0-9]+$", "description": "instead, for a rest over 256 KiB: how many parts INVITES_RESTS holds on <prefix>.rest.<this event's hash>.<part> (invitebus's own, for a takeover)"},
        "traceparent": {"type": "string"}}})
}

/// A notification (PROTOCOL.md, Notifications).
pub fn notification() -> Value {
    json!({"type": "object", "required": ["id", "user_id", "kind", "text", "at", "position"], "properties": {
        "id": {"type": "string", "description": "<position>-<user_id>"}, "user_id": id(), "kind": string(), "text": string(),
        "invite_id": id_or_null(), "resource_id": id_or_null(), "from": id_or_null(), "at": {"type": "string", "format": "date-time"},
        "position": position(), "push": {}, "sms": {"type": "boolean"}, "live_only": {"type": "boolean"},
        "traceparent": string()}})
}

/// An export's progress (PROTOCOL.md, Export progress).
pub fn export_progress() -> Value {
    json!({"type": "object", "required": ["export_id", "status", "progress"], "properties": {
        "export_id": id(),
        "status": {"type": "string", "enum": ["starting", "start", "writing_file", "before_upload", "success", "upload_failure", "failed"]},
        "progress": {"type": "integer", "minimum": 0, "maximum": 100},
        "count": {"type": ["integer", "null"]}, "file_size": {"type": ["integer", "null"]},
        "file_url": {"type": ["string", "null"]}, "service": string()}})
}

/// A role's position report (PROTOCOL.md, Projection positions and the watchdog).
pub fn status() -> Value {
    json!({"type": "object", "required": ["name", "position"], "properties": {
        "name": string(), "position": position(), "head": position(), "lag": position(),
        "state": {"type": "string", "description": "following, catching_up, stalled, …"},
        "last_progress_at": {"type": ["string", "null"]}, "stalls": position(), "loading": {"type": ["integer", "null"]}}})
}
