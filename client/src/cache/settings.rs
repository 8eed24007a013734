//! [`Cache`]: the settings of client-side caching, and [`CacheStats`]: its counters.

use crate::Cmd;
use std::time::Duration;

/// Client-side caching, for [`Config::cache`](crate::Config::cache): replies of read-only
/// commands kept in memory and dropped when the server says their keys changed (Redis's
/// server-assisted client-side caching, `CLIENT TRACKING`; see
/// <https://redis.io/docs/latest/develop/reference/client-side-caching/>).
///
/// Defaults: a budget of 64 MiB, entries kept at most 60 s (less if the key expires sooner),
/// the server's default tracking mode (every read of the connection is tracked).
///
/// What is cached: the reply of a cached read (`.cached()` / `.cached_for(ttl)` on a read-only
/// command with keys), keyed by the database and the exact command with its arguments, so
/// `GET k` and `HGET k f` are two entries, both dropped when `k` changes. An entry lives until
/// one of its keys is invalidated (by the server's push, or at once by a write sent through the
/// same client; invalidations name keys, not databases, so every database's entries of the key
/// go), everything is flushed (a `FLUSHALL`/`FLUSHDB`, a connection lost or reconnected), its
/// lifetime ends (the smaller of the TTL and its keys' own `PTTL`, read in the same round trip),
/// or the byte budget evicts it (least recently used first). A read whose key changed while it
/// was in flight is answered but not stored. Concurrent cached reads of one command share one
/// round trip.
///
/// A write through the client (its keys marked, as the generated methods do; a script,
/// `EVAL`/`EVALSHA`/`FCALL`, counts as a write of the keys it declares) drops its keys
/// when it is sent and again when its reply comes, so a read made after the reply never gets
/// what the write replaced, even through another connection of the same pool or spread.
/// `FLUSHALL`, `FLUSHDB` and `SWAPDB` sent through it flush everything the same way. Servers
/// send no invalidation for a `SWAPDB`: one sent by another client is not seen, and the
/// swapped databases' entries live until their TTL (keep the TTL short if you swap databases).
///
/// ```
/// use ringdis::Cache;
/// use std::time::Duration;
/// let cache = Cache::new().max_bytes(16 << 20).ttl(Duration::from_secs(10)).optin();
/// # let _ = cache;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cache {
    pub(crate) max_bytes: usize,
    pub(crate) ttl: Duration,
    pub(crate) optin: bool,
    pub(crate) bcast: Option<Vec<Vec<u8>>>,
}

impl Default for Cache {
    fn default() -> Cache {
        Cache {
            max_bytes: 64 << 20,
            ttl: Duration::from_secs(60),
            optin: false,
            bcast: None,
        }
    }
}

impl Cache {
    /// The defaults.
    pub fn new() -> Cache {
        Cache::default()
    }

    /// The most bytes the entries may take, default 64 MiB; past it the least recently used
    /// entries are evicted, and a reply bigger than the whole budget is not stored (counted in
    /// [`CacheStats::oversized`]). An entry
    /// counts its command's encoded bytes, its keys' bytes, its reply (the bulk and text bytes
    /// plus one `Value` per element) and a fixed overhead (about 150 bytes, plus about 64 per
    /// key) for its place in the tables. Replies are copied out of the connection's read
    /// buffer when stored, so the count is what they hold.
    pub fn max_bytes(mut self, bytes: usize) -> Cache {
        self.max_bytes = bytes;
        self
    }

    /// The longest an entry is kept (default 60 s); a key that expires sooner ends its entries
    /// then (its `PTTL`, counted from before the read was sent, so never later than the key).
    /// `cached_for(ttl)` sets it per call. Zero: nothing is stored (concurrent reads still
    /// share a round trip).
    pub fn ttl(mut self, ttl: Duration) -> Cache {
        self.ttl = ttl;
        self
    }

    /// `OPTIN` tracking: only cached reads are tracked (each sent right after
    /// `CLIENT CACHING YES`, in the same write), so plain reads cost the server nothing.
    /// Excludes [`bcast`](Cache::bcast): the last one called wins.
    pub fn optin(mut self) -> Cache {
        self.optin = true;
        self.bcast = None;
        self
    }

