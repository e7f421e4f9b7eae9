//! From bytes to typed fields, with errors that name the field at fault.

use super::{CommandMeta, MAX_BODY, MAX_COMMAND_ID};
use crate::error::{ErrorCode, ProtocolError};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A command's own fields: how they decode from the body and what else they must satisfy.
pub trait Fields: Sized {
    fn decode(body: &Value) -> Result<Self, ProtocolError>;
    /// Limits and rules serde cannot express (lengths, sizes, one-of fields).
    fn validate(&self) -> Result<(), ProtocolError> {
        Ok(())
    }
}

/// Size check, JSON parse, and the object check.
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, ProtocolError> {
    if body.len() > MAX_BODY {
        return Err(ProtocolError::invalid_command(format!(
            "body is {} bytes, at most {MAX_BODY} are allowed",
            body.len()
        )));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ProtocolError::invalid_command(format!("body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ProtocolError::invalid_command("body is not a JSON object"));
    }
    Ok(value)
}

pub(crate) fn decode_meta(body: &Value) -> Result<CommandMeta, ProtocolError> {
    match body.get("actor") {
        None | Some(Value::Null) => {
            return Err(ProtocolError::with_field(
                ErrorCode::Unauthenticated,
                "actor",
                "no actor",
            ))
        }
        Some(_) => {}
    }
    let meta: CommandMeta = decode_fields(body)?;
    if let Some(id) = &meta.command_id {
        if id.is_empty() || id.len() > MAX_COMMAND_ID {
            return Err(ProtocolError::invalid("command_id", "must be 1 to 128 characters"));
        }
    }
    if let Some(id) = &meta.correlation_id {
        if id.len() > MAX_COMMAND_ID {
            return Err(ProtocolError::invalid(
                "correlation_id",
                "must be at most 128 characters",
            ));
        }
    }
    Ok(meta)
}

/// Deserializes `T` from `body`; a serde error becomes `missing_field` or `invalid_field` naming the path.
pub fn decode_fields<T: DeserializeOwned>(body: &Value) -> Result<T, ProtocolError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        if let Some(rest) = inner.strip_prefix("missing field `") {
            let name = rest.split('`').next().unwrap_or(rest);
            let field = if path == "." {
                name.to_string()
            } else {
                format!("{path}.{name}")
            };
            ProtocolError::missing(&field)
        } else {
            let field = if path == "." { "body".to_string() } else { path };
            ProtocolError::with_field(
                ErrorCode::InvalidField,
                field.clone(),
                format!("invalid `{field}`: {inner}"),
            )
        }
    })
}
