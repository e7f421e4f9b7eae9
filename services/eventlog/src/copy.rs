//! Copying `INVITES_EVENTS` into a log: `restore` after a lost disk, a standby following the
//! writer, and a deposed writer dropping the tail it never published. Every copied event must
//! continue the chain (its position the next one, its `prev_hash` the log's last hash, its hash
//! its own fields'), so a copy is the stream's history or nothing.

use crate::error::LogError;
use crate::log::{stream_key, EventLog, INSERT_EVENT};
use crate::relay::REPLY_HEADER;
use crate::RELAY_CHECKPOINT;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use invitebus_events::envelope::format_time;
use invitebus_events::subject::{Subjects, EVENTS_STREAM};
use invitebus_events::Envelope;
use rusqlite::{params, TransactionBehavior};

/// Events copied per transaction.
pub const COPY_BATCH: usize = 2000;

/// One event read from the stream, with the reply its command was answered with (the
/// `Invitebus-Reply` header on a command's last event).
#[derive(Debug, Clone)]
pub struct Copied {
    pub envelope: Envelope,
    pub reply: Option<String>,
}

/// Why a copy stopped.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("jetstream: {0}")]
    Nats(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A message of the stream is not an invitebus envelope at its own position.
    #[error("INVITES_EVENTS message {sequence}: {reason}")]
    Message { sequence: u64, reason: String },
}

impl Copied {
    /// Reads the stream's message at `sequence`: on invitebus's stream sequence = position.
    pub fn from_message(
        sequence: u64,
        headers: Option<&async_nats::HeaderMap>,
        payload: &[u8],
    ) -> Result<Copied, CopyError> {
        let bad = |reason: String| CopyError::Message { sequence, reason };
        let envelope: Envelope = serde_json::from_slice(payload).map_err(|e| bad(format!("not an envelope: {e}")))?;
        if envelope.position != sequence {
            return Err(bad(format!("carries position {}", envelope.position)));
        }
        let reply = headers
            .and_then(|h| h.get(REPLY_HEADER))
            .map(|v| v.as_str().to_string());
        if let Some(r) = &reply {
            serde_json::from_str::<serde_json::Value>(r).map_err(|e| bad(format!("{REPLY_HEADER}: {e}")))?;
        }
        Ok(Copied { envelope, reply })
    }
}

impl EventLog {
    /// Appends events copied from the stream, in one transaction, after checking each continues
    /// the chain; their replies are remembered under their command_id, and the relay's checkpoint
    /// moves to the new head (what came from the stream is published). On error nothing is stored.
    pub fn append_copies(&mut self, copies: &[Copied]) -> Result<(), LogError> {
        self.append_chained(copies, true)
    }

