//! `UdpSocket`: datagrams, connected sockets, deadlines and close.

mod common;

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_closed, assert_timeout, within};
use goro::net::UdpSocket;

const MS: Duration = Duration::from_millis(1);

fn bound() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

/// The next datagram from the connected peer (or anyone, if unconnected).
fn recv(s: &UdpSocket) -> Vec<u8> {
    let mut buf = [0; 64];
    let n = s.recv(&mut buf).unwrap();
    buf[..n].to_vec()
}

#[test]
fn send_to_and_recv_from() {
    within(|| {
        let (a, b) = (bound(), bound());
        assert!(common::is_cloexec(a.as_raw_fd()));
        let b_addr = b.local_addr().unwrap();
        for i in 0..10u8 {
            assert_eq!(a.send_to(&[i; 3], b_addr).unwrap(), 3);
        }
        for i in 0..10u8 {
            let mut buf = [0; 16];
            let (n, from) = b.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (&[i; 3][..], a.local_addr().unwrap()));
        }
        // A host name and Go's address form resolve too.
        let port = b_addr.port();
        a.send_to(b"named", format!("localhost:{port}")).unwrap();
        a.send_to(b"tuple", ("127.0.0.1", port)).unwrap();
        assert_eq!(recv(&b), b"named");
        assert_eq!(recv(&b), b"tuple");
    });
}

#[test]
fn a_blocked_recv_parks_until_a_datagram_comes() {
    within(|| {
        let (a, b) = (bound(), Arc::new(bound()));
        let b_addr = b.local_addr().unwrap();
        let receiver = {
            let b = b.clone();
            goro::go!(move || {
                let mut buf = [0; 8];
                let (n, _) = b.recv_from(&mut buf).unwrap();
                buf[..n].to_vec()
            })
        };
        goro::sleep(20 * MS);
        a.send_to(b"late", b_addr).unwrap();
        assert_eq!(receiver.join().unwrap(), b"late");
    });
}

#[test]
fn connected_sockets_send_and_recv_including_empty_datagrams() {
    within(|| {
        let (a, b) = (bound(), bound());
        a.connect(b.local_addr().unwrap()).unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
        a.send(b"one").unwrap();
        assert_eq!(a.send(&[]).unwrap(), 0);
        a.send(b"two").unwrap();
        assert_eq!(recv(&b), b"one");
        assert_eq!(recv(&b), b"", "the empty datagram");
        assert_eq!(recv(&b), b"two");
    });
}

#[test]
fn a_past_deadline_fails_at_once_even_with_a_datagram_waiting() {
    within(|| {
        let (a, b) = (bound(), bound());
        a.send_to(b"waiting", b.local_addr().unwrap()).unwrap();
        goro::sleep(10 * MS);
        b.set_read_deadline(Some(Instant::now() - MS)).unwrap();
        assert_timeout(&b.recv_from(&mut [0; 16]).unwrap_err());
        b.set_read_deadline(None).unwrap();
        let mut buf = [0; 16];
        let (n, _) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"waiting");
        a.set_write_deadline(Some(Instant::now())).unwrap();
        assert_timeout(&a.send_to(b"x", b.local_addr().unwrap()).unwrap_err());
    });
}

#[test]
fn deadlines_ahead_and_moved() {
    within(|| {
        let b = Arc::new(bound());
        let d = Instant::now() + 80 * MS;
        b.set_deadline(Some(d)).unwrap();
        assert_timeout(&b.recv_from(&mut [0; 8]).unwrap_err());
        assert!(Instant::now() >= d);
        // Moved into the past from another coroutine: wakes the receiver.
        b.set_deadline(None).unwrap();
        let receiver = {
            let b = b.clone();
            goro::go!(move || b.recv_from(&mut [0; 8]).map(drop))
        };
        goro::sleep(20 * MS);
        b.set_read_deadline(Some(Instant::now() - MS)).unwrap();
        assert_timeout(&receiver.join().unwrap().unwrap_err());
        // std's per-call timeout.
        b.set_read_timeout(Some(30 * MS)).unwrap();
        assert_eq!(b.read_timeout().unwrap(), Some(30 * MS));
        let start = Instant::now();
        assert_timeout(&b.recv(&mut [0; 8]).unwrap_err());
        assert!(start.elapsed() >= 30 * MS);
        let e = b.set_write_timeout(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    });
}

#[test]
fn close_wakes_a_blocked_recv() {
    within(|| {
        let b = Arc::new(bound());
        let receiver = {
            let b = b.clone();
            goro::go!(move || b.recv_from(&mut [0; 8]).map(drop))
        };
        goro::sleep(20 * MS);
        b.close().unwrap();
        assert_closed(&receiver.join().unwrap().unwrap_err());
        assert_closed(&b.send_to(b"x", "127.0.0.1:9").unwrap_err());
        assert_closed(&b.close().unwrap_err());
    });
}

#[test]
fn bind_errors_name_the_address() {
    within(|| {
        let a = bound();
        let addr = a.local_addr().unwrap();
        let e = UdpSocket::bind(addr).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert!(e.to_string().contains(&addr.to_string()), "{e}");
        let e = UdpSocket::bind("127.0.0.1").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("127.0.0.1"), "{e}");
    });
}

