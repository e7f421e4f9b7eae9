//! The registry: every webhook the events registered, with what delivery needs (its URL, types,
//! resource and sealed secret) and where its deliveries start: a registration delivers what
//! comes after it, a replay from its `from_position`. Each registration or replay starts a new
//! *generation* (its position), which is how the workers notice a replay. Rows and checkpoint
//! change in one transaction.

use crate::WebhookError;
use invitebus_events::{Event, Id};
use invitebus_feed::store::{FileState, Layout};
use invitebus_feed::{Decoded, ProjectionFile};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::Arc;

/// The name of this projection's checkpoint (and of the role in health).
pub const NAME: &str = "webhooks";

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS endpoints (
    webhook_id TEXT PRIMARY KEY, url TEXT NOT NULL, events TEXT NOT NULL, resource_id TEXT,
    secret TEXT NOT NULL, registered_by TEXT NOT NULL, registered_at TEXT NOT NULL,
    generation INTEGER NOT NULL, start_after INTEGER NOT NULL, deleted_position INTEGER
) WITHOUT ROWID;
";

pub const LAYOUT: Layout = Layout {
    schema: CREATE,
    version: 1,
    load_indexes: &[],
    fill: "",
    migrations: &[],
};

/// One registered webhook, as its worker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub webhook_id: String,
    pub url: String,
    /// Event types, or `*`.
    pub events: Vec<String>,
    pub resource_id: Option<Id>,
    /// Sealed with the master key ([`invitebus_keys::Purpose::WebhookSecret`]).
    pub secret: String,
    pub registered_by: String,
    pub registered_at: String,
    /// The position of the registration or of the last replay: a new one starts over.
    pub generation: u64,
    /// Deliveries of this generation start after this position.
    pub start_after: u64,
    /// Deleted at this position: nothing after it is delivered.
    pub deleted_position: Option<u64>,
}

const COLUMNS: &str = "webhook_id, url, events, resource_id, secret, registered_by, registered_at, generation, \
                       start_after, deleted_position";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Endpoint> {
    let events: String = r.get(2)?;
    let resource: Option<String> = r.get(3)?;
    Ok(Endpoint {
        webhook_id: r.get(0)?,
        url: r.get(1)?,
        events: serde_json::from_str(&events).unwrap_or_default(),
        resource_id: resource.and_then(|r| Id::parse(r).ok()),
        secret: r.get(4)?,
        registered_by: r.get(5)?,
        registered_at: r.get(6)?,
        generation: r.get::<_, i64>(7)? as u64,
        start_after: r.get::<_, i64>(8)? as u64,
        deleted_position: r.get::<_, Option<i64>>(9)?.map(|p| p as u64),
    })
}

/// Every endpoint, in id order.
pub fn all(conn: &Connection) -> rusqlite::Result<Vec<Endpoint>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM endpoints ORDER BY webhook_id"))?;
    let rows = stmt.query_map([], row)?;
    rows.collect()
}

/// One endpoint, with the position the registry has reached (read together: the endpoint as it
/// stands at that position).
pub fn one(conn: &Connection, webhook_id: &str) -> rusqlite::Result<(Option<Endpoint>, u64)> {
    let tx = conn.unchecked_transaction()?;
    let at = invitebus_feed::store::checkpoint(&tx, NAME)?;
    let endpoint = tx
        .prepare_cached(&format!("SELECT {COLUMNS} FROM endpoints WHERE webhook_id = ?1"))?
        .query_row([webhook_id], row)
        .optional()?;
    Ok((endpoint, at))
}

pub struct Registry {
    store: ProjectionFile,
}

impl Registry {
    pub fn open(path: &Path) -> Result<Registry, WebhookError> {
        Ok(Registry {
            store: ProjectionFile::open(path, NAME, LAYOUT)?,
        })
    }

    /// What the workers and the query share with this writer.
    pub fn file(&self) -> &Arc<FileState> {
        self.store.state()
    }
}

fn apply(tx: &Connection, event: &Event, position: u64) -> rusqlite::Result<()> {
    match event {
        Event::WebhookRegistered(e) => {
            let events = serde_json::to_string(&e.events).unwrap_or_else(|_| "[]".into());
            tx.prepare_cached(&format!(
                "INSERT OR REPLACE INTO endpoints ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, NULL)"
            ))?
            .execute(params![
                e.webhook_id.as_str(),
                e.url,
                events,
                e.resource_id.as_ref().map(|r| r.as_str()),
                e.secret,
                e.by.as_str(),
                invitebus_events::envelope::format_time(&e.at),
                position as i64,
            ])?;
        }
        Event::WebhookReplayed(e) => {
            tx.prepare_cached("UPDATE endpoints SET generation = ?2, start_after = ?3 WHERE webhook_id = ?1")?
                .execute(params![
                    e.webhook_id.as_str(),
                    position as i64,
                    e.from_position.saturating_sub(1) as i64
                ])?;
        }
        Event::WebhookDeleted(e) => {
            tx.prepare_cached("UPDATE endpoints SET deleted_position = ?2 WHERE webhook_id = ?1")?
                .execute(params![e.webhook_id.as_str(), position as i64])?;
        }
        _ => {}
    }
    Ok(())
}

impl invitebus_feed::Projection for Registry {
    type Error = WebhookError;
    fn name(&self) -> &str {
        NAME
    }
    fn store(&self) -> &ProjectionFile {
        &self.store
    }
    fn store_mut(&mut self) -> &mut ProjectionFile {
        &mut self.store
    }
    fn apply_decoded(&mut self, events: &[Decoded]) -> Result<(), WebhookError> {
        self.store.apply(events, |tx, event, env| {
            Ok::<_, WebhookError>(apply(tx, event, env.position)?)
        })
    }
    fn unreadable(position: u64, reason: String) -> WebhookError {
        WebhookError::Event { position, reason }
    }
    fn is_damage(e: &WebhookError) -> bool {
        matches!(e, WebhookError::Sqlite(e) if invitebus_feed::store::is_damage(e))
    }
}
