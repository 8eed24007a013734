//! [`Client`]: the handle users call commands through.

use crate::cache::{CacheStats, Fill, Plan, Shared};
use crate::callable::{Callable, Finish, Prepared};
use crate::config::{Config, Engine};
use crate::conn::Payload;
use crate::engine::link::{Callback, PushHandler, Reply, To};
use crate::engine::placement::Placement;
use crate::engine::Link;
use crate::handle::caching;
use crate::route::Route;
use crate::{Cmd, Error, FromRedis, Result, Stats, Value};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A Redis client: one multiplexed connection, shared by every clone.
///
/// `Client` is `Clone + Send + Sync` and cheap to clone. Calls from any number of tasks or
/// threads go out together: whatever was queued while the previous write was in progress leaves
/// in the next single write, and replies are matched to callers in order. The futures it returns
/// need no particular runtime: they work under tokio (either flavour), inside `tokio_uring`, or
/// with `futures::executor::block_on`.
///
/// Connection handling follows tornadis: with autoconnect (the default) the first call connects
/// and a call after a lost connection reconnects, retrying with capped exponential backoff until
/// the connect timeout. `AUTH`, `HELLO`, `CLIENT SETNAME`, `SELECT` and `CLIENT TRACKING` (from
/// the [`Config`]) are sent again on every reconnect, and on every dedicated connection, so the
/// session a user configured holds everywhere; the commands that would change it on the shared
/// connection are refused (see [`Client::call`]). A call in flight when the connection is lost
/// fails with [`Error::Connection`]; it is never retried silently and its reply can never reach
/// another caller.
///
/// Dropping the last clone closes the connection and releases its socket once no caller waits
/// for a reply (a ring engine's one thread, shared by every connection of the process, exits
/// once it drives none). Fire-and-forget blocking calls (`async_call(cmd!("BLPOP", "q", 0), None)`)
/// have no caller: their dedicated connections are closed then, as by [`Client::disconnect`].
///
/// ```no_run
/// use ringdis::{cmd, Client};
///
/// # async fn demo() -> ringdis::Result<()> {
/// let client = Client::open("redis://127.0.0.1:6379")?;
/// client.call::<()>(cmd!("SET", "greeting", "hello")).await?;
/// let greeting: String = client.call(cmd!("GET", "greeting")).await?;
/// assert_eq!(greeting, "hello");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    link: Arc<Link>,
    engine: Engine,
    /// Where its dedicated connections and its handles' timers go.
    placement: Placement,
    command_timeout: Option<Duration>,
    config: Arc<Config>,
    /// Dedicated connections for blocking commands, idle and ready for the next one.
    spare: Arc<Mutex<Vec<Client>>>,
    /// Every dedicated connection made for this client (blocking commands, `watch_transaction`)
    /// that may still live, so that `disconnect` reaches the calls in flight on them too and
    /// `on_push` gets their pushes.
    blocking: Mutex<Vec<Weak<Inner>>>,
    /// The counters of the dedicated connections, for [`Client::stats`].
    dedicated: Mutex<Dedicated>,
    /// The connection of a `watch_transaction`: it must never reconnect once it was lost (its
    /// `WATCH` would be gone), so `connect()` refuses to.
    watching: bool,
    /// The user's push handler ([`Client::on_push`]), shared with the dedicated connections:
    /// with `Config::tracking` they track the reads made on them, and their invalidations are
    /// this client's too.
    push: SharedPush,
    /// A dedicated connection running a fire-and-forget blocking call (`async_call` without a
    /// callback): nobody waits for its reply, so it ends when the client that made it does.
    detached: AtomicBool,
    /// The connection to a replica for read-only calls ([`Config::sentinel_replica_reads`]).
    replica: Option<Replica>,
    /// The client-side cache its connection keeps true ([`Config::cache`]): its own, or its
    /// pool's, spread's or cluster's. None on dedicated connections.
    cache: Option<Arc<Shared>>,
}

/// A client's connection to a replica, for its read-only calls.
struct Replica {
    client: Client,
    /// When the connection was last asked to connect (calls go to the primary meanwhile).
    kicked: Mutex<Option<Instant>>,
}

/// How often a client whose replica connection is down asks it to connect again.
const REPLICA_KICK: Duration = Duration::from_millis(200);

/// The counters of a client's dedicated connections: the links of those that may still live,
/// and the counts of those whose handles are all gone, as they were then (their calls still in
/// flight counted as dropped, as a pool counts a client it lets go), so that a client's
/// counters never go down when a dedicated connection closes.
#[derive(Default)]
struct Dedicated {
    live: Vec<(Weak<Inner>, Arc<Link>)>,
    retired: Stats,
}

impl Dedicated {
    /// Folds the connections whose handles are all gone into `retired`.
    fn prune(&mut self) {
        let retired = &mut self.retired;
        self.live.retain(|(inner, link)| {
            if inner.strong_count() > 0 {
                return true;
            }
            let mut counts = link.stats();
            counts.dropped += std::mem::take(&mut counts.in_flight);
            *retired += counts;
            false
        });
    }

    fn stats(&mut self) -> Stats {
        self.prune();
        let live: Stats = self.live.iter().map(|(_, link)| link.stats()).sum();
        live + self.retired
    }
}

/// The push handler several connections call, one push at a time. The outer lock is held only
/// to take the current handler, so a handler may call `on_push` itself.
type SharedPush = Arc<Mutex<Option<Arc<Mutex<PushHandler>>>>>;

/// A connection's handler that hands each push to the shared one.
fn forward_pushes(push: &SharedPush) -> PushHandler {
    let push = push.clone();
    Box::new(move |value| {
        let current = push.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(handler) = current {
            // A handler that panicked (the link caught it) poisoned its lock: it stays
            // installed.
            (handler.lock().unwrap_or_else(|p| p.into_inner()))(value);
        }
    })
}

