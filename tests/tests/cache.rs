//! Client-side caching (`Config::cache`, #15) against real servers, on every engine: reads
//! answered from memory, invalidated by the server's pushes and by the client's own writes,
//! flushed by `FLUSHALL`/`FLUSHDB` and by a lost connection; refused where it cannot work; one
//! cache for a pool's or a spread's connections.
//!
//! Whether a read reached the server is read from the server itself (`INFO commandstats`), not
//! only from the cache's counters.

mod support;

use ringdis::prelude::*;
use ringdis::{Cache, Engine, Error, Pool, Protocol, Spread};
use ringdis_tests::{FaultServer, SentinelSetup, Server, ServerKind, MASTER};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::engines;

/// How long a test waits for something the server sends by itself (an invalidation push, a
/// closed connection noticed).
const WAIT: Duration = Duration::from_secs(10);

/// A cached `GET key`, decoded.
async fn cached_get(db: &impl Redis, key: &str) -> ringdis::Result<Option<String>> {
    db.get(key).cached().decode().await
}

/// How many `GET`s the server has run (`INFO commandstats`).
async fn gets(admin: &Client) -> u64 {
    let info: String = admin.call(cmd!("INFO", "commandstats")).await.unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a count"))
}

/// A caching client's configuration for `server` on `engine`.
fn cached(server: &Server, engine: Engine) -> Config {
    support::config(server, engine).cache(Cache::new())
}

/// Reads `key` cached until it reads `want`, within [`WAIT`] (the invalidation push is on its
/// way); a polling loop on a real condition, no sleep.
async fn until_reads(db: &impl Redis, key: &str, want: Option<&str>, at: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = cached_get(db, key)
            .await
            .unwrap_or_else(|e| panic!("{at}: {e}"));
        if got.as_deref() == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{at}: still reads {got:?}, not {want:?}, {WAIT:?} after the change"
        );
        support::yield_now().await;
    }
}

/// Hits and misses are counted, and a hit never reaches the server; a write from another
/// client reaches the cached read within a bounded wait (its push, which `on_push` still
/// gets); a write through the caching client itself (a call, a pipeline, a transaction, an
/// `async_call`) is read back at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_cached_and_invalidated() {
    for server in support::servers() {
        for engine in engines() {
            let at = format!("{}/{engine:?}", server.kind());
            let c = Client::new(cached(&server, engine)).unwrap();
            let other = support::client(&server, engine, Protocol::Resp3);
            let pushes = Arc::new(AtomicUsize::new(0));
            let seen = pushes.clone();
            c.on_push(move |p| {
                if format!("{p:?}").contains("invalidate") {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
            });
            let key = ringdis_tests::unique("cache");
            other.set(&key, "v1").decode::<Value>().await.unwrap();

            let before = gets(&other).await;
            assert_eq!(cached_get(&c, &key).await.unwrap().as_deref(), Some("v1"));
            for _ in 0..5 {
                assert_eq!(cached_get(&c, &key).await.unwrap().as_deref(), Some("v1"));
            }
            assert_eq!(
                gets(&other).await,
                before + 1,
                "{at}: hits reach the server"
            );
            let stats = c.cache_stats().expect("a cache");
            assert_eq!((stats.misses, stats.hits), (1, 5), "{at}: {stats:?}");
            assert_eq!(stats.entries, 1, "{at}: {stats:?}");

            // Another client's write: the server's push drops the entry.
            other.set(&key, "v2").decode::<Value>().await.unwrap();
            until_reads(&c, &key, Some("v2"), &at).await;
            let stats = c.cache_stats().unwrap();
            assert!(stats.invalidations >= 1, "{at}: {stats:?}");
            let deadline = Instant::now() + WAIT;
            while pushes.load(Ordering::SeqCst) == 0 {
                assert!(Instant::now() < deadline, "{at}: on_push never got it");
                support::yield_now().await;
            }

            // The client's own writes, every way it sends them: read back at once.
            c.set(&key, "v3").decode::<Value>().await.unwrap();
            assert_eq!(cached_get(&c, &key).await.unwrap().as_deref(), Some("v3"));
            let mut p = c.pipeline();
            p.add(c.set(&key, "v4").cmd()).add(cmd!("PING"));
            p.query::<Value>().await.unwrap();
            assert_eq!(cached_get(&c, &key).await.unwrap().as_deref(), Some("v4"));
            let mut t = c.transaction();
            t.add(c.set(&key, "v5").cmd());
            t.query::<Value>().await.unwrap();
            assert_eq!(cached_get(&c, &key).await.unwrap().as_deref(), Some("v5"));
            let (tx, rx) = tokio::sync::oneshot::channel();
            c.async_call(c.set(&key, "v6").cmd(), move |r: ringdis::Result<Value>| {
                let _ = tx.send(r);
            });
            rx.await.unwrap().unwrap();
            assert_eq!(cached_get(&c, &key).await.unwrap().as_deref(), Some("v6"));
            let stats = c.cache_stats().unwrap();
            assert!(stats.hits >= 5 && stats.misses >= 5, "{at}: {stats:?}");
        }
    }
}

