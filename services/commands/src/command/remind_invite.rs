//! `RemindInvite`: `system` (the scheduler) reminds the inviter and every invitee who has not
//! refused, or been cancelled, expired or denied. Refused once the invite is cancelled or expired.

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::invite::guards::still_valid;
use crate::invite::InviteError;
use crate::invite::OnInvite;
use invitebus_events::command as cmd;
use invitebus_events::event::InviteReminded;
use invitebus_events::{Event, RecordStatus};
use serde_json::{json, Value};

pub struct RemindInvite(pub cmd::RemindInvite);

impl Decision for RemindInvite {
    type State<'s> = OnInvite<'s>;
    type Error = InviteError;

    fn load<'s>(&mut self, store: Store<'s>, _: &Ctx) -> Result<OnInvite<'s>, InviteError> {
        OnInvite::load(store, &self.0.invite_id)
    }

    fn decide(&self, on: &OnInvite<'_>, ctx: &Ctx) -> Result<Vec<Event>, InviteError> {
        let invite = on.invite()?;
        if !ctx.is_system() {
            return Err(InviteError::SystemOnly("send reminders"));
        }
        still_valid(invite, ctx)?;
        let mut recipients = vec![invite.inviter.clone()];
        recipients.extend(
            invite
                .records
                .iter()
                .filter(|r| {
                    !matches!(
                        r.status,
                        RecordStatus::Rejected | RecordStatus::Cancelled | RecordStatus::Expired | RecordStatus::Denied
                    )
                })
                .map(|r| r.invitee.clone()),
        );
        let detail = invite.detail.clone().unwrap_or_default();
        Ok(vec![Event::InviteReminded(InviteReminded {
            at: ctx.now,
            begin_time: detail.begin_time,
            content: detail.content,
            invite_id: invite.invite_id.clone(),
            inviter: invite.inviter.clone(),
            recipients,
            remind_type: detail.remind_type,
            resource_id: invite.resource_id.clone(),
            role: invite.role.clone(),
        })])
    }

    fn reply(&self, on: &OnInvite<'_>, _: &[Event]) -> Value {
        json!({"invite_id": on.invite_id})
    }
}
