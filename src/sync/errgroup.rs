//! `ErrGroup`: coroutines working on parts of one task, the first error
//! ending it (Go's `golang.org/x/sync/errgroup`).

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Semaphore, WaitGroup};
use crate::context::{self, CancelCauseFunc, Context};

/// A group of coroutines working on subtasks of one task: `wait` waits for
/// all of them and returns the first error one returned (Go's
/// `errgroup.Group`).
///
/// Clones share one group, like a pointer to Go's `errgroup.Group`, so a
/// member can start more members.
///
/// ```
/// use goro::context::Context;
/// use goro::sync::ErrGroup;
///
/// goro::run(|| {
///     let (group, ctx) = ErrGroup::<String>::with_context(&Context::background());
///     group.set_limit(Some(2));
///     for name in ["a.txt", "b.txt", "broken.txt", "c.txt"] {
///         let ctx = ctx.clone();
///         group.go(move || {
///             if ctx.is_done() {
///                 return Ok(()); // another member failed: stop early
///             }
///             if name.starts_with("broken") {
///                 return Err(format!("cannot parse {name}"));
///             }
///             Ok(())
///         });
///     }
///     assert_eq!(group.wait(), Err("cannot parse broken.txt".to_string()));
///     assert!(ctx.is_done());
///     assert_eq!(ctx.cause().unwrap().to_string(), "cannot parse broken.txt");
/// });
/// ```
pub struct ErrGroup<E> {
    /// Shared by every clone.
    inner: Arc<Inner<E>>,
}

/// The state of a group.
struct Inner<E> {
    /// Members that have not finished.
    running: WaitGroup,
    /// The limit on running members and the semaphore that enforces it:
    /// each running member started under it holds one of its permits, and
    /// gives it back to that same semaphore when it finishes.
    limit: Mutex<Option<(usize, Arc<Semaphore>)>>,
    /// Set by the first member to fail (an error or a panic); later
    /// failures are dropped, as with Go's `errOnce`.
    failed: AtomicBool,
    /// The first error, until a `wait` takes it.
    error: Mutex<Option<E>>,
    /// The first panic's payload, until a `wait` resumes it.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// For a group from `with_context`: cancels its context.
    cancel: Option<Canceller<E>>,
}

/// Cancels the context of a group from `with_context`.
struct Canceller<E> {
    /// The context's cancel function.
    cancel: CancelCauseFunc,
    /// Makes a cause of an error (a clone of it).
    cause: fn(&E) -> Box<dyn Error + Send + Sync>,
}

