//! Every row of a view file as JSON, table by table in key order: what an audit snapshot holds,
//! and how a replay is compared with the live views.

use crate::apply::ViewError;
use rusqlite::types::ValueRef;
use serde_json::{json, Map, Value};
use std::path::Path;

/// The tables in a snapshot, with the order that makes it deterministic.
pub const TABLES: [(&str, &str); 8] = [
    ("codes", "code"),
    ("exports", "export_id"),
    ("users", "user_id"),
    ("resources", "resource_id"),
    ("invites", "invite_id"),
    ("records", "invite_id, invitee"),
    ("members", "resource_id, user_id"),
    ("checkpoints", "name"),
];

/// `{table: [row as object]}` for every view table.
pub fn snapshot(path: &Path) -> Result<Value, ViewError> {
    let conn = invitebus_feed::store::open(path, crate::schema::CREATE)?;
    let mut out = Map::new();
    for (table, order) in TABLES {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY {order}"))?;
        let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
        let rows = stmt.query_map([], |r| {
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
        out.insert(table.to_string(), Value::Array(rows.collect::<Result<_, _>>()?));
    }
    Ok(Value::Object(out))
}
