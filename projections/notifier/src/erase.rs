//! Erasing from `INVITES_NOTIFY` what a forgotten user's name was in: each notification a
//! forget queued (`forget_erase`) is deleted from the stream by its sequence, which overwrites
//! the stored bytes (a purge would not). One sent before sequences were kept is found on its
//! recipient's subject by its id (`Nats-Msg-Id`). The queue row goes once the message is gone.

use crate::store::NotifierError;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use invitebus_events::subject::{Subjects, NOTIFY_STREAM};
use invitebus_feed::store::Reader;
use rusqlite::params;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

/// What a search of a subject found.
enum Found {
    At(u64),
    /// Read to the end: not there (never stored, or gone).
    Absent,
    /// The reading stopped before the end.
    Unsure,
}

/// What one turn of the eraser did.
#[derive(Default)]
struct Turn {
    /// Erased, or found gone already: off the queue.
    settled: usize,
    /// Not found for sure (the reading stopped short): still queued.
    unsure: usize,
}

pub struct Eraser {
    pub conn: Arc<Mutex<Reader>>,
    pub js: jetstream::Context,
    pub subjects: Subjects,
}

impl Eraser {
    pub async fn run(self, mut applied: watch::Receiver<u64>, mut shutdown: watch::Receiver<bool>) {
        loop {
            match self.erase_some().await {
                // Straight on while whole batches go; a batch with rows it could not settle
                // waits like an empty one (before, it went round again at once, for ever).
                Ok(Turn { settled, unsure: 0 }) if settled > 0 => continue,
                Ok(Turn { unsure, .. }) if unsure > 0 => {
                    warn!(unsure, "forgotten notifications not found in INVITES_NOTIFY yet (the reading stopped short); looking again")
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "erasing forgotten notifications failed; retrying"),
            }
            tokio::select! {
                _ = invitebus_feed::moved_or(&mut applied, Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    fn queued(&self) -> Result<Vec<(String, String, Option<u64>)>, NotifierError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let rows = conn
            .conn()?
            .prepare_cached("SELECT id, user_id, nseq FROM forget_erase LIMIT 100")?
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, Option<i64>>(2)?.map(|s| s as u64)))
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Settles up to 100 queued notifications: each erased, or found gone.
    async fn erase_some(&self) -> Result<Turn, NotifierError> {
        let rows = self.queued()?;
        let mut turn = Turn::default();
        if rows.is_empty() {
            return Ok(turn);
        }
        let nats = |e: Box<dyn std::error::Error + Send + Sync>| NotifierError::Nats(e);
        let stream = self.js.get_stream(NOTIFY_STREAM).await.map_err(|e| nats(e.into()))?;
        for (id, user, seq) in &rows {
            let seq = match seq {
                Some(s) => Some(*s),
                None => match self.find(&stream, user, id).await? {
                    Found::At(s) => Some(s),
                    Found::Absent => None,
                    // Not read to the end: asked again next turn.
                    Found::Unsure => {
                        turn.unsure += 1;
                        continue;
                    }
                },
            };
            if let Some(seq) = seq {
                match stream.delete_message(seq).await {
                    Ok(_) => {
                        metrics::counter!("invitebus_notifications_erased_total").increment(1);
                        info!(notification = %id, seq, "a forgotten user's notification was erased from INVITES_NOTIFY")
                    }
                    // Gone already (erased before, or aged out).
                    Err(e) if e.to_string().contains("no message found") => {}
                    Err(e) => return Err(nats(e.into())),
                }
            }
            let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            conn.conn()?
                .prepare_cached("DELETE FROM forget_erase WHERE id = ?1")?
                .execute(params![id])?;
            turn.settled += 1;
        }
        Ok(turn)
    }

    /// Where notification `id` is on `user`'s subject, looked for message by message.
    async fn find(&self, stream: &jetstream::stream::Stream, user: &str, id: &str) -> Result<Found, NotifierError> {
        let nats = |e: Box<dyn std::error::Error + Send + Sync>| NotifierError::Nats(e);
        let Ok(user) = invitebus_events::Id::parse(user) else {
            return Ok(Found::Absent);
        };
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: self.subjects.notify(&user),
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| nats(e.into()))?;
        if consumer.cached_info().num_pending == 0 {
            return Ok(Found::Absent);
        }
        let mut messages = consumer.messages().await.map_err(|e| nats(e.into()))?;
        while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(2), messages.next()).await {
            let msg = msg.map_err(|e| nats(e.into()))?;
            let info = msg.info().map_err(nats)?;
            let is = msg
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .is_some_and(|v| v.as_str() == id);
            if is {
                return Ok(Found::At(info.stream_sequence));
            }
            if info.pending == 0 {
                return Ok(Found::Absent);
            }
        }
        Ok(Found::Unsure)
    }
}
