//! A bulk rebuild of the scheduler equals the file the live path writes, row for row.

use invitebus_feed::bulk::{self, ReadSettings};
use invitebus_feed::Projection;
use invitebus_scheduler::timers::Timers;
use invitebus_testkit::history::{apply_live, dump, mixed, write_log};

#[test]
fn a_bulk_rebuild_equals_the_live_file_row_for_row() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.db");
    let head = write_log(&log, mixed(100_000), true).unwrap();
    let mut live = Timers::open(&dir.path().join("live.db")).unwrap();
    assert_eq!(apply_live(&mut live, &log, 500), head);
    let mut rebuilt = Timers::open(&dir.path().join("scheduler.db")).unwrap();
    let settings = ReadSettings {
        chunk: 1000,
        workers: 2,
    };
    bulk::load(&mut rebuilt, &log, head, &settings, |_| Ok(())).unwrap();
    assert_eq!(rebuilt.position(), head);
    let (a, b) = (
        dump(&dir.path().join("live.db")),
        dump(&dir.path().join("scheduler.db")),
    );
    assert!(a["timers"].len() > 20_000, "{} timers", a["timers"].len());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (table, rows) in &a {
        assert!(rows == &b[table], "table {table} differs");
    }
}
