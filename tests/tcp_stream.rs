//! `TcpStream`: reads and writes that park, Go's deadline and close rules,
//! std's timeouts and conversions, and the scale scenarios (one worker,
//! 10,000 connections, close racing read).

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_closed, assert_timeout, within};
use goro::net::{TcpListener, TcpStream};

/// A connected pair: (client, server).
fn pair() -> (TcpStream, TcpStream) {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(ln.local_addr().unwrap()).unwrap();
    let (server, _) = ln.accept().unwrap();
    (client, server)
}

const MS: Duration = Duration::from_millis(1);

#[test]
fn echo_round_trip_with_addresses_and_nodelay() {
    within(|| {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let server = goro::go!(move || {
            let (mut c, peer) = ln.accept().unwrap();
            assert_eq!(c.peer_addr().unwrap(), peer);
            assert!(
                c.nodelay().unwrap(),
                "accepted connections have TCP_NODELAY"
            );
            let mut buf = [0; 64];
            loop {
                match c.read(&mut buf).unwrap() {
                    0 => return peer,
                    n => c.write_all(&buf[..n]).unwrap(),
                }
            }
        });
        let mut c = TcpStream::connect(addr).unwrap();
        assert!(c.nodelay().unwrap(), "dialed connections have TCP_NODELAY");
        assert_eq!(c.peer_addr().unwrap(), addr);
        for i in 0..100u8 {
            c.write_all(&[i; 10]).unwrap();
            let mut got = [0; 10];
            c.read_exact(&mut got).unwrap();
            assert_eq!(got, [i; 10]);
        }
        let local = c.local_addr().unwrap();
        drop(c);
        assert_eq!(server.join().unwrap(), local);
    });
}

#[test]
fn a_past_read_deadline_fails_at_once_even_with_data_waiting() {
    within(|| {
        let (mut c, mut s) = pair();
        c.write_all(b"data").unwrap();
        goro::sleep(20 * MS);
        s.set_read_deadline(Some(Instant::now() - 10 * MS)).unwrap();
        assert_timeout(&s.read(&mut [0; 4]).unwrap_err());
        // Still failing until the deadline changes.
        assert_timeout(&s.read(&mut [0; 4]).unwrap_err());
        // A new deadline ahead, or none, makes it usable again.
        s.set_read_deadline(Some(Instant::now() + Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0; 4];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"data");
        s.set_read_deadline(Some(Instant::now())).unwrap();
        assert_timeout(&s.read(&mut buf).unwrap_err());
        s.set_read_deadline(None).unwrap();
        c.write_all(b"more").unwrap();
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"more");
    });
}

#[test]
fn a_past_write_deadline_fails_at_once() {
    within(|| {
        let (mut c, mut s) = pair();
        c.set_write_deadline(Some(Instant::now())).unwrap();
        assert_timeout(&c.write(b"x").unwrap_err());
        c.set_deadline(None).unwrap();
        c.write_all(b"x").unwrap();
        let mut b = [0; 1];
        s.read_exact(&mut b).unwrap();
    });
}

#[test]
fn a_deadline_ahead_never_fires_early() {
    within(|| {
        let (_c, mut s) = pair();
        for wait in [MS, 50 * MS, 150 * MS] {
            let d = Instant::now() + wait;
            s.set_read_deadline(Some(d)).unwrap();
            assert_timeout(&s.read(&mut [0; 8]).unwrap_err());
            let now = Instant::now();
            assert!(now >= d, "returned {:?} early", d - now);
            assert!(
                now - d < Duration::from_secs(5),
                "returned {:?} late",
                now - d
            );
        }
    });
}

#[test]
fn moving_the_deadline_later_postpones_a_blocked_read() {
    within(|| {
        let (_c, s) = pair();
        let s = Arc::new(s);
        let start = Instant::now();
        s.set_read_deadline(Some(start + 100 * MS)).unwrap();
        let mover = {
            let s = s.clone();
            goro::go!(move || {
                goro::sleep(30 * MS);
                s.set_read_deadline(Some(start + 400 * MS)).unwrap();
            })
        };
        assert_timeout(&(&*s).read(&mut [0; 8]).unwrap_err());
        assert!(
            start.elapsed() >= 400 * MS,
            "timed out at {:?}",
            start.elapsed()
        );
        mover.join().unwrap();
    });
}

