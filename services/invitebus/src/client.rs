//! `send`, `tail` and `health`: what a client on the bus does, from the shell.

use crate::Common;
use anyhow::{bail, Context};
use async_nats::jetstream;
use futures::StreamExt;
use invitebus_client::{Client, ClientError, EventFilter};
use invitebus_events::subject::EVENTS_STREAM;
use invitebus_events::{Envelope, Id};
use std::io::Read;
use std::time::Duration;

#[derive(clap::Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub common: Common,
    /// The command's name (e.g. CreateInvite), or the query's (e.g. received).
    pub command: String,
    /// The body: JSON text, `@file`, or `-` for standard input.
    pub body: String,
    /// Seconds to wait for a reply, each attempt.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    /// Attempts before giving up: a command is sent again with the same `command_id` (one is
    /// added when the body has none), so it applies once.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub attempts: u32,
    /// The token the request acts with (`Authorization: Bearer …` on the message), for a bus
    /// whose `serve` runs with `--bus-auth token`; `invitebus token` mints one.
    #[arg(long, env = "INVITEBUS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Sends one command; exit code 0 for an ok reply, 1 for an error reply.
/// Whether `send` sends a command or asks a query.
#[derive(Clone, Copy)]
pub enum Kind {
    Command,
    Query,
}

pub async fn send(args: SendArgs, kind: Kind) -> anyhow::Result<i32> {
    let body = match args.body.as_str() {
        "-" => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s
        }
        b if b.starts_with('@') => std::fs::read_to_string(&b[1..]).with_context(|| format!("reading {}", &b[1..]))?,
        b => b.to_string(),
    };
    if !invitebus_events::ids::is_valid_id(&args.command) {
        bail!("`{}` is not a command or query name", args.command);
    }
    let body: serde_json::Value = serde_json::from_str(&body).context("the body is not JSON")?;
    let nats = crate::nats::connect(&args.common.nats_url, args.common.login()?.as_ref()).await?;
    // The body's own actor goes as it is; the client's is used only by its typed calls.
    let actor = body["actor"].as_str().and_then(|a| Id::parse(a).ok());
    let mut client = Client::new(nats, actor.unwrap_or_else(|| Id::parse("cli").expect("an id")))
        .with_subjects(args.common.subjects())
        .with_timeout(Duration::from_secs(args.timeout))
        .with_attempts(args.attempts)
        // Nobody answering is said within 3 s (a standby's takeover takes about 2).
        .with_instant_retries_for(Duration::from_secs(3));
    if let Some(t) = &args.token {
        client = client.with_token(t.trim());
    }
    let answer = match kind {
        Kind::Command => client.send_raw(&args.command, body).await,
        Kind::Query => client.query_raw(&args.command, &body).await,
    }
    .map_err(|e| match e {
        ClientError::NoReply { .. } => anyhow::anyhow!("{e} (is `invitebus serve` running?)"),
        e => anyhow::anyhow!(e),
    })?;
    println!("{}", String::from_utf8_lossy(&answer.body));
    Ok(if answer.reply.ok { 0 } else { 1 })
}

async fn request(
    client: &async_nats::Client,
    subject: String,
    headers: async_nats::HeaderMap,
    body: Vec<u8>,
    timeout: u64,
) -> anyhow::Result<bytes::Bytes> {
    let msg = tokio::time::timeout(
        Duration::from_secs(timeout),
        client.request_with_headers(subject.clone(), headers, body.into()),
    )
    .await
    .with_context(|| format!("no reply on {subject} within {timeout} s"))?
    .with_context(|| format!("request to {subject} failed (is `invitebus serve` running?)"))?;
    Ok(msg.payload)
}

pub async fn health(common: Common) -> anyhow::Result<i32> {
    let client = crate::nats::connect(&common.nats_url, common.login()?.as_ref()).await?;
    let reply = request(
        &client,
        common.subjects().health(),
        Default::default(),
        b"{}".to_vec(),
        5,
    )
    .await?;
    println!("{}", String::from_utf8_lossy(&reply));
    Ok(0)
}

