//! The export commands' fields: an admin's request, and the exporter's own steps.

use super::decode::{decode_fields, Fields};
use super::limits::{check_len, MAX_TEXT};
use crate::error::ProtocolError;
use crate::ids::Id;
use crate::query::AdminFilters;
use serde::{Deserialize, Serialize};

/// Export file formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    #[default]
    Xlsx,
    Csv,
}

impl ExportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Xlsx => "xlsx",
            ExportFormat::Csv => "csv",
        }
    }
}

/// An admin asks for an export of the admin view.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RequestExport {
    /// Only `admin` for now.
    pub view: Option<String>,
    #[serde(default)]
    pub filters: AdminFilters,
    #[serde(default)]
    pub format: ExportFormat,
}

impl Fields for RequestExport {
    fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        decode_fields(body)
    }
    fn validate(&self) -> Result<(), ProtocolError> {
        match self.view.as_deref() {
            None | Some("admin") => Ok(()),
            Some(other) => Err(ProtocolError::invalid(
                "view",
                format!("`{other}` cannot be exported; use `admin`"),
            )),
        }
    }
}

/// The exporter has counted the rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StartExport {
    pub export_id: Id,
    #[serde(default)]
    pub count: u64,
}

/// The exporter has stored the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CompleteExport {
    pub export_id: Id,
    pub file_url: String,
    #[serde(default)]
    pub file_size: u64,
    #[serde(default)]
    pub count: u64,
}

/// The export failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FailExport {
    pub export_id: Id,
    #[serde(default)]
    pub reason: String,
}

impl Fields for StartExport {
    fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        decode_fields(body)
    }
}

impl Fields for CompleteExport {
    fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        decode_fields(body)
    }
}

impl Fields for FailExport {
    fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        decode_fields(body)
    }
    fn validate(&self) -> Result<(), ProtocolError> {
        check_len("reason", &self.reason, MAX_TEXT)
    }
}
