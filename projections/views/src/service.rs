//! The views role on NATS: follows the events into the view file, answers `invites.q.received`,
//! `sent`, `invite` and `admin` (waiting for `min_position` when asked), and reports its position
//! on `invites.status.views` for `invites.health`.

use crate::apply::{connect, ViewError, Views, NAME};
use crate::query::{self, QueryRequest};
use async_nats::Client;
use invitebus_events::subject::Subjects;
use invitebus_events::ProtocolError;
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// The queries this role answers.
pub const QUERIES: [&str; 7] = ["received", "sent", "invite", "admin", "code", "codes", "export"];

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
            let handler = move |c: &Connection, b: &[u8]| answer(c, name, b);
            let (client, reader, applied, shutdown) =
                (client.clone(), reader.clone(), applied.clone(), shutdown_rx.clone());
            tasks.push(tokio::spawn(invitebus_feed::answer_queries(
                client, sub, reader, applied, shutdown, handler,
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
        "export" => crate::codes::export(conn, body),
        other => Err(ProtocolError::invalid_command(format!("unknown query `{other}`"))),
    }
}
