//! Bulk loads of the views from the local log: equal to the live path row for row, harmless
//! when stopped half way, as of a position, and a live role far behind that catches up in bulk.

use invitebus_feed::bulk::{self, LocalLog, ReadSettings};
use invitebus_feed::Projection;
use invitebus_testkit::history::{apply_live, assert_bulk_equals_live, dump, mixed, write_log};
use invitebus_testkit::Bus;
use invitebus_views::{snapshot::snapshot, ViewService, Views, ViewsConfig};
use serde_json::json;
use std::time::Duration;

/// Small chunks and two decoders, so that the tests cross many chunk boundaries.
fn settings() -> ReadSettings {
    ReadSettings {
        chunk: 1000,
        workers: 2,
        keys: None,
    }
}

#[test]
fn a_bulk_rebuild_equals_the_live_file_row_for_row() {
    let dir = tempfile::tempdir().unwrap();
    let rows = assert_bulk_equals_live(dir.path(), 100_000, |p| Views::open(p).unwrap());
    assert!(
        rows["records"].len() > 30_000,
        "a real history: {} records",
        rows["records"].len()
    );
}

#[test]
fn a_fold_past_its_memory_budget_writes_what_it_has_and_goes_on_event_by_event() {
    let dir = tempfile::tempdir().unwrap();
    // 2 MB of rows is a few thousand records: the load spills early, then goes on in SQL.
    let rows = assert_bulk_equals_live(dir.path(), 60_000, |p| {
        Views::open(p).unwrap().with_fold_budget(2 << 20)
    });
    assert!(rows["records"].len() > 15_000, "{} records", rows["records"].len());
}

#[test]
fn a_rebuild_stopped_half_way_leaves_the_live_file_serving() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.db");
    let head = write_log(&log, mixed(20_000), true).unwrap();
    let path = dir.path().join("views.db");
    let mut views = Views::open(&path).unwrap();
    apply_live(&mut views, &log, 500);
    let before = dump(&path);
    let reader = views.file().reader().unwrap();
    let count = || -> usize {
        let mut reader = reader.lock().unwrap();
        let n: i64 = reader
            .conn()
            .unwrap()
            .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
            .unwrap();
        n as usize
    };
    assert_eq!(count(), before["records"].len());
    // A rebuild of the served file (as `replay` does) is stopped half way; a killed one left
    // its loading file behind before that.
    std::fs::write(views.store().loading_path(), b"left by a killed load").unwrap();
    views.begin_load().unwrap();
    let stopped = bulk::load(&mut views, &log, head, &settings(), |p| match p > head / 2 {
        true => Err("killed".into()),
        false => Ok(()),
    });
    assert!(stopped.as_ref().is_err_and(|e| e.ends_with("killed")), "{stopped:?}");
    assert_eq!(views.position(), head, "the live position is as it was");
    assert!(
        !views.store().loading_path().exists(),
        "the half-loaded file is dropped"
    );
    assert_eq!(dump(&path), before, "the served file is untouched");
    assert_eq!(count(), before["records"].len(), "and answers");
    // Done to the end, the rebuilt file is swapped in under the open reader.
    views.begin_load().unwrap();
    bulk::load(&mut views, &log, head, &settings(), |_| Ok(())).unwrap();
    assert!(views.store().loading(), "the caller's load waits for its finish");
    assert!(views.store().loading_path().exists(), "not swapped in yet");
    views.finish_load().unwrap();
    assert_eq!(views.position(), head);
    assert_eq!(dump(&path), before);
    assert_eq!(count(), before["records"].len(), "the reader follows the swap");
}

