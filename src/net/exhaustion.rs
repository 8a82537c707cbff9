//! Backing off when the process runs out of fds or kernel memory.
//!
//! `accept4` fails at once with EMFILE when the fd table is full, even with
//! no connection queued. A server's accept loop that logs the error and
//! goes on (the loop most servers write) would then spin without a
//! scheduling point, and the coroutines on its worker, which are the ones
//! that would close connections and free fds, would never run: the server
//! would stay locked up for good. So a call that fails for want of a
//! resource (EMFILE, ENFILE, ENOBUFS, ENOMEM) parks its coroutine briefly
//! before it returns the error, as Go's `net/http` Server sleeps in its
//! accept loop: 5 ms after the first failure, doubling with each failure in
//! a row up to 1 s, back to 5 ms after a success. Accepts keep a backoff
//! per listener; socket creation (dial, bind, socket pairs) one for the
//! process, whose fd table it is.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The first delay after a success (Go's net/http: 5 ms).
const FIRST_DELAY: Duration = Duration::from_millis(5);
/// The longest delay (Go's net/http: 1 s).
const MAX_DELAY: Duration = Duration::from_secs(1);

/// Whether `e` says the process or the system is out of fds or memory.
pub(crate) fn is_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// A delay that doubles with each resource failure in a row.
pub(crate) struct Backoff {
    /// The delay used after the last failure, in nanoseconds; 0 after a
    /// success (or before any call).
    last: AtomicU64,
}

/// The backoff of socket creation, shared by the whole process.
pub(crate) static CREATE: Backoff = Backoff::new();

impl Backoff {
    pub(crate) const fn new() -> Backoff {
        Backoff {
            last: AtomicU64::new(0),
        }
    }

    /// Passes `r` on: after a success, resets the delay; after an
    /// exhaustion error, first parks the caller (sleeps a plain thread) for
    /// the next delay.
    pub(crate) fn after<T>(&self, r: io::Result<T>) -> io::Result<T> {
        match &r {
            Ok(_) => {
                if self.last.load(Ordering::Relaxed) != 0 {
                    self.last.store(0, Ordering::Relaxed);
                }
            }
            Err(e) if is_exhaustion(e) => crate::time::sleep(self.next_delay()),
            Err(_) => {}
        }
        r
    }

    /// Doubles the delay (or starts it) and returns it.
    fn next_delay(&self) -> Duration {
        let first = FIRST_DELAY.as_nanos() as u64;
        let max = MAX_DELAY.as_nanos() as u64;
        let step = |d: u64| if d == 0 { first } else { (d * 2).min(max) };
        // The closure always answers `Some`, so this is `Ok(previous)`.
        let (Ok(prev) | Err(prev)) =
            self.last
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| Some(step(d)));
        Duration::from_nanos(step(prev))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_to_a_cap_and_resets_after_a_success() {
        let b = Backoff::new();
        let delays: Vec<u64> = (0..10).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        assert_eq!(b.after(Ok(())).ok(), Some(()));
        assert_eq!(b.next_delay(), FIRST_DELAY);
    }

    #[test]
    fn only_resource_errors_count() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert!(is_exhaustion(&io::Error::from_raw_os_error(errno)));
        }
        for errno in [libc::EAGAIN, libc::ECONNREFUSED, libc::EINVAL] {
            assert!(!is_exhaustion(&io::Error::from_raw_os_error(errno)));
        }
        // Another error passes through at once and keeps the delay.
        let b = Backoff::new();
        b.next_delay();
        let e = b.after::<()>(Err(io::Error::from_raw_os_error(libc::EINVAL)));
        assert_eq!(e.unwrap_err().raw_os_error(), Some(libc::EINVAL));
        assert_eq!(b.next_delay(), FIRST_DELAY * 2);
    }
}
