//! The views role on NATS: follows the events into the view file, answers `invites.q.received`,
//! `sent`, `invite` and `admin` (waiting for `min_position` when asked), and reports its position
//! on `invites.status.views` for `invites.health`.

use crate::apply::{connect, ViewError, Views, NAME};
use crate::query::{self, QueryRequest};
use async_nats::Client;
use futures::StreamExt;
use invitebus_events::subject::Subjects;
use invitebus_events::{ProtocolError, Reply};
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// The queries this role answers.
pub const QUERIES: [&str; 6] = ["received", "sent", "invite", "admin", "code", "codes"];

/// How the views role runs.
#[derive(Debug, Clone)]
pub struct ViewsConfig {
    pub path: PathBuf,
    pub subjects: Subjects,
    pub queue_group: String,
}

impl ViewsConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ViewsConfig {
            path: path.into(),
            subjects: Subjects::from_env(),
            queue_group: "invitebus-views".into(),
        }
    }
}

/// A running views role.
pub struct ViewService {
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    applied: watch::Receiver<u64>,
}

impl ViewService {
    pub async fn start(client: Client, config: ViewsConfig) -> Result<ViewService, ViewError> {
        let views = Views::open(&config.path)?;
        let (applied_tx, applied) = watch::channel(invitebus_feed::Projection::position(&views));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let js = async_nats::jetstream::new(client.clone());
        let follow_shutdown = shutdown_rx.clone();
        let subjects = config.subjects.clone();
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(e) = invitebus_feed::follow(js, subjects, views, applied_tx, follow_shutdown).await {
                warn!(error = %e, "the views projection stopped");
            }
        })];
        let reader = Arc::new(Mutex::new(connect(&config.path)?));
        for name in QUERIES {
            let sub = client
                .queue_subscribe(config.subjects.query(name), config.queue_group.clone())
                .await
                .map_err(|e| ViewError::Event {
                    position: 0,
                    reason: e.to_string(),
                })?;
            tasks.push(tokio::spawn(query_loop(
                client.clone(),
                sub,
                name,
                reader.clone(),
                applied.clone(),
                shutdown_rx.clone(),
            )));
        }
        tasks.push(invitebus_feed::report_position(
            client,
            &config.subjects,
            NAME,
            applied.clone(),
            shutdown_rx,
        ));
        info!(path = %config.path.display(), "views ready");
        Ok(ViewService {
            shutdown,
            tasks,
            applied,
        })
    }

    /// The last position applied to the views.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }

    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

fn answer(conn: &Connection, name: &str, body: &[u8]) -> Result<serde_json::Value, ProtocolError> {
    let q = QueryRequest::decode(body)?;
    match name {
        "received" => query::received(conn, &q),
        "sent" => query::sent(conn, &q),
        "invite" => query::invite(conn, &q),
        "admin" => query::admin(conn, &q, body),
        "code" => crate::codes::code(conn, body),
        "codes" => crate::codes::codes(conn, body),
        other => Err(ProtocolError::invalid_command(format!("unknown query `{other}`"))),
    }
}

async fn query_loop(
    client: Client,
    mut sub: async_nats::Subscriber,
    name: &'static str,
    reader: Arc<Mutex<Connection>>,
    applied: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let msg = tokio::select! {
            m = sub.next() => match m { Some(m) => m, None => break },
            _ = shutdown.changed() => break,
        };
        let Some(to) = msg.reply else { continue };
        let reader = reader.clone();
        let mut applied = applied.clone();
        let client = client.clone();
        // Each query on its own task: a query waiting for min_position does not hold up others.
        tokio::spawn(async move {
            let result = match QueryRequest::decode(&msg.payload) {
                Err(e) => Err(e),
                Ok(q) => match invitebus_feed::wait_for(&mut applied, q.min_position).await {
                    Err(e) => Err(e),
                    Ok(()) => tokio::task::spawn_blocking(move || {
                        let conn = reader.lock().unwrap_or_else(|p| p.into_inner());
                        answer(&conn, name, &msg.payload)
                    })
                    .await
                    .unwrap_or_else(|e| Err(ProtocolError::internal(format!("query task failed: {e}")))),
                },
            };
            let _ = client.publish(to, Reply::from(result).to_bytes().into()).await;
        });
    }
}
