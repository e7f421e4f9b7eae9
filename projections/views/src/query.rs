//! The queries on the views: `received`, `sent`, `invite` and `admin`. Each is a function of a
//! read connection and the request body; who may read what is checked here.

use invitebus_events::command::{check_body, decode_fields};
use invitebus_events::query::{AdminFilters, DEFAULT_PER_PAGE, MAX_PER_PAGE};
use invitebus_events::{ErrorCode, Id, ProtocolError, RecordStatus, ADMIN_ROLE};
use rusqlite::types::Value as Sql;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
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

    fn actor(&self) -> Result<&Id, ProtocolError> {
        self.actor
            .as_ref()
            .ok_or_else(|| ProtocolError::with_field(ErrorCode::Unauthenticated, "actor", "no actor"))
    }

    fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ADMIN_ROLE)
    }

    /// (page, per_page, offset)
    fn paging(&self) -> Result<(u32, u32, u32), ProtocolError> {
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

    fn record_status(&self) -> Result<Option<RecordStatus>, ProtocolError> {
        match self.status.as_deref() {
            None | Some("") => Ok(None),
            Some("init") => Ok(Some(RecordStatus::Pending)),
            Some("accept") => Ok(Some(RecordStatus::Accepted)),
            Some("reject") => Ok(Some(RecordStatus::Rejected)),
            Some(s) => RecordStatus::parse(s)
                .map(Some)
                .ok_or_else(|| ProtocolError::invalid("status", format!("`{s}` is not a status"))),
        }
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
    let status = q.record_status()?;
    let filter = if status.is_some() {
        "AND r.status = ?2"
    } else {
        "AND ?2 IS NULL"
    };
    let args = || {
        vec![
            Sql::Text(actor.to_string()),
            status.map(|s| Sql::Text(s.as_str().into())).unwrap_or(Sql::Null),
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
    let rows: Vec<(String, String, Option<String>, String)> = conn
        .prepare_cached(
            "SELECT invitee, status, approve_description, updated_at FROM records WHERE invite_id = ?1 ORDER BY seq",
        )
        .map_err(db)?
        .query_map([invite], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    rows.into_iter()
        .map(|(user, status, description, updated_at)| {
            Ok(
                json!({"user_id": user, "status": status, "approve_description": description,
                "updated_at": updated_at, "user_info": user_info(conn, &user)?}),
            )
        })
        .collect()
}

/// `sent`: invites the actor sent, newest first, without hidden ones, each with its invitees.
/// `status` keeps invites with at least one record in that status.
pub fn sent(conn: &Connection, q: &QueryRequest) -> Result<Value, ProtocolError> {
    let actor = q.actor()?;
    let (_, per_page, offset) = q.paging()?;
    let status = q.record_status()?;
    let filter = if status.is_some() {
        "AND EXISTS (SELECT 1 FROM records r WHERE r.invite_id = i.invite_id AND r.status = ?2)"
    } else {
        "AND ?2 IS NULL"
    };
    let args = || {
        vec![
            Sql::Text(actor.to_string()),
            status.map(|s| Sql::Text(s.as_str().into())).unwrap_or(Sql::Null),
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

/// `admin`: seed 004's page of records, filtered and paginated, newest first. Admin only.
pub fn admin(conn: &Connection, q: &QueryRequest, body: &[u8]) -> Result<Value, ProtocolError> {
    q.actor()?;
    if !q.is_admin() {
        return Err(ProtocolError::forbidden("the admin view is for admins"));
    }
    // Read as it is, not flattened into a wrapper: serde cannot say which flattened field
    // failed, and the error would name `body` instead of, say, `status`.
    let filters: AdminFilters = decode_fields(body)?;
    let (page, per_page, offset) = q.paging()?;
    admin_page(conn, &filters, page, per_page, offset)
}

/// The WHERE clause on `records r` and its arguments for `filters` (shared with the exporter).
pub fn admin_where(filters: &AdminFilters) -> (String, Vec<Sql>) {
    let mut clauses = vec!["1 = 1".to_string()];
    let mut args = Vec::new();
    let mut add = |clause: &str, v: Sql| {
        args.push(v);
        clauses.push(clause.replace('?', &format!("?{}", args.len())));
    };
    if let Some(r) = &filters.resource_id {
        add("r.resource_id = ?", Sql::Text(r.to_string()));
    }
    if let Some(p) = &filters.inviter_phone {
        add(
            "r.inviter IN (SELECT user_id FROM users WHERE phone = ?)",
            Sql::Text(p.clone()),
        );
    }
    if let Some(p) = &filters.invitee_phone {
        add(
            "r.invitee IN (SELECT user_id FROM users WHERE phone = ?)",
            Sql::Text(p.clone()),
        );
    }
    if let Some(t) = &filters.created_from {
        add(
            "r.created_at >= ?",
            Sql::Text(invitebus_events::envelope::format_time(t)),
        );
    }
    if let Some(t) = &filters.created_to {
        add(
            "r.created_at <= ?",
            Sql::Text(invitebus_events::envelope::format_time(t)),
        );
    }
    if let Some(s) = &filters.status {
        add("r.status = ?", Sql::Text(s.as_str().into()));
    }
    (clauses.join(" AND "), args)
}

/// One admin model from a row of [`ADMIN_SELECT`].
pub fn admin_model(r: &Row<'_>) -> rusqlite::Result<Value> {
    Ok(json!({
        "invite_id": r.get::<_, String>(0)?, "invitee": r.get::<_, String>(1)?, "created_at": r.get::<_, String>(2)?,
        "status": r.get::<_, String>(3)?, "approve_description": r.get::<_, Option<String>>(4)?,
        "user": {"id": r.get::<_, String>(1)?, "name": r.get::<_, Option<String>>(5)?, "phone": r.get::<_, Option<String>>(6)?,
            "company_name": r.get::<_, Option<String>>(7)?, "department": r.get::<_, Option<String>>(8)?,
            "position": r.get::<_, Option<String>>(9)?, "area": r.get::<_, Option<String>>(10)?},
        "recommend_user": {"id": r.get::<_, String>(11)?, "name": r.get::<_, Option<String>>(12)?, "phone": r.get::<_, Option<String>>(13)?},
        "resource": {"id": r.get::<_, String>(14)?, "name": r.get::<_, Option<String>>(15)?, "kind": r.get::<_, Option<String>>(16)?},
    }))
}

/// The columns [`admin_model`] reads, joined from records, invites, users and resources.
pub const ADMIN_SELECT: &str = "SELECT r.invite_id, r.invitee, r.created_at, r.status, r.approve_description, \
     u.name, u.phone, u.company_name, u.department, u.position, u.area, i.inviter, ru.name, ru.phone, \
     i.resource_id, res.name, res.kind \
     FROM records r JOIN invites i ON i.invite_id = r.invite_id \
     LEFT JOIN users u ON u.user_id = r.invitee LEFT JOIN users ru ON ru.user_id = i.inviter \
     LEFT JOIN resources res ON res.resource_id = i.resource_id";

fn admin_page(
    conn: &Connection,
    filters: &AdminFilters,
    page: u32,
    per_page: u32,
    offset: u32,
) -> Result<Value, ProtocolError> {
    // One read transaction: the total and the rows come from the same moment of the view.
    let tx = conn.unchecked_transaction().map_err(db)?;
    let (total, seqs) = match Counted::of(filters) {
        Some(Counted::Buckets(status)) => bucket_page(&tx, status, per_page, offset)?,
        Some(Counted::Resource(resource, status)) => {
            let total = resource_total(&tx, resource, status)?;
            (total, page_seqs(&tx, filters, per_page, offset)?)
        }
        None => {
            let (clause, args) = admin_where(filters);
            let total: i64 = tx
                .prepare_cached(&format!("SELECT COUNT(*) FROM records r WHERE {clause}"))
                .map_err(db)?
                .query_row(params_from_iter(args.iter()), |r| r.get(0))
                .map_err(db)?;
            (total, page_seqs(&tx, filters, per_page, offset)?)
        }
    };
    let models = models(&tx, &seqs)?;
    let total_pages = (total as u64).div_ceil(per_page as u64);
    Ok(json!({
        "total_count": total,
        "total_pages": total_pages,
        "next_page": if (page as u64) < total_pages { json!(page + 1) } else { Value::Null },
        "prev_page": if page > 1 { json!(page - 1) } else { Value::Null },
        "current_page": page,
        "page": page,
        "per_page": per_page,
        "models": models,
    }))
}

/// Filters whose total the views keep counted (see the schema's `record_buckets` and
/// `resource_counts`); the others are counted per request on the index they filter by.
enum Counted<'a> {
    /// No filter but perhaps a status: totals and deep pages from `record_buckets`.
    Buckets(Option<RecordStatus>),
    Resource(&'a Id, Option<RecordStatus>),
}

impl<'a> Counted<'a> {
    fn of(f: &'a AdminFilters) -> Option<Counted<'a>> {
        let narrower = f.inviter_phone.is_some()
            || f.invitee_phone.is_some()
            || f.created_from.is_some()
            || f.created_to.is_some();
        match (&f.resource_id, narrower) {
            (_, true) => None,
            (None, false) => Some(Counted::Buckets(f.status)),
            (Some(resource), false) => Some(Counted::Resource(resource, f.status)),
        }
    }
}

/// The total and one page of `seq`s, newest first, for no filter or a status alone: the
/// buckets are summed from the newest down to the one that holds row `offset`, and only the
/// rows inside that bucket are skipped (fewer than 4,096 seqs' worth, through the index of the
/// status when there is one), never `offset` rows.
fn bucket_page(
    conn: &Connection,
    status: Option<RecordStatus>,
    per_page: u32,
    offset: u32,
) -> Result<(i64, Vec<i64>), ProtocolError> {
    let status = status.map(|s| s.as_str());
    let buckets: Vec<(i64, i64)> = conn
        .prepare_cached(
            "SELECT bucket, SUM(n) FROM record_buckets WHERE ?1 IS NULL OR status = ?1 \
             GROUP BY bucket HAVING SUM(n) > 0 ORDER BY bucket DESC",
        )
        .map_err(db)?
        .query_map([status], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    let total = buckets.iter().map(|(_, n)| n).sum();
    let mut above = 0i64;
    let mut found = None;
    for &(bucket, n) in &buckets {
        if above + n > offset as i64 {
            found = Some((bucket, offset as i64 - above));
            break;
        }
        above += n;
    }
    let Some((bucket, inside)) = found else {
        return Ok((total, Vec::new()));
    };
    let below = (bucket + 1) << crate::counts::BUCKET_BITS;
    // Two texts, not `?1 IS NULL OR status = ?1`: with it SQLite walks the rowid past rows of
    // every status instead of seeking `records_status (status, seq)` (EXPLAIN QUERY PLAN).
    let (sql, args): (_, Vec<Sql>) = match status {
        Some(status) => (
            "SELECT seq FROM records WHERE status = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3 OFFSET ?4",
            vec![Sql::Text(status.into()), Sql::Integer(below)],
        ),
        None => (
            "SELECT seq FROM records WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2 OFFSET ?3",
            vec![Sql::Integer(below)],
        ),
    };
    let args = args
        .into_iter()
        .chain([Sql::Integer(per_page.into()), Sql::Integer(inside)]);
    let seqs = conn
        .prepare_cached(sql)
        .map_err(db)?
        .query_map(params_from_iter(args), |r| r.get(0))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    Ok((total, seqs))
}

/// A resource's records (in one status, if given), from `resource_counts`.
fn resource_total(conn: &Connection, resource: &Id, status: Option<RecordStatus>) -> Result<i64, ProtocolError> {
    conn.prepare_cached(
        "SELECT COALESCE(SUM(n), 0) FROM resource_counts WHERE resource_id = ?1 AND (?2 IS NULL OR status = ?2)",
    )
    .map_err(db)?
    .query_row(params![resource.as_str(), status.map(|s| s.as_str())], |r| r.get(0))
    .map_err(db)
}

/// One page of `seq`s, newest first, found on `records` alone (its indexes cover every filter).
fn page_seqs(conn: &Connection, filters: &AdminFilters, per_page: u32, offset: u32) -> Result<Vec<i64>, ProtocolError> {
    let (clause, args) = admin_where(filters);
    conn.prepare_cached(&format!(
        "SELECT r.seq FROM records r WHERE {clause} ORDER BY r.seq DESC LIMIT {per_page} OFFSET {offset}"
    ))
    .map_err(db)?
    .query_map(params_from_iter(args.iter()), |r| r.get(0))
    .map_err(db)?
    .collect::<Result<_, _>>()
    .map_err(db)
}

/// The admin models of `seqs`, in that order.
fn models(conn: &Connection, seqs: &[i64]) -> Result<Vec<Value>, ProtocolError> {
    let mut stmt = conn
        .prepare_cached(&format!("{ADMIN_SELECT} WHERE r.seq = ?1"))
        .map_err(db)?;
    let mut out = Vec::with_capacity(seqs.len());
    for seq in seqs {
        out.push(stmt.query_row([seq], admin_model).map_err(db)?);
    }
    Ok(out)
}
