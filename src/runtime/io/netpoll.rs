//! The netpoller's per-descriptor state: Go's `pollDesc` and `fdMutex`.
//!
//! Every non-blocking fd the runtime manages has a `PollDesc`. An operation
//! (`io`) first takes an in-flight reference (so a concurrent `close` cannot
//! close the fd under it), then its direction's lock (one reader and one
//! writer at a time; others queue FIFO behind, as with Go's fdMutex), then
//! loops: try the system call; on EAGAIN, park until the poller reports the
//! direction ready, a deadline passes, the deadline changes, or the fd is
//! closed.
//!
//! No readiness edge is lost: each direction has a sequence number that the
//! poller bumps on every event before it looks for a waiter, and a waiter
//! samples it before its system call and re-checks it under the direction's
//! lock before it links itself; if it moved, it retries instead of parking.
//!
//! Async tasks wait on the same descriptors (`poll_ready`): a task's
//! `Waker` waits in its direction's `Wakers` until the next event, deadline
//! change, deadline expiry or close, which wake every waker there and drop
//! it. Readiness is "an event newer than the last `WouldBlock`": a
//! non-blocking try (`try_io`) that finds nothing records the `seq` it
//! sampled in `cleared_at`, and a poll is ready while `seq` differs from
//! it. The waker is linked under the direction's lock after a re-check of
//! `seq`, as a parked coroutine is, so no edge is lost either. A waiting
//! task with a deadline gets a real-time timer that wakes it when the
//! deadline passes; the timer names the descriptor and its generation, so a
//! late one finds a recycled descriptor and does nothing.
//!
//! Registration is lazy and happens once: the first operation to park
//! registers the fd, for read and write, edge-triggered, with its own
//! worker's poller (the worker whose coroutines use an fd are the ones its
//! events should wake), or worker 0's when called from a plain thread.
//! `EPOLL_CTL_ADD` reports readiness that predates it, so nothing is missed.
//!
//! Descriptors are never freed: a closed one returns to a free list and its
//! generation is bumped. The epoll key is the descriptor's address with the
//! generation in its top 16 bits, so an event still in flight for a closed
//! fd finds a newer generation and is dropped, and can never reach the
//! socket that reused the fd number.

use std::io;
use std::os::fd::{IntoRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::runtime::io::poller::{Poller, WAKE_KEY};
use crate::runtime::park;
use crate::runtime::park::blocker::{Blocker, Outcome, Wake};
use crate::runtime::park::spin::SpinLock;
use crate::runtime::park::waitq::{Node, WaitQueue};
use crate::runtime::scheduler::worker::Worker;
use crate::runtime::time::clock::Clock;
use crate::runtime::time::timer::{CallbackTimer, call_at_on};
use crate::runtime::{Runtime, WaitingOn, time::clock};

/// A readiness direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    Read,
    Write,
}

/// In-flight operation count unit and the closing flag, in `PollDesc::ops`.
const OP: usize = 2;
const CLOSING: usize = 1;

/// `PollDesc::poller` before registration.
const UNREGISTERED: usize = usize::MAX;

/// Bits of the epoll key holding the descriptor's address (x86-64 and
/// aarch64 user addresses fit in 48).
const ADDRESS_BITS: u32 = 48;
const ADDRESS_MASK: u64 = (1 << ADDRESS_BITS) - 1;

/// Deadline value meaning "none".
const NO_DEADLINE: u64 = u64::MAX;

/// The error for operations on a closed descriptor (Go's `ErrClosed`),
/// distinct from a timeout and from end of file.
pub(crate) fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, ClosedError)
}

/// The cause of an operation failing because its socket was closed locally
/// (Go's `net.ErrClosed`); see `goro::net::is_closed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosedError;

impl std::fmt::Display for ClosedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("use of closed network connection")
    }
}

impl std::error::Error for ClosedError {}

/// The error for an operation whose deadline passed.
pub(crate) fn timeout_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "i/o timeout")
}

