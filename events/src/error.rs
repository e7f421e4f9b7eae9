//! The error catalogue of PROTOCOL.md. Every failure a client can cause maps to one code.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The fixed error codes; `as_str` is the wire form, [`ErrorCode::http_status`] the status an
/// HTTP route answers with (each variant's doc says which). Seeds' own codes: [`crate::seeds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, not an object, an unknown command or query, a body over 64 KiB. HTTP 400.
    InvalidCommand,
    /// A required field is absent (`field` names it). HTTP 400.
    MissingField,
    /// A field has the wrong type or value (`field` names it). HTTP 400.
    InvalidField,
    /// No actor, or a bad or expired token. HTTP 401.
    Unauthenticated,
    /// The actor may not do this. HTTP 403.
    Forbidden,
    /// No such resource, invite, code or export. HTTP 404.
    NotFound,
    /// The actor is not in the resource. HTTP 409.
    NotMember,
    /// The invitee or user is already in the resource. HTTP 409.
    AlreadyMember,
    /// The resource's capacity is reached. HTTP 409.
    ResourceFull,
    /// The id is taken. HTTP 409.
    ResourceExists,
    /// The resource's owner or an admin paused new invites on it. HTTP 409.
    InvitesPaused,
    /// The invite or code is past its end. HTTP 409.
    Expired,
    /// The invite was cancelled. HTTP 409.
    Cancelled,
    /// The record was rejected before. HTTP 409.
    AlreadyRejected,
    /// The record was accepted before. HTTP 409.
    AlreadyAccepted,
    /// The code was used `max_uses` times. HTTP 409.
    Exhausted,
    /// Too soon, e.g. a resend within a minute. HTTP 429.
    RateLimited,
    /// Not in a state that allows this, e.g. approving what is not applying. HTTP 409.
    InvalidState,
    /// `expected_version` does not match, or a `command_id` was used for other fields. HTTP 409.
    Conflict,
    /// The user's export is still queued or running (seed 004). HTTP 409.
    ExportInProgress,
    /// The user's exports for the day are used up (seed 004). HTTP 429.
    ExportQuotaExceeded,
    /// Store or bus down, or a bounded wait timed out; safe to retry with the same command_id. HTTP 503.
    Unavailable,
    /// A bug; logged with the command_id. HTTP 500.
    Internal,
}

impl ErrorCode {
    /// For invitebus's own workers (timers, exports): a refusal that means "not now" (the
    /// service is down or failed, or refuses the worker's service token, a configuration to
    /// fix), so the work stays to do; any other means it no longer applies.
    pub fn leaves_work_due(self) -> bool {
        matches!(
            self,
            ErrorCode::Unavailable | ErrorCode::Internal | ErrorCode::Unauthenticated | ErrorCode::Forbidden
        )
    }

    pub const ALL: [ErrorCode; 23] = [
        ErrorCode::InvalidCommand,
        ErrorCode::MissingField,
        ErrorCode::InvalidField,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::NotMember,
        ErrorCode::AlreadyMember,
        ErrorCode::ResourceFull,
        ErrorCode::ResourceExists,
        ErrorCode::InvitesPaused,
        ErrorCode::Expired,
        ErrorCode::Cancelled,
        ErrorCode::AlreadyRejected,
        ErrorCode::AlreadyAccepted,
        ErrorCode::Exhausted,
        ErrorCode::RateLimited,
        ErrorCode::InvalidState,
        ErrorCode::Conflict,
        ErrorCode::ExportInProgress,
        ErrorCode::ExportQuotaExceeded,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidCommand => "invalid_command",
            ErrorCode::MissingField => "missing_field",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::NotMember => "not_member",
            ErrorCode::AlreadyMember => "already_member",
            ErrorCode::ResourceFull => "resource_full",
            ErrorCode::ResourceExists => "resource_exists",
            ErrorCode::InvitesPaused => "invites_paused",
            ErrorCode::Expired => "expired",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::AlreadyRejected => "already_rejected",
            ErrorCode::AlreadyAccepted => "already_accepted",
            ErrorCode::Exhausted => "exhausted",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::Conflict => "conflict",
            ErrorCode::ExportInProgress => "export_in_progress",
            ErrorCode::ExportQuotaExceeded => "export_quota_exceeded",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status a route answers this error with (PROTOCOL.md, "HTTP status").
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidCommand | ErrorCode::MissingField | ErrorCode::InvalidField => 400,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::RateLimited | ErrorCode::ExportQuotaExceeded => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
            ErrorCode::NotMember
            | ErrorCode::AlreadyMember
            | ErrorCode::ResourceFull
            | ErrorCode::ResourceExists
            | ErrorCode::InvitesPaused
            | ErrorCode::Expired
            | ErrorCode::Cancelled
            | ErrorCode::AlreadyRejected
            | ErrorCode::AlreadyAccepted
            | ErrorCode::Exhausted
            | ErrorCode::InvalidState
            | ErrorCode::Conflict
            | ErrorCode::ExportInProgress => 409,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error a command or query answers with: `{"code","message","field"}` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ProtocolError {
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn with_field(code: ErrorCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        ProtocolError {
            code,
            message: message.into(),
            field: Some(field.into()),
        }
    }

    pub fn missing(field: &str) -> Self {
        Self::with_field(ErrorCode::MissingField, field, format!("missing field `{field}`"))
    }

    pub fn invalid(field: &str, why: impl fmt::Display) -> Self {
        Self::with_field(ErrorCode::InvalidField, field, format!("invalid `{field}`: {why}"))
    }

    pub fn forbidden(why: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, why)
    }

    pub fn not_found(field: &str, what: impl fmt::Display) -> Self {
        Self::with_field(ErrorCode::NotFound, field, format!("no such {field}: {what}"))
    }

    pub fn invalid_command(why: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidCommand, why)
    }

    pub fn unavailable(why: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, why)
    }

    pub fn internal(why: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().into()));
        }
    }
}
