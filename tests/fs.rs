//! `goro::fs`: whole-file functions, `File`, directories, errors that name
//! the path, and calls that leave the workers free.

use std::ffi::CString;
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use goro::fs::{self, File, PathError};

/// A fresh directory under the system's temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("goro-fs-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `PathError` inside an error from `goro::fs`.
fn path_error(e: &std::io::Error) -> &PathError {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<PathError>())
        .unwrap_or_else(|| panic!("not a PathError: {e:?}"))
}

#[test]
fn whole_file_round_trip() {
    let dir = TempDir::new("round-trip");
    let path = dir.join("a.txt");
    let (text, bytes, len) = goro::run(move || {
        fs::write(&path, "héllo\n").unwrap();
        (
            fs::read_to_string(&path).unwrap(),
            fs::read(&path).unwrap(),
            fs::metadata(&path).unwrap().len(),
        )
    });
    assert_eq!(text, "héllo\n");
    assert_eq!(bytes, "héllo\n".as_bytes());
    assert_eq!(len, 7);
}

#[test]
fn file_read_write_seek_and_len() {
    let dir = TempDir::new("file");
    let path = dir.join("f.bin");
    let (head, tail, len_after, len_meta) = goro::run(move || {
        let mut f = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        assert_eq!(f.path(), path.as_path());
        f.write_all(b"0123456789").unwrap();
        f.sync_all().unwrap();
        f.seek(SeekFrom::Start(2)).unwrap();
        let mut head = [0u8; 3];
        f.read_exact(&mut head).unwrap();
        f.set_len(6).unwrap();
        f.sync_data().unwrap();
        // The offset (5) did not move with set_len.
        let mut tail = String::new();
        f.read_to_string(&mut tail).unwrap();
        let len_after = f.seek(SeekFrom::End(0)).unwrap();
        let len_meta = f.metadata().unwrap().len();
        (head, tail, len_after, len_meta)
    });
    assert_eq!(&head, b"234");
    assert_eq!(tail, "5");
    assert_eq!((len_after, len_meta), (6, 6));
}

/// Reads and writes larger than the 1 MiB chunk: `read` returns a part,
/// `write_all` and `read_to_end` move everything.
#[test]
fn large_reads_and_writes() {
    let dir = TempDir::new("large");
    let path = dir.join("big");
    let (first, all) = goro::run(move || {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        File::create(&path).unwrap().write_all(&data).unwrap();
        let mut f = File::open(&path).unwrap();
        let mut buf = vec![0u8; 2 << 20];
        let first = f.read(&mut buf).unwrap();
        assert_eq!(buf[..first], data[..first]);
        let mut rest = buf[..first].to_vec();
        f.read_to_end(&mut rest).unwrap();
        (first, rest == data)
    });
    assert!(
        first > 0 && first <= 1 << 20,
        "first read gave {first} bytes"
    );
    assert!(all, "the file did not read back as written");
}

#[test]
fn append_and_create_new() {
    let dir = TempDir::new("append");
    let path = dir.join("log");
    let (text, err) = goro::run(move || {
        fs::write(&path, "a").unwrap();
        let mut f = File::options().append(true).open(&path).unwrap();
        f.write_all(b"b").unwrap();
        drop(f);
        let err = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap_err();
        (fs::read_to_string(&path).unwrap(), err)
    });
    assert_eq!(text, "ab");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(path_error(&err).op(), "open");
}

#[test]
fn errors_keep_their_kind_and_name_the_path() {
    let dir = TempDir::new("errors");
    let missing = dir.join("missing");
    let not_utf8 = dir.join("latin1");
    let sub = dir.join("sub");
    let (open, read, readdir, utf8, isdir, readonly) = goro::run({
        let (missing, not_utf8, sub) = (missing.clone(), not_utf8.clone(), sub.clone());
        move || {
            fs::write(&not_utf8, [0xe9, 0x74, 0xe9]).unwrap();
            fs::create_dir(&sub).unwrap();
            let mut ro = File::open(&not_utf8).unwrap();
            (
                File::open(&missing).unwrap_err(),
                fs::read(&missing).unwrap_err(),
                fs::read_dir(&missing).unwrap_err(),
                fs::read_to_string(&not_utf8).unwrap_err(),
                File::open(&sub).unwrap().read(&mut [0; 8]).unwrap_err(),
                ro.write(b"x").unwrap_err(),
            )
        }
    });
    assert_eq!(open.kind(), ErrorKind::NotFound);
    assert!(
        open.to_string()
            .starts_with(&format!("open {}: ", missing.display())),
        "{open}"
    );
    let pe = path_error(&open);
    assert_eq!(
        (pe.op(), pe.path(), pe.to()),
        ("open", missing.as_path(), None)
    );
    assert_eq!(pe.error().raw_os_error(), Some(libc::ENOENT));

    assert_eq!(read.kind(), ErrorKind::NotFound);
    assert_eq!(path_error(&read).op(), "open");
    assert_eq!(readdir.kind(), ErrorKind::NotFound);
    assert_eq!(path_error(&readdir).op(), "readdir");

    assert_eq!(utf8.kind(), ErrorKind::InvalidData);
    assert_eq!(path_error(&utf8).path(), not_utf8.as_path());

    assert_eq!(isdir.kind(), ErrorKind::IsADirectory);
    assert!(
        isdir
            .to_string()
            .starts_with(&format!("read {}: ", sub.display())),
        "{isdir}"
    );

    assert_eq!(path_error(&readonly).op(), "write");
    assert_eq!(
        path_error(&readonly).error().raw_os_error(),
        Some(libc::EBADF)
    );
}

