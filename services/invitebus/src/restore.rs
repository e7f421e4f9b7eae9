//! `invitebus restore --from-jetstream`: rebuilds a lost `events.db` from `INVITES_EVENTS`,
//! every event checked against the hash chain, with a progress bar; `serve` then resumes from
//! it. The replies of commands sent with a `command_id` come back too (the `Invitebus-Reply`
//! header on each command's last event), so a retry after the restore is answered, not decided
//! again. An interrupted restore goes on from where it stopped.

use crate::Common;
use anyhow::{bail, Context};
use async_nats::jetstream;
use invitebus_eventlog::copy::{complete_tip, copy_from_stream};
use invitebus_eventlog::stored::hash_of;
use invitebus_eventlog::{EventLog, Options};
use invitebus_events::subject::{Subjects, EVENTS_STREAM};
use std::time::Instant;

#[derive(clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub common: Common,
    /// Copy the log from JetStream's `INVITES_EVENTS` (the one source a restore has).
    #[arg(long, required = true)]
    pub from_jetstream: bool,
}

pub async fn run(args: RestoreArgs) -> anyhow::Result<()> {
    let path = args.common.data.join("events.db");
    // The writer's own lock: no restore under a running commands role, no two restores.
    let _lock = invitebus_filelock::lock(&path, "invitebus restore")?;
    let (client, _nats) =
        crate::nats::connect_or_start(&args.common.nats_url, &args.common.data, args.common.login()?.as_ref()).await?;
    let js = jetstream::new(client);
    let subjects = Subjects::new(args.common.prefix.clone());
    let mut stream = js
        .get_stream(EVENTS_STREAM)
        .await
        .context("no INVITES_EVENTS stream to restore from")?;
    let last = stream.info().await?.state.last_sequence;
    let log = EventLog::open(&path, &Options::default())?;
    let from = log.head();
    if from > last && last > 0 {
        // An earlier restore that completed the stream's last command (its rest, for `serve` to
        // publish): the log is the stream's history and that rest. Nothing more to do.
        let tip = stream.get_raw_message(last).await?;
        let ours = log.reader()?.read_published(last - 1, 1)?;
        let same = ours.first().map(|e| e.hash.as_str()) == Some(hash_of(&tip.payload).as_str());
        if same && invitebus_eventlog::stored::span_of(&tip.headers).is_some_and(|(_, end)| end == from) {
            println!(
                "{} is restored already: INVITES_EVENTS' {last} events and the rest of its last command ({} events, which `serve` publishes)",
                path.display(),
                from - last
            );
            return Ok(());
        }
    }
    if from > last {
        bail!(
            "{} holds {from} events, more than INVITES_EVENTS ({last}): it is not a lost log; nothing was changed",
            path.display()
        );
    }
    if from > 0 {
        // Going on from an earlier restore (or a log that survived in part): its head must be the
        // stream's event at that position, or the two histories differ.
        let theirs = hash_of(&stream.get_raw_message(from).await?.payload);
        let ours = log.reader()?.read_published(from - 1, 1)?;
        if ours.first().map(|e| e.hash.as_str()) != Some(theirs.as_str()) {
            bail!(
                "{} and INVITES_EVENTS differ at position {from}: move the file away and restore into an empty folder",
                path.display()
            );
        }
    }
    let started = Instant::now();
    let bar = crate::replay::bar("restore", last);
    bar.set_position(from);
    let mut log = copy_from_stream(&js, log, Some(last), |head| bar.set_position(head))
        .await
        .with_context(|| format!("restoring {}", path.display()))?;
    bar.finish_and_clear();
    let copied = log.head() - from;
    let restored_to = log.head();
    // A writer lost between two publishes of one command: its rest, which the stream's copy of
    // the command's first event carries, goes into the log for `serve` to publish.
    let completed = complete_tip(&js, &subjects, &mut log).await?;
    if completed > 0 {
        println!("the stream ended inside a command: appended its last {completed} events, which `serve` publishes");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "restored {copied} events into {} (positions {}..={}, hash chain verified) in {secs:.2} s ({:.0} events/s)",
        path.display(),
        from + 1,
        restored_to,
        copied as f64 / secs.max(1e-9)
    );
    Ok(())
}
