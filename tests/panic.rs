//! A panicking coroutine: caught, reported by name, and the runtime goes on.

mod common;
use common::{child_scenario, run_child, stderr};

#[test]
fn join_returns_the_panic_payload() {
    let n = std::hint::black_box(42);
    let h = goro::spawn(move || -> u32 { panic!("bad input {n}") });
    let payload = h.join().unwrap_err();
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("bad input 42")
    );
    let h = goro::spawn(|| -> u32 { std::panic::panic_any(7u8) });
    assert_eq!(h.join().unwrap_err().downcast_ref::<u8>(), Some(&7));
}

#[test]
fn the_runtime_keeps_going_after_panics() {
    let results = goro::run(|| {
        let handles: Vec<_> = (0..200u32)
            .map(|i| {
                goro::spawn(move || {
                    if i % 3 == 0 {
                        panic!("coroutine {i} fails");
                    }
                    i
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().ok())
            .collect::<Vec<_>>()
    });
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.is_none(), i % 3 == 0, "{i}");
    }
    assert_eq!(goro::run(|| 5), 5);
}

#[test]
fn the_panic_message_names_the_coroutine() {
    if child_scenario().is_some() {
        let h = goro::Builder::new()
            .name("parser")
            .spawn(|| panic!("unexpected token"))
            .unwrap();
        assert!(h.join().is_err());
        // A panic on a plain thread still gets std's message.
        let t = std::thread::Builder::new()
            .name("plain".into())
            .spawn(|| panic!("thread panic"))
            .unwrap();
        assert!(t.join().is_err());
        return;
    }
    let out = run_child("the_panic_message_names_the_coroutine", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("coroutine 'parser' (#"), "{err}");
    assert!(err.contains("panicked at tests/panic.rs:"), "{err}");
    assert!(err.contains("unexpected token"), "{err}");
    assert!(
        err.contains("thread 'plain'") && err.contains("thread panic"),
        "{err}"
    );
}
