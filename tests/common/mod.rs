//! Helpers shared by the integration tests. Each test binary uses a
//! different subset of them.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long any one test may take before it counts as hung.
pub const HANG: Duration = Duration::from_secs(60);

/// Runs `f` on a fresh plain thread and returns its result; fails the test
/// if `f` has not returned within `HANG` (a hung call shows as a failure,
/// not as a test run that never ends). A panic in `f` resumes here.
pub fn limit<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(HANG) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Disconnected) => match t.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the result was sent"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung: no result within {HANG:?}"),
    }
}

/// Runs `f` as a goro main coroutine, within `HANG`.
pub fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    limit(move || goro::run(f))
}

/// Environment variable that marks a child process re-running one test.
const CHILD: &str = "GORO_NET_TEST_CHILD";

/// Whether this process is a child started by `child` (or `spawn_child`)
/// for the scenario `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD).as_deref() == Ok(name)
}

fn child_command(test: &str, env: &[(&str, &str)]) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, test)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Re-runs this binary's test `test` alone in a child process with `env`
/// (where `is_child(test)` is true) and checks that it passed. For what a
/// test cannot do inside a binary whose other tests share the runtime and
/// the fd table: fix the worker count, count fds.
pub fn child(test: &str, env: &[(&str, &str)]) {
    let mut c = child_command(test, env).spawn().expect("start the child");
    let end = Instant::now() + HANG;
    let status = loop {
        if let Some(status) = c.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() > end {
            let _ = c.kill();
            let _ = c.wait();
            panic!("child {test} hung");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(
        status.success() && out.contains("1 passed"),
        "child {test} failed ({status}):\n{out}\n{err}"
    );
}

/// A child re-running test `test` as a server: it prints `listening ADDR`
/// and serves until killed.
pub struct ServerChild {
    /// The child process; killed on drop.
    child: Child,
    /// The address it printed.
    pub addr: String,
}

impl ServerChild {
    pub fn spawn(test: &str) -> ServerChild {
        let mut child = child_command(test, &[]).spawn().expect("start the child");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                // libtest may have begun the line with the test's name.
                Some(Ok(line)) => {
                    if let Some((_, a)) = line.split_once("listening ") {
                        break a.trim().to_string();
                    }
                }
                _ => {
                    let _ = child.kill();
                    let mut err = String::new();
                    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
                    panic!("server child {test} did not start:\n{err}");
                }
            }
        };
        ServerChild { child, addr }
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many fds this process has open.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// The hard limit on open fds.
pub fn hard_fd_limit() -> u64 {
    // SAFETY: getrlimit writes only the struct we pass.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_max
    }
}

/// Whether `fd` is close-on-exec.
pub fn is_cloexec(fd: std::os::fd::RawFd) -> bool {
    // SAFETY: F_GETFD reads flags only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    assert!(flags >= 0, "fcntl on fd {fd}");
    flags & libc::FD_CLOEXEC != 0
}

/// Whether `fd` is non-blocking.
pub fn is_nonblocking(fd: std::os::fd::RawFd) -> bool {
    // SAFETY: F_GETFL reads flags only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0, "fcntl on fd {fd}");
    flags & libc::O_NONBLOCK != 0
}

/// Which of `fds` a child process (a shell) inherits.
pub fn inherited_by_child(fds: &[std::os::fd::RawFd]) -> Vec<std::os::fd::RawFd> {
    let list: Vec<String> = fds.iter().map(|fd| fd.to_string()).collect();
    let script = format!(
        "for fd in {}; do [ -e /proc/$$/fd/$fd ] && echo $fd; done; true",
        list.join(" ")
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("run sh");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect()
}

/// A path for a Unix socket that does not exist yet, unique to this
/// process and `tag`.
pub fn socket_path(tag: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("goro-{}-{tag}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// A unique Linux abstract socket name for `tag`.
pub fn abstract_name(tag: &str) -> String {
    format!("goro-{}-{tag}", std::process::id())
}

/// Asserts that `e` is the closed error: `NotConnected`, "use of closed
/// network connection", and `goro::net::is_closed`.
#[track_caller]
pub fn assert_closed(e: &std::io::Error) {
    assert_eq!(e.kind(), std::io::ErrorKind::NotConnected, "{e}");
    assert!(
        e.to_string().contains("use of closed network connection"),
        "{e}"
    );
    assert!(goro::net::is_closed(e), "{e}");
}

/// Asserts that `e` is a timeout.
#[track_caller]
pub fn assert_timeout(e: &std::io::Error) {
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
}

/// The scenario this process runs as a child, if it is one.
pub fn child_scenario() -> Option<String> {
    std::env::var("GORO_TEST_CHILD").ok()
}

/// Runs test `test` of this test binary in a child process with `envs`,
/// marked as scenario `test`, and returns its output. Scenarios that change
/// process-wide state (the worker count, signal dispositions) or that must
/// crash run this way.
pub fn run_child(test: &str, envs: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("the test binary's path");
    Command::new(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("GORO_TEST_CHILD", test)
        .env_remove("GORO_WORKERS")
        .env("RUST_BACKTRACE", "0")
        .envs(envs.iter().copied())
        .output()
        .expect("the child test process runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The kernel's id of the calling thread: a system call, so never a value
/// the compiler cached from before a coroutine switch.
pub fn gettid() -> i64 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

/// Resident memory of this process, in bytes.
pub fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize
}

/// Runs `round` `rounds` times (at least 3) and returns how much resident
/// memory grew from the end of the second round to the end of the last:
/// what a program repeating `round` keeps growing by, once its allocator
/// has warmed up.
pub fn steady_rss_growth(rounds: usize, round: impl Fn()) -> isize {
    assert!(rounds >= 3);
    round();
    round();
    let base = rss() as isize;
    for _ in 2..rounds {
        round();
    }
    rss() as isize - base
}

/// Most a steady state may grow by in `steady_rss_growth`: noise from the
/// allocator, not a leak (a leak of 100 bytes per round item is 10 MB).
pub const RSS_SLACK: isize = 1 << 20;

/// A waker that counts its wakes, and whose `Arc` count shows how many
/// copies of it anything still holds.
pub struct CountingWaker {
    /// Wakes so far.
    pub wakes: std::sync::atomic::AtomicUsize,
}

impl std::task::Wake for CountingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.wakes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A counting waker and the `Waker` made from it.
pub fn counting_waker() -> (std::sync::Arc<CountingWaker>, std::task::Waker) {
    let c = std::sync::Arc::new(CountingWaker {
        wakes: std::sync::atomic::AtomicUsize::new(0),
    });
    (c.clone(), std::task::Waker::from(c))
}

/// Polls `f` once with `waker`.
pub fn poll_once<F: std::future::Future + Unpin>(
    f: &mut F,
    waker: &std::task::Waker,
) -> std::task::Poll<F::Output> {
    std::pin::Pin::new(f).poll(&mut std::task::Context::from_waker(waker))
}
