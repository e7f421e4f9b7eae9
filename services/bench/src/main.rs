//! `invitebus-bench`: figures printed from runs on this machine, each against a baseline in the
//! same run; `cargo run --release -p invitebus-bench -- <what> …`. A binary of its own so that the
//! alternatives it measures (cqrs-es, postgres-es, sqlx) and the plots (plotters) stay out of the
//! `invitebus` binary.
//!
//! Layout: [`commands`]: end-to-end command throughput (closed loop) and the NATS floor;
//! [`openloop`]: latency against offered load; [`jsstore`]: the JetStream-as-store alternative;
//! [`cqrs_pg`]: the cqrs-es + postgres-es alternative; [`queries`]: the views, against
//! [`floor`], SQLite's own time for the same files; [`export`]: export
//! files; [`soak`]: a long load through `invitebus serve` (a child process: the `invitebus` binary
//! beside this one, `--invitebus` or `INVITEBUS_BIN`) and the projections' time to the head;
//! [`suite`]: all of it into BENCHMARKS.md with [`plot`]s (`queries`, `export` and `soak` run as
//! child processes of this binary).
//!
//! Logs go to stderr at `warn` (and nothing from sqlx) unless `RUST_LOG` says otherwise, so that
//! stdout is the figures, not the SQL statements of the cqrs-es alternative.

/// mimalloc, as in `invitebus` (see there why), so that the figures are those of the service.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod busauth;
mod commands;
mod cqrs_pg;
mod durability;
mod export;
mod floor;
mod jsstore;
mod latency;
mod openloop;
mod plot;
mod queries;
mod soak;
mod suite;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// The default log filter when `RUST_LOG` is not set.
const DEFAULT_LOG: &str = "warn,sqlx=off,async_nats=warn";

#[derive(Parser)]
#[command(
    name = "invitebus-bench",
    version,
    about = "Measure invitebus's throughput and latency"
)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(clap::Subcommand)]
pub enum BenchWhat {
    /// CreateInvite + AcceptInvite pairs from concurrent NATS clients.
    Commands(CommandsArgs),
    /// The floor: the same clients against a responder that only echoes (NATS request/reply alone).
    Nats(CommandsArgs),
    /// Admin query latency over a million records, and the views' replay speed.
    Queries(queries::QueriesArgs),
    /// A million records to xlsx and to csv: seconds, rows/s, peak memory.
    Export(export::ExportBenchArgs),
    /// A long mixed load through `serve`; then each projection's time to the head and its stalls.
    Soak(soak::SoakArgs),
    /// The whole suite, with the alternatives, written to BENCHMARKS.md and bench/*.svg.
    All(suite::SuiteArgs),
}

#[derive(clap::Args, Clone)]
pub struct CommandsArgs {
    /// Concurrent clients, each waiting for its reply before sending again.
    #[arg(long, default_value_t = 256)]
    pub clients: usize,
    /// Seconds each run measures (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Also run with this many events already in the log (e.g. 1000000).
    #[arg(long)]
    pub prefill: Option<u64>,
    /// NATS connections the clients share.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Rounds of (group commit, baseline), alternating; the median round of each is reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Measure `--bus-auth token` instead: off, on, and on without the verified-token cache,
    /// each client with its own RS256 token.
    #[arg(long)]
    pub bus_auth: bool,
    /// Measure `--durability local` against `replicated` instead, on a 3-node loopback cluster
    /// with an R3 events stream.
    #[arg(long)]
    pub durability: bool,
}

async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchWhat::Commands(a) if a.bus_auth => busauth::run(a).await,
        BenchWhat::Commands(a) if a.durability => durability::run(a).await,
        BenchWhat::Commands(a) => commands::commands(a).await,
        BenchWhat::Nats(a) => commands::nats_floor(a).await,
        BenchWhat::Queries(a) => queries::run(a).await,
        BenchWhat::Export(a) => export::run(a).await,
        BenchWhat::Soak(a) => soak::run(a).await,
        BenchWhat::All(a) => suite::run(a).await,
    }
}

/// Exit codes: 0 the bench ran, 2 it failed (its reason on stderr, one line per cause).
fn main() {
    let args = BenchArgs::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run(args)));
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}
