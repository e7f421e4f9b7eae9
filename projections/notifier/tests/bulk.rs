//! A bulk rebuild of the notifier equals the file the live path writes, row for row: with what
//! it remembers held in memory, and with that memory written at once (budget 0) and looked up
//! in SQL for the rest of the load.

use invitebus_notifier::Notifier;
use invitebus_testkit::history::assert_bulk_equals_live;

/// The `read` column of the notifications table (see its CREATE).
const READ: usize = 10;

#[test]
fn a_bulk_rebuild_equals_the_live_file_row_for_row() {
    let dir = tempfile::tempdir().unwrap();
    let rows = assert_bulk_equals_live(dir.path(), 100_000, |p| Notifier::open(p).unwrap());
    let n = rows["notifications"].len();
    assert!(n > 20_000, "{n} notifications");
    // The history reads invites: the load's deferred reads were applied (and compared).
    let read = rows["notifications"].iter().filter(|r| r[READ] == "1").count();
    assert!(read > 100 && read < n, "{read} of {n} read");
}

#[test]
fn a_bulk_rebuild_past_its_memory_budget_equals_the_live_file_too() {
    let dir = tempfile::tempdir().unwrap();
    let rows = assert_bulk_equals_live(dir.path(), 20_000, |p| Notifier::open(p).unwrap().with_load_budget(0));
    assert!(rows["names"].len() > 10, "{} names", rows["names"].len());
}
