//! `invitebus replay`: rebuilds projections from position 0 out of `INVITES_EVENTS`, or writes
//! an as-of snapshot of the views for an audit.

use crate::Common;
use anyhow::{bail, Context};
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use invitebus_events::subject::EVENTS_STREAM;
use invitebus_events::Envelope;
use invitebus_feed::Projection;
use invitebus_notifier::Notifier;
use invitebus_views::Views;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub common: Common,
    /// Which projection to rebuild: views, notifier or all. Stop the roles that own them first.
    #[arg(long, default_value = "all", value_parser = ["all", "views", "notifier"])]
    pub projection: String,
    /// Write an as-of snapshot of the views instead: up to this position, or this RFC 3339 time.
    #[arg(long, requires = "out")]
    pub until: Option<String>,
    /// Where the as-of snapshot goes (JSON).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Where to stop.
#[derive(Clone, Copy)]
enum Until {
    Head(u64),
    Time(chrono::DateTime<chrono::Utc>),
}

pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    // Like serve, start the local nats-server (and its JetStream store under the data folder)
    // when none answers: projections are usually rebuilt while serve is stopped.
    let (client, _nats) = crate::nats::connect_or_start(&args.common.nats_url, &args.common.data).await?;
    let js = jetstream::new(client);
    let mut stream = js
        .get_stream(EVENTS_STREAM)
        .await
        .context("no INVITES_EVENTS stream (has serve run?)")?;
    let head = stream.info().await?.state.last_sequence;
    if let Some(until) = &args.until {
        let until = match until.parse::<u64>() {
            Ok(p) => Until::Head(p.min(head)),
            Err(_) => Until::Time(
                chrono::DateTime::parse_from_rfc3339(until)
                    .with_context(|| format!("--until {until}: want a position or an RFC 3339 time"))?
                    .with_timezone(&chrono::Utc),
            ),
        };
        let out = args.out.expect("clap requires --out");
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("views.db");
        let views = Views::open(&path)?;
        let views = replay(&js, views, until, head, "views as of").await?;
        let mut snapshot = invitebus_views::snapshot::snapshot(&path)?;
        snapshot["as_of_position"] = serde_json::json!(views.position());
        std::fs::write(&out, serde_json::to_vec_pretty(&snapshot)?)?;
        println!(
            "wrote the views as of position {} to {}",
            views.position(),
            out.display()
        );
        return Ok(());
    }
    std::fs::create_dir_all(&args.common.data)?;
    // Take every file's lock before touching any: a running role's file is never swapped under it.
    let mut locks = Vec::new();
    for (name, file) in [("views", "views.db"), ("notifier", "notifier.db")] {
        if matches!(args.projection.as_str(), "all") || args.projection == name {
            let target = args.common.data.join(file);
            locks.push(invitebus_filelock::lock(&target, "invitebus replay").map_err(|e| {
                anyhow::anyhow!(
                    "{e}: a replay would replace {} under it (`replay --until … --out FILE` only reads and may run while serving)",
                    target.display()
                )
            })?);
        }
    }
    if matches!(args.projection.as_str(), "all" | "views") {
        let target = args.common.data.join("views.db");
        let fresh = fresh_path(&target)?;
        let views = replay(&js, Views::open(&fresh)?, Until::Head(head), head, "views").await?;
        drop(views);
        swap(&fresh, &target)?;
    }
    if matches!(args.projection.as_str(), "all" | "notifier") {
        let target = args.common.data.join("notifier.db");
        let fresh = fresh_path(&target)?;
        // A rebuilt notifier records every notification as already sent: a replay sends nothing.
        let notifier = replay(
            &js,
            Notifier::open_rebuild(&fresh)?,
            Until::Head(head),
            head,
            "notifier",
        )
        .await?;
        drop(notifier);
        swap(&fresh, &target)?;
    }
    drop(locks);
    Ok(())
}

/// `<target>.rebuild`, emptied.
fn fresh_path(target: &Path) -> anyhow::Result<PathBuf> {
    let fresh = target.with_extension("db.rebuild");
    remove_db(&fresh)?;
    Ok(fresh)
}

fn remove_db(path: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        if p.exists() {
            std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    Ok(())
}

/// Replaces `target` with the rebuilt file.
fn swap(fresh: &Path, target: &Path) -> anyhow::Result<()> {
    remove_db(target)?;
    std::fs::rename(fresh, target).with_context(|| format!("moving the rebuilt file to {}", target.display()))?;
    println!("rebuilt {}", target.display());
    Ok(())
}

/// Applies every event from position 1 up to `until` to `projection`, showing progress.
async fn replay<P: Projection>(
    js: &jetstream::Context,
    mut projection: P,
    until: Until,
    head: u64,
    label: &str,
) -> anyhow::Result<P> {
    let started = Instant::now();
    let last = match until {
        Until::Head(p) => p,
        Until::Time(_) => head,
    };
    if last > 0 {
        let stream = js.get_stream(EVENTS_STREAM).await?;
        let consumer = stream.create_consumer(consumer::pull::OrderedConfig::default()).await?;
        let mut chunks = consumer.messages().await?.ready_chunks(invitebus_feed::BATCH);
        let mut done = false;
        while !done {
            let Some(chunk) = chunks.next().await else { break };
            let mut batch = Vec::with_capacity(chunk.len());
            for msg in chunk {
                let env: Envelope = serde_json::from_slice(&msg.map_err(|e| anyhow::anyhow!("{e}"))?.payload)?;
                let past = match until {
                    Until::Head(p) => env.position > p,
                    Until::Time(t) => env.recorded_at > t,
                };
                if past {
                    done = true;
                    break;
                }
                done = env.position >= last;
                batch.push(env);
                if done {
                    break;
                }
            }
            projection = tokio::task::spawn_blocking(move || {
                projection.apply(&batch).map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok::<P, anyhow::Error>(projection)
            })
            .await??;
            progress(label, projection.position(), last, started);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!();
    println!(
        "{label}: {} events in {secs:.2} s ({:.0} events/s)",
        projection.position(),
        projection.position() as f64 / secs.max(1e-9)
    );
    if let Until::Head(p) = until {
        if projection.position() < p {
            bail!(
                "{label}: the stream ended at position {} before {p}",
                projection.position()
            );
        }
    }
    Ok(projection)
}

fn progress(label: &str, at: u64, of: u64, started: Instant) {
    let pct = if of == 0 { 100.0 } else { at as f64 * 100.0 / of as f64 };
    let filled = (pct / 5.0) as usize;
    let rate = at as f64 / started.elapsed().as_secs_f64().max(1e-9);
    eprint!(
        "\r{label} [{}{}] {pct:5.1}% {at}/{of} events, {rate:.0} events/s",
        "#".repeat(filled),
        ".".repeat(20 - filled.min(20))
    );
    let _ = std::io::stderr().flush();
}
