//! Which notifications an event causes, to whom, with which fixed text. Pure: the only input
//! besides the event is what the notifier remembers of invites and profiles.

use invitebus_events::{Event, Id};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The notification kinds of PROTOCOL.md.
pub const KINDS: [&str; 11] = [
    "invite_received",
    "invite_accepted",
    "invite_rejected",
    "invite_cancelled",
    "invite_resent",
    "invite_updated",
    "invite_expired",
    "invite_approved",
    "invite_denied",
    "reminder",
    "export_ready",
];

/// One notification, as published on `invites.notify.<user_id>` and listed by `inbox`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// `<position>-<user_id>`: one event notifies a user at most once.
    pub id: String,
    pub user_id: Id,
    pub kind: String,
    pub text: String,
    pub invite_id: Option<Id>,
    pub resource_id: Option<Id>,
    /// The user whose act caused it.
    pub from: Option<Id>,
    pub at: String,
    pub position: u64,
    /// The invite's push information, when it has some (seed 002).
    pub push: Option<Value>,
    /// Also handed to the SMS gateway (`invites.sms.<user_id>`): reminders with remind_type sms.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sms: bool,
    /// Live only (the invite said `offline_enabled: false`): sent on
    /// `invites.notify.<user_id>.live`, which `INVITES_NOTIFY` does not keep.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub live_only: bool,
    /// The W3C trace context of the command whose event caused it; also its message's header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// What the notifier remembers to write texts: display names and invites' push info.
pub trait Memory {
    /// The profile name, or the id when there is no profile.
    fn name(&self, user: &Id) -> String;
    /// The push info of an invite, if it carries any.
    fn push(&self, invite: &Id) -> Option<Value>;
    /// False for an invite created with `offline_enabled: false`: its notifications are live only.
    fn offline_enabled(&self, invite: &Id) -> bool;
}

/// A text as a person reads it: control characters (from free text, or from names stored
/// before they were refused) written as `\u{..}` escapes, so none reaches a terminal or a push.
pub fn shown(text: &str) -> String {
    match text.contains(char::is_control) {
        false => text.to_string(),
        true => text.chars().fold(String::with_capacity(text.len() + 8), |mut out, c| {
            match c.is_control() {
                true => out.push_str(&c.escape_unicode().to_string()),
                false => out.push(c),
            }
            out
        }),
    }
}

