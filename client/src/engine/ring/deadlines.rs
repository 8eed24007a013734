//! When each link must be turned at the latest: a heap of `(deadline, slot)` with lazy removal
//! (an entry counts only while it is still its slot's deadline).

use super::hub::SlotId;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

#[derive(Default)]
pub(super) struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, u32, u32)>>,
}

impl Deadlines {
    /// Records that `id` must be turned at `at`.
    pub fn push(&mut self, at: Instant, id: SlotId) {
        self.heap.push(Reverse((at, id.index, id.gen)));
    }

    /// The earliest entry still current by `is_current(id, at)`, dropping stale ones on top.
    pub fn earliest(&mut self, is_current: impl Fn(SlotId, Instant) -> bool) -> Option<Instant> {
        while let Some(Reverse((at, index, gen))) = self.heap.peek().copied() {
            if is_current(SlotId { index, gen }, at) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Removes and returns an entry due at `now`, current or not (the caller checks).
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, SlotId)> {
        match self.heap.peek() {
            Some(Reverse((at, index, gen))) if *at <= now => {
                let due = (
                    *at,
                    SlotId {
                        index: *index,
                        gen: *gen,
                    },
                );
                self.heap.pop();
                Some(due)
            }
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Rebuilds the heap from the current deadlines only (bounds it when many go stale).
    pub fn rebuild(&mut self, current: impl Iterator<Item = (Instant, SlotId)>) {
        self.heap.clear();
        for (at, id) in current {
            self.push(at, id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stale_entries_are_skipped_and_due_ones_come_out_in_order() {
        let t0 = Instant::now();
        let a = SlotId { index: 0, gen: 0 };
        let b = SlotId { index: 1, gen: 3 };
        let mut d = Deadlines::default();
        d.push(t0 + Duration::from_millis(5), a);
        d.push(t0 + Duration::from_millis(1), b);
        d.push(t0 + Duration::from_millis(9), a);
        // Only a's later deadline is current; b's slot was freed.
        let current = |id: SlotId, at: Instant| id == a && at == t0 + Duration::from_millis(9);
        assert_eq!(d.earliest(current), Some(t0 + Duration::from_millis(9)));
        assert_eq!(d.len(), 1, "the stale entries on top were dropped");
        assert_eq!(d.pop_due(t0), None);
        let due = d.pop_due(t0 + Duration::from_millis(10));
        assert_eq!(due, Some((t0 + Duration::from_millis(9), a)));
        assert_eq!(d.earliest(|_, _| true), None);
    }
}
