//! A real nats-server (own port, own JetStream directory) and a command service on a fresh
//! SQLite file, for tests that go over the bus as a client would.
#![allow(dead_code)]

use async_nats::jetstream;
use invitebus_commands::{CommandService, ServiceConfig, WriterConfig};
use invitebus_eventlog::LogReader;
use invitebus_events::subject::{Subjects, EVENTS_STREAM};
use invitebus_events::{Envelope, Reply};
use invitebus_natsrun::NatsServer;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

pub struct Bus {
    pub nats: NatsServer,
    pub client: async_nats::Client,
    pub service: Option<CommandService>,
    pub dir: tempfile::TempDir,
    pub log_path: PathBuf,
}

impl Bus {
    pub async fn start() -> Bus {
        Bus::start_with(|_| {}).await
    }

    /// With the service configured by `tune`.
    pub async fn start_with(tune: impl FnOnce(&mut invitebus_commands::ServiceConfig)) -> Bus {
        let nats = NatsServer::start_temp().expect("nats-server starts");
        let client = async_nats::connect(nats.url()).await.expect("connects");
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("events.db");
        let mut cfg = config(&log_path);
        tune(&mut cfg);
        let service = CommandService::start(client.clone(), cfg)
            .await
            .expect("service starts");
        Bus {
            nats,
            client,
            service: Some(service),
            dir,
            log_path,
        }
    }

    pub fn service(&self) -> &CommandService {
        self.service.as_ref().expect("running")
    }

    /// Sends a command body (any bytes) and returns the raw reply.
    pub async fn send_raw(&self, name: &str, body: Vec<u8>) -> Reply {
        let subject = Subjects::default().command(name);
        let msg = tokio::time::timeout(Duration::from_secs(10), self.client.request(subject, body.into()))
            .await
            .expect("reply in time")
            .expect("request");
        serde_json::from_slice(&msg.payload).expect("a protocol reply")
    }

    pub async fn send(&self, name: &str, body: Value) -> Reply {
        self.send_raw(name, body.to_string().into_bytes()).await
    }

    /// Sends and insists on ok.
    pub async fn ok(&self, name: &str, body: Value) -> Reply {
        let r = self.send(name, body.clone()).await;
        assert!(r.ok, "{name} {body} failed: {r:?}");
        r
    }

    pub fn reader(&self) -> LogReader {
        LogReader::open(&self.log_path).unwrap()
    }

    pub fn head(&self) -> u64 {
        self.reader().head().unwrap()
    }

    /// Waits until the relay has published `position`.
    pub async fn relayed(&self, position: u64) {
        let mut rx = self.service().relayed();
        tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|p| *p >= position))
            .await
            .expect("relay caught up in time")
            .expect("relay running");
    }

    /// Every message of INVITES_EVENTS: (sequence, Nats-Msg-Id, envelope).
    pub async fn jetstream_events(&self) -> Vec<(u64, String, Envelope)> {
        jetstream_events(&self.client).await
    }
}

pub fn config(log_path: &std::path::Path) -> ServiceConfig {
    let mut c = ServiceConfig::new(WriterConfig::new(log_path));
    c.subjects = Subjects::default();
    c
}

pub async fn jetstream_events(client: &async_nats::Client) -> Vec<(u64, String, Envelope)> {
    let js = jetstream::new(client.clone());
    let mut stream = js.get_stream(EVENTS_STREAM).await.expect("stream exists");
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let msg = stream.get_raw_message(seq).await.expect("message");
        let id = msg
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        out.push((seq, id, serde_json::from_slice(&msg.payload).expect("an envelope")));
    }
    out
}
