//! Signals as channel values: Go's `os/signal.Notify`.
//!
//! ```no_run
//! use goro::signal::{self, SIGINT, SIGTERM};
//!
//! goro::run(|| {
//!     let stop = signal::notify(&[SIGINT, SIGTERM]).unwrap();
//!     let sig = stop.recv().unwrap(); // parks until Ctrl-C or `kill`
//!     println!("got {sig}, shutting down");
//! });
//! ```
//!
//! # Design
//!
//! A signal arrives on whatever thread the kernel picks, in the middle of
//! whatever that thread was doing, so the handler may only make
//! async-signal-safe calls. goro's handler (one for the process, installed
//! with `SA_SIGINFO | SA_RESTART | SA_ONSTACK`) writes the signal's number
//! as one byte to a self-pipe, non-blocking and close-on-exec, and that is
//! all; when the pipe is full the byte is dropped (the kernel coalesces
//! pending signals too, so no signal API promises a count).
//!
//! A dispatcher coroutine, spawned by the first `notify`, reads the pipe
//! through the netpoller (`PollDesc`), so it is parked while no signal
//! comes. For each byte it `try_send`s the signal into the buffered channel
//! of every registration that asked for it. A full channel drops the
//! signal, as Go's `Notify` does: a slow receiver never stalls the others.
//!
//! Registration ends when every clone of the `Receiver` is dropped: the
//! dispatcher's `try_send` then fails `Closed` and it removes the entry. A
//! signal no live registration wants any more gets back the disposition it
//! had before the first `notify` of it (usually the default action, as
//! after Go's `signal.Reset`); a signal that reached goro's handler only to
//! find no receiver is then raised again, so that the old disposition (to
//! terminate, say) applies to it rather than it being lost.
//!
//! Like Go, goro takes a signal over while it is notified: the handler
//! installed before is not chained. Signals the runtime needs or that
//! cannot be caught are refused (see `notify`). The dispatcher counts in
//! `runtime::num_coroutines` once started.
//!
//! Invariants: `PIPE_WRITE` is set before any handler is installed and is
//! never closed, so the handler always writes to the pipe; `State::handled`
//! is exactly the set of signals whose handler is goro's, and `previous`
//! holds, for each of them, the action to restore.

use std::fmt;
use std::io;
use std::mem;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};

use libc::c_int;

use crate::chan::{self, Receiver, Sender, TrySendError};
use crate::error::described;
use crate::runtime::io::netpoll::{Dir, PollDesc};
use crate::runtime::lock;

/// A signal number, such as `SIGINT`. Displays as its name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(c_int);

/// Hangup of the controlling terminal; often "reload configuration".
pub const SIGHUP: Signal = Signal(libc::SIGHUP);
/// Interrupt from the keyboard (Ctrl-C).
pub const SIGINT: Signal = Signal(libc::SIGINT);
/// Quit from the keyboard (Ctrl-\).
pub const SIGQUIT: Signal = Signal(libc::SIGQUIT);
/// Abort (`abort(3)`).
pub const SIGABRT: Signal = Signal(libc::SIGABRT);
/// Kill: cannot be caught.
pub const SIGKILL: Signal = Signal(libc::SIGKILL);
/// User-defined signal 1.
pub const SIGUSR1: Signal = Signal(libc::SIGUSR1);
/// User-defined signal 2.
pub const SIGUSR2: Signal = Signal(libc::SIGUSR2);
/// Write to a pipe or socket with no reader.
pub const SIGPIPE: Signal = Signal(libc::SIGPIPE);
/// Timer expiry (`alarm(2)`).
pub const SIGALRM: Signal = Signal(libc::SIGALRM);
/// Polite termination request (`kill` without a signal name).
pub const SIGTERM: Signal = Signal(libc::SIGTERM);
/// A child process stopped or ended.
pub const SIGCHLD: Signal = Signal(libc::SIGCHLD);
/// Continue after a stop.
pub const SIGCONT: Signal = Signal(libc::SIGCONT);
/// Stop: cannot be caught.
pub const SIGSTOP: Signal = Signal(libc::SIGSTOP);
/// Stop from the keyboard (Ctrl-Z).
pub const SIGTSTP: Signal = Signal(libc::SIGTSTP);
/// Terminal window size changed.
pub const SIGWINCH: Signal = Signal(libc::SIGWINCH);

/// Highest signal number on Linux (`_NSIG - 1`); bit `n - 1` of a mask
/// stands for signal `n`.
const MAX_SIGNAL: c_int = 64;

/// Signals a receiver holds before further ones to it are dropped.
const RECEIVER_BUFFER: usize = 16;

/// Bytes the dispatcher takes from the pipe per read.
const READ_BATCH: usize = 64;

/// The self-pipe's write end, -1 until the dispatcher starts; never closed.
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

/// Registrations and the handlers installed for them.
static STATE: Mutex<State> = Mutex::new(State {
    started: false,
    receivers: Vec::new(),
    handled: 0,
    previous: [None; MAX_SIGNAL as usize + 1],
});

