//! The `code` and `codes` queries, in seed 003's shape (a code with its resource and parent,
//! its inviter's id and name, uses and limits; deleted codes are not found), and `export`.
//! Anyone holding a code may look it up; listing a resource's codes is for those who may
//! invite to it (its members, its owner) and admins.

use invitebus_events::command::{check_body, decode_fields};
use invitebus_events::{ErrorCode, Id, ProtocolError};
use rusqlite::{Connection, OptionalExtension, Row};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
struct CodeRequest {
    actor: Option<Id>,
    #[serde(default)]
    roles: Vec<String>,
    code: Option<Id>,
    resource_id: Option<Id>,
}

fn request(body: &[u8]) -> Result<CodeRequest, ProtocolError> {
    check_body(body)?;
    let q: CodeRequest = decode_fields(body)?;
    if q.actor.is_none() {
        return Err(ProtocolError::with_field(
            ErrorCode::Unauthenticated,
            "actor",
            "no actor",
        ));
    }
    Ok(q)
}

use invitebus_feed::store::read_error as db;

const SELECT: &str =
    "SELECT c.code, c.resource_id, c.inviter, c.uses, c.max_age, c.max_uses, c.temporary, c.created_at, \
     c.expires_at, c.requires_approval, r.name, r.kind, r.member_count, r.parent_id, p.name, \
     u.name \
     FROM codes c LEFT JOIN resources r ON r.resource_id = c.resource_id \
     LEFT JOIN resources p ON p.resource_id = r.parent_id LEFT JOIN users u ON u.user_id = c.inviter";

fn model(r: &Row<'_>) -> rusqlite::Result<Value> {
    let parent: Option<String> = r.get(13)?;
    Ok(json!({
        "code": r.get::<_, String>(0)?,
        "resource": {"id": r.get::<_, String>(1)?, "name": r.get::<_, Option<String>>(10)?,
            "kind": r.get::<_, Option<String>>(11)?, "member_count": r.get::<_, Option<i64>>(12)?},
        "parent": parent.map(|id| json!({"id": id, "name": r.get::<_, Option<String>>(14).ok().flatten()})),
        // What seed 003 shows of the inviter: never a phone or an email.
        "inviter": {"id": r.get::<_, String>(2)?, "name": r.get::<_, Option<String>>(15)?},
        "uses": r.get::<_, i64>(3)?,
        "max_age": r.get::<_, i64>(4)?,
        "max_uses": r.get::<_, i64>(5)?,
        "temporary": r.get::<_, bool>(6)?,
        "requires_approval": r.get::<_, bool>(9)?,
        "created_at": r.get::<_, String>(7)?,
        "expires_at": r.get::<_, Option<String>>(8)?,
    }))
}

/// `code` {code}: one live code, or `not_found`.
pub fn code(conn: &Connection, body: &[u8]) -> Result<Value, ProtocolError> {
    let q = request(body)?;
    let code = q.code.ok_or_else(|| ProtocolError::missing("code"))?;
    conn.prepare_cached(&format!("{SELECT} WHERE c.code = ?1 AND c.deleted = 0"))
        .map_err(db)?
        .query_row([code.as_str()], model)
        .optional()
        .map_err(db)?
        .ok_or_else(|| ProtocolError::not_found("code", &code))
}

/// `codes` {resource_id}: the resource's live codes, newest first.
pub fn codes(conn: &Connection, body: &[u8]) -> Result<Value, ProtocolError> {
    let q = request(body)?;
    let resource = q.resource_id.ok_or_else(|| ProtocolError::missing("resource_id"))?;
    let actor = q.actor.as_ref().map(Id::as_str).unwrap_or_default();
    let admin = q.roles.iter().any(|r| r == invitebus_events::ADMIN_ROLE);
    let may_invite: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM resources WHERE resource_id = ?1 AND owner = ?2) \
             OR EXISTS (SELECT 1 FROM members WHERE resource_id = ?1 AND user_id = ?2)",
        )
        .map_err(db)?
        .query_row([resource.as_str(), actor], |r| r.get(0))
        .map_err(db)?;
    if !admin && !may_invite {
        return Err(ProtocolError::forbidden(
            "a resource's codes are listed for its members, its owner and admins",
        ));
    }
    let items: Vec<Value> = conn
        .prepare_cached(&format!(
            "{SELECT} WHERE c.resource_id = ?1 AND c.deleted = 0 ORDER BY c.created_at DESC, c.code"
        ))
        .map_err(db)?
        .query_map([resource.as_str()], model)
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    Ok(json!({"items": items, "total": items.len()}))
}

#[derive(Debug, Deserialize)]
struct ExportRequest {
    actor: Option<Id>,
    #[serde(default)]
    roles: Vec<String>,
    export_id: Option<Id>,
}

/// `export` {export_id}: an export's status, for its requester and admins.
pub fn export(conn: &Connection, body: &[u8]) -> Result<Value, ProtocolError> {
    check_body(body)?;
    let q: ExportRequest = decode_fields(body)?;
    let actor = q
        .actor
        .ok_or_else(|| ProtocolError::with_field(ErrorCode::Unauthenticated, "actor", "no actor"))?;
    let id = q.export_id.ok_or_else(|| ProtocolError::missing("export_id"))?;
    let found = conn
        .query_row(
            "SELECT export_id, status, progress, count, file_size, file_url, requested_by, requested_at, format, reason \
             FROM exports WHERE export_id = ?1",
            [id.as_str()],
            |r| {
                Ok(json!({"export_id": r.get::<_, String>(0)?, "status": r.get::<_, String>(1)?,
                    "progress": r.get::<_, i64>(2)?, "count": r.get::<_, Option<i64>>(3)?,
                    "file_size": r.get::<_, Option<i64>>(4)?, "file_url": r.get::<_, Option<String>>(5)?,
                    "requested_by": r.get::<_, String>(6)?, "requested_at": r.get::<_, String>(7)?,
                    "format": r.get::<_, String>(8)?, "reason": r.get::<_, Option<String>>(9)?}))
            },
        )
        .optional()
        .map_err(db)?
        .ok_or_else(|| ProtocolError::not_found("export_id", &id))?;
    let admin = q.roles.iter().any(|r| r == invitebus_events::ADMIN_ROLE);
    if !admin && found["requested_by"] != actor.as_str() {
        return Err(ProtocolError::forbidden("an export is for its requester and admins"));
    }
    Ok(found)
}
