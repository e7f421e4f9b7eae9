//! `invitebus export`: requests an export of the admin view, shows its progress from the
//! progress subject, and downloads the file from the object store.

use crate::Common;
use anyhow::{bail, Context};
use futures::StreamExt;
use invitebus_events::subject::EXPORTS_BUCKET;
use invitebus_events::Reply;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncReadExt;

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub common: Common,
    /// Admin filters, e.g. --filter resource_id=expo1 --filter status=approved.
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
    #[arg(long, default_value = "xlsx", value_parser = ["xlsx", "csv"])]
    pub format: String,
    /// Where the file goes.
    #[arg(long)]
    pub out: PathBuf,
    /// Who asks (an admin).
    #[arg(long, default_value = "admin")]
    pub actor: String,
}

pub async fn run(args: ExportArgs) -> anyhow::Result<i32> {
    let mut filters = Map::new();
    for f in &args.filters {
        let (k, v) = f
            .split_once('=')
            .with_context(|| format!("--filter {f}: want KEY=VALUE"))?;
        filters.insert(k.to_string(), Value::String(v.to_string()));
    }
    let client = crate::nats::connect(&args.common.nats_url, args.common.login()?.as_ref()).await?;
    let subjects = args.common.subjects();
    let mut progress = client
        .subscribe(format!("{}.export.*.progress", subjects.prefix()))
        .await?;
    let body = json!({"actor": args.actor, "roles": ["admin"], "filters": filters, "format": args.format});
    let msg = client
        .request(subjects.command("RequestExport"), body.to_string().into())
        .await?;
    let reply: Reply = serde_json::from_slice(&msg.payload)?;
    let export_id = match reply.into_result() {
        Ok(data) => data["export_id"].as_str().unwrap_or_default().to_string(),
        Err(e) => {
            println!("{}", serde_json::to_string(&Reply::err(e))?);
            return Ok(1);
        }
    };
    eprintln!("export {export_id} requested");
    let last = loop {
        let Some(msg) = tokio::time::timeout(Duration::from_secs(600), progress.next())
            .await
            .context("no progress for 10 minutes")?
        else {
            bail!("the progress subscription ended");
        };
        let p: Value = serde_json::from_slice(&msg.payload).unwrap_or(Value::Null);
        if p["export_id"] != export_id.as_str() {
            continue;
        }
        let pct = p["progress"].as_u64().unwrap_or(0).min(100) as usize;
        eprint!(
            "\r[{}{}] {pct:3}% {:<14} {} rows",
            "#".repeat(pct / 5),
            ".".repeat(20 - pct / 5),
            p["status"].as_str().unwrap_or(""),
            p["count"]
        );
        let _ = std::io::stderr().flush();
        if matches!(p["status"].as_str(), Some("success" | "failed" | "upload_failure")) {
            eprintln!();
            break p;
        }
    };
    if last["status"] != "success" {
        println!("{last}");
        return Ok(1);
    }
    let js = async_nats::jetstream::new(client);
    let store = js.get_object_store(EXPORTS_BUCKET).await?;
    let mut object = store.get(format!("{export_id}.{}", args.format)).await?;
    let mut bytes = Vec::new();
    object.read_to_end(&mut bytes).await?;
    std::fs::write(&args.out, &bytes).with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "wrote {} ({} bytes, {} rows)",
        args.out.display(),
        bytes.len(),
        last["count"]
    );
    Ok(0)
}
