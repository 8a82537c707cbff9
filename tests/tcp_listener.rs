//! `TcpListener`: accept parks, deadlines and close wake it, the address
//! can be bound again after close, and many acceptors share connections.

mod common;

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{assert_closed, assert_timeout, within};
use goro::net::{TcpListener, TcpStream};

const MS: Duration = Duration::from_millis(1);

#[test]
fn bind_reports_its_address_and_sets_reuseaddr() {
    within(|| {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        assert_ne!(addr.port(), 0);
        assert!(common::is_cloexec(ln.as_raw_fd()));
        assert!(common::is_nonblocking(ln.as_raw_fd()));
        let mut on: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: reads an int option into a live int of the size given.
        let r = unsafe {
            libc::getsockopt(
                ln.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_REUSEADDR,
                (&raw mut on).cast(),
                &mut len,
            )
        };
        assert_eq!((r, on != 0), (0, true));
    });
}

#[test]
fn binding_an_address_in_use_names_it() {
    within(|| {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let e = TcpListener::bind(addr).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
        assert_eq!(
            e.to_string(),
            format!("listen tcp {addr}: address already in use")
        );
    });
}

#[test]
fn accept_returns_the_connection_and_peer_address() {
    within(|| {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let client = goro::go!(move || {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(b"hi").unwrap();
            c.local_addr().unwrap()
        });
        let (mut conn, peer) = ln.accept().unwrap();
        let mut b = [0; 2];
        conn.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hi");
        assert_eq!(client.join().unwrap(), peer);
        assert!(common::is_cloexec(conn.as_raw_fd()));
        assert!(conn.nodelay().unwrap());
    });
}

#[test]
fn a_past_deadline_fails_accept_at_once_even_with_a_connection_waiting() {
    within(|| {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let _c = TcpStream::connect(ln.local_addr().unwrap()).unwrap();
        ln.set_deadline(Some(Instant::now() - MS)).unwrap();
        assert_timeout(&ln.accept().unwrap_err());
        assert_timeout(&ln.accept().unwrap_err());
        // Clearing it makes the waiting connection acceptable.
        ln.set_deadline(None).unwrap();
        ln.accept().unwrap();
    });
}

#[test]
fn an_accept_deadline_ahead_never_fires_early() {
    within(|| {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let d = Instant::now() + 100 * MS;
        ln.set_deadline(Some(d)).unwrap();
        assert_timeout(&ln.accept().unwrap_err());
        assert!(Instant::now() >= d);
        // A new deadline ahead: usable again.
        ln.set_deadline(Some(Instant::now() + Duration::from_secs(30)))
            .unwrap();
        let addr = ln.local_addr().unwrap();
        let c = goro::go!(move || TcpStream::connect(addr).unwrap());
        ln.accept().unwrap();
        c.join().unwrap();
    });
}

#[test]
fn moving_the_deadline_wakes_or_postpones_a_blocked_accept() {
    within(|| {
        let ln = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let start = Instant::now();
        ln.set_deadline(Some(start + 50 * MS)).unwrap();
        let mover = {
            let ln = ln.clone();
            goro::go!(move || {
                goro::sleep(20 * MS);
                ln.set_deadline(Some(start + 300 * MS)).unwrap();
            })
        };
        assert_timeout(&ln.accept().unwrap_err());
        assert!(start.elapsed() >= 300 * MS, "at {:?}", start.elapsed());
        mover.join().unwrap();

        ln.set_deadline(None).unwrap();
        let acceptor = {
            let ln = ln.clone();
            goro::go!(move || ln.accept().map(drop))
        };
        goro::sleep(30 * MS);
        ln.set_deadline(Some(Instant::now() - MS)).unwrap();
        assert_timeout(&acceptor.join().unwrap().unwrap_err());
    });
}

#[test]
fn close_wakes_every_blocked_accept_and_frees_the_address() {
    within(|| {
        let ln = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = ln.local_addr().unwrap();
        let acceptors: Vec<_> = (0..3)
            .map(|_| {
                let ln = ln.clone();
                goro::go!(move || ln.accept().map(drop))
            })
            .collect();
        goro::sleep(30 * MS);
        ln.close().unwrap();
        for a in acceptors {
            assert_closed(&a.join().unwrap().unwrap_err());
        }
        assert_closed(&ln.accept().unwrap_err());
        assert_closed(&ln.close().unwrap_err());
        // The listener value still exists, but its port is free again.
        let again = TcpListener::bind(addr).unwrap();
        assert_eq!(again.local_addr().unwrap(), addr);
        drop(ln);
    });
}

