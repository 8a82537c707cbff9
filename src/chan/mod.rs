//! Channels: Go's `chan T`, many-to-many, with `select!`.
//!
//! `chan::<T>(0)` is Go's unbuffered channel: a send completes only when a
//! receiver takes the value. `chan::<T>(n)` buffers up to `n` values. Both
//! ends are `Clone`. Blocking calls park the calling coroutine, or block the
//! calling thread outside the runtime.
//!
//! Closing (`Sender::close`, or dropping the last `Sender`) lets receivers
//! drain what is buffered, then makes every receive return `Closed`. A send
//! on a closed channel gives the value back in the error (where Go panics).
//! When every `Receiver` is gone, sends fail the same way instead of
//! blocking forever.
//!
//! ```
//! let (tx, rx) = goro::chan::chan::<u32>(0);
//! goro::go!(move || {
//!     for i in 0..3 {
//!         tx.send(i).unwrap();
//!     }
//! }); // dropping the last sender closes the channel
//! assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
//! ```
//!
//! # How it works
//!
//! As in Go's `hchan`: one lock over a ring buffer and two FIFO queues of
//! blocked operations. A receiver that finds a blocked sender takes its value
//! directly (and, on a full buffered channel, moves the sender's value into
//! the buffer); a sender that finds a blocked receiver hands the value over
//! without touching the buffer. A blocked operation is a `Node` on its own
//! stack that points to a `Blocker` (see `runtime::blocker`): completers
//! claim the blocker, so that of the several channels a `select!` waits on,
//! exactly one completes it.

mod error;
#[doc(hidden)]
pub mod select;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};

use crate::runtime::WaitingOn;
use crate::runtime::park::blocker::{Blocker, Outcome, Wake};
use crate::runtime::park::spin::SpinLock;
use crate::runtime::park::waitq::{Node, WaitQueue};

/// Creates a channel of capacity `cap`; `0` makes it unbuffered.
pub fn chan<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan {
        state: SpinLock::new(State {
            buf: VecDeque::with_capacity(cap.min(PREALLOCATED_SLOTS_MAX)),
            recvq: WaitQueue::new(),
            sendq: WaitQueue::new(),
            closed: false,
            receivers_gone: false,
            on_receivers_gone: None,
        }),
        cap,
        senders: AtomicUsize::new(1),
        receivers: AtomicUsize::new(1),
    });
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// Buffer slots allocated up front; larger buffers grow as they fill, so a
/// huge capacity used as "unbounded" costs nothing until used.
const PREALLOCATED_SLOTS_MAX: usize = 1024;

/// The state behind both ends.
struct Chan<T> {
    state: SpinLock<State<T>>,
    /// Buffer capacity; 0 for unbuffered.
    cap: usize,
    /// Live `Sender`s; the last one to drop closes the channel.
    senders: AtomicUsize,
    /// Live `Receiver`s; the last one to drop fails all sends.
    receivers: AtomicUsize,
}

struct State<T> {
    /// Buffered values, oldest first; never longer than `cap`.
    buf: VecDeque<T>,
    /// Blocked receivers, oldest first. A node may be stale (its blocker
    /// claimed elsewhere or cancelled); completers skip those.
    recvq: WaitQueue<T>,
    /// Blocked senders, oldest first, each holding its value.
    sendq: WaitQueue<T>,
    /// Set by `close` or the last sender's drop; never cleared.
    closed: bool,
    /// Set when the last receiver dropped; never cleared.
    receivers_gone: bool,
    /// Called once, with no lock held, when the last receiver drops: a
    /// timer channel's alarm stops then, since no one can see it fire.
    on_receivers_gone: Option<Box<dyn FnOnce() + Send>>,
}

/// Why a send could not complete at once.
enum Refused<T> {
    Full(T),
    Closed(T),
}

impl<T> Chan<T> {
    /// A send that does not block. Under the lock.
    fn send_now(&self, st: &mut State<T>, v: T) -> Result<Wake, Refused<T>> {
        if st.closed || st.receivers_gone {
            return Err(Refused::Closed(v));
        }
        if let Some(mut receiver) = st.recvq.pop_claimed() {
            receiver.put(v);
            return Ok(receiver.finish(false));
        }
        if st.buf.len() < self.cap {
            st.buf.push_back(v);
            return Ok(Wake::Done);
        }
        Err(Refused::Full(v))
    }

