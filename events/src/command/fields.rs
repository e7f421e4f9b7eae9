//! Each command's own fields, as PROTOCOL.md lists them; their shared limits are in `limits`,
//! the export commands' fields in `export`.

use super::decode::{decode_fields, Fields};
use crate::error::ProtocolError;
use crate::ids::Id;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::export::{CompleteExport, ExportFormat, FailExport, RequestExport, StartExport};
use super::limits::{check_json, check_name, check_opt_len, check_unique};
pub use super::limits::{DEFAULT_CODE_MAX_AGE, MAX_INVITEES, MAX_JSON, MAX_NAME, MAX_TEXT};

macro_rules! plain_fields {
    ($($t:ty),* $(,)?) => {
        $(impl Fields for $t {
            fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
                decode_fields(body)
            }
        })*
    };
}

/// Creates or replaces a user's profile.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UpsertUser {
    pub user_id: Id,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub company_name: Option<String>,
    pub department: Option<String>,
    pub position: Option<String>,
    pub area: Option<String>,
}

/// Registers a resource (conference, meeting, channel, guild, …); the actor becomes its owner.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RegisterResource {
    pub resource_id: Id,
    pub kind: Id,
    pub name: String,
    /// Most members; 0 = unlimited.
    #[serde(default)]
    pub capacity: u32,
    pub parent_id: Option<Id>,
    pub info: Option<Value>,
}

/// The actor joins a resource directly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JoinResource {
    pub resource_id: Id,
}

/// The actor leaves a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LeaveResource {
    pub resource_id: Id,
}

/// The resource's owner or an admin pauses new invites on it (Discord's "pause invites"):
/// CreateInvite, CreateInviteCode, RedeemInviteCode and UpdateInvite adding invitees on it get
/// `invites_paused`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PauseInvites {
    pub resource_id: Id,
    /// When the pause ends by itself (the scheduler records the resume); none: until resumed.
    pub until: Option<DateTime<Utc>>,
}

/// The resource's owner or an admin resumes it; the scheduler sends it at a pause's `until`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResumeInvites {
    pub resource_id: Id,
    /// Resume only the pause that lasts until this time (the scheduler's resume), so that an
    /// older timer never lifts a newer pause.
    pub until: Option<DateTime<Utc>>,
}

/// Forget a person (the user, or an admin): their data key is destroyed, so their personal
/// fields read `[forgotten]` everywhere from now on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ForgetUser {
    pub user_id: Id,
}

/// How a reminder is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemindType {
    InApp,
    Sms,
}

/// Seed 001's meeting details.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InviteDetail {
    pub address: Option<String>,
    pub begin_time: Option<DateTime<Utc>>,
    pub content: Option<String>,
    pub end_time: Option<DateTime<Utc>>,
    /// Minutes before `begin_time` to remind.
    pub remind_min: Option<u32>,
    pub remind_type: Option<RemindType>,
}

/// Push information for offline delivery (seed 002's pushInfo).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PushInfo {
    pub badge: Option<bool>,
    pub content: Option<String>,
    pub payload: Option<Value>,
    pub title: Option<String>,
}

/// What an invite says and to whom: shared by CreateInvite and StartCall.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InviteSpec {
    /// Client-given id (seed 002's requestId); a UUIDv7 is made when absent.
    pub invite_id: Option<Id>,
    pub invitees: Option<Vec<Id>>,
    pub invitee: Option<Id>,
    /// Default `member`.
    pub role: Option<String>,
    pub message: Option<String>,
    pub detail: Option<InviteDetail>,
    /// Seconds until the invite expires; 0 or absent = never.
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub requires_approval: bool,
    /// Default true: notifications are kept for offline invitees.
    pub offline_enabled: Option<bool>,
    pub push: Option<PushInfo>,
    pub ext: Option<Value>,
}

/// The default role of an invite.
pub const DEFAULT_ROLE: &str = "member";

impl InviteSpec {
    /// `invitees`, or `[invitee]`.
    pub fn all_invitees(&self) -> Vec<Id> {
        match (&self.invitees, &self.invitee) {
            (Some(list), _) => list.clone(),
            (None, Some(one)) => vec![one.clone()],
            (None, None) => vec![],
        }
    }

