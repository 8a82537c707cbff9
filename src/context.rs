//! Cancellation and deadlines across coroutines (Go's `context`).
//!
//! A `Context` says when the work it is handed to should stop: when someone
//! cancels it, when its deadline passes, or when its parent is done.
//! Contexts form a tree rooted at `Context::background()`, which is never
//! done; `with_cancel`, `with_timeout` and `with_deadline` derive a child
//! and return it with the `CancelFunc` that cancels it (and only it, and
//! its descendants).
//!
//! ```
//! use goro::context::{self, Context, ContextError};
//! use std::time::Duration;
//!
//! goro::run(|| {
//!     let (ctx, cancel) = context::with_cancel(&Context::background());
//!     let worker = goro::go!(move || {
//!         goro::select! {
//!             recv(ctx.done()) -> _ => ctx.err(),
//!             timeout(Duration::from_secs(60)) => None,
//!         }
//!     });
//!     cancel.cancel();
//!     assert_eq!(worker.join().unwrap(), Some(ContextError::Cancelled));
//! });
//! ```
//!
//! # Design
//!
//! Each context is a node behind an `Arc`; clones share it. A node holds its
//! parent strongly (the chain up must outlive it) and is held by its parent
//! only weakly, in the parent's `children` table, so that a child dropped
//! without being cancelled frees itself; its `Drop` then removes its entry.
//! A child cancelled on its own removes its entry too, so short-lived
//! children of a long-lived parent do not pile up in it.
//!
//! Being done is a channel that is closed, never sent on: every receive
//! from a closed channel, in any number of coroutines and `select!`s, sees
//! it at once. Cancelling sets the error under the node's lock, takes its
//! children, releases the lock, closes the channel and cancels the children
//! with the same error, iteratively (no recursion, however deep the tree).
//! No two node locks are held together, except a parent's over its new
//! child's while registering it, which nobody else can yet reach.
//!
//! Cancelling also wakes the callers of `goro::block_on_context` parked on
//! the node (its `watchers`), since a future has no channel to wait on.
//!
//! A deadline is a timer (`runtime::timer::call_at`) holding the node
//! weakly, so a dropped context is not kept alive by its deadline.
//! Because timers fire between coroutines, a coroutine computing without
//! blocking delays its worker's timers; `err` and `is_done` therefore also
//! compare the deadline with the clock themselves.

use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::chan::{Receiver, Sender, chan};
use crate::runtime::park::Waiter;
use crate::runtime::spin::SpinLock;
use crate::runtime::timer::call_at;
use crate::time::deadline_after;

/// Why a context is done (Go's `context.Canceled` and
/// `context.DeadlineExceeded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContextError {
    /// Its `CancelFunc`, or an ancestor's, was called. Displays as Go's
    /// "context canceled".
    Cancelled,
    /// Its deadline, or an ancestor's, passed. Displays as Go's "context
    /// deadline exceeded".
    DeadlineExceeded,
}

/// As an `io::Error`, for I/O that gave up because of its context:
/// `TimedOut` for a passed deadline (like any I/O deadline), `Interrupted`
/// for a cancellation.
impl From<ContextError> for std::io::Error {
    fn from(e: ContextError) -> std::io::Error {
        let kind = match e {
            ContextError::Cancelled => std::io::ErrorKind::Interrupted,
            ContextError::DeadlineExceeded => std::io::ErrorKind::TimedOut,
        };
        std::io::Error::new(kind, e)
    }
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContextError::Cancelled => "context canceled",
            ContextError::DeadlineExceeded => "context deadline exceeded",
        })
    }
}

impl Error for ContextError {}

/// Carries cancellation and a deadline to the work it is passed to (Go's
/// `context.Context`). Cloning is cheap and shares the context.
///
/// Work that honours a context checks `err()` between steps, or waits on
/// `done()` alongside its own channels:
///
/// ```
/// use goro::context::{self, Context, ContextError};
/// use std::time::Duration;
///
/// fn first_job(ctx: &Context, jobs: &goro::chan::Receiver<u32>) -> Result<u32, ContextError> {
///     goro::select! {
///         recv(jobs) -> job => Ok(job.unwrap_or(0)),
///         recv(ctx.done()) -> _ => Err(ctx.err().unwrap_or(ContextError::Cancelled)),
///     }
/// }
///
/// goro::run(|| {
///     let (_tx, jobs) = goro::chan::chan::<u32>(0);
///     let (ctx, _cancel) = context::with_timeout(&Context::background(), Duration::from_millis(10));
///     assert_eq!(first_job(&ctx, &jobs), Err(ContextError::DeadlineExceeded));
/// });
/// ```
#[derive(Clone)]
pub struct Context {
    /// Shared by the clones of this context.
    node: Arc<Node>,
}

