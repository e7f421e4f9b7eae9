//! Why a command is refused, sorted as cqrs-es sorts them: each aggregate's own rules (its
//! `…Error` enum next to its state) apart from loading's conflicts and infrastructure
//! ([`StoreError`]). Every variant's doc names the wire code and HTTP status it becomes
//! (PROTOCOL.md, "Errors"); one `From` per enum turns it into the catalogue's [`ProtocolError`].

use invitebus_eventlog::LogError;
use invitebus_events::event::DecodeError;
use invitebus_events::ErrorCode;

/// A refusal's place in the catalogue: its code and the field it names, if any. The wire
/// message is the error's `Display`.
pub trait Rejection: std::error::Error {
    fn code(&self) -> ErrorCode;
    fn field(&self) -> Option<&'static str> {
        None
    }
}

/// `impl From<$error> for ProtocolError` through [`Rejection`].
macro_rules! into_protocol_error {
    ($error:ty) => {
        impl From<$error> for invitebus_events::ProtocolError {
            fn from(e: $error) -> Self {
                use $crate::error::Rejection;
                invitebus_events::ProtocolError {
                    code: e.code(),
                    field: e.field().map(String::from),
                    message: e.to_string(),
                }
            }
        }
    };
}
pub(crate) use into_protocol_error;

/// Loading a decision's streams failed: a conflict or the infrastructure, never a rule.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `expected_version` does not match the stream: `conflict`, HTTP 409, on `expected_version`.
    #[error("{stream} is at version {actual}, not {expected}")]
    Conflict { stream: String, actual: u64, expected: u64 },
    /// The log could not be read: `unavailable`, HTTP 503 (safe to retry with the same command_id).
    #[error("reading the log: {0}")]
    Unavailable(#[source] LogError),
    /// A stored event does not decode (a damaged log or a bug): `internal`, HTTP 500.
    #[error("position {position}: {source}")]
    Undecodable {
        position: u64,
        #[source]
        source: DecodeError,
    },
    /// A decision read a stream it had not loaded (a bug, answered instead of a panic):
    /// `internal`, HTTP 500.
    #[error("{0} was not loaded before deciding")]
    NotLoaded(String),
}

impl Rejection for StoreError {
    fn code(&self) -> ErrorCode {
        match self {
            StoreError::Conflict { .. } => ErrorCode::Conflict,
            StoreError::Unavailable(_) => ErrorCode::Unavailable,
            StoreError::Undecodable { .. } | StoreError::NotLoaded(_) => ErrorCode::Internal,
        }
    }
    fn field(&self) -> Option<&'static str> {
        match self {
            StoreError::Conflict { .. } => Some("expected_version"),
            StoreError::Unavailable(_) | StoreError::Undecodable { .. } | StoreError::NotLoaded(_) => None,
        }
    }
}

into_protocol_error!(StoreError);
