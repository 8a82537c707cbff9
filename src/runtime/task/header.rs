//! A coroutine's shared half: who it is, whether it is parked, and how its
//! result reaches the joiner.
//!
//! The stack and the suspended machine state live elsewhere, in the owning
//! worker's thread-local table (`scheduler/worker.rs`): they are `!Send` and must never
//! cross threads. What is here is `Send + Sync` by construction: identity, a
//! few atomics, the closure before it runs and the output after it ran.

use std::alloc::Layout;
use std::any::Any;
use std::cell::UnsafeCell;
use std::io;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe, Location};
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use crate::runtime::diag::panic_hook::{self, begin_short_backtrace};
use crate::runtime::park::blocker::Blocker;
use crate::runtime::park::state::ParkState;
use crate::runtime::task::id::CoroutineId;
use crate::runtime::task::join::{Completed, Detached, JoinState};
use crate::runtime::time::bubble::Bubble;
use crate::runtime::{WaitReason, WaitingOn, scheduler::prefetch, task::alloc};

/// Closure bytes fetched ahead with a task's header: a typical closure
/// captures a few words.
const PREFETCHED_CLOSURE_BYTES: usize = 32;

/// `home` before the coroutine has started.
const UNSTARTED: u64 = u64::MAX;

/// The vtable of a header not yet placed in a cell; `TaskRef::new`
/// replaces it before anyone can call through it.
static PLACEHOLDER_VTABLE: Vtable = Vtable {
    run: |_| {},
    fail: |_, _| {},
    take_output: |_, _| {},
    destroy: |_| {},
};

/// The part of a coroutine every thread may see. Kept small: a spawn writes
/// it on one core and the coroutine's worker, often another, reads it.
pub(crate) struct Header {
    /// References (`TaskRef`s) to the task, the last of which frees it,
    /// and the handshake of its output with its `JoinHandle` (`join.rs`).
    join: JoinState,
    /// Operations for the cell's closure and output types.
    vtable: &'static Vtable,
    /// Unique for the life of the process; never reused.
    pub(crate) id: u64,
    /// Where `spawn`, `go!` or `Builder::spawn` was called.
    pub(crate) location: &'static Location<'static>,
    /// Whether it runs, is parked or was unparked early (`park/state.rs`).
    park: ParkState,
    /// Usable bytes of the stack the coroutine gets when it first runs
    /// (at most `stack::MAX_STACK_SIZE`, 1 GiB).
    stack_size: u32,
    /// `worker << 32 | slot` in the owner's table once started, `UNSTARTED`
    /// before. Written once, by the starting worker, before the coroutine
    /// first runs; read by wakers, who can only reach a started coroutine.
    home: AtomicU64,
    /// Sequence number of the timer armed by this coroutine's current timed
    /// park, 0 when none. The timer fires only if it still matches.
    pub(crate) timer_seq: AtomicU64,
    /// The joiner's blocker (on the joiner's stack); stored before
    /// JOIN_WAITING is set, and alive until the joiner sees it finished.
    join_waiter: AtomicPtr<Blocker>,
    /// What the coroutine is parked on, for `runtime::dump`, and, in a
    /// bubble, whether its park is durable. Set only by the coroutine
    /// itself, so it does not change while the coroutine is parked.
    pub(crate) wait: WaitReason,
    /// Its name and bubble, which few coroutines have: one pointer for
    /// both, because the header's size decides the task cell's size class
    /// (and so an idle coroutine's memory). `None` for almost every
    /// coroutine, whose park and unpark then take no other path than this
    /// test of it.
    extras: Option<Box<Extras>>,
}

// Every byte here is paid by every coroutine alive (a million idle ones pay
// 8 MB per 8 bytes, and a byte too many can move the cell up a size class):
// growing the header is a decision to make on purpose, with a measurement.
// (Loom's atomics are larger, so only real builds are held to it.)
#[cfg(not(loom))]
const _: () = assert!(size_of::<Header>() == 88);

/// The attributes of a coroutine that few have. At least one is set.
struct Extras {
    /// Set by `Builder::name`.
    name: Option<Arc<String>>,
    /// The bubble the coroutine belongs to (`time/bubble.rs`), for life.
    bubble: Option<Arc<Bubble>>,
}

