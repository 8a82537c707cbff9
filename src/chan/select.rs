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
//! A disabled arm (a `None` channel or a false guard, Go's nil channel)
//! takes no part: it is neither locked, polled nor linked.
//!
//! Items here are public only for the macro's expansion.

use std::time::Duration;

use super::{Chan, Receiver, RecvError, Refused, SendError, Sender};
use crate::runtime::WaitingOn;
use crate::runtime::park::blocker::{Blocker, Outcome, Wake};
use crate::runtime::park::waitq::Node;
use crate::runtime::random::random;

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

/// What a `recv` arm takes: a `Receiver`, or an `Option` of one, whose
/// `None` disables the arm. The macro calls the method with autoderef, so
/// anything that dereferences to one of these works too.
pub trait RecvOperand {
    /// The channel's element type.
    type Item;
    /// The receiver to use, `None` for a disabled arm.
    fn select_receiver(&self) -> Option<&Receiver<Self::Item>>;
}

impl<T> RecvOperand for Receiver<T> {
    type Item = T;
    fn select_receiver(&self) -> Option<&Receiver<T>> {
        Some(self)
    }
}

impl<T> RecvOperand for Option<Receiver<T>> {
    type Item = T;
    fn select_receiver(&self) -> Option<&Receiver<T>> {
        self.as_ref()
    }
}

impl<T> RecvOperand for Option<&Receiver<T>> {
    type Item = T;
    fn select_receiver(&self) -> Option<&Receiver<T>> {
        *self
    }
}

/// What a `send` arm takes; as `RecvOperand`.
pub trait SendOperand {
    /// The channel's element type.
    type Item;
    /// The sender to use, `None` for a disabled arm.
    fn select_sender(&self) -> Option<&Sender<Self::Item>>;
}

impl<T> SendOperand for Sender<T> {
    type Item = T;
    fn select_sender(&self) -> Option<&Sender<T>> {
        Some(self)
    }
}

impl<T> SendOperand for Option<Sender<T>> {
    type Item = T;
    fn select_sender(&self) -> Option<&Sender<T>> {
        self.as_ref()
    }
}

impl<T> SendOperand for Option<&Sender<T>> {
    type Item = T;
    fn select_sender(&self) -> Option<&Sender<T>> {
        *self
    }
}

/// One arm of a `select!`, type-erased. The operations `select` needs are
/// on the sealed supertrait.
pub trait Arm: sealed::ArmOps {}

mod sealed {
    use crate::runtime::park::blocker::{Blocker, Wake};

    /// What `select` does with an arm. Methods other than `enabled` are
    /// called only on enabled arms; those marked unsafe must be called with
    /// the arm's channel locked through `lock`.
    pub trait ArmOps {
        /// Whether the arm takes part in the select.
        fn enabled(&self) -> bool;
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

/// The channel of an enabled arm.
fn enabled_chan<T>(chan: Option<&Chan<T>>) -> &Chan<T> {
    match chan {
        Some(chan) => chan,
        None => unreachable!("goro: select used a disabled arm"),
    }
}

/// A `recv(rx) -> v` arm.
pub struct RecvArm<'a, T> {
    /// The channel; `None` if the arm is disabled.
    rx: Option<&'a Receiver<T>>,
    /// Linked while the select waits; only if enabled.
    node: Option<Node<T>>,
    /// Set once the arm won.
    result: Option<Result<T, RecvError>>,
}

impl<'a, T> RecvArm<'a, T> {
    /// An arm receiving from `rx`, disabled if `None`.
    pub fn new(rx: Option<&'a Receiver<T>>) -> Self {
        RecvArm {
            rx,
            node: None,
            result: None,
        }
    }

    /// If this arm won, the received value, or `RecvError` if the channel
    /// was closed.
    pub fn into_won(self) -> Option<Result<T, RecvError>> {
        self.result
    }

    fn chan(&self) -> &'a Chan<T> {
        enabled_chan(self.rx.map(|rx| &*rx.chan))
    }
}

