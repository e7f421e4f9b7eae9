//! The exporter role: follows the events with the exporter projection and reports its position.

use crate::job::{ensure_streams, Exporter, ExporterError};
use async_nats::Client;
use invitebus_events::subject::Subjects;
use invitebus_views::Views;
use std::path::PathBuf;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

#[derive(Debug, Clone)]
pub struct ExporterConfig {
    /// The exporter's own copy of the views.
    pub path: PathBuf,
    pub subjects: Subjects,
}

impl ExporterConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ExporterConfig {
            path: path.into(),
            subjects: Subjects::from_env(),
        }
    }
}

pub struct ExporterService {
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    applied: watch::Receiver<u64>,
}

impl ExporterService {
    pub async fn start(client: Client, config: ExporterConfig) -> Result<ExporterService, ExporterError> {
        let js = async_nats::jetstream::new(client.clone());
        ensure_streams(&js, &config.subjects).await?;
        let exporter = Exporter {
            views: Views::open(&config.path)?,
            views_path: config.path.clone(),
            handle: tokio::runtime::Handle::current(),
            client: client.clone(),
            js: js.clone(),
            subjects: config.subjects.clone(),
        };
        let (applied_tx, applied) = watch::channel(invitebus_feed::Projection::position(&exporter));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (subjects, follow_shutdown) = (config.subjects.clone(), shutdown_rx.clone());
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(e) = invitebus_feed::follow(js, subjects, exporter, applied_tx, follow_shutdown).await {
                warn!(error = %e, "the exporter stopped");
            }
        })];
        tasks.push(invitebus_feed::report_position(
            client,
            &config.subjects,
            "exporter",
            applied.clone(),
            shutdown_rx,
        ));
        info!(path = %config.path.display(), "exporter ready");
        Ok(ExporterService {
            shutdown,
            tasks,
            applied,
        })
    }

    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }

    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
