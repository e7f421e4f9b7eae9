//! Every row of a view file as JSON, table by table in key order: what an audit snapshot holds,
//! and how a replay is compared with the live views.

use crate::projection::ViewError;
use rusqlite::types::{ToSql, ValueRef};
use rusqlite::Connection;
use serde_json::{json, Map, Value};
use std::io::Write;
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
    collect(path, None)
}

/// The rows of [`snapshot`] that belong to `resource`: the resource, its members, invites,
/// records and codes, and the profiles of the people they name.
pub fn of_resource(path: &Path, resource: &str) -> Result<Value, ViewError> {
    collect(path, Some(resource))
}

/// [`snapshot`] (or [`of_resource`]) with `"as_of_position"`, written as JSON to `out` one row
/// at a time: the same document (keys in the same sorted order), in flat memory. Building it
/// whole first took 2 GB of memory for a 600,002-event history (`replay --until`: 280 MB of
/// pretty JSON then, 200 MB with a row a line now).
pub fn write(path: &Path, resource: Option<&str>, as_of_position: u64, out: &mut impl Write) -> Result<(), ViewError> {
    let conn = invitebus_feed::store::open(path, crate::schema::CREATE)?;
    write!(out, "{{\n\"as_of_position\": {as_of_position}")?;
    let mut tables = TABLES;
    tables.sort_by_key(|(table, _, _)| *table);
    for (table, order, part) in tables {
        let Some(filter) = rows_of(resource, part) else {
            continue;
        };
        write!(out, ",\n{}: [", json!(table))?;
        let mut first = true;
        each_row(&conn, (table, order, filter), resource, |row| {
            out.write_all(if first { b"\n" } else { b",\n" })?;
            first = false;
            serde_json::to_writer(&mut *out, &row).map_err(std::io::Error::from)
        })?;
        out.write_all(b"\n]")?;
    }
    out.write_all(b"\n}\n")?;
    Ok(())
}

fn collect(path: &Path, resource: Option<&str>) -> Result<Value, ViewError> {
    let conn = invitebus_feed::store::open(path, crate::schema::CREATE)?;
    let mut out = Map::new();
    for (table, order, part) in TABLES {
        let Some(filter) = rows_of(resource, part) else {
            continue;
        };
        let mut rows = Vec::new();
        each_row(&conn, (table, order, filter), resource, |row| {
            rows.push(Value::Object(row));
            Ok(())
        })?;
        out.insert(table.to_string(), Value::Array(rows));
    }
    Ok(Value::Object(out))
}

/// Which of a table's rows a snapshot holds: all, or those of `resource` (None: the table has
/// none of a resource's rows).
fn rows_of(resource: Option<&str>, part: Option<&'static str>) -> Option<&'static str> {
    match (resource, part) {
        (None, _) => Some("1 = 1"),
        (Some(_), part) => part,
    }
}

/// Hands `table`'s rows that pass `filter` (`?1`: the resource) to `each`, in `order`.
fn each_row(
    conn: &Connection,
    (table, order, filter): (&str, &str, &str),
    resource: Option<&str>,
    mut each: impl FnMut(Map<String, Value>) -> std::io::Result<()>,
) -> Result<(), ViewError> {
    let mut stmt = conn.prepare(&format!("SELECT * FROM {table} WHERE {filter} ORDER BY {order}"))?;
    let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
    let args: Vec<&dyn ToSql> = match &resource {
        Some(r) if filter.contains("?1") => vec![r],
        _ => vec![],
    };
    let mut rows = stmt.query(args.as_slice())?;
    while let Some(r) = rows.next()? {
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
        each(row)?;
    }
    Ok(())
}