    /// A receive that does not block. Under the lock. `Err(true)` if closed
    /// and drained, `Err(false)` if merely empty.
    fn recv_now(&self, st: &mut State<T>) -> Result<(T, Wake), bool> {
        if let Some(v) = st.buf.pop_front() {
            // A slot freed up: the oldest blocked sender moves its value in.
            let mut wake = Wake::Done;
            if let Some(mut sender) = st.sendq.pop_claimed() {
                if let Some(w) = sender.take() {
                    st.buf.push_back(w);
                }
                wake = sender.finish(false);
            }
            return Ok((v, wake));
        }
        if let Some(mut sender) = st.sendq.pop_claimed() {
            let v = sender.take();
            let wake = sender.finish(false);
            match v {
                Some(v) => return Ok((v, wake)),
                None => unreachable!("goro: a blocked sender held no value"),
            }
        }
        Err(st.closed)
    }

    fn send(&self, v: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        let mut st = self.state.lock();
        let v = match self.send_now(&mut st, v) {
            Ok(wake) => {
                drop(st);
                wake.wake();
                return Ok(());
            }
            Err(Refused::Closed(v)) => return Err(SendTimeoutError::Closed(v)),
            Err(Refused::Full(v)) => v,
        };
        let blocker = Blocker::new(deadline.is_none());
        let node = Node::new(&blocker, 0, Some(v));
        // SAFETY: `node` stays in this frame, unmoved, until a completer
        // unlinks it (and DONE is observed below) or we remove it ourselves.
        unsafe { st.sendq.push_back(&node) };
        drop(st);
        let outcome = blocker.wait(deadline, WaitingOn::ChannelSend);
        if outcome == Outcome::TimedOut {
            self.state.lock().sendq.remove(&node);
        }
        // SAFETY: DONE was observed, or the node was removed under the lock.
        let left = unsafe { node.take() };
        match (outcome, left) {
            (_, None) => Ok(()),
            (Outcome::TimedOut, Some(v)) => Err(SendTimeoutError::Timeout(v)),
            (Outcome::Done { .. }, Some(v)) => Err(SendTimeoutError::Closed(v)),
        }
    }

    fn recv(&self, deadline: Option<Instant>, why: WaitingOn) -> Result<T, RecvTimeoutError> {
        let mut st = self.state.lock();
        match self.recv_now(&mut st) {
            Ok((v, wake)) => {
                drop(st);
                wake.wake();
                return Ok(v);
            }
            Err(true) => return Err(RecvTimeoutError::Closed),
            Err(false) => {}
        }
        let blocker = Blocker::new(deadline.is_none());
        let node = Node::new(&blocker, 0, None);
        // SAFETY: `node` stays in this frame, unmoved, until a completer
        // unlinks it (and DONE is observed below) or we remove it ourselves.
        unsafe { st.recvq.push_back(&node) };
        drop(st);
        let outcome = blocker.wait(deadline, why);
        if outcome == Outcome::TimedOut {
            self.state.lock().recvq.remove(&node);
            return Err(RecvTimeoutError::Timeout);
        }
        // SAFETY: DONE was observed: the completer is done with the node.
        match unsafe { node.take() } {
            Some(v) => Ok(v),
            None => Err(RecvTimeoutError::Closed),
        }
    }

    /// Closes the channel and fails every blocked operation. Idempotent.
    fn close(&self) {
        let mut wakes = Vec::new();
        {
            let mut st = self.state.lock();
            if st.closed {
                return;
            }
            st.closed = true;
            while let Some(receiver) = st.recvq.pop_claimed() {
                wakes.push(receiver.finish(true));
            }
            // Blocked senders keep their values and get them back.
            while let Some(sender) = st.sendq.pop_claimed() {
                wakes.push(sender.finish(true));
            }
        }
        for w in wakes {
            w.wake();
        }
    }

    /// The last receiver is gone: fail every blocked and future send.
    fn disconnect_receivers(&self) {
        let mut wakes = Vec::new();
        let hook = {
            let mut st = self.state.lock();
            st.receivers_gone = true;
            while let Some(sender) = st.sendq.pop_claimed() {
                wakes.push(sender.finish(true));
            }
            st.on_receivers_gone.take()
        };
        for w in wakes {
            w.wake();
        }
        if let Some(f) = hook {
            f();
        }
    }
}

