//! The queries on the views: `received`, `sent` and `invite` (the admin page is in
//! [`crate::admin`]). Each is a function of a read connection and the request body; who may
//! read what is checked here.

use invitebus_events::command::{check_body, decode_fields};
use invitebus_events::query::{DEFAULT_PER_PAGE, MAX_PER_PAGE};
use invitebus_events::{ErrorCode, Id, ProtocolError, RecordStatus, ADMIN_ROLE};
use rusqlite::types::Value as Sql;
use rusqlite::{params_from_iter, Connection, OptionalExtension, Row};
use serde::Deserialize;
use serde_json::{json, Value};

/// The fields every view query takes.
#[derive(Debug, Deserialize)]
pub struct QueryRequest {
    pub actor: Option<Id>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub min_position: Option<u64>,
    #[serde(default)]
    pub page: Option<u32>,
    #[serde(default)]
    pub per_page: Option<u32>,
    /// A record status; seed 000's `init`, `accept` and `reject` are understood too.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub invite_id: Option<Id>,
}

impl QueryRequest {
    pub fn decode(body: &[u8]) -> Result<QueryRequest, ProtocolError> {
        check_body(body)?;
        decode_fields(body)
    }

    pub(crate) fn actor(&self) -> Result<&Id, ProtocolError> {
        self.actor
            .as_ref()
            .ok_or_else(|| ProtocolError::with_field(ErrorCode::Unauthenticated, "actor", "no actor"))
    }

    pub(crate) fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ADMIN_ROLE)
    }

    /// (page, per_page, offset)
    pub(crate) fn paging(&self) -> Result<(u32, u32, u32), ProtocolError> {
        let page = self.page.unwrap_or(1);
        let per_page = self.per_page.unwrap_or(DEFAULT_PER_PAGE);
        if page == 0 {
            return Err(ProtocolError::invalid("page", "pages start at 1"));
        }
        if per_page == 0 || per_page > MAX_PER_PAGE {
            return Err(ProtocolError::invalid("per_page", format!("1 to {MAX_PER_PAGE}")));
        }
        Ok((page, per_page, (page - 1).saturating_mul(per_page)))
    }

    /// The statuses a `status` filter names, as a JSON array for `json_each`: one of ours, or
    /// seed 000's `init` / `accept` / `reject`, which mean every status that seed shows that way
    /// (`init` is pending, read and tentative), from the seed's own table.
    fn record_statuses(&self) -> Result<Option<String>, ProtocolError> {
        let statuses: Vec<&str> = match self.status.as_deref() {
            None | Some("") => return Ok(None),
            Some(word @ ("init" | "accept" | "reject")) => RecordStatus::ALL
                .into_iter()
                .filter(|s| s.seed_000_status() == word)
                .map(RecordStatus::as_str)
                .collect(),
            Some(s) => match RecordStatus::parse(s) {
                Some(status) => vec![status.as_str()],
                None => return Err(ProtocolError::invalid("status", format!("`{s}` is not a status"))),
            },
        };
        Ok(Some(serde_json::to_string(&statuses).expect("strings serialize")))
    }
}

use invitebus_feed::store::read_error as db;

fn parse(text: Option<String>) -> Value {
    text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null)
}

/// A user's profile as the views know it, or null.
fn user_info(conn: &Connection, user: &str) -> Result<Value, ProtocolError> {
    conn.prepare_cached(
        "SELECT user_id, name, phone, email, company_name, department, position, area FROM users WHERE user_id = ?1",
    )
    .map_err(db)?
    .query_row([user], |r| {
        Ok(json!({"user_id": r.get::<_, String>(0)?, "name": r.get::<_, String>(1)?, "phone": r.get::<_, Option<String>>(2)?,
            "email": r.get::<_, Option<String>>(3)?, "company_name": r.get::<_, Option<String>>(4)?,
            "department": r.get::<_, Option<String>>(5)?, "position": r.get::<_, Option<String>>(6)?,
            "area": r.get::<_, Option<String>>(7)?}))
    })
    .optional()
    .map_err(db)
    .map(|v| v.unwrap_or(Value::Null))
}

