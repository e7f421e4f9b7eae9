//! The limits every command's fields share: lengths, sizes, control characters, unique ids.

use crate::error::ProtocolError;
use crate::ids::Id;
use serde::Serialize;

/// Longest name, in characters.
pub const MAX_NAME: usize = 200;
/// Longest message, reason or description, in characters.
pub const MAX_TEXT: usize = 4000;
/// Largest `detail`, `info`, `ext` or push payload, in bytes of JSON.
pub const MAX_JSON: usize = 16 * 1024;
/// Most invitees on one invite.
pub const MAX_INVITEES: usize = 500;
/// Default `max_age` of an invite code: one day.
pub const DEFAULT_CODE_MAX_AGE: u64 = 86_400;

/// Length, and control characters: none in a one-line field (names, roles, phones: they end up
/// in notification texts, lists and terminals); in free text (messages, reasons, descriptions)
/// only line breaks and tabs, which readers escape where they show it.
pub(super) fn check_len(field: &str, s: &str, max: usize) -> Result<(), ProtocolError> {
    if s.chars().count() > max {
        return Err(ProtocolError::invalid(field, format!("longer than {max} characters")));
    }
    let free_text = max > MAX_NAME;
    let allowed = |c: char| free_text && matches!(c, '\n' | '\r' | '\t');
    if let Some(c) = s.chars().find(|c| c.is_control() && !allowed(*c)) {
        return Err(ProtocolError::invalid(
            field,
            format!("holds the control character U+{:04X}", c as u32),
        ));
    }
    Ok(())
}

pub(super) fn check_opt_len(field: &str, s: &Option<String>, max: usize) -> Result<(), ProtocolError> {
    s.as_deref().map_or(Ok(()), |s| check_len(field, s, max))
}

pub(super) fn check_name(field: &str, s: &str) -> Result<(), ProtocolError> {
    if s.trim().is_empty() {
        return Err(ProtocolError::invalid(field, "must not be empty"));
    }
    check_len(field, s, MAX_NAME)
}

pub(super) fn check_json<T: Serialize>(field: &str, v: &Option<T>) -> Result<(), ProtocolError> {
    if let Some(v) = v {
        let size = serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX);
        if size > MAX_JSON {
            return Err(ProtocolError::invalid(
                field,
                format!("larger than {MAX_JSON} bytes of JSON"),
            ));
        }
    }
    Ok(())
}

pub(super) fn check_unique(field: &str, ids: &[Id]) -> Result<(), ProtocolError> {
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(ProtocolError::invalid(field, format!("`{id}` is listed twice")));
        }
    }
    Ok(())
}
