//! `Once` and `OnceLock`: one-time initialization whose concurrent callers
//! park until it is done (Go's `sync.Once` and `sync.OnceValue`, with std's
//! API).
//!
//! # Design
//!
//! A state (`INCOMPLETE`, `RUNNING`, `COMPLETE`) and a FIFO of parked
//! callers under one spin lock. The first caller to find it `INCOMPLETE`
//! marks it `RUNNING` and runs the closure without the lock; later callers
//! queue. When the closure ends, a drop guard sets the final state under the
//! lock and wakes every queued caller, which looks at the state again. Once
//! `COMPLETE`, callers return after one atomic load.
//!
//! # Panics in the closure
//!
//! `Once` follows Go: a closure that panics still completes the `Once`. The
//! panic goes on unwinding in the caller that ran it; every other caller,
//! waiting or later, returns without running anything. We pick Go's rule
//! over std's poisoning because goro's locks do not poison either, and
//! because Go code being ported relies on `Do` never running twice.
//!
//! `OnceLock` cannot do that (it would have no value to return), so, like
//! std's, it stays empty after a panicking initializer: the parked callers
//! wake, and one of them runs its own initializer.

use std::cell::UnsafeCell;
use std::fmt;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU8, Ordering};

use super::Wakes;
use crate::runtime::WaitingOn;
use crate::runtime::park::blocker::Blocker;
use crate::runtime::park::spin::SpinLock;
use crate::runtime::park::waitq::{Node, WaitQueue};

/// Nobody has run the closure to the end (nor is running it).
const INCOMPLETE: u8 = 0;
/// A caller is running the closure.
const RUNNING: u8 = 1;
/// Done; never changes again (but `OnceLock::take`, with `&mut`).
const COMPLETE: u8 = 2;

/// Runs a closure exactly once, however many coroutines call it at once
/// (Go's `sync.Once`).
///
/// Callers that arrive while the closure runs park until it returns. If
/// the closure panics, the `Once` is complete all the same, as in Go (see
/// the module docs). Calling `call_once` from inside its own closure waits
/// forever.
///
/// ```
/// use goro::sync::Once;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// static INIT: Once = Once::new();
/// static RUNS: AtomicUsize = AtomicUsize::new(0);
///
/// let hs: Vec<_> = (0..8)
///     .map(|_| goro::go!(|| INIT.call_once(|| { RUNS.fetch_add(1, Ordering::Relaxed); })))
///     .collect();
/// for h in hs {
///     h.join().unwrap();
/// }
/// assert_eq!(RUNS.load(Ordering::Relaxed), 1);
/// assert!(INIT.is_completed());
/// ```
pub struct Once {
    /// `INCOMPLETE`, `RUNNING` or `COMPLETE`. Changes only under `waiters`'
    /// lock (or with `&mut`); read without it for the fast path, with
    /// acquire so that the closure's effects are visible.
    state: AtomicU8,
    /// Callers parked while the state is `RUNNING`, oldest first; all are
    /// woken when it leaves `RUNNING`.
    waiters: SpinLock<WaitQueue<()>>,
}

impl Once {
    /// A `Once` whose closure has not run.
    pub const fn new() -> Once {
        Once {
            state: AtomicU8::new(INCOMPLETE),
            waiters: SpinLock::new(WaitQueue::new()),
        }
    }

    /// Runs `f` if no call has yet; otherwise waits for the call running
    /// now, if any, to return. After this returns, some call's closure has
    /// finished (returned or panicked), and its effects are visible.
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        if !self.is_completed() {
            // Go's rule: a panicking closure completes the `Once` too.
            self.call_slow(COMPLETE, f);
        }
    }

    /// Whether a closure has finished.
    pub fn is_completed(&self) -> bool {
        self.state.load(Ordering::Acquire) == COMPLETE
    }

    /// Runs `f` or waits for the caller running one. `on_panic` is the state
    /// a panicking `f` leaves: `COMPLETE` (Go's rule) or `INCOMPLETE` (the
    /// next caller tries again). Returns once the state is `COMPLETE` (or,
    /// on panic, unwinds).
    #[cold]
    fn call_slow(&self, on_panic: u8, f: impl FnOnce()) {
        loop {
            let mut q = self.waiters.lock();
            match self.state.load(Ordering::Acquire) {
                COMPLETE => return,
                INCOMPLETE => {
                    self.state.store(RUNNING, Ordering::Relaxed);
                    drop(q);
                    let mut end = EndOfCall {
                        once: self,
                        state: on_panic,
                    };
                    f();
                    end.state = COMPLETE;
                    return;
                }
                _ => {
                    let blocker = Blocker::new(true);
                    let node = Node::new(&blocker, 0, None);
                    // SAFETY: `node` stays in this frame, unmoved, until the
                    // end of the running call unlinks it and we observe its
                    // blocker DONE below.
                    unsafe { q.push_back(&node) };
                    drop(q);
                    blocker.wait(None, WaitingOn::Once);
                }
            }
        }
    }
}

