//! A look-up the notifier's texts need (a name, an invite's push info) that fails makes the
//! batch fail, with nothing of it stored; it never turns into a text with the id for a name.

use invitebus_eventlog::LogReader;
use invitebus_feed::Projection;
use invitebus_notifier::Notifier;
use invitebus_testkit::history::{mixed, write_log};

#[test]
fn a_failed_look_up_fails_the_batch_instead_of_writing_a_wrong_text() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.db");
    let head = write_log(&log, mixed(400), true).unwrap();
    let events = LogReader::open(&log).unwrap().read_from(0, head as usize).unwrap();
    let path = dir.path().join("notifier.db");
    let mut notifier = Notifier::open(&path).unwrap();
    let (first, rest) = events.split_at(events.len() / 2);
    notifier.apply_batch(first).unwrap();
    let at = notifier.position();
    // The names are gone (a damaged or tampered file): the texts cannot be written.
    let side = rusqlite::Connection::open(&path).unwrap();
    side.execute_batch("DROP TABLE names;").unwrap();
    let failed = notifier.apply_batch(rest);
    assert!(
        failed.as_ref().is_err_and(|e| e.to_string().contains("names")),
        "{failed:?}"
    );
    assert_eq!(notifier.position(), at, "nothing of the batch was stored");
    // Once the table is back, the same batch goes through.
    side.execute_batch("CREATE TABLE names (user_id TEXT PRIMARY KEY, name TEXT NOT NULL) WITHOUT ROWID;")
        .unwrap();
    notifier.apply_batch(rest).unwrap();
    assert_eq!(notifier.position(), head);
}
