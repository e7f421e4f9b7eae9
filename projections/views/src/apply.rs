//! The views' rules, event by event: how each event changes the view rows, in SQL. A fresh
//! bulk load folds the same rules in memory instead ([`crate::fold`]).

use crate::counts::Counts;
use invitebus_events::envelope::format_time;
use invitebus_events::event::UserUpserted;
use invitebus_events::personal::FORGOTTEN;
use invitebus_events::{Event, RecordStatus};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

pub(crate) fn json<T: Serialize>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(|v| serde_json::to_string(v).expect("json serializes"))
}

/// A tentative answer's proposal as the records keep it: `{"begin_time","comment","end_time"}`.
pub(crate) fn proposal(e: &invitebus_events::event::InviteTentativelyAccepted) -> String {
    serde_json::json!({"begin_time": e.proposed_begin_time, "end_time": e.proposed_end_time, "comment": e.comment})
        .to_string()
}

pub(crate) fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    format_time(t)
}

/// A record's tentative proposal (None clears it).
fn set_proposal(tx: &Connection, invite: &str, invitee: &str, proposal: Option<String>) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE records SET proposal = ?3 WHERE invite_id = ?1 AND invitee = ?2")?
        .execute(params![invite, invitee, proposal])?;
    Ok(())
}

/// The record changes of one batch, with the counts they move (`None` while bulk loading).
pub(crate) struct Rows {
    pub(crate) counts: Option<Counts>,
    /// Keys the phones' hashes ([`invitebus_keys::MasterKey::phone_hash`]).
    pub(crate) phone_key: invitebus_keys::MasterKey,
}

impl Rows {
    fn count(&mut self, seq: i64, resource: &str, status: &str, by: i64) {
        if let Some(counts) = self.counts.as_mut() {
            counts.add(seq, resource, status, by);
        }
    }

    /// `(seq, resource_id, status)` of one record, if there.
    fn find(tx: &Connection, invite: &str, invitee: &str) -> rusqlite::Result<Option<(i64, String, String)>> {
        tx.prepare_cached("SELECT seq, resource_id, status FROM records WHERE invite_id = ?1 AND invitee = ?2")?
            .query_row(params![invite, invitee], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
    }

    /// Adds a pending record, unless the invitee has one on that invite already.
    fn insert(
        &mut self,
        tx: &Connection,
        invite: &str,
        invitee: &str,
        resource: &str,
        inviter: &str,
        at: &str,
    ) -> rusqlite::Result<()> {
        let added = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO records (invite_id, invitee, status, resource_id, inviter, created_at, updated_at) \
                 VALUES (?1, ?2, 'pending', ?3, ?4, ?5, ?5)",
            )?
            .execute(params![invite, invitee, resource, inviter, at])?;
        if added == 1 {
            self.count(tx.last_insert_rowid(), resource, RecordStatus::Pending.as_str(), 1);
        }
        Ok(())
    }

    fn delete(&mut self, tx: &Connection, invite: &str, invitee: &str) -> rusqlite::Result<()> {
        if let Some((seq, resource, status)) = Self::find(tx, invite, invitee)? {
            tx.prepare_cached("DELETE FROM records WHERE seq = ?1")?
                .execute([seq])?;
            self.count(seq, &resource, &status, -1);
        }
        Ok(())
    }

    /// Sets one record's status (and its approval's description, when given).
    fn set(
        &mut self,
        tx: &Connection,
        invite: &str,
        invitee: &str,
        status: RecordStatus,
        description: Option<&Option<String>>,
        at: &str,
    ) -> rusqlite::Result<()> {
        let Some((seq, resource, was)) = Self::find(tx, invite, invitee)? else {
            return Ok(());
        };
        match description {
            Some(description) => tx
                .prepare_cached(
                    "UPDATE records SET status = ?2, approve_description = ?3, updated_at = ?4 WHERE seq = ?1",
                )?
                .execute(params![seq, status.as_str(), description, at])?,
            None => tx
                .prepare_cached("UPDATE records SET status = ?2, updated_at = ?3 WHERE seq = ?1")?
                .execute(params![seq, status.as_str(), at])?,
        };
        if was != status.as_str() {
            self.count(seq, &resource, &was, -1);
            self.count(seq, &resource, status.as_str(), 1);
        }
        Ok(())
    }
}

