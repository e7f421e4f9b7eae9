//! The admin page's totals and deep pages, read from the counts the views keep: every page of
//! every counted filter equals the plain `COUNT(*)` and `OFFSET` over the records, across bucket
//! boundaries and past the last page.

use invitebus_events::query::AdminFilters;
use invitebus_testkit::history::{apply_live, mixed, write_log};
use invitebus_views::admin::{self, admin_where};
use invitebus_views::query::QueryRequest;
use invitebus_views::Views;
use rusqlite::{params_from_iter, Connection};
use serde_json::{json, Value};

/// `(total, [(invite_id, invitee)])` of one page, counted and skipped row by row.
fn plain(conn: &Connection, filters: &Value, page: u64, per_page: u64) -> (i64, Vec<(String, String)>) {
    let filters: AdminFilters = serde_json::from_value(filters.clone()).unwrap();
    let (clause, args) = admin_where(&filters, &invitebus_keys::MasterKey::dev());
    let total = conn
        .query_row(
            &format!("SELECT COUNT(*) FROM records r WHERE {clause}"),
            params_from_iter(args.iter()),
            |r| r.get(0),
        )
        .unwrap();
    let offset = (page - 1) * per_page;
    let sql = format!(
        "SELECT r.invite_id, r.invitee FROM records r WHERE {clause} ORDER BY r.seq DESC LIMIT {per_page} OFFSET {offset}"
    );
    let mut stmt = conn.prepare(&sql).unwrap();
    let rows = stmt
        .query_map(params_from_iter(args.iter()), |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    (total, rows)
}

fn served(conn: &Connection, filters: &Value, page: u64, per_page: u64) -> (i64, Vec<(String, String)>) {
    let mut body = json!({"actor": "root", "roles": ["admin"], "page": page, "per_page": per_page});
    body.as_object_mut()
        .unwrap()
        .extend(filters.as_object().unwrap().clone());
    let bytes = body.to_string().into_bytes();
    let q = QueryRequest::decode(&bytes).unwrap();
    let answer = admin::page(conn, &q, &bytes, &invitebus_keys::MasterKey::dev()).unwrap();
    let models = answer["models"].as_array().unwrap();
    let rows = models
        .iter()
        .map(|m| {
            (
                m["invite_id"].as_str().unwrap().into(),
                m["invitee"].as_str().unwrap().into(),
            )
        })
        .collect();
    (answer["total_count"].as_i64().unwrap(), rows)
}

#[test]
fn every_page_of_every_counted_filter_equals_counting_row_by_row() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.db");
    write_log(&log, mixed(60_000), true).unwrap();
    let path = dir.path().join("views.db");
    let mut views = Views::open(&path).unwrap();
    apply_live(&mut views, &log, 500);
    let conn = Connection::open(&path).unwrap();
    let records: i64 = conn
        .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
        .unwrap();
    assert!(records > 2 * 4096, "records span several buckets: {records}");
    let mut filters = vec![json!({}), json!({"resource_id": "res3"})];
    let statuses: Vec<String> = conn
        .prepare("SELECT DISTINCT status FROM records ORDER BY 1")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(statuses.len() >= 4, "a mixed history: {statuses:?}");
    for status in &statuses {
        filters.push(json!({ "status": status }));
        filters.push(json!({"resource_id": "res3", "status": status}));
    }
    // Not counted: answered by COUNT(*) on its index, and checked the same way.
    filters.push(json!({"created_from": "2026-03-01T09:00:00Z", "status": "accepted"}));
    let mut checked = 0;
    for filter in &filters {
        for per_page in [15u64, 100] {
            let (total, _) = plain(&conn, filter, 1, per_page);
            let last = (total as u64).div_ceil(per_page).max(1);
            // The first pages, those either side of each bucket boundary, the last and past it.
            let mut pages = vec![1, 2, last, last + 1];
            pages.extend((1..4).flat_map(|b| {
                let p = b * 4096 / per_page;
                [p, p + 1, p + 2]
            }));
            for page in pages.into_iter().filter(|p| *p >= 1) {
                assert_eq!(
                    served(&conn, filter, page, per_page),
                    plain(&conn, filter, page, per_page),
                    "filter {filter}, page {page} of {per_page}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked} pages");
}

#[test]
fn a_bad_filter_is_named_in_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("views.db");
    drop(Views::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    for (filters, field) in [
        (json!({"status": "bogus"}), "status"),
        (json!({"created_from": "yesterday"}), "created_from"),
        (json!({"resource_id": 7}), "resource_id"),
    ] {
        let mut body = json!({"actor": "root", "roles": ["admin"]});
        body.as_object_mut()
            .unwrap()
            .extend(filters.as_object().unwrap().clone());
        let bytes = body.to_string().into_bytes();
        let q = QueryRequest::decode(&bytes).unwrap();
        let e = admin::page(&conn, &q, &bytes, &invitebus_keys::MasterKey::dev()).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            (invitebus_events::ErrorCode::InvalidField, Some(field)),
            "{filters}: {e:?}"
        );
    }
}