impl<T> sealed::ArmOps for RecvArm<'_, T> {
    fn enabled(&self) -> bool {
        self.rx.is_some()
    }

    fn chan_id(&self) -> usize {
        std::ptr::from_ref(self.chan()) as usize
    }

    fn lock(&self) {
        self.chan().state.lock_raw();
    }

    unsafe fn unlock(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.chan().state.unlock_raw() }
    }

    unsafe fn try_now(&mut self) -> Option<Wake> {
        let chan = self.chan();
        // SAFETY: the channel is locked (contract); the reference is dropped
        // before this returns.
        let st = unsafe { chan.state.get_raw() };
        match chan.recv_now(st) {
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
        let chan = self.chan();
        let node = self.node.insert(Node::new(blocker, case, None));
        // SAFETY: the channel is locked (contract); the arm, and so the node,
        // stays in place until `unlink` (contract).
        unsafe { chan.state.get_raw().recvq.push_back(node) };
    }

    unsafe fn unlink(&mut self) {
        if let Some(node) = &self.node {
            // SAFETY: the channel is locked (contract).
            unsafe { self.chan().state.get_raw() }.recvq.remove(node);
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

impl<T> Arm for RecvArm<'_, T> {}

/// A `send(tx, v) -> r` arm.
pub struct SendArm<'a, T> {
    /// The channel; `None` if the arm is disabled.
    tx: Option<&'a Sender<T>>,
    /// The value, until it is offered in a node or sent; `None` from the
    /// start if the arm is disabled.
    value: Option<T>,
    /// Linked while the select waits; only if enabled.
    node: Option<Node<T>>,
    /// Set once the arm won.
    result: Option<Result<(), SendError<T>>>,
}

impl<'a, T> SendArm<'a, T> {
    /// An arm sending `value` on `tx`, disabled if either is `None`.
    pub fn new(tx: Option<&'a Sender<T>>, value: Option<T>) -> Self {
        let enabled = tx.is_some() && value.is_some();
        SendArm {
            tx: tx.filter(|_| enabled),
            value: value.filter(|_| enabled),
            node: None,
            result: None,
        }
    }

    /// If this arm won, `Ok` if it sent, or the value back if the channel
    /// was closed.
    pub fn into_won(self) -> Option<Result<(), SendError<T>>> {
        self.result
    }

    fn chan(&self) -> &'a Chan<T> {
        enabled_chan(self.tx.map(|tx| &*tx.chan))
    }
}

impl<T> sealed::ArmOps for SendArm<'_, T> {
    fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    fn chan_id(&self) -> usize {
        std::ptr::from_ref(self.chan()) as usize
    }

    fn lock(&self) {
        self.chan().state.lock_raw();
    }

    unsafe fn unlock(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.chan().state.unlock_raw() }
    }

    unsafe fn try_now(&mut self) -> Option<Wake> {
        let chan = self.chan();
        let v = self.value.take()?;
        // SAFETY: the channel is locked (contract); the reference is dropped
        // before this returns.
        let st = unsafe { chan.state.get_raw() };
        match chan.send_now(st, v) {
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
        let chan = self.chan();
        let node = self
            .node
            .insert(Node::new(blocker, case, self.value.take()));
        // SAFETY: the channel is locked (contract); the arm, and so the node,
        // stays in place until `unlink` (contract).
        unsafe { chan.state.get_raw().sendq.push_back(node) };
    }

    unsafe fn unlink(&mut self) {
        if let Some(node) = &self.node {
            // SAFETY: the channel is locked (contract).
            unsafe { self.chan().state.get_raw() }.sendq.remove(node);
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

impl<T> Arm for SendArm<'_, T> {}

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

/// Runs a select over the enabled `arms`. The winner, if any, holds its
/// result (`into_won`); if none does, the `default` or `timeout` arm
/// applies.
pub fn select(arms: &mut [&mut dyn Arm], mode: Mode) {
    let deadline = match mode {
        Mode::Timeout(d) => Some(crate::time::now().checked_add(d)),
        _ => None,
    };
    let mut poll: Vec<usize> = (0..arms.len()).filter(|&i| arms[i].enabled()).collect();
    for i in (1..poll.len()).rev() {
        poll.swap(i, (random() % (i as u64 + 1)) as usize);
    }
    let mut order = poll.clone();
    order.sort_unstable_by_key(|&i| arms[i].chan_id());

    lock_all(arms, &order);
    for &i in &poll {
        // SAFETY: every channel is locked by `lock_all`.
        if let Some(wake) = unsafe { arms[i].try_now() } {
            // SAFETY: locked just above.
            unsafe { unlock_all(arms, &order) };
            wake.wake();
            return;
        }
    }
    if matches!(mode, Mode::NonBlocking) {
        // SAFETY: locked just above.
        unsafe { unlock_all(arms, &order) };
        return;
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
    let outcome = blocker.wait(deadline.flatten(), WaitingOn::Select);
    lock_all(arms, &order);
    for &i in &poll {
        // SAFETY: every channel is locked.
        unsafe { arms[i].unlink() };
    }
    // SAFETY: locked just above.
    unsafe { unlock_all(arms, &order) };
    if let Outcome::Done { winner, closed } = outcome {
        arms[winner].complete(closed);
    }
}

/// Waits on several channel operations and runs the arm of the one that
/// completes (Go's `select`).
///
/// Arms, separated by commas:
/// - `recv(rx) -> v => body`: receive from `rx`, a `Receiver` or an
///   `Option<Receiver>` (or a reference to either, or anything that
///   dereferences to one); `v` is `Result<T, RecvError>`, `Err` once the
///   channel is closed and drained.
/// - `send(tx, value) -> r => body`: send `value` on `tx`, a `Sender` or an
///   `Option<Sender>` (likewise); `r` is `Result<(), SendError<T>>`, `Err`
///   (with the value) if closed.
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
///
/// # Disabled arms: Go's nil channel
///
/// Go turns a case off by setting its channel to nil. Here an arm is off
/// when its channel is `None`, or when its guard is false: a `recv` or
/// `send` arm may end with `if condition`, as a match arm does. An arm that
/// is off never fires, even if its channel is ready; when every arm is off,
/// the select runs `default`, times out, or waits forever, as in Go.
///
/// A guard is evaluated before the rest of its arm, so it cannot use the
/// arm's result. When it is false, the value of a `send` arm is not
/// evaluated (the channel expression still is, as Go evaluates a nil
/// channel's).
///
/// Merging two channels until both are closed: a closed channel, always
/// ready, would otherwise win over and over.
///
/// ```
/// use goro::chan::chan;
///
/// let (tx_a, a) = chan::<u32>(3);
/// let (tx_b, b) = chan::<u32>(3);
/// for i in 1..=3 {
///     tx_a.send(i).unwrap();
///     tx_b.send(10 * i).unwrap();
/// }
/// drop((tx_a, tx_b)); // closes both
///
/// let (mut a, mut b) = (Some(a), Some(b));
/// let mut sum = 0;
/// while a.is_some() || b.is_some() {
///     goro::select! {
///         recv(a) -> v => match v {
///             Ok(v) => sum += v,
///             Err(_) => a = None, // as Go's `a = nil`
///         },
///         recv(b) -> v => match v {
///             Ok(v) => sum += v,
///             Err(_) => b = None,
///         },
///     }
/// }
/// assert_eq!(sum, 66);
/// ```
///
/// Sending the head of a queue only while there is one:
///
/// ```
/// use goro::chan::chan;
/// use std::collections::VecDeque;
///
/// let (tx, rx) = chan::<u32>(8);
/// let mut queue = VecDeque::from([1, 2, 3]);
/// loop {
///     goro::select! {
///         // `queue[0]` is not evaluated once the queue is empty.
///         send(tx, queue[0]) -> r if !queue.is_empty() => {
///             r.unwrap();
///             queue.pop_front();
///         }
///         default => break,
///     }
/// }
/// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2, 3]);
/// ```
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__select_parse!(@arms [] @mode [] $($tokens)*)
    };
}

/// Collects `select!` arms into a normalized list: each channel arm is
/// `(recv (rx) [guard] (pattern) body)` or `(send (tx, v) [guard] (pattern)
/// body)`, with `[]` for no guard.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    (@arms [$($arms:tt)*] @mode [$($mode:tt)*]) => {
        $crate::__select_emit!(@bind [] [$($arms)*] [$($mode)*])
    };
    (@arms [$($arms:tt)*] @mode [$($mode:tt)*] , $($rest:tt)*) => {
        $crate::__select_parse!(@arms [$($arms)*] @mode [$($mode)*] $($rest)*)
    };
    (@arms [$($arms:tt)*] @mode [$($mode:tt)*] recv($rx:expr) -> $p:pat $(if $g:expr)? => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@arms [$($arms)* (recv ($rx) [$($g)?] ($p) $body)] @mode [$($mode)*] $($rest)*)
    };
    (@arms [$($arms:tt)*] @mode [$($mode:tt)*] recv($rx:expr) -> $p:pat $(if $g:expr)? => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__select_parse!(@arms [$($arms)* (recv ($rx) [$($g)?] ($p) { $body })] @mode [$($mode)*] $($($rest)*)?)
    };
    (@arms [$($arms:tt)*] @mode [$($mode:tt)*] send($tx:expr, $v:expr) -> $p:pat $(if $g:expr)? => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@arms [$($arms)* (send ($tx, $v) [$($g)?] ($p) $body)] @mode [$($mode)*] $($rest)*)
    };
    (@arms [$($arms:tt)*] @mode [$($mode:tt)*] send($tx:expr, $v:expr) -> $p:pat $(if $g:expr)? => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__select_parse!(@arms [$($arms)* (send ($tx, $v) [$($g)?] ($p) { $body })] @mode [$($mode)*] $($($rest)*)?)
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
            "select! arms are `recv(rx) -> v => ...`, `send(tx, value) -> r => ...` (either with an optional `if guard` before `=>`), `default => ...` or `timeout(duration) => ...`"
        )
    };
}

