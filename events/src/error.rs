//! The error catalogue of PROTOCOL.md. Every failure a client can cause maps to one code.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The fixed error codes; `as_str` is the wire form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidCommand,
    MissingField,
    InvalidField,
    Unauthenticated,
    Forbidden,
    NotFound,
    NotMember,
    AlreadyMember,
    ResourceFull,
    ResourceExists,
    Expired,
    Cancelled,
    AlreadyRejected,
    AlreadyAccepted,
    Exhausted,
    RateLimited,
    InvalidState,
    Conflict,
    ExportInProgress,
    ExportQuotaExceeded,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 22] = [
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

    /// Seed 002's numeric code, where that product has one.
    pub fn seed_002_code(self) -> Option<u32> {
        match self {
            ErrorCode::NotFound => Some(10404),
            ErrorCode::ResourceExists => Some(10405),
            ErrorCode::NotMember => Some(10406),
            ErrorCode::AlreadyMember => Some(10407),
            ErrorCode::Expired | ErrorCode::Cancelled => Some(10408),
            ErrorCode::AlreadyRejected => Some(10409),
            ErrorCode::AlreadyAccepted => Some(10410),
            ErrorCode::ResourceFull => Some(10419),
            _ => None,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error a command or query answers with: `{"code","message","field"}` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
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
