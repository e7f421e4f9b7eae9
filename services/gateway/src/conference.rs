//! Seed 000, conference PC-member invitations: `{"code":0,"data":…}` on HTTP 200, codes 8 (not
//! signed in), 9 (incomplete request), 10 (not the invitee); statuses `init`/`accept`/`reject`.

use crate::bus::{json_object, trimmed, Authed, Caller, GatewayConfig};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use invitebus_events::{ProtocolError, RecordStatus};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The role of a seed 000 invitation: its texts say "becoming pcmember".
const ROLE: &str = "pcmember";

pub fn routes() -> Router<Arc<GatewayConfig>> {
    Router::new()
        .route("/api/invitation/createInvitation", post(create))
        .route("/api/invitation/received", post(received))
        .route("/api/invitation/sent", post(sent))
        .route("/approve/{iid}", post(approve))
        .route("/reject/{iid}", post(reject))
        .route("/api/invitation/check", get(check))
}

/// Seed 000's envelope; its errors carry `data` as the reason, plus our code and message.
fn answer(result: Result<Value, ProtocolError>) -> Response {
    match result {
        Ok(data) => Json(json!({"code": 0, "data": data})).into_response(),
        Err(e) => failure(e),
    }
}

/// Seed 000's error envelope: `data` is the reason, plus our code and message.
pub fn failure(e: ProtocolError) -> Response {
    let e = trimmed(e);
    let code = e.code.seed_000_code();
    let reason = match code {
        8 => "没有登录",
        9 => "发送信息不完整",
        10 => "无权操作",
        _ => "操作失败",
    };
    let body = json!({"code": code, "data": reason, "error": e.code, "message": e.message, "field": e.field});
    Json(body).into_response()
}

/// A string field that seed 000's clients may also send as a number (`confId: 1`).
fn text(body: &Map<String, Value>, field: &str) -> Result<String, ProtocolError> {
    match body.get(field) {
        None | Some(Value::Null) => Err(ProtocolError::missing(field)),
        Some(Value::String(s)) if s.is_empty() => Err(ProtocolError::missing(field)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(_) => Err(ProtocolError::invalid(field, "not a string")),
    }
}

async fn create(State(cfg): State<Arc<GatewayConfig>>, Authed(caller): Authed, body: Bytes) -> Response {
    let run = async {
        let caller = caller?;
        let body = json_object(&body)?;
        let (invitee, conf) = (text(&body, "invitee")?, text(&body, "confId")?);
        let mut fields = json!({"resource_id": conf, "invitee": invitee, "role": ROLE});
        if let Some(message) = body.get("message") {
            fields["message"] = message.clone();
        }
        cfg.command(&caller, "CreateInvite", fields).await?;
        Ok(Value::Null)
    };
    answer(run.await)
}

/// The filter of a list request: `{"data":{"status":…}}`, `{"Data":{…}}` or `{"status":…}`.
fn filter(body: &Map<String, Value>) -> Value {
    let inner = body.get("data").or_else(|| body.get("Data")).and_then(Value::as_object);
    match inner.unwrap_or(body).get("status") {
        Some(Value::String(s)) => json!({"status": s}),
        _ => json!({}),
    }
}

fn seed_status(status: &Value) -> Value {
    match status.as_str().and_then(RecordStatus::parse) {
        Some(s) => json!(s.seed_000_status()),
        None => status.clone(),
    }
}

async fn received(State(cfg): State<Arc<GatewayConfig>>, Authed(caller): Authed, body: Bytes) -> Response {
    let run = async {
        let caller = caller?;
        let filter = filter(&json_object(&body)?);
        let items = cfg.every_item(&caller, "received", filter).await?;
        let list = items.into_iter().map(|mut item| {
            item["_id"] = item["invite_id"].clone();
            item["invitee"] = json!(caller.user);
            item["confId"] = item["resource_id"].clone();
            item["status"] = seed_status(&item["status"]);
            item["conference_info"] = item["resource_info"].clone();
            item
        });
        Ok(Value::Array(list.collect()))
    };
    answer(run.await)
}

/// One item per (invite, invitee), as seed 000 has one invitee per invitation; `user_info` is
/// the invitee's profile.
async fn sent(State(cfg): State<Arc<GatewayConfig>>, Authed(caller): Authed, body: Bytes) -> Response {
    let run = async {
        let caller = caller?;
        let filter = filter(&json_object(&body)?);
        let wanted = filter["status"]
            .as_str()
            .and_then(|s| RecordStatus::parse(s).map(|st| st.seed_000_status()).or(Some(s)))
            .map(str::to_string);
        let items = cfg.every_item(&caller, "sent", filter).await?;
        let mut list = Vec::new();
        for invite in items {
            for invitee in invite["invitees"].as_array().into_iter().flatten() {
                let status = seed_status(&invitee["status"]);
                if wanted.as_deref().is_some_and(|w| status != w) {
                    continue;
                }
                let mut item = invite.clone();
                let object = item.as_object_mut().expect("an invite is an object");
                object.remove("invitees");
                item["_id"] = invite["invite_id"].clone();
                item["invitee"] = invitee["user_id"].clone();
                item["confId"] = invite["resource_id"].clone();
                item["invite_status"] = invite["status"].clone();
                item["status"] = status;
                item["user_info"] = invitee["user_info"].clone();
                item["conference_info"] = invite["resource_info"].clone();
                list.push(item);
            }
        }
        Ok(Value::Array(list))
    };
    answer(run.await)
}

async fn answer_invite(
    cfg: &GatewayConfig,
    caller: Result<Caller, ProtocolError>,
    command: &str,
    iid: &str,
) -> Response {
    let run = async {
        let caller = caller?;
        cfg.command(&caller, command, json!({"invite_id": iid})).await?;
        Ok(Value::Null)
    };
    answer(run.await)
}

async fn approve(State(cfg): State<Arc<GatewayConfig>>, Path(iid): Path<String>, Authed(caller): Authed) -> Response {
    answer_invite(&cfg, caller, "AcceptInvite", &iid).await
}

async fn reject(State(cfg): State<Arc<GatewayConfig>>, Path(iid): Path<String>, Authed(caller): Authed) -> Response {
    answer_invite(&cfg, caller, "RejectInvite", &iid).await
}

/// The heartbeat for consul: 200 while invitebus answers on the bus, 503 otherwise. No sign-in.
async fn check(State(cfg): State<Arc<GatewayConfig>>) -> Response {
    let reply = cfg.request(cfg.subjects.health(), b"{}".to_vec()).await;
    match reply.into_result() {
        Ok(health) => Json(json!({"code": 0, "data": health})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"code": 1, "data": e.message})),
        )
            .into_response(),
    }
}