/// `.cached_for(ttl)` bounds the entry's lifetime: the read is a hit until then, and goes to
/// the server again once it has passed (no change to the key needed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_for_bounds_the_entry() {
    const TTL: Duration = Duration::from_millis(500);
    for server in support::servers() {
        for engine in engines() {
            let at = format!("{}/{engine:?}", server.kind());
            let c = Client::new(cached(&server, engine)).unwrap();
            let other = support::client(&server, engine, Protocol::Resp3);
            let key = ringdis_tests::unique("ttl");
            other.set(&key, "v").decode::<Value>().await.unwrap();
            let read = || c.get(&key).cached_for(TTL).decode::<Option<String>>();
            let stored = Instant::now();
            assert_eq!(read().await.unwrap().as_deref(), Some("v"), "{at}");
            let before = gets(&other).await;
            let deadline = Instant::now() + WAIT;
            loop {
                assert_eq!(read().await.unwrap().as_deref(), Some("v"), "{at}");
                if gets(&other).await > before {
                    break;
                }
                assert!(Instant::now() < deadline, "{at}: never read again");
                support::yield_now().await;
            }
            assert!(stored.elapsed() >= TTL, "{at}: gone before its ttl");
            assert!(c.cache_stats().unwrap().hits >= 1, "{at}");
        }
    }
}

/// `FLUSHALL` and `FLUSHDB` (a nil invalidation) empty the cache: a key they removed reads as
/// missing, within a bounded wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushall_and_flushdb_flush() {
    for server in support::servers() {
        for engine in engines() {
            let at = format!("{}/{engine:?}", server.kind());
            let c = Client::new(cached(&server, engine)).unwrap();
            let other = support::client(&server, engine, Protocol::Resp3);
            for flush in ["FLUSHALL", "FLUSHDB"] {
                let key = ringdis_tests::unique("flush");
                other.set(&key, "v").decode::<Value>().await.unwrap();
                assert_eq!(cached_get(&c, &key).await.unwrap().as_deref(), Some("v"));
                assert_eq!(cached_get(&c, &key).await.unwrap().as_deref(), Some("v"));
                let flushes = c.cache_stats().unwrap().flushes;
                other.call::<()>(Cmd::new(flush)).await.unwrap();
                until_reads(&c, &key, None, &format!("{at}: {flush}")).await;
                let stats = c.cache_stats().unwrap();
                assert!(stats.flushes > flushes, "{at}: {flush}: {stats:?}");
            }
        }
    }
}

