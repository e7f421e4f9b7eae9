//! The event log as its users see it: append batches, read back, dedupe, verify.

use chrono::Utc;
use invitebus_eventlog::{verify, AppendCommand, EventLog, LogError, LogReader, NewEvent, Options, VerifyError};
use serde_json::json;

fn event(stream: &str, version: u64) -> NewEvent {
    NewEvent {
        stream_id: format!("invite-{stream}"),
        stream_type: "invite",
        version,
        event_type: "InviteRead",
        schema: 1,
        data: json!({"invite_id": stream, "n": version}).to_string(),
    }
}

fn command(id: Option<&str>, events: Vec<NewEvent>) -> AppendCommand {
    AppendCommand {
        actor: "fang".into(),
        command_id: id.map(String::from),
        correlation_id: None,
        causation_id: None,
        events,
        reply_data: json!({"ok": id}),
    }
}

fn open() -> (tempfile::TempDir, EventLog) {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path().join("events.db"), &Options::default()).unwrap();
    (dir, log)
}

#[test]
fn a_batch_gets_gapless_positions_and_each_command_its_last_one() {
    let (_dir, mut log) = open();
    let batch = vec![
        command(Some("a"), vec![event("1", 1), event("1", 2)]),
        command(None, vec![]),
        command(Some("b"), vec![event("2", 1)]),
    ];
    let positions = log.append(&batch, Utc::now()).unwrap();
    assert_eq!(positions, vec![Some(2), None, Some(3)]);
    assert_eq!(log.head(), 3);
    let reader = log.reader().unwrap();
    let all = reader.read_from(0, 10).unwrap();
    assert_eq!(all.iter().map(|e| e.position).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(reader.read_stream("invite-1", None).unwrap().len(), 2);
    assert_eq!(reader.read_stream("invite-1", Some(1)).unwrap().len(), 1);
    assert_eq!(all[1].prev_hash, all[0].hash, "each event chains to the one before");
}

#[test]
fn a_taken_stream_version_fails_the_whole_batch() {
    let (_dir, mut log) = open();
    log.append(&[command(None, vec![event("1", 1)])], Utc::now()).unwrap();
    let err = log
        .append(
            &[
                command(Some("x"), vec![event("2", 1)]),
                command(None, vec![event("1", 1)]),
            ],
            Utc::now(),
        )
        .unwrap_err();
    assert!(matches!(err, LogError::Conflict { version: 1, .. }), "{err}");
    assert_eq!(log.head(), 1, "nothing of the failed batch is stored");
    assert!(log.lookup_command("x").unwrap().is_none());
    // The writer goes on from where it was.
    assert_eq!(
        log.append(&[command(None, vec![event("1", 2)])], Utc::now()).unwrap(),
        vec![Some(2)]
    );
}

#[test]
fn a_command_id_remembers_its_reply_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let mut log = EventLog::open(&path, &Options::default()).unwrap();
    log.append(&[command(Some("once"), vec![event("1", 1)])], Utc::now())
        .unwrap();
    drop(log);
    let log = EventLog::open(&path, &Options::default()).unwrap();
    assert_eq!(log.head(), 1);
    let stored = log.lookup_command("once").unwrap().unwrap();
    assert_eq!(stored.position, Some(1));
    assert_eq!(stored.data, json!({"ok": "once"}));
}

#[test]
fn verify_passes_untouched_and_names_the_altered_position() {
    let (dir, mut log) = open();
    for v in 1..=5 {
        log.append(&[command(None, vec![event("1", v)])], Utc::now()).unwrap();
    }
    let reader = LogReader::open(dir.path().join("events.db")).unwrap();
    assert_eq!(verify(&reader).unwrap().events, 5);

    reader
        .connection()
        .execute(
            "UPDATE events SET data = '{\"invite_id\":\"1\",\"n\":99}' WHERE position = 3",
            [],
        )
        .unwrap();
    match verify(&reader) {
        Err(VerifyError::Altered { position, .. }) => assert_eq!(position, 3),
        other => panic!("expected an alteration at 3, got {other:?}"),
    }
}

#[test]
fn verify_notices_a_deleted_event() {
    let (dir, mut log) = open();
    for v in 1..=3 {
        log.append(&[command(None, vec![event("1", v)])], Utc::now()).unwrap();
    }
    let reader = LogReader::open(dir.path().join("events.db")).unwrap();
    reader
        .connection()
        .execute("DELETE FROM events WHERE position = 2", [])
        .unwrap();
    assert!(matches!(verify(&reader), Err(VerifyError::Altered { position: 2, .. })));
}
