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
        command_type: "MarkInviteRead",
        command_digest: "d".into(),
        command_id: id.map(String::from),
        correlation_id: None,
        traceparent: None,
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
    assert!(log
        .reader()
        .unwrap()
        .lookup_command("fang", "MarkInviteRead", "x")
        .unwrap()
        .is_none());
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
    let reader = log.reader().unwrap();
    let stored = reader
        .lookup_command("fang", "MarkInviteRead", "once")
        .unwrap()
        .unwrap();
    assert_eq!(stored.position, Some(1));
    assert_eq!(stored.data, json!({"ok": "once"}));
    assert_eq!(stored.digest.as_deref(), Some("d"));
    assert!(
        reader
            .lookup_command("eve", "MarkInviteRead", "once")
            .unwrap()
            .is_none(),
        "another actor's command with the same id is another command"
    );
    assert!(
        reader.lookup_command("fang", "UpsertUser", "once").unwrap().is_none(),
        "another command type with the same id is another command"
    );
    let events = reader.read_from(0, 10).unwrap();
    assert_eq!(events[0].command_type.as_deref(), Some("MarkInviteRead"));
    assert_eq!(events[0].command_digest.as_deref(), Some("d"));
    assert!(events[0].hash_is_valid());
}

#[test]
fn a_log_of_the_earlier_shape_keeps_its_replies_scoped_to_their_actor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    // The tables as an earlier version wrote them: replies keyed by command_id alone.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE streams (stream_key INTEGER PRIMARY KEY, stream_id TEXT NOT NULL UNIQUE, stream_type TEXT NOT NULL);
         CREATE TABLE events (position INTEGER PRIMARY KEY, stream_key INTEGER NOT NULL, version INTEGER NOT NULL,
           type TEXT NOT NULL, schema INTEGER NOT NULL, recorded_at TEXT NOT NULL, actor TEXT NOT NULL, command_id TEXT,
           correlation_id TEXT, causation_id TEXT, data TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,
           UNIQUE (stream_key, version));
         CREATE TABLE commands (command_id TEXT PRIMARY KEY, position INTEGER, data TEXT NOT NULL) WITHOUT ROWID;
         CREATE TABLE checkpoints (name TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID;
         INSERT INTO streams VALUES (1, 'invite-1', 'invite');
         INSERT INTO events VALUES (1, 1, 1, 'InviteRead', 1, '2026-11-21T23:00:00.123Z', 'xuan', 'old-1', NULL, NULL,
           '{}', '0000000000000000000000000000000000000000000000000000000000000000', 'aa');
         INSERT INTO commands VALUES ('old-1', 1, '{\"invite_id\":\"1\"}');
         INSERT INTO commands VALUES ('old-2', NULL, '{}');",
    )
    .unwrap();
    drop(conn);
    // A reader cannot bring it up to date (it only reads) and says so, naming what to run.
    match invitebus_eventlog::LogReader::open(&path) {
        Err(invitebus_eventlog::LogError::Outdated { column, .. }) => assert_eq!(column, "command_type"),
        other => panic!("expected Outdated, got {:?}", other.map(|_| ())),
    }
    let mut log = EventLog::open(&path, &Options::default()).unwrap();
    let reader = log.reader().unwrap();
    let old = reader.lookup_command("xuan", "CreateInvite", "old-1").unwrap().unwrap();
    assert_eq!((old.position, old.command_type, old.digest), (Some(1), None, None));
    assert!(reader.lookup_command("eve", "CreateInvite", "old-1").unwrap().is_none());
    let first = reader.read_from(0, 1).unwrap();
    assert_eq!(first[0].command_type, None, "old events have no command type");
    // The migrated file takes new appends.
    log.append(&[command(Some("new"), vec![event("2", 1)])], Utc::now())
        .unwrap();
    assert!(reader
        .lookup_command("fang", "MarkInviteRead", "new")
        .unwrap()
        .is_some());
}

#[test]
fn verify_passes_untouched_and_names_the_altered_position() {
    let (dir, mut log) = open();
    for v in 1..=5 {
        log.append(&[command(None, vec![event("1", v)])], Utc::now()).unwrap();
    }
    let reader = LogReader::open(dir.path().join("events.db")).unwrap();
    assert_eq!(verify(&reader).unwrap().events, 5);

    // Tampering takes a connection of its own: a reader cannot write.
    rusqlite::Connection::open(dir.path().join("events.db"))
        .unwrap()
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
    rusqlite::Connection::open(dir.path().join("events.db"))
        .unwrap()
        .execute("DELETE FROM events WHERE position = 2", [])
        .unwrap();
    assert!(matches!(verify(&reader), Err(VerifyError::Altered { position: 2, .. })));
}
