//! [`Flights`]: the cached reads in flight: who leads each, who waits for it, and whether an
//! invalidation reached it (then its reply is handed on but not stored).

use super::key::{Lookup, ReadKey};
use super::waiter::{Slot, Waiter};
use lru::DefaultHasher;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One read in flight.
pub(super) struct Flight {
    pub(super) key: ReadKey,
    /// When it was planned, before it was sent: the server's PTTLs count from later, so an
    /// entry's lifetime counted from here ends no later than its keys.
    pub(super) start: Instant,
    pub(super) ttl: Duration,
    /// An invalidation of one of its keys, or a flush, arrived after it was registered: its
    /// reply may predate the change, so it is not stored.
    pub(super) poisoned: bool,
    pub(super) waiters: Vec<Slot>,
}

#[derive(Default)]
pub(super) struct Flights {
    next: u64,
    live: HashMap<u64, Flight, DefaultHasher>,
    /// The flight a new reader of each command may join: the newest one no invalidation or
    /// flush has reached.
    join: HashMap<ReadKey, u64, DefaultHasher>,
    /// Every key of every unpoisoned flight -> those flights.
    by_key: HashMap<Box<[u8]>, Vec<u64>, DefaultHasher>,
}

impl Flights {
    pub(super) fn len(&self) -> usize {
        self.live.len()
    }

    /// Registers a read of `key` about to be sent; returns its id.
    pub(super) fn start(&mut self, key: ReadKey, start: Instant, ttl: Duration) -> u64 {
        let id = self.next;
        self.next += 1;
        for k in key.keys() {
            match self.by_key.get_mut(k) {
                Some(ids) if ids.last() == Some(&id) => {}
                Some(ids) => ids.push(id),
                None => {
                    self.by_key.insert(k.into(), vec![id]);
                }
            }
        }
        self.join.insert(key.clone(), id);
        self.live.insert(
            id,
            Flight {
                key,
                start,
                ttl,
                poisoned: false,
                waiters: Vec::new(),
            },
        );
        id
    }

    /// A waiter for the joinable flight of `read`, if there is one.
    pub(super) fn join(&mut self, read: &dyn Lookup) -> Option<Waiter> {
        let id = *self.join.get(read)?;
        let flight = self.live.get_mut(&id)?;
        if flight.waiters.len() == flight.waiters.capacity() {
            // Waiters that gave up (dropped) leave closed slots: pruned before the list grows,
            // so it stays within twice the waiters still there.
            flight.waiters.retain(|w| !w.is_closed());
        }
        let (slot, waiter) = Waiter::new();
        flight.waiters.push(slot);
        Some(waiter)
    }

    /// `key` changed: the flights reading it are poisoned and can no longer be joined.
    pub(super) fn invalidate(&mut self, key: &[u8]) {
        let Some(ids) = self.by_key.remove(key) else {
            return;
        };
        for id in ids {
            if let Some(flight) = self.live.get_mut(&id) {
                flight.poisoned = true;
                if self.join.get(&flight.key) == Some(&id) {
                    self.join.remove(&flight.key);
                }
            }
        }
    }

    /// Everything changed: every flight is poisoned, none can be joined.
    pub(super) fn clear(&mut self) {
        for flight in self.live.values_mut() {
            flight.poisoned = true;
        }
        self.join.clear();
        self.by_key.clear();
    }

    /// Takes flight `id` out of every table.
    pub(super) fn end(&mut self, id: u64) -> Option<Flight> {
        let flight = self.live.remove(&id)?;
        if self.join.get(&flight.key) == Some(&id) {
            self.join.remove(&flight.key);
        }
        for k in flight.key.keys() {
            if let Some(ids) = self.by_key.get_mut(k) {
                ids.retain(|&i| i != id);
                if ids.is_empty() {
                    self.by_key.remove(k);
                }
            }
        }
        Some(flight)
    }

    /// Checks the tables against each other (tests).
    #[cfg(test)]
    pub(super) fn check(&self) {
        for (key, id) in &self.join {
            let flight = self.live.get(id).expect("a joinable flight is live");
            assert!(!flight.poisoned && flight.key == *key);
        }
        for (k, ids) in &self.by_key {
            for id in ids {
                let flight = self.live.get(id).expect("an indexed flight is live");
                assert!(flight.key.keys().any(|fk| fk == &**k));
            }
        }
        for (id, flight) in &self.live {
            if !flight.poisoned {
                for k in flight.key.keys() {
                    assert!(self.by_key.get(k).is_some_and(|ids| ids.contains(id)));
                }
            }
        }
    }
}

#[cfg(test)]
impl Flights {
    /// How many waiter slots flight `id` holds (closed ones included).
    pub(super) fn waiting(&self, id: u64) -> usize {
        self.live.get(&id).map_or(0, |f| f.waiters.len())
    }
}
