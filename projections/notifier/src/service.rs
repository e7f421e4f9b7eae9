//! The notifier role on NATS: follows the events into the inbox, sends what is unsent (the
//! outbox pattern: a notification is marked sent only after JetStream acknowledged it, and its
//! id is its `Nats-Msg-Id`, so a crash in between never sends it twice), answers `inbox`.

use crate::store::{connect, from_row, Notifier, NotifierError, COLUMNS, NAME};
use crate::texts::Notification;
use async_nats::jetstream::{self, message::PublishMessage, stream};
use async_nats::Client;
use invitebus_events::command::{check_body, decode_fields};
use invitebus_events::subject::{Subjects, NOTIFY_STREAM};
use invitebus_events::{ErrorCode, Id, ProtocolError};
use rusqlite::{params, Connection};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

/// How the notifier role runs.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    pub path: PathBuf,
    pub subjects: Subjects,
    pub queue_group: String,
}

impl NotifierConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        NotifierConfig {
            path: path.into(),
            subjects: Subjects::from_env(),
            queue_group: "invitebus-notifier".into(),
        }
    }
}

pub struct NotifierService {
    run: invitebus_feed::Running,
}

/// Creates `INVITES_NOTIFY` (file storage) when missing.
pub async fn ensure_notify_stream(
    js: &jetstream::Context,
    subjects: &Subjects,
) -> Result<stream::Stream, NotifierError> {
    js.get_or_create_stream(stream::Config {
        name: NOTIFY_STREAM.to_string(),
        // One token after `notify`: `invites.notify.<user_id>.live` (live-only notifications) is not kept.
        subjects: vec![format!("{}.notify.*", subjects.prefix())],
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        num_replicas: invitebus_events::subject::stream_replicas(),
        ..Default::default()
    })
    .await
    .map_err(|e| NotifierError::Nats(e.to_string()))
}

impl NotifierService {
    pub async fn start(client: Client, config: NotifierConfig) -> Result<NotifierService, NotifierError> {
        let js = jetstream::new(client.clone());
        ensure_notify_stream(&js, &config.subjects).await?;
        let mut run = invitebus_feed::Running::start(&client, &config.subjects, NAME, Notifier::open(&config.path)?);
        let sender = Sender {
            conn: Mutex::new(connect(&config.path)?),
            js,
            client: client.clone(),
            subjects: config.subjects.clone(),
        };
        run.spawn(move |applied, shutdown| sender.run(applied, shutdown));
        let sub = client
            .queue_subscribe(config.subjects.query("inbox"), config.queue_group.clone())
            .await
            .map_err(|e| NotifierError::Nats(e.to_string()))?;
        let reader = Arc::new(Mutex::new(connect(&config.path)?));
        let handler = |conn: &Connection, body: &[u8]| {
            check_body(body)?;
            inbox(conn, &decode_fields::<InboxRequest>(body)?)
        };
        run.spawn(move |applied, shutdown| {
            invitebus_feed::answer_queries(client, sub, reader, applied, shutdown, handler)
        });
        info!(path = %config.path.display(), "notifier ready");
        Ok(NotifierService { run })
    }

    pub fn applied(&self) -> watch::Receiver<u64> {
        self.run.applied()
    }

    pub async fn shutdown(self) {
        self.run.shutdown().await;
    }
}

/// Sends unsent notifications in position order.
struct Sender {
    conn: Mutex<Connection>,
    js: jetstream::Context,
    client: Client,
    subjects: Subjects,
}

impl Sender {
    async fn run(self, mut applied: watch::Receiver<u64>, mut shutdown: watch::Receiver<bool>) {
        loop {
            match self.send_some().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => warn!(error = %e, "sending notifications failed; retrying"),
            }
            tokio::select! {
                _ = applied.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Sends up to 500 unsent notifications; returns how many.
    async fn send_some(&self) -> Result<usize, NotifierError> {
        let batch: Vec<Notification> = self
            .conn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM notifications WHERE sent = 0 ORDER BY position, id LIMIT 500"
            ))?
            .query_map([], |r| from_row(r).map(|(n, _)| n))?
            .collect::<Result<_, _>>()?;
        let mut acks = Vec::with_capacity(batch.len());
        for n in &batch {
            let body = serde_json::to_vec(n).expect("notifications serialize");
            if n.sms {
                let _ = self
                    .client
                    .publish(self.subjects.sms(&n.user_id), body.clone().into())
                    .await;
            }
            if n.push.is_some() && matches!(n.kind.as_str(), "invite_received" | "invite_resent") {
                let _ = self
                    .client
                    .publish(self.subjects.push(&n.user_id), body.clone().into())
                    .await;
            }
            if n.live_only {
                let subject = format!("{}.live", self.subjects.notify(&n.user_id));
                let _ = self.client.publish(subject, body.into()).await;
                continue;
            }
            let msg = PublishMessage::build().payload(body.into()).message_id(n.id.clone());
            let ack = self
                .js
                .send_publish(self.subjects.notify(&n.user_id), msg)
                .await
                .map_err(|e| NotifierError::Nats(e.to_string()))?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await.map_err(|e| NotifierError::Nats(e.to_string()))?;
        }
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut mark = conn.prepare_cached("UPDATE notifications SET sent = 1 WHERE id = ?1")?;
        for n in &batch {
            mark.execute(params![n.id])?;
        }
        Ok(batch.len())
    }
}

/// The `inbox` request (its `min_position` is read by `answer_queries`).
#[derive(Debug, Deserialize)]
struct InboxRequest {
    actor: Option<Id>,
    #[serde(default)]
    unread_only: bool,
    /// Only notifications after this position.
    #[serde(default)]
    after: Option<u64>,
    #[serde(default)]
    per_page: Option<u32>,
}

/// `inbox`: the actor's notifications, oldest first.
fn inbox(conn: &Connection, q: &InboxRequest) -> Result<Value, ProtocolError> {
    let actor = q
        .actor
        .as_ref()
        .ok_or_else(|| ProtocolError::with_field(ErrorCode::Unauthenticated, "actor", "no actor"))?;
    let limit = q.per_page.unwrap_or(100).clamp(1, 500);
    let db = |e: rusqlite::Error| ProtocolError::unavailable(format!("reading the inbox: {e}"));
    let rows: Vec<(Notification, bool)> = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE user_id = ?1 AND position > ?2 AND (?3 = 0 OR read = 0) \
             ORDER BY position, id LIMIT ?4"
        ))
        .map_err(db)?
        .query_map(
            params![actor.as_str(), q.after.unwrap_or(0) as i64, q.unread_only, limit],
            from_row,
        )
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|(n, read)| {
            let mut v = serde_json::to_value(n).expect("notifications serialize");
            v["read"] = json!(read);
            v
        })
        .collect();
    Ok(json!({"items": items, "total": items.len()}))
}
