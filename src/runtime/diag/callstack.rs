//! A coroutine's call stack, as a dump takes it: a cheap walk of return
//! addresses on the coroutine's own stack, and symbols (function, file,
//! line) only when someone looks.
//!
//! The walk uses the unwinder std itself links (`_Unwind_Backtrace` from
//! libgcc_s), declared here rather than pulled in through a crate. It is
//! bounded to the coroutine's stack: a frame whose canonical frame address
//! (its caller's stack pointer) lies outside the stack's usable range ends
//! it. corosensei's start trampoline describes its caller as the frame on
//! the parent stack that resumed the coroutine, so the trampoline's CFA is
//! on the worker's stack and the walk stops there, before any of the
//! worker's own frames. The addresses serve as the key that groups
//! identical stacks; symbols come from a `std::backtrace::Backtrace`
//! taken once per distinct key, which resolves them only when displayed.
//!
//! # Without debug info
//!
//! Cargo's default release profile has no debug info. std then names
//! frames from the symbol table alone: a function that was not inlined
//! keeps its name, without file or line, and one that was inlined has no
//! frame at all. A coroutine's small functions are inlined into goro's
//! entry frame (`begin_short_backtrace`, generic over the closure), so a
//! parked coroutine's stack often holds nothing but goro's frames. Then
//! the stack keeps the outermost of them, the goro call the coroutine is
//! in (`goro::time::sleep`, `goro::chan::Chan<T>::recv`), rather than
//! nothing, and says so (`CallStack::is_entry_only`); the dump adds how to
//! get full stacks.

use std::backtrace::Backtrace;
use std::ffi::c_void;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use crate::runtime::diag::panic_hook::{self, BEGIN_SHORT_BACKTRACE};
use crate::runtime::scheduler::worker::Worker;

/// Frames a walk records at most: a runaway recursion should not make a
/// dump of thousands of coroutines crawl. Go's traceback prints 100 too.
/// Stacks that differ only below this depth are grouped together.
pub(crate) const MAX_FRAMES: usize = 100;

/// Leading frames that belong to the runtime's own park and capture code,
/// not to the coroutine's: a stack starts at the first frame that is not
/// one of them (Go's traceback hides its runtime frames alike).
const RUNTIME_FRAMES: [&str; 3] = ["goro::", "<goro::", "std::backtrace::"];

/// libgcc's `_Unwind_Reason_Code` values that the walk uses.
const URC_NO_REASON: i32 = 0;
const URC_NORMAL_STOP: i32 = 4;

/// libgcc's opaque `struct _Unwind_Context`.
#[repr(C)]
struct UnwindContext {
    _opaque: [u8; 0],
}

type TraceFn = extern "C" fn(ctx: *mut UnwindContext, arg: *mut c_void) -> i32;

unsafe extern "C" {
    /// Calls `trace` for each frame of the calling thread's current stack,
    /// innermost first, until it returns something other than
    /// `_URC_NO_REASON` or the stack ends.
    fn _Unwind_Backtrace(trace: TraceFn, arg: *mut c_void) -> i32;
    /// The frame's instruction pointer (a return address, but for the
    /// innermost frame).
    fn _Unwind_GetIP(ctx: *mut UnwindContext) -> usize;
    /// The frame's canonical frame address: its caller's stack pointer.
    fn _Unwind_GetCFA(ctx: *mut UnwindContext) -> usize;
}

/// What the walk's callback reads and fills.
struct Walk<'a> {
    /// Lowest usable address of the stack being walked.
    low: usize,
    /// Highest address of that stack, exclusive.
    top: usize,
    out: &'a mut Vec<usize>,
}

extern "C" fn record_frame(ctx: *mut UnwindContext, arg: *mut c_void) -> i32 {
    // SAFETY: `arg` is the `Walk` that `walk` passed, alive and borrowed by
    // no one else for the call; `ctx` is the live context the unwinder
    // passes to its callback.
    let (walk, ip, cfa) = unsafe {
        (
            &mut *arg.cast::<Walk<'_>>(),
            _Unwind_GetIP(ctx),
            _Unwind_GetCFA(ctx),
        )
    };
    if cfa <= walk.low || cfa > walk.top || walk.out.len() >= MAX_FRAMES {
        return URC_NORMAL_STOP;
    }
    walk.out.push(ip);
    URC_NO_REASON
}

/// Replaces `out` with the return addresses of the caller's frames whose
/// CFA lies in `(low, top]`, innermost first: the frames on the stack
/// `[low, top)` that the caller runs on.
#[inline(never)]
pub(crate) fn walk(low: usize, top: usize, out: &mut Vec<usize>) {
    out.clear();
    let mut w = Walk { low, top, out };
    // The unwinder reads only the caller's live frames, and for its last
    // step the parent stack's frame that resumed this coroutine (live too).
    // SAFETY: `record_frame` matches `TraceFn`, never unwinds, and uses
    // `arg` only as the `Walk` it is.
    unsafe { _Unwind_Backtrace(record_frame, (&raw mut w).cast()) };
}

