//! `Barrier`: wait until `n` parties have arrived, then release them all
//! (std's `Barrier`, parking only the coroutine).
//!
//! # Design
//!
//! An arrival count and a FIFO of blocked parties under one spin lock. The
//! `n`th arrival is the generation's leader: it resets the count and wakes
//! every queued party, under the lock. So a party that arrives after that
//! belongs to the next generation and queues afresh: the barrier is reusable,
//! and no wakeup crosses generations.

use std::fmt;

use super::Wakes;
use crate::runtime::WaitingOn;
use crate::runtime::park::blocker::Blocker;
use crate::runtime::park::spin::SpinLock;
use crate::runtime::park::waitq::{Node, WaitQueue};

/// Lets `n` coroutines (or threads) wait until all of them reach a point.
///
/// Each `wait` parks the caller until the `n`th caller arrives; that one is
/// the leader of its generation (`is_leader`), and the barrier is then
/// ready for the next `n`.
///
/// ```
/// use goro::sync::{Barrier, WaitGroup};
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let barrier = Arc::new(Barrier::new(3));
/// let leaders = Arc::new(AtomicUsize::new(0));
/// let wg = WaitGroup::new();
/// for _ in 0..3 {
///     let (barrier, leaders) = (barrier.clone(), leaders.clone());
///     wg.go(move || {
///         if barrier.wait().is_leader() {
///             leaders.fetch_add(1, Ordering::Relaxed);
///         }
///     });
/// }
/// wg.wait();
/// assert_eq!(leaders.load(Ordering::Relaxed), 1);
/// ```
pub struct Barrier {
    /// Parties per generation; at least 1 (`new(0)` behaves as `new(1)`,
    /// like std's).
    parties: usize,
    /// The current generation.
    state: SpinLock<State>,
}

struct State {
    /// Parties of this generation that have arrived and wait; always below
    /// `parties`.
    arrived: usize,
    /// Those parties, oldest first. Every node's blocker is exclusive and
    /// never times out.
    waiters: WaitQueue<()>,
}

/// What `Barrier::wait` tells its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarrierWaitResult(
    /// Whether this party was the last of its generation to arrive.
    bool,
);

impl BarrierWaitResult {
    /// True for exactly one party per generation: the last to arrive.
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl Barrier {
    /// A barrier for `n` parties.
    pub const fn new(n: usize) -> Barrier {
        Barrier {
            parties: if n == 0 { 1 } else { n },
            state: SpinLock::new(State {
                arrived: 0,
                waiters: WaitQueue::new(),
            }),
        }
    }

    /// Parks the caller until `n` parties, it included, have called `wait`
    /// in this generation.
    pub fn wait(&self) -> BarrierWaitResult {
        let mut st = self.state.lock();
        if st.arrived + 1 == self.parties {
            st.arrived = 0;
            let mut wakes = Wakes::new();
            while let Some(w) = st.waiters.pop_claimed() {
                wakes.push(w.finish(false));
            }
            drop(st);
            wakes.wake();
            return BarrierWaitResult(true);
        }
        st.arrived += 1;
        let blocker = Blocker::new(true);
        let node = Node::new(&blocker, 0, None);
        // SAFETY: `node` stays in this frame, unmoved, until the leader
        // unlinks it and we observe its blocker DONE below.
        unsafe { st.waiters.push_back(&node) };
        drop(st);
        blocker.wait(None, WaitingOn::Barrier);
        BarrierWaitResult(false)
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .finish_non_exhaustive()
    }
}
