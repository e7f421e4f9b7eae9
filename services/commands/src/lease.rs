//! The writer's lease: which of several commands roles may append. A JetStream KV bucket
//! (`invites-leader`) whose `max_age` is the lease's TTL holds one key; the holder renews it
//! with compare-and-set on its revision, the others poll with `create`, which succeeds only once
//! the entry is gone (nats-server 2.9 has no per-key TTL, and an entry that ages out sends no
//! watch event: hence the poll).
//!
//! Nothing compares clocks across machines: a holder may append until the time its last
//! acknowledged renewal was *sent* plus the TTL minus a margin ([`tenure_until`]); the entry
//! that renewal stored cannot age out before the send plus the TTL, so the holder has stopped
//! before anyone else can win. The relay's fencing (`Nats-Expected-Last-Sequence` and the
//! read-back) refuses whatever a paused holder still tries to publish after that.

use async_nats::jetstream::{self, kv};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The bucket's name.
pub const LEASE_BUCKET: &str = "invites-leader";
/// The one key in it.
const KEY: &str = "writer";

/// The lease's timings, all from its TTL (PROTOCOL.md, "Standby writers", says why).
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// Who this instance is (in the entry, in logs and in health): an id.
    pub holder: String,
    /// The bucket's `max_age`: an entry not renewed for this long is gone.
    pub ttl: Duration,
    /// Copies of the bucket (3 on a three-node cluster).
    pub replicas: usize,
}

impl LeaseSettings {
    /// The holder renews this often: three tries before the tenure runs out.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 4
    }

    /// How long before the TTL the holder stops appending: room for a slow clock and the
    /// server's expiry timer.
    pub fn margin(&self) -> Duration {
        self.ttl / 4
    }

    /// A standby tries `create` this often; the takeover comes at most this late after expiry.
    pub fn poll_every(&self) -> Duration {
        (self.ttl / 12).clamp(Duration::from_millis(50), Duration::from_secs(1))
    }
}

/// Until when a holder may append after a renewal sent at `sent` and acknowledged: pure, and
/// the only rule that keeps two writers apart in time.
pub fn tenure_until(sent: Instant, settings: &LeaseSettings) -> Instant {
    sent + settings.ttl.saturating_sub(settings.margin())
}

/// Why the lease could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// NATS or JetStream refused or did not answer; the cause is kept.
    #[error("lease bucket {LEASE_BUCKET}: {0}")]
    Nats(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The bucket exists with another TTL than this instance's `--lease-ttl`.
    #[error("the bucket {LEASE_BUCKET} has a lease TTL of {bucket:?} and this instance {ours:?}: give every commands role the same --lease-ttl (or delete the bucket while none runs)")]
    Ttl { bucket: Duration, ours: Duration },
    /// Another instance holds the key now: this one's lease is over.
    #[error("the writer's lease was taken over (another revision holds it)")]
    Lost,
}

