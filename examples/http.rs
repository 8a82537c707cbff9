//! A minimal HTTP/1.1 server that answers every request with
//! `Hello, World!`, one coroutine per connection, keep-alive and
//! pipelining included.
//!
//! ```text
//! cargo run --release --example http            # serves 127.0.0.1:8080
//! cargo run --release --example http -- :9000   # or another address
//! curl http://127.0.0.1:8080/
//! ```
//!
//! It reads requests as far as the blank line that ends their headers, so
//! it serves requests without a body (GET, HEAD); it is a demonstration of
//! the runtime, not an HTTP implementation.

use std::io::{self, Read, Write};

use goro::net::Conn;

/// The one response.
const HELLO: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!";

/// The answer to a request whose headers do not fit the buffer.
const TOO_LARGE: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Largest request head accepted.
const BUF_SIZE: usize = 8192;

/// Serves requests on `conn` until the client hangs up. Every complete
/// request in what has arrived gets its response, and the responses go out
/// in one write, so pipelined requests cost one system call each way.
fn handler(mut conn: Conn) {
    let mut buf = vec![0u8; BUF_SIZE];
    let mut out = Vec::with_capacity(BUF_SIZE);
    let mut have = 0;
    loop {
        if have == buf.len() {
            let _ = conn.write_all(TOO_LARGE);
            return;
        }
        match conn.read(&mut buf[have..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => have += n,
        }
        let mut start = 0;
        while let Some(end) = find_head_end(&buf[start..have]) {
            start += end;
            out.extend_from_slice(HELLO);
        }
        buf.copy_within(start..have, 0);
        have -= start;
        if !out.is_empty() {
            if conn.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
    }
}

/// The length of the first request head in `buf` (through its blank line).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn serve(addr: &str) -> io::Result<()> {
    let ln = goro::net::listen("tcp", addr)?;
    println!("listening {}", ln.local_addr()?);
    loop {
        let (conn, _) = ln.accept()?;
        goro::go!(handler(conn));
    }
}

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    if let Err(e) = goro::run(move || serve(&addr)) {
        eprintln!("http: {e}");
        std::process::exit(1);
    }
}
