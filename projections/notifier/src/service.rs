//! The notifier role on NATS: follows the events into the inbox, sends what is unsent (the
//! outbox pattern: a notification is marked sent only after JetStream acknowledged it, and its
//! id is its `Nats-Msg-Id`), answers `inbox`.
//!
//! Sending twice is ruled out by `INVITES_NOTIFY` itself, not by its dedupe window: a
//! notification at or below the last one the stream held when the sender started (a rebuilt
//! file, a crash between ack and mark) is sent only if the stream's last notification for its
//! user is older. Notifications go out in (position, id) order, so that comparison is exact.

use crate::store::{from_row, Notifier, NotifierError, COLUMNS, NAME};
use crate::texts::Notification;
use async_nats::jetstream::{self, message::PublishMessage, stream};
use async_nats::Client;
use invitebus_events::command::{check_body, decode_fields};
use invitebus_events::subject::{Subjects, NOTIFY_STREAM};
use invitebus_events::{ErrorCode, Id, ProtocolError};
use invitebus_feed::store::Reader;
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
    /// Whether `inbox` queries must carry a token (`--bus-auth`).
    pub bus_auth: invitebus_auth::BusAuth,
    pub queue_group: String,
    /// The feed's watchdog and consumer settings.
    pub feed: invitebus_feed::FeedSettings,
}

impl NotifierConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        NotifierConfig {
            path: path.into(),
            subjects: Subjects::default(),
            bus_auth: Default::default(),
            queue_group: invitebus_events::subject::NOTIFIER_QUEUE_GROUP.into(),
            feed: invitebus_feed::FeedSettings::default(),
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
        num_replicas: subjects.replicas(),
        ..Default::default()
    })
    .await
    .map_err(|e| NotifierError::Nats(e.into()))
}

