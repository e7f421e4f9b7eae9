//! The export aggregate (`export-<export_id>`, seed 004): an admin's request, then the
//! exporter's start and outcome. The limits — one queued or running export per user, 50 per user
//! per UTC day — are decided from the requester's exports, folded from events, so they hold across
//! restarts.

use crate::aggregate::aggregate;
use crate::ctx::Ctx;
use crate::decision::Store;
use crate::error::{into_protocol_error, Rejection, StoreError};
use chrono::{DateTime, Utc};
use invitebus_events::event::{ExportRequested, StreamType};
use invitebus_events::{ErrorCode, Event, Id};

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

impl Phase {
    /// The phase as PROTOCOL.md's export statuses name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Requested => "queued",
            Phase::Started => "running",
            Phase::Completed => "success",
            Phase::Failed => "failed",
        }
    }
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
    pub fn in_progress(&self) -> Option<&Id> {
        self.exports
            .iter()
            .find(|(_, _, p)| matches!(p, Phase::Requested | Phase::Started))
            .map(|(id, _, _)| id)
    }

    pub fn today(&self, now: DateTime<Utc>) -> usize {
        self.exports
            .iter()
            .filter(|(_, at, _)| at.date_naive() == now.date_naive())
            .count()
    }
}

aggregate!(ExportState, StreamType::Export, evolve);

/// What the exporter's commands read: the export (its own stream). Its requester's exports are
/// loaded too, so that the events update them in the cache.
pub struct OnExport<'s> {
    pub export_id: Id,
    pub state: &'s ExportState,
}

impl<'s> OnExport<'s> {
    pub fn load(mut store: Store<'s>, export_id: &Id) -> Result<OnExport<'s>, ExportError> {
        let requester = store
            .own::<ExportState>(export_id)?
            .requested
            .as_ref()
            .map(|r| r.requested_by.clone());
        if let Some(user) = &requester {
            store.user_exports(user)?;
        }
        Ok(OnExport {
            export_id: export_id.clone(),
            state: store.loaded().get::<ExportState>(export_id)?,
        })
    }
}

/// The exporter's commands: `system` only, on an export in one of `phases`.
pub fn system_on<'a>(
    state: &'a ExportState,
    ctx: &Ctx,
    export_id: &Id,
    phases: &[Phase],
) -> Result<&'a ExportRequested, ExportError> {
    if !ctx.is_system() {
        return Err(ExportError::SystemOnly);
    }
    let requested = state
        .requested
        .as_ref()
        .ok_or_else(|| ExportError::NotFound(export_id.clone()))?;
    match state.phase {
        Some(p) if phases.contains(&p) => Ok(requested),
        phase => Err(ExportError::NotInPhase {
            export_id: export_id.clone(),
            phase,
        }),
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

/// Why the export aggregate refuses a command. Each variant's doc names its wire code, its HTTP
/// status and the field it points at.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A request from someone not an admin: `forbidden`, 403.
    #[error("exports are for admins")]
    AdminsOnly,
    /// The requester's last export is queued or running: `export_in_progress`, 409.
    #[error("export {0} is still queued or running")]
    InProgress(Id),
    /// The requester's exports for the UTC day are used up: `export_quota_exceeded`, 429.
    #[error("at most {DAILY_QUOTA} exports per user per day")]
    QuotaExceeded,
    /// The exporter's commands from anyone but `system`: `forbidden`, 403.
    #[error("only system runs exports")]
    SystemOnly,
    /// No such export: `not_found`, 404, on `export_id`.
    #[error("no such export_id: {0}")]
    NotFound(Id),
    /// Not in a phase the command follows (completing an unstarted export): `invalid_state`, 409.
    #[error("export {export_id} is {}", phase.map_or("unknown", Phase::as_str))]
    NotInPhase { export_id: Id, phase: Option<Phase> },
    /// Loading failed: see [`StoreError`].
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Rejection for ExportError {
    fn code(&self) -> ErrorCode {
        match self {
            ExportError::AdminsOnly | ExportError::SystemOnly => ErrorCode::Forbidden,
            ExportError::InProgress(_) => ErrorCode::ExportInProgress,
            ExportError::QuotaExceeded => ErrorCode::ExportQuotaExceeded,
            ExportError::NotFound(_) => ErrorCode::NotFound,
            ExportError::NotInPhase { .. } => ErrorCode::InvalidState,
            ExportError::Store(e) => e.code(),
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            ExportError::NotFound(_) => Some("export_id"),
            ExportError::AdminsOnly
            | ExportError::SystemOnly
            | ExportError::InProgress(_)
            | ExportError::QuotaExceeded
            | ExportError::NotInPhase { .. } => None,
            ExportError::Store(e) => e.field(),
        }
    }
}

into_protocol_error!(ExportError);
