//! [`Store`]: the cached replies, in least-recently-used order within a byte budget, with an
//! index from each key to the entries that read it.

use super::key::{Lookup, ReadKey};
use super::reply;
use crate::Value;
use lru::{DefaultHasher, LruCache};
use std::collections::HashMap;
use std::mem::size_of;
use std::time::Instant;

/// What one entry costs beyond its command, keys and reply: the entry itself, the LRU's node
/// and table slot.
pub(super) const ENTRY_OVERHEAD: usize = size_of::<Entry>() + size_of::<ReadKey>() + 64;
/// What each key of an entry costs beyond its bytes: its place in the entry and in the index.
pub(super) const KEY_OVERHEAD: usize = 8 + size_of::<ReadKey>() + 48;

struct Entry {
    value: Value,
    /// `None`: no key expires and the lifetime is beyond what an `Instant` can say.
    expires: Option<Instant>,
    size: usize,
}

/// What [`Store::get`] found.
pub(super) enum Found {
    Hit(Value),
    /// An entry past its lifetime: it is gone now.
    Expired,
    Missing,
}

pub(super) struct Store {
    lru: LruCache<ReadKey, Entry>,
    /// Every key of every entry -> the entries reading it (in any database: the server's
    /// invalidations name keys only).
    by_key: HashMap<Box<[u8]>, Vec<ReadKey>, DefaultHasher>,
    bytes: usize,
    max_bytes: usize,
    pub(super) evictions: u64,
    pub(super) expired: u64,
    /// Replies not stored: their entry alone is bigger than the whole budget.
    pub(super) oversized: u64,
}

/// What an entry of `key` holding `value` is counted as.
pub(super) fn entry_size(key: &ReadKey, value: &Value) -> usize {
    ENTRY_OVERHEAD + key.byte_len() + key.key_count() * KEY_OVERHEAD + reply::size(value)
}

