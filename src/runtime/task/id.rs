//! Coroutine ids: unique for the life of the process, never reused.
//!
//! Ids come from one global counter, which a worker draws on a block at a
//! time (`scheduler/worker.rs`, `Worker::next_id`) so that spawning does not
//! contend on one cache line; a spawn outside the runtime takes one id.

use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::runtime::scheduler::worker::Worker;

/// The next id no one has taken (ids start at 1).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Reserves `n` consecutive coroutine ids and returns the first.
pub(crate) fn take_ids(n: u64) -> u64 {
    NEXT_ID.fetch_add(n, Ordering::Relaxed)
}

/// A fresh id, from `worker`'s block if the caller is on one.
pub(crate) fn next_id(worker: Option<&Worker>) -> u64 {
    match worker {
        Some(w) => w.next_id(),
        None => take_ids(1),
    }
}

/// A coroutine's unique identifier. Ids are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CoroutineId(NonZeroU64);

impl CoroutineId {
    /// Stands in for an id that cannot be 0 but was (never, in practice).
    pub(crate) const MIN: CoroutineId = CoroutineId(NonZeroU64::MIN);

    /// The id of a task whose header holds `id`; `None` for 0.
    pub(crate) fn from_u64(id: u64) -> Option<CoroutineId> {
        NonZeroU64::new(id).map(CoroutineId)
    }

    /// The id as a number (ids start at 1).
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for CoroutineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}