impl NotifierService {
    pub async fn start(client: Client, config: NotifierConfig) -> Result<NotifierService, NotifierError> {
        let js = jetstream::new(client.clone());
        ensure_notify_stream(&js, &config.subjects).await?;
        let lock = invitebus_filelock::lock(&config.path, "the notifier role")?;
        let notifier = Notifier::open(&config.path)?;
        let (sender_conn, reader) = (notifier.file().reader()?, notifier.file().reader()?);
        let notifier_conn = notifier.file().reader()?;
        let mut run = invitebus_feed::Running::start(&client, &config.subjects, NAME, notifier, config.feed.clone());
        run.hold(lock);
        let high_water = stored_last(&js, None).await?;
        let sender = Sender {
            conn: sender_conn,
            js,
            client: client.clone(),
            subjects: config.subjects.clone(),
            high_water,
        };
        run.spawn(move |applied, shutdown| sender.run(applied, shutdown));
        let eraser = crate::erase::Eraser {
            conn: notifier_conn,
            js: jetstream::new(client.clone()),
            subjects: config.subjects.clone(),
        };
        run.spawn(move |applied, shutdown| eraser.run(applied, shutdown));
        let sub = client
            .queue_subscribe(config.subjects.query("inbox"), config.queue_group.clone())
            .await
            .map_err(|e| NotifierError::Nats(e.into()))?;

        let handler = |conn: &Connection, body: &[u8]| {
            check_body(body)?;
            inbox(conn, &decode_fields::<InboxRequest>(body)?)
        };
        let auth = config.bus_auth.clone();
        run.spawn(move |applied, shutdown| {
            invitebus_feed::answer_queries(client, sub, reader, auth, applied, shutdown, handler)
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

/// The (position, id) of the last notification `INVITES_NOTIFY` holds: on `subject` (one
/// user's), or of the whole stream; None when there is none.
async fn stored_last(js: &jetstream::Context, subject: Option<&str>) -> Result<Option<(u64, String)>, NotifierError> {
    let stream = js
        .get_stream(NOTIFY_STREAM)
        .await
        .map_err(|e| NotifierError::Nats(e.into()))?;
    let found = match subject {
        Some(subject) => stream.get_last_raw_message_by_subject(subject).await.ok(),
        None => {
            let last = stream
                .get_info()
                .await
                .map_err(|e| NotifierError::Nats(e.into()))?
                .state
                .last_sequence;
            match last {
                0 => None,
                seq => stream.get_raw_message(seq).await.ok(),
            }
        }
    };
    Ok(found
        .and_then(|m| serde_json::from_slice::<Notification>(&m.payload).ok())
        .map(|n| (n.position, n.id)))
}

/// Sends unsent notifications in position order.
struct Sender {
    conn: Arc<Mutex<Reader>>,
    js: jetstream::Context,
    client: Client,
    subjects: Subjects,
    /// The last notification the stream held when this sender started.
    high_water: Option<(u64, String)>,
}

impl Sender {
    async fn run(self, mut applied: watch::Receiver<u64>, mut shutdown: watch::Receiver<bool>) {
        // Since when sending has failed turn after turn: the oldest unsent notification waits.
        let mut failing_since: Option<std::time::Instant> = None;
        loop {
            let outcome = self.send_some().await;
            metrics::gauge!("invitebus_notifier_sending_failed").set(if outcome.is_err() { 1.0 } else { 0.0 });
            match outcome {
                Ok(n) => {
                    failing_since = None;
                    if n > 0 {
                        continue;
                    }
                }
                Err(e) => {
                    metrics::counter!("invitebus_notifier_send_failures_total").increment(1);
                    // A stream deleted under the running role is made again (its publishes
                    // would fail for ever otherwise); a failure here says itself next turn.
                    let _ = ensure_notify_stream(&self.js, &self.subjects).await;
                    let since = *failing_since.get_or_insert_with(std::time::Instant::now);
                    match since.elapsed() > Duration::from_secs(30) {
                        true => {
                            tracing::error!(error = %e, failing_for_s = since.elapsed().as_secs(), "sending notifications keeps failing; nothing is sent meanwhile")
                        }
                        false => warn!(error = %e, "sending notifications failed; retrying"),
                    }
                }
            }
            tokio::select! {
                _ = invitebus_feed::moved_or(&mut applied, Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// True when `n` went out before this sender started (see the module's doc).
    async fn already_sent(&self, n: &Notification) -> Result<bool, NotifierError> {
        let key = (n.position, n.id.clone());
        match &self.high_water {
            Some(hw) if &key <= hw => {}
            _ => return Ok(false),
        }
        if n.live_only {
            // Not kept by the stream, and as old as what it holds: too late to be live.
            return Ok(true);
        }
        let last = stored_last(&self.js, Some(&self.subjects.notify(&n.user_id))).await?;
        Ok(last.is_some_and(|last| last >= key))
    }

    /// Sends up to 500 unsent notifications; returns how many.
    async fn send_some(&self) -> Result<usize, NotifierError> {
        let batch: Vec<Notification> = self
            .conn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .conn()?
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM notifications WHERE sent = 0 ORDER BY position, user_id LIMIT 500"
            ))?
            .query_map([], |r| from_row(r).map(|(n, _)| n))?
            .collect::<Result<_, _>>()?;
        let mut acks = Vec::with_capacity(batch.len());
        for n in &batch {
            if self.already_sent(n).await? {
                continue;
            }
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
            let mut msg = PublishMessage::build().payload(body.into()).message_id(n.id.clone());
            if let Some(t) = &n.traceparent {
                msg = msg.header(invitebus_events::trace::TRACEPARENT, t.as_str());
            }
            let ack = self
                .js
                .send_publish(self.subjects.notify(&n.user_id), msg)
                .await
                .map_err(|e| NotifierError::Nats(e.into()))?;
            acks.push((n, ack));
        }
        let mut stored = Vec::with_capacity(acks.len());
        for (n, ack) in acks {
            let seq = ack.await.map_err(|e| NotifierError::Nats(e.into()))?.sequence;
            stored.push((n, seq));
        }
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let conn = conn.conn()?;
        let mut mark = conn.prepare_cached("UPDATE notifications SET sent = 1 WHERE position = ?1 AND user_id = ?2")?;
        for n in &batch {
            mark.execute(params![n.position as i64, n.user_id.as_str()])?;
        }
        // Where each went in INVITES_NOTIFY (a forget erases it there by sequence); one rewritten
        // by a forget while it was on its way is erased at once.
        let mut seq = conn.prepare_cached("UPDATE notifications SET nseq = ?3 WHERE position = ?1 AND user_id = ?2")?;
        let mut stale = conn.prepare_cached(
            "INSERT OR IGNORE INTO forget_erase (id, user_id, nseq) SELECT id, user_id, nseq FROM notifications \
             WHERE position = ?1 AND user_id = ?2 AND text <> ?3",
        )?;
        for (n, s) in stored {
            seq.execute(params![n.position as i64, n.user_id.as_str(), s as i64])?;
            stale.execute(params![n.position as i64, n.user_id.as_str(), n.text])?;
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

/// The most notifications one `inbox` answer holds.
const MAX_INBOX_PAGE: u32 = 500;

/// `inbox`: the actor's notifications, oldest first.
fn inbox(conn: &Connection, q: &InboxRequest) -> Result<Value, ProtocolError> {
    let actor = q
        .actor
        .as_ref()
        .ok_or_else(|| ProtocolError::with_field(ErrorCode::Unauthenticated, "actor", "no actor"))?;
    let limit = q.per_page.unwrap_or(100);
    if !(1..=MAX_INBOX_PAGE).contains(&limit) {
        return Err(ProtocolError::invalid("per_page", format!("1 to {MAX_INBOX_PAGE}")));
    }
    let after = q.after.unwrap_or(0);
    if after > i64::MAX as u64 {
        return Err(ProtocolError::invalid("after", "a position, 0 to 2^63-1"));
    }
    let db = invitebus_feed::store::read_error;
    let rows: Vec<(Notification, bool)> = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE user_id = ?1 AND position > ?2 AND (?3 = 0 OR read = 0) \
             ORDER BY position LIMIT ?4"
        ))
        .map_err(db)?
        .query_map(params![actor.as_str(), after as i64, q.unread_only, limit], from_row)
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