/// Cancels the context it came with, and that context's descendants (Go's
/// `context.CancelFunc`). Calling it again does nothing; dropping it does
/// not cancel. Clones cancel the same context.
#[derive(Clone)]
pub struct CancelFunc {
    /// Weak: a context no one holds any more need not be kept to be
    /// cancelled.
    node: Weak<Node>,
}

struct Node {
    /// The context this one derives from; `None` only for background. Held
    /// strongly: cancellation flows down through it.
    parent: Option<Arc<Node>>,
    /// Unique: this node's key in its parent's `children`.
    id: u64,
    /// The earliest deadline of this node and its ancestors.
    deadline: Option<Instant>,
    /// Closed when the context is cancelled. Background's is never closed.
    done_tx: Sender<()>,
    /// The receiving end of `done_tx`'s channel, lent out by `done`.
    done_rx: Receiver<()>,
    state: SpinLock<State>,
}

#[derive(Default)]
struct State {
    /// Why the context is done; `None` until it is. Set once, never
    /// cleared, and set before `done_tx` is closed.
    err: Option<ContextError>,
    /// Descendants to cancel with this node, by id: derived contexts not
    /// yet cancelled or dropped. Empty once `err` is set.
    children: HashMap<u64, Weak<Node>>,
    /// Whether this node is in its parent's `children`.
    registered: bool,
    /// Who to wake when the context is done, by watch id: callers of
    /// `goro::block_on_context` parked on it, whose futures have no other
    /// way to hear of a cancellation. Empty once `err` is set.
    watchers: HashMap<u64, Waiter>,
}

/// Node and watch ids; 0 is background's.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Context {
    /// The root of every context tree: never cancelled, no deadline (Go's
    /// `context.Background()`). Its `done` channel never closes.
    pub fn background() -> Context {
        static BACKGROUND: OnceLock<Context> = OnceLock::new();
        BACKGROUND
            .get_or_init(|| {
                let (done_tx, done_rx) = chan(0);
                Context {
                    node: Arc::new(Node {
                        parent: None,
                        id: 0,
                        deadline: None,
                        done_tx,
                        done_rx,
                        state: SpinLock::new(State::default()),
                    }),
                }
            })
            .clone()
    }

    /// A channel closed when the context is done (Go's `ctx.Done()`): wait
    /// on it with `recv` or in `select!` as `recv(ctx.done()) -> _ => ...`.
    /// Nothing is ever sent on it; a receive returns `Err(RecvError)` once
    /// the context is done.
    pub fn done(&self) -> &Receiver<()> {
        &self.node.done_rx
    }

    /// Why the context is done, or `None` while it is not (Go's
    /// `ctx.Err()`). Reports `DeadlineExceeded` as soon as the deadline has
    /// passed, even if the coroutine asking holds the worker whose timer
    /// would have said so.
    pub fn err(&self) -> Option<ContextError> {
        let err = self.node.state.lock().err;
        if err.is_none() && self.node.deadline.is_some_and(|d| Instant::now() >= d) {
            cancel(&self.node, ContextError::DeadlineExceeded);
            return self.node.state.lock().err;
        }
        err
    }

    /// Whether the context is done: `err().is_some()`.
    pub fn is_done(&self) -> bool {
        self.err().is_some()
    }

    /// The instant the context will be done by, if any: the earliest
    /// deadline of it and its ancestors (Go's `ctx.Deadline()`).
    pub fn deadline(&self) -> Option<Instant> {
        self.node.deadline
    }

    /// Wakes `waiter` once when the context is done, unless the returned
    /// watch was dropped first. Registers nothing for a context that is
    /// already done (`err` says so) or can never be (background).
    pub(crate) fn watch(&self, waiter: Waiter) -> Watch<'_> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        if self.node.parent.is_some() {
            let mut st = self.node.state.lock();
            if st.err.is_none() {
                st.watchers.insert(id, waiter);
            }
        }
        Watch {
            node: &self.node,
            id,
        }
    }
}

/// A waiter registered by `Context::watch`; dropping it unregisters it.
pub(crate) struct Watch<'a> {
    /// The watched context's node.
    node: &'a Node,
    /// The waiter's key in `node`'s `watchers`, if it is still there.
    id: u64,
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        self.node.state.lock().watchers.remove(&self.id);
    }
}