/// The `Option<&Receiver>` (or `Sender`) of a `recv` (or `send`) operand
/// `op`, a reference: method-call syntax lets autoderef reach a `Receiver`
/// behind any `Deref`. The trait is in scope only here.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_operand {
    (recv $op:ident) => {{
        use $crate::chan::select::RecvOperand as _;
        $op.select_receiver()
    }};
    (send $op:ident) => {{
        use $crate::chan::select::SendOperand as _;
        $op.select_sender()
    }};
}

/// Evaluates each arm's guard, channel and value in order, binding each arm
/// to a fresh local (macro hygiene makes every `arm` distinct), then
/// selects, takes every arm's result (ending their borrows of the channels,
/// so that bodies may reassign them) and runs the winner's body.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_emit {
    (@bind [$($bound:tt)*] [(recv ($rx:expr) [] ($p:pat) $body:block) $($rest:tt)*] [$($mode:tt)*]) => {
        match &$rx {
            rx => {
                #[allow(unused_mut)]
                let mut arm = $crate::chan::select::RecvArm::new($crate::__select_operand!(recv rx));
                $crate::__select_emit!(@bind [$($bound)* (arm ($p) $body)] [$($rest)*] [$($mode)*])
            }
        }
    };
    (@bind [$($bound:tt)*] [(recv ($rx:expr) [$g:expr] ($p:pat) $body:block) $($rest:tt)*] [$($mode:tt)*]) => {
        match ($g, &$rx) {
            (on, rx) => {
                #[allow(unused_mut)]
                let mut arm = $crate::chan::select::RecvArm::new(if on {
                    $crate::__select_operand!(recv rx)
                } else {
                    ::core::option::Option::None
                });
                $crate::__select_emit!(@bind [$($bound)* (arm ($p) $body)] [$($rest)*] [$($mode)*])
            }
        }
    };
    (@bind [$($bound:tt)*] [(send ($tx:expr, $v:expr) [] ($p:pat) $body:block) $($rest:tt)*] [$($mode:tt)*]) => {
        match (&$tx, $v) {
            (tx, v) => {
                #[allow(unused_mut)]
                let mut arm = $crate::chan::select::SendArm::new(
                    $crate::__select_operand!(send tx),
                    ::core::option::Option::Some(v),
                );
                $crate::__select_emit!(@bind [$($bound)* (arm ($p) $body)] [$($rest)*] [$($mode)*])
            }
        }
    };
    (@bind [$($bound:tt)*] [(send ($tx:expr, $v:expr) [$g:expr] ($p:pat) $body:block) $($rest:tt)*] [$($mode:tt)*]) => {
        match ($g, &$tx) {
            (on, tx) => {
                #[allow(unused_mut)]
                let mut arm = $crate::chan::select::SendArm::new(
                    $crate::__select_operand!(send tx),
                    if on {
                        ::core::option::Option::Some($v)
                    } else {
                        ::core::option::Option::None
                    },
                );
                $crate::__select_emit!(@bind [$($bound)* (arm ($p) $body)] [$($rest)*] [$($mode)*])
            }
        }
    };
    (@bind [$(($arm:ident ($p:pat) $body:block))*] [] []) => {{
        $crate::chan::select::select(
            &mut [$(&mut $arm as &mut dyn $crate::chan::select::Arm),*],
            $crate::chan::select::Mode::Block,
        );
        $(let $arm = $arm.into_won();)*
        $(if let ::core::option::Option::Some(r) = $arm {
            let $p = r;
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
        $(let $arm = $arm.into_won();)*
        $(if let ::core::option::Option::Some(r) = $arm {
            let $p = r;
            $body
        } else)* $fallback
    }};
    (@bind [$(($arm:ident ($p:pat) $body:block))*] [] [(timeout ($d:expr) $fallback:block)]) => {{
        $crate::chan::select::select(
            &mut [$(&mut $arm as &mut dyn $crate::chan::select::Arm),*],
            $crate::chan::select::Mode::Timeout($d),
        );
        $(let $arm = $arm.into_won();)*
        $(if let ::core::option::Option::Some(r) = $arm {
            let $p = r;
            $body
        } else)* $fallback
    }};
}
