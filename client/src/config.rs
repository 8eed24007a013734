//! [`Config`]: where to connect and how the client behaves.

pub use crate::addr::Addr;
use crate::{Error, Limits, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The RESP version to speak.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// RESP2: no `HELLO`, `AUTH` and `SELECT` only.
    Resp2,
    /// RESP3 through `HELLO 3`, falling back to RESP2 when the server does not know `HELLO`.
    #[default]
    Resp3,
}

/// Which engine drives the connection: moves its bytes, runs its timers and wakes its callers.
///
/// The environment variable `RINGDIS_ENGINE` (`auto`, `task`, `io_uring` or `epoll`), when set
/// and not empty, overrides the configured choice, so a deployment or a test run can force one
/// without a code change (`RINGDIS_ENGINE=` clears it).
///
/// - [`Engine::Task`]: the connection runs as a task on the tokio runtime the client is made
///   on (either flavour); ringdis adds no thread. The client lives as long as that runtime:
///   see [`Engine::Task`].
/// - [`Engine::IoUring`]: a ring engine: one thread (`ringdis-ring`) owning one io_uring ring
///   for every connection of the process, started with the first connection and ended after
///   the last (`IORING_OP_CONNECT`, one send of everything queued per connection, multishot
///   receives from a provided-buffer ring, timers as ring timeouts).
/// - [`Engine::Epoll`]: the ring engine's twin on mio (one `ringdis-epoll` thread): epoll on
///   Linux, kqueue on macOS and the BSDs. It serves where `io_uring_setup` is refused (`EPERM`
///   from a seccomp filter, `ENOSYS`, `kernel.io_uring_disabled`) and in every build without
///   the io_uring engine.
/// - [`Engine::Auto`] (the default): the task engine when the client is made on a
///   current-thread tokio runtime (`#[tokio::test]`, `#[tokio::main(flavor = "current_thread")]`,
///   tokio-uring); otherwise, on a multi-thread runtime or outside any, io_uring where the kernel
///   gives a ring and epoll where it does not. [`Client::engine`](crate::Client::engine) tells
///   which one is live. Why: measured in `docs/benchmarks.md` (issue #12), the task engine is
///   ringdis's fastest on a current-thread runtime on every workload, at the lowest CPU per op,
///   while on a multi-thread runtime a ring engine serves many concurrent callers 1.4–3.6× faster
///   (its one thread batches every connection's I/O; the task engine there pays a cross-worker
///   wake-up per call).
///
/// Beside a ring engine's thread, the timers a ring-engine [`Pool`](crate::Pool) (checkout
/// timeouts, idle sweeps) and [`Subscriber::next_message`](crate::Subscriber::next_message)
/// timeouts need run on the process's one `ringdis-timer` thread, started on demand and ended
/// when idle; on the task engine they are timers of the runtime.
///
/// # Without io_uring
///
/// The io_uring engine exists only on Linux, and only with ringdis's `io-uring` feature (on by
/// default; `default-features = false` turns it off). Without it, every variant still exists,
/// so code naming [`Engine::IoUring`] compiles on any target and with any features:
/// [`Engine::Auto`] uses the epoll/kqueue engine wherever it would have tried io_uring, and
/// [`Engine::IoUring`] (or `RINGDIS_ENGINE=io_uring`) makes
/// [`Client::new`](crate::Client::new) fail with [`Error::Client`](crate::Error::Client)
/// naming the feature: it is never silently replaced by another engine.
///
/// Two more variables exist for testing those paths on a kernel that has everything:
/// `RINGDIS_URING_FAIL_SETUP=1` makes ring setup fail as if the kernel refused it, and
/// `RINGDIS_URING_NO_BUFRING=1` makes the io_uring engine do without multishot operations, as on
/// older kernels (single-shot receives, an eventfd read per wake-up).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Engine {
    /// The task engine on a current-thread tokio runtime; otherwise (a multi-thread runtime, or
    /// none) io_uring where the kernel allows it, epoll where it does not (or where the build
    /// has no io_uring engine). So under
    /// `#[tokio::test]` a client is on the task engine, with what that implies for its lifetime
    /// (see [`Engine::Task`]); under a multi-thread `#[tokio::main]` it is on a ring engine.
    #[default]
    Auto,
    /// The task engine: creating the client fails with [`Error::Client`](crate::Error::Client)
    /// outside a tokio runtime. The runtime needs its IO and time drivers
    /// (`Builder::enable_all`, as `#[tokio::main]` and `#[tokio::test]` make it); without them
    /// the connection's task stops (tokio's panic message names the missing driver) and calls
    /// fail with [`Error::Connection`](crate::Error::Connection).
    ///
    /// The client, and every connection made for it later (subscribers, blocking calls,
    /// `watch_transaction`, a [`Pool`](crate::Pool)'s members), are tasks of the runtime it was
    /// made on, whatever thread or runtime later uses them:
    ///
    /// - While that runtime runs, any thread may use the client: other runtimes, plain threads
    ///   with `futures::executor::block_on`.
    /// - On a current-thread runtime the connection moves only while that runtime is being
    ///   driven (inside its `block_on`). A call from another thread while the runtime's own
    ///   thread is blocked waits; its command timeout, a timer of that runtime too, is judged
    ///   only when the runtime runs again. A call waited for by blocking that thread itself
    ///   (`futures::executor::block_on` inside async code) never returns.
    /// - Once that runtime shuts down (the end of `#[tokio::main]`, or of each `#[tokio::test]`,
    ///   since every test has its own runtime), its connections are closed, calls in flight
    ///   and every later call fail with [`Error::Connection`](crate::Error::Connection) saying
    ///   so, and a subscriber's stream ends. A client kept in a `static` and shared by several
    ///   `#[tokio::test]`s thus works only in the first one to run: make one per test, or give
    ///   the shared one [`Engine::IoUring`] or [`Engine::Epoll`], whose thread outlives any
    ///   runtime.
    Task,
    /// The io_uring ring engine only: creating the client fails with
    /// [`Error::Client`](crate::Error::Client), saying why, where the kernel refuses a ring, and
    /// in a build without the io_uring engine (the `io-uring` feature off, or not Linux; see
    /// [Without io_uring](Engine#without-io_uring)).
    IoUring,
    /// The epoll ring engine only (mio: epoll on Linux, kqueue on macOS and the BSDs).
    Epoll,
}

