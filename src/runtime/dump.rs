//! `goro::runtime::dump()`: every live coroutine, what it does and for how
//! long (Go's goroutine traceback, without the stacks).
//!
//! Started coroutines are listed from their workers' registries, which a
//! dump can read while their workers run (or are held). Coroutines not yet
//! started sit in lock-free deques that cannot be walked; a dump takes them
//! out as a thief would, reads them and queues them again on the global
//! injector. They lose their place in their spawner's deque, which only
//! changes where and when they start (any worker may start them anyway).
//! A coroutine being moved between queues at that instant is missed.

use std::fmt;
use std::os::fd::RawFd;
use std::panic::Location;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::task::{Header, TaskRef};
use super::wait::{SyncKind, Wait};
use super::{Runtime, clock};
use crate::CoroutineId;

/// A snapshot of the runtime's coroutines.
#[derive(Clone, Debug, Default)]
pub struct Dump {
    /// Every unfinished coroutine, ordered by id.
    pub coroutines: Vec<CoroutineInfo>,
}

/// One coroutine in a `Dump`.
#[derive(Clone, Debug)]
pub struct CoroutineInfo {
    /// Its id.
    pub id: CoroutineId,
    /// Its name, if it was given one.
    pub name: Option<String>,
    /// Where it was spawned.
    pub location: &'static Location<'static>,
    /// Running, runnable or parked.
    pub state: CoroutineState,
    /// What it waits on, when parked on something the runtime knows.
    pub waiting_on: Option<WaitingOn>,
    /// How long it has been in `state`: parked since, or running since it
    /// was last resumed. Measured on a clock the monitor refreshes, so
    /// within about 10 ms.
    pub for_how_long: Option<Duration>,
}

/// What a coroutine is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoroutineState {
    /// Running on this worker now.
    Running {
        /// The worker's index.
        worker: usize,
    },
    /// Ready to run, waiting for its worker.
    Runnable,
    /// Spawned and waiting for a worker to start it (runnable too).
    NotStarted,
    /// Parked until something wakes it.
    Parked,
}

/// What a parked coroutine waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitingOn {
    /// `JoinHandle::join` of this coroutine.
    Join(CoroutineId),
    /// `sleep` or a timer.
    Sleep,
    /// A channel receive.
    ChannelReceive,
    /// A channel send.
    ChannelSend,
    /// `select!` over channels.
    Select,
    /// A socket or other fd to become readable.
    Read(RawFd),
    /// A socket or other fd to become writable.
    Write(RawFd),
    /// A `goro::sync::Mutex`.
    Mutex,
    /// A `goro::sync::RwLock`.
    RwLock,
    /// A `goro::sync::Condvar`.
    Condvar,
    /// A `goro::sync::WaitGroup`.
    WaitGroup,
    /// A `goro::sync::Once`.
    Once,
    /// A `goro::sync::Semaphore`.
    Semaphore,
    /// A `goro::sync::Barrier`.
    Barrier,
    /// A call running in `goro::blocking`.
    BlockingCall,
    /// A future driven by `goro::block_on` (or its bounded forms).
    Future,
}

impl WaitingOn {
    pub(crate) fn of(w: Wait) -> Option<WaitingOn> {
        Some(match w {
            Wait::Nothing => return None,
            Wait::Join(id) => WaitingOn::Join(CoroutineId::from_u64(id)?),
            Wait::Sleep => WaitingOn::Sleep,
            Wait::ChanRecv => WaitingOn::ChannelReceive,
            Wait::ChanSend => WaitingOn::ChannelSend,
            Wait::Select => WaitingOn::Select,
            Wait::Read(fd) => WaitingOn::Read(fd),
            Wait::Write(fd) => WaitingOn::Write(fd),
            Wait::Sync(SyncKind::Mutex) => WaitingOn::Mutex,
            Wait::Sync(SyncKind::RwLock) => WaitingOn::RwLock,
            Wait::Sync(SyncKind::Condvar) => WaitingOn::Condvar,
            Wait::Sync(SyncKind::WaitGroup) => WaitingOn::WaitGroup,
            Wait::Sync(SyncKind::Once) => WaitingOn::Once,
            Wait::Sync(SyncKind::Semaphore) => WaitingOn::Semaphore,
            Wait::Sync(SyncKind::Barrier) => WaitingOn::Barrier,
            Wait::Blocking => WaitingOn::BlockingCall,
            Wait::Future => WaitingOn::Future,
        })
    }
}

