//! The webhook commands' fields: an endpoint registered by an admin (every event) or by a
//! resource's owner (that resource's events), deleted, or replayed from a position.

use super::decode::{decode_fields, Fields};
use super::limits::check_len;
use crate::error::ProtocolError;
use crate::event::Event;
use crate::ids::Id;
use serde::{Deserialize, Serialize};

/// Longest webhook URL.
pub const MAX_URL: usize = 2048;
/// Most event types one webhook names.
pub const MAX_WEBHOOK_EVENTS: usize = 64;
/// A webhook's signing secret: at least this many characters (it keys an HMAC) …
pub const MIN_SECRET: usize = 16;
/// … and at most this many.
pub const MAX_SECRET: usize = 256;
/// The event type that stands for every type.
pub const ALL_EVENTS: &str = "*";

/// An endpoint to deliver events to, each POST signed with `secret` (Stripe's scheme: the
/// `Invitebus-Signature` header, PROTOCOL.md "Webhooks").
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RegisterWebhook {
    pub webhook_id: Id,
    /// `http://` or `https://`, no user or password in it.
    pub url: String,
    /// Event types to deliver (`InviteAccepted`, …), or `["*"]` for all.
    pub events: Vec<String>,
    /// Sealed by the command service as the command arrives (into `sealed`), and replaced there
    /// by a keyed hash of it, so that neither an event nor the command's digest holds it.
    pub secret: String,
    /// Only this resource's events; required unless the actor is an admin.
    pub resource_id: Option<Id>,
    /// `secret` sealed with the master key, set by the command service as the command arrives
    /// and never read from a body (the digest that guards a `command_id` covers `secret`, so a
    /// retry matches although each sealing differs).
    #[serde(skip)]
    pub sealed: Option<String>,
}

/// Names one webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookRef {
    pub webhook_id: Id,
}

pub type DeleteWebhook = WebhookRef;

/// Deliver again from `from_position` on (the log's position, ≥ 1), also to a failing endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReplayWebhook {
    pub webhook_id: Id,
    pub from_position: u64,
}

/// The parts of a webhook URL that delivery needs, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    pub https: bool,
    /// A host name, or an IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl WebhookUrl {
    /// Checks a webhook URL: http(s), a host, no user or password, no fragment.
    pub fn parse(url: &str) -> Result<WebhookUrl, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        let https = match parsed.scheme() {
            "https" => true,
            "http" => false,
            other => return Err(format!("scheme `{other}` is not http or https")),
        };
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("must not hold a user or password".into());
        }
        if parsed.fragment().is_some() {
            return Err("must not hold a fragment".into());
        }
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err("has no host".into()),
        };
        let port = parsed.port_or_known_default().unwrap_or(if https { 443 } else { 80 });
        Ok(WebhookUrl { https, host, port })
    }
}

impl Fields for RegisterWebhook {
    fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        decode_fields(body)
    }
    fn validate(&self) -> Result<(), ProtocolError> {
        check_len("url", &self.url, MAX_URL)?;
        WebhookUrl::parse(&self.url).map_err(|why| ProtocolError::invalid("url", why))?;
        if self.events.is_empty() || self.events.len() > MAX_WEBHOOK_EVENTS {
            return Err(ProtocolError::invalid(
                "events",
                format!("must name 1 to {MAX_WEBHOOK_EVENTS} event types, or `*`"),
            ));
        }
        for (i, ty) in self.events.iter().enumerate() {
            if ty != ALL_EVENTS && !Event::TYPES.contains(&ty.as_str()) {
                return Err(ProtocolError::invalid("events", format!("`{ty}` is not an event type")));
            }
            if self.events[..i].contains(ty) {
                return Err(ProtocolError::invalid("events", format!("`{ty}` is named twice")));
            }
        }
        let n = self.secret.chars().count();
        if !(MIN_SECRET..=MAX_SECRET).contains(&n) {
            return Err(ProtocolError::invalid(
                "secret",
                format!("must be {MIN_SECRET} to {MAX_SECRET} characters"),
            ));
        }
        check_len("secret", &self.secret, MAX_SECRET)
    }
}

impl Fields for WebhookRef {
    fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        decode_fields(body)
    }
}

