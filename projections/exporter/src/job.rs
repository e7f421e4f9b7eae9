//! The exporter projection. It keeps a private copy of the views and applies events to it in
//! order; on an `ExportRequested` at position P its copy stands exactly at P-1, so the export
//! reads the admin view as of the request, whatever is written meanwhile. Its checkpoint moves
//! past P only after the job is recorded (CompleteExport or FailExport), so a job interrupted by
//! a crash runs again after restart, and its command ids make it complete once.

use crate::file::write_rows;
use async_nats::jetstream::{self, object_store, stream};
use async_nats::Client;
use invitebus_events::command::system_command_id;
use invitebus_events::event::ExportRequested;
use invitebus_events::subject::{Subjects, EXPORTS_BUCKET, EXPORTS_STREAM};
use invitebus_events::{Event, Reply, SYSTEM_ACTOR};
use invitebus_views::admin::admin_where;
use invitebus_views::Views;
use rusqlite::params_from_iter;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Why a batch could not be applied; it is taken again (and the job rerun) after a pause.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    #[error(transparent)]
    Views(#[from] invitebus_views::ViewError),
    /// NATS or JetStream refused or did not answer; the cause is kept.
    #[error("nats: {0}")]
    Nats(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("{0}")]
    Lock(#[from] invitebus_filelock::LockError),
    /// The export's temporary file could not be made.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// The copy's own file failed (as the views' own would).
impl From<rusqlite::Error> for ExporterError {
    fn from(e: rusqlite::Error) -> Self {
        ExporterError::Views(e.into())
    }
}

pub struct Exporter {
    pub(crate) views: Views,
    pub(crate) handle: tokio::runtime::Handle,
    pub(crate) client: Client,
    pub(crate) js: jetstream::Context,
    pub(crate) subjects: Subjects,
    pub(crate) service_key: Vec<u8>,
    pub(crate) bus_auth: invitebus_auth::BusAuth,
    /// The `traceparent` of the request being run: its progress messages carry it.
    pub(crate) trace: Option<String>,
    /// Which files in the bucket hold whom (a forget erases them).
    pub(crate) files: crate::files::ExportFiles,
    /// Wakes the eraser when a forget has queued files.
    pub(crate) erase_now: std::sync::Arc<tokio::sync::Notify>,
    /// The deployment's master key: phones are looked up by its keyed hash.
    pub(crate) phone_key: invitebus_keys::MasterKey,
}

/// Creates the progress stream (the last message per export is kept) and the files bucket.
pub async fn ensure_streams(js: &jetstream::Context, subjects: &Subjects) -> Result<(), ExporterError> {
    js.get_or_create_stream(stream::Config {
        name: EXPORTS_STREAM.to_string(),
        subjects: vec![format!("{}.export.*.progress", subjects.prefix())],
        storage: stream::StorageType::File,
        max_messages_per_subject: 1,
        num_replicas: subjects.replicas(),
        ..Default::default()
    })
    .await
    .map_err(|e| ExporterError::Nats(e.into()))?;
    if js.get_object_store(EXPORTS_BUCKET).await.is_err() {
        js.create_object_store(object_store::Config {
            bucket: EXPORTS_BUCKET.to_string(),
            num_replicas: subjects.replicas(),
            ..Default::default()
        })
        .await
        .map_err(|e| ExporterError::Nats(e.into()))?;
    }
    Ok(())
}

impl Exporter {
    /// The headers of a request the exporter makes as `system` with `roles`: the trace, and
    /// the service token when bus auth is on.
    fn headers(&self, roles: &[String]) -> async_nats::HeaderMap {
        let mut headers = async_nats::HeaderMap::new();
        if let Some(t) = &self.trace {
            headers.insert(invitebus_events::trace::TRACEPARENT, t.as_str());
        }
        if let Some(token) = self.bus_auth.service_header(roles) {
            headers.insert(invitebus_auth::bus::AUTHORIZATION, token.as_str());
        }
        headers
    }

    fn command(&self, name: &str, body: Value) -> Result<Reply, ExporterError> {
        let subject = self.subjects.command(name);
        let client = self.client.clone();
        let headers = self.headers(&[]);
        self.handle.block_on(async move {
            let msg = tokio::time::timeout(
                Duration::from_secs(10),
                client.request_with_headers(subject, headers, body.to_string().into()),
            )
            .await
            .map_err(|_| ExporterError::Nats("no reply in time".into()))?
            .map_err(|e| ExporterError::Nats(e.into()))?;
            serde_json::from_slice(&msg.payload).map_err(|e| ExporterError::Nats(e.into()))
        })
    }

    fn progress(&self, r: &ExportRequested, status: &str, progress: u32, extra: Value) -> Result<(), ExporterError> {
        let mut body = json!({"export_id": r.export_id, "status": status, "progress": progress, "count": null,
            "file_size": null, "file_url": null, "service": "admin"});
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        let (js, subject) = (self.js.clone(), self.subjects.export_progress(&r.export_id));
        let trace = self.trace.clone();
        self.handle.block_on(async move {
            let mut headers = async_nats::HeaderMap::new();
            if let Some(t) = &trace {
                headers.insert(invitebus_events::trace::TRACEPARENT, t.as_str());
            }
            let ack = js
                .publish_with_headers(subject, headers, body.to_string().into())
                .await
                .map_err(|e| ExporterError::Nats(e.into()))?;
            ack.await.map_err(|e| ExporterError::Nats(e.into()))?;
            Ok(())
        })
    }

    /// True when the log already holds the export's outcome (a rebuilt copy meets old requests).
    fn finished(&self, r: &ExportRequested) -> Result<bool, ExporterError> {
        let subject = self.subjects.query("history");
        let body = json!({"actor": SYSTEM_ACTOR, "roles": [invitebus_events::ADMIN_ROLE],
            "stream_id": format!("export-{}", r.export_id)});
        let (client, headers) = (
            self.client.clone(),
            self.headers(&[invitebus_events::ADMIN_ROLE.to_string()]),
        );
        let reply: Reply = self.handle.block_on(async move {
            let msg = tokio::time::timeout(
                Duration::from_secs(10),
                client.request_with_headers(subject, headers, body.to_string().into()),
            )
            .await
            .map_err(|_| ExporterError::Nats("no reply in time".into()))?
            .map_err(|e| ExporterError::Nats(e.into()))?;
            serde_json::from_slice(&msg.payload).map_err(|e| ExporterError::Nats(e.into()))
        })?;
        let items = reply.into_result().map_err(|e| ExporterError::Nats(e.message.into()))?;
        let done = |e: &Value| matches!(e["type"].as_str(), Some("ExportCompleted" | "ExportFailed"));
        Ok(items["items"].as_array().is_some_and(|a| a.iter().any(done)))
    }

    /// Runs one export job to its recorded outcome.
    fn run(&self, r: &ExportRequested) -> Result<(), ExporterError> {
        let id = &r.export_id;
        if self.finished(r)? {
            info!(export_id = %id, "export already finished; not run again");
            return Ok(());
        }
        let format = r.format.as_str();
        info!(export_id = %id, format, "export starts");
        self.progress(r, "starting", 1, json!({}))?;
        // The writer's own connection: during a bulk load it is the loading file's, as of the request.
        let conn = invitebus_feed::Projection::store(&self.views).conn();
        let (clause, args) = admin_where(&r.filters, &self.phone_key);
        let count: i64 = conn
            .query_row(
                &format!("SELECT COUNT(*) FROM records r WHERE {clause}"),
                params_from_iter(args.iter()),
                |x| x.get(0),
            )
            .map_err(invitebus_views::ViewError::from)?;
        let started = self.command(
            "StartExport",
            json!({"actor": SYSTEM_ACTOR, "export_id": id, "count": count, "command_id": system_command_id(&self.service_key, &["start", id.as_str()])}),
        )?;
        if let Some(e) = started.error {
            refused("StartExport", id.as_str(), e)?;
        }
        self.progress(r, "start", 1, json!({"count": count}))?;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(format!("{id}.{format}"));
        let mut people = std::collections::HashSet::new();
        let written = self.write_file(r, conn, &path, &mut people);
        let outcome = match written {
            Err(reason) => Err(("failed", reason)),
            Ok(()) => {
                self.progress(r, "before_upload", 99, json!({"count": count}))?;
                // Recorded before it is put: a crash in between leaves no file nobody tracks.
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("export");
                self.files.put(id.as_str(), name, &people)?;
                self.upload(&path).map_err(|reason| ("upload_failure", reason))
            }
        };
        let counted = match &outcome {
            Ok(_) => "success",
            Err((status, _)) => status,
        };
        metrics::counter!("invitebus_exports_total", "format" => format.to_string(), "outcome" => counted.to_string())
            .increment(1);
        match outcome {
            Ok((url, size)) => {
                self.progress(
                    r,
                    "success",
                    100,
                    json!({"count": count, "file_size": size, "file_url": url}),
                )?;
                let body = json!({"actor": SYSTEM_ACTOR, "export_id": id, "file_url": url, "file_size": size,
                    "count": count, "command_id": system_command_id(&self.service_key, &["complete", id.as_str()])});
                self.record("CompleteExport", body)
            }
            Err((status, reason)) => {
                warn!(export_id = %id, reason = %reason, "export failed");
                self.progress(r, status, 100, json!({"count": count}))?;
                let body = json!({"actor": SYSTEM_ACTOR, "export_id": id, "reason": reason, "command_id": system_command_id(&self.service_key, &["fail", id.as_str()])});
                self.record("FailExport", body)
            }
        }
    }

    /// Sends the outcome; a refusal that leaves the work due (or no answer) makes the job run
    /// again.
    fn record(&self, name: &str, body: Value) -> Result<(), ExporterError> {
        let reply = self.command(name, body.clone())?;
        match reply.error {
            Some(e) => refused(name, body["export_id"].as_str().unwrap_or_default(), e),
            None => Ok(()),
        }
    }

    fn write_file(
        &self,
        r: &ExportRequested,
        conn: &rusqlite::Connection,
        path: &std::path::Path,
        people: &mut std::collections::HashSet<String>,
    ) -> Result<(), String> {
        let (mut last_report, mut last_pct) = (Instant::now(), 1u32);
        write_rows(
            conn,
            &r.filters,
            r.format.as_str(),
            path,
            people,
            &self.phone_key,
            |done, count| {
                let pct = (1 + done * 97 / count.max(1)) as u32;
                if pct >= last_pct + 5 || last_report.elapsed() >= Duration::from_secs(1) {
                    self.progress(r, "writing_file", pct, json!({"count": count}))
                        .map_err(|e| e.to_string())?;
                    (last_report, last_pct) = (Instant::now(), pct);
                }
                Ok(())
            },
        )
        .map(|_| ())
    }

    /// Puts the file in the bucket; returns its url and size.
    fn upload(&self, path: &std::path::Path) -> Result<(String, u64), String> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("export")
            .to_string();
        let (js, path) = (self.js.clone(), path.to_path_buf());
        self.handle.block_on(async move {
            let store = js.get_object_store(EXPORTS_BUCKET).await.map_err(|e| e.to_string())?;
            let mut file = tokio::fs::File::open(&path).await.map_err(|e| e.to_string())?;
            let info = store.put(name.as_str(), &mut file).await.map_err(|e| e.to_string())?;
            Ok((format!("nats-object://{EXPORTS_BUCKET}/{name}"), info.size as u64))
        })
    }
}

impl invitebus_feed::Projection for Exporter {
    type Error = ExporterError;
    fn name(&self) -> &str {
        "exporter"
    }
    fn store(&self) -> &invitebus_feed::ProjectionFile {
        invitebus_feed::Projection::store(&self.views)
    }
    fn store_mut(&mut self) -> &mut invitebus_feed::ProjectionFile {
        invitebus_feed::Projection::store_mut(&mut self.views)
    }
    fn unreadable(position: u64, reason: String) -> ExporterError {
        ExporterError::Views(<Views as invitebus_feed::Projection>::unreadable(position, reason))
    }
    fn is_damage(e: &ExporterError) -> bool {
        matches!(e, ExporterError::Views(e) if <Views as invitebus_feed::Projection>::is_damage(e))
    }
    /// Runs each export request against the copy as of the event before it. A rebuilt copy
    /// meets the log's old requests again; those that finished are not run again
    /// ([`Exporter::finished`]).
    fn apply_decoded(&mut self, events: &[invitebus_feed::Decoded]) -> Result<(), ExporterError> {
        if self.apply_in_order(events)? {
            // The eraser (one task, `service.rs`) deletes the queued files; the feed goes on.
            self.erase_now.notify_one();
        }
        Ok(())
    }
}

impl Exporter {
    /// Applies `events` to the copy, in log order: each export request runs as of the event
    /// before it, and each forget queues the files made before it that hold the person (in the
    /// files store, before the checkpoint passes it, so a retried batch queues them again).
    /// True when the batch held a forget (its files are erased once the batch is in).
    fn apply_in_order(&mut self, events: &[invitebus_feed::Decoded]) -> Result<bool, ExporterError> {
        use invitebus_feed::Projection;
        let (mut from, mut forgot) = (0, false);
        for (i, d) in events.iter().enumerate() {
            if d.env.position <= self.position() {
                continue;
            }
            match &d.event {
                Event::UserForgotten(f) => {
                    self.files.forget(f.user_id.as_str())?;
                    forgot = true;
                }
                Event::ExportRequested(r) => {
                    // The copy of the views up to P-1: the admin view as of the request.
                    self.views.apply_decoded(&events[from..i])?;
                    self.trace = d.env.traceparent.clone();
                    self.run(r)?;
                    from = i;
                }
                _ => {}
            }
        }
        self.views.apply_decoded(&events[from..])?;
        Ok(forgot)
    }
}

/// What a refusal of one of the exporter's commands means: `Err` (the job runs again) when it
/// leaves the work due, said at error level when the service refuses the exporter's token
/// (before 2026-12-07 only `unavailable` was retried, so such a refusal left the export in
/// progress for ever); any other is logged and the job goes on.
fn refused(command: &str, export_id: &str, e: invitebus_events::ProtocolError) -> Result<(), ExporterError> {
    use invitebus_events::ErrorCode::{Forbidden, Unauthenticated};
    metrics::counter!("invitebus_export_command_refusals_total", "command" => command.to_string()).increment(1);
    match e.code {
        Unauthenticated | Forbidden => {
            tracing::error!(export_id, command, code = ?e.code, message = %e.message, "the command service refuses the exporter's token; the export waits (check INVITEBUS_SERVICE_SECRET)")
        }
        code if code.leaves_work_due() => {}
        code => {
            warn!(export_id, command, ?code, message = %e.message, "an export command was refused");
            return Ok(());
        }
    }
    Err(ExporterError::Nats(e.message.into()))
}
