//! Connecting to NATS, and starting a local nats-server when none answers.

use crate::natsauth::files::Login;
use anyhow::{bail, Context};
use invitebus_natsrun::{NatsRunError, NatsServer};
use std::path::Path;
use std::time::Duration;

/// Connects once, failing fast when nothing answers. `url` may list several servers of a
/// cluster, comma-separated; the client moves to another one when its server goes away. With a
/// login, as that NATS user, its replies on the user's own inbox prefix.
pub async fn connect(url: &str, login: Option<&Login>) -> anyhow::Result<async_nats::Client> {
    let servers: Vec<&str> = url.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let mut options = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(2));
    options = match login {
        Some(l) => options
            .name(format!("invitebus-{}", l.user))
            .user_and_password(l.user.clone(), l.password.clone())
            .custom_inbox_prefix(&l.inbox_prefix),
        None => options.name("invitebus"),
    };
    options
        .connect(servers)
        .await
        .with_context(|| format!("cannot reach NATS at {url}"))
}

/// The port of a loopback URL such as `nats://127.0.0.1:4222`; None for any other host.
pub fn loopback_port(url: &str) -> Option<u16> {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let hostport = rest.rsplit('@').next()?.split('/').next()?;
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "4222"));
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
        .then(|| port.parse().ok())
        .flatten()
}

/// Connects to `url`; when nothing answers there and it is a loopback address, starts
/// nats-server with JetStream under `<data>/nats` on that port and connects to it. With a
/// login it only connects: the login belongs to a server that runs elsewhere.
pub async fn connect_or_start(
    url: &str,
    data: &Path,
    login: Option<&Login>,
) -> anyhow::Result<(async_nats::Client, Option<NatsServer>)> {
    if login.is_some() {
        return Ok((connect(url, login).await?, None));
    }
    if let Ok(client) = connect(url, None).await {
        return Ok((client, None));
    }
    tracing::info!(url, "no NATS answers; starting a local nats-server");
    let server = start_local(url, data, Vec::new())?;
    let client = connect(&server.url(), None).await?;
    Ok((client, Some(server)))
}

/// Starts nats-server with JetStream under `<data>/nats` on the port of the loopback `url`,
/// with extra arguments (`-c <config>`); it dies with this process.
pub fn start_local(url: &str, data: &Path, args: Vec<String>) -> anyhow::Result<NatsServer> {
    let Some(port) = loopback_port(url) else {
        bail!("cannot reach NATS at {url}; start it, or point NATS_URL / --nats at a running server");
    };
    let server = match NatsServer::start_tied_with(&data.join("nats"), Some(port), args) {
        Ok(s) => s,
        Err(NatsRunError::NotInstalled) => bail!(
            "no NATS answers at {url} and nats-server is not installed.\n\
             Install it (Debian/Ubuntu: `sudo apt-get install nats-server`; or see https://docs.nats.io),\n\
             or point NATS_URL / --nats at a running server with JetStream enabled."
        ),
        Err(e) => return Err(e).context("starting nats-server"),
    };
    Ok(server)
}

/// Waits (up to a minute) until JetStream answers: a cluster that just started has no meta leader
/// yet, and every role needs its streams. Asks `$JS.API.INFO` itself, so any server version's
/// answer counts; only no answer or a 503 error means "not yet".
pub async fn wait_for_jetstream(client: &async_nats::Client) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let answer = tokio::time::timeout(Duration::from_secs(2), client.request("$JS.API.INFO", "".into())).await;
        let why = match answer {
            Ok(Ok(msg)) => match serde_json::from_slice::<serde_json::Value>(&msg.payload) {
                Ok(v) if v["error"]["code"] == 503 => v["error"]["description"].to_string(),
                Ok(_) => return Ok(()),
                Err(e) => e.to_string(),
            },
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer within 2 s".to_string(),
        };
        if std::time::Instant::now() >= deadline {
            bail!("JetStream does not answer: {why}; is nats-server running with -js?");
        }
        tracing::info!(why, "JetStream does not answer yet; waiting");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
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
