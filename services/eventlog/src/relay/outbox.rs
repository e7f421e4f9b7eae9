//! What the relay sends next: the writer's committed batches when they continue the last
//! position sent, else the log; always whole commands, so a command's first event can carry
//! the rest of it.

use super::RELAY_BATCH;
use crate::error::LogError;
use crate::query::Published;
use crate::read::LogReader;
use crate::stored::Stamp;
use std::collections::VecDeque;

/// What the writer handed over and what is ready to go, in position order after the last
/// position sent: `queue` as committed, `pending` stamped (one chunk of whole commands).
#[derive(Default)]
pub(super) struct Outbox {
    pub(super) queue: VecDeque<Published>,
    pub(super) pending: VecDeque<(Published, Option<Stamp>)>,
    /// The command (by its first position) whose rest could not be stored, and how many times
    /// in a row; kept across sessions ([`Outbox::clear`] leaves it).
    rest_failures: (u64, u32),
}

impl Outbox {
    /// Counts one more failure to store the rest of the command that begins at `position`;
    /// returns how many in a row.
    pub(super) fn rest_failed(&mut self, position: u64) -> u32 {
        if self.rest_failures.0 != position {
            self.rest_failures = (position, 0);
        }
        self.rest_failures.1 += 1;
        self.rest_failures.1
    }

    pub(super) fn clear(&mut self) {
        self.queue.clear();
        self.pending.clear();
    }

    /// The next whole commands after `after`, at most [`RELAY_BATCH`] events (or one command
    /// longer than that): from the writer's batches when they continue `after`, else from the
    /// log (the relay started behind, fell behind, or a batch was dropped from the feed).
    pub(super) fn next_rows(&mut self, reader: &mut LogReader, after: u64) -> Result<Vec<Published>, LogError> {
        while self.queue.front().is_some_and(|e| e.position <= after) {
            self.queue.pop_front();
        }
        if self.queue.front().is_none_or(|e| e.position != after + 1) {
            return read_whole(reader, after);
        }
        // Only the run without holes: what follows a hole is read from the log next time.
        let limit = self.queue.len().min(RELAY_BATCH);
        let n = self
            .queue
            .iter()
            .take(limit)
            .enumerate()
            .take_while(|(i, e)| e.position == after + 1 + *i as u64)
            .count();
        let mut rows: Vec<Published> = self.queue.drain(..n).collect();
        let rest = whole_commands(&mut rows);
        if rows.last().is_some_and(|e| e.ends_command) {
            for event in rest.into_iter().rev() {
                self.queue.push_front(event);
            }
            return Ok(rows);
        }
        // One command longer than a batch: the log has it whole.
        for event in rows.into_iter().chain(rest).rev() {
            self.queue.push_front(event);
        }
        read_whole(reader, after)
    }
}

/// Keeps in `rows` only whole commands (up to the last event that ends one) and returns the
/// rest, for the next round. A round that is part of one long command is kept whole.
fn whole_commands(rows: &mut Vec<Published>) -> Vec<Published> {
    match rows.iter().rposition(|e| e.ends_command) {
        Some(last) => rows.split_off(last + 1),
        None => Vec::new(),
    }
}

/// The next whole commands after `after` from the log: at most [`RELAY_BATCH`] events, or the
/// one command longer than that, whole, so that its first event carries all of its rest.
fn read_whole(reader: &mut LogReader, after: u64) -> Result<Vec<Published>, LogError> {
    let mut limit = RELAY_BATCH;
    loop {
        let mut rows = reader.read_published(after, limit)?;
        let full = rows.len() == limit;
        whole_commands(&mut rows);
        if !full || rows.last().is_some_and(|e| e.ends_command) {
            return Ok(rows);
        }
        limit *= 2;
    }
}
