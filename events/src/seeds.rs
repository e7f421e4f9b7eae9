//! How our error codes and statuses read in each seed product's own vocabulary.
//! One table per product, kept here so the gateway and every client share them.

use crate::{ErrorCode, RecordStatus};

/// One error code in every seed's vocabulary.
struct SeedCodes {
    /// Seed 000's `code`: 8 not signed in, 9 incomplete request, 10 not allowed; 1 for anything
    /// that product never had (its clients only test for 0).
    s000: u32,
    /// Seed 001's `status`: 4003 for a missing or expired token, as that product answers; the
    /// others after the HTTP status they correspond to (4000, 4001, 4004, 4009, 4029, 5000, 5003).
    s001: u32,
    /// Seed 002's own 104xx code, where it has one.
    s002_own: Option<u32>,
    /// Seed 002's reply code: its own where it has one, else the platform's generic ones (414 bad
    /// parameter, 401, 403 forbidden, 416 too frequent, 409, 500, 503).
    s002: u32,
    /// Seed 004's `code`: 401 for no permission (signed out or not an admin), -1 otherwise.
    s004: i32,
}

const fn codes(s000: u32, s001: u32, s002_own: Option<u32>, s002: u32, s004: i32) -> SeedCodes {
    SeedCodes {
        s000,
        s001,
        s002_own,
        s002,
        s004,
    }
}

impl ErrorCode {
    /// The table: every code, every seed, in one exhaustive match.
    #[rustfmt::skip]
    fn seed_codes(self) -> SeedCodes {
        match self {
            //                                      000   001   002 own        002    004
            ErrorCode::InvalidCommand      => codes(9,  4000, None,         414,   -1),
            ErrorCode::MissingField        => codes(9,  4000, None,         414,   -1),
            ErrorCode::InvalidField        => codes(9,  4000, None,         414,   -1),
            ErrorCode::Unauthenticated     => codes(8,  4003, None,         401,  401),
            ErrorCode::Forbidden           => codes(10, 4001, None,         403,  401),
            ErrorCode::NotFound            => codes(1,  4004, Some(10404), 10404,  -1),
            ErrorCode::ResourceExists      => codes(1,  4009, Some(10405), 10405,  -1),
            ErrorCode::InvitesPaused       => codes(1,  4009, None,         409,   -1),
            ErrorCode::NotMember           => codes(1,  4009, Some(10406), 10406,  -1),
            ErrorCode::AlreadyMember       => codes(1,  4009, Some(10407), 10407,  -1),
            ErrorCode::Expired             => codes(1,  4009, Some(10408), 10408,  -1),
            ErrorCode::Cancelled           => codes(1,  4009, Some(10408), 10408,  -1),
            ErrorCode::AlreadyRejected     => codes(1,  4009, Some(10409), 10409,  -1),
            ErrorCode::AlreadyAccepted     => codes(1,  4009, Some(10410), 10410,  -1),
            ErrorCode::ResourceFull        => codes(1,  4009, Some(10419), 10419,  -1),
            ErrorCode::Exhausted           => codes(1,  4009, None,         409,   -1),
            ErrorCode::RateLimited         => codes(1,  4029, None,         416,   -1),
            ErrorCode::InvalidState        => codes(1,  4009, None,         409,   -1),
            ErrorCode::Conflict            => codes(1,  4009, None,         409,   -1),
            ErrorCode::ExportInProgress    => codes(1,  4009, None,         409,   -1),
            ErrorCode::ExportQuotaExceeded => codes(1,  4029, None,         416,   -1),
            ErrorCode::Unavailable         => codes(1,  5003, None,         503,   -1),
            ErrorCode::Internal            => codes(1,  5000, None,         500,   -1),
        }
    }

    /// Seed 000's `code` (see the table).
    pub fn seed_000_code(self) -> u32 {
        self.seed_codes().s000
    }

    /// Seed 001's `status` (see the table).
    pub fn seed_001_status(self) -> u32 {
        self.seed_codes().s001
    }

    /// Seed 002's numeric code, where that product has one.
    pub fn seed_002_code(self) -> Option<u32> {
        self.seed_codes().s002_own
    }

    /// Seed 002's reply code for every error (see the table).
    pub fn seed_002_reply_code(self) -> u32 {
        self.seed_codes().s002
    }

    /// Seed 004's `code`: 401 for no permission (signed out or not an admin), -1 otherwise.
    pub fn seed_004_code(self) -> i32 {
        self.seed_codes().s004
    }

    /// Seed 004's `error` name: `errors/unauthorized_error` or `standard_error`.
    pub fn seed_004_error(self) -> &'static str {
        match self.seed_004_code() {
            401 => "errors/unauthorized_error",
            _ => "standard_error",
        }
    }
}

impl RecordStatus {
    /// Seed 000's status: `init` until answered, `accept`, `reject`; our name for the rest.
    pub fn seed_000_status(self) -> &'static str {
        match self {
            RecordStatus::Pending | RecordStatus::Read | RecordStatus::Tentative => "init",
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
            RecordStatus::Read | RecordStatus::Tentative => 1,
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
        let paused = ErrorCode::InvitesPaused;
        assert_eq!(
            (
                paused.seed_000_code(),
                paused.seed_001_status(),
                paused.seed_002_reply_code(),
                paused.seed_004_code()
            ),
            (1, 4009, 409, -1)
        );
        assert_eq!((paused.as_str(), paused.http_status()), ("invites_paused", 409));
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
