//! A webhook receiver for tests: a real HTTP server on 127.0.0.1 that records every POST to
//! `/in` (the headers invitebus's webhooks send, and the raw body); it can answer 500 to the
//! next few, answer slowly, and go down and come back on the same address.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One POST the receiver answered 200.
#[derive(Debug, Clone)]
pub struct Got {
    pub webhook: String,
    pub position: u64,
    pub event_type: String,
    pub signature: String,
    pub body: Bytes,
}

/// What the receiver's requests share.
#[derive(Default)]
pub struct Behaviour {
    /// Answer 500 to this many requests more.
    pub fail: AtomicU32,
    /// Wait this many milliseconds before answering.
    pub delay_ms: AtomicU64,
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub got: Arc<Mutex<Vec<Got>>>,
    pub behaviour: Arc<Behaviour>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Receiver {
    /// On a free port.
    pub async fn start() -> Receiver {
        Receiver::on("127.0.0.1:0".parse().expect("an address"), Default::default()).await
    }

    /// On `addr` (again, after [`Receiver::down`]), adding to `got`.
    pub async fn on(addr: SocketAddr, got: Arc<Mutex<Vec<Got>>>) -> Receiver {
        let behaviour = Arc::new(Behaviour::default());
        let (g, b) = (got.clone(), behaviour.clone());
        let app = axum::Router::new().route(
            "/in",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (g, b) = (g.clone(), b.clone());
                async move {
                    let delay = b.delay_ms.load(Ordering::SeqCst);
                    if delay > 0 {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                    }
                    if b.fail
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    g.lock().unwrap_or_else(|p| p.into_inner()).push(Got {
                        webhook: h("invitebus-webhook-id"),
                        position: h("invitebus-position").parse().unwrap_or(0),
                        event_type: h("invitebus-event-type"),
                        signature: h("invitebus-signature"),
                        body,
                    });
                    StatusCode::OK
                }
            }),
        );
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket.bind(addr).expect("the receiver binds");
        let listener = socket.listen(64).expect("the receiver listens");
        let addr = listener.local_addr().expect("its address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Receiver {
            addr,
            got,
            behaviour,
            stop: Some(stop),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/in", self.addr)
    }

    pub fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The positions delivered for `webhook`, in the order they came.
    pub fn positions(&self, webhook: &str) -> Vec<u64> {
        self.got()
            .iter()
            .filter(|g| g.webhook == webhook)
            .map(|g| g.position)
            .collect()
    }

    /// Stops listening: connections are refused until [`Receiver::on`] the same address.
    pub async fn down(mut self) -> (SocketAddr, Arc<Mutex<Vec<Got>>>) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        (self.addr, self.got.clone())
    }
}