struct State {
    /// Whether the pipe and the dispatcher exist (set once, never cleared).
    started: bool,
    /// Live registrations, and dropped ones the dispatcher has not yet
    /// noticed.
    receivers: Vec<Registration>,
    /// Signals whose handler is goro's, as a mask.
    handled: u64,
    /// For each signal in `handled`, the action it had before.
    previous: [Option<libc::sigaction>; MAX_SIGNAL as usize + 1],
}

/// One `notify` call's channel and signals.
struct Registration {
    /// The signals it asked for, as a mask.
    mask: u64,
    /// Its channel; `try_send` fails `Closed` once every receiver is gone.
    tx: Sender<Signal>,
}

impl Signal {
    /// The signal with number `n`. Any number is accepted here; `notify`
    /// refuses the ones it cannot handle.
    pub const fn from_raw(n: c_int) -> Signal {
        Signal(n)
    }

    /// The signal's number.
    pub const fn as_raw(self) -> c_int {
        self.0
    }

    fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            libc::SIGHUP => "SIGHUP",
            libc::SIGINT => "SIGINT",
            libc::SIGQUIT => "SIGQUIT",
            libc::SIGILL => "SIGILL",
            libc::SIGTRAP => "SIGTRAP",
            libc::SIGABRT => "SIGABRT",
            libc::SIGBUS => "SIGBUS",
            libc::SIGFPE => "SIGFPE",
            libc::SIGKILL => "SIGKILL",
            libc::SIGUSR1 => "SIGUSR1",
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGUSR2 => "SIGUSR2",
            libc::SIGPIPE => "SIGPIPE",
            libc::SIGALRM => "SIGALRM",
            libc::SIGTERM => "SIGTERM",
            libc::SIGSTKFLT => "SIGSTKFLT",
            libc::SIGCHLD => "SIGCHLD",
            libc::SIGCONT => "SIGCONT",
            libc::SIGSTOP => "SIGSTOP",
            libc::SIGTSTP => "SIGTSTP",
            libc::SIGTTIN => "SIGTTIN",
            libc::SIGTTOU => "SIGTTOU",
            libc::SIGURG => "SIGURG",
            libc::SIGXCPU => "SIGXCPU",
            libc::SIGXFSZ => "SIGXFSZ",
            libc::SIGVTALRM => "SIGVTALRM",
            libc::SIGPROF => "SIGPROF",
            libc::SIGWINCH => "SIGWINCH",
            libc::SIGIO => "SIGIO",
            libc::SIGPWR => "SIGPWR",
            libc::SIGSYS => "SIGSYS",
            _ => return None,
        })
    }

    /// The mask bit of a signal already checked to be in range.
    fn bit(self) -> u64 {
        1 << (self.0 - 1)
    }

    /// Fails if `notify` cannot take this signal over.
    fn check(self) -> io::Result<()> {
        let why = match self.0 {
            libc::SIGKILL | libc::SIGSTOP => "cannot be caught",
            libc::SIGSEGV | libc::SIGBUS => {
                "is used by the runtime to report stack overflows and faults"
            }
            libc::SIGFPE | libc::SIGILL => "is a fault, to be handled on the faulting thread",
            n if !(1..=MAX_SIGNAL).contains(&n) => "is not a signal number (1 to 64)",
            n if n >= 32 && n < libc::SIGRTMIN() => "is reserved by the C library",
            _ => return Ok(()),
        };
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal::notify: {self} {why}"),
        ))
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "signal {}", self.0),
        }
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<Signal> for c_int {
    fn from(s: Signal) -> c_int {
        s.0
    }
}

/// Relays `signals` to the returned channel (Go's `signal.Notify`): each
/// time one of them arrives, the receiver gets it.
///
/// While any receiver wants a signal, goro handles it and its usual effect
/// (terminating the process, for most) does not happen. Dropping every
/// clone of the receiver ends the registration; once no receiver wants a
/// signal, it gets back the disposition it had before.
///
/// The channel holds 16 signals; while it is full, further signals to it
/// are dropped, as in Go. Several `notify` calls for the same signal each
/// get every arrival. May be called from a coroutine or a plain thread; the
/// first call starts the runtime if needed.
///
/// # Errors
/// `InvalidInput`, naming the signal, for an empty list, for a signal that
/// cannot be caught (`SIGKILL`, `SIGSTOP`), for one the runtime needs
/// (`SIGSEGV`, `SIGBUS`: stack overflow reports), for a fault signal
/// (`SIGFPE`, `SIGILL`, which cannot be handled later on another thread),
/// and for a number out of range or reserved by the C library. The OS error
/// if the pipe or the dispatcher cannot be created.
pub fn notify(signals: &[Signal]) -> io::Result<Receiver<Signal>> {
    if signals.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "signal::notify: no signals given",
        ));
    }
    let mut mask = 0;
    for &s in signals {
        s.check()?;
        mask |= s.bit();
    }
    let mut st = lock(&STATE);
    st.start()?;
    let (tx, rx) = chan::chan(RECEIVER_BUFFER);
    // Registered before the handler is installed: a signal that arrives
    // right after finds its receiver.
    st.receivers.push(Registration { mask, tx });
    let missing = mask & !st.handled;
    for sig in signals_in(missing) {
        if let Err(e) = st.install(sig) {
            st.receivers.pop();
            st.reset_unwanted();
            return Err(described(
                format!("signal::notify: cannot handle {sig}: {e}"),
                e,
            ));
        }
    }
    Ok(rx)
}

