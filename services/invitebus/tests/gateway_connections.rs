//! Connections at the edge, from outside: slow and idle clients are cut off, one address cannot
//! hold every connection, and thousands of idle and slow sockets neither starve real requests
//! nor keep their memory once they close.

mod support;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use support::gateway::Gateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// A connection to `to` from `127.0.0.<host>` (loopback holds all of 127/8): many client
/// addresses on one machine.
async fn from(host: u8, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), 0)))
        .unwrap();
    socket.connect(to).await.expect("the gateway accepts the connection")
}

/// Reads until the server closes or `within` passes: the bytes, and whether it closed.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    let mut raw = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (raw, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (raw, true),
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_slow_bodies_and_idle_keep_alives_are_cut_off() {
    let env = [("INVITEBUS_HEADER_TIMEOUT", "1"), ("INVITEBUS_BODY_TIMEOUT", "1")];
    let gw = Gateway::start_with(tempfile::tempdir().unwrap(), &env).await;

    // Headers a byte at a time, five a second: 60 s of them would keep the socket forever.
    let mut slow = TcpStream::connect(gw.addr).await.unwrap();
    slow.write_all(b"GET /api/invitation/check HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut closed = false;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if slow.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        let mut probe = [0u8; 64];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(1), slow.read(&mut probe)).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "a dribbling client was still connected after 60 s");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());

    // An answered request, then nothing: the keep-alive connection ends too.
    let mut idle = TcpStream::connect(gw.addr).await.unwrap();
    idle.write_all(b"GET /api/invitation/check HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (raw, closed) = until_closed(&mut idle, Duration::from_secs(10)).await;
    assert!(raw.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&raw));
    assert!(closed, "an idle keep-alive connection stayed open");

    // A body that stops coming: 408 in the API's own shape, and the connection closes.
    let token = Gateway::token("xuan");
    for (path, shape) in [
        ("/v1/commands/RegisterResource", "ok"),
        ("/api/invitation/createInvitation", "code"),
    ] {
        let mut body = TcpStream::connect(gw.addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"resource_id\":"
        );
        body.write_all(head.as_bytes()).await.unwrap();
        let (raw, closed) = until_closed(&mut body, Duration::from_secs(10)).await;
        let answer = support::http::parse(&raw);
        let json = answer.json();
        assert!(json.get(shape).is_some(), "{path}: {json}");
        assert!(json.to_string().contains("did not arrive"), "{path}: {json}");
        if path.starts_with("/v1/") {
            assert_eq!(answer.status, 408, "{json}");
            assert_eq!(json["error"]["code"], "invalid_command");
        }
        assert!(closed, "{path}: the connection stayed open after the body deadline");
    }
    let metrics = String::from_utf8(gw.get("/metrics", &[]).await.body).unwrap();
    assert!(
        metrics.contains("invitebus_gateway_connections_timed_out_total"),
        "{metrics}"
    );
    assert!(metrics.contains("invitebus_gateway_body_timeouts_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_connection() {
    let env = [
        ("INVITEBUS_MAX_CONNECTIONS_PER_ADDRESS", "20"),
        ("INVITEBUS_MAX_CONNECTIONS", "50"),
        ("INVITEBUS_HEADER_TIMEOUT", "60"),
    ];
    let gw = Gateway::start_with(tempfile::tempdir().unwrap(), &env).await;
    // The gateway's own start-up checks may still hold a connection: let them end.
    wait_open(&gw, 0).await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(from(2, gw.addr).await);
    }
    // The 21st from 127.0.0.2 is refused at the door, with a bare 503 and Retry-After.
    let mut extra = from(2, gw.addr).await;
    let (raw, closed) = until_closed(&mut extra, Duration::from_secs(5)).await;
    let refused = String::from_utf8_lossy(&raw).to_lowercase();
    assert!(closed && refused.starts_with("http/1.1 503"), "{refused}");
    assert!(refused.contains("retry-after: 1"), "{refused}");
    // Another address is served meanwhile.
    let mut other = from(3, gw.addr).await;
    other
        .write_all(b"GET /api/invitation/check HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (raw, _) = until_closed(&mut other, Duration::from_secs(5)).await;
    assert!(raw.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&raw));
    wait_open(&gw, 20).await;

    // Fill the total cap from other addresses: then everyone is refused, until some close.
    for host in [4, 5] {
        for _ in 0..15 {
            held.push(from(host, gw.addr).await);
        }
    }
    let mut past = from(6, gw.addr).await;
    let (raw, _) = until_closed(&mut past, Duration::from_secs(5)).await;
    assert!(raw.starts_with(b"HTTP/1.1 503"), "{}", String::from_utf8_lossy(&raw));
    held.truncate(40);
    wait_open(&gw, 40).await;
    let metrics = String::from_utf8(gw.get("/metrics", &[]).await.body).unwrap();
    assert!(
        metrics.contains("invitebus_gateway_connections_refused_total{scope=\"address\"} 1"),
        "{metrics}"
    );
    // At least the one past the cap (polling while it was full is refused too).
    let all = metrics
        .lines()
        .find_map(|l| l.strip_prefix("invitebus_gateway_connections_refused_total{scope=\"all\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(all.is_some_and(|n| n >= 1.0), "{metrics}");
}

/// Waits (bounded) until the gateway holds `n` connections besides the asking one.
async fn wait_open(gw: &Gateway, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let open = open_connections(gw).await;
        if open == (n + 1) as f64 {
            return;
        }
        assert!(Instant::now() < deadline, "{open} connections open, not {}", n + 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_count_in_the_caps_until_they_end() {
    let env = [("INVITEBUS_MAX_CONNECTIONS_PER_ADDRESS", "2")];
    let gw = Gateway::start_with(tempfile::tempdir().unwrap(), &env).await;
    let url = |user: &str| format!("ws://{}/ws?accessToken={}", gw.addr, Gateway::token(user));
    let (first, _) = tokio_tungstenite::client_async(url("xuan"), from(7, gw.addr).await)
        .await
        .expect("a socket");
    let (_second, _) = tokio_tungstenite::client_async(url("fang"), from(7, gw.addr).await)
        .await
        .expect("a socket");
    // Two open sockets fill 127.0.0.7's share: a third connection is refused.
    let mut third = from(7, gw.addr).await;
    let (raw, _) = until_closed(&mut third, Duration::from_secs(5)).await;
    assert!(raw.starts_with(b"HTTP/1.1 503"), "{}", String::from_utf8_lossy(&raw));
    // One ends: its place is free again.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = from(7, gw.addr).await;
        again
            .write_all(b"GET /api/invitation/check HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (raw, _) = until_closed(&mut again, Duration::from_secs(5)).await;
        if raw.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the ended socket's place stayed taken");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A signed-in seed 002 socket.
async fn socket(
    gw: &Gateway,
    user: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let url = format!("ws://{}/ws?accessToken={}", gw.addr, Gateway::token(user));
    let (socket, _) = tokio_tungstenite::connect_async(url).await.expect("the socket opens");
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_websocket_is_closed_and_pings_or_pongs_keep_a_live_one() {
    let env = [("INVITEBUS_SESSION_IDLE", "2")];
    let gw = Gateway::start_with(tempfile::tempdir().unwrap(), &env).await;
    let mut quiet = raw_socket(&gw, "xuan").await;
    let mut live = socket(&gw, "fang").await;
    let listening = socket(&gw, "lan").await;
    // lan only reads (its client answers the gateway's pings with pongs, as a browser does).
    let listener = tokio::spawn(async move {
        let mut listening = listening;
        let until = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match tokio::time::timeout_at(until, listening.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(Message::Close(frame)))) => return Some(format!("{frame:?}")),
                Ok(Some(Ok(_))) => {}
                Ok(other) => return Some(format!("{other:?}")),
            }
        }
    });
    let started = Instant::now();
    // fang pings four times a second for five seconds; xuan's client is not even read.
    while started.elapsed() < Duration::from_secs(5) {
        live.send(Message::Ping(b"hi".to_vec().into())).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    live.send(Message::Text(
        json!({"op": "ping", "requestId": "r1"}).to_string().into(),
    ))
    .await
    .unwrap();
    let mut answered = None;
    while let Some(Ok(m)) = live.next().await {
        if let Message::Text(t) = m {
            let frame: Value = serde_json::from_str(&t).unwrap();
            if frame["op"] == "ping" {
                answered = Some(frame);
                break;
            }
        }
    }
    assert_eq!(answered.expect("the pinging socket is still served")["code"], 200);
    assert_eq!(listener.await.unwrap(), None, "the listening socket was closed");
    // xuan's client read nothing and answered nothing: its bytes hold the gateway's pings and,
    // after the idle bound, a close frame 1001 with the reason; then the gateway hung up.
    let (raw, closed) = until_closed(&mut quiet, Duration::from_secs(10)).await;
    assert!(closed, "the idle socket is still open");
    let close = frames(&raw)
        .into_iter()
        .find(|(opcode, _)| *opcode == 8)
        .expect("a close frame");
    assert_eq!(close.1.get(..2), Some(&1001u16.to_be_bytes()[..]), "{close:?}");
    assert!(String::from_utf8_lossy(&close.1[2..]).contains("nothing from the client"));
}

/// A seed 002 socket opened by hand, whose client will neither read nor answer pings.
async fn raw_socket(gw: &Gateway, user: &str) -> TcpStream {
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    let head = format!(
        "GET /ws?accessToken={} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        Gateway::token(user)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.unwrap();
        answer.push(byte[0]);
    }
    assert!(
        answer.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    stream
}

/// The (opcode, payload) of each server frame in `raw` (unmasked, as a server sends them).
fn frames(mut raw: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while raw.len() >= 2 {
        let opcode = raw[0] & 0x0f;
        let (len, start) = match raw[1] & 0x7f {
            126 if raw.len() >= 4 => (u16::from_be_bytes([raw[2], raw[3]]) as usize, 4),
            127 => return out,
            n => (n as usize, 2),
        };
        let Some(payload) = raw.get(start..start + len) else {
            return out;
        };
        out.push((opcode, payload.to_vec()));
        raw = &raw[start + len..];
    }
    out
}

/// The resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    kib / 1024.0
}

/// The gateway's open connections, as its metrics say (the asking one included).
/// The gateway's open-connections gauge; -1 when the poll itself is refused, which a gateway at
/// its cap may do with a reset before its 503 can be read (the full suite once hit that).
async fn open_connections(gw: &Gateway) -> f64 {
    let poll = async {
        let mut stream = TcpStream::connect(gw.addr).await?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&raw).into_owned())
    };
    let Ok(metrics) = poll.await else { return -1.0 };
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("invitebus_gateway_connections "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1.0)
}

/// How long `/api/invitation/check` and a command over HTTP take, from an address of their own.
async fn served_within(gw: &Gateway, n: u32) -> (Duration, Duration) {
    let started = Instant::now();
    let check = gw.get("/api/invitation/check", &[]).await;
    assert_eq!(check.status, 200, "{}", check.json());
    let checked = started.elapsed();
    let started = Instant::now();
    let bearer = format!("Bearer {}", Gateway::token("xuan"));
    let body = json!({"resource_id": format!("room{n}"), "kind": "channel", "name": "R"}).to_string();
    let done = gw
        .post("/v1/commands/RegisterResource", &[("Authorization", &bearer)], &body)
        .await;
    assert_eq!(done.status, 200, "{}", done.json());
    (checked, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_and_slow_connections_neither_starve_requests_nor_keep_memory() {
    // Both ends hold every socket: this process needs a descriptor for each too.
    let fds = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    // serve keeps 512 descriptors for itself and caps its connections below the rest.
    let room = (fds as usize).saturating_sub(1_000);
    let (idle_n, slow_n) = if room >= 8_000 {
        (5_000, 3_000)
    } else {
        (room * 5 / 8, room * 3 / 8)
    };
    if idle_n < 5_000 {
        eprintln!("file-descriptor limit {fds}: {idle_n} idle and {slow_n} slow sockets instead of 5,000 and 3,000");
    }
    let env = [("INVITEBUS_HEADER_TIMEOUT", "120")];
    let gw = Gateway::start_with(tempfile::tempdir().unwrap(), &env).await;
    let pid = gw.serve.child.id();
    // Warm: the first requests allocate what every later one reuses.
    for n in 0..20 {
        served_within(&gw, n).await;
    }
    let before = rss_mib(pid);

    // 500 per client address (the per-address cap is 512): idle ones send nothing at all; slow
    // ones send half a request head, then a byte every two seconds.
    let mut idle = Vec::with_capacity(idle_n);
    for i in 0..idle_n {
        idle.push(from(10 + (i / 500) as u8, gw.addr).await);
    }
    let mut slow = Vec::with_capacity(slow_n);
    for i in 0..slow_n {
        let mut s = from(40 + (i / 500) as u8, gw.addr).await;
        s.write_all(b"POST /v1/commands/CreateInvite HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(s);
    }
    let dribble = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            for s in slow.iter_mut() {
                let _ = s.write_all(b"a").await;
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let open = open_connections(&gw).await;
    assert!(open >= (idle_n + slow_n) as f64, "open connections {open}");
    let during = rss_mib(pid);

    let mut worst = (Duration::ZERO, Duration::ZERO);
    for n in 100..110 {
        let (check, command) = served_within(&gw, n).await;
        worst = (worst.0.max(check), worst.1.max(command));
    }
    assert!(worst.0 < Duration::from_secs(1), "the check took {:?}", worst.0);
    assert!(worst.1 < Duration::from_secs(1), "a command took {:?}", worst.1);

    dribble.abort();
    drop(idle);
    // Connections end as the server sees their FIN; then the memory should be back.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut after = rss_mib(pid);
    while (after > before + 16.0 || open_connections(&gw).await > 1.0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        after = rss_mib(pid);
    }
    eprintln!(
        "RSS of serve: {before:.1} MiB before, {during:.1} MiB with {idle_n} idle and {slow_n} slow connections, \
         {after:.1} MiB after they closed; slowest check {:?}, slowest command {:?}",
        worst.0, worst.1
    );
    // An idle socket holds about a kilobyte, a slow one hyper's buffers (some 26 KiB).
    assert!(
        during - before < 160.0,
        "{during:.1} MiB with them open, {before:.1} MiB before"
    );
    assert!(
        after - before < 16.0,
        "{after:.1} MiB after they closed, {before:.1} MiB before"
    );
    assert_eq!(open_connections(&gw).await, 1.0, "only the metrics request's own");
}
