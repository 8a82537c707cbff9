//! An intrusive FIFO of blocked operations (Go's `waitq` of `sudog`s).
//!
//! Each `Node` lives on the stack of the coroutine or thread it stands for,
//! so blocking allocates nothing and unlinking is O(1). Every queue is
//! guarded by its owner's lock (a channel's, a mutex's); all link fields are
//! touched only under that lock.
//!
//! Validity: `push_back`'s contract keeps every linked node alive and in
//! place until it is unlinked, by a completer (`pop_claimed`) or by its owner
//! (`remove`), both under the lock. Its owner does not return before one of
//! those has happened (see `runtime::blocker`).

use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::runtime::park::blocker::{Blocker, Wake};

/// One blocked operation in one queue.
pub(crate) struct Node<T> {
    blocker: NonNull<Blocker>,
    /// Index of this operation among its blocker's cases (select arms).
    case: usize,
    /// The value in transit: offered by a blocked sender, or delivered to a
    /// blocked receiver. Touched by the owner only when the node is not
    /// linked and not claimed, by a completer only between claim and finish.
    slot: UnsafeCell<Option<T>>,
    /// Neighbours while linked (itself, when alone), dangling before;
    /// under the queue's lock.
    prev: Cell<NonNull<Node<T>>>,
    next: Cell<NonNull<Node<T>>>,
    /// Whether the node is in a queue; under the queue's lock.
    linked: Cell<bool>,
}

impl<T> Node<T> {
    pub(crate) fn new(blocker: &Blocker, case: usize, value: Option<T>) -> Node<T> {
        Node {
            blocker: NonNull::from(blocker),
            case,
            slot: UnsafeCell::new(value),
            prev: Cell::new(NonNull::dangling()),
            next: Cell::new(NonNull::dangling()),
            linked: Cell::new(false),
        }
    }

    /// Takes the value in the slot.
    ///
    /// # Safety
    /// For the owner, once no completer can touch the node: its blocker is
    /// DONE, or the node was removed under the lock.
    pub(crate) unsafe fn take(&self) -> Option<T> {
        // SAFETY: per the contract, nobody else accesses the slot now.
        unsafe { (*self.slot.get()).take() }
    }
}

/// A FIFO of nodes, oldest first: a circular doubly linked list, so that
/// one pointer is the whole queue (the newest node is the oldest's `prev`).
/// Every channel holds two and every lock one, and a channel's size decides
/// its allocation's size class, which an idle coroutine waiting on its own
/// channel pays for.
pub(crate) struct WaitQueue<T> {
    /// The oldest node, `None` when empty.
    head: Option<NonNull<Node<T>>>,
}

// SAFETY: the queue only follows its pointers while its guarding lock is
// held, and the nodes are alive then (module docs); values of type `T` move
// between threads through it, hence `T: Send`.
unsafe impl<T: Send> Send for WaitQueue<T> {}

impl<T> Default for WaitQueue<T> {
    fn default() -> Self {
        WaitQueue::new()
    }
}

impl<T> WaitQueue<T> {
    pub(crate) const fn new() -> WaitQueue<T> {
        WaitQueue { head: None }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Links `node` at the back.
    ///
    /// # Safety
    /// `node` must not be linked, and must stay alive and in place until it
    /// is unlinked by `pop_claimed` or `remove`.
    pub(crate) unsafe fn push_back(&mut self, node: &Node<T>) {
        let p = NonNull::from(node);
        node.linked.set(true);
        let Some(head) = self.head else {
            node.prev.set(p);
            node.next.set(p);
            self.head = Some(p);
            return;
        };
        // SAFETY: linked nodes are alive (push_back's contract).
        let h = unsafe { head.as_ref() };
        let tail = h.prev.get();
        node.prev.set(tail);
        node.next.set(head);
        // SAFETY: as above.
        unsafe { tail.as_ref() }.next.set(p);
        h.prev.set(p);
    }

    /// Links `node` at the front, ahead of every waiter: for a waiter that
    /// was woken, lost a race and queues again without losing its turn.
    ///
    /// # Safety
    /// As for `push_back`.
    pub(crate) unsafe fn push_front(&mut self, node: &Node<T>) {
        // SAFETY: forwarded contract. In a circle, the front is just behind
        // the back.
        unsafe { self.push_back(node) };
        self.head = Some(NonNull::from(node));
    }

    fn pop_front(&mut self) -> Option<NonNull<Node<T>>> {
        let p = self.head?;
        // SAFETY: linked nodes are alive (push_back's contract).
        self.remove(unsafe { p.as_ref() });
        Some(p)
    }

    /// Unlinks `node` if it is still linked in this queue.
    pub(crate) fn remove(&mut self, node: &Node<T>) {
        if !node.linked.get() {
            return;
        }
        node.linked.set(false);
        let p = NonNull::from(node);
        let next = node.next.get();
        if next == p {
            // The only node.
            self.head = None;
            return;
        }
        let prev = node.prev.get();
        // SAFETY: linked nodes are alive (push_back's contract).
        unsafe {
            prev.as_ref().next.set(next);
            next.as_ref().prev.set(prev);
        }
        if self.head == Some(p) {
            self.head = Some(next);
        }
    }

    /// Unlinks and claims the oldest node whose blocker can still be claimed;
    /// stale nodes (claimed elsewhere, cancelled) are unlinked on the way.
    pub(crate) fn pop_claimed(&mut self) -> Option<Claimed<'_, T>> {
        while let Some(p) = self.pop_front() {
            // SAFETY: just unlinked under the lock; the owner cannot return
            // before its blocker is finished or it removed the node under the
            // lock we hold, so the node and its blocker are alive.
            if unsafe { Blocker::claim(p.as_ref().blocker) } {
                return Some(Claimed {
                    node: p,
                    _lock: PhantomData,
                });
            }
        }
        None
    }
}

