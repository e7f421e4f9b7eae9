//! What the relay has sent and JetStream has not yet acknowledged, within one session (from a
//! start, a failure, or a lapse of the lease to the next): the relay's pipeline.
//!
//! A session's first message goes out alone (the probe) and the rest only once JetStream has
//! stored it fresh; from then on up to [`RELAY_WINDOW`] messages are in flight and each reply
//! is released as soon as its own position is acknowledged, not at the end of a round. Acks of
//! an earlier session carry its number in their subject and are ignored.

use super::RelayError;
use std::collections::BTreeSet;
use std::time::Instant;

/// Most messages sent and not yet acknowledged. Before the pipeline, a round of up to 1,000
/// waited for all its acks and a probe before the next: `replicated` acknowledgements reached
/// 0.83× of `local` and +16 ms at p99 at 2,000/s (BENCHMARKS.md, 2026-12-04).
pub const RELAY_WINDOW: usize = 4000;

/// One session's messages in flight.
#[derive(Debug)]
pub struct Flight {
    /// Names this session in the acks' subjects: `<inbox>.<session>.<position>`.
    pub session: u64,
    /// The last position sent (the session starts at the last one known stored).
    pub sent: u64,
    /// Sent and not yet acknowledged, in position order.
    waiting: BTreeSet<u64>,
    /// The session's first message is still to be acknowledged fresh.
    probing: bool,
    /// When the oldest unacknowledged message was sent, or the last ack came.
    pub since: Instant,
}

/// What one ack said.
#[derive(Debug, PartialEq, Eq)]
pub enum Ack {
    /// Stored fresh at this position.
    Stored(u64),
    /// Not for this session: an ack of a message sent before the last failure.
    Stale,
}

impl Flight {
    /// A session that starts after `stored`, the last position known to be in the stream.
    pub fn new(session: u64, stored: u64) -> Flight {
        Flight {
            session,
            sent: stored,
            waiting: BTreeSet::new(),
            probing: true,
            since: Instant::now(),
        }
    }

    /// How many more messages may go out now: one (the probe) at a session's start, none while
    /// it is out, then what the window leaves.
    pub fn room(&self) -> usize {
        match (self.probing, self.waiting.is_empty()) {
            (true, true) => 1,
            (true, false) => 0,
            (false, _) => RELAY_WINDOW.saturating_sub(self.waiting.len()),
        }
    }

    /// The subject JetStream answers `position` on.
    pub fn reply_to(&self, inbox: &str, position: u64) -> String {
        format!("{inbox}.{}.{position}", self.session)
    }

    /// Records `position` as sent (positions are sent in order, one after the other).
    pub fn sent(&mut self, position: u64) {
        if self.waiting.is_empty() {
            self.since = Instant::now();
        }
        self.sent = position;
        self.waiting.insert(position);
    }

    /// True when nothing sent waits for its ack.
    pub fn settled(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The last position below which every one sent in this session is acknowledged.
    pub fn acked_through(&self) -> u64 {
        self.waiting.first().map_or(self.sent, |first| first - 1)
    }

    /// Takes one ack (its subject and body). A refusal, or a duplicate (answered on nats-server
    /// 2.9 before the expected-sequence check, so it may be another writer's event), ends the
    /// session: the caller reads back what the stream holds.
    pub fn ack(&mut self, subject: &str, payload: &[u8]) -> Result<Ack, RelayError> {
        let mut parts = subject.rsplit('.');
        let position = parts.next().and_then(|p| p.parse::<u64>().ok());
        let session = parts.next().and_then(|s| s.parse::<u64>().ok());
        let (Some(position), Some(session)) = (position, session) else {
            return Ok(Ack::Stale);
        };
        if session != self.session || !self.waiting.contains(&position) {
            return Ok(Ack::Stale);
        }
        let ack: serde_json::Value = serde_json::from_slice(payload).unwrap_or(serde_json::Value::Null);
        if ack.get("error").is_some() || ack.get("seq").is_none() {
            return Err(RelayError::Nats(
                format!("JetStream refused position {position}: {ack}").into(),
            ));
        }
        if ack.get("duplicate").and_then(|d| d.as_bool()) == Some(true) {
            return Err(RelayError::Nats(
                format!("position {position} answered as a duplicate: checking what the stream holds").into(),
            ));
        }
        self.waiting.remove(&position);
        self.probing = false;
        self.since = Instant::now();
        Ok(Ack::Stored(position))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORED: &[u8] = br#"{"stream":"INVITES_EVENTS","seq":1}"#;

    #[test]
    fn the_probe_goes_alone_then_the_window_opens() {
        let mut f = Flight::new(3, 10);
        assert_eq!(f.room(), 1);
        f.sent(11);
        assert_eq!(f.room(), 0);
        assert_eq!(f.ack("_INBOX.x.3.11", STORED).unwrap(), Ack::Stored(11));
        assert_eq!(f.room(), RELAY_WINDOW);
        f.sent(12);
        f.sent(13);
        assert_eq!(f.room(), RELAY_WINDOW - 2);
        assert!(!f.settled());
    }

    #[test]
    fn acked_through_stops_below_the_first_unacknowledged_position() {
        let mut f = Flight::new(0, 10);
        f.sent(11);
        f.ack("i.0.11", STORED).unwrap();
        for p in 12..=15 {
            f.sent(p);
        }
        f.ack("i.0.14", STORED).unwrap();
        f.ack("i.0.12", STORED).unwrap();
        assert_eq!(f.acked_through(), 12);
        f.ack("i.0.13", STORED).unwrap();
        assert_eq!(f.acked_through(), 14);
        f.ack("i.0.15", STORED).unwrap();
        assert_eq!((f.acked_through(), f.settled()), (15, true));
    }

    #[test]
    fn acks_of_another_session_or_unsent_positions_are_stale() {
        let mut f = Flight::new(2, 0);
        f.sent(1);
        assert_eq!(f.ack("i.1.1", STORED).unwrap(), Ack::Stale);
        assert_eq!(f.ack("i.2.7", STORED).unwrap(), Ack::Stale);
        assert_eq!(f.ack("garbage", STORED).unwrap(), Ack::Stale);
        assert_eq!(f.acked_through(), 0);
    }

    #[test]
    fn a_refusal_or_a_duplicate_ends_the_session() {
        let mut f = Flight::new(0, 0);
        f.sent(1);
        let refused = br#"{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 7"}}"#;
        assert!(f.ack("i.0.1", refused).is_err());
        let duplicate = br#"{"stream":"INVITES_EVENTS","seq":1,"duplicate":true}"#;
        assert!(f.ack("i.0.1", duplicate).is_err());
        assert_eq!(f.acked_through(), 0);
    }
}
