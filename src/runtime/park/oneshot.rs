//! `OneShot<T>`: one value, handed once from any thread to the coroutine
//! (or thread) that made the one-shot.
//!
//! For the runtime's own hand-offs (a `goro::blocking` job's result, a
//! bubble's verdict), where a `crate::chan` channel would be both more than
//! needed and a layering inversion (the runtime sits under the channels).
//! The receiver is fixed when the one-shot is made: `new` records the
//! caller as the `Waiter` to wake, so sending is a store, a release, and an
//! unpark; nothing on either side takes a lock, so a sender that the OS
//! preempts holds up only its own receiver.
//!
//! The state goes EMPTY -> FULL (the value is in the slot) or EMPTY ->
//! CLOSED (the `Sender` was dropped unsent), once. The slot is written only
//! by the sender before its release store of FULL, and read only by the
//! receiver after its acquire load of FULL: the two never overlap.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::runtime::park::{self, Waiter};
use crate::runtime::{WaitGuard, WaitingOn};

/// No value yet; the sender lives.
const EMPTY: u8 = 0;
/// The value is in the slot.
const FULL: u8 = 1;
/// The sender was dropped without sending.
const CLOSED: u8 = 2;

/// The state both ends share.
struct Inner<T> {
    /// EMPTY, FULL or CLOSED; leaves EMPTY once.
    state: AtomicU8,
    /// The value: written by the sender while EMPTY, read by the receiver
    /// once FULL (see the module's comment).
    slot: UnsafeCell<Option<T>>,
    /// Who made the one-shot, and so receives: woken after the state
    /// leaves EMPTY.
    receiver: Waiter,
}

// SAFETY: the slot is touched by one thread at a time, ordered by the
// release/acquire on `state` (see the module's comment); the value moves
// from the sender's thread to the receiver's, hence `T: Send`.
unsafe impl<T: Send> Sync for Inner<T> {}

/// The sending end: sends once, or closes the one-shot when dropped.
pub(crate) struct Sender<T> {
    inner: Arc<Inner<T>>,
}

/// The receiving end, which belongs to the coroutine (or thread) that made
/// the one-shot: only that one is woken.
pub(crate) struct Receiver<T> {
    inner: Arc<Inner<T>>,
    /// Not `Send`: only the maker is woken, so a receiver moved to
    /// another coroutine or thread would wait for ever.
    _maker_only: PhantomData<*const ()>,
}

/// A one-shot whose receiver is the caller.
pub(crate) fn new<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Inner {
        state: AtomicU8::new(EMPTY),
        slot: UnsafeCell::new(None),
        receiver: Waiter::current(),
    });
    (
        Sender {
            inner: inner.clone(),
        },
        Receiver {
            inner,
            _maker_only: PhantomData,
        },
    )
}

impl<T> Sender<T> {
    /// Hands `value` to the receiver and wakes it. Never blocks.
    pub(crate) fn send(self, value: T) {
        // SAFETY: the state is EMPTY (only this sender, consumed here or in
        // its drop, moves it), so the receiver does not read the slot yet.
        unsafe { *self.inner.slot.get() = Some(value) };
        self.finish(FULL);
    }

    fn finish(&self, state: u8) {
        self.inner.state.store(state, Ordering::Release);
        // The receiver may have seen the state and gone on: then this is a
        // spurious unpark, which every parker tolerates. Our `Arc` keeps
        // the waiter itself alive.
        self.inner.receiver.wake_by_ref();
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.inner.state.load(Ordering::Relaxed) == EMPTY {
            self.finish(CLOSED);
        }
    }
}

impl<T> Receiver<T> {
    /// Waits for the value, parking only the calling coroutine; `why`
    /// shows in runtime dumps meanwhile. `None` if the sender was dropped
    /// without sending.
    ///
    /// The caller must be the coroutine or thread that made the one-shot:
    /// no one else is woken.
    pub(crate) fn recv(self, why: WaitingOn) -> Option<T> {
        let _waiting = WaitGuard::set(why);
        loop {
            match self.inner.state.load(Ordering::Acquire) {
                // SAFETY: FULL was stored with release after the slot was
                // written, and the sender is gone from the slot for good.
                FULL => return unsafe { (*self.inner.slot.get()).take() },
                CLOSED => return None,
                _ => park::park(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_value_sent_from_another_thread_reaches_a_waiting_thread() {
        let (tx, rx) = new();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.send(vec![1, 2, 3]);
        });
        assert_eq!(rx.recv(WaitingOn::BlockingCall), Some(vec![1, 2, 3]));
        t.join().unwrap();
    }

    #[test]
    fn a_value_sent_before_the_wait_is_there_at_once() {
        let (tx, rx) = new();
        tx.send("done");
        assert_eq!(rx.recv(WaitingOn::BlockingCall), Some("done"));
    }

    #[test]
    fn a_sender_dropped_unsent_ends_the_wait_with_none() {
        let (tx, rx) = new::<u8>();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            drop(tx);
        });
        assert_eq!(rx.recv(WaitingOn::BlockingCall), None);
        t.join().unwrap();
    }

    #[test]
    fn a_value_never_received_is_dropped() {
        let value = Arc::new(());
        let (tx, rx) = new();
        tx.send(value.clone());
        drop(rx);
        assert_eq!(Arc::strong_count(&value), 1);
    }

    #[test]
    fn a_coroutine_parks_until_the_value_comes() {
        let got = crate::run(|| {
            let (tx, rx) = new();
            let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
            let t = std::thread::spawn(move || {
                ready_rx.recv().unwrap();
                tx.send(42);
            });
            // Another coroutine of this worker runs while the receiver
            // waits: the wait parks the coroutine, not the thread.
            let other = crate::spawn(move || ready_tx.send(()).unwrap());
            let v = rx.recv(WaitingOn::BlockingCall);
            other.join().unwrap();
            t.join().unwrap();
            v
        });
        assert_eq!(got, Some(42));
    }
}
