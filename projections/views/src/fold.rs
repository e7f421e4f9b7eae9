//! A fresh bulk load folded in memory, then written once, each table in key order
//! ([`Fold::write`]), instead of looking each row up and updating it in SQL ([`crate::apply`]).
//!
//! Every arm below does to its rows what the matching statement of `apply.rs` does to the
//! tables (a replace, an update of a row that may be missing, an insert that keeps the first),
//! so a folded load equals a live one row for row (`tests/bulk.rs`). Memory is bounded: past
//! the budget, what is folded is written and the rest of the load goes event by event.
//!
//! Measured (`bench queries`, 1,770,200 events, one run): folding 4.0 s, writing 3.5 s, indexes
//! 3.2 s = 163,416 events/s, against 138,400 event by event; the counts written from the fold
//! took the swap from 6.45 s to 3.33 s, events taken by value the fold from 4.5 s to 4.0. The first
//! layout (invites inline in the map, SipHash) was 0.77× the event-by-event path: growing maps
//! of 400-byte entries spent 42% of the fold zeroing fresh pages (perf), hence [`Slot`]'s box.

use crate::apply::{json, time};
use invitebus_events::event::{InviteCreated, InviteDecided, UserUpserted};
use invitebus_events::personal::FORGOTTEN;
use invitebus_events::{Event, Id, RecordStatus};
use std::collections::BTreeMap;

mod write;

/// Keys are ids, hashed with foldhash: SipHash took 8% of a fold (perf, 1.77M events).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::quality::RandomState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::quality::RandomState>;
type Time = chrono::DateTime<chrono::Utc>;

/// Memory a fold may take before it spills (as [`Fold::bytes`] counts it).
pub const DEFAULT_BUDGET: usize = 1 << 30;

/// Rough bytes a row costs beside its strings (map entry, struct, string headers).
const ROW_OVERHEAD: usize = 160;

struct Resource {
    kind: String,
    name: String,
    owner: String,
    capacity: u32,
    parent_id: Option<String>,
    info: Option<String>,
    member_count: u32,
}

struct Invite {
    resource_id: String,
    inviter: String,
    role: String,
    message: Option<String>,
    detail: Option<String>,
    ext: Option<String>,
    push: Option<String>,
    expires_at: Option<String>,
    requires_approval: bool,
    offline_enabled: bool,
    code: Option<String>,
    status: &'static str,
    push_status: i64,
    hidden_by_inviter: bool,
    created_at: Time,
    updated_at: Time,
}

/// An invite's row (boxed: the map moves only a pointer when it grows) and its records'
/// `seq`s by invitee, so that a record is found without building a key.
#[derive(Default)]
struct Slot {
    invite: Option<Box<Invite>>,
    records: Vec<(Id, i64)>,
}

struct Record {
    invite_id: Id,
    invitee: Id,
    status: RecordStatus,
    resource_id: String,
    inviter: String,
    hidden: bool,
    approve_description: Option<String>,
    proposal: Option<String>,
    created_at: Time,
    updated_at: Time,
}

struct Code {
    resource_id: String,
    inviter: String,
    uses: u32,
    max_age: i64,
    max_uses: u32,
    temporary: bool,
    requires_approval: bool,
    created_at: String,
    expires_at: Option<String>,
    deleted: bool,
}

struct Export {
    requested_by: String,
    requested_at: String,
    format: String,
    status: &'static str,
    progress: i64,
    count: Option<i64>,
    file_size: Option<i64>,
    file_url: Option<String>,
    reason: Option<String>,
}

/// The view rows of a load so far.
#[derive(Default)]
pub struct Fold {
    /// Keys the phones' hashes.
    pub(crate) phone_key: invitebus_keys::MasterKey,
    users: HashMap<Id, UserUpserted>,
    resources: HashMap<Id, Resource>,
    members: HashSet<(Id, Id)>,
    invites: HashMap<Id, Slot>,
    /// By `seq`, which is SQLite's: one past the largest still there.
    records: BTreeMap<i64, Record>,
    codes: HashMap<Id, Code>,
    exports: HashMap<Id, Export>,
    bytes: usize,
}

fn size(s: &str) -> usize {
    s.len()
}

fn opt(s: &Option<String>) -> usize {
    s.as_ref().map_or(0, |s| s.len())
}

