//! Periodic timers: `Ticker` and `tick`.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use super::alarm::{Alarm, SendInstant, instant_alarm};
use super::deadline_after;
use crate::chan::Receiver;

/// Sends the current instant on its channel every period (Go's
/// `time.Ticker`) until stopped or dropped.
///
/// Ticks are due at the start instant plus whole periods. The channel holds
/// one tick: a tick that finds it full is dropped, so a slow receiver gets
/// the ticks it has room for, never a burst of old ones, and a late tick
/// does not shift the ones after it. As in Go 1.23, `stop` and `reset`
/// take back a tick not yet received. The channel is never closed.
///
/// ```
/// use goro::time::Ticker;
/// use std::time::Duration;
///
/// goro::run(|| -> std::io::Result<()> {
///     let ticker = Ticker::new(Duration::from_millis(5))?;
///     let first = ticker.channel().recv().unwrap();
///     let second = ticker.channel().recv().unwrap();
///     assert!(second > first);
///     ticker.stop();
///     Ok(())
/// })
/// .unwrap();
/// ```
pub struct Ticker {
    /// Armed to send into `rx`'s channel every period.
    alarm: Alarm<SendInstant>,
    /// The ticker's channel (Go's `Ticker.C`).
    rx: Receiver<Instant>,
}

/// A zero period would make a ticker fire without end; Go panics on it.
/// Here it is an error, as bad input is throughout goro, since `Duration`
/// cannot rule it out.
fn check_period(period: Duration, what: &str) -> io::Result<()> {
    if period.is_zero() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what}: a ticker's period must be positive, got 0ns"),
        ));
    }
    Ok(())
}

impl Ticker {
    /// A ticker whose first tick is `period` from now.
    ///
    /// # Errors
    /// `InvalidInput` if `period` is zero.
    pub fn new(period: Duration) -> io::Result<Ticker> {
        check_period(period, "Ticker::new")?;
        let (alarm, rx) = instant_alarm(deadline_after(period), Some(period));
        Ok(Ticker { alarm, rx })
    }

    /// The channel the ticks arrive on (Go's `Ticker.C`). Usable in
    /// `select!` as `recv(ticker.channel())`.
    pub fn channel(&self) -> &Receiver<Instant> {
        &self.rx
    }

    /// Stops the ticker: no tick arrives afterwards, not even one sent
    /// before and not yet received. A `reset` starts it again.
    pub fn stop(&self) {
        self.alarm.stop(|| self.rx.try_recv().is_ok());
    }

    /// Restarts the ticker with a new period, the next tick `period` from
    /// now; a tick not yet received is taken back.
    ///
    /// # Errors
    /// `InvalidInput` if `period` is zero; the ticker is then unchanged.
    pub fn reset(&self, period: Duration) -> io::Result<()> {
        check_period(period, "Ticker::reset")?;
        self.alarm.reset(deadline_after(period), Some(period), || {
            self.rx.try_recv().is_ok()
        });
        Ok(())
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticker")
            .field("next_tick", &self.alarm.when())
            .finish_non_exhaustive()
    }
}

/// The channel of a ticker with no handle (Go's `time.Tick`): ticks every
/// `period`, as `Ticker` does, until the receiver and its clones are all
/// dropped, which stops it and frees it.
///
/// # Errors
/// `InvalidInput` if `period` is zero.
///
/// ```
/// use std::time::Duration;
///
/// goro::run(|| {
///     let ticks = goro::time::tick(Duration::from_millis(5)).unwrap();
///     for _ in 0..3 {
///         ticks.recv().unwrap();
///     }
/// });
/// ```
pub fn tick(period: Duration) -> io::Result<Receiver<Instant>> {
    check_period(period, "tick")?;
    // The handle is dropped; the pending heap entry keeps the alarm alive
    // until the last receiver drops and stops it.
    let (_alarm, rx) = instant_alarm(deadline_after(period), Some(period));
    Ok(rx)
}