impl Fields for ReplayWebhook {
    fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        decode_fields(body)
    }
    fn validate(&self) -> Result<(), ProtocolError> {
        match self.from_position {
            0 => Err(ProtocolError::invalid("from_position", "positions start at 1")),
            p if p > i64::MAX as u64 => Err(ProtocolError::invalid("from_position", "past the largest position")),
            _ => Ok(()),
        }
    }
}

/// True when a webhook naming `types` (and maybe a resource) takes `event`.
pub fn webhook_takes(types: &[String], resource_id: Option<&Id>, event: &Event) -> bool {
    webhook_takes_type(types, event.event_type()) && resource_id.is_none_or(|r| event.resource_id() == Some(r))
}

/// The type half of [`webhook_takes`]: what a worker checks before it decodes an event.
pub fn webhook_takes_type(types: &[String], event_type: &str) -> bool {
    types.iter().any(|t| t == ALL_EVENTS || t == event_type)
}

/// Whether `host` is on an operator's list of webhook hosts (`INVITEBUS_WEBHOOK_ALLOW_HOSTS`):
/// a name on it allows itself and its subdomains; an empty list allows every host.
pub fn host_allowed(host: &str, allow_hosts: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    allow_hosts.is_empty()
        || allow_hosts.iter().any(|a| {
            let a = a.trim_end_matches('.').to_ascii_lowercase();
            host == a || host.strip_suffix(&a).is_some_and(|rest| rest.ends_with('.'))
        })
}

/// Whether a webhook may be delivered to `ip` when private targets are not allowed: not
/// loopback, private, link-local, shared (CGNAT), unspecified, multicast, broadcast, reserved
/// or documentation space, in IPv4 or IPv6 (IPv4-mapped and NAT64 addresses by their IPv4).
pub fn is_public_address(ip: std::net::IpAddr) -> bool {
    use std::net::{IpAddr, Ipv4Addr};
    fn v4(ip: Ipv4Addr) -> bool {
        let [a, b, c, _] = ip.octets();
        !(ip.is_loopback()
            || ip.is_private()
            || ip.is_link_local()
            || ip.is_unspecified()
            || ip.is_multicast()
            || ip.is_broadcast()
            || ip.is_documentation()
            || a == 0
            || a >= 240
            || (a == 100 && (64..128).contains(&b))
            || (a == 192 && b == 0 && c == 0)
            || (a == 198 && (b == 18 || b == 19)))
    }
    match ip {
        IpAddr::V4(ip) => v4(ip),
        IpAddr::V6(ip) => {
            if let Some(mapped) = ip.to_ipv4_mapped() {
                return v4(mapped);
            }
            let s = ip.segments();
            if s[0] == 0x64 && s[1] == 0xff9b {
                // NAT64, well-known (64:ff9b::/96) and local-use (64:ff9b:1::/48) prefixes.
                let o = ip.octets();
                return s[2] != 1 && v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
            }
            !(ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || s[..6] == [0; 6])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
            "::7f00:1",
        ] {
            assert!(!is_public_address(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public_address(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn an_allowed_host_allows_its_subdomains_only() {
        let list = vec!["hooks.example.com".to_string(), "127.0.0.1".to_string()];
        assert!(host_allowed("hooks.example.com", &list));
        assert!(host_allowed("EU.Hooks.Example.com.", &list));
        assert!(host_allowed("127.0.0.1", &list));
        assert!(!host_allowed("evilhooks.example.com", &list));
        assert!(!host_allowed("example.com", &list));
        assert!(host_allowed("anything.at.all", &[]));
    }

    #[test]
    fn webhook_urls_are_http_or_https_with_a_host_and_no_credentials() {
        let u = WebhookUrl::parse("https://hooks.example.com/in?x=1").unwrap();
        assert_eq!((u.https, u.host.as_str(), u.port), (true, "hooks.example.com", 443));
        let u = WebhookUrl::parse("http://[::1]:8080/x").unwrap();
        assert_eq!((u.https, u.host.as_str(), u.port), (false, "::1", 8080));
        for bad in [
            "ftp://x/",
            "https://",
            "http://:80/",
            "https://user:pw@x/",
            "file:///etc/passwd",
            "x",
            "https://x/#f",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
