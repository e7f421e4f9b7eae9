//! Query names and the filters that queries and exports share.

use serde::{Deserialize, Serialize};

/// Every query name, as used in `invites.q.<query>`.
pub const QUERIES: &[&str] = &[
    "received", "sent", "invite", "admin", "code", "codes", "inbox", "history", "state", "export", "webhooks",
];

/// The default and largest page sizes of list queries.
pub const DEFAULT_PER_PAGE: u32 = 15;
pub const MAX_PER_PAGE: u32 = 100;

/// How long a query waits for `min_position`, at most.
pub const MIN_POSITION_WAIT_MS: u64 = 5_000;

/// Seed 004's filters on the admin view; every one optional.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AdminFilters {
    pub created_from: Option<chrono::DateTime<chrono::Utc>>,
    pub created_to: Option<chrono::DateTime<chrono::Utc>>,
    pub invitee_phone: Option<String>,
    pub inviter_phone: Option<String>,
    pub resource_id: Option<crate::Id>,
    pub status: Option<crate::RecordStatus>,
}