impl Engine {
    /// Reads `RINGDIS_ENGINE`, if set and not empty (`RINGDIS_ENGINE=` clears an override).
    pub(crate) fn from_env() -> Result<Option<Engine>> {
        match std::env::var("RINGDIS_ENGINE") {
            Err(_) => Ok(None),
            Ok(v) => match v.to_ascii_lowercase().as_str() {
                "" => Ok(None),
                "auto" => Ok(Some(Engine::Auto)),
                "task" | "tokio" => Ok(Some(Engine::Task)),
                "io_uring" | "io-uring" | "iouring" | "uring" => Ok(Some(Engine::IoUring)),
                "epoll" => Ok(Some(Engine::Epoll)),
                _ => Err(Error::client(format!(
                    "RINGDIS_ENGINE={v:?}: expected auto, task, io_uring or epoll"
                ))),
            },
        }
    }
}

/// Client configuration, built from a URL ([`Config::from_url`]) or step by step.
///
/// ```
/// use ringdis::{Config, Protocol};
/// use std::time::Duration;
///
/// let config = Config::from_url("redis://app:s3cret@cache.local:6380/2")?
///     .command_timeout(Some(Duration::from_millis(500)))
///     .protocol(Protocol::Resp2);
/// assert_eq!(config.addr().to_string(), "cache.local:6380");
/// assert_eq!(config.db_index(), 2);
///
/// let local = Config::new().port(7000).autoconnect(false);
/// assert_eq!(local.addr().to_string(), "127.0.0.1:7000");
/// # Ok::<(), ringdis::Error>(())
/// ```
///
/// Its `Debug` output never shows the password (`password: Some("<redacted>")`).
#[derive(Clone)]
pub struct Config {
    pub(crate) addr: Addr,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) db: i64,
    pub(crate) client_name: Option<String>,
    pub(crate) autoconnect: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Option<Duration>,
    pub(crate) tcp_nodelay: bool,
    pub(crate) tcp_keepalive: Option<Duration>,
    pub(crate) max_silent_timeouts: Option<u32>,
    pub(crate) health_check: Option<Duration>,
    pub(crate) protocol: Protocol,
    pub(crate) engine: Engine,
    pub(crate) limits: Limits,
    pub(crate) tracking: Option<Tracking>,
    /// Client-side caching ([`Config::cache`]).
    pub(crate) cache: Option<crate::Cache>,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    /// Seeds the reconnect jitter; each clone of a `Config` draws its own.
    pub(crate) backoff_seed: JitterSeed,
    pub(crate) subscriber_queue_limit: usize,
    /// Sends `READONLY` in the handshake (a cluster client's connections when it reads from
    /// replicas): connection state, so it survives reconnects. Not settable by users.
    pub(crate) readonly: bool,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::Tls>,
    /// A Sentinel-managed primary ([`Config::sentinel`]): its address is asked of the sentinels.
    pub(crate) sentinel: Option<Sentinel>,
    /// Where the connections of a client find the address to connect to at each attempt,
    /// when it is not `addr` (the sentinel watcher a client made with [`Config::sentinel`]
    /// shares with its dedicated connections and subscribers). Made by the client, never by
    /// the user.
    pub(crate) source: Option<Arc<dyn crate::engine::source::Source>>,
}

