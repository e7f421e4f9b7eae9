//! `invitebus-bench all`: the whole suite in one run, written to BENCHMARKS.md with SVG plots.
//! The open-loop curves run in this process; the queries, export and soak benches run as child
//! processes of this binary, `invitebus-bench` (their memory figures are their own), their output
//! kept as printed.

use super::commands::Store;
use super::openloop::{curve, Point};
use super::plot::{self, Curve};
use anyhow::Context;
use invitebus_natsrun::NatsServer;
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(clap::Args, Clone)]
pub struct SuiteArgs {
    /// Where the report goes; the plots go beside it under bench/.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub out: PathBuf,
    /// Offered loads (commands/s) of the open-loop curves.
    #[arg(long, value_delimiter = ',', default_values_t = [500u64, 1000, 2000, 5000, 10000, 15000, 20000, 25000, 30000])]
    pub rates: Vec<u64>,
    /// Seconds per offered load.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Records for the replay, admin-query and export benches.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Commands the soak sends through `serve`.
    #[arg(long, default_value_t = 1_000_000)]
    pub soak_commands: u64,
}

fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown CPU")
        .trim()
        .to_string();
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let nats = std::process::Command::new(invitebus_natsrun::find_binary().unwrap_or_else(|| "nats-server".into()))
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "{cores} cores ({cpu}), {:.0} GiB RAM, Linux {}, {nats}, SQLite (bundled) synchronous=FULL; clients, nats-server and invitebus all on this machine",
        mem_kib as f64 / 1048576.0,
        read("/proc/sys/kernel/osrelease").trim()
    )
}

fn table(rows: &[(&str, &Point)]) -> String {
    let mut t = String::from("| configuration | offered/s | achieved/s | p50 ms | p99 ms | p999 ms | errors |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (label, p) in rows {
        let sat = if p.saturated { " (saturated)" } else { "" };
        let _ = writeln!(
            t,
            "| {label} | {:.0} | {:.0}{sat} | {:.2} | {:.2} | {:.2} | {} |",
            p.offered, p.achieved, p.p50, p.p99, p.p999, p.errors
        );
    }
    t
}

/// The highest rate a configuration kept up with: achieved within 5 % of offered, p99 under 100 ms.
fn sustained(points: &[Point]) -> f64 {
    points
        .iter()
        .filter(|p| !p.saturated && p.achieved >= 0.95 * p.offered && p.p99 < 100.0)
        .map(|p| p.achieved)
        .fold(0.0, f64::max)
}

/// The most a configuration achieved at any offered rate.
fn peak(points: &[Point]) -> f64 {
    points.iter().map(|p| p.achieved).fold(0.0, f64::max)
}

/// What the soak's figures mean, above them in BENCHMARKS.md.
const SOAK_NOTE: &str = "`invitebus-bench soak`: `invitebus serve` (all roles, synchronous=FULL) as a child process on its own nats-server; 256 clients send CreateInvite (expiring in a day, so the scheduler holds a timer for each) and then AcceptInvite (half), RejectInvite or MarkInviteRead, as fast as replies come (or at a fixed `--rate`), until the budget is spent. Then health is asked every 20 ms: *to head* is the time from the last reply until a follower's reported position reached the log head (reports are at most a second old, so it is an upper bound); *max lag* is the largest lag health showed during the load (sampled every 0.5 s); *stalls recovered* are the watchdog's, from health. Its throughput is lower than `invitebus-bench commands`' because every projection shares the two cores with the writer.";

