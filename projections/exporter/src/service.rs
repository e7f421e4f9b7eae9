//! The exporter role: follows the events with the exporter projection and reports its position.

use crate::job::{ensure_streams, Exporter, ExporterError};
use async_nats::Client;
use invitebus_events::subject::Subjects;
use invitebus_views::Views;
use std::path::PathBuf;
use tokio::sync::watch;
use tracing::info;

#[derive(Debug, Clone)]
pub struct ExporterConfig {
    /// The exporter's own copy of the views.
    pub path: PathBuf,
    pub subjects: Subjects,
    /// The key of the export steps' command ids ([`invitebus_events::command::system_command_id`]).
    pub service_key: Vec<u8>,
    /// With bus auth on, export steps are sent with invitebus's service token (`--bus-auth`).
    pub bus_auth: invitebus_auth::BusAuth,
    /// The feed's watchdog and consumer settings.
    pub feed: invitebus_feed::FeedSettings,
    /// The deployment's master key: phones are kept and looked up by its keyed hash.
    pub master_key: invitebus_keys::MasterKey,
}

impl ExporterConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ExporterConfig {
            path: path.into(),
            subjects: Subjects::default(),
            service_key: invitebus_events::command::DEV_SERVICE_KEY.to_vec(),
            bus_auth: Default::default(),
            feed: invitebus_feed::FeedSettings::default(),
            master_key: invitebus_keys::MasterKey::dev(),
        }
    }
}

pub struct ExporterService {
    run: invitebus_feed::Running,
}

impl ExporterService {
    pub async fn start(client: Client, config: ExporterConfig) -> Result<ExporterService, ExporterError> {
        let js = async_nats::jetstream::new(client.clone());
        ensure_streams(&js, &config.subjects).await?;
        let lock = invitebus_filelock::lock(&config.path, "the exporter role")?;
        let files = crate::files::ExportFiles::open(&crate::files::path_beside(&config.path))
            .map_err(invitebus_views::ViewError::from)?;
        let erase_now = std::sync::Arc::new(tokio::sync::Notify::new());
        let exporter = Exporter {
            views: Views::open(&config.path)?.with_phone_key(config.master_key.clone()),
            handle: tokio::runtime::Handle::current(),
            client: client.clone(),
            js,
            subjects: config.subjects.clone(),
            service_key: config.service_key.clone(),
            bus_auth: config.bus_auth.clone(),
            trace: None,
            files: files.clone(),
            erase_now: erase_now.clone(),
            phone_key: config.master_key.clone(),
        };
        let mut run =
            invitebus_feed::Running::start(&client, &config.subjects, "exporter", exporter, config.feed.clone());
        run.hold(lock);
        // The one eraser: woken by a forget, and every few seconds for erasures that failed
        // (the bucket did not answer).
        let js = async_nats::jetstream::new(client.clone());
        run.spawn(move |_, mut shutdown| async move {
            loop {
                files.erase_queued(&js).await;
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                    _ = erase_now.notified() => {}
                    _ = shutdown.changed() => return,
                }
            }
        });
        info!(path = %config.path.display(), "exporter ready");
        Ok(ExporterService { run })
    }

    pub fn applied(&self) -> watch::Receiver<u64> {
        self.run.applied()
    }

    pub async fn shutdown(self) {
        self.run.shutdown().await;
    }
}