#[test]
fn moving_the_deadline_into_the_past_wakes_a_blocked_read_and_write() {
    within(|| {
        let (_c1, s) = pair();
        let (c, _s2) = pair();
        let (c, s) = (Arc::new(c), Arc::new(s));
        let reader = {
            let s = s.clone();
            goro::go!(move || (&*s).read(&mut [0; 8]))
        };
        // These writes fill both buffers, since nobody reads.
        let writer = {
            let c = c.clone();
            goro::go!(move || (&*c).write_all(&vec![0; 64 << 20]))
        };
        goro::sleep(50 * MS);
        s.set_read_deadline(Some(Instant::now() - MS)).unwrap();
        c.set_write_deadline(Some(Instant::now() - MS)).unwrap();
        assert_timeout(&reader.join().unwrap().unwrap_err());
        assert_timeout(&writer.join().unwrap().unwrap_err());
    });
}

#[test]
fn close_wakes_blocked_read_and_write_with_the_closed_error() {
    within(|| {
        let (c, s) = pair();
        let (c, s) = (Arc::new(c), Arc::new(s));
        let reader = {
            let c = c.clone();
            goro::go!(move || (&*c).read(&mut [0; 8]))
        };
        let writer = {
            let c = c.clone();
            goro::go!(move || (&*c).write_all(&vec![0; 64 << 20]))
        };
        goro::sleep(50 * MS);
        c.close().unwrap();
        let e = reader.join().unwrap().unwrap_err();
        assert_closed(&e);
        assert_closed(&writer.join().unwrap().unwrap_err());
        // Later calls too, and a second close; none is a timeout or EOF.
        assert_closed(&(&*c).read(&mut [0; 8]).unwrap_err());
        assert_closed(&(&*c).write(b"x").unwrap_err());
        assert_closed(&c.close().unwrap_err());
        assert_closed(&c.set_deadline(None).unwrap_err());
        assert_eq!(c.as_raw_fd(), -1, "the fd is closed once no call uses it");
        // The peer sees the connection end.
        let mut rest = Vec::new();
        let _ = (&*s).read_to_end(&mut rest);
    });
}

#[test]
fn a_peer_close_is_end_of_file_for_a_blocked_read() {
    within(|| {
        let (c, mut s) = pair();
        let reader = goro::go!(move || s.read(&mut [0; 8]));
        goro::sleep(20 * MS);
        drop(c);
        assert_eq!(reader.join().unwrap().unwrap(), 0);
    });
}

#[test]
fn a_peer_reset_is_an_error_for_a_blocked_read() {
    within(|| {
        let (c, mut s) = pair();
        let reader = goro::go!(move || s.read(&mut [0; 8]));
        goro::sleep(20 * MS);
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: sets SO_LINGER from a live struct of the size given.
        let r = unsafe {
            libc::setsockopt(
                c.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&raw const linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0);
        drop(c);
        let e = reader.join().unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
    });
}

#[test]
fn a_zero_length_read_returns_at_once() {
    within(|| {
        let (_c, mut s) = pair();
        assert_eq!(s.read(&mut []).unwrap(), 0);
        assert_eq!(s.write(&[]).unwrap(), 0);
    });
}

#[test]
fn a_write_hitting_its_deadline_reports_how_much_it_wrote() {
    within(|| {
        let (c, mut s) = pair();
        let total = 64 << 20;
        // Filled before the deadline is set, so that filling it (slow on a
        // loaded machine) cannot use up the time the writes have.
        let data = vec![1; total];
        c.set_write_deadline(Some(Instant::now() + 200 * MS))
            .unwrap();
        let e = (&c).write_all(&data).unwrap_err();
        assert_timeout(&e);
        let text = e.to_string();
        let written: usize = text
            .split("after writing ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in {text:?}"));
        assert!(written > 0 && written < total, "{text}");
        c.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), written, "the peer received what was reported");
        // A single `write` reports partial progress as `Ok(n)`.
        let (c, _s) = pair();
        c.set_write_deadline(Some(Instant::now() + 200 * MS))
            .unwrap();
        let n = (&c).write(&data).unwrap();
        assert!(n > 0 && n < total);
    });
}