/// A coroutine's call stack, taken by `runtime::dump`: the frames from
/// where the coroutine is (parked, usually) down to its closure, innermost
/// first. Symbols are resolved the first time `frames` or `Display` needs
/// them, once per distinct stack: coroutines parked at the same place share
/// one `CallStack`. Two call stacks are equal when their return addresses
/// are.
#[derive(Clone)]
pub struct CallStack(Arc<Inner>);

struct Inner {
    /// Return addresses on the coroutine's stack, innermost first, at most
    /// `MAX_FRAMES`; the identity of the stack.
    ips: Box<[usize]>,
    /// The same stack as std captured it (unresolved until displayed); it
    /// runs on into the worker's stack, which `frames` cuts off.
    backtrace: Backtrace,
    /// The resolved frames, set on first use.
    frames: OnceLock<Resolved>,
}

/// A stack's frames as resolved.
#[derive(Debug, PartialEq, Eq)]
struct Resolved {
    frames: Vec<StackFrame>,
    /// None of the coroutine's own frames had a symbol, and `frames` is
    /// the one goro frame it called into (see the module doc).
    entry_only: bool,
}

/// One frame of a `CallStack`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackFrame {
    /// The function, demangled without its hash (`app::handler::{{closure}}`),
    /// or `<unknown>` without symbols.
    pub function: String,
    /// The source file, as std prints it (relative to the working directory
    /// when under it), if debug info has it.
    pub file: Option<String>,
    /// The line in `file`.
    pub line: Option<u32>,
    /// The column in `line`.
    pub column: Option<u32>,
}

impl CallStack {
    /// A call stack with the return addresses `ips`, which the caller
    /// walked on its own stack just before; takes std's capture of that
    /// same stack for the symbols.
    #[inline(never)]
    pub(crate) fn capture(ips: &[usize]) -> CallStack {
        CallStack(Arc::new(Inner {
            ips: ips.into(),
            backtrace: Backtrace::force_capture(),
            frames: OnceLock::new(),
        }))
    }

    /// The frames, innermost first, from the first one outside goro's park
    /// machinery down to the coroutine's closure. Resolves symbols on the
    /// first call, which can take tens of milliseconds for a program's
    /// first backtrace.
    ///
    /// In a build without debug info, frames have no file or line, and
    /// functions inlined into others have no frame; if none of the
    /// coroutine's own frames is left, this is the one goro function it
    /// called (`goro::time::sleep`), and `is_entry_only` says so.
    pub fn frames(&self) -> &[StackFrame] {
        &self.resolved().frames
    }

    /// Whether `frames` is only the goro function the coroutine called,
    /// its own frames having been inlined into goro's in a build without
    /// debug info (see `frames`).
    pub fn is_entry_only(&self) -> bool {
        self.resolved().entry_only
    }

    /// Whether it has frames and none has a source line: the binary has
    /// no debug info.
    pub(crate) fn lacks_lines(&self) -> bool {
        let frames = self.frames();
        !frames.is_empty() && frames.iter().all(|f| f.line.is_none())
    }

    /// A call stack resolved from `text`, as `Backtrace` prints a stack
    /// taken on a coroutine: for tests of what a dump shows.
    #[cfg(test)]
    pub(crate) fn from_text(ips: &[usize], text: &str) -> CallStack {
        CallStack(Arc::new(Inner {
            ips: ips.into(),
            backtrace: Backtrace::disabled(),
            frames: OnceLock::from(coroutine_frames(text)),
        }))
    }

    fn resolved(&self) -> &Resolved {
        self.0.frames.get_or_init(|| {
            // A program's first symbolization reads its debug info: not the
            // caller holding its worker, as far as the monitor is concerned.
            Worker::run_unwatched(|| coroutine_frames(&self.0.backtrace.to_string()))
        })
    }

    /// The return addresses that identify this stack, innermost first.
    pub(crate) fn ips(&self) -> &[usize] {
        &self.0.ips
    }
}

/// The coroutine's own frames in `text`, `Backtrace`'s Display of a stack
/// taken on a coroutine: the leading runtime frames and everything from
/// `begin_short_backtrace` on (the coroutine's start, corosensei, the
/// worker) are cut. If that leaves nothing but runtime frames were cut
/// (the coroutine's own were inlined into them), the outermost runtime
/// frame stays: the goro call the coroutine is in. Without symbols no
/// frame is recognised, and all stay.
fn coroutine_frames(text: &str) -> Resolved {
    let frames = panic_hook::frames(text);
    let end = frames
        .iter()
        .position(|f| f.names(BEGIN_SHORT_BACKTRACE))
        .unwrap_or(frames.len());
    let start = frames[..end]
        .iter()
        .take_while(|f| RUNTIME_FRAMES.iter().any(|p| f.symbol().starts_with(p)))
        .count();
    let entry_only = start == end && end > 0;
    let kept = if entry_only {
        &frames[end - 1..end]
    } else {
        &frames[start..end]
    };
    let frames = kept
        .iter()
        .map(|f| {
            let (file, line, column) = f.location().map_or((None, None, None), parse_location);
            StackFrame {
                function: f.symbol().to_string(),
                file,
                line,
                column,
            }
        })
        .collect();
    Resolved { frames, entry_only }
}

