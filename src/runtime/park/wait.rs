//! What a parked coroutine waits on: one table of wait reasons (Go's
//! `waitReasonStrings` beside `isIdleInSynctest`), from which the reason a
//! park records, the dump's `WaitingOn` and `stats`' `ParkedOn` are all
//! derived, so that they cannot disagree.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::runtime::scheduler::worker::Worker;
use crate::runtime::task::id::CoroutineId;
use crate::runtime::time::clock;

/// Declares `WaitingOn`, its labels, its bubble and clock predicates, its
/// packing into a word, and `ParkedOn`, from one row per reason:
/// `Variant(argument)? => "label", parked_on_field, durable, io;`.
///
/// *durable*: a coroutine parked on it can be woken only by another
/// coroutine or a timer (Go's "durably blocked"), so a bubble's clock may
/// move on while its members wait on such things only; waits on the outside
/// world (an fd, a blocking call, a future) are not. *io*: a wait for an
/// fd, whose deadlines are on real time even in a bubble.
macro_rules! wait_reasons {
    ($(
        $(#[$doc:meta])*
        $name:ident $(($arg:ty))? => $label:literal, $field:ident, $durable:literal, $io:literal;
    )*) => {
        /// What a parked coroutine waits on.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum WaitingOn {
            $($(#[$doc])* $name $(($arg))?,)*
        }

        /// The table's rows in order: a reason's row number indexes
        /// `LABELS` and, plus one, is its code when packed.
        #[derive(Clone, Copy)]
        enum Row {
            $($name,)*
        }

        /// Each row's label.
        const LABELS: &[&str] = &[$($label),*];

        impl WaitingOn {
            /// What it waits on, without the fd or coroutine it names:
            /// `read`, `join`, `channel receive`.
            pub fn kind(&self) -> &'static str {
                LABELS[self.index()]
            }

            /// Whether a coroutine parked on this is durably blocked (see
            /// `wait_reasons!`).
            pub(crate) fn is_durable(self) -> bool {
                match self {
                    $(WaitingOn::$name { .. } => $durable,)*
                }
            }

            /// Whether this is a wait for an fd, whose deadlines are on
            /// real time.
            pub(crate) fn is_io(self) -> bool {
                match self {
                    $(WaitingOn::$name { .. } => $io,)*
                }
            }

            fn index(self) -> usize {
                match self {
                    $(WaitingOn::$name { .. } => Row::$name as usize,)*
                }
            }

            /// The reason and its argument in one word: the code (index
            /// plus one; 0 is "nothing") in the top byte. The trace stores it.
            pub(crate) fn encode(self) -> u64 {
                let arg = match self {
                    $(WaitingOn::$name $((wait_reasons!(@bind a $arg)))? => {
                        0 $(| WaitArg::to_bits(wait_reasons!(@use a $arg)))?
                    })*
                };
                ((self.index() as u64 + 1) << ARG_BITS) | (arg & ARG_MASK)
            }

            /// The reason `encode` packed, `None` for 0.
            pub(crate) fn decode(v: u64) -> Option<WaitingOn> {
                let arg = v & ARG_MASK;
                let code = (v >> ARG_BITS) as usize;
                $(
                    if code == Row::$name as usize + 1 {
                        return Some(WaitingOn::$name $((<$arg as WaitArg>::from_bits(arg)?))?);
                    }
                )*
                None
            }
        }

        /// Parked coroutines by what they wait on: a count per kind of
        /// `WaitingOn`, without its argument (which fd, which coroutine), so
        /// that the set of figures stays fixed however many fds or coroutines
        /// there are.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct ParkedOn {
            $($(#[$doc])* pub $field: u64,)*
            /// On something the runtime does not name (`dump` shows no
            /// reason).
            pub other: u64,
        }

        impl ParkedOn {
            /// Every figure with its field's name, in declaration order,
            /// zeros included: the labels of a metric, which should not come
            /// and go.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
                [$((stringify!($field), self.$field),)* ("other", self.other)].into_iter()
            }

            pub(crate) fn add(&mut self, o: &ParkedOn) {
                $(self.$field += o.$field;)*
                self.other += o.other;
            }

            /// Counts one coroutine parked on `w`.
            pub(crate) fn count(&mut self, w: Option<WaitingOn>) {
                let n = match w {
                    $(Some(WaitingOn::$name { .. }) => &mut self.$field,)*
                    None => &mut self.other,
                };
                *n += 1;
            }
        }
    };
    (@bind $a:ident $t:ty) => { $a };
    (@use $a:ident $t:ty) => { $a };
}

/// Bits of a packed reason that hold its argument.
const ARG_BITS: u32 = 56;
const ARG_MASK: u64 = (1 << ARG_BITS) - 1;

/// An argument a wait reason carries, packed into `ARG_BITS` bits.
trait WaitArg: Sized {
    fn to_bits(self) -> u64;
    fn from_bits(bits: u64) -> Option<Self>;
}

impl WaitArg for CoroutineId {
    fn to_bits(self) -> u64 {
        self.as_u64()
    }
    fn from_bits(bits: u64) -> Option<CoroutineId> {
        CoroutineId::from_u64(bits)
    }
}

impl WaitArg for RawFd {
    fn to_bits(self) -> u64 {
        u64::from(self as u32)
    }
    fn from_bits(bits: u64) -> Option<RawFd> {
        Some(bits as u32 as RawFd)
    }
}

wait_reasons! {
    /// `JoinHandle::join` of this coroutine.
    Join(CoroutineId) => "join", join, true, false;
    /// `sleep` or a timer.
    Sleep => "sleep", sleep, true, false;
    /// A channel receive.
    ChannelReceive => "channel receive", channel_receive, true, false;
    /// A channel send.
    ChannelSend => "channel send", channel_send, true, false;
    /// `select!` over channels.
    Select => "select", select, true, false;
    /// A socket or other fd to become readable.
    Read(RawFd) => "read", read, false, true;
    /// A socket or other fd to become writable.
    Write(RawFd) => "write", write, false, true;
    /// A `goro::sync::Mutex`.
    Mutex => "mutex", mutex, true, false;
    /// A `goro::sync::RwLock`.
    RwLock => "rwlock", rwlock, true, false;
    /// A `goro::sync::Condvar`.
    Condvar => "condvar", condvar, true, false;
    /// A `goro::sync::WaitGroup`.
    WaitGroup => "wait group", wait_group, true, false;
    /// A `goro::sync::Once`.
    Once => "once", once, true, false;
    /// A `goro::sync::Semaphore`.
    Semaphore => "semaphore", semaphore, true, false;
    /// A `goro::sync::Barrier`.
    Barrier => "barrier", barrier, true, false;
    /// A call running in `goro::blocking`.
    BlockingCall => "blocking call", blocking_call, false, false;
    /// A future driven by `goro::block_on` (or its bounded forms).
    Future => "future", future, false, false;
    /// `goro::synctest::wait`, for the rest of its bubble to block.
    SynctestWait => "synctest wait", synctest_wait, true, false;
}

/// A coroutine's current reason (`None`: nothing named) and since when, readable from any thread.
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

    pub(crate) fn get(&self) -> Option<WaitingOn> {
        WaitingOn::decode(self.code.load(Ordering::Relaxed))
    }

    pub(crate) fn since(&self) -> u64 {
        self.since.load(Ordering::Relaxed)
    }

    pub(crate) fn set(&self, w: Option<WaitingOn>) {
        if w.is_some() {
            self.since.store(clock::coarse_now(), Ordering::Relaxed);
        }
        self.code
            .store(w.map_or(0, WaitingOn::encode), Ordering::Relaxed);
    }
}