/// The settings of a Sentinel-managed primary ([`Config::sentinel`]).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Sentinel {
    /// The master name the sentinels monitor (`sentinel monitor <name> …`).
    pub(crate) master: String,
    /// The sentinels, asked in this order (one that answered moves to the front).
    pub(crate) sentinels: Vec<Addr>,
    /// `AUTH` for the sentinels, not the data nodes.
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    /// [`Config::sentinel_replica_reads`].
    pub(crate) replica_reads: bool,
    /// This is the configuration of a client's connection to a replica, for its reads: `ROLE`
    /// must say replica.
    pub(crate) for_replica: bool,
}

impl std::fmt::Debug for Sentinel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sentinel")
            .field("master", &self.master)
            .field("sentinels", &self.sentinels)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| Redacted))
            .field("replica_reads", &self.replica_reads)
            .finish()
    }
}

/// The seed of one connection's reconnect jitter ([`Config::reconnect_backoff`]).
///
/// Every value is drawn fresh, and so is every clone: the clients of a [`Pool`](crate::Pool)
/// or [`Spread`](crate::Spread), all made from clones of one `Config`, each get their own, so
/// after a server restart they spread their reconnects instead of arriving together. The draw
/// hashes a process-wide counter with the standard library's randomly keyed hasher (random per
/// process), so clients in different processes differ too. The connection core only reads the
/// number: it never draws one itself.
pub(crate) struct JitterSeed(u64);

impl JitterSeed {
    fn draw() -> JitterSeed {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::{AtomicU64, Ordering};
        static DRAWN: AtomicU64 = AtomicU64::new(0);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(DRAWN.fetch_add(1, Ordering::Relaxed));
        JitterSeed(h.finish())
    }

    /// The seed.
    pub(crate) fn get(&self) -> u64 {
        self.0
    }
}

impl Clone for JitterSeed {
    /// A fresh seed: see the type's docs.
    fn clone(&self) -> JitterSeed {
        JitterSeed::draw()
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Config {
            addr,
            username,
            password,
            db,
            client_name,
            autoconnect,
            connect_timeout,
            command_timeout,
            tcp_nodelay,
            tcp_keepalive,
            max_silent_timeouts,
            health_check,
            protocol,
            engine,
            limits,
            backoff_min,
            backoff_max,
            backoff_seed: _,
            subscriber_queue_limit,
            tracking,
            cache,
            readonly: _,
            #[cfg(feature = "tls")]
            tls,
            sentinel,
            source: _,
        } = self;
        let mut f = f.debug_struct("Config");
        f.field("addr", addr)
            .field("username", username)
            .field("password", &password.as_ref().map(|_| Redacted))
            .field("db", db)
            .field("client_name", client_name)
            .field("autoconnect", autoconnect)
            .field("connect_timeout", connect_timeout)
            .field("command_timeout", command_timeout)
            .field("tcp_nodelay", tcp_nodelay)
            .field("tcp_keepalive", tcp_keepalive)
            .field("max_silent_timeouts", max_silent_timeouts)
            .field("health_check", health_check)
            .field("protocol", protocol)
            .field("engine", engine)
            .field("limits", limits)
            .field("backoff_min", backoff_min)
            .field("backoff_max", backoff_max)
            .field("subscriber_queue_limit", subscriber_queue_limit)
            .field("tracking", tracking)
            .field("cache", cache)
            .field("sentinel", sentinel);
        #[cfg(feature = "tls")]
        f.field("tls", tls);
        f.finish()
    }
}

