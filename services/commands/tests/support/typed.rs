//! Typed commands for the decision tests: one small builder per command, in the shape the
//! tests use most, so a scenario reads `s.when_typed("fang", &[], accept("inv"))`. The less
//! usual shapes start from the `cmd::…` struct a builder here returns, with `..` for the rest.

use super::id;
use invitebus_events::command::{self as cmd, CallSpec, InviteSpec};
use invitebus_events::{Command, Id};

/// Ids from their text.
pub fn ids(list: &[&str]) -> Vec<Id> {
    list.iter().map(|s| id(s)).collect()
}

// ---- users and resources ----

/// The profile of `user` called `name`, nothing else set.
pub fn profile(user: &str, name: &str) -> cmd::UpsertUser {
    cmd::UpsertUser {
        user_id: id(user),
        name: name.into(),
        phone: None,
        email: None,
        company_name: None,
        department: None,
        position: None,
        area: None,
    }
}

pub fn upsert_user(user: &str, name: &str) -> Command {
    Command::UpsertUser(profile(user, name))
}

/// RegisterResource of `resource`, a `kind` called `name` with room for `capacity` (0 = unlimited).
pub fn register(resource: &str, kind: &str, name: &str, capacity: u32) -> Command {
    Command::RegisterResource(cmd::RegisterResource {
        resource_id: id(resource),
        kind: id(kind),
        name: name.into(),
        capacity,
        parent_id: None,
        info: None,
    })
}

pub fn join(resource: &str) -> Command {
    Command::JoinResource(cmd::JoinResource {
        resource_id: id(resource),
    })
}

pub fn leave(resource: &str) -> Command {
    Command::LeaveResource(cmd::LeaveResource {
        resource_id: id(resource),
    })
}

// ---- invites ----

/// An invite to `who` alone (the `invitee` field), nothing else set.
pub fn invitee(who: &str) -> InviteSpec {
    InviteSpec {
        invitee: Some(id(who)),
        ..InviteSpec::default()
    }
}

/// An invite to each of `list` (the `invitees` field), nothing else set.
pub fn invitees(list: &[&str]) -> InviteSpec {
    InviteSpec {
        invitees: Some(ids(list)),
        ..InviteSpec::default()
    }
}

pub fn create_invite(resource: &str, spec: InviteSpec) -> Command {
    Command::CreateInvite(cmd::CreateInvite {
        resource_id: id(resource),
        spec,
    })
}

/// An UpdateInvite of `invite` that changes nothing yet.
pub fn changes(invite: &str) -> cmd::UpdateInvite {
    cmd::UpdateInvite {
        invite_id: id(invite),
        message: None,
        detail: None,
        expires_in: None,
        add_invitees: vec![],
        remove_invitees: vec![],
    }
}

pub fn update_message(invite: &str, message: &str) -> Command {
    Command::UpdateInvite(cmd::UpdateInvite {
        message: Some(message.into()),
        ..changes(invite)
    })
}

pub fn update_expiry(invite: &str, expires_in: u64) -> Command {
    Command::UpdateInvite(cmd::UpdateInvite {
        expires_in: Some(expires_in),
        ..changes(invite)
    })
}

pub fn add_invitees(invite: &str, list: &[&str]) -> Command {
    Command::UpdateInvite(cmd::UpdateInvite {
        add_invitees: ids(list),
        ..changes(invite)
    })
}

pub fn remove_invitees(invite: &str, list: &[&str]) -> Command {
    Command::UpdateInvite(cmd::UpdateInvite {
        remove_invitees: ids(list),
        ..changes(invite)
    })
}

fn invite_ref(invite: &str) -> cmd::InviteRef {
    cmd::InviteRef { invite_id: id(invite) }
}

pub fn cancel(invite: &str) -> Command {
    Command::CancelInvite(invite_ref(invite))
}

/// AcceptInvite with the default `auto_join` (join at once).
pub fn accept(invite: &str) -> Command {
    Command::AcceptInvite(cmd::AcceptInvite {
        invite_id: id(invite),
        auto_join: None,
    })
}

/// AcceptInvite with `auto_join: false`: accept, but do not join.
pub fn accept_without_joining(invite: &str) -> Command {
    Command::AcceptInvite(cmd::AcceptInvite {
        invite_id: id(invite),
        auto_join: Some(false),
    })
}

pub fn reject(invite: &str) -> Command {
    Command::RejectInvite(cmd::RejectInvite {
        invite_id: id(invite),
        reason: None,
    })
}

pub fn reject_because(invite: &str, reason: &str) -> Command {
    Command::RejectInvite(cmd::RejectInvite {
        invite_id: id(invite),
        reason: Some(reason.into()),
    })
}

pub fn mark_read(invite: &str) -> Command {
    Command::MarkInviteRead(invite_ref(invite))
}

pub fn hide(invite: &str) -> Command {
    Command::HideInvite(invite_ref(invite))
}

/// ResendInvite to every unanswered invitee.
pub fn resend(invite: &str) -> Command {
    Command::ResendInvite(cmd::ResendInvite {
        invite_id: id(invite),
        invitees: None,
    })
}

/// ResendInvite to exactly `list`.
pub fn resend_to(invite: &str, list: &[&str]) -> Command {
    Command::ResendInvite(cmd::ResendInvite {
        invite_id: id(invite),
        invitees: Some(ids(list)),
    })
}

