//! `GET /openapi.json`: an OpenAPI 3.1 document describing every route, made from one table so
//! that a route cannot be served without being described (the tests walk the table). Every
//! status a route can answer is listed with its body, and every path parameter has its pattern,
//! so a schema-driven tester (schemathesis, `.ci/schemathesis`) can check each answer.
//! `GET /asyncapi.json` serves the NATS API's document beside it (crate `invitebus-asyncapi`).

mod schemas;

use axum::routing::get;
use axum::{Json, Router};
use invitebus_events::query::QUERIES;
use invitebus_events::subject::Subjects;
use invitebus_events::Command;
use schemas::{id, one_of, r};
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

/// The statuses of the routes that answer with HTTP statuses: `bus::status_of`'s range.
const HTTP_ERRORS: &[u16] = &[400, 401, 403, 404, 409, 429, 500, 503];

/// seed 001's actions.
pub const MEETING_ACTIONS: &[&str] = &["create", "cancel", "delete", "update", "detail"];

fn json_body(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// `response` with the `Retry-After` header a rate-limited request gets.
fn limited(mut response: Value) -> Value {
    response["headers"] = json!({"Retry-After": {
        "description": "seconds until the limit lets this caller through again (only when refused)",
        "schema": {"type": "integer", "minimum": 1}}});
    response
}

/// Every status `r` can answer, with its body.
fn responses(route: &Route) -> Value {
    let mut out = Map::new();
    let errors = |schema: Value, out: &mut Map<String, Value>| {
        for status in HTTP_ERRORS {
            out.insert(
                status.to_string(),
                json_body("an error (PROTOCOL.md, HTTP gateway)", schema.clone()),
            );
        }
        out.insert(
            "429".into(),
            limited(json_body("over a rate limit (PROTOCOL.md, Rate limits)", schema)),
        );
    };
    let (tag, path) = (route.tag, route.path);
    match (route.method, path) {
        (_, "/openapi.json") => {
            out.insert("200".into(), json_body("this document", json!({"type": "object"})));
        }
        (_, "/asyncapi.json") => {
            let doc = json!({"type": "object", "required": ["asyncapi", "channels"]});
            out.insert(
                "200".into(),
                json_body("the AsyncAPI 3.0 document of the NATS API", doc),
            );
        }
        (_, "/metrics") => {
            let text = |d: &str| json!({"description": d, "content": {"text/plain": {"schema": {"type": "string"}}}});
            out.insert("200".into(), text("the Prometheus text format"));
            out.insert("404".into(), text("this process records no metrics"));
        }
        (_, "/api/invitation/check") => {
            out.insert("200".into(), json_body("invitebus answers on the bus", r("Seed000")));
            out.insert("503".into(), json_body("invitebus does not answer", r("Seed000Down")));
        }
        ("get", "/ws") => {
            out.insert("101".into(), json!({"description": "the socket (seed 002's frames)"}));
            out.insert(
                "400".into(),
                json_body("a bad `after` or query string", r("SocketRefused")),
            );
            out.insert("401".into(), json_body("no valid token: no socket", r("SocketRefused")));
            out.insert(
                "429".into(),
                limited(json_body("over a rate limit: no socket", r("SocketRefused"))),
            );
            out.insert("426".into(), json_body("not a WebSocket request", r("SocketRefused")));
        }
        _ if tag.starts_with("native") => {
            out.insert("200".into(), json_body("the NATS reply, as it came", r("ReplyOk")));
            errors(r("ReplyError"), &mut out);
        }
        _ if tag.starts_with("seed 000") => {
            out.insert(
                "200".into(),
                limited(json_body(
                    "seed 000's envelope; `code` 0 or the error (over a rate limit: code 1, `error` rate_limited, and Retry-After)",
                    r("Seed000"),
                )),
            );
        }
        _ if tag.starts_with("seed 001") => {
            out.insert(
                "200".into(),
                limited(json_body(
                    "seed 001's envelope; `status` 0 or the error (over a rate limit: status 4029, and Retry-After)",
                    r("Seed001"),
                )),
            );
        }
        _ if tag.starts_with("seed 003") => {
            let ok = match (route.method, path) {
                ("delete", _) => None,
                ("get", "/channels/{channelId}/invites") => Some(json!({"type": "array", "items": r("Seed003Invite")})),
                ("post", "/invites/{code}") => Some(r("Seed003Guild")),
                _ => Some(r("Seed003Invite")),
            };
            match ok {
                Some(schema) => out.insert("200".into(), json_body("seed 003's body", schema)),
                None => out.insert("204".into(), json!({"description": "deleted"})),
            };
            errors(r("Error"), &mut out);
        }
        _ => {
            let ok = match path {
                "/api/exports/{uuid}/progress" => json!({"description": "progress as Server-Sent Events",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}}}),
                "/api/exports/{uuid}/file" => json!({"description": "the file", "content": {
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {"schema": {"type": "string", "format": "binary"}},
                    "text/csv; charset=utf-8": {"schema": {"type": "string"}}}}),
                "/api/exports/{uuid}/ws" => json!({"description": "the socket: progress frames, then a close"}),
                _ => json_body("seed 004's envelope", r("Seed004")),
            };
            let status = if path.ends_with("/ws") { "101" } else { "200" };
            out.insert(status.into(), ok);
            errors(r("Seed004Error"), &mut out);
            if path.ends_with("/ws") {
                out.insert("426".into(), json_body("not a WebSocket request", r("Seed004Error")));
            }
        }
    }
    if schemas::body(route.method, path).is_some() {
        out.insert(
            "413".into(),
            json!({"description": "a body over 1 MiB, refused by HTTP itself",
            "content": {"text/plain; charset=utf-8": {"schema": {"type": "string"}}}}),
        );
    }
    Value::Object(out)
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
    Route {
        method: "get",
        path: "/asyncapi.json",
        tag: "meta",
        summary:
            "The AsyncAPI 3.0 document of the NATS API (commands, queries, events), for this gateway's subject prefix",
        signed_in: false,
    },
    Route {
        method: "get",
        path: "/metrics",
        tag: "meta",
        summary: "Prometheus metrics of this process (README, Watching it)",
        signed_in: false,
    },
];

