//! The AsyncAPI 3.0 document of invitebus's NATS API, served by the gateway at `/asyncapi.json`
//! and written by `invitebus asyncapi`. It is generated, never written by hand: commands from
//! [`Command::NAMES`] with each one's fields derived from its struct, queries from [`QUERIES`],
//! event types from [`Event::TYPES`] with each one's `data` derived from its struct, subjects from
//! [`Subjects`]. A command or an event added to the code is in the document by construction.
//!
//! It describes invitebus's side of the bus: it *receives* commands, queries and health requests
//! (answering on the request's reply subject) and *sends* events, notifications, hand-offs and
//! export progress.
//!
//! Layout: `lib.rs` builds the channels and operations; `payloads.rs` holds the schemas that no
//! struct of the contract gives (each query's request, notifications, progress, health, status).

mod payloads;

use invitebus_events::query::QUERIES;
use invitebus_events::subject::{Subjects, COMMANDS_QUEUE_GROUP};
use invitebus_events::{Command, CommandMeta, Envelope, Event, Id, RecordStatus, Reply};
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

/// The AsyncAPI version the document follows.
pub const ASYNCAPI_VERSION: &str = "3.0.0";
/// The version of the NATS bindings used.
const NATS_BINDING: &str = "0.1.0";

/// The document for a bus whose subjects are `subjects` (the prefix is a setting).
pub fn document(subjects: &Subjects) -> Value {
    let mut generator = SchemaSettings::draft07()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let meta = generator.subschema_for::<CommandMeta>();
    let reply = generator.subschema_for::<Reply>();
    let envelope = generator.subschema_for::<Envelope>();
    let commands = Command::field_schemas(&mut generator);
    let events = Event::data_schemas(&mut generator);
    // The query requests of payloads.rs refer to these two by name.
    generator.subschema_for::<Id>();
    generator.subschema_for::<RecordStatus>();

    let mut doc = Doc::default();
    doc.message("Reply", "A command's or a query's reply", reply.into(), None);
    doc.channel(
        "reply",
        Value::Null,
        "The request's reply subject (an inbox the requester chose).",
        &["Reply"],
        None,
    );

    for (name, fields) in commands {
        let message = format!("command.{name}");
        let payload = json!({"allOf": [meta, fields]});
        doc.message(
            &message,
            &format!("The command {name}"),
            payload,
            Some(payloads::request_headers()),
        );
        let channel = format!("cmd.{name}");
        doc.channel(
            &channel,
            json!(subjects.command(name)),
            &format!("Send the command {name}; the reply says what came of it (PROTOCOL.md, Commands)."),
            &[&message],
            None,
        );
        doc.receive(
            &format!("receive{name}"),
            &channel,
            &[&message],
            Some(COMMANDS_QUEUE_GROUP),
        );
    }

    for name in QUERIES {
        let message = format!("query.{name}");
        doc.message(
            &message,
            &format!("The query {name}"),
            payloads::query_request(name),
            Some(payloads::request_headers()),
        );
        let channel = format!("q.{name}");
        doc.channel(
            &channel,
            json!(subjects.query(name)),
            &format!("Ask the query {name}; the reply's `data` is its answer (PROTOCOL.md, Queries)."),
            &[&message],
            None,
        );
        doc.receive(
            &format!("query{}", upper_first(name)),
            &channel,
            &[&message],
            payloads::query_queue(name),
        );
    }

    doc.message("HealthRequest", "Any body", json!({}), None);
    doc.channel(
        "health",
        json!(subjects.health()),
        "Ask for the log head, the relay and every projection's position, lag and state (PROTOCOL.md, Health).",
        &["HealthRequest"],
        None,
    );
    doc.receive("health", "health", &["HealthRequest"], Some(COMMANDS_QUEUE_GROUP));

    let mut event_messages = Vec::new();
    for (event_type, data) in events {
        let message = format!("event.{event_type}");
        let payload = json!({"allOf": [envelope, {"type": "object", "required": ["type", "data"], "properties": {
            "type": {"const": event_type}, "data": data}}]});
        doc.message(
            &message,
            &format!("The event {event_type}, in its envelope"),
            payload,
            Some(payloads::event_headers()),
        );
        event_messages.push(message);
    }
    let names: Vec<&str> = event_messages.iter().map(String::as_str).collect();
    let events_address = template(&subjects.event("eventType", "streamId"), &["eventType", "streamId"]);
    let parameters = json!({
        "eventType": {"enum": Event::TYPES, "description": "the event's type"},
        "streamId": {"description": "`<stream_type>-<id>`: user-, resource-, invite-, code-, export-, webhook-"}});
    doc.channel("events", json!(events_address), "Every event, in log order, kept in the JetStream stream INVITES_EVENTS: follow it from any position (PROTOCOL.md, Events).", &names, Some(parameters));
    doc.send("sendEvents", "events", &names);

    doc.message("Notification", "A notification", payloads::notification(), None);
    let user = json!({"userId": {"description": "the user notified"}});
    for (channel, subject, what) in [
        (
            "notify",
            subjects.notify(&placeholder("userId")),
            "Notifications for one user, kept in INVITES_NOTIFY (PROTOCOL.md, Notifications).",
        ),
        (
            "notifyLive",
            format!("{}.live", subjects.notify(&placeholder("userId"))),
            "Live-only notifications (offline_enabled false): not kept.",
        ),
        (
            "push",
            subjects.push(&placeholder("userId")),
            "Hand-off to a push gateway.",
        ),
        (
            "sms",
            subjects.sms(&placeholder("userId")),
            "Hand-off to an SMS gateway (reminders with remind_type sms).",
        ),
    ] {
        doc.channel(
            channel,
            json!(template(&subject, &["userId"])),
            what,
            &["Notification"],
            Some(user.clone()),
        );
        doc.send(&format!("send{}", upper_first(channel)), channel, &["Notification"]);
    }

    doc.message(
        "ExportProgress",
        "An export's progress",
        payloads::export_progress(),
        None,
    );
    let progress = template(&subjects.export_progress(&placeholder("exportId")), &["exportId"]);
    doc.channel(
        "exportProgress",
        json!(progress),
        "An export's progress, kept in INVITES_EXPORTS (the last message per export).",
        &["ExportProgress"],
        Some(json!({"exportId": {"description": "the export"}})),
    );
    doc.send("sendExportProgress", "exportProgress", &["ExportProgress"]);

    doc.message("Status", "A role's position report", payloads::status(), None);
    let status = template(&subjects.status("name"), &["name"]);
    doc.channel(
        "status",
        json!(status),
        "Each projection reports here every 500 ms and when it moves (PROTOCOL.md, Projection positions).",
        &["Status"],
        Some(json!({"name": {"description": "the projection (views, notifier, …) or standby-<holder>"}})),
    );
    doc.send("sendStatus", "status", &["Status"]);

    let schemas = generator.take_definitions(true);
    json!({
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "invitebus",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The NATS API of invitebus, an event-sourced invitation backend. Generated from the code; PROTOCOL.md is the prose. Subjects start with the prefix this server runs with.",
        },
        "defaultContentType": "application/json",
        "servers": {"local": {"host": "127.0.0.1:4222", "protocol": "nats", "description": "NATS_URL; the default of `invitebus serve`"}},
        "channels": doc.channels,
        "operations": doc.operations,
        "components": {"schemas": schemas, "messages": doc.messages},
    })
}

