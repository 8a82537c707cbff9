//! Files that do not hold a worker: Go's `os` file functions for coroutines.
//!
//! Regular files have no non-blocking mode (epoll refuses them, and a read
//! of a cold page waits for the disk), so Go runs file system calls on
//! threads that may block. goro does the same with `goro::blocking`: every
//! call here runs its system calls on the blocking pool and parks only the
//! calling coroutine. On a plain thread outside the runtime the calls run
//! directly, as `std::fs` would.
//!
//! Each call costs a handoff to a pool thread and back (a few microseconds)
//! on top of the system call, so prefer the whole-file functions (`read`,
//! `write`, `read_to_string`) or put a `BufReader`/`BufWriter` around a
//! `File` for small reads and writes. Because a pool thread cannot borrow
//! the caller's buffer (the call must be `'static`), `File::read` and
//! `File::write` go through an owned buffer, copied once, of at most
//! `MAX_CHUNK` bytes per call.
//!
//! Errors keep the `io::ErrorKind` of the system's error and name the
//! operation and the path, as Go's `*PathError` does
//! (`open /no/such: No such file or directory (os error 2)`); the
//! `PathError` inside (`io::Error::get_ref`) gives back each part.
//!
//! ```
//! let dir = std::env::temp_dir().join(format!("goro-fs-doc-{}", std::process::id()));
//! let text = goro::run(move || {
//!     goro::fs::create_dir_all(&dir)?;
//!     let path = dir.join("hello.txt");
//!     goro::fs::write(&path, "hello, file")?;
//!     let text = goro::fs::read_to_string(&path)?;
//!     goro::fs::remove_dir_all(&dir)?;
//!     std::io::Result::Ok(text)
//! });
//! assert_eq!(text.unwrap(), "hello, file");
//! ```

mod error;
mod file;

use std::fs as stdfs;
use std::io::{self, Read, Write};
use std::path::Path;

pub use error::PathError;
pub use file::{File, OpenOptions};
pub use std::fs::{DirEntry, FileType, Metadata, Permissions};

use crate::blocking;

/// Most bytes one `File::read` or `File::write` moves through its owned
/// buffer: larger requests are served in part, as `read`/`write` allow, so
/// that a huge buffer is not copied whole.
const MAX_CHUNK: usize = 1 << 20;

/// Runs `f` on the blocking pool with an owned copy of `path`, naming `op`
/// and the path in its error.
fn on_path<T, F>(op: &'static str, path: &Path, f: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce(&Path) -> io::Result<T> + Send + 'static,
{
    let path = path.to_path_buf();
    blocking(move || f(&path).map_err(|e| PathError::wrap(op, path, None, e)))
}

/// Runs `f` on the blocking pool with owned copies of two paths, naming
/// `op` and both paths in its error.
fn on_paths<T, F>(op: &'static str, from: &Path, to: &Path, f: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce(&Path, &Path) -> io::Result<T> + Send + 'static,
{
    let (from, to) = (from.to_path_buf(), to.to_path_buf());
    blocking(move || f(&from, &to).map_err(|e| PathError::wrap(op, from, Some(to), e)))
}

/// Reads a whole file (Go's `os.ReadFile`).
///
/// # Errors
/// As `File::open` and `Read::read_to_end`, naming the path.
pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path = path.as_ref().to_path_buf();
    blocking(move || {
        let mut file =
            stdfs::File::open(&path).map_err(|e| PathError::wrap("open", path.clone(), None, e))?;
        let size = file.metadata().map_or(0, |m| m.len() as usize);
        let mut data = Vec::with_capacity(size);
        match file.read_to_end(&mut data) {
            Ok(_) => Ok(data),
            Err(e) => Err(PathError::wrap("read", path, None, e)),
        }
    })
}

/// Reads a whole file as UTF-8.
///
/// # Errors
/// As `read`; `InvalidData` if the contents are not UTF-8.
pub fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref();
    let data = read(path)?;
    String::from_utf8(data).map_err(|_| {
        PathError::wrap(
            "read",
            path.to_path_buf(),
            None,
            io::Error::new(io::ErrorKind::InvalidData, "file is not valid UTF-8"),
        )
    })
}

