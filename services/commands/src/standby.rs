//! A standby writer: while another instance holds the writer's lease, this one follows
//! `INVITES_EVENTS` into its own log (every event checked against the chain), answers the log
//! queries (`history`, `state`) from it, reports itself on `invites.status.standby-<holder>`
//! (so the leader's health lists it), and polls for the lease. Having won it, it catches up to
//! the stream's last sequence, renewing as it goes, and hands over to the writer.

use crate::lease::{self, Lease, LeaseSettings};
use crate::service::{query_loop, ServiceConfig, ServiceError};
use async_nats::jetstream::{self, kv};
use async_nats::Client;
use invitebus_eventlog::copy::{self, copy_from_stream, CopyError};
use invitebus_eventlog::{EventLog, LogReader, Options};
use invitebus_events::envelope::format_time;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tracing::{error, info, warn};

/// Runs as a standby until this instance wins the lease (then its log holds everything the
/// stream does, and the lease is handed back) or `shutdown` fires (None).
pub async fn stand_by(
    client: &Client,
    js: &jetstream::Context,
    store: &kv::Store,
    config: &ServiceConfig,
    settings: &LeaseSettings,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<Lease>, ServiceError> {
    // On a fresh cluster nobody has made the stream yet: the standby follows an empty one.
    invitebus_eventlog::relay::ensure_events_stream(js, &config.subjects)
        .await
        .map_err(|e| ServiceError::Nats(e.into()))?;
    let path = config.writer.log_path.clone();
    let lock =
        invitebus_filelock::lock(&path, "the commands role (standby)").map_err(invitebus_eventlog::LogError::Lock)?;
    let mut log = EventLog::open(
        &path,
        &Options {
            sync: config.writer.sync,
        },
    )?;
    // What this log holds beyond the stream was never published: under replicated durability
    // never acknowledged either. It goes before following (a crashed or deposed writer's tail).
    // Never what the relay had published (its checkpoint): a stream short of that lost
    // acknowledged events (deleted and made anew, or restored older), and this log is where
    // they still are; its relay publishes them again once this instance leads.
    let shared = copied(copy::published_prefix(js, &mut log).await)?;
    let acknowledged = log.checkpoint(invitebus_eventlog::RELAY_CHECKPOINT)?.min(log.head());
    let kept = shared.max(acknowledged);
    if kept > shared {
        error!(
            position = shared,
            checkpoint = acknowledged,
            "standby: INVITES_EVENTS holds this log only this far, short of what its relay had published; keeping the rest"
        );
        metrics::counter!("invitebus_standby_stream_short_total").increment(1);
    }
    if kept < log.head() {
        let gone = log.discard_after(kept)?;
        warn!(
            position = kept,
            discarded = gone,
            "standby: dropped the log's unpublished tail"
        );
        metrics::counter!("invitebus_writer_discarded_events_total").increment(gone);
    }
    let name = format!("standby-{}", settings.holder);
    let (stop_tx, stop) = watch::channel(false);
    let (followed_tx, followed) = watch::channel(log.head());
    let follower = {
        let js = js.clone();
        tokio::spawn(async move { copy::follow(&js, log, stop, &followed_tx).await })
    };
    let mut tasks = Vec::new();
    let reader = Arc::new(Mutex::new(LogReader::open(&path)?));
    let keys = crate::service::key_ring(client, config).await?;
    for (query, run) in [
        ("history", crate::queries::history as crate::service::QueryFn),
        ("state", crate::queries::state),
    ] {
        let sub = client
            .queue_subscribe(config.subjects.query(query), config.queue_group.clone())
            .await
            .map_err(|e| ServiceError::Nats(e.into()))?;
        tasks.push(tokio::spawn(query_loop(
            client.clone(),
            sub,
            reader.clone(),
            (run, config.bus_auth.clone(), keys.clone()),
            stop_tx.subscribe(),
        )));
    }
    tasks.push(tokio::spawn(report(
        client.clone(),
        js.clone(),
        config.subjects.status(&name),
        name.clone(),
        followed.clone(),
        stop_tx.subscribe(),
    )));
    info!(holder = %settings.holder, position = *followed.borrow(), "standby: following INVITES_EVENTS, waiting for the writer's lease");
    metrics::gauge!("invitebus_writer_leader").set(0.0);
    let won = loop {
        tokio::select! {
            _ = tokio::time::sleep(settings.poll_every()) => {}
            _ = shutdown.changed() => break None,
        }
        if follower.is_finished() {
            // The follow ended by itself: the stream and this log parted. Never take the lease
            // with such a log; stay a standby that says so (health lists it as `diverged`).
            break None;
        }
        match lease::try_acquire(store, settings).await {
            Ok(Some(lease)) => break Some(lease),
            Ok(None) => {}
            Err(e) => warn!(error = %e, "standby cannot read the writer's lease"),
        }
    };
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    let log = match follower.await {
        Ok(Ok(log)) => log,
        Ok(Err(e)) => {
            error!(error = %e, "standby: the stream and this log have parted; restore the log (`invitebus restore --from-jetstream`) into an empty folder");
            metrics::counter!("invitebus_standby_diverged_total").increment(1);
            if let Some(lease) = won {
                lease.release().await;
            }
            drop(lock);
            return Err(copy_error(e));
        }
        Err(e) => return Err(ServiceError::Nats(e.into())),
    };
    let Some(mut lease) = won else { return Ok(None) };
    // Won: catch up to the stream's last sequence before deciding anything, renewing meanwhile.
    info!(holder = %settings.holder, position = log.head(), "won the writer's lease; catching up to INVITES_EVENTS");
    let js2 = js.clone();
    let catch_up = copy_from_stream(&js2, log, None, |_| {});
    let log = crate::elected::while_renewing(catch_up, &mut lease, None, settings).await;
    let mut log = match log {
        Some(Ok(log)) => log,
        Some(Err(e)) => {
            lease.release().await;
            return Err(copy_error(e));
        }
        None => return Err(ServiceError::Nats("lost the writer's lease while catching up".into())),
    };
    // The last writer may have stopped between two publishes of one command: finish it (its
    // first event carries the rest) before anything is decided on half of it.
    if let Err(e) = copy::complete_tip(js, &config.subjects, &mut log).await {
        lease.release().await;
        return Err(copy_error(e));
    }
    info!(position = log.head(), "caught up; this instance is the writer");
    drop(log);
    drop(lock);
    Ok(Some(lease))
}

fn copied<T>(r: Result<T, CopyError>) -> Result<T, ServiceError> {
    r.map_err(copy_error)
}

fn copy_error(e: CopyError) -> ServiceError {
    match e {
        CopyError::Log(e) => ServiceError::Log(e),
        other => ServiceError::Nats(other.into()),
    }
}

/// Publishes the standby's status every 500 ms: its position, the stream's, the lag.
async fn report(
    client: Client,
    js: jetstream::Context,
    subject: String,
    name: String,
    followed: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    const STANDBY_STALL: Duration = Duration::from_secs(10);
    let mut last = (0, chrono::Utc::now(), std::time::Instant::now());
    let (mut stalls, mut was_stalled) = (0u64, false);
    loop {
        let position = *followed.borrow();
        if position != last.0 {
            last = (position, chrono::Utc::now(), std::time::Instant::now());
        }
        // Unknown when the stream cannot be read: never the standby's own position, which
        // would read as no lag.
        let head = match js.get_stream(invitebus_events::subject::EVENTS_STREAM).await {
            Ok(mut s) => s.info().await.map(|i| i.state.last_sequence).ok(),
            Err(_) => None,
        };
        let lag = head.map(|h| h.saturating_sub(position));
        // Behind and still for this long: `stalled`, which fails health like a stalled role.
        let stalled = lag.is_some_and(|l| l > 0) && last.2.elapsed() > STANDBY_STALL;
        if stalled && !was_stalled {
            stalls += 1;
            warn!(position, ?head, "the standby is behind INVITES_EVENTS and not moving");
            metrics::counter!("invitebus_standby_stalls_total").increment(1);
        }
        was_stalled = stalled;
        if let Some(lag) = lag {
            metrics::gauge!("invitebus_standby_lag_events").set(lag as f64);
        }
        let body = json!({
            "name": name, "position": position, "head": head.map(|h| h.max(position)),
            "lag": lag, "state": if stalled { "stalled" } else { "standby" },
            "last_progress_at": format_time(&last.1), "stalls": stalls,
        });
        let _ = client.publish(subject.clone(), body.to_string().into()).await;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => return,
        }
    }
}
