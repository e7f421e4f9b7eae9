//! What `serve` needs around its roles: an instance name, the signals that stop it, and
//! starting a role again while a busy cluster makes it fail.

use anyhow::Context;

/// `<host>-<pid>` as an id: what names this instance in the lease when `--instance` is not set.
pub(super) fn default_instance() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    match host.is_empty() {
        true => format!("commands-{}", std::process::id()),
        false => format!("{host}-{}", std::process::id()),
    }
}

/// SIGINT and SIGTERM, taken over before any role starts: a signal during a slow start then
/// stops `serve` cleanly once it has started, instead of killing it half-way.
pub(super) struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    pub(super) fn take() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }

    pub(super) async fn wait(&mut self) {
        async fn one(s: &mut Option<tokio::signal::unix::Signal>) {
            match s.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = one(&mut self.term) => {}
            _ = one(&mut self.int) => {}
        }
    }
}

/// True when `e` (or its cause) is another process's hold on the role's file.
fn held_elsewhere(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<invitebus_filelock::LockError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Starts a role, again while it fails, for up to a minute: creating a replicated stream on a
/// cluster that is busy electing leaders can time out, and that should not end `serve`.
pub(super) async fn retrying<T, E, F, Fut>(role: &str, start: F) -> anyhow::Result<T>
where
    E: std::error::Error + Send + std::marker::Sync + 'static,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match start().await {
            Ok(started) => return Ok(started),
            // Another process holds the role's file: waiting would not help, say so at once.
            Err(e) if held_elsewhere(&e) => return Err(e).with_context(|| format!("starting the {role} role")),
            Err(e) if std::time::Instant::now() < deadline => {
                tracing::warn!(role, error = %e, "the role did not start; trying again");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("starting the {role} role")),
        }
    }
}
