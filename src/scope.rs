//! Scoped coroutines: spawns that borrow the caller's locals
//! (`std::thread::scope`, for coroutines).
//!
//! # Why borrowing is sound
//!
//! A scoped coroutine's closure and result may borrow anything that lives
//! for `'env`, yet the runtime runs closures of type `'static`: `spawn`
//! erases the lifetime of one boxed closure. That is sound because nothing
//! the box owns is touched once `scope` has returned:
//!
//! - `scope` returns (or unwinds) only after `ScopeData::running` is back to
//!   zero. The caller's closure runs under `catch_unwind`, and the wait
//!   after it cannot unwind: every scoped coroutine is waited for, whatever
//!   the closure did.
//! - A child counts itself out in `Child::drop`, the last thing its box
//!   does: by then the user's closure has run and been consumed (or been
//!   dropped unrun, if the coroutine could not start), its result has been
//!   stored in the packet or dropped, and the child's reference to the
//!   packet is gone. After the count, the coroutine only returns into
//!   runtime code that owns no `'scope` data.
//! - A result left in the packet (a handle neither joined nor dropped, but
//!   leaked) is never dropped: leaking is safe. Handles cannot outlive
//!   `'scope`, so a handle that is dropped or joined is so before `scope`
//!   returns.
//! - Nothing else ends a coroutine early: goro never unwinds or frees a
//!   suspended coroutine's stack. Coroutines abandoned when `goro::run`'s
//!   closure returns stay parked on stacks that are never unmapped, so a
//!   scope waiting in one keeps its borrowed data alive while its children
//!   run, until the process exits and every thread stops at once.
//! - A child that has not started is a `Send` closure in a queue, and may
//!   move to any worker; once started it stays on its worker, as every
//!   coroutine does.
//!
//! `docs/design.md` ("Scoped coroutines") has the same argument.

use std::any::Any;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::runtime::Runtime;
use crate::runtime::diag::panic_hook::begin_short_backtrace;
use crate::runtime::task::header::Failure;
use crate::runtime::task::spawn::{Membership, spawn_in};
use crate::runtime::task::stack::checked_stack_size;
use crate::sync::WaitGroup;
use crate::{Coroutine, JoinError, JoinHandle};

/// Runs `f` with a scope in which coroutines can borrow the caller's
/// locals, and returns once every coroutine spawned in the scope has
/// finished (`std::thread::scope`, for coroutines).
///
/// Coroutines a scope spawns need not be `'static`: they may borrow
/// anything that outlives the scope. Those not joined by hand are joined
/// before `scope` returns, even if `f` panics. Called from a coroutine,
/// the wait parks it; from a plain thread, it blocks the thread (its
/// coroutines then start on the runtime's workers, which start if needed).
///
/// ```
/// let mut counts = [0u32; 4];
/// let text = "the quick brown fox";
/// goro::scope(|s| {
///     for (i, count) in counts.iter_mut().enumerate() {
///         s.spawn(move || *count = text.split(' ').nth(i).map_or(0, |w| w.len() as u32));
///     }
///     let longest = s.spawn(|| text.split(' ').map(str::len).max());
///     assert_eq!(longest.join().unwrap(), Some(5));
/// });
/// assert_eq!(counts, [3, 5, 5, 3]);
/// ```
///
/// What the scope's closure owns cannot be borrowed (the coroutines may
/// outlive the closure), and a handle cannot leave the scope:
///
/// ```compile_fail
/// goro::scope(|s| {
///     let local = 1;
///     s.spawn(|| local + 1);
/// });
/// ```
///
/// ```compile_fail
/// let mut escaped = None;
/// goro::scope(|s| escaped = Some(s.spawn(|| 1)));
/// ```
///
/// # Panics
/// If `f` panics, with its payload, once every coroutine has finished.
/// Otherwise, if a coroutine of the scope panicked (or could not start)
/// and its handle was dropped unjoined, with "a scoped coroutine
/// panicked". A coroutine whose handle is joined reports its panic to the
/// joiner instead.
#[track_caller]
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        data: Arc::new(ScopeData {
            running: WaitGroup::new(),
            failed: AtomicBool::new(false),
        }),
        scope: PhantomData,
        env: PhantomData,
    };
    let result = panic::catch_unwind(AssertUnwindSafe(|| f(&scope)));
    // Once the closure has returned only running children can spawn, and
    // each adds to the count before it counts itself out: zero is final.
    while scope.data.running.count() != 0 {
        scope.data.running.wait();
    }
    match result {
        Err(payload) => panic::resume_unwind(payload),
        Ok(_) if scope.data.failed.load(Ordering::Acquire) => {
            panic!("a scoped coroutine panicked")
        }
        Ok(value) => value,
    }
}

/// A scope to spawn coroutines in, lent by `goro::scope` (std's
/// `thread::Scope`).
///
/// `'scope` is the life of the scope: its coroutines may not outlive it.
/// `'env` is the life of what they borrow, which outlives the scope.
pub struct Scope<'scope, 'env: 'scope> {
    /// What the scope's coroutines share with it.
    data: Arc<ScopeData>,
    /// Invariant in `'scope`, as std's, so that it cannot be shortened.
    scope: PhantomData<&'scope mut &'scope ()>,
    /// Invariant in `'env`, as std's.
    env: PhantomData<&'env mut &'env ()>,
}