/// The signals in `mask`, lowest first.
fn signals_in(mut mask: u64) -> impl Iterator<Item = Signal> {
    std::iter::from_fn(move || {
        if mask == 0 {
            return None;
        }
        let n = mask.trailing_zeros() as c_int + 1;
        mask &= mask - 1;
        Some(Signal(n))
    })
}

impl State {
    /// Creates the self-pipe and spawns the dispatcher, once.
    fn start(&mut self) -> io::Result<()> {
        if self.started {
            return Ok(());
        }
        let mut fds = [-1; 2];
        // SAFETY: pipe2 writes two fds into the array we pass.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded: both fds are open and ours alone.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let pd = PollDesc::new(read, false);
        let spawned = crate::Builder::new()
            .name("goro-signal")
            .spawn(move || dispatch(pd));
        if let Err(e) = spawned {
            // SAFETY: nothing else has seen `pd`: we own it, and no
            // operation is in flight on it. `write` closes as it drops.
            unsafe { pd.recycle() };
            return Err(e);
        }
        PIPE_WRITE.store(write.into_raw_fd(), Ordering::Release);
        self.started = true;
        Ok(())
    }

    /// Installs goro's handler for `sig`, keeping the action it replaces.
    fn install(&mut self, sig: Signal) -> io::Result<()> {
        // SAFETY: a zeroed sigaction is a valid "no action" value, which we
        // fill in; sigaction only reads and writes the structs we pass, and
        // `on_signal` has the SA_SIGINFO signature.
        unsafe {
            let mut action: libc::sigaction = mem::zeroed();
            action.sa_sigaction = on_signal as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = mem::zeroed();
            if libc::sigaction(sig.0, &action, &mut previous) != 0 {
                return Err(io::Error::last_os_error());
            }
            self.previous[sig.0 as usize] = Some(previous);
        }
        self.handled |= sig.bit();
        Ok(())
    }

    /// Gives every handled signal that no registration wants its previous
    /// action back.
    fn reset_unwanted(&mut self) {
        let wanted = self.receivers.iter().fold(0, |m, r| m | r.mask);
        for sig in signals_in(self.handled & !wanted) {
            if let Some(previous) = self.previous[sig.0 as usize].take() {
                // SAFETY: `previous` is an action sigaction returned for this
                // signal; restoring it only reads the struct.
                unsafe { libc::sigaction(sig.0, &previous, ptr::null_mut()) };
            }
            self.handled &= !sig.bit();
        }
    }

    /// Relays `sig` to every registration that wants it, forgetting those
    /// whose receivers are gone. False if no live registration wants it.
    fn relay(&mut self, sig: Signal) -> bool {
        let mut wanted = false;
        self.receivers.retain(|r| {
            if r.mask & sig.bit() == 0 {
                return true;
            }
            match r.tx.try_send(sig) {
                // A full channel drops the signal but still wants more.
                Ok(()) | Err(TrySendError::Full(_)) => {
                    wanted = true;
                    true
                }
                Err(TrySendError::Closed(_)) => false,
            }
        });
        wanted
    }
}

/// The signal handler: the signal's number to the self-pipe, nothing else.
extern "C" fn on_signal(sig: c_int, _info: *mut libc::siginfo_t, _context: *mut libc::c_void) {
    // SAFETY: errno is thread-local; the interrupted code may be about to
    // read it, so it is put back as it was.
    let errno = unsafe { *libc::__errno_location() };
    let fd = PIPE_WRITE.load(Ordering::Acquire);
    let byte = sig as u8;
    // SAFETY: write(2) is async-signal-safe and reads one byte from a local.
    // The fd is the pipe's write end, never closed; a full pipe (EAGAIN)
    // drops the byte.
    unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// The dispatcher coroutine: waits on the pipe and relays what it reads.
fn dispatch(pd: &'static PollDesc) {
    let mut buf = [0u8; READ_BATCH];
    loop {
        let read = pd.io(Dir::Read, |fd| {
            // SAFETY: `buf` is valid for writes of its length.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok((n as usize, false))
            }
        });
        // The pipe is ours and its write end never closes, so it has no end
        // of file and no errors but EAGAIN and EINTR, which `io` retries.
        let Ok(n @ 1..) = read else {
            return;
        };
        let mut orphans = 0u64;
        {
            let mut st = lock(&STATE);
            for &byte in &buf[..n] {
                let sig = Signal(c_int::from(byte));
                if !st.relay(sig) {
                    orphans |= sig.bit();
                }
            }
            st.reset_unwanted();
        }
        for sig in signals_in(orphans) {
            // SAFETY: kill has no memory preconditions. The signal now has
            // its previous disposition back, which decides what it does.
            unsafe { libc::kill(libc::getpid(), sig.0) };
        }
    }
}
