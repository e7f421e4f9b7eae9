//! The data of each event. Timestamps are RFC 3339 UTC with milliseconds.
//!
//! Every struct here (and every struct nested in one) lists its fields in byte order of their
//! names: serde then writes the keys sorted, which is the canonical form the hash chain covers,
//! without going through a `serde_json::Value` (see `Event::data_json`).

use crate::command::{ExportFormat, InviteDetail, PushInfo};
use crate::ids::Id;
use crate::query::AdminFilters;
use crate::status::RecordStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

type Time = DateTime<Utc>;

/// A user's profile, whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserUpserted {
    #[serde(default)]
    pub area: Option<String>,
    pub at: Time,
    #[serde(default)]
    pub company_name: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    pub name: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub position: Option<String>,
    pub user_id: Id,
}

/// A user forgotten: their data key is destroyed, so every personal field sealed with it reads
/// `[forgotten]` from now on. `erased` is `full`, or `partial` when some of their profile was
/// stored before fields were sealed (in plain text, which the hash chain keeps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserForgotten {
    pub at: Time,
    pub by: Id,
    pub erased: String,
    pub user_id: Id,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResourceRegistered {
    pub at: Time,
    /// 0 = unlimited.
    pub capacity: u32,
    #[serde(default)]
    pub info: Option<Value>,
    pub kind: Id,
    pub name: String,
    pub owner: Id,
    #[serde(default)]
    pub parent_id: Option<Id>,
    pub resource_id: Id,
}

/// How a member came in; exactly one of the fields tells, `invite_id` and `code` may come together.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Via {
    pub code: Option<Id>,
    pub direct: Option<bool>,
    pub invite_id: Option<Id>,
    pub owner: Option<bool>,
}

