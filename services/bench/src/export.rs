//! `invitebus-bench export`: a million admin records to xlsx and to csv through the exporter's
//! own writing path (no NATS, no upload), with seconds, rows/s and the process's peak memory
//! while writing, against its memory before (the views file is built first).

use super::queries::{envelope, history};
use invitebus_views::Views;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args, Clone)]
pub struct ExportBenchArgs {
    /// Records to export.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
}

/// Resident memory of this process now, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

pub async fn run(args: ExportBenchArgs) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || run_sync(args)).await?
}

fn run_sync(args: ExportBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("views.db");
    let mut views = Views::open(&path)?;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(10_000);
    for (i, event) in history(args.records).enumerate() {
        batch.push(envelope(i as u64 + 1, &event));
        if batch.len() == 10_000 {
            views.apply_batch(&batch)?;
            batch.clear();
        }
    }
    views.apply_batch(&batch)?;
    drop(views);
    println!(
        "invitebus-bench export: {} records loaded into a views file in {:.1} s",
        args.records,
        started.elapsed().as_secs_f64()
    );
    let conn = rusqlite::Connection::open(&path)?;
    for format in ["xlsx", "csv"] {
        let before = rss_kib();
        let peak = Arc::new(AtomicU64::new(before));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        let out = dir.path().join(format!("export.{format}"));
        let t = Instant::now();
        let rows = invitebus_exporter::file::write_rows(
            &conn,
            &Default::default(),
            format,
            &out,
            &mut Default::default(),
            &invitebus_keys::MasterKey::dev(),
            |_, _| Ok(()),
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        let secs = t.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let _ = sampler.join();
        let size = std::fs::metadata(&out)?.len();
        let peak = peak.load(Ordering::Relaxed);
        println!(
            "{format:<5} {rows} rows in {secs:.1} s = {:.0} rows/s, file {:.1} MB, peak RSS {:.0} MB ({:+.0} MB while writing)",
            rows as f64 / secs,
            size as f64 / 1e6,
            peak as f64 / 1024.0,
            (peak as f64 - before as f64) / 1024.0
        );
    }
    Ok(())
}
