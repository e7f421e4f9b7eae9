//! One batch of the writer: every command decided in order against the cache, all their
//! events appended in one transaction, and only then every reply sent.

use super::*;

/// A reply that is known once the batch has committed.
enum Pending {
    Ready(Reply),
    Appended { index: usize, data: Value },
    SameAs(usize),
}

/// A used command_id sent again with other fields: a mistake of the client, never a retry.
fn reused_id(command_id: &str, command_type: &str) -> ProtocolError {
    ProtocolError::with_field(
        invitebus_events::ErrorCode::Conflict,
        "command_id",
        format!(
            "command_id `{command_id}` was already used for a {command_type} with other fields; \
             a retry must repeat the same body, a new command needs a new command_id"
        ),
    )
}

/// Decides, appends and answers one batch. `head` moves before any reply leaves, so a client that
/// asks `health` right after its reply sees its own position (a gateway test once saw the old one).
pub(super) fn process(owned: &mut Owned, jobs: Vec<Job>, head: &watch::Sender<u64>) {
    let Owned {
        _lock: _,
        log,
        cache,
        ids,
        relay,
        checkpointed,
        stepped_down: _,
        tenure,
    } = owned;
    let ids: &mut dyn IdGen = ids;
    let now = truncate_millis(chrono::Utc::now());
    let mut batch: Vec<AppendCommand> = Vec::new();
    let mut pending: Vec<(Responder, &'static str, std::time::Instant, Pending)> = Vec::with_capacity(jobs.len());
    // A command is known by (actor, command type, command_id); the first of a batch is kept here.
    let mut seen: HashMap<(String, &'static str, String), (usize, String)> = HashMap::new();
    // One query finds every remembered reply under the batch's command_ids.
    let command_ids: Vec<&str> = jobs
        .iter()
        .filter_map(|j| j.request.meta.command_id.as_deref())
        .collect();
    let known = log.lookup_commands(&command_ids);
    drop(command_ids);
    let known = match known {
        Ok(known) => known,
        Err(e) => {
            for job in jobs {
                (job.respond)(Reply::err(ProtocolError::unavailable(format!("reading the log: {e}"))));
            }
            return;
        }
    };
    for Job {
        request,
        respond,
        received,
    } in jobs
    {
        let meta = &request.meta;
        let command_type = request.command.name();
        let digest = request.command.digest();
        if let Some(cid) = &meta.command_id {
            let key = (meta.actor.to_string(), command_type, cid.clone());
            if let Some((first, first_digest)) = seen.get(&key) {
                let reply = match first_digest == &digest {
                    true => Pending::SameAs(*first),
                    false => Pending::Ready(Reply::err(reused_id(cid, command_type))),
                };
                pending.push((respond, command_type, received, reply));
                continue;
            }
            // An exact (typed) reply first; one remembered before types were kept answers too.
            let stored = known
                .iter()
                .filter(|r| r.command_id == *cid && r.answers(meta.actor.as_str(), command_type))
                .max_by_key(|r| r.command_type.is_some());
            if let Some(stored) = stored {
                let reply = match stored.same_body(&digest) {
                    true => {
                        debug!(command_id = %cid, "repeated command answered from the log");
                        Reply::command_ok(stored.data.clone(), stored.position)
                    }
                    false => Reply::err(reused_id(cid, command_type)),
                };
                pending.push((respond, command_type, received, Pending::Ready(reply)));
                continue;
            }
        }
        let ctx = Ctx::new(meta.actor.clone(), meta.roles.clone(), now);
        let outcome = command::execute(cache, log, ids, &ctx, meta, &request.command).and_then(|outcome| {
            let events = outcome
                .events
                .iter()
                .map(|e| cache.apply(e, log))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((outcome.reply, events))
        });
        match outcome {
            Ok((data, events)) => {
                if let Some(cid) = &meta.command_id {
                    let key = (meta.actor.to_string(), command_type, cid.clone());
                    seen.insert(key, (pending.len(), digest.clone()));
                }
                batch.push(AppendCommand {
                    actor: meta.actor.to_string(),
                    command_type,
                    command_digest: digest,
                    command_id: meta.command_id.clone(),
                    correlation_id: meta.correlation_id.clone(),
                    traceparent: meta.traceparent.as_ref().map(|t| t.as_str().to_string()),
                    causation_id: None,
                    events,
                    reply_data: data.clone(),
                });
                pending.push((
                    respond,
                    command_type,
                    received,
                    Pending::Appended {
                        index: batch.len() - 1,
                        data,
                    },
                ));
            }
            Err(e) => {
                if e.code == invitebus_events::ErrorCode::Internal {
                    error!(command_id = ?meta.command_id, command = request.command.name(), error = %e, "internal error");
                }
                pending.push((respond, command_type, received, Pending::Ready(Reply::err(e))));
            }
        }
    }
    // The relay's progress rides along in the batch's transaction.
    let relayed = relay.relayed.as_ref().map(|r| *r.borrow()).filter(|p| p > checkpointed);
    // Checked as late as can be: a holder whose tenure ran out while deciding appends nothing.
    let lease_over = tenure_over(tenure);
    let appended = if batch.is_empty() {
        Ok(Appended {
            positions: vec![],
            published: vec![],
        })
    } else if lease_over {
        metrics::counter!("invitebus_writer_lease_refusals_total").increment(batch.len() as u64);
        Err(LogError::NotLeader)
    } else {
        log.append_batch(&batch, now, relayed.map(|p| (RELAY_CHECKPOINT, p)))
    };
    let positions: Result<Vec<Option<u64>>, String> = match appended {
        Ok(Appended {
            positions: p,
            published,
        }) => {
            // Stored only when a batch carried it (an empty batch commits nothing).
            if let (Some(r), false) = (relayed, batch.is_empty()) {
                *checkpointed = r;
            }
            // A full feed is fine: the relay reads what it missed from the log.
            if let (Some(feed), false) = (&relay.feed, published.is_empty()) {
                let _ = feed.try_send(published);
            }
            for (cmd, pos) in batch.iter().zip(&p) {
                debug!(command_id = ?cmd.command_id, position = ?pos, stream_id = ?cmd.events.first().map(|e| &e.stream_id), "appended");
            }
            Ok(p)
        }
        Err(e) => {
            warn!(error = %e, commands = batch.len(), "batch commit failed; every command in it gets unavailable");
            cache.clear();
            log.clear_cache();
            Err(e.to_string())
        }
    };
    head.send_replace(log.head());
    let mut replies: Vec<Reply> = Vec::with_capacity(pending.len());
    for (_, _, _, p) in &pending {
        let reply = match p {
            Pending::Ready(r) => r.clone(),
            Pending::Appended { index, data } => match &positions {
                Ok(pos) => Reply::command_ok(data.clone(), pos[*index]),
                Err(why) => Reply::err(ProtocolError::unavailable(format!(
                    "the event log could not commit ({why}); retry with the same command_id"
                ))),
            },
            Pending::SameAs(first) => replies[*first].clone(),
        };
        replies.push(reply);
    }
    // Counted per batch, not per command: one registry look-up per (command, outcome) and batch.
    let mut outcomes: HashMap<(&'static str, &'static str), u64> = HashMap::new();
    let duration = metrics::histogram!("invitebus_command_duration_seconds");
    metrics::histogram!("invitebus_batch_commands").record(pending.len() as f64);
    for ((respond, command, received, _), reply) in pending.into_iter().zip(replies) {
        let outcome = reply.error.as_ref().map(|e| e.code.as_str()).unwrap_or("ok");
        *outcomes.entry((command, outcome)).or_default() += 1;
        respond(reply);
        duration.record(received.elapsed().as_secs_f64());
    }
    for ((command, outcome), n) in outcomes {
        metrics::counter!("invitebus_commands_total", "command" => command, "outcome" => outcome).increment(n);
    }
    metrics::gauge!("invitebus_log_head_position").set(log.head() as f64);
    cache.trim();
}
