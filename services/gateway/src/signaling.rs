//! Seed 002, live channel and call invitations over a WebSocket at `/ws`. A signed-in client gets
//! its notifications live, and on connecting those stored while it was away; it sends frames whose
//! `op` is `invite`, `cancel`, `accept`, `reject` or `call` (or seed 002's method names,
//! `signalingInvite`…), with seed 002's parameters and a `requestId` (the invite's id), and gets a
//! reply frame with seed 002's numeric `code` (200 on success). `op`, not `type`: a call's `type`
//! is seed 002's call type. While connected it answers
//! presence requests, so an invite that is live-only learns whether its invitee is online (10201).

use crate::bus::{trimmed, Authed, Caller, GatewayConfig, MAX_BODY};
use crate::listen::Stopping;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use invitebus_events::{ErrorCode, Id, ProtocolError};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Seed 002's code for a request that went through but whose peer is not online.
const PEER_OFFLINE: u32 = 10201;

pub fn routes() -> Router<Arc<GatewayConfig>> {
    Router::new().route("/ws", get(connect))
}

async fn connect(
    State(cfg): State<Arc<GatewayConfig>>,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
    Authed(caller): Authed,
    stopping: Option<Extension<Stopping>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let stopping = stopping.map(|Extension(s)| s);
    let upgrade = caller.and_then(|caller| {
        let Query(params) = params.map_err(|e| ProtocolError::invalid_command(format!("the query string: {e}")))?;
        let after = match params.get("after").filter(|a| !a.is_empty()) {
            Some(a) => Some(
                a.parse::<u64>()
                    .map_err(|_| ProtocolError::invalid("after", "not a position"))?,
            ),
            None => None,
        };
        Ok((caller, after, upgrade.map_err(not_a_socket)?))
    });
    match upgrade {
        Ok((caller, after, upgrade)) => limited(upgrade).on_upgrade(move |socket| async move {
            let _open = crate::observe::Session::open();
            if let Err(e) = session(&cfg, caller, after, socket, stopping).await {
                tracing::debug!(error = %e, "signaling session ended");
            }
        }),
        Err(e) => failure(e),
    }
}

/// Seed 002's refusal of a connection: its numeric code and the error.
pub fn failure(e: ProtocolError) -> Response {
    (
        refusal_status(&e),
        axum::Json(json!({"code": e.code.seed_002_reply_code(), "error": trimmed(e)})),
    )
        .into_response()
}

/// What an HTTP request that does not ask for a WebSocket gets: `invalid_command`, as 426.
pub fn not_a_socket(e: WebSocketUpgradeRejection) -> ProtocolError {
    ProtocolError::invalid_command(format!("not a WebSocket request: {e}"))
}

/// 426 Upgrade Required for a request that is not a WebSocket one, else the error's own status.
pub fn refusal_status(e: &ProtocolError) -> axum::http::StatusCode {
    match e.code {
        ErrorCode::InvalidCommand if e.message.starts_with("not a WebSocket") => {
            axum::http::StatusCode::UPGRADE_REQUIRED
        }
        code => crate::bus::status_of(code),
    }
}

/// A client frame is a request body: at most 64 KiB, like one over HTTP or NATS.
pub const MAX_FRAME: usize = MAX_BODY;

/// `upgrade` with frames and messages limited to [`MAX_FRAME`] (tungstenite's default is 16 MiB)
/// and small buffers: tungstenite allocates 128 KiB of read buffer per socket up front, which
/// made 5,000 idle sockets hold about 1 GB; frames here are small JSON.
pub fn limited(upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
    upgrade
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
}

/// A socket's read buffer; it grows for a larger frame (up to [`MAX_FRAME`]).
const READ_BUFFER: usize = 4 * 1024;

/// What may wait to be written to a client that does not read: past it the session ends.
const MAX_WRITE_BUFFER: usize = 1024 * 1024;

