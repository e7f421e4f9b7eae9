//! Durable timers: invite expiry and meeting reminders, derived from events and fired as
//! commands when due.
//!
//! Layout: [`timers`] (the projection: which timers the events imply), [`service`] (the role:
//! follow the events, fire what is due, exactly once).
#![forbid(unsafe_code)]

pub mod service;
pub mod timers;

pub use service::{SchedulerConfig, SchedulerService};
pub use timers::{SchedulerError, Timers};