/// What [`Client::async_call`] takes as its callback: a closure that gets the reply, or `None`
/// for no callback (no type annotation needed: `async_call(cmd, None)`).
///
/// Implemented for every `FnOnce(Result<Value>) + Send + 'static` and for
/// `Option<fn(Result<Value>)>` (which `None` is taken for); not meant to be implemented
/// elsewhere.
pub trait OnReply {
    /// The closure's type.
    #[doc(hidden)]
    type Callback: FnOnce(Result<Value>) + Send + 'static;
    /// The closure, or `None` for no callback.
    #[doc(hidden)]
    fn into_callback(self) -> Option<Self::Callback>;
}

impl<F: FnOnce(Result<Value>) + Send + 'static> OnReply for F {
    type Callback = F;
    #[inline]
    fn into_callback(self) -> Option<F> {
        Some(self)
    }
}

/// `None`: no callback (the reply is read and dropped).
impl OnReply for Option<fn(Result<Value>)> {
    type Callback = fn(Result<Value>);
    #[inline]
    fn into_callback(self) -> Option<fn(Result<Value>)> {
        self
    }
}

/// At most this many idle dedicated connections are kept for reuse.
const MAX_SPARE: usize = 16;

impl Drop for Inner {
    fn drop(&mut self) {
        self.link.shut_down();
        // A fire-and-forget blocking call has no caller to wait for, and its callback holds the
        // only handle to its dedicated connection, inside that connection's own link: nothing
        // else would ever close it (a `BLPOP q 0` kept its connection, thread and socket for
        // ever).
        // It ends with the client, as on `disconnect`. Calls with a caller (a future, a
        // callback) go on until answered, as on the shared connection.
        let dedicated =
            std::mem::take(&mut *self.blocking.lock().unwrap_or_else(|p| p.into_inner()));
        for inner in dedicated.iter().filter_map(Weak::upgrade) {
            if inner.detached.load(Ordering::Acquire) {
                // Nobody awaits the disconnect itself.
                drop(inner.link.disconnect());
            }
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("engine", &self.inner.engine)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Client {
    /// A client for a connection URL (see [`Config::from_url`]). Nothing is connected yet: with
    /// autoconnect the first call connects. For settings a URL cannot hold (timeouts, a TLS
    /// CA, the engine), parse it with [`Config::from_url`], set them, and call [`Client::new`].
    ///
    /// # Errors
    ///
    /// [`Error::Client`] for a URL [`Config::from_url`] refuses, or as [`Client::new`].
    pub fn open(url: &str) -> Result<Client> {
        Client::new(Config::from_url(url)?)
    }

    /// A client with the given configuration.
    ///
    /// Its connection goes to the engine [`Config::engine`] names (see [`Engine`]); with
    /// [`Engine::Auto`], the task engine when this runs on a current-thread tokio runtime. The
    /// connections made for it later (blocking calls, `watch_transaction`, [`Client::subscriber`],
    /// [`Client::dedicated`]) go to the same engine, on the same runtime, whatever thread asks.
    /// On the task engine the client works only as long as that runtime runs: after it shuts
    /// down every call fails with [`Error::Connection`] (see [`Engine::Task`]).
    ///
    /// # Errors
    ///
    /// [`Error::Client`] for a username without a password, [`Config::tracking`] or
    /// [`Config::cache`] with [`Protocol::Resp2`](crate::Protocol::Resp2), [`Config::cache`]
    /// with [`Config::tracking`], a [`Cache::bcast`](crate::Cache::bcast) whose prefixes
    /// overlap, [`Engine::Task`] outside a tokio
    /// runtime, [`Engine::IoUring`] where the kernel refuses io_uring or in a build without the
    /// io_uring engine (the `io-uring` feature off, or not Linux), or a `RINGDIS_ENGINE` that
    /// names no engine.
    pub fn new(config: Config) -> Result<Client> {
        let cache = config.cache.clone().map(Shared::new);
        Client::new_cached(config, cache)
    }

    /// [`Client::new`] keeping `cache` true (see [`Client::build_cached`]).
    pub(crate) fn new_cached(config: Config, cache: Option<Arc<Shared>>) -> Result<Client> {
        // The configuration's own errors first: they are the user's to fix wherever it runs.
        check(&config)?;
        let placement = Placement::here(config.engine)?;
        Client::build(config, false, placement, cache)
    }

    /// A client with `config` whose connection goes where `placement` says.
    pub(crate) fn placed(config: Config, placement: &Placement) -> Result<Client> {
        Client::build(config, false, placement.clone(), None)
    }

    /// [`Client::placed`] keeping `cache` true: its connection tracks its reads
    /// (`CLIENT TRACKING` in every handshake, RESP3 required) and applies its invalidations to
    /// `cache`; its cached reads ([`Client::call_cached`]) are served from it and its writes
    /// drop their keys from it. The members of a pool, a spread or a cluster share one.
    /// `None`: no cache, as [`Client::placed`] (whatever `config.cache` says).
    ///
    /// # Errors
    ///
    /// As [`Client::new`] (the configuration checked, `config.cache` included).
    pub(crate) fn build_cached(
        config: Config,
        placement: &Placement,
        cache: Option<Arc<Shared>>,
    ) -> Result<Client> {
        Client::build(config, false, placement.clone(), cache)
    }

    /// A connection for this client's own use, on its engine (with no replica of its own).
    pub(crate) fn sibling(&self, mut config: Config) -> Result<Client> {
        if let Some(s) = &mut config.sentinel {
            s.replica_reads = false;
        }
        Client::placed(config, &self.inner.placement)
    }

    /// [`Client::sibling`] keeping `cache` true (a spread's members after the first).
    pub(crate) fn sibling_cached(
        &self,
        mut config: Config,
        cache: Option<Arc<Shared>>,
    ) -> Result<Client> {
        if let Some(s) = &mut config.sentinel {
            s.replica_reads = false;
        }
        Client::build_cached(config, &self.inner.placement, cache)
    }

    /// A client whose lost connection stays lost: the connection of a `watch_transaction`.
    pub(crate) fn watching(&self) -> Result<Client> {
        let mut config = (*self.inner.config).clone();
        config.autoconnect = false;
        Client::build(config, true, self.inner.placement.clone(), None)
    }

    /// Where this client's connections and timers live.
    pub(crate) fn placement(&self) -> &Placement {
        &self.inner.placement
    }

    fn build(
        mut config: Config,
        watching: bool,
        mut placement: Placement,
        cache: Option<Arc<Shared>>,
    ) -> Result<Client> {
        check(&config)?;
        if config.sentinel.is_some() && config.source.is_none() {
            // The sentinel watcher this client's connections (and the dedicated ones and
            // subscribers made from its configuration) find the primary through.
            let watcher = crate::handle::sentinel::Watcher::new(&config, &placement)?;
            config.source = Some(watcher);
        }
        let replica = match (&config.sentinel, &config.source) {
            (Some(s), Some(source)) if s.replica_reads && !s.for_replica && !watching => {
                let mut replica = config.clone();
                replica.source = source.replicas();
                if let Some(s) = &mut replica.sentinel {
                    s.for_replica = true;
                    s.replica_reads = false;
                }
                // No cache there: cached reads go to the primary (see `call_cached`).
                Some(Replica {
                    client: Client::build(replica, false, placement.clone(), None)?,
                    kicked: Mutex::new(None),
                })
            }
            _ => None,
        };
        let command_timeout = config.command_timeout;
        let config = Arc::new(config);
        let (link, engine) = placement.attach(&config)?;
        if let Some(cache) = &cache {
            // Before anything can ask the connection to connect: its first handshake tracks.
            link.set_cache(cache.clone());
        }
        Ok(Client {
            inner: Arc::new(Inner {
                link,
                engine,
                placement,
                command_timeout,
                config,
                spare: Arc::default(),
                blocking: Mutex::default(),
                dedicated: Mutex::default(),
                watching,
                push: Arc::default(),
                detached: AtomicBool::new(false),
                replica,
                cache,
            }),
        })
    }

    /// Sends a command (or a [`Pipeline`](crate::Pipeline)) and decodes its reply into `T`.
    ///
    /// The command is queued at once; the returned future resolves to the reply. Dropping the
    /// future abandons the reply (it is still read and discarded) and affects no other call.
    /// A pipeline's replies decode as one array (see
    /// [`Pipeline::query`](crate::Pipeline::query)), as tornadis lets a `Pipeline` go through
    /// `call`.
    ///
    /// Every request passes the routing gate first (see the `route` module docs, summed up in
    /// the README): a blocking command, or a pipeline holding one, runs on a dedicated
    /// connection; a command that would change the shared connection's replies or session
    /// (`MULTI`, `CLIENT REPLY`, `SUBSCRIBE`, `SELECT`, `AUTH`…) is refused.
    ///
    /// # Errors
    ///
    /// [`Error::Client`], before anything is sent, for a command the gate refuses (the message
    /// names what to use instead: `Config::db`, `Client::transaction()`…); then any error of the
    /// call itself.
    pub fn call<T: FromRedis>(&self, request: impl Callable) -> Call<T> {
        let written = match &self.inner.cache {
            Some(cache) => caching::invalidate_writes(cache, request.cmds()),
            None => None,
        };
        match (request.prepare(), written) {
            (Ok(prepared), None) => self.call_prepared(prepared),
            // The written keys drop again from the cache before the reply is handed over.
            (Ok(prepared), Some(written)) => {
                Call::later(written.around(self.call_prepared::<Value>(prepared)))
            }
            (Err(e), _) => Call::failed(e),
        }
    }

    /// Sends what the gate let through, where it said.
    pub(crate) fn call_prepared<T: FromRedis>(&self, prepared: Prepared) -> Call<T> {
        self.call_prepared_within(prepared, self.inner.command_timeout)
    }

    /// [`Client::call_prepared`], a call on the shared connection given `timeout` instead of
    /// the command timeout (a cluster's retry, within what is left of the first attempt's).
    pub(crate) fn call_prepared_within<T: FromRedis>(
        &self,
        prepared: Prepared,
        timeout: Option<Duration>,
    ) -> Call<T> {
        let Prepared {
            payload,
            finish,
            route,
        } = prepared;
        let mut call = match route {
            Route::Shared => match &self.inner.replica {
                Some(replica) if is_read_only(&payload) => self.read(replica, payload),
                _ => self.submit_call(payload, timeout),
            },
            Route::Dedicated(block) => {
                let conn = match self.take_spare() {
                    Ok(c) => c,
                    Err(e) => return Call::failed(e),
                };
                let mut call = conn.submit_call(payload, self.blocking_timeout(block));
                call.lease = Some(Lease {
                    conn: Some(conn),
                    spare: self.inner.spare.clone(),
                });
                call
            }
        };
        call.finish = finish;
        call
    }

    /// A cluster's first attempt at one command it keeps (to send again after a redirect):
    /// [`Client::call_prepared`] of `cmd` where the gate's `route` says, given up at
    /// `deadline` (the cluster call's, from the command timeout), without copying `cmd` on the
    /// shared connection once it is up (see [`Link::reply_kept`](crate::engine::link::Link::reply_kept)).
    pub(crate) fn call_kept<T: FromRedis>(
        &self,
        cmd: &Cmd,
        route: Route,
        deadline: Option<Instant>,
    ) -> Call<T> {
        if route != Route::Shared || self.inner.replica.is_some() {
            return self.call_prepared(Prepared {
                payload: Payload::One(cmd.clone()),
                finish: Ok,
                route,
            });
        }
        Call {
            state: State::Waiting(self.inner.link.reply_kept(cmd, deadline)),
            finish: Ok,
            lease: None,
            _type: PhantomData,
        }
    }

    /// A read-only call, on the replica connection while it is up, on the primary otherwise or
    /// when the replica connection fails it (a read runs twice at worst).
    fn read<T: FromRedis>(&self, replica: &Replica, payload: Payload) -> Call<T> {
        let timeout = self.inner.command_timeout;
        if !replica.client.is_connected() {
            replica.kick();
            return self.submit_call(payload, timeout);
        }
        let again = match &payload {
            Payload::One(cmd) => Payload::One(cmd.clone()),
            _ => return self.submit_call(payload, timeout),
        };
        // One deadline for both tries: the call never waits past its timeout.
        let at = deadline(timeout);
        let on_replica = replica.client.inner.link.reply(payload, at);
        let primary = self.inner.link.clone();
        Call::later(async move {
            match on_replica.await {
                Err(e) if e.is_connection() => primary.reply(again, at).await,
                other => other,
            }
        })
    }

    /// The reply deadline on a dedicated connection: the block time plus the usual allowance
    /// for the reply; none if it may block for ever.
    fn blocking_timeout(&self, block: Option<Duration>) -> Option<Duration> {
        match (block, self.inner.command_timeout) {
            (Some(b), Some(t)) => Some(crate::timer::bounded(b.saturating_add(t))),
            _ => None,
        }
    }

    /// An idle dedicated connection, or a new one.
    ///
    /// Without autoconnect a blocking call, like any other, needs the client to be connected;
    /// its dedicated connection then connects by itself.
    fn take_spare(&self) -> Result<Client> {
        if !self.inner.config.autoconnect && !self.is_connected() {
            return Err(Error::connection("not connected (autoconnect is off)").unsent());
        }
        let spare = self
            .inner
            .spare
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        if let Some(c) = spare {
            return Ok(c);
        }
        let mut config = (*self.inner.config).clone();
        config.autoconnect = true;
        let conn = self.sibling(config)?;
        self.share_pushes_with(&conn);
        Ok(conn)
    }

    /// Hands the pushes of `conn`, a connection made for this client (a blocking call's, a
    /// `watch_transaction`'s), to this client's push handler, now and after any later
    /// [`Client::on_push`].
    pub(crate) fn share_pushes_with(&self, conn: &Client) {
        {
            let mut all = self
                .inner
                .blocking
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            all.retain(|w| w.strong_count() > 0);
            all.push(Arc::downgrade(&conn.inner));
        }
        {
            let mut dedicated = self
                .inner
                .dedicated
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            dedicated.prune();
            dedicated
                .live
                .push((Arc::downgrade(&conn.inner), conn.inner.link.clone()));
        }
        // Listed first, checked second: an `on_push` racing with this either sees the new
        // connection in the list or has set the handler this sees.
        if self.has_push_handler() {
            conn.inner
                .link
                .set_push_handler(Some(forward_pushes(&self.inner.push)));
        }
    }

    /// A new client with this one's configuration and a connection of its own (for `WATCH`,
    /// long blocking loops, or isolating a noisy workload), on this client's engine and, on the
    /// task engine, its runtime, whatever thread asks. It is a client of its own: its pushes go
    /// to its own [`Client::on_push`] handler, not this one's.
    pub fn dedicated(&self) -> Result<Client> {
        let mut config = (*self.inner.config).clone();
        if let Some(s) = &mut config.sentinel {
            s.replica_reads = false;
        }
        // A client of its own: with `Config::cache`, its own cache too.
        let cache = config.cache.clone().map(Shared::new);
        Client::build(config, false, self.inner.placement.clone(), cache)
    }

    /// Sends a command with no checks (for the library's own use of connection state).
    pub(crate) fn call_unchecked<T: FromRedis>(&self, cmd: Cmd) -> Call<T> {
        self.submit_call(Payload::One(cmd), self.inner.command_timeout)
    }

    /// A cached read (what `.cached()` on a command builder calls, through
    /// [`Redis::call_cached`](crate::Redis::call_cached)): answered from the cache when it holds
    /// `cmd`'s reply (a call already done: nothing sent, nothing boxed), joined to the same read
    /// in flight, or sent with what the cache needs (`[CLIENT CACHING YES] cmd PTTL k…`, one
    /// write) and kept. `ttl`: the call's own limit on the entry's lifetime. Without a cache, or
    /// for a command the routing gate does not send on the shared connection, it is
    /// [`Client::call`]. Cached reads go to the primary, never to a Sentinel replica.
    ///
    /// Cancel safety: dropping the call before it is done leaves no other call waiting for it:
    /// a bundle sent is finished by the connection all the same (its reply stored, unless an
    /// invalidation reached it, and handed to the reads that joined it); a read that joined
    /// another leaves nothing behind.
    pub(crate) fn call_cached<T: FromRedis>(&self, cmd: Cmd, ttl: Option<Duration>) -> Call<T> {
        let Some(cache) = &self.inner.cache else {
            return self.call(cmd);
        };
        let db = self.inner.config.db;
        if let Some(value) = caching::hit(cache, db, &cmd) {
            return Call::ready(Ok(value));
        }
        if !matches!(crate::route::route(&cmd), Ok(Route::Shared)) {
            // Blocking, or refused: what `call` does with it.
            return self.call(cmd);
        }
        match cache.plan(db, cmd, ttl) {
            Plan::Hit(value) => Call::ready(Ok(value)),
            // As `call` (a write through `Redis::call_cached` still drops its keys).
            Plan::Uncacheable(cmd) => self.call(cmd),
            Plan::Lead { fill, bundle } => Call::later(self.lead(fill, bundle)),
            Plan::Join(waiter, cmd) => {
                let (lead, plain) = (self.clone(), self.clone());
                Call::later(caching::join(
                    cache.clone(),
                    db,
                    cmd,
                    ttl,
                    waiter,
                    move |fill, bundle| lead.lead(fill, bundle),
                    move |cmd| plain.send(Payload::One(cmd)),
                ))
            }
        }
    }

    /// Sends a cached read's bundle now, in one write (its replies collected into one array,
    /// no transaction), on the shared connection (never a replica: that is where the read is
    /// tracked), with the command timeout. The connection hands the replies to `fill` as they
    /// come, whoever polls the returned future (see [`caching::lead_callback`]).
    fn lead(
        &self,
        fill: Fill,
        bundle: Vec<Cmd>,
    ) -> impl Future<Output = Result<Value>> + Send + 'static {
        let (callback, reply) = caching::lead_callback(fill);
        if bundle.is_empty() {
            callback(Err(Error::client("a cached read's bundle is empty")));
        } else {
            self.submit(
                Payload::batch(&bundle),
                To::Callback(callback),
                self.inner.command_timeout,
            );
        }
        reply
    }

    /// Sends `payload` on the shared connection (never a replica), with the command timeout:
    /// a cached read's bundle, the cache's connection being this one.
    pub(crate) fn send(&self, payload: Payload) -> Call<Value> {
        self.submit_call(payload, self.inner.command_timeout)
    }

    /// Drops from this client's cache the keys the writes among `cmds` name (nothing without
    /// a cache): for requests sent on a connection that has no cache of its own (a
    /// `watch_transaction`'s).
    pub(crate) fn invalidate_writes(&self, cmds: &[Cmd]) -> Option<caching::Written> {
        caching::invalidate_writes(self.inner.cache.as_ref()?, cmds)
    }

    /// The counters of this client's cache ([`Config::cache`]): hits, misses, invalidations…
    /// `None` without a cache. For a client of a [`Pool`](crate::Pool) or a
    /// [`Spread`](crate::Spread), the cache its members share. A snapshot; cheap (nothing sent).
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.inner.cache.as_ref().map(|c| c.stats())
    }

    /// The configuration this client was made with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// This client's connection.
    pub(crate) fn link(&self) -> &Arc<Link> {
        &self.inner.link
    }

    pub(crate) fn submit_call<T: FromRedis>(
        &self,
        payload: Payload,
        timeout: Option<Duration>,
    ) -> Call<T> {
        let reply = self.inner.link.reply(payload, deadline(timeout));
        Call {
            state: State::Waiting(reply),
            finish: Ok,
            lease: None,
            _type: PhantomData,
        }
    }

    /// Sends `payload` on the shared connection with the command timeout; `callback` gets
    /// the reply (a cluster's `async_call`, past the gate already).
    pub(crate) fn submit_callback(&self, payload: Payload, callback: Callback) {
        self.submit(payload, To::Callback(callback), self.inner.command_timeout);
    }

    fn submit(&self, payload: Payload, to: To, timeout: Option<Duration>) {
        self.inner.link.submit(payload, deadline(timeout), to);
    }

    /// Sends a command without waiting; `callback`, a closure or `None`, gets the reply.
    ///
    /// The callback runs where the reply is read (the engine driving the connection: its thread,
    /// or on the task engine the client's runtime, or the thread that shuts that runtime down,
    /// with the error): keep it short and never block in it (a panic in it is caught, counted in
    /// [`Stats::callback_panics`], reported through `tracing` with the `tracing` feature, and
    /// the connection carries on). With no callback the reply is
    /// still read, then dropped, so the stream stays in step; such a call still times out
    /// after the command timeout, counts for the liveness rule
    /// ([`Config::max_silent_timeouts`]), and keeps a dropped client's connection open at most until then.
    /// The request passes the same gate as [`Client::call`]: a refused one gives the callback an
    /// [`Error::Client`] at once (on the caller's thread); a blocking command runs on a dedicated
    /// connection, which is given back once its reply came.
    ///
    /// ```no_run
    /// # let client = ringdis::Client::open("redis://127.0.0.1:6379").unwrap();
    /// use ringdis::cmd;
    /// client.async_call(cmd!("HSET", "key", "field", "val"), |reply: ringdis::Result<ringdis::Value>| {
    ///     println!("HSET answered {reply:?}");
    /// });
    /// client.async_call(cmd!("INCR", "hits"), None); // fire and forget
    /// ```
    pub fn async_call(&self, request: impl Callable, callback: impl OnReply) {
        self.async_call_with(request, callback.into_callback())
    }

    fn async_call_with<F>(&self, request: impl Callable, callback: Option<F>)
    where
        F: FnOnce(Result<Value>) + Send + 'static,
    {
        let fail = |callback: Option<F>, e: Error| {
            if let Some(cb) = callback {
                cb(Err(e));
            }
        };
        // Dropped from the cache again before the callback gets the reply (see `call`).
        let written = match &self.inner.cache {
            Some(cache) => caching::invalidate_writes(cache, request.cmds()),
            None => None,
        };
        let Prepared {
            payload,
            finish,
            route,
        } = match request.prepare() {
            Ok(p) => p,
            Err(e) => return fail(callback, e),
        };
        match route {
            Route::Shared => {
                let to = match callback {
                    Some(cb) => To::Callback(Box::new(move |reply: Result<Value>| {
                        if let Some(written) = written {
                            written.replied();
                        }
                        cb(reply.and_then(finish))
                    }) as Callback),
                    None => To::Discard,
                };
                self.submit(payload, to, self.inner.command_timeout);
            }
            Route::Dedicated(block) => {
                let conn = match self.take_spare() {
                    Ok(c) => c,
                    Err(e) => return fail(callback, e),
                };
                let mut lease = Lease {
                    conn: Some(conn.clone()),
                    spare: self.inner.spare.clone(),
                };
                let detached = callback.is_none();
                conn.inner.detached.store(detached, Ordering::Release);
                // The lease lives in the callback: back to the spares once the reply came,
                // closed (by its drop) when the connection failed under it.
                let to = To::Callback(Box::new(move |reply: Result<Value>| {
                    if let Some(conn) = &lease.conn {
                        conn.inner.detached.store(false, Ordering::Release);
                    }
                    if matches!(reply, Ok(_) | Err(Error::Server { .. })) {
                        lease.give_back();
                    }
                    drop(lease);
                    if let Some(cb) = callback {
                        if let Some(written) = written {
                            written.replied();
                        }
                        cb(reply.and_then(finish));
                    }
                }) as Callback);
                conn.submit(payload, to, self.blocking_timeout(block));
            }
        }
    }

    /// Connects now (and runs the handshake). `Ok(true)` once ready; safe to call when already
    /// connected. Needed only with autoconnect off.
    ///
    /// # Errors
    ///
    /// [`Error::Connection`] when the connection cannot be made; also on the connection a
    /// [`watch_transaction`](Client::watch_transaction) closure gets, once it was lost: it does
    /// not come back, since its `WATCH` would not (the attempt runs again on a new one).
    pub async fn connect(&self) -> Result<bool> {
        if self.inner.watching {
            // Never asks the link to connect: a connection lost between a check and that ask
            // would come back without its WATCH, and EXEC would run unprotected.
            if self.is_connected() {
                return Ok(true);
            }
            return Err(Error::connection(
                "the watch_transaction connection was lost, and its WATCH with it: it does not \
                 reconnect (the attempt runs again on a new connection)",
            ));
        }
        self.connect_now().await
    }

    /// Connects, whatever the client is for.
    pub(crate) async fn connect_now(&self) -> Result<bool> {
        self.inner.link.connect().await.map(|_| true)
    }

    /// Closes the connection. Calls in flight fail with [`Error::Connection`]. Safe to call
    /// when not connected. With autoconnect, the next call connects again.
    pub async fn disconnect(&self) {
        // Blocking calls in flight on dedicated connections are this client's calls too.
        self.inner
            .spare
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let dedicated: Vec<Client> = self
            .inner
            .blocking
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .filter_map(|w| w.upgrade().map(|inner| Client { inner }))
            .collect();
        let waits: Vec<Reply> = dedicated
            .iter()
            .chain(std::iter::once(self))
            .map(|conn| conn.inner.link.disconnect())
            .collect();
        for wait in waits {
            let _ = wait.await;
        }
    }

    /// Sets the handler for RESP3 push frames that are not replies, such as `CLIENT TRACKING`
    /// invalidations. Pushes never disturb reply matching; with no handler they are dropped.
    /// The handler runs where the push is read (the engine driving the connection), outside any
    /// lock of the client's: keep it short (send the value to a channel).
    ///
    /// The handler also gets the pushes of the dedicated connections that blocking calls and
    /// [`Client::watch_transaction`] run on (with [`Config::tracking`](crate::Config::tracking) they track the reads made there, such
    /// as a `GET` in a pipeline with a `BLPOP`), one push at a time. With
    /// [`Config::tracking`](crate::Config::tracking) or [`Config::cache`], a connection lost or
    /// closed gives it an `invalidate` push with a nil payload (flush everything): what the
    /// server tracked for that connection is gone. With [`Config::cache`] it gets the
    /// invalidations the cache applied (after it applied them).
    ///
    /// A panic in the handler is caught: the push it was handling is lost, the connection and
    /// every call on it carry on, and the handler stays installed for the next push (call
    /// `on_push` again to replace it). The panic is still reported by the panic hook,
    /// counted in [`Stats::callback_panics`], and with the `tracing` feature reported as a
    /// warning.
    ///
    /// On the task engine the handler runs on the client's runtime: read what it sends from
    /// async code there (an async channel), since a blocking `recv` on the thread of a
    /// current-thread runtime stalls the very connection that would deliver the push.
    ///
    /// ```no_run
    /// # let client = ringdis::Client::open("redis://127.0.0.1:6379").unwrap();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// client.on_push(move |push| {
    ///     let _ = tx.send(push);
    /// });
    /// ```
    pub fn on_push<F>(&self, handler: F)
    where
        F: FnMut(Value) + Send + 'static,
    {
        let first = self
            .inner
            .push
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(Arc::new(Mutex::new(Box::new(handler))))
            .is_none();
        if first {
            // This connection and the dedicated ones made so far forward to it from now on
            // (those made later do from the start).
            let dedicated: Vec<Client> = self
                .inner
                .blocking
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .filter_map(|w| w.upgrade().map(|inner| Client { inner }))
                .collect();
            for conn in dedicated.iter().chain(std::iter::once(self)) {
                conn.inner
                    .link
                    .set_push_handler(Some(forward_pushes(&self.inner.push)));
            }
        }
    }

    fn has_push_handler(&self) -> bool {
        self.inner
            .push
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// How many calls this client's connection held (written and awaiting a reply, or waiting
    /// for a connection) when its bytes were last handed out or its engine last went to sleep. For tests and diagnostics: it shows
    /// that calls which timed out are not kept for ever (see [`Config::max_silent_timeouts`]).
    #[doc(hidden)]
    pub fn queued_calls(&self) -> usize {
        self.inner.link.queued()
    }

    /// This client's connection counters (see [`Stats`]): its shared connection, plus the
    /// dedicated connections of its blocking commands and `watch_transaction`s (those that
    /// closed with their counts as they were then, calls still in flight on them counted as
    /// dropped). A snapshot; cheap (no lock on the connection, nothing sent).
    pub fn stats(&self) -> Stats {
        let dedicated = self
            .inner
            .dedicated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stats();
        let replica = self.inner.replica.as_ref().map(|r| r.client.stats());
        self.inner.link.stats() + dedicated + replica.unwrap_or_default()
    }

    /// True while the connection is up and ready for calls.
    pub fn is_connected(&self) -> bool {
        self.inner.link.is_connected()
    }

    /// The engine driving this client's connection: [`Engine::Task`], [`Engine::IoUring`] or
    /// [`Engine::Epoll`] (never `Auto`; never `IoUring` in a build without the io_uring
    /// engine).
    pub fn engine(&self) -> Engine {
        self.inner.engine
    }
}

/// When a call made now with `timeout` gives up.
fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|t| Instant::now() + t)
}

