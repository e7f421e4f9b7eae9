//! `CommandRequest::decode`: every way a body can be refused, with the code and field the
//! protocol names, and `to_body` round-tripping through `decode`.

use invitebus_events::command::{MAX_BODY, MAX_COMMAND_ID, MAX_INJECTED, MAX_INVITEES, MAX_TEXT};
use invitebus_events::ErrorCode::{self, *};
use invitebus_events::{Command, CommandRequest, ProtocolError};
use serde_json::{json, Value};

fn decode(name: &str, body: Value) -> Result<CommandRequest, ProtocolError> {
    CommandRequest::decode(name, body.to_string().as_bytes())
}

/// Decoding must fail with `code` naming `field`.
fn refused(name: &str, body: Value, code: ErrorCode, field: Option<&str>) {
    let err = decode(name, body.clone()).expect_err(&format!("{name} {body} should be refused"));
    assert_eq!(err.code, code, "{name} {body}: {err}");
    assert_eq!(err.field.as_deref(), field, "{name} {body}: {err}");
}

/// Decoding must fail with `invalid_field` naming `field`.
fn invalid(name: &str, body: Value, field: &str) {
    refused(name, body, InvalidField, Some(field));
}

/// Decoding must fail with `missing_field` naming `field`.
fn missing(name: &str, body: Value, field: &str) {
    refused(name, body, MissingField, Some(field));
}

/// `body` with the fields of `extra` added.
fn with(mut body: Value, extra: Value) -> Value {
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    body
}

/// A valid CreateInvite body with `extra` fields.
fn invite(extra: Value) -> Value {
    with(json!({"actor":"xuan","resource_id":"conf","invitee":"fang"}), extra)
}

/// A valid body naming invite `i`, with `extra` fields.
fn on_invite(extra: Value) -> Value {
    with(json!({"actor":"xuan","invite_id":"i"}), extra)
}

/// A valid JoinResource body with `extra` fields.
fn join(extra: Value) -> Value {
    with(json!({"actor":"xuan","resource_id":"conf"}), extra)
}

// ---- invalid_command ----

#[test]
fn a_body_that_is_not_json_is_invalid_command() {
    let bodies: [&[u8]; 4] = [b"{not json", b"", b"\xff\xfe", b"{\"actor\":\"xuan\""];
    for body in bodies {
        let err = CommandRequest::decode("JoinResource", body).unwrap_err();
        assert_eq!(err.code, InvalidCommand);
    }
}

#[test]
fn a_body_that_is_not_an_object_is_invalid_command() {
    for body in [json!([1]), json!("JoinResource"), json!(42), json!(null)] {
        refused("JoinResource", body, InvalidCommand, None);
    }
}

#[test]
fn an_unknown_command_is_invalid_command() {
    for name in ["DropTables", "joinresource", "", "JoinResource.x"] {
        refused(name, join(json!({})), InvalidCommand, None);
    }
}

#[test]
fn a_body_over_64_kib_is_invalid_command() {
    let big = invite(json!({"message":"x".repeat(MAX_BODY + MAX_INJECTED)}));
    refused("CreateInvite", big, InvalidCommand, None);
    let padded = join(json!({"padding":"x".repeat(MAX_BODY - 100)}));
    assert!(padded.to_string().len() <= MAX_BODY);
    assert!(
        decode("JoinResource", padded).is_ok(),
        "a body within the limit decodes"
    );
}

// ---- unauthenticated ----

#[test]
fn a_missing_actor_is_unauthenticated() {
    let no_actor = json!({"resource_id":"conf"});
    refused("JoinResource", no_actor, Unauthenticated, Some("actor"));
    let null_actor = join(json!({"actor":null}));
    refused("JoinResource", null_actor, Unauthenticated, Some("actor"));
}

#[test]
fn an_actor_that_is_not_an_id_is_invalid_field() {
    invalid("JoinResource", join(json!({"actor":"x.y"})), "actor");
    invalid("JoinResource", join(json!({"actor":7})), "actor");
}

// ---- missing_field ----

#[test]
fn a_missing_required_field_is_missing_field_naming_it() {
    missing("JoinResource", json!({"actor":"xuan"}), "resource_id");
    missing("AcceptInvite", json!({"actor":"xuan"}), "invite_id");
    missing("RedeemInviteCode", json!({"actor":"xuan"}), "code");
    missing("UpsertUser", json!({"actor":"xuan","user_id":"xuan"}), "name");
    let resource = json!({"actor":"xuan","resource_id":"r","name":"R"});
    missing("RegisterResource", resource, "kind");
    missing("CreateInvite", json!({"actor":"xuan","invitee":"fang"}), "resource_id");
    missing("CompleteExport", json!({"actor":"system","export_id":"e"}), "file_url");
}

