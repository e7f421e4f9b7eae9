//! `invitebus-bench commands --bus-auth`: what `--bus-auth token` costs the command service.
//! Each client is its own user with its own RS256 token from the test identity provider
//! (`testkit::idp`), so nothing is shared between clients; rounds alternate bus auth off, off
//! with the token sent anyway (what the bigger messages cost), on, and on with a verifier that
//! remembers one token (every request pays the RSA check).

use super::commands::{cpu_model, median, start_service_with, Figures, Store, Tally};
use super::CommandsArgs;
use anyhow::Context;
use invitebus_auth::{BusAuth, Keys, Verifier, VerifierSettings};
use invitebus_events::subject::Subjects;
use invitebus_natsrun::NatsServer;
use invitebus_testkit::idp::{self, Key};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
enum Mode {
    Off,
    /// The token travels in every request but nobody checks it: what carrying it costs NATS
    /// and the clients, apart from verifying it.
    Carried,
    Token {
        cache: usize,
    },
}

pub async fn run(args: CommandsArgs) -> anyhow::Result<()> {
    let _metrics = invitebus_metrics::install()?;
    println!(
        "invitebus-bench commands --bus-auth: {} clients (a user and an RS256 token each), {} s per run, {} cores, {}",
        args.clients,
        args.duration,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        cpu_model()
    );
    let nats = NatsServer::start_temp().context("starting a private nats-server")?;
    let tokens: Vec<String> = (0..args.clients)
        .map(|c| Key::Rs256.sign(&idp::claims(&user(c), &[], 3600), true))
        .collect();
    let modes = [
        ("bus auth off", Mode::Off),
        ("bus auth off, the token sent anyway", Mode::Carried),
        (
            "bus auth token (RS256, verified once per token)",
            Mode::Token { cache: 0 },
        ),
        (
            "bus auth token (RS256, verified every request)",
            Mode::Token { cache: 1 },
        ),
    ];
    let mut figures: Vec<Vec<Figures>> = modes.iter().map(|_| Vec::new()).collect();
    for round in 1..=args.rounds.max(1) {
        for (i, (label, mode)) in modes.iter().enumerate() {
            let f = one_run(&nats, &args, *mode, &tokens).await?;
            f.print(&format!("round {round}: {label}"));
            figures[i].push(f);
        }
    }
    println!();
    let medians: Vec<Figures> = figures.into_iter().map(median).collect();
    for ((label, _), f) in modes.iter().zip(&medians) {
        f.print(&format!("median: {label}"));
    }
    let ratio = |label: &str, a: &Figures, b: &Figures| {
        println!(
            "ratio {label}: {:.2}x   p99 {:+.2} ms",
            a.rate() / b.rate().max(1e-9),
            a.pct(0.99) - b.pct(0.99)
        )
    };
    ratio("token (cached) / off", &medians[2], &medians[0]);
    ratio(
        "token (cached) / token sent but unchecked (verification alone)",
        &medians[2],
        &medians[1],
    );
    ratio(
        "token sent but unchecked / off (carrying the header)",
        &medians[1],
        &medians[0],
    );
    ratio("token (uncached) / off", &medians[3], &medians[0]);
    Ok(())
}

fn user(c: usize) -> String {
    format!("u{c}")
}

fn bus_auth(mode: Mode) -> anyhow::Result<BusAuth> {
    Ok(match mode {
        Mode::Off | Mode::Carried => BusAuth::Off,
        Mode::Token { cache } => {
            let settings = VerifierSettings {
                cache,
                ..VerifierSettings::default()
            };
            let keys = Keys::from_jwks(idp::JWKS.as_bytes())?;
            BusAuth::Token {
                users: Arc::new(Verifier::new(settings, keys)),
                service: "bench-service-secret".into(),
            }
        }
    })
}

async fn one_run(nats: &NatsServer, args: &CommandsArgs, mode: Mode, tokens: &[String]) -> anyhow::Result<Figures> {
    let tuning = super::commands::Tuning {
        auth: bus_auth(mode)?,
        ..Default::default()
    };
    let service = start_service_with(
        &nats.url(),
        Store::Invitebus { max_batch: 1024 },
        None,
        args.connections,
        tuning,
    )
    .await?;
    let warmup = Instant::now() + Duration::from_secs(2);
    let end = warmup + Duration::from_secs(args.duration);
    let mut tasks = Vec::new();
    for (c, token) in tokens.iter().enumerate() {
        let client = service.client(c).clone();
        let subjects = service.subjects.clone();
        let token = (!matches!(mode, Mode::Off)).then(|| token.clone());
        tasks.push(tokio::spawn(async move {
            client_loop(c, client, subjects, token, warmup, end).await
        }));
    }
    let mut tallies = Vec::new();
    for t in tasks {
        tallies.push(t.await??);
    }
    let figures = Figures::gather(args.duration as f64, tallies);
    service.stop().await;
    Ok(figures)
}

/// Client `c` registers its own resource, then creates an invite on it and cancels it, again and
/// again until `end`, every request carrying its token (when bus auth is on).
async fn client_loop(
    c: usize,
    client: async_nats::Client,
    subjects: Subjects,
    token: Option<String>,
    warmup: Instant,
    end: Instant,
) -> anyhow::Result<Tally> {
    let mut headers = async_nats::HeaderMap::new();
    if let Some(t) = &token {
        headers.insert(invitebus_auth::bus::AUTHORIZATION, format!("Bearer {t}").as_str());
    }
    let (me, resource) = (user(c), format!("res-{c}"));
    let ask =
        |name: &str, body: String| client.request_with_headers(subjects.command(name), headers.clone(), body.into());
    let setup = format!(r#"{{"actor":"{me}","resource_id":"{resource}","kind":"channel","name":"bench"}}"#);
    let reply = ask("RegisterResource", setup).await?;
    anyhow::ensure!(
        reply.payload.starts_with(br#"{"ok":true"#),
        "setup: {}",
        String::from_utf8_lossy(&reply.payload)
    );
    let mut tally = Tally::new(warmup, end);
    let mut n = 0u64;
    while Instant::now() < end {
        n += 1;
        let body = format!(
            r#"{{"actor":"{me}","resource_id":"{resource}","invitee":"x{n}","command_id":"{}"}}"#,
            uuid::Uuid::now_v7()
        );
        let started = Instant::now();
        let invite_id = match ask("CreateInvite", body).await {
            Ok(msg) => serde_json::from_slice::<serde_json::Value>(&msg.payload)
                .ok()
                .and_then(|r| r["data"]["invite_id"].as_str().map(str::to_string)),
            Err(_) => None,
        };
        tally.count(started, invite_id.is_some());
        let Some(invite_id) = invite_id else { continue };
        let body = format!(
            r#"{{"actor":"{me}","invite_id":"{invite_id}","command_id":"{}"}}"#,
            uuid::Uuid::now_v7()
        );
        let started = Instant::now();
        let cancelled = match ask("CancelInvite", body).await {
            Ok(msg) => msg.payload.starts_with(br#"{"ok":true"#),
            Err(_) => false,
        };
        tally.count(started, cancelled);
    }
    Ok(tally)
}
