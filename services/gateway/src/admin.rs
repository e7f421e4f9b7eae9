//! Seed 004, the admin back office: `GET /api/admin/invitations` with its filters and pages (and
//! `export_format` to start an export), `PUT …/{id}/approve|reject`. Envelope `{"code":0,
//! "message":"success","remark":…,"data":…}`; errors `{"code":401|-1,"message","remark","error"}`.

use crate::bus::{json_object, status_of, trimmed, Authed, Caller, GatewayConfig};
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use invitebus_events::query::MAX_PER_PAGE;
use invitebus_events::{ErrorCode, ProtocolError, RecordStatus};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

pub fn routes() -> Router<Arc<GatewayConfig>> {
    Router::new()
        .route("/api/admin/invitations", get(list))
        .route("/api/admin/invitations/{id}/approve", put(approve))
        .route("/api/admin/invitations/{id}/reject", put(reject))
}

/// Seed 004's success envelope.
pub fn ok(remark: &str, data: Value) -> Response {
    Json(json!({"code": 0, "message": "success", "remark": remark, "data": data})).into_response()
}

/// Seed 004's error envelope, with the remarks that product shows for its export limits.
pub fn failure(e: ProtocolError) -> Response {
    let e = trimmed(e);
    let remark = match e.code {
        ErrorCode::Unauthenticated | ErrorCode::Forbidden => "你没有应用导出的权限".to_string(),
        ErrorCode::ExportInProgress => "当前用户已经有导出任务排队或执行,请稍后再试".to_string(),
        ErrorCode::ExportQuotaExceeded => "该用户已经超过当日导出最大次数50,当前任务不允许执行".to_string(),
        _ => e.message.clone(),
    };
    let message = match e.code.seed_004_code() {
        401 => remark.clone(),
        _ => "failure".to_string(),
    };
    let body = json!({"code": e.code.seed_004_code(), "message": message, "remark": remark,
        "error": e.code.seed_004_error(), "reason": e.code, "detail": e.message, "field": e.field});
    (status_of(e.code), Json(body)).into_response()
}

/// A time bound as seed 004's clients send it: RFC 3339, `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD`
/// (UTC; a bare date is its first moment for `_gtq` and its last for `_ltq`).
fn time_bound(field: &str, value: &str, upper: bool) -> Result<String, ProtocolError> {
    let t = if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        t.with_timezone(&Utc)
    } else if let Ok(t) = NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S") {
        t.and_utc()
    } else if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let time = if upper {
            d.and_hms_milli_opt(23, 59, 59, 999)
        } else {
            d.and_hms_opt(0, 0, 0)
        };
        time.expect("a valid time of day").and_utc()
    } else {
        return Err(ProtocolError::invalid(field, "not a time (RFC 3339 or YYYY-MM-DD)"));
    };
    Ok(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// JSON fields by name.
type Fields = Map<String, Value>;

/// The longest phone number a filter takes.
const MAX_PHONE: usize = 32;
/// The export formats seed 004 offers.
const FORMATS: &[&str] = &["xlsx", "csv"];

/// A page number or size within `lo..=hi`, named after the parameter when it is not.
fn bounded(key: &str, value: &str, lo: u64, hi: u64) -> Result<u64, ProtocolError> {
    match value.parse::<u64>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(ProtocolError::invalid(key, format!("a whole number from {lo} to {hi}"))),
    }
}

