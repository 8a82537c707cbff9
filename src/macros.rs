/// Go's `go` statement: `go!(handler(conn))` evaluates `conn` now, in the
/// caller, and calls `handler` in a new coroutine. Returns a
/// [`JoinHandle`](crate::JoinHandle) for the call's result.
///
/// Accepted shapes:
/// - a call to a function by name or path: `go!(handler(conn))`,
///   `go!(server::handle(conn, id))`;
/// - a method call on a variable: `go!(worker.run(job))` (the receiver moves
///   into the coroutine);
/// - a closure: `go!(move || handler(conn))`.
///
/// Arguments are evaluated left to right before the coroutine is spawned, as
/// in Go. For any other shape, pass a closure.
///
/// ```
/// fn double(x: u32) -> u32 { x * 2 }
/// let h = goro::go!(double(21));
/// assert_eq!(h.join().unwrap(), 42);
/// let h = goro::go!(move || "done");
/// assert_eq!(h.join().unwrap(), "done");
/// ```
#[macro_export]
macro_rules! go {
    (move $($closure:tt)+) => {
        $crate::spawn(move $($closure)+)
    };
    (|| $($body:tt)+) => {
        $crate::spawn(|| $($body)+)
    };
    (| $($closure:tt)+) => {
        $crate::spawn(| $($closure)+)
    };
    ($($f:ident)::+ ( $($arg:expr),* $(,)? )) => {
        $crate::__go_call!([$($f)::+] [] $($arg,)*)
    };
    ($recv:ident . $method:ident ( $($arg:expr),* $(,)? )) => {{
        let recv = $recv;
        $crate::__go_method!(recv $method [] $($arg,)*)
    }};
    ($($other:tt)*) => {
        ::core::compile_error!(
            "go! takes a call `f(args)`, a method call `value.f(args)` or a closure"
        )
    };
}

/// Binds each argument of `go!(f(...))` to a fresh local, in order, then
/// spawns the call. Each `a` below is a distinct local: macro hygiene gives
/// every expansion step its own.
#[doc(hidden)]
#[macro_export]
macro_rules! __go_call {
    ([$($f:tt)*] [$($bound:ident)*]) => {
        $crate::spawn(move || $($f)*($($bound),*))
    };
    ([$($f:tt)*] [$($bound:ident)*] $arg:expr, $($rest:expr,)*) => {{
        let a = $arg;
        $crate::__go_call!([$($f)*] [$($bound)* a] $($rest,)*)
    }};
}

/// As `__go_call`, for `go!(recv.method(...))`.
#[doc(hidden)]
#[macro_export]
macro_rules! __go_method {
    ($recv:ident $method:ident [$($bound:ident)*]) => {
        $crate::spawn(move || $recv.$method($($bound),*))
    };
    ($recv:ident $method:ident [$($bound:ident)*] $arg:expr, $($rest:expr,)*) => {{
        let a = $arg;
        $crate::__go_method!($recv $method [$($bound)* a] $($rest,)*)
    }};
}