#[test]
fn an_invite_without_invitee_or_invitees_is_missing_invitees() {
    missing("CreateInvite", join(json!({})), "invitees");
    missing("StartCall", json!({"actor":"xuan"}), "invitees");
}

// ---- invalid_field: types ----

#[test]
fn a_field_of_the_wrong_type_is_invalid_field_naming_it() {
    invalid("AcceptInvite", on_invite(json!({"invite_id":5})), "invite_id");
    invalid("AcceptInvite", on_invite(json!({"auto_join":"yes"})), "auto_join");
    invalid("CreateInvite", invite(json!({"expires_in":"soon"})), "expires_in");
    invalid("CreateInvite", join(json!({"invitees":"fang"})), "invitees");
    invalid("JoinResource", join(json!({"roles":"admin"})), "roles");
    invalid("JoinResource", join(json!({"expected_version":-1})), "expected_version");
    let resource = |capacity: Value| json!({"actor":"x","resource_id":"r","kind":"k","name":"R","capacity":capacity});
    invalid("RegisterResource", resource(json!("ten")), "capacity");
    invalid("RegisterResource", resource(json!(-1)), "capacity");
}

#[test]
fn a_nested_field_of_the_wrong_type_is_named_by_its_path() {
    let body = invite(json!({"detail":{"remind_min":"ten"}}));
    invalid("CreateInvite", body, "detail.remind_min");
    let body = invite(json!({"detail":{"remind_type":"pigeon"}}));
    invalid("CreateInvite", body, "detail.remind_type");
}

// ---- invalid_field: ids ----

#[test]
fn ids_breaking_the_id_rule_are_invalid_field() {
    let long = "a".repeat(65);
    for bad in ["a.b", "a*", ">", "a b", "", "é", long.as_str()] {
        invalid("JoinResource", join(json!({"resource_id":bad})), "resource_id");
        invalid("AcceptInvite", on_invite(json!({"invite_id":bad})), "invite_id");
        invalid("RedeemInviteCode", json!({"actor":"xuan","code":bad}), "code");
        invalid("CreateInvite", invite(json!({"invitee":bad})), "invitee");
        invalid("CreateInvite", invite(json!({"invite_id":bad})), "invite_id");
    }
}

#[test]
fn an_id_of_64_characters_is_valid() {
    let id = "a".repeat(64);
    assert!(decode("JoinResource", json!({"actor":id,"resource_id":id})).is_ok());
}

#[test]
fn a_bad_id_inside_invitees_is_invalid_field_on_invitees() {
    let body = join(json!({"invitees":["fang","li.x"]}));
    let err = decode("CreateInvite", body).unwrap_err();
    assert_eq!(err.code, InvalidField);
    let field = err.field.as_deref().unwrap_or("");
    assert!(field.starts_with("invitees"), "field: {field:?}");
}

// ---- invalid_field: limits ----

#[test]
fn more_than_500_invitees_is_invalid_field() {
    let ids = |n: usize| (0..n).map(|i| format!("u{i}")).collect::<Vec<_>>();
    let body = |n| join(json!({"invitees":ids(n)}));
    assert!(decode("CreateInvite", body(MAX_INVITEES)).is_ok());
    invalid("CreateInvite", body(MAX_INVITEES + 1), "invitees");
    let add = on_invite(json!({"add_invitees":ids(MAX_INVITEES + 1)}));
    invalid("UpdateInvite", add, "add_invitees");
}

#[test]
fn an_empty_invitees_list_is_invalid_field() {
    invalid("CreateInvite", join(json!({"invitees":[]})), "invitees");
}

#[test]
fn duplicate_invitees_are_invalid_field() {
    let body = join(json!({"invitees":["fang","li","fang"]}));
    invalid("CreateInvite", body, "invitees");
    let body = on_invite(json!({"add_invitees":["li","li"]}));
    invalid("UpdateInvite", body, "add_invitees");
    let body = on_invite(json!({"remove_invitees":["li","li"]}));
    invalid("UpdateInvite", body, "remove_invitees");
}

#[test]
fn duplicate_invitees_in_resend_are_invalid_field() {
    let body = on_invite(json!({"invitees":["fang","fang"]}));
    invalid("ResendInvite", body, "invitees");
}

#[test]
fn both_invitee_and_invitees_is_invalid_field() {
    invalid("CreateInvite", invite(json!({"invitees":["li"]})), "invitee");
}