    pub fn role(&self) -> &str {
        self.role.as_deref().unwrap_or(DEFAULT_ROLE)
    }

    fn validate(&self) -> Result<(), ProtocolError> {
        match (&self.invitees, &self.invitee) {
            (None, None) => return Err(ProtocolError::missing("invitees")),
            (Some(_), Some(_)) => return Err(ProtocolError::invalid("invitee", "give invitees or invitee, not both")),
            (Some(list), None) => {
                if list.is_empty() || list.len() > MAX_INVITEES {
                    return Err(ProtocolError::invalid(
                        "invitees",
                        format!("must hold 1 to {MAX_INVITEES} ids"),
                    ));
                }
                check_unique("invitees", list)?;
            }
            (None, Some(_)) => {}
        }
        if let Some(role) = &self.role {
            check_name("role", role)?;
        }
        check_opt_len("message", &self.message, MAX_TEXT)?;
        check_json("detail", &self.detail)?;
        check_json("push", &self.push)?;
        check_json("ext", &self.ext)
    }
}

/// Invites users to a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CreateInvite {
    pub resource_id: Id,
    #[serde(flatten)]
    pub spec: InviteSpec,
}

#[derive(Deserialize)]
struct ResourceRef {
    resource_id: Id,
}

impl Fields for CreateInvite {
    fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        let ResourceRef { resource_id } = decode_fields(body)?;
        Ok(CreateInvite {
            resource_id,
            spec: decode_fields(body)?,
        })
    }
    fn validate(&self) -> Result<(), ProtocolError> {
        self.spec.validate()
    }
}

/// Creates a channel, joins it and invites into it, in one append (seed 002's call).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StartCall {
    #[serde(flatten)]
    pub call: CallSpec,
    #[serde(flatten)]
    pub spec: InviteSpec,
}

/// The channel a call creates.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CallSpec {
    /// A UUIDv7 is made when absent.
    pub resource_id: Option<Id>,
    /// Default `channel`.
    pub kind: Option<Id>,
    pub name: Option<String>,
    pub capacity: Option<u32>,
    pub info: Option<Value>,
}

impl Fields for StartCall {
    fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        Ok(StartCall {
            call: decode_fields(body)?,
            spec: decode_fields(body)?,
        })
    }
    fn validate(&self) -> Result<(), ProtocolError> {
        if let Some(name) = &self.call.name {
            check_name("name", name)?;
        }
        check_json("info", &self.call.info)?;
        self.spec.validate()
    }
}

/// Changes an open invite: text, details, expiry, who is invited.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UpdateInvite {
    pub invite_id: Id,
    pub message: Option<String>,
    pub detail: Option<InviteDetail>,
    pub expires_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_invitees: Vec<Id>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_invitees: Vec<Id>,
}

impl Fields for UpdateInvite {
    fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        decode_fields(body)
    }
    fn validate(&self) -> Result<(), ProtocolError> {
        check_opt_len("message", &self.message, MAX_TEXT)?;
        check_json("detail", &self.detail)?;
        if self.add_invitees.len() > MAX_INVITEES {
            return Err(ProtocolError::invalid(
                "add_invitees",
                format!("at most {MAX_INVITEES} ids"),
            ));
        }
        check_unique("add_invitees", &self.add_invitees)?;
        check_unique("remove_invitees", &self.remove_invitees)
    }
}

/// Names one invite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InviteRef {
    pub invite_id: Id,
}

/// The inviter withdraws an invite.
pub type CancelInvite = InviteRef;
/// An invitee reads an invite (only the first read appends).
pub type MarkInviteRead = InviteRef;
/// Hides an invite from the actor's own lists.
pub type HideInvite = InviteRef;
/// `system` expires an invite whose time is up.
pub type ExpireInvite = InviteRef;
/// `system` reminds the parties of a meeting before it begins (the scheduler sends it when due).
pub type RemindInvite = InviteRef;

