//! A running `invitebus serve` with its HTTP gateway, its own nats-server and data directory,
//! and the tokens a seed's client would hold. The bus runs with `--bus-auth token`, so every
//! route of every seed is tested forwarding its caller's token, and with `--nats-auth`: serve
//! starts nats-server itself with a user per role, so every route runs within their permissions.

use super::http::{self, Answer};
use super::Serve;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;

pub const SECRET: &str = "gateway-test-secret";
/// The service's own secret in these tests: its tokens are the only way to act as `system`.
pub const SERVICE_SECRET: &str = "gateway-test-service-secret";

pub struct Gateway {
    pub addr: SocketAddr,
    pub client: async_nats::Client,
    pub serve: Serve,
    /// The nats-server serve started (it dies with serve).
    pub nats_url: String,
    pub dir: tempfile::TempDir,
}

impl Gateway {
    pub async fn start() -> Gateway {
        Gateway::start_with(tempfile::tempdir().unwrap(), &[]).await
    }

    /// [`Gateway::start`] in `dir` with extra environment.
    pub async fn start_with(dir: tempfile::TempDir, extra: &[(&str, &str)]) -> Gateway {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let nats_url = format!("nats://127.0.0.1:{port}");
        let mut env = vec![
            ("INVITEBUS_NATS_AUTH", "true"),
            ("INVITEBUS_BUS_AUTH", "token"),
            ("INVITEBUS_SERVICE_SECRET", SERVICE_SECRET),
        ];
        env.extend_from_slice(extra);
        let (serve, addr) = Serve::start_with_gateway_env(&nats_url, dir.path(), SECRET, &env).await;
        let creds = super::creds(dir.path(), "service", &nats_url);
        let client = super::connect_with(&nats_url, &creds).await;
        Gateway {
            addr,
            client,
            serve,
            nats_url,
            dir,
        }
    }

    /// A creds file of `role`'s NATS user (`client`, `service`, …).
    pub fn creds(&self, role: &str) -> PathBuf {
        super::creds(self.dir.path(), role, &self.nats_url)
    }

    /// A token of `user`, valid for an hour.
    pub fn token(user: &str) -> String {
        invitebus_gateway::auth::mint(SECRET, user, &[], 3600)
    }

    pub fn admin_token(user: &str) -> String {
        invitebus_gateway::auth::mint(SECRET, user, &["admin".into()], 3600)
    }

    /// A token that expired a minute ago.
    pub fn expired_token(user: &str) -> String {
        let now = chrono::Utc::now().timestamp() as u64;
        invitebus_gateway::auth::mint_until(SECRET, user, &[], now - 60)
    }

    /// A token signed with another key.
    pub fn foreign_token(user: &str) -> String {
        invitebus_gateway::auth::mint("another-key", user, &[], 3600)
    }

    /// A native command that must succeed; its reply.
    pub async fn command(&self, token: &str, name: &str, body: Value) -> Value {
        let bearer = format!("Bearer {token}");
        let a = http::post(
            self.addr,
            &format!("/v1/commands/{name}"),
            &[("Authorization", &bearer)],
            &body.to_string(),
        )
        .await;
        assert_eq!(a.status, 200, "{name} {body}: {}", String::from_utf8_lossy(&a.body));
        a.json()
    }

    /// A native query that must succeed; its data.
    pub async fn query(&self, token: &str, name: &str, body: Value) -> Value {
        let bearer = format!("Bearer {token}");
        let a = http::post(
            self.addr,
            &format!("/v1/queries/{name}"),
            &[("Authorization", &bearer)],
            &body.to_string(),
        )
        .await;
        assert_eq!(a.status, 200, "{name} {body}: {}", String::from_utf8_lossy(&a.body));
        a.json()["data"].clone()
    }

    /// The log's last position.
    pub async fn head(&self) -> u64 {
        super::healthy(&self.client).await["head"].as_u64().unwrap()
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        http::get(self.addr, path, headers).await
    }

    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        http::post(self.addr, path, headers, body).await
    }

    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        http::request(self.addr, method, path, headers, body).await
    }
}
