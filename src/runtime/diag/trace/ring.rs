//! Per-thread event rings: the trace's only shared state on the hot path.
//!
//! Each thread that records gets a ring of `RING_EVENTS` fixed-size events
//! on its first event, registered once (under the registry lock) and kept
//! for the thread's life. Only the owner writes its ring: no lock, no
//! read-modify-write: a relaxed store of `claimed`, a release fence, four
//! relaxed stores of the event's words and a release store of `head`. It never waits for a reader: it overwrites the oldest
//! events, which is what a flight recorder wants and what the tracer's
//! drainer thread outruns (see `trace/mod.rs`).
//!
//! Readers copy events out as a seqlock reader does. The writer sets
//! `claimed` past the index it is about to write, then (after a release
//! fence) writes the slot, then publishes `head`. A reader copies the slots
//! below `head`, issues an acquire fence and reads `claimed`: any event the
//! writer may have been overwriting meanwhile (index below `claimed -
//! RING_EVENTS`) is dropped from the copy as torn. The slots are atomics,
//! so a torn read is a wrong value that gets dropped, never undefined
//! behaviour.

use std::cell::RefCell;
use std::collections::HashSet;
use std::panic::Location;
use std::sync::atomic::{self, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::runtime::lock;
use crate::runtime::scheduler::worker::Worker;
use crate::runtime::task::header::Header;
use crate::runtime::time::clock;

/// Events a ring holds: 2 MiB of 32-byte events per recording thread.
/// At the few million events a second of a switch-heavy worker, that is
/// the last ~20 ms of it, well over the drainer's 10 ms period.
pub(crate) const RING_EVENTS: usize = 1 << 16;

/// Names kept per ring before the older half is forgotten (a coroutine
/// seen again is named again).
const MAX_LABELS: usize = 4 * RING_EVENTS;

/// What an event records. The numbers are stored in the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A worker resumed coroutine `b`.
    RunStart = 1,
    /// Coroutine `b` switched back: `a` is an `Outcome`, `c` its `Wait`
    /// code when it parked.
    RunEnd,
    /// Coroutine `b` was spawned by coroutine `c` (0: not a coroutine).
    Spawn,
    /// Coroutine `b` was unparked by coroutine `c` (0: not a coroutine);
    /// `a` is its worker.
    Wake,
    /// `b` fresh coroutines were stolen from worker `a` (`u32::MAX` as `a`:
    /// the global injector).
    Steal,
    /// Fresh coroutine `b` was handed to worker `a`.
    Handoff,
    /// The worker began waiting in its poller.
    PollStart,
    /// The worker's poller returned `b` events.
    PollEnd,
    /// The worker began firing `b` due timers.
    TimersStart,
    /// It finished.
    TimersEnd,
    /// A blocking-pool thread began a job of coroutine `b`.
    BlockingStart,
    /// It finished it.
    BlockingEnd,
    /// The monitor found worker `a` held by coroutine `b` for `c` ns.
    Held,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Kind> {
        use Kind::*;
        [
            RunStart,
            RunEnd,
            Spawn,
            Wake,
            Steal,
            Handoff,
            PollStart,
            PollEnd,
            TimersStart,
            TimersEnd,
            BlockingStart,
            BlockingEnd,
            Held,
        ]
        .into_iter()
        .find(|k| *k as u8 == v)
    }
}

/// How a run ended (`Kind::RunEnd`'s `a`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It parked (on the reason in the event's `c`).
    Parked = 0,
    /// It yielded.
    Yielded = 1,
    /// It returned.
    Finished = 2,
}

impl Outcome {
    pub(crate) fn from_u64(v: u64) -> Outcome {
        match v {
            0 => Outcome::Parked,
            1 => Outcome::Yielded,
            _ => Outcome::Finished,
        }
    }
}

/// One event as read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Event {
    /// `clock::nanos` when it happened.
    pub(crate) ts: u64,
    /// What happened.
    pub(crate) kind: Kind,
    /// Up to 56 bits; meaning by `kind`.
    pub(crate) a: u64,
    /// Meaning by `kind`: usually a coroutine id.
    pub(crate) b: u64,
    /// Meaning by `kind`.
    pub(crate) c: u64,
}

impl Event {
    fn encode(kind: Kind, a: u64, b: u64, c: u64) -> [u64; 4] {
        [
            clock::now_nanos(),
            ((kind as u64) << 56) | (a & ((1 << 56) - 1)),
            b,
            c,
        ]
    }

    fn decode(w: [u64; 4]) -> Option<Event> {
        Some(Event {
            ts: w[0],
            kind: Kind::from_u8((w[1] >> 56) as u8)?,
            a: w[1] & ((1 << 56) - 1),
            b: w[2],
            c: w[3],
        })
    }
}

