//! Opening a projection file of an older layout version: migrated in place when the layout
//! says how, in one transaction; set aside and started afresh when it does not, or when the
//! migration fails (the set-aside file then as it was).

use invitebus_feed::store::{open_checked, Layout, Migration};
use rusqlite::Connection;
use std::path::Path;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT NOT NULL);";

/// Version 1 kept `t` as `old (k, v)`.
const FROM_1: Migration = Migration {
    from: 1,
    before: "",
    after: "INSERT INTO t SELECT k, v FROM old; DROP TABLE old;",
};

/// Fails half way: `t` is filled, then `missing` is not there.
const BROKEN: Migration = Migration {
    from: 1,
    before: "",
    after: "INSERT INTO t SELECT k, v FROM old; INSERT INTO t SELECT * FROM missing;",
};

fn layout(migrations: &'static [Migration]) -> Layout {
    Layout {
        schema: SCHEMA,
        version: 2,
        load_indexes: &[],
        fill: "",
        migrations,
    }
}

fn version_1(path: &Path) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("CREATE TABLE old (k INTEGER PRIMARY KEY, v TEXT); INSERT INTO old VALUES (1, 'a'), (2, 'b'); PRAGMA user_version = 1;")
        .unwrap();
}

fn rows(conn: &Connection, table: &str) -> Vec<(i64, String)> {
    conn.prepare(&format!("SELECT k, v FROM {table} ORDER BY k"))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_file_the_layout_migrates_from_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    version_1(&path);
    let (conn, rebuilt) = open_checked(&path, &layout(&[FROM_1])).unwrap();
    assert!(rebuilt.is_none(), "{rebuilt:?}");
    assert_eq!(rows(&conn, "t"), [(1, "a".to_string()), (2, "b".to_string())]);
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 2);
}

#[test]
fn a_failed_migration_sets_the_file_aside_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    version_1(&path);
    let (conn, rebuilt) = open_checked(&path, &layout(&[BROKEN])).unwrap();
    let rebuilt = rebuilt.expect("set aside");
    assert!(
        rebuilt.reason.contains("migrating it from version 1 failed"),
        "{}",
        rebuilt.reason
    );
    assert!(rows(&conn, "t").is_empty(), "a fresh file");
    let aside = Connection::open(&rebuilt.set_aside).unwrap();
    assert_eq!(rows(&aside, "old").len(), 2, "the old rows are where they were");
    let tables: i64 = aside
        .query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 't'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 0, "nothing of the migration stayed");
}

#[test]
fn a_version_with_no_migration_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    version_1(&path);
    let (_, rebuilt) = open_checked(&path, &layout(&[])).unwrap();
    let reason = rebuilt.expect("set aside").reason;
    assert!(reason.contains("version 1, this build's are version 2"), "{reason}");
}
