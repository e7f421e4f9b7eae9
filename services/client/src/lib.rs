//! A client for invitebus on NATS, for Rust programs that publish commands and read views.
//!
//! - [`Client::send`] takes a typed [`Command`] (the wire contract's own types), gives it a
//!   `command_id` and, when no reply comes (a timeout, no responders while a writer takes over,
//!   or `unavailable`), sends it again with the same id: the command service answers a retry with
//!   the first reply and appends nothing, so a retry is always safe.
//! - Every reply's `position` is remembered; [`Client::query`] sends the highest as
//!   `min_position`, so a query after a command sees it (read your writes).
//! - [`Client::events`] follows `INVITES_EVENTS` from a position as a `Stream` of envelopes that
//!   resumes after a disconnect or a server restart from the last position it gave, with no gap
//!   and no duplicate.
//!
//! ```no_run
//! use futures::StreamExt;
//! use invitebus_client::{Client, Query};
//! use invitebus_events::command::{InviteRef, JoinResource};
//! use invitebus_events::{Command, Id};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let nats = async_nats::connect("nats://127.0.0.1:4222").await?;
//! let fang = Client::new(nats, Id::parse("fang")?);
//!
//! let join = JoinResource { resource_id: Id::parse("conf")? };
//! let sent = fang.send(Command::JoinResource(join)).await?;
//! println!("appended up to position {:?}", sent.position);
//!
//! // Sees the join: the query waits for the views to reach the command's position.
//! let received = fang.query(Query::Received { status: None, page: None, per_page: None }).await?;
//! println!("{received}");
//! # let _ = InviteRef { invite_id: Id::parse("i1")? };
//!
//! let mut events = fang.events(1, None).await?;
//! while let Some(envelope) = events.next().await {
//!     let envelope = envelope?;
//!     println!("{} {}", envelope.position, envelope.event_type);
//! }
//! # Ok(())
//! # }
//! ```

mod events;
mod query;

pub use events::{EventFilter, Events};
pub use query::Query;