impl Via {
    pub fn invite(invite_id: &Id) -> Via {
        Via {
            invite_id: Some(invite_id.clone()),
            ..Via::default()
        }
    }
    pub fn code(code: &Id) -> Via {
        Via {
            code: Some(code.clone()),
            ..Via::default()
        }
    }
    pub fn owner() -> Via {
        Via {
            owner: Some(true),
            ..Via::default()
        }
    }
    pub fn direct() -> Via {
        Via {
            direct: Some(true),
            ..Via::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemberJoined {
    pub at: Time,
    /// Who brought the member in (the inviter or the code's creator), when anyone did.
    #[serde(default)]
    pub inviter: Option<Id>,
    /// Members after this one joined.
    pub member_count: u32,
    pub resource_id: Id,
    pub user_id: Id,
    pub via: Via,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemberLeft {
    pub at: Time,
    pub member_count: u32,
    pub resource_id: Id,
    pub user_id: Id,
}

/// New invites, codes, redemptions and added invitees on the resource are refused
/// (`invites_paused`) until it is resumed, or until `until` if set; invites already sent can
/// still be answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InvitesPaused {
    pub at: Time,
    pub by: Id,
    pub resource_id: Id,
    #[serde(default)]
    pub until: Option<Time>,
}

/// The resource takes new invites again: resumed by its owner or an admin, or by the scheduler
/// at the pause's `until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InvitesResumed {
    pub at: Time,
    pub by: Id,
    pub resource_id: Id,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InviteCreated {
    /// The invite code whose redemption made this invite.
    #[serde(default)]
    pub code: Option<Id>,
    pub created_at: Time,
    #[serde(default)]
    pub detail: Option<InviteDetail>,
    #[serde(default)]
    pub expires_at: Option<Time>,
    #[serde(default)]
    pub ext: Option<Value>,
    pub invite_id: Id,
    pub invitees: Vec<Id>,
    pub inviter: Id,
    #[serde(default)]
    pub message: Option<String>,
    pub offline_enabled: bool,
    #[serde(default)]
    pub push: Option<PushInfo>,
    pub requires_approval: bool,
    pub resource_id: Id,
    pub resource_kind: Id,
    pub role: String,
}

/// The invite's changeable fields after the update, whole, and who was added or removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InviteUpdated {
    pub added: Vec<Id>,
    pub at: Time,
    #[serde(default)]
    pub detail: Option<InviteDetail>,
    #[serde(default)]
    pub expires_at: Option<Time>,
    pub invite_id: Id,
    /// Every invitee after the update.
    pub invitees: Vec<Id>,
    pub inviter: Id,
    #[serde(default)]
    pub message: Option<String>,
    pub removed: Vec<Id>,
    pub resource_id: Id,
    pub role: String,
    /// The invitees whose tentative answers went back to `pending`: the meeting's begin or end
    /// time changed (absent when none, so older updates read the same).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tentative_reset: Vec<Id>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InviteCancelled {
    pub at: Time,
    /// The invitees whose records became `cancelled` (those who had not answered).
    pub cancelled: Vec<Id>,
    pub invite_id: Id,
    pub inviter: Id,
    pub resource_id: Id,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InviteAccepted {
    pub at: Time,
    pub invite_id: Id,
    pub invitee: Id,
    pub inviter: Id,
    pub resource_id: Id,
    pub role: String,
    /// `accepted`, or `applying` when approval is required.
    pub status: RecordStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InviteRejected {
    pub at: Time,
    pub invite_id: Id,
    pub invitee: Id,
    pub inviter: Id,
    #[serde(default)]
    pub reason: Option<String>,
    pub resource_id: Id,
    pub role: String,
}

/// An invitee answers "maybe" (Microsoft Graph's `tentativelyAccept`), perhaps proposing other
/// times; the record is `tentative` and still unanswered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InviteTentativelyAccepted {
    pub at: Time,
    #[serde(default)]
    pub comment: Option<String>,
    pub invite_id: Id,
    pub invitee: Id,
    pub inviter: Id,
    #[serde(default)]
    pub proposed_begin_time: Option<Time>,
    #[serde(default)]
    pub proposed_end_time: Option<Time>,
    pub resource_id: Id,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InviteResent {
    pub at: Time,
    pub invite_id: Id,
    pub invitees: Vec<Id>,
    pub inviter: Id,
    pub resource_id: Id,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InviteRead {
    pub at: Time,
    pub invite_id: Id,
    pub invitee: Id,
    pub inviter: Id,
    pub resource_id: Id,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InviteHidden {
    pub at: Time,
    pub invite_id: Id,
    pub resource_id: Id,
    pub user_id: Id,
}

/// An `applying` record approved (then `approved`) or denied (then `denied`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InviteDecided {
    pub at: Time,
    /// The admin or owner who decided.
    pub by: Id,
    #[serde(default)]
    pub description: Option<String>,
    pub invite_id: Id,
    pub invitee: Id,
    pub inviter: Id,
    pub resource_id: Id,
    pub role: String,
}

pub type InviteApproved = InviteDecided;
pub type InviteDenied = InviteDecided;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InviteExpired {
    pub at: Time,
    /// The invitees whose records became `expired`.
    pub expired: Vec<Id>,
    pub invite_id: Id,
    pub inviter: Id,
    pub resource_id: Id,
    pub role: String,
}

/// A meeting's reminder went out (seed 001): to the inviter and every invitee who had not
/// refused, cancelled or expired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InviteReminded {
    pub at: Time,
    #[serde(default)]
    pub begin_time: Option<Time>,
    #[serde(default)]
    pub content: Option<String>,
    pub invite_id: Id,
    pub inviter: Id,
    pub recipients: Vec<Id>,
    #[serde(default)]
    pub remind_type: Option<crate::command::RemindType>,
    pub resource_id: Id,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InviteCodeCreated {
    pub code: Id,
    pub created_at: Time,
    #[serde(default)]
    pub expires_at: Option<Time>,
    pub inviter: Id,
    pub max_age: u64,
    pub max_uses: u32,
    pub requires_approval: bool,
    pub resource_id: Id,
    pub temporary: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InviteCodeRedeemed {
    pub at: Time,
    pub code: Id,
    /// The `applying` invite made when the code requires approval.
    #[serde(default)]
    pub invite_id: Option<Id>,
    pub inviter: Id,
    pub resource_id: Id,
    pub user_id: Id,
    /// Uses after this one.
    pub uses: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InviteCodeDeleted {
    pub at: Time,
    pub by: Id,
    pub code: Id,
    pub resource_id: Id,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExportRequested {
    pub at: Time,
    pub export_id: Id,
    pub filters: AdminFilters,
    pub format: ExportFormat,
    pub requested_by: Id,
    pub view: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExportStarted {
    pub at: Time,
    pub count: u64,
    pub export_id: Id,
    pub requested_by: Id,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExportCompleted {
    pub at: Time,
    pub count: u64,
    pub export_id: Id,
    pub file_size: u64,
    pub file_url: String,
    pub requested_by: Id,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExportFailed {
    pub at: Time,
    pub export_id: Id,
    pub reason: String,
    pub requested_by: Id,
}

/// An endpoint the webhooks role delivers matching events to (signed with `secret`).
/// `secret` is sealed with the deployment's master key (`invitebus_keys`): the event is on
/// `INVITES_EVENTS`, which every subscriber reads, so it never holds the secret in clear.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookRegistered {
    pub at: Time,
    /// The registrant: an admin, or the owner of `resource_id`.
    pub by: Id,
    /// Event types delivered; `*` for every type.
    pub events: Vec<String>,
    /// Only events about this resource; none: every event (an admin's webhook).
    pub resource_id: Option<Id>,
    pub secret: String,
    pub url: String,
    pub webhook_id: Id,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookDeleted {
    pub at: Time,
    pub by: Id,
    pub webhook_id: Id,
}

/// Delivery starts again at `from_position` (also for an endpoint marked failing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookReplayed {
    pub at: Time,
    pub by: Id,
    pub from_position: u64,
    pub webhook_id: Id,
}
