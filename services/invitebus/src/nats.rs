//! Connecting to NATS, and starting a local nats-server when none answers.

use anyhow::{bail, Context};
use invitebus_natsrun::{NatsRunError, NatsServer};
use std::path::Path;
use std::time::Duration;

/// Connects once, failing fast when nothing answers.
pub async fn connect(url: &str) -> anyhow::Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .name("invitebus")
        .connect(url)
        .await
        .with_context(|| format!("cannot reach NATS at {url}"))
}

/// The port of a loopback URL such as `nats://127.0.0.1:4222`; None for any other host.
fn loopback_port(url: &str) -> Option<u16> {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let hostport = rest.rsplit('@').next()?.split('/').next()?;
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "4222"));
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
        .then(|| port.parse().ok())
        .flatten()
}

/// Connects to `url`; when nothing answers there and it is a loopback address, starts
/// nats-server with JetStream under `<data>/nats` on that port and connects to it.
pub async fn connect_or_start(url: &str, data: &Path) -> anyhow::Result<(async_nats::Client, Option<NatsServer>)> {
    if let Ok(client) = connect(url).await {
        return Ok((client, None));
    }
    let Some(port) = loopback_port(url) else {
        bail!("cannot reach NATS at {url}; start it, or point NATS_URL / --nats at a running server");
    };
    tracing::info!(url, "no NATS answers; starting a local nats-server");
    let server = match NatsServer::start(&data.join("nats"), Some(port)) {
        Ok(s) => s,
        Err(NatsRunError::NotInstalled) => bail!(
            "no NATS answers at {url} and nats-server is not installed.\n\
             Install it (Debian/Ubuntu: `sudo apt-get install nats-server`; or see https://docs.nats.io),\n\
             or point NATS_URL / --nats at a running server with JetStream enabled."
        ),
        Err(e) => return Err(e).context("starting nats-server"),
    };
    let client = connect(&server.url()).await?;
    Ok((client, Some(server)))
}

#[cfg(test)]
mod tests {
    use super::loopback_port;

    #[test]
    fn only_loopback_urls_get_a_local_server() {
        assert_eq!(loopback_port("nats://127.0.0.1:4222"), Some(4222));
        assert_eq!(loopback_port("nats://localhost:5000"), Some(5000));
        assert_eq!(loopback_port("nats://user:pw@127.0.0.1:4333"), Some(4333));
        assert_eq!(loopback_port("127.0.0.1"), Some(4222));
        assert_eq!(loopback_port("nats://nats.example:4222"), None);
    }
}