/// Stands for a secret in `Debug` output.
struct Redacted;

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// The default [`Config::tcp_keepalive`] idle time.
const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(60);
/// The default [`Config::max_silent_timeouts`].
const DEFAULT_SILENT_TIMEOUTS: u32 = 3;

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: Addr::Tcp {
                host: "127.0.0.1".to_owned(),
                port: 6379,
            },
            username: None,
            password: None,
            db: 0,
            client_name: None,
            autoconnect: true,
            connect_timeout: Duration::from_secs(5),
            command_timeout: Some(Duration::from_secs(30)),
            tcp_nodelay: true,
            tcp_keepalive: Some(DEFAULT_KEEPALIVE),
            max_silent_timeouts: Some(DEFAULT_SILENT_TIMEOUTS),
            health_check: None,
            protocol: Protocol::Resp3,
            engine: Engine::Auto,
            limits: Limits::default(),
            tracking: None,
            cache: None,
            backoff_min: Duration::from_millis(5),
            backoff_max: Duration::from_secs(1),
            backoff_seed: JitterSeed::draw(),
            subscriber_queue_limit: crate::inbox::DEFAULT_LIMIT,
            readonly: false,
            #[cfg(feature = "tls")]
            tls: None,
            sentinel: None,
            source: None,
        }
    }
}

impl Config {
    /// The defaults: `127.0.0.1:6379`, db 0, autoconnect, RESP3, 5 s connect timeout, 30 s
    /// command timeout, `TCP_NODELAY`, TCP keepalive after 60 s idle, and a connection given up
    /// after 3 calls in a row time out with nothing received
    /// ([`Config::max_silent_timeouts`]).
    pub fn new() -> Config {
        Config::default()
    }

    /// A primary managed by Redis Sentinel: the client asks the sentinels (in order; one that
    /// answered is asked first next time) `SENTINEL GET-MASTER-ADDR-BY-NAME master` before each
    /// connect attempt, connects there, and checks with `ROLE` that the node is the primary (a
    /// replica fails that attempt; the next one asks again). It follows failovers at once: it
    /// subscribes to `+switch-master` on the sentinels, and a connection to the old primary is
    /// closed (its calls in flight fail with [`Error::Connection`]) and made again to the new
    /// one; a lost connection asks the sentinels again before reconnecting. Calls made
    /// meanwhile wait for the connection within their timeouts ([`Config::connect_timeout`],
    /// [`Config::command_timeout`]); none is ever sent to a replica.
    ///
    /// The other settings ([`Config::username`], [`Config::password`], [`Config::db`],
    /// [`Config::protocol`], TLS…) are the data nodes'; the sentinels get the same protocol,
    /// timeouts, engine and TLS, and their own credentials
    /// ([`Config::sentinel_username`], [`Config::sentinel_password`]). The URL form is
    /// `redis+sentinel://host1:26379,host2:26379/mymaster` (see [`Config::from_url`]).
    /// [`Config::addr`] is then the first sentinel's address.
    ///
    /// When the sentinels cannot say where the primary is (none reachable, none knows the
    /// name, every one answers null), calls fail within the connect timeout with
    /// [`Error::Connection`] naming the master and each sentinel's answer.
    ///
    /// ```
    /// use ringdis::Config;
    /// let config = Config::sentinel("mymaster", [("10.0.0.1", 26379), ("10.0.0.2", 26379)])
    ///     .password("data-node-secret")
    ///     .sentinel_password("sentinel-secret");
    /// assert_eq!(config.sentinel_master(), Some("mymaster"));
    /// assert_eq!(config.addr().to_string(), "10.0.0.1:26379");
    /// ```
    ///
    /// A client made with no sentinel in the list is refused ([`Error::Client`]).
    pub fn sentinel<I, H>(master: impl Into<String>, sentinels: I) -> Config
    where
        I: IntoIterator<Item = (H, u16)>,
        H: Into<String>,
    {
        let sentinels: Vec<Addr> = sentinels
            .into_iter()
            .map(|(host, port)| Addr::Tcp {
                host: host.into(),
                port,
            })
            .collect();
        Config::new().with_sentinels(master.into(), sentinels)
    }

    /// Makes this the configuration of a Sentinel-managed primary (see [`Config::sentinel`]).
    pub(crate) fn with_sentinels(mut self, master: String, sentinels: Vec<Addr>) -> Config {
        if let Some(first) = sentinels.first() {
            self.addr = first.clone();
        }
        let (username, password, replica_reads) = match self.sentinel.take() {
            Some(s) => (s.username, s.password, s.replica_reads),
            None => (None, None, false),
        };
        self.sentinel = Some(Sentinel {
            master,
            sentinels,
            username,
            password,
            replica_reads,
            for_replica: false,
        });
        self
    }

    /// ACL user for the sentinels of [`Config::sentinel`] (sent with
    /// [`Config::sentinel_password`]); no effect on another configuration.
    pub fn sentinel_username(mut self, username: impl Into<String>) -> Config {
        if let Some(s) = &mut self.sentinel {
            s.username = Some(username.into());
        }
        self
    }

