//! [`Redis`]: the seam user code takes, so that it runs on a [`Client`], a [`Pool`], a
//! [`Spread`], a checked-out [`Pooled`] client or (with the `mock` feature) a scripted mock.

use crate::{Call, Callable, Client, FromRedis, Pipeline, Pool, Pooled, Spread};

/// Anything commands can be sent through: what user code takes (`db: &impl Redis`) to work the
/// same on a [`Client`], a [`Pool`], a [`Spread`], a [`Pooled`] client, and in unit tests on a
/// scripted mock (`ringdis::mock`, with the `mock` feature).
///
/// Every generated command method of [`Commands`](crate::Commands) works on `&impl Redis`, and
/// awaiting one gives the same typed reply as on a `Client`; so do [`call`](Redis::call) (a
/// [`cmd!`](crate::cmd!) or a pipeline), [`pipeline`](Redis::pipeline) and
/// [`transaction`](Redis::transaction). Import [`Commands`](crate::Commands) (or the prelude)
/// for the typed methods.
///
/// Where each call runs: on a `Client` (and a mock, which is one) its connection; on a `Pool`
/// a client checked out for that call (or pipeline) alone and given back once its reply came,
/// waiting at most the pool's checkout timeout ([`Error::Timeout`](crate::Error::Timeout)); on
/// a `Spread` the next connection. A pipeline or transaction always runs on one connection.
///
/// ```no_run
/// use ringdis::{cmd, Client, Commands, Config, Pool, Redis};
///
/// async fn visit(db: &impl Redis, page: &str) -> ringdis::Result<i64> {
///     let n = db.incr(format!("visits:{page}")).await?;        // i64
///     db.set("last-page", page).ex(3600).await?;
///     let last: Option<String> = db.get("last-page").decode().await?;
///     let (a, b): (i64, i64) = db.pipeline().incr("a").incr("b").query().await?;
///     let size: i64 = db.call(cmd!("DBSIZE")).await?;
///     Ok(n)
/// }
///
/// # async fn demo() -> ringdis::Result<()> {
/// let client = Client::open("redis://127.0.0.1:6379")?;
/// visit(&client, "home").await?;
/// let pool = Pool::new(Config::from_url("redis://127.0.0.1:6379")?, 8);
/// visit(&pool, "home").await?;
/// # Ok(()) }
/// ```
///
/// It is not object safe (its methods are generic, as the typed ones are): take `&impl Redis`
/// or a type parameter, not `&dyn Redis`. Generic code sees only the command methods; on a
/// `Pool` named as such, `pool.get()` is the checkout ([`Pool::get`]) and the `GET` command is
/// `Commands::get(&pool, key)`.
///
/// In unit tests, pass a mock client: see `ringdis::mock` (the `mock` feature).
pub trait Redis: Send + Sync {
    /// Sends a command (or a [`Pipeline`]) and decodes its reply into `T`: [`Client::call`].
    ///
    /// # Errors
    ///
    /// As [`Client::call`]; on a [`Pool`] also those of [`Pool::get`] (the checkout timeout, a
    /// closed pool, a connection that cannot be made).
    fn call<T: FromRedis>(&self, request: impl Callable) -> Call<T>;

    /// An empty pipeline: [`Client::pipeline`]. Its commands go out together, on one
    /// connection.
    fn pipeline(&self) -> Pipeline;

    /// An empty transaction (`MULTI` … `EXEC`): [`Client::transaction`].
    fn transaction(&self) -> Pipeline;

    /// A cached read (`.cached()` on a builder): served from the client's cache
    /// ([`Config::cache`](crate::Config::cache)) when it holds the reply, else sent and kept.
    /// `ttl` is the call's own limit on the entry's lifetime (`cached_for`). Without a cache
    /// (and by default, for other implementations) the command is sent as by
    /// [`call`](Redis::call).
    #[doc(hidden)]
    fn call_cached<T: FromRedis>(
        &self,
        cmd: crate::Cmd,
        ttl: Option<std::time::Duration>,
    ) -> Call<T> {
        let _ = ttl;
        self.call(cmd)
    }
}

impl Redis for Client {
    fn call<T: FromRedis>(&self, request: impl Callable) -> Call<T> {
        Client::call(self, request)
    }
    fn pipeline(&self) -> Pipeline {
        Client::pipeline(self)
    }
    fn transaction(&self) -> Pipeline {
        Client::transaction(self)
    }
    fn call_cached<T: FromRedis>(
        &self,
        cmd: crate::Cmd,
        ttl: Option<std::time::Duration>,
    ) -> Call<T> {
        Client::call_cached(self, cmd, ttl)
    }
}

impl Redis for Pooled {
    fn call<T: FromRedis>(&self, request: impl Callable) -> Call<T> {
        Client::call(self, request)
    }
    fn pipeline(&self) -> Pipeline {
        Client::pipeline(self)
    }
    fn transaction(&self) -> Pipeline {
        Client::transaction(self)
    }
    fn call_cached<T: FromRedis>(
        &self,
        cmd: crate::Cmd,
        ttl: Option<std::time::Duration>,
    ) -> Call<T> {
        Client::call_cached(self, cmd, ttl)
    }
}

impl Redis for Spread {
    fn call<T: FromRedis>(&self, request: impl Callable) -> Call<T> {
        Spread::call(self, request)
    }
    fn pipeline(&self) -> Pipeline {
        self.client().pipeline()
    }
    fn transaction(&self) -> Pipeline {
        self.client().transaction()
    }
    fn call_cached<T: FromRedis>(
        &self,
        cmd: crate::Cmd,
        ttl: Option<std::time::Duration>,
    ) -> Call<T> {
        self.client().call_cached(cmd, ttl)
    }
}

impl Redis for Pool {
    fn call<T: FromRedis>(&self, request: impl Callable) -> Call<T> {
        Pool::call(self, request)
    }
    fn pipeline(&self) -> Pipeline {
        Pool::pipeline(self)
    }
    fn transaction(&self) -> Pipeline {
        Pool::transaction(self)
    }
    fn call_cached<T: FromRedis>(
        &self,
        cmd: crate::Cmd,
        ttl: Option<std::time::Duration>,
    ) -> Call<T> {
        Pool::call_cached(self, cmd, ttl)
    }
}

impl<R: Redis + ?Sized> Redis for &R {
    fn call<T: FromRedis>(&self, request: impl Callable) -> Call<T> {
        (**self).call(request)
    }
    fn call_cached<T: FromRedis>(
        &self,
        cmd: crate::Cmd,
        ttl: Option<std::time::Duration>,
    ) -> Call<T> {
        (**self).call_cached(cmd, ttl)
    }
    fn pipeline(&self) -> Pipeline {
        (**self).pipeline()
    }
    fn transaction(&self) -> Pipeline {
        (**self).transaction()
    }
}
