//! `invitebus-bench commands --durability`: acknowledgements from the local log against
//! acknowledgements once JetStream holds the events (`--durability replicated`), on a 3-node
//! loopback JetStream cluster with an R3 events stream (one server would prove nothing: its
//! acks come from its own disk). Closed-loop throughput in alternating rounds (median of each),
//! then both at 10,000 commands/s offered on a fixed schedule, for the latency the wait adds.

use super::commands::{cpu_model, drive, median, start_service_with, Figures, Store, Tuning};
use super::openloop::{offer, Point};
use super::CommandsArgs;
use anyhow::Context;
use invitebus_commands::durability::Durability;
use invitebus_natsrun::Cluster;
use std::time::{Duration, Instant};

/// Offered rates of the paced runs: 10,000/s is where the latency goal is stated.
const OFFERED: [u64; 2] = [2_000, 10_000];

pub async fn run(args: CommandsArgs) -> anyhow::Result<()> {
    let _metrics = invitebus_metrics::install()?;
    println!(
        "invitebus-bench commands --durability: {} clients, {} s per run, 3-node loopback cluster, R3 stream, {} cores, {}",
        args.clients,
        args.duration,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        cpu_model()
    );
    let cluster = Cluster::start_temp(3).context("starting a 3-node nats-server cluster")?;
    let url = cluster.urls();
    ready(&url).await?;
    let tuned = |durability| Tuning {
        durability,
        replicas: 3,
        ..Default::default()
    };
    let modes = [("local", Durability::Local), ("replicated", Durability::Replicated)];
    let mut rounds: [Vec<Figures>; 2] = [Vec::new(), Vec::new()];
    for round in 1..=args.rounds.max(1) {
        for (i, (name, durability)) in modes.iter().enumerate() {
            let service = start_service_with(
                &url,
                Store::Invitebus { max_batch: 1024 },
                None,
                args.connections,
                tuned(*durability),
            )
            .await?;
            let f = drive(&service, &args).await?;
            service.stop().await;
            f.print(&format!("round {round}: --durability {name}"));
            rounds[i].push(f);
        }
    }
    let [local, replicated] = rounds.map(median);
    println!();
    local.print("median: --durability local");
    replicated.print("median: --durability replicated");
    println!(
        "ratio replicated / local: {:.2}x throughput, p99 {:+.2} ms",
        replicated.rate() / local.rate().max(1e-9),
        replicated.pct(0.99) - local.pct(0.99)
    );
    // The goal is stated at 10,000/s; a lower rate too, for the cost of the wait itself on a
    // machine that is not saturated (2 cores run three nats-servers, the service and the load).
    for rate in OFFERED {
        let mut paced: Vec<Point> = Vec::new();
        for (name, durability) in modes {
            let service =
                start_service_with(&url, Store::Invitebus { max_batch: 1024 }, None, 8, tuned(durability)).await?;
            let point = offer(&service, rate, args.duration).await;
            println!("{}", point.line(&format!("--durability {name}")));
            service.stop().await;
            paced.push(point);
        }
        if let [l, r] = &paced[..] {
            println!(
                "at {rate}/s offered: p99 replicated - local {:+.2} ms (p50 {:+.2} ms)",
                r.p99 - l.p99,
                r.p50 - l.p50
            );
        }
        // What the wait cannot go below on this machine: JetStream's own R3 acknowledgement
        // at the events rate those commands make (1.5 events a command), with nothing else
        // running.
        let js = floor(&url, rate * 3 / 2, args.duration).await?;
        println!("{}", js.line("JetStream R3 publish alone (events)"));
    }
    Ok(())
}

/// Publishes `rate` messages/s of an event's size to an R3 stream on a fixed schedule, each with
/// `Nats-Msg-Id` like the relay's, and measures each ack from when the message was due.
async fn floor(url: &str, rate: u64, secs: u64) -> anyhow::Result<Point> {
    let servers: Vec<&str> = url.split(',').collect();
    let client = async_nats::connect(servers).await?;
    let js = async_nats::jetstream::new(client);
    let _ = js.delete_stream("BENCH_FLOOR").await;
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "BENCH_FLOOR".into(),
        subjects: vec!["bench.floor.>".into()],
        num_replicas: 3,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await?;
    let payload = bytes::Bytes::from(vec![b'x'; 420]);
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now() + Duration::from_millis(50);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Option<u32>>();
    for i in 0..rate * secs {
        let due = start + period * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", i.to_string().as_str());
        let ack = js
            .publish_with_headers(format!("bench.floor.{}", i % 64), headers, payload.clone())
            .await;
        let tx = tx.clone();
        tokio::spawn(async move {
            let stored = match ack {
                Ok(ack) => ack.await.ok().map(|_| due.elapsed().as_micros() as u32),
                Err(_) => None,
            };
            let _ = tx.send(stored);
        });
    }
    drop(tx);
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Some(l) = rx.recv().await {
        match l {
            Some(l) => latencies.push(l),
            None => errors += 1,
        }
    }
    let _ = js.delete_stream("BENCH_FLOOR").await;
    Ok(Point::from_latencies(
        rate,
        secs,
        start.elapsed().as_secs_f64(),
        latencies,
        errors,
        false,
    ))
}

/// Waits until the cluster has a JetStream meta leader: an R3 stream can be made.
async fn ready(url: &str) -> anyhow::Result<()> {
    let servers: Vec<&str> = url.split(',').collect();
    let client = async_nats::connect(servers).await?;
    let js = async_nats::jetstream::new(client);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let made = js
            .create_stream(async_nats::jetstream::stream::Config {
                name: "BENCH_READY".into(),
                subjects: vec!["bench.ready".into()],
                num_replicas: 3,
                ..Default::default()
            })
            .await;
        match made {
            Ok(_) => {
                let _ = js.delete_stream("BENCH_READY").await;
                return Ok(());
            }
            Err(e) if Instant::now() > deadline => anyhow::bail!("the cluster has no JetStream leader after 60 s: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
