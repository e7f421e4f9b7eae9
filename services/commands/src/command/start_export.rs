//! `StartExport`: `system` (the exporter) starts a requested export, saying how many rows.

use crate::ctx::Ctx;
use crate::decision::{Decision, Store};
use crate::export::ExportError;
use crate::export::{system_on, OnExport, Phase};
use invitebus_events::command as cmd;
use invitebus_events::event::ExportStarted;
use invitebus_events::Event;
use serde_json::{json, Value};

pub struct StartExport(pub cmd::StartExport);

impl Decision for StartExport {
    type State<'s> = OnExport<'s>;
    type Error = ExportError;

    fn load<'s>(&mut self, store: Store<'s>, _: &Ctx) -> Result<OnExport<'s>, ExportError> {
        OnExport::load(store, &self.0.export_id)
    }

    fn decide(&self, on: &OnExport<'_>, ctx: &Ctx) -> Result<Vec<Event>, ExportError> {
        let requested = system_on(on.state, ctx, &on.export_id, &[Phase::Requested])?;
        Ok(vec![Event::ExportStarted(ExportStarted {
            at: ctx.now,
            count: self.0.count,
            export_id: on.export_id.clone(),
            requested_by: requested.requested_by.clone(),
        })])
    }

    fn reply(&self, on: &OnExport<'_>, _: &[Event]) -> Value {
        json!({"export_id": on.export_id})
    }
}