/// Records what the running coroutine waits on for as long as it lives.
/// Does nothing on a plain thread.
pub(crate) struct WaitGuard {
    active: bool,
}

impl WaitGuard {
    pub(crate) fn set(w: WaitingOn) -> WaitGuard {
        let active = Worker::with_running_header(|h| h.wait.set(Some(w))).is_some();
        WaitGuard { active }
    }
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        if self.active {
            // The guard lives on the coroutine's stack, so the same coroutine
            // is running now.
            Worker::with_running_header(|h| h.wait.set(None));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_reason() -> Vec<WaitingOn> {
        let id = CoroutineId::from_u64(77).unwrap();
        vec![
            WaitingOn::Join(id),
            WaitingOn::Sleep,
            WaitingOn::ChannelReceive,
            WaitingOn::ChannelSend,
            WaitingOn::Select,
            WaitingOn::Read(3),
            WaitingOn::Write(i32::MAX),
            WaitingOn::Mutex,
            WaitingOn::RwLock,
            WaitingOn::Condvar,
            WaitingOn::WaitGroup,
            WaitingOn::Once,
            WaitingOn::Semaphore,
            WaitingOn::Barrier,
            WaitingOn::BlockingCall,
            WaitingOn::Future,
            WaitingOn::SynctestWait,
        ]
    }

    #[test]
    fn every_reason_round_trips_through_its_packed_word() {
        let reasons = every_reason();
        assert_eq!(reasons.len(), LABELS.len());
        for w in reasons {
            let r = WaitReason::new();
            r.set(Some(w));
            assert_eq!(r.get(), Some(w));
        }
        let r = WaitReason::new();
        assert_eq!(r.get(), None);
        r.set(Some(WaitingOn::Sleep));
        r.set(None);
        assert_eq!(r.get(), None);
    }

    #[test]
    fn each_reason_has_its_own_label_and_stats_field() {
        let mut labels: Vec<&str> = every_reason().iter().map(|w| w.kind()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), LABELS.len());
        let mut counts = ParkedOn::default();
        for w in every_reason() {
            counts.count(Some(w));
        }
        counts.count(None);
        assert!(counts.iter().all(|(_, n)| n == 1), "{counts:?}");
    }

    #[test]
    fn only_waits_on_fds_are_on_real_time_and_outside_waits_are_not_durable() {
        for w in every_reason() {
            let fd = matches!(w, WaitingOn::Read(_) | WaitingOn::Write(_));
            let outside = fd || matches!(w, WaitingOn::BlockingCall | WaitingOn::Future);
            assert_eq!(w.is_io(), fd, "{w:?}");
            assert_eq!(w.is_durable(), !outside, "{w:?}");
        }
    }
}