/// A `write_all` cut short, after part of its buffer went out, by a
/// `close` elsewhere fails with the closed error itself (kind, text and
/// `is_closed`); one cut short by a `shutdown` fails with the system's own
/// error, `raw_os_error` and all, as std's `write_all` does.
#[test]
fn a_write_all_cut_short_keeps_the_error_identity() {
    within(|| {
        for round in 0..6 {
            let (c, mut s) = pair();
            let c = Arc::new(c);
            let writer = {
                let c = c.clone();
                goro::go!(move || (&*c).write_all(&vec![0; 64 << 20]))
            };
            // Part of the buffer went out; the rest cannot fit in the
            // socket buffers, so the writer is still at it.
            s.read_exact(&mut [0; 1]).unwrap();
            if round % 2 == 0 {
                c.close().unwrap();
                let e = writer.join().unwrap().unwrap_err();
                assert_closed(&e);
            } else {
                c.shutdown(Shutdown::Write).unwrap();
                let e = writer.join().unwrap().unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
                assert_eq!(e.raw_os_error(), Some(libc::EPIPE), "{e}");
                assert!(!goro::net::is_closed(&e), "{e}");
            }
        }
    });
}

#[test]
fn std_timeouts_apply_to_each_call() {
    within(|| {
        let (mut c, mut s) = pair();
        assert_eq!(s.read_timeout().unwrap(), None);
        let e = s.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        s.set_read_timeout(Some(100 * MS)).unwrap();
        assert_eq!(s.read_timeout().unwrap(), Some(100 * MS));
        for _ in 0..2 {
            let start = Instant::now();
            assert_timeout(&s.read(&mut [0; 8]).unwrap_err());
            assert!(start.elapsed() >= 100 * MS);
        }
        // The timeout restarts with each call: a read well after the first
        // timeout still gets its data.
        c.write_all(b"late").unwrap();
        let mut b = [0; 4];
        s.read_exact(&mut b).unwrap();
        // A deadline replaces the timeout.
        s.set_read_deadline(None).unwrap();
        assert_eq!(s.read_timeout().unwrap(), None);
        c.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
        assert_eq!(c.write_timeout().unwrap(), Some(Duration::from_secs(1)));
        c.write_all(b"ok").unwrap();
    });
}

#[test]
fn shutdown_and_try_clone() {
    within(|| {
        let (c, mut s) = pair();
        let mut c2 = c.try_clone().unwrap();
        c2.write_all(b"via clone").unwrap();
        // Closing one handle leaves the connection to the other.
        c2.close().unwrap();
        (&c).write_all(b"!").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap();
        assert_eq!(got, "via clone!");
        s.write_all(b"back").unwrap();
        let mut b = [0; 4];
        (&c).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"back");
    });
}

#[test]
fn connect_timeout_gives_up_on_a_full_backlog() {
    within(|| {
        // A listener with the smallest backlog that nobody accepts from:
        // once its queue is full, the system drops further SYNs.
        let ln = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        // SAFETY: listen on an fd we own.
        assert_eq!(unsafe { libc::listen(ln.as_raw_fd(), 0) }, 0);
        let addr = ln.local_addr().unwrap();
        let mut held = Vec::new();
        let start = Instant::now();
        let e = loop {
            match TcpStream::connect_timeout(&addr, 200 * MS) {
                Ok(c) => held.push(c),
                Err(e) => break e,
            }
            assert!(held.len() < 1000, "the backlog never filled");
        };
        assert_timeout(&e);
        assert!(e.to_string().contains(&addr.to_string()), "{e}");
        assert!(start.elapsed() >= 200 * MS);
        let e = TcpStream::connect_timeout(&addr, Duration::ZERO).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    });
}

#[test]
fn conversions_to_and_from_std_and_raw_fds() {
    within(|| {
        let ln = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let std_client = std::net::TcpStream::connect(ln.local_addr().unwrap()).unwrap();
        let (std_server, _) = ln.accept().unwrap();
        assert!(!common::is_nonblocking(std_client.as_raw_fd()));
        let mut c = TcpStream::from(std_client);
        assert!(common::is_nonblocking(c.as_raw_fd()));
        assert!(common::is_cloexec(c.as_raw_fd()));
        let mut s = TcpStream::from(std_server);
        c.write_all(b"abc").unwrap();
        let mut b = [0; 3];
        s.read_exact(&mut b).unwrap();
        // Back to std: blocking again, and still connected.
        let mut back: std::net::TcpStream = c.try_into().unwrap();
        assert!(!common::is_nonblocking(back.as_raw_fd()));
        back.write_all(b"def").unwrap();
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"def");
        // Raw fds, both ways.
        let raw = s.into_raw_fd();
        // SAFETY: `raw` is an open socket that `into_raw_fd` gave us.
        let s = unsafe { TcpStream::from_raw_fd(raw) };
        (&s).write_all(b"ghi").unwrap();
        back.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ghi");
        // A closed stream cannot go back to std.
        s.close().unwrap();
        assert_closed(&s.into_std().unwrap_err());
    });
}

