//! Spawning coroutines and joining them.

use std::fmt;
use std::io;
use std::panic::Location;
use std::sync::Arc;
use std::thread;

use crate::JoinError;
use crate::runtime::scheduler::worker::Worker;
use crate::runtime::task::header::Header;
pub use crate::runtime::task::id::CoroutineId;
use crate::runtime::task::spawn::{self, Joiner, Membership};
use crate::runtime::task::stack::checked_stack_size;
use crate::runtime::{Runtime, monitor::sysmon};

/// Spawns `f` as a new coroutine (Go's `go f()`).
///
/// The coroutine starts on some worker soon; from then on it runs on that
/// worker's thread only. Dropping the returned handle detaches it. Called
/// outside the runtime, this starts the runtime first if needed.
///
/// # Panics
/// If the runtime has to start and cannot (an invalid `GORO_WORKERS`, or no
/// thread could be created). `Builder::spawn` returns such errors instead.
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let rt = Runtime::get();
    spawn_on(rt, None, rt.stack_size, Location::caller(), f)
}

/// Spawns into the caller's bubble, if it is in one (`runtime/time/bubble.rs`).
fn spawn_on<F, T>(
    rt: &'static Runtime,
    name: Option<Arc<String>>,
    stack_size: usize,
    location: &'static Location<'static>,
    f: F,
) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    JoinHandle::from(spawn::spawn_in(
        rt,
        Membership::Spawners,
        name,
        stack_size,
        location,
        f,
    ))
}

/// Runs `f` as the main coroutine and returns its result, starting the
/// runtime if needed (the body of a Go program's `main`).
///
/// The calling thread blocks until `f` returns. A panic in `f` resumes on
/// the caller. Other coroutines still running when `f` returns are
/// abandoned, as when Go's `main` returns: `run` does not wait for them (they
/// keep running until the process exits). Called from a coroutine, `run`
/// just calls `f`.
///
/// A `main` that returns errors returns `run`'s result; inside, `?` works
/// on I/O errors and on `join` (whose `JoinError` says which coroutine
/// panicked, and why) alike:
///
/// ```
/// use std::error::Error;
/// use std::io::{Read, Write};
///
/// use goro::net::{TcpListener, TcpStream};
///
/// fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
///     goro::run(|| {
///         let listener = TcpListener::bind("127.0.0.1:0")?;
///         let addr = listener.local_addr()?;
///         let server = goro::spawn(move || -> std::io::Result<String> {
///             let (mut conn, _) = listener.accept()?;
///             let mut text = String::new();
///             conn.read_to_string(&mut text)?;
///             Ok(text)
///         });
///         TcpStream::connect(addr)?.write_all(b"hello")?;
///         // The first `?` takes the server's panic, the second its I/O error.
///         let text = server.join()??;
///         assert_eq!(text, "hello");
///         Ok(())
///     })
/// }
/// ```
///
/// # Panics
/// If `f` panics, or if the runtime has to start and cannot.
#[track_caller]
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if Worker::current_in_coroutine().is_some() {
        return f();
    }
    let rt = Runtime::get();
    let handle = spawn_on(
        rt,
        Some(Arc::new(String::from("main"))),
        rt.stack_size,
        Location::caller(),
        f,
    );
    // The monitor's deadlock rule looks at the main coroutines being waited for.
    let main = handle.joiner.task().clone();
    sysmon::main_started(&main);
    let result = handle.join();
    sysmon::main_finished(&main);
    result.unwrap_or_else(|e| e.resume())
}

impl crate::runtime::Builder {
    /// Starts the runtime if needed and runs `f` as the main coroutine, like
    /// `goro::run`.
    ///
    /// # Errors
    /// As `start`, except that an already running runtime is used as it is.
    pub fn run<F, T>(self, f: F) -> std::io::Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.start_or_get()?;
        Ok(crate::run(f))
    }
}

