//! `UnixDatagram`: datagrams by path, by abstract name and between pairs,
//! with deadlines and close.

mod common;

use std::io;
use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_closed, assert_timeout, within};
use goro::net::UnixDatagram;

const MS: Duration = Duration::from_millis(1);

#[test]
fn send_to_a_path_and_learn_the_sender() {
    within(|| {
        let (pa, pb) = (
            common::socket_path("dgram-a"),
            common::socket_path("dgram-b"),
        );
        let a = UnixDatagram::bind(&pa).unwrap();
        let b = UnixDatagram::bind(&pb).unwrap();
        assert!(common::is_cloexec(a.as_raw_fd()));
        assert_eq!(a.send_to(b"hello", &pb).unwrap(), 5);
        let mut buf = [0; 16];
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(from.as_pathname(), Some(pa.as_path()));
        // Reply to the address received.
        b.send_to_addr(b"back", &from).unwrap();
        let (n, _) = a.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"back");
        // An unbound sender is unnamed.
        UnixDatagram::unbound()
            .unwrap()
            .send_to(b"anon", &pb)
            .unwrap();
        let (_, from) = b.recv_from(&mut buf).unwrap();
        assert!(from.is_unnamed());
        std::fs::remove_file(&pa).unwrap();
        std::fs::remove_file(&pb).unwrap();
    });
}

#[test]
fn abstract_names_and_connected_sockets() {
    within(|| {
        let name = common::abstract_name("dgram");
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        client.connect_addr(&addr).unwrap();
        assert_eq!(
            client.peer_addr().unwrap().as_abstract_name(),
            Some(name.as_bytes())
        );
        client.send(b"one").unwrap();
        client.send(b"").unwrap();
        let mut buf = [0; 8];
        assert_eq!(server.recv(&mut buf).unwrap(), 3);
        assert_eq!(server.recv(&mut buf).unwrap(), 0, "the empty datagram");
    });
}

#[test]
fn a_blocked_recv_parks_until_a_datagram_comes() {
    within(|| {
        let (a, b) = UnixDatagram::pair().unwrap();
        let receiver = goro::go!(move || {
            let mut buf = [0; 8];
            let n = b.recv(&mut buf).unwrap();
            buf[..n].to_vec()
        });
        goro::sleep(20 * MS);
        a.send(b"late").unwrap();
        assert_eq!(receiver.join().unwrap(), b"late");
    });
}

#[test]
fn deadlines_and_close() {
    within(|| {
        let (a, b) = UnixDatagram::pair().unwrap();
        let b = Arc::new(b);
        a.send(b"waiting").unwrap();
        b.set_read_deadline(Some(Instant::now() - MS)).unwrap();
        assert_timeout(&b.recv(&mut [0; 8]).unwrap_err());
        b.set_read_deadline(None).unwrap();
        assert_eq!(b.recv(&mut [0; 8]).unwrap(), 7);
        let d = Instant::now() + 40 * MS;
        b.set_deadline(Some(d)).unwrap();
        assert_timeout(&b.recv(&mut [0; 8]).unwrap_err());
        assert!(Instant::now() >= d);
        b.set_deadline(None).unwrap();
        let receiver = {
            let b = b.clone();
            goro::go!(move || b.recv(&mut [0; 8]))
        };
        goro::sleep(20 * MS);
        b.close().unwrap();
        assert_closed(&receiver.join().unwrap().unwrap_err());
        assert_closed(&b.close().unwrap_err());
    });
}