/// Seed 004's parameters as the `admin` query's filters, and its paging. Each is checked here,
/// so a bad one is named by its own name (the view would name its field, or the body).
fn filters(params: &HashMap<String, String>) -> Result<(Fields, Fields), ProtocolError> {
    let mut filters = Map::new();
    let mut paging = Map::new();
    for (key, value) in params {
        if value.is_empty() {
            continue;
        }
        match key.as_str() {
            "exhibition_id" | "resource_id" => {
                if !invitebus_events::ids::is_valid_id(value) {
                    return Err(ProtocolError::invalid(key, "not an id (1-64 of A-Z a-z 0-9 _ -)"));
                }
                filters.insert("resource_id".into(), json!(value))
            }
            "recommend_user_phone" | "user_phone" => {
                if value.chars().count() > MAX_PHONE {
                    return Err(ProtocolError::invalid(key, format!("at most {MAX_PHONE} characters")));
                }
                let ours = if key == "user_phone" {
                    "invitee_phone"
                } else {
                    "inviter_phone"
                };
                filters.insert(ours.into(), json!(value))
            }
            "created_at_gtq" => filters.insert("created_from".into(), json!(time_bound(key, value, false)?)),
            "created_at_ltq" => filters.insert("created_to".into(), json!(time_bound(key, value, true)?)),
            "approve_status" | "status" => {
                if RecordStatus::parse(value).is_none() {
                    return Err(ProtocolError::invalid(key, "not a record status"));
                }
                filters.insert("status".into(), json!(value))
            }
            "page" => paging.insert(key.clone(), json!(bounded(key, value, 1, u32::MAX as u64)?)),
            "per_page" => paging.insert(key.clone(), json!(bounded(key, value, 1, MAX_PER_PAGE as u64)?)),
            "export_format" if !FORMATS.contains(&value.as_str()) => {
                return Err(ProtocolError::invalid(key, "xlsx or csv"))
            }
            _ => None,
        };
    }
    Ok((filters, paging))
}

/// An error of the `admin` query or RequestExport, its field renamed to seed 004's parameter.
fn in_seed_words(mut e: ProtocolError, params: &HashMap<String, String>) -> ProtocolError {
    let given = |names: &[&'static str]| {
        names
            .iter()
            .copied()
            .find(|n| params.contains_key(*n))
            .unwrap_or(names[0])
    };
    let theirs = match e.field.as_deref().map(|f| f.strip_prefix("filters.").unwrap_or(f)) {
        Some("resource_id") => given(&["exhibition_id", "resource_id"]),
        Some("inviter_phone") => "recommend_user_phone",
        Some("invitee_phone") => "user_phone",
        Some("created_from") => "created_at_gtq",
        Some("created_to") => "created_at_ltq",
        Some("status") => given(&["approve_status", "status"]),
        Some("format") => "export_format",
        _ => return e,
    };
    e.field = Some(theirs.to_string());
    e
}

/// An admin model with seed 004's names beside ours: `id` (`<invite_id>.<invitee>`, what the
/// approve and reject routes take), `approve_status`, `exhibition`.
pub fn seed_model(mut model: Value) -> Value {
    let id = format!(
        "{}.{}",
        model["invite_id"].as_str().unwrap_or_default(),
        model["invitee"].as_str().unwrap_or_default()
    );
    model["id"] = json!(id);
    model["approve_status"] = model["status"].clone();
    model["exhibition"] = json!({"id": model["resource"]["id"], "name": model["resource"]["name"]});
    model
}

async fn list(
    State(cfg): State<Arc<GatewayConfig>>,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
    Authed(caller): Authed,
) -> Response {
    let run = async {
        let caller = caller?;
        let Query(params) = params.map_err(|e| ProtocolError::invalid_command(format!("the query string: {e}")))?;
        let (filters, paging) = filters(&params)?;
        if let Some(format) = params.get("export_format").filter(|f| !f.is_empty()) {
            let fields = json!({"view": "admin", "filters": filters, "format": format});
            let done = cfg
                .command(&caller, "RequestExport", fields)
                .await
                .map_err(|e| in_seed_words(e, &params))?;
            return Ok(ok(
                "导出任务已经加入队列,请耐心等待",
                json!({"uuid": done.data["export_id"]}),
            ));
        }
        let mut fields = filters;
        fields.extend(paging);
        let mut page = cfg
            .fresh_query(&caller, "admin", Value::Object(fields))
            .await
            .map_err(|e| in_seed_words(e, &params))?;
        let models: Vec<Value> = page["models"].as_array().cloned().unwrap_or_default();
        page["models"] = Value::Array(models.into_iter().map(seed_model).collect());
        Ok(ok("成功", page))
    };
    run.await.unwrap_or_else(failure)
}

/// The fields of `ApproveInvite` / `DenyInvite` for record `id` (see [`record_id`]), with its
/// description when there is one (the console's records page sends the same).
pub(crate) fn decision_fields(id: &str, description: Option<&Value>) -> Value {
    let (invite_id, invitee) = record_id(id);
    let mut fields = json!({"invite_id": invite_id});
    if let Some(invitee) = invitee {
        fields["invitee"] = json!(invitee);
    }
    if let Some(description) = description.filter(|d| !d.is_null()) {
        fields["description"] = description.clone();
    }
    fields
}

