//! Where each endpoint's deliveries stand: the position up to which every event is done
//! (delivered, or not one it takes), the last one delivered, and its failures. In a file of its
//! own beside the registry: this is not derived from events, so a rebuilt or bulk-loaded
//! registry never moves a delivery back. Written after each delivery, so that a restart sends
//! again at most the one that was in flight.

use crate::registry::Endpoint;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::path::Path;
use std::sync::{Arc, Mutex};

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS deliveries (
    webhook_id TEXT PRIMARY KEY, generation INTEGER NOT NULL, position INTEGER NOT NULL,
    delivered_position INTEGER, delivered INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
    failing INTEGER NOT NULL DEFAULT 0, last_error TEXT, last_attempt_at TEXT, last_delivered_at TEXT
) WITHOUT ROWID;
";

/// One endpoint's delivery, as the `webhooks` query shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The registry's generation this delivery belongs to (a replay starts another).
    #[serde(skip)]
    pub generation: u64,
    /// Every event up to here is done: delivered, or not one this webhook takes.
    pub position: u64,
    /// The last event delivered (a 2xx answer).
    pub delivered_position: Option<u64>,
    /// Events delivered in this generation.
    pub delivered: u64,
    /// Failed attempts in a row at the next event.
    pub failures: u32,
    /// Past the bound of failures: nothing is sent until a `ReplayWebhook`.
    pub failing: bool,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<String>,
    pub last_delivered_at: Option<String>,
}

/// The deliveries file, shared by the workers and the query.
#[derive(Clone)]
pub struct Deliveries {
    conn: Arc<Mutex<Connection>>,
}

fn now() -> String {
    invitebus_events::envelope::format_time(&chrono::Utc::now())
}