/// A node this caller claimed: it may move the value, then must `finish`.
/// Borrows the queue, hence the lock guarding it, so it cannot outlive it.
#[must_use]
pub(crate) struct Claimed<'q, T> {
    node: NonNull<Node<T>>,
    _lock: PhantomData<&'q mut WaitQueue<T>>,
}

impl<T> Claimed<'_, T> {
    /// Puts a value in the node's slot (delivering to a receiver).
    pub(crate) fn put(&mut self, v: T) {
        // SAFETY: claimed and not finished: the node is alive and only we
        // touch its slot.
        unsafe { *self.node.as_ref().slot.get() = Some(v) };
    }

    /// Takes the node's value (from a sender).
    pub(crate) fn take(&mut self) -> Option<T> {
        // SAFETY: as in `put`.
        unsafe { (*self.node.as_ref().slot.get()).take() }
    }

    /// Completes the node's operation (`closed`: by closing rather than a
    /// transfer) and returns the wakeup to perform after unlocking.
    pub(crate) fn finish(self, closed: bool) -> Wake {
        // SAFETY: as in `put`.
        let n = unsafe { self.node.as_ref() };
        // SAFETY: we claimed this blocker and finish it once; we do not
        // touch the node afterwards.
        unsafe { Blocker::finish(n.blocker, n.case, closed) }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Pops every node, returning their cases in order.
    fn drain(q: &mut WaitQueue<()>) -> Vec<usize> {
        std::iter::from_fn(|| q.pop_front())
            // SAFETY: the nodes outlive the queue in each test.
            .map(|p| unsafe { p.as_ref() }.case)
            .collect()
    }

    #[test]
    fn nodes_leave_in_order_wherever_they_are_removed_from() {
        let blocker = Blocker::new(false);
        let nodes: Vec<Node<()>> = (0..5).map(|i| Node::new(&blocker, i, None)).collect();
        for (remove, left) in [
            (vec![], vec![0, 1, 2, 3, 4]),
            (vec![0], vec![1, 2, 3, 4]),
            (vec![4], vec![0, 1, 2, 3]),
            (vec![2], vec![0, 1, 3, 4]),
            (vec![0, 1, 2, 3, 4], vec![]),
            (vec![3, 1], vec![0, 2, 4]),
        ] {
            let mut q = WaitQueue::new();
            for n in &nodes {
                // SAFETY: the nodes outlive the queue, which is drained.
                unsafe { q.push_back(n) };
            }
            for &i in &remove {
                q.remove(&nodes[i]);
                q.remove(&nodes[i]);
                assert!(!nodes[i].linked.get());
            }
            assert_eq!(drain(&mut q), left, "after removing {remove:?}");
            assert!(q.is_empty());
            assert!(nodes.iter().all(|n| !n.linked.get()));
        }
    }

    #[test]
    fn a_node_pushed_to_the_front_leaves_first() {
        let blocker = Blocker::new(false);
        let nodes: Vec<Node<()>> = (0..3).map(|i| Node::new(&blocker, i, None)).collect();
        let mut q = WaitQueue::new();
        // SAFETY: the nodes outlive the queue, which is drained.
        unsafe {
            q.push_front(&nodes[1]);
            q.push_back(&nodes[2]);
            q.push_front(&nodes[0]);
        }
        assert_eq!(drain(&mut q), vec![0, 1, 2]);
        // SAFETY: as above.
        unsafe { q.push_back(&nodes[2]) };
        q.remove(&nodes[2]);
        assert!(q.is_empty());
    }
}
