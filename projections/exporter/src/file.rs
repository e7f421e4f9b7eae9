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

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
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
