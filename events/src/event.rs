//! Every event type, its data, its stream and its schema number.
//!
//! An event's stream follows from its data (`InviteAccepted` → `invite-<invite_id>`), so a
//! command may append to several streams in one go. `data` carries every field a view needs.

mod data;
mod upcast;

pub use data::*;
pub use upcast::{upcast, UpcastError};

use crate::ids::Id;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kinds of stream, the prefix of every stream id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    User,
    Resource,
    Invite,
    Code,
    Export,
    Webhook,
}

impl StreamType {
    pub const ALL: [StreamType; 6] = [
        StreamType::User,
        StreamType::Resource,
        StreamType::Invite,
        StreamType::Code,
        StreamType::Export,
        StreamType::Webhook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StreamType::User => "user",
            StreamType::Resource => "resource",
            StreamType::Invite => "invite",
            StreamType::Code => "code",
            StreamType::Export => "export",
            StreamType::Webhook => "webhook",
        }
    }

    /// `<stream_type>-<id>`.
    pub fn stream_id(self, id: &Id) -> String {
        format!("{}-{id}", self.as_str())
    }

    /// Splits a stream id into its type and id; `None` when it is not one.
    pub fn parse_stream_id(stream_id: &str) -> Option<(StreamType, Id)> {
        let (ty, id) = stream_id.split_once('-')?;
        let ty = StreamType::ALL.into_iter().find(|t| t.as_str() == ty)?;
        Some((ty, Id::parse(id).ok()?))
    }
}

macro_rules! events {
    ($($name:ident => $stream:ident . $key:ident),* $(,)?) => {
        /// Every v1 event. Serialized adjacently: `{"type": "...", "data": {...}}`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "data")]
        pub enum Event {
            $($name($name),)*
        }

        impl Event {
            /// Every event type name, as in `invites.evt.<EventType>.<stream_id>`.
            pub const TYPES: &'static [&'static str] = &[$(stringify!($name)),*];

            pub fn event_type(&self) -> &'static str {
                match self {
                    $(Event::$name(_) => stringify!($name),)*
                }
            }

            pub fn stream_type(&self) -> StreamType {
                match self {
                    $(Event::$name(_) => StreamType::$stream,)*
                }
            }

            /// Each event type's `data` as a JSON Schema (a `$ref` into `generator`'s
            /// definitions), by type: the AsyncAPI document describes them from here.
            pub fn data_schemas(generator: &mut schemars::SchemaGenerator) -> Vec<(&'static str, schemars::Schema)> {
                vec![$((stringify!($name), generator.subschema_for::<$name>()),)*]
            }

            /// The `data` object of the envelope.
            pub fn data(&self) -> Value {
                match self {
                    $(Event::$name(e) => serde_json::to_value(e).expect("event data serializes"),)*
                }
            }

            /// The `data` object as canonical JSON text (compact, keys sorted), written straight
            /// from the struct: its fields are declared in sorted order. Debug builds check it
            /// against the sorted form made through a `Value`.
            pub fn data_json(&self) -> String {
                let text = match self {
                    $(Event::$name(e) => serde_json::to_string(e).expect("event data serializes"),)*
                };
                debug_assert_eq!(
                    text,
                    serde_json::to_string(&self.data()).expect("values serialize"),
                    "{} data fields are not in sorted order",
                    self.event_type()
                );
                text
            }

            /// The event of type `event_type` from its data at the current schema, read
            /// straight into its struct (no tagged detour); None for an unknown type.
            fn from_current(event_type: &str, data: &str) -> Option<Result<Event, serde_json::Error>> {
                match event_type {
                    $(stringify!($name) => Some(serde_json::from_str::<$name>(data).map(Event::$name)),)*
                    _ => None,
                }
            }

            /// [`Event::from_current`] from a JSON value (after an upcast).
            fn from_current_value(event_type: &str, data: Value) -> Option<Result<Event, serde_json::Error>> {
                match event_type {
                    $(stringify!($name) => Some(serde_json::from_value::<$name>(data).map(Event::$name)),)*
                    _ => None,
                }
            }

            /// The id inside the stream id (`fang` of `user-fang`).
            pub fn stream_key(&self) -> &Id {
                match self {
                    $(Event::$name(e) => &e.$key,)*
                }
            }
        }
    };
}

