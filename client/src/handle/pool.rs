//! [`Pool`]: a bounded set of clients to check out and give back (tornadis `ClientPool`).

use crate::cache::Shared;
use crate::engine::placement::Placement;
use crate::handle::caching;
use crate::{CacheStats, Client, Cmd, Config, Error, Result, Stats};
use std::future::poll_fn;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// A pool of at most `max_size` clients, each with its own connection.
///
/// Most code never needs one: a single [`Client`] is already shared by every task. A pool is
/// for work that wants to cap the connections a service opens, or to keep one workload off
/// another's connection. A checked-out client is a [`Client`] like any other: the same routing
/// gate applies (commands that set connection state, such as `SELECT`, are refused; configure
/// them with [`Config`] so that every pooled connection has them). It goes back on drop.
///
/// A pool is also a [`Redis`](crate::Redis): code written against that trait sends each call
/// (or pipeline) on a client checked out for it alone ([`Pool::call`], [`Pool::pipeline`]).
///
/// Clients are also replaced with age: one older than [`PoolBuilder::max_lifetime`] is closed
/// instead of being handed out or kept, and one idle for longer than
/// [`PoolBuilder::idle_timeout`] is closed (tornadis `client_timeout` and `autoclose`). Both are
/// off by default. The pool sweeps expired idle clients on every checkout and return, in the
/// background when the next one expires (on the task engine a task of the pool's runtime,
/// elsewhere ringdis's timer thread: no async runtime needed), and on demand with
/// [`Pool::sweep`].
///
/// Its clients go where the pool was built, as a [`Client::new`] there would: on the task
/// engine, tasks of the runtime the pool was built on, working only while it runs; on a ring
/// engine, connections of its one thread, the checkout timeouts and sweeps on ringdis's timer
/// thread.
///
/// ```no_run
/// use ringdis::{cmd, Config, Pool};
/// use std::time::Duration;
///
/// # async fn demo() -> ringdis::Result<()> {
/// let pool = Pool::builder(Config::from_url("redis://127.0.0.1:6379")?)
///     .max_size(8)
///     .checkout_timeout(Some(Duration::from_millis(200)))
///     .max_lifetime(Some(Duration::from_secs(3600)))
///     .idle_timeout(Some(Duration::from_secs(60)))
///     .build();
/// pool.preconnect().await?;
/// let client = pool.get().await?;
/// client.call::<()>(cmd!("SET", "k", "v")).await?;
/// drop(client); // back to the pool
/// // Without waiting: `None` when every client is checked out.
/// if let Some(client) = pool.try_get()? {
///     client.call::<()>(cmd!("INCR", "hits")).await?;
/// }
/// pool.close();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    /// The cache every client of the pool keeps true ([`Config::cache`]).
    cache: Option<Arc<Shared>>,
    /// Where its clients' connections and its timers go, settled when the pool was built
    /// (see [`Client::new`]); or why they cannot go anywhere.
    placement: Result<Placement>,
    max_size: usize,
    checkout_timeout: Option<Duration>,
    health_check: bool,
    max_lifetime: Option<Duration>,
    idle_timeout: Option<Duration>,
    /// Idle clients, the most recently returned last.
    idle: Mutex<Vec<Idle>>,
    /// Every client the pool made and still holds, idle or not, by pool id, so `destroy` can
    /// reach them.
    all: Mutex<Vec<(u64, Client)>>,
    /// The counters of the clients the pool let go, as they were then (their calls in flight
    /// counted as dropped).
    retired: Mutex<Stats>,
    next_id: AtomicU64,
    /// When the background sweep is due, if one is set.
    sweep_at: Mutex<Option<Instant>>,
    permits: Arc<Semaphore>,
    closed: AtomicBool,
}

/// An idle client and its dates.
struct Idle {
    client: Client,
    id: u64,
    born: Instant,
    since: Instant,
}

/// Builds a [`Pool`].
#[derive(Debug, Clone)]
pub struct PoolBuilder {
    config: Config,
    max_size: usize,
    checkout_timeout: Option<Duration>,
    health_check: bool,
    max_lifetime: Option<Duration>,
    idle_timeout: Option<Duration>,
}

impl PoolBuilder {
    /// Most clients at once (default 8).
    pub fn max_size(mut self, n: usize) -> PoolBuilder {
        self.max_size = n.max(1);
        self
    }