impl Fold {
    /// An empty fold whose phones are hashed with `key`.
    pub fn with_phone_key(key: invitebus_keys::MasterKey) -> Fold {
        Fold {
            phone_key: key,
            ..Fold::default()
        }
    }

    /// About how much memory the rows take.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Folds one event into the rows, keeping its strings instead of copying them (copies and
    /// their frees were a third of the fold's own time, perf).
    pub fn apply(&mut self, event: Event) {
        match event {
            Event::UserUpserted(e) => {
                self.bytes += ROW_OVERHEAD + size(e.user_id.as_str()) + size(&e.name) + opt(&e.phone) + opt(&e.email);
                self.users.insert(e.user_id.clone(), e);
            }
            // As `apply::forget_user` rewrites the rows.
            Event::UserForgotten(e) => {
                if let Some(u) = self.users.get_mut(&e.user_id) {
                    u.name = FORGOTTEN.to_string();
                    for f in [
                        &mut u.phone,
                        &mut u.email,
                        &mut u.company_name,
                        &mut u.department,
                        &mut u.position,
                        &mut u.area,
                    ] {
                        if let Some(v) = f.as_mut() {
                            *v = FORGOTTEN.to_string();
                        }
                    }
                }
                for r in self.records.values_mut().filter(|r| r.invitee == e.user_id) {
                    if let Some(p) = r.proposal.as_mut() {
                        if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(p) {
                            if v.get("comment").is_some_and(|c| !c.is_null()) {
                                v["comment"] = FORGOTTEN.into();
                                *p = v.to_string();
                            }
                        }
                    }
                }
            }
            Event::ResourceRegistered(e) => {
                let info = json(&e.info);
                self.bytes += ROW_OVERHEAD + size(e.resource_id.as_str()) + size(&e.name) + opt(&info);
                let row = Resource {
                    kind: e.kind.into_string(),
                    name: e.name,
                    owner: e.owner.into_string(),
                    capacity: e.capacity,
                    parent_id: e.parent_id.map(Id::into_string),
                    info,
                    member_count: 0,
                };
                self.resources.insert(e.resource_id, row);
            }
            Event::MemberJoined(e) => {
                if let Some(r) = self.resources.get_mut(&e.resource_id) {
                    r.member_count = e.member_count;
                }
                let bytes = ROW_OVERHEAD / 2 + size(e.resource_id.as_str()) + size(e.user_id.as_str());
                if self.members.insert((e.resource_id, e.user_id)) {
                    self.bytes += bytes;
                }
            }
            Event::InvitesPaused(_) | Event::InvitesResumed(_) => {}
            Event::MemberLeft(e) => {
                if let Some(r) = self.resources.get_mut(&e.resource_id) {
                    r.member_count = e.member_count;
                }
                self.members.remove(&(e.resource_id, e.user_id));
            }
            Event::InviteCreated(e) => self.created(e),
            Event::InviteUpdated(e) => {
                let at = e.at;
                if let Some(i) = self.invite_mut(&e.invite_id) {
                    i.message = e.message;
                    i.detail = json(&e.detail);
                    i.expires_at = e.expires_at.as_ref().map(time);
                }
                for removed in &e.removed {
                    self.delete(&e.invite_id, removed);
                }
                for added in &e.added {
                    self.insert(&e.invite_id, added, e.resource_id.as_str(), e.inviter.as_str(), at);
                }
                for asked in &e.tentative_reset {
                    self.set(&e.invite_id, asked, RecordStatus::Pending, None, at);
                    if let Some(r) = self.record_mut(&e.invite_id, asked) {
                        r.proposal = None;
                    }
                }
                self.invite_status(&e.invite_id, at);
            }
            Event::InviteCancelled(e) => {
                let at = e.at;
                for i in &e.cancelled {
                    self.set(&e.invite_id, i, RecordStatus::Cancelled, None, at);
                }
                if let Some(i) = self.invite_mut(&e.invite_id) {
                    (i.status, i.push_status, i.updated_at) = ("cancelled", 2, at);
                }
            }
            Event::InviteExpired(e) => {
                let at = e.at;
                for i in &e.expired {
                    self.set(&e.invite_id, i, RecordStatus::Expired, None, at);
                }
                if let Some(i) = self.invite_mut(&e.invite_id) {
                    (i.status, i.updated_at) = ("expired", at);
                }
            }
            Event::InviteAccepted(e) => {
                let at = e.at;
                self.set(&e.invite_id, &e.invitee, e.status, None, at);
                self.invite_status(&e.invite_id, at);
            }
            Event::InviteRejected(e) => {
                let at = e.at;
                self.set(&e.invite_id, &e.invitee, RecordStatus::Rejected, None, at);
                self.invite_status(&e.invite_id, at);
            }
            Event::InviteTentativelyAccepted(e) => {
                self.set(&e.invite_id, &e.invitee, RecordStatus::Tentative, None, e.at);
                let proposal = crate::apply::proposal(&e);
                if let Some(r) = self.record_mut(&e.invite_id, &e.invitee) {
                    r.proposal = Some(proposal);
                }
            }
            Event::InviteRead(e) => {
                self.set(&e.invite_id, &e.invitee, RecordStatus::Read, None, e.at);
            }
            Event::InviteApproved(e) => self.decided(e, RecordStatus::Approved),
            Event::InviteDenied(e) => self.decided(e, RecordStatus::Denied),
            Event::InviteResent(e) => {
                if let Some(i) = self.invite_mut(&e.invite_id) {
                    i.updated_at = e.at;
                }
            }
            Event::InviteHidden(e) => {
                if let Some(i) = self.invite_mut(&e.invite_id) {
                    if i.inviter == e.user_id.as_str() {
                        i.hidden_by_inviter = true;
                    }
                }
                if let Some(r) = self.record_mut(&e.invite_id, &e.user_id) {
                    r.hidden = true;
                }
            }
            Event::InviteCodeCreated(e) => {
                self.bytes +=
                    ROW_OVERHEAD + size(e.code.as_str()) + size(e.resource_id.as_str()) + size(e.inviter.as_str());
                let row = Code {
                    resource_id: e.resource_id.into_string(),
                    inviter: e.inviter.into_string(),
                    uses: 0,
                    max_age: e.max_age as i64,
                    max_uses: e.max_uses,
                    temporary: e.temporary,
                    requires_approval: e.requires_approval,
                    created_at: time(&e.created_at),
                    expires_at: e.expires_at.as_ref().map(time),
                    deleted: false,
                };
                self.codes.insert(e.code, row);
            }
            Event::InviteCodeRedeemed(e) => {
                if let Some(c) = self.codes.get_mut(&e.code) {
                    c.uses = e.uses;
                }
            }
            Event::InviteCodeDeleted(e) => {
                if let Some(c) = self.codes.get_mut(&e.code) {
                    c.deleted = true;
                }
            }
            Event::ExportRequested(e) => {
                self.bytes += ROW_OVERHEAD + size(e.export_id.as_str()) + size(e.requested_by.as_str());
                let row = Export {
                    requested_by: e.requested_by.into_string(),
                    requested_at: time(&e.at),
                    format: e.format.as_str().to_string(),
                    status: "queued",
                    progress: 0,
                    count: None,
                    file_size: None,
                    file_url: None,
                    reason: None,
                };
                self.exports.insert(e.export_id, row);
            }
            Event::ExportStarted(e) => {
                if let Some(x) = self.exports.get_mut(&e.export_id) {
                    (x.status, x.progress, x.count) = ("running", 1, Some(e.count as i64));
                }
            }
            Event::ExportCompleted(e) => {
                if let Some(x) = self.exports.get_mut(&e.export_id) {
                    (x.status, x.progress, x.count) = ("success", 100, Some(e.count as i64));
                    (x.file_size, x.file_url) = (Some(e.file_size as i64), Some(e.file_url));
                }
            }
            Event::ExportFailed(e) => {
                if let Some(x) = self.exports.get_mut(&e.export_id) {
                    (x.status, x.reason) = ("failed", Some(e.reason));
                }
            }
            // Reminders change no view; webhooks have views of their own (the webhooks role).
            Event::InviteReminded(_)
            | Event::WebhookRegistered(_)
            | Event::WebhookDeleted(_)
            | Event::WebhookReplayed(_) => {}
        }
    }