#[test]
fn a_borrowed_fd_stays_valid_after_close() {
    within(|| {
        let (c, mut s) = pair();
        let fd = c.as_fd().as_raw_fd();
        c.close().unwrap();
        // The fd is still open (it was lent), and the peer saw the end.
        assert!(common::is_cloexec(fd));
        assert_eq!(c.as_fd().as_raw_fd(), fd);
        assert_eq!(s.read(&mut [0; 8]).unwrap(), 0);
        // A stream closed before any borrow lends a valid stand-in.
        let (c, _s) = pair();
        c.close().unwrap();
        let standin = c.as_fd().as_raw_fd();
        assert!(standin >= 0);
        assert!(common::is_cloexec(standin));
    });
}

#[test]
fn plain_threads_block_and_work() {
    common::limit(|| {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut c, _) = ln.accept().unwrap();
            let mut buf = [0; 16];
            let n = c.read(&mut buf).unwrap();
            c.write_all(&buf[..n]).unwrap();
            c.set_read_deadline(Some(Instant::now() + 50 * MS)).unwrap();
            assert_timeout(&c.read(&mut buf).unwrap_err());
        });
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"thread").unwrap();
        let mut b = [0; 6];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"thread");
        server.join().unwrap();
    });
}

/// An echo server coroutine per connection, as the examples have.
fn echo(mut c: TcpStream) {
    let mut buf = [0; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if c.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// A server and 100 clients, all coroutines of one worker: if a socket
/// call blocked the thread instead of parking the coroutine, nothing else
/// could run and this would hang.
#[test]
fn a_server_and_100_clients_on_one_worker() {
    const NAME: &str = "a_server_and_100_clients_on_one_worker";
    if !common::is_child(NAME) {
        common::child(NAME, &[("GORO_WORKERS", "1")]);
        return;
    }
    goro::run(|| {
        assert_eq!(goro::runtime::num_workers(), 1);
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        goro::go!(move || {
            loop {
                let (c, _) = ln.accept().unwrap();
                goro::go!(echo(c));
            }
        });
        let clients: Vec<_> = (0..100u32)
            .map(|id| {
                goro::go!(move || {
                    let mut c = TcpStream::connect(addr).unwrap();
                    for round in 0..20u32 {
                        let msg = [id.to_le_bytes(), round.to_le_bytes()].concat();
                        c.write_all(&msg).unwrap();
                        let mut got = [0; 8];
                        c.read_exact(&mut got).unwrap();
                        assert_eq!(got[..], msg[..]);
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
    });
}

/// 10,000 connections open at once, each echoed twice: the server half
/// runs in a child process so that each process stays under the fd limit.
#[test]
fn ten_thousand_connections_held_open_and_echoed() {
    const NAME: &str = "ten_thousand_connections_held_open_and_echoed";
    const CONNS: usize = 10_000;
    const DIALERS: usize = 100;
    if common::is_child(NAME) {
        goro::run(|| {
            let ln = TcpListener::bind("127.0.0.1:0").unwrap();
            println!("listening {}", ln.local_addr().unwrap());
            for c in ln.incoming() {
                goro::go!(echo(c.unwrap()));
            }
        });
        return;
    }
    let limit = common::hard_fd_limit();
    if limit < (CONNS + 500) as u64 {
        eprintln!("skipped: the hard fd limit ({limit}) is below {CONNS} connections");
        return;
    }
    let server = common::ServerChild::spawn(NAME);
    let addr: SocketAddr = server.addr.parse().unwrap();
    within(move || {
        let dialers: Vec<_> = (0..DIALERS)
            .map(|d| {
                goro::go!(move || {
                    (0..CONNS / DIALERS)
                        .map(|i| {
                            let mut c = TcpStream::connect(addr).unwrap();
                            let id = (d * CONNS + i) as u64;
                            c.write_all(&id.to_le_bytes()).unwrap();
                            let mut got = [0; 8];
                            c.read_exact(&mut got).unwrap();
                            assert_eq!(u64::from_le_bytes(got), id);
                            (id, c)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let groups: Vec<_> = dialers.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), CONNS);
        // Every connection is still open: echo on all of them again.
        let checks: Vec<_> = groups
            .into_iter()
            .map(|group| {
                goro::go!(move || {
                    for (id, mut c) in group {
                        c.write_all(&(!id).to_le_bytes()).unwrap();
                        let mut got = [0; 8];
                        c.read_exact(&mut got).unwrap();
                        assert_eq!(u64::from_le_bytes(got), !id);
                    }
                })
            })
            .collect();
        for c in checks {
            c.join().unwrap();
        }
    });
}

/// `close` racing a `read` on the same stream, 1,000 times: every read
/// ends (with the closed error), and no fd is left open. In a child
/// process, so that no other test opens fds meanwhile.
#[test]
fn close_racing_read_never_hangs_or_leaks() {
    const NAME: &str = "close_racing_read_never_hangs_or_leaks";
    if !common::is_child(NAME) {
        common::child(NAME, &[]);
        return;
    }
    goro::run(|| {
        // Warm up: the runtime's and the first socket's lazily made fds.
        drop(pair());
        let before = common::open_fds();
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        for i in 0..1000 {
            let c = Arc::new(TcpStream::connect(addr).unwrap());
            let (_s, _) = ln.accept().unwrap();
            let reader = {
                let c = c.clone();
                goro::go!(move || (&*c).read(&mut [0; 8]))
            };
            for _ in 0..i % 4 {
                goro::yield_now();
            }
            c.close().unwrap();
            assert_closed(&reader.join().unwrap().unwrap_err());
        }
        drop(ln);
        assert_eq!(common::open_fds(), before, "fds leaked");
    });
}

#[test]
fn peek_parks_like_read_and_leaves_the_data() {
    within(|| {
        let (mut c, s) = pair();
        let s = Arc::new(s);
        let peeker = {
            let s = s.clone();
            goro::go!(move || {
                let mut b = [0; 64];
                let n = s.peek(&mut b).unwrap();
                b[..n].to_vec()
            })
        };
        goro::sleep(20 * MS);
        c.write_all(b"hello").unwrap();
        assert_eq!(peeker.join().unwrap(), b"hello");
        // The short peek did not prove the socket drained: the data is
        // still there for a second peek and a read, which must not park.
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0; 3];
        assert_eq!(s.peek(&mut b).unwrap(), 3);
        assert_eq!(&b, b"hel");
        let mut all = [0; 5];
        (&*s).read_exact(&mut all).unwrap();
        assert_eq!(&all, b"hello");
        assert_eq!(s.peek(&mut []).unwrap(), 0);
        // A read deadline applies to a peek, and end of file is `Ok(0)`.
        s.set_read_deadline(Some(Instant::now() - MS)).unwrap();
        assert_timeout(&s.peek(&mut [0; 8]).unwrap_err());
        s.set_read_deadline(None).unwrap();
        drop(c);
        assert_eq!(s.peek(&mut [0; 8]).unwrap(), 0);
        s.close().unwrap();
        assert_closed(&s.peek(&mut [0; 8]).unwrap_err());
    });
}

#[test]
fn linger_is_off_by_default_and_zero_resets_on_close() {
    within(|| {
        let (c, mut s) = pair();
        assert_eq!(c.linger().unwrap(), None);
        c.set_linger(Some(Duration::from_millis(2500))).unwrap();
        assert_eq!(c.linger().unwrap(), Some(Duration::from_secs(2)));
        c.set_linger(Some(Duration::MAX)).unwrap();
        let max = Duration::from_secs(libc::c_int::MAX as u64);
        assert_eq!(c.linger().unwrap(), Some(max));
        c.set_linger(None).unwrap();
        assert_eq!(c.linger().unwrap(), None);
        // A zero linger discards what is unsent and resets the connection.
        c.set_linger(Some(Duration::ZERO)).unwrap();
        assert_eq!(c.linger().unwrap(), Some(Duration::ZERO));
        drop(c);
        let e = s.read(&mut [0; 8]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
    });
}

#[test]
fn nonblocking_mode_returns_would_block_instead_of_parking() {
    within(|| {
        let (mut c, s) = pair();
        s.set_nonblocking(true).unwrap();
        let would_block = |r: io::Result<usize>| {
            let e = r.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e}");
        };
        would_block((&s).read(&mut [0; 8]));
        would_block(s.peek(&mut [0; 8]));
        // A clone starts in the same mode.
        let clone = s.try_clone().unwrap();
        would_block((&clone).read(&mut [0; 8]));
        drop(clone);
        c.write_all(b"now").unwrap();
        let mut b = [0; 8];
        let n = loop {
            match (&s).read(&mut b) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => goro::sleep(MS),
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(&b[..n], b"now");
        // Writes too: they fill the send buffer and then refuse, at once.
        let chunk = vec![0; 1 << 16];
        let mut refused = false;
        for _ in 0..10_000 {
            match (&s).write(&chunk) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    refused = true;
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(refused, "the send buffer never filled");
        // Back in the default mode, a read parks (here until its timeout).
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(20 * MS)).unwrap();
        assert_timeout(&(&s).read(&mut b).unwrap_err());
        // std's stream keeps the mode; a closed one cannot change it.
        s.set_nonblocking(true).unwrap();
        let back = s.into_std().unwrap();
        assert!(common::is_nonblocking(back.as_raw_fd()));
        let (c2, _s2) = pair();
        c2.close().unwrap();
        assert_closed(&c2.set_nonblocking(true).unwrap_err());
        drop(c);
    });
}

// ---- the readiness API: try_read/try_write, poll_*_ready, readable() ----

/// Fills the send buffer with `try_write` until it would block.
fn fill(s: &TcpStream) -> usize {
    let chunk = [7u8; 65536];
    let mut sent = 0;
    loop {
        match s.try_write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return sent,
            Err(e) => panic!("try_write: {e}"),
        }
    }
}

#[test]
fn try_read_would_block_until_readable_then_reads() {
    within(|| {
        let (client, server) = pair();
        let mut buf = [0u8; 16];
        let e = server.try_read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        let writer = goro::spawn(move || {
            goro::sleep(10 * MS);
            client.try_write(b"hello").unwrap();
            client
        });
        goro::block_on(server.readable()).unwrap();
        assert_eq!(server.try_read(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        // A short read proved the socket drained: not ready until the next
        // event, which the peer's hang-up makes.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(server.poll_read_ready(&mut cx).is_pending());
        drop(writer.join().unwrap());
        goro::block_on(std::future::poll_fn(|cx| server.poll_read_ready(cx))).unwrap();
        // End of file, once the peer is gone.
        goro::block_on(server.readable()).unwrap();
        assert_eq!(server.try_read(&mut buf).unwrap(), 0);
    });
}

#[test]
fn try_write_would_block_until_writable() {
    within(|| {
        let (client, server) = pair();
        let sent = fill(&client);
        assert!(sent > 0);
        let (counter, waker) = common::counting_waker();
        assert!(
            client
                .poll_write_ready(&mut std::task::Context::from_waker(&waker))
                .is_pending()
        );
        let reader = goro::spawn(move || {
            let mut buf = vec![0u8; 1 << 20];
            let mut got = 0;
            while got < sent {
                got += (&server).read(&mut buf).unwrap();
            }
            server
        });
        goro::block_on(client.writable()).unwrap();
        assert!(client.try_write(b"more").unwrap() > 0);
        assert!(counter.wakes.load(std::sync::atomic::Ordering::SeqCst) >= 1);
        drop(reader.join().unwrap());
    });
}

/// A readiness wait woken by `close` fails as a blocking read does.
#[test]
fn close_wakes_a_readiness_wait_with_the_closed_error() {
    within(|| {
        let (_client, server) = pair();
        let server = Arc::new(server);
        let s = server.clone();
        let waiter = goro::spawn(move || goro::block_on(s.readable()));
        let s = server.clone();
        let poller =
            goro::spawn(move || goro::block_on(std::future::poll_fn(|cx| s.poll_read_ready(cx))));
        goro::sleep(20 * MS);
        server.close().unwrap();
        assert_closed(&waiter.join().unwrap().unwrap_err());
        assert_closed(&poller.join().unwrap().unwrap_err());
        let blocking = (&*server).read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(blocking.kind(), io::ErrorKind::NotConnected);
        assert_closed(&blocking);
        assert_closed(&server.try_read(&mut [0u8; 4]).unwrap_err());
    });
}

/// The read deadline wakes a readiness wait with the timeout error, and a
/// deadline already past fails it at once.
#[test]
fn deadlines_wake_readiness_waits_with_the_timeout_error() {
    within(|| {
        let (_client, server) = pair();
        server
            .set_read_deadline(Some(Instant::now() + 30 * MS))
            .unwrap();
        assert_timeout(&goro::block_on(server.readable()).unwrap_err());
        assert_timeout(&server.try_read(&mut [0u8; 4]).unwrap_err());
        server.set_read_deadline(None).unwrap();
        // A deadline moved into the past while a task waits wakes it.
        let server = Arc::new(server);
        let s = server.clone();
        let waiter = goro::spawn(move || goro::block_on(s.readable()));
        goro::sleep(20 * MS);
        server.set_read_deadline(Some(Instant::now())).unwrap();
        assert_timeout(&waiter.join().unwrap().unwrap_err());
    });
}

/// Readiness is per waker: a future created and first polled in one
/// coroutine completes when awaited in another, or on a plain thread.
#[test]
fn a_readiness_future_moves_between_coroutines_and_threads() {
    within(|| {
        let (client, server) = pair();
        let server: &'static TcpStream = Box::leak(Box::new(server));
        let client: &'static TcpStream = Box::leak(Box::new(client));
        let (_, waker) = common::counting_waker();
        let mut fut = server.readable();
        assert!(common::poll_once(&mut fut, &waker).is_pending());
        let other = goro::spawn(move || goro::block_on(fut));
        goro::sleep(10 * MS);
        client.try_write(b"x").unwrap();
        other.join().unwrap().unwrap();
        assert_eq!(server.try_read(&mut [0u8; 4]).unwrap(), 1);
        // Readiness lasts until a WouldBlock, so the usual loop: wait, try.
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4];
            loop {
                goro::block_on(server.readable()).unwrap();
                match server.try_read(&mut buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    r => return r.unwrap(),
                }
            }
        });
        goro::sleep(10 * MS);
        client.try_write(b"yz").unwrap();
        assert_eq!(thread.join().unwrap(), 2);
    });
}

/// 100,000 readiness futures dropped while pending leave no waker behind,
/// and none of them is woken by the event that follows.
#[test]
fn cancelled_readiness_waits_leak_nothing_and_wake_nothing() {
    within(|| {
        let (client, server) = pair();
        let (counter, waker) = common::counting_waker();
        for _ in 0..100_000 {
            let mut f = server.readable();
            assert!(common::poll_once(&mut f, &waker).is_pending());
        }
        let mut held: Vec<_> = (0..100_000).map(|_| server.readable()).collect();
        for f in &mut held {
            assert!(common::poll_once(f, &waker).is_pending());
        }
        drop(held);
        // Only `waker` itself holds the counter now.
        assert_eq!(Arc::strong_count(&counter), 2);
        client.try_write(b"x").unwrap();
        goro::block_on(server.readable()).unwrap();
        assert_eq!(counter.wakes.load(std::sync::atomic::Ordering::SeqCst), 0);
    });
}

/// A coroutine in `block_on` waiting on a socket parks in goro's netpoller
/// and shows in a dump as waiting on that fd.
#[test]
fn block_on_a_socket_shows_its_fd_in_a_dump() {
    within(|| {
        let (client, server) = pair();
        let fd = server.as_raw_fd();
        let reader = goro::Builder::new()
            .name("readiness-reader")
            .spawn(move || goro::block_on(server.readable()))
            .unwrap();
        goro::sleep(30 * MS);
        let d = goro::runtime::dump();
        let r = d
            .coroutines
            .iter()
            .find(|c| c.name.as_deref() == Some("readiness-reader"))
            .unwrap_or_else(|| panic!("missing from\n{d}"));
        assert_eq!(
            r.waiting_on,
            Some(goro::runtime::WaitingOn::Read(fd)),
            "{d}"
        );
        client.try_write(b"x").unwrap();
        reader.join().unwrap().unwrap();
    });
}
