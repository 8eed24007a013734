//! The clients of the cache workload (`ringdis-bench cache`, issue #15), behind one small trait:
//! ringdis without and with its client-side cache (`Config::cache`, reads with `.cached()`),
//! and redis-rs over one `MultiplexedConnection` (RESP3) without and with its `cache-aio`
//! (`CacheConfig::new()`: every read command cached, 10,000 entries, 30 min client TTL).

use ringdis::{cmd, Client, Commands, Config};
use std::future::Future;
use std::time::Duration;

/// What the cache workload needs from a client. Errors abort the benchmark.
pub trait CacheClient: Clone + Send + Sync + 'static {
    /// What a GET gives back.
    type Value: AsRef<[u8]> + Send;
    /// A label for the report (e.g. `ringdis/task cached`).
    fn name(&self) -> String;
    /// `GET key` the way this client reads in the workload: through its cache, if it has one.
    fn get(&mut self, key: &str) -> impl Future<Output = Option<Self::Value>> + Send;
    /// `SET key value`.
    fn set(&mut self, key: &str, value: &[u8]) -> impl Future<Output = ()> + Send;
    /// One round trip (`PING`) over the connection the cached reads and their invalidations
    /// use: when it returns, every push the server sent ahead of its reply has been read and
    /// applied (both clients apply pushes in wire order with the replies).
    fn settle(&mut self) -> impl Future<Output = ()> + Send;
    /// Whether it talks to the server at all (not [`Harness`]).
    fn real(&self) -> bool {
        true
    }
    /// The cache's counters as `(hits, joined, cached reads)`, if it has a cache (joined:
    /// reads that shared the round trip of the same read in flight, ringdis only; cached
    /// reads: all of them, hits and misses included).
    fn stats(&self) -> Option<(u64, u64, u64)>;
    /// All of the cache's counters and the connection's, for the log of each sample.
    fn describe_stats(&self) -> String {
        String::new()
    }
}

/// ringdis (the engine its `Config` picks under tokio: the task engine), with or without its
/// cache.
#[derive(Clone)]
pub struct RingdisCache {
    client: Client,
    cached: bool,
}

impl RingdisCache {
    /// A connected client for `url`; `cached`: with `Config::cache(Cache::new())` (its
    /// defaults: 64 MiB, 60 s, default tracking mode).
    pub async fn connect(url: &str, cached: bool) -> RingdisCache {
        let config = Config::from_url(url).expect("benchmark URL parses");
        let config = if cached { with_cache(config) } else { config };
        let client = Client::new(config).expect("ringdis client");
        client.connect().await.expect("ringdis connect");
        RingdisCache { client, cached }
    }
}

/// `config` with client-side caching on, as a user turns it on.
fn with_cache(config: Config) -> Config {
    config.cache(ringdis::Cache::new())
}

/// A cached `GET key`, as a user writes it.
async fn cached_get(client: &Client, key: &str) -> ringdis::Result<Option<bytes::Bytes>> {
    client.get(key).cached().await
}

/// The cache's `(hits, joined, cached reads)`.
fn cache_stats(client: &Client) -> Option<(u64, u64, u64)> {
    client.cache_stats().map(|s| {
        (
            s.hits,
            s.joined,
            s.hits + s.misses + s.joined + s.uncacheable,
        )
    })
}

impl CacheClient for RingdisCache {
    type Value = bytes::Bytes;

    fn name(&self) -> String {
        let engine = crate::clients::engine_name(self.client.engine());
        if self.cached {
            format!("{engine} cached")
        } else {
            engine
        }
    }

    fn get(&mut self, key: &str) -> impl Future<Output = Option<bytes::Bytes>> + Send {
        let client = &self.client;
        let cached = self.cached;
        async move {
            if cached {
                cached_get(client, key).await
            } else {
                client.get(key).await
            }
            .expect("GET")
        }
    }

    fn set(&mut self, key: &str, value: &[u8]) -> impl Future<Output = ()> + Send {
        let call = (&self.client).set(key, value);
        async move {
            call.await.expect("SET");
        }
    }

