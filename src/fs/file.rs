//! `File` and `OpenOptions`: std's, with every system call on the blocking
//! pool.
//!
//! The std file sits behind an `Arc` so that the pool thread serving a call
//! can hold it: the call owns a clone for its duration and drops it before
//! the caller resumes. Calls on one `File` are not reordered, since the
//! caller waits for each; calls through `&File` from several coroutines run
//! concurrently, sharing the file offset, as with std's `&File`.
//!
//! Closing happens in `Drop` on the caller's thread, as with std: `close`
//! of a local file does not wait for the disk.

use std::fmt;
use std::fs as stdfs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use super::{MAX_CHUNK, Metadata, PathError};
use crate::blocking;

/// An open file whose reads, writes and other calls park only the calling
/// coroutine (see the module docs for the cost of each call).
///
/// ```
/// use std::io::{Read, Seek, SeekFrom, Write};
///
/// let path = std::env::temp_dir().join(format!("goro-file-doc-{}", std::process::id()));
/// let back = goro::run(move || {
///     let mut f = goro::fs::File::options().read(true).write(true).create(true).open(&path)?;
///     f.write_all(b"seek and find")?;
///     f.seek(SeekFrom::Start(9))?;
///     let mut s = String::new();
///     f.read_to_string(&mut s)?;
///     goro::fs::remove_file(&path)?;
///     std::io::Result::Ok(s)
/// });
/// assert_eq!(back.unwrap(), "find");
/// ```
pub struct File {
    /// The open file. Shared only with pool threads running a call on it.
    inner: Arc<stdfs::File>,
    /// The path it was opened by, named in its errors.
    path: Arc<Path>,
}

impl File {
    /// Opens a file for reading.
    ///
    /// # Errors
    /// `NotFound`, `PermissionDenied` and the like, naming the path.
    pub fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path)
    }

    /// Opens a file for writing, creating it or truncating it.
    ///
    /// # Errors
    /// As `open`.
    pub fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }

    /// Options to open a file with, all unset.
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// The path the file was opened by.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's metadata.
    ///
    /// # Errors
    /// The system's, naming the path.
    pub fn metadata(&self) -> io::Result<Metadata> {
        self.call("stat", |f| f.metadata())
    }

    /// Flushes data and metadata to the device (`fsync`).
    ///
    /// # Errors
    /// The system's, naming the path.
    pub fn sync_all(&self) -> io::Result<()> {
        self.call("sync", |f| f.sync_all())
    }

    /// Flushes data, and only the metadata needed to read it (`fdatasync`).
    ///
    /// # Errors
    /// The system's, naming the path.
    pub fn sync_data(&self) -> io::Result<()> {
        self.call("sync", |f| f.sync_data())
    }

    /// Truncates or extends the file to `size` bytes; the offset is not
    /// moved.
    ///
    /// # Errors
    /// `InvalidInput` if the file is not open for writing, naming the path.
    pub fn set_len(&self, size: u64) -> io::Result<()> {
        self.call("truncate", move |f| f.set_len(size))
    }

    /// Runs `f` on the file on the blocking pool, naming `op` and the path
    /// in its error.
    fn call<T, F>(&self, op: &'static str, f: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&stdfs::File) -> io::Result<T> + Send + 'static,
    {
        let file = Arc::clone(&self.inner);
        blocking(move || f(&file)).map_err(|e| self.error(op, e))
    }

    fn error(&self, op: &'static str, e: io::Error) -> io::Error {
        PathError::wrap(op, self.path.to_path_buf(), None, e)
    }
}