/// An invitee accepts.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AcceptInvite {
    pub invite_id: Id,
    /// Join the resource at once (default true) when no approval is required.
    pub auto_join: Option<bool>,
}

/// An invitee answers "maybe", perhaps proposing other times for the meeting.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TentativelyAcceptInvite {
    pub invite_id: Id,
    pub proposed_begin_time: Option<DateTime<Utc>>,
    pub proposed_end_time: Option<DateTime<Utc>>,
    pub comment: Option<String>,
}

impl Fields for TentativelyAcceptInvite {
    fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        decode_fields(body)
    }
    fn validate(&self) -> Result<(), ProtocolError> {
        check_opt_len("comment", &self.comment, MAX_TEXT)?;
        match (self.proposed_begin_time, self.proposed_end_time) {
            (Some(begin), Some(end)) if end <= begin => Err(ProtocolError::invalid(
                "proposed_end_time",
                "must be after proposed_begin_time",
            )),
            _ => Ok(()),
        }
    }
}

/// An invitee refuses.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RejectInvite {
    pub invite_id: Id,
    pub reason: Option<String>,
}

impl Fields for RejectInvite {
    fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        decode_fields(body)
    }
    fn validate(&self) -> Result<(), ProtocolError> {
        check_opt_len("reason", &self.reason, MAX_TEXT)
    }
}

/// The inviter sends an invite again to some or all unanswered invitees.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResendInvite {
    pub invite_id: Id,
    pub invitees: Option<Vec<Id>>,
}

/// An admin or the resource's owner decides an `applying` record.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Decision {
    pub invite_id: Id,
    /// Required when the invite has several invitees.
    pub invitee: Option<Id>,
    pub description: Option<String>,
}

impl Fields for Decision {
    fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        decode_fields(body)
    }
    fn validate(&self) -> Result<(), ProtocolError> {
        check_opt_len("description", &self.description, MAX_TEXT)
    }
}

pub type ApproveInvite = Decision;
pub type DenyInvite = Decision;

/// Creates a shareable code for a resource (seed 003).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CreateInviteCode {
    pub resource_id: Id,
    /// 8 random base62 characters are made when absent.
    pub code: Option<Id>,
    /// Seconds the code lives; 0 = forever; default 86400.
    pub max_age: Option<u64>,
    /// 0 = unlimited.
    #[serde(default)]
    pub max_uses: u32,
    #[serde(default)]
    pub temporary: bool,
    #[serde(default)]
    pub requires_approval: bool,
}

/// Names one invite code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CodeRef {
    pub code: Id,
}

pub type RedeemInviteCode = CodeRef;
pub type DeleteInviteCode = CodeRef;

impl Fields for UpsertUser {
    fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        decode_fields(body)
    }
    fn validate(&self) -> Result<(), ProtocolError> {
        check_name("name", &self.name)?;
        for (field, v) in [
            ("phone", &self.phone),
            ("email", &self.email),
            ("company_name", &self.company_name),
            ("department", &self.department),
            ("position", &self.position),
            ("area", &self.area),
        ] {
            check_opt_len(field, v, MAX_NAME)?;
        }
        Ok(())
    }
}

impl Fields for RegisterResource {
    fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        decode_fields(body)
    }
    fn validate(&self) -> Result<(), ProtocolError> {
        check_name("name", &self.name)?;
        check_json("info", &self.info)
    }
}

impl Fields for ResendInvite {
    fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        decode_fields(body)
    }
    fn validate(&self) -> Result<(), ProtocolError> {
        match &self.invitees {
            Some(list) if list.is_empty() || list.len() > MAX_INVITEES => Err(ProtocolError::invalid(
                "invitees",
                format!("must hold 1 to {MAX_INVITEES} ids"),
            )),
            Some(list) => check_unique("invitees", list),
            None => Ok(()),
        }
    }
}

plain_fields!(
    ForgetUser,
    JoinResource,
    LeaveResource,
    PauseInvites,
    ResumeInvites,
    InviteRef,
    AcceptInvite,
    CreateInviteCode,
    CodeRef,
);