/// A lost connection flushes the cache (the server forgot what it tracked for it): after
/// `CLIENT KILL`, a write the client could not hear of is read, from the server, once the
/// client noticed the loss; the new connection tracks again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_flushes() {
    for server in support::servers() {
        for engine in engines() {
            let at = format!("{}/{engine:?}", server.kind());
            let c = Client::new(cached(&server, engine)).unwrap();
            let other = support::client(&server, engine, Protocol::Resp3);
            let key = ringdis_tests::unique("reconnect");
            other.set(&key, "old").decode::<Value>().await.unwrap();
            assert_eq!(cached_get(&c, &key).await.unwrap().as_deref(), Some("old"));
            assert_eq!(cached_get(&c, &key).await.unwrap().as_deref(), Some("old"));
            let id: i64 = c.call(cmd!("CLIENT", "ID")).await.unwrap();
            let flushes = c.cache_stats().unwrap().flushes;
            let killed: i64 = other.call(cmd!("CLIENT", "KILL", "ID", id)).await.unwrap();
            assert_eq!(killed, 1, "{at}");
            // Written while the client has no connection: no push will ever say so.
            other.set(&key, "new").decode::<Value>().await.unwrap();
            let deadline = Instant::now() + WAIT;
            while c.cache_stats().unwrap().flushes == flushes {
                assert!(Instant::now() < deadline, "{at}: the loss never flushed");
                support::yield_now().await;
            }
            let before = gets(&other).await;
            assert_eq!(cached_get(&c, &key).await.unwrap().as_deref(), Some("new"));
            assert_eq!(gets(&other).await, before + 1, "{at}: read from the server");
            // Tracked again on the new connection.
            assert_eq!(cached_get(&c, &key).await.unwrap().as_deref(), Some("new"));
            other.set(&key, "newer").decode::<Value>().await.unwrap();
            until_reads(&c, &key, Some("newer"), &at).await;
        }
    }
}

/// `OPTIN` and `BCAST` tracking, set up by the handshake: a cached read is invalidated by
/// another client's write in either mode; with `BCAST`, a key outside every prefix is not
/// cached (each read goes to the server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optin_and_bcast_track_what_they_cache() {
    for server in support::servers() {
        for engine in engines() {
            let other = support::client(&server, engine, Protocol::Resp3);
            for (mode, cache) in [
                ("optin", Cache::new().optin()),
                ("bcast", Cache::new().bcast(["in:"])),
            ] {
                let at = format!("{}/{engine:?}/{mode}", server.kind());
                let c = Client::new(support::config(&server, engine).cache(cache)).unwrap();
                let key = ringdis_tests::unique("in:");
                other.set(&key, "1").decode::<Value>().await.unwrap();
                assert_eq!(cached_get(&c, &key).await.unwrap().as_deref(), Some("1"));
                let before = gets(&other).await;
                assert_eq!(cached_get(&c, &key).await.unwrap().as_deref(), Some("1"));
                assert_eq!(gets(&other).await, before, "{at}: a hit");
                other.set(&key, "2").decode::<Value>().await.unwrap();
                until_reads(&c, &key, Some("2"), &at).await;
                if mode == "bcast" {
                    let out = ringdis_tests::unique("out:");
                    other.set(&out, "x").decode::<Value>().await.unwrap();
                    let before = gets(&other).await;
                    for _ in 0..2 {
                        assert_eq!(cached_get(&c, &out).await.unwrap().as_deref(), Some("x"));
                    }
                    assert_eq!(gets(&other).await, before + 2, "{at}: outside the prefixes");
                    assert!(c.cache_stats().unwrap().uncacheable >= 2, "{at}");
                }
            }
        }
    }
}

