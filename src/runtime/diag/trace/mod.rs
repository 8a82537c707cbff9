//! Execution traces: which coroutine ran on which worker when, and why
//! each one stopped (Go's `runtime/trace` and `go tool trace`, as Chrome
//! trace-event JSON that Perfetto's UI and `chrome://tracing` open).
//!
//! ```no_run
//! let file = std::fs::File::create("trace.json")?;
//! goro::runtime::trace::start(file)?;
//! goro::run(|| {
//!     // ... the program ...
//! });
//! goro::runtime::trace::stop()?;
//! // Open trace.json in https://ui.perfetto.dev or chrome://tracing.
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! A trace shows one track per worker, on which each run of a coroutine is
//! a slice named after the coroutine (`'name' #id`, or `#id`), ending with
//! why it stopped (`then: parked: channel receive`, the wait reasons of
//! `runtime::dump`; `yielded`; `finished`); waits in the netpoller, timer
//! firings, spawns, steals and handoffs of fresh coroutines between
//! workers; one track per other thread that took part (blocking-pool
//! threads and their jobs, the monitor, plain threads that woke a
//! coroutine); the monitor's held-worker reports; and an arrow (a flow)
//! from whoever woke or spawned a coroutine to the run that followed,
//! across workers too.
//!
//! A `FlightRecorder` keeps recording into the same buffers, whose oldest
//! events are overwritten, and writes the last seconds on demand
//! (`snapshot`), or by itself beside each held-worker report
//! (`FlightRecorder::on_held_worker`): Go 1.25's flight recorder.
//!
//! # Design
//!
//! Recording costs nothing that is shared: each thread writes its own
//! ring of fixed-size events (`ring.rs`), with plain stores, and no lock;
//! its first event registers the ring. The hooks in the scheduler
//! (resume, spawn, unpark, steal, handoff, poll, timers), the blocking
//! pool and the monitor first read `ENABLED` with one relaxed load: that
//! load is all a program that never traces pays, and it is why a trace
//! may miss an event racing with `start` or `stop`.
//!
//! `start` spawns a drainer thread (`goro-trace`) that copies every ring's
//! new events every `DRAIN_PERIOD` into memory (32 bytes an event), so
//! that a trace is complete as long as no thread writes more than a ring
//! (`RING_EVENTS`) in one period; events overwritten before it got to
//! them are counted in the JSON's `otherData`. `stop` takes the last
//! events, sorts all by time and writes the JSON. A flight recorder reads
//! the rings only when asked, keeping what is younger than its window.
//! Coroutine names are recorded once per thread and session, at a
//! coroutine's first run there.

mod json;
mod ring;

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::runtime::task::header::Header;
use crate::runtime::time::clock;
use crate::runtime::{WaitingOn, lock};
use json::Capture;
use ring::{Event, Ring, Track};
pub(crate) use ring::{Kind, Outcome};

/// How often the drainer copies the rings while a trace runs: the rings
/// hold ~20 ms of the busiest worker's events.
const DRAIN_PERIOD: Duration = Duration::from_millis(10);

/// Whether anything records: a trace or a flight recorder is on.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// The current session's number, which changes whenever recording starts
/// anew, so that coroutines are labelled again for it.
static SESSION: AtomicU64 = AtomicU64::new(0);

/// Who records, under one lock.
static STATE: Mutex<State> = Mutex::new(State {
    tracer: None,
    recorders: 0,
    on_held: None,
});

struct State {
    /// The running trace, if any.
    tracer: Option<Tracer>,
    /// Flight recorders alive.
    recorders: usize,
    /// Where to write a snapshot beside each held-worker report, and of
    /// how long: set by `FlightRecorder::on_held_worker`, with the
    /// recorder's id.
    on_held: Option<(u64, PathBuf, Duration, u64)>,
}

impl State {
    /// Turns recording on or off for what is left.
    fn update(&self) {
        let on = self.tracer.is_some() || self.recorders > 0;
        if on && !ENABLED.load(Ordering::Relaxed) {
            SESSION.fetch_add(1, Ordering::Relaxed);
        }
        ENABLED.store(on, Ordering::Relaxed);
    }
}

/// A running trace.
struct Tracer {
    /// Where `stop` writes.
    out: Box<dyn Write + Send>,
    /// Shared with the drainer.
    drained: Arc<Mutex<Drained>>,
    /// Set to stop the drainer.
    stop: Arc<AtomicBool>,
    /// The drainer thread, joined by `stop`.
    drainer: JoinHandle<()>,
}

/// What the drainer has copied.
#[derive(Default)]
struct Drained {
    /// Per ring (by address), the ring, where to read from next, and its
    /// events so far. Holding the ring keeps its address from being
    /// reused by a new thread's while the trace runs.
    rings: HashMap<usize, (Arc<Ring>, u64, Vec<Event>)>,
    /// Events overwritten before they were copied.
    lost: u64,
}