impl Default for Context {
    /// `Context::background()`.
    fn default() -> Context {
        Context::background()
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("deadline", &self.node.deadline)
            .field("err", &self.node.state.lock().err)
            .finish_non_exhaustive()
    }
}

impl CancelFunc {
    /// Cancels the context with `ContextError::Cancelled`, unless it is
    /// already done; its descendants too. Its parent is unaffected.
    pub fn cancel(&self) {
        if let Some(node) = self.node.upgrade() {
            cancel(&node, ContextError::Cancelled);
        }
    }
}

impl fmt::Debug for CancelFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelFunc").finish_non_exhaustive()
    }
}

/// A child of `parent` that is done when `parent` is or when cancelled (Go's
/// `context.WithCancel`).
///
/// ```
/// use goro::context::{self, Context, ContextError};
///
/// let (parent, cancel_parent) = context::with_cancel(&Context::background());
/// let (child, cancel_child) = context::with_cancel(&parent);
/// cancel_child.cancel();
/// assert_eq!(child.err(), Some(ContextError::Cancelled));
/// assert_eq!(parent.err(), None, "a child does not cancel its parent");
///
/// let (child, _cancel) = context::with_cancel(&parent);
/// cancel_parent.cancel();
/// assert_eq!(child.err(), Some(ContextError::Cancelled));
/// assert!(child.done().recv().is_err(), "done is closed");
/// ```
pub fn with_cancel(parent: &Context) -> (Context, CancelFunc) {
    derive(parent, parent.node.deadline)
}

/// A child of `parent` that is also done, with `DeadlineExceeded`, at
/// `deadline` (Go's `context.WithDeadline`). Its `deadline()` is the earlier
/// of `deadline` and the parent's.
///
/// ```
/// use goro::context::{self, Context, ContextError};
/// use std::time::{Duration, Instant};
///
/// goro::run(|| {
///     let deadline = Instant::now() + Duration::from_millis(10);
///     let (ctx, _cancel) = context::with_deadline(&Context::background(), deadline);
///     assert_eq!(ctx.deadline(), Some(deadline));
///     assert!(ctx.done().recv().is_err());
///     assert!(Instant::now() >= deadline);
///     assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
/// });
/// ```
pub fn with_deadline(parent: &Context, deadline: Instant) -> (Context, CancelFunc) {
    if parent.node.deadline.is_some_and(|d| d <= deadline) {
        // The parent's deadline comes first and will cancel the child.
        return with_cancel(parent);
    }
    let (ctx, cancel_fn) = derive(parent, Some(deadline));
    if Instant::now() >= deadline {
        cancel(&ctx.node, ContextError::DeadlineExceeded);
    } else if ctx.node.state.lock().err.is_none() {
        let node = Arc::downgrade(&ctx.node);
        call_at(
            deadline,
            Box::new(move || {
                if let Some(node) = node.upgrade() {
                    cancel(&node, ContextError::DeadlineExceeded);
                }
            }),
        );
    }
    (ctx, cancel_fn)
}

/// `with_deadline(parent, now + timeout)` (Go's `context.WithTimeout`).
///
/// ```
/// use goro::context::{self, Context, ContextError};
/// use std::time::Duration;
///
/// goro::run(|| {
///     let (ctx, _cancel) = context::with_timeout(&Context::background(), Duration::from_millis(10));
///     goro::select! {
///         recv(ctx.done()) -> _ => assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded)),
///         timeout(Duration::from_secs(60)) => panic!("the deadline never came"),
///     }
/// });
/// ```
pub fn with_timeout(parent: &Context, timeout: Duration) -> (Context, CancelFunc) {
    with_deadline(parent, deadline_after(timeout))
}

/// A new child of `parent` with deadline `deadline`, registered with the
/// parent, or born cancelled if the parent is done.
fn derive(parent: &Context, deadline: Option<Instant>) -> (Context, CancelFunc) {
    let (done_tx, done_rx) = chan(0);
    let node = Arc::new(Node {
        parent: Some(parent.node.clone()),
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        deadline,
        done_tx,
        done_rx,
        state: SpinLock::new(State::default()),
    });
    // Background is never done: its children need not register.
    if parent.node.parent.is_some() {
        let mut parent_st = parent.node.state.lock();
        match parent_st.err {
            Some(err) => {
                drop(parent_st);
                cancel(&node, err);
            }
            None => {
                parent_st.children.insert(node.id, Arc::downgrade(&node));
                node.state.lock().registered = true;
            }
        }
    }
    let cancel_fn = CancelFunc {
        node: Arc::downgrade(&node),
    };
    (Context { node }, cancel_fn)
}

