//! A task's references and the handshake between its coroutine and its
//! `JoinHandle`, in one atomic word.
//!
//! Three parties touch a task's output: the coroutine writes it (on its own
//! stack), the handle's owner takes it (`join`) or gives it up (drop), and
//! the last reference frees the cell. The rule they keep is that user code
//! (the output's `Drop`) runs in user context: a detached coroutine drops
//! its own output, or the handle's owner does, never a worker freeing the
//! cell. Whichever of OUTPUT_WRITTEN and DETACHED comes second drops it.
//!
//! The reference count shares the word so that the two steps every task
//! takes at its end are one read-modify-write each instead of two: the
//! handle's drop is "detach and let go of my reference", the worker's end
//! of the coroutine is "complete and let go of mine". A spawn, a
//! `go!` and the end of a coroutine are the hot path of a spawn-heavy
//! program (skynet spawns a million), and each read-modify-write here is
//! on a line another core may hold.
//!
//! The loom models `loom_models::join_*` explore it.

use std::sync::atomic::Ordering;

use crate::loom::{AtomicU64, fence};

/// The reference count's bits (the low half).
const REFS: u64 = u32::MAX as u64;
/// One reference.
const REF: u64 = 1;
/// A count this high means references are leaked in a loop; wrapping
/// around would free a live task, so the process aborts first (as `Arc`
/// does).
const MAX_REFS: u64 = REFS / 2;
/// The output is written and the coroutine is finished.
const COMPLETE: u64 = 1 << 32;
/// A joiner stored its blocker in the header and wants a wakeup.
const JOIN_WAITING: u64 = 1 << 33;
/// The coroutine wrote its output and saw no DETACHED: the handle's owner
/// takes it.
const OUTPUT_WRITTEN: u64 = 1 << 34;
/// The handle is gone. Set once; a coroutine that sees it before writing
/// its output drops the output unwritten and never sets OUTPUT_WRITTEN.
const DETACHED: u64 = 1 << 35;

/// References (low 32 bits) and the COMPLETE, JOIN_WAITING, OUTPUT_WRITTEN
/// and DETACHED bits (high half). Each bit is set at most once and never
/// cleared; the cell is freed by whoever takes the count to zero.
pub(crate) struct JoinState(AtomicU64);

/// What the handle's owner must do after `detach_and_release`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Detached {
    /// Its reference is gone; `last` if it was the last one, and the
    /// caller must free the cell.
    Released { last: bool },
    /// The output was written first: the caller takes it and drops it,
    /// then lets go of its reference, which it still holds.
    TakeOutput,
}

/// What the worker must do after `complete_and_release`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Completed {
    /// Its reference is gone; `last` if it was the last one, and the
    /// caller must free the cell.
    Released { last: bool },
    /// A joiner waits: the caller wakes it, then lets go of its
    /// reference, which it still holds (so that the joiner's blocker,
    /// reached through the header, is read from a live task).
    WakeJoiner,
}

impl JoinState {
    /// A new task's state with `refs` references.
    pub(crate) fn new(refs: u32) -> JoinState {
        JoinState(AtomicU64::new(u64::from(refs)))
    }

    /// Adds a reference for a caller that holds one.
    #[inline]
    pub(crate) fn acquire(&self) {
        if self.0.fetch_add(REF, Ordering::Relaxed) & REFS > MAX_REFS {
            std::process::abort();
        }
    }

    /// Lets go of a reference. True if it was the last: the caller frees
    /// the cell, and every other holder's last use happened before.
    #[inline]
    pub(crate) fn release(&self) -> bool {
        if self.0.fetch_sub(REF, Ordering::Release) & REFS != REF {
            return false;
        }
        fence(Ordering::Acquire);
        true
    }

