//! A fresh bulk load of the notifier: what it remembers (names, push info, live-only invites)
//! kept in memory instead of three look-ups in SQL per event, written once at the end in key
//! order; reads deferred to the end of the load, after the index they need is built once
//! (`notifications_user`, which the live path keeps row by row).
//!
//! Measured (`bench queries`, 1,770,200 events): 99,034 events/s before, 199,139 after (two
//! runs ten minutes apart on this 2-core machine).

use crate::texts::Memory;
use invitebus_events::{Event, Id};
use rusqlite::{params, Connection};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// Memory the remembered rows may take before they are written and the load goes on with
/// look-ups in SQL.
pub const DEFAULT_BUDGET: usize = 256 << 20;

/// Rough bytes an entry costs beside its strings.
const ENTRY: usize = 96;

macro_rules! reads_table {
    () => {
        "CREATE TABLE IF NOT EXISTS load_reads (user_id TEXT NOT NULL, invite_id TEXT NOT NULL, position INTEGER NOT NULL);"
    };
}

/// The table of reads a load defers: `(user, invite)` read at `position` marks the
/// notifications of that pair made before it ([`READS_APPLIED`] at the end of the load).
pub const READS: &str = reads_table!();

/// The deferred reads, applied once the indexes are built: what `UPDATE … SET read = 1` did
/// at each read event to the notifications there then (those of an earlier position). The
/// table is created here too, so a load begun without it still swaps in.
pub const READS_APPLIED: &str = concat!(
    reads_table!(),
    "
UPDATE notifications SET read = 1 FROM (
    SELECT user_id, invite_id, MAX(position) AS position FROM load_reads GROUP BY user_id, invite_id
) AS r WHERE notifications.user_id = r.user_id AND notifications.invite_id = r.invite_id
    AND notifications.position < r.position;
DROP TABLE IF EXISTS load_reads;
"
);

/// What a fresh load remembers, as [`crate::store`]'s `remember` writes it to the tables.
#[derive(Default)]
pub struct InMemory {
    names: HashMap<Id, String>,
    /// The push info as stored (its JSON text) and as read back.
    pushes: HashMap<Id, (String, Option<Value>)>,
    live_only: HashSet<Id>,
    bytes: usize,
}

impl InMemory {
    /// About how much memory the entries take.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Remembers what `event` tells (the live path's `remember`, in memory).
    pub fn remember(&mut self, event: &Event) {
        match event {
            Event::UserUpserted(e) => {
                self.bytes += ENTRY + e.user_id.as_str().len() + e.name.len();
                self.names.insert(e.user_id.clone(), e.name.clone());
            }
            Event::InviteCreated(e) => {
                if !e.offline_enabled && self.live_only.insert(e.invite_id.clone()) {
                    self.bytes += ENTRY + e.invite_id.as_str().len();
                }
                if let Some(push) = &e.push {
                    let text = serde_json::to_string(push).unwrap_or_default();
                    // Read back as the live path reads its column: the same value, or none.
                    let value = serde_json::from_str(&text).ok();
                    self.bytes += ENTRY * 2 + e.invite_id.as_str().len() + text.len() * 2;
                    self.pushes.insert(e.invite_id.clone(), (text, value));
                }
            }
            _ => {}
        }
    }

    /// A forgotten user: their name is `[forgotten]` from now on.
    pub fn forget(&mut self, user: &Id) {
        if let Some(n) = self.names.get_mut(user) {
            *n = invitebus_events::personal::FORGOTTEN.to_string();
        }
    }

    /// Writes every entry into the (empty) tables of `tx`, each in key order.
    pub fn write(self, tx: &Connection) -> rusqlite::Result<()> {
        let mut names: Vec<_> = self.names.into_iter().collect();
        names.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut stmt = tx.prepare("INSERT OR REPLACE INTO names (user_id, name) VALUES (?1, ?2)")?;
        for (user, name) in &names {
            stmt.execute(params![user.as_str(), name])?;
        }
        let mut pushes: Vec<_> = self.pushes.into_iter().collect();
        pushes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut stmt = tx.prepare("INSERT OR REPLACE INTO pushes (invite_id, push) VALUES (?1, ?2)")?;
        for (invite, (text, _)) in &pushes {
            stmt.execute(params![invite.as_str(), text])?;
        }
        let mut live_only: Vec<_> = self.live_only.into_iter().collect();
        live_only.sort_unstable();
        let mut stmt = tx.prepare("INSERT OR IGNORE INTO live_only (invite_id) VALUES (?1)")?;
        for invite in &live_only {
            stmt.execute([invite.as_str()])?;
        }
        Ok(())
    }
}

impl Memory for InMemory {
    fn name(&self, user: &Id) -> String {
        self.names.get(user).cloned().unwrap_or_else(|| user.to_string())
    }

    fn push(&self, invite: &Id) -> Option<Value> {
        self.pushes.get(invite).and_then(|(_, v)| v.clone())
    }

    fn offline_enabled(&self, invite: &Id) -> bool {
        !self.live_only.contains(invite)
    }
}