/// The future of one call: resolves to the reply decoded as `T`.
///
/// It is `Send`, `Unpin` and `'static`, holds no reference to the client, and needs no
/// particular async runtime.
#[must_use = "a call does nothing useful unless awaited (use async_call to fire and forget)"]
pub struct Call<T> {
    state: State,
    /// Applied to the reply before decoding (a transaction's reply is EXEC's).
    pub(crate) finish: Finish,
    /// The dedicated connection a blocking command runs on.
    lease: Option<Lease>,
    _type: PhantomData<fn() -> T>,
}

/// Where a call's reply comes from.
enum State {
    /// Its result is known already (it failed before it was sent, or the cache answered it):
    /// taken once; `None` once taken.
    Ready(Option<Result<Value>>),
    /// Its pending-reply slot on the connection; dropping it abandons the call.
    Waiting(Reply),
    /// A reply that needs more than one connection's slot first (a pool's checkout). In a
    /// `Mutex` only so that `Call` stays `Sync`: it is polled through `&mut`, never locked.
    Later(Mutex<Later>),
    /// A cluster call's slot on its node's connection, and what to do when the node answers
    /// with an error (a redirect: follow it, as a [`State::Later`]). Nothing is boxed unless
    /// that happens.
    Routed(Reply, Option<Resume>),
}