    /// [`append_copies`](Self::append_copies), with the relay's checkpoint moved only when
    /// `published` (the rest of a half-published command is not: this log's relay publishes it).
    fn append_chained(&mut self, copies: &[Copied], published: bool) -> Result<(), LogError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (mut head, mut last_hash) = (self.head, self.last_hash.clone());
        let mut new_keys = Vec::new();
        {
            let mut insert = tx.prepare_cached(INSERT_EVENT)?;
            let mut remember = tx.prepare_cached(
                "INSERT OR REPLACE INTO command_replies (command_id, actor, command_type, digest, position, data) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for Copied { envelope: e, reply } in copies {
                let broken = |reason: &str| LogError::Chain {
                    position: e.position,
                    reason: reason.to_string(),
                };
                if e.position != head + 1 {
                    return Err(broken(&format!("the log's head is {head}")));
                }
                if e.prev_hash != last_hash {
                    return Err(broken("its prev_hash is not the log's last hash"));
                }
                if !e.hash_is_valid() {
                    return Err(broken("its hash does not match its fields"));
                }
                let key = match self.stream_keys.get(&e.stream_id) {
                    Some(k) => *k,
                    None => {
                        let k = stream_key(&tx, &e.stream_id, &e.stream_type)?;
                        new_keys.push((e.stream_id.clone(), k));
                        k
                    }
                };
                insert.execute(params![
                    e.position as i64,
                    key,
                    e.version as i64,
                    e.event_type,
                    e.schema,
                    format_time(&e.recorded_at),
                    e.actor,
                    e.command_id,
                    e.correlation_id,
                    e.causation_id,
                    serde_json::to_string(&e.data).expect("json values serialize"),
                    e.prev_hash,
                    e.hash,
                    e.command_type,
                    e.command_digest,
                    e.traceparent,
                ])?;
                if let (Some(id), Some(data)) = (&e.command_id, reply) {
                    remember.execute(params![
                        id,
                        e.actor,
                        e.command_type.as_deref().unwrap_or(""),
                        e.command_digest.as_deref().unwrap_or(""),
                        e.position as i64,
                        data
                    ])?;
                }
                head = e.position;
                last_hash = e.hash.clone();
            }
        }
        if published {
            crate::checkpoint::set(&tx, RELAY_CHECKPOINT, head)?;
        }
        tx.commit()?;
        self.head = head;
        self.last_hash = last_hash;
        self.stream_keys.extend(new_keys);
        Ok(())
    }

    /// Drops every event after `kept`, the replies remembered for their commands (a retry is
    /// decided anew, not answered with a reply nobody got) and the streams only they had: what a
    /// writer deposed by another does with the tail it never published. Returns how many events
    /// went.
    pub fn discard_after(&mut self, kept: u64) -> Result<u64, LogError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "CREATE TEMP TABLE IF NOT EXISTS discarded_streams (stream_key INTEGER PRIMARY KEY)",
            [],
        )?;
        tx.execute("DELETE FROM temp.discarded_streams", [])?;
        tx.execute(
            "INSERT OR IGNORE INTO temp.discarded_streams SELECT stream_key FROM events WHERE position > ?1",
            [kept as i64],
        )?;
        let gone = tx.execute("DELETE FROM events WHERE position > ?1", [kept as i64])? as u64;
        tx.execute("DELETE FROM command_replies WHERE position > ?1", [kept as i64])?;
        tx.execute(
            "DELETE FROM streams WHERE stream_key IN (SELECT stream_key FROM temp.discarded_streams) \
             AND NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_key = streams.stream_key)",
            [],
        )?;
        let (head, last_hash) = crate::log::tip(&tx)?;
        if crate::checkpoint::get(&tx, RELAY_CHECKPOINT)? > head {
            crate::checkpoint::set(&tx, RELAY_CHECKPOINT, head)?;
        }
        tx.commit()?;
        self.head = head;
        self.last_hash = last_hash;
        self.stream_keys.clear();
        Ok(gone)
    }
}

/// Copies `INVITES_EVENTS` after the log's head up to position `until` (the stream's last
/// sequence when None), `COPY_BATCH` events per transaction, calling `progress` with the head
/// after each. The log is written on a blocking thread and handed back.
pub async fn copy_from_stream(
    js: &jetstream::Context,
    mut log: EventLog,
    until: Option<u64>,
    mut progress: impl FnMut(u64) + Send,
) -> Result<EventLog, CopyError> {
    let nats = |e: Box<dyn std::error::Error + Send + Sync>| CopyError::Nats(e);
    let mut stream = js.get_stream(EVENTS_STREAM).await.map_err(|e| nats(e.into()))?;
    let last = stream.info().await.map_err(|e| nats(e.into()))?.state.last_sequence;
    let until = until.unwrap_or(last).min(last);
    if log.head() >= until {
        return Ok(log);
    }
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: log.head() + 1,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| nats(e.into()))?;
    let mut chunks = consumer
        .messages()
        .await
        .map_err(|e| nats(e.into()))?
        .ready_chunks(COPY_BATCH);
    while log.head() < until {
        let Some(chunk) = chunks.next().await else {
            return Err(nats("the stream's consumer ended".into()));
        };
        let mut copies = Vec::with_capacity(chunk.len());
        for message in chunk {
            let message = message.map_err(|e| nats(e.into()))?;
            let sequence = message.info().map_err(|e| nats(e.to_string().into()))?.stream_sequence;
            if sequence > until {
                break;
            }
            copies.push(Copied::from_message(
                sequence,
                message.headers.as_ref(),
                &message.payload,
            )?);
        }
        log = tokio::task::spawn_blocking(move || log.append_copies(&copies).map(|()| log))
            .await
            .map_err(|e| nats(e.into()))??;
        progress(log.head());
    }
    Ok(log)
}

