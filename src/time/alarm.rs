//! The state that a `Timer`, `Ticker` or `FuncTimer` shares with its entries
//! on the workers' timer heaps.
//!
//! An alarm keeps at most one *live* heap entry, whose sequence number is
//! in `Shared::armed` (see `runtime/time/timer.rs`); any other entry of it is
//! stale and does nothing when it comes due. Stopping cancels the live
//! entry, so its heap can sweep it at once rather than hold it until its
//! deadline. Resetting to an instant at or after the live entry keeps the
//! entry: when it comes due before the alarm's deadline, it re-arms itself
//! for that deadline. Only a reset to an instant before the live entry arms
//! a new one (cancelling the old one). So a timer pushed later again and
//! again, as an idle timeout is, costs one heap entry rather than one per
//! reset.
//!
//! A timer channel nobody can receive from any more needs no entry: when
//! the last receiver of `after`'s channel, or of a `Timer`'s or `Ticker`'s
//! (all handles dropped), goes, its alarm stops (Go 1.23 collects such
//! timers). A `FuncTimer`'s alarm goes on: its function must run.
//!
//! Every decision about a firing — the entry's check, `stop` and `reset`,
//! and their drain of a value delivered but not yet received — is made under
//! the alarm's lock, and a firing delivers under that lock too: once `stop`
//! or `reset` returns, nothing armed before it can be received.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::deadline_after;
use crate::chan::{Receiver, Sender, TrySendError, chan};
use crate::runtime::park::spin::SpinLock;
use crate::runtime::time::timer::{self, TimerHome, TimerTarget};

/// What an alarm does when it goes off.
pub(crate) trait Fire: Send + Sync + 'static {
    /// Goes off at `now`, on a worker (or in the bubble member that armed it
    /// already due) and under the alarm's lock: must not
    /// block, park or panic. Returns false if no one can observe a firing
    /// any more (every receiver is gone); the alarm then disarms.
    fn fire(&self, now: Instant) -> bool;
}

/// Delivers the instant on a one-slot channel; a value finding the slot
/// full is dropped (Go's ticker behaviour with a slow receiver).
pub(crate) struct SendInstant(Sender<Instant>);

/// An alarm that sends the instant on a timer channel at `when`, then every
/// `period` if given, and stops when the channel's last receiver drops. The
/// channel has one slot and is never closed (as Go's, whose receive after
/// the last value blocks).
pub(crate) fn instant_alarm(
    when: Instant,
    period: Option<Duration>,
) -> (Alarm<SendInstant>, Receiver<Instant>) {
    let (tx, rx) = chan(1);
    tx.keep_open();
    let alarm = Alarm::new(SendInstant(tx), when, period);
    let weak = alarm.downgrade();
    alarm
        .shared
        .fire
        .0
        .on_receivers_gone(Box::new(move || weak.stop()));
    (alarm, rx)
}

impl Fire for SendInstant {
    fn fire(&self, now: Instant) -> bool {
        !matches!(self.0.try_send(now), Err(TrySendError::Closed(_)))
    }
}

/// A handle on an armed (or stopped) alarm.
pub(crate) struct Alarm<F> {
    /// Shared with the alarm's pending heap entries.
    shared: Arc<Shared<F>>,
}

struct Shared<F> {
    state: SpinLock<State>,
    /// The live entry's sequence number, 0 if none; taken by its firing or
    /// its cancelling, whichever comes first.
    armed: AtomicU64,
    /// What going off does.
    fire: F,
}

struct State {
    /// When the alarm goes off next; `None` while stopped and after a
    /// one-shot alarm went off. When set, `entry` is set, at or before it.
    when: Option<Instant>,
    /// The interval of a periodic alarm, never zero; `None` for a one-shot.
    period: Option<Duration>,
    /// The live heap entry while it is pending.
    entry: Option<LiveEntry>,
}

