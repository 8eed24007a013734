//! When each link of a many-link engine must be turned at the latest: one heap of
//! `(deadline, key)` for every link on the engine, the key naming the link's slot and
//! generation. An entry is live while its link still has that deadline (`live(key, at)`, asked
//! of the engine); a link whose deadline moves leaves its old entry behind, dropped when it
//! comes up or when the heap is rebuilt (once stale entries outnumber live ones), so the heap
//! stays within twice the links plus a constant.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// The heap; `K` is the engine's link key (slot and generation), ordered after the deadline.
pub(crate) struct Deadlines<K> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
}

impl<K> Default for Deadlines<K>
where
    K: Ord,
{
    fn default() -> Self {
        Deadlines {
            heap: BinaryHeap::new(),
        }
    }
}

impl<K> Deadlines<K>
where
    K: Ord + Copy,
{
    /// Records that `key` must be turned at `at`.
    pub fn push(&mut self, at: Instant, key: K) {
        self.heap.push(Reverse((at, key)));
    }

    /// The next live entry due at `now` (taken from the heap), skipping stale ones.
    pub fn pop_due(&mut self, now: Instant, live: impl Fn(K, Instant) -> bool) -> Option<K> {
        while let Some(&Reverse((at, key))) = self.heap.peek() {
            if at > now {
                return None;
            }
            self.heap.pop();
            if live(key, at) {
                return Some(key);
            }
        }
        None
    }

    /// The earliest live deadline, dropping stale entries in front of it.
    pub fn earliest(&mut self, live: impl Fn(K, Instant) -> bool) -> Option<Instant> {
        while let Some(&Reverse((at, key))) = self.heap.peek() {
            if live(key, at) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Rebuilds the heap from the live deadlines of the engine's `links` links once it holds
    /// more than twice as many entries (plus a constant); `live` is only read then.
    pub fn compact(&mut self, links: usize, live: impl Iterator<Item = (Instant, K)>) {
        if self.heap.len() <= 64 + 2 * links {
            return;
        }
        self.heap = live.map(Reverse).collect();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A key as the engines have them: (slot, generation).
    type Key = (u32, u32);

    #[test]
    fn stale_entries_are_skipped_and_compacted() {
        let t0 = Instant::now();
        let key: Key = (1, 0);
        let mut d = Deadlines::default();
        // The link's deadline moved a thousand times; only the last one is live.
        for i in 0..1000 {
            d.push(t0 + Duration::from_millis(i), key);
        }
        let current = t0 + Duration::from_millis(999);
        let live = |k: Key, at: Instant| k == key && at == current;
        assert_eq!(d.earliest(live), Some(current));
        assert_eq!(d.pop_due(t0 + Duration::from_millis(500), live), None);
        d.compact(1, std::iter::once((current, key)));
        assert_eq!(d.len(), 1);
        assert_eq!(d.pop_due(current, live), Some(key));
        assert_eq!(d.earliest(live), None);
    }

    #[test]
    fn a_stale_generation_is_not_due() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        d.push(t0, (0, 1));
        d.push(t0, (0, 2));
        let live = |k: Key, _| k.1 == 2;
        assert_eq!(d.pop_due(t0, live), Some((0, 2)));
        assert_eq!(d.pop_due(t0, live), None);
    }

    #[test]
    fn stale_entries_on_top_are_dropped_and_due_ones_come_out_in_order() {
        let t0 = Instant::now();
        let a: Key = (0, 0);
        let b: Key = (1, 3);
        let mut d = Deadlines::default();
        d.push(t0 + Duration::from_millis(5), a);
        d.push(t0 + Duration::from_millis(1), b);
        d.push(t0 + Duration::from_millis(9), a);
        // Only a's later deadline is current; b's slot was freed.
        let current = |k: Key, at: Instant| k == a && at == t0 + Duration::from_millis(9);
        assert_eq!(d.earliest(current), Some(t0 + Duration::from_millis(9)));
        assert_eq!(d.len(), 1, "the stale entries on top were dropped");
        assert_eq!(d.pop_due(t0, current), None);
        assert_eq!(d.pop_due(t0 + Duration::from_millis(10), current), Some(a));
        assert_eq!(d.earliest(|_, _| true), None);
    }

    #[test]
    fn a_small_heap_is_not_rebuilt() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        for i in 0..10 {
            d.push(t0 + Duration::from_millis(i), (0, 0));
        }
        d.compact(0, std::iter::empty());
        assert_eq!(d.len(), 10, "within 64 + 2 × links nothing is dropped");
    }
}