    fn created(&mut self, e: InviteCreated) {
        let at = e.created_at;
        let row = Invite {
            resource_id: e.resource_id.to_string(),
            inviter: e.inviter.to_string(),
            role: e.role,
            message: e.message,
            detail: json(&e.detail),
            ext: json(&e.ext),
            push: json(&e.push),
            expires_at: e.expires_at.as_ref().map(time),
            requires_approval: e.requires_approval,
            offline_enabled: e.offline_enabled,
            code: e.code.map(Id::into_string),
            status: "open",
            push_status: 1,
            hidden_by_inviter: false,
            created_at: at,
            updated_at: at,
        };
        self.bytes += ROW_OVERHEAD * 2
            + size(e.invite_id.as_str())
            + size(&row.resource_id)
            + size(&row.inviter)
            + opt(&row.message)
            + opt(&row.detail)
            + opt(&row.ext)
            + opt(&row.push);
        let invite = e.invite_id.clone();
        self.invites.entry(e.invite_id).or_default().invite = Some(Box::new(row));
        for invitee in &e.invitees {
            self.insert(&invite, invitee, e.resource_id.as_str(), e.inviter.as_str(), at);
        }
    }

    /// An approval or a denial: the record's status and description, then its invite's.
    fn decided(&mut self, e: InviteDecided, status: RecordStatus) {
        self.set(&e.invite_id, &e.invitee, status, Some(e.description), e.at);
        self.invite_status(&e.invite_id, e.at);
    }

