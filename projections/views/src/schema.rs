//! The view tables. `records` repeats its invite's resource and inviter so that every admin
//! filter is answered from `records` and its indexes alone. `record_buckets` and
//! `resource_counts` are kept by [`crate::counts`]: the admin page's totals and deep pages read
//! them instead of counting or skipping a million rows. The checkpoint table comes from
//! `invitebus_feed::store`, written in the same transaction as the rows.

/// The view file's layout. Version 2 added `members` (who may list a resource's codes),
/// version 4 the record counts (3 kept them by triggers, which counted twice beside
/// [`crate::counts`]), version 6 the phones' keyed hashes the admin filters look up; a file of
/// another version is rebuilt from the log on open.
pub const LAYOUT: invitebus_feed::store::Layout = invitebus_feed::store::Layout {
    schema: CREATE,
    version: 6,
    load_indexes: &[],
    fill: crate::counts::FILL,
    migrations: &[],
};

pub(crate) const CREATE: &str = "
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY, name TEXT NOT NULL, phone TEXT, email TEXT, company_name TEXT,
    department TEXT, position TEXT, area TEXT, phone_hash TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS users_phone_hash ON users (phone_hash);
CREATE TABLE IF NOT EXISTS resources (
    resource_id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, owner TEXT NOT NULL,
    capacity INTEGER NOT NULL, parent_id TEXT, info TEXT, member_count INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members (
    resource_id TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (resource_id, user_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS invites (
    invite_id TEXT PRIMARY KEY, resource_id TEXT NOT NULL, inviter TEXT NOT NULL, role TEXT NOT NULL,
    message TEXT, detail TEXT, ext TEXT, push TEXT, expires_at TEXT, requires_approval INTEGER NOT NULL,
    offline_enabled INTEGER NOT NULL, code TEXT, status TEXT NOT NULL, push_status INTEGER NOT NULL,
    hidden_by_inviter INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS invites_inviter ON invites (inviter, created_at);
CREATE INDEX IF NOT EXISTS invites_resource ON invites (resource_id);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY, invite_id TEXT NOT NULL, invitee TEXT NOT NULL, status TEXT NOT NULL,
    resource_id TEXT NOT NULL, inviter TEXT NOT NULL,
    hidden INTEGER NOT NULL DEFAULT 0, approve_description TEXT, proposal TEXT, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, UNIQUE (invite_id, invitee)
);
CREATE INDEX IF NOT EXISTS records_invitee ON records (invitee, seq);
CREATE INDEX IF NOT EXISTS records_created ON records (created_at);
CREATE INDEX IF NOT EXISTS records_status ON records (status, seq);
CREATE INDEX IF NOT EXISTS records_resource ON records (resource_id, seq);
CREATE INDEX IF NOT EXISTS records_inviter ON records (inviter, seq);
CREATE TABLE IF NOT EXISTS record_buckets (
    bucket INTEGER NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (bucket, status)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS resource_counts (
    resource_id TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (resource_id, status)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS codes (
    code TEXT PRIMARY KEY, resource_id TEXT NOT NULL, inviter TEXT NOT NULL, uses INTEGER NOT NULL DEFAULT 0,
    max_age INTEGER NOT NULL, max_uses INTEGER NOT NULL, temporary INTEGER NOT NULL, requires_approval INTEGER NOT NULL,
    created_at TEXT NOT NULL, expires_at TEXT, deleted INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS codes_resource ON codes (resource_id, created_at);
CREATE TABLE IF NOT EXISTS exports (
    export_id TEXT PRIMARY KEY, requested_by TEXT NOT NULL, requested_at TEXT NOT NULL, format TEXT NOT NULL,
    status TEXT NOT NULL, progress INTEGER NOT NULL, count INTEGER, file_size INTEGER, file_url TEXT, reason TEXT
) WITHOUT ROWID;
";