    /// Password for the sentinels of [`Config::sentinel`] (their `requirepass`, or the ACL
    /// user's); no effect on another configuration.
    pub fn sentinel_password(mut self, password: impl Into<String>) -> Config {
        if let Some(s) = &mut self.sentinel {
            s.password = Some(password.into());
        }
        self
    }

    /// Replica reads for a [`Config::sentinel`] configuration (default off; no effect on
    /// another configuration): the client keeps a second connection, to a healthy replica the
    /// sentinels list (`SENTINEL REPLICAS`: not down, its link to the primary up; checked with
    /// `ROLE`), and sends there each call of one command the spec flags `readonly` (`GET`,
    /// `HGETALL`, `ZRANGE`…, through the typed methods or [`Client::call`](crate::Client::call)),
    /// while that connection is up. Everything else goes to the primary: writes, commands with
    /// no flag (a hand-built `cmd!` is not read-only unless [`CmdFlags`](crate::CmdFlags) says
    /// so), pipelines, transactions, scripts, `async_call`, blocking commands and subscribers.
    ///
    /// A replica lags behind its primary: a read may not see a write made just before it. When
    /// no replica is reachable (none healthy, its connection lost), reads go to the primary; a
    /// read whose replica connection fails is sent again to the primary (a read-only command
    /// runs twice at worst, changing nothing). A failover picks the replica again.
    pub fn sentinel_replica_reads(mut self, on: bool) -> Config {
        if let Some(s) = &mut self.sentinel {
            s.replica_reads = on;
        }
        self
    }

    /// The master name of a [`Config::sentinel`] configuration.
    pub fn sentinel_master(&self) -> Option<&str> {
        self.sentinel.as_ref().map(|s| s.master.as_str())
    }

    /// The sentinels of a [`Config::sentinel`] configuration (empty otherwise), in the order
    /// given.
    pub fn sentinels(&self) -> &[Addr] {
        self.sentinel.as_ref().map_or(&[], |s| &s.sentinels)
    }

    /// Server host name or address (TCP).
    pub fn host(mut self, host: impl Into<String>) -> Config {
        let port = match self.addr {
            Addr::Tcp { port, .. } => port,
            Addr::Unix(_) => 6379,
        };
        self.addr = Addr::Tcp {
            host: host.into(),
            port,
        };
        self
    }

    /// Server port (TCP).
    pub fn port(mut self, port: u16) -> Config {
        let host = match self.addr {
            Addr::Tcp { host, .. } => host,
            Addr::Unix(_) => "127.0.0.1".to_owned(),
        };
        self.addr = Addr::Tcp { host, port };
        self
    }