impl Header {
    pub(crate) fn new(
        id: u64,
        name: Option<Arc<String>>,
        stack_size: usize,
        location: &'static Location<'static>,
        bubble: Option<Arc<Bubble>>,
    ) -> Header {
        Header {
            join: JoinState::new(1),
            vtable: &PLACEHOLDER_VTABLE,
            id,
            location,
            park: ParkState::new(),
            // checked_stack_size caps stacks at 1 GiB.
            stack_size: u32::try_from(stack_size).unwrap_or(u32::MAX),
            home: AtomicU64::new(UNSTARTED),
            timer_seq: AtomicU64::new(0),
            join_waiter: AtomicPtr::new(ptr::null_mut()),
            wait: WaitReason::new(),
            extras: (name.is_some() || bubble.is_some()).then(|| Box::new(Extras { name, bubble })),
        }
    }

    /// Usable bytes of the coroutine's stack.
    pub(crate) fn stack_size(&self) -> usize {
        self.stack_size as usize
    }

    /// The name to print: the given one or `<unnamed>`, as std does.
    pub(crate) fn display_name(&self) -> &str {
        self.name().map_or("<unnamed>", |n| n.as_str())
    }

    /// Set by `Builder::name`; `None` prints as `<unnamed>`.
    pub(crate) fn name(&self) -> Option<&Arc<String>> {
        self.extras.as_ref()?.name.as_ref()
    }

    /// The bubble the coroutine belongs to, for life.
    #[inline]
    pub(crate) fn bubble(&self) -> Option<&Arc<Bubble>> {
        self.extras.as_ref()?.bubble.as_ref()
    }

    pub(crate) fn set_home(&self, worker: usize, slot: u32) {
        self.home
            .store(((worker as u64) << 32) | slot as u64, Ordering::Release);
    }

    /// `(worker, slot)` of a started coroutine.
    #[inline]
    pub(crate) fn home(&self) -> Option<(usize, u32)> {
        let h = self.home.load(Ordering::Acquire);
        (h != UNSTARTED).then_some(((h >> 32) as usize, h as u32))
    }

    /// See `ParkState::take_notification`.
    #[inline]
    pub(crate) fn take_notification(&self) -> bool {
        self.park.take_notification()
    }

    /// See `ParkState::try_park`.
    #[inline]
    pub(crate) fn try_park(&self) -> bool {
        self.park.try_park()
    }

    /// Makes a parked coroutine runnable. Returns true if it was parked: the
    /// caller then owns the one and only duty of queueing it on its worker.
    #[inline]
    pub(crate) fn unpark(&self) -> bool {
        match self.bubble() {
            None => self.unpark_state(),
            Some(b) => b.unpark(self),
        }
    }

    /// `unpark`'s change of park state, without a bubble's count.
    #[inline]
    pub(crate) fn unpark_state(&self) -> bool {
        self.park.unpark()
    }

    pub(crate) fn is_parked(&self) -> bool {
        self.park.is_parked()
    }

    /// `clock::coarse_now()` when it last began to wait on something.
    pub(crate) fn wait_since(&self) -> u64 {
        self.wait.since()
    }

    /// Wakes the joiner that waits for this task's completion.
    fn wake_joiner(&self) {
        if let Some(b) = NonNull::new(self.join_waiter.load(Ordering::Acquire)) {
            // SAFETY: the joiner stored its blocker before setting
            // JOIN_WAITING and keeps it alive until it is finished; only the
            // one completion claims it.
            unsafe {
                if Blocker::claim(b) {
                    Blocker::finish(b, 0, false).wake();
                }
            }
        }
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.join.is_complete()
    }

    /// Blocks the caller (a coroutine or a thread) until `complete`. At most
    /// one caller: the task's unique joiner.
    pub(crate) fn wait_complete(&self) {
        if self.is_complete() {
            return;
        }
        let blocker = Blocker::new(true);
        self.join_waiter
            .store(ptr::from_ref(&blocker).cast_mut(), Ordering::Release);
        if self.join.wait_for_completion() {
            // Completed first: it never saw JOIN_WAITING, so never touches
            // the blocker.
            return;
        }
        blocker.wait(
            None,
            WaitingOn::Join(CoroutineId::from_u64(self.id).unwrap_or(CoroutineId::MIN)),
        );
    }
}

