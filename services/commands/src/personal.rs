//! The command service's edge for personal data: before a command is decided, the personal
//! fields it carries are sealed with their person's data key (made when they have none), so
//! that neither the log nor `INVITES_EVENTS` ever holds them in clear; and `ForgetUser` destroys
//! the key (once the caller is known to be allowed) before the writer appends `UserForgotten`.
//! A retry of ForgetUser destroys nothing more and is answered from the log.

use crate::command::forget_user::may_forget;
use invitebus_events::{Command, CommandRequest, Id, ProtocolError};
use invitebus_keys::{DataKey, KeyRing};
use tracing::info;

fn unavailable(e: impl std::fmt::Display) -> ProtocolError {
    ProtocolError::unavailable(format!("the key bucket: {e}; retry with the same command_id"))
}

async fn key(keys: &KeyRing, user: &Id) -> Result<DataKey, ProtocolError> {
    keys.ensure(user.as_str()).await.map_err(unavailable)
}

fn seal(key: &DataKey, field: &str, text: &mut String) {
    *text = key.seal(field, text);
}

fn seal_opt(key: &DataKey, field: &str, text: &mut Option<String>) {
    if let Some(t) = text.as_mut() {
        seal(key, field, t);
    }
}

/// Seals `request`'s personal fields, or destroys the key of the user it forgets.
pub async fn at_edge(request: &mut CommandRequest, keys: &KeyRing) -> Result<(), ProtocolError> {
    let actor = request.meta.actor.clone();
    match &mut request.command {
        Command::UpsertUser(c) => {
            let k = key(keys, &c.user_id).await?;
            seal(&k, "name", &mut c.name);
            seal_opt(&k, "phone", &mut c.phone);
            seal_opt(&k, "email", &mut c.email);
            seal_opt(&k, "company_name", &mut c.company_name);
            seal_opt(&k, "department", &mut c.department);
            seal_opt(&k, "position", &mut c.position);
            seal_opt(&k, "area", &mut c.area);
        }
        Command::RejectInvite(c) if c.reason.is_some() => {
            let k = key(keys, &actor).await?;
            seal_opt(&k, "reason", &mut c.reason);
        }
        Command::TentativelyAcceptInvite(c) if c.comment.is_some() => {
            let k = key(keys, &actor).await?;
            seal_opt(&k, "comment", &mut c.comment);
        }
        Command::ForgetUser(c) if may_forget(actor.as_str(), request.meta.is_admin(), c.user_id.as_str()) => {
            let erased = keys.erase(c.user_id.as_str()).await.map_err(unavailable)?;
            info!(user_id = %c.user_id, erased, "a user's data key was destroyed");
        }
        _ => {}
    }
    Ok(())
}
