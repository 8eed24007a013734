//! The clients under test, behind one small trait so workloads do not care whose they are:
//! ringdis (on each engine), redis-rs (`MultiplexedConnection` and `ConnectionManager`) and
//! fred, each alone or as [`Many`] connections (workload 7). Each uses its own ordinary API the way its documentation shows, decoding into the type a
//! user would pick (`Option<Bytes>` for ringdis and fred, `Option<Vec<u8>>` for redis-rs).

use ringdis::{cmd, Client, Commands, Config, Engine, FromRedis, Pipeline, Spread};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

/// What a workload needs from a client. Errors abort the benchmark: a benchmark that silently
/// counts failures measures nothing. Replies are handed back so the workload can check them.
pub trait BenchClient: Clone + Send + Sync + 'static {
    /// What a GET gives back.
    type Value: AsRef<[u8]> + Send;
    /// A label for the report (e.g. `ringdis/io_uring`).
    fn name(&self) -> String;
    /// `GET key`.
    fn get(&mut self, key: &str) -> impl Future<Output = Option<Self::Value>> + Send;
    /// `SET key value`.
    fn set(&mut self, key: &str, value: &[u8]) -> impl Future<Output = ()> + Send;
    /// `GET` of every key, as one pipeline.
    fn get_pipelined(&mut self, keys: &[String]) -> impl Future<Output = ()> + Send;
    /// `SET` of every `(key, value)`, as one explicit pipeline (one round trip); the number of
    /// `OK` replies.
    fn set_pipelined(
        &mut self,
        kvs: &[(String, bytes::Bytes)],
    ) -> impl Future<Output = usize> + Send;
    /// `HGETALL key`, decoded into a [`Record`] by the client's own means.
    fn hgetall_record(&mut self, key: &str) -> impl Future<Output = Record> + Send;
    /// The handle the workload's task `t` calls through: a clone, except for [`Many`], which
    /// binds the task to one of its connections.
    fn for_task(&self, _t: usize) -> Self {
        self.clone()
    }
}

/// Several connections of one client library used as one (workload 7): the workload's task `t`
/// calls through connection `t % n` only, so each connection serves the same number of tasks
/// whoever's client it is (ringdis: the clients of a `Spread`; redis-rs: that many
/// `MultiplexedConnection`s; fred: the clients of its `Pool`).
#[derive(Clone)]
pub struct Many<C> {
    members: Arc<[C]>,
    /// The member this handle calls through.
    current: C,
}

impl<C: BenchClient> Many<C> {
    /// At least one member.
    pub fn new(members: Vec<C>) -> Many<C> {
        let members: Arc<[C]> = members.into();
        let current = members
            .first()
            .expect("a Many needs at least one connection")
            .clone();
        Many { members, current }
    }
}

impl<C: BenchClient> BenchClient for Many<C> {
    type Value = C::Value;

    fn name(&self) -> String {
        self.current.name()
    }

    fn get(&mut self, key: &str) -> impl Future<Output = Option<C::Value>> + Send {
        self.current.get(key)
    }

    fn set(&mut self, key: &str, value: &[u8]) -> impl Future<Output = ()> + Send {
        self.current.set(key, value)
    }

    fn get_pipelined(&mut self, keys: &[String]) -> impl Future<Output = ()> + Send {
        self.current.get_pipelined(keys)
    }

    fn set_pipelined(
        &mut self,
        kvs: &[(String, bytes::Bytes)],
    ) -> impl Future<Output = usize> + Send {
        self.current.set_pipelined(kvs)
    }

    fn hgetall_record(&mut self, key: &str) -> impl Future<Output = Record> + Send {
        self.current.hgetall_record(key)
    }

    fn for_task(&self, t: usize) -> Self {
        Many {
            members: self.members.clone(),
            current: self.members[t % self.members.len()].clone(),
        }
    }
}

