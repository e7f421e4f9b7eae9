//! Replays: views rebuilt from position 0 equal the live ones, and a views role stopped in the
//! middle of the stream resumes with no row missing and none twice.

mod support;

use futures::StreamExt;
use invitebus_events::Envelope;
use invitebus_views::snapshot::snapshot;
use invitebus_views::Views;
use serde_json::json;
use support::{conference, Stack};

async fn traffic(s: &Stack, from: usize, to: usize) {
    for i in from..to {
        let id = format!("t{i}");
        s.ok(
            "CreateInvite",
            json!({"actor":"xuan","resource_id":"conf","invitees":[format!("u{i}"), "fang"],"invite_id":id}),
        )
        .await;
        match i % 4 {
            0 => drop(
                s.ok("AcceptInvite", json!({"actor":"fang","invite_id":id,"auto_join":false}))
                    .await,
            ),
            1 => drop(
                s.ok("RejectInvite", json!({"actor":format!("u{i}"),"invite_id":id}))
                    .await,
            ),
            2 => drop(s.ok("CancelInvite", json!({"actor":"xuan","invite_id":id})).await),
            _ => drop(s.ok("MarkInviteRead", json!({"actor":"fang","invite_id":id})).await),
        }
    }
}

/// Every event from JetStream, from position 1, applied to a fresh view file in small batches.
async fn rebuild(s: &Stack, head: u64, path: &std::path::Path) {
    let js = async_nats::jetstream::new(s.client.clone());
    let stream = js.get_stream("INVITES_EVENTS").await.unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut views = Some(Views::open(path).unwrap());
    let mut batch = Vec::new();
    while let Some(m) = messages.next().await {
        let env: Envelope = serde_json::from_slice(&m.unwrap().payload).unwrap();
        let done = env.position == head;
        batch.push(env);
        if batch.len() == 7 || done {
            // With the keys the live role opens personal fields with (off the runtime: a key
            // may be fetched).
            let (mut v, b, keys) = (views.take().unwrap(), std::mem::take(&mut batch), s.keys.clone());
            views = Some(
                tokio::task::spawn_blocking(move || {
                    invitebus_feed::apply_revealed(&mut v, &b, Some(&keys)).unwrap();
                    // Applying the same events again changes nothing.
                    invitebus_feed::apply_revealed(&mut v, &b, Some(&keys)).unwrap();
                    v
                })
                .await
                .unwrap(),
            );
        }
        if done {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_from_zero_equals_the_live_views_row_for_row() {
    let s = Stack::start().await;
    conference(&s).await;
    traffic(&s, 0, 30).await;
    let head = s.head();
    s.views_at(head).await;
    let dir = tempfile::tempdir().unwrap();
    let replayed = dir.path().join("replayed.db");
    rebuild(&s, head, &replayed).await;
    let live = snapshot(&s.views_path()).unwrap();
    let again = snapshot(&replayed).unwrap();
    assert_eq!(live["records"].as_array().unwrap().len(), 60);
    assert_eq!(live, again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_views_role_stopped_mid_stream_resumes_without_gaps_or_duplicates() {
    let mut s = Stack::start().await;
    conference(&s).await;
    traffic(&s, 0, 10).await;
    s.views_at(s.head()).await;
    s.stop_views().await;
    traffic(&s, 10, 25).await;
    s.start_views().await;
    traffic(&s, 25, 30).await;
    let head = s.head();
    s.views_at(head).await;

    let dir = tempfile::tempdir().unwrap();
    let replayed = dir.path().join("replayed.db");
    rebuild(&s, head, &replayed).await;
    assert_eq!(snapshot(&s.views_path()).unwrap(), snapshot(&replayed).unwrap());
    let total = s.q("received", json!({"actor":"fang","per_page":100})).await["total"].clone();
    assert_eq!(total, 30, "every invite to fang once");
}