impl Store {
    pub(super) fn new(max_bytes: usize) -> Store {
        Store {
            lru: LruCache::unbounded(),
            by_key: HashMap::default(),
            bytes: 0,
            max_bytes,
            evictions: 0,
            expired: 0,
            oversized: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.lru.len()
    }

    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The entry of `read`, made most recently used; an expired one is removed (and counted).
    /// A hit hashes `read` once and allocates nothing beyond the reply's clone.
    pub(super) fn get(&mut self, read: &dyn Lookup, now: Instant) -> Found {
        match self.lru.get(read) {
            None => return Found::Missing,
            Some(e) if e.expires.is_none_or(|at| now < at) => return Found::Hit(e.value.clone()),
            Some(_) => {}
        }
        if let Some((key, entry)) = self.lru.pop_entry(read) {
            self.forget(&key, entry.size, None);
        }
        self.expired += 1;
        Found::Expired
    }

    /// Stores `value` (already compacted) as `key`'s entry, replacing any, evicting the least
    /// recently used entries to stay within the budget. An entry bigger than the whole budget
    /// is not stored: `false`.
    pub(super) fn insert(&mut self, key: ReadKey, value: Value, expires: Option<Instant>) -> bool {
        let size = entry_size(&key, &value);
        if size > self.max_bytes {
            self.oversized += 1;
            return false;
        }
        if let Some((old, entry)) = self.lru.pop_entry(&key) {
            self.forget(&old, entry.size, None);
        }
        while self.bytes + size > self.max_bytes {
            let Some((old, entry)) = self.lru.pop_lru() else {
                break;
            };
            self.forget(&old, entry.size, None);
            self.evictions += 1;
        }
        for k in key.keys() {
            match self.by_key.get_mut(k) {
                // A key named twice in one command is indexed once.
                Some(readers) if readers.last().is_some_and(|r| r.same(&key)) => {}
                Some(readers) => readers.push(key.clone()),
                None => {
                    self.by_key.insert(k.into(), vec![key.clone()]);
                }
            }
        }
        self.bytes += size;
        self.lru.push(
            key,
            Entry {
                value,
                expires,
                size,
            },
        );
        true
    }

    /// Removes every entry that reads `key`.
    pub(super) fn invalidate(&mut self, key: &[u8]) {
        let Some(readers) = self.by_key.remove(key) else {
            return;
        };
        for read in readers {
            if let Some((read, entry)) = self.lru.pop_entry(&read) {
                self.forget(&read, entry.size, Some(key));
            }
        }
    }

    pub(super) fn clear(&mut self) {
        self.lru.clear();
        self.by_key.clear();
        self.bytes = 0;
    }

    /// Takes a removed entry out of the index (but for `skip`, whose list is gone already) and
    /// out of the byte count.
    fn forget(&mut self, read: &ReadKey, size: usize, skip: Option<&[u8]>) {
        self.bytes -= size;
        for k in read.keys() {
            if skip == Some(k) {
                continue;
            }
            if let Some(readers) = self.by_key.get_mut(k) {
                // A pointer comparison per reader; a key read by many commands costs a scan.
                if let Some(at) = readers.iter().position(|r| r.same(read)) {
                    readers.swap_remove(at);
                }
                if readers.is_empty() {
                    self.by_key.remove(k);
                }
            }
        }
    }

    /// Checks the byte count and the index against the entries (tests).
    #[cfg(test)]
    pub(super) fn check(&self) {
        let mut bytes = 0;
        let mut links = 0;
        for (key, entry) in self.lru.iter() {
            assert_eq!(entry.size, entry_size(key, &entry.value));
            bytes += entry.size;
            let mut seen: Vec<&[u8]> = Vec::new();
            for k in key.keys() {
                if seen.contains(&k) {
                    continue;
                }
                seen.push(k);
                links += 1;
                let readers = self
                    .by_key
                    .get(k)
                    .expect("every key of an entry is indexed");
                assert_eq!(readers.iter().filter(|r| r.same(key)).count(), 1);
            }
        }
        assert_eq!(bytes, self.bytes);
        assert!(self.bytes <= self.max_bytes);
        assert_eq!(self.by_key.values().map(Vec::len).sum::<usize>(), links);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cmd;
    use std::time::Duration;

    fn read(cmd: &Cmd) -> ReadKey {
        ReadKey::new(0, cmd.args().encoded(), cmd.keys()).expect("key")
    }

    fn hit(store: &mut Store, cmd: &Cmd, now: Instant) -> Option<Value> {
        let view = super::super::key::View {
            db: 0,
            cmd: cmd.args().encoded(),
        };
        match store.get(&view, now) {
            Found::Hit(v) => Some(v),
            _ => None,
        }
    }

    #[test]
    fn invalidating_a_key_removes_every_read_of_it() {
        let now = Instant::now();
        let mut store = Store::new(1 << 20);
        let get = Cmd::new("GET").key("k");
        let hget = Cmd::new("HGET").key("k").arg("f");
        let mget = Cmd::new("MGET").key("k").key("j").key("k");
        let other = Cmd::new("GET").key("j");
        for c in [&get, &hget, &mget, &other] {
            assert!(store.insert(read(c), Value::Int(1), None));
        }
        store.check();
        store.invalidate(b"k");
        store.check();
        assert_eq!(store.len(), 1);
        assert!(hit(&mut store, &get, now).is_none());
        assert!(hit(&mut store, &hget, now).is_none());
        assert!(hit(&mut store, &mget, now).is_none());
        assert_eq!(hit(&mut store, &other, now), Some(Value::Int(1)));
        store.invalidate(b"j");
        store.check();
        assert_eq!((store.len(), store.bytes()), (0, 0));
    }

    #[test]
    fn expired_entries_go_when_found() {
        let now = Instant::now();
        let mut store = Store::new(1 << 20);
        let get = Cmd::new("GET").key("k");
        store.insert(
            read(&get),
            Value::Int(1),
            Some(now + Duration::from_millis(10)),
        );
        assert!(hit(&mut store, &get, now + Duration::from_millis(9)).is_some());
        let view = super::super::key::View {
            db: 0,
            cmd: get.args().encoded(),
        };
        assert!(matches!(
            store.get(&view, now + Duration::from_millis(10)),
            Found::Expired
        ));
        assert_eq!((store.len(), store.bytes(), store.expired), (0, 0, 1));
        store.check();
    }

    #[test]
    fn the_budget_evicts_least_recently_used_first() {
        let now = Instant::now();
        let cmds: Vec<Cmd> = (0..4)
            .map(|i| Cmd::new("GET").key(format!("k{i}")))
            .collect();
        let one = entry_size(&read(&cmds[0]), &Value::Int(0));
        let mut store = Store::new(3 * one);
        for c in &cmds[..3] {
            assert!(store.insert(read(c), Value::Int(0), None));
        }
        // k0 used: k1 is now the least recently used.
        assert!(hit(&mut store, &cmds[0], now).is_some());
        assert!(store.insert(read(&cmds[3]), Value::Int(0), None));
        assert_eq!(store.evictions, 1);
        assert!(hit(&mut store, &cmds[1], now).is_none());
        for c in [&cmds[0], &cmds[2], &cmds[3]] {
            assert!(hit(&mut store, c, now).is_some());
        }
        assert_eq!(store.bytes(), 3 * one);
        store.check();
        // Bigger than the whole budget: not stored, nothing evicted.
        let big = Value::Bulk(vec![0u8; 4 * one].into());
        assert!(!store.insert(read(&cmds[1]), big, None));
        assert_eq!((store.len(), store.evictions), (3, 1));
        store.check();
    }

    #[test]
    fn replacing_an_entry_counts_it_once() {
        let mut store = Store::new(1 << 20);
        let get = Cmd::new("GET").key("k");
        store.insert(read(&get), Value::Int(1), None);
        store.insert(read(&get), Value::Bulk("longer".into()), None);
        assert_eq!(store.len(), 1);
        store.check();
    }
}
