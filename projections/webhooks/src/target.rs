//! Where a delivery may connect. The URL's host is resolved at delivery time and each address
//! checked; the request then goes to the address that was checked (pinned in the client), so a
//! name that resolves to a public address when checked and to a private one when connecting
//! (DNS rebinding) reaches nothing private. Redirects are not followed and no proxy is used.

use invitebus_events::command::{host_allowed, is_public_address, WebhookUrl};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// A checked destination: the host as named in the URL and the address to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub addr: SocketAddr,
}

/// Resolves `url`'s host now and picks the first address delivery may use: any, when private
/// targets are allowed; else a public one only (an error names what the host resolved to). A
/// host not on `allow_hosts` (when it lists any) is refused before it is looked up.
pub async fn resolve(url: &str, allow_private: bool, allow_hosts: &[String]) -> Result<Target, String> {
    let u = WebhookUrl::parse(url)?;
    if !host_allowed(&u.host, allow_hosts) {
        return Err(format!(
            "refused: {} is not one of the hosts webhooks may target (INVITEBUS_WEBHOOK_ALLOW_HOSTS)",
            u.host
        ));
    }
    let addrs: Vec<SocketAddr> = match u.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, u.port)],
        Err(_) => tokio::net::lookup_host((u.host.as_str(), u.port))
            .await
            .map_err(|e| format!("cannot resolve {}: {e}", u.host))?
            .collect(),
    };
    match addrs.iter().find(|a| allow_private || is_public_address(a.ip())) {
        Some(addr) => Ok(Target {
            host: u.host,
            addr: *addr,
        }),
        None if addrs.is_empty() => Err(format!("{} resolves to no address", u.host)),
        None => Err(format!(
            "refused: {} resolves to {} only, loopback, private or reserved addresses \
             (INVITEBUS_WEBHOOK_ALLOW_PRIVATE=true allows them)",
            u.host,
            addrs.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// A client that connects `target.host` to `target.addr` only.
pub fn client(target: &Target, timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("invitebus-webhooks/", env!("CARGO_PKG_VERSION")))
        .resolve(&target.host, target.addr)
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_and_private_targets_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:9/x",
            "http://[::1]:9/x",
            "http://10.0.0.1/x",
            "http://localhost:9/x",
        ] {
            let e = resolve(url, false, &[]).await.unwrap_err();
            assert!(e.contains("refused") || e.contains("resolve"), "{url}: {e}");
        }
        let t = resolve("http://127.0.0.1:9/x", true, &[]).await.unwrap();
        assert_eq!(t.addr, "127.0.0.1:9".parse().unwrap());
        let t = resolve("http://localhost:9/x", true, &[]).await.unwrap();
        assert!(t.addr.ip().is_loopback());
        let only = ["127.0.0.1".to_string()];
        let e = resolve("http://localhost:9/x", true, &only).await.unwrap_err();
        assert!(e.contains("not one of the hosts"), "{e}");
    }
}
