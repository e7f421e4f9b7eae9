//! A real nats-server, the command service and the views role, in one test process.
#![allow(dead_code)]

use invitebus_testkit::Bus;
use invitebus_views::{ViewService, ViewsConfig};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

pub struct Stack {
    pub bus: Bus,
    pub views: Option<ViewService>,
}

impl std::ops::Deref for Stack {
    type Target = Bus;
    fn deref(&self) -> &Bus {
        &self.bus
    }
}

impl Stack {
    pub async fn start() -> Stack {
        let mut stack = Stack {
            bus: Bus::start().await,
            views: None,
        };
        stack.start_views().await;
        stack
    }

    pub fn views_path(&self) -> PathBuf {
        self.bus.path("views.db")
    }

    pub async fn start_views(&mut self) {
        let mut config = ViewsConfig::new(self.views_path());
        config.subjects = self.bus.subjects.clone();
        config.feed.keys = Some(self.bus.keys.clone());
        self.views = Some(ViewService::start(self.bus.client.clone(), config).await.unwrap());
    }

    pub async fn stop_views(&mut self) {
        if let Some(v) = self.views.take() {
            v.shutdown().await;
        }
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
        invitebus_eventlog_head(&self.bus.path("events.db"))
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
