//! `FailExport`: `system` (the exporter) records why an export could not be made.

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::export::ExportError;
use crate::export::{system_on, OnExport, Phase};
use invitebus_events::command as cmd;
use invitebus_events::event::ExportFailed;
use invitebus_events::Event;
use serde_json::{json, Value};

pub struct FailExport(pub cmd::FailExport);

impl Decision for FailExport {
    type State<'s> = OnExport<'s>;
    type Error = ExportError;

    fn load<'s>(&mut self, store: Store<'s>, _: &Ctx) -> Result<OnExport<'s>, ExportError> {
        OnExport::load(store, &self.0.export_id)
    }

    fn decide(&self, on: &OnExport<'_>, ctx: &Ctx) -> Result<Vec<Event>, ExportError> {
        let requested = system_on(on.state, ctx, &on.export_id, &[Phase::Requested, Phase::Started])?;
        Ok(vec![Event::ExportFailed(ExportFailed {
            at: ctx.now,
            export_id: on.export_id.clone(),
            reason: self.0.reason.clone(),
            requested_by: requested.requested_by.clone(),
        })])
    }

    fn reply(&self, on: &OnExport<'_>, _: &[Event]) -> Value {
        json!({"export_id": on.export_id})
    }
}