events!(
    UserUpserted => User.user_id,
    UserForgotten => User.user_id,
    ResourceRegistered => Resource.resource_id,
    MemberJoined => Resource.resource_id,
    MemberLeft => Resource.resource_id,
    InvitesPaused => Resource.resource_id,
    InvitesResumed => Resource.resource_id,
    InviteCreated => Invite.invite_id,
    InviteUpdated => Invite.invite_id,
    InviteCancelled => Invite.invite_id,
    InviteAccepted => Invite.invite_id,
    InviteRejected => Invite.invite_id,
    InviteTentativelyAccepted => Invite.invite_id,
    InviteResent => Invite.invite_id,
    InviteRead => Invite.invite_id,
    InviteHidden => Invite.invite_id,
    InviteApproved => Invite.invite_id,
    InviteDenied => Invite.invite_id,
    InviteExpired => Invite.invite_id,
    InviteReminded => Invite.invite_id,
    InviteCodeCreated => Code.code,
    InviteCodeRedeemed => Code.code,
    InviteCodeDeleted => Code.code,
    ExportRequested => Export.export_id,
    ExportStarted => Export.export_id,
    ExportCompleted => Export.export_id,
    ExportFailed => Export.export_id,
    WebhookRegistered => Webhook.webhook_id,
    WebhookDeleted => Webhook.webhook_id,
    WebhookReplayed => Webhook.webhook_id,
);

/// Why stored event data could not be read as an [`Event`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Upcast(#[from] UpcastError),
    #[error("event {event_type} does not match its schema: {source}")]
    Data {
        event_type: String,
        source: serde_json::Error,
    },
}

impl Event {
    /// The stream this event belongs to: `<stream_type>-<id>`.
    pub fn stream_id(&self) -> String {
        self.stream_type().stream_id(self.stream_key())
    }

    /// The resource the event is about, where it is about one: what a resource owner's webhook
    /// is filtered on. Profiles, exports and webhooks belong to no resource.
    pub fn resource_id(&self) -> Option<&Id> {
        match self {
            Event::ResourceRegistered(e) => Some(&e.resource_id),
            Event::MemberJoined(e) => Some(&e.resource_id),
            Event::MemberLeft(e) => Some(&e.resource_id),
            Event::InvitesPaused(e) => Some(&e.resource_id),
            Event::InvitesResumed(e) => Some(&e.resource_id),
            Event::InviteCreated(e) => Some(&e.resource_id),
            Event::InviteUpdated(e) => Some(&e.resource_id),
            Event::InviteCancelled(e) => Some(&e.resource_id),
            Event::InviteAccepted(e) => Some(&e.resource_id),
            Event::InviteRejected(e) => Some(&e.resource_id),
            Event::InviteTentativelyAccepted(e) => Some(&e.resource_id),
            Event::InviteResent(e) => Some(&e.resource_id),
            Event::InviteRead(e) => Some(&e.resource_id),
            Event::InviteHidden(e) => Some(&e.resource_id),
            Event::InviteApproved(e) => Some(&e.resource_id),
            Event::InviteDenied(e) => Some(&e.resource_id),
            Event::InviteExpired(e) => Some(&e.resource_id),
            Event::InviteReminded(e) => Some(&e.resource_id),
            Event::InviteCodeCreated(e) => Some(&e.resource_id),
            Event::InviteCodeRedeemed(e) => Some(&e.resource_id),
            Event::InviteCodeDeleted(e) => Some(&e.resource_id),
            Event::UserUpserted(_)
            | Event::UserForgotten(_)
            | Event::ExportRequested(_)
            | Event::ExportStarted(_)
            | Event::ExportCompleted(_)
            | Event::ExportFailed(_)
            | Event::WebhookRegistered(_)
            | Event::WebhookDeleted(_)
            | Event::WebhookReplayed(_) => None,
        }
    }

    /// The current schema number of this event's type.
    pub fn schema(&self) -> u32 {
        upcast::current_schema(self.event_type())
    }

