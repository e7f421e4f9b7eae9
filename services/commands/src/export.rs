//! The export aggregate (`export-<export_id>`, seed 004): an admin's request, then the
//! exporter's start and outcome. The limits — one queued or running export per user, 50 per user
//! per UTC day — are decided from the requester's exports, folded from events, so they hold across
//! restarts.

use crate::ctx::Ctx;
use chrono::{DateTime, Utc};
use invitebus_events::command::{CompleteExport, FailExport, RequestExport, StartExport};
use invitebus_events::event::{ExportCompleted, ExportFailed, ExportRequested, ExportStarted};
use invitebus_events::{ErrorCode, Event, Id, ProtocolError};

/// Most exports one user may request per UTC day.
pub const DAILY_QUOTA: usize = 50;

/// Where an export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Requested,
    Started,
    Completed,
    Failed,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportState {
    pub requested: Option<ExportRequested>,
    pub phase: Option<Phase>,
}

/// One user's exports: what the limits are decided on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserExports {
    /// (export_id, requested_at, phase)
    pub exports: Vec<(Id, DateTime<Utc>, Phase)>,
}

impl UserExports {
    fn in_progress(&self) -> Option<&Id> {
        self.exports
            .iter()
            .find(|(_, _, p)| matches!(p, Phase::Requested | Phase::Started))
            .map(|(id, _, _)| id)
    }

    fn today(&self, now: DateTime<Utc>) -> usize {
        self.exports
            .iter()
            .filter(|(_, at, _)| at.date_naive() == now.date_naive())
            .count()
    }
}

/// The export commands; `Request` carries the id the dispatcher made.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportCommand {
    Request { export_id: Id, request: RequestExport },
    Start(StartExport),
    Complete(CompleteExport),
    Fail(FailExport),
}

pub fn decide(
    state: &ExportState,
    user: &UserExports,
    ctx: &Ctx,
    cmd: &ExportCommand,
) -> Result<Vec<Event>, ProtocolError> {
    match cmd {
        ExportCommand::Request { export_id, request } => {
            if !ctx.is_admin() {
                return Err(ProtocolError::forbidden("exports are for admins"));
            }
            if let Some(running) = user.in_progress() {
                return Err(ProtocolError::new(
                    ErrorCode::ExportInProgress,
                    format!("export {running} is still queued or running"),
                ));
            }
            if user.today(ctx.now) >= DAILY_QUOTA {
                return Err(ProtocolError::new(
                    ErrorCode::ExportQuotaExceeded,
                    format!("at most {DAILY_QUOTA} exports per user per day"),
                ));
            }
            Ok(vec![Event::ExportRequested(ExportRequested {
                at: ctx.now,
                export_id: export_id.clone(),
                filters: request.filters.clone(),
                format: request.format,
                requested_by: ctx.actor.clone(),
                view: request.view.clone().unwrap_or_else(|| "admin".into()),
            })])
        }
        ExportCommand::Start(c) => {
            let requested = system_on(state, ctx, &c.export_id, &[Phase::Requested])?;
            Ok(vec![Event::ExportStarted(ExportStarted {
                at: ctx.now,
                count: c.count,
                export_id: c.export_id.clone(),
                requested_by: requested.requested_by.clone(),
            })])
        }
        ExportCommand::Complete(c) => {
            let requested = system_on(state, ctx, &c.export_id, &[Phase::Requested, Phase::Started])?;
            Ok(vec![Event::ExportCompleted(ExportCompleted {
                at: ctx.now,
                count: c.count,
                export_id: c.export_id.clone(),
                file_size: c.file_size,
                file_url: c.file_url.clone(),
                requested_by: requested.requested_by.clone(),
            })])
        }
        ExportCommand::Fail(c) => {
            let requested = system_on(state, ctx, &c.export_id, &[Phase::Requested, Phase::Started])?;
            Ok(vec![Event::ExportFailed(ExportFailed {
                at: ctx.now,
                export_id: c.export_id.clone(),
                reason: c.reason.clone(),
                requested_by: requested.requested_by.clone(),
            })])
        }
    }
}

/// The exporter's commands: `system` only, on an export in one of `phases`.
fn system_on<'a>(
    state: &'a ExportState,
    ctx: &Ctx,
    export_id: &Id,
    phases: &[Phase],
) -> Result<&'a ExportRequested, ProtocolError> {
    if !ctx.is_system() {
        return Err(ProtocolError::forbidden("only system runs exports"));
    }
    let requested = state
        .requested
        .as_ref()
        .ok_or_else(|| ProtocolError::not_found("export_id", export_id))?;
    match state.phase {
        Some(p) if phases.contains(&p) => Ok(requested),
        p => Err(ProtocolError::new(
            ErrorCode::InvalidState,
            format!("export {export_id} is {p:?}"),
        )),
    }
}

fn phase_of(event: &Event) -> Option<(&Id, Phase)> {
    match event {
        Event::ExportRequested(e) => Some((&e.export_id, Phase::Requested)),
        Event::ExportStarted(e) => Some((&e.export_id, Phase::Started)),
        Event::ExportCompleted(e) => Some((&e.export_id, Phase::Completed)),
        Event::ExportFailed(e) => Some((&e.export_id, Phase::Failed)),
        _ => None,
    }
}

pub fn evolve(mut state: ExportState, event: &Event) -> ExportState {
    if let Event::ExportRequested(e) = event {
        state.requested = Some(e.clone());
    }
    if let Some((_, phase)) = phase_of(event) {
        state.phase = Some(phase);
    }
    state
}

/// Folds an export event into its requester's list.
pub fn evolve_user(mut user: UserExports, event: &Event) -> UserExports {
    match event {
        Event::ExportRequested(e) => user.exports.push((e.export_id.clone(), e.at, Phase::Requested)),
        other => {
            if let Some((id, phase)) = phase_of(other) {
                if let Some(entry) = user.exports.iter_mut().find(|(x, _, _)| x == id) {
                    entry.2 = phase;
                }
            }
        }
    }
    user
}

/// The requester of an export event.
pub fn requester(event: &Event) -> Option<&Id> {
    match event {
        Event::ExportRequested(e) => Some(&e.requested_by),
        Event::ExportStarted(e) => Some(&e.requested_by),
        Event::ExportCompleted(e) => Some(&e.requested_by),
        Event::ExportFailed(e) => Some(&e.requested_by),
        _ => None,
    }
}
