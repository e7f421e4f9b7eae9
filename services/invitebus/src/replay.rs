//! `invitebus replay`: rebuilds projections from position 0, or writes an as-of snapshot of the
//! views for an audit. The bulk path reads the local `events.db` when the data folder has it, up
//! to the relay's acknowledged position; what JetStream holds beyond that (and everything, on a
//! machine without the log) comes from `INVITES_EVENTS`. Either way, nothing JetStream has not
//! stored reaches a view.

use crate::Common;
use anyhow::{bail, Context};
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use invitebus_eventlog::{LogReader, RELAY_CHECKPOINT};
use invitebus_events::subject::EVENTS_STREAM;
use invitebus_events::Envelope;
use invitebus_feed::bulk::{self, ReadSettings};
use invitebus_feed::Projection;
use invitebus_notifier::Notifier;
use invitebus_views::Views;
use std::path::PathBuf;
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
    /// With --until: only this resource's views (its invites, records, codes, members and the
    /// people they name), read from its own streams in the local log.
    #[arg(long, requires = "until")]
    pub resource: Option<String>,
    /// Rebuild even when the data keys cannot be reached: personal fields are then written as
    /// stored, sealed (the roles rewrite nothing of them later). Refused without it.
    #[arg(long)]
    pub sealed: bool,
}

/// Where to stop.
#[derive(Clone, Copy)]
enum Until {
    Position(u64),
    Time(chrono::DateTime<chrono::Utc>),
}

/// The events at hand: JetStream's, and the local log's with how far the relay acknowledged it.
struct Sources {
    js: jetstream::Context,
    /// `INVITES_EVENTS`' last sequence: nothing beyond it is read.
    stored: u64,
    log: Option<(PathBuf, u64)>,
    /// Opens personal fields (None when the data keys cannot be reached: they stay sealed).
    keys: Option<std::sync::Arc<invitebus_keys::KeyRing>>,
    /// The views' phone hashes are keyed with it.
    master: invitebus_keys::MasterKey,
}

pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    // Like serve, start the local nats-server (and its JetStream store under the data folder)
    // when none answers: projections are usually rebuilt while serve is stopped.
    let (client, _nats) =
        crate::nats::connect_or_start(&args.common.nats_url, &args.common.data, args.common.login()?.as_ref()).await?;
    let keys = match args.common.key_ring(&client, false).await {
        Ok(k) => Some(std::sync::Arc::new(k)),
        Err(e) if args.sealed => {
            eprintln!("note: personal fields stay sealed in what is rebuilt ({e:#})");
            None
        }
        Err(e) => bail!(
            "{e:#}: without the data keys the rebuilt files would hold personal fields sealed; \
             use invitebus's service credential and INVITEBUS_MASTER_KEY, or --sealed to rebuild anyway"
        ),
    };
    let js = jetstream::new(client);
    let mut stream = js
        .get_stream(EVENTS_STREAM)
        .await
        .context("no INVITES_EVENTS stream (has serve run?)")?;
    let stored = stream.info().await?.state.last_sequence;
    let path = args.common.data.join("events.db");
    let log = match path.is_file() {
        true => {
            let acknowledged = LogReader::open(&path)?.checkpoint(RELAY_CHECKPOINT)?;
            Some((path, acknowledged.min(stored)))
        }
        false => None,
    };
    let master = invitebus_keys::MasterKey::new(&args.common.master_key);
    let sources = Sources {
        js,
        stored,
        log,
        keys,
        master,
    };
    if let Some(until) = &args.until {
        let until = match until.parse::<u64>() {
            // A position past what JetStream holds cannot be had: say so, not a snapshot of less.
            Ok(p) if p > stored => anyhow::bail!(
                "--until {p}: JetStream holds positions up to {stored} only (the local log is read as far as \
                 the relay acknowledged it, which is never further); ask for {stored} or less"
            ),
            Ok(p) => Until::Position(p),
            Err(_) => Until::Time(
                chrono::DateTime::parse_from_rfc3339(until)
                    .with_context(|| format!("--until {until}: want a position or an RFC 3339 time"))?
                    .with_timezone(&chrono::Utc),
            ),
        };
        let out = args.out.expect("clap requires --out");
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("views.db");
        let resource = match &args.resource {
            Some(resource) => Some(
                invitebus_events::Id::parse(resource.clone())
                    .map_err(|e| anyhow::anyhow!("--resource {resource}: {e}"))?,
            ),
            None => None,
        };
        let position = match &resource {
            Some(resource) => {
                let catalogue = args.common.data.join("views.db");
                as_of_resource(&sources, until, resource, &path, &catalogue).await?
            }
            None => {
                let views = Views::open(&path)?.with_phone_key(sources.master.clone());
                rebuild(&sources, views, until, "views as of").await?.position()
            }
        };
        // Written beside the target and renamed over it once whole: a failure part-way leaves
        // no truncated snapshot where an auditor would look, and an earlier one as it was.
        let folder = out
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let mut file = tempfile::NamedTempFile::new_in(folder)?;
        let resource = resource.as_ref().map(|r| r.as_str());
        let mut writer = std::io::BufWriter::new(file.as_file_mut());
        invitebus_views::snapshot::write(&path, resource, position, &mut writer)?;
        std::io::Write::flush(&mut writer)?;
        drop(writer);
        file.as_file().sync_all()?;
        file.persist(&out)?;
        println!("wrote the views as of position {position} to {}", out.display());
        return Ok(());
    }
    std::fs::create_dir_all(&args.common.data)?;
    let locks = lock_targets(&args)?;
    let all = Until::Position(stored);
    if matches!(args.projection.as_str(), "all" | "views") {
        let mut views = Views::open(args.common.data.join("views.db"))?.with_phone_key(sources.master.clone());
        views.begin_load()?;
        rebuild(&sources, views, all, "views").await?;
    }
    if matches!(args.projection.as_str(), "all" | "notifier") {
        // A rebuilt notifier records every notification as already sent: a replay sends nothing.
        let mut notifier = Notifier::open_rebuild(&args.common.data.join("notifier.db"))?;
        notifier.begin_load()?;
        rebuild(&sources, notifier, all, "notifier").await?;
    }
    drop(locks);
    Ok(())
}

/// One resource's views as of `until`: from its own streams when the local log holds that
/// far (acknowledged by the relay), else from a whole as-of rebuild (the stream's), restricted.
/// `catalogue` (the served views, if there) names the resource's streams without a log scan.
async fn as_of_resource(
    sources: &Sources,
    until: Until,
    resource: &invitebus_events::Id,
    path: &std::path::Path,
    catalogue: &std::path::Path,
) -> anyhow::Result<u64> {
    let local = match (&sources.log, until) {
        (Some((log, acknowledged)), Until::Position(p)) => (p <= *acknowledged).then(|| (log.clone(), p)),
        // Only when the log holds (acknowledged) an event after the time: a log that ends
        // before it may be stale, and JetStream may hold later events recorded before it.
        (Some((log, acknowledged)), Until::Time(t)) => {
            let p = LogReader::open(log)?.position_at(&invitebus_events::envelope::format_time(&t))?;
            (p < *acknowledged).then(|| (log.clone(), p))
        }
        (None, _) => None,
    };
    let Some((log, position)) = local else {
        let views = Views::open(path)?.with_phone_key(sources.master.clone());
        return Ok(rebuild(sources, views, until, "views as of").await?.position());
    };
    let (path, catalogue, resource) = (path.to_path_buf(), catalogue.to_path_buf(), resource.clone());
    let (keys, master) = (sources.keys.clone(), sources.master.clone());
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let reader = LogReader::open(&log)?;
        let catalogue = match catalogue.is_file() {
            true => Some(rusqlite::Connection::open_with_flags(
                &catalogue,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )?),
            false => None,
        };
        let mut views = Views::open(&path)?.with_phone_key(master);
        let events = invitebus_views::part::load(
            &mut views,
            &reader,
            catalogue.as_ref(),
            &resource,
            position,
            keys.as_deref(),
        )?;
        println!(
            "views of {resource} as of {position}: {events} events of its streams in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        Ok(position)
    })
    .await?
}