#[derive(clap::Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub common: Common,
    /// First position to print (default: the whole history).
    #[arg(long, default_value_t = 1)]
    pub from: u64,
    /// Only this event type, e.g. InviteAccepted.
    #[arg(long = "type")]
    pub event_type: Option<String>,
    /// Only this stream, e.g. invite-0193….
    #[arg(long)]
    pub stream: Option<String>,
    /// Stop after printing the history instead of following live events.
    #[arg(long)]
    pub no_follow: bool,
}

/// Prints `INVITES_EVENTS` from `--from`, then follows it live, through the client library's
/// event stream: it follows again after a disconnect or a server restart, from the position
/// after the last one printed (no gap, no line twice).
pub async fn tail(args: TailArgs) -> anyhow::Result<()> {
    let nats = crate::nats::connect(&args.common.nats_url, args.common.login()?.as_ref()).await?;
    let missing = || format!("no {EVENTS_STREAM} stream yet (has `invitebus serve` run?)");
    // With --no-follow: the history up to the stream's last message when tail starts.
    let last = match args.no_follow {
        true => {
            let mut stream = jetstream::new(nats.clone())
                .get_stream(EVENTS_STREAM)
                .await
                .with_context(missing)?;
            stream
                .info()
                .await
                .context("reading INVITES_EVENTS' last sequence")?
                .state
                .last_sequence
        }
        false => u64::MAX,
    };
    let filter = EventFilter {
        event_type: args.event_type.clone(),
        stream_id: args.stream.clone(),
    };
    let client = Client::new(nats, Id::parse("cli").expect("an id")).with_subjects(args.common.subjects());
    let mut events = client.events(args.from, Some(filter)).await.map_err(|e| match e {
        ClientError::Refused(p) if p.field.as_deref() == Some("event_type") => {
            anyhow::anyhow!("{}; known: {}", p.message, invitebus_events::Event::TYPES.join(", "))
        }
        ClientError::Refused(p) => anyhow::anyhow!("{} (e.g. invite-<id>)", p.message),
        e @ ClientError::Nats(_) => anyhow::Error::new(e).context(missing()),
        e => anyhow::anyhow!(e),
    })?;
    let mut keys: Option<Option<invitebus_keys::KeyRing>> = None;
    if args.from > last {
        return Ok(());
    }
    let filtered = args.event_type.is_some() || args.stream.is_some();
    let mut printed = args.from - 1;
    loop {
        let next = match args.no_follow {
            true => match tokio::time::timeout(Duration::from_millis(if filtered { 500 } else { 5000 }), events.next())
                .await
            {
                Ok(next) => next,
                // A filter's last match may come before the stream's last message; without
                // one, stopping short of it is a failure, not the end of the history.
                Err(_) if filtered => break,
                Err(_) => bail!("INVITES_EVENTS stopped answering after position {printed} of {last}"),
            },
            false => events.next().await,
        };
        let Some(env) = next else { break };
        let mut env = env.context("reading an event")?;
        if personal(&env.event_type) {
            if keys.is_none() {
                keys = Some(args.common.keys_if_reachable().await);
            }
            if let Some(Some(k)) = &keys {
                reveal(&mut env, k).await?;
            }
        }
        printed = env.position;
        if !crate::out::line(&serde_json::to_string(&env)?) || env.position >= last {
            break;
        }
    }
    Ok(())
}

/// True for the event types whose data holds personal fields (sealed in the log and the stream).
pub fn personal(event_type: &str) -> bool {
    invitebus_events::personal::is_personal(event_type)
}

/// Opens the personal fields of `env` with `keys` (`[forgotten]` where a key is gone).
pub async fn reveal(env: &mut Envelope, keys: &invitebus_keys::KeyRing) -> anyhow::Result<()> {
    if !personal(&env.event_type) {
        return Ok(());
    }
    let mut event = env
        .event()
        .map_err(|e| anyhow::anyhow!("position {}: {e}", env.position))?;
    keys.reveal(&mut event).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    env.data = event.data();
    Ok(())
}
