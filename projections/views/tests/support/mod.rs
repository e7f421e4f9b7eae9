//! A real nats-server, the command service and the views role, in one test process.
#![allow(dead_code)]

use invitebus_commands::{CommandService, ServiceConfig, WriterConfig};
use invitebus_events::subject::Subjects;
use invitebus_events::Reply;
use invitebus_natsrun::NatsServer;
use invitebus_views::{ViewService, ViewsConfig};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

pub struct Stack {
    pub nats: NatsServer,
    pub client: async_nats::Client,
    pub commands: Option<CommandService>,
    pub views: Option<ViewService>,
    pub dir: tempfile::TempDir,
}

impl Stack {
    pub async fn start() -> Stack {
        let nats = NatsServer::start_temp().unwrap();
        let client = async_nats::connect(nats.url()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServiceConfig::new(WriterConfig::new(dir.path().join("events.db")));
        config.subjects = Subjects::default();
        let commands = CommandService::start(client.clone(), config).await.unwrap();
        let mut stack = Stack {
            nats,
            client,
            commands: Some(commands),
            views: None,
            dir,
        };
        stack.start_views().await;
        stack
    }

    pub fn views_path(&self) -> PathBuf {
        self.dir.path().join("views.db")
    }

    pub async fn start_views(&mut self) {
        let mut config = ViewsConfig::new(self.views_path());
        config.subjects = Subjects::default();
        self.views = Some(ViewService::start(self.client.clone(), config).await.unwrap());
    }

    pub async fn stop_views(&mut self) {
        if let Some(v) = self.views.take() {
            v.shutdown().await;
        }
    }

    async fn request(&self, subject: String, body: &Value) -> Reply {
        let msg = tokio::time::timeout(
            Duration::from_secs(10),
            self.client.request(subject, body.to_string().into()),
        )
        .await
        .expect("reply in time")
        .expect("request");
        serde_json::from_slice(&msg.payload).unwrap()
    }

    /// Sends a command that must succeed; returns its reply.
    pub async fn ok(&self, name: &str, body: Value) -> Reply {
        let r = self.request(Subjects::default().command(name), &body).await;
        assert!(r.ok, "{name} {body}: {r:?}");
        r
    }

    pub async fn query(&self, name: &str, body: Value) -> Reply {
        self.request(Subjects::default().query(name), &body).await
    }

    /// A query that must succeed; its data.
    pub async fn q(&self, name: &str, body: Value) -> Value {
        let r = self.query(name, body.clone()).await;
        r.into_result().unwrap_or_else(|e| panic!("{name} {body}: {e}"))
    }

    /// Waits until the views have applied `position`.
    pub async fn views_at(&self, position: u64) {
        let mut applied = self.views.as_ref().unwrap().applied();
        tokio::time::timeout(Duration::from_secs(20), applied.wait_for(|p| *p >= position))
            .await
            .expect("views caught up")
            .unwrap();
    }

    pub fn head(&self) -> u64 {
        invitebus_eventlog_head(&self.dir.path().join("events.db"))
    }
}

fn invitebus_eventlog_head(path: &std::path::Path) -> u64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("SELECT IFNULL(MAX(position), 0) FROM events", [], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap() as u64
}

/// Users xuan (Xuan) and fang (Fang) with phones, and xuan's conference `conf`.
pub async fn conference(s: &Stack) {
    s.ok(
        "UpsertUser",
        json!({"actor":"xuan","user_id":"xuan","name":"Xuan","phone":"100"}),
    )
    .await;
    s.ok(
        "UpsertUser",
        json!({"actor":"fang","user_id":"fang","name":"Fang","phone":"200"}),
    )
    .await;
    s.ok(
        "RegisterResource",
        json!({"actor":"xuan","resource_id":"conf","kind":"conference","name":"RustConf"}),
    )
    .await;
}