/// What [`State::Later`] awaits.
pub(crate) type Later = Pin<Box<dyn Future<Output = Result<Value>> + Send>>;

/// How a cluster call carries on after its node answered with an error: `then` gets the error
/// and either gives it back (the call fails with it) or returns the future of the rest of the
/// call (a redirect followed, a retry after a back-off).
pub(crate) struct Resume {
    /// The command, to send again.
    pub cmd: Cmd,
    /// The cluster's shared state (`then` knows its type).
    pub ctx: Arc<dyn std::any::Any + Send + Sync>,
    /// Where the command was sent (a redirect followed or a retry goes by it again).
    pub target: crate::route::topology::Target,
    /// The node the command went to.
    pub node: crate::route::topology::NodeAddr,
    /// When the whole call gives up.
    pub deadline: Option<Instant>,
    /// Decides.
    pub then: fn(Resume, Error) -> std::result::Result<Later, Error>,
}

/// A dedicated connection lent to one blocking call. Back to the spares when the call is done;
/// closed if the call is dropped while it may still block (its reply would hold the connection).
struct Lease {
    conn: Option<Client>,
    spare: Arc<Mutex<Vec<Client>>>,
}

impl Lease {
    fn give_back(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
            if spare.len() < MAX_SPARE && conn.is_connected() {
                spare.push(conn);
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Still blocked: close it so its engine does not wait for ever on a reply.
            drop(conn.inner.link.disconnect());
        }
    }
}