#[test]
fn a_message_over_4000_characters_is_invalid_field() {
    let text = "m".repeat(MAX_TEXT + 1);
    invalid("CreateInvite", invite(json!({"message":text})), "message");
    invalid("UpdateInvite", on_invite(json!({"message":text})), "message");
    invalid("RejectInvite", on_invite(json!({"reason":text})), "reason");
    invalid("DenyInvite", on_invite(json!({"description":text})), "description");
}

#[test]
fn a_message_of_4000_characters_is_counted_in_characters_not_bytes() {
    let ascii = invite(json!({"message":"m".repeat(MAX_TEXT)}));
    assert!(decode("CreateInvite", ascii).is_ok());
    let accented = invite(json!({"message":"é".repeat(MAX_TEXT)}));
    assert!(decode("CreateInvite", accented).is_ok());
}

#[test]
fn a_name_that_is_blank_or_over_200_characters_is_invalid_field() {
    let user = |name: String| json!({"actor":"xuan","user_id":"xuan","name":name});
    invalid("UpsertUser", user("  ".into()), "name");
    invalid("UpsertUser", user("n".repeat(201)), "name");
    let resource = json!({"actor":"x","resource_id":"r","kind":"k","name":""});
    invalid("RegisterResource", resource, "name");
}

#[test]
fn a_detail_or_ext_over_16_kib_is_invalid_field() {
    let blob = "b".repeat(17 * 1024);
    invalid("CreateInvite", invite(json!({"ext":{"blob":blob}})), "ext");
    invalid("CreateInvite", invite(json!({"detail":{"content":blob}})), "detail");
}

#[test]
fn a_command_id_over_128_characters_is_invalid_field() {
    let body = |id: String| join(json!({"command_id":id}));
    assert!(decode("JoinResource", body("c".repeat(MAX_COMMAND_ID))).is_ok());
    invalid("JoinResource", body("c".repeat(MAX_COMMAND_ID + 1)), "command_id");
    invalid("JoinResource", body(String::new()), "command_id");
}

#[test]
fn a_correlation_id_over_128_characters_is_invalid_field() {
    let body = join(json!({"correlation_id":"c".repeat(129)}));
    invalid("JoinResource", body, "correlation_id");
}

// ---- what decodes ----

#[test]
fn decode_reads_the_common_fields_and_ignores_unknown_ones() {
    let body = json!({"actor":"fang","roles":["admin"],"command_id":"c1","correlation_id":"k",
        "expected_version":3,"invite_id":"inv","auto_join":false,"future_field":{"x":1}});
    let req = decode("AcceptInvite", body).unwrap();
    assert_eq!(req.meta.actor, "fang");
    assert!(req.meta.is_admin());
    assert_eq!(req.meta.command_id.as_deref(), Some("c1"));
    assert_eq!(req.meta.correlation_id.as_deref(), Some("k"));
    assert_eq!(req.meta.expected_version, Some(3));
    let Command::AcceptInvite(c) = &req.command else {
        panic!("not AcceptInvite")
    };
    assert_eq!(c.invite_id, "inv");
    assert_eq!(c.auto_join, Some(false));
}