impl Read for &File {
    /// Reads up to `min(buf.len(), MAX_CHUNK)` bytes into an owned buffer on
    /// a pool thread, then copies them into `buf`.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(MAX_CHUNK);
        let data = self.call("read", move |mut f| {
            let mut data = vec![0; want];
            let n = f.read(&mut data)?;
            data.truncate(n);
            Ok(data)
        })?;
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }

    /// Reads to the end in one pool call. What was read before an error is
    /// still appended, as with std.
    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let file = Arc::clone(&self.inner);
        let (data, result) = blocking(move || {
            let mut data = Vec::new();
            let result = (&*file).read_to_end(&mut data);
            (data, result)
        });
        buf.extend_from_slice(&data);
        result.map_err(|e| self.error("read", e))
    }

    /// Reads to the end in one pool call; `InvalidData`, with `buf`
    /// unchanged, if what was read is not UTF-8.
    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        let mut data = Vec::new();
        let result = self.read_to_end(&mut data);
        let text = String::from_utf8(data).map_err(|_| {
            self.error(
                "read",
                io::Error::new(io::ErrorKind::InvalidData, "file is not valid UTF-8"),
            )
        })?;
        buf.push_str(&text);
        result
    }
}

impl Write for &File {
    /// Copies up to `MAX_CHUNK` bytes of `buf` and writes them on a pool
    /// thread.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let data = buf[..buf.len().min(MAX_CHUNK)].to_vec();
        self.call("write", move |mut f| f.write(&data))
    }

    /// Writes all of `buf`, one pool call per `MAX_CHUNK` bytes.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        for chunk in buf.chunks(MAX_CHUNK) {
            let data = chunk.to_vec();
            self.call("write", move |mut f| f.write_all(&data))?;
        }
        Ok(())
    }

    /// Nothing to do: `File` has no buffer of its own.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for &File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.call("seek", move |mut f| f.seek(pos))
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        (&*self).read_to_end(buf)
    }

    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        (&*self).read_to_string(buf)
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        (&*self).write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        (&*self).seek(pos)
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("path", &self.path)
            .field("inner", &self.inner)
            .finish()
    }
}

/// How to open a file: std's `OpenOptions`, opening on the blocking pool.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// The options, applied by `open` on a pool thread.
    inner: stdfs::OpenOptions,
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// Options with everything unset (set at least `read`, `write` or
    /// `append`).
    pub fn new() -> OpenOptions {
        OpenOptions {
            inner: stdfs::OpenOptions::new(),
        }
    }

    /// Open for reading.
    pub fn read(&mut self, yes: bool) -> &mut OpenOptions {
        self.inner.read(yes);
        self
    }

    /// Open for writing.
    pub fn write(&mut self, yes: bool) -> &mut OpenOptions {
        self.inner.write(yes);
        self
    }

    /// Open for appending: every write goes to the end.
    pub fn append(&mut self, yes: bool) -> &mut OpenOptions {
        self.inner.append(yes);
        self
    }

    /// Truncate to zero length on opening (needs `write`).
    pub fn truncate(&mut self, yes: bool) -> &mut OpenOptions {
        self.inner.truncate(yes);
        self
    }

    /// Create the file if it does not exist (needs `write` or `append`).
    pub fn create(&mut self, yes: bool) -> &mut OpenOptions {
        self.inner.create(yes);
        self
    }

    /// Create the file, failing with `AlreadyExists` if it exists.
    pub fn create_new(&mut self, yes: bool) -> &mut OpenOptions {
        self.inner.create_new(yes);
        self
    }

    /// Permission bits for a file this creates (before the umask; default
    /// `0o666`).
    pub fn mode(&mut self, mode: u32) -> &mut OpenOptions {
        self.inner.mode(mode);
        self
    }

    /// Opens `path` with these options.
    ///
    /// # Errors
    /// `NotFound`, `AlreadyExists`, `PermissionDenied`, `InvalidInput` (an
    /// invalid combination) and the like, naming the path.
    pub fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let path: Arc<Path> = Arc::from(path.as_ref());
        let (options, at) = (self.inner.clone(), Arc::clone(&path));
        let inner = blocking(move || options.open(&*at))
            .map_err(|e| PathError::wrap("open", path.to_path_buf(), None, e))?;
        Ok(File {
            inner: Arc::new(inner),
            path,
        })
    }
}