    /// How long [`Pool::get`] waits when every client is checked out before it fails with
    /// [`Error::Timeout`] (default 5 s; `None` waits for ever).
    pub fn checkout_timeout(mut self, t: Option<Duration>) -> PoolBuilder {
        self.checkout_timeout = t.map(crate::timer::bounded);
        self
    }

    /// Whether a client is checked for a live connection (reconnecting if needed) before it is
    /// handed out (default on).
    pub fn health_check(mut self, on: bool) -> PoolBuilder {
        self.health_check = on;
        self
    }

    /// The longest a client lives (tornadis `client_timeout`): one older than this, counted
    /// from its creation, is closed and replaced by a new one instead of being handed out, and
    /// closed when given back (default `None`: clients live for ever).
    pub fn max_lifetime(mut self, limit: Option<Duration>) -> PoolBuilder {
        self.max_lifetime = limit.map(crate::timer::bounded);
        self
    }

    /// How long a client may sit idle in the pool before it is closed (tornadis `autoclose`;
    /// default `None`: idle clients stay open). The sweep that closes them runs by itself (see
    /// [`Pool`]) and on demand with [`Pool::sweep`].
    pub fn idle_timeout(mut self, limit: Option<Duration>) -> PoolBuilder {
        self.idle_timeout = limit.map(crate::timer::bounded);
        self
    }

    /// The pool. No connection opens until a checkout or [`Pool::preconnect`].
    pub fn build(self) -> Pool {
        let placement = Placement::here(self.config.engine);
        self.build_at(placement)
    }

    /// The same builder with no [`Config::cache`]: a mock's pool, whose clients cache nothing
    /// (as [`Mock::client_with`](crate::mock::Mock::client_with)'s).
    #[cfg(feature = "mock")]
    pub(crate) fn without_cache(mut self) -> PoolBuilder {
        self.config.cache = None;
        self
    }