/// Whether `e` is `timeout_error`: a deadline passing, not the system's
/// `ETIMEDOUT` (which ends a connection and has its own number).
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut && e.raw_os_error().is_none()
}

/// One direction of a descriptor.
struct Side {
    /// Bumped by the poller on every event for this direction.
    seq: AtomicU64,
    /// Deadline as `clock::nanos`, `NO_DEADLINE` for none.
    deadline: AtomicU64,
    /// The `seq` at which a short stream read proved the socket drained;
    /// `u64::MAX` if unknown. Touched only by the holder of the direction's
    /// lock.
    drained_at: AtomicU64,
    /// The `seq` sampled by the last non-blocking try that found the
    /// direction not ready (`WouldBlock`), or `seq` when the descriptor was
    /// made. Ready for async tasks while it differs from `seq`.
    cleared_at: AtomicU64,
    state: SpinLock<SideState>,
}

struct SideState {
    /// Whether an operation holds this direction.
    locked: bool,
    /// Operations waiting for the direction, FIFO; each is handed it in turn.
    lockq: WaitQueue<()>,
    /// The holder, when it waits for readiness (at most one node).
    readyq: WaitQueue<()>,
    /// Async tasks waiting for readiness.
    wakers: Wakers,
    /// The timer that wakes `wakers` when the deadline (in `clock::nanos`,
    /// the first field) passes; armed while tasks wait under a deadline.
    timer: Option<(u64, CallbackTimer)>,
}

/// The wakers of the async tasks waiting on one direction. Each held waker
/// counts once in `IO_WAITERS`, as a parked coroutine does.
struct Wakers {
    /// The waker of the latest `poll_ready` without a slot (tokio's rule for
    /// `poll_read_ready`: only the last task to poll is woken).
    shared: Option<Waker>,
    /// Slots owned by readiness futures, each from its first pending poll
    /// to its drop (`release`), so that a dropped future leaves no waker.
    slots: Vec<Slot>,
    /// Indices of the `Slot::Free` entries of `slots`.
    free: Vec<usize>,
    /// Wakers held in `shared` and `slots`.
    held: usize,
}

/// One future's place in `Wakers::slots`.
enum Slot {
    /// Owned by no future.
    Free,
    /// Owned by a future that holds no waker now (woken, or not polled).
    Owned,
    /// Owned by a future waiting with this waker.
    Waiting(Waker),
}

/// A waiting future's slot in its direction's `Wakers`: `None` until its
/// first pending poll. Must be given back (`PollDesc::release`) when the
/// future is dropped.
pub(crate) type SlotIndex = Option<usize>;

/// Wakers taken out of a `Wakers` to be woken once its lock is released.
#[must_use]
struct Woken {
    shared: Option<Waker>,
    slots: Vec<Waker>,
}

impl Woken {
    fn wake(self) {
        if let Some(w) = self.shared {
            park::wake_task(w);
        }
        for w in self.slots {
            park::wake_task(w);
        }
    }
}

impl Wakers {
    const fn new() -> Wakers {
        Wakers {
            shared: None,
            slots: Vec::new(),
            free: Vec::new(),
            held: 0,
        }
    }

