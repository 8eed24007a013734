//! The deadlines of one connection's calls, earliest first.
//!
//! Most calls on a connection share one command timeout, so their deadlines come in the order
//! the calls do: those go to a FIFO (a push and a pop each, no sifting). A deadline earlier
//! than the last one queued (a call with a shorter timeout) goes to a heap instead; the
//! earliest of the two fronts is the next deadline.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

/// Deadlines keyed by the queue's sequence number of their call. Ties are broken by sequence
/// number, so the order is the same whichever structure holds them.
#[derive(Default)]
pub(crate) struct Deadlines {
    /// Deadlines in increasing `(at, seq)` order.
    fifo: VecDeque<(Instant, u64)>,
    /// Deadlines that came out of order.
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl Deadlines {
    /// Adds the deadline `at` of call `seq`; `seq` increases from one call to the next.
    pub fn push(&mut self, at: Instant, seq: u64) {
        if self.fifo.back().is_none_or(|&(last, _)| last <= at) {
            self.fifo.push_back((at, seq));
        } else {
            self.heap.push(Reverse((at, seq)));
        }
    }

    /// The earliest deadline and its call.
    pub fn peek(&self) -> Option<(Instant, u64)> {
        match (self.fifo.front(), self.heap.peek()) {
            (Some(&f), Some(&Reverse(h))) => Some(f.min(h)),
            (Some(&f), None) => Some(f),
            (None, Some(&Reverse(h))) => Some(h),
            (None, None) => None,
        }
    }

    /// Removes the earliest deadline.
    pub fn pop(&mut self) -> Option<(Instant, u64)> {
        let from_fifo = match (self.fifo.front(), self.heap.peek()) {
            (Some(&f), Some(&Reverse(h))) => f <= h,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if from_fifo {
            self.fifo.pop_front()
        } else {
            self.heap.pop().map(|Reverse(d)| d)
        }
    }

    /// How many deadlines are held (live or not).
    pub fn len(&self) -> usize {
        self.fifo.len() + self.heap.len()
    }

    /// Replaces every deadline with `live`.
    pub fn reset(&mut self, live: impl Iterator<Item = (Instant, u64)>) {
        let mut all: Vec<_> = live.collect();
        all.sort_unstable();
        self.heap.clear();
        self.fifo.clear();
        self.fifo.extend(all);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn deadlines_come_out_earliest_first_in_or_out_of_order() {
        let t = Instant::now();
        let at = |ms| t + Duration::from_millis(ms);
        let mut d = Deadlines::default();
        // In order, then a shorter timeout, a tie, and one later again.
        for (seq, ms) in [(1, 10), (2, 20), (3, 5), (4, 20), (5, 15), (6, 30)] {
            d.push(at(ms), seq);
        }
        assert_eq!(d.len(), 6);
        assert_eq!(d.peek(), Some((at(5), 3)));
        let order: Vec<u64> = std::iter::from_fn(|| d.pop().map(|(_, s)| s)).collect();
        assert_eq!(order, [3, 1, 5, 2, 4, 6]);
        assert_eq!(d.peek(), None);
        d.reset([(at(9), 8), (at(3), 7)].into_iter());
        assert_eq!(d.pop(), Some((at(3), 7)));
        assert_eq!(d.pop(), Some((at(9), 8)));
        assert_eq!(d.pop(), None);
    }
}