impl<T> Call<T> {
    /// A call whose reply `later` gives (already finished: no `finish` is applied to it).
    pub(crate) fn later(later: impl Future<Output = Result<Value>> + Send + 'static) -> Call<T> {
        Call {
            state: State::Later(Mutex::new(Box::pin(later))),
            finish: Ok,
            lease: None,
            _type: PhantomData,
        }
    }

    /// This call, carried on by `resume` when its node answers with an error.
    pub(crate) fn resumable(mut self, resume: Resume) -> Call<T> {
        if let State::Waiting(reply) = self.state {
            self.state = State::Routed(reply, Some(resume));
        } else if let State::Routed(_, slot) = &mut self.state {
            *slot = Some(resume);
        }
        self
    }

    /// A call that failed before it was sent.
    pub(crate) fn failed(err: Error) -> Call<T> {
        Call::ready(Err(err))
    }

    /// A call whose result is known already (a cached reply): nothing is sent or boxed.
    pub(crate) fn ready(result: Result<Value>) -> Call<T> {
        Call {
            state: State::Ready(Some(result)),
            finish: Ok,
            lease: None,
            _type: PhantomData,
        }
    }
}

impl<T: FromRedis> Future for Call<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let reply = loop {
            break match &mut self.state {
                State::Ready(result) => result
                    .take()
                    .unwrap_or_else(|| Err(Error::client("a call was polled after it completed"))),
                State::Waiting(reply) => match Pin::new(reply).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(r) => r,
                },
                State::Routed(reply, resume) => match Pin::new(reply).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => match resume.take() {
                        Some(resume) => match (resume.then)(resume, e) {
                            Ok(later) => {
                                self.state = State::Later(Mutex::new(later));
                                continue;
                            }
                            Err(e) => Err(e),
                        },
                        None => Err(e),
                    },
                    Poll::Ready(r) => r,
                },
                State::Later(later) => {
                    let later = later.get_mut().unwrap_or_else(|p| p.into_inner());
                    match later.as_mut().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(r) => r,
                    }
                }
            };
        };
        if matches!(self.state, State::Later(_)) {
            // A finished future must not be polled again (an async block panics): polled
            // again, the call says so as any other does.
            self.state = State::Ready(None);
        }
        if let Some(lease) = &mut self.lease {
            if matches!(reply, Ok(_) | Err(Error::Server { .. })) {
                lease.give_back();
            }
        }
        Poll::Ready(match reply {
            Ok(value) => (self.finish)(value).and_then(T::from_redis),
            Err(e) => Err(e),
        })
    }
}