#[test]
fn as_of_a_position_equals_the_live_views_then() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.db");
    let head = write_log(&log, mixed(30_000), true).unwrap();
    let until = head / 2 + 7;
    // The live views as they were at `until`, taken while following.
    let reader = invitebus_eventlog::LogReader::open(&log).unwrap();
    let first: Vec<_> = reader.read_from(0, until as usize).unwrap();
    let mut live = Views::open(dir.path().join("live.db")).unwrap();
    for chunk in first.chunks(500) {
        live.apply_batch(chunk).unwrap();
    }
    let then = snapshot(&dir.path().join("live.db")).unwrap();
    apply_live(&mut live, &log, 500);
    assert_ne!(
        snapshot(&dir.path().join("live.db")).unwrap(),
        then,
        "the views moved on"
    );
    let mut as_of = Views::open(dir.path().join("as_of.db")).unwrap();
    bulk::load(&mut as_of, &log, until, &settings(), |_| Ok(())).unwrap();
    assert_eq!(as_of.position(), until);
    assert_eq!(snapshot(&dir.path().join("as_of.db")).unwrap(), then);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_role_far_behind_catches_up_in_bulk_then_follows() {
    let bus = Bus::start_with(|c| {
        write_log(&c.writer.log_path, mixed(150_000), false).unwrap();
    })
    .await;
    let log = bus.path("events.db");
    let head = invitebus_eventlog::LogReader::open(&log).unwrap().head().unwrap();
    // The relay publishes the history; a command after it stores the relay's position in the
    // log (it rides along with the writer's batches); the views start once JetStream holds all.
    let relayed = |want: u64| {
        let bus = &bus;
        async move {
            loop {
                let health = bus.request(bus.subjects.health(), &json!({})).await;
                let at = health.data.as_ref().and_then(|d| d["projections"]["relay"].as_u64());
                if at >= Some(want) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let waited = tokio::time::timeout(Duration::from_secs(120), relayed(head)).await;
    assert!(waited.is_ok(), "the relay published {head} events");
    bus.ok("UpsertUser", json!({"actor":"zed","user_id":"zed","name":"Zed"}))
        .await;
    tokio::time::timeout(Duration::from_secs(20), relayed(head + 1))
        .await
        .unwrap();
    assert!(bulk::acknowledged(&log).unwrap() >= head);
    let mut config = ViewsConfig::new(bus.path("views.db"));
    config.subjects = bus.subjects.clone();
    config.feed.keys = Some(bus.keys.clone());
    config.feed.local_log = Some(LocalLog {
        path: log.clone(),
        min_lag: 100_000,
        read: settings(),
    });
    let acknowledged = bulk::acknowledged(&log).unwrap();
    let views = ViewService::start(bus.client.clone(), config).await.unwrap();
    let mut applied = views.applied();
    // In bulk, the applied position goes from 0 to the acknowledged one at the swap; through
    // the stream it would pass every position between.
    let mut seen = views.applied();
    let watcher = tokio::spawn(async move {
        let mut between = vec![];
        while seen.changed().await.is_ok() {
            let p = *seen.borrow_and_update();
            if p > 0 && p < acknowledged {
                between.push(p);
            }
        }
        between
    });
    let caught = tokio::time::timeout(Duration::from_secs(120), applied.wait_for(|p| *p >= head))
        .await
        .is_ok();
    assert!(caught, "caught up to {head}");
    // Live commands after the bulk part are followed from the stream.
    bus.ok(
        "RegisterResource",
        json!({"actor":"zed","resource_id":"zconf","kind":"conference","name":"Z"}),
    )
    .await;
    let last = bus
        .ok(
            "CreateInvite",
            json!({"actor":"zed","resource_id":"zconf","invitee":"u1","invite_id":"zinv"}),
        )
        .await;
    let last = last.position.flatten().unwrap();
    tokio::time::timeout(Duration::from_secs(20), applied.wait_for(|p| *p >= last))
        .await
        .expect("follows live events")
        .unwrap();
    views.shutdown().await;
    let between = watcher.await.unwrap();
    assert!(
        between.is_empty(),
        "went through the stream: {:?}",
        &between[..between.len().min(5)]
    );
    // No gap, no duplicate: the followed file equals a bulk rebuild of the whole log.
    // Opened with the same keys as the live role's (a bulk load reveals in its decoders, which
    // may fetch a key: off the async runtime).
    let (check_path, keys) = (bus.path("check.db"), bus.keys.clone());
    let log_ = log.clone();
    tokio::task::spawn_blocking(move || {
        let mut check = Views::open(check_path).unwrap();
        let with_keys = ReadSettings {
            keys: Some(keys),
            ..settings()
        };
        bulk::load(&mut check, &log_, last, &with_keys, |_| Ok(())).unwrap();
    })
    .await
    .unwrap();
    let (a, b) = (dump(&bus.path("views.db")), dump(&bus.path("check.db")));
    for (table, rows) in &a {
        assert!(rows == &b[table], "table {table} differs");
    }
    assert!(a["records"].iter().any(|r| r.contains(&"'zinv'".to_string())));
}
