//! [`Cache`]: the settings of client-side caching, and [`CacheStats`]: its counters.

use std::time::Duration;

/// Client-side caching, for [`Config::cache`](crate::Config::cache): replies of read-only
/// commands kept in memory and dropped when the server says their keys changed (Redis's
/// server-assisted client-side caching, `CLIENT TRACKING`; see
/// <https://redis.io/docs/latest/develop/reference/client-side-caching/>).
///
/// Defaults: a budget of 64 MiB, entries kept at most 60 s (less if the key expires sooner),
/// the server's default tracking mode (every read of the connection is tracked).
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

    /// The most bytes the entries may take (keys, commands and replies, counted as stored),
    /// default 64 MiB; past it the least recently used entries are evicted.
    pub fn max_bytes(mut self, bytes: usize) -> Cache {
        self.max_bytes = bytes;
        self
    }

    /// The longest an entry is kept (default 60 s); a key that expires sooner ends its entries
    /// then. `cached_for(ttl)` sets it per call.
    pub fn ttl(mut self, ttl: Duration) -> Cache {
        self.ttl = ttl;
        self
    }

    /// `OPTIN` tracking: only cached reads are tracked (each sent right after
    /// `CLIENT CACHING YES`, in the same write), so plain reads cost the server nothing.
    pub fn optin(mut self) -> Cache {
        self.optin = true;
        self
    }

    /// `BCAST` tracking: the server invalidates every key under these prefixes, read or not;
    /// reads of keys outside every prefix are not cached.
    pub fn bcast<P: AsRef<[u8]>>(mut self, prefixes: impl IntoIterator<Item = P>) -> Cache {
        self.bcast = Some(prefixes.into_iter().map(|p| p.as_ref().to_vec()).collect());
        self
    }

    /// The `CLIENT TRACKING ON …` a caching connection's handshake sends: `OPTIN`, or `BCAST`
    /// with a `PREFIX` per prefix, or nothing more (the server's default mode). Never `NOLOOP`:
    /// a write this connection sends that the client could not see the keys of (a script's)
    /// must invalidate too.
    pub(crate) fn tracking_cmd(&self) -> crate::Cmd {
        let mut cmd = crate::Cmd::new("CLIENT TRACKING ON");
        if let Some(prefixes) = &self.bcast {
            cmd.push_arg("BCAST");
            for p in prefixes {
                cmd.push_arg("PREFIX").push_arg(p.as_slice());
            }
        } else if self.optin {
            cmd.push_arg("OPTIN");
        }
        cmd
    }
}

/// The counters of a client's cache (`cache_stats()`), from its creation on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Cached reads answered from memory.
    pub hits: u64,
    /// Cached reads sent to the server.
    pub misses: u64,
    /// Cached reads that waited for the same read already in flight.
    pub joined: u64,
    /// Cached reads sent uncached (no keys, or a key outside the `BCAST` prefixes).
    pub uncacheable: u64,
    /// Keys invalidated (by the server, or by a write sent through the client).
    pub invalidations: u64,
    /// Times everything was dropped (a nil invalidation, tracking lost, a reconnect).
    pub flushes: u64,
    /// Entries evicted to stay within the byte budget.
    pub evictions: u64,
    /// Entries found expired.
    pub expired: u64,
    /// Entries held now.
    pub entries: u64,
    /// Bytes the entries take now, as counted against the budget.
    pub bytes: u64,
}
