//! Seed 001, enterprise meeting invitations: `/openapi/workbench/meetinginvite/*`, bodies with
//! millisecond timestamps, `{"status":0,"data":…}` on HTTP 200, 4003 for a missing or expired token.
//! A meeting is a resource of kind `meeting` made with its invite in one append (StartCall).

use crate::bus::{json_object, trimmed, Authed, Caller, GatewayConfig};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use invitebus_events::{ErrorCode, ProtocolError, RecordStatus};
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub fn routes() -> Router<Arc<GatewayConfig>> {
    Router::new().route("/openapi/workbench/meetinginvite/{action}", post(action))
}

fn answer(result: Result<Option<Value>, ProtocolError>) -> Response {
    match result {
        Ok(Some(data)) => Json(json!({"status": 0, "data": data})).into_response(),
        Ok(None) => Json(json!({"status": 0})).into_response(),
        Err(e) => failure(e),
    }
}

/// Seed 001's error envelope: its `status` number and a message.
pub fn failure(e: ProtocolError) -> Response {
    let e = trimmed(e);
    let message = match e.code {
        ErrorCode::Unauthenticated => "accessToken超时，请重新获取".to_string(),
        _ => e.message.clone(),
    };
    Json(json!({"status": e.code.seed_001_status(), "message": message, "error": e.code, "field": e.field}))
        .into_response()
}

async fn action(
    State(cfg): State<Arc<GatewayConfig>>,
    Path(action): Path<String>,
    Authed(caller): Authed,
    body: Bytes,
) -> Response {
    let run = async {
        let caller = caller?;
        let body = json_object(&body)?;
        match body.get("requesterUid") {
            None | Some(Value::Null) => return Err(ProtocolError::missing("requesterUid")),
            Some(uid) if uid.as_str() != Some(caller.user.as_str()) => {
                return Err(ProtocolError::forbidden("requesterUid is not the token's user"))
            }
            Some(_) => {}
        }
        match action.as_str() {
            "create" => create(&cfg, &caller, &body).await.map(Some),
            "cancel" => simple(&cfg, &caller, &body, "CancelInvite").await,
            "delete" => simple(&cfg, &caller, &body, "HideInvite").await,
            "update" => update(&cfg, &caller, &body).await,
            "detail" => detail(&cfg, &caller, &body).await.map(Some),
            other => Err(ProtocolError::invalid_command(format!(
                "no meetinginvite action `{other}`"
            ))),
        }
    };
    answer(run.await)
}

/// A number that seed 001's clients may send as a string (`"beginTime": "1700000000000"`).
fn number(object: &Map<String, Value>, field: &str, path: &str) -> Result<i64, ProtocolError> {
    match object.get(field) {
        None | Some(Value::Null) => Err(ProtocolError::missing(path)),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| ProtocolError::invalid(path, "not an integer")),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| ProtocolError::invalid(path, "not an integer")),
        Some(_) => Err(ProtocolError::invalid(path, "not a number")),
    }
}

fn string(object: &Map<String, Value>, field: &str, path: &str) -> Result<String, ProtocolError> {
    match object.get(field) {
        None | Some(Value::Null) => Err(ProtocolError::missing(path)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(_) => Err(ProtocolError::invalid(path, "not a string")),
    }
}

fn millis_to_rfc3339(ms: i64, path: &str) -> Result<String, ProtocolError> {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .ok_or_else(|| ProtocolError::invalid(path, "not a time"))
}

fn rfc3339_to_millis(value: &Value) -> Value {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| json!(t.timestamp_millis()))
        .unwrap_or(Value::Null)
}

/// A seed 001 `detail`, read into our detail, its members and its creation time.
struct Meeting {
    detail: Value,
    content: String,
    members: Vec<(String, String)>,
    create_time: i64,
}

fn meeting(body: &Map<String, Value>) -> Result<Meeting, ProtocolError> {
    let d = match body.get("detail") {
        Some(Value::Object(d)) => d,
        None | Some(Value::Null) => return Err(ProtocolError::missing("detail")),
        Some(_) => return Err(ProtocolError::invalid("detail", "not an object")),
    };
    let begin = number(d, "beginTime", "detail.beginTime")?;
    let end = number(d, "endTime", "detail.endTime")?;
    if end < begin {
        return Err(ProtocolError::invalid("detail.endTime", "before beginTime"));
    }
    let remind_type = match number(d, "remindType", "detail.remindType")? {
        0 => "in_app",
        1 => "sms",
        _ => return Err(ProtocolError::invalid("detail.remindType", "0 (in app) or 1 (sms)")),
    };
    let remind_min = number(d, "remindMin", "detail.remindMin")?;
    let content = string(d, "content", "detail.content")?;
    let mut members = Vec::new();
    for (i, m) in d
        .get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let m = m
            .as_object()
            .ok_or_else(|| ProtocolError::invalid(&format!("detail.members[{i}]"), "not an object"))?;
        let uid = string(m, "uid", &format!("detail.members[{i}].uid"))?;
        let name = string(m, "name", &format!("detail.members[{i}].name")).unwrap_or_else(|_| uid.clone());
        members.push((uid, name));
    }
    Ok(Meeting {
        detail: json!({
            "content": content,
            "address": string(d, "address", "detail.address")?,
            "begin_time": millis_to_rfc3339(begin, "detail.beginTime")?,
            "end_time": millis_to_rfc3339(end, "detail.endTime")?,
            "remind_min": remind_min,
            "remind_type": remind_type,
        }),
        content,
        members,
        create_time: number(d, "createTime", "detail.createTime")?,
    })
}

fn invite_id(body: &Map<String, Value>) -> Result<String, ProtocolError> {
    string(body, "meetingInviteId", "meetingInviteId")
}