/// A cached read left unpolled or dropped strands no one: the read that joined it gets the
/// value (the leader's bundle is sent at once and its replies handed to the cache by the
/// connection), and the leader, polled later, gets it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_left_unpolled_or_dropped_strands_no_one() {
    for server in support::servers() {
        for engine in engines() {
            let at = format!("{}/{engine:?}", server.kind());
            let c = Client::new(cached(&server, engine)).unwrap();
            let key = ringdis_tests::unique("unpolled");
            let read = || c.call_cached::<Option<String>>(Cmd::new("GET").key(&key), None);
            c.set(&key, "v").decode::<Value>().await.unwrap();
            // Held, never polled, while the read that joined it is awaited.
            let leader = read();
            let joined = read();
            let got = support::bounded(WAIT, &at, joined).await.unwrap();
            assert_eq!(got.as_deref(), Some("v"), "{at}");
            assert_eq!(leader.await.unwrap().as_deref(), Some("v"), "{at}");
            // One round trip: the second read joined the first (or, if the reply was that
            // quick, found it stored).
            let stats = c.cache_stats().unwrap();
            assert_eq!(stats.misses, 1, "{at}: {stats:?}");
            assert_eq!(stats.joined + stats.hits, 1, "{at}: {stats:?}");
            assert_eq!(cached_get(&c, &key).await.unwrap().as_deref(), Some("v"));
            assert_eq!(c.cache_stats().unwrap().misses, 1, "{at}");

            // Dropped before it was polled: the joined read still gets the value.
            let key = ringdis_tests::unique("dropped");
            c.set(&key, "w").decode::<Value>().await.unwrap();
            let leader = c.call_cached::<Option<String>>(Cmd::new("GET").key(&key), None);
            let joined = c.call_cached::<Option<String>>(Cmd::new("GET").key(&key), None);
            drop(leader);
            let got = support::bounded(WAIT, &at, joined).await.unwrap();
            assert_eq!(got.as_deref(), Some("w"), "{at}");
        }
    }
}

/// The cache needs RESP3 and turns tracking on itself: `Protocol::Resp2`, or
/// `Config::tracking` with it, is refused when the client (or pool member, or spread) is made;
/// a server that will not speak RESP3 fails the connection attempt with a client error
/// instead of a cache that never hears of a change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp2_and_tracking_are_refused() {
    let cfg = || Config::new().cache(Cache::new());
    let at = "refused";
    support::refused(
        Client::new(cfg().protocol(Protocol::Resp2)),
        "Config::cache needs Protocol::Resp3",
        at,
    );
    support::refused(
        Client::new(cfg().tracking(ringdis::Tracking::new())),
        "Config::tracking",
        at,
    );
    support::refused(
        Spread::new(cfg().protocol(Protocol::Resp2), 2),
        "Config::cache needs Protocol::Resp3",
        at,
    );
    let pool = Pool::new(cfg().protocol(Protocol::Resp2), 2);
    support::refused(pool.get().await, "Config::cache needs Protocol::Resp3", at);

    for engine in engines() {
        let at = format!("RESP2 server/{engine:?}");
        let fault = FaultServer::start(|mut conn| {
            // HELLO is an unknown command: a RESP2-only server. Whatever follows is answered.
            while let Some(cmd) = conn.handshake_resp2() {
                let _ = cmd;
                conn.write(b"$1\r\nx\r\n");
            }
        });
        let c = Client::new(
            Config::from_url(&fault.url())
                .unwrap()
                .engine(engine)
                .cache(Cache::new()),
        )
        .unwrap();
        let e = cached_get(&c, "k").await.unwrap_err();
        assert!(
            matches!(&e, Error::Client { .. }) && e.to_string().contains("needs RESP3"),
            "{at}: {e:?}"
        );
        let e = c.call::<Value>(cmd!("PING")).await.unwrap_err();
        assert!(e.is_client(), "{at}: {e:?}");
        assert!(!c.is_connected(), "{at}");
    }
}