/// Follows `INVITES_EVENTS` into the log from its head until `stop` fires (a standby writer):
/// every event checked against the chain, `followed` told each new head. A consumer that fails
/// is made again from the head after a pause; an event that breaks the chain ends the follow
/// with the error (the log and the stream have parted: never skipped). Hands the log back.
pub async fn follow(
    js: &jetstream::Context,
    mut log: EventLog,
    mut stop: tokio::sync::watch::Receiver<bool>,
    followed: &tokio::sync::watch::Sender<u64>,
) -> Result<EventLog, CopyError> {
    followed.send_replace(log.head());
    loop {
        let start_sequence = log.head() + 1;
        let chunks = async {
            let stream = js
                .get_stream(EVENTS_STREAM)
                .await
                .map_err(|e| CopyError::Nats(e.into()))?;
            let consumer = stream
                .create_consumer(consumer::pull::OrderedConfig {
                    deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence },
                    ..Default::default()
                })
                .await
                .map_err(|e| CopyError::Nats(e.into()))?;
            Ok::<_, CopyError>(
                consumer
                    .messages()
                    .await
                    .map_err(|e| CopyError::Nats(e.into()))?
                    .ready_chunks(COPY_BATCH),
            )
        };
        let mut chunks = tokio::select! {
            made = chunks => match made {
                Ok(chunks) => chunks,
                Err(e) => {
                    tracing::warn!(error = %e, position = log.head(), "standby cannot follow INVITES_EVENTS yet; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                        _ = stop.changed() => return Ok(log),
                    }
                }
            },
            _ = stop.changed() => return Ok(log),
        };
        loop {
            let chunk = tokio::select! {
                chunk = chunks.next() => chunk,
                _ = stop.changed() => return Ok(log),
            };
            let Some(chunk) = chunk else { break };
            let mut copies = Vec::with_capacity(chunk.len());
            let mut failed = None;
            for message in chunk {
                match message {
                    Ok(m) => match m.info() {
                        Ok(info) => copies.push(Copied::from_message(
                            info.stream_sequence,
                            m.headers.as_ref(),
                            &m.payload,
                        )?),
                        Err(e) => failed = Some(e.to_string()),
                    },
                    Err(e) => failed = Some(e.to_string()),
                }
                if failed.is_some() {
                    break;
                }
            }
            if !copies.is_empty() {
                log = tokio::task::spawn_blocking(move || log.append_copies(&copies).map(|()| log))
                    .await
                    .map_err(|e| CopyError::Nats(e.into()))??;
                followed.send_replace(log.head());
            }
            if let Some(e) = failed {
                tracing::warn!(error = %e, position = log.head(), "standby's consumer failed; following again from the head");
                break;
            }
        }
    }
}

/// The last position of `log` that `INVITES_EVENTS` holds as this log's own event: everything
/// after it was never published (a writer that crashed or was deposed). The chain makes the
/// answer a binary search: the stream's event at `p` carrying this log's hash at `p` means both
/// hold the same `1..=p`.
pub async fn published_prefix(js: &jetstream::Context, log: &mut EventLog) -> Result<u64, CopyError> {
    let stream = js
        .get_stream(EVENTS_STREAM)
        .await
        .map_err(|e| CopyError::Nats(e.into()))?;
    let mut info = stream.clone();
    let last = info
        .info()
        .await
        .map_err(|e| CopyError::Nats(e.into()))?
        .state
        .last_sequence;
    let (mut lo, mut hi) = (0, last.min(log.head()));
    // Invariant: `lo` is shared (0 always is), everything past `hi` is not.
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        let ours = log
            .reader()?
            .read_published(mid - 1, 1)?
            .into_iter()
            .next()
            .map(|e| e.hash);
        let theirs = crate::stored::hash_at(&stream, mid)
            .await
            .map_err(|e| CopyError::Nats(e.into()))?;
        match ours.is_some() && ours == theirs {
            true => lo = mid,
            false => hi = mid - 1,
        }
    }
    Ok(lo)
}

