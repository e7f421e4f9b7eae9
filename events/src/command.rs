//! Commands: the common fields, each command's fields, and decoding a request body.
//!
//! A request body is one JSON object holding the common fields ([`CommandMeta`]) beside the
//! command's own. [`CommandRequest::decode`] turns bytes into a typed, validated command or a
//! [`ProtocolError`] naming the field at fault. Unknown fields are ignored, so the protocol can grow.

mod decode;
mod export;
mod fields;
mod limits;
mod webhook;

pub use decode::{check_body, decode_fields, Fields};
pub use fields::*;
pub use webhook::*;

use crate::error::ProtocolError;
use crate::ids::Id;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The largest request body, in bytes.
pub const MAX_BODY: usize = 64 * 1024;
/// The longest `command_id`.
pub const MAX_COMMAND_ID: usize = 128;
/// What the bus allows beyond [`MAX_BODY`] for the fields a gateway sets on a client's body
/// (`actor`, `roles`), so that the client's own 64 KiB are what counts.
pub const MAX_INJECTED: usize = 2 * 1024;

/// The fields every command carries beside its own.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CommandMeta {
    /// The user on whose behalf; `system` for invitebus's own workers.
    pub actor: Id,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Idempotency key: the same id again gets the first reply and appends nothing.
    pub command_id: Option<String>,
    pub correlation_id: Option<String>,
    /// Optimistic concurrency on the command's own stream.
    pub expected_version: Option<u64>,
    /// The W3C trace context, from the request's `traceparent` header (never from the body).
    #[serde(skip)]
    pub traceparent: Option<crate::trace::Traceparent>,
}

impl CommandMeta {
    pub fn new(actor: Id) -> Self {
        CommandMeta {
            actor,
            roles: vec![],
            command_id: None,
            correlation_id: None,
            expected_version: None,
            traceparent: None,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == crate::ADMIN_ROLE)
    }

    pub fn is_system(&self) -> bool {
        self.actor == crate::SYSTEM_ACTOR
    }
}

macro_rules! commands {
    ($($name:ident),* $(,)?) => {
        /// Every v1 command, by name.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Command {
            $($name($name),)*
        }

        impl Command {
            /// Every command name, as used in `invites.cmd.<Command>`.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),*];

            pub fn name(&self) -> &'static str {
                match self {
                    $(Command::$name(_) => stringify!($name),)*
                }
            }

            /// Decodes the command named `name` from a body already known to be an object.
            pub fn decode_named(name: &str, body: &[u8]) -> Result<Command, ProtocolError> {
                match name {
                    $(stringify!($name) => {
                        let fields = <$name as Fields>::decode(body)?;
                        fields.validate()?;
                        Ok(Command::$name(fields))
                    })*
                    _ => Err(ProtocolError::invalid_command(format!("unknown command `{name}`"))),
                }
            }

            /// `hex(sha256(canonical JSON of the command's own fields))`: what a retry with the same
            /// `command_id` must match. Actor, roles and the other common fields are not in it.
            pub fn digest(&self) -> String {
                use sha2::{Digest, Sha256};
                // serde_json's maps are sorted by key, so this JSON is canonical.
                let json = serde_json::to_vec(&self.fields_json()).expect("commands serialize");
                hex::encode(Sha256::digest(&json))
            }

            /// Each command's own fields as a JSON Schema (a `$ref` into `generator`'s
            /// definitions), by name: the AsyncAPI document describes them from here.
            pub fn field_schemas(generator: &mut schemars::SchemaGenerator) -> Vec<(&'static str, schemars::Schema)> {
                vec![$((stringify!($name), generator.subschema_for::<$name>()),)*]
            }

            /// The command's own fields as a JSON object.
            pub fn fields_json(&self) -> Value {
                match self {
                    $(Command::$name(c) => serde_json::to_value(c).expect("commands serialize"),)*
                }
            }
        }
    };
}

commands!(
    UpsertUser,
    ForgetUser,
    RegisterResource,
    JoinResource,
    LeaveResource,
    PauseInvites,
    ResumeInvites,
    CreateInvite,
    UpdateInvite,
    CancelInvite,
    AcceptInvite,
    RejectInvite,
    TentativelyAcceptInvite,
    ResendInvite,
    MarkInviteRead,
    HideInvite,
    ApproveInvite,
    DenyInvite,
    ExpireInvite,
    RemindInvite,
    StartCall,
    CreateInviteCode,
    RedeemInviteCode,
    DeleteInviteCode,
    RequestExport,
    StartExport,
    CompleteExport,
    FailExport,
    RegisterWebhook,
    DeleteWebhook,
    ReplayWebhook,
);

/// The prefix of the `command_id`s invitebus's own workers use; users cannot send one.
pub const SYSTEM_COMMAND_ID_PREFIX: &str = "sys-";

/// The service key when none is set: fine for one machine and tests, a real one is a setting.
pub const DEV_SERVICE_KEY: &[u8] = b"invitebus-dev-service-key";

/// A `command_id` for a command of invitebus's own workers (a timer firing, an export step):
/// deterministic, so a restarted worker repeats the same id and the command applies once, yet
/// unguessable without `key` (an HMAC-SHA256 of `parts`), and in the reserved `sys-` range.
pub fn system_command_id(key: &[u8], parts: &[&str]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    for p in parts {
        mac.update(&(p.len() as u64).to_le_bytes());
        mac.update(p.as_bytes());
    }
    let tag = mac.finalize().into_bytes();
    format!("{SYSTEM_COMMAND_ID_PREFIX}{}", hex::encode(&tag[..16]))
}

/// A decoded request: who asks, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRequest {
    pub meta: CommandMeta,
    pub command: Command,
}

impl CommandRequest {
    pub fn new(meta: CommandMeta, command: Command) -> Self {
        CommandRequest { meta, command }
    }

    /// Decodes the body of a message sent to `invites.cmd.<name>`.
    pub fn decode(name: &str, body: &[u8]) -> Result<CommandRequest, ProtocolError> {
        decode::check_body(body)?;
        if !Command::NAMES.contains(&name) {
            return Err(ProtocolError::invalid_command(format!("unknown command `{name}`")));
        }
        let meta = decode::decode_meta(body)?;
        let command = Command::decode_named(name, body)?;
        Ok(CommandRequest { meta, command })
    }

    /// The body a client sends: the command's fields and the common ones in one object.
    pub fn to_body(&self) -> Value {
        let mut obj = match self.command.fields_json() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        if let Value::Object(meta) = serde_json::to_value(&self.meta).expect("meta serializes") {
            obj.extend(meta);
        }
        Value::Object(obj)
    }
}