fn child(args: &[&str]) -> anyhow::Result<String> {
    let exe = std::env::current_exe()?;
    println!("running: invitebus-bench {}", args.join(" "));
    let out = std::process::Command::new(exe).args(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "invitebus-bench {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    print!("{text}");
    Ok(text)
}

pub async fn run(args: SuiteArgs) -> anyhow::Result<()> {
    // The soak at the end runs `invitebus serve`: fail now, not after the curves, when it is missing.
    let invitebus = std::env::var_os("INVITEBUS_BIN").map(PathBuf::from);
    super::soak::invitebus_binary(invitebus.as_deref())?;
    let started = chrono::Utc::now();
    let machine = machine();
    println!("invitebus-bench all: {machine}");
    let nats = NatsServer::start_temp().context("starting a private nats-server")?;
    let ours = curve(
        &nats,
        Store::Invitebus { max_batch: 1024 },
        &args.rates,
        args.seconds,
        "invitebus (group commit)",
    )
    .await?;
    let baseline = curve(
        &nats,
        Store::Invitebus { max_batch: 1 },
        &args.rates,
        args.seconds,
        "one transaction per command",
    )
    .await?;
    let jetstream = curve(
        &nats,
        Store::JetStream,
        &args.rates,
        args.seconds,
        "JetStream as the event store",
    )
    .await?;
    let cqrs = curve(&nats, Store::Cqrs, &args.rates, args.seconds, "cqrs-es + postgres-es").await?;
    drop(nats);

    let dir = args
        .out
        .parent()
        .map(|p| p.join("bench"))
        .unwrap_or_else(|| PathBuf::from("bench"));
    std::fs::create_dir_all(&dir)?;
    let curves = [
        Curve {
            label: "invitebus",
            points: &ours,
            color: plotters::style::RGBColor(31, 119, 180),
        },
        Curve {
            label: "one txn per command",
            points: &baseline,
            color: plotters::style::RGBColor(214, 39, 40),
        },
        Curve {
            label: "JetStream as store",
            points: &jetstream,
            color: plotters::style::RGBColor(44, 160, 44),
        },
        Curve {
            label: "cqrs-es + postgres-es",
            points: &cqrs,
            color: plotters::style::RGBColor(255, 127, 14),
        },
    ];
    plot::latency(&dir.join("latency.svg"), &curves)?;
    plot::throughput(&dir.join("throughput.svg"), &curves)?;

    let records = args.records.to_string();
    let queries = child(&["queries", "--records", &records])?;
    let export = child(&["export", "--records", &records])?;
    let soak = child(&["soak", "--commands", &args.soak_commands.to_string()])?;

    let (s_ours, s_base) = (sustained(&ours), sustained(&baseline));
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Benchmarks\n\nOne run of `invitebus-bench all` ({}), on: {machine}.\n",
        started.format("%Y-%m-%d %H:%M UTC")
    );
    let _ = writeln!(md, "Re-run with `cargo build --release -p invitebus && cargo run --release -p invitebus-bench -- all` (about 15 minutes here; the soak runs the `invitebus` binary beside `invitebus-bench`). Figures from one machine and one run: compare the ratios, not the absolute numbers.\n");
    let _ = writeln!(md, "## Commands, end to end, open loop\n");
    let _ = writeln!(md, "CreateInvite + AcceptInvite pairs over NATS request/reply, started on a fixed schedule whatever the answers do; a command's latency counts from when it was due (no coordinated omission). Each offered load runs {} s on a fresh log; a configuration stops at the first load it cannot keep up with.\n", args.seconds);
    let _ = writeln!(
        md,
        "![latency](bench/latency.svg)\n\n![throughput](bench/throughput.svg)\n"
    );
    let rows: Vec<(&str, &Point)> = ours
        .iter()
        .map(|p| ("invitebus", p))
        .chain(baseline.iter().map(|p| ("(a) one txn per command", p)))
        .chain(jetstream.iter().map(|p| ("(b) JetStream as store", p)))
        .chain(cqrs.iter().map(|p| ("(c) cqrs-es + postgres-es", p)))
        .collect();
    md.push_str(&table(&rows));
    let s_js = sustained(&jetstream);
    let (p_ours, p_base, p_js) = (peak(&ours), peak(&baseline), peak(&jetstream));
    let (s_pg, p_pg) = (sustained(&cqrs), peak(&cqrs));
    let _ = writeln!(md, "\nEach store's sustained throughput (achieved ≥ 95 % of offered with p99 < 100 ms, at the rates above) and peak (the most it achieved at any rate), and each as a ratio to invitebus:\n");
    let _ = writeln!(md, "| store | sustained commands/s | peak commands/s | sustained ratio | peak ratio |\n| --- | ---: | ---: | ---: | ---: |");
    let _ = writeln!(
        md,
        "| invitebus (SQLite log, group commit, relay to JetStream) | {s_ours:.0} | {p_ours:.0} | 1.00 | 1.00 |"
    );
    let _ = writeln!(
        md,
        "| (a) one transaction per command | {s_base:.0} | {p_base:.0} | {:.2} | {:.2} |",
        s_base / s_ours.max(1.0),
        p_base / p_ours.max(1.0)
    );
    let _ = writeln!(
        md,
        "| (b) JetStream as the event store (expected last subject sequence) | {s_js:.0} | {p_js:.0} | {:.2} | {:.2} |",
        s_js / s_ours.max(1.0),
        p_js / p_ours.max(1.0)
    );
    let _ = writeln!(
        md,
        "| (c) cqrs-es + postgres-es (local PostgreSQL) | {s_pg:.0} | {p_pg:.0} | {:.2} | {:.2} |\n",
        s_pg / s_ours.max(1.0),
        p_pg / p_ours.max(1.0)
    );
    let _ = writeln!(md, "(a), (b) and (c) run the same commands through the same `decide`/`evolve`, behind the same NATS request/reply. (b) is `services/bench/src/jsstore.rs`: each aggregate a subject, appends guarded by `Nats-Expected-Last-Subject-Sequence`, aggregates cached in memory; its AcceptInvite writes two subjects in two publishes (not atomic) and its dedupe lasts the duplicate window only. (c) is `services/bench/src/cqrs_pg.rs`: the invite a cqrs-es aggregate in postgres-es's `events` table (database `invitebus_bench` on the local PostgreSQL, `INVITEBUS_BENCH_POSTGRES`); a cqrs-es command writes one aggregate, so an accept's MemberJoined stays in the invite's stream, and the bench's channels are a fixed state rather than aggregates.\n");
    let _ = writeln!(
        md,
        "## Replay and admin queries ({} records)\n\n```\n{}```\n",
        args.records, queries
    );
    let _ = writeln!(md, "## Export ({} records)\n\n```\n{}```\n", args.records, export);
    let _ = writeln!(md, "## Soak: a long mixed load through `serve`, then every projection to the head\n\n{SOAK_NOTE}\n\n```\n{soak}```");
    std::fs::write(&args.out, md)?;
    println!("wrote {} and {}", args.out.display(), dir.display());
    Ok(())
}
