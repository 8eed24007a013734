//! When each link must be turned at the latest: one heap of `(deadline, slot, generation)` for
//! every link on the engine. An entry is live while its link still has that deadline; a link
//! whose deadline moves leaves its old entry behind, dropped when it comes up or when the heap
//! is rebuilt (once stale entries outnumber live ones), so the heap stays within twice the links
//! plus a constant.

use super::hub::Key;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

#[derive(Default)]
pub(super) struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, u32, u32)>>,
}

impl Deadlines {
    pub fn push(&mut self, at: Instant, key: Key) {
        self.heap.push(Reverse((at, key.slot, key.gen)));
    }

    /// The next live entry due at `now` (taken from the heap), skipping stale ones.
    /// `live(key, at)` says whether `key` still has deadline `at`.
    pub fn pop_due(&mut self, now: Instant, live: impl Fn(Key, Instant) -> bool) -> Option<Key> {
        while let Some(&Reverse((at, slot, gen))) = self.heap.peek() {
            if at > now {
                return None;
            }
            self.heap.pop();
            let key = Key { slot, gen };
            if live(key, at) {
                return Some(key);
            }
        }
        None
    }

    /// The earliest live deadline, dropping stale entries in front of it.
    pub fn next(&mut self, live: impl Fn(Key, Instant) -> bool) -> Option<Instant> {
        while let Some(&Reverse((at, slot, gen))) = self.heap.peek() {
            if live(Key { slot, gen }, at) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Rebuilds the heap from the live deadlines once it holds more than twice as many entries
    /// (plus a constant).
    pub fn compact(&mut self, links: usize, live: impl Iterator<Item = (Instant, Key)>) {
        if self.heap.len() <= 64 + 2 * links {
            return;
        }
        self.heap = live
            .map(|(at, key)| Reverse((at, key.slot, key.gen)))
            .collect();
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

    #[test]
    fn stale_entries_are_skipped_and_compacted() {
        let t0 = Instant::now();
        let key = Key { slot: 1, gen: 0 };
        let mut d = Deadlines::default();
        // The link's deadline moved a thousand times; only the last one is live.
        for i in 0..1000 {
            d.push(t0 + Duration::from_millis(i), key);
        }
        let current = t0 + Duration::from_millis(999);
        let live = |k: Key, at: Instant| k == key && at == current;
        assert_eq!(d.next(live), Some(current));
        assert_eq!(d.pop_due(t0 + Duration::from_millis(500), live), None);
        d.compact(1, std::iter::once((current, key)));
        assert_eq!(d.len(), 1);
        assert_eq!(d.pop_due(current, live), Some(key));
        assert_eq!(d.next(live), None);
    }

    #[test]
    fn a_stale_generation_is_not_due() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        d.push(t0, Key { slot: 0, gen: 1 });
        d.push(t0, Key { slot: 0, gen: 2 });
        let live = |k: Key, _| k.gen == 2;
        assert_eq!(d.pop_due(t0, live), Some(Key { slot: 0, gen: 2 }));
        assert_eq!(d.pop_due(t0, live), None);
    }
}