/// A resource as the views know it, or null.
fn resource_info(conn: &Connection, resource: &str) -> Result<Value, ProtocolError> {
    conn.prepare_cached(
        "SELECT resource_id, kind, name, owner, capacity, parent_id, info, member_count FROM resources WHERE resource_id = ?1",
    )
    .map_err(db)?
    .query_row([resource], |r| {
        Ok(json!({"resource_id": r.get::<_, String>(0)?, "kind": r.get::<_, String>(1)?, "name": r.get::<_, String>(2)?,
            "owner": r.get::<_, String>(3)?, "capacity": r.get::<_, i64>(4)?, "parent_id": r.get::<_, Option<String>>(5)?,
            "info": parse(r.get(6)?), "member_count": r.get::<_, i64>(7)?}))
    })
    .optional()
    .map_err(db)
    .map(|v| v.unwrap_or(Value::Null))
}

const INVITE_COLUMNS: &str =
    "i.invite_id, i.resource_id, i.inviter, i.role, i.message, i.detail, i.ext, i.expires_at, \
     i.created_at, i.updated_at, i.status, i.push_status, i.requires_approval, i.code";

/// The invite columns of [`INVITE_COLUMNS`] as JSON (without enrichment).
fn invite_json(r: &Row<'_>) -> rusqlite::Result<Value> {
    Ok(json!({
        "invite_id": r.get::<_, String>(0)?, "resource_id": r.get::<_, String>(1)?, "inviter": r.get::<_, String>(2)?,
        "role": r.get::<_, String>(3)?, "message": r.get::<_, Option<String>>(4)?, "detail": parse(r.get(5)?),
        "ext": parse(r.get(6)?), "expires_at": r.get::<_, Option<String>>(7)?, "created_at": r.get::<_, String>(8)?,
        "updated_at": r.get::<_, String>(9)?, "invite_status": r.get::<_, String>(10)?, "push_status": r.get::<_, i64>(11)?,
        "requires_approval": r.get::<_, bool>(12)?, "code": r.get::<_, Option<String>>(13)?,
    }))
}

/// `received`: the actor's records, newest first, without hidden ones, each with the inviter's
/// profile (`user_info`) and the resource (`resource_info`).
pub fn received(conn: &Connection, q: &QueryRequest) -> Result<Value, ProtocolError> {
    let actor = q.actor()?;
    let (_, per_page, offset) = q.paging()?;
    let status = q.record_statuses()?;
    let filter = if status.is_some() {
        "AND r.status IN (SELECT value FROM json_each(?2))"
    } else {
        "AND ?2 IS NULL"
    };
    let args = || {
        vec![
            Sql::Text(actor.to_string()),
            status.clone().map(Sql::Text).unwrap_or(Sql::Null),
        ]
    };
    let total: i64 = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM records r WHERE r.invitee = ?1 AND r.hidden = 0 {filter}"
        ))
        .map_err(db)?
        .query_row(params_from_iter(args()), |r| r.get(0))
        .map_err(db)?;
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {INVITE_COLUMNS}, r.status, r.updated_at FROM records r JOIN invites i ON i.invite_id = r.invite_id \
             WHERE r.invitee = ?1 AND r.hidden = 0 {filter} ORDER BY r.seq DESC LIMIT {per_page} OFFSET {offset}"
        ))
        .map_err(db)?;
    let rows: Vec<(Value, String, String)> = stmt
        .query_map(params_from_iter(args()), |r| {
            Ok((invite_json(r)?, r.get(14)?, r.get(15)?))
        })
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    let mut items = Vec::with_capacity(rows.len());
    for (mut item, status, updated_at) in rows {
        item["status"] = json!(status);
        item["updated_at"] = json!(updated_at);
        item["user_info"] = user_info(conn, item["inviter"].as_str().unwrap_or(""))?;
        item["resource_info"] = resource_info(conn, item["resource_id"].as_str().unwrap_or(""))?;
        items.push(item);
    }
    Ok(json!({"items": items, "total": total}))
}

