//! The gateway's listener: HTTP/1.1 connections within bounds. A client that dribbles its
//! headers, or keeps a connection open without sending a request, is closed after
//! [`Bounds::header_timeout`]; connections are capped in all and per client address, so a
//! crowd of idle sockets cannot take the file descriptors the rest of the process needs.
//! Writes a client does not take end the connection after [`Bounds::write_stall`].
//! Body read deadlines and idle sessions (WebSocket, SSE) are bounded where they are read
//! ([`crate::shape`], [`crate::signaling`], [`crate::exports`]).

use crate::limits::one_client;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

/// How many connections the gateway holds, and how long it waits for a request.
#[derive(Clone, Debug)]
pub struct Bounds {
    /// Open connections in all; past it a new one gets a bare 503 and is closed.
    pub max_connections: usize,
    /// Open connections from one client address (an IPv6 /64); above the per-address rate
    /// limits' concern, this one keeps one machine from holding every connection.
    pub max_per_address: usize,
    /// From a connection's start to its first byte, from there (or the end of its last response)
    /// to the end of the next request's headers: slowloris and idle keep-alive connections end
    /// here (a first request may so take up to twice this).
    pub header_timeout: Duration,
    /// From the end of a request's headers to the end of its body.
    pub body_timeout: Duration,
    /// A WebSocket that receives nothing this long (a pong to the gateway's pings counts), or an
    /// export's progress stream that sends nothing this long, is closed.
    pub session_idle: Duration,
    /// A write the client does not take (its window stays shut) this long ends the connection.
    pub write_stall: Duration,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_connections: 10_000,
            max_per_address: 512,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            session_idle: Duration::from_secs(120),
            write_stall: Duration::from_secs(30),
        }
    }
}