#[test]
fn many_acceptors_share_the_connections_and_lose_none() {
    within(|| {
        const ACCEPTORS: usize = 8;
        const CLIENTS: usize = 200;
        let ln = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = ln.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let acceptors: Vec<_> = (0..ACCEPTORS)
            .map(|_| {
                let (ln, accepted) = (ln.clone(), accepted.clone());
                goro::go!(move || {
                    let mut peers = Vec::new();
                    // Each reply says the client was accepted; the acceptors
                    // stop when the listener closes.
                    while let Ok((mut c, peer)) = ln.accept() {
                        accepted.fetch_add(1, Ordering::Relaxed);
                        c.write_all(b"!").unwrap();
                        peers.push(peer);
                    }
                    peers
                })
            })
            .collect();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                goro::go!(move || {
                    let mut c = TcpStream::connect(addr).unwrap();
                    let mut b = [0; 1];
                    c.read_exact(&mut b).unwrap();
                    c.local_addr().unwrap()
                })
            })
            .collect();
        let mut client_addrs = HashSet::new();
        for c in clients {
            assert!(client_addrs.insert(c.join().unwrap()));
        }
        ln.close().unwrap();
        let mut served = HashSet::new();
        let mut busy = 0;
        for a in acceptors {
            let peers = a.join().unwrap();
            busy += usize::from(!peers.is_empty());
            served.extend(peers);
        }
        assert_eq!(accepted.load(Ordering::Relaxed), CLIENTS);
        assert_eq!(served, client_addrs, "every client accepted exactly once");
        assert!(busy > 1, "the connections were shared");
    });
}

#[test]
fn incoming_and_try_clone() {
    within(|| {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let clone = ln.try_clone().unwrap();
        assert_eq!(clone.local_addr().unwrap(), addr);
        let clients = goro::go!(move || {
            (0..3)
                .map(|_| TcpStream::connect(addr).unwrap())
                .collect::<Vec<_>>()
        });
        let got: Vec<_> = clone.incoming().take(3).map(Result::unwrap).collect();
        assert_eq!(got.len(), 3);
        clients.join().unwrap();
        // Closing the clone leaves the original listening.
        clone.close().unwrap();
        let c = goro::go!(move || TcpStream::connect(addr).unwrap());
        ln.accept().unwrap();
        c.join().unwrap();
    });
}

#[test]
fn conversions_to_and_from_std() {
    within(|| {
        let std_ln = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_ln.local_addr().unwrap();
        let ln = TcpListener::from(std_ln);
        assert!(common::is_nonblocking(ln.as_raw_fd()));
        let c = goro::go!(move || TcpStream::connect(addr).unwrap());
        ln.accept().unwrap();
        c.join().unwrap();
        let back: std::net::TcpListener = ln.try_into().unwrap();
        assert!(!common::is_nonblocking(back.as_raw_fd()));
        assert_eq!(back.local_addr().unwrap(), addr);
    });
}

#[test]
fn a_plain_thread_accepts() {
    common::limit(|| {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            std::thread::sleep(20 * MS);
            TcpStream::connect(addr).unwrap()
        });
        let (_c, peer) = ln.accept().unwrap();
        assert_eq!(t.join().unwrap().local_addr().unwrap(), peer);
        ln.set_deadline(Some(Instant::now() + 30 * MS)).unwrap();
        assert_timeout(&ln.accept().unwrap_err());
    });
}

#[test]
fn is_closed_tells_a_local_close_from_other_errors() {
    within(|| {
        let ln = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = ln.local_addr().unwrap();
        let l2 = ln.clone();
        let acceptor = goro::spawn(move || l2.accept().map(|_| ()));
        goro::sleep(Duration::from_millis(20));
        ln.close().unwrap();
        let e = acceptor.join().unwrap().unwrap_err();
        assert!(goro::net::is_closed(&e), "{e}");
        drop(ln);
        let refused = TcpStream::connect(addr).unwrap_err();
        assert!(!goro::net::is_closed(&refused), "{refused}");
        let other = std::io::Error::new(std::io::ErrorKind::NotConnected, "not connected");
        assert!(!goro::net::is_closed(&other));
    });
}

