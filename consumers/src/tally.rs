//! What one batch did, counted the same way for every sink, so a replay can
//! say how much of what it re-read was new and how much the sink's
//! idempotency absorbed.

use std::ops::AddAssign;

/// Per-batch counts. `read()` is the batch length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Messages whose effect was new (a row inserted, a reservation settled,
    /// a deal version or a sale counted for the first time).
    pub applied: u64,
    /// Messages the sink had already applied: nothing changed.
    pub duplicates: u64,
    /// Messages that were neither: rejected intents, events this sink does
    /// not use (product events for a deal projector, rejections for the
    /// sold count).
    pub other: u64,
    /// Messages sent to `<topic>.dlq`.
    pub dead_lettered: u64,
}

impl Tally {
    /// Every message the batch held.
    pub fn read(&self) -> u64 {
        self.applied + self.duplicates + self.other + self.dead_lettered
    }
}

impl AddAssign for Tally {
    fn add_assign(&mut self, rhs: Self) {
        self.applied += rhs.applied;
        self.duplicates += rhs.duplicates;
        self.other += rhs.other;
        self.dead_lettered += rhs.dead_lettered;
    }
}
