//! Cancellation, deadlines and request-scoped values across coroutines
//! (Go's `context`).
//!
//! A `Context` says when the work it is handed to should stop: when someone
//! cancels it, when its deadline passes, or when its parent is done; and
//! it carries values for that work (a request id, a user). Contexts form a
//! tree rooted at `Context::background()`, which is never done. From a
//! parent:
//! - `with_cancel`, `with_timeout` and `with_deadline` derive a child and
//!   return it with the `CancelFunc` that cancels it (and only it, and its
//!   descendants); `with_cancel_cause`, `with_timeout_cause` and
//!   `with_deadline_cause` also say why, which `Context::cause` reports;
//! - `with_value` derives a child carrying a value, found by type with
//!   `Context::value`;
//! - `without_cancel` derives a child that keeps the values but is never
//!   done.
//!
//! `after_func` runs a function in a new coroutine once a context is done.
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
//! A context is two chains: a node for cancellation, and a list of values.
//! `with_value` makes no node: it shares its parent's. `without_cancel`
//! makes one with no parent, never done like background's, that holds the
//! context it came from. Each node and each value records the step that
//! made it and the context it was taken from, so that `Display` can print
//! the steps in order, as Go's `String` does.
//!
//! Each node is behind an `Arc`; clones share it. A node holds its parent
//! strongly (the chain up must outlive it) and is held by its parent only
//! weakly, in the parent's `children` table, so that a child dropped
//! without being cancelled frees itself; its `Drop` then removes its entry.
//! A child cancelled on its own removes its entry too, so short-lived
//! children of a long-lived parent do not pile up in it. A node with
//! functions from `after_func` waiting also holds itself, until it is done
//! or they are stopped, since they must run even if nobody else holds it.
//!
//! Being done is a channel that is closed, never sent on: every receive
//! from a closed channel, in any number of coroutines and `select!`s, sees
//! it at once. Cancelling sets the error and cause under the node's lock,
//! takes its children and waiting functions, releases the lock, closes the
//! channel, spawns the functions and cancels the children with the same
//! error and cause, iteratively (no recursion, however deep the tree). No
//! two node locks are held together, except a parent's over its new
//! child's while registering it, which nobody else can yet reach.
//!
//! A deadline is a timer (`runtime::timer::call_at`) holding the node
//! weakly, so a dropped context is not kept alive by its deadline.
//! Because timers fire between coroutines, a coroutine computing without
//! blocking delays its worker's timers; `err` and `is_done` therefore also
//! compare the deadline with the clock themselves, and if it has passed,
//! cancel the node that set it, as its timer would.

use std::any::Any;
use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use crate::chan::{Receiver, Sender, chan};
use crate::runtime::park::spin::SpinLock;
use crate::runtime::time::timer::{CallbackTimer, call_at};
use crate::time::deadline_after;
use crate::time::format::{go_duration, go_utc};

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

/// Why a context is done, in the words of whoever ended it.
type Cause = Arc<dyn Error + Send + Sync>;

/// Carries cancellation, a deadline and values to the work it is passed to
/// (Go's `context.Context`). Cloning is cheap and shares the context.
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
    /// Cancellation: shared by the clones of this context, and by the
    /// contexts `with_value` derived from it; background's for
    /// `without_cancel`.
    node: Arc<Node>,
    /// The values of this context and its ancestors, nearest first.
    values: Values,
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

/// As `CancelFunc`, with a cause (Go's `context.CancelCauseFunc`).
#[derive(Clone)]
pub struct CancelCauseFunc {
    /// As `CancelFunc::node`.
    node: Weak<Node>,
}

/// A function `after_func` registered on a context (Go's `stop` function
/// returned by `context.AfterFunc`). Dropping it does not stop the call.
pub struct AfterFunc {
    /// The context's node. While the function waits, the node holds itself,
    /// so this upgrades; once it fails, the function was spawned. Dangling
    /// for a context that is never done, which keeps no function.
    node: Weak<Node>,
    /// The function's key in the node's `after_funcs`.
    id: u64,
    /// For a context that is never done: whether `stop` has yet to be
    /// called (the function, dropped at once, could not have run anyway).
    never_stopped: AtomicBool,
}

