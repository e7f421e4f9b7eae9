//! The views role on NATS: follows the events into the view file, answers `invites.q.received`,
//! `sent`, `invite` and `admin` (waiting for `min_position` when asked), and reports its position
//! on `invites.status.views` for `invites.health`.

use crate::projection::{ViewError, Views, NAME};
use crate::query::{self, QueryRequest};
use async_nats::Client;
use invitebus_events::subject::Subjects;
use invitebus_events::ProtocolError;
use rusqlite::Connection;
use std::path::PathBuf;

use tokio::sync::watch;
use tracing::info;

/// The queries this role answers.
pub const QUERIES: [&str; 7] = ["received", "sent", "invite", "admin", "code", "codes", "export"];

/// How the views role runs.
#[derive(Debug, Clone)]
pub struct ViewsConfig {
    pub path: PathBuf,
    pub subjects: Subjects,
    /// Whether queries must carry a token (`--bus-auth`).
    pub bus_auth: invitebus_auth::BusAuth,
    pub queue_group: String,
    /// The feed's watchdog and consumer settings.
    pub feed: invitebus_feed::FeedSettings,
    /// The deployment's master key: phones are kept and looked up by its keyed hash.
    pub master_key: invitebus_keys::MasterKey,
}

impl ViewsConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ViewsConfig {
            path: path.into(),
            subjects: Subjects::default(),
            bus_auth: Default::default(),
            queue_group: invitebus_events::subject::VIEWS_QUEUE_GROUP.into(),
            feed: invitebus_feed::FeedSettings::default(),
            master_key: invitebus_keys::MasterKey::dev(),
        }
    }
}

/// A running views role.
pub struct ViewService {
    run: invitebus_feed::Running,
}

impl ViewService {
    pub async fn start(client: Client, config: ViewsConfig) -> Result<ViewService, ViewError> {
        let lock = invitebus_filelock::lock(&config.path, "the views role")?;
        let views = Views::open(&config.path)?.with_phone_key(config.master_key.clone());
        let reader = views.file().reader()?;
        let mut run = invitebus_feed::Running::start(&client, &config.subjects, NAME, views, config.feed.clone());
        run.hold(lock);
        for name in QUERIES {
            let sub = client
                .queue_subscribe(config.subjects.query(name), config.queue_group.clone())
                .await
                .map_err(|e| ViewError::Nats(e.into()))?;
            let key = config.master_key.clone();
            let handler = move |c: &Connection, b: &[u8]| answer(c, name, b, &key);
            let (client, reader, auth) = (client.clone(), reader.clone(), config.bus_auth.clone());
            run.spawn(move |applied, shutdown| {
                invitebus_feed::answer_queries(client, sub, reader, auth, applied, shutdown, handler)
            });
        }
        info!(path = %config.path.display(), "views ready");
        Ok(ViewService { run })
    }

    /// The last position applied to the views.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.run.applied()
    }

    pub async fn shutdown(self) {
        self.run.shutdown().await;
    }
}

fn answer(
    conn: &Connection,
    name: &str,
    body: &[u8],
    key: &invitebus_keys::MasterKey,
) -> Result<serde_json::Value, ProtocolError> {
    let q = QueryRequest::decode(body)?;
    match name {
        "received" => query::received(conn, &q),
        "sent" => query::sent(conn, &q),
        "invite" => query::invite(conn, &q),
        "admin" => crate::admin::page(conn, &q, body, key),
        "code" => crate::codes::code(conn, body),
        "codes" => crate::codes::codes(conn, body),
        "export" => crate::codes::export(conn, body),
        other => Err(ProtocolError::invalid_command(format!("unknown query `{other}`"))),
    }
}
