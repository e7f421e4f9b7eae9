//! Statuses of a record (one invite, one invitee) and of a whole invite.

use serde::{Deserialize, Serialize};

/// The status of one (invite, invitee) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    Pending,
    Read,
    Accepted,
    Rejected,
    /// Answered "maybe" (TentativelyAcceptInvite): still unanswered, the invite stays open.
    Tentative,
    Applying,
    Approved,
    Denied,
    Cancelled,
    Expired,
}

impl RecordStatus {
    pub const ALL: [RecordStatus; 10] = [
        RecordStatus::Pending,
        RecordStatus::Read,
        RecordStatus::Accepted,
        RecordStatus::Rejected,
        RecordStatus::Tentative,
        RecordStatus::Applying,
        RecordStatus::Approved,
        RecordStatus::Denied,
        RecordStatus::Cancelled,
        RecordStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordStatus::Pending => "pending",
            RecordStatus::Read => "read",
            RecordStatus::Accepted => "accepted",
            RecordStatus::Rejected => "rejected",
            RecordStatus::Tentative => "tentative",
            RecordStatus::Applying => "applying",
            RecordStatus::Approved => "approved",
            RecordStatus::Denied => "denied",
            RecordStatus::Cancelled => "cancelled",
            RecordStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<RecordStatus> {
        RecordStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The invitee has not answered yet (a tentative answer is not one): the record still keeps
    /// its invite open, can be cancelled, expires and is reminded.
    pub fn is_unanswered(self) -> bool {
        matches!(
            self,
            RecordStatus::Pending | RecordStatus::Read | RecordStatus::Tentative
        )
    }

    /// The record keeps its invite `open` (unanswered, or waiting for approval).
    pub fn keeps_open(self) -> bool {
        matches!(
            self,
            RecordStatus::Pending | RecordStatus::Read | RecordStatus::Tentative | RecordStatus::Applying
        )
    }
}

/// The status of a whole invite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InviteStatus {
    Open,
    Closed,
    Cancelled,
    Expired,
}

impl InviteStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InviteStatus::Open => "open",
            InviteStatus::Closed => "closed",
            InviteStatus::Cancelled => "cancelled",
            InviteStatus::Expired => "expired",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_and_matches_serde() {
        for st in RecordStatus::ALL {
            assert_eq!(RecordStatus::parse(st.as_str()), Some(st));
            assert_eq!(serde_json::to_value(st).unwrap(), st.as_str());
        }
        assert_eq!(RecordStatus::parse("init"), None);
    }
}
