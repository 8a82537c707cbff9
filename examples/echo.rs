//! A TCP echo server: Go's canonical server, line for line, with a graceful
//! stop.
//!
//! ```text
//! cargo run --release --example echo            # serves 127.0.0.1:7000
//! cargo run --release --example echo -- :9000   # or another address
//! nc 127.0.0.1 7000                             # type; every line comes back
//! ```
//!
//! Each connection gets its own coroutine, whose blocking-looking reads and
//! writes park only that coroutine. Ctrl-C (or SIGTERM) stops accepting and
//! lets the open connections finish; a second one exits at once.

use std::io::{self, Read, Write};
use std::sync::Arc;

use goro::net::Conn;
use goro::signal::{self, SIGINT, SIGTERM};
use goro::sync::WaitGroup;

/// Echoes what `conn` sends until it hangs up. `conn` is closed when it is
/// dropped, at return: Go's `defer conn.Close()`.
fn handler(mut conn: Conn, wg: WaitGroup) {
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    wg.done();
}

/// Listens on `addr` and serves each connection in a new coroutine until a
/// signal closes the listener; then waits for the open connections. `ln` is
/// closed when `serve` returns: Go's `defer ln.Close()`.
fn serve(addr: &str) -> io::Result<()> {
    let ln = Arc::new(goro::net::listen("tcp", addr)?);
    println!("listening {}", ln.local_addr()?);
    let signals = signal::notify(&[SIGINT, SIGTERM])?;
    let closer = ln.clone();
    goro::go!(move || {
        if let Ok(sig) = signals.recv() {
            eprintln!("echo: {sig}: no longer accepting; finishing open connections");
            let _ = closer.close();
        }
        if let Ok(sig) = signals.recv() {
            eprintln!("echo: {sig} again: exiting");
            std::process::exit(1);
        }
    });
    let wg = WaitGroup::new();
    loop {
        let (conn, _) = match ln.accept() {
            Ok(accepted) => accepted,
            // Closed by the signal: stop accepting.
            Err(e) if goro::net::is_closed(&e) => break,
            Err(e) => return Err(e),
        };
        wg.add(1);
        goro::go!(handler(conn, wg.clone()));
    }
    wg.wait();
    eprintln!("echo: all connections finished");
    Ok(())
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
