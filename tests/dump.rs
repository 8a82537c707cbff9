//! `runtime::dump`: who is alive, what they wait on, for how long.

mod common;
use common::{child_scenario, run_child, stderr, stdout};
use goro::runtime::{CoroutineState, WaitingOn};
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

/// With `GORO_TRACEBACK=1`, SIGQUIT prints the dump to stderr and the
/// program carries on (Go exits; a server under inspection should not).
#[test]
fn sigquit_prints_a_dump_and_continues() {
    if child_scenario().is_some() {
        let (tx, rx) = goro::chan::chan::<()>(0);
        let h = goro::Builder::new()
            .name("quit-waiter")
            .spawn(move || rx.recv())
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        // SAFETY: raising a signal the runtime handles; no memory involved.
        unsafe { libc::raise(libc::SIGQUIT) };
        std::thread::sleep(Duration::from_millis(200));
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
    assert!(stdout(&out).contains("still running"));
    let err = stderr(&out);
    assert!(
        err.contains("goro: SIGQUIT: dump of all coroutines"),
        "{err}"
    );
    assert!(
        err.contains("'quit-waiter' [parked: channel receive"),
        "{err}"
    );
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
/// queue is queued again and runs.
#[test]
fn dumps_during_spawns_lose_no_coroutine() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let dumper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut dumps = 0;
            while !stop.load(Ordering::Relaxed) {
                let _ = goro::runtime::dump();
                dumps += 1;
            }
            dumps
        })
    };
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    goro::run(move || {
        let handles: Vec<_> = (0..20_000)
            .map(|_| {
                let r = r.clone();
                goro::go!(move || {
                    r.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    stop.store(true, Ordering::Relaxed);
    assert!(dumper.join().unwrap() > 0);
    assert_eq!(ran.load(Ordering::Relaxed), 20_000);
}
