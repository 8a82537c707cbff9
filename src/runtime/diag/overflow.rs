//! A stack overflow in a coroutine: say which one, then abort.
//!
//! A coroutine that runs off the end of its stack touches the guard region
//! below it and takes a SIGSEGV. The handler runs on the thread's alternate
//! signal stack (the faulting stack has no room left); if the address lies in
//! the running coroutine's guard, it prints the coroutine's name, id and
//! stack size and aborts, as std does for threads. Any other fault goes to
//! the handler that was installed before ours (std's, or the default action).
//!
//! The handler only reads atomics and thread-locals that need no lazy
//! initialization, formats into a stack buffer and calls `write(2)` and
//! `abort(3)`: nothing that allocates or takes a lock.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::{mem, ptr};

use crate::runtime::scheduler::worker::Worker;
use crate::runtime::task::header::Header;
use crate::runtime::task::stack::guard_size;

/// Signals a stack overflow can raise.
const SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// Alternate signal stack size for worker threads that have none.
const ALT_STACK_BYTES: usize = 64 * 1024;

/// The actions installed before ours, in `SIGNALS` order.
struct Previous([libc::sigaction; 2]);

// SAFETY: plain data (handler addresses, flags, a signal mask); written once
// before our handler is installed, only read afterwards.
unsafe impl Sync for Previous {}
// SAFETY: as above; no thread affinity.
unsafe impl Send for Previous {}

static PREVIOUS: OnceLock<Previous> = OnceLock::new();

/// Installs the handler for the process, once.
pub(crate) fn install() {
    PREVIOUS.get_or_init(|| {
        // SAFETY: zeroed sigaction structs are valid "no action" values, and
        // sigaction only reads/writes the structs we pass.
        unsafe {
            let mut prev: [libc::sigaction; 2] = mem::zeroed();
            for (i, &sig) in SIGNALS.iter().enumerate() {
                libc::sigaction(sig, ptr::null(), &mut prev[i]);
            }
            Previous(prev)
        }
    });
    for &sig in &SIGNALS {
        // SAFETY: as above; `on_fault` has the SA_SIGINFO signature, and
        // PREVIOUS is set before the handler can run.
        unsafe {
            let mut action: libc::sigaction = mem::zeroed();
            action.sa_sigaction = on_fault as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, ptr::null_mut());
        }
    }
}

/// Gives the calling worker thread an alternate signal stack if it has none
/// (std gives its threads one only when its own handler is installed).
pub(crate) fn prepare_thread() {
    // SAFETY: sigaltstack only reads/writes the structs we pass; the new
    // stack is a fresh private mapping that this thread keeps for life.
    unsafe {
        let mut old: libc::stack_t = mem::zeroed();
        if libc::sigaltstack(ptr::null(), &mut old) != 0 || old.ss_flags & libc::SS_DISABLE == 0 {
            return;
        }
        let p = libc::mmap(
            ptr::null_mut(),
            ALT_STACK_BYTES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return;
        }
        let new = libc::stack_t {
            ss_sp: p,
            ss_flags: 0,
            ss_size: ALT_STACK_BYTES,
        };
        libc::sigaltstack(&new, ptr::null_mut());
    }
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let (h, guard) = Worker::running_for_fault();
    if !h.is_null() {
        // SAFETY: non-null only while that coroutine runs on this thread; its
        // task (and header) outlives its run.
        let header = unsafe { &*h };
        if guard != 0 && addr >= guard && addr < guard + guard_size() {
            report_overflow(header);
            // SAFETY: abort has no preconditions.
            unsafe { libc::abort() };
        }
    }
    chain(sig, info, ctx);
}

fn report_overflow(header: &Header) {
    let mut msg = FixedBuf::new();
    let _ = writeln!(
        msg,
        "coroutine '{}' (#{}) has overflowed its stack ({} KiB); raise it with Builder::stack_size",
        header.display_name(),
        header.id,
        header.stack_size() / 1024
    );
    let bytes = msg.as_bytes();
    // SAFETY: writes a live buffer to stderr; write(2) is async-signal-safe.
    unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
}

/// Hands a fault that is not ours to the previous handler.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let prev = PREVIOUS
        .get()
        .and_then(|p| SIGNALS.iter().position(|&s| s == sig).map(|i| p.0[i]));
    match prev {
        Some(p) if p.sa_sigaction != libc::SIG_DFL && p.sa_sigaction != libc::SIG_IGN => {
            if p.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous action declared SA_SIGINFO, so its
                // handler has this signature; we pass the kernel's arguments.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { mem::transmute(p.sa_sigaction) };
                f(sig, info, ctx);
            } else {
                // SAFETY: a handler without SA_SIGINFO takes only the signal.
                let f: extern "C" fn(libc::c_int) = unsafe { mem::transmute(p.sa_sigaction) };
                f(sig);
            }
        }
        _ => {
            // Restore the default action and return: the faulting instruction
            // runs again and the process dies as it would have without us.
            // SAFETY: a zeroed sigaction with SIG_DFL is a valid action.
            unsafe {
                let mut dfl: libc::sigaction = mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, ptr::null_mut());
            }
        }
    }
}

/// A message buffer on the stack; what does not fit is cut.
struct FixedBuf {
    bytes: [u8; 512],
    len: usize,
}

impl FixedBuf {
    fn new() -> FixedBuf {
        FixedBuf {
            bytes: [0; 512],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl std::fmt::Write for FixedBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}
