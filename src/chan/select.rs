//! `select!`: wait on several channel operations, complete exactly one.
//!
//! As Go's `selectgo`: lock every channel involved (in address order, so two
//! selects cannot deadlock), poll the arms in a random order and complete
//! the first one ready (so among ready arms each is chosen uniformly); if
//! none is ready and there is no `default`, link one node per arm, all
//! pointing at one `Blocker`, unlock, and park once. Nodes are linked in
//! that same random order, so that when several arms wait on one channel,
//! the one a later peer finds first is also uniform. The first completer to
//! claim the blocker wins; on waking, the selecting coroutine relocks the
//! channels and unlinks its other nodes, so losing arms neither consume nor
//! send a value.
//!
//! Items here are public only for the macro's expansion.

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::{Receiver, RecvError, Refused, SendError, Sender};
use crate::runtime::Wait;
use crate::runtime::blocker::{Blocker, Outcome, Wake};
use crate::runtime::waitq::Node;

/// How `select` waits when no arm is ready.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// Until an arm completes.
    Block,
    /// Not at all (`default` arm).
    NonBlocking,
    /// At most this long (`timeout` arm).
    Timeout(Duration),
}

/// One arm of a `select!`, type-erased. The operations `select` needs are
/// on the sealed supertrait; the macro only asks which arm won.
pub trait Arm: sealed::ArmOps {
    /// Whether this arm won.
    fn won(&self) -> bool;
}

mod sealed {
    use crate::runtime::blocker::{Blocker, Wake};

    /// What `select` does with an arm. Methods marked unsafe must be called
    /// with the arm's channel locked through `lock`.
    pub trait ArmOps {
        /// Identifies the channel (its address), for lock ordering.
        fn chan_id(&self) -> usize;
        /// Takes the channel's lock.
        fn lock(&self);
        /// Releases the channel's lock.
        ///
        /// # Safety
        /// The caller must hold it, taken with `lock`.
        unsafe fn unlock(&self);
        /// Completes the operation now if it can; returns the wakeup to
        /// perform after unlocking.
        ///
        /// # Safety
        /// The channel must be locked.
        unsafe fn try_now(&mut self) -> Option<Wake>;
        /// Links this arm's node, as case `case` of `blocker`. The arm must
        /// not move until `unlink` ran.
        ///
        /// # Safety
        /// The channel must be locked; `blocker` must outlive the link.
        unsafe fn link(&mut self, blocker: &Blocker, case: usize);
        /// Unlinks this arm's node if it is still linked.
        ///
        /// # Safety
        /// The channel must be locked.
        unsafe fn unlink(&mut self);
        /// Takes the result of this arm's node, which won.
        fn complete(&mut self, closed: bool);
    }
}

/// A `recv(rx) -> v` arm.
pub struct RecvArm<'a, T> {
    rx: &'a Receiver<T>,
    node: Option<Node<T>>,
    result: Option<Result<T, RecvError>>,
}

impl<'a, T> RecvArm<'a, T> {
    /// An arm receiving from `rx`.
    pub fn new(rx: &'a Receiver<T>) -> Self {
        RecvArm {
            rx,
            node: None,
            result: None,
        }
    }

    /// The received value, or `RecvError` if the channel was closed.
    pub fn into_result(self) -> Result<T, RecvError> {
        self.result.unwrap_or(Err(RecvError))
    }
}

impl<T> sealed::ArmOps for RecvArm<'_, T> {
    fn chan_id(&self) -> usize {
        std::ptr::from_ref(&*self.rx.chan) as usize
    }

    fn lock(&self) {
        self.rx.chan.state.lock_raw();
    }

    unsafe fn unlock(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.rx.chan.state.unlock_raw() }
    }

    unsafe fn try_now(&mut self) -> Option<Wake> {
        // SAFETY: the channel is locked (contract); the reference is dropped
        // before this returns.
        let st = unsafe { self.rx.chan.state.get_raw() };
        match self.rx.chan.recv_now(st) {
            Ok((v, wake)) => {
                self.result = Some(Ok(v));
                Some(wake)
            }
            Err(true) => {
                self.result = Some(Err(RecvError));
                Some(Wake::Done)
            }
            Err(false) => None,
        }
    }

    unsafe fn link(&mut self, blocker: &Blocker, case: usize) {
        let node = self.node.insert(Node::new(blocker, case, None));
        // SAFETY: the channel is locked (contract); the arm, and so the node,
        // stays in place until `unlink` (contract).
        unsafe { self.rx.chan.state.get_raw().recvq.push_back(node) };
    }

    unsafe fn unlink(&mut self) {
        if let Some(node) = &self.node {
            // SAFETY: the channel is locked (contract).
            unsafe { self.rx.chan.state.get_raw() }.recvq.remove(node);
        }
    }

    fn complete(&mut self, closed: bool) {
        // SAFETY: `complete` runs after the blocker is DONE and every node is
        // unlinked: no completer touches the node any more.
        let v = self.node.as_ref().and_then(|n| unsafe { n.take() });
        self.result = Some(match v {
            Some(v) => Ok(v),
            None => {
                debug_assert!(closed, "a receive completed without a value");
                Err(RecvError)
            }
        });
    }
}