/// `close` racing `accept`s that are busy taking connections, 200 rounds:
/// every client's connection ends — accepted and dropped, or reset by the
/// close while it waited in the backlog — and no fd is left open. A
/// connection that the system accepted but that nobody then owned would
/// stay open, its client waiting for an end that never comes (the read
/// timeout, not end of file). The clients connect and close the listener
/// from a plain thread, which runs alongside the acceptors whatever the
/// worker count. In a child process, so that no other test opens fds
/// meanwhile.
#[test]
fn close_racing_accept_never_leaks_the_connection() {
    const NAME: &str = "close_racing_accept_never_leaks_the_connection";
    const CLIENTS: usize = 16;
    if !common::is_child(NAME) {
        common::child(NAME, &[]);
        return;
    }
    goro::run(|| {
        // Warm up: the runtime's and the first socket's lazily made fds.
        drop(TcpListener::bind("127.0.0.1:0").unwrap());
        let before = common::open_fds();
        for round in 0..200 {
            let ln = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
            let addr = ln.local_addr().unwrap();
            let acceptors: Vec<_> = (0..2)
                .map(|_| {
                    let ln = ln.clone();
                    goro::go!(move || while ln.accept().is_ok() {})
                })
                .collect();
            let clients = std::thread::spawn(move || {
                let clients: Vec<_> = (0..CLIENTS)
                    .map(|_| std::net::TcpStream::connect(addr).unwrap())
                    .collect();
                ln.close().unwrap();
                clients
            });
            for a in acceptors {
                a.join().unwrap();
            }
            for mut c in clients.join().unwrap() {
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                match c.read(&mut [0; 1]) {
                    Ok(0) => {}
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
                    other => panic!("round {round}: a connection did not end: {other:?}"),
                }
            }
        }
        assert_eq!(common::open_fds(), before, "fds leaked");
    });
}

#[test]
fn nonblocking_accept_returns_would_block_instead_of_parking() {
    within(|| {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        ln.set_nonblocking(true).unwrap();
        let e = ln.accept().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        let c = TcpStream::connect(ln.local_addr().unwrap()).unwrap();
        let (s, peer) = loop {
            match ln.accept() {
                Ok(accepted) => break accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => goro::sleep(MS),
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(peer, c.local_addr().unwrap());
        // The accepted stream starts in the default mode: a read parks.
        s.set_read_timeout(Some(20 * MS)).unwrap();
        assert_timeout(&(&s).read(&mut [0; 4]).unwrap_err());
        // A clone keeps the mode; std's listener does too.
        let clone = ln.try_clone().unwrap();
        assert_eq!(
            clone.accept().unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let back = ln.into_std().unwrap();
        assert!(common::is_nonblocking(back.as_raw_fd()));
    });
}

/// Where a connection's coroutine starts is where it runs for life, so an
/// idle server must not start every connection on its accept loop's worker:
/// 200 connections arrive one at a time while nothing else runs (a client on
/// a plain thread, so that only the server's coroutines count) and each
/// handler parks on a read; their live coroutines must end within 1.25x of
/// the mean over 4 workers.
#[test]
fn connections_accepted_while_idle_spread_over_the_workers() {
    const WORKERS: usize = 4;
    const CONNS: usize = 200;
    if !common::is_child("connections_accepted_while_idle_spread_over_the_workers") {
        common::child(
            "connections_accepted_while_idle_spread_over_the_workers",
            &[("GORO_WORKERS", "4")],
        );
        return;
    }
    goro::run(|| {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let (done_tx, done_rx) = goro::chan::chan::<()>(0);
        let acceptor = goro::spawn(move || {
            for _ in 0..CONNS {
                let (mut conn, _) = ln.accept().unwrap();
                let done = done_tx.clone();
                goro::spawn(move || {
                    let mut b = [0u8; 1];
                    assert_eq!(conn.read(&mut b).unwrap(), 0);
                    drop(done);
                });
            }
        });
        let client = std::thread::spawn(move || {
            (0..CONNS)
                .map(|_| {
                    let c = std::net::TcpStream::connect(addr).unwrap();
                    std::thread::sleep(Duration::from_micros(200));
                    c
                })
                .collect::<Vec<_>>()
        });
        acceptor.join().unwrap();
        // Each handler registers its socket and parks in its read once it
        // has started.
        let (live, fds) = loop {
            let stats = goro::runtime::stats();
            let workers = stats.workers.iter().take(WORKERS);
            let live: Vec<u64> = workers.clone().map(|w| w.live).collect();
            let fds: Vec<u64> = workers.map(|w| w.fds).collect();
            if live.iter().sum::<u64>() > CONNS as u64 && fds.iter().sum::<u64>() >= CONNS as u64 {
                break (live, fds);
            }
            goro::sleep(MS);
        };
        // The listener's fd is closed with the acceptor: what is left are
        // the connections, each on its handler's worker.
        assert_eq!(
            fds.iter().sum::<u64>(),
            CONNS as u64,
            "fds per worker {fds:?}"
        );
        drop(client.join().unwrap());
        // Every handler sees its end of file and drops its sender.
        assert!(done_rx.recv().is_err());
        let mean = live.iter().sum::<u64>() as f64 / WORKERS as f64;
        let max = *live.iter().max().unwrap() as f64;
        println!("live per worker {live:?}, max/mean {:.2}", max / mean);
        assert!(max / mean <= 1.25, "live per worker {live:?}");
    });
}

/// A new blocking IPv4 socket connected to `addr` (made with libc so that
/// its fd can be made before the fd table is full and connected after).
fn raw_client() -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: socket has no memory preconditions.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "{}", io::Error::last_os_error());
    // SAFETY: just created, owned by nobody else.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

/// Connects a socket from `raw_client` to `addr` and makes it a stream.
fn connect_raw(fd: std::os::fd::OwnedFd, addr: std::net::SocketAddr) -> std::net::TcpStream {
    let std::net::SocketAddr::V4(v4) = addr else {
        panic!("an IPv4 address")
    };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*v4.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `sin` is a valid sockaddr_in of the size given.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&raw const sin).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "{}", io::Error::last_os_error());
    std::net::TcpStream::from(fd)
}

