//! Alternative (c) for the benchmarks: cqrs-es with postgres-es against the local PostgreSQL,
//! answering the same NATS commands with the same pure `decide`/`evolve`. The invite is a cqrs-es
//! aggregate (its events in postgres-es's `events` table, optimistic concurrency on its sequence).
//!
//! What it cannot do is noted, not hidden: a cqrs-es command writes one aggregate, so the
//! MemberJoined of an accept stays in the invite's stream, and the resources are a fixed state
//! given to every decision (the bench's sixteen open channels) rather than aggregates of their own.

use async_trait::async_trait;
use chrono::Utc;
use cqrs_es::{Aggregate, DomainEvent};
use futures::StreamExt;
use invitebus_commands::command::{self, accept_invite::AcceptInvite};
use invitebus_commands::decision::Decision as _;
use invitebus_commands::invite::{self, InviteState, OnInvite};
use invitebus_commands::resource::{self, ResourceState};
use invitebus_commands::Ctx;
use invitebus_events::{Command, CommandRequest, Event, Id, ProtocolError, Reply};
use postgres_es::{postgres_cqrs, PostgresCqrs};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// The subject prefix of the alternative.
pub const PREFIX: &str = "cqrs";
/// The database it uses (made when missing) on the local PostgreSQL.
const DATABASE: &str = "invitebus_bench";

/// Our event, as cqrs-es stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent(Event);

impl DomainEvent for StoredEvent {
    fn event_type(&self) -> String {
        self.0.event_type().to_string()
    }
    fn event_version(&self) -> String {
        self.0.schema().to_string()
    }
}

/// The invite aggregate: its events; the state is folded with invitebus's `evolve` when deciding.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct InviteAggregate {
    events: Vec<StoredEvent>,
}

/// The two invite commands of the workload (one per request, never stored: its size does not matter).
#[allow(clippy::large_enum_variant)]
pub enum InviteCommand {
    Create(invitebus_events::command::CreateInvite),
    Accept(invitebus_events::command::AcceptInvite),
}

/// Decides one of them with invitebus's own decisions.
pub(super) fn decide(
    state: &InviteState,
    resource: &ResourceState,
    ctx: &Ctx,
    c: &InviteCommand,
) -> Result<Vec<Event>, ProtocolError> {
    match c {
        InviteCommand::Create(c) => command::create(state, resource, ctx, c),
        InviteCommand::Accept(c) => AcceptInvite(c.clone()).decide(
            &OnInvite {
                invite_id: c.invite_id.clone(),
                state,
                resource,
            },
            ctx,
        ),
    }
    .map_err(ProtocolError::from)
}

/// A decision to take, with who asks and when.
pub struct Decide {
    ctx: Ctx,
    command: InviteCommand,
}

/// The fixed resources every decision sees.
pub struct Resources(HashMap<Id, ResourceState>);

#[async_trait]
impl Aggregate for InviteAggregate {
    type Command = Decide;
    type Event = StoredEvent;
    type Error = ProtocolError;
    type Services = Resources;

    fn aggregate_type() -> String {
        "invite".to_string()
    }

    async fn handle(&self, d: Decide, resources: &Resources) -> Result<Vec<StoredEvent>, ProtocolError> {
        let state = self
            .events
            .iter()
            .fold(InviteState::default(), |s, e| invite::evolve(s, &e.0));
        let resource_id = match (&d.command, &state.invite) {
            (InviteCommand::Create(c), _) => c.resource_id.clone(),
            (_, Some(invite)) => invite.resource_id.clone(),
            (_, None) => return Err(ProtocolError::not_found("invite_id", "?")),
        };
        let none = ResourceState::default();
        let resource = resources.0.get(&resource_id).unwrap_or(&none);
        Ok(decide(&state, resource, &d.ctx, &d.command)?
            .into_iter()
            .map(StoredEvent)
            .collect())
    }

    fn apply(&mut self, event: StoredEvent) {
        self.events.push(event);
    }
}