/// Opens the bucket, making it when missing. The bucket's stream is made here with the KV
/// conventions (`KV_<bucket>`, one message per key, rollups, direct gets): async-nats 0.51's
/// `create_key_value` sends a configuration nats-server 2.9 answers in a form it cannot read.
pub async fn bucket(js: &jetstream::Context, settings: &LeaseSettings) -> Result<kv::Store, LeaseError> {
    let nats = |e: Box<dyn std::error::Error + Send + Sync>| LeaseError::Nats(e);
    if let Ok(mut stream) = js.get_stream(format!("KV_{LEASE_BUCKET}")).await {
        // Every instance must count tenure from the TTL the bucket enforces: one with a longer
        // `--lease-ttl` would append past the moment another may win.
        let max_age = stream.info().await.map_err(|e| nats(e.into()))?.config.max_age;
        if max_age != settings.ttl {
            return Err(LeaseError::Ttl {
                bucket: max_age,
                ours: settings.ttl,
            });
        }
        return js.get_key_value(LEASE_BUCKET).await.map_err(|e| nats(e.into()));
    }
    js.get_or_create_stream(jetstream::stream::Config {
        name: format!("KV_{LEASE_BUCKET}"),
        description: Some("invitebus: which commands role may append (the writer's lease)".into()),
        subjects: vec![format!("$KV.{LEASE_BUCKET}.>")],
        max_messages_per_subject: 1,
        max_age: settings.ttl,
        duplicate_window: settings.ttl.min(Duration::from_secs(120)),
        storage: jetstream::stream::StorageType::File,
        num_replicas: settings.replicas.max(1),
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .map_err(|e| nats(e.into()))?;
    js.get_key_value(LEASE_BUCKET).await.map_err(|e| nats(e.into()))
}

/// A held lease.
pub struct Lease {
    store: kv::Store,
    settings: LeaseSettings,
    revision: u64,
    until: Instant,
    /// Renewals sent whose answer never came (timed out, or the connection failed), with when
    /// each was sent: one may have been stored, and the key then holds one of these values.
    unanswered: VecDeque<(bytes::Bytes, Instant)>,
}

/// Unanswered renewals remembered: a tenure holds three renewals, so older ones cannot matter.
const UNANSWERED: usize = 4;

fn entry(settings: &LeaseSettings) -> bytes::Bytes {
    let body = serde_json::json!({
        "holder": settings.holder,
        "ttl_ms": settings.ttl.as_millis() as u64,
        "renewed_at": invitebus_events::envelope::format_time(&chrono::Utc::now()),
    });
    body.to_string().into()
}

/// Takes the lease when nobody holds it; None when somebody does.
pub async fn try_acquire(store: &kv::Store, settings: &LeaseSettings) -> Result<Option<Lease>, LeaseError> {
    let sent = Instant::now();
    match store.create(KEY, entry(settings)).await {
        Ok(revision) => Ok(Some(Lease {
            store: store.clone(),
            settings: settings.clone(),
            revision,
            until: tenure_until(sent, settings),
            unanswered: VecDeque::new(),
        })),
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(LeaseError::Nats(e.into())),
    }
}

/// Who holds the lease now, if anyone (for health and logs).
pub async fn holder(store: &kv::Store) -> Option<String> {
    let value = store.get(KEY).await.ok().flatten()?;
    let body: serde_json::Value = serde_json::from_slice(&value).ok()?;
    body["holder"].as_str().map(str::to_string)
}

impl Lease {
    /// Until when this holder may append.
    pub fn until(&self) -> Instant {
        self.until
    }

    /// Renews with compare-and-set on the revision; on success the tenure runs from the send.
    /// [`LeaseError::Lost`] when another instance holds the key. A renewal whose answer was lost
    /// (a timeout, a dropped connection) may still have been stored, moving the revision: a
    /// refusal that finds one of this holder's unanswered values in the key takes that revision
    /// and renews again, instead of stepping down for nothing.
    pub async fn renew(&mut self) -> Result<(), LeaseError> {
        for _ in 0..2 {
            let (sent, value) = (Instant::now(), entry(&self.settings));
            // Remembered before the await: a caller's timeout drops this future mid-flight.
            if self.unanswered.len() == UNANSWERED {
                self.unanswered.pop_front();
            }
            self.unanswered.push_back((value.clone(), sent));
            match self.store.update(KEY, value, self.revision).await {
                Ok(revision) => {
                    self.unanswered.clear();
                    self.revision = revision;
                    self.until = tenure_until(sent, &self.settings);
                    return Ok(());
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    // The refused value was not stored.
                    self.unanswered.pop_back();
                    if !self.adopt_unanswered().await? {
                        return Err(LeaseError::Lost);
                    }
                }
                Err(e) => return Err(LeaseError::Nats(e.into())),
            }
        }
        Err(LeaseError::Lost)
    }

    /// True when the key holds one of this holder's unanswered renewals: that renewal was
    /// stored, so the lease is still this holder's, at that revision, with the tenure it gave
    /// (counted from its send, like any renewal's).
    async fn adopt_unanswered(&mut self) -> Result<bool, LeaseError> {
        let found = self
            .store
            .entry(KEY)
            .await
            .map_err(|e| LeaseError::Nats(e.into()))?
            .filter(|e| e.operation == kv::Operation::Put);
        let Some(found) = found else { return Ok(false) };
        let Some(sent) = self
            .unanswered
            .iter()
            .find(|(v, _)| *v == found.value)
            .map(|(_, sent)| *sent)
        else {
            return Ok(false);
        };
        tracing::info!(
            revision = found.revision,
            "a renewal whose answer was lost had been stored: the lease is still ours"
        );
        metrics::counter!("invitebus_writer_lease_renewals_recovered_total").increment(1);
        self.unanswered.clear();
        self.revision = found.revision;
        self.until = self.until.max(tenure_until(sent, &self.settings));
        Ok(true)
    }

    /// Gives the lease up (a clean stop): a standby takes over at its next poll, not after the TTL.
    pub async fn release(self) {
        if let Err(e) = self.store.delete_expect_revision(KEY, Some(self.revision)).await {
            tracing::warn!(error = %e, "the writer's lease could not be released; it ages out");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(ttl_ms: u64) -> LeaseSettings {
        LeaseSettings {
            holder: "a".into(),
            ttl: Duration::from_millis(ttl_ms),
            replicas: 1,
        }
    }

    #[test]
    fn a_holder_stops_before_its_entry_can_age_out() {
        let s = settings(3000);
        let sent = Instant::now();
        let until = tenure_until(sent, &s);
        // The entry was stored after the send, so it ages out at sent + ttl at the earliest.
        assert!(until < sent + s.ttl);
        assert_eq!(sent + s.ttl - until, s.margin());
        // Renewals come three times within a tenure.
        assert!(s.renew_every() * 3 <= s.ttl - s.margin());
    }

    #[test]
    fn the_poll_is_bounded() {
        assert_eq!(settings(120).poll_every(), Duration::from_millis(50));
        assert_eq!(settings(60_000).poll_every(), Duration::from_secs(1));
        assert_eq!(settings(3000).poll_every(), Duration::from_millis(250));
    }
}