#[test]
fn to_body_round_trips_through_decode() {
    let cases = json!([
        ["UpsertUser", {"actor":"fang","user_id":"fang","name":"Fang","phone":"1","area":"SH"}],
        ["ForgetUser", {"actor":"fang","user_id":"fang"}],
        ["RegisterResource", {"actor":"x","resource_id":"r","kind":"guild","name":"R","capacity":5,
            "parent_id":"p","info":{"a":[1]}}],
        ["JoinResource", {"actor":"x","resource_id":"r","roles":["admin"],"command_id":"c","expected_version":0}],
        ["LeaveResource", {"actor":"x","resource_id":"r"}],
        ["CreateInvite", {"actor":"xuan","resource_id":"conf","invitees":["fang","li"],"invite_id":"inv",
            "role":"pc","message":"hi","expires_in":60,"requires_approval":true,"offline_enabled":false,
            "detail":{"content":"c","begin_time":"2026-12-01T09:00:00Z","remind_min":15,"remind_type":"in_app"},
            "push":{"title":"t","badge":true,"payload":{"p":1}},"ext":{"e":1},"correlation_id":"corr"}],
        ["CreateInvite", {"actor":"xuan","resource_id":"conf","invitee":"fang"}],
        ["UpdateInvite", {"actor":"x","invite_id":"i","message":"m","expires_in":0,"add_invitees":["a"],
            "remove_invitees":["b"],"detail":{"address":"here"}}],
        ["CancelInvite", {"actor":"x","invite_id":"i"}],
        ["AcceptInvite", {"actor":"x","invite_id":"i","auto_join":false}],
        ["RejectInvite", {"actor":"x","invite_id":"i","reason":"no"}],
        ["ResendInvite", {"actor":"x","invite_id":"i","invitees":["a"]}],
        ["MarkInviteRead", {"actor":"x","invite_id":"i"}],
        ["HideInvite", {"actor":"x","invite_id":"i"}],
        ["ApproveInvite", {"actor":"x","invite_id":"i","invitee":"a","description":"ok"}],
        ["DenyInvite", {"actor":"x","invite_id":"i"}],
        ["ExpireInvite", {"actor":"system","invite_id":"i"}],
        ["RemindInvite", {"actor":"system","invite_id":"i"}],
        ["TentativelyAcceptInvite", {"actor":"x","invite_id":"i","proposed_begin_time":"2030-01-01T09:00:00Z",
            "proposed_end_time":"2030-01-01T10:00:00Z","comment":"later?"}],
        ["PauseInvites", {"actor":"x","resource_id":"r","until":"2030-01-01T00:00:00.500Z"}],
        ["ResumeInvites", {"actor":"x","resource_id":"r"}],
        ["StartCall", {"actor":"x","invitee":"a","resource_id":"r","kind":"channel","name":"Call","capacity":3,
            "invite_id":"i","info":{"i":2}}],
        ["CreateInviteCode", {"actor":"x","resource_id":"r","code":"C","max_age":0,"max_uses":3,"temporary":true,
            "requires_approval":true}],
        ["RedeemInviteCode", {"actor":"x","code":"C"}],
        ["DeleteInviteCode", {"actor":"x","code":"C"}],
        ["RequestExport", {"actor":"x","roles":["admin"],"filters":{"resource_id":"r","status":"pending"},
            "format":"csv"}],
        ["StartExport", {"actor":"system","export_id":"e","count":4}],
        ["CompleteExport", {"actor":"system","export_id":"e","file_url":"u","file_size":9,"count":2}],
        ["FailExport", {"actor":"system","export_id":"e","reason":"disk"}],
        ["RegisterWebhook", {"actor":"x","webhook_id":"w","url":"https://hooks.example.com/in",
            "events":["InviteAccepted","InviteCreated"],"secret":"whsec_0123456789abcdef","resource_id":"r"}],
        ["DeleteWebhook", {"actor":"x","webhook_id":"w"}],
        ["ReplayWebhook", {"actor":"x","webhook_id":"w","from_position":7}]
    ]);
    let names: Vec<&str> = cases
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[0].as_str().unwrap())
        .collect();
    for name in Command::NAMES {
        assert!(names.contains(name), "{name} is not round-tripped");
    }
    for case in cases.as_array().unwrap() {
        let (name, body) = (case[0].as_str().unwrap(), case[1].clone());
        let req = decode(name, body.clone()).unwrap_or_else(|e| panic!("{name} {body}: {e}"));
        assert_eq!(req.command.name(), name);
        let sent = req.to_body();
        let again = decode(name, sent.clone()).unwrap_or_else(|e| panic!("{name} {sent}: {e}"));
        assert_eq!(again, req, "{name}");
    }
}

#[test]
fn a_webhook_names_known_event_types_an_http_url_and_a_long_enough_secret() {
    let body = |extra: serde_json::Value| {
        let mut b = json!({"actor":"x","webhook_id":"w","url":"https://h.example/in","events":["*"],
            "secret":"0123456789abcdef"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    assert!(decode("RegisterWebhook", body(json!({}))).is_ok());
    invalid("RegisterWebhook", body(json!({"url":"ftp://h.example/in"})), "url");
    invalid(
        "RegisterWebhook",
        body(json!({"url":"https://u:p@h.example/in"})),
        "url",
    );
    invalid("RegisterWebhook", body(json!({"events":[]})), "events");
    invalid("RegisterWebhook", body(json!({"events":["NoSuchEvent"]})), "events");
    invalid(
        "RegisterWebhook",
        body(json!({"events":["InviteRead","InviteRead"]})),
        "events",
    );
    invalid("RegisterWebhook", body(json!({"secret":"short"})), "secret");
    invalid("RegisterWebhook", body(json!({"secret":"x".repeat(257)})), "secret");
    invalid(
        "ReplayWebhook",
        json!({"actor":"x","webhook_id":"w","from_position":0}),
        "from_position",
    );
    // A sealed secret is never taken from a body.
    let req = decode("RegisterWebhook", body(json!({"sealed":"aes256gcm:00"}))).unwrap();
    let Command::RegisterWebhook(c) = req.command else {
        panic!("not RegisterWebhook")
    };
    assert_eq!(c.sealed, None);
}
