//! The state that a `Timer`, `Ticker` or `FuncTimer` shares with its entries
//! on the workers' timer heaps.
//!
//! A heap entry (`runtime::timer::call_at`) can be neither removed nor
//! moved, so an alarm keeps at most one *live* entry, named by a generation;
//! an entry of any other generation is stale and does nothing when it comes
//! due. Stopping leaves the live entry where it is. Resetting to an instant
//! at or after the live entry keeps it too: when it comes due before the
//! alarm's deadline, it re-arms itself for that deadline. Only a reset to an
//! instant before the live entry arms a new one (making the old one stale).
//! So a timer pushed later again and again, as an idle timeout is, costs one
//! heap entry rather than one per reset.
//!
//! Every decision about a firing — the entry's check, `stop` and `reset`,
//! and their drain of a value delivered but not yet received — is made under
//! the alarm's lock, and a firing delivers under that lock too: once `stop`
//! or `reset` returns, nothing armed before it can be received.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::deadline_after;
use crate::chan::{Receiver, Sender, TrySendError, chan};
use crate::runtime::spin::SpinLock;
use crate::runtime::timer::call_at;

/// What an alarm does when it goes off.
pub(crate) trait Fire: Send + Sync + 'static {
    /// Goes off at `now`, on a worker and under the alarm's lock: must not
    /// block, park or panic. Returns false if no one can observe a firing
    /// any more (every receiver is gone); the alarm then disarms.
    fn fire(&self, now: Instant) -> bool;
}

/// Delivers the instant on a one-slot channel; a value finding the slot
/// full is dropped (Go's ticker behaviour with a slow receiver).
pub(crate) struct SendInstant(Sender<Instant>);

/// A timer channel: one slot, never closed (as Go's, whose receive after the
/// last value blocks), and the firing that feeds it.
pub(crate) fn instant_channel() -> (SendInstant, Receiver<Instant>) {
    let (tx, rx) = chan(1);
    tx.keep_open();
    (SendInstant(tx), rx)
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
    /// What going off does.
    fire: F,
}

struct State {
    /// When the alarm goes off next; `None` while stopped and after a
    /// one-shot alarm went off. When set, `entry` is set, at or before it.
    when: Option<Instant>,
    /// The interval of a periodic alarm, never zero; `None` for a one-shot.
    period: Option<Duration>,
    /// Instant and generation of the live heap entry while it is pending.
    entry: Option<(Instant, u64)>,
    /// Generations handed out so far: the next entry gets the next one.
    generations: u64,
}

impl<F: Fire> Alarm<F> {
    /// An alarm that goes off at `when`, then every `period` if given.
    pub(crate) fn new(fire: F, when: Instant, period: Option<Duration>) -> Alarm<F> {
        let shared = Arc::new(Shared {
            state: SpinLock::new(State {
                when: Some(when),
                period,
                entry: None,
                generations: 0,
            }),
            fire,
        });
        arm(&shared, &mut shared.state.lock(), when);
        Alarm { shared }
    }

    /// Disarms the alarm. `drain` runs under the lock, to take back a value
    /// delivered but not yet received. Returns whether the alarm was armed
    /// or `drain` took a value back: whether this call stopped a delivery.
    pub(crate) fn stop(&self, drain: impl FnOnce() -> bool) -> bool {
        let mut st = self.shared.state.lock();
        let armed = st.when.take().is_some();
        let drained = drain();
        armed || drained
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
        if st.entry.is_none_or(|(at, _)| at > when) {
            arm(&self.shared, &mut st, when);
        }
        armed || drained
    }

    /// When the alarm goes off next, if it is armed.
    pub(crate) fn when(&self) -> Option<Instant> {
        self.shared.state.lock().when
    }
}

/// Makes a heap entry at `at` the live one.
fn arm<F: Fire>(shared: &Arc<Shared<F>>, st: &mut State, at: Instant) {
    st.generations += 1;
    let generation = st.generations;
    st.entry = Some((at, generation));
    let shared = shared.clone();
    call_at(at, Box::new(move || on_due(&shared, generation)));
}

/// A heap entry of generation `generation` came due.
fn on_due<F: Fire>(shared: &Arc<Shared<F>>, generation: u64) {
    let now = Instant::now();
    let mut st = shared.state.lock();
    if st.entry.map(|(_, g)| g) != Some(generation) {
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

    fn generations<F>(alarm: &Alarm<F>) -> u64 {
        alarm.shared.state.lock().generations
    }

    #[test]
    fn resets_to_later_deadlines_reuse_the_heap_entry() {
        let fired = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let hour = Duration::from_secs(3600);
        let alarm = Alarm::new(Count(fired.clone()), start + hour, None);
        for i in 0..1000 {
            alarm.reset(start + hour + Duration::from_millis(i), None, || false);
        }
        assert_eq!(generations(&alarm), 1, "later deadlines keep the entry");
        alarm.stop(|| false);
        alarm.reset(start + hour, None, || false);
        assert_eq!(generations(&alarm), 1, "so does a stop and reset");

        alarm.reset(Instant::now() + Duration::from_millis(5), None, || false);
        assert_eq!(generations(&alarm), 2, "an earlier deadline needs one");
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
