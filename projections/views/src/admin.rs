//! Seed 004's admin page: records filtered and paginated, newest first, for admins. Totals and
//! deep pages come from the counts the views keep ([`crate::counts`]) where the filters allow;
//! [`admin_where`], [`ADMIN_SELECT`] and [`admin_model`] are shared with the exporter.

use crate::query::QueryRequest;
use invitebus_events::command::decode_fields;
use invitebus_events::query::AdminFilters;
use invitebus_events::{Id, ProtocolError, RecordStatus};
use invitebus_feed::store::read_error as db;
use rusqlite::types::Value as Sql;
use rusqlite::{params, params_from_iter, Connection, Row};
use serde_json::{json, Value};

/// `admin`: seed 004's page of records, filtered and paginated, newest first. Admin only.
pub fn page(
    conn: &Connection,
    q: &QueryRequest,
    body: &[u8],
    key: &invitebus_keys::MasterKey,
) -> Result<Value, ProtocolError> {
    q.actor()?;
    if !q.is_admin() {
        return Err(ProtocolError::forbidden("the admin view is for admins"));
    }
    // Read as it is, not flattened into a wrapper: serde cannot say which flattened field
    // failed, and the error would name `body` instead of, say, `status`.
    let filters: AdminFilters = decode_fields(body)?;
    let (page, per_page, offset) = q.paging()?;
    admin_page(conn, &filters, page, per_page, offset, key)
}

/// The WHERE clause on `records r` and its arguments for `filters` (shared with the exporter);
/// phones are looked up by their hash under `key`, the deployment's master key.
pub fn admin_where(filters: &AdminFilters, key: &invitebus_keys::MasterKey) -> (String, Vec<Sql>) {
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
            "r.inviter IN (SELECT user_id FROM users WHERE phone_hash = ?)",
            Sql::Text(key.phone_lookup(p)),
        );
    }
    if let Some(p) = &filters.invitee_phone {
        add(
            "r.invitee IN (SELECT user_id FROM users WHERE phone_hash = ?)",
            Sql::Text(key.phone_lookup(p)),
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
    key: &invitebus_keys::MasterKey,
) -> Result<Value, ProtocolError> {
    // One read transaction: the total and the rows come from the same moment of the view.
    let tx = conn.unchecked_transaction().map_err(db)?;
    let (total, seqs) = match Counted::of(filters) {
        Some(Counted::Buckets(status)) => bucket_page(&tx, status, per_page, offset)?,
        Some(Counted::Resource(resource, status)) => {
            let total = resource_total(&tx, resource, status)?;
            (total, page_seqs(&tx, filters, per_page, offset, key)?)
        }
        None => {
            let (clause, args) = admin_where(filters, key);
            let total: i64 = tx
                .prepare_cached(&format!("SELECT COUNT(*) FROM records r WHERE {clause}"))
                .map_err(db)?
                .query_row(params_from_iter(args.iter()), |r| r.get(0))
                .map_err(db)?;
            (total, page_seqs(&tx, filters, per_page, offset, key)?)
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
fn page_seqs(
    conn: &Connection,
    filters: &AdminFilters,
    per_page: u32,
    offset: u32,
    key: &invitebus_keys::MasterKey,
) -> Result<Vec<i64>, ProtocolError> {
    let (clause, args) = admin_where(filters, key);
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
