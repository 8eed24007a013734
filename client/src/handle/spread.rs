//! [`Spread`]: one handle over several multiplexed connections, calls spread round robin.

use crate::cache::Shared;
use crate::{CacheStats, Call, Callable, Client, Config, FromRedis, Result, Stats};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Several multiplexed connections used as one client: each call goes to the next connection,
/// round robin.
///
/// One [`Client`] already serves any number of tasks over one connection; a `Spread` helps when
/// one connection is the limit (the server's per-connection work, one socket's throughput). Its
/// connections go to one engine, as a [`Client::new`] there would: on a ring engine they share
/// its one thread, on the task engine they are tasks of the runtime it was made on. Each
/// connection keeps the [`Client`] guarantees (replies matched in order, reconnects, timeouts).
/// What one connection gives and a `Spread` does not: two calls sent without awaiting the first
/// may run in either order, since they may go out on different connections — send commands whose
/// order matters as a [`Pipeline`](crate::Pipeline) or transaction, which always stays on one
/// connection.
///
/// ```no_run
/// use ringdis::{cmd, Config, Spread};
///
/// # async fn demo() -> ringdis::Result<()> {
/// let spread = Spread::new(Config::from_url("redis://127.0.0.1:6379")?, 4)?;
/// let n: i64 = spread.call(cmd!("INCR", "hits")).await?;
/// // Any client API on the next connection:
/// let mut p = spread.client().pipeline();
/// p.add(cmd!("GET", "hits")).add(cmd!("INCR", "hits"));
/// let (_, _): (i64, i64) = p.query().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Spread {
    clients: Arc<[Client]>,
    next: Arc<AtomicUsize>,
}

impl Spread {
    /// `connections` clients with the same configuration (at least one). With
    /// [`Config::cache`] they share one cache: a read cached through any connection is a hit
    /// on all of them, and a write through any drops its keys for all.
    ///
    /// # Errors
    ///
    /// As [`Client::new`].
    pub fn new(config: Config, connections: usize) -> Result<Spread> {
        let cache = config.cache.clone().map(Shared::new);
        let clients = if config.sentinel.is_some() {
            // One sentinel watcher for them all: the first client's, in the configuration it
            // made, which the others are made from.
            let first = Client::new_cached(config, cache.clone())?;
            let shared = first.config().clone();
            let mut clients = vec![first.clone()];
            for _ in 1..connections.max(1) {
                clients.push(first.sibling_cached(shared.clone(), cache.clone())?);
            }
            clients
        } else {
            (0..connections.max(1))
                .map(|_| Client::new_cached(config.clone(), cache.clone()))
                .collect::<Result<Vec<_>>>()?
        };
        Ok(Spread {
            clients: clients.into(),
            next: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The client whose turn it is.
    pub fn client(&self) -> &Client {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
        &self.clients[i]
    }

    /// Every connection's client.
    pub fn clients(&self) -> &[Client] {
        &self.clients
    }

    /// [`Client::call`] on the next connection.
    pub fn call<T: FromRedis>(&self, request: impl Callable) -> Call<T> {
        self.client().call(request)
    }

    /// Connects every connection; `Ok(true)` when all are ready.
    pub async fn connect(&self) -> Result<bool> {
        for c in self.clients.iter() {
            c.connect().await?;
        }
        Ok(true)
    }

    /// Closes every connection (calls in flight fail with a connection error).
    pub async fn disconnect(&self) {
        for c in self.clients.iter() {
            c.disconnect().await;
        }
    }

    /// The sum of its clients' counters (see [`Client::stats`]).
    pub fn stats(&self) -> Stats {
        self.clients.iter().map(Client::stats).sum()
    }

    /// The counters of the cache its connections share ([`Config::cache`]); `None` without
    /// one.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.clients[0].cache_stats()
    }

    /// True while every connection is up.
    pub fn is_connected(&self) -> bool {
        self.clients.iter().all(Client::is_connected)
    }
}
