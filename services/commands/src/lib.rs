//! The write side of invitebus.
//!
//! Layout:
//! - [`ctx`]: who is acting and when: the only input of a decision besides state and command.
//! - [`aggregate`]: what a stream's state is ([`aggregate::Aggregate`]: a stream type and a pure
//!   `evolve`); [`user`], [`resource`], [`invite`], [`code`], [`export`], [`webhook`]: one module per
//!   aggregate, its state, `evolve`, the checks its commands share and what they read of it; [`webhook`] also seals a
//!   webhook's secret as the command arrives.
//! - [`decision`]: one command's rules ([`decision::Decision`]: load the streams it reads, a pure
//!   `decide`, its reply) and [`decision::run`].
//! - [`command`]: one file per command, and [`command::execute`], the registry.
//! - [`cache`]: aggregate state kept in memory between commands, loaded from the log on a miss.
//! - [`writer`]: the single writer: group commit over an in-memory cache of aggregate state.
//! - [`personal`]: sealing personal fields as a command arrives, destroying a forgotten user's key.
//! - [`health`]: `invites.health`, from every role's status reports.
//! - [`durability`]: when a reply goes out: at once, or once JetStream holds its events.
//! - [`service`]: the NATS loop around it: `invites.cmd.*`, `invites.health`, and the log
//!   queries of [`queries`] (`history`, `state`).
//! - [`lease`], [`standby`], [`elected`]: several commands roles, one writer at a time: the
//!   writer's lease in a KV bucket, a standby following the stream, and the loop between them.
#![forbid(unsafe_code)]

pub mod aggregate;
pub mod cache;
pub mod code;
pub mod command;
pub mod ctx;
pub mod decision;
pub mod durability;
pub mod elected;
pub mod error;
pub mod export;
pub mod health;
pub mod invite;
pub mod lease;
pub mod personal;
pub mod queries;
pub mod resource;
pub mod service;
pub mod standby;
pub mod user;
pub mod webhook;
pub mod writer;

pub use ctx::Ctx;
pub use elected::{ElectedService, Standing};
pub use service::{CommandService, ServiceConfig};
pub use writer::{Writer, WriterConfig, WriterHandle};
