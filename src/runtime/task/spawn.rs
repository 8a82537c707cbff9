//! Spawning's core: a task made and queued where a worker will start it.
//!
//! The public `goro::spawn`, `Builder::spawn`, `goro::run` and
//! `synctest::run` wrap the joiner this returns in a `JoinHandle`; the
//! runtime itself spawns through `spawn_detached` (to drop user values in
//! coroutine context), so that nothing in `runtime` calls up to the crate's
//! public API.

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::Location;
use std::sync::Arc;

use crate::runtime::Runtime;
use crate::runtime::diag::trace;
use crate::runtime::scheduler::worker::Worker;
use crate::runtime::task::header::{Failure, Header, TaskRef};
use crate::runtime::task::id;
use crate::runtime::time::bubble::{self, Bubble};

/// The joining end of a task whose closure returns `T`: the reference whose
/// owner may wait for the task and take its output once. Dropping it
/// detaches the task. Only `spawn_in` makes one, so `T` is the closure's
/// output type.
pub(crate) struct Joiner<T> {
    /// The joiner's reference; taken out only by `join` (which consumes
    /// the joiner) or `drop`.
    task: ManuallyDrop<TaskRef>,
    _output: PhantomData<T>,
}

impl<T> Joiner<T> {
    pub(crate) fn header(&self) -> &Header {
        self.task.header()
    }

    /// The task, for a holder that needs a reference of its own.
    pub(crate) fn task(&self) -> &TaskRef {
        &self.task
    }

    /// Waits for the task to finish (parking a coroutine, blocking a
    /// thread) and takes its output; `failed` describes a failure.
    pub(crate) fn join<E>(self, failed: impl FnOnce(&Header, Failure) -> E) -> Result<T, E> {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped after this take.
        let task = unsafe { ManuallyDrop::take(&mut this.task) };
        task.header().wait_complete();
        // SAFETY: the closure returns `T` (only `spawn_in` makes a joiner);
        // COMPLETE is set; this unique joiner is consumed here, so this is
        // the one take.
        let output = unsafe { task.take_output::<T>() }.unwrap_or_else(|| {
            Err(Failure::Panic(Box::new(
                "goro: coroutine finished without a result",
            )))
        });
        output.map_err(|failure| failed(task.header(), failure))
    }
}

impl<T> Drop for Joiner<T> {
    fn drop(&mut self) {
        // SAFETY: `self.task` is not used after this take.
        let task = unsafe { ManuallyDrop::take(&mut self.task) };
        // SAFETY: the output type is `T`, and this is the unique joiner,
        // which has not taken it (`join` does not drop the joiner).
        unsafe { task.detach::<T>() };
    }
}

/// Which bubble (`time/bubble.rs`) a new coroutine belongs to, for life.
pub(crate) enum Membership {
    /// The spawner's, if it is in one: what `go!`, `spawn` and scopes do.
    Spawners,
    /// This one: a bubble's root.
    Of(Arc<Bubble>),
    /// None, whatever the spawner's: the runtime's own coroutines.
    Outside,
}

/// Spawns `f` as a coroutine of the bubble `membership` says, if any, and
/// returns its joiner.
pub(crate) fn spawn_in<F, T>(
    rt: &'static Runtime,
    membership: Membership,
    name: Option<Arc<String>>,
    stack_size: usize,
    location: &'static Location<'static>,
    f: F,
) -> Joiner<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let worker = Worker::current();
    let bubble = match membership {
        Membership::Spawners => bubble::current_on(worker),
        Membership::Of(b) => Some(b),
        Membership::Outside => None,
    };
    if let Some(b) = &bubble {
        // Counted runnable before anything can run it.
        b.enter();
    }
    let header = Header::new(id::next_id(worker), name, stack_size, location, bubble);
    if trace::enabled() {
        trace::record(trace::Kind::Spawn, 0, header.id, trace::running_id());
    }
    let (task, joiner) = TaskRef::new_pair(header, f);
    rt.submit(worker, task);
    Joiner {
        task: ManuallyDrop::new(joiner),
        _output: PhantomData,
    }
}

/// Spawns `f` on `rt` with its default stack, outside any bubble, named
/// `name` if given, and detaches it at once: the runtime's own coroutines.
#[track_caller]
pub(crate) fn spawn_detached(
    rt: &'static Runtime,
    name: Option<&str>,
    f: impl FnOnce() + Send + 'static,
) {
    drop(spawn_in(
        rt,
        Membership::Outside,
        name.map(|n| Arc::new(n.to_string())),
        rt.stack_size,
        Location::caller(),
        f,
    ));
}
