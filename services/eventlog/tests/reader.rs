//! A reader only reads: its connection refuses writes, it never creates a file, and it works
//! beside the writer (WAL) and after the writer has closed the file.

use chrono::Utc;
use invitebus_eventlog::{AppendCommand, EventLog, LogError, LogReader, NewEvent, Options, RELAY_CHECKPOINT};
use serde_json::json;

fn command(n: u64) -> AppendCommand {
    AppendCommand {
        actor: "fang".into(),
        command_type: "MarkInviteRead",
        command_digest: "d".into(),
        command_id: Some(format!("c{n}")),
        correlation_id: None,
        traceparent: None,
        causation_id: None,
        events: vec![NewEvent {
            stream_id: format!("invite-i{n}"),
            stream_type: "invite",
            version: 1,
            event_type: "InviteRead",
            schema: 1,
            data: json!({"invite_id": format!("i{n}")}).to_string(),
        }],
        reply_data: json!({}),
    }
}

fn is_read_only(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ReadOnly)
}

#[test]
fn a_reader_cannot_write_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let mut log = EventLog::open(&path, &Options::default()).unwrap();
    log.append(&[command(1)], Utc::now()).unwrap();
    let reader = LogReader::open(&path).unwrap();
    let conn = reader.connection();

    let attempts = [
        "UPDATE events SET data = '{}' WHERE position = 1",
        "DELETE FROM events",
        "INSERT INTO checkpoints (name, position) VALUES ('relay', 1)",
        "CREATE TABLE IF NOT EXISTS other (x INTEGER)",
    ];
    for sql in attempts {
        let e = conn.execute(sql, []).expect_err(sql);
        assert!(is_read_only(&e), "{sql}: expected a read-only error, got {e:?}");
    }
    // Nor can it take the file out of WAL mode.
    let _ = conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get::<_, String>(0));
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");

    // The log is untouched, and the writer still writes beside the reader.
    assert_eq!(reader.read_from(0, 10).unwrap().len(), 1);
    assert_eq!(reader.checkpoint(RELAY_CHECKPOINT).unwrap(), 0);
    log.append_batch(&[command(2)], Utc::now(), Some((RELAY_CHECKPOINT, 1)))
        .unwrap();
    assert_eq!(reader.head().unwrap(), 2, "the reader sees the writer's commits (WAL)");
    assert_eq!(
        reader.checkpoint(RELAY_CHECKPOINT).unwrap(),
        1,
        "only the writer stores checkpoints"
    );
}

#[test]
fn a_reader_on_a_missing_file_is_an_error_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    match LogReader::open(&path) {
        Err(LogError::Missing(p)) => assert_eq!(p, path),
        Err(e) => panic!("expected Missing, got {e}"),
        Ok(_) => panic!("a reader opened a missing log"),
    }
    assert!(!path.exists(), "a reader created the file");
    let message = LogReader::open(&path).err().unwrap().to_string();
    assert!(
        message.contains("no event log at") && message.contains("events.db"),
        "{message}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing created beside it"
    );
}

#[test]
fn a_reader_opens_a_wal_log_the_writer_has_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    {
        let mut log = EventLog::open(&path, &Options::default()).unwrap();
        log.append(&[command(1)], Utc::now()).unwrap();
        log.append(&[command(2)], Utc::now()).unwrap();
    }
    let reader = LogReader::open(&path).unwrap();
    assert_eq!(reader.head().unwrap(), 2);
    assert_eq!(reader.read_stream("invite-i2", None).unwrap().len(), 1);
    let e = reader.connection().execute("DELETE FROM events", []).unwrap_err();
    assert!(is_read_only(&e), "{e:?}");
}

/// The relay cuts rounds only after a command's last event: the writer marks it in what it hands
/// over, and a read from the log finds it from the next event (another command, or none).
#[test]
fn published_events_say_which_one_ends_its_command() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let mut log = EventLog::open(&path, &Options::default()).unwrap();
    let mut two = command(1);
    let mut second = two.events[0].clone();
    second.stream_id = "invite-i1b".into();
    two.events.push(second);
    let appended = log
        .append_batch(&[two, command(2), command(3)], Utc::now(), None)
        .unwrap();
    let from_writer: Vec<bool> = appended.published.iter().map(|e| e.ends_command).collect();
    assert_eq!(from_writer, [false, true, true, true]);
    let reader = LogReader::open(&path).unwrap();
    let from_log: Vec<bool> = reader
        .read_published(0, 10)
        .unwrap()
        .iter()
        .map(|e| e.ends_command)
        .collect();
    assert_eq!(
        from_log, from_writer,
        "the same commands in one batch, told apart by their ids"
    );
    // A page that ends inside a command says so (the next event is read to know).
    let page: Vec<bool> = reader
        .read_published(0, 1)
        .unwrap()
        .iter()
        .map(|e| e.ends_command)
        .collect();
    assert_eq!(page, [false]);
    let replies: Vec<bool> = appended.published.iter().map(|e| e.reply.is_some()).collect();
    assert_eq!(
        replies,
        [false, true, true, true],
        "a command's reply rides on its last event"
    );
}
