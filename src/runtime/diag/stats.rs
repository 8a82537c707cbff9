//! Runtime counters: `goro::runtime::stats()`.
//!
//! Each worker counts its own events in counters only it writes, with a
//! plain load and store (no read-modify-write, no shared cache line), so
//! counting costs about nothing on the hot paths. Readers on other threads
//! see each counter exactly or a moment stale; totals are a snapshot.
//!
//! Coroutines by state are not counted as they change state, which would
//! put counters on every park and wakeup: `stats` reads the state they
//! already publish. The started ones are walked in their workers'
//! registries (a park state and a wait reason per header), a chunk at a
//! time so that a worker starting or ending a coroutine meanwhile never
//! waits for a whole walk; the not-started ones are the lengths of the
//! queues they wait in, read without taking anything out.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::runtime::park::wait::ParkedOn;
use crate::runtime::scheduler::worker::WorkerShared;
use crate::runtime::task::header::Header;
use crate::runtime::{Runtime, io::blocking, task::stack};

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

/// One worker's counters (or their sum): events since the runtime started,
/// then its coroutines by state now.
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
    /// Fds registered with this worker's poller now: the sockets whose
    /// coroutines wait here, so about the connections this worker serves
    /// (the spread the scheduler balances, `docs/design.md` §3).
    pub fds: u64,
    /// Coroutines running now: 1 while one runs on this worker, 0 while it
    /// schedules or sleeps.
    pub running: u64,
    /// Coroutines started here, ready to run and waiting for this worker
    /// (they yielded, or were woken and have not run since).
    pub runnable: u64,
    /// Coroutines spawned and not started yet, queued on this worker (any
    /// worker may still start them). In `Stats::total`, also those spawned
    /// from outside the runtime that no worker has taken yet.
    pub not_started: u64,
    /// Coroutines started here and parked until something wakes them: the
    /// sum of `parked_on`.
    pub parked: u64,
    /// The `parked` coroutines by what they wait on.
    pub parked_on: ParkedOn,
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
        self.fds += o.fds;
        self.running += o.running;
        self.runnable += o.runnable;
        self.not_started += o.not_started;
        self.parked += o.parked;
        self.parked_on.add(&o.parked_on);
    }

    /// Counts `w`'s coroutines by state into `self`.
    fn count_states(&mut self, w: &WorkerShared) {
        let running_id = w.running_id.load(Ordering::Relaxed);
        w.for_each_started(|task| self.count_started(task.header(), running_id));
        self.not_started = w.not_started_len() as u64;
    }

    /// Counts a started coroutine by its state (as `dump` classifies it).
    fn count_started(&mut self, h: &Header, running_id: u64) {
        if h.id == running_id {
            self.running += 1;
        } else if h.is_parked() {
            self.parked += 1;
            self.parked_on.count(h.wait.get());
        } else {
            self.runnable += 1;
        }
    }
}

/// A snapshot of the runtime's counters: `goro::runtime::stats()`.
///
/// Each figure is read on its own while the runtime runs, so they may
/// disagree a little: a coroutine that changes state or queue during the
/// read may be counted in two states, or in none, and
/// `running + runnable + not_started + parked` may differ from
/// `coroutines` by the coroutines in flight. Once the runtime is quiet
/// (nothing changes state while `stats` reads), every figure is exact.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Per worker, by index (spare workers started by the monitor included).
    pub workers: Vec<WorkerStats>,
    /// The sum over workers, and in `not_started` the coroutines spawned
    /// from outside the runtime that no worker has taken yet.
    pub total: WorkerStats,
    /// Coroutines spawned from outside the runtime (plain threads).
    pub spawned_outside: u64,
    /// Coroutines spawned since the runtime started, from anywhere
    /// (`total.spawned + spawned_outside`; Go's goroutines-created).
    pub created: u64,
    /// Live coroutines, started or not (`num_coroutines`).
    pub coroutines: u64,
    /// Address space reserved for stacks, in bytes (only touched pages use
    /// memory).
    pub stack_bytes_mapped: u64,
    /// Calls running in `goro::blocking`'s pool now.
    pub blocking_in_flight: u64,
}

