//! `GET /openapi.json`: an OpenAPI 3.1 document describing every route, made from one table so
//! that a route cannot be served without being described (the tests walk the table).

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

/// One route: method, path (axum's `{param}` syntax is OpenAPI's), tag, summary, whether a token is needed.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub signed_in: bool,
}

const fn route(method: &'static str, path: &'static str, tag: &'static str, summary: &'static str) -> Route {
    Route {
        method,
        path,
        tag,
        summary,
        signed_in: true,
    }
}

/// Every route the gateway serves.
pub const ROUTES: &[Route] = &[
    route(
        "post",
        "/v1/commands/{command}",
        "native",
        "Send a command (PROTOCOL.md); actor and roles come from the token",
    ),
    route(
        "post",
        "/v1/queries/{query}",
        "native",
        "Read a view (PROTOCOL.md); actor and roles come from the token",
    ),
    route(
        "post",
        "/api/invitation/createInvitation",
        "seed 000 conference",
        "Invite `invitee` to become pcmember of conference `confId`",
    ),
    route(
        "post",
        "/api/invitation/received",
        "seed 000 conference",
        "Invitations received; body `{\"data\":{\"status\":\"accept\"}}` filters",
    ),
    route(
        "post",
        "/api/invitation/sent",
        "seed 000 conference",
        "Invitations sent, one item per invitee; `data.status` filters",
    ),
    route(
        "post",
        "/approve/{iid}",
        "seed 000 conference",
        "Accept invitation `iid` (code 10 unless the invitee)",
    ),
    route(
        "post",
        "/reject/{iid}",
        "seed 000 conference",
        "Refuse invitation `iid` (code 10 unless the invitee)",
    ),
    Route {
        method: "get",
        path: "/api/invitation/check",
        tag: "seed 000 conference",
        summary: "Heartbeat: 200 while invitebus answers on the bus",
        signed_in: false,
    },
    route(
        "post",
        "/openapi/workbench/meetinginvite/{action}",
        "seed 001 meeting",
        "create | cancel | delete | update | detail a meeting invitation (`accessToken` query parameter)",
    ),
    route(
        "get",
        "/channels/{channelId}/invites",
        "seed 003 codes",
        "List a channel's invite codes",
    ),
    route(
        "post",
        "/channels/{channelId}/invites",
        "seed 003 codes",
        "Create an invite code: `{max_age, max_uses, temporary}`",
    ),
    route("get", "/invites/{code}", "seed 003 codes", "Show an invite code"),
    route(
        "post",
        "/invites/{code}",
        "seed 003 codes",
        "Join through an invite code; answers the guild",
    ),
    route(
        "delete",
        "/invites/{code}",
        "seed 003 codes",
        "Delete an invite code (204)",
    ),
    route(
        "get",
        "/api/admin/invitations",
        "seed 004 admin",
        "Invitation records with filters and pages; `export_format=xlsx|csv` starts an export",
    ),
    route(
        "put",
        "/api/admin/invitations/{id}/approve",
        "seed 004 admin",
        "Approve record `<invite_id>.<invitee>` with `approve_description`",
    ),
    route(
        "put",
        "/api/admin/invitations/{id}/reject",
        "seed 004 admin",
        "Deny record `<invite_id>.<invitee>` with `approve_description`",
    ),
    route("get", "/api/exports/{uuid}", "seed 004 admin", "An export's status"),
    route(
        "get",
        "/api/exports/{uuid}/progress",
        "seed 004 admin",
        "An export's progress as Server-Sent Events, until success or failure",
    ),
    route(
        "get",
        "/api/exports/{uuid}/ws",
        "seed 004 admin",
        "An export's progress over a WebSocket",
    ),
    route(
        "get",
        "/api/exports/{uuid}/file",
        "seed 004 admin",
        "The finished export file",
    ),
    route(
        "get",
        "/ws",
        "seed 002 signaling",
        "WebSocket: live notifications, and invite/cancel/accept/reject/call frames with requestId",
    ),
    Route {
        method: "get",
        path: "/openapi.json",
        tag: "meta",
        summary: "This document",
        signed_in: false,
    },
];

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let doc = document();
    Router::new().route("/openapi.json", get(move || async move { Json(doc) }))
}

fn parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let mut op = json!({
            "summary": r.summary,
            "tags": [r.tag],
            "parameters": parameters(r.path),
            "responses": {"200": {"description": "the route's envelope (see PROTOCOL.md, HTTP gateway)"}},
        });
        if r.signed_in {
            op["security"] = json!([{"bearer": []}, {"accessTokenHeader": []}, {"accessTokenQuery": []}]);
        }
        if matches!(r.method, "post" | "put") {
            op["requestBody"] =
                json!({"required": false, "content": {"application/json": {"schema": {"type": "object"}}}});
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "invitebus HTTP gateway", "version": env!("CARGO_PKG_VERSION"),
            "description": "Every route turns into invitebus commands and queries on NATS; the actor is the token's subject."},
        "paths": paths,
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (HS256; claims sub, roles, exp)"},
            "accessTokenHeader": {"type": "apiKey", "in": "header", "name": "ACCESS-TOKEN"},
            "accessTokenQuery": {"type": "apiKey", "in": "query", "name": "accessToken"},
        }},
    })
}