/// The invitees of an invite, each with status and profile.
fn invitees(conn: &Connection, invite: &str) -> Result<Vec<Value>, ProtocolError> {
    type Row = (String, String, Option<String>, String, Option<String>);
    let rows: Vec<Row> = conn
        .prepare_cached(
            "SELECT invitee, status, approve_description, updated_at, proposal FROM records WHERE invite_id = ?1 \
             ORDER BY seq",
        )
        .map_err(db)?
        .query_map([invite], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    rows.into_iter()
        .map(|(user, status, description, updated_at, proposal)| {
            Ok(
                json!({"user_id": user, "status": status, "approve_description": description,
                "updated_at": updated_at,
                "proposal": if status == "tentative" { parse(proposal) } else { Value::Null },
                "user_info": user_info(conn, &user)?}),
            )
        })
        .collect()
}

/// `sent`: invites the actor sent, newest first, without hidden ones, each with its invitees.
/// `status` keeps invites with at least one record in that status.
pub fn sent(conn: &Connection, q: &QueryRequest) -> Result<Value, ProtocolError> {
    let actor = q.actor()?;
    let (_, per_page, offset) = q.paging()?;
    let status = q.record_statuses()?;
    let filter = if status.is_some() {
        "AND EXISTS (SELECT 1 FROM records r WHERE r.invite_id = i.invite_id \
         AND r.status IN (SELECT value FROM json_each(?2)))"
    } else {
        "AND ?2 IS NULL"
    };
    let args = || {
        vec![
            Sql::Text(actor.to_string()),
            status.clone().map(Sql::Text).unwrap_or(Sql::Null),
        ]
    };
    let total: i64 = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM invites i WHERE i.inviter = ?1 AND i.hidden_by_inviter = 0 {filter}"
        ))
        .map_err(db)?
        .query_row(params_from_iter(args()), |r| r.get(0))
        .map_err(db)?;
    let rows: Vec<Value> = conn
        .prepare_cached(&format!(
            "SELECT {INVITE_COLUMNS} FROM invites i WHERE i.inviter = ?1 AND i.hidden_by_inviter = 0 {filter} \
             ORDER BY i.created_at DESC, i.invite_id DESC LIMIT {per_page} OFFSET {offset}"
        ))
        .map_err(db)?
        .query_map(params_from_iter(args()), invite_json)
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    let mut items = Vec::with_capacity(rows.len());
    for mut item in rows {
        let id = item["invite_id"].as_str().unwrap_or("").to_string();
        item["status"] = item["invite_status"].clone();
        item["invitees"] = json!(invitees(conn, &id)?);
        item["resource_info"] = resource_info(conn, item["resource_id"].as_str().unwrap_or(""))?;
        items.push(item);
    }
    Ok(json!({"items": items, "total": total}))
}

/// `invite`: one whole invite (seed 001's detail), for its inviter, its invitees and admins.
pub fn invite(conn: &Connection, q: &QueryRequest) -> Result<Value, ProtocolError> {
    let actor = q.actor()?;
    let id = q
        .invite_id
        .as_ref()
        .ok_or_else(|| ProtocolError::missing("invite_id"))?;
    let found = conn
        .prepare_cached(&format!(
            "SELECT {INVITE_COLUMNS}, i.push FROM invites i WHERE i.invite_id = ?1"
        ))
        .map_err(db)?
        .query_row([id.as_str()], |r| Ok((invite_json(r)?, parse(r.get(14)?))))
        .optional()
        .map_err(db)?;
    let Some((mut item, push)) = found else {
        return Err(ProtocolError::not_found("invite_id", id));
    };
    let members = invitees(conn, id.as_str())?;
    let inviter = item["inviter"].as_str().unwrap_or("").to_string();
    let is_member = members.iter().any(|m| m["user_id"] == actor.as_str());
    if inviter != actor.as_str() && !is_member && !q.is_admin() {
        return Err(ProtocolError::forbidden(
            "only the inviter, the invitees and admins may read an invite",
        ));
    }
    let remind = item["detail"]["remind_min"].clone();
    item["status"] = item["invite_status"].clone();
    item["push"] = push;
    item["inviter_info"] = user_info(conn, &inviter)?;
    item["resource_info"] = resource_info(conn, item["resource_id"].as_str().unwrap_or(""))?;
    item["members"] = json!(members
        .into_iter()
        .map(|mut m| {
            m["remind"] = remind.clone();
            m
        })
        .collect::<Vec<_>>());
    Ok(item)
}