/// The sending end of a channel. Cloning it adds a sender; dropping the
/// last one closes the channel.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving end of a channel. Cloning it adds a receiver (values go to
/// one of them each, as in Go).
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `v`, waiting while the buffer is full (or, unbuffered, until a
    /// receiver takes it).
    ///
    /// # Errors
    /// The value back if the channel is closed or every receiver is gone.
    pub fn send(&self, v: T) -> Result<(), SendError<T>> {
        self.chan
            .send(v, None)
            .map_err(|e| SendError(e.into_inner()))
    }

    /// Sends `v` if that needs no waiting.
    ///
    /// # Errors
    /// `Full` if it would have to wait, `Closed` as for `send`.
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        let mut st = self.chan.state.lock();
        match self.chan.send_now(&mut st, v) {
            Ok(wake) => {
                drop(st);
                wake.wake();
                Ok(())
            }
            Err(Refused::Full(v)) => Err(TrySendError::Full(v)),
            Err(Refused::Closed(v)) => Err(TrySendError::Closed(v)),
        }
    }

    /// Sends `v`, waiting at most `timeout`.
    ///
    /// # Errors
    /// `Timeout` with the value if no room or receiver came in time,
    /// `Closed` as for `send`.
    pub fn send_timeout(&self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(v, crate::time::now().checked_add(timeout))
    }

    /// Sends `v`, waiting at most until `deadline`.
    ///
    /// # Errors
    /// As for `send_timeout`.
    pub fn send_deadline(&self, v: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(v, Some(deadline))
    }

    /// Closes the channel (Go's `close`): receivers drain the buffer, then
    /// see it closed; sends fail from now on. Closing twice is harmless.
    pub fn close(&self) {
        self.chan.close();
    }

    /// Whether the channel is closed.
    pub fn is_closed(&self) -> bool {
        self.chan.state.lock().closed
    }

    /// Makes dropping senders never close the channel (`close` still
    /// does): for channels that, as Go's timer channels, are never closed,
    /// so that a receive after the last value blocks instead of failing.
    pub(crate) fn keep_open(&self) {
        // A count that no sender owns: the drops can no longer reach zero.
        self.chan.senders.fetch_add(1, Ordering::Relaxed);
    }

    /// Calls `f` when the last receiver drops (at once if it has).
    pub(crate) fn on_receivers_gone(&self, f: Box<dyn FnOnce() + Send>) {
        {
            let mut st = self.chan.state.lock();
            if !st.receivers_gone {
                st.on_receivers_gone = Some(f);
                return;
            }
        }
        f();
    }

    /// Values in the buffer now.
    pub fn len(&self) -> usize {
        self.chan.state.lock().buf.len()
    }

    /// Whether the buffer is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer's capacity (0 for unbuffered).
    pub fn capacity(&self) -> usize {
        self.chan.cap
    }

    /// Whether both senders belong to the same channel.
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Receiver<T> {
    /// Receives a value, waiting until one comes.
    ///
    /// # Errors
    /// `RecvError` once the channel is closed and drained.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.chan
            .recv(None, WaitingOn::ChannelReceive)
            .map_err(|_| RecvError)
    }

    /// Receives a value if one is ready.
    ///
    /// # Errors
    /// `Empty` if it would have to wait, `Closed` once closed and drained.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut st = self.chan.state.lock();
        match self.chan.recv_now(&mut st) {
            Ok((v, wake)) => {
                drop(st);
                wake.wake();
                Ok(v)
            }
            Err(true) => Err(TryRecvError::Closed),
            Err(false) => Err(TryRecvError::Empty),
        }
    }

    /// Receives a value, waiting at most `timeout`.
    ///
    /// # Errors
    /// `Timeout` if none came in time, `Closed` once closed and drained.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.chan.recv(
            crate::time::now().checked_add(timeout),
            WaitingOn::ChannelReceive,
        )
    }

    /// Receives a value, waiting at most until `deadline`.
    ///
    /// # Errors
    /// As for `recv_timeout`.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.chan.recv(Some(deadline), WaitingOn::ChannelReceive)
    }

    /// An iterator that receives until the channel is closed and drained.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the values ready now, without waiting.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// Whether the channel is closed (values may still be buffered).
    pub fn is_closed(&self) -> bool {
        self.chan.state.lock().closed
    }

    /// Values in the buffer now.
    pub fn len(&self) -> usize {
        self.chan.state.lock().buf.len()
    }

    /// Whether the buffer is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer's capacity (0 for unbuffered).
    pub fn capacity(&self) -> usize {
        self.chan.cap
    }

    /// Whether both receivers belong to the same channel.
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.chan.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.close();
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.receivers.fetch_add(1, Ordering::Relaxed);
        Receiver {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.chan.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.disconnect_receivers();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.chan.cap)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.chan.cap)
            .finish_non_exhaustive()
    }
}

/// Receives until the channel is closed and drained; see `Receiver::iter`.
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Values ready now; see `Receiver::try_iter`.
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Owns a receiver and receives until closed; see `Receiver::into_iter`.
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}
