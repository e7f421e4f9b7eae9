//! A bulk rebuild of the scheduler equals the file the live path writes, row for row.

use invitebus_scheduler::timers::Timers;
use invitebus_testkit::history::assert_bulk_equals_live;

#[test]
fn a_bulk_rebuild_equals_the_live_file_row_for_row() {
    let dir = tempfile::tempdir().unwrap();
    let rows = assert_bulk_equals_live(dir.path(), 100_000, |p| Timers::open(p).unwrap());
    assert!(rows["timers"].len() > 20_000, "{} timers", rows["timers"].len());
}
