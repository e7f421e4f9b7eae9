//! A notifier file of layout 3 (notifications keyed by their text id) is migrated in place on
//! open: every row as it was, which were sent and read included, at the same position, with no
//! rebuild; the new key and indexes are there.

use invitebus_feed::Projection;
use invitebus_notifier::Notifier;
use invitebus_testkit::history::{apply_live, dump, mixed, write_log};
use rusqlite::Connection;

/// The notifications table and its indexes as layout 3 had them.
const LAYOUT_3: &str = "
CREATE TABLE notifications (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL, invite_id TEXT,
    resource_id TEXT, from_user TEXT, at TEXT NOT NULL, position INTEGER NOT NULL, push TEXT,
    read INTEGER NOT NULL DEFAULT 0, sent INTEGER NOT NULL DEFAULT 0, sms INTEGER NOT NULL DEFAULT 0,
    live_only INTEGER NOT NULL DEFAULT 0, traceparent TEXT, nseq INTEGER, name_len INTEGER
) WITHOUT ROWID;
CREATE INDEX notifications_user ON notifications (user_id, position);
CREATE INDEX notifications_unsent ON notifications (sent, position);
CREATE INDEX notifications_from ON notifications (from_user) WHERE name_len IS NOT NULL;
";

fn plan(conn: &Connection, sql: &str) -> String {
    conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap()
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
        .join("; ")
}

#[test]
fn a_layout_3_file_is_migrated_keeping_what_was_sent_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.db");
    let head = write_log(&log, mixed(300), true).unwrap();
    let path = dir.path().join("notifier.db");
    apply_live(&mut Notifier::open(&path).unwrap(), &log, 500);

    // The same rows in a layout 3 file, some of them sent (with their sequence) and read.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "UPDATE notifications SET sent = 1, nseq = position WHERE position % 3 = 0;
         UPDATE notifications SET read = 1 WHERE position % 5 = 0;
         ALTER TABLE notifications RENAME TO v4;
         DROP INDEX notifications_user; DROP INDEX notifications_unsent; DROP INDEX notifications_from;
         {LAYOUT_3}
         INSERT INTO notifications SELECT * FROM v4; DROP TABLE v4;
         PRAGMA user_version = 3;"
    ))
    .unwrap();
    drop(conn);
    let before = dump(&path);
    let sent = before["notifications"].iter().filter(|r| r[11] == "1").count();
    let n = before["notifications"].len();
    assert!(n > 100 && sent > 10 && sent < n, "{sent} of {n} sent");

    let notifier = Notifier::open(&path).unwrap();
    assert!(
        notifier.file().last_rebuild().is_none(),
        "migrated, not rebuilt: {:?}",
        notifier.file().last_rebuild()
    );
    assert_eq!(notifier.position(), head);
    drop(notifier);
    assert_eq!(dump(&path), before, "every row as it was");

    let conn = Connection::open(&path).unwrap();
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 4);
    let table: String = conn
        .query_row("SELECT sql FROM sqlite_master WHERE name = 'notifications'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(table.contains("PRIMARY KEY (position, user_id)"), "{table}");
    let sender = plan(
        &conn,
        "SELECT * FROM notifications WHERE sent = 0 ORDER BY position, user_id LIMIT 500",
    );
    assert!(
        sender.contains("notifications_unsent") && !sender.contains("TEMP B-TREE"),
        "{sender}"
    );
    let inbox = plan(
        &conn,
        "SELECT * FROM notifications WHERE user_id = 'u1' AND position > 0 ORDER BY position",
    );
    assert!(inbox.contains("notifications_user"), "{inbox}");
}
