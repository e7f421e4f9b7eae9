//! The record counts the admin page reads instead of counting rows: `record_buckets` (records
//! per status in each run of 4,096 `seq`s) and `resource_counts` (per resource and status).
//! A batch gathers its changes here and writes one row per key touched at its end, in the
//! batch's transaction; a bulk load counts nothing and fills both tables once ([`FILL`]).
//!
//! Why not triggers: kept by SQLite triggers, the counts doubled the cost of a record's insert
//! (4.9 → 9.2 µs) and tripled that of a status change (3.0 → 8.6 µs), measured on the views
//! schema with 200,000 records; gathered here they cost a hash update per change.

use rusqlite::{params, Connection, ToSql};
use std::collections::HashMap;

/// How many consecutive `seq`s one row of `record_buckets` counts (`seq >> BUCKET_BITS`). At
/// 4,096, a million records make ~250 buckets per status: walking them to find page N, and
/// then skipping at most 4,095 rows inside one, each take well under a millisecond.
pub const BUCKET_BITS: u32 = 12;

/// The counts from scratch, for the end of a bulk load (the shift is [`BUCKET_BITS`]).
pub const FILL: &str = "
DELETE FROM record_buckets;
INSERT INTO record_buckets (bucket, status, n) SELECT seq >> 12, status, COUNT(*) FROM records GROUP BY 1, 2;
DELETE FROM resource_counts;
INSERT INTO resource_counts (resource_id, status, n) SELECT resource_id, status, COUNT(*) FROM records GROUP BY 1, 2;
";

/// One batch's changes to the counts. `None` where a bulk load leaves them to [`FILL`].
#[derive(Debug, Default)]
pub struct Counts {
    buckets: HashMap<(i64, String), i64>,
    resources: HashMap<(String, String), i64>,
}

impl Counts {
    /// A record `seq` of `resource` entered (`by` 1) or left (`by` -1) `status`.
    pub fn add(&mut self, seq: i64, resource: &str, status: &str, by: i64) {
        *self
            .buckets
            .entry((seq >> BUCKET_BITS, status.to_string()))
            .or_default() += by;
        *self
            .resources
            .entry((resource.to_string(), status.to_string()))
            .or_default() += by;
    }

    /// Writes the changes (a count that reaches 0 is deleted, so the tables always equal
    /// what [`FILL`] computes) and starts again empty.
    pub fn write(&mut self, tx: &Connection) -> rusqlite::Result<()> {
        for ((bucket, status), by) in self.buckets.drain() {
            bump(tx, "record_buckets", "bucket", (&bucket, &status), by)?;
        }
        for ((resource, status), by) in self.resources.drain() {
            bump(tx, "resource_counts", "resource_id", (&resource, &status), by)?;
        }
        Ok(())
    }
}

/// Adds `by` to the count of `(key, status)` in `table`, deleting it when it reaches 0.
fn bump(
    tx: &Connection,
    table: &str,
    key: &str,
    (value, status): (&dyn ToSql, &String),
    by: i64,
) -> rusqlite::Result<()> {
    if by == 0 {
        return Ok(());
    }
    let n: i64 = tx
        .prepare_cached(&format!(
            "INSERT INTO {table} ({key}, status, n) VALUES (?1, ?2, ?3) \
             ON CONFLICT ({key}, status) DO UPDATE SET n = n + excluded.n RETURNING n"
        ))?
        .query_row(params![value, status, by], |r| r.get(0))?;
    if n == 0 {
        tx.prepare_cached(&format!("DELETE FROM {table} WHERE {key} = ?1 AND status = ?2"))?
            .execute(params![value, status])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{BUCKET_BITS, FILL};

    #[test]
    fn the_fill_buckets_records_as_the_queries_read_them() {
        let shifts: Vec<&str> = FILL
            .split(">> ")
            .skip(1)
            .map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next().unwrap_or(""))
            .collect();
        assert_eq!(shifts, [BUCKET_BITS.to_string()]);
    }
}
