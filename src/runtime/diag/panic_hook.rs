//! Panic messages that name the coroutine, and backtraces that show the
//! user's frames.
//!
//! std's hook names the thread, which in a coroutine is only the worker
//! ("goro-worker-1"). goro installs a hook at start that, inside a coroutine,
//! prints std's message with the coroutine's name and id instead, and defers
//! to the previously installed hook everywhere else. A hook set after the
//! runtime starts replaces this one, as `std::panic::set_hook` always does.
//!
//! A panic nobody joins (its `JoinHandle` dropped) is only reported, by
//! default; with `UnjoinedPanic::Abort` (`GORO_PANIC=abort`) it aborts the
//! process, as an unrecovered panic ends a Go program (`unjoined`).
//!
//! With `RUST_BACKTRACE=1` the backtrace is cut as std cuts a thread's: std
//! drops the frames above its `__rust_end_short_backtrace` (the panic
//! machinery) and below its `__rust_begin_short_backtrace` (the thread's
//! start). goro drops the same top, then the panic functions under it, and
//! everything below `begin_short_backtrace`, which every coroutine's
//! closure runs in: the coroutine's start in goro and corosensei, and the
//! worker's scheduler, whose stack a backtrace walks into. With
//! `RUST_BACKTRACE=full` it prints every frame.

use std::any::Any;
use std::backtrace::Backtrace;
use std::fmt::Write as _;
use std::io;
use std::io::Write as _;
use std::panic::{self, PanicHookInfo};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Once, OnceLock};

use crate::runtime::scheduler::worker::Worker;
use crate::runtime::task::header::Header;

/// std prints its backtrace hint once per process; so do we.
static HINTED: AtomicBool = AtomicBool::new(false);

/// Whether a panic nobody joins aborts the process: set once, when the
/// runtime starts, before any coroutine exists.
static ABORT_UNJOINED: AtomicBool = AtomicBool::new(false);

/// What happens when a coroutine panics and nobody joins it: its
/// `JoinHandle` was dropped (before the panic or after it) without `join`,
/// as for every coroutine `go!` starts and drops the handle of.
///
/// Set with `runtime::Builder::unjoined_panic`, or the environment variable
/// `GORO_PANIC` (`report` or `abort`); the builder wins.
///
/// A panic that someone joins is theirs: `join`'s `JoinError` holds it,
/// `goro::run` resumes it, a scope or an `ErrGroup` passes it on. A handle
/// kept and never joined, or a coroutine that never finishes, cannot be
/// told from one still to be joined, and never aborts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnjoinedPanic {
    /// The panic hook prints the report, the coroutine ends and the program
    /// goes on (the default; `GORO_PANIC=report`).
    #[default]
    Report,
    /// The panic hook prints the report, and the process aborts (`SIGABRT`)
    /// once the panic is known to be unjoined, with a line that says so
    /// (`GORO_PANIC=abort`): as Go, where a panic no one recovers ends the
    /// program. Known when the coroutine's panic ends it after its handle
    /// was dropped (the abort happens on its worker, after its stack has
    /// unwound), or when the handle of a coroutine that ended in a panic is
    /// dropped (the abort happens in whoever drops it).
    Abort,
}

/// The policy from `GORO_PANIC`, or the default if it is unset.
pub(crate) fn unjoined_panic_from_env() -> io::Result<UnjoinedPanic> {
    match std::env::var("GORO_PANIC") {
        Err(std::env::VarError::NotPresent) => Ok(UnjoinedPanic::Report),
        Ok(v) if v.trim() == "report" => Ok(UnjoinedPanic::Report),
        Ok(v) if v.trim() == "abort" => Ok(UnjoinedPanic::Abort),
        Ok(v) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("GORO_PANIC={v:?} is not a panic policy; expected \"report\" or \"abort\""),
        )),
        Err(std::env::VarError::NotUnicode(v)) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("GORO_PANIC={v:?} is not valid Unicode"),
        )),
    }
}

/// Applies `policy` to every coroutine from now on.
pub(crate) fn set_unjoined_panic(policy: UnjoinedPanic) {
    ABORT_UNJOINED.store(policy == UnjoinedPanic::Abort, Ordering::Relaxed);
}