#[test]
fn directories_rename_copy_remove() {
    let dir = TempDir::new("dirs");
    let root = dir.0.clone();
    let (names, copied, renamed_err, not_empty, gone) = goro::run(move || {
        let deep = root.join("x/y/z");
        fs::create_dir_all(&deep).unwrap();
        fs::create_dir_all(&deep).unwrap();
        fs::write(deep.join("one"), "1").unwrap();
        fs::write(deep.join("two"), "22").unwrap();
        fs::rename(deep.join("one"), deep.join("uno")).unwrap();
        let copied = fs::copy(deep.join("two"), deep.join("dos")).unwrap();
        let mut names: Vec<String> = fs::read_dir(&deep)
            .unwrap()
            .iter()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let renamed_err = fs::rename(deep.join("nope"), deep.join("never")).unwrap_err();
        let not_empty = fs::remove_dir(&deep).unwrap_err();
        fs::remove_file(deep.join("uno")).unwrap();
        assert!(fs::symlink_metadata(deep.join("dos")).unwrap().is_file());
        fs::remove_dir_all(root.join("x")).unwrap();
        let gone = fs::metadata(root.join("x")).unwrap_err().kind();
        (names, copied, renamed_err, not_empty, gone)
    });
    assert_eq!(names, ["dos", "two", "uno"]);
    assert_eq!(copied, 2);
    let pe = path_error(&renamed_err);
    assert_eq!(renamed_err.kind(), ErrorKind::NotFound);
    assert_eq!(pe.op(), "rename");
    assert!(pe.to().is_some_and(|t| t.ends_with("never")));
    assert!(renamed_err.to_string().contains("nope"), "{renamed_err}");
    assert_eq!(not_empty.kind(), ErrorKind::DirectoryNotEmpty);
    assert_eq!(gone, ErrorKind::NotFound);
}

#[test]
fn plain_thread_use() {
    let dir = TempDir::new("plain");
    let path = dir.join("p");
    fs::write(&path, "plain").unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "plain");
    let mut s = String::new();
    File::open(&path).unwrap().read_to_string(&mut s).unwrap();
    assert_eq!(s, "plain");
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// Opening a FIFO for reading blocks until a writer opens it. Many more
/// coroutines than workers each block so in `goro::fs::read`; the writers
/// are coroutines that only get to run if those reads left the workers
/// free. From 10 s on, a watchdog thread writes to readers still waiting,
/// so that a failure shows as a wrong reply instead of a hang.
#[test]
fn blocked_calls_leave_the_workers_free() {
    let dir = TempDir::new("fifo");
    let readers = 4 * goro::runtime::num_workers();
    let fifos: Vec<PathBuf> = (0..readers).map(|i| dir.join(format!("f{i}"))).collect();
    for f in &fifos {
        mkfifo(f);
    }
    let (done, done_rx) = mpsc::channel::<()>();
    let watchdog = {
        let fifos = fifos.clone();
        thread::spawn(move || {
            let mut wait = Duration::from_secs(10);
            while let Err(RecvTimeoutError::Timeout) = done_rx.recv_timeout(wait) {
                for f in &fifos {
                    // Non-blocking: fails unless a reader is in `open`.
                    let opened = std::fs::OpenOptions::new()
                        .write(true)
                        .custom_flags(libc::O_NONBLOCK)
                        .open(f);
                    if let Ok(mut w) = opened {
                        let _ = w.write_all(b"watchdog");
                    }
                }
                wait = Duration::from_millis(50);
            }
        })
    };
    let got = goro::run({
        let fifos = fifos.clone();
        move || {
            let entered = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = fifos
                .iter()
                .cloned()
                .map(|f| {
                    let entered = entered.clone();
                    goro::go!(move || {
                        entered.fetch_add(1, Ordering::SeqCst);
                        fs::read_to_string(&f).unwrap()
                    })
                })
                .collect();
            // Spawn the writers only once every reader is in its call.
            while entered.load(Ordering::SeqCst) < fifos.len() {
                goro::sleep(Duration::from_millis(1));
            }
            goro::sleep(Duration::from_millis(20));
            for f in &fifos {
                let f = f.clone();
                goro::go!(move || fs::write(&f, "coroutine").unwrap());
            }
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        }
    });
    drop(done);
    watchdog.join().unwrap();
    assert!(got.iter().all(|s| s == "coroutine"), "{got:?}");
}