/// The 20-field hash of workload 6, as a typed struct: ten strings and ten integers (which
/// arrive as strings and must be parsed). ringdis decodes it with `#[derive(FromRedis)]`, in one
/// pass over the reply; redis-rs and fred through their own `HashMap` conversions, which is what
/// their documentation shows for a struct (`FromRedisValue` / `FromValue` impls below).
#[derive(FromRedis, Debug, Clone, PartialEq, Default)]
pub struct Record {
    pub name: String,
    pub email: String,
    pub city: String,
    pub country: String,
    pub plan: String,
    pub status: String,
    pub referrer: String,
    pub language: String,
    pub timezone: String,
    pub device: String,
    pub age: u32,
    pub visits: u64,
    pub logins: u64,
    pub purchases: u64,
    pub score: i64,
    pub balance: i64,
    pub created: i64,
    pub updated: i64,
    pub level: u32,
    pub flags: u64,
}

impl Record {
    /// The record the harness writes, as `HSET` field/value pairs.
    pub fn sample() -> Record {
        Record {
            name: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
            city: "London".into(),
            country: "United Kingdom".into(),
            plan: "enterprise".into(),
            status: "active".into(),
            referrer: "https://example.com/analytical-engine".into(),
            language: "en-GB".into(),
            timezone: "Europe/London".into(),
            device: "difference-engine-2".into(),
            age: 36,
            visits: 18_151_210,
            logins: 1843,
            purchases: 42,
            score: -1_234_567,
            balance: 99_999_999_999,
            created: 1_700_000_000,
            updated: 1_732_000_000,
            level: 7,
            flags: 0xdead_beef,
        }
    }

    /// `field value` pairs, as the harness writes them with `HSET`.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("email", self.email.clone()),
            ("city", self.city.clone()),
            ("country", self.country.clone()),
            ("plan", self.plan.clone()),
            ("status", self.status.clone()),
            ("referrer", self.referrer.clone()),
            ("language", self.language.clone()),
            ("timezone", self.timezone.clone()),
            ("device", self.device.clone()),
            ("age", self.age.to_string()),
            ("visits", self.visits.to_string()),
            ("logins", self.logins.to_string()),
            ("purchases", self.purchases.to_string()),
            ("score", self.score.to_string()),
            ("balance", self.balance.to_string()),
            ("created", self.created.to_string()),
            ("updated", self.updated.to_string()),
            ("level", self.level.to_string()),
            ("flags", self.flags.to_string()),
        ]
    }

    /// Builds a record from a field map, the way a peer's user would (missing or malformed
    /// fields are errors).
    pub fn from_map(mut m: HashMap<String, String>) -> Result<Record, String> {
        fn s(m: &mut HashMap<String, String>, f: &str) -> Result<String, String> {
            m.remove(f).ok_or_else(|| format!("missing field {f}"))
        }
        fn n<T: std::str::FromStr>(m: &mut HashMap<String, String>, f: &str) -> Result<T, String> {
            s(m, f)?
                .parse()
                .map_err(|_| format!("field {f} is not a number"))
        }
        let m = &mut m;
        Ok(Record {
            name: s(m, "name")?,
            email: s(m, "email")?,
            city: s(m, "city")?,
            country: s(m, "country")?,
            plan: s(m, "plan")?,
            status: s(m, "status")?,
            referrer: s(m, "referrer")?,
            language: s(m, "language")?,
            timezone: s(m, "timezone")?,
            device: s(m, "device")?,
            age: n(m, "age")?,
            visits: n(m, "visits")?,
            logins: n(m, "logins")?,
            purchases: n(m, "purchases")?,
            score: n(m, "score")?,
            balance: n(m, "balance")?,
            created: n(m, "created")?,
            updated: n(m, "updated")?,
            level: n(m, "level")?,
            flags: n(m, "flags")?,
        })
    }
}

impl redis::FromRedisValue for Record {
    fn from_redis_value(v: redis::Value) -> Result<Self, redis::ParsingError> {
        let map: HashMap<String, String> = redis::FromRedisValue::from_redis_value(v)?;
        Record::from_map(map).map_err(redis::ParsingError::from)
    }
}

impl fred::types::FromValue for Record {
    fn from_value(v: fred::types::Value) -> Result<Self, fred::error::Error> {
        let map: HashMap<String, String> = v.convert()?;
        Record::from_map(map).map_err(|e| fred::error::Error::new(fred::error::ErrorKind::Parse, e))
    }
}

/// The ringdis engines every comparison runs, in report order: the task engine (the default
/// under tokio), the io_uring ring engine and its epoll twin.
pub const ENGINES: [Engine; 3] = [Engine::Task, Engine::IoUring, Engine::Epoll];