/// Sets a coroutine's name and stack size before spawning it, like
/// `std::thread::Builder`.
///
/// ```
/// let h = goro::Builder::new()
///     .name("worker")
///     .stack_size(64 * 1024)
///     .spawn(|| goro::current().unwrap().name().map(String::from))
///     .unwrap();
/// assert_eq!(h.join().unwrap().as_deref(), Some("worker"));
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with nothing set: unnamed, the runtime's default stack.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the coroutine; the name shows in panic messages, stack overflow
    /// reports and runtime dumps.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// The coroutine's stack reserve in bytes (default 256 KiB, see
    /// `runtime::Builder::stack_size`), rounded up to whole pages. Only the
    /// pages the coroutine touches cost memory; stacks cannot grow, so a
    /// coroutine that recurses deeply needs a larger one.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// The name and stack size set, for the other spawns that take a
    /// builder (`spawn_scoped`).
    pub(crate) fn into_parts(self) -> (Option<String>, Option<usize>) {
        (self.name, self.stack_size)
    }

    /// Spawns `f` with these settings.
    ///
    /// # Errors
    /// `InvalidInput` if the stack size is below 16 KiB or above 1 GiB, or if
    /// the runtime has to start and its configuration is invalid.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let location = Location::caller();
        let stack_size = self.stack_size.map(checked_stack_size).transpose()?;
        let rt = Runtime::get_or_start()?;
        let name = self.name.map(Arc::new);
        Ok(spawn_on(
            rt,
            name,
            stack_size.unwrap_or(rt.stack_size),
            location,
            f,
        ))
    }
}

/// An owned permission to join a coroutine (wait for it and take its result).
///
/// Dropping the handle detaches the coroutine: it keeps running, and its
/// result is dropped when it ends. A panic of a detached coroutine is
/// reported and, by default, goes no further; see
/// `runtime::UnjoinedPanic` to make it abort the process, as in Go.
pub struct JoinHandle<T> {
    /// The unique joiner of a task whose closure returns `T`; its drop
    /// detaches the coroutine.
    joiner: Joiner<T>,
}

impl<T> From<Joiner<T>> for JoinHandle<T> {
    fn from(joiner: Joiner<T>) -> JoinHandle<T> {
        JoinHandle { joiner }
    }
}

impl<T> JoinHandle<T> {
    /// Waits for the coroutine to finish and returns its result, or an
    /// error that shows its panic's message and holds the payload. Parks
    /// the caller if it is a coroutine; blocks the thread otherwise.
    ///
    /// # Errors
    /// A `JoinError` if the coroutine panicked or could not start.
    pub fn join(self) -> Result<T, JoinError> {
        self.joiner
            .join(|header, failure| JoinError::new(Coroutine::of(header), failure))
    }

    /// Whether the coroutine has finished (a `join` would not wait).
    pub fn is_finished(&self) -> bool {
        self.joiner.header().is_complete()
    }

    /// The coroutine this handle joins.
    pub fn coroutine(&self) -> Coroutine {
        Coroutine::of(self.joiner.header())
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("coroutine", &self.coroutine())
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// A coroutine's identity: its id and name.
#[derive(Clone, Debug)]
pub struct Coroutine {
    id: CoroutineId,
    name: Option<Arc<String>>,
}

impl Coroutine {
    fn of(header: &Header) -> Coroutine {
        Coroutine {
            id: CoroutineId::from_u64(header.id).unwrap_or(CoroutineId::MIN),
            name: header.name().cloned(),
        }
    }

    /// The coroutine's id.
    pub fn id(&self) -> CoroutineId {
        self.id
    }

    /// The name given with `Builder::name` (`"main"` for `goro::run`'s).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref().map(String::as_str)
    }
}

/// The coroutine calling this, or `None` on a plain thread.
pub fn current() -> Option<Coroutine> {
    Worker::with_running_header(Coroutine::of)
}

/// Lets other coroutines on this worker run before the caller continues (Go's
/// `runtime.Gosched`). On a plain thread, yields the thread.
pub fn yield_now() {
    match Worker::current_in_coroutine() {
        Some(w) => w.yield_running(),
        None => thread::yield_now(),
    }
}
