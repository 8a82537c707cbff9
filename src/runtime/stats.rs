//! Runtime counters: `goro::runtime::stats()`.
//!
//! Each worker counts its own events in counters only it writes, with a
//! plain load and store (no read-modify-write, no shared cache line), so
//! counting costs about nothing on the hot paths. Readers on other threads
//! see each counter exactly or a moment stale; totals are a snapshot.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Runtime, blocking, stack};

/// A counter written by one thread (its owner) and read by any.
pub(crate) struct OwnerCounter(AtomicU64);

impl OwnerCounter {
    pub(crate) const fn new() -> OwnerCounter {
        OwnerCounter(AtomicU64::new(0))
    }

    /// Adds `n`. Only the owning thread may call this.
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Sets the value (for gauges). Only the owning thread may call this.
    #[inline]
    pub(crate) fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One worker's counters (or their sum). Counts are since the runtime
/// started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Coroutines spawned by coroutines running on this worker.
    pub spawned: u64,
    /// Coroutines started on this worker and not finished: they live here
    /// until they end.
    pub live: u64,
    /// Coroutines that finished on this worker.
    pub finished: u64,
    /// Not-yet-started coroutines this worker took from others (or from the
    /// global queue).
    pub stolen: u64,
    /// Times a coroutine on this worker parked.
    pub parks: u64,
    /// Coroutines of this worker woken by another thread (through its inbox).
    pub remote_wakeups: u64,
    /// Polls of this worker's netpoller, blocking or not.
    pub polls: u64,
    /// I/O readiness events those polls delivered.
    pub events: u64,
    /// Timers fired on this worker.
    pub timers_fired: u64,
    /// Hot stacks in this worker's pool, ready for new coroutines.
    pub stack_pool: u64,
}

impl WorkerStats {
    fn add(&mut self, o: &WorkerStats) {
        self.spawned += o.spawned;
        self.live += o.live;
        self.finished += o.finished;
        self.stolen += o.stolen;
        self.parks += o.parks;
        self.remote_wakeups += o.remote_wakeups;
        self.polls += o.polls;
        self.events += o.events;
        self.timers_fired += o.timers_fired;
        self.stack_pool += o.stack_pool;
    }
}

/// A snapshot of the runtime's counters: `goro::runtime::stats()`.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Per worker, by index (spare workers started by the monitor included).
    pub workers: Vec<WorkerStats>,
    /// The sum over workers.
    pub total: WorkerStats,
    /// Coroutines spawned from outside the runtime (plain threads).
    pub spawned_outside: u64,
    /// Live coroutines, started or not (`num_coroutines`).
    pub coroutines: u64,
    /// Address space reserved for stacks, in bytes (only touched pages use
    /// memory).
    pub stack_bytes_mapped: u64,
    /// Calls running in `goro::blocking`'s pool now.
    pub blocking_in_flight: u64,
}

/// The runtime's counters now. All zero before the runtime starts.
pub fn stats() -> Stats {
    let Some(rt) = Runtime::started() else {
        return Stats::default();
    };
    let workers: Vec<WorkerStats> = rt
        .workers
        .iter()
        .take(rt.active_workers())
        .map(|w| w.stats())
        .collect();
    let mut total = WorkerStats::default();
    for w in &workers {
        total.add(w);
    }
    Stats {
        workers,
        total,
        spawned_outside: rt.spawned_outside(),
        coroutines: super::num_coroutines() as u64,
        stack_bytes_mapped: stack::MAPPED_BYTES.load(Ordering::Relaxed) as u64,
        blocking_in_flight: blocking::IN_FLIGHT.load(Ordering::Relaxed) as u64,
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:>7} {:>10} {:>8} {:>10} {:>8} {:>10} {:>8} {:>8} {:>10} {:>8} {:>6}",
            "worker",
            "spawned",
            "live",
            "finished",
            "stolen",
            "parks",
            "remote",
            "polls",
            "events",
            "timers",
            "stacks"
        )?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, w: &WorkerStats| {
            writeln!(
                f,
                "{:>7} {:>10} {:>8} {:>10} {:>8} {:>10} {:>8} {:>8} {:>10} {:>8} {:>6}",
                name,
                w.spawned,
                w.live,
                w.finished,
                w.stolen,
                w.parks,
                w.remote_wakeups,
                w.polls,
                w.events,
                w.timers_fired,
                w.stack_pool
            )
        };
        for (i, w) in self.workers.iter().enumerate() {
            row(f, &i.to_string(), w)?;
        }
        row(f, "total", &self.total)?;
        write!(
            f,
            "coroutines {} (spawned outside the runtime {}), stacks mapped {} MiB, blocking calls {}",
            self.coroutines,
            self.spawned_outside,
            self.stack_bytes_mapped >> 20,
            self.blocking_in_flight
        )
    }
}
