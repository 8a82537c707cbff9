//! With the `tokio-io` feature: tokio's `AsyncRead` and `AsyncWrite` on
//! goro's `TcpStream` and `UnixStream`, driven by `goro::block_on` on
//! goro's netpoller.
//!
//! `cargo test --features tokio-io --test tokio_io`

mod common;

use std::future::poll_fn;
use std::io;
use std::pin::Pin;

use common::{assert_closed, within};
use goro::net::{TcpListener, TcpStream, UnixStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Reads once into `buf` through `AsyncRead`.
fn read<S: AsyncRead + Unpin>(s: &mut S, buf: &mut [u8]) -> io::Result<usize> {
    goro::block_on(poll_fn(|cx| {
        let mut rb = ReadBuf::new(buf);
        Pin::new(&mut *s)
            .poll_read(cx, &mut rb)
            .map_ok(|()| rb.filled().len())
    }))
}

/// Writes all of `buf` through `AsyncWrite`.
fn write_all<S: AsyncWrite + Unpin>(s: &mut S, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = goro::block_on(poll_fn(|cx| Pin::new(&mut *s).poll_write(cx, buf)))?;
        buf = &buf[n..];
    }
    goro::block_on(poll_fn(|cx| Pin::new(&mut *s).poll_flush(cx)))
}

fn shutdown<S: AsyncWrite + Unpin>(s: &mut S) -> io::Result<()> {
    goro::block_on(poll_fn(|cx| Pin::new(&mut *s).poll_shutdown(cx)))
}

/// A megabyte each way, more than the socket buffers hold, so both sides
/// wait for readiness; then shutdown gives the peer end of file.
fn exchange<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(mut a: S, mut b: S) {
    let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let expect = data.clone();
    let writer = goro::spawn(move || {
        write_all(&mut a, &data).unwrap();
        shutdown(&mut a).unwrap();
        a
    });
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        match read(&mut b, &mut buf).unwrap() {
            0 => break,
            n => got.extend_from_slice(&buf[..n]),
        }
    }
    assert!(
        got == expect,
        "{} bytes came, not the megabyte sent",
        got.len()
    );
    let mut a = writer.join().unwrap();
    // The peer is gone: shutting down again is still no error.
    drop(b);
    shutdown(&mut a).unwrap();
}

#[test]
fn tcp_stream_reads_writes_and_shuts_down() {
    within(|| {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(ln.local_addr().unwrap()).unwrap();
        let (server, _) = ln.accept().unwrap();
        exchange(client, server);
    });
}

#[test]
fn unix_stream_reads_writes_and_shuts_down() {
    within(|| {
        let (a, b) = UnixStream::pair().unwrap();
        exchange(a, b);
    });
}

/// A read waiting through `AsyncRead` (here on a shared reference, as
/// std's `Read` is implemented for `&UnixStream`) is ended by `close`,
/// with the same error a blocking read gets.
#[test]
fn close_ends_a_pending_async_read() {
    within(|| {
        let (a, _b) = UnixStream::pair().unwrap();
        let a = std::sync::Arc::new(a);
        let a2 = a.clone();
        let reader = goro::spawn(move || read(&mut &*a2, &mut [0u8; 8]));
        goro::sleep(std::time::Duration::from_millis(20));
        a.close().unwrap();
        let e = reader.join().unwrap().unwrap_err();
        assert_closed(&e);
        let blocking = std::io::Read::read(&mut &*a, &mut [0u8; 4]).unwrap_err();
        assert_eq!(blocking.kind(), e.kind());
    });
}
