//! How `serve` reaches NATS: one shared connection (no auth, or one credential given to it), or
//! with `--nats-auth` and no credential, a connection per role as that role's own user from the
//! data folder, starting nats-server with the generated config when nothing answers.

use super::files::{self, Login, Passwords};
use super::User;
use crate::Common;
use anyhow::{bail, Context};
use invitebus_natsrun::NatsServer;
use std::sync::Mutex;

pub struct Bus {
    url: String,
    /// Per-role users' passwords; None: every role shares `first`.
    passwords: Option<Passwords>,
    /// The one credential every connection uses when there are no per-role users.
    login: Option<Login>,
    first: async_nats::Client,
    opened: Mutex<Vec<async_nats::Client>>,
    server: Option<NatsServer>,
}

impl Bus {
    /// Connects as `common` says. `nats_auth` without a credential: the roles' users of
    /// `common.data`, on the server there or on one started with their config.
    pub async fn open(common: &Common, nats_auth: bool) -> anyhow::Result<Bus> {
        let url = common.nats_url.clone();
        if let Some(login) = common.login()? {
            let first = crate::nats::connect(&url, Some(&login)).await?;
            if nats_auth && !first.server_info().auth_required {
                bail!("--nats-auth, but the NATS server at {url} asks no credentials: run it with a config like docker/nats-auth.conf");
            }
            return Ok(Bus::shared(url, first, None, Some(login)));
        }
        if !nats_auth {
            let (first, server) = crate::nats::connect_or_start(&url, &common.data, None).await?;
            return Ok(Bus::shared(url, first, server, None));
        }
        let passwords = Passwords::load_or_create(&common.data)?;
        let probe = passwords.login(User::Commands);
        let (first, server) = match crate::nats::connect(&url, Some(&probe)).await {
            Ok(client) if !client.server_info().auth_required => bail!(
                "--nats-auth, but the NATS server at {url} asks no credentials; stop it so serve starts its own, or run it with {}",
                files::config_path(&common.data).display()
            ),
            Ok(client) => (client, None),
            Err(e) if refused(&e) => bail!(
                "--nats-auth: the NATS server at {url} refuses the users of {}; it runs with another config: \
                 give serve a credential (--nats-creds, or --nats-user and --nats-password) or stop that server",
                files::passwords_path(&common.data).display()
            ),
            Err(e) => {
                if crate::nats::loopback_port(&url).is_none() {
                    return Err(e.context("--nats-auth starts its own nats-server on loopback only"));
                }
                let config = files::write_config(&common.data, &common.subjects(), &passwords)?;
                tracing::info!(url, config = %config.display(), "no NATS answers; starting nats-server with a user per role");
                let server = crate::nats::start_local(&url, &common.data, vec!["-c".into(), config.display().to_string()])?;
                let client = crate::nats::connect(&server.url(), Some(&probe)).await?;
                (client, Some(server))
            }
        };
        let url = server.as_ref().map_or(url, NatsServer::url);
        Ok(Bus {
            url,
            passwords: Some(passwords),
            login: None,
            first,
            opened: Mutex::new(Vec::new()),
            server,
        })
    }

    fn shared(url: String, first: async_nats::Client, server: Option<NatsServer>, login: Option<Login>) -> Bus {
        let url = server.as_ref().map_or(url, NatsServer::url);
        Bus {
            url,
            passwords: None,
            login,
            first,
            opened: Mutex::new(Vec::new()),
            server,
        }
    }

    /// The connection opened first (for waiting on JetStream).
    pub fn first(&self) -> &async_nats::Client {
        &self.first
    }

    /// The client `user`'s role runs with: the shared one, or a connection as that user.
    pub async fn client(&self, user: User) -> anyhow::Result<async_nats::Client> {
        match &self.passwords {
            None => Ok(self.first.clone()),
            Some(_) => self.connect(user).await,
        }
    }

    /// A connection of its own for `user` (the relay's), whatever the mode.
    pub async fn connect(&self, user: User) -> anyhow::Result<async_nats::Client> {
        let login: Option<Login> = match &self.passwords {
            Some(p) => Some(p.login(user)),
            None => self.login.clone(),
        };
        let client = crate::nats::connect(&self.url, login.as_ref())
            .await
            .with_context(|| format!("connecting the {} role", user.name()))?;
        if let Ok(mut opened) = self.opened.lock() {
            opened.push(client.clone());
        }
        Ok(client)
    }

    /// Flushes every connection, then stops the nats-server this process started, if any.
    pub async fn close(self) {
        let _ = self.first.flush().await;
        let opened = self.opened.lock().map(|o| o.clone()).unwrap_or_default();
        for client in opened {
            let _ = client.flush().await;
        }
        drop(self.server);
    }
}

/// Whether the server answered and refused the login (as opposed to nothing answering).
fn refused(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<async_nats::ConnectError>()
            .is_some_and(|e| e.kind() == async_nats::ConnectErrorKind::AuthorizationViolation)
    })
}
