//! The command service's edge for personal data: before a command is decided, the personal
//! fields it carries are sealed with their person's data key (made when they have none), so
//! that neither the log nor `INVITES_EVENTS` ever holds them in clear. A `ForgetUser` destroys
//! the key once `UserForgotten` is committed, before it is answered ([`forget_after`]); a
//! writer that starts finishes what a crash left between the two ([`finish_forgets`]).

use crate::command::forget_user::may_forget;
use invitebus_events::{Command, CommandRequest, Id, ProtocolError, Reply};
use invitebus_keys::{DataKey, KeyRing};
use tracing::{info, warn};

fn unavailable(e: impl std::fmt::Display) -> ProtocolError {
    ProtocolError::unavailable(format!("the key bucket: {e}; retry with the same command_id"))
}

async fn key(keys: &KeyRing, user: &Id) -> Result<DataKey, ProtocolError> {
    keys.ensure(user.as_str()).await.map_err(unavailable)
}

/// Whose data key seals `request`'s personal fields: None when it carries none, or when the
/// decision refuses it anyway (no key is made for anyone else).
pub fn owner(request: &CommandRequest) -> Option<&Id> {
    let actor = &request.meta.actor;
    match &request.command {
        Command::UpsertUser(c) if c.user_id == *actor || request.meta.is_admin() || request.meta.is_system() => {
            Some(&c.user_id)
        }
        Command::RejectInvite(c) if c.reason.is_some() => Some(actor),
        Command::TentativelyAcceptInvite(c) if c.comment.is_some() => Some(actor),
        _ => None,
    }
}

/// Seals every personal field of `command` with `key` (the list is the events crate's).
pub fn seal(command: &mut Command, key: &DataKey) {
    for f in command.personal_fields() {
        *f.text = key.seal(f.name, f.text);
    }
}

/// Seals `request`'s personal fields, and hashes an export's phone filters. Returns the user
/// whose key must go once the command is committed (a `ForgetUser` from someone allowed to
/// send it).
pub async fn at_edge(request: &mut CommandRequest, keys: &KeyRing) -> Result<Option<Id>, ProtocolError> {
    if let Some(user) = owner(request).cloned() {
        seal(&mut request.command, &key(keys, &user).await?);
    }
    let actor = request.meta.actor.as_str();
    match &mut request.command {
        // An export's phone filters stay in its event: the keyed hash goes there, not the phone.
        Command::RequestExport(c) => {
            for phone in [&mut c.filters.invitee_phone, &mut c.filters.inviter_phone] {
                if let Some(p) = phone.as_mut() {
                    *p = keys.phone_lookup(p);
                }
            }
        }
        Command::ForgetUser(c) if may_forget(actor, request.meta.is_admin(), c.user_id.as_str()) => {
            return Ok(Some(c.user_id.clone()));
        }
        _ => {}
    }
    Ok(None)
}

/// Destroys `user`'s key, trying again (with a pause) while the bucket does not answer; true
/// once it is gone.
pub async fn erase(keys: &KeyRing, user: &str) -> bool {
    for attempt in 1..=5u32 {
        match keys.erase(user).await {
            Ok(n) => {
                info!(user_id = user, erased = n, "a forgotten user's data key was destroyed");
                return true;
            }
            Err(e) => {
                warn!(user_id = user, attempt, error = %e, "destroying a forgotten user's data key failed");
                tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt))).await;
            }
        }
    }
    false
}

/// The answer to a `ForgetUser` of `user`: once committed (`ok`), the key is destroyed first;
/// if it cannot be, the answer says `unavailable` (a retry with the same command_id destroys
/// it and is answered from the log).
pub async fn forget_after(keys: &KeyRing, user: &Id, reply: Reply) -> Reply {
    if !reply.ok || erase(keys, user.as_str()).await {
        return reply;
    }
    Reply::err(ProtocolError::unavailable(
        "the forget is recorded but the user's data key could not be destroyed yet; retry with the same command_id",
    ))
}

/// At a writer's start: the keys of `users`, those the log says are forgotten, are destroyed
/// (a crash between a forget's commit and its erasure left one; the others are gone already).
/// Tried until done, a minute apart after the first five tries, each round said at error level
/// and the users still waiting shown in `invitebus_forgets_pending` (before 2026-12-07 it gave
/// up after five tries, quietly, until the next start).
pub async fn finish_forgets(keys: &KeyRing, users: Vec<String>) {
    let mut pending = users;
    loop {
        metrics::gauge!("invitebus_forgets_pending").set(pending.len() as f64);
        let mut left = Vec::new();
        for user in pending {
            if !erase(keys, &user).await {
                left.push(user);
            }
        }
        if left.is_empty() {
            metrics::gauge!("invitebus_forgets_pending").set(0.0);
            return;
        }
        tracing::error!(
            users = left.len(),
            "forgotten users' data keys could not be destroyed; trying again in a minute"
        );
        pending = left;
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
}
