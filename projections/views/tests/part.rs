//! One resource's views as of a position, read from its own streams only: equal to the live
//! views at that position restricted to the resource, whether its streams are found in a
//! catalogue ahead of the position, one behind it, or by scanning the log.

use invitebus_eventlog::LogReader;
use invitebus_events::Id;
use invitebus_testkit::history::{apply_live, mixed, write_log};
use invitebus_views::{part, snapshot::of_resource, Views};
use rusqlite::Connection;

#[test]
fn a_resource_as_of_a_position_equals_the_live_views_then_restricted_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.db");
    let head = write_log(&log, mixed(30_000), true).unwrap();
    let until = head / 2 + 11;
    let reader = LogReader::open(&log).unwrap();
    // The live views at `until`, and a catalogue behind it (at a quarter).
    let first = reader.read_from(0, until as usize).unwrap();
    let (live_path, behind_path) = (dir.path().join("live.db"), dir.path().join("behind.db"));
    let mut live = Views::open(&live_path).unwrap();
    let mut behind = Views::open(&behind_path).unwrap();
    for chunk in first.chunks(500) {
        live.apply_batch(chunk).unwrap();
    }
    behind.apply_batch(&first[..first.len() / 2]).unwrap();
    let resources = ["res0", "res3", "res17", "res42"];
    let then: Vec<_> = resources.iter().map(|r| of_resource(&live_path, r).unwrap()).collect();
    // The live views go on to the head: as a catalogue, ahead of `until`.
    apply_live(&mut live, &log, 500);
    let ahead = Connection::open(&live_path).unwrap();
    let behind = Connection::open(&behind_path).unwrap();
    for (resource, then) in resources.iter().zip(&then) {
        assert!(
            then["records"].as_array().unwrap().len() > 10 && !then["users"].as_array().unwrap().is_empty(),
            "{resource} has a history by then: {then}"
        );
        let id = Id::parse(*resource).unwrap();
        for (name, catalogue) in [
            ("no catalogue", None),
            ("ahead", Some(&ahead)),
            ("behind", Some(&behind)),
        ] {
            let path = dir.path().join(format!("{resource}-{}.db", name.replace(' ', "-")));
            let mut views = Views::open(&path).unwrap();
            let read = part::load(&mut views, &reader, catalogue, &id, until, None).unwrap();
            assert!(read < until / 10, "{resource} ({name}): {read} of {until} events read");
            assert_eq!(&of_resource(&path, resource).unwrap(), then, "{resource}, {name}");
        }
    }
}
