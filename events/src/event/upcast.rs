//! Schema numbers per event type, and the one place where old data is brought up to date on read.
//! Stored events are never rewritten: when a type's data changes, its schema grows and a step
//! from the old shape to the new one is added here.

use serde_json::Value;

/// Stored data that no step here can bring to the current schema.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UpcastError {
    #[error("unknown event type `{0}`")]
    UnknownType(String),
    #[error("event {event_type} has schema {schema}, newer than this build knows ({current})")]
    TooNew {
        event_type: String,
        schema: u32,
        current: u32,
    },
    #[error("event {event_type} has schema {schema}, which has no upcast step")]
    NoStep { event_type: String, schema: u32 },
}

/// The schema number of each event type today. Every v1 type is at 1, but those whose personal
/// fields are stored sealed (`invitebus_events::personal`), at 2.
pub fn current_schema(event_type: &str) -> u32 {
    match crate::personal::is_personal(event_type) {
        true => 2,
        false => 1,
    }
}

/// Brings `data` of `event_type` at `schema` up to the current schema.
pub fn upcast(event_type: &str, schema: u32, data: Value) -> Result<Value, UpcastError> {
    if !super::Event::TYPES.contains(&event_type) {
        return Err(UpcastError::UnknownType(event_type.to_string()));
    }
    let current = current_schema(event_type);
    if schema > current {
        return Err(UpcastError::TooNew {
            event_type: event_type.to_string(),
            schema,
            current,
        });
    }
    let mut data = data;
    let mut at = schema;
    while at < current {
        data = step(event_type, at, data)?;
        at += 1;
    }
    Ok(data)
}

/// One step from `schema` to `schema + 1`.
fn step(event_type: &str, schema: u32, data: Value) -> Result<Value, UpcastError> {
    match (event_type, schema) {
        // Schema 2 seals personal fields; the shape is the same, so a schema 1 event reads as
        // is (its fields in plain text: a forget cannot erase them, `erased: "partial"`).
        (ty, 1) if crate::personal::is_personal(ty) => Ok(data),
        _ => Err(UpcastError::NoStep {
            event_type: event_type.to_string(),
            schema,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn current_schema_passes_through() {
        let data = json!({"a": 1});
        assert_eq!(upcast("InviteRead", 1, data.clone()).unwrap(), data);
    }

    #[test]
    fn unknown_types_and_future_schemas_are_refused() {
        assert!(matches!(upcast("Nope", 1, json!({})), Err(UpcastError::UnknownType(_))));
        assert!(matches!(
            upcast("InviteRead", 2, json!({})),
            Err(UpcastError::TooNew { .. })
        ));
        assert!(matches!(
            upcast("InviteRead", 0, json!({})),
            Err(UpcastError::NoStep { .. })
        ));
    }

    #[test]
    fn a_profile_stored_before_sealing_reads_as_is() {
        let data = json!({"user_id": "fang", "name": "Fang", "at": "2026-01-01T00:00:00.000Z"});
        assert_eq!(upcast("UserUpserted", 1, data.clone()).unwrap(), data);
        assert!(matches!(
            upcast("UserUpserted", 3, json!({})),
            Err(UpcastError::TooNew { .. })
        ));
    }
}
