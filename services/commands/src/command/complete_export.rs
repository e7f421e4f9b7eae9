//! `CompleteExport`: `system` (the exporter) records a finished export's file.

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::export::ExportError;
use crate::export::{system_on, OnExport, Phase};
use invitebus_events::command as cmd;
use invitebus_events::event::ExportCompleted;
use invitebus_events::Event;
use serde_json::{json, Value};

pub struct CompleteExport(pub cmd::CompleteExport);

impl Decision for CompleteExport {
    type State<'s> = OnExport<'s>;
    type Error = ExportError;

    fn load<'s>(&mut self, store: Store<'s>, _: &Ctx) -> Result<OnExport<'s>, ExportError> {
        OnExport::load(store, &self.0.export_id)
    }

    fn decide(&self, on: &OnExport<'_>, ctx: &Ctx) -> Result<Vec<Event>, ExportError> {
        let c = &self.0;
        let requested = system_on(on.state, ctx, &on.export_id, &[Phase::Requested, Phase::Started])?;
        Ok(vec![Event::ExportCompleted(ExportCompleted {
            at: ctx.now,
            count: c.count,
            export_id: on.export_id.clone(),
            file_size: c.file_size,
            file_url: c.file_url.clone(),
            requested_by: requested.requested_by.clone(),
        })])
    }

    fn reply(&self, on: &OnExport<'_>, _: &[Event]) -> Value {
        json!({"export_id": on.export_id})
    }
}
