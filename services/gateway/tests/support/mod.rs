//! The gateway on a free port of a test's own bus, and a one-request HTTP/1.1 client.
#![allow(dead_code)]

use invitebus_events::subject::Subjects;
use invitebus_gateway::{router, GatewayConfig};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves the gateway (default limits and bounds, HS256 tokens of `secret`) for `client`'s bus
/// until the test ends; its address.
pub async fn gateway(client: async_nats::Client, secret: &str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(GatewayConfig {
        client,
        subjects: Subjects::default(),
        verifier: std::sync::Arc::new(invitebus_gateway::auth::Verifier::hs256(secret)),
        metrics: None,
        limits: std::sync::Arc::new(invitebus_gateway::limits::Limits::new(&Default::default())),
        bounds: Default::default(),
    });
    tokio::spawn(invitebus_gateway::serve(
        listener,
        app,
        Default::default(),
        std::future::pending(),
    ));
    addr
}

/// One HTTP/1.1 POST; returns (status, raw body).
pub async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let status: u16 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
