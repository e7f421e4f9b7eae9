//! The data of each event. Timestamps are RFC 3339 UTC with milliseconds.

use crate::command::{ExportFormat, InviteDetail, PushInfo};
use crate::ids::Id;
use crate::query::AdminFilters;
use crate::status::RecordStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

type Time = DateTime<Utc>;

/// A user's profile, whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserUpserted {
    pub user_id: Id,
    pub name: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub company_name: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub position: Option<String>,
    #[serde(default)]
    pub area: Option<String>,
    pub at: Time,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceRegistered {
    pub resource_id: Id,
    pub kind: Id,
    pub name: String,
    /// 0 = unlimited.
    pub capacity: u32,
    #[serde(default)]
    pub parent_id: Option<Id>,
    #[serde(default)]
    pub info: Option<Value>,
    pub owner: Id,
    pub at: Time,
}

/// How a member came in; exactly one of the fields tells, `invite_id` and `code` may come together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Via {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct: Option<bool>,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberJoined {
    pub resource_id: Id,
    pub user_id: Id,
    pub via: Via,
    /// Who brought the member in (the inviter or the code's creator), when anyone did.
    #[serde(default)]
    pub inviter: Option<Id>,
    /// Members after this one joined.
    pub member_count: u32,
    pub at: Time,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberLeft {
    pub resource_id: Id,
    pub user_id: Id,
    pub member_count: u32,
    pub at: Time,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InviteCreated {
    pub invite_id: Id,
    pub resource_id: Id,
    pub resource_kind: Id,
    pub inviter: Id,
    pub invitees: Vec<Id>,
    pub role: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub detail: Option<InviteDetail>,
    #[serde(default)]
    pub expires_at: Option<Time>,
    pub requires_approval: bool,
    pub offline_enabled: bool,
    #[serde(default)]
    pub push: Option<PushInfo>,
    #[serde(default)]
    pub ext: Option<Value>,
    /// The invite code whose redemption made this invite.
    #[serde(default)]
    pub code: Option<Id>,
    pub created_at: Time,
}

/// The invite's changeable fields after the update, whole, and who was added or removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InviteUpdated {
    pub invite_id: Id,
    pub resource_id: Id,
    pub inviter: Id,
    pub role: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub detail: Option<InviteDetail>,
    #[serde(default)]
    pub expires_at: Option<Time>,
    pub added: Vec<Id>,
    pub removed: Vec<Id>,
    /// Every invitee after the update.
    pub invitees: Vec<Id>,
    pub at: Time,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InviteCancelled {
    pub invite_id: Id,
    pub resource_id: Id,
    pub inviter: Id,
    pub role: String,
    /// The invitees whose records became `cancelled` (those who had not answered).
    pub cancelled: Vec<Id>,
    pub at: Time,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InviteAccepted {
    pub invite_id: Id,
    pub resource_id: Id,
    pub inviter: Id,
    pub invitee: Id,
    pub role: String,
    /// `accepted`, or `applying` when approval is required.
    pub status: RecordStatus,
    pub at: Time,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InviteRejected {
    pub invite_id: Id,
    pub resource_id: Id,
    pub inviter: Id,
    pub invitee: Id,
    pub role: String,
    #[serde(default)]
    pub reason: Option<String>,
    pub at: Time,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InviteResent {
    pub invite_id: Id,
    pub resource_id: Id,
    pub inviter: Id,
    pub role: String,
    pub invitees: Vec<Id>,
    pub at: Time,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InviteRead {
    pub invite_id: Id,
    pub resource_id: Id,
    pub inviter: Id,
    pub invitee: Id,
    pub at: Time,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InviteHidden {
    pub invite_id: Id,
    pub resource_id: Id,
    pub user_id: Id,
    pub at: Time,
}

/// An `applying` record approved (then `approved`) or denied (then `denied`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InviteDecided {
    pub invite_id: Id,
    pub resource_id: Id,
    pub inviter: Id,
    pub invitee: Id,
    pub role: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The admin or owner who decided.
    pub by: Id,
    pub at: Time,
}

pub type InviteApproved = InviteDecided;
pub type InviteDenied = InviteDecided;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InviteExpired {
    pub invite_id: Id,
    pub resource_id: Id,
    pub inviter: Id,
    pub role: String,
    /// The invitees whose records became `expired`.
    pub expired: Vec<Id>,
    pub at: Time,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InviteCodeCreated {
    pub code: Id,
    pub resource_id: Id,
    pub inviter: Id,
    pub max_age: u64,
    pub max_uses: u32,
    pub temporary: bool,
    pub requires_approval: bool,
    #[serde(default)]
    pub expires_at: Option<Time>,
    pub created_at: Time,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InviteCodeRedeemed {
    pub code: Id,
    pub resource_id: Id,
    pub inviter: Id,
    pub user_id: Id,
    /// Uses after this one.
    pub uses: u32,
    /// The `applying` invite made when the code requires approval.
    #[serde(default)]
    pub invite_id: Option<Id>,
    pub at: Time,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InviteCodeDeleted {
    pub code: Id,
    pub resource_id: Id,
    pub by: Id,
    pub at: Time,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportRequested {
    pub export_id: Id,
    pub requested_by: Id,
    pub view: String,
    pub filters: AdminFilters,
    pub format: ExportFormat,
    pub at: Time,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportStarted {
    pub export_id: Id,
    pub requested_by: Id,
    pub count: u64,
    pub at: Time,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportCompleted {
    pub export_id: Id,
    pub requested_by: Id,
    pub file_url: String,
    pub file_size: u64,
    pub count: u64,
    pub at: Time,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportFailed {
    pub export_id: Id,
    pub requested_by: Id,
    pub reason: String,
    pub at: Time,
}