    /// Stores `waker` for the shared poller (`slot` `None`) or in the
    /// future's slot, which it allocates on first use.
    fn set(&mut self, slot: Option<&mut SlotIndex>, waker: &Waker) {
        let place = match slot {
            None => &mut self.shared,
            Some(index) => {
                let i = *index.get_or_insert_with(|| match self.free.pop() {
                    Some(i) => i,
                    None => {
                        self.slots.push(Slot::Free);
                        self.slots.len() - 1
                    }
                });
                let s = &mut self.slots[i];
                if let Slot::Waiting(w) = s {
                    w.clone_from(waker);
                    return;
                }
                *s = Slot::Waiting(waker.clone());
                self.held += 1;
                IO_WAITERS.fetch_add(1, Ordering::SeqCst);
                return;
            }
        };
        match place {
            Some(w) => w.clone_from(waker),
            None => {
                *place = Some(waker.clone());
                self.held += 1;
                IO_WAITERS.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// Frees a future's slot, dropping its waker if it still holds one.
    fn release(&mut self, index: usize) -> Option<Waker> {
        let old = std::mem::replace(&mut self.slots[index], Slot::Free);
        self.free.push(index);
        match old {
            Slot::Waiting(w) => {
                self.unhold(1);
                Some(w)
            }
            _ => None,
        }
    }

    fn unhold(&mut self, n: usize) {
        if n > 0 {
            self.held -= n;
            IO_WAITERS.fetch_sub(n, Ordering::SeqCst);
        }
    }

    /// Takes every waker (the slots stay owned by their futures).
    fn take(&mut self) -> Woken {
        if self.held == 0 {
            return Woken {
                shared: None,
                slots: Vec::new(),
            };
        }
        let shared = self.shared.take();
        let mut slots = Vec::new();
        for s in &mut self.slots {
            if matches!(s, Slot::Waiting(_))
                && let Slot::Waiting(w) = std::mem::replace(s, Slot::Owned)
            {
                slots.push(w);
            }
        }
        self.unhold(slots.len() + usize::from(shared.is_some()));
        Woken { shared, slots }
    }

    /// Forgets every slot, for a descriptor being recycled (no future can
    /// outlive its socket, which it borrows).
    fn reset(&mut self) -> Woken {
        let woken = self.take();
        self.slots = Vec::new();
        self.free = Vec::new();
        woken
    }
}

impl Side {
    fn new() -> Side {
        Side {
            seq: AtomicU64::new(0),
            deadline: AtomicU64::new(NO_DEADLINE),
            drained_at: AtomicU64::new(u64::MAX),
            cleared_at: AtomicU64::new(0),
            state: SpinLock::new(SideState {
                locked: false,
                lockq: WaitQueue::new(),
                readyq: WaitQueue::new(),
                wakers: Wakers::new(),
                timer: None,
            }),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self.deadline.load(Ordering::Acquire) {
            NO_DEADLINE => None,
            n => Some(clock::instant(n)),
        }
    }

    /// Wakes the operation parked for readiness, if any, and every async
    /// task waiting, to try again.
    fn wake_waiter(&self) {
        let (wake, woken) = {
            let mut st = self.state.lock();
            let wake = st.readyq.pop_claimed().map(|w| w.finish(false));
            (wake, st.wakers.take())
        };
        if let Some(w) = wake {
            w.wake();
        }
        woken.wake();
    }
}

/// The runtime's state for one fd.
pub(crate) struct PollDesc {
    /// Reuse generation; the top bits of this descriptor's epoll keys.
    generation: AtomicU16,
    /// The fd, or -1 once closed.
    fd: AtomicI32,
    /// In-flight operations (in units of `OP`) and `CLOSING`.
    ops: AtomicUsize,
    /// Index of the worker whose poller has the fd, `UNREGISTERED` before.
    poller: AtomicUsize,
    /// Serializes registration and deregistration.
    registration: SpinLock<()>,
    /// Whether a short read proves the receive queue drained (TCP and Unix
    /// stream sockets), which spares the EAGAIN system call before parking.
    stream: AtomicBool,
    /// Set by the poller once the peer hung up or the socket failed
    /// (`EPOLLRDHUP`, `EPOLLHUP`, `EPOLLERR`). These conditions last: no
    /// later edge reports them again, so a short read no longer proves
    /// that a read would find nothing (end of file or the error is
    /// waiting).
    hung_up: AtomicBool,
    read: Side,
    write: Side,
}

/// Coroutines and threads parked waiting for fd readiness (for the
/// deadlock rule: any of them may be woken by the outside world).
pub(crate) static IO_WAITERS: AtomicUsize = AtomicUsize::new(0);

/// Free descriptors, for reuse.
static FREE: SpinLock<Vec<&'static PollDesc>> = SpinLock::new(Vec::new());

impl PollDesc {
    /// A descriptor owning `fd`, which must be non-blocking; the descriptor
    /// closes it. `stream`: see `PollDesc::stream`.
    pub(crate) fn new(fd: OwnedFd, stream: bool) -> &'static PollDesc {
        let pd = FREE.lock().pop().unwrap_or_else(|| {
            Box::leak(Box::new(PollDesc {
                generation: AtomicU16::new(0),
                fd: AtomicI32::new(-1),
                ops: AtomicUsize::new(0),
                poller: AtomicUsize::new(UNREGISTERED),
                registration: SpinLock::new(()),
                stream: AtomicBool::new(false),
                hung_up: AtomicBool::new(false),
                read: Side::new(),
                write: Side::new(),
            }))
        });
        pd.fd.store(fd.into_raw_fd(), Ordering::Release);
        pd.stream.store(stream, Ordering::Relaxed);
        pd.hung_up.store(false, Ordering::Relaxed);
        for side in [&pd.read, &pd.write] {
            // Not ready for async tasks until the poller says so: the first
            // pending poll registers the fd, and `EPOLL_CTL_ADD` reports
            // the readiness it already has.
            let seq = side.seq.load(Ordering::Relaxed);
            side.cleared_at.store(seq, Ordering::Relaxed);
        }
        pd
    }

    /// The fd (-1 once closed).
    pub(crate) fn fd(&self) -> RawFd {
        self.fd.load(Ordering::Acquire)
    }

    /// Whether the fd is a stream socket (see `PollDesc::stream`).
    pub(crate) fn is_stream(&self) -> bool {
        self.stream.load(Ordering::Relaxed)
    }

    fn side(&self, dir: Dir) -> &Side {
        match dir {
            Dir::Read => &self.read,
            Dir::Write => &self.write,
        }
    }

    fn key(&'static self) -> u64 {
        let addr = std::ptr::from_ref(self) as u64;
        debug_assert_eq!(addr & !ADDRESS_MASK, 0);
        (addr & ADDRESS_MASK) | ((self.generation.load(Ordering::Relaxed) as u64) << ADDRESS_BITS)
    }

    /// The descriptor an epoll key names, if it is still that generation.
    pub(crate) fn from_key(key: u64) -> Option<&'static PollDesc> {
        let p = NonNull::new((key & ADDRESS_MASK) as *mut PollDesc)?;
        // SAFETY: keys are made by `key` from descriptors that are leaked
        // and never freed, so the address stays valid forever.
        let pd = unsafe { p.as_ref() };
        (pd.generation.load(Ordering::Acquire) == (key >> ADDRESS_BITS) as u16).then_some(pd)
    }

    /// Whether the fd is closing or closed.
    pub(crate) fn is_closing(&self) -> bool {
        self.ops.load(Ordering::Acquire) & CLOSING != 0
    }

    /// Takes an in-flight reference, or fails if closing.
    fn begin(&'static self) -> io::Result<OpRef> {
        let op = OpRef { pd: self };
        if self.ops.fetch_add(OP, Ordering::AcqRel) & CLOSING != 0 {
            drop(op);
            return Err(closed_error());
        }
        Ok(op)
    }

    /// Runs `op` on the fd in direction `dir` until it does not return
    /// EAGAIN, parking between tries; honours deadlines and close. `op`
    /// returns its value and whether the result proves the socket drained
    /// (a short stream read).
    pub(crate) fn io<T>(
        &'static self,
        dir: Dir,
        mut op: impl FnMut(RawFd) -> io::Result<(T, bool)>,
    ) -> io::Result<T> {
        let _op = self.begin()?;
        let side = self.side(dir);
        let _lock = self.lock(dir)?;
        loop {
            self.check(side)?;
            let seq = side.seq.load(Ordering::Acquire);
            // `hung_up` is set before the poller bumps `seq`, so it is
            // visible here if the hang-up's event is older than `seq`.
            let skip = dir == Dir::Read
                && side.drained_at.load(Ordering::Relaxed) == seq
                && !self.hung_up.load(Ordering::Relaxed);
            if !skip {
                match op(self.fd()) {
                    Ok((v, drained)) => {
                        // Only reads use it (writes are not skipped).
                        if drained && dir == Dir::Read && self.stream.load(Ordering::Relaxed) {
                            side.drained_at.store(seq, Ordering::Relaxed);
                        }
                        return Ok(v);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            self.wait_ready(dir, seq)?;
        }
    }

    /// Runs `op` on the fd in direction `dir` once, without parking: an
    /// async task's `try_read`. Fails at once if closing or past the
    /// direction's deadline. A `WouldBlock` from `op` makes the direction
    /// not ready for `poll_ready` until the poller's next event; so does a
    /// result that proves the direction drained (`op`'s flag, as for `io`:
    /// a short stream read, or a short stream write, which filled the send
    /// buffer), which spares the caller the system call that would only
    /// say `EAGAIN`, as tokio does.
    pub(crate) fn try_io<T>(
        &'static self,
        dir: Dir,
        mut op: impl FnMut(RawFd) -> io::Result<(T, bool)>,
    ) -> io::Result<T> {
        let _op = self.begin()?;
        let side = self.side(dir);
        self.check(side)?;
        let seq = side.seq.load(Ordering::Acquire);
        loop {
            match op(self.fd()) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    side.cleared_at.store(seq, Ordering::Release);
                    return Err(e);
                }
                Ok((v, drained)) => {
                    // A hang-up lasts with no new edge (see `hung_up`): a
                    // short read then proves nothing. It is set before the
                    // poller bumps `seq`, so it is visible here if its event
                    // is older than `seq`.
                    if drained
                        && self.stream.load(Ordering::Relaxed)
                        && !self.hung_up.load(Ordering::Relaxed)
                    {
                        side.cleared_at.store(seq, Ordering::Release);
                    }
                    return Ok(v);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Polls direction `dir` for readiness on behalf of an async task:
    /// `Ready(Ok)` if an event came since `try_io` last found the direction
    /// not ready (or since the descriptor was made), the closed error once closing, the
    /// timeout error once the direction's deadline has passed; else
    /// `Pending`, with the task's waker stored until the next event,
    /// deadline change, deadline expiry or close. `slot` is a future's own
    /// place among the waiters (see `SlotIndex`); `None` shares one place
    /// with the other callers without a slot, where only the latest waker
    /// is kept.
    pub(crate) fn poll_ready(
        &'static self,
        dir: Dir,
        waker: &Waker,
        slot: Option<&mut SlotIndex>,
    ) -> Poll<io::Result<()>> {
        let _op = match self.begin() {
            Ok(op) => op,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let side = self.side(dir);
        if let Err(e) = self.check(side) {
            return Poll::Ready(Err(e));
        }
        let ready = || side.cleared_at.load(Ordering::Acquire) != side.seq.load(Ordering::Acquire);
        if ready() {
            return Poll::Ready(Ok(()));
        }
        if let Err(e) = self.register() {
            return Poll::Ready(Err(e));
        }
        let arm = {
            let mut st = side.state.lock();
            // Under the lock the poller takes after bumping `seq`: an event
            // from now on finds the waker.
            if ready() {
                return Poll::Ready(Ok(()));
            }
            if self.is_closing() {
                return Poll::Ready(Err(closed_error()));
            }
            st.wakers.set(slot, waker);
            let deadline = side.deadline.load(Ordering::Acquire);
            (deadline != NO_DEADLINE && st.timer.as_ref().is_none_or(|t| t.0 != deadline))
                .then_some(deadline)
        };
        if let Some(deadline) = arm {
            self.arm_timer(dir, deadline);
        }
        Poll::Pending
    }

    /// Arms the timer that wakes the async waiters of `dir` at `deadline`
    /// (real time), replacing one armed for another deadline.
    fn arm_timer(&'static self, dir: Dir, deadline: u64) {
        let generation = self.generation.load(Ordering::Acquire);
        let timer = call_at_on(
            clock::instant(deadline),
            Clock::Real,
            Box::new(move || self.expire(dir, generation, deadline)),
        );
        let old = {
            let mut st = self.side(dir).state.lock();
            st.timer.replace((deadline, timer))
        };
        if let Some((_, t)) = old {
            t.cancel();
        }
    }

    /// The deadline timer of `dir` for `deadline` fired: wakes its async
    /// waiters (which find the deadline passed), unless the descriptor was
    /// recycled since. The timer is forgotten only if it is still the one
    /// armed: `arm_timer` may have just replaced it, and the replacement
    /// must stay where it can be cancelled.
    fn expire(&self, dir: Dir, generation: u16, deadline: u64) {
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        let side = self.side(dir);
        let woken = {
            let mut st = side.state.lock();
            if st.timer.as_ref().is_some_and(|(d, _)| *d == deadline) {
                st.timer = None;
            }
            st.wakers.take()
        };
        woken.wake();
    }

    /// Gives back a readiness future's slot (see `SlotIndex`), dropping its
    /// waker unwoken.
    pub(crate) fn release_slot(&self, dir: Dir, slot: SlotIndex) {
        if let Some(i) = slot {
            let waker = self.side(dir).state.lock().wakers.release(i);
            drop(waker);
        }
    }

    /// Runs `f` on the fd under an in-flight reference, so that a concurrent
    /// `close` cannot close the fd, and another socket reuse its number,
    /// while `f` uses it. Fails with the closed error if closing.
    pub(crate) fn with_fd<T>(
        &'static self,
        f: impl FnOnce(RawFd) -> io::Result<T>,
    ) -> io::Result<T> {
        let _op = self.begin()?;
        f(self.fd())
    }

    /// Lends the fd until `recycle`: takes an in-flight reference that only
    /// `recycle` gives back, so from now on `close` wakes and fails
    /// operations but leaves the fd open. `None` if closing.
    pub(crate) fn lend(&'static self) -> Option<RawFd> {
        let op = self.begin().ok()?;
        std::mem::forget(op);
        Some(self.fd())
    }

    /// Fails if the fd is closing or the direction's deadline has passed.
    fn check(&self, side: &Side) -> io::Result<()> {
        if self.is_closing() {
            return Err(closed_error());
        }
        if let Some(d) = side.deadline()
            && Instant::now() >= d
        {
            return Err(timeout_error());
        }
        Ok(())
    }

    /// Takes the direction's lock (FIFO).
    fn lock(&'static self, dir: Dir) -> io::Result<DirLock> {
        let side = self.side(dir);
        let mut st = side.state.lock();
        if self.is_closing() {
            return Err(closed_error());
        }
        if !st.locked {
            st.locked = true;
            return Ok(DirLock { pd: self, dir });
        }
        let blocker = Blocker::new(true);
        let node = Node::new(&blocker, 0, None);
        // SAFETY: `node` stays in this frame until the unlocker or `close`
        // unlinks it and we observe its blocker DONE below.
        unsafe { st.lockq.push_back(&node) };
        drop(st);
        match blocker.wait(None, self.wait_reason(dir)) {
            // Handed the lock by the previous holder.
            Outcome::Done { closed: false, .. } => Ok(DirLock { pd: self, dir }),
            _ => Err(closed_error()),
        }
    }

    fn unlock(&self, dir: Dir) {
        let wake = {
            let mut st = self.side(dir).state.lock();
            match st.lockq.pop_claimed() {
                // Hand the lock over: it stays locked.
                Some(next) => Some(next.finish(false)),
                None => {
                    st.locked = false;
                    None
                }
            }
        };
        if let Some(w) = wake {
            w.wake();
        }
    }

    fn wait_reason(&self, dir: Dir) -> WaitingOn {
        match dir {
            Dir::Read => WaitingOn::Read(self.fd()),
            Dir::Write => WaitingOn::Write(self.fd()),
        }
    }

    /// Parks the lock holder of `dir` until an event newer than `seq`, a
    /// deadline change or close. Returns at once if `seq` is stale.
    fn wait_ready(&'static self, dir: Dir, seq: u64) -> io::Result<()> {
        self.register()?;
        let side = self.side(dir);
        let blocker = Blocker::new(false);
        let node = Node::new(&blocker, 0, None);
        {
            let mut st = side.state.lock();
            if side.seq.load(Ordering::Acquire) != seq {
                return Ok(());
            }
            if self.is_closing() {
                return Err(closed_error());
            }
            // SAFETY: `node` stays in this frame until a completer unlinks
            // it (and we observe DONE) or we remove it after a timeout.
            unsafe { st.readyq.push_back(&node) };
        }
        IO_WAITERS.fetch_add(1, Ordering::SeqCst);
        let outcome = blocker.wait(side.deadline(), self.wait_reason(dir));
        IO_WAITERS.fetch_sub(1, Ordering::SeqCst);
        match outcome {
            Outcome::Done { closed: true, .. } => Err(closed_error()),
            Outcome::Done { .. } => Ok(()),
            Outcome::TimedOut => {
                side.state.lock().readyq.remove(&node);
                // The caller's `check` reports the timeout.
                Ok(())
            }
        }
    }

    /// Registers the fd with a poller, once.
    fn register(&'static self) -> io::Result<()> {
        if self.poller.load(Ordering::Acquire) != UNREGISTERED {
            return Ok(());
        }
        let _reg = self.registration.lock();
        if self.poller.load(Ordering::Acquire) != UNREGISTERED {
            return Ok(());
        }
        let rt = Runtime::get();
        let w = Worker::current().map_or(0, Worker::index);
        let fd = self.fd();
        if fd < 0 {
            return Err(closed_error());
        }
        // SAFETY: `fd` is open (we hold an in-flight reference, so close has
        // not run), and `destroy` deregisters it before closing it.
        unsafe { rt.workers[w].poller.add(fd, self.key()) }?;
        rt.workers[w].registered.fetch_add(1, Ordering::Relaxed);
        self.poller.store(w, Ordering::Release);
        Ok(())
    }

    /// Called by a poller: the fd is ready in `dir`.
    pub(crate) fn ready(&self, dir: Dir) {
        let side = self.side(dir);
        side.seq.fetch_add(1, Ordering::AcqRel);
        side.wake_waiter();
    }

    /// Sets the deadline of `dir` (`None`: no deadline) and wakes its waiter
    /// so that it re-checks: a deadline moved later postpones its timeout, one
    /// moved into the past fails it at once.
    pub(crate) fn set_deadline(&self, dir: Dir, deadline: Option<Instant>) {
        let side = self.side(dir);
        let v = deadline.map_or(NO_DEADLINE, |d| clock::nanos(d).min(NO_DEADLINE - 1));
        side.deadline.store(v, Ordering::Release);
        side.wake_waiter();
    }

    /// Closes: fails every blocked and future operation with the closed
    /// error, and closes the fd once no operation uses it. False if it was
    /// already closing.
    pub(crate) fn close(&'static self) -> bool {
        if self.ops.fetch_or(CLOSING, Ordering::AcqRel) & CLOSING != 0 {
            return false;
        }
        let mut wakes: Vec<Wake> = Vec::new();
        let mut tasks: Vec<Woken> = Vec::new();
        for side in [&self.read, &self.write] {
            let mut st = side.state.lock();
            while let Some(w) = st.readyq.pop_claimed() {
                wakes.push(w.finish(true));
            }
            while let Some(w) = st.lockq.pop_claimed() {
                wakes.push(w.finish(true));
            }
            tasks.push(st.wakers.take());
        }
        for w in wakes {
            w.wake();
        }
        for w in tasks {
            w.wake();
        }
        // Take and drop a reference of our own: whoever drops the last one
        // closes the fd, so it closes now if no operation is in flight.
        self.ops.fetch_add(OP, Ordering::AcqRel);
        drop(OpRef { pd: self });
        true
    }

    /// Deregisters and closes the fd. Runs once, when closing and idle.
    fn destroy(&self) {
        let fd = self.fd.swap(-1, Ordering::AcqRel);
        if fd < 0 {
            return;
        }
        self.deregister(fd);
        // SAFETY: we own `fd` (the descriptor took ownership at `new`) and no
        // operation uses it (in-flight count reached zero while closing).
        unsafe { libc::close(fd) };
    }

    /// Removes `fd`, still open, from its poller if it was registered.
    fn deregister(&self, fd: RawFd) {
        let _reg = self.registration.lock();
        let w = self.poller.swap(UNREGISTERED, Ordering::AcqRel);
        if w != UNREGISTERED
            && let Some(rt) = Runtime::started()
        {
            // An error here (the fd already gone) changes nothing: the fd
            // is closed or given away next either way.
            let _ = rt.workers[w].poller.delete(fd);
            rt.workers[w].registered.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Gives the fd up without closing it: deregisters it and returns the
    /// descriptor to the free list. Returns the fd, or -1 if it was already
    /// closed.
    ///
    /// # Safety
    /// As `recycle`.
    pub(crate) unsafe fn release(&'static self) -> RawFd {
        let fd = self.fd.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            self.deregister(fd);
        }
        // SAFETY: the caller's contract is `recycle`'s; the fd is no longer
        // in the descriptor, so recycling it closes nothing.
        unsafe { self.recycle() };
        fd
    }

    /// Returns a closed descriptor to the free list.
    ///
    /// # Safety
    /// The caller must be the owner (the socket being dropped): no operation
    /// is in flight and nothing will use `self` afterwards. References taken
    /// by `lend` end here.
    pub(crate) unsafe fn recycle(&'static self) {
        self.close();
        self.destroy();
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.ops.store(0, Ordering::Release);
        for side in [&self.read, &self.write] {
            side.deadline.store(NO_DEADLINE, Ordering::Relaxed);
            side.drained_at.store(u64::MAX, Ordering::Relaxed);
            let (woken, timer) = {
                let mut st = side.state.lock();
                st.locked = false;
                (st.wakers.reset(), st.timer.take())
            };
            // Dropped unwoken: only `poll_ready`'s shared waker can be
            // left, by a task that stopped polling before the drop.
            drop(woken);
            if let Some((_, t)) = timer {
                t.cancel();
            }
        }
        FREE.lock().push(self);
    }
}

/// An in-flight operation's reference; the last one after `close` closes
/// the fd.
struct OpRef {
    pd: &'static PollDesc,
}

impl Drop for OpRef {
    fn drop(&mut self) {
        if self.pd.ops.fetch_sub(OP, Ordering::AcqRel) == CLOSING | OP {
            self.pd.destroy();
        }
    }
}

/// A held direction lock.
struct DirLock {
    pd: &'static PollDesc,
    dir: Dir,
}

impl Drop for DirLock {
    fn drop(&mut self) {
        self.pd.unlock(self.dir);
    }
}

/// Waits on `poller` up to `timeout` (`None`: forever) and dispatches its
/// events, each to its descriptor; the wakeup eventfd's event only ends the
/// wait. Returns how many events were for descriptors. A worker's own poll
/// and the monitor's poll of a held worker's poller both come here, so the
/// two cannot disagree on which keys are descriptors.
pub(crate) fn dispatch_ready(
    poller: &Poller,
    events: &mut [libc::epoll_event],
    timeout: Option<Duration>,
) -> u64 {
    let n = poller.wait(events, timeout);
    let mut delivered = 0;
    for ev in &events[..n] {
        let (key, bits) = (ev.u64, ev.events);
        if key != WAKE_KEY {
            dispatch(key, bits);
            delivered += 1;
        }
    }
    delivered
}

/// Dispatches one epoll event to its descriptor.
fn dispatch(key: u64, events: u32) {
    let Some(pd) = PollDesc::from_key(key) else {
        return;
    };
    let hangup = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
    if events & hangup != 0 {
        pd.hung_up.store(true, Ordering::Relaxed);
    }
    let readable = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
    let writable = (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32;
    if events & readable != 0 {
        pd.ready(Dir::Read);
    }
    if events & writable != 0 {
        pd.ready(Dir::Write);
    }
}
