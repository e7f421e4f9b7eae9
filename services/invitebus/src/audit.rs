//! `invitebus audit`: reads the event log file directly (no NATS needed, safe beside a running serve).

use crate::Common;
use anyhow::{bail, Context};
use invitebus_eventlog::{verify, LogReader, VerifyError};

#[derive(clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCmd,
}

#[derive(clap::Subcommand)]
pub enum AuditCmd {
    /// Print one stream's events as JSON lines.
    History {
        #[command(flatten)]
        common: Common,
        /// e.g. invite-0193…, resource-conf1, user-fang
        stream_id: String,
        /// Only events up to this position.
        #[arg(long)]
        until: Option<u64>,
    },
    /// Recompute the hash chain; exit 1 naming the first altered position.
    Verify {
        #[command(flatten)]
        common: Common,
    },
}

fn open(common: &Common) -> anyhow::Result<LogReader> {
    let path = common.data.join("events.db");
    if !path.exists() {
        bail!("no event log at {} (set --data or INVITEBUS_DATA)", path.display());
    }
    LogReader::open(&path).with_context(|| format!("opening {}", path.display()))
}

pub async fn run(args: AuditArgs) -> anyhow::Result<i32> {
    match args.command {
        AuditCmd::History {
            common,
            stream_id,
            until,
        } => {
            let reader = open(&common)?;
            let events = reader.read_stream(&stream_id, until)?;
            if events.is_empty() {
                eprintln!("no events in stream {stream_id}");
                return Ok(1);
            }
            // Personal fields opened with the data keys (`[forgotten]` once a key is gone).
            let keys = match events.iter().any(|e| crate::client::personal(&e.event_type)) {
                true => common.keys_if_reachable().await,
                false => None,
            };
            for mut e in events {
                if let Some(keys) = &keys {
                    crate::client::reveal(&mut e, keys).await?;
                }
                if !crate::out::line(&serde_json::to_string(&e)?) {
                    break;
                }
            }
            Ok(0)
        }
        AuditCmd::Verify { common } => {
            let reader = open(&common)?;
            match verify(&reader) {
                Ok(report) => {
                    println!(
                        "ok: {} events, chain intact, head hash {}",
                        report.events, report.head_hash
                    );
                    Ok(0)
                }
                Err(VerifyError::Altered { position, reason }) => {
                    println!("ALTERED at position {position}: {reason}");
                    Ok(1)
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}