/// The statement of [`invite_status`], its list of statuses made from
/// [`RecordStatus::keeps_open`], the one rule (the bulk fold asks it too).
static INVITE_STATUS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let open: Vec<String> = RecordStatus::ALL
        .into_iter()
        .filter(|s| s.keeps_open())
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!(
        "UPDATE invites SET updated_at = ?2, status = CASE \
           WHEN status IN ('cancelled', 'expired') THEN status \
           WHEN EXISTS (SELECT 1 FROM records WHERE invite_id = ?1 AND status IN ({})) THEN 'open' \
           ELSE 'closed' END \
         WHERE invite_id = ?1",
        open.join(", ")
    )
});

/// Recomputes an invite's status from its records (cancelled and expired stay): open while a
/// record keeps it open.
fn invite_status(tx: &Connection, invite: &str, at: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(&INVITE_STATUS)?.execute(params![invite, at])?;
    Ok(())
}

impl Rows {
    pub(crate) fn apply(&mut self, tx: &Connection, event: &Event) -> rusqlite::Result<()> {
        match event {
            Event::UserUpserted(e) => upsert_user(tx, e, &self.phone_key)?,
            Event::UserForgotten(e) => forget_user(tx, e.user_id.as_str())?,
            Event::ResourceRegistered(e) => {
                tx.prepare_cached(
                "INSERT OR REPLACE INTO resources (resource_id, kind, name, owner, capacity, parent_id, info, member_count) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)",
            )?
            .execute(params![
                e.resource_id.as_str(),
                e.kind.as_str(),
                e.name,
                e.owner.as_str(),
                e.capacity,
                e.parent_id.as_ref().map(|p| p.as_str()),
                json(&e.info)
            ])?;
            }
            Event::MemberJoined(e) => {
                tx.prepare_cached("UPDATE resources SET member_count = ?2 WHERE resource_id = ?1")?
                    .execute(params![e.resource_id.as_str(), e.member_count])?;
                tx.prepare_cached("INSERT OR IGNORE INTO members (resource_id, user_id) VALUES (?1, ?2)")?
                    .execute(params![e.resource_id.as_str(), e.user_id.as_str()])?;
            }
            Event::InvitesPaused(_) | Event::InvitesResumed(_) => {}
            Event::MemberLeft(e) => {
                tx.prepare_cached("UPDATE resources SET member_count = ?2 WHERE resource_id = ?1")?
                    .execute(params![e.resource_id.as_str(), e.member_count])?;
                tx.prepare_cached("DELETE FROM members WHERE resource_id = ?1 AND user_id = ?2")?
                    .execute(params![e.resource_id.as_str(), e.user_id.as_str()])?;
            }
            Event::InviteCreated(e) => {
                let at = time(&e.created_at);
                tx.prepare_cached(
                "INSERT OR REPLACE INTO invites (invite_id, resource_id, inviter, role, message, detail, ext, push, \
                 expires_at, requires_approval, offline_enabled, code, status, push_status, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'open', 1, ?13, ?13)",
            )?
            .execute(params![
                e.invite_id.as_str(),
                e.resource_id.as_str(),
                e.inviter.as_str(),
                e.role,
                e.message,
                json(&e.detail),
                json(&e.ext),
                json(&e.push),
                e.expires_at.as_ref().map(time),
                e.requires_approval,
                e.offline_enabled,
                e.code.as_ref().map(|c| c.as_str()),
                at
            ])?;
                for invitee in &e.invitees {
                    self.insert(
                        tx,
                        e.invite_id.as_str(),
                        invitee.as_str(),
                        e.resource_id.as_str(),
                        e.inviter.as_str(),
                        &at,
                    )?;
                }
            }
            Event::InviteUpdated(e) => {
                let at = time(&e.at);
                tx.prepare_cached(
                    "UPDATE invites SET message = ?2, detail = ?3, expires_at = ?4 WHERE invite_id = ?1",
                )?
                .execute(params![
                    e.invite_id.as_str(),
                    e.message,
                    json(&e.detail),
                    e.expires_at.as_ref().map(time)
                ])?;
                for removed in &e.removed {
                    self.delete(tx, e.invite_id.as_str(), removed.as_str())?;
                }
                for added in &e.added {
                    self.insert(
                        tx,
                        e.invite_id.as_str(),
                        added.as_str(),
                        e.resource_id.as_str(),
                        e.inviter.as_str(),
                        &at,
                    )?;
                }
                for asked in &e.tentative_reset {
                    self.set(
                        tx,
                        e.invite_id.as_str(),
                        asked.as_str(),
                        RecordStatus::Pending,
                        None,
                        &at,
                    )?;
                    set_proposal(tx, e.invite_id.as_str(), asked.as_str(), None)?;
                }
                invite_status(tx, e.invite_id.as_str(), &at)?;
            }
            Event::InviteCancelled(e) => {
                let at = time(&e.at);
                for i in &e.cancelled {
                    self.set(tx, e.invite_id.as_str(), i.as_str(), RecordStatus::Cancelled, None, &at)?;
                }
                tx.prepare_cached(
                    "UPDATE invites SET status = 'cancelled', push_status = 2, updated_at = ?2 WHERE invite_id = ?1",
                )?
                .execute(params![e.invite_id.as_str(), at])?;
            }
            Event::InviteExpired(e) => {
                let at = time(&e.at);
                for i in &e.expired {
                    self.set(tx, e.invite_id.as_str(), i.as_str(), RecordStatus::Expired, None, &at)?;
                }
                tx.prepare_cached("UPDATE invites SET status = 'expired', updated_at = ?2 WHERE invite_id = ?1")?
                    .execute(params![e.invite_id.as_str(), at])?;
            }
            Event::InviteAccepted(e) => {
                let at = time(&e.at);
                self.set(tx, e.invite_id.as_str(), e.invitee.as_str(), e.status, None, &at)?;
                invite_status(tx, e.invite_id.as_str(), &at)?;
            }
            Event::InviteRejected(e) => {
                let at = time(&e.at);
                self.set(
                    tx,
                    e.invite_id.as_str(),
                    e.invitee.as_str(),
                    RecordStatus::Rejected,
                    None,
                    &at,
                )?;
                invite_status(tx, e.invite_id.as_str(), &at)?;
            }
            Event::InviteTentativelyAccepted(e) => {
                let at = time(&e.at);
                let (invite, invitee) = (e.invite_id.as_str(), e.invitee.as_str());
                self.set(tx, invite, invitee, RecordStatus::Tentative, None, &at)?;
                set_proposal(tx, invite, invitee, Some(proposal(e)))?;
            }
            Event::InviteRead(e) => {
                let at = time(&e.at);
                self.set(
                    tx,
                    e.invite_id.as_str(),
                    e.invitee.as_str(),
                    RecordStatus::Read,
                    None,
                    &at,
                )?;
            }
            Event::InviteApproved(e) | Event::InviteDenied(e) => {
                let at = time(&e.at);
                let status = if matches!(event, Event::InviteApproved(_)) {
                    RecordStatus::Approved
                } else {
                    RecordStatus::Denied
                };
                self.set(
                    tx,
                    e.invite_id.as_str(),
                    e.invitee.as_str(),
                    status,
                    Some(&e.description),
                    &at,
                )?;
                invite_status(tx, e.invite_id.as_str(), &at)?;
            }
            Event::InviteResent(e) => {
                tx.prepare_cached("UPDATE invites SET updated_at = ?2 WHERE invite_id = ?1")?
                    .execute(params![e.invite_id.as_str(), time(&e.at)])?;
            }
            Event::InviteHidden(e) => {
                tx.prepare_cached("UPDATE invites SET hidden_by_inviter = 1 WHERE invite_id = ?1 AND inviter = ?2")?
                    .execute(params![e.invite_id.as_str(), e.user_id.as_str()])?;
                tx.prepare_cached("UPDATE records SET hidden = 1 WHERE invite_id = ?1 AND invitee = ?2")?
                    .execute(params![e.invite_id.as_str(), e.user_id.as_str()])?;
            }
            Event::InviteCodeCreated(e) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO codes (code, resource_id, inviter, uses, max_age, max_uses, temporary, \
                 requires_approval, created_at, expires_at) VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?
                .execute(params![
                    e.code.as_str(),
                    e.resource_id.as_str(),
                    e.inviter.as_str(),
                    e.max_age as i64,
                    e.max_uses,
                    e.temporary,
                    e.requires_approval,
                    time(&e.created_at),
                    e.expires_at.as_ref().map(time)
                ])?;
            }
            Event::InviteCodeRedeemed(e) => {
                tx.prepare_cached("UPDATE codes SET uses = ?2 WHERE code = ?1")?
                    .execute(params![e.code.as_str(), e.uses])?;
            }
            Event::InviteCodeDeleted(e) => {
                tx.prepare_cached("UPDATE codes SET deleted = 1 WHERE code = ?1")?
                    .execute(params![e.code.as_str()])?;
            }
            Event::ExportRequested(e) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO exports (export_id, requested_by, requested_at, format, status, progress) \
                 VALUES (?1, ?2, ?3, ?4, 'queued', 0)",
                )?
                .execute(params![
                    e.export_id.as_str(),
                    e.requested_by.as_str(),
                    time(&e.at),
                    e.format.as_str()
                ])?;
            }
            Event::ExportStarted(e) => {
                tx.prepare_cached(
                    "UPDATE exports SET status = 'running', progress = 1, count = ?2 WHERE export_id = ?1",
                )?
                .execute(params![e.export_id.as_str(), e.count as i64])?;
            }
            Event::ExportCompleted(e) => {
                tx.prepare_cached(
                    "UPDATE exports SET status = 'success', progress = 100, count = ?2, file_size = ?3, file_url = ?4 \
                 WHERE export_id = ?1",
                )?
                .execute(params![
                    e.export_id.as_str(),
                    e.count as i64,
                    e.file_size as i64,
                    e.file_url
                ])?;
            }
            Event::ExportFailed(e) => {
                tx.prepare_cached("UPDATE exports SET status = 'failed', reason = ?2 WHERE export_id = ?1")?
                    .execute(params![e.export_id.as_str(), e.reason])?;
            }
            // Reminders change no view; webhooks have views of their own (the webhooks role).
            Event::InviteReminded(_)
            | Event::WebhookRegistered(_)
            | Event::WebhookDeleted(_)
            | Event::WebhookReplayed(_) => {}
        }
        Ok(())
    }
}

