//! Client-side caching (`Config::cache`): the store of cached replies, the reads in flight that
//! may fill it, and the invalidations that empty it.
//!
//! Nothing here knows what drives a connection: callers hand it commands, replies and
//! invalidated keys; it never calls into a client or a link (lock order: link -> cache).
//!
//! - [`Shared`]: one cache behind one mutex: [`store`] (entries, LRU, byte budget, key index,
//!   lifetimes) and [`flight`] (reads in flight, their waiters, poison).
//! - [`Shared::plan`] decides what a cached read does ([`Plan`]); a leading read sends the
//!   [`bundle`] and hands its replies to [`Fill::finish`].
//! - The race the design closes: a read is registered as in flight *before* it is sent, so an
//!   invalidation of its keys that arrives before its reply (the server sends the push before
//!   the reply of any later command, and the link applies both in wire order) poisons it: its
//!   reply is answered but not stored, and later readers lead a new read instead of joining it.

// Without the plumb and cluster lanes nothing in the crate calls the cache yet.
#![allow(dead_code)]

mod bundle;
mod flight;
mod key;
mod reply;
mod settings;
mod store;
mod waiter;

pub use settings::{Cache, CacheStats};
pub(crate) use waiter::Waiter;

use crate::{Cmd, Result, Value};
use flight::Flights;
use key::{ReadKey, View};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use store::{Found, Store};

/// One cache, shared by every connection whose invalidations keep it true: a `Client`'s
/// connection, or all of a `Pool`'s, a `Spread`'s or a `ClusterClient`'s nodes'.
pub(crate) struct Shared {
    settings: Cache,
    state: Mutex<State>,
}

struct State {
    store: Store,
    flights: Flights,
    hits: u64,
    misses: u64,
    joined: u64,
    uncacheable: u64,
    invalidations: u64,
    flushes: u64,
}

/// What a cached read does, as [`Shared::plan`] decides.
pub(crate) enum Plan {
    /// A live entry: the reply, as the server sent it.
    Hit(Value),
    /// The same command is in flight already: wait for its reply. The command comes back,
    /// to plan again if that read is given up (nothing is copied to keep it).
    Join(Waiter, Cmd),
    /// Send `bundle` (in one write, its replies collected into one array), then hand that
    /// array to [`Fill::finish`].
    Lead { fill: Fill, bundle: Vec<Cmd> },
    /// Not cacheable here (a write or a blocking command, no keys, or a key outside every
    /// `BCAST` prefix): send the command as usual.
    Uncacheable(Cmd),
}

/// A read in flight that may fill an entry. Dropping it without [`Fill::finish`] (the caller
/// gave up) lets its waiters go: they get `None` and plan again.
pub(crate) struct Fill {
    shared: Arc<Shared>,
    id: u64,
    keys: usize,
    /// Set by `finish`: nothing left for `Drop` to do.
    done: bool,
}

