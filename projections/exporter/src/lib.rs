//! Export jobs (seed 004): the admin view as of the request, written to xlsx or csv, its
//! progress on `invites.export.<export_id>.progress` (INVITES_EXPORTS keeps the last message per
//! export), the file in the `invites-exports` object store, the outcome recorded as a command.
//!
//! Layout: [`file`] (rows to csv / constant-memory xlsx), [`job`] (the projection that runs jobs
//! in log order on its own copy of the views), [`files`] (which files hold whom, and erasing
//! a forgotten user's), [`service`] (the role).
#![forbid(unsafe_code)]

pub mod file;
pub mod files;
pub mod job;
pub mod service;

pub use service::{ExporterConfig, ExporterService};
