//! From bytes to typed fields, with errors that name the field at fault.

use super::{CommandMeta, MAX_BODY, MAX_COMMAND_ID, MAX_INJECTED};
use crate::error::{ErrorCode, ProtocolError};
use serde::de::DeserializeOwned;

/// A command's own fields: how they decode from the body and what else they must satisfy.
pub trait Fields: Sized {
    /// Decodes from the whole request body (an object already checked by [`check_body`]).
    fn decode(body: &[u8]) -> Result<Self, ProtocolError>;
    /// Limits and rules serde cannot express (lengths, sizes, one-of fields).
    fn validate(&self) -> Result<(), ProtocolError> {
        Ok(())
    }
}

/// Size check (a client's [`MAX_BODY`] plus what a gateway adds) and the object check. Fields are then read straight from the bytes, each
/// struct in its own pass: cheaper than building a `Value` and reading from it.
pub fn check_body(body: &[u8]) -> Result<(), ProtocolError> {
    if body.len() > MAX_BODY + MAX_INJECTED {
        return Err(ProtocolError::invalid_command(format!(
            "body is {} bytes, at most {MAX_BODY} are allowed",
            body.len()
        )));
    }
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(()),
        _ => match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => Err(ProtocolError::invalid_command("body is not a JSON object")),
            Err(e) => Err(ProtocolError::invalid_command(format!("body is not JSON: {e}"))),
        },
    }
}

pub(crate) fn decode_meta(body: &[u8]) -> Result<CommandMeta, ProtocolError> {
    let no_actor = || ProtocolError::with_field(ErrorCode::Unauthenticated, "actor", "no actor");
    let meta: CommandMeta = decode_fields(body).map_err(|e| match (e.code, e.field.as_deref()) {
        (ErrorCode::MissingField, Some("actor")) => no_actor(),
        (ErrorCode::InvalidField, Some("actor")) if e.message.contains("null") => no_actor(),
        _ => e,
    })?;
    if let Some(id) = &meta.command_id {
        if id.is_empty() || id.len() > MAX_COMMAND_ID {
            return Err(ProtocolError::invalid("command_id", "must be 1 to 128 characters"));
        }
        if id.starts_with(super::SYSTEM_COMMAND_ID_PREFIX) && !meta.is_system() {
            return Err(ProtocolError::invalid(
                "command_id",
                "ids starting with `sys-` are reserved for invitebus's own workers",
            ));
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

/// Deserializes `T` from a JSON body. Broken JSON is `invalid_command`; a missing field is
/// `missing_field` and a wrong value `invalid_field`, each naming the field's path.
pub fn decode_fields<T: DeserializeOwned>(body: &[u8]) -> Result<T, ProtocolError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(path_error)?;
    de.end()
        .map_err(|e| ProtocolError::invalid_command(format!("body is not JSON: {e}")))?;
    Ok(value)
}

fn path_error(e: serde_path_to_error::Error<serde_json::Error>) -> ProtocolError {
    use serde_json::error::Category;
    if matches!(e.inner().classify(), Category::Syntax | Category::Eof | Category::Io) {
        return ProtocolError::invalid_command(format!("body is not JSON: {}", e.inner()));
    }
    let path = e.path().to_string();
    let inner = e.inner().to_string();
    // serde_json appends " at line L column C" to data errors read from bytes.
    let inner = match inner.rfind(" at line ") {
        Some(i) => inner[..i].to_string(),
        None => inner,
    };
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
}
