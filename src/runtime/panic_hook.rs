//! Panic messages that name the coroutine.
//!
//! std's hook names the thread, which in a coroutine is only the worker
//! ("goro-worker-1"). goro installs a hook at start that, inside a coroutine,
//! prints std's message with the coroutine's name and id instead, and defers
//! to the previously installed hook everywhere else. A hook set after the
//! runtime starts replaces this one, as `std::panic::set_hook` always does.

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::io::Write;
use std::panic::{self, PanicHookInfo};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use super::task::Header;
use super::worker::Worker;

/// std prints its backtrace hint once per process; so do we.
static HINTED: AtomicBool = AtomicBool::new(false);

pub(crate) fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if Worker::with_running_header(|h| report(h, info)).is_none() {
                previous(info);
            }
        }));
    });
}

/// The text of a panic payload: `Some` for the `&str` or `String` that
/// `panic!` makes.
pub(crate) fn message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

fn report(header: &Header, info: &PanicHookInfo<'_>) {
    let msg = message(info.payload()).unwrap_or("Box<dyn Any>");
    let location = info
        .location()
        .map_or_else(String::new, |l| format!(" at {l}"));
    let backtrace = Backtrace::capture();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "coroutine '{}' (#{}) panicked{location}:\n{msg}",
        header.display_name(),
        header.id
    );
    if backtrace.status() == BacktraceStatus::Captured {
        let _ = writeln!(err, "stack backtrace:\n{backtrace}");
    } else if !HINTED.swap(true, Ordering::Relaxed) {
        let _ = writeln!(
            err,
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace"
        );
    }
}