/// A forgotten user: every personal field the views hold of them reads `[forgotten]`, as a
/// rebuild (whose events open to `[forgotten]`) gives: their profile's fields that were set, and
/// the comments of their tentative answers.
pub(crate) fn forget_user(tx: &Connection, user: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE users SET name = ?2, phone = iif(phone IS NULL, NULL, ?2), email = iif(email IS NULL, NULL, ?2), \
         company_name = iif(company_name IS NULL, NULL, ?2), department = iif(department IS NULL, NULL, ?2), \
         position = iif(position IS NULL, NULL, ?2), area = iif(area IS NULL, NULL, ?2), phone_hash = NULL \
         WHERE user_id = ?1",
    )?
    .execute(params![user, FORGOTTEN])?;
    tx.prepare_cached(
        "UPDATE records SET proposal = json_set(proposal, '$.comment', ?2) \
         WHERE invitee = ?1 AND json_extract(proposal, '$.comment') IS NOT NULL",
    )?
    .execute(params![user, FORGOTTEN])?;
    Ok(())
}

/// The keyed hash the admin filters look a phone up by; none for a phone that is not there in
/// clear (forgotten, or still sealed without keys).
pub(crate) fn phone_hash(phone: &Option<String>, key: &invitebus_keys::MasterKey) -> Option<String> {
    phone
        .as_deref()
        .filter(|p| *p != FORGOTTEN && invitebus_events::personal::sealed_by(p).is_none())
        .map(|p| key.phone_hash(p))
}

/// A profile's row, replacing the one before (also the fold's writer: a fresh table has none).
pub(crate) fn upsert_user(tx: &Connection, e: &UserUpserted, key: &invitebus_keys::MasterKey) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO users (user_id, name, phone, email, company_name, department, position, area, phone_hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        e.user_id.as_str(),
        e.name,
        e.phone,
        e.email,
        e.company_name,
        e.department,
        e.position,
        e.area,
        phone_hash(&e.phone, key)
    ])?;
    Ok(())
}
