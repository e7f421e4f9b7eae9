//! Notifications: who is told what when an event happens, kept in a per-user inbox and sent on
//! `invites.notify.<user_id>` (the JetStream stream `INVITES_NOTIFY`, so offline users get them
//! later), with the push hand-off on `invites.push.<user_id>`.
//!
//! Layout: [`texts`] (pure: event → notifications with their fixed texts), [`store`] (the
//! projection and its file; `load`: what a fresh bulk load keeps in memory), [`service`] (the
//! NATS role: follow, send, answer `inbox`; `erase`: deleting from `INVITES_NOTIFY` what a
//! forgotten user's name was in).
#![forbid(unsafe_code)]

mod erase;
mod load;
pub mod service;
pub mod store;
pub mod texts;

pub use service::{NotifierConfig, NotifierService};
pub use store::{Notifier, NotifierError};