/// Called when the coroutine `header` ended in a panic with `payload` and
/// its handle is gone: under `UnjoinedPanic::Abort`, says so and aborts.
pub(crate) fn unjoined(header: &Header, payload: &(dyn Any + Send)) {
    if !ABORT_UNJOINED.load(Ordering::Relaxed) {
        return;
    }
    let msg = message(payload).unwrap_or("Box<dyn Any>");
    let _ = writeln!(
        std::io::stderr().lock(),
        "goro: coroutine '{}' (#{}) panicked and nobody joins it: {msg}\n\
         goro: aborting (unjoined panics abort: GORO_PANIC=abort or runtime::Builder::unjoined_panic)",
        header.display_name(),
        header.id
    );
    std::process::abort();
}

/// The symbol of `begin_short_backtrace`: where a coroutine's backtrace
/// ends.
pub(crate) const BEGIN_SHORT_BACKTRACE: &str =
    "goro::runtime::diag::panic_hook::begin_short_backtrace";
/// The frame std's panic entry points call the hook through: the frames
/// above it, and it, are the panic machinery.
const END_SHORT_BACKTRACE: &str = "__rust_end_short_backtrace";
/// Functions that raise a panic, shown by std under its cut and dropped by
/// goro: a backtrace starts at the code that panicked.
const PANIC_FUNCTIONS: [&str; 3] = ["std::panicking::", "core::panicking::", "rust_begin_unwind"];

pub(crate) fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if Worker::report_running(|h| report(h, info)).is_none() {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, a coroutine's closure (or the drop of its output), in a frame
/// that marks where its backtraces end. Never inlined, and `f` is not called
/// last, so the frame stays (std's `__rust_begin_short_backtrace` does the
/// same).
#[inline(never)]
pub(crate) fn begin_short_backtrace<T>(f: impl FnOnce() -> T) -> T {
    let result = f();
    std::hint::black_box(());
    result
}

/// The text of a panic payload: `Some` for the `&str` or `String` that
/// `panic!` makes.
pub(crate) fn message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// How much of a backtrace a panic prints.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Off,
    Short,
    Full,
}

/// `RUST_BACKTRACE`, read once, as std reads it for a panic (not
/// `RUST_LIB_BACKTRACE`, which is for `Backtrace::capture`).
fn style() -> Style {
    static STYLE: OnceLock<Style> = OnceLock::new();
    *STYLE.get_or_init(|| match std::env::var_os("RUST_BACKTRACE") {
        Some(v) if v == "0" => Style::Off,
        Some(v) if v == "full" => Style::Full,
        Some(_) => Style::Short,
        None => Style::Off,
    })
}

fn report(header: &Header, info: &PanicHookInfo<'_>) {
    let msg = message(info.payload()).unwrap_or("Box<dyn Any>");
    let location = info
        .location()
        .map_or_else(String::new, |l| format!(" at {l}"));
    // Formatted before stderr is locked: symbolizing can take a while, and
    // other threads may want to print meanwhile.
    let backtrace = match style() {
        Style::Off => None,
        Style::Short => Some(short(&Backtrace::force_capture().to_string())),
        Style::Full => Some(format!("{:#}", Backtrace::force_capture())),
    };
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "coroutine '{}' (#{}) panicked{location}:\n{msg}",
        header.display_name(),
        header.id
    );
    match backtrace {
        Some(bt) => {
            let _ = write!(err, "stack backtrace:\n{bt}");
            if style() == Style::Short {
                let _ = writeln!(
                    err,
                    "note: Some details are omitted, run with `RUST_BACKTRACE=full` \
                     for a verbose backtrace."
                );
            }
        }
        None if !HINTED.swap(true, Ordering::Relaxed) => {
            let _ = writeln!(
                err,
                "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace"
            );
        }
        None => {}
    }
}

/// One frame of a formatted backtrace: its symbol line without the index,
/// and the lines under it (` at FILE:LINE:COL`).
pub(crate) struct Frame<'a> {
    lines: Vec<&'a str>,
}

impl<'a> Frame<'a> {
    /// Whether a symbol of this frame (not its file) contains `s`.
    pub(crate) fn names(&self, s: &str) -> bool {
        self.lines
            .iter()
            .any(|l| !l.trim_start().starts_with("at ") && l.contains(s))
    }