#[test]
fn options_clone_and_conversions() {
    within(|| {
        let a = bound();
        a.set_broadcast(true).unwrap();
        assert!(a.broadcast().unwrap());
        a.set_ttl(7).unwrap();
        assert_eq!(a.ttl().unwrap(), 7);
        assert!(a.take_error().unwrap().is_none());
        let b = bound();
        let a2 = a.try_clone().unwrap();
        a2.send_to(b"clone", b.local_addr().unwrap()).unwrap();
        let (_, from) = b.recv_from(&mut [0; 8]).unwrap();
        assert_eq!(from, a.local_addr().unwrap());
        let std_sock: std::net::UdpSocket = a.try_into().unwrap();
        assert!(!common::is_nonblocking(std_sock.as_raw_fd()));
        let back = UdpSocket::from(std_sock);
        assert!(common::is_nonblocking(back.as_raw_fd()));
        back.send_to(b"back", b.local_addr().unwrap()).unwrap();
        assert_eq!(recv(&b), b"back");
    });
}

#[test]
fn plain_threads_send_and_receive() {
    common::limit(|| {
        let b = bound();
        let addr = b.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            std::thread::sleep(20 * MS);
            bound().send_to(b"thread", addr).unwrap();
        });
        let mut buf = [0; 8];
        let (n, _) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"thread");
        t.join().unwrap();
    });
}

#[test]
fn peek_and_peek_from_park_and_leave_the_datagram() {
    within(|| {
        let (a, b) = (Arc::new(bound()), bound());
        let a_addr = a.local_addr().unwrap();
        let peeker = {
            let a = a.clone();
            goro::go!(move || {
                let mut buf = [0; 16];
                let (n, from) = a.peek_from(&mut buf).unwrap();
                (buf[..n].to_vec(), from)
            })
        };
        goro::sleep(20 * MS);
        b.send_to(b"first", a_addr).unwrap();
        let b_addr = b.local_addr().unwrap();
        assert_eq!(peeker.join().unwrap(), (b"first".to_vec(), b_addr));
        // Still there: peeked again, then received.
        let mut buf = [0; 16];
        assert_eq!(a.peek_from(&mut buf).unwrap(), (5, b_addr));
        assert_eq!(a.recv_from(&mut buf).unwrap(), (5, b_addr));
        // Connected: `peek`, then `recv`, see the same datagram.
        a.connect(b_addr).unwrap();
        b.send_to(b"second", a_addr).unwrap();
        assert_eq!(a.peek(&mut buf).unwrap(), 6);
        assert_eq!(&buf[..6], b"second");
        assert_eq!(recv(&a), b"second");
        // A read deadline applies, and so does close.
        a.set_read_deadline(Some(Instant::now() - MS)).unwrap();
        assert_timeout(&a.peek(&mut buf).unwrap_err());
        a.close().unwrap();
        assert_closed(&a.peek_from(&mut buf).unwrap_err());
    });
}

#[test]
fn nonblocking_mode_returns_would_block_instead_of_parking() {
    within(|| {
        let (a, b) = (bound(), bound());
        a.set_nonblocking(true).unwrap();
        let mut buf = [0; 16];
        for r in [
            a.recv_from(&mut buf).map(|(n, _)| n),
            a.peek_from(&mut buf).map(|(n, _)| n),
        ] {
            assert_eq!(r.unwrap_err().kind(), io::ErrorKind::WouldBlock);
        }
        b.send_to(b"x", a.local_addr().unwrap()).unwrap();
        let n = loop {
            match a.recv_from(&mut buf) {
                Ok((n, _)) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => goro::sleep(MS),
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(&buf[..n], b"x");
        a.set_nonblocking(false).unwrap();
        a.set_read_timeout(Some(20 * MS)).unwrap();
        assert_timeout(&a.recv_from(&mut buf).unwrap_err());
    });
}

/// Asserts that `e` is Go's `ErrWriteToConnected` for a send from `local`
/// to `dest`.
#[track_caller]
fn assert_write_to_connected(
    e: &io::Error,
    local: std::net::SocketAddr,
    dest: std::net::SocketAddr,
) {
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    assert!(goro::net::is_write_to_connected(e), "{e}");
    assert!(!goro::net::is_closed(e), "{e}");
    assert_eq!(
        e.to_string(),
        format!("write udp {local}->{dest}: use of WriteTo with pre-connected connection")
    );
}

#[test]
fn send_to_on_a_connected_socket_fails_as_gos_write_to() {
    within(|| {
        let (a, b, c) = (bound(), bound(), bound());
        let (a_addr, b_addr, c_addr) = (
            a.local_addr().unwrap(),
            b.local_addr().unwrap(),
            c.local_addr().unwrap(),
        );
        a.connect(b_addr).unwrap();
        // Not even to the peer itself, as in Go.
        for dest in [c_addr, b_addr] {
            let e = a.send_to(b"no", dest).unwrap_err();
            assert_write_to_connected(&e, a_addr, dest);
        }
        // Nothing was sent: the next datagram at `b` is this one.
        a.send(b"to the peer").unwrap();
        assert_eq!(recv(&b), b"to the peer");
        // A clone knows, and so does a dialed socket and one adopted from std.
        let clone = a.try_clone().unwrap();
        assert_write_to_connected(&clone.send_to(b"no", c_addr).unwrap_err(), a_addr, c_addr);
        let std_sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        std_sock.connect(b_addr).unwrap();
        let std_addr = std_sock.local_addr().unwrap();
        let adopted = UdpSocket::from(std_sock);
        assert_write_to_connected(
            &adopted.send_to(b"no", c_addr).unwrap_err(),
            std_addr,
            c_addr,
        );
        // An unconnected socket is unaffected.
        assert_eq!(c.send_to(b"free", b_addr).unwrap(), 4);
        let mut buf = [0; 16];
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"free"[..], c_addr));
    });
}

