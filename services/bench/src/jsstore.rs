//! Alternative (b) for the benchmarks: JetStream as the event store, no SQLite. The same commands
//! and the same pure `decide`/`evolve` as invitebus; each aggregate is a subject
//! (`alt.evt.<type>.<id>`) and every append carries `Nats-Expected-Last-Subject-Sequence`, so two
//! writers of one aggregate cannot both win. Aggregates are kept in memory with their last subject
//! sequence (a lock per aggregate), as a careful implementation would.
//!
//! What it cannot do is noted, not hidden: an AcceptInvite writes two subjects (the invite, then
//! the resource's MemberJoined) in two publishes, not atomically; dedupe by `Nats-Msg-Id` only
//! lasts the stream's duplicate window.

use super::cqrs_pg::{decide, InviteCommand};
use chrono::Utc;
use futures::StreamExt;
use invitebus_commands::command;
use invitebus_commands::invite::{self, InviteState};
use invitebus_commands::resource::{self, ResourceState};
use invitebus_commands::Ctx;
use invitebus_events::{Command, CommandRequest, Event, Id, ProtocolError, Reply};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Mutex as AsyncMutex;

/// The stream and subject prefix of the alternative.
pub const STREAM: &str = "ALT_EVENTS";
pub const PREFIX: &str = "alt";

type Entry<S> = Arc<AsyncMutex<(S, u64)>>;

#[derive(Default)]
struct Aggregates {
    invites: Mutex<HashMap<Id, Entry<InviteState>>>,
    resources: Mutex<HashMap<Id, Entry<ResourceState>>>,
}

fn entry<S: Default>(map: &Mutex<HashMap<Id, Entry<S>>>, id: &Id) -> Entry<S> {
    map.lock().unwrap().entry(id.clone()).or_default().clone()
}

/// The running alternative: answers `alt.cmd.<Command>` until dropped.
pub struct JsStore {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JsStore {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl JsStore {
    /// A fresh `ALT_EVENTS` stream and a service answering on `alt.cmd.*`.
    pub async fn start(client: async_nats::Client) -> anyhow::Result<JsStore> {
        let js = async_nats::jetstream::new(client.clone());
        let _ = js.delete_stream(STREAM).await;
        js.create_stream(async_nats::jetstream::stream::Config {
            name: STREAM.into(),
            subjects: vec![format!("{PREFIX}.evt.>")],
            storage: async_nats::jetstream::stream::StorageType::File,
            duplicate_window: std::time::Duration::from_secs(120),
            ..Default::default()
        })
        .await?;
        let mut requests = client.queue_subscribe(format!("{PREFIX}.cmd.*"), "alt".into()).await?;
        let aggregates = Arc::new(Aggregates::default());
        let task = tokio::spawn(async move {
            while let Some(msg) = requests.next().await {
                let (js, client, aggregates) = (js.clone(), client.clone(), aggregates.clone());
                tokio::spawn(async move {
                    let Some(reply_to) = msg.reply else { return };
                    let name = msg.subject.as_str().rsplit('.').next().unwrap_or_default().to_string();
                    let reply = match handle(&js, &aggregates, &name, &msg.payload).await {
                        Ok(r) => r,
                        Err(e) => Reply::err(e),
                    };
                    let _ = client.publish(reply_to, reply.to_bytes().into()).await;
                });
            }
        });
        Ok(JsStore { task })
    }
}

/// Appends `event` to its aggregate's subject if that subject is still at `expected`; its sequence.
async fn append(
    js: &async_nats::jetstream::Context,
    event: &Event,
    expected: u64,
    msg_id: String,
) -> Result<u64, ProtocolError> {
    let subject = format!("{PREFIX}.evt.{}.{}", event.stream_type().as_str(), event.stream_key());
    let body = json!({"type": event.event_type(), "data": event.data()}).to_string();
    let publish = async_nats::jetstream::message::PublishMessage::build()
        .payload(body.into())
        .message_id(msg_id)
        .expected_last_subject_sequence(expected);
    let ack = js
        .send_publish(subject, publish)
        .await
        .map_err(|e| ProtocolError::unavailable(e.to_string()))?
        .await
        .map_err(|e| ProtocolError::new(invitebus_events::ErrorCode::Conflict, e.to_string()))?;
    Ok(ack.sequence)
}

async fn handle(
    js: &async_nats::jetstream::Context,
    agg: &Aggregates,
    name: &str,
    body: &[u8],
) -> Result<Reply, ProtocolError> {
    let req = CommandRequest::decode(name, body)?;
    let ctx = Ctx::new(req.meta.actor.clone(), req.meta.roles.clone(), Utc::now());
    let cid = req
        .meta
        .command_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    match &req.command {
        Command::RegisterResource(c) => {
            let res = entry(&agg.resources, &c.resource_id);
            let mut res = res.lock().await;
            let events = command::register(&res.0, &ctx, c)?;
            let mut position = 0;
            for (i, e) in events.iter().enumerate() {
                position = append(js, e, res.1, format!("{cid}-{i}")).await?;
                res.1 = position;
                res.0 = resource::evolve(std::mem::take(&mut res.0), e);
            }
            Ok(Reply::command_ok(json!({"resource_id": c.resource_id}), Some(position)))
        }
        Command::CreateInvite(c) => {
            let mut c = c.clone();
            let invite_id = c
                .spec
                .invite_id
                .get_or_insert_with(|| Id::parse(uuid::Uuid::now_v7().to_string()).expect("a uuid is an id"))
                .clone();
            let resource_state = entry(&agg.resources, &c.resource_id).lock().await.0.clone();
            let inv = entry(&agg.invites, &invite_id);
            let mut inv = inv.lock().await;
            let events = decide(&inv.0, &resource_state, &ctx, &InviteCommand::Create(c))?;
            let mut position = 0;
            for (i, e) in events.iter().enumerate() {
                position = append(js, e, inv.1, format!("{cid}-{i}")).await?;
                inv.1 = position;
                inv.0 = invite::evolve(std::mem::take(&mut inv.0), e);
            }
            Ok(Reply::command_ok(json!({"invite_id": invite_id}), Some(position)))
        }
        Command::AcceptInvite(c) => {
            let inv = entry(&agg.invites, &c.invite_id);
            let mut inv = inv.lock().await;
            let resource_id = inv
                .0
                .invite
                .as_ref()
                .map(|i| i.resource_id.clone())
                .ok_or_else(|| ProtocolError::not_found("invite_id", &c.invite_id))?;
            let res = entry(&agg.resources, &resource_id);
            let mut res = res.lock().await;
            let events = decide(&inv.0, &res.0, &ctx, &InviteCommand::Accept(c.clone()))?;
            let mut position = 0;
            for (i, e) in events.iter().enumerate() {
                let msg_id = format!("{cid}-{i}");
                if matches!(e, Event::MemberJoined(_)) {
                    position = append(js, e, res.1, msg_id).await?;
                    res.1 = position;
                    res.0 = resource::evolve(std::mem::take(&mut res.0), e);
                } else {
                    position = append(js, e, inv.1, msg_id).await?;
                    inv.1 = position;
                    inv.0 = invite::evolve(std::mem::take(&mut inv.0), e);
                }
            }
            Ok(Reply::command_ok(json!({"invite_id": c.invite_id}), Some(position)))
        }
        _ => Err(ProtocolError::invalid_command(format!(
            "{name} is not part of the benchmark workload"
        ))),
    }
}