/// Writes `contents` as the whole file, creating it or truncating it (Go's
/// `os.WriteFile`, std's `fs::write`). The contents are copied once, to be
/// handed to the pool thread.
///
/// # Errors
/// As `File::create` and `Write::write_all`, naming the path.
pub fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let path = path.as_ref().to_path_buf();
    let contents = contents.as_ref().to_vec();
    blocking(move || {
        let mut file = stdfs::File::create(&path)
            .map_err(|e| PathError::wrap("open", path.clone(), None, e))?;
        file.write_all(&contents)
            .map_err(|e| PathError::wrap("write", path, None, e))
    })
}

/// The metadata of `path`, following symbolic links (Go's `os.Stat`).
///
/// # Errors
/// `NotFound` and the like, naming the path.
pub fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    on_path("stat", path.as_ref(), |p| stdfs::metadata(p))
}

/// The metadata of `path` itself, not following a symbolic link (Go's
/// `os.Lstat`).
///
/// # Errors
/// As `metadata`.
pub fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    on_path("lstat", path.as_ref(), |p| stdfs::symlink_metadata(p))
}

/// Removes a file (or symbolic link).
///
/// # Errors
/// `NotFound`, `IsADirectory`, `PermissionDenied` and the like, naming the
/// path.
pub fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    on_path("remove", path.as_ref(), |p| stdfs::remove_file(p))
}

/// Removes an empty directory.
///
/// # Errors
/// `NotFound`, `DirectoryNotEmpty` and the like, naming the path.
pub fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    on_path("remove", path.as_ref(), |p| stdfs::remove_dir(p))
}

/// Removes a directory and everything under it (std's `remove_dir_all`).
///
/// # Errors
/// As std's, naming the directory given.
pub fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    on_path("remove", path.as_ref(), |p| stdfs::remove_dir_all(p))
}

/// Creates a directory; its parent must exist.
///
/// # Errors
/// `AlreadyExists`, `NotFound` (no parent) and the like, naming the path.
pub fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    on_path("mkdir", path.as_ref(), |p| stdfs::create_dir(p))
}

/// Creates a directory and any missing parents (Go's `os.MkdirAll`); a
/// directory that exists already is fine.
///
/// # Errors
/// `NotADirectory`, `PermissionDenied` and the like, naming the path.
pub fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    on_path("mkdir", path.as_ref(), |p| stdfs::create_dir_all(p))
}

/// The entries of a directory, without `.` and `..`, in the order the
/// system gives them (Go's `os.ReadDir` sorts; sort if you need to).
///
/// `DirEntry::file_type` is usually free; `DirEntry::metadata` makes a
/// system call on the calling thread, so in a coroutine prefer
/// `goro::fs::metadata(entry.path())`.
///
/// # Errors
/// `NotFound`, `NotADirectory` and the like, naming the path.
pub fn read_dir(path: impl AsRef<Path>) -> io::Result<Vec<DirEntry>> {
    on_path("readdir", path.as_ref(), |p| stdfs::read_dir(p)?.collect())
}

/// Renames `from` to `to`, replacing `to` if it is a file.
///
/// # Errors
/// `NotFound`, `CrossesDevices` and the like, naming both paths.
pub fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    on_paths("rename", from.as_ref(), to.as_ref(), |f, t| {
        stdfs::rename(f, t)
    })
}

/// Copies the contents and permissions of file `from` to `to`, creating or
/// truncating `to`; returns the bytes copied.
///
/// # Errors
/// As std's `fs::copy`, naming both paths.
pub fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    on_paths("copy", from.as_ref(), to.as_ref(), |f, t| stdfs::copy(f, t))
}