/// `FILE:LINE:COL` (or `FILE:LINE`, or `FILE`) as std prints a location.
fn parse_location(s: &str) -> (Option<String>, Option<u32>, Option<u32>) {
    let number = |t: &str| t.parse::<u32>().ok();
    let Some((rest, last)) = s.rsplit_once(':').and_then(|(r, l)| Some((r, number(l)?))) else {
        return (Some(s.into()), None, None);
    };
    match rest
        .rsplit_once(':')
        .and_then(|(f, l)| Some((f, number(l)?)))
    {
        Some((file, line)) => (Some(file.into()), Some(line), Some(last)),
        None => (Some(rest.into()), Some(last), None),
    }
}

impl PartialEq for CallStack {
    fn eq(&self, other: &CallStack) -> bool {
        self.ips() == other.ips()
    }
}

impl Eq for CallStack {}

impl Hash for CallStack {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.ips().hash(state);
    }
}

impl fmt::Display for StackFrame {
    /// `function` and, on the next line, `    at FILE:LINE:COL`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.function)?;
        if let Some(file) = &self.file {
            write!(f, "\n    at {file}")?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for CallStack {
    /// One frame per entry, as `StackFrame` prints it, each line indented
    /// by the formatter's width (`{:4}` indents by four).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let indent = " ".repeat(f.width().unwrap_or(0));
        for frame in self.frames() {
            for line in frame.to_string().lines() {
                writeln!(f, "{indent}{line}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for CallStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.frames()).finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn locations_parse_with_and_without_line_and_column() {
        assert_eq!(
            parse_location("./src/main.rs:9:42"),
            (Some("./src/main.rs".into()), Some(9), Some(42))
        );
        assert_eq!(
            parse_location("/a/b.rs:7"),
            (Some("/a/b.rs".into()), Some(7), None)
        );
        assert_eq!(parse_location("b.rs"), (Some("b.rs".into()), None, None));
    }

    #[test]
    fn frames_are_cut_to_the_coroutines_own() {
        let text = "   0: goro::runtime::scheduler::worker::Worker::switch_out
             at ./src/runtime/scheduler/worker.rs:1047:9
   1: <goro::chan::Receiver<T>>::recv
             at ./src/chan/mod.rs:300:5
   2: app::handler
             at ./src/handler.rs:42:17
   3: app::main::{{closure}}
             at ./src/main.rs:20:5
   4: goro::runtime::diag::panic_hook::begin_short_backtrace
             at ./src/runtime/diag/panic_hook.rs:62:18
   5: goro::runtime::task::header::Cell<F,T>::run
   6: stack_init_trampoline
";
        let Resolved { frames, entry_only } = coroutine_frames(text);
        let names: Vec<&str> = frames.iter().map(|f| f.function.as_str()).collect();
        assert_eq!(names, ["app::handler", "app::main::{{closure}}"]);
        assert_eq!(frames[0].file.as_deref(), Some("./src/handler.rs"));
        assert_eq!(frames[0].line, Some(42));
        assert_eq!(frames[0].column, Some(17));
        assert!(!entry_only);
    }

    /// A release build without debug info (cargo's default): symbols from
    /// the symbol table, no lines, and `app::sleeper` inlined into goro's
    /// entry frame, as `cargo run --release` shows it.
    pub(crate) const NO_DEBUG_INFO: &str = "   0: goro::runtime::diag::callstack::CallStack::capture
   1: goro::runtime::diag::traceback::Tracer::take
   2: goro::runtime::scheduler::worker::Worker::park_running_until
   3: goro::time::sleep_deadline
   4: goro::time::sleep
   5: goro::runtime::diag::panic_hook::begin_short_backtrace
   6: goro::runtime::task::header::Cell<F,T>::run
   7: corosensei::coroutine::Coroutine<Input,Yield,Return,Stack>::with_stack_unchecked::coroutine_func
   8: stack_init_trampoline
   9: goro::runtime::scheduler::worker::Worker::answer_trace_requests
  10: start_thread
             at ./nptl/pthread_create.c:442:8
";

    #[test]
    fn without_debug_info_the_goro_call_stays_when_nothing_else_does() {
        let Resolved { frames, entry_only } = coroutine_frames(NO_DEBUG_INFO);
        assert!(entry_only);
        assert_eq!(
            frames,
            [StackFrame {
                function: "goro::time::sleep".into(),
                file: None,
                line: None,
                column: None,
            }]
        );
    }

    #[test]
    fn a_frame_with_a_symbol_but_no_line_is_kept() {
        let text = NO_DEBUG_INFO.replace(
            "   5: goro::runtime::diag::panic_hook::begin_short_backtrace",
            "   5: app::handler\n   6: goro::runtime::diag::panic_hook::begin_short_backtrace",
        );
        let Resolved { frames, entry_only } = coroutine_frames(&text);
        assert!(!entry_only);
        let names: Vec<&str> = frames.iter().map(|f| f.function.as_str()).collect();
        assert_eq!(names, ["app::handler"]);
        assert_eq!(frames[0].line, None);
        assert_eq!(frames[0].to_string(), "app::handler");
    }
}
