//! Prometheus metrics: one recorder per process, rendered in the text format on the gateway's
//! `GET /metrics` and, for roles that run without the gateway, on `--metrics ADDR`.
//!
//! `metrics` + `metrics-exporter-prometheus`: the facade costs a relaxed atomic per recording
//! and nothing at all until a recorder is installed, so libraries record without knowing
//! where figures go, and only the binaries choose the exporter: the recorder and its buckets are
//! in `invitebus-metrics`, shared with the bench.

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;

/// Installs the process's recorder (the same one `invitebus-bench commands` measures with).
pub use invitebus_metrics::install;

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
