//! Every command's decision, one file each, and [`execute`]: the registry from a decoded
//! [`Command`] to its decision. Adding a command is its types in `events/`, its file here and
//! one line in `execute`.

pub mod accept_invite;
pub mod approve_invite;
pub mod cancel_invite;
pub mod complete_export;
pub mod create_invite;
pub mod create_invite_code;
pub mod delete_invite_code;
pub mod delete_webhook;
pub mod deny_invite;
pub mod expire_invite;
pub mod fail_export;
pub mod forget_user;
pub mod hide_invite;
pub mod join_resource;
pub mod leave_resource;
pub mod mark_invite_read;
pub mod pause_invites;
pub mod redeem_invite_code;
pub mod register_resource;
pub mod register_webhook;
pub mod reject_invite;
pub mod remind_invite;
pub mod replay_webhook;
pub mod request_export;
pub mod resend_invite;
pub mod resume_invites;
pub mod start_call;
pub mod start_export;
pub mod tentatively_accept_invite;
pub mod update_invite;
pub mod upsert_user;

pub use create_invite::create;
pub use register_resource::register;

use crate::cache::{Cache, StreamSource};
use crate::ctx::Ctx;
use crate::decision::{run, IdGen, Outcome, Store};
use invitebus_events::{Command, CommandMeta, ProtocolError};

/// Decides `command` against the cached state (loading what it needs from `source`).
/// The cache is not changed by deciding; the writer applies the events once decided.
pub fn execute(
    cache: &mut Cache,
    source: &dyn StreamSource,
    ids: &mut dyn IdGen,
    ctx: &Ctx,
    meta: &CommandMeta,
    command: &Command,
) -> Result<Outcome, ProtocolError> {
    let store = Store::new(cache, source, ids, meta);
    match command.clone() {
        Command::UpsertUser(c) => run(upsert_user::UpsertUser(c), store, ctx).map_err(Into::into),
        Command::ForgetUser(c) => run(forget_user::ForgetUser(c), store, ctx).map_err(Into::into),
        Command::RegisterResource(c) => run(register_resource::RegisterResource(c), store, ctx).map_err(Into::into),
        Command::JoinResource(c) => run(join_resource::JoinResource(c), store, ctx).map_err(Into::into),
        Command::LeaveResource(c) => run(leave_resource::LeaveResource(c), store, ctx).map_err(Into::into),
        Command::PauseInvites(c) => run(pause_invites::PauseInvites(c), store, ctx).map_err(Into::into),
        Command::ResumeInvites(c) => run(resume_invites::ResumeInvites(c), store, ctx).map_err(Into::into),
        Command::CreateInvite(c) => run(create_invite::CreateInvite(c), store, ctx).map_err(Into::into),
        Command::UpdateInvite(c) => run(update_invite::UpdateInvite(c), store, ctx).map_err(Into::into),
        Command::CancelInvite(c) => run(cancel_invite::CancelInvite(c), store, ctx).map_err(Into::into),
        Command::AcceptInvite(c) => run(accept_invite::AcceptInvite(c), store, ctx).map_err(Into::into),
        Command::RejectInvite(c) => run(reject_invite::RejectInvite(c), store, ctx).map_err(Into::into),
        Command::TentativelyAcceptInvite(c) => {
            run(tentatively_accept_invite::TentativelyAcceptInvite(c), store, ctx).map_err(Into::into)
        }
        Command::ResendInvite(c) => run(resend_invite::ResendInvite(c), store, ctx).map_err(Into::into),
        Command::MarkInviteRead(c) => run(mark_invite_read::MarkInviteRead(c), store, ctx).map_err(Into::into),
        Command::HideInvite(c) => run(hide_invite::HideInvite(c), store, ctx).map_err(Into::into),
        Command::ApproveInvite(c) => run(approve_invite::ApproveInvite(c), store, ctx).map_err(Into::into),
        Command::DenyInvite(c) => run(deny_invite::DenyInvite(c), store, ctx).map_err(Into::into),
        Command::ExpireInvite(c) => run(expire_invite::ExpireInvite(c), store, ctx).map_err(Into::into),
        Command::RemindInvite(c) => run(remind_invite::RemindInvite(c), store, ctx).map_err(Into::into),
        Command::StartCall(c) => run(start_call::StartCall(c), store, ctx).map_err(Into::into),
        Command::CreateInviteCode(c) => run(create_invite_code::CreateInviteCode(c), store, ctx).map_err(Into::into),
        Command::RedeemInviteCode(c) => run(redeem_invite_code::RedeemInviteCode(c), store, ctx).map_err(Into::into),
        Command::DeleteInviteCode(c) => run(delete_invite_code::DeleteInviteCode(c), store, ctx).map_err(Into::into),
        Command::RequestExport(c) => run(request_export::RequestExport(c), store, ctx).map_err(Into::into),
        Command::StartExport(c) => run(start_export::StartExport(c), store, ctx).map_err(Into::into),
        Command::CompleteExport(c) => run(complete_export::CompleteExport(c), store, ctx).map_err(Into::into),
        Command::FailExport(c) => run(fail_export::FailExport(c), store, ctx).map_err(Into::into),
        Command::RegisterWebhook(c) => run(register_webhook::RegisterWebhook(c), store, ctx).map_err(Into::into),
        Command::DeleteWebhook(c) => run(delete_webhook::DeleteWebhook(c), store, ctx).map_err(Into::into),
        Command::ReplayWebhook(c) => run(replay_webhook::ReplayWebhook(c), store, ctx).map_err(Into::into),
    }
}