/// Locks a group's mutex; members never panic while holding one, and what
/// they hold stays consistent if they did.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<E: Send + 'static> ErrGroup<E> {
    /// An empty group with no limit and no context (Go's zero `Group`).
    pub fn new() -> ErrGroup<E> {
        ErrGroup::build(None)
    }

    fn build(cancel: Option<Canceller<E>>) -> ErrGroup<E> {
        ErrGroup {
            inner: Arc::new(Inner {
                running: WaitGroup::new(),
                limit: Mutex::new(None),
                failed: AtomicBool::new(false),
                error: Mutex::new(None),
                panic: Mutex::new(None),
                cancel,
            }),
        }
    }

    /// Starts `f` in a new member coroutine. With a limit set and that many
    /// members running, first waits (parks, or blocks a plain thread)
    /// until one finishes.
    ///
    /// The first member to return an error (or to panic) fails the group:
    /// its context, if it has one, is cancelled at once; `wait` returns the
    /// error (or resumes the panic) once every member has finished. Later
    /// errors are dropped.
    #[track_caller]
    pub fn go<F>(&self, f: F)
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        let slot = lock(&self.inner.limit).as_ref().map(|(_, s)| s.clone());
        if let Some(sem) = &slot {
            sem.acquire().forget();
        }
        self.start(f, slot);
    }

    /// As `go`, but only if the group is under its limit; false (and `f`
    /// dropped, unrun) if it is at it (Go's `TryGo`).
    #[track_caller]
    pub fn try_go<F>(&self, f: F) -> bool
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        let slot = lock(&self.inner.limit).as_ref().map(|(_, s)| s.clone());
        if let Some(sem) = &slot {
            match sem.try_acquire() {
                Some(permit) => permit.forget(),
                None => return false,
            }
        }
        self.start(f, slot);
        true
    }

    /// Spawns member `f`, which holds a permit of `slot` if given.
    #[track_caller]
    fn start<F>(&self, f: F, slot: Option<Arc<Semaphore>>)
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        self.inner.running.add(1);
        let member = Member {
            group: self.inner.clone(),
            slot,
        };
        // The member catches its own panic, so the coroutine never ends in
        // one: detaching it is no unjoined panic.
        drop(crate::spawn(move || {
            let result = panic::catch_unwind(AssertUnwindSafe(f));
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => member.group.fail_with_error(e),
                Err(payload) => member.group.fail_with_panic(payload),
            }
            drop(member);
        }));
    }

    /// Limits the group to `limit` running members (`None`: no limit, the
    /// default). Go's `SetLimit`, where a negative limit means none; as
    /// there, a limit of `Some(0)` makes `go` wait for ever and `try_go`
    /// always fail.
    ///
    /// # Panics
    /// If members started under a previous limit are still running (Go
    /// panics the same way).
    #[track_caller]
    pub fn set_limit(&self, limit: Option<usize>) {
        let mut current = lock(&self.inner.limit);
        if let Some((n, sem)) = current.as_ref() {
            let active = n.saturating_sub(sem.available_permits());
            if active != 0 {
                panic!(
                    "errgroup: modify limit while {active} coroutines in the group are still active"
                );
            }
        }
        *current = limit.map(|n| (n, Arc::new(Semaphore::new(n))));
    }

    /// Waits until every member has finished, then returns the first
    /// error a member returned, and cancels the group's context (if it has
    /// one) whether or not there was an error (Go's `Wait`).
    ///
    /// The first error is handed out once: Go's `Wait` returns it to every
    /// caller, which here would need `E: Clone`; a later `wait` returns
    /// `Ok(())`.
    ///
    /// # Panics
    /// If a member panicked: with its payload (the first one's), once every
    /// member has finished.
    pub fn wait(&self) -> Result<(), E> {
        while self.inner.running.count() != 0 {
            self.inner.running.wait();
        }
        if let Some(c) = &self.inner.cancel {
            c.cancel.cancel_plain();
        }
        if let Some(payload) = lock(&self.inner.panic).take() {
            panic::resume_unwind(payload);
        }
        match lock(&self.inner.error).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl<E> ErrGroup<E>
where
    E: Clone + Into<Box<dyn Error + Send + Sync>> + Send + 'static,
{
    /// A new group and a context derived from `parent` that is cancelled
    /// when a member first fails, with that error as its cause (a clone of
    /// it), or when `wait` returns, whichever comes first (Go's
    /// `errgroup.WithContext`). Any error type that converts to a boxed
    /// error and clones will do: `String`, your own, `Arc<io::Error>`.
    pub fn with_context(parent: &Context) -> (ErrGroup<E>, Context) {
        let (ctx, cancel) = context::with_cancel_cause(parent);
        let group = ErrGroup::build(Some(Canceller {
            cancel,
            cause: |e: &E| e.clone().into(),
        }));
        (group, ctx)
    }
}

impl<E> Inner<E> {
    fn fail_with_error(&self, e: E) {
        if self.failed.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(c) = &self.cancel {
            c.cancel.cancel((c.cause)(&e));
        }
        *lock(&self.error) = Some(e);
    }

    fn fail_with_panic(&self, payload: Box<dyn Any + Send>) {
        if self.failed.swap(true, Ordering::AcqRel) {
            // Only the first failure is kept. A payload whose own `Drop`
            // panics would unwind out of the member: leak it.
            std::mem::forget(payload);
            return;
        }
        if let Some(c) = &self.cancel {
            let msg =
                crate::runtime::diag::panic_hook::message(&*payload).unwrap_or("Box<dyn Any>");
            c.cancel
                .cancel(format!("errgroup: a member of the group panicked: {msg}"));
        }
        *lock(&self.panic) = Some(payload);
    }
}

/// A running member's hold on its group: when dropped (the member's last
/// act, even if it panicked), gives back its permit, then counts it done.
struct Member<E> {
    /// The group it belongs to.
    group: Arc<Inner<E>>,
    /// The semaphore it holds a permit of, if the group had a limit when
    /// it started.
    slot: Option<Arc<Semaphore>>,
}

impl<E> Drop for Member<E> {
    fn drop(&mut self) {
        if let Some(sem) = self.slot.take() {
            sem.add_permits(1);
        }
        self.group.running.done();
    }
}

impl<E: Send + 'static> Default for ErrGroup<E> {
    fn default() -> ErrGroup<E> {
        ErrGroup::new()
    }
}

impl<E> Clone for ErrGroup<E> {
    fn clone(&self) -> ErrGroup<E> {
        ErrGroup {
            inner: self.inner.clone(),
        }
    }
}

impl<E> fmt::Debug for ErrGroup<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrGroup")
            .field("running", &self.inner.running.count())
            .field("limit", &lock(&self.inner.limit).as_ref().map(|(n, _)| *n))
            .field("failed", &self.inner.failed.load(Ordering::Relaxed))
            .finish()
    }
}
