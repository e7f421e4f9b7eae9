//! The AsyncAPI document as a user of it would check it: valid against the official AsyncAPI
//! 3.0.0 schema (vendored, `spec/README.md`), naming every command, query and event type the
//! code has (enumerated from the code's own tables), and describing what invitebus really sends.

use invitebus_asyncapi::document;
use invitebus_events::query::QUERIES;
use invitebus_events::subject::Subjects;
use invitebus_events::{Command, CommandRequest, Envelope, Event};
use serde_json::{json, Value};

const ASYNCAPI_3_0_0: &str = include_str!("../spec/asyncapi-3.0.0-without-id.json");

fn doc() -> Value {
    document(&Subjects::new("invites"))
}

/// Every error `instance` has against `schema`, as text.
fn errors(schema: &Value, instance: &Value) -> Vec<String> {
    let validator = jsonschema::draft7::new(schema).expect("a valid schema");
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Checks `instance` against the payload of the document's message `message` (its `$ref`s
/// resolved inside the document).
fn check_payload(doc: &Value, message: &str, instance: &Value) -> Vec<String> {
    let schema = json!({
        "$ref": format!("#/components/messages/{message}/payload"),
        "components": doc["components"],
    });
    errors(&schema, instance)
}

#[test]
fn the_document_is_valid_asyncapi_3() {
    let spec: Value = serde_json::from_str(ASYNCAPI_3_0_0).unwrap();
    let doc = doc();
    assert_eq!(doc["asyncapi"], "3.0.0");
    let found = errors(&spec, &doc);
    assert!(found.is_empty(), "{found:#?}");

    // The check is real: a document with an operation of an unknown action is refused.
    let mut broken = doc.clone();
    broken["operations"]["receiveUpsertUser"]["action"] = json!("publish");
    assert!(!errors(&spec, &broken).is_empty());
}

#[test]
fn every_command_query_and_event_of_the_code_is_in_it() {
    let doc = doc();
    for name in Command::NAMES {
        let channel = &doc["channels"][format!("cmd.{name}")];
        assert_eq!(channel["address"], format!("invites.cmd.{name}"), "{name}");
        let op = &doc["operations"][format!("receive{name}")];
        assert_eq!(op["action"], "receive", "{name}");
        assert_eq!(op["bindings"]["nats"]["queue"], "invitebus-commands", "{name}");
        assert!(op["reply"].is_object(), "{name} has a reply");
        let fields = &doc["components"]["messages"][format!("command.{name}")]["payload"]["allOf"][1]["$ref"];
        let schema = fields
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .unwrap_or_else(|| panic!("{name}: {fields}"));
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{name}'s fields ({schema})"
        );
    }
    for name in QUERIES {
        assert_eq!(
            doc["channels"][format!("q.{name}")]["address"],
            format!("invites.q.{name}")
        );
        let properties = doc["components"]["messages"][format!("query.{name}")]["payload"]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{name}"))
            .clone();
        assert!(
            properties.len() > 3,
            "{name} has fields of its own beside actor, roles, min_position"
        );
    }
    let events = doc["channels"]["events"]["messages"].as_object().unwrap();
    assert_eq!(events.len(), Event::TYPES.len());
    for ty in Event::TYPES {
        assert!(events.contains_key(&format!("event.{ty}")), "{ty}");
        let data =
            &doc["components"]["messages"][format!("event.{ty}")]["payload"]["allOf"][1]["properties"]["data"]["$ref"];
        let schema = data
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .unwrap_or_else(|| panic!("{ty}: {data}"));
        assert!(
            doc["components"]["schemas"][schema]["properties"].is_object(),
            "{ty}'s data ({schema})"
        );
    }
    assert_eq!(
        doc["channels"]["events"]["address"],
        "invites.evt.{eventType}.{streamId}"
    );
    assert_eq!(doc["channels"]["notify"]["address"], "invites.notify.{userId}");
    assert_eq!(
        doc["channels"]["exportProgress"]["address"],
        "invites.export.{exportId}.progress"
    );
    // The prefix is a setting, and the document follows it.
    let other = document(&Subjects::new("acme"));
    assert_eq!(
        other["channels"]["cmd.AcceptInvite"]["address"],
        "acme.cmd.AcceptInvite"
    );
}

#[test]
fn payloads_describe_what_invitebus_takes_and_sends() {
    let doc = doc();
    let bodies = [
        (
            "UpsertUser",
            json!({"actor": "fang", "user_id": "fang", "name": "Fang", "phone": "+86 138"}),
        ),
        (
            "CreateInvite",
            json!({"actor": "xuan", "resource_id": "conf", "invitees": ["fang", "li"], "message": "hi",
                "detail": {"content": "PC meeting", "begin_time": "2026-12-10T09:00:00Z", "remind_min": 15, "remind_type": "sms"},
                "expires_in": 3600, "command_id": "c1"}),
        ),
        (
            "StartCall",
            json!({"actor": "xuan", "invitee": "fang", "name": "standup", "capacity": 4}),
        ),
        (
            "AcceptInvite",
            json!({"actor": "fang", "invite_id": "i1", "auto_join": false}),
        ),
        (
            "RegisterWebhook",
            json!({"actor": "root", "roles": ["admin"], "webhook_id": "w1", "url": "https://example.com/h", "events": ["*"], "secret": "whsec_0123456789abcdef"}),
        ),
    ];
    for (name, body) in bodies {
        let request = CommandRequest::decode(name, body.to_string().as_bytes()).unwrap();
        let sent = request.to_body();
        let found = check_payload(&doc, &format!("command.{name}"), &sent);
        assert!(found.is_empty(), "{name}: {found:#?}");
    }
    // A command without its required field is not what the document describes.
    let found = check_payload(&doc, "command.AcceptInvite", &json!({"actor": "fang"}));
    assert!(!found.is_empty());

    let data = json!({"at": "2026-12-07T01:00:00Z", "invite_id": "i1", "invitee": "fang", "inviter": "xuan",
        "resource_id": "conf", "role": "member", "status": "accepted"});
    let event = Event::decode("InviteAccepted", 1, data).unwrap();
    let envelope = Envelope {
        position: 7,
        stream_id: "invite-i1".into(),
        stream_type: "invite".into(),
        version: 2,
        event_type: event.event_type().into(),
        schema: 1,
        recorded_at: chrono_now(),
        actor: "fang".into(),
        command_id: Some("c2".into()),
        correlation_id: None,
        causation_id: None,
        command_type: Some("AcceptInvite".into()),
        command_digest: None,
        traceparent: None,
        data: event.data(),
        prev_hash: "00".repeat(32),
        hash: "11".repeat(32),
    };
    let sent = serde_json::to_value(&envelope).unwrap();
    let found = check_payload(&doc, "event.InviteAccepted", &sent);
    assert!(found.is_empty(), "{found:#?}");
    // A notification as the notifier writes one (texts.rs: absent ids are null).
    let notification = json!({"id": "9-li", "user_id": "li", "kind": "export_ready", "text": "Your export is ready",
        "invite_id": null, "resource_id": null, "from": null, "at": "2026-12-07T01:00:00.123Z", "position": 9, "push": null});
    let found = check_payload(&doc, "Notification", &notification);
    assert!(found.is_empty(), "{found:#?}");
    // The same envelope does not pass as another type's.
    assert!(!check_payload(&doc, "event.MemberJoined", &sent).is_empty());
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-12-07T01:00:00.123Z")
        .unwrap()
        .into()
}
