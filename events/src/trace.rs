//! W3C trace context: a `traceparent` given with a command (HTTP header, or NATS header of the
//! same name) is kept with every event the command appends, published as a header with each
//! event, and carried into what those events cause (notifications, timers' commands, export
//! progress), so one user action can be followed across the roles.

use serde::{Deserialize, Serialize};

/// The header's name, on HTTP and on NATS.
pub const TRACEPARENT: &str = "traceparent";

/// A valid `traceparent`: `<version>-<trace-id>-<parent-id>-<flags>`, lowercase hex, version
/// not `ff`, ids not all zero (W3C Trace Context, level 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Traceparent(String);

impl Traceparent {
    pub fn parse(s: &str) -> Option<Traceparent> {
        let parts: Vec<&str> = s.trim().split('-').collect();
        let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let nonzero = |p: &str| p.bytes().any(|b| b != b'0');
        match parts.as_slice() {
            [v, t, p, f, ..]
                if hex(v, 2) && *v != "ff" && hex(t, 32) && hex(p, 16) && hex(f, 2) && nonzero(t) && nonzero(p) =>
            {
                // Version 00 has exactly four fields; later versions may add more.
                (*v != "00" || parts.len() == 4).then(|| Traceparent(parts[..4].join("-")))
            }
            _ => None,
        }
    }

    /// The 32 hex digits that name the whole trace.
    pub fn trace_id(&self) -> &str {
        &self.0[3..35]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Traceparent {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Traceparent::parse(&s).ok_or_else(|| format!("`{s}` is not a W3C traceparent"))
    }
}

impl From<Traceparent> for String {
    fn from(t: Traceparent) -> String {
        t.0
    }
}

#[cfg(test)]
mod tests {
    use super::Traceparent;

    #[test]
    fn w3c_examples_parse_and_bad_ones_do_not() {
        let t = Traceparent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(Traceparent::parse(bad).is_none(), "{bad:?}");
        }
    }
}