/// Where an alarm's live heap entry is.
struct LiveEntry {
    /// When it comes due.
    at: Instant,
    /// The heap that holds it: a worker's, or a bubble's.
    home: TimerHome,
    /// Its sequence number.
    seq: u64,
}

impl<F: Fire> Alarm<F> {
    /// An alarm that goes off at `when`, then every `period` if given.
    pub(crate) fn new(fire: F, when: Instant, period: Option<Duration>) -> Alarm<F> {
        let shared = Arc::new(Shared {
            state: SpinLock::new(State {
                when: Some(when),
                period,
                entry: None,
            }),
            armed: AtomicU64::new(0),
            fire,
        });
        let home = arm(&shared, &mut shared.state.lock(), when);
        // After the lock: a bubble fires an entry already due at once.
        timer::fire_due(&home);
        Alarm { shared }
    }

    /// Disarms the alarm. `drain` runs under the lock, to take back a value
    /// delivered but not yet received. Returns whether the alarm was armed
    /// or `drain` took a value back: whether this call stopped a delivery.
    pub(crate) fn stop(&self, drain: impl FnOnce() -> bool) -> bool {
        stop(&self.shared, drain)
    }

    /// A handle that stops the alarm without keeping it alive.
    pub(crate) fn downgrade(&self) -> WeakAlarm<F> {
        WeakAlarm(Arc::downgrade(&self.shared))
    }

    /// Re-arms the alarm for `when`, then every `period` if given, as
    /// `stop` and a new alarm would; returns what `stop` would.
    pub(crate) fn reset(
        &self,
        when: Instant,
        period: Option<Duration>,
        drain: impl FnOnce() -> bool,
    ) -> bool {
        let mut st = self.shared.state.lock();
        let armed = st.when.take().is_some();
        let drained = drain();
        st.when = Some(when);
        st.period = period;
        let mut armed_at = None;
        let cancelled = match &st.entry {
            Some(e) if e.at <= when => None,
            _ => {
                // Disarmed before the new entry overwrites `armed`: after,
                // the old one could no longer be taken back, and its heap
                // would drop it as stale without ever having counted it.
                let old = st
                    .entry
                    .take()
                    .filter(|e| timer::disarm(&self.shared.armed, e.seq));
                armed_at = Some(arm(&self.shared, &mut st, when));
                old
            }
        };
        drop(st);
        // After the lock: counting may sweep a heap, and a bubble fires an
        // entry already due at once.
        if let Some(e) = cancelled {
            timer::count_stale(&e.home);
        }
        if let Some(home) = armed_at {
            timer::fire_due(&home);
        }
        armed || drained
    }

    /// When the alarm goes off next, if it is armed.
    pub(crate) fn when(&self) -> Option<Instant> {
        self.shared.state.lock().when
    }
}

/// A handle on an alarm that does not keep it alive.
pub(crate) struct WeakAlarm<F>(Weak<Shared<F>>);

impl<F: Fire> WeakAlarm<F> {
    /// Stops the alarm if it still exists.
    pub(crate) fn stop(&self) {
        if let Some(shared) = self.0.upgrade() {
            stop(&shared, || false);
        }
    }
}

fn stop<F: Fire>(shared: &Shared<F>, drain: impl FnOnce() -> bool) -> bool {
    let mut st = shared.state.lock();
    let armed = st.when.take().is_some();
    let drained = drain();
    let cancelled = st.entry.take();
    drop(st);
    // After the lock: cancelling may sweep a heap.
    if let Some(e) = cancelled {
        timer::cancel(&shared.armed, &e.home, e.seq);
    }
    armed || drained
}

/// Makes a heap entry at `at` the live one, and returns its heap. The
/// previous live entry, if any, must have been taken out of `st.entry` and
/// cancelled or fired.
fn arm<F: Fire>(shared: &Arc<Shared<F>>, st: &mut State, at: Instant) -> TimerHome {
    let (home, seq) = timer::arm(at, shared.clone());
    st.entry = Some(LiveEntry {
        at,
        home: home.clone(),
        seq,
    });
    home
}