impl<T> Arm for RecvArm<'_, T> {
    fn won(&self) -> bool {
        self.result.is_some()
    }
}

/// A `send(tx, v) -> r` arm.
pub struct SendArm<'a, T> {
    tx: &'a Sender<T>,
    /// The value, until it is offered in a node or sent.
    value: Option<T>,
    node: Option<Node<T>>,
    result: Option<Result<(), SendError<T>>>,
}

impl<'a, T> SendArm<'a, T> {
    /// An arm sending `value` on `tx`.
    pub fn new(tx: &'a Sender<T>, value: T) -> Self {
        SendArm {
            tx,
            value: Some(value),
            node: None,
            result: None,
        }
    }

    /// `Ok` if sent, or the value back if the channel was closed.
    pub fn into_result(self) -> Result<(), SendError<T>> {
        match self.result {
            Some(r) => r,
            None => unreachable!("goro: select! took the result of a losing send arm"),
        }
    }
}

impl<T> sealed::ArmOps for SendArm<'_, T> {
    fn chan_id(&self) -> usize {
        std::ptr::from_ref(&*self.tx.chan) as usize
    }

    fn lock(&self) {
        self.tx.chan.state.lock_raw();
    }

    unsafe fn unlock(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.tx.chan.state.unlock_raw() }
    }

    unsafe fn try_now(&mut self) -> Option<Wake> {
        let v = self.value.take()?;
        // SAFETY: the channel is locked (contract); the reference is dropped
        // before this returns.
        let st = unsafe { self.tx.chan.state.get_raw() };
        match self.tx.chan.send_now(st, v) {
            Ok(wake) => {
                self.result = Some(Ok(()));
                Some(wake)
            }
            Err(Refused::Closed(v)) => {
                self.result = Some(Err(SendError(v)));
                Some(Wake::Done)
            }
            Err(Refused::Full(v)) => {
                self.value = Some(v);
                None
            }
        }
    }

    unsafe fn link(&mut self, blocker: &Blocker, case: usize) {
        let node = self
            .node
            .insert(Node::new(blocker, case, self.value.take()));
        // SAFETY: the channel is locked (contract); the arm, and so the node,
        // stays in place until `unlink` (contract).
        unsafe { self.tx.chan.state.get_raw().sendq.push_back(node) };
    }

    unsafe fn unlink(&mut self) {
        if let Some(node) = &self.node {
            // SAFETY: the channel is locked (contract).
            unsafe { self.tx.chan.state.get_raw() }.sendq.remove(node);
        }
    }

    fn complete(&mut self, closed: bool) {
        // SAFETY: as in `RecvArm::complete`.
        let v = self.node.as_ref().and_then(|n| unsafe { n.take() });
        self.result = Some(match (closed, v) {
            (true, Some(v)) => Err(SendError(v)),
            _ => Ok(()),
        });
    }
}

impl<T> Arm for SendArm<'_, T> {
    fn won(&self) -> bool {
        self.result.is_some()
    }
}

thread_local! {
    /// xorshift state for arm order; seeded per thread from its stack address
    /// and the clock, so threads do not share a sequence.
    static RNG: Cell<u64> = const { Cell::new(0) };
}