    fn settle(&mut self) -> impl Future<Output = ()> + Send {
        let call = self.client.call::<ringdis::Value>(cmd!("PING"));
        async move {
            call.await.expect("PING");
        }
    }

    fn stats(&self) -> Option<(u64, u64, u64)> {
        cache_stats(&self.client)
    }

    fn describe_stats(&self) -> String {
        format!("{:?} {:?}", self.client.cache_stats(), self.client.stats())
    }
}

/// redis-rs over one `MultiplexedConnection` speaking RESP3, with or without `cache-aio`.
#[derive(Clone)]
pub struct RedisRsCache {
    conn: redis::aio::MultiplexedConnection,
    cached: bool,
}

impl RedisRsCache {
    /// A connected multiplexed connection to `url` with `?protocol=resp3` and a 30 s response
    /// timeout; `cached`: with `AsyncConnectionConfig::new().set_cache_config(CacheConfig::new())`.
    pub async fn connect(url: &str, cached: bool) -> RedisRsCache {
        let client = redis::Client::open(format!("{}/?protocol=resp3", url.trim_end_matches('/')))
            .expect("redis-rs client");
        // ringdis's command timeout (30 s), not redis-rs's 500 ms: a GET that waits behind a
        // burst on this loaded 2-CPU machine is slow, not an error that aborts the run.
        let mut config =
            redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(30)));
        if cached {
            config = config.set_cache_config(redis::caching::CacheConfig::new());
        }
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .expect("redis-rs connect");
        RedisRsCache { conn, cached }
    }
}

impl CacheClient for RedisRsCache {
    type Value = Vec<u8>;

    fn name(&self) -> String {
        if self.cached {
            "redis-rs/multiplexed cached".to_owned()
        } else {
            "redis-rs/multiplexed".to_owned()
        }
    }

    fn get(&mut self, key: &str) -> impl Future<Output = Option<Vec<u8>>> + Send {
        let mut c = redis::cmd("GET");
        c.arg(key);
        async move { c.query_async(&mut self.conn).await.expect("redis-rs GET") }
    }

    fn set(&mut self, key: &str, value: &[u8]) -> impl Future<Output = ()> + Send {
        let mut c = redis::cmd("SET");
        c.arg(key).arg(value);
        async move {
            let () = c.query_async(&mut self.conn).await.expect("redis-rs SET");
        }
    }

    fn settle(&mut self) -> impl Future<Output = ()> + Send {
        let ping = redis::cmd("PING");
        async move {
            let _: String = ping
                .query_async(&mut self.conn)
                .await
                .expect("redis-rs PING");
        }
    }

    fn stats(&self) -> Option<(u64, u64, u64)> {
        self.conn
            .get_cache_statistics()
            .map(|s| (s.hit as u64, 0, (s.hit + s.miss) as u64))
    }

    fn describe_stats(&self) -> String {
        format!("{:?}", self.conn.get_cache_statistics())
    }
}

/// No client at all: a GET answers at once with the key's last written value and a SET does
/// nothing, so the workload measures only itself (`--client harness`: the harness's ceiling).
#[derive(Clone)]
pub struct Harness {
    state: std::sync::Arc<crate::cache::State>,
}

impl Harness {
    pub fn new(state: std::sync::Arc<crate::cache::State>) -> Harness {
        Harness { state }
    }
}

impl CacheClient for Harness {
    type Value = [u8; 32];

    fn name(&self) -> String {
        "harness only".to_owned()
    }

    fn real(&self) -> bool {
        false
    }

    fn get(&mut self, key: &str) -> impl Future<Output = Option<[u8; 32]>> + Send {
        let v = self.state.value_of(key);
        std::future::ready(Some(crate::cache::encode(v)))
    }

    fn set(&mut self, _key: &str, _value: &[u8]) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }

    fn settle(&mut self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }

    fn stats(&self) -> Option<(u64, u64, u64)> {
        None
    }
}
