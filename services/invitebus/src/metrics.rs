//! Prometheus metrics: one recorder per process, rendered in the text format on the gateway's
//! `GET /metrics` and, for roles that run without the gateway, on `--metrics ADDR`.
//!
//! `metrics` + `metrics-exporter-prometheus`: the facade costs a relaxed atomic per recording
//! and nothing at all until a recorder is installed, so libraries record without knowing
//! where figures go, and only the binary chooses the exporter.

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

/// Serves `GET /metrics` on `addr` until the process ends.
pub async fn serve(addr: &str, handle: PrometheusHandle) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("the metrics endpoint cannot listen on {addr}"))?;
    tracing::info!(metrics = %listener.local_addr()?, "metrics listening");
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    handle.render(),
                )
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "the metrics endpoint stopped");
        }
    });
    Ok(())
}