/// A decision on `invite` naming no invitee and giving no description.
pub fn decision(invite: &str) -> cmd::Decision {
    cmd::Decision {
        invite_id: id(invite),
        invitee: None,
        description: None,
    }
}

pub fn approve(invite: &str) -> Command {
    Command::ApproveInvite(decision(invite))
}

pub fn deny(invite: &str) -> Command {
    Command::DenyInvite(decision(invite))
}

/// A decision on `invitee`'s record of `invite`.
pub fn decision_on(invite: &str, invitee: &str) -> cmd::Decision {
    cmd::Decision {
        invitee: Some(id(invitee)),
        ..decision(invite)
    }
}

pub fn expire(invite: &str) -> Command {
    Command::ExpireInvite(invite_ref(invite))
}

pub fn remind(invite: &str) -> Command {
    Command::RemindInvite(invite_ref(invite))
}

/// StartCall with the channel's defaults and the invite `spec`.
pub fn start_call(spec: InviteSpec) -> Command {
    Command::StartCall(cmd::StartCall {
        call: CallSpec::default(),
        spec,
    })
}

// ---- invite codes ----

/// A CreateInviteCode for `resource` with every default (a made code, a day, unlimited uses).
pub fn code_for(resource: &str) -> cmd::CreateInviteCode {
    cmd::CreateInviteCode {
        resource_id: id(resource),
        code: None,
        max_age: None,
        max_uses: 0,
        temporary: false,
        requires_approval: false,
    }
}

/// CreateInviteCode of `code` for `resource`, otherwise the defaults.
pub fn create_code(resource: &str, code: &str) -> Command {
    Command::CreateInviteCode(cmd::CreateInviteCode {
        code: Some(id(code)),
        ..code_for(resource)
    })
}

pub fn redeem(code: &str) -> Command {
    Command::RedeemInviteCode(cmd::CodeRef { code: id(code) })
}

pub fn delete_code(code: &str) -> Command {
    Command::DeleteInviteCode(cmd::CodeRef { code: id(code) })
}

// ---- exports ----

/// RequestExport of the admin view, unfiltered, in the default format.
pub fn request_export() -> Command {
    Command::RequestExport(cmd::RequestExport::default())
}

pub fn start_export(export: &str, count: u64) -> Command {
    Command::StartExport(cmd::StartExport {
        export_id: id(export),
        count,
    })
}

/// CompleteExport of one row in a one-byte file at `u`.
pub fn complete_export(export: &str) -> Command {
    Command::CompleteExport(cmd::CompleteExport {
        export_id: id(export),
        file_url: "u".into(),
        file_size: 1,
        count: 1,
    })
}

pub fn fail_export(export: &str, reason: &str) -> Command {
    Command::FailExport(cmd::FailExport {
        export_id: id(export),
        reason: reason.into(),
    })
}

// ---- pausing invites ----

/// PauseInvites on `resource`, until `until` when given.
pub fn pause(resource: &str, until: Option<chrono::DateTime<chrono::Utc>>) -> Command {
    Command::PauseInvites(cmd::PauseInvites {
        resource_id: id(resource),
        until,
    })
}

/// ResumeInvites on `resource`; with `until`, only the pause that lasts until then.
pub fn resume(resource: &str, until: Option<chrono::DateTime<chrono::Utc>>) -> Command {
    Command::ResumeInvites(cmd::ResumeInvites {
        resource_id: id(resource),
        until,
    })
}

/// TentativelyAcceptInvite of `invite`, proposing `begin` (and nothing else) when given.
pub fn tentative(invite: &str, begin: Option<chrono::DateTime<chrono::Utc>>) -> Command {
    Command::TentativelyAcceptInvite(cmd::TentativelyAcceptInvite {
        invite_id: id(invite),
        proposed_begin_time: begin,
        proposed_end_time: None,
        comment: Some("can we move it?".into()),
    })
}

/// UpdateInvite of `invite` setting the meeting's `begin_time` (its other details empty).
pub fn update_begin(invite: &str, begin: chrono::DateTime<chrono::Utc>) -> Command {
    Command::UpdateInvite(cmd::UpdateInvite {
        detail: Some(cmd::InviteDetail {
            begin_time: Some(begin),
            ..Default::default()
        }),
        ..changes(invite)
    })
}

/// RegisterWebhook `webhook` (every event type) on `resource` (None: every resource), its
/// secret sealed as the command service seals it.
pub fn register_webhook(webhook: &str, resource: Option<&str>) -> Command {
    let secret = "whsec_0123456789abcdef".to_string();
    Command::RegisterWebhook(cmd::RegisterWebhook {
        webhook_id: id(webhook),
        url: "https://hooks.example.com/in".into(),
        events: vec!["*".into()],
        sealed: Some(
            invitebus_keys::MasterKey::dev()
                .seal(invitebus_keys::Purpose::WebhookSecret, &secret)
                .unwrap(),
        ),
        secret,
        resource_id: resource.map(id),
    })
}

pub fn delete_webhook(webhook: &str) -> Command {
    Command::DeleteWebhook(cmd::WebhookRef {
        webhook_id: id(webhook),
    })
}

pub fn replay_webhook(webhook: &str, from_position: u64) -> Command {
    Command::ReplayWebhook(cmd::ReplayWebhook {
        webhook_id: id(webhook),
        from_position,
    })
}