/// Why a coroutine has no result for its joiner.
pub(crate) enum Failure {
    /// Its closure panicked with this payload.
    Panic(Box<dyn Any + Send>),
    /// It never ran: no stack could be had for it.
    NotStarted(io::Error),
}

/// A coroutine's output: its closure's result, or why there is none.
pub(crate) type Output<T> = Result<T, Failure>;

/// Operations on a task whose closure and output types are erased; one
/// static table per `(F, T)`.
struct Vtable {
    /// Runs the closure once and stores its output (see `TaskRef::run`).
    run: unsafe fn(NonNull<Header>),
    /// Drops the closure unrun and stores `Failure::NotStarted` as the output.
    fail: unsafe fn(NonNull<Header>, io::Error),
    /// Moves the output into `*out`, an `Option<Output<T>>`.
    take_output: unsafe fn(NonNull<Header>, *mut ()),
    /// Drops what the cell still holds and frees it.
    destroy: unsafe fn(NonNull<Header>),
}

/// A task in one allocation: the header first, so that a pointer to the cell
/// is a pointer to its header.
#[repr(C)]
struct Cell<F, T> {
    header: Header,
    /// The closure. Taken exactly once, by `run` or `fail`, on the worker
    /// that dequeued the task (a task sits in one queue at a time, and a
    /// dequeue is exclusive).
    body: UnsafeCell<Option<F>>,
    /// The result. Written once by `run`/`fail` before `complete` sets
    /// COMPLETE (release); read once by the unique joiner after it observed
    /// COMPLETE (acquire).
    output: UnsafeCell<Option<Output<T>>>,
}

impl<F, T> Cell<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    const VTABLE: Vtable = Vtable {
        run: Self::run,
        fail: Self::fail,
        take_output: Self::take_output,
        destroy: Self::destroy,
    };

    /// # Safety
    /// `p` must point to a live `Cell<F, T>`; called once, by the worker
    /// that starts the task, on the coroutine's stack.
    unsafe fn run(p: NonNull<Header>) {
        // SAFETY: per the contract, `p` is a live `Cell<F, T>` (its header is
        // its first field).
        let cell = unsafe { p.cast::<Cell<F, T>>().as_ref() };
        // SAFETY: `body` is taken once, by the starting worker (field invariant).
        let Some(f) = (unsafe { (*cell.body.get()).take() }) else {
            return;
        };
        // The marker frame ends a panic's backtrace at the user's closure.
        let result = panic::catch_unwind(AssertUnwindSafe(|| begin_short_backtrace(f)))
            .map_err(Failure::Panic);
        let output = if cell.header.join.is_detached() {
            // The handle went before the output was written (the usual case
            // for `go!`): DETACHED is final and only this coroutine sets
            // OUTPUT_WRITTEN, so nobody will ever ask for the output. Not
            // publishing it saves a read-modify-write on a line the
            // spawner's core may hold.
            result
        } else {
            // SAFETY: written once, before `complete` publishes it.
            unsafe { *cell.output.get() = Some(result) };
            if !cell.header.join.output_written() {
                return;
            }
            // SAFETY: the handle is gone and saw no output, so nobody else
            // will ever touch it.
            let Some(output) = (unsafe { (*cell.output.get()).take() }) else {
                return;
            };
            output
        };
        match output {
            // A result with nothing to drop (every `go!` of a function
            // returning `()`) costs nothing more.
            Ok(value) => {
                if std::mem::needs_drop::<T>() {
                    drop_here(value);
                }
            }
            Err(failure) => {
                if let Failure::Panic(payload) = &failure {
                    panic_hook::unjoined(&cell.header, &**payload);
                }
                drop_here(failure);
            }
        }
    }

    /// # Safety
    /// As for `run`, instead of it.
    unsafe fn fail(p: NonNull<Header>, err: io::Error) {
        // SAFETY: as in `run`.
        let cell = unsafe { p.cast::<Cell<F, T>>().as_ref() };
        // SAFETY: as in `run`: the dequeuing worker fails the task instead.
        unsafe {
            drop((*cell.body.get()).take());
            *cell.output.get() = Some(Err(Failure::NotStarted(err)));
        }
    }

    /// # Safety
    /// `p` must point to a live `Cell<F, T>` whose COMPLETE or
    /// OUTPUT_WRITTEN the caller, its unique joiner, observed; `out` must point to an
    /// `Option<Output<T>>`.
    unsafe fn take_output(p: NonNull<Header>, out: *mut ()) {
        // SAFETY: per the contract.
        unsafe {
            let cell = p.cast::<Cell<F, T>>().as_ref();
            *out.cast::<Option<Output<T>>>() = (*cell.output.get()).take();
        }
    }

    /// # Safety
    /// `p` must point to a `Cell<F, T>` from `TaskRef::new` whose last
    /// reference is being dropped.
    unsafe fn destroy(p: NonNull<Header>) {
        let cell = p.cast::<Cell<F, T>>();
        // SAFETY: per the contract, nothing else references the cell; it
        // was allocated by `alloc::alloc` with this layout.
        unsafe {
            cell.drop_in_place();
            alloc::dealloc(cell.cast(), Layout::new::<Cell<F, T>>());
        }
    }
}