    /// The pool, its clients placed by `placement` (or failing with its error).
    pub(crate) fn build_at(mut self, placement: Result<Placement>) -> Pool {
        if let (Ok(at), Some(_), None) = (&placement, &self.config.sentinel, &self.config.source) {
            // One sentinel watcher for every client of the pool (a client makes its own only
            // if this fails, and then fails the same way).
            if let Ok(watcher) = crate::handle::sentinel::Watcher::new(&self.config, at) {
                self.config.source = Some(watcher);
            }
        }
        Pool {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(self.max_size)),
                placement,
                cache: self.config.cache.clone().map(Shared::new),
                config: self.config,
                max_size: self.max_size,
                checkout_timeout: self.checkout_timeout,
                health_check: self.health_check,
                max_lifetime: self.max_lifetime,
                idle_timeout: self.idle_timeout,
                idle: Mutex::default(),
                all: Mutex::default(),
                retired: Mutex::default(),
                next_id: AtomicU64::new(0),
                sweep_at: Mutex::new(None),
                closed: AtomicBool::new(false),
            }),
        }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("max_size", &self.inner.max_size)
            .field("idle", &self.idle_count())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool with default settings and at most `max_size` clients.
    pub fn new(config: Config, max_size: usize) -> Pool {
        Pool::builder(config).max_size(max_size).build()
    }

    /// A builder.
    pub fn builder(config: Config) -> PoolBuilder {
        PoolBuilder {
            config,
            max_size: 8,
            checkout_timeout: Some(Duration::from_secs(5)),
            health_check: true,
            max_lifetime: None,
            idle_timeout: None,
        }
    }

    /// Checks a client out: an idle one, a new one while below `max_size`, or the next one given
    /// back, waiting at most the checkout timeout.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when no client was given back within the checkout timeout;
    /// [`Error::Client`] when the pool is closed; with the health check on, the error of
    /// connecting the client ([`Error::Connection`] when it does not connect within the
    /// configured connect timeout).
    pub async fn get(&self) -> Result<Pooled> {
        if self.is_closed() {
            return Err(closed());
        }
        let permit = self.acquire().await?;
        let pooled = self.inner.check_out(permit)?;
        if self.inner.health_check && !pooled.is_connected() {
            // On failure the client goes back idle (it reconnects later) and the permit is freed.
            pooled.connect().await?;
        }
        Ok(pooled)
    }

    /// Checks a client out without waiting (tornadis `get_client_nowait`): an idle one, or a
    /// new one while below `max_size`; `Ok(None)` when every client is checked out.
    ///
    /// Unlike [`Pool::get`] it does not wait for the health check either: a client whose
    /// connection is down (or a new one) connects on its first call with autoconnect, or on
    /// [`Client::connect`] without it.
    ///
    /// # Errors
    ///
    /// [`Error::Client`] when the pool is closed (or a new client cannot be made).
    pub fn try_get(&self) -> Result<Option<Pooled>> {
        if self.is_closed() {
            return Err(closed());
        }
        let permit = match self.inner.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(TryAcquireError::NoPermits) => return Ok(None),
            Err(TryAcquireError::Closed) => return Err(closed()),
        };
        self.inner.check_out(permit).map(Some)
    }

    /// Sends a command (or a [`Pipeline`](crate::Pipeline)) on a client checked out for this
    /// call alone, given back once the reply came, and decodes the reply into `T`: what
    /// [`Redis`](crate::Redis) code does with a pool. To send several commands on one
    /// connection, check a client out with [`Pool::get`] or send a pipeline.
    ///
    /// The request passes the routing gate at once; the checkout happens when the call is
    /// first polled. Dropping the call abandons it, the checkout included.
    ///
    /// # Errors
    ///
    /// Those of [`Pool::get`] (the checkout timeout, a closed pool, a connection that cannot
    /// be made), then those of [`Client::call`].
    pub fn call<T: crate::FromRedis>(&self, request: impl crate::Callable) -> crate::Call<T> {
        let written = match &self.inner.cache {
            Some(cache) => caching::invalidate_writes(cache, request.cmds()),
            None => None,
        };
        let prepared = match request.prepare() {
            Ok(p) => p,
            Err(e) => return crate::Call::failed(e),
        };
        let pool = self.clone();
        crate::Call::later(async move {
            let reply = match pool.get().await {
                Ok(client) => client.call_prepared::<crate::Value>(prepared).await,
                Err(e) => Err(e),
            };
            // Dropped from the cache again before the reply is handed over (see `Client::call`).
            if let Some(written) = written {
                written.replied();
            }
            reply
        })
    }

    /// A cached read ([`Redis::call_cached`](crate::Redis::call_cached)): answered from the
    /// cache the pool's clients share when it holds the reply (no client checked out), else
    /// read through a client checked out for it (when first polled, as [`Pool::call`]).
    pub(crate) fn call_cached<T: crate::FromRedis>(
        &self,
        cmd: Cmd,
        ttl: Option<Duration>,
    ) -> crate::Call<T> {
        let Some(cache) = &self.inner.cache else {
            return self.call(cmd);
        };
        if let Some(value) = caching::hit(cache, self.inner.config.db, &cmd) {
            return crate::Call::ready(Ok(value));
        }
        let pool = self.clone();
        crate::Call::later(async move {
            let client = pool.get().await?;
            client.call_cached::<crate::Value>(cmd, ttl).await
        })
    }

    /// The counters of the cache the pool's clients share ([`Config::cache`]); `None`
    /// without one.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.inner.cache.as_ref().map(|c| c.stats())
    }

    /// Closes every idle client past its idle timeout or lifetime now, and returns how many it
    /// closed. The pool also does this by itself (see [`Pool`]); this is for callers that want it
    /// at a moment of their choosing.
    pub fn sweep(&self) -> usize {
        self.inner.sweep(Instant::now())
    }

    async fn acquire(&self) -> Result<OwnedSemaphorePermit> {
        let mut acquire = Box::pin(self.inner.permits.clone().acquire_owned());
        let mut timer = self
            .inner
            .checkout_timeout
            .map(|t| self.inner.sleep_until(Instant::now() + t));
        poll_fn(|cx| {
            if let Poll::Ready(p) = acquire.as_mut().poll(cx) {
                return Poll::Ready(p.map_err(|_| closed()));
            }
            match timer.as_mut().map(|t| Pin::new(t).poll(cx)) {
                Some(Poll::Ready(_)) => Poll::Ready(Err(Error::Timeout)),
                _ => Poll::Pending,
            }
        })
        .await
    }

    /// Opens every connection now (up to `max_size`), so the first checkouts are fast.
    pub async fn preconnect(&self) -> Result<()> {
        let mut held = Vec::with_capacity(self.inner.max_size);
        for _ in 0..self.inner.max_size {
            let c = self.get().await?;
            c.connect().await?;
            held.push(c);
        }
        Ok(())
    }

    /// Pings every idle client and closes those that do not answer; returns how many are left.
    ///
    /// The clients stay in the pool while they are pinged (a checkout meanwhile may take one),
    /// so the pool never holds more than `max_size` clients.
    pub async fn health_check(&self) -> usize {
        let idle: Vec<(u64, Client)> = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|c| (c.id, c.client.clone()))
            .collect();
        let mut dead = Vec::new();
        for (id, client) in idle {
            if client.call::<()>(crate::cmd!("PING")).await.is_err() {
                dead.push(id);
            }
        }
        // Only those still idle: one checked out meanwhile is its holder's now.
        let (closed, left): (Vec<Idle>, usize) = {
            let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
            let (closed, kept) = std::mem::take(&mut *idle)
                .into_iter()
                .partition(|c| dead.contains(&c.id));
            *idle = kept;
            (closed, idle.len())
        };
        let ids: Vec<u64> = closed.iter().map(|c| c.id).collect();
        drop(closed);
        self.inner.forget(&ids);
        left
    }

    /// No more checkouts; idle clients are dropped now, checked-out ones when given back.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.permits.close();
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        drop(self.inner.take_all());
    }

    /// [`Pool::close`], and every connection is closed at once, checked out or not: their calls
    /// in flight fail with [`Error::Connection`].
    pub async fn destroy(&self) {
        // Their counts are kept as they are now: what the disconnects do is not counted.
        let all = self.inner.take_all();
        self.close();
        for (_, c) in &all {
            c.disconnect().await;
        }
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Idle clients right now.
    pub fn idle_count(&self) -> usize {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// The counters of every connection this pool made (see [`Stats`]): the sum over the
    /// clients it holds now, idle or checked out, and, for each client it let go (expired,
    /// closed, or dropped with [`Pool::close`]), its counts as they were when the pool let go,
    /// so that every counter but `in_flight` only goes up over the pool's life. What a client
    /// let go does afterwards is not counted: its calls still in flight then count as
    /// `dropped`.
    pub fn stats(&self) -> Stats {
        // Both read under the lock of `all`, under which a client leaves it and its counts go
        // to `retired`: a client is never counted twice, or missed.
        let all = self.inner.all.lock().unwrap_or_else(|p| p.into_inner());
        let held: Stats = all.iter().map(|(_, c)| c.stats()).sum();
        let retired = *self.inner.retired.lock().unwrap_or_else(|p| p.into_inner());
        drop(all);
        held + retired
    }

    /// Clients that can still be checked out without waiting.
    pub fn available(&self) -> usize {
        self.inner.permits.available_permits()
    }
}

fn closed() -> Error {
    Error::client("the pool is closed")
}

impl Inner {
    /// True when a client born at `born` and idle since `since` must be closed at `now`.
    fn expired(&self, born: Instant, since: Instant, now: Instant) -> bool {
        self.max_lifetime.is_some_and(|l| now >= born + l)
            || self.idle_timeout.is_some_and(|t| now >= since + t)
    }

    /// When an idle client expires, if ever.
    fn expiry(&self, c: &Idle) -> Option<Instant> {
        let by_age = self.max_lifetime.map(|l| c.born + l);
        let by_idleness = self.idle_timeout.map(|t| c.since + t);
        match (by_age, by_idleness) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// An idle client that is still young enough, or a new one, for the holder of `permit`.
    fn check_out(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Result<Pooled> {
        let now = Instant::now();
        self.sweep(now);
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let (client, id, born) = match idle {
            Some(c) => (c.client, c.id, c.born),
            None => {
                let c = Client::build_cached(
                    self.config.clone(),
                    self.placement.as_ref().map_err(Clone::clone)?,
                    self.cache.clone(),
                )?;
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                self.all
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((id, c.clone()));
                (c, id, now)
            }
        };
        Ok(Pooled {
            client: Some(client),
            id,
            born,
            pool: self.clone(),
            _permit: permit,
        })
    }

    /// Drops the pool's hold on these clients; each closes when its last handle goes.
    fn forget(&self, ids: &[u64]) {
        if ids.is_empty() {
            return;
        }
        let gone: Vec<(u64, Client)> = {
            let mut all = self.all.lock().unwrap_or_else(|p| p.into_inner());
            let (gone, kept) = std::mem::take(&mut *all)
                .into_iter()
                .partition(|(id, _)| ids.contains(id));
            *all = kept;
            // Under the lock of `all`, as `Pool::stats` reads.
            self.retire(&gone);
            gone
        };
        // Dropped here, outside the lock.
        drop(gone);
    }

    /// Takes every client out of the pool, their counts kept (under the lock of `all`, as
    /// `Pool::stats` reads).
    fn take_all(&self) -> Vec<(u64, Client)> {
        let mut all = self.all.lock().unwrap_or_else(|p| p.into_inner());
        let taken = std::mem::take(&mut *all);
        self.retire(&taken);
        taken
    }

    /// Keeps the counts of clients the pool lets go. Only under the lock of `all`.
    fn retire(&self, gone: &[(u64, Client)]) {
        if gone.is_empty() {
            return;
        }
        let mut counts: Stats = gone.iter().map(|(_, c)| c.stats()).sum();
        counts.dropped += std::mem::take(&mut counts.in_flight);
        *self.retired.lock().unwrap_or_else(|p| p.into_inner()) += counts;
    }

    /// Closes the expired idle clients, sets the background sweep for the next expiry, and
    /// returns how many it closed.
    fn sweep(self: &Arc<Self>, now: Instant) -> usize {
        if self.max_lifetime.is_none() && self.idle_timeout.is_none() {
            return 0;
        }
        let (expired, next): (Vec<Idle>, Option<Instant>) = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let (expired, kept): (Vec<Idle>, Vec<Idle>) = std::mem::take(&mut *idle)
                .into_iter()
                .partition(|c| self.expired(c.born, c.since, now));
            *idle = kept;
            (expired, idle.iter().filter_map(|c| self.expiry(c)).min())
        };
        let ids: Vec<u64> = expired.iter().map(|c| c.id).collect();
        drop(expired);
        self.forget(&ids);
        if let Some(at) = next {
            self.sweep_by(at);
        }
        ids.len()
    }

    /// Makes sure a background sweep runs at `at` at the latest.
    fn sweep_by(self: &Arc<Self>, at: Instant) {
        {
            let mut due = self.sweep_at.lock().unwrap_or_else(|p| p.into_inner());
            if due.is_some_and(|d| d <= at) {
                return;
            }
            *due = Some(at);
        }
        // Held weakly: a dropped pool's sweep is dropped unrun (and does not keep the timer
        // thread alive).
        let job = move |pool: Arc<Inner>| {
            {
                let mut due = pool.sweep_at.lock().unwrap_or_else(|p| p.into_inner());
                if *due == Some(at) {
                    *due = None;
                }
            }
            if !pool.closed.load(Ordering::Acquire) {
                pool.sweep(Instant::now());
            }
        };
        match &self.placement {
            Ok(placement) => placement.call_at(at, self, job),
            Err(_) => crate::timer::call_at(at, self, job),
        }
    }

    /// A sleep until `at` where the pool's timers run (see [`Placement::sleep_until`]).
    fn sleep_until(&self, at: Instant) -> crate::engine::placement::Sleep {
        match &self.placement {
            Ok(placement) => placement.sleep_until(at),
            Err(_) => Placement::Epoll.sleep_until(at),
        }
    }

    /// Takes back a client that was checked out.
    fn give_back(self: &Arc<Self>, client: Client, id: u64, born: Instant) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        if self.max_lifetime.is_some_and(|l| now >= born + l) {
            drop(client);
            self.forget(&[id]);
            return;
        }
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Idle {
                client,
                id,
                born,
                since: now,
            });
        self.sweep(now);
    }
}

/// A client checked out of a [`Pool`]; goes back when dropped (or is closed, when it is past
/// the pool's [`max_lifetime`](PoolBuilder::max_lifetime)).
pub struct Pooled {
    client: Option<Client>,
    id: u64,
    born: Instant,
    pool: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for Pooled {
    type Target = Client;
    fn deref(&self) -> &Client {
        // Only `Drop` takes it out.
        self.client
            .as_ref()
            .unwrap_or_else(|| unreachable!("a pooled client is present until dropped"))
    }
}

impl std::fmt::Debug for Pooled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pooled")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            self.pool.give_back(c, self.id, self.born);
        }
    }
}