impl Deliveries {
    pub fn open(path: &Path) -> rusqlite::Result<Deliveries> {
        let conn = invitebus_feed::store::open(path, CREATE)?;
        Ok(Deliveries {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn)
    }

    /// The delivery of `webhook_id`, whatever its generation.
    pub fn get(&self, webhook_id: &str) -> rusqlite::Result<Option<Delivery>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT generation, position, delivered_position, delivered, failures, failing, last_error, \
                 last_attempt_at, last_delivered_at FROM deliveries WHERE webhook_id = ?1",
            )?
            .query_row([webhook_id], |r| {
                Ok(Delivery {
                    generation: r.get::<_, i64>(0)? as u64,
                    position: r.get::<_, i64>(1)? as u64,
                    delivered_position: r.get::<_, Option<i64>>(2)?.map(|p| p as u64),
                    delivered: r.get::<_, i64>(3)? as u64,
                    failures: r.get::<_, i64>(4)? as u32,
                    failing: r.get::<_, i64>(5)? != 0,
                    last_error: r.get(6)?,
                    last_attempt_at: r.get(7)?,
                    last_delivered_at: r.get(8)?,
                })
            })
            .optional()
        })
    }

    /// The delivery of `endpoint`'s current generation: the stored one, or a fresh one that
    /// starts where the registration or the replay says (a replay also ends `failing`). None
    /// when the stored one is of a later generation: generations are positions and only grow,
    /// so the registry is behind (being rebuilt, or lost its last commits) and nothing may move
    /// the delivery back.
    pub fn begin(&self, endpoint: &Endpoint) -> rusqlite::Result<Option<Delivery>> {
        if let Some(d) = self.get(&endpoint.webhook_id)? {
            match d.generation.cmp(&endpoint.generation) {
                std::cmp::Ordering::Equal => return Ok(Some(d)),
                std::cmp::Ordering::Greater => return Ok(None),
                std::cmp::Ordering::Less => {}
            }
        }
        let fresh = Delivery {
            generation: endpoint.generation,
            position: endpoint.start_after,
            ..Default::default()
        };
        self.with(|c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO deliveries (webhook_id, generation, position) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                endpoint.webhook_id,
                endpoint.generation as i64,
                endpoint.start_after as i64
            ])
        })?;
        Ok(Some(fresh))
    }

    /// Everything up to `position` is done, the last of it not taken by the webhook. Written
    /// only while the generation is still `generation`; false once a replay has replaced it.
    pub fn passed(&self, webhook_id: &str, generation: u64, position: u64) -> rusqlite::Result<bool> {
        self.with(|c| {
            c.prepare_cached(
                "UPDATE deliveries SET position = ?3 WHERE webhook_id = ?1 AND generation = ?2 AND position < ?3",
            )?
            .execute(params![webhook_id, generation as i64, position as i64])
        })
        .map(|n| n > 0)
    }

    /// `position` was delivered (a 2xx answer).
    pub fn delivered(&self, webhook_id: &str, generation: u64, position: u64) -> rusqlite::Result<bool> {
        self.with(|c| {
            c.prepare_cached(
                "UPDATE deliveries SET position = ?3, delivered_position = ?3, delivered = delivered + 1, \
                 failures = 0, last_attempt_at = ?4, last_delivered_at = ?4 WHERE webhook_id = ?1 AND generation = ?2",
            )?
            .execute(params![webhook_id, generation as i64, position as i64, now()])
        })
        .map(|n| n > 0)
    }

    /// An attempt failed with `error`: the failures in a row now, and whether that was the
    /// `max_attempts`-th (the endpoint is then marked failing).
    pub fn failed(
        &self,
        webhook_id: &str,
        generation: u64,
        error: &str,
        max_attempts: u32,
    ) -> rusqlite::Result<(u32, bool)> {
        self.with(|c| {
            c.prepare_cached(
                "UPDATE deliveries SET failures = failures + 1, failing = (failures + 1 >= ?4), last_error = ?3, \
                 last_attempt_at = ?5 WHERE webhook_id = ?1 AND generation = ?2 RETURNING failures, failing",
            )?
            .query_row(
                params![webhook_id, generation as i64, error, max_attempts as i64, now()],
                |r| Ok((r.get::<_, i64>(0)? as u32, r.get::<_, i64>(1)? != 0)),
            )
            .optional()
        })
        .map(|n| n.unwrap_or((0, false)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(generation: u64, start_after: u64) -> Endpoint {
        Endpoint {
            webhook_id: "w".into(),
            url: "https://h.example/in".into(),
            events: vec!["*".into()],
            resource_id: None,
            secret: String::new(),
            registered_by: "root".into(),
            registered_at: String::new(),
            generation,
            start_after,
            deleted_position: None,
        }
    }

    /// A registry being rebuilt shows the registration (generation 5) while the delivery is
    /// already at the replay's (generation 40): nothing may move it back to 5.
    #[test]
    fn a_delivery_never_goes_back_to_an_older_generation() {
        let dir = tempfile::tempdir().unwrap();
        let d = Deliveries::open(&dir.path().join("d.db")).unwrap();
        assert_eq!(d.begin(&endpoint(5, 5)).unwrap().unwrap().position, 5);
        assert!(d.delivered("w", 5, 9).unwrap());
        let replayed = d.begin(&endpoint(40, 2)).unwrap().unwrap();
        assert_eq!((replayed.generation, replayed.position), (40, 2));
        assert!(d.delivered("w", 40, 30).unwrap());
        assert!(
            d.begin(&endpoint(5, 5)).unwrap().is_none(),
            "an older generation is ignored"
        );
        assert!(!d.delivered("w", 5, 6).unwrap(), "and cannot write");
        assert_eq!(d.get("w").unwrap().unwrap().position, 30);
        let (failures, failing) = d.failed("w", 40, "HTTP 500", 2).unwrap();
        assert_eq!((failures, failing), (1, false));
        assert_eq!(d.failed("w", 40, "HTTP 500", 2).unwrap(), (2, true));
    }
}
