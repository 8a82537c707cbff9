//! The runtime's own threads: workers, the monitor and the blocking pool.
//!
//! A runtime thread runs no user code outside a coroutine (user code that
//! reaches one, a blocking job's closure, catches its own panics), so a
//! panic that unwinds to the top of one is a bug in goro. Going on without
//! the thread would be worse than stopping: a lost worker strands every
//! coroutine started on it, its timers and its sockets, and a lost monitor
//! silences the held-worker and deadlock reports. So, as std does with a
//! panic it cannot unwind, the process aborts, after a message that names
//! the thread and the panic.

use std::cell::Cell;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::thread::{self, JoinHandle};

use crate::runtime::scheduler::worker::Worker;

/// Starts a runtime thread named `name` running `body`; if `body` panics,
/// reports it and aborts the process.
pub(crate) fn start<F, T>(name: String, body: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() -> T + Send + 'static,
    T: 'static,
{
    thread::Builder::new().name(name).spawn(move || {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(body)) {
            abort_after_panic(&*payload);
        }
    })
}

/// The end of a runtime thread whose body panicked with `payload`.
fn abort_after_panic(payload: &(dyn std::any::Any + Send)) -> ! {
    let name = thread::current().name().unwrap_or("<unnamed>").to_owned();
    let msg = crate::runtime::diag::panic_hook::message(payload).unwrap_or("Box<dyn Any>");
    eprintln!(
        "goro: runtime thread '{name}' panicked: {msg}\n\
         goro: a runtime thread cannot be lost without losing the coroutines it serves; aborting"
    );
    std::process::abort()
}

thread_local! {
    /// Set on threads whose own stack must run no user code: workers
    /// (outside their coroutines) and the monitor.
    static SCHEDULER: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as a worker or the monitor.
pub(crate) fn mark_scheduler() {
    SCHEDULER.with(|s| s.set(true));
}

/// Whether the caller runs on a scheduler's own stack: a worker outside any
/// coroutine, or the monitor. User code must not run there (see
/// `UserValue`), and nothing there may block on a goro primitive.
pub(crate) fn on_scheduler_stack() -> bool {
    SCHEDULER.with(Cell::get) && Worker::current_in_coroutine().is_none()
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Command;
    use std::time::Duration;

    const CHILD: &str = "GORO_RUNTIME_THREAD_TEST_CHILD";

    #[test]
    fn a_panicking_runtime_thread_aborts_the_process_naming_it() {
        if std::env::var_os(CHILD).is_some() {
            let _ = super::start("goro-test-thread".into(), || {
                panic!("boom in a runtime thread");
            });
            std::thread::sleep(Duration::from_secs(60));
            return;
        }
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "runtime::scheduler::thread::tests::a_panicking_runtime_thread_aborts_the_process_naming_it",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{err}");
        assert!(
            err.contains(
                "goro: runtime thread 'goro-test-thread' panicked: boom in a runtime thread"
            ),
            "{err}"
        );
    }
}