/// The meeting and its invite in one append; the members' names and the creation time ride in
/// `ext`, as invitebus keeps profiles only for users who upsert their own.
async fn create(cfg: &GatewayConfig, caller: &Caller, body: &Map<String, Value>) -> Result<Value, ProtocolError> {
    let m = meeting(body)?;
    let invitees: Vec<&String> = m
        .members
        .iter()
        .map(|(uid, _)| uid)
        .filter(|u| **u != caller.user)
        .collect();
    if invitees.is_empty() {
        return Err(ProtocolError::missing("detail.members"));
    }
    let name: String = m.content.chars().take(200).collect();
    let members: Vec<Value> = m
        .members
        .iter()
        .map(|(uid, name)| json!({"uid": uid, "name": name}))
        .collect();
    let fields = json!({
        "kind": "meeting",
        "name": if name.is_empty() { "meeting".to_string() } else { name },
        "invitees": invitees,
        "message": m.content,
        "detail": m.detail,
        "ext": {"requesterName": body.get("requesterName"), "createTime": m.create_time, "members": members},
    });
    let done = cfg.command(caller, "StartCall", fields).await?;
    Ok(json!({"meetingInviteId": done.data["invite_id"]}))
}

async fn simple(
    cfg: &GatewayConfig,
    caller: &Caller,
    body: &Map<String, Value>,
    command: &str,
) -> Result<Option<Value>, ProtocolError> {
    cfg.command(caller, command, json!({"invite_id": invite_id(body)?}))
        .await?;
    Ok(None)
}

/// The new detail, and the members added and removed against the invite as the log has it now.
async fn update(
    cfg: &GatewayConfig,
    caller: &Caller,
    body: &Map<String, Value>,
) -> Result<Option<Value>, ProtocolError> {
    let id = invite_id(body)?;
    let m = meeting(body)?;
    let state = cfg
        .query(caller, "state", json!({"stream_id": format!("invite-{id}")}))
        .await?;
    if state["version"].as_u64().unwrap_or(0) == 0 {
        return Err(ProtocolError::not_found("meetingInviteId", &id));
    }
    let current: Vec<String> = state["state"]["records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["invitee"].as_str().map(str::to_string))
        .collect();
    let wanted: Vec<&String> = m
        .members
        .iter()
        .map(|(uid, _)| uid)
        .filter(|u| **u != caller.user)
        .collect();
    let add: Vec<&&String> = wanted.iter().filter(|u| !current.contains(u)).collect();
    let remove: Vec<&String> = current.iter().filter(|u| !wanted.contains(u)).collect();
    let mut fields = json!({"invite_id": id, "detail": m.detail, "message": m.content});
    if !add.is_empty() {
        fields["add_invitees"] = json!(add);
    }
    if !remove.is_empty() {
        fields["remove_invitees"] = json!(remove);
    }
    cfg.command(caller, "UpdateInvite", fields).await?;
    Ok(None)
}

/// Seed 001's detail: creator, pushStatus, the meeting with millisecond times, and each member's
/// msgStatus, whether they are still reminded, and a tentative member's proposal.
async fn detail(cfg: &GatewayConfig, caller: &Caller, body: &Map<String, Value>) -> Result<Value, ProtocolError> {
    let id = invite_id(body)?;
    let invite = cfg.fresh_query(caller, "invite", json!({"invite_id": id})).await?;
    let ext = &invite["ext"];
    let ext_name = |uid: &str| {
        ext["members"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["uid"] == uid)
            .map(|m| m["name"].clone())
    };
    let name_of = |uid: &str, info: &Value| {
        ext_name(uid)
            .or_else(|| info["name"].as_str().map(|n| json!(n)))
            .unwrap_or(json!(uid))
    };
    let members: Vec<Value> = invite["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let uid = m["user_id"].as_str().unwrap_or_default();
            let status = m["status"].as_str().and_then(RecordStatus::parse);
            let mut member = json!({
                "uid": uid,
                "name": name_of(uid, &m["user_info"]),
                "msgStatus": status.map(RecordStatus::seed_001_msg_status),
                "remind": status.is_some_and(RecordStatus::reminded),
                "status": m["status"],
            });
            // A tentative answer's proposal, in the seed's millisecond times (msgStatus says 1).
            if status == Some(RecordStatus::Tentative) {
                let p = &m["proposal"];
                member["proposal"] = json!({
                    "beginTime": rfc3339_to_millis(&p["begin_time"]),
                    "endTime": rfc3339_to_millis(&p["end_time"]),
                    "comment": p["comment"],
                });
            }
            member
        })
        .collect();
    let d = &invite["detail"];
    let inviter = invite["inviter"].as_str().unwrap_or_default();
    let creater_name = match &ext["requesterName"] {
        Value::String(n) => json!(n),
        _ => name_of(inviter, &invite["inviter_info"]),
    };
    let create_time = match &ext["createTime"] {
        Value::Number(n) => json!(n),
        _ => rfc3339_to_millis(&invite["created_at"]),
    };
    Ok(json!({
        "meetingInviteId": invite["invite_id"],
        "createrId": inviter,
        "createrName": creater_name,
        "pushStatus": invite["push_status"],
        "status": invite["status"],
        "detail": {
            "createTime": create_time,
            "content": d["content"],
            "address": d["address"],
            "beginTime": rfc3339_to_millis(&d["begin_time"]),
            "endTime": rfc3339_to_millis(&d["end_time"]),
            "remindMin": d["remind_min"],
            "remindType": if d["remind_type"] == "sms" { json!(1) } else { json!(0) },
            "members": members,
        },
    }))
}