/// The values of a context, nearest first.
type Values = Option<Arc<Value<dyn Any + Send + Sync>>>;

/// One value attached by `with_value`.
struct Value<V: ?Sized> {
    /// The values of the context it was attached to.
    parent: Values,
    /// The id of the node of the context it was attached to: a context
    /// whose node has this id and whose nearest value is this one was made
    /// by `with_value` (for `Display`).
    node_id: u64,
    /// The value's type, which is its key, for `Display`.
    type_name: &'static str,
    /// Found by its type.
    value: V,
}

/// How a node was made, for `Display` (Go's `String`): the step that made
/// it, and the context that step was taken from.
enum Origin {
    /// `Context::background()`.
    Background,
    /// `with_cancel`, `with_cancel_cause`, or a deadline no earlier than
    /// the parent's: a child of `Node::parent`, whose context had these
    /// values.
    Cancel(Values),
    /// `with_deadline` and the like, with `Node::deadline` its own; the
    /// values are its parent context's, as for `Cancel`.
    Deadline(Values),
    /// `without_cancel` of this context.
    WithoutCancel(Context),
}

struct Node {
    /// The context this one derives from; `None` only for background. Held
    /// strongly: cancellation flows down through it.
    parent: Option<Arc<Node>>,
    /// Unique: this node's key in its parent's `children`.
    id: u64,
    /// The earliest deadline of this node and its ancestors. The node set it
    /// itself (and has its timer) iff it differs from its parent's.
    deadline: Option<Instant>,
    /// The cause to cancel with when this node's own deadline passes, if
    /// given (`with_deadline_cause`); `None` otherwise.
    deadline_cause: Option<Cause>,
    /// How it was made, for `Display`.
    origin: Origin,
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
    /// The cause given with the cancellation, or inherited from the parent
    /// it came from; set with `err`, `None` if none was given.
    cause: Option<Cause>,
    /// Descendants to cancel with this node, by id: derived contexts not
    /// yet cancelled or dropped. Empty once `err` is set.
    children: HashMap<u64, Weak<Node>>,
    /// Whether this node is in its parent's `children`.
    registered: bool,
    /// Functions to spawn when the context is done (`after_func`), by id:
    /// not yet spawned or stopped. Empty once `err` is set.
    after_funcs: HashMap<u64, Box<dyn FnOnce() + Send>>,
    /// This node itself, exactly while `after_funcs` is not empty: they
    /// must run when it is done, even if nothing else holds it.
    keep_alive: Option<Arc<Node>>,
    /// The timer that expires this node at its deadline, while it may still
    /// fire; cancelled once the node is done or dropped, so that a context
    /// cancelled early (a request that finished) frees its heap entry at
    /// once instead of at the deadline.
    deadline_timer: Option<CallbackTimer>,
}