fn random() -> u64 {
    RNG.with(|r| {
        let mut x = r.get();
        if x == 0 {
            let local = 0u8;
            x = (std::ptr::from_ref(&local) as u64) ^ (crate::runtime::now_nanos().rotate_left(32))
                | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        x
    })
}

/// Locks the arms' channels in address order, each channel once.
fn lock_all(arms: &[&mut dyn Arm], order: &[usize]) {
    let mut last = None;
    for &i in order {
        let id = arms[i].chan_id();
        if last != Some(id) {
            arms[i].lock();
            last = Some(id);
        }
    }
}

/// Unlocks what `lock_all` locked.
///
/// # Safety
/// `lock_all(arms, order)` must have been called and not undone.
unsafe fn unlock_all(arms: &[&mut dyn Arm], order: &[usize]) {
    let mut last = None;
    for &i in order {
        let id = arms[i].chan_id();
        if last != Some(id) {
            // SAFETY: locked by `lock_all` (contract), once per channel.
            unsafe { arms[i].unlock() };
            last = Some(id);
        }
    }
}

/// Runs a select over `arms`. Returns true if an arm won (its `won()` says
/// which), false if the `default` or `timeout` arm applies.
pub fn select(arms: &mut [&mut dyn Arm], mode: Mode) -> bool {
    let deadline = match mode {
        Mode::Timeout(d) => Some(Instant::now().checked_add(d)),
        _ => None,
    };
    let mut order: Vec<usize> = (0..arms.len()).collect();
    order.sort_unstable_by_key(|&i| arms[i].chan_id());
    let mut poll: Vec<usize> = (0..arms.len()).collect();
    for i in (1..poll.len()).rev() {
        poll.swap(i, (random() % (i as u64 + 1)) as usize);
    }

    lock_all(arms, &order);
    for &i in &poll {
        // SAFETY: every channel is locked by `lock_all`.
        if let Some(wake) = unsafe { arms[i].try_now() } {
            // SAFETY: locked just above.
            unsafe { unlock_all(arms, &order) };
            wake.wake();
            return true;
        }
    }
    if matches!(mode, Mode::NonBlocking) {
        // SAFETY: locked just above.
        unsafe { unlock_all(arms, &order) };
        return false;
    }

    let blocker = Blocker::new(false);
    // Linked in poll order, not arm order: a completer takes the first node
    // of its queue, so among arms on one channel, the one linked first wins.
    for &case in &poll {
        // SAFETY: every channel is locked; `blocker` outlives the links, as
        // every node is unlinked below before it goes out of scope.
        unsafe { arms[case].link(&blocker, case) };
    }
    // SAFETY: locked above.
    unsafe { unlock_all(arms, &order) };
    let outcome = blocker.wait(deadline.flatten(), Wait::Select);
    lock_all(arms, &order);
    for arm in arms.iter_mut() {
        // SAFETY: every channel is locked.
        unsafe { arm.unlink() };
    }
    // SAFETY: locked just above.
    unsafe { unlock_all(arms, &order) };
    match outcome {
        Outcome::Done { winner, closed } => {
            arms[winner].complete(closed);
            true
        }
        Outcome::TimedOut => false,
    }
}

/// Waits on several channel operations and runs the arm of the one that
/// completes (Go's `select`).
///
/// Arms, separated by commas:
/// - `recv(rx) -> v => body`: receive from `rx` (a `Receiver` or an
///   expression giving one); `v` is `Result<T, RecvError>`, `Err` once the
///   channel is closed and drained.
/// - `send(tx, value) -> r => body`: send `value` on `tx`; `r` is
///   `Result<(), SendError<T>>`, `Err` (with the value) if closed.
/// - `default => body`: runs if no other arm is ready now (no waiting).
/// - `timeout(duration) => body`: runs if no other arm completes within
///   `duration`.
///
/// Channel and value expressions are evaluated once, in order, before
/// anything else. If several arms are ready, one is chosen uniformly at
/// random; the others neither receive nor send. So is the arm that a later
/// peer completes when several arms wait on the same channel. With neither
/// `default` nor `timeout`, the select waits until an arm completes; a
/// select with no arm at all waits forever.
///
/// ```
/// use goro::chan::chan;
/// use std::time::Duration;
///
/// let (tx, rx) = chan::<i32>(1);
/// tx.send(7).unwrap();
/// goro::select! {
///     recv(rx) -> v => assert_eq!(v, Ok(7)),
///     timeout(Duration::from_secs(1)) => panic!("timed out"),
/// }
/// goro::select! {
///     recv(rx) -> _v => panic!("nothing was sent"),
///     default => {}
/// }
/// ```
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__select_parse!(@arms [] @mode [] $($tokens)*)
    };
}