/// Drops a value in the calling coroutine, reporting a panic of its `Drop`
/// (through the panic hook) instead of unwinding into the worker.
fn drop_here<T>(value: T) {
    let dropped = panic::catch_unwind(AssertUnwindSafe(move || {
        begin_short_backtrace(|| drop(value))
    }));
    if let Err(payload) = dropped {
        // A payload whose own `Drop` panics again would unwind out of here:
        // leak it, as std leaks what it cannot drop during a panic.
        std::mem::forget(payload);
    }
}

/// A counted reference to a task: the runtime's `Arc<dyn Task>`, one
/// pointer wide, with the cell's memory from `task_alloc`.
pub struct TaskRef {
    header: NonNull<Header>,
}

// SAFETY: a task is shared by design: its header is atomics, immutable data
// and a mutex; its closure and output (both `Send`) are each touched by one
// thread at a time, as `Cell`'s field invariants state. It holds no stack.
unsafe impl Send for TaskRef {}
// SAFETY: as above.
unsafe impl Sync for TaskRef {}

impl TaskRef {
    /// A new task and two references to it (one to queue, one for its
    /// `JoinHandle`), counted without an atomic read-modify-write.
    pub(crate) fn new_pair<F, T>(mut header: Header, f: F) -> (TaskRef, TaskRef)
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        header.vtable = &Cell::<F, T>::VTABLE;
        header.join = JoinState::new(2);
        let p = alloc::alloc(Layout::new::<Cell<F, T>>()).cast::<Cell<F, T>>();
        // SAFETY: `p` is fresh memory with the layout of `Cell<F, T>`.
        unsafe {
            p.write(Cell {
                header,
                body: UnsafeCell::new(Some(f)),
                output: UnsafeCell::new(None),
            })
        };
        (TaskRef { header: p.cast() }, TaskRef { header: p.cast() })
    }

    /// A new reference to the task `header` belongs to.
    ///
    /// # Safety
    /// The task must be alive: someone holds a reference for the duration of
    /// this call.
    pub(crate) unsafe fn clone_from_header(header: NonNull<Header>) -> TaskRef {
        // SAFETY: alive per the contract, so the count is at least one.
        unsafe { header.as_ref() }.join.acquire();
        TaskRef { header }
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: a `TaskRef` keeps its task alive.
        unsafe { self.header.as_ref() }
    }

    pub(crate) fn header_ptr(&self) -> NonNull<Header> {
        self.header
    }

    /// Asks the CPU to fetch the cell's header and the first words of its
    /// closure: what starting the task reads first, most likely written by
    /// the spawner on another core.
    #[inline]
    pub(crate) fn prefetch(&self) {
        prefetch::read(
            self.header.as_ptr().cast(),
            size_of::<Header>() + PREFETCHED_CLOSURE_BYTES,
        );
    }

    /// Runs the closure of the task `header` belongs to and stores its
    /// output, catching a panic.
    ///
    /// # Safety
    /// The task must be alive for the call (its worker's table holds it), and
    /// only the worker that dequeued it may call this, once, on the
    /// coroutine's own stack.
    pub(crate) unsafe fn run(header: NonNull<Header>) {
        // SAFETY: alive per the contract; the vtable matches the cell's types.
        unsafe { (header.as_ref().vtable.run)(header) }
    }

    /// Stores `Failure::NotStarted(err)` instead of running (no stack could
    /// be had).
    ///
    /// # Safety
    /// As for `run`, instead of it.
    pub(crate) unsafe fn fail(&self, err: io::Error) {
        // SAFETY: forwarded contract.
        unsafe { (self.header().vtable.fail)(self.header, err) }
    }

    /// Takes the output of a task returning `T`.
    ///
    /// # Safety
    /// The task's output type must be `T`; the caller must be its unique
    /// joiner and have observed `is_complete` (or `detach_and_release`
    /// answering `TakeOutput`); at most once.
    pub(crate) unsafe fn take_output<T>(&self) -> Option<Output<T>> {
        let mut out: Option<Output<T>> = None;
        // SAFETY: forwarded contract; `out` has the type the vtable expects.
        unsafe { (self.header().vtable.take_output)(self.header, (&raw mut out).cast()) };
        out
    }

    /// Marks the task finished, wakes its joiner, and lets go of this
    /// reference: the one its worker held while it ran. Its output must be
    /// written (or have been dropped by the coroutine) before.
    #[inline]
    pub(crate) fn complete(self) {
        self.header().park.finish();
        if self.header().bubble().is_some() {
            self.complete_in_bubble();
            return;
        }
        let this = ManuallyDrop::new(self);
        match this.header().join.complete_and_release() {
            Completed::Released { last: false } => {}
            // SAFETY: that was the last reference; the vtable matches.
            Completed::Released { last: true } => unsafe { this.destroy() },
            Completed::WakeJoiner => {
                this.header().wake_joiner();
                drop(ManuallyDrop::into_inner(this));
            }
        }
    }

    /// `complete` for a member of a bubble, which counts the end after the
    /// joiner's wakeup (`time/bubble.rs`), through this reference.
    #[cold]
    #[inline(never)]
    fn complete_in_bubble(self) {
        let h = self.header();
        if h.join.complete() {
            h.wake_joiner();
        }
        if let Some(b) = h.bubble() {
            b.exit();
        }
    }

    /// Gives up the output of a task returning `T`, and this reference,
    /// its `JoinHandle`'s. The output is dropped here if the coroutine
    /// wrote it first, else by the coroutine when it ends; a panic it holds
    /// is reported as unjoined.
    ///
    /// # Safety
    /// The task's output type must be `T`; this must be the reference of
    /// its unique joiner, which has not taken the output.
    #[inline]
    pub(crate) unsafe fn detach<T>(self) {
        let this = ManuallyDrop::new(self);
        match this.header().join.detach_and_release() {
            Detached::Released { last: false } => {}
            // SAFETY: that was the last reference; the vtable matches.
            Detached::Released { last: true } => unsafe { this.destroy() },
            // SAFETY: forwarded contract; the coroutine wrote the output
            // and no longer touches it (`TakeOutput`).
            Detached::TakeOutput => unsafe { ManuallyDrop::into_inner(this).drop_output::<T>() },
        }
    }

    /// `detach`'s rare case, apart so that the usual one (the handle goes
    /// before the coroutine ends: every `go!`) inlines where it is dropped:
    /// takes the output, reports a panic it holds, and drops it.
    ///
    /// # Safety
    /// As for `detach`, once `detach_and_release` answered `TakeOutput`.
    #[cold]
    #[inline(never)]
    unsafe fn drop_output<T>(self) {
        // SAFETY: the output type is `T` and this unique joiner takes it
        // once, after the coroutine's last touch of it.
        let output = unsafe { self.take_output::<T>() };
        if let Some(Err(Failure::Panic(payload))) = &output {
            panic_hook::unjoined(self.header(), &**payload);
        }
        drop(output);
    }

    /// Frees the cell.
    ///
    /// # Safety
    /// The caller let go of the last reference, and nobody else can reach
    /// the cell.
    unsafe fn destroy(&self) {
        // SAFETY: per the contract; the vtable matches the cell's types.
        unsafe { (self.header().vtable.destroy)(self.header) }
    }
}

impl Clone for TaskRef {
    fn clone(&self) -> TaskRef {
        // SAFETY: `self` keeps the task alive.
        unsafe { TaskRef::clone_from_header(self.header) }
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        if self.header().join.release() {
            // SAFETY: this was the last reference.
            unsafe { self.destroy() }
        }
    }
}