/// `/openapi.json`, and `/asyncapi.json` for the subjects this gateway uses (the prefix is a setting).
pub fn routes<S: Clone + Send + Sync + 'static>(subjects: &Subjects) -> Router<S> {
    let doc = document();
    let asyncapi = invitebus_asyncapi::document(subjects);
    Router::new()
        .route("/openapi.json", get(move || async move { Json(doc) }))
        .route("/asyncapi.json", get(move || async move { Json(asyncapi) }))
}

/// A seed 004 record: `<invite_id>.<invitee>`, or a bare invite id.
const RECORD_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}(\\.[A-Za-z0-9_-]{1,64})?$";

fn parameters(method: &str, path: &str) -> Vec<Value> {
    let mut out: Vec<Value> = path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let schema = match name {
                "command" => one_of(Command::NAMES),
                "query" => one_of(QUERIES),
                "action" => one_of(MEETING_ACTIONS),
                "id" => json!({"type": "string", "pattern": RECORD_PATTERN}),
                _ => id(),
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect();
    if (method, path) == ("get", "/api/admin/invitations") {
        out.extend(schemas::admin_parameters());
    }
    if (method, path) == ("get", "/ws") {
        out.push(json!({"name": "after", "in": "query", "required": false,
            "description": "stored notifications after this position (else the unread ones)",
            "schema": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": u64::MAX}, {"type": "string", "maxLength": 0}]}}));
    }
    out
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let mut op = json!({
            "summary": r.summary,
            "tags": [r.tag],
            "parameters": parameters(r.method, r.path),
            "responses": responses(r),
        });
        if r.signed_in {
            op["security"] = json!([{"bearer": []}, {"accessTokenHeader": []}, {"accessTokenQuery": []}]);
        }
        if let Some(body) = schemas::body(r.method, r.path) {
            op["requestBody"] = body;
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "invitebus HTTP gateway", "version": env!("CARGO_PKG_VERSION"),
            "description": "Every route turns into invitebus commands and queries on NATS; the actor is the token's subject."},
        "paths": paths,
        "components": {"schemas": schemas::components(), "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (HS256; claims sub, roles, exp)"},
            "accessTokenHeader": {"type": "apiKey", "in": "header", "name": "ACCESS-TOKEN"},
            "accessTokenQuery": {"type": "apiKey", "in": "query", "name": "accessToken"},
        }},
    })
}
