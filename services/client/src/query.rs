//! The queries, typed: one variant per name of `invitebus_events::query::QUERIES` (the tests
//! check the two agree), each with the fields PROTOCOL.md gives it.

use invitebus_events::query::AdminFilters;
use invitebus_events::{Id, RecordStatus};
use serde_json::{json, Map, Value};

/// A query and its own fields (`actor`, `roles` and `min_position` are the client's).
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// Records where the actor is the invitee, newest first.
    Received {
        status: Option<RecordStatus>,
        page: Option<u32>,
        per_page: Option<u32>,
    },
    /// Invites the actor sent.
    Sent {
        status: Option<RecordStatus>,
        page: Option<u32>,
        per_page: Option<u32>,
    },
    /// One whole invite (inviter, invitees and admins).
    Invite { invite_id: Id },
    /// Seed 004's page of the admin view (admins).
    Admin {
        filters: AdminFilters,
        page: Option<u32>,
        per_page: Option<u32>,
    },
    /// An invite code (seed 003).
    Code { code: Id },
    /// A resource's codes.
    Codes { resource_id: Id },
    /// The actor's notifications, oldest first.
    Inbox {
        unread_only: bool,
        after: Option<u64>,
        /// At most 500.
        per_page: Option<u32>,
    },
    /// A stream's events, up to `as_of` (a position, or an RFC 3339 time).
    History { stream_id: String, as_of: Option<Value> },
    /// A stream folded up to `as_of`.
    State { stream_id: String, as_of: Option<Value> },
    /// An export's status.
    Export { export_id: Id },
    /// Webhooks and their deliveries, or one of them.
    Webhooks { webhook_id: Option<Id> },
}

impl Query {
    /// Its name, as in `invites.q.<name>`.
    pub fn name(&self) -> &'static str {
        match self {
            Query::Received { .. } => "received",
            Query::Sent { .. } => "sent",
            Query::Invite { .. } => "invite",
            Query::Admin { .. } => "admin",
            Query::Code { .. } => "code",
            Query::Codes { .. } => "codes",
            Query::Inbox { .. } => "inbox",
            Query::History { .. } => "history",
            Query::State { .. } => "state",
            Query::Export { .. } => "export",
            Query::Webhooks { .. } => "webhooks",
        }
    }

    /// Its own fields as a JSON object, absent ones left out.
    pub fn fields(&self) -> Value {
        let mut out = match self {
            Query::Received { status, page, per_page } | Query::Sent { status, page, per_page } => {
                json!({"status": status.map(|s| s.as_str()), "page": page, "per_page": per_page})
            }
            Query::Invite { invite_id } => json!({"invite_id": invite_id}),
            Query::Admin {
                filters,
                page,
                per_page,
            } => {
                let mut v = serde_json::to_value(filters).unwrap_or_else(|_| json!({}));
                v["page"] = json!(page);
                v["per_page"] = json!(per_page);
                v
            }
            Query::Code { code } => json!({"code": code}),
            Query::Codes { resource_id } => json!({"resource_id": resource_id}),
            Query::Inbox {
                unread_only,
                after,
                per_page,
            } => json!({"unread_only": unread_only, "after": after, "per_page": per_page}),
            Query::History { stream_id, as_of } | Query::State { stream_id, as_of } => {
                json!({"stream_id": stream_id, "as_of": as_of})
            }
            Query::Export { export_id } => json!({"export_id": export_id}),
            Query::Webhooks { webhook_id } => json!({"webhook_id": webhook_id}),
        };
        if let Value::Object(o) = &mut out {
            let kept: Map<String, Value> = std::mem::take(o).into_iter().filter(|(_, v)| !v.is_null()).collect();
            *o = kept;
        }
        out
    }
}
