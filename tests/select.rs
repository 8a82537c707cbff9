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

#[test]
fn an_arm_with_a_false_guard_never_fires_even_if_ready() {
    let (tx, rx) = chan::<u32>(1);
    tx.send(7).unwrap();
    let (other_tx, _other_rx) = chan::<u32>(1);
    let values_made = std::cell::Cell::new(0);
    let make = |v| {
        values_made.set(values_made.get() + 1);
        v
    };
    for _ in 0..100 {
        goro::select! {
            recv(rx) -> _v if false => panic!("a disabled receive fired"),
            send(other_tx, make(1)) -> _r if false => panic!("a disabled send fired"),
            default => {}
        }
    }
    assert_eq!(
        values_made.get(),
        0,
        "a disabled send's value is not evaluated"
    );
    assert_eq!(rx.try_recv(), Ok(7), "nothing was received");
    assert_eq!(other_tx.len(), 0, "nothing was sent");
    // With the guards true, the same arms fire.
    goro::select! {
        recv(rx) -> _v if false => panic!("a disabled receive fired"),
        send(other_tx, make(1)) -> r if true => r.unwrap(),
    }
    assert_eq!(values_made.get(), 1);
    assert_eq!(other_tx.len(), 1);
}

#[test]
fn an_arm_on_a_none_channel_never_fires() {
    let (tx, rx) = chan::<u32>(ROUNDS);
    for round in 0..ROUNDS {
        tx.send(0).unwrap();
        // The same ready channel, on and off.
        let on = (round % 2 == 0).then_some(&rx);
        let off: Option<&goro::chan::Receiver<u32>> = None;
        let no_sender: Option<goro::chan::Sender<u32>> = None;
        goro::select! {
            recv(off) -> _v => panic!("a None receive fired"),
            send(no_sender, 1) -> _r => panic!("a None send fired"),
            recv(on) -> v => assert_eq!(v, Ok(0)),
            default => assert_eq!(round % 2, 1, "the enabled arm was ready"),
        }
    }
    assert_eq!(rx.len(), ROUNDS / 2);
}

#[test]
fn a_select_with_every_arm_disabled_waits_as_go_does() {
    let (tx, rx) = chan::<u32>(1);
    tx.send(1).unwrap();
    let none: Option<&goro::chan::Receiver<u32>> = None;
    let ran_default = goro::select! {
        recv(rx) -> _v if false => false,
        recv(none) -> _v => false,
        default => true,
    };
    assert!(ran_default);
    // Without `default` it would block forever: a timeout shows it waits.
    let timed_out = goro::select! {
        recv(rx) -> _v if false => false,
        recv(none) -> _v => false,
        timeout(std::time::Duration::from_millis(10)) => true,
    };
    assert!(timed_out);
    assert_eq!(rx.len(), 1);
}

/// A disabled arm is not linked into its channel while the select waits:
/// a sender on that channel finds no receiver.
#[test]
fn a_blocked_select_does_not_wait_on_its_disabled_arms() {
    goro::run(|| {
        let (off_tx, off_rx) = chan::<u32>(0);
        let (on_tx, on_rx) = chan::<u32>(0);
        let selector = goro::go!(move || {
            goro::select! {
                recv(off_rx) -> _v if false => panic!("a disabled receive fired"),
                recv(on_rx) -> v => v.unwrap(),
            }
        });
        // `try_send` succeeds only once the select waits on `on_rx`.
        let mut v = 1;
        loop {
            match on_tx.try_send(v) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) => {
                    v = back;
                    assert_eq!(off_tx.try_send(2), Err(TrySendError::Full(2)));
                    goro::yield_now();
                }
                Err(TrySendError::Closed(_)) => panic!("the selector ended early"),
            }
        }
        assert_eq!(selector.join().unwrap(), 1);
    });
}

/// Go's merge loop: set a channel to nil once it is closed, until both are.
#[test]
fn merging_until_both_channels_close() {
    goro::run(|| {
        let (tx_a, a) = chan::<u64>(0);
        let (tx_b, b) = chan::<u64>(0);
        goro::go!(move || (1..=100).for_each(|i| tx_a.send(i).unwrap()));
        goro::go!(move || (1..=50).for_each(|i| tx_b.send(1000 * i).unwrap()));
        let (mut a, mut b) = (Some(a), Some(b));
        let mut sum = 0;
        while a.is_some() || b.is_some() {
            goro::select! {
                recv(a) -> v => match v {
                    Ok(v) => sum += v,
                    Err(_) => a = None,
                },
                recv(b) -> v => match v {
                    Ok(v) => sum += v,
                    Err(_) => b = None,
                },
            }
        }
        assert_eq!(sum, 5050 + 1000 * 1275);
    });
}