impl Shared {
    pub(crate) fn new(settings: Cache) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
                store: Store::new(settings.max_bytes),
                flights: Flights::default(),
                hits: 0,
                misses: 0,
                joined: 0,
                uncacheable: 0,
                invalidations: 0,
                flushes: 0,
            }),
            settings,
        })
    }

    pub(crate) fn settings(&self) -> &Cache {
        &self.settings
    }

    /// The state; a panic elsewhere while it was held left it consistent (no code here panics
    /// between two updates), so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Looks `cmd` up (by its exact encoded arguments and `db`); on a miss, registers the read
    /// in flight (before anything is sent, so an invalidation that arrives from now on reaches
    /// it) and says what to send. `ttl` is the call's own lifetime (`cached_for`), else the
    /// settings'.
    pub(crate) fn plan(self: &Arc<Self>, db: i64, cmd: Cmd, ttl: Option<Duration>) -> Plan {
        self.plan_at(db, cmd, ttl, Instant::now())
    }

    /// The live entry of `cmd` (in `db`), counted as a hit: what a cached read tries before
    /// [`plan`](Shared::plan), which it then needs only on a miss. `None` (nothing counted; an
    /// expired entry is removed and counted `expired`) when there is none or `cmd` is not
    /// cacheable: the caller plans the read, which counts it. One lock, one hash of the encoded
    /// command in place, the reply's clone: `cmd` is neither copied nor consumed.
    pub(crate) fn hit(&self, db: i64, cmd: &Cmd) -> Option<Value> {
        self.hit_at(db, cmd, Instant::now())
    }

    /// [`hit`](Shared::hit) at `now` (the tests' clock).
    fn hit_at(&self, db: i64, cmd: &Cmd, now: Instant) -> Option<Value> {
        if !self.cacheable(cmd) {
            return None;
        }
        let view = View {
            db,
            cmd: cmd.args().encoded(),
        };
        let mut state = self.lock();
        match state.store.get(&view, now) {
            Found::Hit(value) => {
                state.hits += 1;
                Some(value)
            }
            Found::Expired | Found::Missing => None,
        }
    }

    /// Whether `cmd` may be cached at all: valid arguments, neither a write nor blocking, keys
    /// marked, every key within the `BCAST` prefixes (when there are any).
    fn cacheable(&self, cmd: &Cmd) -> bool {
        cmd.args().invalid().is_none()
            && !cmd.flags().write
            && !cmd.flags().blocking
            && !cmd.key_indices().is_empty()
            && self.settings.covers(cmd.keys())
    }

    /// Counts a cached read its caller sends uncached without planning it (a cluster read whose
    /// keys span slots).
    pub(crate) fn count_uncacheable(&self) {
        self.lock().uncacheable += 1;
    }

    /// [`plan`](Shared::plan) at `now` (the tests' clock).
    fn plan_at(self: &Arc<Self>, db: i64, cmd: Cmd, ttl: Option<Duration>, now: Instant) -> Plan {
        // A write or a blocking command is never kept, whoever asks (`.cached()` exists only
        // on reads, but `Redis::call_cached` takes any command).
        if !self.cacheable(&cmd) {
            self.lock().uncacheable += 1;
            return Plan::Uncacheable(cmd);
        }
        let view = View {
            db,
            cmd: cmd.args().encoded(),
        };
        let mut state = self.lock();
        let state = &mut *state;
        match state.store.get(&view, now) {
            Found::Hit(value) => {
                state.hits += 1;
                return Plan::Hit(value);
            }
            Found::Expired | Found::Missing => {}
        }
        if let Some(waiter) = state.flights.join(&view) {
            state.joined += 1;
            return Plan::Join(waiter, cmd);
        }
        let Some(key) = ReadKey::new(db, view.cmd, cmd.keys()) else {
            state.uncacheable += 1;
            return Plan::Uncacheable(cmd);
        };
        state.misses += 1;
        let keys = key.key_count();
        let id = state
            .flights
            .start(key, now, ttl.unwrap_or(self.settings.ttl));
        Plan::Lead {
            fill: Fill {
                shared: Arc::clone(self),
                id,
                keys,
                done: false,
            },
            bundle: bundle::build(cmd, self.settings.optin),
        }
    }

    /// The server (or a write sent through this cache's clients) changed these keys: their
    /// entries go, and reads of them in flight will not be stored.
    pub(crate) fn invalidate<'a>(&self, keys: impl IntoIterator<Item = &'a [u8]>) {
        let mut state = self.lock();
        for key in keys {
            state.invalidations += 1;
            state.store.invalidate(key);
            state.flights.invalidate(key);
        }
    }

    /// [`invalidate`](Shared::invalidate) again, not counted again: a write's keys, dropped
    /// before it was sent, dropped once more when its reply is handed over (what a read on
    /// another connection stored meanwhile may predate the write).
    pub(crate) fn invalidate_again<'a>(&self, keys: impl IntoIterator<Item = &'a [u8]>) {
        let mut state = self.lock();
        for key in keys {
            state.store.invalidate(key);
            state.flights.invalidate(key);
        }
    }

    /// Everything goes (a nil invalidation, tracking lost, a reconnect), reads in flight
    /// included.
    pub(crate) fn flush(&self) {
        let mut state = self.lock();
        state.flushes += 1;
        state.store.clear();
        state.flights.clear();
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let state = self.lock();
        CacheStats {
            hits: state.hits,
            misses: state.misses,
            joined: state.joined,
            uncacheable: state.uncacheable,
            invalidations: state.invalidations,
            flushes: state.flushes,
            evictions: state.store.evictions,
            expired: state.store.expired,
            oversized: state.store.oversized,
            entries: state.store.len() as u64,
            bytes: state.store.bytes() as u64,
        }
    }
}

impl Fill {
    /// The collected replies of the bundle (or why it failed): stores the read's reply unless
    /// an invalidation or flush reached this read meanwhile, hands it to the waiters, and
    /// returns it.
    ///
    /// # Errors
    /// The bundle's own error (the connection failed, a timeout…); the read's error reply as
    /// [`Error::Server`](crate::Error::Server); [`Error::Protocol`](crate::Error::Protocol) when
    /// the replies do not have the bundle's shape. Nothing is stored then; waiters get the same.
    pub(crate) fn finish(mut self, bundle_reply: Result<Value>) -> Result<Value> {
        self.done = true;
        let split =
            bundle_reply.and_then(|r| bundle::split(r, self.shared.settings.optin, self.keys));
        let (read, keep) = match split {
            Ok(s) => {
                // Copied out of the read buffer before the lock is taken.
                let keep = match (&s.read, s.storable) {
                    (Ok(v), true) => Some((reply::compact(v), s.pttl)),
                    _ => None,
                };
                (s.read, keep)
            }
            Err(e) => (Err(e), None),
        };
        let mut state = self.shared.lock();
        let Some(flight) = state.flights.end(self.id) else {
            return read;
        };
        if let (false, Some((value, pttl))) = (flight.poisoned, keep) {
            let life = pttl.map_or(flight.ttl, |p| p.min(flight.ttl));
            if !life.is_zero() {
                state
                    .store
                    .insert(flight.key, value, flight.start.checked_add(life));
            }
        }
        drop(state);
        for waiter in flight.waiters {
            // A waiter that gave up has closed its slot: nothing to do.
            let _ = waiter.send(read.clone());
        }
        read
    }
}

impl Drop for Fill {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let flight = self.shared.lock().flights.end(self.id);
        // Waiters see their slot closed (`None`) once it drops, outside the lock.
        drop(flight);
    }
}

#[cfg(test)]
mod tests;
