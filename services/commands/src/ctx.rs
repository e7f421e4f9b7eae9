//! The context of one decision: the actor, their roles and the time. Passing `now` in keeps
//! every decision a pure function.

use chrono::{DateTime, Utc};
use invitebus_events::{Id, ADMIN_ROLE, SYSTEM_ACTOR};

#[derive(Debug, Clone)]
pub struct Ctx {
    pub actor: Id,
    pub roles: Vec<String>,
    pub now: DateTime<Utc>,
}

impl Ctx {
    pub fn new(actor: Id, roles: Vec<String>, now: DateTime<Utc>) -> Ctx {
        Ctx { actor, roles, now }
    }

    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ADMIN_ROLE)
    }

    pub fn is_system(&self) -> bool {
        self.actor == SYSTEM_ACTOR
    }
}
