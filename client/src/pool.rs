//! [`Pool`]: a bounded set of clients to check out and give back (tornadis `ClientPool`).

use crate::{Client, Config, Error, Result};
use std::future::poll_fn;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A pool of at most `max_size` clients, each with its own connection.
///
/// Most code never needs one: a single [`Client`] is already shared by every task. A pool is
/// for work that wants to cap the connections a service opens, or to keep one workload off
/// another's connection. A checked-out client is a [`Client`] like any other: the same routing
/// gate applies (commands that set connection state, such as `SELECT`, are refused; configure
/// them with [`Config`] so that every pooled connection has them). It goes back on drop.
///
/// ```no_run
/// use ringdis::{cmd, Config, Pool};
/// use std::time::Duration;
///
/// # async fn demo() -> ringdis::Result<()> {
/// let pool = Pool::builder(Config::from_url("redis://127.0.0.1:6379")?)
///     .max_size(8)
///     .checkout_timeout(Some(Duration::from_millis(200)))
///     .build();
/// pool.preconnect().await?;
/// let client = pool.get().await?;
/// client.call::<()>(cmd!("SET", "k", "v")).await?;
/// drop(client); // back to the pool
/// pool.close();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    max_size: usize,
    checkout_timeout: Option<Duration>,
    health_check: bool,
    idle: Mutex<Vec<Client>>,
    /// Every client the pool made, idle or not, so `destroy` can reach them.
    all: Mutex<Vec<Client>>,
    permits: Arc<Semaphore>,
    closed: AtomicBool,
}

/// Builds a [`Pool`].
#[derive(Debug, Clone)]
pub struct PoolBuilder {
    config: Config,
    max_size: usize,
    checkout_timeout: Option<Duration>,
    health_check: bool,
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
        self.checkout_timeout = t;
        self
    }

    /// Whether a client is checked for a live connection (reconnecting if needed) before it is
    /// handed out (default on).
    pub fn health_check(mut self, on: bool) -> PoolBuilder {
        self.health_check = on;
        self
    }

    /// The pool. No connection opens until a checkout or [`Pool::preconnect`].
    pub fn build(self) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(self.max_size)),
                config: self.config,
                max_size: self.max_size,
                checkout_timeout: self.checkout_timeout,
                health_check: self.health_check,
                idle: Mutex::default(),
                all: Mutex::default(),
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
        }
    }

    /// Checks a client out: an idle one, a new one while below `max_size`, or the next one given
    /// back, waiting at most the checkout timeout ([`Error::Timeout`]).
    pub async fn get(&self) -> Result<Pooled> {
        if self.is_closed() {
            return Err(closed());
        }
        let permit = self.acquire().await?;
        let idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        let client = match idle {
            Some(c) => c,
            None => {
                let c = Client::new(self.inner.config.clone())?;
                self.inner
                    .all
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(c.clone());
                c
            }
        };
        if self.inner.health_check && !client.is_connected() {
            client.connect().await?;
        }
        Ok(Pooled {
            client: Some(client),
            pool: self.inner.clone(),
            _permit: permit,
        })
    }

    async fn acquire(&self) -> Result<OwnedSemaphorePermit> {
        let mut acquire = Box::pin(self.inner.permits.clone().acquire_owned());
        let mut timer = self
            .inner
            .checkout_timeout
            .map(|t| crate::timer::sleep_until(Instant::now() + t));
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

    /// Pings every idle client and drops those that do not answer; returns how many are left.
    pub async fn health_check(&self) -> usize {
        let idle: Vec<Client> =
            std::mem::take(&mut *self.inner.idle.lock().unwrap_or_else(|p| p.into_inner()));
        let mut alive = Vec::with_capacity(idle.len());
        for c in idle {
            if c.call::<()>(crate::cmd!("PING")).await.is_ok() {
                alive.push(c);
            }
        }
        let n = alive.len();
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(alive);
        n
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
        self.inner
            .all
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// [`Pool::close`], and every connection is closed at once, checked out or not: their calls
    /// in flight fail with [`Error::Connection`].
    pub async fn destroy(&self) {
        let all: Vec<Client> =
            std::mem::take(&mut *self.inner.all.lock().unwrap_or_else(|p| p.into_inner()));
        self.close();
        for c in all {
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

    /// Clients that can still be checked out without waiting.
    pub fn available(&self) -> usize {
        self.inner.permits.available_permits()
    }
}

fn closed() -> Error {
    Error::client("the pool is closed")
}

/// A client checked out of a [`Pool`]; goes back when dropped.
pub struct Pooled {
    client: Option<Client>,
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
            if !self.pool.closed.load(Ordering::Acquire) {
                self.pool
                    .idle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(c);
            }
        }
    }
}
