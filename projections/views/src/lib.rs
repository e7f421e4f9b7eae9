//! Read models of invitebus in their own SQLite file, fed by the event stream, and the queries
//! on them.
//!
//! Layout:
//! - [`schema`]: the tables.
//! - [`projection`]: [`Views`], the projection's writer: batches, rebuilds and bulk loads, each
//!   with its checkpoint in the same transaction.
//! - [`apply`]: each event's effect on the rows, in SQL.
//! - [`fold`]: a fresh bulk load folded in memory and written once, in key order.
//! - [`counts`]: the record counts the admin page reads, gathered per batch.
//! - [`admin`]: seed 004's admin page, from the kept counts where it can.
//! - [`query`]: `received`, `sent`, `invite` and `admin`, as functions of a connection.
//! - [`codes`]: `code` and `codes` in seed 003's shape.
//! - [`service`]: the NATS role: follow the events, answer the queries, report the position.
//! - [`snapshot`]: every row of a view file, for comparing a replay with the live views.
//! - [`part`]: one resource's views as of a position, from its own streams only.
#![forbid(unsafe_code)]

pub mod admin;
pub mod apply;
pub mod codes;
pub mod counts;
pub mod fold;
pub mod part;
pub mod projection;
pub mod query;
mod schema;
pub mod service;
pub mod snapshot;

pub use projection::{ViewError, Views};
pub use service::{ViewService, ViewsConfig};