/// Where a ring's events are drawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Track {
    /// Worker `index`'s thread.
    Worker(usize),
    /// Another thread: the monitor, a blocking-pool thread, a plain
    /// thread.
    Thread {
        /// Its number, in order of first events: fixed, unique.
        n: usize,
        /// The thread's name when it registered.
        name: String,
    },
}

/// What the trace shows for a coroutine.
#[derive(Clone, Debug)]
pub(crate) struct Label {
    /// The coroutine's id.
    pub(crate) id: u64,
    /// Its name, if it was given one.
    pub(crate) name: Option<Arc<String>>,
    /// Where it was spawned.
    pub(crate) location: &'static Location<'static>,
}

/// A thread's ring (see the module doc).
pub(crate) struct Ring {
    /// Event `k` is in slot `k % RING_EVENTS`, as `Event::encode`'s words.
    slots: Box<[[AtomicU64; 4]]>,
    /// One past the index being written, or `head` between writes; written
    /// only by the owner.
    claimed: AtomicU64,
    /// Events written: every index below it is complete, unless a later
    /// write (index at least `RING_EVENTS` above) has overwritten it.
    head: AtomicU64,
    /// Where its events are drawn; fixed.
    pub(crate) track: Track,
    /// Coroutines that ran on this thread, each added at its first run in
    /// a session: how the trace names them. At most `MAX_LABELS`.
    labels: Mutex<Vec<Label>>,
}

impl Ring {
    fn new(track: Track) -> Ring {
        Ring {
            slots: (0..RING_EVENTS).map(|_| Default::default()).collect(),
            claimed: AtomicU64::new(0),
            head: AtomicU64::new(0),
            track,
            labels: Mutex::new(Vec::new()),
        }
    }

    /// Appends an event; the owner thread only.
    fn push(&self, words: [u64; 4]) {
        let k = self.head.load(Ordering::Relaxed);
        self.claimed.store(k + 1, Ordering::Relaxed);
        atomic::fence(Ordering::Release);
        let slot = &self.slots[k as usize % RING_EVENTS];
        for (s, w) in slot.iter().zip(words) {
            s.store(w, Ordering::Relaxed);
        }
        self.head.store(k + 1, Ordering::Release);
    }

    /// Events written since index `from` (as many as the ring still holds,
    /// untorn), appended to `out`. Returns the index to read from next and
    /// how many events since `from` were lost (overwritten or torn).
    pub(crate) fn read(&self, from: u64, out: &mut Vec<Event>) -> (u64, u64) {
        let head = self.head.load(Ordering::Acquire);
        let start = from.max(head.saturating_sub(RING_EVENTS as u64));
        let mut words = Vec::with_capacity((head - start) as usize);
        for k in start..head {
            let slot = &self.slots[k as usize % RING_EVENTS];
            words.push([0, 1, 2, 3].map(|i| slot[i].load(Ordering::Relaxed)));
        }
        atomic::fence(Ordering::Acquire);
        let claimed = self.claimed.load(Ordering::Relaxed);
        // The writer may have been overwriting any slot whose event is
        // `RING_EVENTS` below an index it claimed.
        let valid_from = claimed.saturating_sub(RING_EVENTS as u64).max(start);
        let torn = (valid_from - start).min(head - start) as usize;
        out.extend(words[torn..].iter().filter_map(|w| Event::decode(*w)));
        (head, start - from + torn as u64)
    }

    /// The index the next event will have.
    pub(crate) fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// A copy of its labels.
    pub(crate) fn labels(&self) -> Vec<Label> {
        lock(&self.labels).clone()
    }
}

/// Every ring, in order of registration.
static RINGS: Mutex<Vec<Arc<Ring>>> = Mutex::new(Vec::new());

/// The rings now.
pub(crate) fn rings() -> Vec<Arc<Ring>> {
    lock(&RINGS).clone()
}

/// Rings of ended threads kept, the newest, for a flight recorder's
/// snapshot to read: each holds 2 MiB, and a blocking-pool thread ends
/// after 10 s idle, so a recorder running for days would otherwise keep a
/// ring per thread that ever ended. A running trace keeps the rings it
/// read from (its copy holds them), whatever this says.
const ENDED_RINGS_KEPT: usize = 4;

/// Thread tracks numbered so far: a track's number is never reused, even
/// once its ring is forgotten.
static THREAD_TRACKS: AtomicUsize = AtomicUsize::new(0);