    /// Connects through TLS with these settings (`tls` feature; a `rediss://` or `valkeys://`
    /// URL sets [`Tls::new`](crate::Tls::new)). TLS works on every [`Engine`]: rustls sits
    /// between the socket and the connection's protocol state, and the `HELLO`/`AUTH`
    /// handshake goes through it. [`Config::connect_timeout`] covers the TLS handshake.
    ///
    /// A server whose certificate does not verify (unknown issuer, another name, expired), or
    /// that refuses the client's, fails the calls waiting for the connection at once with
    /// [`Error::Connection`](crate::Error::Connection) naming the cause; the next call tries
    /// again. Over a unix socket (Redis serves TLS on TCP only, but a TLS proxy may listen on
    /// one) the name to check must be set with [`Tls::server_name`](crate::Tls::server_name).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, tls: crate::Tls) -> Config {
        self.tls = Some(tls);
        self
    }

    /// Connect through a unix domain socket instead of TCP.
    pub fn unix_socket(mut self, path: impl Into<PathBuf>) -> Config {
        self.addr = Addr::Unix(path.into());
        self
    }

    /// ACL user name, sent with [`Config::password`] (a client made with a user name and no
    /// password is refused with [`Error::Client`](crate::Error::Client): the user would never be
    /// sent).
    pub fn username(mut self, username: impl Into<String>) -> Config {
        self.username = Some(username.into());
        self
    }

    /// Password; sent on every (re)connect.
    pub fn password(mut self, password: impl Into<String>) -> Config {
        self.password = Some(password.into());
        self
    }

    /// Database number; selected on every (re)connect.
    pub fn db(mut self, db: i64) -> Config {
        self.db = db;
        self
    }

    /// Connection name (`CLIENT SETNAME`), set on every (re)connect.
    pub fn client_name(mut self, name: impl Into<String>) -> Config {
        self.client_name = Some(name.into());
        self
    }

    /// Whether the first call connects and a call after a lost connection reconnects (default
    /// `true`). Without it, calls fail fast with [`Error::Connection`] until
    /// [`Client::connect`](crate::Client::connect) succeeds.
    pub fn autoconnect(mut self, on: bool) -> Config {
        self.autoconnect = on;
        self
    }

    /// How long connecting (with retries and the handshake) may take before the calls waiting
    /// for it fail (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Config {
        self.connect_timeout = crate::timer::bounded(timeout);
        self
    }

    /// How long a call may wait for its reply before it fails with [`Error::Timeout`] (default
    /// 30 s; `None` waits for ever, which blocking commands with no timeout need). This and
    /// every other duration ringdis is given (timeouts, intervals, block times) counts as at most
    /// 100 years, so `Duration::MAX` is a way to say "no limit".
    pub fn command_timeout(mut self, timeout: Option<Duration>) -> Config {
        self.command_timeout = timeout.map(crate::timer::bounded);
        self
    }

    /// `TCP_NODELAY` on the socket (default `true`).
    pub fn tcp_nodelay(mut self, on: bool) -> Config {
        self.tcp_nodelay = on;
        self
    }

    /// TCP keepalive (default `Some(60 s)`; `None` turns it off). With `Some(idle)` the kernel
    /// probes a connection that has carried nothing for `idle`, every `idle / 3` (at least 1 s)
    /// after that, and closes it after 3 unanswered probes, as `redis-server`'s own
    /// `tcp-keepalive` does. A peer that vanished (host down, network partition, NAT entry
    /// gone) is then found within about `2 × idle` even when no call is made, the connection
    /// fails with [`Error::Connection`](crate::Error::Connection) and the next call reconnects;
    /// the probes also keep NAT and firewall entries from expiring on an idle connection.
    /// 60 s is below the idle limits of common NATs and load balancers (often 2 to 5 minutes)
    /// and costs one small packet a minute on an idle connection. A server process that is
    /// alive but stuck (stopped, wedged) still answers probes from its kernel: the liveness rule
    /// ([`Config::max_silent_timeouts`]) covers that. Unix sockets have no keepalive.
    pub fn tcp_keepalive(mut self, idle: Option<Duration>) -> Config {
        self.tcp_keepalive = idle;
        self
    }

    /// The liveness rule (default `Some(3)`): once `n` calls in a row have timed out with no
    /// byte received from the server since the first of them was sent, the server is taken
    /// to have stopped answering (stopped process, half-open connection, partition) and the
    /// connection is closed. Every call in flight on it then fails with
    /// [`Error::Connection`](crate::Error::Connection) (the calls that timed out have already
    /// failed with [`Error::Timeout`](crate::Error::Timeout)), the replies they were waiting for
    /// are forgotten, so memory stays bounded however many calls time out, and the next call
    /// reconnects. Any byte from the server resets the count, so a slow server that does answer
    /// is never cut off by this rule. A call handed to the socket only after its deadline (the
    /// engine ran late: blocking code on the thread of the runtime a task-engine client lives
    /// on) times out without counting, since the server never had the time to answer it. Only
    /// calls with a deadline
    /// ([`Config::command_timeout`]) can time out; fire-and-forget calls
    /// ([`Client::async_call`](crate::Client::async_call) without a callback) count too.
    /// `None` turns the rule off: a connection whose server stops answering then stays up until
    /// the kernel gives up on it, and the calls that timed out on it stay queued until their
    /// late replies arrive.
    ///
    /// `Some(0)` is taken as `Some(1)`.
    pub fn max_silent_timeouts(mut self, n: Option<u32>) -> Config {
        self.max_silent_timeouts = n.map(|n| n.max(1));
        self
    }

    /// Health checks of an idle connection (default `None`: off). With `Some(interval)`, once
    /// the connection is ready, has no caller's call awaiting a reply (a blocking command may
    /// keep it silent for as long as it likes) and has received nothing for `interval`, it
    /// sends a `PING`; if nothing at all is received within another `interval`,
    /// the server is taken to have stopped answering and the connection is closed, as by the
    /// liveness rule ([`Config::max_silent_timeouts`]): calls in flight fail with
    /// [`Error::Connection`](crate::Error::Connection) and the next call (or, for a
    /// [`Subscriber`](crate::Subscriber), the subscriber itself) reconnects. An idle connection
    /// then costs one `PING` per `interval`.
    ///
    /// The liveness rule needs calls that time out; this finds a stopped or wedged server on a
    /// connection that makes no calls, such as a subscriber's, before anyone waits on it.
    pub fn health_check(mut self, interval: Option<Duration>) -> Config {
        self.health_check = interval.filter(|d| !d.is_zero()).map(crate::timer::bounded);
        self
    }

    /// The protocol to speak (default RESP3 with RESP2 fallback).
    pub fn protocol(mut self, protocol: Protocol) -> Config {
        self.protocol = protocol;
        self
    }

    /// The engine that drives the connection (default [`Engine::Auto`]; see [`Engine`]).
    pub fn engine(mut self, engine: Engine) -> Config {
        self.engine = engine;
        self
    }

    /// Parser limits against broken or hostile servers.
    pub fn limits(mut self, limits: Limits) -> Config {
        self.limits = limits;
        self
    }

    /// Server-assisted tracking for a cache of your own: `CLIENT TRACKING ON` with these
    /// options, sent on every (re)connect (and on the dedicated connections of blocking
    /// calls), so tracking never silently stops. For a cache the client keeps and invalidates
    /// itself (`client.get("k").cached()`), use [`Config::cache`] instead: the two exclude
    /// each other.
    /// Invalidations arrive as RESP3 pushes: see [`Client::on_push`](crate::Client::on_push).
    /// When such a connection is lost (or closed), the server forgets the keys it tracked for it,
    /// so the push handler then gets `invalidate` with a nil payload, the push servers send
    /// after `FLUSHALL`: drop everything cached.
    /// `CLIENT TRACKING` sent as a command is refused, since a reconnect would lose it.
    /// It needs [`Protocol::Resp3`] (the default): in RESP2 the server sends invalidations only
    /// to a `REDIRECT` connection, so a client with tracking and [`Protocol::Resp2`] is refused
    /// when made ([`Error::Client`](crate::Error::Client)).
    ///
    /// ```
    /// use ringdis::{Config, Tracking};
    /// let config = Config::new().tracking(Tracking::new().bcast().prefix("user:").noloop());
    /// ```
    pub fn tracking(mut self, tracking: Tracking) -> Config {
        self.tracking = Some(tracking);
        self
    }

    /// Client-side caching (off by default): replies of cached reads
    /// (`client.get("k").cached()`) kept in memory and answered from there, with no round trip,
    /// until the server says their keys changed (see [`Cache`](crate::Cache) for its settings:
    /// budget, lifetime, `OPTIN`, `BCAST`).
    ///
    /// The client turns `CLIENT TRACKING` on for its connection itself, in the handshake of
    /// every (re)connect; invalidations are applied as they arrive, in order with the replies,
    /// and a lost connection drops everything cached (the server forgot what it tracked). A
    /// write sent through the client drops the entries of its keys before it is sent, so the
    /// client reads its own writes: every command not flagged read-only (writes, scripts'
    /// keys), a hand-built one (`cmd!("SET", "k", "v")`) by the keys the spec finds in it; a
    /// module's command only by the keys marked on it ([`Cmd::key`](crate::Cmd::key)).
    /// [`Client::on_push`](crate::Client::on_push) still gets the `invalidate` pushes. A
    /// [`Pool`](crate::Pool), a [`Spread`](crate::Spread) and a
    /// [`ClusterClient`](crate::ClusterClient) keep one cache for all their connections. The
    /// dedicated connections of blocking calls and `watch_transaction` cache nothing and track
    /// nothing. Without a cache, a cached read is simply sent.
    ///
    /// It needs RESP3 (invalidations are pushes on the connection itself): with
    /// [`Protocol::Resp2`] the client is refused when made, and a server that does not speak
    /// RESP3 (before Redis 6) fails the connection attempt, both with
    /// [`Error::Client`](crate::Error::Client). [`Config::tracking`] with it is refused too
    /// (the cache turns tracking on itself).
    ///
    /// There is no URL parameter for it ([`Config::from_url`] ignores a `cache=`), as in
    /// redis-rs and rueidis: the reads that may be answered from memory are chosen in code
    /// (`.cached()`), so is the cache that serves them.
    ///
    /// ```
    /// use ringdis::{Cache, Config};
    /// use std::time::Duration;
    /// let config = Config::new().cache(Cache::new().max_bytes(16 << 20).ttl(Duration::from_secs(10)));
    /// ```
    pub fn cache(mut self, cache: crate::Cache) -> Config {
        self.cache = Some(cache);
        self
    }

    /// Reconnect backoff: the delays between reconnect attempts grow from `min` to `max`
    /// (defaults 5 ms and 1 s; a `max` below `min` counts as `min`), with jitter so that many
    /// clients that lost a restarting server do not all retry at the same moments.
    ///
    /// Retry `n` (from 0) waits a uniformly random delay in `[max(min, d/2), d]` with
    /// `d = min(max, min · 2^(n+1))` ("equal jitter"): with the defaults 5–10 ms, then 10–20 ms,
    /// 20–40 ms… and 0.5–1 s once the cap is reached; never below `min` nor above `max`. Each
    /// connection draws its own random sequence (clients made from clones of one `Config`, as a
    /// [`Pool`](crate::Pool)'s, included). A successful connection starts again from retry 0.
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Config {
        let (min, max) = (crate::timer::bounded(min), crate::timer::bounded(max));
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }

    /// How many bytes of unread messages a [`Subscriber`](crate::Subscriber) holds (default
    /// 32 MiB, the servers' own default hard limit for a pub/sub client's output buffer).
    ///
    /// A subscriber reads from its socket as fast as the server sends, so replies to `PING` and
    /// (un)subscribes are never stuck behind unread messages; this limit is what bounds its
    /// memory when the reader falls behind. A message counts for its channel, pattern and payload
    /// bytes plus 64 bytes (and about 40 more per element of a payload that is an array). A
    /// message that arrives while the queue is full is dropped and counted, and the reader gets
    /// one [`Error::Lagged`](crate::Error::Lagged) `{ dropped }` at the point of the stream where
    /// messages went missing, then the messages that arrived once there was room again. A
    /// message is always taken when the queue is empty, even one larger than the limit.
    pub fn subscriber_queue_limit(mut self, bytes: usize) -> Config {
        self.subscriber_queue_limit = bytes;
        self
    }

    /// Where the client connects; for a [`Config::sentinel`] configuration, the first
    /// sentinel's address (the primary's is asked of the sentinels at every connect attempt).
    pub fn addr(&self) -> &Addr {
        &self.addr
    }

    /// The database selected on connect.
    pub fn db_index(&self) -> i64 {
        self.db
    }
}