#[test]
fn errors_name_the_path() {
    within(|| {
        let path = common::socket_path("dgram-missing");
        let s = UnixDatagram::unbound().unwrap();
        let e = s.connect(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        let e = s.send_to(b"x", "a\0b").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    });
}

#[test]
fn conversions_and_plain_threads() {
    common::limit(|| {
        let (s1, s2) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let a = UnixDatagram::from(s1);
        let b = UnixDatagram::from(s2);
        assert!(common::is_nonblocking(a.as_raw_fd()));
        let t = std::thread::spawn(move || {
            let mut buf = [0; 8];
            let n = b.recv(&mut buf).unwrap();
            buf[..n].to_vec()
        });
        a.send(b"thread").unwrap();
        assert_eq!(t.join().unwrap(), b"thread");
        let back: std::os::unix::net::UnixDatagram = a.try_into().unwrap();
        assert!(!common::is_nonblocking(back.as_raw_fd()));
    });
}

#[test]
fn peek_and_peek_from_leave_the_datagram() {
    within(|| {
        let (a, b) = UnixDatagram::pair().unwrap();
        let b = Arc::new(b);
        let peeker = {
            let b = b.clone();
            goro::go!(move || {
                let mut buf = [0; 16];
                let n = b.peek(&mut buf).unwrap();
                buf[..n].to_vec()
            })
        };
        goro::sleep(20 * MS);
        a.send(b"dgram").unwrap();
        assert_eq!(peeker.join().unwrap(), b"dgram");
        let mut buf = [0; 16];
        let (n, from) = b.peek_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"dgram");
        assert!(from.is_unnamed());
        assert_eq!(b.recv(&mut buf).unwrap(), 5);
        b.set_nonblocking(true).unwrap();
        let e = b.peek(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    });
}

/// Asserts that `e` is Go's `ErrWriteToConnected`, its text ending with
/// `tail`.
#[track_caller]
fn assert_write_to_connected(e: &io::Error, text: &str) {
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    assert!(goro::net::is_write_to_connected(e), "{e}");
    assert_eq!(e.to_string(), text);
}

#[test]
fn send_to_on_a_connected_socket_fails_as_gos_write_to() {
    within(|| {
        let (pa, pb, pc) = (
            common::socket_path("wtc-a"),
            common::socket_path("wtc-b"),
            common::socket_path("wtc-c"),
        );
        let a = UnixDatagram::bind(&pa).unwrap();
        let b = UnixDatagram::bind(&pb).unwrap();
        let c = UnixDatagram::bind(&pc).unwrap();
        a.connect(&pb).unwrap();
        let e = a.send_to(b"no", &pc).unwrap_err();
        let expected = format!(
            "write unixgram {}->{}: use of WriteTo with pre-connected connection",
            pa.display(),
            pc.display()
        );
        assert_write_to_connected(&e, &expected);
        let c_addr = c.local_addr().unwrap();
        assert_write_to_connected(&a.send_to_addr(b"no", &c_addr).unwrap_err(), &expected);
        a.send(b"peer").unwrap();
        let mut buf = [0; 8];
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from.as_pathname()),
            (&b"peer"[..], Some(pa.as_path()))
        );

        // A pair is connected; an unbound socket has no local address to
        // name.
        let (x, _y) = UnixDatagram::pair().unwrap();
        let e = x.send_to(b"no", &pc).unwrap_err();
        assert_write_to_connected(
            &e,
            &format!(
                "write unixgram {}: use of WriteTo with pre-connected connection",
                pc.display()
            ),
        );
        // Adopted from std, connected: known too.
        let s = std::os::unix::net::UnixDatagram::unbound().unwrap();
        s.connect(&pb).unwrap();
        let adopted = UnixDatagram::from(s);
        assert!(goro::net::is_write_to_connected(
            &adopted.send_to(b"no", &pc).unwrap_err()
        ));
        // Unconnected sockets send anywhere.
        assert_eq!(c.send_to(b"free", &pb).unwrap(), 4);
        let n = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"free");
        for p in [pa, pb, pc] {
            let _ = std::fs::remove_file(p);
        }
    });
}

// ---- the readiness API ----

#[test]
fn try_recv_would_block_until_readable() {
    within(|| {
        let (a, b) = UnixDatagram::pair().unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(
            b.try_recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let b = Arc::new(b);
        let b2 = b.clone();
        let receiver = goro::spawn(move || {
            let mut buf = [0u8; 16];
            loop {
                goro::block_on(b2.readable()).unwrap();
                match b2.try_recv(&mut buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    r => return buf[..r.unwrap()].to_vec(),
                }
            }
        });
        goro::sleep(10 * MS);
        goro::block_on(a.writable()).unwrap();
        assert_eq!(a.try_send(b"ping").unwrap(), 4);
        // A connected socket refuses a destination, as send_to does.
        let e = a.try_send_to(b"x", "/nonexistent").unwrap_err();
        assert!(goro::net::is_write_to_connected(&e), "{e}");
        assert_eq!(receiver.join().unwrap(), b"ping");
        // To a path, and back with the sender's address.
        let dir = std::env::temp_dir().join(format!("goro-ud-ready-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let named = UnixDatagram::bind(&dir).unwrap();
        let from = UnixDatagram::unbound().unwrap();
        assert_eq!(from.try_send_to(b"hi", &dir).unwrap(), 2);
        goro::block_on(named.readable()).unwrap();
        let (n, _) = named.try_recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hi");
        let _ = std::fs::remove_file(&dir);
    });
}

#[test]
fn close_and_deadline_end_readiness_waits() {
    within(|| {
        let (s, _peer) = UnixDatagram::pair().unwrap();
        let s = Arc::new(s);
        let s2 = s.clone();
        let waiter = goro::spawn(move || goro::block_on(s2.readable()));
        goro::sleep(20 * MS);
        s.close().unwrap();
        assert_closed(&waiter.join().unwrap().unwrap_err());
        assert_closed(&s.recv(&mut [0u8; 4]).unwrap_err());
        let (t, _peer) = UnixDatagram::pair().unwrap();
        t.set_read_deadline(Some(Instant::now() + 20 * MS)).unwrap();
        assert_timeout(&goro::block_on(t.readable()).unwrap_err());
    });
}