/// The channels, operations and messages, as they are added.
#[derive(Default)]
struct Doc {
    channels: Map<String, Value>,
    operations: Map<String, Value>,
    messages: Map<String, Value>,
}

impl Doc {
    fn message(&mut self, name: &str, title: &str, payload: Value, headers: Option<Value>) {
        let mut m = json!({"name": name, "title": title, "contentType": "application/json", "payload": payload});
        if let Some(h) = headers {
            m["headers"] = h;
        }
        self.messages.insert(name.to_string(), m);
    }

    fn channel(&mut self, name: &str, address: Value, description: &str, messages: &[&str], parameters: Option<Value>) {
        let messages: Map<String, Value> = messages
            .iter()
            .map(|m| (m.to_string(), json!({"$ref": format!("#/components/messages/{m}")})))
            .collect();
        let mut c = json!({"address": address, "description": description, "messages": messages});
        if let Some(p) = parameters {
            c["parameters"] = p;
        }
        self.channels.insert(name.to_string(), c);
    }

    /// invitebus receives `messages` on `channel` and answers on the reply subject.
    fn receive(&mut self, name: &str, channel: &str, messages: &[&str], queue: Option<&str>) {
        let mut op = self.operation("receive", channel, messages);
        op["reply"] =
            json!({"channel": {"$ref": "#/channels/reply"}, "messages": [{"$ref": "#/channels/reply/messages/Reply"}]});
        if let Some(q) = queue {
            op["bindings"] = json!({"nats": {"queue": q, "bindingVersion": NATS_BINDING}});
        }
        self.operations.insert(name.to_string(), op);
    }

    fn send(&mut self, name: &str, channel: &str, messages: &[&str]) {
        let op = self.operation("send", channel, messages);
        self.operations.insert(name.to_string(), op);
    }

    fn operation(&self, action: &str, channel: &str, messages: &[&str]) -> Value {
        let refs: Vec<Value> = messages
            .iter()
            .map(|m| json!({"$ref": format!("#/channels/{channel}/messages/{m}")}))
            .collect();
        json!({"action": action, "channel": {"$ref": format!("#/channels/{channel}")}, "messages": refs})
    }
}

/// An id standing for a parameter in a subject made by [`Subjects`].
fn placeholder(name: &str) -> Id {
    Id::parse(name).expect("parameter names are ids")
}

/// `subject` with each token named in `params` written as `{param}` (AsyncAPI's address syntax).
fn template(subject: &str, params: &[&str]) -> String {
    subject
        .split('.')
        .map(|t| {
            if params.contains(&t) {
                format!("{{{t}}}")
            } else {
                t.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
