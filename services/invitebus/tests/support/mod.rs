//! Runs the real `invitebus` binary against a real nats-server, as an operator would.
#![allow(dead_code)]

pub mod gateway;
pub mod http;

use invitebus_events::subject::Subjects;
use invitebus_events::Reply;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_invitebus");

/// A running `invitebus serve`.
pub struct Serve {
    pub child: Child,
}

impl Serve {
    pub fn start(nats_url: &str, data: &Path) -> Serve {
        Serve::start_role(nats_url, data, "all")
    }

    /// `serve --role <role>`.
    pub fn start_role(nats_url: &str, data: &Path, role: &str) -> Serve {
        Serve::start_role_with(nats_url, data, role, &[])
    }

    /// `serve --role <role>` with extra environment.
    pub fn start_role_with(nats_url: &str, data: &Path, role: &str, env: &[(&str, &str)]) -> Serve {
        let child = Command::new(BIN)
            .args([
                "serve",
                "--role",
                role,
                "--http",
                "127.0.0.1:0",
                "--nats",
                nats_url,
                "--data",
            ])
            .arg(data)
            .envs(env.iter().copied())
            .env("RUST_LOG", serve_log())
            .stdin(Stdio::null())
            .spawn()
            .expect("invitebus serve starts");
        Serve { child }
    }

    /// `serve` (all roles) with its gateway on `127.0.0.1:<free port>`, once the gateway answers
    /// its heartbeat; returns the gateway's address.
    pub async fn start_with_gateway(nats_url: &str, data: &Path, secret: &str) -> (Serve, std::net::SocketAddr) {
        Serve::start_with_gateway_env(nats_url, data, secret, &[]).await
    }

    /// [`Serve::start_with_gateway`] with extra environment.
    pub async fn start_with_gateway_env(
        nats_url: &str,
        data: &Path,
        secret: &str,
        env: &[(&str, &str)],
    ) -> (Serve, std::net::SocketAddr) {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--http", &addr.to_string(), "--nats", nats_url, "--data"])
            .arg(data)
            .env("INVITEBUS_JWT_SECRET", secret)
            .envs(env.iter().copied())
            .env("RUST_LOG", serve_log())
            .stdin(Stdio::null())
            .spawn()
            .expect("invitebus serve starts");
        let serve = Serve { child };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok()
                && http::get(addr, "/api/invitation/check", &[]).await.status == 200
            {
                return (serve, addr);
            }
            assert!(Instant::now() < deadline, "the gateway did not come up on {addr}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs an `invitebus` subcommand to completion.
pub fn run(args: &[&str], data: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .expect("invitebus runs")
}

pub async fn connect(url: &str) -> async_nats::Client {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let servers: Vec<&str> = url.split(',').collect();
        match async_nats::connect(servers).await {
            Ok(c) => return c,
            Err(e) => assert!(Instant::now() < deadline, "cannot connect to {url}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `invitebus creds --role <role>` for the bus of `data`: the file it wrote.
pub fn creds(data: &Path, role: &str, nats_url: &str) -> PathBuf {
    let out = data.join(format!("{role}.creds"));
    let run = Command::new(BIN)
        .args(["creds", "--role", role, "--nats", nats_url, "--out"])
        .arg(&out)
        .arg("--data")
        .arg(data)
        .output()
        .expect("invitebus creds runs");
    assert!(run.status.success(), "creds: {}", String::from_utf8_lossy(&run.stderr));
    out
}

/// The login of a creds file of `invitebus creds`: (user, password, inbox prefix).
pub fn login(creds: &Path) -> (String, String, String) {
    let v: Value = serde_json::from_slice(&std::fs::read(creds).unwrap()).unwrap();
    let field = |k: &str| v[k].as_str().unwrap().to_string();
    (field("user"), field("password"), field("inbox_prefix"))
}

/// Options that log in as the user of `creds`.
pub fn options(creds: &Path) -> async_nats::ConnectOptions {
    let (user, password, inbox) = login(creds);
    async_nats::ConnectOptions::new()
        .user_and_password(user, password)
        .custom_inbox_prefix(inbox)
}

/// [`connect`] as the user of a creds file.
pub async fn connect_with(url: &str, creds: &Path) -> async_nats::Client {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match options(creds).connect(url).await {
            Ok(c) => return c,
            Err(e) => assert!(Instant::now() < deadline, "cannot connect to {url}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Health's data once the service answers (healthy or not).
pub async fn healthy(client: &async_nats::Client) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let req = client.request(Subjects::default().health(), "{}".into());
        if let Ok(Ok(msg)) = tokio::time::timeout(Duration::from_secs(1), req).await {
            let reply: Reply = serde_json::from_slice(&msg.payload).unwrap();
            // An unhealthy answer (a role stalled or missing) still carries the figures.
            if let Some(data) = reply.data {
                return data;
            }
        }
        assert!(Instant::now() < deadline, "invitebus did not become healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the relay has published everything committed; returns the head.
pub async fn relayed_all(client: &async_nats::Client) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = healthy(client).await;
        let head = h["head"].as_u64().unwrap();
        if h["projections"]["relay"].as_u64() == Some(head) {
            return head;
        }
        assert!(Instant::now() < deadline, "relay did not catch up: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn send(client: &async_nats::Client, name: &str, body: &Value) -> Result<Reply, String> {
    let req = client.request(Subjects::default().command(name), body.to_string().into());
    match tokio::time::timeout(Duration::from_secs(20), req).await {
        Ok(Ok(msg)) => serde_json::from_slice(&msg.payload).map_err(|e| e.to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timeout".into()),
    }
}

pub fn db(data: &Path) -> PathBuf {
    data.join("events.db")
}

/// Waits until `invites.health` reports projection `name` at `position` or beyond.
pub async fn projection_at(client: &async_nats::Client, name: &str, position: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = healthy(client).await;
        if h["projections"][name].as_u64().is_some_and(|p| p >= position) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} did not reach {position}: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A request on the bus with `Authorization: Bearer <token>` when given (as `--bus-auth token`
/// wants); the protocol reply, within 10 s.
pub async fn ask(client: &async_nats::Client, subject: String, token: Option<&str>, body: Value) -> Reply {
    let mut headers = async_nats::HeaderMap::new();
    if let Some(t) = token {
        headers.insert("Authorization", format!("Bearer {t}").as_str());
    }
    let request = client.request_with_headers(subject, headers, body.to_string().into());
    let msg = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .expect("an answer")
        .expect("a reply");
    serde_json::from_slice(&msg.payload).expect("a protocol reply")
}

/// The hash of every message of INVITES_EVENTS, in sequence order (sequence = position checked).
pub async fn jetstream_hashes(client: &async_nats::Client) -> Vec<String> {
    let js = async_nats::jetstream::new(client.clone());
    let mut stream = js.get_stream(invitebus_events::subject::EVENTS_STREAM).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let msg = stream.get_raw_message(seq).await.unwrap();
        let env: Value = serde_json::from_slice(&msg.payload).unwrap();
        assert_eq!(env["position"].as_u64(), Some(seq), "sequence = position");
        out.push(env["hash"].as_str().unwrap().to_string());
    }
    out
}

/// The children's log filter: `warn`, or `INVITEBUS_TEST_SERVE_LOG` when a failure needs more.
fn serve_log() -> String {
    std::env::var("INVITEBUS_TEST_SERVE_LOG").unwrap_or_else(|_| "warn".into())
}
