//! `described`: an `io::Error` with words added (what was being done, how
//! far it got) that keeps the identity of the error it describes.
//!
//! An `io::Error` built from another's text alone (`io::Error::new(kind,
//! format!("...: {e}"))`) drops everything but the kind: the system's error
//! number (`raw_os_error`) and the type inside (such as the closed-socket
//! marker `goro::net::is_closed` looks for). Every error goro describes
//! keeps the original as its `source()` instead.

use std::error::Error;
use std::fmt;
use std::io;

/// An error and the text that describes it.
#[derive(Debug)]
struct Described {
    /// The whole message, usually the error's own text with words added.
    text: String,
    /// The error being described, unchanged.
    source: io::Error,
}

impl fmt::Display for Described {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Error for Described {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// `err`, reading `text`: same kind, and `err` itself (with its
/// `raw_os_error` and the error inside it) as the `source()`.
pub(crate) fn described(text: String, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), Described { text, source: err })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_described_error_is_the_source() {
        let e = described(
            "cannot start: out of memory".into(),
            io::Error::from_raw_os_error(libc::ENOMEM),
        );
        assert_eq!(e.kind(), io::ErrorKind::OutOfMemory);
        assert_eq!(e.to_string(), "cannot start: out of memory");
        let source = e.source().and_then(|s| s.downcast_ref::<io::Error>());
        assert_eq!(source.and_then(io::Error::raw_os_error), Some(libc::ENOMEM));
    }
}