/// The notifications `event` (at `position`) causes.
pub fn notifications(event: &Event, position: u64, memory: &dyn Memory) -> Vec<Notification> {
    let make = |user: &Id,
                kind: &str,
                text: String,
                invite: Option<&Id>,
                resource: Option<&Id>,
                from: Option<&Id>,
                at: &chrono::DateTime<chrono::Utc>| {
        Notification {
            id: format!("{position}-{user}"),
            user_id: user.clone(),
            kind: kind.to_string(),
            text: shown(&text),
            invite_id: invite.cloned(),
            resource_id: resource.cloned(),
            from: from.cloned(),
            at: invitebus_events::envelope::format_time(at),
            position,
            push: invite.and_then(|i| memory.push(i)),
            sms: false,
            live_only: invite.is_some_and(|i| !memory.offline_enabled(i)),
            traceparent: None,
        }
    };
    let received = |role: &str| format!("You have received an invitation about becoming {role}!");
    match event {
        Event::InviteCreated(e) => e
            .invitees
            .iter()
            .map(|u| {
                let mut n = make(
                    u,
                    "invite_received",
                    received(&e.role),
                    Some(&e.invite_id),
                    Some(&e.resource_id),
                    Some(&e.inviter),
                    &e.created_at,
                );
                n.push = e.push.as_ref().map(|p| serde_json::to_value(p).unwrap_or(Value::Null));
                n
            })
            .collect(),
        Event::InviteAccepted(e) => vec![make(
            &e.inviter,
            "invite_accepted",
            format!("{} has agreed to become {}", memory.name(&e.invitee), e.role),
            Some(&e.invite_id),
            Some(&e.resource_id),
            Some(&e.invitee),
            &e.at,
        )],
        Event::InviteTentativelyAccepted(e) => vec![make(
            &e.inviter,
            "invite_tentative",
            format!(
                "{} has tentatively accepted to become {}",
                memory.name(&e.invitee),
                e.role
            ),
            Some(&e.invite_id),
            Some(&e.resource_id),
            Some(&e.invitee),
            &e.at,
        )],
        Event::InviteRejected(e) => vec![make(
            &e.inviter,
            "invite_rejected",
            format!("{} has refused to become {}", memory.name(&e.invitee), e.role),
            Some(&e.invite_id),
            Some(&e.resource_id),
            Some(&e.invitee),
            &e.at,
        )],
        Event::InviteCancelled(e) => e
            .cancelled
            .iter()
            .map(|u| {
                let text = format!(
                    "{} cancelled the invitation to become {}",
                    memory.name(&e.inviter),
                    e.role
                );
                make(
                    u,
                    "invite_cancelled",
                    text,
                    Some(&e.invite_id),
                    Some(&e.resource_id),
                    Some(&e.inviter),
                    &e.at,
                )
            })
            .collect(),
        Event::InviteResent(e) => e
            .invitees
            .iter()
            .map(|u| {
                make(
                    u,
                    "invite_resent",
                    received(&e.role),
                    Some(&e.invite_id),
                    Some(&e.resource_id),
                    Some(&e.inviter),
                    &e.at,
                )
            })
            .collect(),
        Event::InviteUpdated(e) => e
            .invitees
            .iter()
            .map(|u| {
                if e.added.contains(u) {
                    make(
                        u,
                        "invite_received",
                        received(&e.role),
                        Some(&e.invite_id),
                        Some(&e.resource_id),
                        Some(&e.inviter),
                        &e.at,
                    )
                } else {
                    let text = format!(
                        "{} updated the invitation to become {}",
                        memory.name(&e.inviter),
                        e.role
                    );
                    make(
                        u,
                        "invite_updated",
                        text,
                        Some(&e.invite_id),
                        Some(&e.resource_id),
                        Some(&e.inviter),
                        &e.at,
                    )
                }
            })
            .collect(),
        Event::InviteExpired(e) => std::iter::once(&e.inviter)
            .chain(e.expired.iter())
            .map(|u| {
                let text = format!("The invitation to become {} has expired", e.role);
                make(
                    u,
                    "invite_expired",
                    text,
                    Some(&e.invite_id),
                    Some(&e.resource_id),
                    None,
                    &e.at,
                )
            })
            .collect(),
        Event::InviteApproved(e) => vec![make(
            &e.invitee,
            "invite_approved",
            format!("Your application to become {} was approved", e.role),
            Some(&e.invite_id),
            Some(&e.resource_id),
            Some(&e.by),
            &e.at,
        )],
        Event::InviteDenied(e) => vec![make(
            &e.invitee,
            "invite_denied",
            format!("Your application to become {} was denied", e.role),
            Some(&e.invite_id),
            Some(&e.resource_id),
            Some(&e.by),
            &e.at,
        )],
        Event::InviteReminded(e) => e
            .recipients
            .iter()
            .map(|u| {
                let content = e.content.clone().unwrap_or_else(|| format!("your {}", e.role));
                let begin = e
                    .begin_time
                    .as_ref()
                    .map(invitebus_events::envelope::format_time)
                    .unwrap_or_default();
                let mut n = make(
                    u,
                    "reminder",
                    format!("Reminder: {content} starts at {begin}"),
                    Some(&e.invite_id),
                    Some(&e.resource_id),
                    None,
                    &e.at,
                );
                n.sms = e.remind_type == Some(invitebus_events::command::RemindType::Sms);
                n
            })
            .collect(),
        Event::ExportCompleted(e) => vec![make(
            &e.requested_by,
            "export_ready",
            "Your export is ready".into(),
            None,
            None,
            None,
            &e.at,
        )],
        Event::UserUpserted(_)
        | Event::ResourceRegistered(_)
        | Event::MemberJoined(_)
        | Event::MemberLeft(_)
        | Event::InvitesPaused(_)
        | Event::InvitesResumed(_)
        | Event::InviteRead(_)
        | Event::InviteHidden(_)
        | Event::InviteCodeCreated(_)
        | Event::InviteCodeRedeemed(_)
        | Event::InviteCodeDeleted(_)
        | Event::ExportRequested(_)
        | Event::ExportStarted(_)
        | Event::ExportFailed(_)
        | Event::UserForgotten(_)
        | Event::WebhookRegistered(_)
        | Event::WebhookDeleted(_)
        | Event::WebhookReplayed(_) => vec![],
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped_where_a_text_is_shown() {
        assert_eq!(super::shown("Fang"), "Fang");
        assert_eq!(super::shown("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\u{a}");
    }

    use super::*;
    use invitebus_events::event::ExportCompleted;

    struct NoMemory;
    impl Memory for NoMemory {
        fn name(&self, user: &Id) -> String {
            user.to_string()
        }
        fn push(&self, _: &Id) -> Option<Value> {
            None
        }
        fn offline_enabled(&self, _: &Id) -> bool {
            true
        }
    }

    #[test]
    fn a_finished_export_tells_its_requester() {
        let e = Event::ExportCompleted(ExportCompleted {
            at: chrono::Utc::now(),
            count: 3,
            export_id: Id::parse("e1").unwrap(),
            file_size: 10,
            file_url: "u".into(),
            requested_by: Id::parse("root").unwrap(),
        });
        let ns = notifications(&e, 7, &NoMemory);
        assert_eq!(ns.len(), 1);
        assert_eq!(ns[0].user_id, "root");
        assert_eq!(ns[0].kind, "export_ready");
        assert_eq!(ns[0].text, "Your export is ready");
        assert_eq!(ns[0].id, "7-root");
    }
}