/// Every target file's lock, taken before any is touched: a running role's file is never
/// swapped under it.
fn lock_targets(args: &ReplayArgs) -> anyhow::Result<Vec<invitebus_filelock::FileLock>> {
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
    Ok(locks)
}

/// Brings `projection` (at position 0, or with a load begun) to `until`: in bulk from the local
/// log as far as the relay acknowledged it, then from JetStream. Prints the rate.
async fn rebuild<P: Projection>(sources: &Sources, mut projection: P, until: Until, label: &str) -> anyhow::Result<P> {
    let started = Instant::now();
    // The bulk part stops at the position the time names in the log, never past what the relay
    // acknowledged; the stream part goes on until an event is later than the time (a stale or
    // deposed log cannot stop it short nor send it past what JetStream stored).
    let (bulk_until, target) = match (until, &sources.log) {
        (Until::Position(p), _) => (p, p),
        (Until::Time(t), Some((path, _))) => (
            LogReader::open(path)?.position_at(&invitebus_events::envelope::format_time(&t))?,
            sources.stored,
        ),
        (Until::Time(_), None) => (0, sources.stored),
    };
    let progress = bar(label, target);
    if let Some((path, acknowledged)) = sources.log.clone() {
        let (bar_, label_) = (progress.clone(), label.to_string());
        let settings = ReadSettings {
            keys: sources.keys.clone(),
            ..Default::default()
        };
        projection = tokio::task::spawn_blocking(move || {
            bulk::load(&mut projection, &path, bulk_until.min(acknowledged), &settings, |p| {
                bar_.set_position(p);
                Ok(())
            })
            .map_err(|e| anyhow::anyhow!("{label_}: {e}"))?;
            Ok::<P, anyhow::Error>(projection)
        })
        .await??;
    }
    if projection.position() < target {
        projection = from_stream(sources, projection, until, target, &progress).await?;
    }
    // A load from the stream alone is swapped in now (after the bulk path, it already was).
    let label_ = label.to_string();
    projection = tokio::task::spawn_blocking(move || {
        projection.finish_load().map_err(|e| anyhow::anyhow!("{label_}: {e}"))?;
        Ok::<P, anyhow::Error>(projection)
    })
    .await??;
    progress.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{label}: {} events in {secs:.2} s ({:.0} events/s)",
        projection.position(),
        projection.position() as f64 / secs.max(1e-9)
    );
    if let Until::Position(p) = until {
        if projection.position() < p {
            bail!(
                "{label}: the stream ended at position {} before {p}",
                projection.position()
            );
        }
    }
    Ok(projection)
}

/// Applies the events after the projection's position from `INVITES_EVENTS`, up to `until`.
async fn from_stream<P: Projection>(
    sources: &Sources,
    mut projection: P,
    until: Until,
    last: u64,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<P> {
    let stream = sources.js.get_stream(EVENTS_STREAM).await?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: projection.position() + 1,
            },
            ..Default::default()
        })
        .await?;
    let mut chunks = consumer.messages().await?.ready_chunks(invitebus_feed::BATCH);
    let mut done = false;
    while !done {
        let Some(chunk) = chunks.next().await else { break };
        let mut batch = Vec::with_capacity(chunk.len());
        for msg in chunk {
            let env: Envelope = serde_json::from_slice(&msg.map_err(|e| anyhow::anyhow!("{e}"))?.payload)?;
            let past = match until {
                Until::Position(p) => env.position > p,
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
        let keys = sources.keys.clone();
        projection = tokio::task::spawn_blocking(move || {
            invitebus_feed::apply_revealed(&mut projection, &batch, keys.as_deref())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok::<P, anyhow::Error>(projection)
        })
        .await??;
        progress.set_position(projection.position());
    }
    Ok(projection)
}

/// A progress bar on stderr for `of` events: rate and time left.
pub(crate) fn bar(label: &str, of: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(of);
    let style = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {percent:>3}% {human_pos}/{human_len} events, {per_sec}, {eta} left",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("#>.");
    bar.set_style(style);
    bar.set_message(label.to_string());
    bar
}
