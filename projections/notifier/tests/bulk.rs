//! A bulk rebuild of the notifier equals the file the live path writes, row for row.

use invitebus_notifier::Notifier;
use invitebus_testkit::history::assert_bulk_equals_live;

#[test]
fn a_bulk_rebuild_equals_the_live_file_row_for_row() {
    let dir = tempfile::tempdir().unwrap();
    let rows = assert_bulk_equals_live(dir.path(), 100_000, |p| Notifier::open(p).unwrap());
    let n = rows["notifications"].len();
    assert!(n > 20_000, "{n} notifications");
}
