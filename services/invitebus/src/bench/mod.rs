//! `invitebus bench`: figures printed from runs on this machine, each against a baseline in
//! the same run. [`commands`]: end-to-end command throughput (closed loop); [`openloop`]: latency
//! against offered load; [`jsstore`]: the JetStream-as-store alternative; [`queries`]: the views;
//! [`export`]: export files; [`soak`]: a long load through `serve` and the projections' time to the head; [`suite`]: all of it into BENCHMARKS.md with [`plot`]s.

mod commands;
mod cqrs_pg;
mod export;
mod jsstore;
mod openloop;
mod plot;
mod queries;
mod soak;
mod suite;

#[derive(clap::Args)]
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
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchWhat::Commands(a) => commands::commands(a).await,
        BenchWhat::Nats(a) => commands::nats_floor(a).await,
        BenchWhat::Queries(a) => queries::run(a).await,
        BenchWhat::Export(a) => export::run(a).await,
        BenchWhat::Soak(a) => soak::run(a).await,
        BenchWhat::All(a) => suite::run(a).await,
    }
}
