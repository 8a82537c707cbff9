//! One-shot timers: `Timer` (a channel) and `FuncTimer` (a coroutine).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::alarm::{Alarm, Fire, SendInstant, instant_alarm};
use super::deadline_after;
use crate::chan::Receiver;
use crate::runtime::task::user_value::UserValue;

/// A single event: the current instant is sent on the timer's channel once
/// its duration has passed (Go's `time.Timer`), unless it is stopped first.
///
/// The channel holds one value and is never closed. As in Go 1.23, `stop`
/// and `reset` take back a value sent but not yet received, so that no
/// stale instant is received after either returns. Dropping the timer does
/// not stop it while clones of its channel can still receive the instant;
/// once every receiver is gone it stops, and its memory comes back at once
/// (as Go 1.23 collects unreferenced timers).
///
/// ```
/// use goro::time::Timer;
/// use std::time::{Duration, Instant};
///
/// goro::run(|| {
///     let start = Instant::now();
///     let timer = Timer::new(Duration::from_millis(10));
///     let fired = timer.channel().recv().unwrap();
///     assert!(fired >= start + Duration::from_millis(10));
///
///     let timer = Timer::new(Duration::from_secs(60));
///     assert!(timer.stop(), "the timer was pending");
///     assert!(!timer.stop(), "already stopped");
/// });
/// ```
pub struct Timer {
    /// Armed to send into `rx`'s channel.
    alarm: Alarm<SendInstant>,
    /// The timer's channel (Go's `Timer.C`).
    rx: Receiver<Instant>,
}

impl Timer {
    /// A timer that sends the current instant on its channel `d` from now.
    pub fn new(d: Duration) -> Timer {
        let (alarm, rx) = instant_alarm(deadline_after(d), None);
        Timer { alarm, rx }
    }

    /// The channel the instant arrives on (Go's `Timer.C`). Usable in
    /// `select!` as `recv(timer.channel())`.
    pub fn channel(&self) -> &Receiver<Instant> {
        &self.rx
    }

    /// Stops the timer. Returns true if this prevented a delivery: the
    /// timer was pending, or had fired with the value not yet received
    /// (which is taken back). False if it was already stopped or its value
    /// was received. Afterwards nothing arrives until a `reset`.
    pub fn stop(&self) -> bool {
        self.alarm.stop(|| self.rx.try_recv().is_ok())
    }

    /// Re-arms the timer to fire `d` from now, earlier or later than it was
    /// set to, whether it was pending, stopped or had fired. Returns what
    /// `stop` would have; a value not yet received is taken back.
    pub fn reset(&self, d: Duration) -> bool {
        self.alarm
            .reset(deadline_after(d), None, || self.rx.try_recv().is_ok())
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("deadline", &self.alarm.when())
            .finish_non_exhaustive()
    }
}

/// Spawns a coroutine running the function each time its alarm goes off.
/// The function is a user value: its last reference may go on a worker (a
/// stale heap entry), where `UserValue` keeps its `Drop` off the scheduler.
struct SpawnFunc(Arc<UserValue<Box<dyn Fn() + Send + Sync>>>);

impl Fire for SpawnFunc {
    fn fire(&self, _now: Instant) -> bool {
        let f = self.0.clone();
        crate::spawn(move || f());
        true
    }
}

/// The handle of `after_func`: stops or re-arms the call (Go's `Timer` as
/// returned by `time.AfterFunc`). Dropping it does not stop the call.
pub struct FuncTimer {
    /// Armed to spawn the function.
    alarm: Alarm<SpawnFunc>,
}

/// Runs `f` in a new coroutine at least `d` from now (Go's
/// `time.AfterFunc`), unless the returned handle stops it first.
///
/// `f` is `Fn`, not `FnOnce`, because `FuncTimer::reset` arms it again
/// after it ran, as in Go; each firing runs it in a coroutine of its own.
///
/// ```
/// use std::time::Duration;
///
/// goro::run(|| {
///     let (tx, rx) = goro::chan::chan::<bool>(1);
///     goro::time::after_func(Duration::from_millis(10), move || {
///         let _ = tx.try_send(goro::current().is_some());
///     });
///     assert_eq!(rx.recv(), Ok(true), "f ran in a coroutine");
///
///     let late = goro::time::after_func(Duration::from_secs(60), || unreachable!());
///     assert!(late.stop(), "stopped before it ran");
/// });
/// ```
pub fn after_func<F>(d: Duration, f: F) -> FuncTimer
where
    F: Fn() + Send + Sync + 'static,
{
    FuncTimer {
        alarm: Alarm::new(
            SpawnFunc(Arc::new(UserValue::new(Box::new(f)))),
            deadline_after(d),
            None,
        ),
    }
}

impl FuncTimer {
    /// Stops the call. Returns true if this prevented it, false if it
    /// already started (it then runs to completion) or was stopped.
    pub fn stop(&self) -> bool {
        self.alarm.stop(|| false)
    }

    /// Arms the call for `d` from now, whether it was pending, stopped or
    /// has run. Returns what `stop` would have.
    pub fn reset(&self, d: Duration) -> bool {
        self.alarm.reset(deadline_after(d), None, || false)
    }
}

impl fmt::Debug for FuncTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FuncTimer")
            .field("deadline", &self.alarm.when())
            .finish_non_exhaustive()
    }
}
