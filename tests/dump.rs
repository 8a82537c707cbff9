//! `runtime::dump`: who is alive, what they wait on, for how long, and
//! where in the code.

mod common;
use common::{child_scenario, run_child, stderr, stdout};
use goro::runtime::{CallStack, CoroutineState, Dump, NoStack, WaitingOn};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

#[test]
fn dump_lists_parked_coroutines_with_their_reasons() {
    goro::run(|| {
        let (tx, rx) = goro::chan::chan::<u32>(0);
        let receiver = goro::Builder::new()
            .name("dump-receiver")
            .spawn(move || rx.recv().unwrap())
            .unwrap();
        let sleeper = goro::Builder::new()
            .name("dump-sleeper")
            .spawn(|| goro::sleep(Duration::from_millis(400)))
            .unwrap();
        let sleeper_id = sleeper.coroutine().id();
        let joiner = goro::Builder::new()
            .name("dump-joiner")
            .spawn(move || sleeper.join().unwrap())
            .unwrap();
        // Let them park, and the monitor's clock move on.
        goro::sleep(Duration::from_millis(100));
        let d = goro::runtime::dump();
        let find = |name: &str| {
            d.coroutines
                .iter()
                .find(|c| c.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("{name} missing from\n{d}"))
        };
        let r = find("dump-receiver");
        assert_eq!(r.state, CoroutineState::Parked, "{d}");
        assert_eq!(r.waiting_on, Some(WaitingOn::ChannelReceive), "{d}");
        assert!(r.location.file().ends_with("tests/dump.rs"), "{d}");
        assert!(r.for_how_long.is_some(), "{d}");
        assert_eq!(
            find("dump-sleeper").waiting_on,
            Some(WaitingOn::Sleep),
            "{d}"
        );
        assert_eq!(
            find("dump-joiner").waiting_on,
            Some(WaitingOn::Join(sleeper_id)),
            "{d}"
        );
        // The dumping coroutine itself is running.
        let me = goro::current().unwrap().id();
        let mine = d
            .coroutines
            .iter()
            .find(|c| c.id == me)
            .expect("the caller is listed");
        assert!(matches!(mine.state, CoroutineState::Running { .. }), "{d}");
        // Its stack was taken while it waited for the workers' answers,
        // and starts at the code that called `dump`.
        let mine = mine.stack.as_ref().expect("the caller's stack");
        assert!(mine.frames()[0].function.starts_with("dump::"), "{mine}");
        let text = d.to_string();
        assert!(
            text.contains("'dump-receiver' [parked: channel receive"),
            "{text}"
        );
        assert!(text.contains("spawned at tests/dump.rs:"), "{text}");
        tx.send(1).unwrap();
        assert_eq!(receiver.join().unwrap(), 1);
        joiner.join().unwrap();
    });
}

#[test]
fn dump_works_from_a_plain_thread() {
    let h = goro::spawn(|| goro::sleep(Duration::from_millis(200)));
    std::thread::sleep(Duration::from_millis(50));
    let d = goro::runtime::dump();
    let id = h.coroutine().id();
    assert!(d.coroutines.iter().any(|c| c.id == id), "{d}");
    h.join().unwrap();
}

/// With `GORO_TRACEBACK=1`, SIGQUIT prints the dump, stacks included, to
/// stderr and the program carries on (Go exits; a server under inspection
/// should not). The child reads its own stderr through a pipe until the
/// dump is there, then shows it on stdout.
#[test]
fn sigquit_prints_a_dump_and_continues() {
    if child_scenario().is_some() {
        let (tx, rx) = goro::chan::chan::<()>(0);
        let h = goro::Builder::new()
            .name("quit-waiter")
            .spawn(move || rx.recv())
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let dump = stderr_while(|| {
            // SAFETY: raising a signal the runtime handles; no memory involved.
            unsafe { libc::raise(libc::SIGQUIT) };
        });
        print!("{dump}");
        tx.send(()).unwrap();
        h.join().unwrap().unwrap();
        println!("still running");
        return;
    }
    let out = run_child(
        "sigquit_prints_a_dump_and_continues",
        &[("GORO_TRACEBACK", "1")],
    );
    assert!(out.status.success(), "{:?} {}", out.status, stderr(&out));
    let out = stdout(&out);
    assert!(out.contains("still running"), "{out}");
    assert!(
        out.contains("goro: SIGQUIT: dump of all coroutines"),
        "{out}"
    );
    assert!(
        out.contains("'quit-waiter' [parked: channel receive"),
        "{out}"
    );
    // With its stack, down to the closure it was spawned with.
    assert!(out.contains(QUIT_WAITER_FRAME), "{out}");
}

