//! Answering a projection's queries: the bounded wait for `min_position` (read-your-writes),
//! then the handler on a blocking thread with a reader that follows the file through rebuilds.

use crate::store;
use async_nats::Client;
use futures::StreamExt;
use invitebus_auth::BusAuth;
use invitebus_events::query::MIN_POSITION_WAIT_MS;
use invitebus_events::ProtocolError;
use std::time::Duration;
use tokio::sync::watch;

/// Waits (bounded) until a projection has applied `min_position`: read-your-writes for queries.
pub async fn wait_for(applied: &mut watch::Receiver<u64>, min_position: Option<u64>) -> Result<(), ProtocolError> {
    let Some(min) = min_position else { return Ok(()) };
    match tokio::time::timeout(
        Duration::from_millis(MIN_POSITION_WAIT_MS),
        applied.wait_for(|p| *p >= min),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        _ => Err(ProtocolError::unavailable(format!(
            "the view has not reached position {min} within {MIN_POSITION_WAIT_MS} ms; retry"
        ))),
    }
}

/// The `min_position` of any query body (absent when the body has none or is not JSON: the
/// handler then answers with the body's own error).
#[derive(serde::Deserialize)]
struct MinPosition {
    #[serde(default)]
    min_position: Option<u64>,
}

/// Answers the requests of `sub` until shutdown, each on its own task: waits for the body's
/// `min_position` (read-your-writes), then runs `handle` on a blocking thread with the read
/// connection, and replies. A query waiting for its position holds up no other.
/// A query that finds the file damaged ([`store::read_error`]) has the role rebuild it. With
/// bus auth on, `handle` sees the body as its token binds it ([`BusAuth::bind`]).
pub async fn answer_queries<F>(
    client: Client,
    mut sub: async_nats::Subscriber,
    reader: std::sync::Arc<std::sync::Mutex<store::Reader>>,
    auth: BusAuth,
    applied: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
    handle: F,
) where
    F: Fn(&rusqlite::Connection, &[u8]) -> Result<serde_json::Value, ProtocolError> + Send + Sync + Clone + 'static,
{
    loop {
        let msg = tokio::select! {
            m = sub.next() => match m { Some(m) => m, None => break },
            _ = shutdown.changed() => break,
        };
        if invitebus_auth::bus::is_delivery(&msg) {
            continue;
        }
        let Some(to) = msg.reply.clone() else { continue };
        let (reader, mut applied, client, handle) = (reader.clone(), applied.clone(), client.clone(), handle.clone());
        let bound = auth.bind_message(&msg);
        tokio::spawn(async move {
            let body = match bound {
                Ok(body) => body,
                Err(e) => {
                    let _ = client
                        .publish(to, invitebus_events::Reply::err(e).to_bytes().into())
                        .await;
                    return;
                }
            };
            let min = serde_json::from_slice::<MinPosition>(&body)
                .ok()
                .and_then(|m| m.min_position);
            let result = match wait_for(&mut applied, min).await {
                Err(e) => Err(e),
                Ok(()) => tokio::task::spawn_blocking(move || {
                    let mut reader = reader.lock().unwrap_or_else(|p| p.into_inner());
                    let result = reader
                        .conn()
                        .map_err(store::read_error)
                        .and_then(|conn| handle(conn, &body));
                    if let Err(e) = &result {
                        if e.message.starts_with(store::DAMAGED) {
                            reader.report_damage(&e.message);
                        }
                    }
                    result
                })
                .await
                .unwrap_or_else(|e| Err(ProtocolError::internal(format!("query task failed: {e}")))),
            };
            let _ = client
                .publish(to, invitebus_events::Reply::from(result).to_bytes().into())
                .await;
        });
    }
}