/// The runtime's counters now. All zero before the runtime starts.
///
/// Cheap enough to read every second from a metrics endpoint: it stops no
/// worker and takes nothing out of any queue. Its cost grows with the
/// started coroutines, whose headers it reads: under 1 ms for 100,000
/// parked ones, about 15 ms for a million (a 2-core x86-64 machine). It
/// holds a worker's registry lock, which the worker takes only to start or
/// end a coroutine, for 256 headers at a time.
///
/// ```
/// use std::fmt::Write;
///
/// goro::run(|| {
///     let (tx, rx) = goro::chan::chan::<()>(0);
///     let waiter = goro::spawn(move || rx.recv());
///     // Wait until it parks (a metrics endpoint just reads).
///     while goro::runtime::stats().total.parked_on.channel_receive == 0 {
///         goro::sleep(std::time::Duration::from_millis(1));
///     }
///
///     // What a `/metrics` handler would serve, in Prometheus' text format.
///     let s = goro::runtime::stats();
///     let mut out = String::new();
///     writeln!(out, "goro_coroutines_created_total {}", s.created).unwrap();
///     for (state, n) in [
///         ("running", s.total.running),
///         ("runnable", s.total.runnable),
///         ("not_started", s.total.not_started),
///         ("parked", s.total.parked),
///     ] {
///         writeln!(out, "goro_coroutines{{state=\"{state}\"}} {n}").unwrap();
///     }
///     for (reason, n) in s.total.parked_on.iter() {
///         writeln!(out, "goro_coroutines_parked{{reason=\"{reason}\"}} {n}").unwrap();
///     }
///     for (i, w) in s.workers.iter().enumerate() {
///         writeln!(out, "goro_worker_parks_total{{worker=\"{i}\"}} {}", w.parks).unwrap();
///     }
///
///     // This coroutine runs; the other waits on the channel.
///     assert!(out.contains("goro_coroutines{state=\"running\"} 1\n"), "{out}");
///     assert!(out.contains("goro_coroutines_parked{reason=\"channel_receive\"} 1\n"), "{out}");
///     drop(tx);
///     assert!(waiter.join().unwrap().is_err());
/// });
/// ```
pub fn stats() -> Stats {
    let Some(rt) = Runtime::started() else {
        return Stats::default();
    };
    let workers: Vec<WorkerStats> = rt
        .workers
        .iter()
        .take(rt.active_workers())
        .map(|w| {
            let mut s = w.stats();
            s.count_states(w);
            s
        })
        .collect();
    let mut total = WorkerStats::default();
    for w in &workers {
        total.add(w);
    }
    total.not_started += rt.injector.len() as u64;
    let spawned_outside = rt.spawned_outside();
    Stats {
        created: total.spawned + spawned_outside,
        workers,
        total,
        spawned_outside,
        coroutines: crate::runtime::num_coroutines() as u64,
        stack_bytes_mapped: stack::MAPPED_BYTES.load(Ordering::Relaxed) as u64,
        blocking_in_flight: blocking::IN_FLIGHT.load(Ordering::Relaxed) as u64,
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:>7} {:>10} {:>8} {:>10} {:>8} {:>10} {:>8} {:>8} {:>10} {:>8} {:>6} {:>6}",
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
            "stacks",
            "fds"
        )?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, w: &WorkerStats| {
            writeln!(
                f,
                "{:>7} {:>10} {:>8} {:>10} {:>8} {:>10} {:>8} {:>8} {:>10} {:>8} {:>6} {:>6}",
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
                w.stack_pool,
                w.fds
            )
        };
        for (i, w) in self.workers.iter().enumerate() {
            row(f, &i.to_string(), w)?;
        }
        row(f, "total", &self.total)?;
        let t = &self.total;
        write!(
            f,
            "coroutines {}: running {}, runnable {}, not started {}, parked {}",
            self.coroutines, t.running, t.runnable, t.not_started, t.parked
        )?;
        let mut reasons = t.parked_on.iter().filter(|&(_, n)| n > 0).peekable();
        if reasons.peek().is_some() {
            f.write_str(" (")?;
            for (i, (reason, n)) in reasons.enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                write!(f, "{sep}{reason} {n}")?;
            }
            f.write_str(")")?;
        }
        write!(
            f,
            "\ncreated {} (outside the runtime {}), stacks mapped {} MiB, blocking calls {}",
            self.created,
            self.spawned_outside,
            self.stack_bytes_mapped >> 20,
            self.blocking_in_flight
        )
    }
}
