//! What the integration tests of every crate share: a private nats-server (its own port and
//! JetStream folder), the command service on a fresh SQLite log in a temporary folder, and a
//! client that sends commands and queries as users do. Roles under test start beside it, on
//! files in [`Bus::path`]. [`history`] writes many events straight into a log; [`idp`] signs
//! tokens as an identity provider would; [`receiver`] is a webhook receiver.

pub mod history;
pub mod idp;
pub mod receiver;

use invitebus_commands::{CommandService, ServiceConfig, WriterConfig};
use invitebus_events::subject::Subjects;
use invitebus_events::Reply;
use invitebus_natsrun::NatsServer;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// How long a request waits for its reply before the test fails.
pub const REPLY_WITHIN: Duration = Duration::from_secs(10);

/// A nats-server, a command service and a client; everything stops when it is dropped.
pub struct Bus {
    pub nats: NatsServer,
    pub client: async_nats::Client,
    pub commands: CommandService,
    pub subjects: Subjects,
    pub dir: tempfile::TempDir,
    /// The data keys the command service seals personal fields with (the development master
    /// key): give them to a projection under test (`feed.keys`) and it opens those fields.
    pub keys: std::sync::Arc<invitebus_keys::KeyRing>,
}

impl Bus {
    /// The command service with its defaults.
    pub async fn start() -> Bus {
        Bus::start_with(|_| {}).await
    }

    /// The command service configured by `tune` (e.g. `exports_enabled`).
    pub async fn start_with(tune: impl FnOnce(&mut ServiceConfig)) -> Bus {
        let nats = NatsServer::start_temp().expect("nats-server starts");
        let client = async_nats::connect(nats.url()).await.expect("connects to nats-server");
        let dir = tempfile::tempdir().expect("a temporary folder");
        let subjects = Subjects::default();
        let mut config = ServiceConfig::new(WriterConfig::new(dir.path().join("events.db")));
        config.subjects = subjects.clone();
        tune(&mut config);
        let master = config.webhooks.key.clone();
        let commands = CommandService::start(client.clone(), config)
            .await
            .expect("the command service starts");
        let keys = invitebus_keys::KeyRing::open(&async_nats::jetstream::new(client.clone()), master, 1, true)
            .await
            .expect("the data keys' bucket");
        Bus {
            nats,
            client,
            commands,
            subjects,
            dir,
            keys: std::sync::Arc::new(keys),
        }
    }

    /// A file in the test's folder (`events.db` is the log's).
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// One request and its reply, within [`REPLY_WITHIN`].
    pub async fn request(&self, subject: String, body: &Value) -> Reply {
        let msg = tokio::time::timeout(REPLY_WITHIN, self.client.request(subject, body.to_string().into()))
            .await
            .expect("a reply in time")
            .expect("the request is sent");
        serde_json::from_slice(&msg.payload).expect("a protocol reply")
    }

    /// Sends command `name`.
    pub async fn send(&self, name: &str, body: Value) -> Reply {
        self.request(self.subjects.command(name), &body).await
    }

    /// Sends command `name`, which must succeed.
    pub async fn ok(&self, name: &str, body: Value) -> Reply {
        let r = self.send(name, body.clone()).await;
        assert!(r.ok, "{name} {body}: {r:?}");
        r
    }

    /// Asks query `name`.
    pub async fn query(&self, name: &str, body: Value) -> Reply {
        self.request(self.subjects.query(name), &body).await
    }

    /// Asks query `name`, which must succeed; its data.
    pub async fn q(&self, name: &str, body: Value) -> Value {
        let r = self.query(name, body.clone()).await;
        r.into_result().unwrap_or_else(|e| panic!("{name} {body}: {e}"))
    }
}
