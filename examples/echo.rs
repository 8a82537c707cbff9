//! A TCP echo server: Go's canonical server, line for line.
//!
//! ```text
//! cargo run --release --example echo            # serves 127.0.0.1:7000
//! cargo run --release --example echo -- :9000   # or another address
//! nc 127.0.0.1 7000                             # type; every line comes back
//! ```
//!
//! Each connection gets its own coroutine, whose blocking-looking reads and
//! writes park only that coroutine.

use std::io::{self, Read, Write};

use goro::net::Conn;

/// Echoes what `conn` sends until it hangs up. `conn` is closed when it is
/// dropped, at return: Go's `defer conn.Close()`.
fn handler(mut conn: Conn) {
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// Listens on `addr` and serves each connection in a new coroutine. `ln`
/// is closed when `serve` returns: Go's `defer ln.Close()`.
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
        .unwrap_or_else(|| "127.0.0.1:7000".to_string());
    if let Err(e) = goro::run(move || serve(&addr)) {
        eprintln!("echo: {e}");
        std::process::exit(1);
    }
}
