//! The invite aggregate (`invite-<invite_id>`): one inviter, one resource, a record per invitee.
//!
//! The state, `evolve` and [`OnInvite`] (what most invite commands read) live here; the checks
//! the invite decisions share in [`guards`]; each command's rules in its file under
//! `crate::command`.

pub mod error;
pub mod guards;

pub use error::InviteError;

use crate::aggregate::aggregate;
use crate::decision::Store;
use crate::resource::{ResourceState, NO_RESOURCE};
use chrono::{DateTime, Utc};
use invitebus_events::command::InviteDetail;
use invitebus_events::event::InviteCreated;
use invitebus_events::event::StreamType;
use invitebus_events::{Event, Id, InviteStatus, RecordStatus};
use std::collections::BTreeSet;

/// The shortest time between two sends of one record.
pub const RESEND_INTERVAL_SECS: i64 = 60;

/// One invitee's record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub invitee: Id,
    pub status: RecordStatus,
    /// When the invite was last sent to this invitee (created or resent).
    pub last_sent_at: DateTime<Utc>,
}

/// What an existing invite is now.
#[derive(Debug, Clone, PartialEq)]
pub struct Invite {
    pub invite_id: Id,
    pub resource_id: Id,
    pub inviter: Id,
    pub role: String,
    pub message: Option<String>,
    pub detail: Option<InviteDetail>,
    pub expires_at: Option<DateTime<Utc>>,
    pub requires_approval: bool,
    pub code: Option<Id>,
    pub cancelled: bool,
    pub expired: bool,
    /// In invitation order.
    pub records: Vec<Record>,
    pub hidden_by: BTreeSet<Id>,
}

impl Invite {
    pub fn status(&self) -> InviteStatus {
        if self.cancelled {
            InviteStatus::Cancelled
        } else if self.expired {
            InviteStatus::Expired
        } else if self.records.iter().any(|r| r.status.keeps_open()) {
            InviteStatus::Open
        } else {
            InviteStatus::Closed
        }
    }

    pub fn record(&self, invitee: &Id) -> Option<&Record> {
        self.records.iter().find(|r| &r.invitee == invitee)
    }

    fn record_mut(&mut self, invitee: &Id) -> Option<&mut Record> {
        self.records.iter_mut().find(|r| &r.invitee == invitee)
    }

    /// Past its expiry time, whether or not `ExpireInvite` has been recorded yet.
    pub fn is_past_expiry(&self, now: DateTime<Utc>) -> bool {
        self.expired || self.expires_at.is_some_and(|t| t <= now)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct InviteState {
    pub invite: Option<Invite>,
}

aggregate!(InviteState, StreamType::Invite, evolve);

/// What a command on an existing invite reads: the invite (its own stream, whose version
/// `expected_version` names) and the invite's resource.
pub struct OnInvite<'s> {
    pub invite_id: Id,
    pub state: &'s InviteState,
    pub resource: &'s ResourceState,
}

impl<'s> OnInvite<'s> {
    pub fn load(mut store: Store<'s>, invite_id: &Id) -> Result<OnInvite<'s>, InviteError> {
        let resource_id = store
            .own::<InviteState>(invite_id)?
            .invite
            .as_ref()
            .map(|i| i.resource_id.clone());
        if let Some(r) = &resource_id {
            store.read::<ResourceState>(r)?;
        }
        let loaded = store.loaded();
        Ok(OnInvite {
            invite_id: invite_id.clone(),
            state: loaded.get::<InviteState>(invite_id)?,
            resource: match &resource_id {
                Some(r) => loaded.get::<ResourceState>(r)?,
                None => &NO_RESOURCE,
            },
        })
    }

    /// The invite, or `not_found` on `invite_id`.
    pub fn invite(&self) -> Result<&'s Invite, InviteError> {
        guards::existing(self.state, &self.invite_id)
    }
}

fn created(e: &InviteCreated) -> Invite {
    Invite {
        invite_id: e.invite_id.clone(),
        resource_id: e.resource_id.clone(),
        inviter: e.inviter.clone(),
        role: e.role.clone(),
        message: e.message.clone(),
        detail: e.detail.clone(),
        expires_at: e.expires_at,
        requires_approval: e.requires_approval,
        code: e.code.clone(),
        cancelled: false,
        expired: false,
        records: e
            .invitees
            .iter()
            .map(|i| Record {
                invitee: i.clone(),
                status: RecordStatus::Pending,
                last_sent_at: e.created_at,
            })
            .collect(),
        hidden_by: BTreeSet::new(),
    }
}

fn set_status(invite: &mut Invite, invitee: &Id, status: RecordStatus) {
    if let Some(r) = invite.record_mut(invitee) {
        r.status = status;
    }
}

pub fn evolve(mut state: InviteState, event: &Event) -> InviteState {
    if let Event::InviteCreated(e) = event {
        state.invite = Some(created(e));
        return state;
    }
    let Some(invite) = state.invite.as_mut() else {
        return state;
    };
    match event {
        Event::InviteUpdated(e) => {
            invite.message = e.message.clone();
            invite.detail = e.detail.clone();
            invite.expires_at = e.expires_at;
            invite.records.retain(|r| !e.removed.contains(&r.invitee));
            for added in &e.added {
                invite.records.push(Record {
                    invitee: added.clone(),
                    status: RecordStatus::Pending,
                    last_sent_at: e.at,
                });
            }
            for invitee in &e.tentative_reset {
                set_status(invite, invitee, RecordStatus::Pending);
            }
        }
        Event::InviteCancelled(e) => {
            invite.cancelled = true;
            for i in &e.cancelled {
                set_status(invite, i, RecordStatus::Cancelled);
            }
        }
        Event::InviteExpired(e) => {
            invite.expired = true;
            for i in &e.expired {
                set_status(invite, i, RecordStatus::Expired);
            }
        }
        Event::InviteAccepted(e) => set_status(invite, &e.invitee, e.status),
        Event::InviteRejected(e) => set_status(invite, &e.invitee, RecordStatus::Rejected),
        Event::InviteTentativelyAccepted(e) => set_status(invite, &e.invitee, RecordStatus::Tentative),
        Event::InviteRead(e) => set_status(invite, &e.invitee, RecordStatus::Read),
        Event::InviteApproved(e) => set_status(invite, &e.invitee, RecordStatus::Approved),
        Event::InviteDenied(e) => set_status(invite, &e.invitee, RecordStatus::Denied),
        Event::InviteResent(e) => {
            for r in invite.records.iter_mut().filter(|r| e.invitees.contains(&r.invitee)) {
                r.last_sent_at = e.at;
            }
        }
        Event::InviteHidden(e) => {
            invite.hidden_by.insert(e.user_id.clone());
        }
        _ => {}
    }
    state
}