/// A pool's clients and a spread's connections share one cache: a read cached through one is
/// a hit through another, a write through any is read back at once through all, and another
/// client's write reaches them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_and_spreads_share_one_cache() {
    for server in support::servers() {
        for engine in engines() {
            let at = format!("{}/{engine:?}", server.kind());
            let other = support::client(&server, engine, Protocol::Resp3);

            let pool = Pool::new(cached(&server, engine), 2);
            let key = ringdis_tests::unique("pool");
            other.set(&key, "a").decode::<Value>().await.unwrap();
            assert_eq!(cached_get(&pool, &key).await.unwrap().as_deref(), Some("a"));
            let (one, two) = (pool.get().await.unwrap(), pool.get().await.unwrap());
            assert_ne!(
                one.call::<i64>(cmd!("CLIENT", "ID")).await.unwrap(),
                two.call::<i64>(cmd!("CLIENT", "ID")).await.unwrap(),
                "{at}: two connections"
            );
            let before = gets(&other).await;
            assert_eq!(cached_get(&*one, &key).await.unwrap().as_deref(), Some("a"));
            assert_eq!(cached_get(&*two, &key).await.unwrap().as_deref(), Some("a"));
            assert_eq!(gets(&other).await, before, "{at}: hits on both members");
            two.set(&key, "b").decode::<Value>().await.unwrap();
            assert_eq!(cached_get(&*one, &key).await.unwrap().as_deref(), Some("b"));
            other.set(&key, "c").decode::<Value>().await.unwrap();
            until_reads(&*two, &key, Some("c"), &at).await;
            drop((one, two));
            until_reads(&pool, &key, Some("c"), &at).await;
            let stats = pool.cache_stats().expect("a cache");
            assert_eq!(pool.get().await.unwrap().cache_stats(), Some(stats));
            assert!(stats.hits >= 2 && stats.misses >= 2, "{at}: {stats:?}");

            let spread = Spread::new(cached(&server, engine), 3).unwrap();
            let key = ringdis_tests::unique("spread");
            other.set(&key, "a").decode::<Value>().await.unwrap();
            let [x, y, z] = spread.clients() else {
                panic!("{at}: three connections")
            };
            assert_eq!(cached_get(x, &key).await.unwrap().as_deref(), Some("a"));
            let before = gets(&other).await;
            assert_eq!(cached_get(y, &key).await.unwrap().as_deref(), Some("a"));
            assert_eq!(
                cached_get(&spread, &key).await.unwrap().as_deref(),
                Some("a")
            );
            assert_eq!(gets(&other).await, before, "{at}: hits on every connection");
            z.set(&key, "b").decode::<Value>().await.unwrap();
            assert_eq!(cached_get(x, &key).await.unwrap().as_deref(), Some("b"));
            other.set(&key, "c").decode::<Value>().await.unwrap();
            until_reads(&spread, &key, Some("c"), &at).await;
            let stats = spread.cache_stats().expect("a cache");
            assert_eq!(z.cache_stats(), Some(stats), "{at}: one cache");
        }
    }
}

/// A Sentinel-managed primary caches as any connection does (its handshake tracks on the
/// primary); with replica reads on, cached reads still go to the primary, where they are
/// tracked, and another client's write reaches them.
#[test]
fn a_sentinel_managed_primary_caches() {
    for kind in ServerKind::ALL {
        let setup = SentinelSetup::start(kind);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let primary = support::client(setup.first_primary(), Engine::Task, Protocol::Resp3);
            for engine in engines() {
                for replica_reads in [false, true] {
                    let at = format!("{kind}/{engine:?}/replica reads {replica_reads}");
                    let config = Config::sentinel(MASTER, setup.sentinel_addrs())
                        .engine(engine)
                        .sentinel_replica_reads(replica_reads)
                        .cache(Cache::new());
                    let c = Client::new(config).unwrap_or_else(|e| panic!("{at}: {e}"));
                    let key = ringdis_tests::unique("sentinel:cache");
                    c.set(&key, "1").decode::<Value>().await.unwrap();
                    let before = gets(&primary).await;
                    for _ in 0..3 {
                        let got = cached_get(&c, &key).await.unwrap();
                        assert_eq!(got.as_deref(), Some("1"), "{at}");
                    }
                    assert_eq!(
                        gets(&primary).await,
                        before + 1,
                        "{at}: one read, on the primary"
                    );
                    primary.set(&key, "2").decode::<Value>().await.unwrap();
                    until_reads(&c, &key, Some("2"), &at).await;
                }
            }
        });
    }
}

/// Without `Config::cache` a cached read is simply sent, every time, and there are no
/// counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cache_a_cached_read_is_sent() {
    let server = Server::start(ServerKind::Redis);
    let c = support::client(&server, Engine::Task, Protocol::Resp3);
    let key = ringdis_tests::unique("plain");
    c.set(&key, "v").decode::<Value>().await.unwrap();
    let before = gets(&c).await;
    for _ in 0..3 {
        assert_eq!(cached_get(&c, &key).await.unwrap().as_deref(), Some("v"));
    }
    assert_eq!(gets(&c).await, before + 3);
    assert_eq!(c.cache_stats(), None);
}
