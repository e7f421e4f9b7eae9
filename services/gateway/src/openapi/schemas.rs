//! The bodies of the OpenAPI document: each API's envelope and the parameters' patterns, so a
//! schema-driven tester can check every answer, and knows which inputs are well formed.

use invitebus_events::{ErrorCode, RecordStatus};
use serde_json::{json, Value};

/// The id rule of PROTOCOL.md, as a JSON Schema pattern.
pub const ID_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";

pub fn id() -> Value {
    json!({"type": "string", "pattern": ID_PATTERN})
}

/// A string that is one of `names`.
pub fn one_of(names: &[&str]) -> Value {
    json!({"type": "string", "enum": names})
}

fn nullable(t: &str) -> Value {
    json!({"type": [t, "null"]})
}

fn error_codes() -> Vec<&'static str> {
    ErrorCode::ALL.iter().map(|c| c.as_str()).collect()
}

fn statuses() -> Vec<&'static str> {
    RecordStatus::ALL.iter().map(|s| s.as_str()).collect()
}

/// `$ref` to a component schema.
pub fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// Every component schema.
pub fn components() -> Value {
    let error = json!({"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string", "enum": error_codes()}, "message": {"type": "string"}, "field": nullable("string")}});
    json!({
        "Error": error,
        "ReplyOk": {"type": "object", "required": ["ok"], "properties": {
            "ok": {"const": true}, "data": {}, "position": {"type": ["integer", "null"], "minimum": 1}}},
        "ReplyError": {"type": "object", "required": ["ok", "error"], "properties": {
            "ok": {"const": false}, "error": r("Error")}},
        "Seed000": {"type": "object", "required": ["code"], "properties": {
            "code": {"type": "integer", "enum": [0, 1, 8, 9, 10]}, "data": {},
            "error": {"type": "string", "enum": error_codes()}, "message": {"type": "string"}, "field": nullable("string")}},
        "Seed000Down": {"type": "object", "required": ["code", "data"], "properties": {
            "code": {"const": 1}, "data": {"type": "string"}}},
        "Seed001": {"type": "object", "required": ["status"], "properties": {
            "status": {"type": "integer", "enum": [0, 4000, 4001, 4003, 4004, 4009, 4029, 5000, 5003]}, "data": {},
            "message": {"type": "string"}, "error": {"type": "string", "enum": error_codes()}, "field": nullable("string")}},
        "Seed003Invite": {"type": "object", "required": ["code", "guild", "channel", "inviter", "uses", "max_age", "max_uses"],
            "properties": {"code": {"type": "string"}, "guild": {"type": "object"}, "channel": {"type": "object"},
                "inviter": {"type": "object"}, "uses": {"type": "integer"}, "max_age": {"type": "integer"},
                "max_uses": {"type": "integer"}, "temporary": {"type": "boolean"}, "requires_approval": {"type": "boolean"},
                "created_at": nullable("string"), "expires_at": nullable("string")}},
        "Seed003Guild": {"type": "object", "required": ["id", "already_member", "pending_approval"], "properties": {
            "id": {"type": "string"}, "name": nullable("string"), "joined_at": nullable("string"),
            "already_member": {"type": "boolean"}, "pending_approval": {"type": "boolean"}, "invite_id": nullable("string")}},
        "Seed004": {"type": "object", "required": ["code", "message", "remark", "data"], "properties": {
            "code": {"const": 0}, "message": {"const": "success"}, "remark": {"type": "string"}, "data": {}}},
        "Seed004Error": {"type": "object", "required": ["code", "message", "remark", "error", "reason"], "properties": {
            "code": {"type": "integer", "enum": [401, -1]}, "message": {"type": "string"}, "remark": {"type": "string"},
            "error": {"type": "string", "enum": ["errors/unauthorized_error", "standard_error"]},
            "reason": {"type": "string", "enum": error_codes()}, "detail": {"type": "string"}, "field": nullable("string")}},
        "SocketRefused": {"type": "object", "required": ["code", "error"], "properties": {
            "code": {"type": "integer"}, "error": r("Error")}},
    })
}

/// A query parameter of seed 004's list; empty is no filter, as seed 004's clients send them.
fn q(name: &str, schema: Value, description: &str) -> Value {
    let schema = json!({"anyOf": [schema, {"type": "string", "maxLength": 0}]});
    json!({"name": name, "in": "query", "required": false, "schema": schema, "description": description})
}

/// A time bound as seed 004 takes it.
fn time() -> Value {
    json!({"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]})
}

/// Seed 004's list parameters.
pub fn admin_parameters() -> Vec<Value> {
    let phone = json!({"type": "string", "maxLength": 32});
    vec![
        q("exhibition_id", id(), "the resource"),
        q("recommend_user_phone", phone.clone(), "the inviter's phone"),
        q("user_phone", phone, "the invitee's phone"),
        q("created_at_gtq", time(), "created at or after (UTC)"),
        q("created_at_ltq", time(), "created at or before (UTC)"),
        q("approve_status", one_of(&statuses()), "the record's status"),
        q(
            "page",
            json!({"type": "integer", "minimum": 1, "maximum": u32::MAX}),
            "from 1",
        ),
        q(
            "per_page",
            json!({"type": "integer", "minimum": 1, "maximum": 100}),
            "1 to 100, default 15",
        ),
        q(
            "export_format",
            one_of(&["xlsx", "csv"]),
            "start an export of the filtered records instead",
        ),
    ]
}

/// What free text (a message, a reason, a description) may hold: any character but the control
/// characters (Unicode Cc) other than tab, LF and CR, as the service's decoding rule says.
pub const FREE_TEXT: &str = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$";

/// The request bodies, by route.
pub fn body(method: &str, path: &str) -> Option<Value> {
    // Free text: line breaks and tabs, no other control character (the service refuses them).
    let text = |max: usize| json!({"type": "string", "maxLength": max, "pattern": FREE_TEXT});
    let filter = json!({"type": "object", "properties": {"data": {"type": "object", "properties": {
        "status": one_of(&["init", "accept", "reject", "pending", "read", "tentative", "accepted", "rejected", "applying", "approved", "denied", "cancelled", "expired"])}}}});
    let schema = match (method, path) {
        ("post", "/api/invitation/createInvitation") => json!({"type": "object", "required": ["invitee", "confId"],
            "properties": {"invitee": id(), "confId": id(), "message": text(4000)}}),
        ("post", "/api/invitation/received") | ("post", "/api/invitation/sent") => filter,
        ("post", "/channels/{channelId}/invites") => json!({"type": "object", "properties": {
            "max_age": {"type": "integer", "minimum": 0, "maximum": crate::codes::MAX_AGE},
            "max_uses": {"type": "integer", "minimum": 0, "maximum": u32::MAX},
            "temporary": {"type": "boolean"}, "requires_approval": {"type": "boolean"}, "code": id()}}),
        ("put", _) => json!({"type": "object", "properties": {"approve_description": text(4000)}}),
        ("post", _) => json!({"type": "object"}),
        _ => return None,
    };
    Some(json!({"required": false, "content": {"application/json": {"schema": schema}}}))
}
