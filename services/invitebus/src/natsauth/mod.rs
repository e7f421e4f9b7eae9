//! `--nats-auth`: one NATS user per role, each allowed only the subjects its code uses. The
//! table here is data derived from [`Subjects`] (no I/O), so a test can read it and the
//! nats-server config ([`files::render_config`]) is written from it.

pub mod bus;
pub mod files;

use invitebus_events::subject::{
    Subjects, EVENTS_STREAM, EXPORTS_BUCKET, EXPORTS_STREAM, KEYS_BUCKET, NOTIFY_STREAM, RESTS_STREAM,
};

/// A NATS user of an invitebus deployment: one per role, `service` (all roles at once, for a
/// `serve` given one credential and for `export`/`replay`), and `client` (anyone else).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum User {
    Commands,
    Views,
    Notifier,
    Scheduler,
    Exporter,
    Webhooks,
    Gateway,
    Service,
    Client,
}

impl User {
    pub const ALL: [User; 9] = [
        User::Commands,
        User::Views,
        User::Notifier,
        User::Scheduler,
        User::Exporter,
        User::Webhooks,
        User::Gateway,
        User::Service,
        User::Client,
    ];

    /// The user's name in the server's config (and in a creds file).
    pub fn name(self) -> &'static str {
        match self {
            User::Commands => "commands",
            User::Views => "views",
            User::Notifier => "notifier",
            User::Scheduler => "scheduler",
            User::Exporter => "exporter",
            User::Webhooks => "webhooks",
            User::Gateway => "gateway",
            User::Service => "service",
            User::Client => "client",
        }
    }

    pub fn from_name(name: &str) -> Option<User> {
        User::ALL.into_iter().find(|u| u.name() == name)
    }

    /// Where replies to this user's requests arrive. invitebus's own users get an inbox of
    /// their own, so a client (which may read `_INBOX.>`) never sees the roles' replies.
    pub fn inbox_prefix(self) -> String {
        match self {
            User::Client => "_INBOX".to_string(),
            u => format!("_INBOX_{}", u.name()),
        }
    }
}

/// What one user may publish and subscribe to; deny wins over allow in nats-server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    pub publish_allow: Vec<String>,
    pub publish_deny: Vec<String>,
    pub subscribe_allow: Vec<String>,
    pub subscribe_deny: Vec<String>,
    /// May publish to the reply subject of a request it received (it answers requests).
    pub allow_responses: bool,
}

impl Permissions {
    fn publish(&mut self, subjects: impl IntoIterator<Item = String>) {
        self.publish_allow.extend(subjects);
    }

    fn subscribe(&mut self, subjects: impl IntoIterator<Item = String>) {
        self.subscribe_allow.extend(subjects);
    }

    /// Every list sorted and without repeats (a union of roles repeats a lot).
    fn tidy(mut self) -> Permissions {
        for list in [
            &mut self.publish_allow,
            &mut self.publish_deny,
            &mut self.subscribe_allow,
            &mut self.subscribe_deny,
        ] {
            list.sort();
            list.dedup();
        }
        self
    }
}

const API: &str = "$JS.API";

/// The object store's stream: `OBJ_<bucket>`.
fn object_stream() -> String {
    format!("OBJ_{EXPORTS_BUCKET}")
}

/// Reading a stream through consumers: create (ephemeral, named or ordered), info, next, acks.
fn consume(stream: &str) -> Vec<String> {
    vec![
        format!("{API}.STREAM.INFO.{stream}"),
        format!("{API}.CONSUMER.CREATE.{stream}"),
        format!("{API}.CONSUMER.CREATE.{stream}.>"),
        format!("{API}.CONSUMER.INFO.{stream}.>"),
        format!("{API}.CONSUMER.MSG.NEXT.{stream}.>"),
        format!("$JS.ACK.{stream}.>"),
        format!("$JS.FC.{stream}.>"),
    ]
}

/// Getting single messages of a stream (its last one, the last on a subject).
fn get_messages(stream: &str) -> Vec<String> {
    vec![
        format!("{API}.STREAM.MSG.GET.{stream}"),
        format!("{API}.DIRECT.GET.{stream}"),
        format!("{API}.DIRECT.GET.{stream}.>"),
    ]
}

