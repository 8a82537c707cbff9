//! Errors that name what failed, Go style: `dial tcp 127.0.0.1:1:
//! connection refused`. The `ErrorKind` is the underlying error's, and the
//! underlying error (with its `raw_os_error`) is the `source()`.

use std::fmt;
use std::io;

use crate::error::described;

/// `err` with its context (`dial tcp 127.0.0.1:1`, `lookup example.com`)
/// in front, keeping its kind, and itself as the `source()`.
pub(crate) fn op_error(context: fmt::Arguments<'_>, err: io::Error) -> io::Error {
    described(format!("{context}: {}", cause(&err)), err)
}

/// The cause of a `send_to` refused because the socket is connected (Go's
/// `net.ErrWriteToConnected`); see `goro::net::is_write_to_connected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WriteToConnected;

impl fmt::Display for WriteToConnected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("use of WriteTo with pre-connected connection")
    }
}

impl std::error::Error for WriteToConnected {}

/// The error of a `send_to` to `dest` on a connected `network` socket whose
/// address is `local`, as Go words it: `write udp 127.0.0.1:5000->10.0.0.1:53:
/// use of WriteTo with pre-connected connection`. `InvalidInput`: the
/// destination may not be given to a socket that has one.
pub(crate) fn write_to_connected(
    network: &str,
    local: Option<&dyn fmt::Display>,
    dest: &dyn fmt::Display,
) -> io::Error {
    let err = io::Error::new(io::ErrorKind::InvalidInput, WriteToConnected);
    match local {
        Some(local) => op_error(format_args!("write {network} {local}->{dest}"), err),
        None => op_error(format_args!("write {network} {dest}"), err),
    }
}

/// An `InvalidInput` error with `msg`.
pub(crate) fn invalid_input(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// How Go would print `err`: an OS error as its lower-case description
/// ("connection refused"), without std's "(os error 111)" suffix.
fn cause(err: &io::Error) -> String {
    let text = err.to_string();
    let Some(code) = err.raw_os_error() else {
        return text;
    };
    let text = text
        .strip_suffix(&format!(" (os error {code})"))
        .unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn os_errors_read_as_go_prints_them() {
        let e = op_error(
            format_args!("dial tcp {}", "127.0.0.1:1"),
            io::Error::from_raw_os_error(libc::ECONNREFUSED),
        );
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(e.to_string(), "dial tcp 127.0.0.1:1: connection refused");
        let source = e.get_ref().and_then(Error::source).unwrap();
        let os = source.downcast_ref::<io::Error>().unwrap();
        assert_eq!(os.raw_os_error(), Some(libc::ECONNREFUSED));
    }

    #[test]
    fn a_closed_error_stays_closed() {
        let e = op_error(
            format_args!("connect udp 127.0.0.1:1"),
            crate::runtime::io::netpoll::closed_error(),
        );
        assert_eq!(e.kind(), io::ErrorKind::NotConnected);
        assert!(crate::net::is_closed(&e), "{e}");
    }

    #[test]
    fn other_errors_keep_their_text() {
        let e = op_error(
            format_args!("listen unix /tmp/x"),
            io::Error::new(io::ErrorKind::TimedOut, "i/o timeout"),
        );
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(e.to_string(), "listen unix /tmp/x: i/o timeout");
    }
}
