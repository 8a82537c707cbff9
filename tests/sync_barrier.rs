//! `goro::sync::Barrier`: everyone waits for everyone, one leader per
//! generation, reuse, coroutines and threads as parties.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use goro::sync::Barrier;

/// Parties: coroutines and a plain thread, through many generations. Each
/// counts its arrival before waiting and, once released, checks that all
/// parties of its generation had arrived; each generation has exactly one
/// leader.
#[test]
fn one_leader_per_generation_and_nobody_runs_ahead() {
    const COROUTINES: usize = 7;
    const PARTIES: usize = COROUTINES + 1;
    const GENERATIONS: usize = 200;
    let barrier = Arc::new(Barrier::new(PARTIES));
    let arrived: Arc<Vec<AtomicUsize>> =
        Arc::new((0..GENERATIONS).map(|_| AtomicUsize::new(0)).collect());
    let leaders: Arc<Vec<AtomicUsize>> =
        Arc::new((0..GENERATIONS).map(|_| AtomicUsize::new(0)).collect());
    let party = {
        let (barrier, arrived, leaders) = (barrier.clone(), arrived.clone(), leaders.clone());
        move |me: usize| {
            for g in 0..GENERATIONS {
                arrived[g].fetch_add(1, Ordering::SeqCst);
                if (g + me) % 5 == 0 {
                    goro::yield_now();
                }
                let r = barrier.wait();
                assert_eq!(arrived[g].load(Ordering::SeqCst), PARTIES, "generation {g}");
                if r.is_leader() {
                    leaders[g].fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    };
    let thread = {
        let party = party.clone();
        std::thread::spawn(move || party(COROUTINES))
    };
    goro::run(move || {
        let hs: Vec<_> = (0..COROUTINES)
            .map(|me| {
                let party = party.clone();
                goro::go!(move || party(me))
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    thread.join().unwrap();
    for (g, l) in leaders.iter().enumerate() {
        assert_eq!(l.load(Ordering::SeqCst), 1, "generation {g}");
    }
}

#[test]
fn a_barrier_of_one_or_zero_never_waits() {
    for n in [0, 1] {
        let b = Barrier::new(n);
        assert!(b.wait().is_leader());
        assert!(b.wait().is_leader());
    }
    assert_eq!(
        format!("{:?}", Barrier::new(3)),
        "Barrier { parties: 3, .. }"
    );
}

/// The last party to arrive is the leader and the others are released by
/// it, whatever mix of coroutines and threads they are.
#[test]
fn waiting_parties_are_released_by_the_last_arrival() {
    goro::run(|| {
        let b = Arc::new(Barrier::new(3));
        let b1 = b.clone();
        let thread = std::thread::spawn(move || b1.wait().is_leader());
        let b2 = b.clone();
        let coroutine = goro::go!(move || b2.wait().is_leader());
        let me = b.wait().is_leader();
        let them = [thread.join().unwrap(), coroutine.join().unwrap()];
        assert_eq!(usize::from(me) + them.iter().filter(|&&l| l).count(), 1);
    });
}