use async_nats::HeaderMap;
use invitebus_events::subject::Subjects;
use invitebus_events::{Command, CommandMeta, CommandRequest, ErrorCode, Id, ProtocolError, Reply};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// invitebus answered with an error from the protocol's catalogue (`code`, `field`).
    #[error("refused: {0}")]
    Refused(ProtocolError),
    /// No reply after every attempt; the command may or may not have been applied: send it
    /// again with the same `command_id` ([`Client::send_with_id`]) to find out.
    #[error("no reply on {subject} after {attempts} attempts")]
    NoReply { subject: String, attempts: u32 },
    #[error("the reply is not a protocol reply")]
    Decode(#[source] serde_json::Error),
    #[error("the NATS request failed")]
    Nats(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ClientError {
    fn nats(e: impl std::error::Error + Send + Sync + 'static) -> ClientError {
        ClientError::Nats(Box::new(e))
    }
}

/// A command's success: its reply's `data`, and the position of the last event it appended
/// (None when it appended nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub data: Value,
    pub position: Option<u64>,
}

/// A reply as it came (the bytes, for those who print or pass it on) and decoded.
#[derive(Debug, Clone)]
pub struct Answer {
    pub reply: Reply,
    pub body: bytes::Bytes,
}

/// A connection to invitebus acting for one user. Cheap to clone; clones share what they have
/// seen, so a query on one reads the writes of another.
#[derive(Clone)]
pub struct Client {
    nats: async_nats::Client,
    subjects: Subjects,
    actor: Id,
    roles: Vec<String>,
    token: Option<String>,
    timeout: Duration,
    attempts: u32,
    /// How long instant answers are retried; None: attempts × timeout.
    instant_for: Option<Duration>,
    seen: Arc<AtomicU64>,
}

impl Client {
    /// Acting for `actor`, on the default prefix, 7 s per attempt (a query waits up to 5 s for
    /// its `min_position` before answering `unavailable`), 4 attempts.
    pub fn new(nats: async_nats::Client, actor: Id) -> Client {
        Client {
            nats,
            subjects: Subjects::default(),
            actor,
            roles: Vec::new(),
            token: None,
            timeout: Duration::from_secs(7),
            attempts: 4,
            instant_for: None,
            seen: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The subjects of a deployment with another prefix (`INVITEBUS_PREFIX`).
    pub fn with_subjects(mut self, subjects: Subjects) -> Client {
        self.subjects = subjects;
        self
    }

    /// Roles sent with each request (believed only on a bus without `--bus-auth token`).
    pub fn with_roles<R: Into<String>>(mut self, roles: impl IntoIterator<Item = R>) -> Client {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// A token sent as `Authorization: Bearer …` with each request (`--bus-auth token`).
    pub fn with_token(mut self, token: impl Into<String>) -> Client {
        self.token = Some(token.into());
        self
    }

    /// How long one attempt waits for its reply.
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// How many attempts may time out before [`ClientError::NoReply`] (at least 1). Answers
    /// that come at once (no responders, `unavailable`: a writer taking over) are retried
    /// until attempts × timeout has passed, not counted.
    pub fn with_attempts(mut self, attempts: u32) -> Client {
        self.attempts = attempts.max(1);
        self
    }

    /// How long answers that come at once (no responders, `unavailable`) are retried, instead
    /// of attempts × timeout: short for a person at a terminal, long enough for a takeover.
    pub fn with_instant_retries_for(mut self, wait: Duration) -> Client {
        self.instant_for = Some(wait);
        self
    }

    /// The highest position any reply has carried: what the next query waits for.
    pub fn seen_position(&self) -> u64 {
        self.seen.load(Ordering::Acquire)
    }

    /// Sends `command` with a fresh `command_id`.
    pub async fn send(&self, command: Command) -> Result<Sent, ClientError> {
        self.send_with_id(command, uuid::Uuid::now_v7().to_string()).await
    }

    /// Sends `command` with `command_id`: the same id again gets the first reply.
    pub async fn send_with_id(&self, command: Command, command_id: impl Into<String>) -> Result<Sent, ClientError> {
        let mut meta = CommandMeta::new(self.actor.clone());
        meta.roles = self.roles.clone();
        meta.command_id = Some(command_id.into());
        let name = command.name();
        let body = CommandRequest::new(meta, command).to_body();
        let reply = self.request(self.subjects.command(name), &body).await?;
        let position = reply.position.flatten();
        self.saw(position);
        Ok(Sent {
            data: reply.data.unwrap_or(Value::Null),
            position,
        })
    }

    /// Sends the command `name` with `body` as JSON (the CLI's `send`): a `command_id` is added
    /// when the body has none, so its retries are safe too; the body's own `actor` wins.
    pub async fn send_raw(&self, name: &str, mut body: Value) -> Result<Answer, ClientError> {
        if let Value::Object(o) = &mut body {
            if o.get("command_id").is_none_or(Value::is_null) {
                o.insert("command_id".into(), uuid::Uuid::now_v7().to_string().into());
            }
        }
        let answer = self.exchange(self.subjects.command(name), &body).await?;
        self.saw(answer.reply.position.flatten());
        Ok(answer)
    }

    /// Asks `query`, after the views have reached every position this client has seen.
    pub async fn query(&self, query: Query) -> Result<Value, ClientError> {
        let mut body = query.fields();
        if let Value::Object(o) = &mut body {
            o.insert("actor".into(), self.actor.as_str().into());
            if !self.roles.is_empty() {
                o.insert("roles".into(), self.roles.clone().into());
            }
            let seen = self.seen_position();
            if seen > 0 {
                o.insert("min_position".into(), seen.into());
            }
        }
        let reply = self.request(self.subjects.query(query.name()), &body).await?;
        Ok(reply.data.unwrap_or(Value::Null))
    }

    /// Asks the query `name` with `body` as JSON (the CLI's `query`), retried like a command.
    pub async fn query_raw(&self, name: &str, body: &Value) -> Result<Answer, ClientError> {
        self.exchange(self.subjects.query(name), body).await
    }

    /// The events from `from` on (1: the whole history), then live; see [`Events`].
    pub async fn events(&self, from: u64, filter: Option<EventFilter>) -> Result<Events, ClientError> {
        Events::follow(
            self.nats.clone(),
            self.subjects.clone(),
            from,
            filter.unwrap_or_default(),
        )
        .await
    }

    fn saw(&self, position: Option<u64>) {
        if let Some(p) = position {
            self.seen.fetch_max(p, Ordering::AcqRel);
        }
    }

    /// [`Client::exchange`], with an error reply as [`ClientError::Refused`].
    async fn request(&self, subject: String, body: &Value) -> Result<Reply, ClientError> {
        let reply = self.exchange(subject, body).await?.reply;
        match (reply.ok, reply.error.clone()) {
            (true, _) => Ok(reply),
            (false, Some(e)) => Err(ClientError::Refused(e)),
            (false, None) => Err(ClientError::Refused(ProtocolError::new(
                ErrorCode::Internal,
                "an error reply without its error",
            ))),
        }
    }

    /// Sends `body` on `subject` until a reply other than `unavailable` comes: at most
    /// `attempts` timeouts, and no longer than attempts × timeout for answers that come at once
    /// (no responders, `unavailable`), waiting 100 ms, 200 ms, … (at most 2 s) between tries.
    async fn exchange(&self, subject: String, body: &Value) -> Result<Answer, ClientError> {
        let payload = payload(body);
        let deadline = Instant::now() + self.instant_for.unwrap_or(self.timeout * self.attempts);
        let mut pause = Duration::from_millis(100);
        let mut timeouts = 0;
        loop {
            match self.once(&subject, payload.clone()).await? {
                Attempt::Answer(answer) if !unavailable(&answer.reply) || Instant::now() >= deadline => {
                    return Ok(answer)
                }
                Attempt::Answer(_) => tracing::debug!(subject, "unavailable; sending again"),
                Attempt::NoResponders => tracing::debug!(subject, "no responders; sending again"),
                Attempt::TimedOut => {
                    timeouts += 1;
                    tracing::debug!(subject, timeouts, "no reply; sending again");
                }
            }
            if timeouts >= self.attempts || Instant::now() >= deadline {
                return Err(ClientError::NoReply {
                    subject,
                    attempts: self.attempts,
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// One attempt, waiting `timeout` for its reply.
    async fn once(&self, subject: &str, payload: bytes::Bytes) -> Result<Attempt, ClientError> {
        let mut headers = HeaderMap::new();
        if let Some(t) = &self.token {
            headers.insert("Authorization", format!("Bearer {t}").as_str());
        }
        let request = async_nats::Request::new()
            .headers(headers)
            .payload(payload)
            .timeout(Some(self.timeout));
        match self.nats.send_request(subject.to_string(), request).await {
            Err(e) => match e.kind() {
                async_nats::RequestErrorKind::TimedOut => Ok(Attempt::TimedOut),
                async_nats::RequestErrorKind::NoResponders => Ok(Attempt::NoResponders),
                async_nats::RequestErrorKind::InvalidSubject
                | async_nats::RequestErrorKind::MaxPayloadExceeded
                | async_nats::RequestErrorKind::Other => Err(ClientError::nats(e)),
            },
            Ok(msg) => match serde_json::from_slice(&msg.payload) {
                Ok(reply) => Ok(Attempt::Answer(Answer {
                    reply,
                    body: msg.payload,
                })),
                Err(e) => Err(ClientError::Decode(e)),
            },
        }
    }
}

/// What one attempt got.
enum Attempt {
    Answer(Answer),
    TimedOut,
    NoResponders,
}

fn unavailable(reply: &Reply) -> bool {
    reply.error.as_ref().is_some_and(|e| e.code == ErrorCode::Unavailable)
}

fn payload(body: &Value) -> bytes::Bytes {
    serde_json::to_vec(body).unwrap_or_default().into()
}