    /// The frame's symbol: its first line.
    pub(crate) fn symbol(&self) -> &'a str {
        self.lines.first().copied().unwrap_or_default()
    }

    /// Its `FILE:LINE:COL`, without the `at `, if std printed one.
    pub(crate) fn location(&self) -> Option<&'a str> {
        self.lines
            .iter()
            .find_map(|l| l.trim_start().strip_prefix("at "))
    }
}

/// The frames of `Backtrace`'s Display text: each starts with a line
/// `   N: symbol`.
pub(crate) fn frames(text: &str) -> Vec<Frame<'_>> {
    let mut frames: Vec<Frame<'_>> = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        match t[digits..].strip_prefix(": ") {
            Some(symbol) if digits > 0 => frames.push(Frame {
                lines: vec![symbol],
            }),
            _ => {
                if let Some(f) = frames.last_mut() {
                    f.lines.push(line);
                }
            }
        }
    }
    frames
}

/// A coroutine's backtrace in std's short form (`text` is `Backtrace`'s
/// Display): from the code that panicked down to the coroutine's closure,
/// numbered from 0. If a cut's marker is missing (no symbols), that end is
/// not cut.
fn short(text: &str) -> String {
    let frames = frames(text);
    let below_machinery = frames
        .iter()
        .position(|f| f.names(END_SHORT_BACKTRACE))
        .map_or(0, |i| i + 1);
    let start = below_machinery
        + frames[below_machinery..]
            .iter()
            .take_while(|f| PANIC_FUNCTIONS.iter().any(|p| f.names(p)))
            .count();
    let end = frames
        .iter()
        .position(|f| f.names(BEGIN_SHORT_BACKTRACE))
        .unwrap_or(frames.len())
        .max(start);
    let mut out = String::new();
    for (i, frame) in frames[start..end].iter().enumerate() {
        let _ = writeln!(out, "{i:4}: {}", frame.lines.join("\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `Backtrace` prints for a panic in a coroutine (shortened).
    const CAPTURED: &str = "   0: goro::runtime::diag::panic_hook::report
             at ./src/runtime/diag/panic_hook.rs:43:21
   1: <alloc::boxed::Box<dyn for<'a, 'b> core::ops::function::Fn<(&'a std::panic::PanicHookInfo<'b>,), Output = ()>> as core::ops::function::Fn<(&std::panic::PanicHookInfo,)>>::call
             at /rustc/x/library/alloc/src/boxed.rs:2254:9
   2: std::panicking::panic_with_hook
             at /rustc/x/library/std/src/panicking.rs:833:13
   3: std::sys::backtrace::__rust_end_short_backtrace::<std::panicking::panic_handler::{closure#0}, !>
             at /rustc/x/library/std/src/sys/backtrace.rs:182:18
   4: __rustc::rust_begin_unwind
             at /rustc/x/library/std/src/panicking.rs:689:5
   5: core::panicking::panic_fmt
             at /rustc/x/library/core/src/panicking.rs:80:14
   6: app::parse
             at ./src/main.rs:9:42
   7: app::main::{{closure}}
             at ./src/main.rs:20:5
   8: goro::runtime::diag::panic_hook::begin_short_backtrace
             at ./src/runtime/diag/panic_hook.rs:62:18
   9: std::panicking::catch_unwind
             at /rustc/x/library/std/src/panicking.rs:544:19
  10: goro::runtime::task::header::Cell<F,T>::run
             at ./src/runtime/task/header.rs:313:22
  11: stack_init_trampoline
  12: goro::runtime::scheduler::worker::Worker::resume
             at ./src/runtime/scheduler/worker.rs:886:27
";

    #[test]
    fn short_keeps_the_frames_between_the_panic_and_the_closure() {
        assert_eq!(
            short(CAPTURED),
            "   0: app::parse
             at ./src/main.rs:9:42
   1: app::main::{{closure}}
             at ./src/main.rs:20:5
"
        );
    }

    #[test]
    fn short_without_markers_keeps_every_frame() {
        let text = "   0: a\n             at a.rs:1:1\n   1: b\n   2: c\n";
        assert_eq!(short(text), text);
        assert_eq!(short(""), "");
    }
}