/// With one worker and the fd table full, a log-and-continue accept loop
/// (the loop most servers write) gets EMFILE at once on every call. It
/// must not spin: each failure parks the loop (backing off), so the
/// handlers on the same worker run, see their clients leave, and close;
/// then the next accept succeeds and a new client is served.
#[test]
fn an_accept_loop_out_of_fds_lets_its_handlers_free_them() {
    const NAME: &str = "an_accept_loop_out_of_fds_lets_its_handlers_free_them";
    if !common::is_child(NAME) {
        return common::child(NAME, &[("GORO_WORKERS", "1")]);
    }
    let failed_in_window = within(|| {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let failures: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
        goro::spawn(move || {
            loop {
                match ln.accept() {
                    Ok((mut conn, _)) => {
                        goro::go!(move || {
                            conn.write_all(b"hi").unwrap();
                            let mut buf = [0u8; 16];
                            while conn.read(&mut buf).is_ok_and(|n| n > 0) {}
                        });
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EMFILE) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
        });
        goro::blocking(move || {
            let mut fds: Vec<_> = (0..3).map(|_| raw_client()).collect();
            // Fill the fd table under a low limit, then free two slots:
            // one per connection the server will hold.
            let limit = libc::rlimit {
                rlim_cur: 128,
                rlim_max: 128,
            };
            // SAFETY: setrlimit reads a live rlimit.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
            let mut pad = Vec::new();
            while let Ok(f) = std::fs::File::open("/dev/null") {
                pad.push(f);
            }
            pad.truncate(pad.len() - 2);
            let mut held: Vec<_> = fds
                .drain(..2)
                .map(|fd| {
                    let mut c = connect_raw(fd, addr);
                    let mut hi = [0u8; 2];
                    c.read_exact(&mut hi).unwrap();
                    c
                })
                .collect();
            // The third connection waits in the backlog: accept fails.
            let mut third = connect_raw(fds.pop().unwrap(), addr);
            let give_up = Instant::now() + common::HANG;
            while failures.load(Ordering::Relaxed) == 0 && Instant::now() < give_up {
                std::thread::sleep(MS);
            }
            let before = failures.load(Ordering::Relaxed);
            assert!(before > 0, "accept never failed");
            std::thread::sleep(200 * MS);
            let failed_in_window = failures.load(Ordering::Relaxed) - before;
            // The clients leave; their handlers must run to close.
            held.clear();
            third
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut hi = [0u8; 2];
            third
                .read_exact(&mut hi)
                .expect("the third client is served once fds are freed");
            assert_eq!(&hi, b"hi");
            drop(pad);
            failed_in_window
        })
    });
    // Spinning made millions; backing off 5, 10, 20... ms makes a handful.
    assert!(
        failed_in_window < 100,
        "{failed_in_window} failed accepts in 200 ms"
    );
}

// ---- the readiness API ----

#[test]
fn try_accept_would_block_until_poll_accept_is_ready() {
    within(|| {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(
            ln.try_accept().unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let addr = ln.local_addr().unwrap();
        let dialer = goro::spawn(move || {
            goro::sleep(10 * MS);
            TcpStream::connect(addr).unwrap()
        });
        let (server, peer) = goro::block_on(std::future::poll_fn(|cx| ln.poll_accept(cx))).unwrap();
        let client = dialer.join().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert!(server.nodelay().unwrap());
        // Readiness lasts until a WouldBlock.
        assert_eq!(
            ln.try_accept().unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        // A deadline ends a readiness wait with the timeout error; close
        // with the closed error.
        ln.set_deadline(Some(Instant::now() + 20 * MS)).unwrap();
        assert_timeout(&goro::block_on(ln.readable()).unwrap_err());
        ln.set_deadline(None).unwrap();
        let ln = Arc::new(ln);
        let l2 = ln.clone();
        let waiter = goro::spawn(move || {
            goro::block_on(std::future::poll_fn(|cx| l2.poll_accept(cx))).map(drop)
        });
        goro::sleep(20 * MS);
        ln.close().unwrap();
        assert_closed(&waiter.join().unwrap().unwrap_err());
        assert_closed(&ln.accept().unwrap_err());
    });
}