/// When the log ends where the stream does, inside a command of several events (its writer
/// stopped between two of their publishes), appends the rest of that command as its first event
/// carries it ([`crate::stored`]), unpublished: this log's relay publishes it next. A writer
/// taking over calls this before deciding anything. Returns how many events were appended: 0
/// when the tip ends a command, or when its rest cannot be used (none carried, as by a writer
/// older than the rests; its parts gone from `INVITES_RESTS`; unreadable; not continuing the
/// chain), which is logged and counted
/// (`invitebus_writer_partial_commands_total`) and never stops a takeover.
pub async fn complete_tip(js: &jetstream::Context, subjects: &Subjects, log: &mut EventLog) -> Result<u64, CopyError> {
    let nats = |e: Box<dyn std::error::Error + Send + Sync>| CopyError::Nats(e);
    let mut stream = js.get_stream(EVENTS_STREAM).await.map_err(|e| nats(e.into()))?;
    let last = stream.info().await.map_err(|e| nats(e.into()))?.state.last_sequence;
    if last == 0 || log.head() != last {
        return Ok(0);
    }
    let tip = stream.get_raw_message(last).await.map_err(|e| nats(e.into()))?;
    let Some((first, end)) = crate::stored::span_of(&tip.headers) else {
        return Ok(0);
    };
    if end <= last || first > last {
        return Ok(0);
    }
    // Past this point nothing stops a takeover: a rest that cannot be read or does not continue
    // the chain leaves the command partial, said in the log and counted, as before this existed.
    let partial = |reason: String| {
        tracing::error!(position = last, first, end, %reason, "the stream ends inside a command whose rest cannot be used: it stays partial");
        metrics::counter!("invitebus_writer_partial_commands_total").increment(1);
        Ok(0)
    };
    let head = match first == last {
        true => tip,
        false => match stream.get_raw_message(first).await {
            Ok(m) => m,
            Err(e) => return partial(format!("its first event, {first}: {e}")),
        },
    };
    let rest = match crate::stored::rest_of(js, subjects, &head).await {
        Ok(rest) => rest,
        Err(crate::stored::RestError::Gone(why)) => return partial(why),
        // Not an answer: the takeover tries again (never deciding on half a command).
        Err(crate::stored::RestError::Nats(why)) => return Err(nats(why.into())),
    };
    let rest: crate::stored::Rest = match serde_json::from_str(&rest) {
        Ok(rest) => rest,
        Err(e) => return partial(format!("its rest: {e}")),
    };
    let count = rest.events.len();
    let mut copies: Vec<Copied> = rest
        .events
        .into_iter()
        .filter(|e| e.position > last)
        .map(|envelope| Copied { envelope, reply: None })
        .collect();
    if copies.last().map(|c| c.envelope.position) != Some(end) || count as u64 != end - first {
        return partial(format!("its rest does not end the command at {end}"));
    }
    if let Some(c) = copies.last_mut() {
        c.reply = rest.reply.map(|r| r.to_string());
    }
    let appended = copies.len() as u64;
    if let Err(e) = log.append_chained(&copies, false) {
        return partial(format!("its rest does not continue the log: {e}"));
    }
    tracing::warn!(
        position = last,
        appended,
        "the stream ended inside a command (its writer stopped between two publishes): appended the rest it carried, to publish"
    );
    metrics::counter!("invitebus_writer_completed_commands_total").increment(1);
    Ok(appended)
}
