//! `PathError`: a file system error that names what failed (Go's
//! `fs.PathError` and `os.LinkError` in one).

use std::error::Error;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The error inside every `io::Error` that `goro::fs` returns for a path:
/// the operation, the path (two for `rename` and `copy`) and the system's
/// error. The outer `io::Error` has the same `kind()`.
///
/// ```
/// let err = goro::fs::read("/no/such/file").unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
/// let inner = err.get_ref().unwrap().downcast_ref::<goro::fs::PathError>().unwrap();
/// assert_eq!(inner.op(), "open");
/// assert_eq!(inner.path(), std::path::Path::new("/no/such/file"));
/// assert_eq!(inner.error().raw_os_error(), Some(libc::ENOENT));
/// ```
#[derive(Debug)]
pub struct PathError {
    /// What was being done, in Go's words: "open", "read", "stat", ...
    op: &'static str,
    /// The path the operation was on (the source, for two-path ones).
    path: PathBuf,
    /// The destination of a two-path operation (`rename`, `copy`).
    to: Option<PathBuf>,
    /// The error the system (or std) gave.
    err: io::Error,
}

impl PathError {
    /// Wraps `err` into an `io::Error` of the same kind that names `op` and
    /// the path(s).
    pub(crate) fn wrap(
        op: &'static str,
        path: PathBuf,
        to: Option<PathBuf>,
        err: io::Error,
    ) -> io::Error {
        io::Error::new(err.kind(), PathError { op, path, to, err })
    }

    /// The operation that failed ("open", "read", "write", "seek", "stat",
    /// "lstat", "sync", "truncate", "remove", "mkdir", "readdir", "rename",
    /// "copy").
    pub fn op(&self) -> &str {
        self.op
    }

    /// The path operated on; for `rename` and `copy`, the source.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The destination of `rename` and `copy`; `None` for other operations.
    pub fn to(&self) -> Option<&Path> {
        self.to.as_deref()
    }

    /// The underlying error, with the system's error number if there is one.
    pub fn error(&self) -> &io::Error {
        &self.err
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op, self.path.display())?;
        if let Some(to) = &self.to {
            write!(f, " {}", to.display())?;
        }
        write!(f, ": {}", self.err)
    }
}

impl Error for PathError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.err)
    }
}