impl fmt::Display for WaitingOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitingOn::Join(id) => write!(f, "join {id}"),
            WaitingOn::Sleep => f.write_str("sleep"),
            WaitingOn::ChannelReceive => f.write_str("channel receive"),
            WaitingOn::ChannelSend => f.write_str("channel send"),
            WaitingOn::Select => f.write_str("select"),
            WaitingOn::Read(fd) => write!(f, "read fd {fd}"),
            WaitingOn::Write(fd) => write!(f, "write fd {fd}"),
            WaitingOn::Mutex => f.write_str("mutex"),
            WaitingOn::RwLock => f.write_str("rwlock"),
            WaitingOn::Condvar => f.write_str("condvar"),
            WaitingOn::WaitGroup => f.write_str("wait group"),
            WaitingOn::Once => f.write_str("once"),
            WaitingOn::Semaphore => f.write_str("semaphore"),
            WaitingOn::Barrier => f.write_str("barrier"),
            WaitingOn::BlockingCall => f.write_str("blocking call"),
            WaitingOn::Future => f.write_str("future"),
        }
    }
}

/// Every live coroutine now. Empty before the runtime starts.
pub fn dump() -> Dump {
    let Some(rt) = Runtime::started() else {
        return Dump::default();
    };
    let now = clock::coarse_now();
    let mut coroutines = Vec::new();
    for (index, w) in rt.workers.iter().take(rt.active_workers()).enumerate() {
        // Take references under the lock; read the headers after it.
        let tasks: Vec<TaskRef> = w.registry.lock().iter().flatten().cloned().collect();
        let running = w.running_id.load(Ordering::Relaxed);
        for task in tasks {
            let h = task.header();
            let (state, since) = if h.id == running {
                (
                    CoroutineState::Running { worker: index },
                    w.running_since.load(Ordering::Relaxed),
                )
            } else if h.is_parked() {
                (CoroutineState::Parked, h.wait_since())
            } else {
                (CoroutineState::Runnable, 0)
            };
            coroutines.push(info(h, state, since, now));
        }
    }
    let fresh = rt.take_not_started();
    for task in &fresh {
        coroutines.push(info(task.header(), CoroutineState::NotStarted, 0, now));
    }
    rt.requeue(fresh);
    coroutines.sort_by_key(|c| c.id);
    Dump { coroutines }
}

fn info(h: &Header, state: CoroutineState, since: u64, now: u64) -> CoroutineInfo {
    let waiting_on = match state {
        CoroutineState::Parked => WaitingOn::of(h.wait.get()),
        _ => None,
    };
    CoroutineInfo {
        id: CoroutineId::from_u64(h.id).unwrap_or(CoroutineId::MIN),
        name: h.name.as_deref().map(String::from),
        location: h.location,
        state,
        waiting_on,
        for_how_long: (since != 0).then(|| Duration::from_nanos(now.saturating_sub(since))),
    }
}

impl fmt::Display for CoroutineInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "coroutine {}", self.id)?;
        if let Some(n) = &self.name {
            write!(f, " '{n}'")?;
        }
        f.write_str(" [")?;
        match self.state {
            CoroutineState::Running { worker } => write!(f, "running on worker {worker}")?,
            CoroutineState::Runnable => f.write_str("runnable")?,
            CoroutineState::NotStarted => f.write_str("runnable, not started")?,
            CoroutineState::Parked => match &self.waiting_on {
                Some(w) => write!(f, "parked: {w}")?,
                None => f.write_str("parked")?,
            },
        }
        if let Some(d) = self.for_how_long {
            write!(f, ", {}", HumanDuration(d))?;
        }
        write!(f, "] spawned at {}", self.location)
    }
}

impl fmt::Display for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.coroutines {
            writeln!(f, "{c}")?;
        }
        Ok(())
    }
}

/// A duration as Go prints wait times: "250 ms", "3 s", "2 min".
struct HumanDuration(Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d < Duration::from_secs(1) {
            write!(f, "{} ms", d.as_millis())
        } else if d < Duration::from_secs(120) {
            write!(f, "{} s", d.as_secs())
        } else {
            write!(f, "{} min", d.as_secs() / 60)
        }
    }
}
