//! Seed 003, shareable invite codes: `/channels/{channelId}/invites` and `/invites/{code}` with
//! that product's shapes and HTTP statuses (200, 204). Errors carry our `{code, message, field}`.

use crate::bus::{json_object, status_of, trimmed, Authed, Caller, GatewayConfig};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use invitebus_events::ProtocolError;
use serde_json::{json, Value};
use std::sync::Arc;

pub fn routes() -> Router<Arc<GatewayConfig>> {
    Router::new()
        .route("/channels/{channel}/invites", get(list).post(create))
        .route("/invites/{code}", get(show).post(redeem).delete(delete))
}

/// The longest life of a code, in seconds: seed 003's seven days (0 = forever).
pub const MAX_AGE: u64 = 7 * 24 * 3600;

fn answer(result: Result<(StatusCode, Value), ProtocolError>) -> Response {
    match result {
        Ok((StatusCode::NO_CONTENT, _)) => StatusCode::NO_CONTENT.into_response(),
        Ok((status, body)) => (status, Json(body)).into_response(),
        Err(e) => failure(e),
    }
}

/// Seed 003's errors: the error itself, with its HTTP status.
pub fn failure(e: ProtocolError) -> Response {
    (status_of(e.code), Json(json!(trimmed(e)))).into_response()
}

/// Our `code` view in seed 003's shape: the guild is the channel's parent (or the channel itself
/// when it has none), the inviter a user with a username.
pub fn seed_invite(code: &Value) -> Value {
    let resource = &code["resource"];
    let guild = match &code["parent"] {
        Value::Object(p) => {
            json!({"id": p["id"], "name": p["name"], "member_count": null, "icon": null, "icon_url": null})
        }
        _ => json!({"id": resource["id"], "name": resource["name"], "member_count": resource["member_count"],
            "icon": null, "icon_url": null}),
    };
    let inviter = &code["inviter"];
    let username = inviter["name"].as_str().or(inviter["id"].as_str());
    json!({
        "code": code["code"],
        "guild": guild,
        "channel": {"id": resource["id"], "name": resource["name"], "type": 0, "kind": resource["kind"]},
        "inviter": {"id": inviter["id"], "username": username, "name": username, "discriminator": "0000",
            "avatar": null, "avatar_url": null, "type": 0},
        "uses": code["uses"],
        "created_at": code["created_at"],
        "expires_at": code["expires_at"],
        "max_age": code["max_age"],
        "max_uses": code["max_uses"],
        "temporary": code["temporary"],
        "requires_approval": code["requires_approval"],
    })
}

async fn code_view(cfg: &GatewayConfig, caller: &Caller, code: &str, at: Option<u64>) -> Result<Value, ProtocolError> {
    match at {
        Some(position) => {
            cfg.query(caller, "code", json!({"code": code, "min_position": position}))
                .await
        }
        None => cfg.fresh_query(caller, "code", json!({"code": code})).await,
    }
}

async fn list(State(cfg): State<Arc<GatewayConfig>>, Path(channel): Path<String>, Authed(caller): Authed) -> Response {
    let run = async {
        let caller = caller?;
        let items = cfg
            .every_item(&caller, "codes", json!({"resource_id": channel}))
            .await?;
        let items = items.iter().map(seed_invite).collect();
        Ok((StatusCode::OK, Value::Array(items)))
    };
    answer(run.await)
}

async fn create(
    State(cfg): State<Arc<GatewayConfig>>,
    Path(channel): Path<String>,
    Authed(caller): Authed,
    body: Bytes,
) -> Response {
    let run = async {
        let caller = caller?;
        let mut fields = json_object(&body)?;
        for name in ["max_age", "max_uses"] {
            // JSON has one kind of number: `86400.0` is the integer 86400 to any client.
            if let Some(n) = fields
                .get(name)
                .and_then(Value::as_f64)
                .filter(|n| n.fract() == 0.0 && *n >= 0.0)
            {
                if n <= u64::MAX as f64 && fields[name].is_f64() {
                    fields.insert(name.into(), json!(n as u64));
                }
            }
        }
        if let Some(age) = fields.get("max_age").and_then(Value::as_u64) {
            if age > MAX_AGE {
                return Err(ProtocolError::invalid(
                    "max_age",
                    format!("0 (forever) to {MAX_AGE} seconds"),
                ));
            }
        }
        fields.insert("resource_id".into(), json!(channel));
        let done = cfg.command(&caller, "CreateInviteCode", Value::Object(fields)).await?;
        let code = done.data["code"].as_str().unwrap_or_default().to_string();
        Ok((
            StatusCode::OK,
            seed_invite(&code_view(&cfg, &caller, &code, done.position).await?),
        ))
    };
    answer(run.await)
}

async fn show(State(cfg): State<Arc<GatewayConfig>>, Path(code): Path<String>, Authed(caller): Authed) -> Response {
    let run = async {
        let caller = caller?;
        Ok((
            StatusCode::OK,
            seed_invite(&code_view(&cfg, &caller, &code, None).await?),
        ))
    };
    answer(run.await)
}

/// Joins through the code and answers the guild joined, as seed 003 does (also when already in).
/// With an approval code the answer says `pending_approval` and `joined_at` is null.
async fn redeem(State(cfg): State<Arc<GatewayConfig>>, Path(code): Path<String>, Authed(caller): Authed) -> Response {
    let run = async {
        let caller = caller?;
        let view = seed_invite(&code_view(&cfg, &caller, &code, None).await?);
        let done = cfg.command(&caller, "RedeemInviteCode", json!({"code": code})).await?;
        let pending = !done.data["invite_id"].is_null();
        let joined_now = !pending && done.data["already_member"] != true;
        let joined_at = joined_now.then(|| chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        let guild = &view["guild"];
        Ok((
            StatusCode::OK,
            json!({
                "id": guild["id"], "name": guild["name"], "icon": null, "icon_url": null,
                "background": null, "background_url": null, "background_props": null, "description": null,
                "owner_id": null, "position": null, "system_channel_id": view["channel"]["id"],
                "system_channel_flags": 0, "default_message_notifications": 0,
                "joined_at": joined_at, "banned": false,
                "already_member": done.data["already_member"], "pending_approval": pending,
                "invite_id": done.data["invite_id"],
            }),
        ))
    };
    answer(run.await)
}

async fn delete(State(cfg): State<Arc<GatewayConfig>>, Path(code): Path<String>, Authed(caller): Authed) -> Response {
    let run = async {
        let caller = caller?;
        cfg.command(&caller, "DeleteInviteCode", json!({"code": code})).await?;
        Ok((StatusCode::NO_CONTENT, Value::Null))
    };
    answer(run.await)
}