impl Drained {
    /// Copies every ring's events since the last call.
    fn drain(&mut self) {
        for r in ring::rings() {
            let (_, from, events) = self
                .rings
                .entry(Arc::as_ptr(&r) as usize)
                .or_insert_with(|| (r.clone(), 0, Vec::new()));
            let (next, lost) = r.read(*from, events);
            *from = next;
            self.lost += lost;
        }
    }

    fn capture(self) -> Capture {
        Capture::of(
            self.rings.into_values().map(|(r, _, events)| (r, events)),
            self.lost,
        )
    }
}

/// Workers first, by index, then other threads in order of appearance.
fn sort_tracks(tracks: &mut [(Track, Vec<Event>)]) {
    tracks.sort_by_key(|(t, _)| match t {
        Track::Worker(i) => (0, *i),
        Track::Thread { n, .. } => (1, *n),
    });
}

/// Starts tracing the runtime into `out`, until `stop`, which writes the
/// trace there as Chrome trace-event JSON (see the module doc). The
/// runtime need not have started: a trace started first sees it start.
///
/// # Errors
/// `AlreadyExists` if a trace is running; an error of the OS if the
/// drainer thread cannot start.
pub fn start(out: impl Write + Send + 'static) -> io::Result<()> {
    let mut st = lock(&STATE);
    if st.tracer.is_some() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "goro::runtime::trace::start: a trace is already running",
        ));
    }
    // Events already in the rings (a flight recorder's) are not this
    // trace's.
    let mut drained = Drained::default();
    for r in ring::rings() {
        let head = r.head();
        drained
            .rings
            .insert(Arc::as_ptr(&r) as usize, (r, head, Vec::new()));
    }
    let drained = Arc::new(Mutex::new(drained));
    let stop = Arc::new(AtomicBool::new(false));
    let drainer = {
        let (drained, stop) = (drained.clone(), stop.clone());
        thread::Builder::new()
            .name("goro-trace".into())
            .spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    thread::park_timeout(DRAIN_PERIOD);
                    lock(&drained).drain();
                }
            })?
    };
    st.tracer = Some(Tracer {
        out: Box::new(out),
        drained,
        stop,
        drainer,
    });
    st.update();
    Ok(())
}

/// Stops the trace `start` began and writes it. From a coroutine, the
/// writing runs in `goro::blocking`, off the worker.
///
/// # Errors
/// `NotFound` if no trace is running; the writer's error if writing fails.
pub fn stop() -> io::Result<()> {
    let tracer = {
        let mut st = lock(&STATE);
        let tracer = st.tracer.take();
        st.update();
        tracer
    };
    let Some(t) = tracer else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "goro::runtime::trace::stop: no trace is running",
        ));
    };
    crate::runtime::io::blocking::blocking(move || {
        t.stop.store(true, Ordering::Release);
        t.drainer.thread().unpark();
        let _ = t.drainer.join();
        let mut drained = std::mem::take(&mut *lock(&t.drained));
        drained.drain();
        let mut out = t.out;
        json::write(&drained.capture(), &mut out)
    })
}

/// A flight recorder: records all the time, into per-thread rings whose
/// oldest events are overwritten, and writes the last `window` of it on
/// demand (Go 1.25's `trace.FlightRecorder`). Recording stops when it is
/// dropped.
///
/// A ring holds `RING_EVENTS` (65,536) events per thread: a snapshot
/// reaches back `window`, or less on a thread that recorded more than that
/// many events since (a worker switching coroutines a million times a
/// second fills its ring in about 20 ms).
///
/// ```
/// use std::time::Duration;
///
/// let recorder = goro::runtime::trace::FlightRecorder::new(Duration::from_secs(5));
/// goro::run(|| {
///     let (tx, rx) = goro::chan::chan::<u32>(0);
///     goro::spawn(move || tx.send(1));
///     rx.recv().unwrap();
/// });
/// let mut json = Vec::new();
/// recorder.snapshot(&mut json).unwrap();
/// assert!(String::from_utf8(json).unwrap().contains("parked: channel"));
/// ```
pub struct FlightRecorder {
    /// Its number, to tell whose `on_held_worker` is set.
    id: u64,
    /// How far back a snapshot reaches.
    window: Duration,
    /// `clock::nanos` when it started: older events in the rings (another
    /// recording's) are not its.
    since: u64,
}

/// Numbers flight recorders.
static NEXT_RECORDER: AtomicU64 = AtomicU64::new(1);

/// Snapshots written beside held-worker reports, to number their files.
static HELD_SNAPSHOTS: AtomicU64 = AtomicU64::new(0);

