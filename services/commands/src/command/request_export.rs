//! `RequestExport` (seed 004): an admin asks for the admin view as a file; one queued or
//! running export per user, at most [`DAILY_QUOTA`] per user per UTC day.

use crate::ctx::Ctx;
use crate::decision::{Decision, IdGen, Store};
use crate::export::ExportError;
use crate::export::{ExportState, UserExports, DAILY_QUOTA};
use invitebus_events::command as cmd;
use invitebus_events::event::ExportRequested;
use invitebus_events::{Event, Id};
use serde_json::{json, Value};

pub struct RequestExport(pub cmd::RequestExport);

/// The new export's id and the requester's exports.
pub struct Requesting<'s> {
    export_id: Id,
    mine: &'s UserExports,
}

impl Decision for RequestExport {
    type State<'s> = Requesting<'s>;
    type Error = ExportError;

    fn load<'s>(&mut self, mut store: Store<'s>, ctx: &Ctx) -> Result<Requesting<'s>, ExportError> {
        let export_id = store.fresh::<ExportState>(|g: &mut dyn IdGen| g.new_id());
        store.user_exports(&ctx.actor)?;
        Ok(Requesting {
            export_id,
            mine: store.loaded().user_exports(&ctx.actor)?,
        })
    }

    fn decide(&self, r: &Requesting<'_>, ctx: &Ctx) -> Result<Vec<Event>, ExportError> {
        if !ctx.is_admin() {
            return Err(ExportError::AdminsOnly);
        }
        if let Some(running) = r.mine.in_progress() {
            return Err(ExportError::InProgress(running.clone()));
        }
        if r.mine.today(ctx.now) >= DAILY_QUOTA {
            return Err(ExportError::QuotaExceeded);
        }
        Ok(vec![Event::ExportRequested(ExportRequested {
            at: ctx.now,
            export_id: r.export_id.clone(),
            filters: self.0.filters.clone(),
            format: self.0.format,
            requested_by: ctx.actor.clone(),
            view: self.0.view.clone().unwrap_or_else(|| "admin".into()),
        })])
    }

    fn reply(&self, r: &Requesting<'_>, _: &[Event]) -> Value {
        json!({"export_id": r.export_id})
    }
}
