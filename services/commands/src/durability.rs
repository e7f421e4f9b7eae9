//! When a command is answered: once its events are in the local log (`local`), or once
//! JetStream has acknowledged every one of them too (`replicated`: on an R3 stream, stored by a
//! majority), so that an acknowledged command survives the loss of the writer's disk.
//! One wait serves every reply of a batch: replies are held by position and released together
//! as the relay's acknowledged position moves (the writer's group commit is untouched).

use async_nats::{Client, Subject};
use invitebus_events::Reply;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tracing::warn;

/// What an acknowledgement of a command promises.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Committed to the local log (synced as the writer's `sync` says).
    #[default]
    Local,
    /// Committed locally and acknowledged by JetStream.
    Replicated,
}

/// A held reply is dropped after this long: its requester has timed out long before, and a
/// retry with the same `command_id` is answered from the log once the relay has caught up.
pub const MAX_HOLD: Duration = Duration::from_secs(60);

/// Publishes every reply; under [`Durability::Replicated`] a reply carrying a position waits
/// until `relayed` (JetStream's acknowledged position) has reached it.
pub async fn reply_loop(
    client: Client,
    mut rx: mpsc::UnboundedReceiver<(Subject, Reply)>,
    mut relayed: Option<watch::Receiver<u64>>,
    mut deposed: watch::Receiver<Option<u64>>,
) {
    let mut buf: Vec<(Subject, Reply)> = Vec::with_capacity(256);
    let mut held: VecDeque<(u64, Instant, Subject, Reply)> = VecDeque::new();
    let mut deposed_open = true;
    // A relay that has stopped (fenced, or failed) publishes nothing more: its last position
    // still bounds what may be answered (before, a stopped relay released every held reply).
    let mut relay_open = true;
    loop {
        let through = relayed.as_mut().map_or(u64::MAX, |r| *r.borrow_and_update());
        let mut ready = Vec::new();
        for (to, reply) in buf.drain(..) {
            match reply.position.flatten() {
                Some(p) if p > through => held.push_back((p, Instant::now(), to, reply)),
                _ => ready.push((to, reply)),
            }
        }
        // Positions grow with commit order, so what is released is a prefix, mostly.
        held.make_contiguous().sort_by_key(|h| h.0);
        while held.front().is_some_and(|h| h.0 <= through) {
            if let Some((_, _, to, reply)) = held.pop_front() {
                ready.push((to, reply));
            }
        }
        // A deposed writer's tail is never published: its held replies say so now (the commands
        // were dropped with it, so a retry is decided anew by the writer that owns the stream).
        if let Some(kept) = *deposed.borrow_and_update() {
            for (p, _, to, reply) in held.drain(..) {
                if p <= kept {
                    ready.push((to, reply));
                    continue;
                }
                let error = invitebus_events::ProtocolError::unavailable(format!(
                    "this writer was deposed before JetStream stored the command (another writer owns \
                     the stream after position {kept}); retry with the same command_id"
                ));
                ready.push((to, Reply::err(error)));
            }
        }
        let before = held.len();
        held.retain(|h| h.1.elapsed() < MAX_HOLD);
        if held.len() < before {
            let n = before - held.len();
            metrics::counter!("invitebus_replies_expired_total").increment(n as u64);
            warn!(
                dropped = n,
                relayed = through,
                "replies held past {} s for JetStream's acknowledgement, dropped",
                MAX_HOLD.as_secs()
            );
        }
        metrics::gauge!("invitebus_replies_held").set(held.len() as f64);
        for (to, reply) in ready {
            if let Err(e) = client.publish(to, reply.to_bytes().into()).await {
                warn!(error = %e, "could not send a reply");
            }
        }
        let waiting = !held.is_empty();
        tokio::select! {
            n = rx.recv_many(&mut buf, 256) => if n == 0 { break },
            changed = async {
                match relayed.as_mut() {
                    Some(r) if waiting && relay_open => r.changed().await.is_ok(),
                    _ => std::future::pending().await,
                }
            } => relay_open = changed,
            changed = deposed.changed(), if waiting && deposed_open => deposed_open = changed.is_ok(),
            // Held replies expire even when nothing moves.
            () = tokio::time::sleep(Duration::from_secs(1)), if waiting => {}
        }
    }
    let _ = client.flush().await;
}