impl FlightRecorder {
    /// Starts recording; a snapshot holds the last `window`.
    pub fn new(window: Duration) -> FlightRecorder {
        let mut st = lock(&STATE);
        st.recorders += 1;
        st.update();
        FlightRecorder {
            id: NEXT_RECORDER.fetch_add(1, Ordering::Relaxed),
            window,
            since: clock::now_nanos(),
        }
    }

    /// Writes the last `window` of events as Chrome trace-event JSON.
    ///
    /// # Errors
    /// The writer's.
    pub fn snapshot(&self, out: &mut dyn Write) -> io::Result<()> {
        json::write(&snapshot(self.window, self.since), out)
    }

    /// From now on, each held-worker report (see `runtime::Builder::
    /// hold_threshold`) also writes a snapshot into `dir`, as
    /// `goro-held-PID-N.json`, and names the file in the report. One
    /// recorder at a time does this: the last to ask.
    pub fn on_held_worker(&self, dir: impl Into<PathBuf>) {
        lock(&STATE).on_held = Some((self.id, dir.into(), self.window, self.since));
    }
}

impl Drop for FlightRecorder {
    fn drop(&mut self) {
        let mut st = lock(&STATE);
        st.recorders -= 1;
        if st.on_held.as_ref().is_some_and(|(id, ..)| *id == self.id) {
            st.on_held = None;
        }
        st.update();
    }
}

/// Every ring's events of the last `window`, none before `start`.
fn snapshot(window: Duration, start: u64) -> Capture {
    let since = clock::now_nanos()
        .saturating_sub(window.as_nanos() as u64)
        .max(start);
    let rings = ring::rings().into_iter().map(|r| {
        let mut events = Vec::new();
        // Overwritten events are what a flight recorder is meant to lose.
        let _ = r.read(0, &mut events);
        events.retain(|e| e.ts >= since);
        (r, events)
    });
    Capture::of(rings, 0)
}

impl Capture {
    /// A capture of each ring's `events`: the tracks that have any, workers
    /// first, and the labels of every coroutine a ring saw.
    fn of(rings: impl Iterator<Item = (Arc<Ring>, Vec<Event>)>, lost: u64) -> Capture {
        let mut labels = HashMap::new();
        let mut tracks = Vec::new();
        for (r, events) in rings {
            for l in r.labels() {
                labels.insert(l.id, l);
            }
            if !events.is_empty() {
                tracks.push((r.track.clone(), events));
            }
        }
        sort_tracks(&mut tracks);
        Capture {
            tracks,
            labels,
            lost,
        }
    }
}

/// The monitor, reporting a held worker: writes a flight recorder's
/// snapshot if one asked, on a thread of its own, and returns the line
/// that names the file for the report.
pub(crate) fn snapshot_beside_held_report() -> Option<String> {
    let (_, dir, window, start) = lock(&STATE).on_held.clone()?;
    let n = HELD_SNAPSHOTS.fetch_add(1, Ordering::Relaxed) + 1;
    let path = dir.join(format!("goro-held-{}-{n}.json", std::process::id()));
    let line = format!("  trace of the last {window:?}: {}", path.display());
    let p = path.clone();
    // Copied there too: the rings hold megabytes, and the monitor has
    // workers to watch.
    let written = thread::Builder::new()
        .name("goro-trace".into())
        .spawn(move || {
            let capture = snapshot(window, start);
            let result = std::fs::File::create(&p).and_then(|mut f| json::write(&capture, &mut f));
            if let Err(e) = result {
                eprintln!("goro: cannot write the trace {}: {e}", p.display());
            }
        });
    written.is_ok().then_some(line)
}

/// Whether anything records: the one relaxed load every hook makes first.
#[inline]
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// A worker resumes `h`.
#[cold]
pub(crate) fn run_start(h: &Header) {
    ring::record_run_start(h, SESSION.load(Ordering::Relaxed));
}

/// `h`'s run ended: `outcome`, and what it parked on.
#[cold]
pub(crate) fn run_end(h: &Header, outcome: Outcome) {
    let wait = match outcome {
        Outcome::Parked => h.wait.get().map_or(0, WaitingOn::encode),
        _ => 0,
    };
    ring::record(Kind::RunEnd, outcome as u64, h.id, wait);
}

/// Records an event of `kind` (see `ring::Kind` for `a`, `b`, `c`).
#[cold]
pub(crate) fn record(kind: Kind, a: u64, b: u64, c: u64) {
    ring::record(kind, a, b, c);
}

/// The id of the coroutine running on this thread, 0 if none.
pub(crate) fn running_id() -> u64 {
    crate::runtime::scheduler::worker::Worker::with_running_header(|h| h.id).unwrap_or(0)
}