/// The quit-waiter's closure, as its stack shows it.
const QUIT_WAITER_FRAME: &str = "dump::sigquit_prints_a_dump_and_continues::{{closure}}";

/// Runs `f` with stderr sent to a pipe, and returns what came through it
/// until the quit-waiter's frame did (or nothing more came for a minute).
fn stderr_while(f: impl FnOnce()) -> String {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe(2) writes two fds into the array we pass.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fd 2 is open; dup and dup2 only duplicate descriptors.
    let saved = unsafe { libc::dup(2) };
    // SAFETY: as above; fd 2 now writes into the pipe.
    assert!(unsafe { libc::dup2(fds[1], 2) } >= 0);
    f();
    // SAFETY: fds[0] is the pipe's read end, owned by nobody else.
    let mut pipe = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains(QUIT_WAITER_FRAME) {
        let mut pfd = libc::pollfd {
            fd: fds[0],
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 60_000) } <= 0 {
            break;
        }
        match pipe.read(&mut buf) {
            Ok(n) if n > 0 => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            _ => break,
        }
    }
    // SAFETY: restores the saved stderr and closes descriptors we own.
    unsafe {
        libc::dup2(saved, 2);
        libc::close(saved);
        libc::close(fds[1]);
    }
    text
}

#[test]
fn dump_shows_a_socket_read_with_its_fd() {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    goro::run(|| {
        let ln = goro::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = goro::net::TcpStream::connect(ln.local_addr().unwrap()).unwrap();
        let (server, _) = ln.accept().unwrap();
        let fd = server.as_raw_fd();
        let reader = goro::Builder::new()
            .name("dump-socket-reader")
            .spawn(move || {
                let mut buf = [0u8; 16];
                (&server).read(&mut buf).unwrap()
            })
            .unwrap();
        goro::sleep(Duration::from_millis(50));
        let d = goro::runtime::dump();
        let r = d
            .coroutines
            .iter()
            .find(|c| c.name.as_deref() == Some("dump-socket-reader"))
            .unwrap_or_else(|| panic!("missing from\n{d}"));
        assert_eq!(r.state, CoroutineState::Parked, "{d}");
        assert_eq!(r.waiting_on, Some(WaitingOn::Read(fd)), "{d}");
        assert!(
            d.to_string().contains(&format!("[parked: read fd {fd}")),
            "{d}"
        );
        use std::io::Write;
        (&client).write_all(b"x").unwrap();
        assert_eq!(reader.join().unwrap(), 1);
    });
}

/// A coroutine spawned but not started is listed too, and still starts
/// after the dump (which takes it out of its queue and puts it back). One
/// worker, held by the spawner while it dumps, so nobody can start it.
#[test]
fn dump_lists_coroutines_not_started_yet() {
    if child_scenario().is_some() {
        goro::run(|| {
            let later = goro::Builder::new()
                .name("not-started")
                .spawn(|| 7)
                .unwrap();
            let d = goro::runtime::dump();
            let c = d
                .coroutines
                .iter()
                .find(|c| c.id == later.coroutine().id())
                .unwrap_or_else(|| panic!("missing from\n{d}"));
            assert_eq!(c.state, CoroutineState::NotStarted, "{d}");
            assert!(c.location.file().ends_with("tests/dump.rs"), "{d}");
            assert!(
                d.to_string()
                    .contains("'not-started' [runnable, not started] spawned at tests/dump.rs:"),
                "{d}"
            );
            assert_eq!(later.join().unwrap(), 7);
        });
        println!("dumped and joined");
        return;
    }
    let out = run_child(
        "dump_lists_coroutines_not_started_yet",
        &[("GORO_WORKERS", "1")],
    );
    assert!(out.status.success(), "{:?} {}", out.status, stderr(&out));
    assert!(
        stdout(&out).contains("dumped and joined"),
        "{}",
        stdout(&out)
    );
}