/// Node and function ids; 0 is background's.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Context {
    /// The root of every context tree: never cancelled, no deadline, no
    /// values (Go's `context.Background()`). Its `done` channel never
    /// closes.
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
                        deadline_cause: None,
                        origin: Origin::Background,
                        done_tx,
                        done_rx,
                        state: SpinLock::new(State::default()),
                    }),
                    values: None,
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
        if err.is_none() && self.node.deadline.is_some_and(|d| crate::time::now() >= d) {
            expire(&self.node);
            return self.node.state.lock().err;
        }
        err
    }

    /// Whether the context is done: `err().is_some()`.
    pub fn is_done(&self) -> bool {
        self.err().is_some()
    }

    /// Why the context is done, in more detail than `err` (Go's
    /// `context.Cause`): the cause given to `CancelCauseFunc::cancel` or
    /// `with_deadline_cause`, by this context or by the ancestor whose
    /// cancellation reached it; otherwise the `ContextError` that `err`
    /// gives. `None` while the context is not done.
    ///
    /// ```
    /// use goro::context::{self, Context, ContextError};
    ///
    /// #[derive(Debug)]
    /// struct Shutdown;
    /// impl std::fmt::Display for Shutdown {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         f.write_str("server shutting down")
    ///     }
    /// }
    /// impl std::error::Error for Shutdown {}
    ///
    /// let (server, cancel) = context::with_cancel_cause(&Context::background());
    /// let (request, _cancel) = context::with_cancel(&server);
    /// assert!(request.cause().is_none());
    /// cancel.cancel(Shutdown);
    /// assert_eq!(request.err(), Some(ContextError::Cancelled));
    /// let cause = request.cause().unwrap();
    /// assert!(cause.downcast_ref::<Shutdown>().is_some());
    ///
    /// // Without a cause, the cause is the error.
    /// let (ctx, cancel) = context::with_cancel(&Context::background());
    /// cancel.cancel();
    /// assert_eq!(ctx.cause().unwrap().to_string(), "context canceled");
    /// ```
    pub fn cause(&self) -> Option<Arc<dyn Error + Send + Sync>> {
        let err = self.err()?;
        let cause = self.node.state.lock().cause.clone();
        Some(cause.unwrap_or_else(|| Arc::new(err)))
    }

    /// The instant the context will be done by, if any: the earliest
    /// deadline of it and its ancestors (Go's `ctx.Deadline()`).
    pub fn deadline(&self) -> Option<Instant> {
        self.node.deadline
    }

    /// The value of type `T` attached to this context, or to its nearest
    /// ancestor that has one (Go's `ctx.Value(key)`, keyed by type): see
    /// `with_value`.
    pub fn value<T: Any>(&self) -> Option<&T> {
        let mut link = self.values.as_deref();
        while let Some(v) = link {
            if let Some(value) = v.value.downcast_ref::<T>() {
                return Some(value);
            }
            link = v.parent.as_deref();
        }
        None
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

/// How the context was made, as Go's `String` prints it:
/// `context.Background.WithCancel.WithValue(app::RequestId, app::RequestId)`.
///
/// Each step that derived it is named from background on: `WithCancel`
/// (also for `with_cancel_cause`, and for a deadline no earlier than the
/// parent's, as in Go), `WithDeadline(TIME [LEFT])` for `with_deadline`
/// and `with_timeout` (the deadline as a UTC time and the time left, in
/// Go's formats), `WithValue(KEY, VALUE)` and `WithoutCancel`. A value's
/// key is its type's name; the value prints as itself if it is a `String`
/// or `&str`, else as its type's name, as Go prints a value that is not a
/// `Stringer`.
///
/// ```
/// use goro::context::{self, Context};
///
/// let (ctx, _cancel) = context::with_cancel(&Context::background());
/// let ctx = context::with_value(&ctx, "request 7");
/// assert_eq!(ctx.to_string(), "context.Background.WithCancel.WithValue(&str, request 7)");
/// ```
impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_steps(&self.node, self.values.as_ref(), f)
    }
}

/// Writes the steps that made the context of `node` and `values`.
fn write_steps(
    node: &Node,
    values: Option<&Arc<Value<dyn Any + Send + Sync>>>,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    if let Some(v) = values
        && v.node_id == node.id
    {
        write_steps(node, v.parent.as_ref(), f)?;
        let value = (v.value.downcast_ref::<String>().map(String::as_str))
            .or_else(|| v.value.downcast_ref::<&str>().copied())
            .unwrap_or(v.type_name);
        return write!(f, ".WithValue({}, {value})", v.type_name);
    }
    match (&node.origin, &node.parent) {
        (Origin::Cancel(values), Some(parent)) => {
            write_steps(parent, values.as_ref(), f)?;
            f.write_str(".WithCancel")
        }
        (Origin::Deadline(values), Some(parent)) => {
            write_steps(parent, values.as_ref(), f)?;
            let Some(deadline) = node.deadline else {
                return f.write_str(".WithDeadline");
            };
            // The deadline is an `Instant`: on the wall clock, it is as far
            // from now as it is on the caller's clock (virtual in a bubble).
            let (now, wall_now) = (crate::time::now(), SystemTime::now());
            let (left, wall) = match deadline.checked_duration_since(now) {
                Some(d) => (d.as_nanos() as i128, wall_now.checked_add(d)),
                None => {
                    let d = now.duration_since(deadline);
                    (-(d.as_nanos() as i128), wall_now.checked_sub(d))
                }
            };
            write!(
                f,
                ".WithDeadline({} [{}])",
                go_utc(wall.unwrap_or(wall_now)),
                go_duration(left)
            )
        }
        (Origin::WithoutCancel(from), _) => {
            write_steps(&from.node, from.values.as_ref(), f)?;
            f.write_str(".WithoutCancel")
        }
        _ => f.write_str("context.Background"),
    }
}

