//! The envelope: how an event is stored, published and replayed, and its hash chain.

use crate::event::{DecodeError, Event};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event as it stands in the log and on `invites.evt.<Type>.<stream_id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Envelope {
    /// Gapless, strictly increasing across the whole log, from 1.
    pub position: u64,
    pub stream_id: String,
    pub stream_type: String,
    /// Per stream, from 1.
    pub version: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema: u32,
    #[serde(with = "millis")]
    #[schemars(with = "DateTime<Utc>")]
    pub recorded_at: DateTime<Utc>,
    pub actor: String,
    pub command_id: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    /// The command that appended this event (`CreateInvite`, …); outside the hash, absent on
    /// events written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_type: Option<String>,
    /// `sha256` of the command's own fields ([`crate::Command::digest`]): with `actor`,
    /// `command_type` and `command_id` it lets a standby or a restore rebuild the dedupe index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_digest: Option<String>,
    /// The W3C `traceparent` the command came with ([`crate::trace`]); outside the hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    pub data: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl Envelope {
    /// A copy of everything but `data` (Null): for those that carry the typed event beside it,
    /// so the data is not held twice.
    pub fn without_data(&self) -> Envelope {
        Envelope {
            position: self.position,
            stream_id: self.stream_id.clone(),
            stream_type: self.stream_type.clone(),
            version: self.version,
            event_type: self.event_type.clone(),
            schema: self.schema,
            recorded_at: self.recorded_at,
            actor: self.actor.clone(),
            command_id: self.command_id.clone(),
            correlation_id: self.correlation_id.clone(),
            causation_id: self.causation_id.clone(),
            command_type: self.command_type.clone(),
            command_digest: self.command_digest.clone(),
            traceparent: self.traceparent.clone(),
            data: Value::Null,
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
        }
    }

    /// The typed event, upcast from its stored schema.
    pub fn event(&self) -> Result<Event, DecodeError> {
        Event::decode(&self.event_type, self.schema, self.data.clone())
    }

    /// The fields the hash covers, borrowed.
    pub fn hashed_fields(&self) -> HashedFields<'_> {
        HashedFields {
            position: self.position,
            stream_id: &self.stream_id,
            stream_type: &self.stream_type,
            version: self.version,
            event_type: &self.event_type,
            schema: self.schema,
            recorded_at: &self.recorded_at,
            actor: &self.actor,
            command_id: self.command_id.as_deref(),
            correlation_id: self.correlation_id.as_deref(),
            causation_id: self.causation_id.as_deref(),
        }
    }

    /// The fields kept beside the hashed ones, borrowed.
    pub fn unhashed_fields(&self) -> Unhashed<'_> {
        Unhashed {
            command_type: self.command_type.as_deref(),
            command_digest: self.command_digest.as_deref(),
            traceparent: self.traceparent.as_deref(),
        }
    }

    /// The bytes the hash covers (see [`HashedFields::canonical_bytes`]).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        self.hashed_fields()
            .canonical_bytes(&serde_json::to_vec(&self.data).expect("json values serialize"))
    }

    /// `sha256(prev_hash ‖ canonical bytes)` as hex, for this envelope's own `prev_hash`.
    pub fn compute_hash(&self) -> String {
        chain_hash(&self.prev_hash, &self.canonical_bytes())
    }

    /// True when `hash` is what the fields say it must be.
    pub fn hash_is_valid(&self) -> bool {
        self.compute_hash() == self.hash
    }
}

/// Every envelope field but `data` and the hashes, borrowed: what a writer hashes.
#[derive(Debug, Clone, Copy)]
pub struct HashedFields<'a> {
    pub position: u64,
    pub stream_id: &'a str,
    pub stream_type: &'a str,
    pub version: u64,
    pub event_type: &'a str,
    pub schema: u32,
    pub recorded_at: &'a DateTime<Utc>,
    pub actor: &'a str,
    pub command_id: Option<&'a str>,
    pub correlation_id: Option<&'a str>,
    pub causation_id: Option<&'a str>,
}

impl HashedFields<'_> {
    /// Each field as its length (u64 LE) then its bytes, in envelope order; numbers in decimal,
    /// `recorded_at` as RFC 3339 with milliseconds, absent ids as empty, and last `data` as its
    /// compact JSON with keys sorted (`data_json`).
    pub fn canonical_bytes(&self, data_json: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(192 + data_json.len());
        let mut put = |b: &[u8]| {
            out.extend_from_slice(&(b.len() as u64).to_le_bytes());
            out.extend_from_slice(b);
        };
        put(self.position.to_string().as_bytes());
        put(self.stream_id.as_bytes());
        put(self.stream_type.as_bytes());
        put(self.version.to_string().as_bytes());
        put(self.event_type.as_bytes());
        put(self.schema.to_string().as_bytes());
        put(format_time(self.recorded_at).as_bytes());
        put(self.actor.as_bytes());
        put(self.command_id.unwrap_or("").as_bytes());
        put(self.correlation_id.unwrap_or("").as_bytes());
        put(self.causation_id.unwrap_or("").as_bytes());
        put(data_json);
        out
    }
}

/// Envelope fields outside the hash: added after the chain was defined, so an old log's hashes
/// stay valid, and written only when present.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unhashed<'a> {
    pub command_type: Option<&'a str>,
    pub command_digest: Option<&'a str>,
    pub traceparent: Option<&'a str>,
}

/// The envelope as JSON text, written from its parts with `data_json` passed through as is:
/// what the relay publishes (the same bytes as serializing an [`Envelope`] with that data).
pub fn envelope_json(f: &HashedFields<'_>, u: &Unhashed<'_>, data_json: &str, prev_hash: &str, hash: &str) -> Vec<u8> {
    use std::io::Write;
    fn s(out: &mut Vec<u8>, v: &str) {
        serde_json::to_writer(&mut *out, v).expect("strings serialize");
    }
    fn opt(out: &mut Vec<u8>, v: Option<&str>) {
        match v {
            Some(v) => s(out, v),
            None => out.extend_from_slice(b"null"),
        }
    }
    let mut out = Vec::with_capacity(320 + data_json.len());
    let _ = write!(out, "{{\"position\":{},\"stream_id\":", f.position);
    s(&mut out, f.stream_id);
    out.extend_from_slice(b",\"stream_type\":");
    s(&mut out, f.stream_type);
    let _ = write!(out, ",\"version\":{},\"type\":", f.version);
    s(&mut out, f.event_type);
    let _ = write!(
        out,
        ",\"schema\":{},\"recorded_at\":\"{}\",\"actor\":",
        f.schema,
        format_time(f.recorded_at)
    );
    s(&mut out, f.actor);
    out.extend_from_slice(b",\"command_id\":");
    opt(&mut out, f.command_id);
    out.extend_from_slice(b",\"correlation_id\":");
    opt(&mut out, f.correlation_id);
    out.extend_from_slice(b",\"causation_id\":");
    opt(&mut out, f.causation_id);
    if let Some(t) = u.command_type {
        out.extend_from_slice(b",\"command_type\":");
        s(&mut out, t);
    }
    if let Some(d) = u.command_digest {
        out.extend_from_slice(b",\"command_digest\":");
        s(&mut out, d);
    }
    if let Some(t) = u.traceparent {
        out.extend_from_slice(b",\"traceparent\":");
        s(&mut out, t);
    }
    out.extend_from_slice(b",\"data\":");
    out.extend_from_slice(data_json.as_bytes());
    out.extend_from_slice(b",\"prev_hash\":");
    s(&mut out, prev_hash);
    out.extend_from_slice(b",\"hash\":");
    s(&mut out, hash);
    out.push(b'}');
    out
}

/// `hex(sha256(prev_hash ‖ canonical))`.
pub fn chain_hash(prev_hash: &str, canonical: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical);
    hex::encode(h.finalize())
}

/// RFC 3339 UTC with milliseconds: `2026-11-21T23:00:00.123Z`.
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `now + secs`, or None past 9999-12-31T23:59:59.999Z: the last instant RFC 3339 can write
/// (chrono itself goes on to `+33715-…`, which no client parses).
pub fn after_seconds(now: DateTime<Utc>, secs: u64) -> Option<DateTime<Utc>> {
    let last = DateTime::parse_from_rfc3339("9999-12-31T23:59:59.999Z")
        .expect("a valid time")
        .with_timezone(&Utc);
    i64::try_from(secs)
        .ok()
        .and_then(chrono::Duration::try_seconds)
        .and_then(|d| now.checked_add_signed(d))
        .filter(|t| *t <= last)
}

/// `t` cut to whole milliseconds, so that it survives a round trip through its text form.
pub fn truncate_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).expect("in range")
}

mod millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Envelope {
        let mut e = Envelope {
            position: 1,
            stream_id: "invite-1".into(),
            stream_type: "invite".into(),
            version: 1,
            event_type: "InviteRead".into(),
            schema: 1,
            recorded_at: truncate_millis(Utc::now()),
            actor: "fang".into(),
            command_id: None,
            correlation_id: None,
            causation_id: None,
            command_type: None,
            command_digest: None,
            traceparent: None,
            data: json!({"invite_id":"1","resource_id":"r","inviter":"xuan","invitee":"fang","at":"2026-11-21T23:00:00.123Z"}),
            prev_hash: GENESIS_HASH.into(),
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        e
    }

    #[test]
    fn times_stay_within_rfc_3339() {
        let now = truncate_millis(Utc::now());
        assert!(after_seconds(now, 86_400).is_some());
        assert_eq!(after_seconds(now, 1_000_000_000_000), None);
        assert_eq!(after_seconds(now, u64::MAX), None);
    }

    #[test]
    fn hash_detects_any_change() {
        let e = sample();
        assert!(e.hash_is_valid());
        let mut altered = e.clone();
        altered.actor = "xuan".into();
        assert!(!altered.hash_is_valid());
        let mut altered = e.clone();
        altered.data["invitee"] = json!("other");
        assert!(!altered.hash_is_valid());
        let mut altered = e;
        altered.prev_hash = "ff".repeat(32);
        assert!(!altered.hash_is_valid());
    }

    #[test]
    fn envelope_json_is_the_serialized_envelope() {
        let mut e = sample();
        e.command_id = Some("c\"1".into());
        e.hash = e.compute_hash();
        let data = serde_json::to_string(&e.data).unwrap();
        let text = envelope_json(&e.hashed_fields(), &e.unhashed_fields(), &data, &e.prev_hash, &e.hash);
        assert_eq!(text, serde_json::to_vec(&e).unwrap());
        e.command_type = Some("MarkInviteRead".into());
        e.command_digest = Some("ab".repeat(32));
        e.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
        let text = envelope_json(&e.hashed_fields(), &e.unhashed_fields(), &data, &e.prev_hash, &e.hash);
        assert_eq!(text, serde_json::to_vec(&e).unwrap());
        assert!(e.hash_is_valid(), "the command fields are outside the hash");
    }

    #[test]
    fn envelope_round_trips_through_json() {
        let e = sample();
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.contains("\"type\":\"InviteRead\""));
        let back: Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!(back, e);
        assert!(back.hash_is_valid());
        assert!(matches!(back.event().unwrap(), Event::InviteRead(_)));
    }
}