/// Creating a stream invitebus owns when it is missing.
fn create(stream: &str) -> Vec<String> {
    vec![
        format!("{API}.STREAM.INFO.{stream}"),
        format!("{API}.STREAM.CREATE.{stream}"),
    ]
}

/// A projection of the events: its own ephemeral consumers (deleted when it restarts one), its
/// status reports, and never an event of its own.
fn projection(p: &mut Permissions, s: &Subjects, name: &str) {
    p.publish(consume(EVENTS_STREAM));
    p.publish([format!("{API}.CONSUMER.DELETE.{EVENTS_STREAM}.>"), s.status(name)]);
}

/// Reading the data keys (`invites-keys`): a role that opens personal fields. The bucket is
/// made by whichever role starts first.
fn read_keys(p: &mut Permissions) {
    let keys = format!("KV_{KEYS_BUCKET}");
    p.publish(create(&keys));
    p.publish(get_messages(&keys));
}

/// Deleting messages of `stream` by sequence (a forget erases them).
fn erase(stream: &str) -> String {
    format!("{API}.STREAM.MSG.DELETE.{stream}")
}

/// What `user` may do. Every invitebus user may ask `$JS.API.INFO` (serve waits for JetStream)
/// and read its own inbox; only `commands` (and `service`) may answer a command or publish an event.
pub fn permissions(user: User, s: &Subjects) -> Permissions {
    let mut p = Permissions::default();
    let everything = |suffix: &str| format!("{}.{suffix}", s.prefix());
    match user {
        User::Commands => {
            p.subscribe([s.all_commands(), s.health(), s.all_status(), s.query(">")]);
            p.publish([s.all_events()]);
            p.publish(create(EVENTS_STREAM));
            p.publish(get_messages(EVENTS_STREAM));
            // Rests too large for a header: stored by the relay, read by a standby taking over.
            p.publish([s.all_rests()]);
            p.publish(create(RESTS_STREAM));
            p.publish(get_messages(RESTS_STREAM));
            // Standby writers (`--lease`): the lease's bucket, following the events, reporting.
            let lease = format!("KV_{}", invitebus_commands::lease::LEASE_BUCKET);
            p.publish(create(&lease));
            p.publish(get_messages(&lease));
            p.publish([
                format!("$KV.{}.>", invitebus_commands::lease::LEASE_BUCKET),
                s.all_status(),
            ]);
            p.publish(consume(EVENTS_STREAM));
            p.publish([format!("{API}.CONSUMER.DELETE.{EVENTS_STREAM}.>")]);
            // Data keys: made when a person's fields are first sealed, erased when forgotten.
            read_keys(&mut p);
            p.publish([format!("$KV.{KEYS_BUCKET}.>"), erase(&format!("KV_{KEYS_BUCKET}"))]);
            p.allow_responses = true;
        }
        User::Views => {
            projection(&mut p, s, invitebus_views::projection::NAME);
            read_keys(&mut p);
            p.subscribe(invitebus_views::service::QUERIES.iter().map(|q| s.query(q)));
            p.allow_responses = true;
        }
        User::Notifier => {
            projection(&mut p, s, invitebus_notifier::store::NAME);
            read_keys(&mut p);
            // A forgotten user's notifications are erased from INVITES_NOTIFY.
            p.publish(consume(NOTIFY_STREAM));
            p.publish([erase(NOTIFY_STREAM), format!("{API}.CONSUMER.DELETE.{NOTIFY_STREAM}.>")]);
            p.subscribe([s.query("inbox")]);
            p.publish([everything("notify.>"), everything("push.>"), everything("sms.>")]);
            p.publish(create(NOTIFY_STREAM));
            p.publish(get_messages(NOTIFY_STREAM));
            p.allow_responses = true;
        }
        User::Scheduler => {
            projection(&mut p, s, invitebus_scheduler::timers::NAME);
            p.publish([everything("cmd.>"), everything("q.>")]);
        }
        User::Exporter => {
            projection(&mut p, s, "exporter");
            read_keys(&mut p);
            p.publish([everything("cmd.>"), everything("q.>"), everything("export.*.progress")]);
            p.publish(create(EXPORTS_STREAM));
            let bucket = object_stream();
            p.publish(create(&bucket));
            p.publish(get_messages(&bucket));
            p.publish(consume(&bucket));
            p.publish([format!("$O.{EXPORTS_BUCKET}.>"), format!("{API}.STREAM.PURGE.{bucket}")]);
            // A forgotten user's export files are erased chunk by chunk.
            p.publish([erase(&bucket), format!("{API}.CONSUMER.DELETE.{bucket}.>")]);
        }
        User::Webhooks => {
            // Its workers read the events through ordered consumers of their own (`consume`).
            projection(&mut p, s, invitebus_webhooks::registry::NAME);
            p.subscribe([s.query("webhooks")]);
            p.allow_responses = true;
        }
        User::Gateway => {
            p.publish([
                everything("cmd.>"),
                everything("q.>"),
                s.health(),
                everything("presence.*"),
            ]);
            p.subscribe([
                everything("notify.*"),
                everything("notify.*.live"),
                everything("presence.*"),
            ]);
            p.publish(consume(EXPORTS_STREAM));
            p.publish([format!("{API}.CONSUMER.DELETE.{EXPORTS_STREAM}.>")]);
            // The console reads the events (tail, commands per second, trace) and, for a
            // trace, the notifications, through ordered consumers of its own.
            for stream in [EVENTS_STREAM, NOTIFY_STREAM] {
                p.publish(consume(stream));
                p.publish([format!("{API}.CONSUMER.DELETE.{stream}.>")]);
            }
            // The files route streams an export from the bucket.
            let bucket = object_stream();
            p.publish(consume(&bucket));
            p.publish(get_messages(&bucket));
            p.publish([format!("{API}.CONSUMER.DELETE.{bucket}.>")]);
            p.allow_responses = true;
        }
        User::Service => {
            for role in User::ALL
                .into_iter()
                .filter(|u| !matches!(u, User::Service | User::Client))
            {
                let r = permissions(role, s);
                p.publish(r.publish_allow);
                p.subscribe(r.subscribe_allow);
            }
            p.allow_responses = true;
        }
        User::Client => {
            p.publish([everything("cmd.>"), everything("q.>"), s.health()]);
            p.publish(consume(EVENTS_STREAM));
            p.subscribe(["_INBOX.>".to_string()]);
            // Spelled out although nothing above allows them, so no later allow can.
            p.publish_deny = vec![
                s.all_events(),
                s.all_rests(),
                format!("{API}.STREAM.DELETE.>"),
                format!("{API}.STREAM.PURGE.>"),
                format!("{API}.STREAM.MSG.DELETE.>"),
                format!("{API}.CONSUMER.DELETE.>"),
                format!("{API}.DIRECT.GET.>"),
                format!("{API}.STREAM.MSG.GET.>"),
                "$O.>".to_string(),
                "$KV.>".to_string(),
            ];
            p.subscribe_deny = vec![everything("cmd.>"), everything("q.>"), s.health(), s.all_events()];
            return p.tidy();
        }
    }
    p.publish([format!("{API}.INFO")]);
    p.subscribe([format!("{}.>", user.inbox_prefix())]);
    if !matches!(user, User::Commands | User::Service) {
        p.publish_deny.extend([s.all_events(), s.all_rests()]);
        p.subscribe_deny.push(everything("cmd.>"));
    }
    p.tidy()
}

/// `invitebus creds`: one user's login from the data folder's passwords.
#[derive(clap::Args)]
pub struct CredsArgs {
    #[command(flatten)]
    pub common: crate::Common,
    /// Whose login: `client` for anyone on the bus, `service` for invitebus's own processes
    /// elsewhere (all roles), or one role's user.
    #[arg(long, value_enum)]
    pub role: User,
    /// Where to write it (mode 0600).
    #[arg(long)]
    pub out: std::path::PathBuf,
}

/// Writes the creds file of `args.role` (the passwords are made now if `serve` has not yet).
pub fn write_creds(args: CredsArgs) -> anyhow::Result<()> {
    let passwords = files::Passwords::load_or_create(&args.common.data)?;
    let creds = files::Creds {
        url: args.common.nats_url.clone(),
        login: passwords.login(args.role),
    };
    creds.write(&args.out)?;
    eprintln!("wrote the {} user's login to {}", args.role.name(), args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests;