/// The state a scope shares with its coroutines.
struct ScopeData {
    /// Children that have not finished with their closure yet: one added
    /// before each spawn, one taken away by the child's last act
    /// (`Child::drop`). `scope` returns only once it is zero.
    running: WaitGroup,
    /// Set when a child panicked (or could not start) and its handle was
    /// dropped without a join; set before that child is counted out.
    failed: AtomicBool,
}

impl<'scope> Scope<'scope, '_> {
    /// Spawns `f` as a coroutine of this scope; it may borrow anything that
    /// outlives the scope. The scope joins it if the handle does not.
    ///
    /// # Panics
    /// If the runtime has to start and cannot (as `goro::spawn`).
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let rt = Runtime::get();
        self.spawn_on(rt, None, rt.stack_size, Location::caller(), f)
    }

    fn spawn_on<F, T>(
        &'scope self,
        rt: &'static Runtime,
        name: Option<Arc<String>>,
        stack_size: usize,
        location: &'static Location<'static>,
        f: F,
    ) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let packet = Arc::new(Packet {
            slot: Mutex::new(Slot::Running),
        });
        // Counted before the child exists, so that it is waited for.
        self.data.running.add(1);
        let child = Child {
            f: Some(f),
            packet: Some(packet.clone()),
            scope: self.data.clone(),
        };
        let main: Box<dyn FnOnce() + Send + 'scope> = Box::new(move || child.run());
        // Only the lifetime changes. The box (the closure `f`, its result's
        // packet, and the count it takes away when dropped) is consumed or
        // dropped, and `Child::drop` counts it out as its last act, before
        // `scope` can return: `scope` waits for the count to be zero and
        // cannot unwind before (see the module's doc).
        // SAFETY: so nothing borrowed for `'scope` is used after `'scope`
        // ends (the argument just above).
        let main: Box<dyn FnOnce() + Send + 'static> = unsafe { mem::transmute(main) };
        let task = JoinHandle::from(spawn_in(
            rt,
            Membership::Spawners,
            name,
            stack_size,
            location,
            main,
        ));
        ScopedJoinHandle {
            inner: Some(Inner {
                task,
                packet,
                scope: self.data.clone(),
                _scope: PhantomData,
            }),
        }
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("running", &self.data.running.count())
            .field("failed", &self.data.failed.load(Ordering::Relaxed))
            .finish()
    }
}

impl crate::Builder {
    /// Spawns `f` in `scope` with these settings (std's
    /// `thread::Builder::spawn_scoped`).
    ///
    /// ```
    /// let name = String::from("parser");
    /// goro::scope(|s| {
    ///     let h = goro::Builder::new()
    ///         .name(name.as_str())
    ///         .spawn_scoped(s, || goro::current().unwrap().name().map(String::from))
    ///         .unwrap();
    ///     assert_eq!(h.join().unwrap().as_deref(), Some("parser"));
    /// });
    /// ```
    ///
    /// # Errors
    /// As `Builder::spawn`: `InvalidInput` for a bad stack size, or a
    /// runtime that cannot start.
    #[track_caller]
    pub fn spawn_scoped<'scope, F, T>(
        self,
        scope: &'scope Scope<'scope, '_>,
        f: F,
    ) -> io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let location = Location::caller();
        let (name, stack_size) = self.into_parts();
        let stack_size = stack_size.map(checked_stack_size).transpose()?;
        let rt = Runtime::get_or_start()?;
        Ok(scope.spawn_on(
            rt,
            name.map(Arc::new),
            stack_size.unwrap_or(rt.stack_size),
            location,
            f,
        ))
    }
}

/// A panic's payload.
type Payload = Box<dyn Any + Send>;

/// Where a child leaves its result for its handle.
struct Packet<T> {
    /// The handoff between the child and its handle; each side locks it
    /// once, and drops what it takes out of it unlocked.
    slot: Mutex<Slot<T>>,
}

/// The state of a child's result.
enum Slot<T> {
    /// The child has not finished, and the handle is alive.
    Running,
    /// The child finished with this; the handle has not taken it.
    Done(Result<T, Payload>),
    /// The child could not start; the handle has not seen it.
    NotStarted,
    /// The handle is gone (dropped, or joined and took the result).
    Released,
}

impl<T> Packet<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot<T>> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A scoped coroutine's closure and what it must do when it ends.
struct Child<F, T> {
    /// The user's closure; `None` once called.
    f: Option<F>,
    /// Where its result goes; `None` once handed over.
    packet: Option<Arc<Packet<T>>>,
    /// The scope, which this child counts itself out of when dropped.
    scope: Arc<ScopeData>,
}

