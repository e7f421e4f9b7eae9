//! Several commands roles on one cluster, one writer at a time: each instance is a standby
//! ([`crate::standby`]) until it wins the writer's lease ([`crate::lease`]), then the command
//! service ([`CommandService`]) with its writer bound to the lease's tenure, renewing; it steps
//! down when a renewal is refused, when its tenure runs out unrenewed, or when the relay finds
//! another writer's event in the stream (fenced), and becomes a standby again. Its queue
//! subscription to the commands follows the lease: only the leader has one.

use crate::lease::{self, Lease, LeaseError, LeaseSettings};
use crate::service::{CommandService, ServiceConfig, ServiceError};
use async_nats::jetstream;
use async_nats::Client;
use std::future::Future;
use std::time::Instant;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, info_span, warn, Instrument};

/// What an instance is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Standby,
    Leader,
}

/// A commands role taking part in the election; [`ElectedService::shutdown`] stops it.
pub struct ElectedService {
    shutdown: watch::Sender<bool>,
    standing: watch::Receiver<Standing>,
    task: JoinHandle<()>,
}

impl ElectedService {
    /// Starts as a standby; the lease decides the rest. `config.durability` must be
    /// `Replicated` (a deposed leader drops its unpublished tail: under `local` it would drop
    /// what it had acknowledged).
    pub async fn start(
        client: Client,
        config: ServiceConfig,
        settings: LeaseSettings,
    ) -> Result<ElectedService, ServiceError> {
        let js = jetstream::new(config.relay_client.clone().unwrap_or_else(|| client.clone()));
        let store = lease::bucket(&js, &settings)
            .await
            .map_err(|e| ServiceError::Nats(e.into()))?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (standing_tx, standing) = watch::channel(Standing::Standby);
        // The election's own lines (standby, leading, stepping down) name the instance, so two
        // instances' logs read side by side say which one stepped down. The relay and the
        // writer log from their own tasks, outside this span.
        let span = info_span!("elected", holder = %settings.holder);
        let task = tokio::spawn(
            async move {
                let mut shutdown = shutdown_rx;
                loop {
                    standing_tx.send_replace(Standing::Standby);
                    let won = crate::standby::stand_by(&client, &js, &store, &config, &settings, &mut shutdown).await;
                    let lease = match won {
                        Ok(Some(lease)) => lease,
                        Ok(None) => return,
                        Err(e) => {
                            error!(error = %e, "standby failed; starting over in a second");
                            tokio::select! {
                                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                                _ = shutdown.changed() => return,
                            }
                        }
                    };
                    standing_tx.send_replace(Standing::Leader);
                    if lead(&client, &config, lease, &settings, &mut shutdown).await {
                        return;
                    }
                }
            }
            .instrument(span),
        );
        Ok(ElectedService {
            shutdown,
            standing,
            task,
        })
    }

    /// Standby or leader, as it changes.
    pub fn standing(&self) -> watch::Receiver<Standing> {
        self.standing.clone()
    }

    /// Stops: a leader lets its writer and relay finish, then releases the lease.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Leads until stepping down (false) or shutdown (true).
async fn lead(
    client: &Client,
    config: &ServiceConfig,
    mut lease: Lease,
    settings: &LeaseSettings,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let (tenure_tx, tenure) = watch::channel(Some(lease.until()));
    let mut config = config.clone();
    config.writer.tenure = Some(tenure);
    let start = CommandService::start(client.clone(), config);
    let service = match while_renewing(start, &mut lease, Some(&tenure_tx), settings).await {
        Some(Ok(service)) => service,
        Some(Err(e)) => {
            error!(error = %e, "the leader could not start its command service; giving the lease up");
            lease.release().await;
            return false;
        }
        None => return false,
    };
    metrics::gauge!("invitebus_writer_leader").set(1.0);
    info!(holder = %settings.holder, "leading: taking commands");
    let mut deposed = service.deposed();
    let stop = loop {
        tokio::select! {
            _ = tokio::time::sleep(settings.renew_every()) => {
                if let Err(e) = renew(&mut lease, &tenure_tx, settings).await {
                    warn!(error = %e, "the writer's lease is lost; stepping down");
                    break false;
                }
            }
            changed = deposed.changed() => if changed.is_err() || deposed.borrow().is_some() {
                warn!("fenced by another writer's event in INVITES_EVENTS; stepping down");
                break false;
            },
            _ = shutdown.changed() => break true,
        }
    };
    metrics::gauge!("invitebus_writer_leader").set(0.0);
    if stop {
        // A clean stop: the writer finishes and the relay publishes while the lease is renewed;
        // then the lease goes at once, so a standby need not wait for the TTL.
        let stopping = service.shutdown();
        if while_renewing(stopping, &mut lease, Some(&tenure_tx), settings)
            .await
            .is_some()
        {
            lease.release().await;
        }
        return true;
    }
    metrics::counter!("invitebus_writer_step_downs_total").increment(1);
    tenure_tx.send_replace(None);
    service.stop_now().await;
    false
}

/// One renewal within the renewal interval; `Err` once the lease is gone (refused, or not
/// renewed before the tenure ran out). The writer stops on the tenure by itself either way.
async fn renew(
    lease: &mut Lease,
    tenure: &watch::Sender<Option<Instant>>,
    settings: &LeaseSettings,
) -> Result<(), LeaseError> {
    match tokio::time::timeout(settings.renew_every(), lease.renew()).await {
        Ok(Ok(())) => {
            tenure.send_replace(Some(lease.until()));
            Ok(())
        }
        Ok(Err(LeaseError::Lost)) => Err(LeaseError::Lost),
        outcome => {
            let why = match outcome {
                Ok(Err(e)) => e.to_string(),
                _ => "no answer in time".to_string(),
            };
            metrics::counter!("invitebus_writer_lease_renewal_failures_total").increment(1);
            match Instant::now() < lease.until() {
                true => {
                    warn!(error = %why, "the writer's lease renewal failed; retrying within the tenure");
                    Ok(())
                }
                false => Err(LeaseError::Nats(why.into())),
            }
        }
    }
}

/// Runs `work` while renewing the lease; None when the lease was lost first (the work is dropped).
pub(crate) async fn while_renewing<F: Future>(
    work: F,
    lease: &mut Lease,
    tenure: Option<&watch::Sender<Option<Instant>>>,
    settings: &LeaseSettings,
) -> Option<F::Output> {
    let placeholder = watch::channel(None).0;
    let tenure = tenure.unwrap_or(&placeholder);
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return Some(done),
            _ = tokio::time::sleep(settings.renew_every()) => {
                if let Err(e) = renew(lease, tenure, settings).await {
                    warn!(error = %e, "the writer's lease is lost");
                    return None;
                }
            }
        }
    }
}