impl CancelFunc {
    /// Cancels the context with `ContextError::Cancelled`, unless it is
    /// already done; its descendants too. Its parent is unaffected.
    pub fn cancel(&self) {
        if let Some(node) = self.node.upgrade() {
            cancel(&node, ContextError::Cancelled, None);
        }
    }
}

impl fmt::Debug for CancelFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelFunc").finish_non_exhaustive()
    }
}

impl CancelCauseFunc {
    /// Cancels the context with `ContextError::Cancelled` and `cause`
    /// (any error, or a message), unless it is already done; its
    /// descendants too, with the same cause. Its parent is unaffected.
    pub fn cancel(&self, cause: impl Into<Box<dyn Error + Send + Sync>>) {
        if let Some(node) = self.node.upgrade() {
            cancel(
                &node,
                ContextError::Cancelled,
                Some(Arc::from(cause.into())),
            );
        }
    }
}

impl CancelCauseFunc {
    /// Cancels as `CancelFunc::cancel` does, with no cause (Go's
    /// `cancel(nil)`): `Context::cause` then reports the error.
    pub(crate) fn cancel_plain(&self) {
        if let Some(node) = self.node.upgrade() {
            cancel(&node, ContextError::Cancelled, None);
        }
    }
}

impl fmt::Debug for CancelCauseFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelCauseFunc").finish_non_exhaustive()
    }
}

impl AfterFunc {
    /// Unregisters the function: true if this stopped it from running,
    /// false if it was already spawned (the context is done) or stopped.
    pub fn stop(&self) -> bool {
        let Some(node) = self.node.upgrade() else {
            return self.never_stopped.swap(false, Ordering::Relaxed);
        };
        let (f, keep_alive) = {
            let mut st = node.state.lock();
            let f = st.after_funcs.remove(&self.id);
            let keep_alive = if st.after_funcs.is_empty() {
                st.keep_alive.take()
            } else {
                None
            };
            (f, keep_alive)
        };
        // Dropped unlocked: their captures may be contexts of this tree,
        // whose drops lock nodes.
        drop(keep_alive);
        f.is_some()
    }
}

impl fmt::Debug for AfterFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AfterFunc").finish_non_exhaustive()
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
    derive(parent, parent.node.deadline, None)
}

/// As `with_cancel`, but the cancel function takes a cause, which
/// `Context::cause` then reports, on the child and its descendants (Go's
/// `context.WithCancelCause`).
///
/// ```
/// use goro::context::{self, Context, ContextError};
///
/// let (ctx, cancel) = context::with_cancel_cause(&Context::background());
/// cancel.cancel("the client went away");
/// assert_eq!(ctx.err(), Some(ContextError::Cancelled));
/// assert_eq!(ctx.cause().unwrap().to_string(), "the client went away");
/// ```
pub fn with_cancel_cause(parent: &Context) -> (Context, CancelCauseFunc) {
    let (ctx, cancel) = with_cancel(parent);
    (ctx, CancelCauseFunc { node: cancel.node })
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
    deadline_child(parent, deadline, None)
}

