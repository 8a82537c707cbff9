//! `runtime::stats`: the counters move with the work.

use std::time::Duration;

#[test]
fn counters_move() {
    let before = goro::runtime::stats();
    goro::run(|| {
        let (tx, rx) = goro::chan::chan::<u32>(0);
        let handles: Vec<_> = (0..1000)
            .map(|_| {
                let rx = rx.clone();
                goro::spawn(move || rx.recv().unwrap())
            })
            .collect();
        // A plain thread's sends wake coroutines from outside their worker.
        std::thread::spawn(move || {
            for i in 0..1000 {
                tx.send(i).unwrap();
            }
        })
        .join()
        .unwrap();
        let sum: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, 999 * 1000 / 2);
        goro::sleep(Duration::from_millis(5));
    });
    let after = goro::runtime::stats();
    // A row per worker; spare workers too (with one worker, the plain
    // thread's join above holds it long enough for the monitor to add one).
    assert!(
        after.workers.len() >= goro::runtime::num_workers(),
        "{after}"
    );
    let d = |f: fn(&goro::runtime::WorkerStats) -> u64| f(&after.total) - f(&before.total);
    assert!(d(|w| w.spawned) >= 1000, "{after}");
    assert!(d(|w| w.finished) >= 1001, "{after}");
    // A receiver that finds the sender already waiting does not park.
    assert!(d(|w| w.parks) >= 1, "{after}");
    assert!(d(|w| w.remote_wakeups) >= 1, "{after}");
    assert!(d(|w| w.timers_fired) >= 1, "{after}");
    assert!(after.stack_bytes_mapped > 0);
    assert!(after.total.stack_pool > 0, "{after}");
    assert!(after.to_string().contains("total"), "{after}");
}