/// `<invite_id>.<invitee>`, or a bare invite id for an invite with one applicant.
fn record_id(id: &str) -> (String, Option<String>) {
    match id.split_once('.') {
        Some((invite, invitee)) => (invite.to_string(), Some(invitee.to_string())),
        None => (id.to_string(), None),
    }
}

/// The model of one record, read from the `invite` view once it holds `position`.
async fn model(
    cfg: &GatewayConfig,
    caller: &Caller,
    invite_id: &str,
    invitee: Option<&str>,
    position: Option<u64>,
) -> Result<Value, ProtocolError> {
    let invite = cfg
        .query(
            caller,
            "invite",
            json!({"invite_id": invite_id, "min_position": position}),
        )
        .await?;
    let members = invite["members"].as_array().cloned().unwrap_or_default();
    let member = members
        .iter()
        .find(|m| invitee.is_none_or(|i| m["user_id"] == i))
        .ok_or_else(|| ProtocolError::not_found("invitee", invitee.unwrap_or_default()))?;
    let (user, inviter, resource) = (&member["user_info"], &invite["inviter_info"], &invite["resource_info"]);
    Ok(seed_model(json!({
        "invite_id": invite_id,
        "invitee": member["user_id"],
        "created_at": invite["created_at"],
        "status": member["status"],
        "approve_description": member["approve_description"],
        "user": {"id": member["user_id"], "name": user["name"], "phone": user["phone"], "company_name": user["company_name"],
            "department": user["department"], "position": user["position"], "area": user["area"]},
        "recommend_user": {"id": invite["inviter"], "name": inviter["name"], "phone": inviter["phone"]},
        "resource": {"id": invite["resource_id"], "name": resource["name"], "kind": resource["kind"]},
    })))
}

async fn decide(
    cfg: &GatewayConfig,
    caller: Result<Caller, ProtocolError>,
    id: &str,
    body: &[u8],
    command: &str,
) -> Response {
    let run = async {
        let caller = caller?;
        let body = json_object(body)?;
        let (invite_id, invitee) = record_id(id);
        let fields = decision_fields(id, body.get("approve_description"));
        let done = cfg.command(&caller, command, fields).await?;
        let model = model(cfg, &caller, &invite_id, invitee.as_deref(), done.position).await?;
        Ok(ok("成功", model))
    };
    run.await.unwrap_or_else(failure)
}

async fn approve(
    State(cfg): State<Arc<GatewayConfig>>,
    Path(id): Path<String>,
    Authed(caller): Authed,
    body: Bytes,
) -> Response {
    decide(&cfg, caller, &id, &body, "ApproveInvite").await
}

async fn reject(
    State(cfg): State<Arc<GatewayConfig>>,
    Path(id): Path<String>,
    Authed(caller): Authed,
    body: Bytes,
) -> Response {
    decide(&cfg, caller, &id, &body, "DenyInvite").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_parameters_become_filters() {
        let params: HashMap<String, String> = [
            ("exhibition_id", "41296"),
            ("recommend_user_phone", "13918305498"),
            ("created_at_gtq", "2024-10-09"),
            ("created_at_ltq", "2024-10-09"),
            ("approve_status", "applying"),
            ("page", "2"),
            ("user_phone", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (f, p) = filters(&params).unwrap();
        assert_eq!(f["resource_id"], "41296");
        assert_eq!(f["inviter_phone"], "13918305498");
        assert_eq!(f["created_from"], "2024-10-09T00:00:00.000Z");
        assert_eq!(f["created_to"], "2024-10-09T23:59:59.999Z");
        assert_eq!(f["status"], "applying");
        assert!(!f.contains_key("invitee_phone"), "empty parameters are no filter");
        assert_eq!(p["page"], 2);
        let bad: HashMap<String, String> = [("created_at_gtq".to_string(), "yesterday".to_string())].into();
        assert_eq!(filters(&bad).unwrap_err().field.as_deref(), Some("created_at_gtq"));
    }

    #[test]
    fn record_ids_name_invite_and_invitee() {
        assert_eq!(record_id("inv1.fang"), ("inv1".to_string(), Some("fang".to_string())));
        assert_eq!(record_id("inv1"), ("inv1".to_string(), None));
    }
}