/// What a connection refused at the door gets: no request is read, so no API's shape applies.
const FULL: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// Serves `app` on `listener` until `shutdown` resolves, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    bounds: Bounds,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let doors = Arc::new(Doors::new(&bounds));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut refusals = Refusals::default();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, mostly: the caps should keep this from happening.
                metrics::counter!("invitebus_gateway_accept_errors_total").increment(1);
                tracing::error!(error = %e, "the gateway cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let ticket = match doors.admit(peer.ip()) {
            Ok(ticket) => ticket,
            Err(scope) => {
                refusals.count(scope);
                let _ = stream.try_write(FULL);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let bounds = bounds.clone();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            serve_one(stream, ticket, peer, app, &bounds, stopping).await;
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every ticket back: every connection has ended, WebSockets included (they close on
    // `Stopping`); the caller bounds how long it waits.
    let _ = doors
        .all
        .acquire_many(bounds.max_connections.try_into().unwrap_or(u32::MAX))
        .await;
    Ok(())
}

/// One HTTP/1.1 connection (upgrades included) until it ends or the gateway stops. Until its
/// first byte it is only a socket: hyper's buffers come when there is something to read. 5,000
/// idle sockets took 86 MiB handed to hyper at once, 6 MiB this way (`gateway_connections`).
async fn serve_one(
    stream: TcpStream,
    ticket: Ticket,
    peer: std::net::SocketAddr,
    app: axum::Router,
    bounds: &Bounds,
    stopping: tokio::sync::watch::Receiver<bool>,
) {
    let mut waiting = stopping.clone();
    let mut stop = std::pin::pin!(async move {
        let _ = waiting.wait_for(|stop| *stop).await;
    });
    let mut first = [0u8; 1];
    tokio::select! {
        waited = tokio::time::timeout(bounds.header_timeout, stream.peek(&mut first)) => match waited {
            Ok(Ok(1..)) => {}
            Ok(Ok(0) | Err(_)) => return,
            Err(_) => {
                metrics::counter!("invitebus_gateway_connections_timed_out_total").increment(1);
                return;
            }
        },
        () = &mut stop => return,
    }
    let stopped = Stopping(stopping.clone());
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(stopped.clone());
        app.clone().oneshot(request.map(axum::body::Body::new))
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(bounds.header_timeout)
        .serve_connection(TokioIo::new(Stalling::new(stream, ticket, bounds.write_stall)), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let ended = tokio::select! {
        // A request already waiting is served before a stop closes the connection.
        biased;
        ended = connection.as_mut() => ended,
        () = &mut stop => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = ended {
        if e.is_timeout() {
            metrics::counter!("invitebus_gateway_connections_timed_out_total").increment(1);
        }
        tracing::debug!(error = %e, %peer, "connection ended");
    }
}

/// A request extension that resolves once the gateway stops, for sessions that outlive their
/// request (WebSockets) to close themselves.
#[derive(Clone)]
pub struct Stopping(tokio::sync::watch::Receiver<bool>);

impl Stopping {
    /// Resolves when the gateway stops; never when the request did not come through [`serve`].
    pub async fn wait(stopping: Option<Stopping>) {
        let stopped = match stopping {
            Some(mut s) => s.0.wait_for(|stop| *stop).await.is_ok(),
            None => false,
        };
        if !stopped {
            std::future::pending::<()>().await;
        }
    }
}

/// The connection caps: a semaphore for all, a count per client address.
struct Doors {
    all: Arc<Semaphore>,
    per_address: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// Which cap refused a connection.
#[derive(Clone, Copy, Debug)]
enum Full {
    All,
    Address,
}

/// An admitted connection's place; giving it back frees the slot in both caps.
struct Ticket {
    doors: Arc<Doors>,
    key: IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl Doors {
    fn new(bounds: &Bounds) -> Doors {
        Doors {
            all: Arc::new(Semaphore::new(bounds.max_connections)),
            per_address: bounds.max_per_address,
            open: Mutex::new(HashMap::new()),
        }
    }

    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Full> {
        let permit = self.all.clone().try_acquire_owned().map_err(|_| Full::All)?;
        let key = one_client(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.get(&key).copied().unwrap_or(0);
        if count >= self.per_address {
            return Err(Full::Address);
        }
        open.insert(key, count + 1);
        metrics::gauge!("invitebus_gateway_connections").increment(1.0);
        Ok(Ticket {
            doors: self.clone(),
            key,
            _permit: permit,
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut open = self.doors.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
        metrics::gauge!("invitebus_gateway_connections").decrement(1.0);
    }
}

/// Refused connections, counted always and logged at most every ten seconds.
#[derive(Default)]
struct Refusals {
    since_log: u64,
    logged: Option<Instant>,
}

impl Refusals {
    fn count(&mut self, full: Full) {
        let scope = match full {
            Full::All => "all",
            Full::Address => "address",
        };
        metrics::counter!("invitebus_gateway_connections_refused_total", "scope" => scope).increment(1);
        self.since_log += 1;
        if self.logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            tracing::warn!(
                scope,
                refused = self.since_log,
                "the gateway refuses connections: at its cap"
            );
            self.since_log = 0;
            self.logged = Some(Instant::now());
        }
    }
}

/// A socket whose writes fail once they have waited `bound` for the client to read: a client
/// that stops reading would otherwise hold its connection, and what waits for it, forever.
/// It also holds the connection's [`Ticket`]: an upgraded connection (a WebSocket) moves the
/// socket out of hyper into a session of its own, and counts in the caps until that ends.
struct Stalling {
    inner: TcpStream,
    _ticket: Ticket,
    bound: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Stalling {
    fn new(inner: TcpStream, ticket: Ticket, bound: Duration) -> Stalling {
        Stalling {
            inner,
            _ticket: ticket,
            bound,
            stalled: None,
        }
    }

    /// `polled` as it came, unless it has been pending past the bound.
    fn watch<T>(&mut self, polled: Poll<std::io::Result<T>>, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let bound = self.bound;
        let stalled = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(bound)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => {
                metrics::counter!("invitebus_gateway_write_stalls_total").increment(1);
                Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the client took nothing for the write bound",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Stalling {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stalling {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(polled, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(polled, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(polled, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
