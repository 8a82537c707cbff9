//! `JoinError`: why `JoinHandle::join` has no result.

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use crate::Coroutine;
use crate::runtime::diag::panic_hook;
use crate::runtime::task::header::Failure;

/// A coroutine that did not return: it panicked, or it could not start
/// (no stack could be mapped for it).
///
/// Like `tokio::task::JoinError`: it names the coroutine and shows the
/// panic's message, and keeps the payload for `std::panic::resume_unwind`.
/// It is `Send + Sync`, so `?` turns it into a
/// `Box<dyn Error + Send + Sync>`.
///
/// ```
/// let h = goro::Builder::new()
///     .name("parser")
///     .spawn(|| -> u32 { panic!("unexpected token") })
///     .unwrap();
/// let err = h.join().unwrap_err();
/// assert!(err.is_panic());
/// assert!(err.to_string().ends_with("panicked: unexpected token"));
/// let payload = err.into_panic();
/// assert_eq!(payload.downcast_ref::<&str>(), Some(&"unexpected token"));
/// ```
pub struct JoinError {
    /// The coroutine that failed.
    coroutine: Coroutine,
    /// What happened to it.
    repr: Repr,
}

/// What happened to the coroutine.
enum Repr {
    /// It panicked with this payload. In a mutex only so that the error is
    /// `Sync` without unsafe code (a payload is only `Send`); `&self`
    /// methods lock it to read its type and text.
    Panic(Mutex<Box<dyn Any + Send>>),
    /// Why it could not start.
    NotStarted(std::io::Error),
}

impl JoinError {
    pub(crate) fn new(coroutine: Coroutine, failure: Failure) -> JoinError {
        let repr = match failure {
            Failure::Panic(payload) => Repr::Panic(Mutex::new(payload)),
            Failure::NotStarted(err) => Repr::NotStarted(err),
        };
        JoinError { coroutine, repr }
    }

    /// The coroutine that failed.
    pub fn coroutine(&self) -> &Coroutine {
        &self.coroutine
    }

    /// Whether the coroutine panicked (else it could not start, and
    /// `source()` says why).
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The panic's payload, to inspect or to pass on with
    /// `std::panic::resume_unwind`.
    ///
    /// # Panics
    /// If the coroutine did not panic (`is_panic` is false).
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send> {
        self.try_into_panic().unwrap_or_else(|err| {
            panic!("`JoinError::into_panic` on an error that is no panic: {err}")
        })
    }

    /// The panic's payload, or the error itself if the coroutine did not
    /// panic.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send>, JoinError> {
        match self.repr {
            Repr::Panic(payload) => {
                Ok(payload.into_inner().unwrap_or_else(PoisonError::into_inner))
            }
            Repr::NotStarted(_) => Err(self),
        }
    }

    /// Unwinds the caller with the coroutine's panic, as `goro::run` and
    /// `synctest::run` do: its payload, or for a coroutine that never ran
    /// (its worker printed why), the reason as a `String`, the payload a
    /// `panic!` would carry.
    pub(crate) fn resume(self) -> ! {
        match self.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(err) => std::panic::resume_unwind(Box::new(err.to_string())),
        }
    }

    /// Calls `f` with the panic's message: `Some` for a `&str` or `String`
    /// payload (what `panic!` makes), `None` for any other.
    fn with_panic_message<R>(
        payload: &Mutex<Box<dyn Any + Send>>,
        f: impl FnOnce(Option<&str>) -> R,
    ) -> R {
        let payload = payload.lock().unwrap_or_else(PoisonError::into_inner);
        f(panic_hook::message(&**payload))
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.coroutine.name().unwrap_or("<unnamed>");
        write!(f, "coroutine '{name}' ({})", self.coroutine.id())?;
        match &self.repr {
            Repr::Panic(payload) => JoinError::with_panic_message(payload, |msg| match msg {
                Some(msg) => write!(f, " panicked: {msg}"),
                None => f.write_str(" panicked"),
            }),
            Repr::NotStarted(err) => write!(f, " could not start: {err}"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("JoinError");
        d.field("coroutine", &self.coroutine);
        match &self.repr {
            Repr::Panic(payload) => JoinError::with_panic_message(payload, |msg| match msg {
                Some(msg) => d.field("panic", &msg),
                None => d.field("panic", &format_args!("Box<dyn Any>")),
            }),
            Repr::NotStarted(err) => d.field("not_started", err),
        };
        d.finish()
    }
}

impl Error for JoinError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.repr {
            Repr::Panic(_) => None,
            Repr::NotStarted(err) => Some(err),
        }
    }
}
