//! What SQLite alone needs to write a rebuilt projection file, with no invitebus code in the
//! way: the rebuilt file's rows copied into a fresh file with a bulk load's pragmas (`WHERE 1`
//! keeps SQLite from copying pages whole, so every row is decoded and encoded again, as an
//! `INSERT` of our own would), then its secondary indexes built. A rebuild writes its rows in key
//! order once the last event is folded, so it cannot beat read + decode followed by this time:
//! [`Floor::ceiling`] is the most events/s a rebuild of that file could reach on this machine.
//! Reading the rows back out of the rebuilt file, which a rebuild never does, is timed on its
//! own and taken off, so the ceiling errs high, never low.

use rusqlite::Connection;
use std::path::Path;
use std::time::Instant;

/// The seconds SQLite took for the rows (reading them back included) and for the indexes, and
/// what reading the rows back alone took.
pub struct Floor {
    pub rows_s: f64,
    pub indexes_s: f64,
    pub read_back_s: f64,
}

impl Floor {
    /// Copies `rebuilt`'s tables into a fresh file at `scratch` and times it; the caller removes
    /// the copy.
    pub fn measure(rebuilt: &Path, scratch: &Path) -> anyhow::Result<Floor> {
        let _ = std::fs::remove_file(scratch);
        let conn = Connection::open(scratch)?;
        invitebus_feed::file::loading(&conn)?;
        conn.execute("ATTACH DATABASE ?1 AS rebuilt", [rebuilt.display().to_string()])?;
        let schema = |kind: &str| -> rusqlite::Result<Vec<(String, String)>> {
            let mut stmt = conn.prepare(
                "SELECT name, sql FROM rebuilt.sqlite_master WHERE type = ?1 AND sql IS NOT NULL \
                 AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
            )?;
            let rows = stmt.query_map([kind], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        };
        let (tables, indexes) = (schema("table")?, schema("index")?);
        for (_, sql) in &tables {
            conn.execute_batch(sql)?;
        }
        // Every column of every row, as the copy reads them (warming the page cache for it too).
        let started = Instant::now();
        for (name, _) in &tables {
            let mut stmt = conn.prepare(&format!("SELECT * FROM rebuilt.\"{name}\""))?;
            let columns = stmt.column_count();
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                for i in 0..columns {
                    std::hint::black_box(row.get_ref(i)?);
                }
            }
        }
        let read_back_s = started.elapsed().as_secs_f64();
        let started = Instant::now();
        conn.execute_batch("BEGIN")?;
        for (name, _) in &tables {
            conn.execute_batch(&format!(
                "INSERT INTO main.\"{name}\" SELECT * FROM rebuilt.\"{name}\" WHERE 1"
            ))?;
        }
        conn.execute_batch("COMMIT")?;
        let rows_s = started.elapsed().as_secs_f64();
        let started = Instant::now();
        for (_, sql) in &indexes {
            conn.execute_batch(sql)?;
        }
        let indexes_s = started.elapsed().as_secs_f64();
        Ok(Floor {
            rows_s,
            indexes_s,
            read_back_s,
        })
    }

    /// The most events/s a rebuild of `events` events could reach: reading and decoding them at
    /// `raw` events/s, then SQLite's own time for the rows (less reading them back) and indexes.
    pub fn ceiling(&self, events: u64, raw: f64) -> f64 {
        events as f64 / (events as f64 / raw + self.sqlite_s())
    }

    /// SQLite's own seconds: the rows less reading them back, and the indexes.
    pub fn sqlite_s(&self) -> f64 {
        (self.rows_s - self.read_back_s).max(0.0) + self.indexes_s
    }

    /// One line of `bench queries`: the floor and the ceiling it puts on `name`'s rebuild.
    pub fn print(&self, name: &str, events: u64, raw: f64) {
        println!(
            "{name:<10} SQLite alone: rows {:.2} s (reading them back {:.2} s, taken off) + indexes {:.2} s; \
             a rebuild at most {:.0} events/s after read + decode, {:.0} were they free",
            self.rows_s,
            self.read_back_s,
            self.indexes_s,
            self.ceiling(events, raw),
            events as f64 / self.sqlite_s()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::Floor;

    #[test]
    fn the_ceiling_adds_reading_the_events_and_takes_off_reading_the_rows_back() {
        let floor = Floor {
            rows_s: 1.5,
            indexes_s: 1.0,
            read_back_s: 0.5,
        };
        // 1,000 events read in 1 s, then 2 s of SQLite: 1,000 events in 3 s.
        assert!((floor.ceiling(1_000, 1_000.0) - 333.33).abs() < 0.01);
    }

    #[test]
    fn a_copy_keeps_every_row_and_builds_every_index() {
        let dir = tempfile::tempdir().unwrap();
        let rebuilt = dir.path().join("rebuilt.db");
        let conn = rusqlite::Connection::open(&rebuilt).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID; CREATE INDEX t_v ON t (v);
             INSERT INTO t VALUES ('a', 1), ('b', 2), ('c', 3);",
        )
        .unwrap();
        drop(conn);
        let scratch = dir.path().join("scratch.db");
        Floor::measure(&rebuilt, &scratch).unwrap();
        let copy = rusqlite::Connection::open(&scratch).unwrap();
        let rows: String = copy
            .query_row(
                "SELECT group_concat(x, ',') FROM (SELECT k || v AS x FROM t INDEXED BY t_v WHERE v > 0 ORDER BY v)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(rows, "a1,b2,c3");
    }
}