/// Dumps racing a spawn storm lose no coroutine: each taken out of its
/// queue is queued again and runs. The storm goes on, in rounds of 1,000,
/// until a few dumps have been taken during it (on a loaded machine the
/// dumping thread may not run at all during a fixed-size storm).
#[test]
fn dumps_during_spawns_lose_no_coroutine() {
    const DUMPS_DURING: usize = 3;
    let stop = Arc::new(AtomicBool::new(false));
    let dumps = Arc::new(AtomicUsize::new(0));
    let dumper = {
        let (stop, dumps) = (stop.clone(), dumps.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = goro::runtime::dump();
                dumps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let spawned = goro::run(move || {
        let mut spawned = 0;
        while spawned < 20_000 || dumps.load(Ordering::Relaxed) < DUMPS_DURING {
            let handles: Vec<_> = (0..1_000)
                .map(|_| {
                    let r = r.clone();
                    goro::go!(move || {
                        r.fetch_add(1, Ordering::Relaxed);
                    })
                })
                .collect();
            spawned += handles.len();
            for h in handles {
                h.join().unwrap();
            }
        }
        spawned
    });
    stop.store(true, Ordering::Relaxed);
    dumper.join().unwrap();
    assert_eq!(ran.load(Ordering::Relaxed), spawned);
}

/// `run_child`, passing on this process's `GORO_WORKERS`.
fn run_child_with_our_workers(test: &str) -> std::process::Output {
    match std::env::var("GORO_WORKERS") {
        Ok(n) => run_child(test, &[("GORO_WORKERS", &n)]),
        Err(_) => run_child(test, &[]),
    }
}

/// The frames of `stack` in this file, as `function@line`.
fn frames_here(stack: &CallStack) -> Vec<(String, u32)> {
    stack
        .frames()
        .iter()
        .filter(|f| {
            f.file
                .as_deref()
                .is_some_and(|p| p.ends_with("tests/dump.rs"))
        })
        .map(|f| (f.function.clone(), f.line.unwrap_or(0)))
        .collect()
}

/// The first line of `parked_in_recv`, and its last.
const PARKED_IN_RECV_LINES: (u32, u32) = (line!() + 3, line!() + 11);

#[inline(never)]
fn parked_in_recv(
    rx: goro::chan::Receiver<u64>,
    local: Vec<u64>,
    wg: goro::sync::WaitGroup,
) -> u64 {
    wg.done();
    let got = rx.recv().unwrap();
    // Used after the park: a trace must leave the locals as they were.
    local.iter().sum::<u64>() * got
}

#[test]
fn dump_shows_the_file_and_line_a_coroutine_is_parked_at() {
    goro::run(|| {
        let (tx, rx) = goro::chan::chan::<u64>(0);
        let wg = goro::sync::WaitGroup::new();
        wg.add(1);
        let parked = wg.clone();
        let h = goro::Builder::new()
            .name("dump-stack")
            .spawn(move || parked_in_recv(rx, vec![1, 2, 3], parked))
            .unwrap();
        // Past `done`, it runs into `recv` without a switch, and parks.
        wg.wait();
        let d = goro::runtime::dump();
        let c = d
            .coroutines
            .iter()
            .find(|c| c.name.as_deref() == Some("dump-stack"))
            .unwrap_or_else(|| panic!("missing from\n{d}"));
        let stack = c.stack.as_ref().unwrap_or_else(|e| panic!("{e}\n{d}"));
        let here = frames_here(stack);
        let (first, last) = PARKED_IN_RECV_LINES;
        // The innermost frame of this file is the function that parked, at
        // a line of its body (the `recv`, unless an optimizer moved it).
        let (function, line) = here.first().unwrap_or_else(|| panic!("{stack}"));
        assert!(function.ends_with("parked_in_recv"), "{stack}");
        assert!((first..=last).contains(line), "{line}: {stack}");
        // Nothing of the worker below the coroutine's closure.
        assert!(!stack.to_string().contains("Worker::"), "{stack}");
        let text = d.to_string();
        assert!(text.contains("dump::parked_in_recv\n"), "{text}");
        tx.send(2).unwrap();
        assert_eq!(h.join().unwrap(), 12);
    });
}

/// Parked, runnable and yielding coroutines traced by many dumps while
/// other threads wake them carry on as if nothing happened: every message
/// arrives, in order, and their locals survive.
#[test]
fn traced_coroutines_carry_on_undisturbed() {
    const COROUTINES: u64 = 50;
    const MESSAGES: u64 = 40;
    let stop = Arc::new(AtomicBool::new(false));
    let dumps = Arc::new(AtomicUsize::new(0));
    let dumper = {
        let (stop, dumps) = (stop.clone(), dumps.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = goro::runtime::dump();
                dumps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    goro::run(move || {
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for k in 0..COROUTINES {
            let (tx, rx) = goro::chan::chan::<u64>(0);
            senders.push(tx);
            handles.push(goro::spawn(move || {
                let mut seen = Vec::new();
                for i in 0..MESSAGES {
                    assert_eq!(rx.recv().unwrap(), k * 1000 + i);
                    seen.push(i);
                    if i % 3 == 0 {
                        goro::yield_now();
                    }
                    if i % 7 == 0 {
                        goro::sleep(Duration::from_millis(1));
                    }
                }
                seen
            }));
        }
        // Sent from plain threads, so that wakeups race the traces.
        let threads: Vec<_> = senders
            .into_iter()
            .enumerate()
            .map(|(k, tx)| {
                std::thread::spawn(move || {
                    for i in 0..MESSAGES {
                        tx.send(k as u64 * 1000 + i).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for h in handles {
            assert_eq!(h.join().unwrap(), (0..MESSAGES).collect::<Vec<_>>());
        }
    });
    // At least one full dump overlapped the traffic or followed it.
    while dumps.load(Ordering::Relaxed) == 0 {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    dumper.join().unwrap();
}

/// Coroutines of a dump parked at the same place.
#[inline(never)]
fn parked_in_the_crowd(rx: goro::chan::Receiver<()>, wg: goro::sync::WaitGroup) {
    wg.done();
    let _ = rx.recv();
}

/// 10,000 coroutines parked at one place make one group of 10,000, with
/// one stack, and all wake afterwards. In a child process: a worker held
/// by another test's coroutine would leave some of them without a stack.
#[test]
fn ten_thousand_parked_coroutines_make_one_group() {
    const N: usize = 10_000;
    if child_scenario().is_none() {
        let out = run_child_with_our_workers("ten_thousand_parked_coroutines_make_one_group");
        assert!(out.status.success(), "{:?} {}", out.status, stderr(&out));
        assert!(stdout(&out).contains("grouped"), "{}", stdout(&out));
        return;
    }
    goro::run(|| {
        let (tx, rx) = goro::chan::chan::<()>(0);
        let wg = goro::sync::WaitGroup::new();
        wg.add(N);
        let handles: Vec<_> = (0..N)
            .map(|_| {
                let (rx, wg) = (rx.clone(), wg.clone());
                goro::spawn(move || parked_in_the_crowd(rx, wg))
            })
            .collect();
        // Past `done`, a coroutine does not switch until it parks in `recv`.
        wg.wait();
        let d: Dump = goro::runtime::dump();
        let groups = d.groups();
        let crowd = groups
            .iter()
            .find(|g| {
                g.stack.as_ref().is_ok_and(|s| {
                    frames_here(s)
                        .first()
                        .is_some_and(|(f, _)| f.ends_with("parked_in_the_crowd"))
                })
            })
            .unwrap_or_else(|| panic!("no group parked in the crowd:\n{d}"));
        assert_eq!(crowd.ids.len(), N, "{d}");
        assert_eq!(crowd.state, "parked: channel receive");
        // The largest group comes first, and prints once, with its count.
        assert_eq!(groups[0].ids, crowd.ids);
        let text = d.to_string();
        assert!(
            text.starts_with(
                "10000 coroutines [parked: channel receive] spawned at tests/dump.rs:"
            ),
            "{text}"
        );
        assert_eq!(text.matches("parked_in_the_crowd").count(), 1, "{text}");
        drop(tx);
        for h in handles {
            h.join().unwrap();
        }
    });
    println!("grouped");
}

/// A worker held by a busy coroutine cannot answer a dump: the dump gives
/// up on it after a while, shows the busy coroutine running without a
/// stack, and the coroutine is not disturbed. In a child process: the busy
/// loop would hold up other tests' coroutines.
#[test]
fn a_busy_worker_does_not_hang_a_dump() {
    if child_scenario().is_none() {
        let out = run_child_with_our_workers("a_busy_worker_does_not_hang_a_dump");
        assert!(out.status.success(), "{:?} {}", out.status, stderr(&out));
        assert!(stdout(&out).contains("dumped"), "{}", stdout(&out));
        return;
    }
    let (running, stop) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let busy = {
        let (running, stop) = (running.clone(), stop.clone());
        goro::Builder::new()
            .name("dump-busy")
            .spawn(move || {
                running.store(true, Ordering::Relaxed);
                let mut spins = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    spins += 1;
                    std::hint::spin_loop();
                }
                spins
            })
            .unwrap()
    };
    while !running.load(Ordering::Relaxed) {
        std::thread::yield_now();
    }
    // From a plain thread: with one worker, a coroutine could not run.
    let d = goro::runtime::dump();
    let c = d
        .coroutines
        .iter()
        .find(|c| c.id == busy.coroutine().id())
        .unwrap_or_else(|| panic!("missing from\n{d}"));
    assert!(matches!(c.state, CoroutineState::Running { .. }), "{d}");
    assert_eq!(c.stack.as_ref().err(), Some(&NoStack::WorkerBusy), "{d}");
    assert!(
        d.to_string().contains("'dump-busy' [running on worker"),
        "{d}"
    );
    assert!(
        d.to_string()
            .contains("(stack not available (worker busy))"),
        "{d}"
    );
    stop.store(true, Ordering::Relaxed);
    assert!(busy.join().unwrap() > 0);
    println!("dumped");
}