/// Forgets the rings of ended threads (only `RINGS` holds them) beyond the
/// newest `ENDED_RINGS_KEPT`.
fn forget_old_ended_rings(rings: &mut Vec<Arc<Ring>>) {
    let ended = |r: &Arc<Ring>| Arc::strong_count(r) == 1;
    let mut excess = rings
        .iter()
        .filter(|r| ended(r))
        .count()
        .saturating_sub(ENDED_RINGS_KEPT);
    // Oldest first: `rings` is in order of registration.
    rings.retain(|r| {
        if excess > 0 && ended(r) {
            excess -= 1;
            return false;
        }
        true
    });
}

/// This thread's ring and what it has labelled.
struct Local {
    /// The thread's ring, also in `RINGS`.
    ring: Arc<Ring>,
    /// The session its labels are for: `seen` is cleared when it changes.
    session: u64,
    /// Coroutines labelled in that session.
    seen: HashSet<u64>,
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

/// Records an event on the calling thread's ring, registering the ring on
/// the thread's first event.
pub(crate) fn record(kind: Kind, a: u64, b: u64, c: u64) {
    with_local(|l| l.ring.push(Event::encode(kind, a, b, c)));
}

/// Records the start of `h`'s run, labelling it first if this thread has
/// not in this session.
pub(crate) fn record_run_start(h: &Header, session: u64) {
    with_local(|l| {
        if l.session != session {
            l.session = session;
            l.seen.clear();
        }
        if l.seen.insert(h.id) {
            let mut labels = lock(&l.ring.labels);
            if labels.len() >= MAX_LABELS {
                labels.drain(..MAX_LABELS / 2);
                l.seen.clear();
                l.seen.insert(h.id);
            }
            labels.push(Label {
                id: h.id,
                name: h.name().cloned(),
                location: h.location,
            });
        }
        l.ring.push(Event::encode(Kind::RunStart, 0, h.id, 0));
    });
}

fn with_local(f: impl FnOnce(&mut Local)) {
    // `try_with`: a thread-local destructor running late records nothing.
    let _ = LOCAL.try_with(|cell| {
        let Ok(mut local) = cell.try_borrow_mut() else {
            return;
        };
        let l = local.get_or_insert_with(register);
        f(l);
    });
}

/// Creates and registers the calling thread's ring.
#[cold]
fn register() -> Local {
    let mut rings = lock(&RINGS);
    forget_old_ended_rings(&mut rings);
    let track = match Worker::current() {
        Some(w) => Track::Worker(w.index()),
        None => Track::Thread {
            n: THREAD_TRACKS.fetch_add(1, Ordering::Relaxed),
            name: std::thread::current()
                .name()
                .unwrap_or("<unnamed>")
                .to_string(),
        },
    };
    let ring = Arc::new(Ring::new(track));
    rings.push(ring.clone());
    Local {
        ring,
        session: 0,
        seen: HashSet::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_newest_rings_of_ended_threads_are_kept() {
        let track = |n| Track::Thread {
            n,
            name: String::new(),
        };
        let mut rings: Vec<Arc<Ring>> = (0..10).map(|n| Arc::new(Ring::new(track(n)))).collect();
        // Threads 3 and 8 still run: their thread-locals hold their rings.
        let live = [rings[3].clone(), rings[8].clone()];
        forget_old_ended_rings(&mut rings);
        let left: Vec<Track> = rings.iter().map(|r| r.track.clone()).collect();
        assert_eq!(
            left,
            [3, 5, 6, 7, 8, 9].map(track).to_vec(),
            "the live rings and the {ENDED_RINGS_KEPT} newest ended ones"
        );
        drop(live);
    }

    #[test]
    fn a_ring_gives_back_what_was_written_and_counts_what_it_lost() {
        let ring = Ring::new(Track::Worker(0));
        for i in 0..10 {
            ring.push(Event::encode(Kind::Spawn, 0, i, 0));
        }
        let mut out = Vec::new();
        let (next, lost) = ring.read(0, &mut out);
        assert_eq!((next, lost), (10, 0));
        assert_eq!(
            out.iter().map(|e| e.b).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        assert!(out.iter().all(|e| e.kind == Kind::Spawn));
        // Overrun: only the last RING_EVENTS remain.
        for i in 10..(RING_EVENTS as u64 + 20) {
            ring.push(Event::encode(Kind::Wake, 3, i, 4));
        }
        out.clear();
        let (next, lost) = ring.read(next, &mut out);
        assert_eq!(next, RING_EVENTS as u64 + 20);
        assert_eq!(lost, 10, "events 10 to 19 were overwritten");
        assert_eq!(out.len(), RING_EVENTS);
        assert_eq!(out[0].b, 20);
        assert_eq!((out[0].a, out[0].c), (3, 4));
    }
}