impl<F, T> Child<F, T>
where
    F: FnOnce() -> T,
{
    /// Runs the closure and hands over its result; dropping `self` then
    /// counts the child out.
    fn run(mut self) {
        let Some(f) = self.f.take() else {
            return;
        };
        let result = panic::catch_unwind(AssertUnwindSafe(|| begin_short_backtrace(f)));
        if let Some(packet) = self.packet.take() {
            let unjoined = {
                let mut slot = packet.lock();
                match *slot {
                    Slot::Running => {
                        *slot = Slot::Done(result);
                        None
                    }
                    _ => Some(result),
                }
            };
            if let Some(result) = unjoined {
                // The handle is gone: nobody will look at the result.
                if drop_result(result) {
                    self.scope.failed.store(true, Ordering::Release);
                }
            }
        }
    }
}

impl<F, T> Drop for Child<F, T> {
    fn drop(&mut self) {
        if let Some(f) = self.f.take() {
            // Dropped unrun: the coroutine could not start. Its handle's
            // join says why; an unjoined one fails the scope.
            let dropped = panic::catch_unwind(AssertUnwindSafe(move || drop(f)));
            if let Err(payload) = dropped {
                mem::forget(payload);
            }
            if let Some(packet) = self.packet.take() {
                let released = {
                    let mut slot = packet.lock();
                    match *slot {
                        Slot::Released => true,
                        _ => {
                            *slot = Slot::NotStarted;
                            false
                        }
                    }
                };
                if released {
                    self.scope.failed.store(true, Ordering::Release);
                }
            }
        }
        drop(self.packet.take());
        // The last act: after this the scope may return, and what the
        // child borrowed may go.
        self.scope.running.done();
    }
}

/// Drops a result nobody joined; true if it was a failure (a panic, or a
/// `Drop` of the value that panicked).
fn drop_result<T>(result: Result<T, Payload>) -> bool {
    match result {
        Ok(value) => {
            let dropped = panic::catch_unwind(AssertUnwindSafe(move || drop(value)));
            match dropped {
                Ok(()) => false,
                Err(payload) => {
                    mem::forget(payload);
                    true
                }
            }
        }
        Err(payload) => {
            // A payload whose own `Drop` panics would unwind out of here:
            // leak it, as std leaks what it cannot drop during a panic.
            mem::forget(payload);
            true
        }
    }
}

/// An owned permission to join a scoped coroutine (std's
/// `ScopedJoinHandle`). Dropping it leaves the coroutine to the scope,
/// which joins it before returning.
pub struct ScopedJoinHandle<'scope, T> {
    /// `None` only inside `join`, once taken.
    inner: Option<Inner<'scope, T>>,
}

/// The parts of a `ScopedJoinHandle`.
struct Inner<'scope, T> {
    /// The coroutine, whose own output is `()`: it ends after the result is
    /// in `packet`.
    task: JoinHandle<()>,
    /// Where the result is.
    packet: Arc<Packet<T>>,
    /// The scope, told if this handle drops a failure unjoined.
    scope: Arc<ScopeData>,
    /// Ties the handle (and `T`) to the scope.
    _scope: PhantomData<&'scope ()>,
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the coroutine to finish and returns its result, or an
    /// error that shows its panic's message and holds the payload (as
    /// `JoinHandle::join`). A panic joined here does not fail the scope.
    ///
    /// # Errors
    /// A `JoinError` if the coroutine panicked or could not start.
    pub fn join(mut self) -> Result<T, JoinError> {
        let Some(inner) = self.inner.take() else {
            unreachable!("goro: a ScopedJoinHandle is joined once");
        };
        let coroutine = inner.task.coroutine();
        inner.task.join()?;
        // The coroutine finished, after its child left the result: take it.
        let slot = mem::replace(&mut *inner.packet.lock(), Slot::Released);
        match slot {
            Slot::Done(Ok(value)) => Ok(value),
            Slot::Done(Err(payload)) => Err(JoinError::new(coroutine, Failure::Panic(payload))),
            Slot::Running | Slot::NotStarted | Slot::Released => Err(JoinError::new(
                coroutine,
                Failure::Panic(Box::new("goro: coroutine finished without a result")),
            )),
        }
    }

    /// Whether the coroutine has finished (a `join` would not wait).
    pub fn is_finished(&self) -> bool {
        self.inner.as_ref().is_some_and(|i| i.task.is_finished())
    }

    /// The coroutine this handle joins.
    pub fn coroutine(&self) -> Coroutine {
        match &self.inner {
            Some(i) => i.task.coroutine(),
            None => unreachable!("goro: a ScopedJoinHandle is used after join"),
        }
    }
}

impl<T> Drop for ScopedJoinHandle<'_, T> {
    /// Leaves the coroutine to its scope. A result already there is dropped
    /// here; a failure makes the scope panic when it ends.
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let slot = mem::replace(&mut *inner.packet.lock(), Slot::Released);
        let failed = match slot {
            Slot::Done(result) => drop_result(result),
            Slot::NotStarted => true,
            Slot::Running | Slot::Released => false,
        };
        if failed {
            inner.scope.failed.store(true, Ordering::Release);
        }
    }
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedJoinHandle")
            .field("coroutine", &self.coroutine())
            .field("finished", &self.is_finished())
            .finish()
    }
}