/// Ends a running call, normally or by unwinding: publishes `state` and
/// wakes the parked callers.
struct EndOfCall<'a> {
    /// The `Once` whose state is `RUNNING` by this call.
    once: &'a Once,
    /// The state to leave: `COMPLETE` once the closure returned, else the
    /// panic rule.
    state: u8,
}

impl Drop for EndOfCall<'_> {
    fn drop(&mut self) {
        let mut wakes = Wakes::new();
        {
            let mut q = self.once.waiters.lock();
            self.once.state.store(self.state, Ordering::Release);
            while let Some(w) = q.pop_claimed() {
                wakes.push(w.finish(false));
            }
        }
        wakes.wake();
    }
}

impl Default for Once {
    fn default() -> Once {
        Once::new()
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("completed", &self.is_completed())
            .finish_non_exhaustive()
    }
}

/// A cell written once, by the first caller of `get_or_init` or `set`
/// (std's `OnceLock`, Go's `sync.OnceValue`); concurrent initializers park
/// instead of blocking their worker thread.
///
/// If the initializer panics the cell stays empty, and a later (or parked)
/// caller runs its own.
///
/// ```
/// use goro::sync::OnceLock;
///
/// static CONFIG: OnceLock<String> = OnceLock::new();
///
/// let h = goro::go!(|| CONFIG.get_or_init(|| "from the coroutine".to_string()).len());
/// let len = h.join().unwrap();
/// assert_eq!(CONFIG.get().map(String::len), Some(len));
/// assert_eq!(CONFIG.set("too late".to_string()), Err("too late".to_string()));
/// ```
pub struct OnceLock<T> {
    /// `COMPLETE` exactly when `value` is initialized.
    once: Once,
    /// Written once, by the call that completes `once`; read only after
    /// seeing it complete.
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: any thread may initialize the value (needs `T: Send`) and all
// share `&T` (needs `T: Sync`). As std's `OnceLock`.
unsafe impl<T: Send + Sync> Sync for OnceLock<T> {}
// SAFETY: the cell owns a `T`; moving it moves the `T`.
unsafe impl<T: Send> Send for OnceLock<T> {}

impl<T> OnceLock<T> {
    /// An empty cell.
    pub const fn new() -> OnceLock<T> {
        OnceLock {
            once: Once::new(),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// The value, if it has been set.
    pub fn get(&self) -> Option<&T> {
        // SAFETY: complete means initialized, and never written again.
        self.once
            .is_completed()
            .then(|| unsafe { (*self.value.get()).assume_init_ref() })
    }

    /// The value, through exclusive access.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        // SAFETY: complete means initialized; `&mut self` is exclusive.
        self.once
            .is_completed()
            .then(|| unsafe { self.value.get_mut().assume_init_mut() })
    }

    /// The value, running `f` to make it if the cell is empty. Callers that
    /// arrive while another's `f` runs park until it is done.
    pub fn get_or_init<F: FnOnce() -> T>(&self, f: F) -> &T {
        if let Some(v) = self.get() {
            return v;
        }
        // std's rule: a panicking initializer leaves the cell empty.
        self.once.call_slow(INCOMPLETE, || {
            let v = f();
            // SAFETY: we are the one caller running (state RUNNING), and
            // nobody reads the value before COMPLETE.
            unsafe { (*self.value.get()).write(v) };
        });
        // SAFETY: `call_slow` returns only once COMPLETE, which with this
        // panic rule is set only by a call that wrote the value.
        unsafe { (*self.value.get()).assume_init_ref() }
    }

    /// Sets the value if the cell is empty; otherwise gives `value` back.
    ///
    /// # Errors
    /// `Err(value)` if the cell already held a value.
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.get_or_init(|| match value.take() {
            Some(v) => v,
            None => unreachable!("goro: OnceLock initializer called twice"),
        });
        match value {
            None => Ok(()),
            Some(v) => Err(v),
        }
    }

    /// Takes the value out, leaving the cell empty.
    pub fn take(&mut self) -> Option<T> {
        if !self.once.is_completed() {
            return None;
        }
        *self.once.state.get_mut() = INCOMPLETE;
        // SAFETY: it was complete, hence initialized; the cell is now
        // marked empty, so the value is read out exactly once.
        Some(unsafe { self.value.get_mut().assume_init_read() })
    }

    /// Consumes the cell and returns its value, if set.
    pub fn into_inner(mut self) -> Option<T> {
        self.take()
    }
}

impl<T> Drop for OnceLock<T> {
    fn drop(&mut self) {
        if self.once.is_completed() {
            // SAFETY: complete means initialized; dropped once, here.
            unsafe { self.value.get_mut().assume_init_drop() };
        }
    }
}

impl<T> Default for OnceLock<T> {
    fn default() -> OnceLock<T> {
        OnceLock::new()
    }
}

impl<T> From<T> for OnceLock<T> {
    fn from(value: T) -> OnceLock<T> {
        let cell = OnceLock::new();
        // A fresh cell is empty: the set succeeds.
        let _ = cell.set(value);
        cell
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("OnceLock");
        match self.get() {
            Some(v) => d.field(v),
            None => d.field(&format_args!("<uninit>")),
        };
        d.finish()
    }
}
