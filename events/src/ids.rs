//! Ids that may end up in a subject. Validating them on the way in keeps every subject safe.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// The longest id, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// True when `s` matches `^[A-Za-z0-9_-]{1,64}$`.
pub fn is_valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ID_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// An id checked against the subject-safe rule; it cannot be built otherwise.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Id(String);

impl Id {
    /// Checks `s` and wraps it.
    pub fn parse(s: impl Into<String>) -> Result<Id, InvalidId> {
        let s = s.into();
        if is_valid_id(&s) {
            Ok(Id(s))
        } else {
            Err(InvalidId(s))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The id rule as a JSON Schema (the AsyncAPI document's payloads).
impl schemars::JsonSchema for Id {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Id".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"})
    }
}

/// A string that breaks the id rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid id (want 1-64 of A-Z a-z 0-9 _ -): {0:?}")]
pub struct InvalidId(pub String);

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Id {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Id {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Id {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Id {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Id::parse(s).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<&str> for Id {
    type Error = InvalidId;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Id::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_id_alphabet_up_to_64() {
        assert!(is_valid_id("fang"));
        assert!(is_valid_id("A-z_09"));
        assert!(is_valid_id(&"a".repeat(64)));
    }

    #[test]
    fn rejects_subject_breakers_and_long_ids() {
        for bad in ["", "a.b", "a*", ">", "a b", "é", "a\n", &"a".repeat(65)] {
            assert!(!is_valid_id(bad), "{bad:?} should be invalid");
            assert!(Id::parse(bad).is_err());
        }
    }

    #[test]
    fn deserializing_checks_the_rule() {
        assert!(serde_json::from_str::<Id>("\"ok-id\"").is_ok());
        assert!(serde_json::from_str::<Id>("\"not.ok\"").is_err());
    }
}
