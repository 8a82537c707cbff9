//! `goro::select!`.

use goro::chan::{TryRecvError, TrySendError, chan};

/// Rounds of a fairness test. With a fair choice among `k` arms, the
/// chance that an arm wins fewer than `ROUNDS / 5` rounds is below 1e-20
/// for `k` up to 3: the bound does not fail by chance.
const ROUNDS: usize = 1000;

fn assert_fair(wins: &[usize]) {
    for (arm, &n) in wins.iter().enumerate() {
        assert!(n >= ROUNDS / 5, "arm {arm} won {n} of {ROUNDS}: {wins:?}");
    }
}

/// A select blocked on sends of one channel: the receiver that comes later
/// (`try_recv` only ever takes a blocked sender, so the select is blocked
/// when it succeeds) must find the arms in a random order.
#[test]
fn a_blocked_select_chooses_uniformly_among_sends_on_one_channel() {
    goro::run(|| {
        let (tx, rx) = chan::<usize>(0);
        let selector = goro::go!(move || {
            for _ in 0..ROUNDS {
                goro::select! {
                    send(tx, 0) -> r => r.unwrap(),
                    send(tx, 1) -> r => r.unwrap(),
                    send(tx, 2) -> r => r.unwrap(),
                }
            }
        });
        let mut wins = [0; 3];
        for _ in 0..ROUNDS {
            loop {
                match rx.try_recv() {
                    Ok(arm) => {
                        wins[arm] += 1;
                        break;
                    }
                    Err(TryRecvError::Empty) => goro::yield_now(),
                    Err(TryRecvError::Closed) => panic!("the selector ended early"),
                }
            }
        }
        selector.join().unwrap();
        assert_fair(&wins);
    });
}

/// The same for receives: `try_send` on an unbuffered channel only ever
/// hands its value to a blocked receiver.
#[test]
fn a_blocked_select_chooses_uniformly_among_receives_on_one_channel() {
    goro::run(|| {
        let (tx, rx) = chan::<()>(0);
        let selector = goro::go!(move || {
            let mut wins = [0; 2];
            for _ in 0..ROUNDS {
                goro::select! {
                    recv(rx) -> v => { v.unwrap(); wins[0] += 1 }
                    recv(rx) -> v => { v.unwrap(); wins[1] += 1 }
                }
            }
            wins
        });
        for _ in 0..ROUNDS {
            loop {
                match tx.try_send(()) {
                    Ok(()) => break,
                    Err(TrySendError::Full(())) => goro::yield_now(),
                    Err(TrySendError::Closed(())) => panic!("the selector ended early"),
                }
            }
        }
        assert_fair(&selector.join().unwrap());
    });
}

/// Among arms ready when the select starts, the choice is uniform too.
#[test]
fn a_ready_select_chooses_uniformly() {
    let (tx, rx) = chan::<()>(ROUNDS);
    let mut wins = [0; 2];
    for _ in 0..ROUNDS {
        tx.send(()).unwrap();
        goro::select! {
            recv(rx) -> v => { v.unwrap(); wins[0] += 1 }
            recv(rx) -> v => { v.unwrap(); wins[1] += 1 }
        }
    }
    assert_fair(&wins);
}