/// Cancels `node` and its descendants with `err`, unless it is done.
fn cancel(node: &Arc<Node>, err: ContextError) {
    let Some((registered, mut pending)) = mark_done(node, err) else {
        return;
    };
    if registered {
        if let Some(parent) = &node.parent {
            parent.state.lock().children.remove(&node.id);
        }
    }
    // Descendants are taken out of their parents' tables as they are marked:
    // none needs to unregister.
    while let Some(child) = pending.pop() {
        if let Some((_, grandchildren)) = mark_done(&child, err) {
            pending.extend(grandchildren);
        }
    }
}

/// Sets `node`'s error and closes its channel, unless it is done. Returns
/// whether it was registered with its parent (it no longer is, as far as it
/// knows) and its children, alive, no longer registered with it.
fn mark_done(node: &Node, err: ContextError) -> Option<(bool, Vec<Arc<Node>>)> {
    let (registered, children, watchers) = {
        let mut st = node.state.lock();
        if st.err.is_some() {
            return None;
        }
        st.err = Some(err);
        (
            std::mem::replace(&mut st.registered, false),
            std::mem::take(&mut st.children),
            std::mem::take(&mut st.watchers),
        )
    };
    node.done_tx.close();
    for waiter in watchers.values() {
        waiter.wake_by_ref();
    }
    Some((
        registered,
        children.into_values().filter_map(|w| w.upgrade()).collect(),
    ))
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.state.lock().registered {
            if let Some(parent) = &self.parent {
                parent.state.lock().children.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn children(ctx: &Context) -> usize {
        ctx.node.state.lock().children.len()
    }

    #[test]
    fn children_cancelled_or_dropped_leave_the_parent() {
        let (parent, _cancel) = with_cancel(&Context::background());
        for _ in 0..10_000 {
            let (child, cancel) = with_cancel(&parent);
            cancel.cancel();
            assert!(child.is_done());
        }
        assert_eq!(children(&parent), 0, "cancelled children unregister");
        for _ in 0..10_000 {
            let (_child, _cancel) = with_cancel(&parent);
        }
        assert_eq!(children(&parent), 0, "dropped children unregister");
        for _ in 0..1000 {
            let (_child, _cancel) = with_timeout(&parent, Duration::from_secs(3600));
        }
        assert_eq!(children(&parent), 0, "so do children with deadlines");
        let kept: Vec<_> = (0..10).map(|_| with_cancel(&parent)).collect();
        assert_eq!(children(&parent), 10, "live children are registered");
        drop(kept);
        assert_eq!(children(&parent), 0);
    }

    #[test]
    fn a_cancelled_tree_is_emptied() {
        let (root, cancel) = with_cancel(&Context::background());
        let (child, _c) = with_cancel(&root);
        let (grandchild, _g) = with_cancel(&child);
        cancel.cancel();
        assert_eq!(children(&root), 0);
        assert_eq!(children(&child), 0);
        assert_eq!(grandchild.err(), Some(ContextError::Cancelled));
    }

    #[test]
    fn a_pending_deadline_does_not_keep_its_context() {
        let (ctx, _cancel) = with_timeout(&Context::background(), Duration::from_secs(3600));
        let node = Arc::downgrade(&ctx.node);
        drop(ctx);
        assert!(node.upgrade().is_none());
    }

    fn watchers(ctx: &Context) -> usize {
        ctx.node.state.lock().watchers.len()
    }

    #[test]
    fn watches_unregister_when_dropped_or_done() {
        let (ctx, cancel) = with_cancel(&Context::background());
        for _ in 0..1000 {
            let _watch = ctx.watch(Waiter::current());
            assert_eq!(watchers(&ctx), 1);
        }
        assert_eq!(watchers(&ctx), 0, "dropped watches unregister");
        let _kept = ctx.watch(Waiter::current());
        cancel.cancel();
        assert_eq!(watchers(&ctx), 0, "cancelling takes every watch");
        let _late = ctx.watch(Waiter::current());
        assert_eq!(watchers(&ctx), 0, "a done context registers none");
        let bg = Context::background();
        let _never = bg.watch(Waiter::current());
        assert_eq!(watchers(&bg), 0, "background is never done");
    }

    #[test]
    fn background_keeps_no_children() {
        let bg = Context::background();
        let _kept: Vec<_> = (0..10).map(|_| with_cancel(&bg)).collect();
        assert_eq!(children(&bg), 0);
    }
}