impl<T> std::fmt::Debug for Call<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call").finish_non_exhaustive()
    }
}

impl Replica {
    /// Asks the replica connection to connect, at most every [`REPLICA_KICK`].
    fn kick(&self) {
        let Ok(mut kicked) = self.kicked.try_lock() else {
            return;
        };
        let now = Instant::now();
        if kicked.is_some_and(|at| now < at + REPLICA_KICK) {
            return;
        }
        *kicked = Some(now);
        drop(kicked);
        // Nobody awaits it: the connection is made or given up on all the same.
        drop(self.client.inner.link.connect());
    }
}

/// A call of one command the spec flags read-only: what may go to a replica.
fn is_read_only(payload: &Payload) -> bool {
    matches!(payload, Payload::One(cmd) if cmd.flags().readonly && !cmd.flags().write)
}

/// Refuses a configuration that could not work as asked.
fn check(config: &Config) -> Result<()> {
    if config.username.is_some() && config.password.is_none() {
        // AUTH and HELLO … AUTH take a user only with its password: the user would never
        // be sent, and the connection would silently be the default user's.
        return Err(Error::client(
            "Config::username needs Config::password (AUTH takes a user only with its password)",
        ));
    }
    if config.cache.is_some() && config.protocol == crate::Protocol::Resp2 {
        // Invalidations are RESP3 pushes on the connection itself.
        return Err(Error::client(
            "Config::cache needs Protocol::Resp3 (the default): the server's invalidations \
             arrive as RESP3 pushes on the client's own connection; drop \
             Config::protocol(Protocol::Resp2), or the URL's protocol=resp2",
        ));
    }
    if let Some((a, b)) = config.cache.as_ref().and_then(|c| c.overlapping_prefixes()) {
        return Err(Error::client(format!(
            "Cache::bcast prefixes {:?} and {:?} overlap (one begins the other): the server \
             refuses overlapping BCAST prefixes; keep the shorter one",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b),
        )));
    }
    if config.cache.is_some() && config.tracking.is_some() {
        return Err(Error::client(
            "Config::cache and Config::tracking together: the cache turns CLIENT TRACKING on \
             itself (Client::on_push still gets its invalidations); drop Config::tracking",
        ));
    }
    if config.tracking.is_some() && config.protocol == crate::Protocol::Resp2 {
        // RESP2 invalidations go only to a REDIRECT connection, which `Tracking` does not
        // offer (its id changes on every reconnect): the client would never hear of one.
        return Err(Error::client(
            "Config::tracking needs Protocol::Resp3: in RESP2 the server sends invalidations \
             only to a REDIRECT connection, which Config::tracking does not offer",
        ));
    }
    #[cfg(feature = "tls")]
    if let (Some(tls), crate::Addr::Unix(_)) = (&config.tls, &config.addr) {
        if tls.name_for("").is_err() {
            return Err(Error::client(
                "TLS over a unix socket needs the name to check the server's certificate \
                 against: Tls::server_name",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    /// A call whose reply needed more than one step (a pool's checkout) and is polled again
    /// after it completed fails as any other call does, instead of panicking in the finished
    /// async block it awaited.
    #[test]
    fn a_later_call_polled_after_it_completed_fails_without_panicking() {
        let mut call: Call<i64> = Call::later(async { Ok(Value::Int(7)) });
        assert_eq!(futures::executor::block_on(&mut call).unwrap(), 7);
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call.now_or_never()));
        let again = again.expect("no panic").expect("ready at once");
        assert!(again.as_ref().is_err_and(Error::is_client), "{again:?}");
    }

    /// A call the cache answered is done at once, and like any other, polled again it fails
    /// instead of panicking.
    #[test]
    fn a_ready_call_is_done_at_once() {
        let mut call: Call<i64> = Call::ready(Ok(Value::Int(3)));
        assert_eq!((&mut call).now_or_never().expect("ready").unwrap(), 3);
        let again = (&mut call).now_or_never().expect("ready at once");
        assert!(again.as_ref().is_err_and(Error::is_client), "{again:?}");
    }

    /// The cache needs RESP3 and turns tracking on itself: a configuration that asks otherwise
    /// is refused when the client is made, saying what to change.
    #[test]
    fn the_cache_refuses_resp2_and_tracking() {
        let cached = || Config::new().cache(crate::Cache::new());
        let e = Client::new(cached().protocol(crate::Protocol::Resp2)).unwrap_err();
        assert!(
            e.is_client() && e.to_string().contains("Protocol::Resp3"),
            "{e}"
        );
        let e = Client::new(cached().tracking(crate::Tracking::new())).unwrap_err();
        assert!(
            e.is_client() && e.to_string().contains("Config::tracking"),
            "{e}"
        );
        let e = crate::Spread::new(cached().protocol(crate::Protocol::Resp2), 2).unwrap_err();
        assert!(e.is_client(), "{e}");
    }
}