    /// `BCAST` tracking: the server invalidates every key under these prefixes, read or not;
    /// reads of keys outside every prefix are not cached (they are sent as usual). No prefix
    /// at all: every key. Excludes [`optin`](Cache::optin): the last one called wins.
    ///
    /// No prefix may begin another (`"user:"` and `"user:1"`, or one given twice), as the
    /// server requires: [`Client::new`](crate::Client::new) refuses such a cache with
    /// [`Error::Client`](crate::Error::Client) naming both.
    pub fn bcast<P: AsRef<[u8]>>(mut self, prefixes: impl IntoIterator<Item = P>) -> Cache {
        self.optin = false;
        self.bcast = Some(prefixes.into_iter().map(|p| p.as_ref().to_vec()).collect());
        self
    }

    /// The command that turns tracking on, for the handshake of every (re)connect:
    /// `CLIENT TRACKING ON`, `+ OPTIN`, or `+ BCAST [PREFIX p]…`.
    pub(crate) fn tracking_cmd(&self) -> Cmd {
        let mut cmd = Cmd::new("CLIENT TRACKING").arg("ON");
        if self.optin {
            cmd.push_arg("OPTIN");
        } else if let Some(prefixes) = &self.bcast {
            cmd.push_arg("BCAST");
            for p in prefixes {
                cmd.push_arg("PREFIX").push_arg(&p[..]);
            }
        }
        cmd
    }

    /// Two `BCAST` prefixes one of which begins the other (the same twice included): the
    /// server refuses such a `CLIENT TRACKING` (`ERR Prefix … overlaps …`).
    pub(crate) fn overlapping_prefixes(&self) -> Option<(&[u8], &[u8])> {
        let ps = self.bcast.as_deref()?;
        ps.iter().enumerate().find_map(|(i, a)| {
            ps[i + 1..]
                .iter()
                .find(|b| a.starts_with(b) || b.starts_with(a))
                .map(|b| (&a[..], &b[..]))
        })
    }

    /// Whether a read of these keys may be cached: in `BCAST` mode, only when each is under a
    /// prefix (no prefix: every key). Otherwise the keys are not even looked at.
    pub(crate) fn covers<'a>(&self, mut keys: impl Iterator<Item = &'a [u8]>) -> bool {
        match &self.bcast {
            Some(ps) if !ps.is_empty() => keys.all(|k| ps.iter().any(|p| k.starts_with(p))),
            _ => true,
        }
    }
}

/// The counters of a client's cache (`cache_stats()`), from its creation on. A `Pool`, a
/// `Spread` or a `ClusterClient` has one cache for all its connections, so one set of counters.
///
/// Every cached read counts once as exactly one of `hits`, `misses`, `joined` or
/// `uncacheable` (a waiter whose leading read was given up plans again, and counts again).
/// `entries` and `bytes` are gauges (now); the rest only grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Cached reads answered from memory.
    pub hits: u64,
    /// Cached reads sent to the server (including those that found their entry expired).
    pub misses: u64,
    /// Cached reads that waited for the same read already in flight.
    pub joined: u64,
    /// Cached reads sent uncached (no keys, or a key outside the `BCAST` prefixes).
    pub uncacheable: u64,
    /// Keys invalidated (by the server, or by a write sent through the client): every key
    /// named counts, whether or not an entry read it.
    pub invalidations: u64,
    /// Times everything was dropped (a nil invalidation, tracking lost, a reconnect).
    pub flushes: u64,
    /// Entries evicted to stay within the byte budget.
    pub evictions: u64,
    /// Entries found past their lifetime by a cached read (and removed; the read is a miss).
    pub expired: u64,
    /// Replies not stored because their entry alone is bigger than the whole budget
    /// ([`Cache::max_bytes`]): such a read is a miss every time. Raise the budget, or read
    /// the value uncached.
    pub oversized: u64,
    /// Entries held now.
    pub entries: u64,
    /// Bytes the entries take now, as counted against the budget ([`Cache::max_bytes`]).
    pub bytes: u64,
}
