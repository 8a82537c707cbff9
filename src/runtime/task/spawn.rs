//! Spawning's core: a task made and queued where a worker will start it.
//!
//! The public `goro::spawn`, `Builder::spawn`, `goro::run` and
//! `synctest::run` wrap the joiner this returns in a `JoinHandle`; the
//! runtime itself spawns through `spawn_detached` (to drop user values in
//! coroutine context), so that nothing in `runtime` calls up to the crate's
//! public API.

use std::marker::PhantomData;
use std::panic::Location;
use std::sync::Arc;

use crate::runtime::Runtime;
use crate::runtime::diag::panic_hook;
use crate::runtime::diag::trace;
use crate::runtime::scheduler::worker::Worker;
use crate::runtime::task::header::{Failure, Header, TaskRef};
use crate::runtime::task::id;
use crate::runtime::time::bubble::Bubble;

/// The joining end of a task whose closure returns `T`: the reference whose
/// owner may wait for the task and take its output once, or detach it.
/// Only `spawn_in` makes one, so `T` is the closure's output type. It
/// has no `Drop`: turn it into a `JoinHandle`, whose drop detaches.
#[must_use = "a Joiner must become a JoinHandle, whose drop detaches the coroutine"]
pub(crate) struct Joiner<T> {
    pub(crate) task: TaskRef,
    _output: PhantomData<T>,
}

/// Spawns `f` as a coroutine that belongs to `bubble`, if given, and
/// returns its joiner.
pub(crate) fn spawn_in<F, T>(
    rt: &'static Runtime,
    bubble: Option<Arc<Bubble>>,
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
        task: joiner,
        _output: PhantomData,
    }
}

/// Spawns `f` with the runtime's defaults, outside any bubble, and detaches
/// it at once.
#[track_caller]
pub(crate) fn spawn_detached(f: impl FnOnce() + Send + 'static) {
    let rt = Runtime::get();
    let joiner = spawn_in(rt, None, None, rt.stack_size, Location::caller(), f).task;
    if joiner.header().detach() {
        // SAFETY: the closure returns `()`, this joiner is the only one, and
        // `detach` saw the output written and no longer touched, so it is
        // taken here exactly once.
        let output = unsafe { joiner.take_output::<()>() };
        if let Some(Err(Failure::Panic(payload))) = &output {
            panic_hook::unjoined(joiner.header(), &**payload);
        }
        drop(output);
    }
}