/// The running alternative: answers `cqrs.cmd.<Command>` until dropped.
pub struct CqrsStore {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CqrsStore {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sixteen channels `bench-0`…`bench-15` owned by `owner`, as the bench registers them.
fn resources() -> Result<Resources, ProtocolError> {
    let mut map = HashMap::new();
    for r in 0..16 {
        let body = json!({"actor": "owner", "resource_id": format!("bench-{r}"), "kind": "channel", "name": "bench"});
        let req = CommandRequest::decode("RegisterResource", body.to_string().as_bytes())?;
        let Command::RegisterResource(c) = req.command else {
            unreachable!("decoded as RegisterResource")
        };
        let ctx = Ctx::new(req.meta.actor, req.meta.roles, Utc::now());
        let events = command::register(&ResourceState::default(), &ctx, &c)?;
        let state = events.iter().fold(ResourceState::default(), resource::evolve);
        map.insert(c.resource_id, state);
    }
    Ok(Resources(map))
}

impl CqrsStore {
    /// Fresh `events` and `snapshots` tables in database `invitebus_bench` on `postgres_url`'s
    /// server, and a service answering on `cqrs.cmd.*`.
    pub async fn start(client: async_nats::Client, postgres_url: &str) -> anyhow::Result<CqrsStore> {
        let admin = sqlx::PgPool::connect(&format!("{postgres_url}/postgres")).await?;
        let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
            .bind(DATABASE)
            .fetch_optional(&admin)
            .await?;
        if exists.is_none() {
            sqlx::query(&format!("CREATE DATABASE {DATABASE}"))
                .execute(&admin)
                .await?;
        }
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(16)
            .connect(&format!("{postgres_url}/{DATABASE}"))
            .await?;
        for sql in [
            "DROP TABLE IF EXISTS events",
            "DROP TABLE IF EXISTS snapshots",
            "CREATE TABLE events (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
             sequence bigint CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL, event_version text NOT NULL, \
             payload json NOT NULL, metadata json NOT NULL, PRIMARY KEY (aggregate_type, aggregate_id, sequence))",
            "CREATE TABLE snapshots (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
             last_sequence bigint CHECK (last_sequence >= 0) NOT NULL, current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL, \
             payload json NOT NULL, PRIMARY KEY (aggregate_type, aggregate_id, last_sequence))",
        ] {
            sqlx::query(sql).execute(&pool).await?;
        }
        let cqrs: Arc<PostgresCqrs<InviteAggregate>> = Arc::new(postgres_cqrs(pool, vec![], resources()?));
        let mut requests = client.queue_subscribe(format!("{PREFIX}.cmd.*"), "cqrs".into()).await?;
        let task = tokio::spawn(async move {
            while let Some(msg) = requests.next().await {
                let (client, cqrs) = (client.clone(), cqrs.clone());
                tokio::spawn(async move {
                    let Some(reply_to) = msg.reply else { return };
                    let name = msg.subject.as_str().rsplit('.').next().unwrap_or_default().to_string();
                    let reply = handle(&cqrs, &name, &msg.payload).await.unwrap_or_else(Reply::err);
                    let _ = client.publish(reply_to, reply.to_bytes().into()).await;
                });
            }
        });
        Ok(CqrsStore { task })
    }
}

async fn handle(cqrs: &PostgresCqrs<InviteAggregate>, name: &str, body: &[u8]) -> Result<Reply, ProtocolError> {
    let req = CommandRequest::decode(name, body)?;
    let ctx = Ctx::new(req.meta.actor.clone(), req.meta.roles.clone(), Utc::now());
    let (invite_id, command) = match req.command {
        // The resources are fixed; registering one is accepted and changes nothing.
        Command::RegisterResource(c) => return Ok(Reply::command_ok(json!({"resource_id": c.resource_id}), None)),
        Command::CreateInvite(mut c) => {
            let id = c
                .spec
                .invite_id
                .get_or_insert_with(|| Id::parse(uuid::Uuid::now_v7().to_string()).expect("a uuid is an id"))
                .clone();
            (id, InviteCommand::Create(c))
        }
        Command::AcceptInvite(c) => (c.invite_id.clone(), InviteCommand::Accept(c)),
        _ => {
            return Err(ProtocolError::invalid_command(format!(
                "{name} is not part of the benchmark workload"
            )))
        }
    };
    cqrs.execute(invite_id.as_ref(), Decide { ctx, command })
        .await
        .map_err(|e| match e {
            cqrs_es::AggregateError::UserError(e) => e,
            other => ProtocolError::unavailable(other.to_string()),
        })?;
    Ok(Reply::command_ok(json!({"invite_id": invite_id}), None))
}