/// The report's label for ringdis on `engine` (e.g. `ringdis/io_uring`).
pub fn engine_name(engine: Engine) -> String {
    match engine {
        Engine::IoUring => "ringdis/io_uring",
        Engine::Epoll => "ringdis/epoll",
        Engine::Task => "ringdis/task",
        Engine::Auto => "ringdis/auto",
    }
    .to_owned()
}

/// ringdis on one engine.
#[derive(Clone)]
pub struct Ringdis {
    client: Client,
}

/// The CA a `rediss://` benchmark server's certificate chains to (`--all --tls`), set once
/// before any client connects.
pub static TLS_CA: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

impl Ringdis {
    /// A connected client on `engine` (forced: no silent fallback in a benchmark).
    pub async fn connect(url: &str, engine: Engine) -> Ringdis {
        let client = Client::new(Ringdis::config(url, engine)).expect("client");
        assert_eq!(client.engine(), engine);
        client.connect().await.expect("connect");
        Ringdis { client }
    }

    fn config(url: &str, engine: Engine) -> Config {
        let config = Config::from_url(url)
            .expect("benchmark URL parses")
            .engine(engine);
        match TLS_CA.get() {
            Some(ca) => config.tls(ringdis::Tls::new().ca_file(ca).expect("the bench CA")),
            None => config,
        }
    }

    /// A connected `Spread` of `connections` clients on `engine`, its members bound to tasks.
    pub async fn spread(url: &str, engine: Engine, connections: usize) -> Many<Ringdis> {
        let spread = Spread::new(Ringdis::config(url, engine), connections).expect("spread");
        spread.connect().await.expect("connect");
        Many::new(
            spread
                .clients()
                .iter()
                .map(|c| {
                    assert_eq!(c.engine(), engine);
                    Ringdis { client: c.clone() }
                })
                .collect(),
        )
    }

    /// Sends `cmd` and checks only that the reply is not an error (for setting up data).
    pub async fn call_raw(&self, cmd: ringdis::Cmd) {
        self.client
            .call::<ringdis::Value>(cmd)
            .await
            .expect("setup command");
    }
}

impl BenchClient for Ringdis {
    type Value = bytes::Bytes;

    fn name(&self) -> String {
        engine_name(self.client.engine())
    }

    fn get(&mut self, key: &str) -> impl Future<Output = Option<bytes::Bytes>> + Send {
        let call = (&self.client).get(key);
        async move { call.await.expect("GET") }
    }

    fn set(&mut self, key: &str, value: &[u8]) -> impl Future<Output = ()> + Send {
        let call = (&self.client).set(key, value);
        async move {
            call.await.expect("SET");
        }
    }

    fn get_pipelined(&mut self, keys: &[String]) -> impl Future<Output = ()> + Send {
        let mut p: Pipeline = self.client.pipeline();
        for k in keys {
            p.add(cmd!("GET", k.as_str()));
        }
        let call = p.query::<Vec<Option<Vec<u8>>>>();
        async move {
            call.await.expect("pipeline");
        }
    }

    fn set_pipelined(
        &mut self,
        kvs: &[(String, bytes::Bytes)],
    ) -> impl Future<Output = usize> + Send {
        let mut p: Pipeline = self.client.pipeline();
        for (k, v) in kvs {
            p.set(k.as_str(), v).send();
        }
        let call = p.query::<Vec<String>>();
        async move {
            let oks = call.await.expect("pipeline");
            oks.iter().filter(|s| *s == "OK").count()
        }
    }

    fn hgetall_record(&mut self, key: &str) -> impl Future<Output = Record> + Send {
        let call = (&self.client).hgetall(key).decode::<Record>();
        async move { call.await.expect("HGETALL") }
    }
}

