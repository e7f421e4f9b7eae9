//! The end of a fold: every row written once, each table in its key order (a B-tree filled
//! from left to right), into the loading file's empty tables.

use super::Fold;
use crate::apply::{time, upsert_user};
use crate::counts::BUCKET_BITS;
use rusqlite::{params, Connection};

impl Fold {
    /// Writes every row, each table in key order, into the (empty) tables of `tx`; with
    /// `counts`, the record counts too (what `counts::FILL` would count from the rows: for a
    /// load folded whole, the rows of a part are not all of them).
    pub fn write(self, tx: &Connection, counts: bool) -> rusqlite::Result<()> {
        let mut users: Vec<_> = self.users.into_values().collect();
        users.sort_unstable_by(|a, b| a.user_id.cmp(&b.user_id));
        for e in &users {
            upsert_user(tx, e, &self.phone_key)?;
        }
        let mut resources: Vec<_> = self.resources.into_iter().collect();
        resources.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut stmt = tx.prepare(
            "INSERT INTO resources (resource_id, kind, name, owner, capacity, parent_id, info, member_count) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for (id, r) in &resources {
            stmt.execute(params![
                id.as_str(),
                r.kind,
                r.name,
                r.owner,
                r.capacity,
                r.parent_id,
                r.info,
                r.member_count
            ])?;
        }
        let mut members: Vec<_> = self.members.into_iter().collect();
        members.sort_unstable();
        let mut stmt = tx.prepare("INSERT INTO members (resource_id, user_id) VALUES (?1, ?2)")?;
        for (resource, user) in &members {
            stmt.execute(params![resource.as_str(), user.as_str()])?;
        }
        let mut invites: Vec<_> = self
            .invites
            .into_iter()
            .filter_map(|(id, slot)| slot.invite.map(|i| (id, i)))
            .collect();
        invites.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut stmt = tx.prepare(
            "INSERT INTO invites (invite_id, resource_id, inviter, role, message, detail, ext, push, expires_at, \
             requires_approval, offline_enabled, code, status, push_status, hidden_by_inviter, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        )?;
        for (id, i) in &invites {
            stmt.execute(params![
                id.as_str(),
                i.resource_id,
                i.inviter,
                i.role,
                i.message,
                i.detail,
                i.ext,
                i.push,
                i.expires_at,
                i.requires_approval,
                i.offline_enabled,
                i.code,
                i.status,
                i.push_status,
                i.hidden_by_inviter,
                time(&i.created_at),
                time(&i.updated_at)
            ])?;
        }
        let mut stmt = tx.prepare(
            "INSERT INTO records (seq, invite_id, invitee, status, resource_id, inviter, hidden, approve_description, \
             created_at, updated_at, proposal) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for (seq, r) in &self.records {
            stmt.execute(params![
                seq,
                r.invite_id.as_str(),
                r.invitee.as_str(),
                r.status.as_str(),
                r.resource_id,
                r.inviter,
                r.hidden,
                r.approve_description,
                time(&r.created_at),
                time(&r.updated_at),
                r.proposal
            ])?;
        }
        if counts {
            write_counts(tx, &self.records)?;
        }
        let mut codes: Vec<_> = self.codes.into_iter().collect();
        codes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut stmt = tx.prepare(
            "INSERT INTO codes (code, resource_id, inviter, uses, max_age, max_uses, temporary, requires_approval, \
             created_at, expires_at, deleted) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for (code, c) in &codes {
            stmt.execute(params![
                code.as_str(),
                c.resource_id,
                c.inviter,
                c.uses,
                c.max_age,
                c.max_uses,
                c.temporary,
                c.requires_approval,
                c.created_at,
                c.expires_at,
                c.deleted
            ])?;
        }
        let mut exports: Vec<_> = self.exports.into_iter().collect();
        exports.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut stmt = tx.prepare(
            "INSERT INTO exports (export_id, requested_by, requested_at, format, status, progress, count, file_size, \
             file_url, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for (id, x) in &exports {
            stmt.execute(params![
                id.as_str(),
                x.requested_by,
                x.requested_at,
                x.format,
                x.status,
                x.progress,
                x.count,
                x.file_size,
                x.file_url,
                x.reason
            ])?;
        }
        Ok(())
    }
}

/// `record_buckets` and `resource_counts` of `records`, as `counts::FILL` counts them (2.1 s of
/// SQL over a million records, a hash update per record here).
fn write_counts(tx: &Connection, records: &std::collections::BTreeMap<i64, super::Record>) -> rusqlite::Result<()> {
    let mut buckets = std::collections::BTreeMap::<(i64, &str), i64>::new();
    let mut resources = super::HashMap::<(&str, &str), i64>::default();
    for (seq, r) in records {
        *buckets.entry((seq >> BUCKET_BITS, r.status.as_str())).or_default() += 1;
        *resources
            .entry((r.resource_id.as_str(), r.status.as_str()))
            .or_default() += 1;
    }
    let mut stmt = tx.prepare("INSERT INTO record_buckets (bucket, status, n) VALUES (?1, ?2, ?3)")?;
    for ((bucket, status), n) in &buckets {
        stmt.execute(params![bucket, status, n])?;
    }
    let mut resources: Vec<_> = resources.into_iter().collect();
    resources.sort_unstable();
    let mut stmt = tx.prepare("INSERT INTO resource_counts (resource_id, status, n) VALUES (?1, ?2, ?3)")?;
    for ((resource, status), n) in &resources {
        stmt.execute(params![resource, status, n])?;
    }
    Ok(())
}