    /// Reads stored data of any known schema, upcasting old schemas first.
    pub fn decode(event_type: &str, schema: u32, data: Value) -> Result<Event, DecodeError> {
        let data = upcast(event_type, schema, data)?;
        match Self::from_current_value(event_type, data) {
            Some(event) => event.map_err(|source| DecodeError::Data {
                event_type: event_type.to_string(),
                source,
            }),
            None => Err(UpcastError::UnknownType(event_type.to_string()).into()),
        }
    }

    /// [`Event::decode`] from the stored JSON text: data at the current schema is read straight
    /// into its struct, without a `Value` in between (the bulk reader's path: measured 99k
    /// events/s through `Value` and the tagged enum, see BENCHMARKS.md).
    pub fn decode_str(event_type: &str, schema: u32, data: &str) -> Result<Event, DecodeError> {
        if Self::TYPES.contains(&event_type) && schema == upcast::current_schema(event_type) {
            if let Some(event) = Self::from_current(event_type, data) {
                return event.map_err(|source| DecodeError::Data {
                    event_type: event_type.to_string(),
                    source,
                });
            }
        }
        let value: Value = serde_json::from_str(data).map_err(|source| DecodeError::Data {
            event_type: event_type.to_string(),
            source,
        })?;
        Self::decode(event_type, schema, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{ExportFormat, InviteDetail, PushInfo, RemindType};
    use crate::query::AdminFilters;
    use chrono::Utc;
    use serde_json::json;

    fn id(s: &str) -> Id {
        Id::parse(s).unwrap()
    }

    /// Events with every optional and nested field set: their straight serialization must be
    /// the sorted (canonical) one. `data_json` asserts it in debug builds; this says it again.
    #[test]
    fn data_json_is_canonical_with_every_nested_field_set() {
        let now = Utc::now();
        let events = vec![
            Event::InviteCreated(InviteCreated {
                code: Some(id("c")),
                created_at: now,
                detail: Some(InviteDetail {
                    address: Some("Hall".into()),
                    begin_time: Some(now),
                    content: Some("Talk".into()),
                    end_time: Some(now),
                    remind_min: Some(5),
                    remind_type: Some(RemindType::Sms),
                }),
                expires_at: Some(now),
                ext: Some(json!({"z": 1, "a": [1, {"y": 2, "b": 3}]})),
                invite_id: id("i"),
                invitees: vec![id("a")],
                inviter: id("x"),
                message: Some("m".into()),
                offline_enabled: true,
                push: Some(PushInfo {
                    badge: Some(true),
                    content: Some("c".into()),
                    payload: Some(json!({"k": "v", "a": 1})),
                    title: Some("t".into()),
                }),
                requires_approval: false,
                resource_id: id("r"),
                resource_kind: id("k"),
                role: "member".into(),
            }),
            Event::MemberJoined(MemberJoined {
                at: now,
                inviter: Some(id("x")),
                member_count: 2,
                resource_id: id("r"),
                user_id: id("a"),
                via: Via {
                    code: Some(id("c")),
                    direct: Some(true),
                    invite_id: Some(id("i")),
                    owner: Some(false),
                },
            }),
            Event::ExportRequested(ExportRequested {
                at: now,
                export_id: id("e"),
                filters: AdminFilters {
                    created_from: Some(now),
                    created_to: Some(now),
                    invitee_phone: Some("1".into()),
                    inviter_phone: Some("2".into()),
                    resource_id: Some(id("r")),
                    status: Some(crate::RecordStatus::Approved),
                },
                format: ExportFormat::Csv,
                requested_by: id("admin"),
                view: "admin".into(),
            }),
        ];
        for e in events {
            let sorted = serde_json::to_string(&e.data()).unwrap();
            assert_eq!(e.data_json(), sorted, "{}", e.event_type());
            // Both ways of reading stored data give the event back.
            let (ty, schema) = (e.event_type(), e.schema());
            assert_eq!(
                Event::decode_str(ty, schema, &e.data_json()).unwrap(),
                e,
                "{ty} from text"
            );
            assert_eq!(Event::decode(ty, schema, e.data()).unwrap(), e, "{ty} from a value");
        }
        assert!(Event::decode_str("NoSuchEvent", 1, "{}").is_err());
        assert!(Event::decode_str("InviteRead", 1, "{\"at\":1}").is_err());
        assert!(
            Event::decode_str("InviteRead", 99, "{}").is_err(),
            "a schema from the future"
        );
    }
}
