//! The Prometheus recorder, one per process: `invitebus serve` installs it and renders it on
//! `GET /metrics`; `invitebus-bench commands` installs the same one so that its figures include
//! the cost of recording metrics.
//!
//! `metrics` + `metrics-exporter-prometheus`: the facade costs a relaxed atomic per recording
//! and nothing at all until a recorder is installed, so libraries record without knowing
//! where figures go, and only the binaries choose the exporter (through this crate).

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Installs the process's recorder; its handle renders the scrape.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let seconds = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    let sizes = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)?
        .set_buckets_for_metric(Matcher::Full("invitebus_batch_commands".into()), &sizes)?
        .install_recorder()
        .context("installing the metrics recorder")
}