impl<F: Fire> TimerTarget for Shared<F> {
    fn armed(&self) -> &AtomicU64 {
        &self.armed
    }

    fn fire(self: Arc<Self>, seq: u64, now: Instant) {
        on_due(&self, seq, now);
    }
}

/// The heap entry `seq` came due (and the heap took it from `armed`).
fn on_due<F: Fire>(shared: &Arc<Shared<F>>, seq: u64, now: Instant) {
    let mut st = shared.state.lock();
    if st.entry.as_ref().map(|e| e.seq) != Some(seq) {
        return;
    }
    st.entry = None;
    let Some(when) = st.when else { return };
    if when > now {
        // Reset to a later deadline while this entry was pending.
        arm(shared, &mut st, when);
        return;
    }
    let observed = shared.fire.fire(now);
    st.when = match st.period {
        Some(period) if observed => Some(next_tick(when, period, now)),
        _ => None,
    };
    if let Some(next) = st.when {
        arm(shared, &mut st, next);
    }
}

/// The first `when + k * period`, k ≥ 1, after `now`: a late tick does not
/// delay the ones after it, and ticks missed meanwhile are skipped rather
/// than caught up in a burst.
fn next_tick(when: Instant, period: Duration, now: Instant) -> Instant {
    let period_ns = period.as_nanos().max(1);
    let missed = now.saturating_duration_since(when).as_nanos() / period_ns;
    let step = u64::try_from(period_ns * (missed + 1)).unwrap_or(u64::MAX);
    when.checked_add(Duration::from_nanos(step))
        .unwrap_or_else(|| deadline_after(Duration::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts firings.
    struct Count(Arc<AtomicUsize>);

    impl Fire for Count {
        fn fire(&self, _now: Instant) -> bool {
            self.0.fetch_add(1, Ordering::SeqCst);
            true
        }
    }

    /// The live entry's sequence number.
    fn entry<F>(alarm: &Alarm<F>) -> Option<u64> {
        alarm.shared.state.lock().entry.as_ref().map(|e| e.seq)
    }

    #[test]
    fn resets_to_later_deadlines_reuse_the_heap_entry() {
        let fired = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let hour = Duration::from_secs(3600);
        let alarm = Alarm::new(Count(fired.clone()), start + hour, None);
        let first = entry(&alarm);
        assert!(first.is_some());
        for i in 0..1000 {
            alarm.reset(start + hour + Duration::from_millis(i), None, || false);
        }
        assert_eq!(entry(&alarm), first, "later deadlines keep the entry");
        alarm.stop(|| false);
        assert_eq!(entry(&alarm), None, "a stop cancels it");
        alarm.reset(start + hour, None, || false);
        let second = entry(&alarm);
        assert!(second.is_some() && second != first);

        alarm.reset(Instant::now() + Duration::from_millis(5), None, || false);
        assert!(
            entry(&alarm) != second,
            "an earlier deadline needs a new one"
        );
        // Generous: only a starved runtime takes seconds to fire it.
        let give_up = Instant::now() + Duration::from_secs(10);
        while fired.load(Ordering::SeqCst) == 0 && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(fired.load(Ordering::SeqCst), 1);
        assert_eq!(alarm.when(), None, "a one-shot alarm disarms");
    }

    #[test]
    fn next_tick_is_the_next_multiple_after_now() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // On time: one period on.
        assert_eq!(next_tick(t0, ms(10), t0), t0 + ms(10));
        // Late by less than a period: still the next multiple.
        assert_eq!(next_tick(t0, ms(10), t0 + ms(3)), t0 + ms(10));
        // Late by several periods: skips to the first one after now.
        assert_eq!(next_tick(t0, ms(10), t0 + ms(35)), t0 + ms(40));
        // Exactly on a multiple: the one after it.
        assert_eq!(next_tick(t0, ms(10), t0 + ms(40)), t0 + ms(50));
    }
}