/// As `with_deadline`, but when `deadline` passes, `Context::cause` reports
/// `cause` (Go's `context.WithDeadlineCause`). The `CancelFunc` cancels
/// with no cause; if the parent's deadline comes first, the parent's cause
/// applies.
///
/// ```
/// use goro::context::{self, Context, ContextError};
/// use std::time::Instant;
///
/// let (ctx, _cancel) =
///     context::with_deadline_cause(&Context::background(), Instant::now(), "too slow");
/// assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
/// assert_eq!(ctx.cause().unwrap().to_string(), "too slow");
/// ```
pub fn with_deadline_cause(
    parent: &Context,
    deadline: Instant,
    cause: impl Into<Box<dyn Error + Send + Sync>>,
) -> (Context, CancelFunc) {
    deadline_child(parent, deadline, Some(Arc::from(cause.into())))
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

/// `with_deadline_cause(parent, now + timeout, cause)` (Go's
/// `context.WithTimeoutCause`).
///
/// ```
/// use goro::context::{self, Context};
/// use std::time::Duration;
///
/// goro::run(|| {
///     let (ctx, _cancel) = context::with_timeout_cause(
///         &Context::background(),
///         Duration::from_millis(10),
///         "the backend took over 10 ms",
///     );
///     assert!(ctx.done().recv().is_err());
///     assert_eq!(ctx.cause().unwrap().to_string(), "the backend took over 10 ms");
/// });
/// ```
pub fn with_timeout_cause(
    parent: &Context,
    timeout: Duration,
    cause: impl Into<Box<dyn Error + Send + Sync>>,
) -> (Context, CancelFunc) {
    with_deadline_cause(parent, deadline_after(timeout), cause)
}

/// A child of `parent` carrying `value`, which `Context::value::<T>()`
/// finds on it and its descendants (Go's `context.WithValue`). Values are
/// keyed by type, so give each its own (a newtype such as `struct
/// RequestId(u64)`); a nearer `T` hides a farther one. The child is done
/// exactly when `parent` is.
///
/// ```
/// use goro::context::{self, Context};
///
/// #[derive(Debug, PartialEq)]
/// struct RequestId(u64);
/// #[derive(Debug, PartialEq)]
/// struct User(&'static str);
///
/// let ctx = context::with_value(&Context::background(), RequestId(7));
/// let ctx = context::with_value(&ctx, User("ann"));
/// let (child, _cancel) = context::with_cancel(&ctx);
/// assert_eq!(child.value::<RequestId>(), Some(&RequestId(7)));
/// assert_eq!(child.value::<User>(), Some(&User("ann")));
/// assert_eq!(Context::background().value::<User>(), None);
///
/// let inner = context::with_value(&child, User("bob"));
/// assert_eq!(inner.value::<User>(), Some(&User("bob")), "the nearest wins");
/// ```
pub fn with_value<T: Any + Send + Sync>(parent: &Context, value: T) -> Context {
    let link: Arc<Value<dyn Any + Send + Sync>> = Arc::new(Value {
        parent: parent.values.clone(),
        node_id: parent.node.id,
        type_name: std::any::type_name::<T>(),
        value,
    });
    Context {
        node: parent.node.clone(),
        values: Some(link),
    }
}

/// A child of `parent` with its values, but never done and with no
/// deadline, whatever happens to `parent` (Go's `context.WithoutCancel`):
/// for work that must finish, such as a cleanup, yet wants the request's
/// values.
///
/// ```
/// use goro::context::{self, Context};
///
/// struct RequestId(u64);
///
/// let ctx = context::with_value(&Context::background(), RequestId(7));
/// let (ctx, cancel) = context::with_cancel(&ctx);
/// let detached = context::without_cancel(&ctx);
/// cancel.cancel();
/// assert!(ctx.is_done());
/// assert!(!detached.is_done());
/// assert_eq!(detached.deadline(), None);
/// assert_eq!(detached.value::<RequestId>().map(|id| id.0), Some(7));
/// ```
pub fn without_cancel(parent: &Context) -> Context {
    // A node of its own, never done like background's (no parent), so that
    // `Display` can name the step; it holds `parent`, as Go's does.
    let (done_tx, done_rx) = chan(0);
    Context {
        node: Arc::new(Node {
            parent: None,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            deadline: None,
            deadline_cause: None,
            origin: Origin::WithoutCancel(parent.clone()),
            done_tx,
            done_rx,
            state: SpinLock::new(State::default()),
        }),
        values: parent.values.clone(),
    }
}

/// Runs `f` in a new coroutine once `ctx` is done, or at once (in a new
/// coroutine) if it is done already (Go's `context.AfterFunc`). Each call
/// registers its own function. `AfterFunc::stop` unregisters it; until it
/// runs or is stopped, it keeps the context alive. On a context that is
/// never done (background, `without_cancel`), `f` never runs and is
/// dropped at once.
///
/// ```
/// use goro::context::{self, Context};
///
/// goro::run(|| {
///     let (ctx, cancel) = context::with_cancel(&Context::background());
///     let (tx, rx) = goro::chan::chan(1);
///     let _after = context::after_func(&ctx, move || tx.send("cleaned up").unwrap());
///     let stopped = context::after_func(&ctx, || unreachable!("stopped"));
///     assert!(stopped.stop(), "stopped before it ran");
///     cancel.cancel();
///     assert_eq!(rx.recv(), Ok("cleaned up"));
/// });
/// ```
pub fn after_func<F>(ctx: &Context, f: F) -> AfterFunc
where
    F: FnOnce() + Send + 'static,
{
    let node = &ctx.node;
    if node.parent.is_none() {
        // Background, or `without_cancel`'s: never done, so `f` would wait
        // for ever, kept with the process-wide background node (a leak per
        // call, e.g. per `block_on_context` on background).
        drop(f);
        return AfterFunc {
            node: Weak::new(),
            id: 0,
            never_stopped: AtomicBool::new(true),
        };
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut st = node.state.lock();
    if st.err.is_some() {
        drop(st);
        crate::spawn(f);
    } else {
        st.after_funcs.insert(id, Box::new(f));
        st.keep_alive.get_or_insert_with(|| node.clone());
    }
    AfterFunc {
        node: Arc::downgrade(node),
        id,
        never_stopped: AtomicBool::new(false),
    }
}

/// A child of `parent` done at `deadline` with `cause`, or a plain child if
/// the parent's deadline comes first.
fn deadline_child(
    parent: &Context,
    deadline: Instant,
    cause: Option<Cause>,
) -> (Context, CancelFunc) {
    if parent.node.deadline.is_some_and(|d| d <= deadline) {
        // The parent's deadline comes first and will cancel the child.
        return with_cancel(parent);
    }
    let (ctx, cancel_fn) = derive(parent, Some(deadline), cause);
    if crate::time::now() >= deadline {
        expire(&ctx.node);
    } else if ctx.node.state.lock().err.is_none() {
        let node = Arc::downgrade(&ctx.node);
        let timer = call_at(
            deadline,
            Box::new(move || {
                if let Some(node) = node.upgrade() {
                    expire(&node);
                }
            }),
        );
        let mut st = ctx.node.state.lock();
        if st.err.is_none() {
            st.deadline_timer = Some(timer);
        } else {
            drop(st);
            timer.cancel();
        }
    }
    (ctx, cancel_fn)
}

/// A new child of `parent` with deadline `deadline` (whose cause, if it is
/// its own, is `deadline_cause`), registered with the parent, or born
/// cancelled if the parent is done.
fn derive(
    parent: &Context,
    deadline: Option<Instant>,
    deadline_cause: Option<Cause>,
) -> (Context, CancelFunc) {
    let (done_tx, done_rx) = chan(0);
    let values = parent.values.clone();
    let origin = if deadline == parent.node.deadline {
        Origin::Cancel(values)
    } else {
        Origin::Deadline(values)
    };
    let node = Arc::new(Node {
        parent: Some(parent.node.clone()),
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        deadline,
        deadline_cause,
        origin,
        done_tx,
        done_rx,
        state: SpinLock::new(State::default()),
    });
    // Background is never done: its children need not register.
    if parent.node.parent.is_some() {
        let mut parent_st = parent.node.state.lock();
        match parent_st.err {
            Some(err) => {
                let cause = parent_st.cause.clone();
                drop(parent_st);
                cancel(&node, err, cause);
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
    (
        Context {
            node,
            values: parent.values.clone(),
        },
        cancel_fn,
    )
}

/// Cancels, as its timer does, the node that set `node`'s deadline (`node`
/// or an ancestor), and so `node`: the deadline has passed.
fn expire(node: &Arc<Node>) {
    let mut owner = node;
    while let Some(parent) = &owner.parent {
        if parent.deadline != owner.deadline {
            break;
        }
        owner = parent;
    }
    cancel(
        owner,
        ContextError::DeadlineExceeded,
        owner.deadline_cause.clone(),
    );
}

/// Cancels `node` and its descendants with `err` and `cause`, unless it is
/// done.
fn cancel(node: &Arc<Node>, err: ContextError, cause: Option<Cause>) {
    let Some((registered, mut pending)) = mark_done(node, err, &cause) else {
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
        if let Some((_, grandchildren)) = mark_done(&child, err, &cause) {
            pending.extend(grandchildren);
        }
    }
}

/// Sets `node`'s error and cause, closes its channel and spawns its
/// `after_func`s, unless it is done. Returns whether it was registered with
/// its parent (it no longer is, as far as it knows) and its children,
/// alive, no longer registered with it.
fn mark_done(
    node: &Node,
    err: ContextError,
    cause: &Option<Cause>,
) -> Option<(bool, Vec<Arc<Node>>)> {
    let (registered, children, funcs, keep_alive, timer) = {
        let mut st = node.state.lock();
        if st.err.is_some() {
            return None;
        }
        st.err = Some(err);
        st.cause.clone_from(cause);
        (
            std::mem::replace(&mut st.registered, false),
            std::mem::take(&mut st.children),
            std::mem::take(&mut st.after_funcs),
            st.keep_alive.take(),
            st.deadline_timer.take(),
        )
    };
    if let Some(t) = timer {
        t.cancel();
    }
    node.done_tx.close();
    for f in funcs.into_values() {
        crate::spawn(f);
    }
    // The caller holds the node too: this drop does not free it.
    drop(keep_alive);
    Some((
        registered,
        children.into_values().filter_map(|w| w.upgrade()).collect(),
    ))
}

impl Drop for Node {
    fn drop(&mut self) {
        let (timer, registered) = {
            let mut st = self.state.lock();
            (st.deadline_timer.take(), st.registered)
        };
        if let Some(t) = timer {
            t.cancel();
        }
        if registered {
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

    #[test]
    fn after_funcs_keep_their_context_only_while_they_wait() {
        let (ctx, _cancel) = with_cancel(&Context::background());
        let first = after_func(&ctx, || {});
        let second = after_func(&ctx, || {});
        let node = Arc::downgrade(&ctx.node);
        drop(ctx);
        assert!(node.upgrade().is_some(), "kept while they wait");
        assert!(first.stop());
        assert!(node.upgrade().is_some(), "one still waits");
        assert!(second.stop());
        assert!(node.upgrade().is_none(), "freed once none waits");

        let (ctx, cancel) = with_cancel(&Context::background());
        let _after = after_func(&ctx, || {});
        let node = Arc::downgrade(&ctx.node);
        drop(ctx);
        cancel.cancel();
        assert!(node.upgrade().is_none(), "freed once spawned");
    }

    #[test]
    fn background_keeps_no_children() {
        let bg = Context::background();
        let _kept: Vec<_> = (0..10).map(|_| with_cancel(&bg)).collect();
        assert_eq!(children(&bg), 0);
    }
}