    /// The handle's owner gives it up, with its reference, in one step
    /// unless the output is waiting to be taken.
    #[inline]
    pub(crate) fn detach_and_release(&self) -> Detached {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let taking = cur & OUTPUT_WRITTEN != 0;
            let new = if taking {
                cur | DETACHED
            } else {
                (cur | DETACHED) - REF
            };
            // AcqRel: acquire the coroutine's output write (behind
            // OUTPUT_WRITTEN), release this owner's uses before a free.
            match self
                .0
                .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) if taking => return Detached::TakeOutput,
                Ok(_) => {
                    return Detached::Released {
                        last: cur & REFS == REF,
                    };
                }
                Err(now) => cur = now,
            }
        }
    }

    /// Whether the handle is gone; once true, true for good.
    #[inline]
    pub(crate) fn is_detached(&self) -> bool {
        self.0.load(Ordering::Acquire) & DETACHED != 0
    }

    /// The coroutine wrote its output. True if the handle went meanwhile:
    /// the coroutine must then drop the output itself.
    pub(crate) fn output_written(&self) -> bool {
        self.0.fetch_or(OUTPUT_WRITTEN, Ordering::AcqRel) & DETACHED != 0
    }

    /// The worker marks the coroutine finished (its output, if any, is
    /// written) and lets go of its reference in one step, unless a joiner
    /// waits.
    pub(crate) fn complete_and_release(&self) -> Completed {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            if cur & JOIN_WAITING != 0 {
                self.0.fetch_or(COMPLETE, Ordering::AcqRel);
                return Completed::WakeJoiner;
            }
            // Release: the output before COMPLETE, for the joiner; and this
            // worker's uses before a free.
            match self.0.compare_exchange_weak(
                cur,
                (cur | COMPLETE) - REF,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Completed::Released {
                        last: cur & REFS == REF,
                    };
                }
                Err(now) => cur = now,
            }
        }
    }

    /// COMPLETE without letting go of a reference. True if a joiner waits.
    pub(crate) fn complete(&self) -> bool {
        self.0.fetch_or(COMPLETE, Ordering::AcqRel) & JOIN_WAITING != 0
    }

    /// The joiner, its blocker stored, asks for a wakeup. True if the task
    /// completed first: no wakeup will come, and none is needed.
    pub(crate) fn wait_for_completion(&self) -> bool {
        self.0.fetch_or(JOIN_WAITING, Ordering::AcqRel) & COMPLETE != 0
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.0.load(Ordering::Acquire) & COMPLETE != 0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_detached_task_is_freed_by_whoever_holds_the_last_reference() {
        let s = JoinState::new(2);
        assert_eq!(s.detach_and_release(), Detached::Released { last: false });
        assert!(s.is_detached());
        assert_eq!(s.complete_and_release(), Completed::Released { last: true });
        assert!(s.is_complete());

        let s = JoinState::new(2);
        assert_eq!(
            s.complete_and_release(),
            Completed::Released { last: false }
        );
        assert_eq!(s.detach_and_release(), Detached::Released { last: true });
    }

    #[test]
    fn an_output_written_before_the_detach_is_taken_by_the_handle() {
        let s = JoinState::new(2);
        assert!(!s.output_written());
        assert_eq!(
            s.complete_and_release(),
            Completed::Released { last: false }
        );
        assert_eq!(s.detach_and_release(), Detached::TakeOutput);
        assert!(s.release());
    }

    #[test]
    fn a_waiting_joiner_keeps_the_workers_reference_until_it_is_woken() {
        let s = JoinState::new(2);
        assert!(!s.wait_for_completion());
        assert_eq!(s.complete_and_release(), Completed::WakeJoiner);
        assert!(s.is_complete());
        assert!(!s.release());
        assert!(s.release());
    }

    #[test]
    fn a_joiner_that_comes_late_sees_the_task_complete() {
        let s = JoinState::new(2);
        assert_eq!(
            s.complete_and_release(),
            Completed::Released { last: false }
        );
        assert!(s.wait_for_completion());
    }
}
