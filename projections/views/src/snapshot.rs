//! Every row of a view file as JSON, table by table in key order: what an audit snapshot holds,
//! and how a replay is compared with the live views.

use crate::projection::ViewError;
use rusqlite::types::{ToSql, ValueRef};
use rusqlite::Connection;
use serde_json::{json, Map, Value};
use std::path::Path;

/// The tables in a snapshot, with the order that makes it deterministic, and which of their
/// rows belong to one resource (`?1`; `None`: no row does).
pub const TABLES: [(&str, &str, Option<&str>); 8] = [
    ("codes", "code", Some("resource_id = ?1")),
    ("exports", "export_id", None),
    ("users", "user_id", Some(PEOPLE)),
    ("resources", "resource_id", Some("resource_id = ?1")),
    ("invites", "invite_id", Some("resource_id = ?1")),
    ("records", "invite_id, invitee", Some("resource_id = ?1")),
    ("members", "resource_id, user_id", Some("resource_id = ?1")),
    ("checkpoints", "name", None),
];

/// The people whose profile the resource's rows show.
const PEOPLE: &str = "user_id IN (SELECT owner FROM resources WHERE resource_id = ?1 \
    UNION SELECT user_id FROM members WHERE resource_id = ?1 UNION SELECT inviter FROM invites WHERE resource_id = ?1 \
    UNION SELECT invitee FROM records WHERE resource_id = ?1 UNION SELECT inviter FROM codes WHERE resource_id = ?1)";

/// `{table: [row as object]}` for every view table.
pub fn snapshot(path: &Path) -> Result<Value, ViewError> {
    let conn = invitebus_feed::store::open(path, crate::schema::CREATE)?;
    let mut out = Map::new();
    for (table, order, _) in TABLES {
        out.insert(table.to_string(), rows(&conn, table, order, "1 = 1", &[])?);
    }
    Ok(Value::Object(out))
}

/// The rows of [`snapshot`] that belong to `resource`: the resource, its members, invites,
/// records and codes, and the profiles of the people they name.
pub fn of_resource(path: &Path, resource: &str) -> Result<Value, ViewError> {
    let conn = invitebus_feed::store::open(path, crate::schema::CREATE)?;
    let mut out = Map::new();
    for (table, order, part) in TABLES {
        if let Some(part) = part {
            out.insert(table.to_string(), rows(&conn, table, order, part, &[&resource])?);
        }
    }
    Ok(Value::Object(out))
}

fn rows(conn: &Connection, table: &str, order: &str, filter: &str, args: &[&dyn ToSql]) -> Result<Value, ViewError> {
    let mut stmt = conn.prepare(&format!("SELECT * FROM {table} WHERE {filter} ORDER BY {order}"))?;
    let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
    let rows = stmt.query_map(args, |r| {
        let mut row = Map::new();
        for (i, name) in names.iter().enumerate() {
            // `seq` is an insertion counter: equal views may number rows differently.
            if name == "seq" {
                continue;
            }
            let v = match r.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => json!(n),
                ValueRef::Real(f) => json!(f),
                ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
                ValueRef::Blob(b) => json!(b),
            };
            row.insert(name.clone(), v);
        }
        Ok(Value::Object(row))
    })?;
    Ok(Value::Array(rows.collect::<Result<_, _>>()?))
}
