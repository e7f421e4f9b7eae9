//! Subject builders. Every id put into a subject is an [`Id`], so no client text reaches a subject unchecked.

use crate::ids::Id;

/// The default subject prefix.
pub const DEFAULT_PREFIX: &str = "invites";
/// The JetStream stream holding every event.
pub const EVENTS_STREAM: &str = "INVITES_EVENTS";
/// The JetStream stream holding notifications.
pub const NOTIFY_STREAM: &str = "INVITES_NOTIFY";
/// The JetStream stream holding export progress.
pub const EXPORTS_STREAM: &str = "INVITES_EXPORTS";
/// The JetStream stream holding the rests of commands too large to carry theirs in a header
/// (PROTOCOL.md, Relay and JetStream).
pub const RESTS_STREAM: &str = "INVITES_RESTS";
/// The object store bucket for export files.
pub const EXPORTS_BUCKET: &str = "invites-exports";
/// The KV bucket of users' data keys, wrapped with the master key (one entry per user).
pub const KEYS_BUCKET: &str = "invites-keys";

/// The header every event of a command of several events carries on `INVITES_EVENTS`:
/// `<first>-<last>` positions (PROTOCOL.md, Relay and JetStream).
pub const COMMAND_SPAN_HEADER: &str = "Invitebus-Command-Span";

/// The queue groups the roles answer requests in (their defaults; NATS hands each request to
/// one member of a group).
pub const COMMANDS_QUEUE_GROUP: &str = "invitebus-commands";
pub const VIEWS_QUEUE_GROUP: &str = "invitebus-views";
pub const NOTIFIER_QUEUE_GROUP: &str = "invitebus-notifier";

/// Where invitebus's messages go on the bus: subjects under one prefix, and how many copies
/// JetStream keeps of the streams and bucket invitebus creates. Settings, passed in: nothing
/// here reads the environment (the binary does, `INVITEBUS_PREFIX` and `INVITEBUS_REPLICAS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
    replicas: usize,
}

impl Default for Subjects {
    fn default() -> Self {
        Subjects::new(DEFAULT_PREFIX)
    }
}

impl Subjects {
    /// `prefix` is a dot-free token such as `invites`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Subjects {
            prefix: prefix.into(),
            replicas: 1,
        }
    }

    /// The same subjects, with streams of `replicas` copies (1–5; 3 on a three-node cluster).
    pub fn with_replicas(self, replicas: usize) -> Self {
        Subjects {
            replicas: replicas.clamp(1, 5),
            ..self
        }
    }

    /// Copies JetStream keeps of each stream and bucket invitebus creates.
    pub fn replicas(&self) -> usize {
        self.replicas
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `invites.cmd.<Command>`
    pub fn command(&self, name: &str) -> String {
        format!("{}.cmd.{name}", self.prefix)
    }

    /// `invites.cmd.*`, what the command service subscribes to.
    pub fn all_commands(&self) -> String {
        format!("{}.cmd.*", self.prefix)
    }

    /// `invites.q.<query>`
    pub fn query(&self, name: &str) -> String {
        format!("{}.q.{name}", self.prefix)
    }

    /// `invites.evt.<EventType>.<stream_id>`
    pub fn event(&self, event_type: &str, stream_id: &str) -> String {
        format!("{}.evt.{event_type}.{stream_id}", self.prefix)
    }

    /// `invites.evt.>`, every event.
    pub fn all_events(&self) -> String {
        format!("{}.evt.>", self.prefix)
    }

    /// Part `part` of the rest of the command whose first event has hash `first_hash`; None
    /// when that is not a hash (lowercase hex), so nothing else reaches the subject.
    pub fn rest(&self, first_hash: &str, part: usize) -> Option<String> {
        let hex = !first_hash.is_empty() && first_hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        hex.then(|| format!("{}.rest.{first_hash}.{part}", self.prefix))
    }

    /// Every rest's subject (the stream `INVITES_RESTS`).
    pub fn all_rests(&self) -> String {
        format!("{}.rest.>", self.prefix)
    }

    /// A filter on events: `None` is any type or any stream.
    pub fn events_filter(&self, event_type: Option<&str>, stream_id: Option<&Id>) -> String {
        format!(
            "{}.evt.{}.{}",
            self.prefix,
            event_type.unwrap_or("*"),
            stream_id.map(Id::as_str).unwrap_or("*")
        )
    }

    /// [`Subjects::events_filter`] for one stream named by its type and id (a stream id may be
    /// longer than an id: `resource-` and 64 characters).
    pub fn stream_events_filter(
        &self,
        event_type: Option<&str>,
        stream: Option<(crate::event::StreamType, &Id)>,
    ) -> String {
        format!(
            "{}.evt.{}.{}",
            self.prefix,
            event_type.unwrap_or("*"),
            stream.map(|(t, id)| t.stream_id(id)).as_deref().unwrap_or("*")
        )
    }

    /// `invites.notify.<user_id>`
    pub fn notify(&self, user: &Id) -> String {
        format!("{}.notify.{user}", self.prefix)
    }

    /// `invites.push.<user_id>`
    pub fn push(&self, user: &Id) -> String {
        format!("{}.push.{user}", self.prefix)
    }

    /// `invites.sms.<user_id>`
    pub fn sms(&self, user: &Id) -> String {
        format!("{}.sms.{user}", self.prefix)
    }

    /// `invites.export.<export_id>.progress`
    pub fn export_progress(&self, export_id: &Id) -> String {
        format!("{}.export.{export_id}.progress", self.prefix)
    }

    /// `invites.presence.<user_id>`: request/reply; answered by every gateway holding a live
    /// WebSocket of that user (no responders = offline).
    pub fn presence(&self, user: &Id) -> String {
        format!("{}.presence.{user}", self.prefix)
    }

    /// `invites.status.<projection>`: where a projection reports its position (for health).
    pub fn status(&self, projection: &str) -> String {
        format!("{}.status.{projection}", self.prefix)
    }

    /// `invites.status.*`
    pub fn all_status(&self) -> String {
        format!("{}.status.*", self.prefix)
    }

    /// `invites.health`
    pub fn health(&self) -> String {
        format!("{}.health", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_protocol_subjects() {
        let s = Subjects::default();
        let fang = Id::parse("fang").unwrap();
        assert_eq!(s.command("CreateInvite"), "invites.cmd.CreateInvite");
        assert_eq!(
            s.event("InviteCreated", "invite-1"),
            "invites.evt.InviteCreated.invite-1"
        );
        assert_eq!(s.notify(&fang), "invites.notify.fang");
        assert_eq!(s.events_filter(None, Some(&fang)), "invites.evt.*.fang");
        assert_eq!(s.health(), "invites.health");
        assert_eq!(s.rest("0a9f", 2).as_deref(), Some("invites.rest.0a9f.2"));
        for not_a_hash in ["", "0A9F", "ab.cd", "ab*", "ab>", "ab cd"] {
            assert_eq!(s.rest(not_a_hash, 0), None, "{not_a_hash:?}");
        }
    }
}