#[test]
fn an_ipv4_mapped_destination_reaches_an_ipv4_socket() {
    within(|| {
        let (a, b) = (bound(), bound());
        let b_addr = b.local_addr().unwrap();
        let std::net::IpAddr::V4(ip) = b_addr.ip() else {
            unreachable!("bound to 127.0.0.1")
        };
        let mapped = std::net::SocketAddr::new(ip.to_ipv6_mapped().into(), b_addr.port());
        assert_eq!(
            mapped.to_string(),
            format!("[::ffff:127.0.0.1]:{}", b_addr.port())
        );
        assert_eq!(a.send_to(b"mapped", mapped).unwrap(), 6);
        let mut buf = [0; 16];
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"mapped"[..], a.local_addr().unwrap()));
        // And so does a connect to one.
        let c = bound();
        c.connect(mapped).unwrap();
        assert_eq!(c.peer_addr().unwrap(), b_addr);
        c.send(b"connected").unwrap();
        assert_eq!(recv(&b), b"connected");
        // A plain IPv6 destination is not an IPv4 socket's to reach.
        let v6 = std::net::SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), b_addr.port());
        assert!(a.send_to(b"v6", v6).is_err());
    });
}

// ---- the readiness API ----

#[test]
fn try_recv_would_block_until_readable() {
    within(|| {
        let a = bound();
        let b = bound();
        a.connect(b.local_addr().unwrap()).unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(
            b.try_recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert_eq!(
            b.try_recv_from(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let b = Arc::new(b);
        let b2 = b.clone();
        let receiver = goro::spawn(move || {
            let mut buf = [0u8; 16];
            loop {
                goro::block_on(b2.readable()).unwrap();
                match b2.try_recv_from(&mut buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    r => return (r.unwrap(), buf),
                }
            }
        });
        goro::sleep(10 * MS);
        goro::block_on(a.writable()).unwrap();
        assert_eq!(a.try_send(b"ping").unwrap(), 4);
        // A connected socket refuses a destination, as send_to does.
        let e = a.try_send_to(b"x", b.local_addr().unwrap()).unwrap_err();
        assert!(goro::net::is_write_to_connected(&e), "{e}");
        let ((n, from), buf) = receiver.join().unwrap();
        assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr().unwrap()));
        // try_send_to and try_recv_from between unconnected sockets (a
        // connected one drops datagrams from anyone else).
        let a = bound();
        let c = bound();
        assert_eq!(c.try_send_to(b"pong", a.local_addr().unwrap()).unwrap(), 4);
        let mut buf = [0u8; 16];
        let n = loop {
            goro::block_on(std::future::poll_fn(|cx| a.poll_read_ready(cx))).unwrap();
            match a.try_recv_from(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => break r.unwrap(),
            }
        };
        assert_eq!((&buf[..n.0], n.1), (&b"pong"[..], c.local_addr().unwrap()));
    });
}

#[test]
fn close_and_deadline_end_readiness_waits() {
    within(|| {
        let s = Arc::new(bound());
        let s2 = s.clone();
        let waiter = goro::spawn(move || goro::block_on(s2.readable()));
        goro::sleep(20 * MS);
        s.close().unwrap();
        assert_closed(&waiter.join().unwrap().unwrap_err());
        assert_closed(&s.recv(&mut [0u8; 4]).unwrap_err());
        assert_closed(&s.try_recv(&mut [0u8; 4]).unwrap_err());
        let t = bound();
        t.set_read_deadline(Some(Instant::now() + 20 * MS)).unwrap();
        assert_timeout(&goro::block_on(t.readable()).unwrap_err());
    });
}
