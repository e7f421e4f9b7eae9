//! The write side of invitebus.
//!
//! Layout:
//! - [`ctx`]: who is acting and when: the only input of a decision besides state and command.
//! - [`user`], [`resource`], [`invite`], [`code`], [`export`]: one module per aggregate, each a pure
//!   `decide(&State, …, &Command) -> Result<Vec<Event>, ProtocolError>` and `evolve(State, &Event) -> State`.
//! - [`cache`]: aggregate state kept in memory between commands, loaded from the log on a miss.
//! - [`dispatch`]: which streams a command reads and writes, and what its reply says.
//! - [`writer`]: the single writer: group commit over an in-memory cache of aggregate state.
//! - [`health`]: `invites.health`, from every role's status reports.
//! - [`service`]: the NATS loop around it: `invites.cmd.*`, `invites.health`, and the log
//!   queries of [`queries`] (`history`, `state`).
#![forbid(unsafe_code)]

pub mod cache;
pub mod code;
pub mod ctx;
pub mod dispatch;
pub mod export;
pub mod health;
pub mod invite;
pub mod queries;
pub mod resource;
pub mod service;
pub mod user;
pub mod writer;

pub use ctx::Ctx;
pub use service::{CommandService, ServiceConfig};
pub use writer::{Writer, WriterConfig, WriterHandle};