    fn invite_mut(&mut self, invite: &Id) -> Option<&mut Invite> {
        self.invites.get_mut(invite).and_then(|s| s.invite.as_deref_mut())
    }

    fn seq(&self, invite: &Id, invitee: &Id) -> Option<i64> {
        let slot = self.invites.get(invite)?;
        slot.records.iter().find(|(i, _)| i == invitee).map(|(_, seq)| *seq)
    }

    fn record_mut(&mut self, invite: &Id, invitee: &Id) -> Option<&mut Record> {
        let seq = self.seq(invite, invitee)?;
        self.records.get_mut(&seq)
    }

    /// `INSERT OR IGNORE` of a pending record: the first one of an (invite, invitee) stays.
    fn insert(&mut self, invite: &Id, invitee: &Id, resource: &str, inviter: &str, at: Time) {
        if self.seq(invite, invitee).is_some() {
            return;
        }
        let seq = self.records.last_key_value().map_or(1, |(s, _)| s + 1);
        self.bytes +=
            ROW_OVERHEAD * 2 + (size(invite.as_str()) + size(invitee.as_str())) * 2 + resource.len() + inviter.len();
        self.invites
            .entry(invite.clone())
            .or_default()
            .records
            .push((invitee.clone(), seq));
        let record = Record {
            invite_id: invite.clone(),
            invitee: invitee.clone(),
            status: RecordStatus::Pending,
            resource_id: resource.to_string(),
            inviter: inviter.to_string(),
            hidden: false,
            approve_description: None,
            proposal: None,
            created_at: at,
            updated_at: at,
        };
        self.records.insert(seq, record);
    }

    fn delete(&mut self, invite: &Id, invitee: &Id) {
        let Some(slot) = self.invites.get_mut(invite) else {
            return;
        };
        if let Some(k) = slot.records.iter().position(|(i, _)| i == invitee) {
            let (_, seq) = slot.records.remove(k);
            self.records.remove(&seq);
        }
    }

    /// One record's status (and its approval's description, when given: `None` inside clears it).
    fn set(&mut self, invite: &Id, invitee: &Id, status: RecordStatus, description: Option<Option<String>>, at: Time) {
        let Some(r) = self.record_mut(invite, invitee) else {
            return;
        };
        r.status = status;
        if let Some(d) = description {
            r.approve_description = d;
        }
        r.updated_at = at;
    }

    /// `open` while a record waits for an answer, else `closed`; cancelled and expired stay.
    fn invite_status(&mut self, invite: &Id, at: Time) {
        let Some(slot) = self.invites.get_mut(invite) else {
            return;
        };
        let records = &self.records;
        let waiting = slot
            .records
            .iter()
            .filter_map(|(_, s)| records.get(s))
            .any(|r| r.status.keeps_open());
        if let Some(i) = slot.invite.as_deref_mut() {
            i.updated_at = at;
            if !matches!(i.status, "cancelled" | "expired") {
                i.status = if waiting { "open" } else { "closed" };
            }
        }
    }
}
