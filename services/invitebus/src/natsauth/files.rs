//! The files of `--nats-auth`: the users' passwords (generated once, kept in the data folder),
//! the nats-server config written from [`super::permissions`], and a client's creds file. Each
//! is readable by its owner only (mode 0600): every one of them holds passwords.

use super::{permissions, Permissions, User};
use anyhow::Context;
use invitebus_events::subject::Subjects;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where the passwords live: `<data>/nats-users.json`.
pub fn passwords_path(data: &Path) -> PathBuf {
    data.join("nats-users.json")
}

/// Where the generated nats-server config goes: `<data>/nats-auth.conf`.
pub fn config_path(data: &Path) -> PathBuf {
    data.join("nats-auth.conf")
}

/// How one user logs in: what a creds file holds, and what `connect` takes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub password: String,
    /// The subject prefix of the user's reply inboxes (`_INBOX` for clients).
    pub inbox_prefix: String,
}

impl Login {
    pub fn new(user: &str, password: &str) -> Login {
        Login {
            user: user.to_string(),
            password: password.to_string(),
            inbox_prefix: User::from_name(user).map_or_else(|| "_INBOX".to_string(), User::inbox_prefix),
        }
    }
}

/// What `invitebus creds` writes: the server's URL and one user's login.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Creds {
    pub url: String,
    #[serde(flatten)]
    pub login: Login,
}

impl Creds {
    pub fn read(path: &Path) -> anyhow::Result<Creds> {
        let text = std::fs::read(path).with_context(|| format!("reading the NATS creds file {}", path.display()))?;
        serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a creds file of `invitebus creds`", path.display()))
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        write_private(path, text.as_bytes())
    }
}

/// The users' passwords, by user name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Passwords(BTreeMap<String, String>);

impl Passwords {
    /// The passwords kept in `data`, with one made for every user that has none yet (and the
    /// file written then): restarts and `invitebus creds` reuse them.
    pub fn load_or_create(data: &Path) -> anyhow::Result<Passwords> {
        let path = passwords_path(data);
        let mut passwords = match std::fs::read(&path) {
            Ok(text) => serde_json::from_slice(&text).with_context(|| format!("reading {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Passwords::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let missing: Vec<User> = User::ALL
            .into_iter()
            .filter(|u| !passwords.0.contains_key(u.name()))
            .collect();
        if !missing.is_empty() {
            for user in missing {
                passwords.0.insert(user.name().to_string(), new_password());
            }
            std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
            write_private(&path, serde_json::to_string_pretty(&passwords)?.as_bytes())?;
        }
        Ok(passwords)
    }

    pub fn login(&self, user: User) -> Login {
        Login::new(user.name(), self.0.get(user.name()).map_or("", String::as_str))
    }
}

/// 256 random bits from the OS (two v4 UUIDs' random parts), as hex.
fn new_password() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// Writes `bytes` to `path` through a temporary file readable by its owner only, renamed over
/// the old one, so no reader ever sees half a file or a moment of wider permissions.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// A user's password in the config: the password itself, or an environment variable that
/// nats-server reads (`$NATS_VIEWS_PASSWORD`, as docker-compose.yml's config does).
pub enum Secret<'a> {
    Literal(&'a str),
    #[cfg_attr(not(test), allow(dead_code))]
    Env(String),
}

/// The environment variable compose passes a user's password in: `NATS_<USER>_PASSWORD`.
#[cfg(test)]
pub fn password_env(user: User) -> String {
    format!("NATS_{}_PASSWORD", user.name().to_uppercase())
}

fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn list(items: &[String]) -> String {
    items.iter().map(|s| quoted(s)).collect::<Vec<_>>().join(", ")
}

fn rules(kind: &str, allow: &[String], deny: &[String], out: &mut String) {
    out.push_str(&format!("        {kind}: {{\n          allow: [{}]\n", list(allow)));
    if !deny.is_empty() {
        out.push_str(&format!("          deny: [{}]\n", list(deny)));
    }
    out.push_str("        }\n");
}

/// A nats-server config (the syntax 2.9 and 2.10 read) with a user per [`User`] and the
/// permissions of [`super::permissions`]; `head` holds the lines before (listen, jetstream).
pub fn render_config<'a>(subjects: &Subjects, head: &str, secret: impl Fn(User) -> Secret<'a>) -> String {
    let mut out = String::from(
        "# Written by invitebus (`serve --nats-auth`): a NATS user per role, each allowed the subjects\n\
         # its code uses. Deny wins over allow.\n",
    );
    out.push_str(head);
    out.push_str("authorization {\n  users = [\n");
    for user in User::ALL {
        let p: Permissions = permissions(user, subjects);
        let password = match secret(user) {
            Secret::Literal(p) => quoted(p),
            Secret::Env(var) => format!("${var}"),
        };
        out.push_str(&format!(
            "    {{\n      user: {}\n      password: {password}\n      permissions: {{\n",
            quoted(user.name())
        ));
        rules("publish", &p.publish_allow, &p.publish_deny, &mut out);
        rules("subscribe", &p.subscribe_allow, &p.subscribe_deny, &mut out);
        if p.allow_responses {
            out.push_str("        allow_responses: true\n");
        }
        out.push_str("      }\n    }\n");
    }
    out.push_str("  ]\n}\n");
    out
}

/// Writes `<data>/nats-auth.conf` with the passwords of `passwords`; returns its path. The
/// address, port and JetStream store are nats-server's arguments (`serve` passes them), as
/// the same settings in the file too would be refused as duplicates.
pub fn write_config(data: &Path, subjects: &Subjects, passwords: &Passwords) -> anyhow::Result<PathBuf> {
    let head = "# nats-server -c <this> -a 127.0.0.1 -p <port> -js -sd <data>/nats\n";
    let text = render_config(subjects, head, |u| {
        Secret::Literal(passwords.0.get(u.name()).map_or("", String::as_str))
    });
    let path = config_path(data);
    write_private(&path, text.as_bytes())?;
    Ok(path)
}

/// The config docker-compose.yml mounts: passwords from the nats container's environment.
#[cfg(test)]
pub fn compose_config(subjects: &Subjects) -> String {
    let head = "# Generated: `cargo test -p invitebus compose_nats_config` checks it is current.\n\
                port: 4222\nhttp_port: 8222\njetstream {\n  store_dir: \"/data\"\n}\n";
    render_config(subjects, head, |u| Secret::Env(password_env(u)))
}
