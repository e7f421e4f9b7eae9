//! `ResendInvite`: the inviter sends an open invite again, at most once a minute per record.

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::invite::guards::{answered, only_inviter, still_valid};
use crate::invite::InviteError;
use crate::invite::{OnInvite, Record, RESEND_INTERVAL_SECS};
use chrono::Duration;
use invitebus_events::command as cmd;
use invitebus_events::event::InviteResent;
use invitebus_events::Event;
use serde_json::{json, Value};

pub struct ResendInvite(pub cmd::ResendInvite);

impl Decision for ResendInvite {
    type State<'s> = OnInvite<'s>;
    type Error = InviteError;

    fn load<'s>(&mut self, store: Store<'s>, _: &Ctx) -> Result<OnInvite<'s>, InviteError> {
        OnInvite::load(store, &self.0.invite_id)
    }

    fn decide(&self, on: &OnInvite<'_>, ctx: &Ctx) -> Result<Vec<Event>, InviteError> {
        let invite = on.invite()?;
        only_inviter(invite, ctx)?;
        still_valid(invite, ctx)?;
        let due = |r: &&Record| ctx.now - r.last_sent_at >= Duration::seconds(RESEND_INTERVAL_SECS);
        let targets: Vec<&Record> = match &self.0.invitees {
            // Everyone unanswered who is due; rate_limited only when someone waits but nobody is due.
            None => {
                let waiting: Vec<&Record> = invite.records.iter().filter(|r| r.status.is_unanswered()).collect();
                if waiting.is_empty() {
                    return Err(InviteError::NothingToResend);
                }
                let due: Vec<&Record> = waiting.into_iter().filter(due).collect();
                if due.is_empty() {
                    return Err(InviteError::AllSentRecently);
                }
                due
            }
            // Exactly those named: each must be waiting and due.
            Some(list) => {
                let mut out = Vec::new();
                for i in list {
                    match invite.record(i) {
                        None => {
                            return Err(InviteError::NotInvited {
                                field: "invitees",
                                user: i.clone(),
                            })
                        }
                        Some(r) if !r.status.is_unanswered() => return Err(answered(r.status, invite)),
                        Some(r) if !due(&r) => return Err(InviteError::SentRecently(i.clone())),
                        Some(r) => out.push(r),
                    }
                }
                out
            }
        };
        Ok(vec![Event::InviteResent(InviteResent {
            invite_id: invite.invite_id.clone(),
            resource_id: invite.resource_id.clone(),
            inviter: invite.inviter.clone(),
            role: invite.role.clone(),
            invitees: targets.iter().map(|r| r.invitee.clone()).collect(),
            at: ctx.now,
        })])
    }

    fn reply(&self, on: &OnInvite<'_>, _: &[Event]) -> Value {
        json!({"invite_id": on.invite_id})
    }
}