/// The options of `CLIENT TRACKING ON` for [`Config::tracking`] (all off by default). `REDIRECT`
/// is not offered: it names another connection by id, which changes on every reconnect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tracking {
    prefixes: Vec<String>,
    bcast: bool,
    optin: bool,
    optout: bool,
    noloop: bool,
}

impl Tracking {
    /// Tracking of the keys this connection reads (the server's default mode).
    pub fn new() -> Tracking {
        Tracking::default()
    }

    /// `BCAST`: invalidations for every key matching the prefixes, read or not.
    pub fn bcast(mut self) -> Tracking {
        self.bcast = true;
        self
    }

    /// `PREFIX p` (with `BCAST`); may be given several times.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Tracking {
        self.prefixes.push(prefix.into());
        self
    }

    /// `OPTIN`: track only the reads right after `CLIENT CACHING YES` (send both in one
    /// pipeline).
    pub fn optin(mut self) -> Tracking {
        self.optin = true;
        self
    }

    /// `OPTOUT`: track every read except those right after `CLIENT CACHING NO`.
    pub fn optout(mut self) -> Tracking {
        self.optout = true;
        self
    }

    /// `NOLOOP`: no invalidations for this connection's own writes.
    pub fn noloop(mut self) -> Tracking {
        self.noloop = true;
        self
    }

    /// The command that turns it on.
    pub(crate) fn cmd(&self) -> crate::Cmd {
        let mut cmd = crate::Cmd::new("CLIENT TRACKING ON");
        for p in &self.prefixes {
            cmd.push_arg("PREFIX").push_arg(p);
        }
        for (on, word) in [
            (self.bcast, "BCAST"),
            (self.optin, "OPTIN"),
            (self.optout, "OPTOUT"),
            (self.noloop, "NOLOOP"),
        ] {
            if on {
                cmd.push_arg(word);
            }
        }
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let c = Config::from_url("redis://app:hunter2@h:1/2")
            .unwrap()
            .client_name("svc");
        let text = format!("{c:?} {c:#?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains(r#"password: Some("<redacted>")"#), "{text}");
        assert!(text.contains(r#"username: Some("app")"#), "{text}");
        assert!(format!("{:?}", Config::new()).contains("password: None"));
    }

    #[test]
    fn each_config_and_each_clone_seeds_its_own_jitter() {
        let a = Config::new();
        let seeds = [
            a.backoff_seed.get(),
            a.clone().backoff_seed.get(),
            a.clone().backoff_seed.get(),
            Config::new().backoff_seed.get(),
        ];
        let distinct: std::collections::BTreeSet<u64> = seeds.iter().copied().collect();
        assert_eq!(distinct.len(), seeds.len(), "{seeds:?}");
        // The seed is no setting: Debug does not show it.
        assert!(!format!("{a:?}").contains("seed"));
    }
}
