//! The reply body shared by commands and queries.

use crate::error::ProtocolError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `{"ok":true,"data":…,"position":N}` or `{"ok":false,"error":{…}}`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Reply {
    pub ok: bool,
    pub data: Option<Value>,
    pub error: Option<ProtocolError>,
    /// The log position of the command's last event; null when it appended none.
    #[serde(default, skip_serializing_if = "is_query")]
    pub position: Option<Option<u64>>,
}

fn is_query(p: &Option<Option<u64>>) -> bool {
    p.is_none()
}

impl Reply {
    /// A command's success.
    pub fn command_ok(data: Value, position: Option<u64>) -> Reply {
        Reply {
            ok: true,
            data: Some(data),
            error: None,
            position: Some(position),
        }
    }

    /// A query's success (no position).
    pub fn query_ok(data: Value) -> Reply {
        Reply {
            ok: true,
            data: Some(data),
            error: None,
            position: None,
        }
    }

    pub fn err(error: ProtocolError) -> Reply {
        Reply {
            ok: false,
            data: None,
            error: Some(error),
            position: None,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a reply always serializes")
    }

    /// The position as a plain option.
    pub fn position(&self) -> Option<u64> {
        self.position.flatten()
    }

    pub fn into_result(self) -> Result<Value, ProtocolError> {
        match (self.ok, self.error) {
            (true, _) => Ok(self.data.unwrap_or(Value::Null)),
            (false, Some(e)) => Err(e),
            (false, None) => Err(ProtocolError::internal("error reply without an error")),
        }
    }
}

impl From<Result<Value, ProtocolError>> for Reply {
    fn from(r: Result<Value, ProtocolError>) -> Self {
        match r {
            Ok(v) => Reply::query_ok(v),
            Err(e) => Reply::err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::json;

    #[test]
    fn command_reply_carries_a_nullable_position() {
        let r = Reply::command_ok(json!({}), None);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"ok":true,"data":{},"position":null})
        );
        let r = Reply::command_ok(json!({}), Some(7));
        assert_eq!(serde_json::to_value(&r).unwrap()["position"], 7);
    }

    #[test]
    fn error_reply_shape() {
        let r = Reply::err(ProtocolError::missing("invite_id"));
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"ok":false,"error":{"code":"missing_field","message":"missing field `invite_id`","field":"invite_id"}})
        );
        assert_eq!(r.into_result().unwrap_err().code, ErrorCode::MissingField);
    }
}
