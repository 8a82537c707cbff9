//! What a parked coroutine waits on, for `runtime::dump`.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::runtime::scheduler::worker::Worker;
use crate::runtime::time::clock;

/// A parked coroutine's reason. The argument (an fd, a coroutine id) rides
/// along where there is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Not parked on anything named.
    Nothing,
    /// `JoinHandle::join` of the coroutine with this id.
    Join(u64),
    /// `sleep` or a timer.
    Sleep,
    /// A channel receive.
    ChanRecv,
    /// A channel send.
    ChanSend,
    /// `select!` over several channels.
    Select,
    /// Readiness to read the fd.
    Read(i32),
    /// Readiness to write the fd.
    Write(i32),
    /// A `goro::sync` lock or primitive.
    Sync(SyncKind),
    /// A call running in `goro::blocking`.
    Blocking,
    /// A future driven by `goro::block_on`.
    Future,
}

/// Which `goro::sync` primitive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyncKind {
    Mutex,
    RwLock,
    Condvar,
    WaitGroup,
    Once,
    Semaphore,
    Barrier,
}

const SYNC_KINDS: [SyncKind; 7] = [
    SyncKind::Mutex,
    SyncKind::RwLock,
    SyncKind::Condvar,
    SyncKind::WaitGroup,
    SyncKind::Once,
    SyncKind::Semaphore,
    SyncKind::Barrier,
];

impl Wait {
    /// Whether a coroutine parked on this can be woken only by another
    /// coroutine or a timer (Go's "durably blocked"): a bubble's clock may
    /// move on while its members wait on such things only. Waits on the
    /// outside world (an fd, a blocking call, a future) are not, nor is a
    /// park with no reason given.
    pub(crate) fn is_durable(self) -> bool {
        matches!(
            self,
            Wait::Join(_)
                | Wait::Sleep
                | Wait::ChanRecv
                | Wait::ChanSend
                | Wait::Select
                | Wait::Sync(_)
        )
    }

    /// Whether this is a wait for an fd, whose deadlines are on real time.
    pub(crate) fn is_io(self) -> bool {
        matches!(self, Wait::Read(_) | Wait::Write(_))
    }

    fn encode(self) -> u64 {
        let (kind, arg): (u64, u64) = match self {
            Wait::Nothing => (0, 0),
            Wait::Join(id) => (1, id),
            Wait::Sleep => (2, 0),
            Wait::ChanRecv => (3, 0),
            Wait::ChanSend => (4, 0),
            Wait::Select => (5, 0),
            Wait::Read(fd) => (6, fd as u32 as u64),
            Wait::Write(fd) => (7, fd as u32 as u64),
            Wait::Sync(k) => (
                8,
                SYNC_KINDS.iter().position(|&s| s == k).unwrap_or(0) as u64,
            ),
            Wait::Blocking => (9, 0),
            Wait::Future => (10, 0),
        };
        (kind << 56) | (arg & ((1 << 56) - 1))
    }

    fn decode(v: u64) -> Wait {
        let arg = v & ((1 << 56) - 1);
        match v >> 56 {
            1 => Wait::Join(arg),
            2 => Wait::Sleep,
            3 => Wait::ChanRecv,
            4 => Wait::ChanSend,
            5 => Wait::Select,
            6 => Wait::Read(arg as u32 as i32),
            7 => Wait::Write(arg as u32 as i32),
            8 => Wait::Sync(
                SYNC_KINDS
                    .get(arg as usize)
                    .copied()
                    .unwrap_or(SyncKind::Mutex),
            ),
            9 => Wait::Blocking,
            10 => Wait::Future,
            _ => Wait::Nothing,
        }
    }
}

/// A coroutine's current `Wait` and since when, readable from any thread.
pub(crate) struct WaitReason {
    code: AtomicU64,
    /// `clock::coarse_now()` when `code` was last set to something.
    since: AtomicU64,
}

impl WaitReason {
    pub(crate) fn new() -> WaitReason {
        WaitReason {
            code: AtomicU64::new(0),
            since: AtomicU64::new(0),
        }
    }

    pub(crate) fn get(&self) -> Wait {
        Wait::decode(self.code.load(Ordering::Relaxed))
    }

    pub(crate) fn since(&self) -> u64 {
        self.since.load(Ordering::Relaxed)
    }

    pub(crate) fn set(&self, w: Wait) {
        if w != Wait::Nothing {
            self.since.store(clock::coarse_now(), Ordering::Relaxed);
        }
        self.code.store(w.encode(), Ordering::Relaxed);
    }
}

/// Records what the running coroutine waits on for as long as it lives.
/// Does nothing on a plain thread.
pub(crate) struct WaitGuard {
    active: bool,
}

impl WaitGuard {
    pub(crate) fn set(w: Wait) -> WaitGuard {
        let active = Worker::with_running_header(|h| h.wait.set(w)).is_some();
        WaitGuard { active }
    }
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        if self.active {
            // The guard lives on the coroutine's stack, so the same coroutine
            // is running now.
            Worker::with_running_header(|h| h.wait.set(Wait::Nothing));
        }
    }
}