/// Collects `select!` arms into a normalized list.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    (@arms [$($arms:tt)*] @mode [$($mode:tt)*]) => {
        $crate::__select_emit!(@bind [] [$($arms)*] [$($mode)*])
    };
    (@arms [$($arms:tt)*] @mode [$($mode:tt)*] , $($rest:tt)*) => {
        $crate::__select_parse!(@arms [$($arms)*] @mode [$($mode)*] $($rest)*)
    };
    (@arms [$($arms:tt)*] @mode [$($mode:tt)*] recv($rx:expr) -> $p:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@arms [$($arms)* (recv ($rx) ($p) $body)] @mode [$($mode)*] $($rest)*)
    };
    (@arms [$($arms:tt)*] @mode [$($mode:tt)*] recv($rx:expr) -> $p:pat => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__select_parse!(@arms [$($arms)* (recv ($rx) ($p) { $body })] @mode [$($mode)*] $($($rest)*)?)
    };
    (@arms [$($arms:tt)*] @mode [$($mode:tt)*] send($tx:expr, $v:expr) -> $p:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@arms [$($arms)* (send ($tx, $v) ($p) $body)] @mode [$($mode)*] $($rest)*)
    };
    (@arms [$($arms:tt)*] @mode [$($mode:tt)*] send($tx:expr, $v:expr) -> $p:pat => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__select_parse!(@arms [$($arms)* (send ($tx, $v) ($p) { $body })] @mode [$($mode)*] $($($rest)*)?)
    };
    (@arms [$($arms:tt)*] @mode [] default => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@arms [$($arms)*] @mode [(default $body)] $($rest)*)
    };
    (@arms [$($arms:tt)*] @mode [] default => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__select_parse!(@arms [$($arms)*] @mode [(default { $body })] $($($rest)*)?)
    };
    (@arms [$($arms:tt)*] @mode [] timeout($d:expr) => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@arms [$($arms)*] @mode [(timeout ($d) $body)] $($rest)*)
    };
    (@arms [$($arms:tt)*] @mode [] timeout($d:expr) => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__select_parse!(@arms [$($arms)*] @mode [(timeout ($d) { $body })] $($($rest)*)?)
    };
    (@arms [$($arms:tt)*] @mode [$($mode:tt)+] default $($rest:tt)*) => {
        ::core::compile_error!("select! takes at most one `default` or `timeout` arm")
    };
    (@arms [$($arms:tt)*] @mode [$($mode:tt)+] timeout $($rest:tt)*) => {
        ::core::compile_error!("select! takes at most one `default` or `timeout` arm")
    };
    (@arms [$($arms:tt)*] @mode [$($mode:tt)*] $($rest:tt)+) => {
        ::core::compile_error!(
            "select! arms are `recv(rx) -> v => ...`, `send(tx, value) -> r => ...`, `default => ...` or `timeout(duration) => ...`"
        )
    };
}

/// Evaluates each arm's channel (and value) in order, binding each arm to a
/// fresh local (macro hygiene makes every `arm` distinct), then selects and
/// runs the winner's body.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_emit {
    (@bind [$($bound:tt)*] [(recv ($rx:expr) ($p:pat) $body:block) $($rest:tt)*] [$($mode:tt)*]) => {
        match &$rx {
            rx => {
                #[allow(unused_mut)]
                let mut arm = $crate::chan::select::RecvArm::new(rx);
                $crate::__select_emit!(@bind [$($bound)* (arm ($p) $body)] [$($rest)*] [$($mode)*])
            }
        }
    };
    (@bind [$($bound:tt)*] [(send ($tx:expr, $v:expr) ($p:pat) $body:block) $($rest:tt)*] [$($mode:tt)*]) => {
        match (&$tx, $v) {
            (tx, v) => {
                #[allow(unused_mut)]
                let mut arm = $crate::chan::select::SendArm::new(tx, v);
                $crate::__select_emit!(@bind [$($bound)* (arm ($p) $body)] [$($rest)*] [$($mode)*])
            }
        }
    };
    (@bind [$(($arm:ident ($p:pat) $body:block))*] [] []) => {{
        $crate::chan::select::select(
            &mut [$(&mut $arm as &mut dyn $crate::chan::select::Arm),*],
            $crate::chan::select::Mode::Block,
        );
        $(if $crate::chan::select::Arm::won(&$arm) {
            let $p = $arm.into_result();
            $body
        } else)* {
            ::core::unreachable!("goro: select! woke without a winner")
        }
    }};
    (@bind [$(($arm:ident ($p:pat) $body:block))*] [] [(default $fallback:block)]) => {{
        $crate::chan::select::select(
            &mut [$(&mut $arm as &mut dyn $crate::chan::select::Arm),*],
            $crate::chan::select::Mode::NonBlocking,
        );
        $(if $crate::chan::select::Arm::won(&$arm) {
            let $p = $arm.into_result();
            $body
        } else)* $fallback
    }};
    (@bind [$(($arm:ident ($p:pat) $body:block))*] [] [(timeout ($d:expr) $fallback:block)]) => {{
        $crate::chan::select::select(
            &mut [$(&mut $arm as &mut dyn $crate::chan::select::Arm),*],
            $crate::chan::select::Mode::Timeout($d),
        );
        $(if $crate::chan::select::Arm::won(&$arm) {
            let $p = $arm.into_result();
            $body
        } else)* $fallback
    }};
}