/// Ends a session because the gateway stops: close code 1001.
pub async fn close_stopping(socket: &mut WebSocket) {
    let frame = CloseFrame {
        code: close_code::AWAY,
        reason: "the gateway is stopping".into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
    closing_handshake(socket).await;
}

/// After our close frame, the client's (a second at most): dropping the socket at once would
/// reset a client still answering frames sent before the close, and it would miss the close.
async fn closing_handshake(socket: &mut WebSocket) {
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        while let Some(Ok(m)) = socket.recv().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Ends a session whose client sent nothing (not even a pong) for `idle`: close code 1001.
pub async fn close_idle(socket: &mut WebSocket, idle: std::time::Duration) {
    metrics::counter!("invitebus_gateway_sessions_idle_closed_total", "kind" => "websocket").increment(1);
    let frame = CloseFrame {
        code: close_code::AWAY,
        reason: format!("nothing from the client for {} s", idle.as_secs()).into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
    closing_handshake(socket).await;
}

/// Whether a read failed because the client's frame or message was over the limit.
fn too_large(e: &axum::Error) -> bool {
    matches!(
        std::error::Error::source(e).and_then(|s| s.downcast_ref::<tungstenite::Error>()),
        Some(tungstenite::Error::Capacity(_))
    )
}

/// Ends a session whose client sent an oversized frame: close code 1009, as RFC 6455 asks.
pub async fn close_too_large(socket: &mut WebSocket) {
    let frame = CloseFrame {
        code: close_code::SIZE,
        reason: format!("a frame is at most {MAX_FRAME} bytes").into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// A frame telling the client it sent something the gateway does not read.
fn error_frame(e: ProtocolError) -> Value {
    json!({"op": "error", "code": e.code.seed_002_reply_code(), "error": trimmed(e)})
}

/// A notification as seed 002's clients see it: `eventType` and the channel and request it is about.
fn notify_frame(n: &Value, offline: bool) -> Value {
    let event_type = match n["kind"].as_str().unwrap_or_default() {
        "invite_received" | "invite_resent" => "INVITE".to_string(),
        "invite_cancelled" => "CANCEL_INVITE".to_string(),
        "invite_accepted" => "ACCEPT".to_string(),
        "invite_rejected" => "REJECT".to_string(),
        other => other.to_uppercase(),
    };
    json!({"op": "notify", "eventType": event_type, "channelId": n["resource_id"], "requestId": n["invite_id"],
        "from": n["from"], "offline": offline, "notification": n})
}

async fn send(socket: &mut WebSocket, frame: Value) -> Result<(), axum::Error> {
    socket.send(Message::Text(frame.to_string().into())).await
}

async fn session(
    cfg: &GatewayConfig,
    caller: Caller,
    after: Option<u64>,
    mut socket: WebSocket,
    stopping: Option<Stopping>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let user = Id::parse(caller.user.clone())?;
    // Subscribe before reading the inbox, so nothing falls between the two.
    let mut kept = cfg.client.subscribe(cfg.subjects.notify(&user)).await?;
    let mut live = cfg
        .client
        .subscribe(format!("{}.live", cfg.subjects.notify(&user)))
        .await?;
    let mut presence = cfg.client.subscribe(cfg.subjects.presence(&user)).await?;
    let stored = match after {
        Some(position) => json!({"after": position, "per_page": 500}),
        None => json!({"unread_only": true, "per_page": 500}),
    };
    let mut seen = HashSet::new();
    let frames = cfg.limits.socket();
    match cfg.query(&caller, "inbox", stored).await {
        Ok(inbox) => {
            for n in inbox["items"].as_array().into_iter().flatten() {
                if n["live_only"] == true {
                    continue;
                }
                seen.insert(n["id"].as_str().unwrap_or_default().to_string());
                send(&mut socket, notify_frame(n, true)).await?;
            }
        }
        Err(e) => send(&mut socket, error_frame(e)).await?,
    }
    // The gateway pings twice per idle bound: a client that only listens (a browser cannot send
    // pings itself) answers with pongs, which count as its traffic.
    let idle = cfg.bounds.session_idle;
    let quiet = tokio::time::sleep(idle);
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + idle / 2, idle / 2);
    let stop = Stopping::wait(stopping);
    tokio::pin!(quiet, stop);
    loop {
        tokio::select! {
            () = &mut quiet => {
                close_idle(&mut socket, idle).await;
                return Ok(());
            }
            () = &mut stop => {
                close_stopping(&mut socket).await;
                return Ok(());
            }
            _ = pings.tick() => socket.send(Message::Ping(Default::default())).await?,
            frame = socket.recv() => match frame {
                Some(Ok(Message::Text(text))) => {
                    quiet.as_mut().reset(tokio::time::Instant::now() + idle);
                    let allowed = frames.check().and_then(|()| cfg.limits.check_user(&caller.user));
                    let reply = handle(cfg, &caller, text.as_str(), allowed.map_err(|r| r.error)).await;
                    send(&mut socket, reply).await?;
                }
                Some(Ok(Message::Binary(_))) => {
                    quiet.as_mut().reset(tokio::time::Instant::now() + idle);
                    let e = ProtocolError::invalid_command("frames are JSON text; a binary frame is not read");
                    send(&mut socket, error_frame(e)).await?;
                }
                Some(Err(e)) if too_large(&e) => {
                    close_too_large(&mut socket).await;
                    return Ok(());
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                Some(Ok(_)) => quiet.as_mut().reset(tokio::time::Instant::now() + idle),
            },
            Some(msg) = kept.next() => forward(&mut socket, &msg.payload, &mut seen).await?,
            Some(msg) = live.next() => forward(&mut socket, &msg.payload, &mut seen).await?,
            Some(msg) = presence.next() => {
                if invitebus_auth::bus::is_delivery(&msg) {
                    continue;
                }
                if let Some(reply) = msg.reply {
                    cfg.client.publish(reply, r#"{"online":true}"#.into()).await?;
                }
            }
        }
    }
}

async fn forward(socket: &mut WebSocket, payload: &[u8], seen: &mut HashSet<String>) -> Result<(), axum::Error> {
    let Ok(n) = serde_json::from_slice::<Value>(payload) else {
        return Ok(());
    };
    if seen.remove(n["id"].as_str().unwrap_or_default()) {
        return Ok(());
    }
    send(socket, notify_frame(&n, false)).await
}

fn field<'a>(frame: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    frame.get(name).filter(|v| !v.is_null())
}

fn required(frame: &Map<String, Value>, name: &str) -> Result<Value, ProtocolError> {
    field(frame, name).cloned().ok_or_else(|| ProtocolError::missing(name))
}

/// Seed 002's pushInfo as our push info; none unless `needPush` is set.
fn push(frame: &Map<String, Value>) -> Option<Value> {
    let p = field(frame, "pushInfo")?.as_object()?;
    let wanted =
        matches!(p.get("needPush"), Some(Value::Bool(true))) || p.get("needPush").and_then(Value::as_u64) == Some(1);
    wanted.then(|| {
        let badge = match p.get("needBadge") {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_u64() != Some(0),
            _ => true,
        };
        json!({"title": p.get("pushTitle"), "content": p.get("pushContent"), "payload": p.get("pushPayload"), "badge": badge})
    })
}

/// One client frame, decided and answered: `{type, requestId, code, data | error}`; a frame
/// over the socket's or the user's rate (`allowed`) is answered 416 and not run.
async fn handle(cfg: &GatewayConfig, caller: &Caller, text: &str, allowed: Result<(), ProtocolError>) -> Value {
    let frame = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(frame)) => frame,
        _ => {
            return error_frame(ProtocolError::invalid_command("a frame is a JSON object with an `op`"));
        }
    };
    let op = frame.get("op").and_then(Value::as_str).unwrap_or_default().to_string();
    let request_id = frame.get("requestId").cloned().unwrap_or(Value::Null);
    let mut reply = json!({"op": op, "requestId": request_id});
    let result = match allowed {
        Ok(()) => run(cfg, caller, &op, &frame).await,
        Err(e) => Err(e),
    };
    match result {
        Ok((code, data)) => {
            reply["code"] = json!(code);
            reply["data"] = data;
        }
        Err(e) => {
            reply["code"] = json!(e.code.seed_002_reply_code());
            reply["error"] = json!(trimmed(e));
        }
    }
    reply
}

async fn run(
    cfg: &GatewayConfig,
    caller: &Caller,
    op: &str,
    frame: &Map<String, Value>,
) -> Result<(u32, Value), ProtocolError> {
    let request_id = || required(frame, "requestId");
    let offline_enabled = field(frame, "offlineEnabled").and_then(Value::as_bool).unwrap_or(true);
    let peer_code = |online: bool| if offline_enabled || online { 200 } else { PEER_OFFLINE };
    match op {
        "ping" => Ok((200, json!("pong"))),
        "invite" | "signalingInvite" => {
            let account = required(frame, "account")?;
            let mut fields = json!({"invite_id": request_id()?, "resource_id": required(frame, "channelId")?,
                "invitee": account, "offline_enabled": offline_enabled});
            if let Some(ext) = field(frame, "attachExt") {
                fields["ext"] = json!({"attachExt": ext});
            }
            if let Some(push) = push(frame) {
                fields["push"] = push;
            }
            let done = cfg.command(caller, "CreateInvite", fields).await?;
            let online = online(cfg, &account).await;
            Ok((
                peer_code(online),
                json!({"channelId": frame.get("channelId"), "requestId": done.data["invite_id"]}),
            ))
        }
        "cancel" | "signalingCancel" => answer(cfg, caller, "CancelInvite", json!({"invite_id": request_id()?})).await,
        "reject" | "signalingReject" => {
            let mut fields = json!({"invite_id": request_id()?});
            if let Some(Value::String(reason)) = field(frame, "attachExt") {
                fields["reason"] = json!(reason);
            }
            answer(cfg, caller, "RejectInvite", fields).await
        }
        "accept" | "signalingAccept" => {
            let auto_join = field(frame, "autoJoin").and_then(Value::as_bool).unwrap_or(false);
            answer(
                cfg,
                caller,
                "AcceptInvite",
                json!({"invite_id": request_id()?, "auto_join": auto_join}),
            )
            .await
        }
        "call" | "signalingCall" => {
            let account = required(frame, "account")?;
            let mut fields = json!({"invitee": account, "offline_enabled": offline_enabled, "kind": "channel",
                "info": {"type": field(frame, "type"), "ext": field(frame, "ext")}});
            for (theirs, ours) in [
                ("requestId", "invite_id"),
                ("channelId", "resource_id"),
                ("channelName", "name"),
            ] {
                if let Some(v) = field(frame, theirs) {
                    fields[ours] = v.clone();
                }
            }
            if let Some(ext) = field(frame, "attachExt") {
                fields["ext"] = json!({"attachExt": ext});
            }
            if let Some(push) = push(frame) {
                fields["push"] = push;
            }
            let done = cfg.command(caller, "StartCall", fields).await?;
            let online = online(cfg, &account).await;
            let data = json!({
                "channelInfo": {"channelId": done.data["resource_id"], "channelName": frame.get("channelName"),
                    "type": frame.get("type"), "ext": frame.get("ext")},
                "members": [{"account": caller.user, "uid": frame.get("uid")}],
                "requestId": done.data["invite_id"],
            });
            Ok((peer_code(online), data))
        }
        other => Err(ProtocolError::new(
            ErrorCode::InvalidCommand,
            format!("no op `{}`", crate::bus::clip(other, 64)),
        )),
    }
}

async fn answer(
    cfg: &GatewayConfig,
    caller: &Caller,
    command: &str,
    fields: Value,
) -> Result<(u32, Value), ProtocolError> {
    let done = cfg.command(caller, command, fields).await?;
    Ok((200, done.data))
}

async fn online(cfg: &GatewayConfig, account: &Value) -> bool {
    match account.as_str().map(Id::parse) {
        Some(Ok(user)) => cfg.online(&user).await,
        _ => false,
    }
}
