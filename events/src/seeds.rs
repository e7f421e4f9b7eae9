//! How our error codes and statuses read in each seed product's own vocabulary.
//! One table per product, kept here so the gateway and every client share them.

use crate::{ErrorCode, RecordStatus};

impl ErrorCode {
    /// Seed 000's `code`: 8 not signed in, 9 incomplete request, 10 not allowed; 1 for anything
    /// that product never had (its clients only test for 0).
    pub fn seed_000_code(self) -> u32 {
        match self {
            ErrorCode::Unauthenticated => 8,
            ErrorCode::InvalidCommand | ErrorCode::MissingField | ErrorCode::InvalidField => 9,
            ErrorCode::Forbidden => 10,
            _ => 1,
        }
    }

    /// Seed 001's `status`: 4003 for a missing or expired token, as that product answers; the
    /// others follow the same 4xxx/5xxx pattern after the HTTP status they correspond to.
    pub fn seed_001_status(self) -> u32 {
        match self {
            ErrorCode::Unauthenticated => 4003,
            ErrorCode::InvalidCommand | ErrorCode::MissingField | ErrorCode::InvalidField => 4000,
            ErrorCode::Forbidden => 4001,
            ErrorCode::NotFound => 4004,
            ErrorCode::RateLimited | ErrorCode::ExportQuotaExceeded => 4029,
            ErrorCode::Unavailable => 5003,
            ErrorCode::Internal => 5000,
            _ => 4009,
        }
    }

    /// Seed 004's `code`: 401 for no permission (signed out or not an admin), -1 otherwise.
    pub fn seed_004_code(self) -> i32 {
        match self {
            ErrorCode::Unauthenticated | ErrorCode::Forbidden => 401,
            _ => -1,
        }
    }

    /// Seed 004's `error` name: `errors/unauthorized_error` or `standard_error`.
    pub fn seed_004_error(self) -> &'static str {
        match self.seed_004_code() {
            401 => "errors/unauthorized_error",
            _ => "standard_error",
        }
    }

    /// Seed 002's reply code for every error: its own 104xx codes where it has one, else the
    /// platform's generic ones (414 bad parameter, 403 forbidden, 416 too frequent, 500).
    pub fn seed_002_reply_code(self) -> u32 {
        if let Some(code) = self.seed_002_code() {
            return code;
        }
        match self {
            ErrorCode::Unauthenticated => 401,
            ErrorCode::InvalidCommand | ErrorCode::MissingField | ErrorCode::InvalidField => 414,
            ErrorCode::Forbidden => 403,
            ErrorCode::RateLimited | ErrorCode::ExportQuotaExceeded => 416,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
            _ => 409,
        }
    }
}

impl RecordStatus {
    /// Seed 000's status: `init` until answered, `accept`, `reject`; our name for the rest.
    pub fn seed_000_status(self) -> &'static str {
        match self {
            RecordStatus::Pending | RecordStatus::Read => "init",
            RecordStatus::Accepted => "accept",
            RecordStatus::Rejected => "reject",
            RecordStatus::Applying
            | RecordStatus::Approved
            | RecordStatus::Denied
            | RecordStatus::Cancelled
            | RecordStatus::Expired => self.as_str(),
        }
    }

    /// Seed 001's msgStatus: 0 unread, 1 read and not answered, 2 accepted, 3 refused. An
    /// approved or applying record counts as accepted; denied, cancelled and expired as refused.
    pub fn seed_001_msg_status(self) -> u8 {
        match self {
            RecordStatus::Pending => 0,
            RecordStatus::Read => 1,
            RecordStatus::Accepted | RecordStatus::Applying | RecordStatus::Approved => 2,
            RecordStatus::Rejected | RecordStatus::Denied | RecordStatus::Cancelled | RecordStatus::Expired => 3,
        }
    }

    /// Whether the invitee still gets the meeting's reminder (seed 001's `remind`).
    pub fn reminded(self) -> bool {
        !matches!(
            self,
            RecordStatus::Rejected | RecordStatus::Denied | RecordStatus::Cancelled | RecordStatus::Expired
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_documented_codes() {
        assert_eq!(ErrorCode::Unauthenticated.seed_000_code(), 8);
        assert_eq!(ErrorCode::MissingField.seed_000_code(), 9);
        assert_eq!(ErrorCode::Forbidden.seed_000_code(), 10);
        assert_eq!(ErrorCode::Unauthenticated.seed_001_status(), 4003);
        assert_eq!(ErrorCode::Forbidden.seed_004_code(), 401);
        assert_eq!(ErrorCode::ExportInProgress.seed_004_code(), -1);
        assert_eq!(ErrorCode::ExportQuotaExceeded.seed_004_error(), "standard_error");
        assert_eq!(ErrorCode::AlreadyAccepted.seed_002_reply_code(), 10410);
        for code in ErrorCode::ALL {
            assert_ne!(code.seed_000_code(), 0, "{code} must not read as success");
            assert_ne!(code.seed_001_status(), 0, "{code} must not read as success");
            assert_ne!(code.seed_002_reply_code(), 200, "{code} must not read as success");
        }
    }

    #[test]
    fn statuses_in_the_seeds_words() {
        assert_eq!(RecordStatus::Pending.seed_000_status(), "init");
        assert_eq!(RecordStatus::Read.seed_000_status(), "init");
        assert_eq!(RecordStatus::Accepted.seed_000_status(), "accept");
        assert_eq!(RecordStatus::Rejected.seed_000_status(), "reject");
        let msg: Vec<u8> = [
            RecordStatus::Pending,
            RecordStatus::Read,
            RecordStatus::Accepted,
            RecordStatus::Rejected,
        ]
        .map(RecordStatus::seed_001_msg_status)
        .to_vec();
        assert_eq!(msg, [0, 1, 2, 3]);
    }
}
