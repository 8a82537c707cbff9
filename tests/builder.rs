//! `goro::Builder`: names and stack sizes.

use std::io;

#[test]
fn name_is_visible_inside() {
    let h = goro::Builder::new()
        .name("worker-7")
        .spawn(|| goro::current().unwrap().name().map(String::from))
        .unwrap();
    assert_eq!(h.coroutine().name(), Some("worker-7"));
    assert_eq!(h.join().unwrap().as_deref(), Some("worker-7"));
}

#[test]
fn unnamed_by_default() {
    let h = goro::spawn(|| goro::current().unwrap().name().map(String::from));
    assert_eq!(h.join().unwrap(), None);
}

#[test]
fn invalid_stack_sizes_are_errors_not_panics() {
    for bytes in [0, 100, 16 * 1024 - 1, (1 << 30) + 1, usize::MAX] {
        let e = goro::Builder::new()
            .stack_size(bytes)
            .spawn(|| ())
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bytes}");
        assert!(e.to_string().contains("stack size"), "{e}");
    }
}

#[test]
fn a_large_stack_allows_deep_recursion() {
    fn depth(n: u32) -> u32 {
        // Keep a frame of real size so the recursion uses stack.
        let pad = std::hint::black_box([n as u8; 512]);
        if n == 0 {
            pad[0] as u32
        } else {
            depth(n - 1) + 1
        }
    }
    let h = goro::Builder::new()
        .stack_size(16 << 20)
        .spawn(|| depth(10_000))
        .unwrap();
    assert_eq!(h.join().unwrap(), 10_000);
}

#[test]
fn a_small_stack_is_enough_for_small_work() {
    let h = goro::Builder::new()
        .stack_size(16 * 1024)
        .spawn(|| (0..100u32).sum::<u32>())
        .unwrap();
    assert_eq!(h.join().unwrap(), 4950);
}