/// redis-rs over one `MultiplexedConnection`, over a `ConnectionManager` (which wraps one and
/// reconnects), or over a cluster (`cluster-async`: one multiplexed connection per node).
#[derive(Clone)]
pub enum RedisRs {
    Multiplexed(redis::aio::MultiplexedConnection),
    Manager(redis::aio::ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

/// A redis-rs client for `url`, trusting [`TLS_CA`] when set.
fn redis_client(url: &str) -> redis::Client {
    match TLS_CA.get() {
        Some(ca) => {
            let root_cert = Some(std::fs::read(ca).expect("the bench CA"));
            let certs = redis::TlsCertificates {
                client_tls: None,
                root_cert,
            };
            redis::Client::build_with_tls(url, certs).expect("redis-rs TLS client")
        }
        None => redis::Client::open(url).expect("redis-rs client"),
    }
}

impl RedisRs {
    pub async fn multiplexed(url: &str) -> RedisRs {
        let client = redis_client(url);
        RedisRs::Multiplexed(
            client
                .get_multiplexed_async_connection()
                .await
                .expect("redis-rs connect"),
        )
    }

    /// `connections` multiplexed connections of one `redis::Client`.
    pub async fn multiplexed_many(url: &str, connections: usize) -> Many<RedisRs> {
        let client = redis::Client::open(url).expect("redis-rs client");
        let mut members = Vec::with_capacity(connections);
        for _ in 0..connections {
            members.push(RedisRs::Multiplexed(
                client
                    .get_multiplexed_async_connection()
                    .await
                    .expect("redis-rs connect"),
            ));
        }
        Many::new(members)
    }

    pub async fn manager(url: &str) -> RedisRs {
        let client = redis_client(url);
        RedisRs::Manager(
            redis::aio::ConnectionManager::new(client)
                .await
                .expect("redis-rs connect"),
        )
    }

    /// redis-rs's cluster client (`redis::cluster::ClusterClient`, its defaults: primaries
    /// only) from `seeds`, connected.
    pub async fn cluster(seeds: &[String]) -> RedisRs {
        let client = redis::cluster::ClusterClient::new(seeds.to_vec()).expect("redis-rs cluster");
        RedisRs::Cluster(
            client
                .get_async_connection()
                .await
                .expect("redis-rs cluster connect"),
        )
    }

    async fn query<T: redis::FromRedisValue>(&mut self, c: redis::Cmd) -> T {
        match self {
            RedisRs::Multiplexed(m) => c.query_async(m).await,
            RedisRs::Manager(m) => c.query_async(m).await,
            RedisRs::Cluster(m) => c.query_async(m).await,
        }
        .expect("redis-rs command")
    }

    async fn query_pipe<T: redis::FromRedisValue>(&mut self, p: redis::Pipeline) -> T {
        match self {
            RedisRs::Multiplexed(m) => p.query_async(m).await,
            RedisRs::Manager(m) => p.query_async(m).await,
            RedisRs::Cluster(m) => p.query_async(m).await,
        }
        .expect("redis-rs pipeline")
    }
}

impl BenchClient for RedisRs {
    type Value = Vec<u8>;

    fn name(&self) -> String {
        match self {
            RedisRs::Multiplexed(_) => "redis-rs/multiplexed".to_owned(),
            RedisRs::Manager(_) => "redis-rs/manager".to_owned(),
            RedisRs::Cluster(_) => "redis-rs/cluster-async".to_owned(),
        }
    }

    fn get(&mut self, key: &str) -> impl Future<Output = Option<Vec<u8>>> + Send {
        let mut c = redis::cmd("GET");
        c.arg(key);
        self.query(c)
    }

    fn set(&mut self, key: &str, value: &[u8]) -> impl Future<Output = ()> + Send {
        let mut c = redis::cmd("SET");
        c.arg(key).arg(value);
        self.query(c)
    }

    fn get_pipelined(&mut self, keys: &[String]) -> impl Future<Output = ()> + Send {
        let mut p = redis::pipe();
        for k in keys {
            p.cmd("GET").arg(k);
        }
        async move {
            let _: Vec<Option<Vec<u8>>> = self.query_pipe(p).await;
        }
    }

    fn set_pipelined(
        &mut self,
        kvs: &[(String, bytes::Bytes)],
    ) -> impl Future<Output = usize> + Send {
        let mut p = redis::pipe();
        for (k, v) in kvs {
            p.cmd("SET").arg(k).arg(v.as_ref());
        }
        async move {
            let oks: Vec<String> = self.query_pipe(p).await;
            oks.iter().filter(|s| *s == "OK").count()
        }
    }

    fn hgetall_record(&mut self, key: &str) -> impl Future<Output = Record> + Send {
        let mut c = redis::cmd("HGETALL");
        c.arg(key);
        self.query(c)
    }
}

/// fred's `Client` (one connection, its defaults: automatic pipelining on), or its clustered
/// client (`ServerConfig::Clustered`: one connection per primary).
#[derive(Clone)]
pub struct Fred {
    client: fred::clients::Client,
    clustered: bool,
}

impl Fred {
    pub async fn connect(url: &str) -> Fred {
        let config = fred::types::config::Config::from_url(url).expect("fred config");
        Fred::init(config, false).await
    }

    /// fred's clustered client from `seeds` (`redis://host:port` URLs), its defaults otherwise.
    pub async fn clustered(seeds: &[String]) -> Fred {
        let hosts = seeds
            .iter()
            .map(|u| {
                let (host, port) = u
                    .trim_start_matches("redis://")
                    .trim_end_matches('/')
                    .rsplit_once(':')
                    .expect("seed URLs are redis://host:port");
                (host.to_owned(), port.parse::<u16>().expect("seed port"))
            })
            .collect();
        let config = fred::types::config::Config {
            server: fred::types::config::ServerConfig::new_clustered(hosts),
            ..Default::default()
        };
        Fred::init(config, true).await
    }

    async fn init(config: fred::types::config::Config, clustered: bool) -> Fred {
        use fred::interfaces::ClientLike;
        let client = fred::types::Builder::from_config(config)
            .build()
            .expect("fred client");
        client.init().await.expect("fred connect");
        Fred { client, clustered }
    }

    /// fred's `Pool` of `connections` clients; give it back to [`Fred::quit_pool`] when done.
    pub async fn pool(url: &str, connections: usize) -> (fred::clients::Pool, Many<Fred>) {
        use fred::interfaces::ClientLike;
        let config = fred::types::config::Config::from_url(url).expect("fred config");
        let pool = fred::types::Builder::from_config(config)
            .build_pool(connections)
            .expect("fred pool");
        pool.init().await.expect("fred connect");
        let members = pool
            .clients()
            .iter()
            .map(|c| Fred {
                client: c.clone(),
                clustered: false,
            })
            .collect();
        (pool, Many::new(members))
    }

    /// Closes a pool's connections (fred's connection tasks outlive dropped handles).
    pub async fn quit_pool(pool: fred::clients::Pool) {
        use fred::interfaces::ClientLike;
        pool.quit().await.expect("fred quit");
    }
}

impl BenchClient for Fred {
    type Value = bytes::Bytes;

    fn name(&self) -> String {
        if self.clustered {
            "fred/clustered"
        } else {
            "fred"
        }
        .to_owned()
    }

    fn get(&mut self, key: &str) -> impl Future<Output = Option<bytes::Bytes>> + Send {
        use fred::interfaces::KeysInterface;
        async move { self.client.get(key).await.expect("fred GET") }
    }

    fn set(&mut self, key: &str, value: &[u8]) -> impl Future<Output = ()> + Send {
        use fred::interfaces::KeysInterface;
        async move {
            let () = self
                .client
                .set(key, value, None, None, false)
                .await
                .expect("fred SET");
        }
    }

    fn get_pipelined(&mut self, keys: &[String]) -> impl Future<Output = ()> + Send {
        use fred::interfaces::KeysInterface;
        async move {
            let p = self.client.pipeline();
            for k in keys {
                let () = p.get(k.as_str()).await.expect("fred pipeline");
            }
            let _: Vec<Option<bytes::Bytes>> = p.all().await.expect("fred pipeline");
        }
    }

    fn set_pipelined(
        &mut self,
        kvs: &[(String, bytes::Bytes)],
    ) -> impl Future<Output = usize> + Send {
        use fred::interfaces::KeysInterface;
        async move {
            let p = self.client.pipeline();
            for (k, v) in kvs {
                let () = p
                    .set(k.as_str(), v.clone(), None, None, false)
                    .await
                    .expect("fred pipeline");
            }
            let oks: Vec<String> = p.all().await.expect("fred pipeline");
            oks.iter().filter(|s| *s == "OK").count()
        }
    }

    fn hgetall_record(&mut self, key: &str) -> impl Future<Output = Record> + Send {
        use fred::interfaces::HashesInterface;
        async move { self.client.hgetall(key).await.expect("fred HGETALL") }
    }
}
