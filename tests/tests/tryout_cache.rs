//! A new user's read-heavy service turns on client-side caching (#15): the program such a user
//! writes from the public docs (rustdoc of `Cache`, `Config::cache`, `Cached`, `CacheStats`),
//! kept as a test so it keeps working. Redis 7.0 and Valkey 9, the default engine, throwaway
//! servers; the cluster part on a throwaway Redis cluster.
//!
//! Whether a read reached the server is checked from the server's side (`INFO commandstats`),
//! and every wait for the server's invalidation push is a bounded loop, never a sleep.

mod support;
use support::runtime;

use ringdis::prelude::*;
use ringdis::{Cache, CacheStats, ClusterClient, Pool, Protocol, Spread, Tracking};
use ringdis_tests::{Cluster, Server, ServerKind};
use std::time::{Duration, Instant};

/// How long a test waits for something the server sends by itself (an invalidation push).
const WAIT: Duration = Duration::from_secs(10);

/// What the service keeps per user, an HGETALL decoded by the derive.
#[derive(Debug, PartialEq, FromRedis)]
struct Profile {
    name: String,
    plan: String,
    logins: i64,
}

/// The service's lookup: a cached HGETALL, `None` for a user who has no profile.
///
/// (`Option<Profile>` does not decode an empty HGETALL as `None`: a derived struct wants its
/// fields, and the empty map of a missing key is not nil. So the service reads a `Value` and
/// decodes it itself.)
async fn profile(db: &impl Redis, id: u64) -> ringdis::Result<Option<Profile>> {
    let reply: Value = db
        .hgetall(format!("profile:{id}"))
        .cached_for(Duration::from_secs(30))
        .decode()
        .await?;
    match reply {
        Value::Map(ref m) if m.is_empty() => Ok(None),
        Value::Array(ref a) if a.is_empty() => Ok(None),
        other => Profile::from_redis(other).map(Some),
    }
}

/// The counters as a service exports them (Prometheus text format).
fn export(stats: &CacheStats) -> String {
    let mut out = String::new();
    for (name, v) in [
        ("hits", stats.hits),
        ("misses", stats.misses),
        ("joined", stats.joined),
        ("uncacheable", stats.uncacheable),
        ("invalidations", stats.invalidations),
        ("flushes", stats.flushes),
        ("evictions", stats.evictions),
        ("expired", stats.expired),
        ("oversized", stats.oversized),
        ("entries", stats.entries),
        ("bytes", stats.bytes),
    ] {
        out.push_str(&format!("redis_cache_{name} {v}\n"));
    }
    out
}

/// How many times the server ran `command` (lower case), from `INFO commandstats`.
async fn server_calls(admin: &Client, command: &str) -> u64 {
    let info: String = admin.call(cmd!("INFO", "commandstats")).await.unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a count"))
}

/// Reads until `read` gives `want`, within [`WAIT`]: the invalidation push is on its way.
async fn until<T, F, Fut>(what: &str, want: T, mut read: F)
where
    T: PartialEq + std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ringdis::Result<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        let got = read().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {got:?}, not {want:?}, {WAIT:?} after the change"
        );
        tokio::task::yield_now().await;
    }
}

fn servers() -> Vec<Server> {
    ServerKind::ALL.into_iter().map(Server::start).collect()
}

/// A day of the profile service: misses, hits, its own writes, another process's writes,
/// expiry, and the counters it exports.
#[test]
fn a_profile_service_reads_through_its_cache() {
    for mut server in servers() {
        runtime().block_on(profile_service(&mut server));
    }
}

async fn profile_service(server: &mut Server) {
    let at = server.kind().to_string();
    let db = Client::new(Config::from_url(&server.url()).unwrap().cache(Cache::new()))
        .expect("a caching client");
    let admin = Client::open(&server.url()).unwrap();
    db.hset("profile:1", "name", "ada")
        .and("plan", "free")
        .and("logins", 1)
        .await
        .unwrap();

    let before = server_calls(&admin, "hgetall").await;
    let want = Profile {
        name: "ada".into(),
        plan: "free".into(),
        logins: 1,
    };
    assert_eq!(profile(&db, 1).await.unwrap().as_ref(), Some(&want), "{at}");
    for _ in 0..10 {
        assert_eq!(profile(&db, 1).await.unwrap().as_ref(), Some(&want), "{at}");
    }
    assert_eq!(
        server_calls(&admin, "hgetall").await - before,
        1,
        "{at}: ten hits, one HGETALL sent"
    );
    let s = db.cache_stats().expect("a cache");
    assert_eq!((s.misses, s.hits, s.entries), (1, 10, 1), "{at}: {s:?}");
    assert!(s.bytes > 0, "{at}: {s:?}");

    // A user with no profile: an empty map, None, and cached too (a missing key is tracked).
    assert_eq!(profile(&db, 2).await.unwrap(), None, "{at}");
    assert_eq!(profile(&db, 2).await.unwrap(), None, "{at}");
    let s = db.cache_stats().unwrap();
    assert_eq!((s.misses, s.hits), (2, 11), "{at}: {s:?}");

    // Read your own write: no wait at all.
    db.hincrby("profile:1", "logins", 1).await.unwrap();
    assert_eq!(profile(&db, 1).await.unwrap().unwrap().logins, 2, "{at}");
    db.hset("profile:2", "name", "bob")
        .and("plan", "pro")
        .and("logins", 0)
        .await
        .unwrap();
    assert_eq!(
        profile(&db, 2).await.unwrap().map(|p| p.name),
        Some("bob".to_string()),
        "{at}: the missing key's entry went with the write"
    );

    // Another process writes: the next cached read sees it once the push came.
    let cli = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &server.port().to_string(),
            "HSET",
            "profile:1",
            "plan",
            "pro",
        ])
        .output()
        .expect("redis-cli");
    assert!(cli.status.success(), "{at}: {cli:?}");
    until(
        &format!("{at}: another process's HSET"),
        "pro".to_string(),
        || async { Ok(profile(&db, 1).await?.unwrap().plan) },
    )
    .await;

    // A short lifetime: the entry ends by itself.
    let _ = db
        .get("motd")
        .cached_for(Duration::from_millis(50))
        .await
        .unwrap();
    let expired = db.cache_stats().unwrap().expired;
    until(&format!("{at}: a 50 ms entry"), true, || async {
        let _ = db.get("motd").cached_for(Duration::from_millis(50)).await?;
        Ok(db.cache_stats().unwrap().expired > expired)
    })
    .await;

    // A key's own TTL bounds its entry.
    db.set("session:1", "x").px(100).await.unwrap();
    assert_eq!(
        db.get("session:1")
            .cached()
            .decode::<Option<String>>()
            .await
            .unwrap()
            .as_deref(),
        Some("x"),
        "{at}"
    );
    until(&format!("{at}: an expired key"), None, || async {
        db.get("session:1")
            .cached()
            .decode::<Option<String>>()
            .await
    })
    .await;

    // What the service exports.
    let text = export(&db.cache_stats().unwrap());
    assert!(text.contains("redis_cache_hits "), "{at}: {text}");
    assert!(
        !text.contains("redis_cache_invalidations 0\n"),
        "{at}: {text}"
    );

    // The server restarts empty (no persistence): the cache must not outlive what it mirrored.
    assert!(profile(&db, 1).await.unwrap().is_some(), "{at}");
    let flushes = db.cache_stats().unwrap().flushes;
    server.restart();
    until(&format!("{at}: a restarted server"), None, || async {
        profile(&db, 1).await.or_else(|e| {
            // The first call after the restart may meet the dead connection.
            assert!(e.is_connection() || e.is_timeout(), "{at}: {e}");
            Ok(Some(want_any()))
        })
    })
    .await;
    assert!(db.cache_stats().unwrap().flushes > flushes, "{at}");
}

/// A stand-in profile for "not read yet" in a polling loop.
fn want_any() -> Profile {
    Profile {
        name: String::new(),
        plan: String::new(),
        logins: -1,
    }
}

/// The same service behind a `Pool` and a `Spread`: one cache for all their connections.
#[test]
fn pools_and_spreads_share_one_cache() {
    for server in servers() {
        runtime().block_on(async {
            let at = server.kind().to_string();
            let config = Config::from_url(&server.url()).unwrap().cache(Cache::new());
            let admin = Client::open(&server.url()).unwrap();
            admin
                .hset("profile:7", "name", "cy")
                .and("plan", "free")
                .and("logins", 3)
                .await
                .unwrap();

            let pool = Pool::new(config.clone(), 4);
            let before = server_calls(&admin, "hgetall").await;
            // Eight concurrent lookups: at most one HGETALL each, joined or hit after the first.
            let reads = futures::future::join_all((0..8).map(|_| profile(&pool, 7))).await;
            for r in reads {
                assert_eq!(r.unwrap().unwrap().logins, 3, "{at}");
            }
            assert_eq!(profile(&pool, 7).await.unwrap().unwrap().logins, 3, "{at}");
            let s = pool.cache_stats().expect("the pool's cache");
            assert_eq!(s.misses + s.hits + s.joined, 9, "{at}: {s:?}");
            assert_eq!(
                server_calls(&admin, "hgetall").await - before,
                s.misses,
                "{at}: {s:?}"
            );
            // A write through one pooled client, read back through another at once.
            {
                let a = pool.get().await.unwrap();
                a.hset("profile:7", "plan", "pro").await.unwrap();
            }
            assert_eq!(
                profile(&pool, 7).await.unwrap().unwrap().plan,
                "pro",
                "{at}"
            );
            // A pooled client reports the pool's cache.
            assert_eq!(
                pool.get().await.unwrap().cache_stats().map(|s| s.entries),
                pool.cache_stats().map(|s| s.entries),
                "{at}"
            );

            let spread = Spread::new(config, 3).expect("a spread");
            let before = server_calls(&admin, "hgetall").await;
            for _ in 0..6 {
                assert_eq!(
                    profile(&spread, 7).await.unwrap().unwrap().plan,
                    "pro",
                    "{at}"
                );
            }
            assert_eq!(
                server_calls(&admin, "hgetall").await - before,
                1,
                "{at}: one read for three connections"
            );
            spread.hincrby("profile:7", "logins", 10).await.unwrap();
            assert_eq!(
                profile(&spread, 7).await.unwrap().unwrap().logins,
                13,
                "{at}"
            );
            let s = spread.cache_stats().unwrap();
            assert_eq!((s.misses, s.hits), (2, 5), "{at}: {s:?}");
        });
    }
}

/// A cluster client with a cache: reads on every node, another client's writes seen, a
/// cross-slot MGET sent uncached.
#[test]
fn a_cluster_client_caches_per_node() {
    let cluster = Cluster::start(ServerKind::Redis);
    runtime().block_on(async {
        let seeds = cluster.seed_urls();
        let db = ClusterClient::builder(Config::from_url(&seeds[0]).unwrap().cache(Cache::new()))
            .seeds(&seeds)
            .build()
            .expect("a caching cluster client");
        let other = ClusterClient::open(&seeds).unwrap();
        let ids: Vec<u64> = (1..=12).collect();
        for id in &ids {
            other
                .hset(format!("profile:{id}"), "name", format!("u{id}"))
                .and("plan", "free")
                .and("logins", 0)
                .await
                .unwrap();
        }
        for id in &ids {
            assert_eq!(profile(&db, *id).await.unwrap().unwrap().plan, "free");
            assert_eq!(profile(&db, *id).await.unwrap().unwrap().plan, "free");
        }
        let s = db.cache_stats().expect("a cache");
        assert_eq!((s.misses, s.hits), (12, 12), "{s:?}");
        // The keys spread over every primary, and each node invalidates its own.
        for id in &ids {
            other
                .hset(format!("profile:{id}"), "plan", "pro")
                .await
                .unwrap();
        }
        for id in &ids {
            until(
                &format!("profile:{id} on its node"),
                "pro".to_string(),
                || async { Ok(profile(&db, *id).await?.unwrap().plan) },
            )
            .await;
        }
        // Read your own write on a cluster.
        db.hset("profile:3", "name", "mine").await.unwrap();
        assert_eq!(profile(&db, 3).await.unwrap().unwrap().name, "mine");
        // MGET across slots: answered, not cached.
        let before = db.cache_stats().unwrap();
        let names: Vec<Option<String>> = db.mget(["a", "b", "c"]).cached().decode().await.unwrap();
        assert_eq!(names, vec![None, None, None]);
        let after = db.cache_stats().unwrap();
        assert_eq!(after.uncacheable, before.uncacheable + 1, "{after:?}");
        // MGET in one slot: cached.
        let _: Vec<Option<String>> = db.mget(["{u}a", "{u}b"]).cached().decode().await.unwrap();
        let _: Vec<Option<String>> = db.mget(["{u}a", "{u}b"]).cached().decode().await.unwrap();
        let last = db.cache_stats().unwrap();
        assert_eq!(last.hits, after.hits + 1, "{last:?}");
    });
}

/// OPTIN and BCAST: what the server is told, and that both still invalidate.
#[test]
fn optin_and_bcast_modes() {
    for server in servers() {
        runtime().block_on(async {
            let kind = server.kind();
            let base = Config::from_url(&server.url()).unwrap();
            let writer = Client::open(&server.url()).unwrap();
            for (mode, cache) in [
                ("optin", Cache::new().optin()),
                ("bcast", Cache::new().bcast(["user:"])),
            ] {
                let at = format!("{kind}/{mode}");
                let db = Client::new(base.clone().cache(cache)).unwrap();
                let info: Value = db.call(cmd!("CLIENT", "TRACKINGINFO")).await.unwrap();
                let info = format!("{info:?}");
                assert!(info.contains(&format!("Bulk(b\"{mode}\")")), "{at}: {info}");
                writer.set("user:1", "a").await.unwrap();
                writer.set("other", "a").await.unwrap();
                let get = |k: &'static str| {
                    let db = db.clone();
                    async move { db.get(k).cached().decode::<Option<String>>().await }
                };
                let before = db.cache_stats().unwrap();
                for _ in 0..2 {
                    assert_eq!(get("user:1").await.unwrap().as_deref(), Some("a"), "{at}");
                    assert_eq!(get("other").await.unwrap().as_deref(), Some("a"), "{at}");
                }
                let s = db.cache_stats().unwrap();
                if mode == "bcast" {
                    // `other` is outside every prefix: sent each time, never kept.
                    assert_eq!(s.uncacheable - before.uncacheable, 2, "{at}: {s:?}");
                    assert_eq!(s.hits - before.hits, 1, "{at}: {s:?}");
                } else {
                    assert_eq!(s.hits - before.hits, 2, "{at}: {s:?}");
                }
                writer.set("user:1", "b").await.unwrap();
                until(&format!("{at}: user:1"), Some("b".to_string()), || {
                    get("user:1")
                })
                .await;
                writer.set("other", "b").await.unwrap();
                until(&format!("{at}: other"), Some("b".to_string()), || {
                    get("other")
                })
                .await;
            }
        });
    }
}

/// What a user who gets the configuration wrong is told, and what a cached read does where
/// there is no cache.
#[test]
fn misconfigurations_are_explained() {
    let server = Server::start(ServerKind::Redis);
    runtime().block_on(async {
        let url = server.url();
        let cfg = || Config::from_url(&url).unwrap();
        let resp2 = || cfg().protocol(Protocol::Resp2).cache(Cache::new());
        let needs = "Config::cache needs Protocol::Resp3";
        support::refused(Client::new(resp2()), needs, "client");
        support::refused(Spread::new(resp2(), 2), needs, "spread");
        support::refused(ClusterClient::builder(resp2()).build(), needs, "cluster");
        // A pool cannot refuse when made: every checkout and every call says it instead.
        let pool = Pool::new(resp2(), 2);
        support::refused(pool.get().await, needs, "pool checkout");
        support::refused(Commands::get(&pool, "k").cached().await, needs, "pool read");
        // Told where the RESP2 came from when it was the URL.
        let from_url = Config::from_url(&format!("{url}?protocol=resp2")).unwrap();
        support::refused(
            Client::new(from_url.cache(Cache::new())),
            "the URL's protocol=resp2",
            "URL",
        );
        // Overlapping BCAST prefixes: refused when made, not by the server at the first call.
        for prefixes in [&["user:", "user:1"][..], &["a", "a"], &["", "a"]] {
            support::refused(
                Client::new(cfg().cache(Cache::new().bcast(prefixes))),
                &format!("{:?} and {:?} overlap", prefixes[0], prefixes[1]),
                "bcast",
            );
        }
        let fine = Client::new(cfg().cache(Cache::new().bcast(["user:", "order:"]))).unwrap();
        assert_eq!(fine.get("user:1").cached().await.unwrap(), None);
        support::refused(
            Client::new(cfg().tracking(Tracking::new()).cache(Cache::new())),
            "drop Config::tracking",
            "tracking and cache",
        );

        // No URL parameter turns the cache on (nor does any peer's): a URL's `cache=` is
        // ignored as every unknown parameter is, and the client has no cache.
        let client = Client::new(Config::from_url(&format!("{url}?cache=true")).unwrap()).unwrap();
        assert_eq!(client.cache_stats(), None);

        // Without a cache a cached read is a plain read.
        let plain = Client::open(&url).unwrap();
        plain.set("k", "v").await.unwrap();
        assert_eq!(
            plain.get("k").cached().await.unwrap().as_deref(),
            Some(&b"v"[..])
        );
        assert_eq!(plain.cache_stats(), None);
    });
}

/// A mock client: `.cached()` compiles and runs; the mock caches nothing, so each cached read
/// is scripted as the plain read it is sent as.
#[test]
fn a_mock_sends_cached_reads_as_plain_reads() {
    use ringdis::mock::Mock;
    futures::executor::block_on(async {
        let mock = Mock::new();
        mock.expect(cmd!("HGETALL", "profile:1"))
            .returns(Value::Map(vec![
                ("name".into(), "ada".into()),
                ("plan".into(), "pro".into()),
                ("logins".into(), "3".into()),
            ]))
            .expect(cmd!("HGETALL", "profile:1"))
            .returns(Value::Map(vec![]));
        let db = mock.client();
        assert_eq!(profile(&db, 1).await.unwrap().unwrap().logins, 3);
        assert_eq!(profile(&db, 1).await.unwrap(), None);
        mock.verify().unwrap();
        assert_eq!(db.cache_stats(), None);

        // The same with a configuration that asks for a cache.
        let mock = Mock::new();
        mock.expect(cmd!("GET", "k"))
            .returns("v")
            .expect(cmd!("GET", "k"))
            .returns("w");
        let db = mock.client_with(Config::new().cache(Cache::new())).unwrap();
        assert_eq!(
            db.get("k").cached().await.unwrap().as_deref(),
            Some(&b"v"[..])
        );
        assert_eq!(
            db.get("k").cached().await.unwrap().as_deref(),
            Some(&b"w"[..])
        );
        mock.verify().unwrap();
        assert_eq!(db.cache_stats(), None);

        // And a mock's pool: the same plain reads, no PTTL asked for behind the script's back.
        let mock = Mock::new();
        mock.expect(cmd!("GET", "k"))
            .returns("v")
            .expect(cmd!("GET", "k"))
            .returns("w");
        let pool = mock.pool(Pool::builder(Config::new().cache(Cache::new())));
        let read = || Commands::get(&pool, "k").cached();
        assert_eq!(read().await.unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(read().await.unwrap().as_deref(), Some(&b"w"[..]));
        mock.verify().unwrap();
        assert_eq!(pool.cache_stats(), None);
    });
}

/// `async_call`: a write sent with a callback drops its keys from the cache too, and the
/// callback gets the reply.
#[test]
fn async_call_writes_invalidate() {
    for server in servers() {
        runtime().block_on(async {
            let at = server.kind().to_string();
            let config = Config::from_url(&server.url()).unwrap().cache(Cache::new());
            let pool = Pool::new(config, 2);
            let (a, b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
            a.set("k", "1").await.unwrap();
            assert_eq!(
                b.get("k").cached().await.unwrap().as_deref(),
                Some(&b"1"[..]),
                "{at}"
            );
            let (tx, rx) = tokio::sync::oneshot::channel();
            a.async_call(cmd!("SET", "k", "2"), move |r: ringdis::Result<Value>| {
                let _ = tx.send(r);
            });
            assert_eq!(
                rx.await.unwrap().unwrap(),
                Value::Simple("OK".into()),
                "{at}"
            );
            // Through the other connection at once: the write went through `a`, the push to
            // `b` may not have come yet, the shared cache already forgot `k`.
            assert_eq!(
                b.get("k").cached().await.unwrap().as_deref(),
                Some(&b"2"[..]),
                "{at}"
            );
            // The same for a hand-built write and for a script's.
            a.call::<()>(cmd!("SET", "k", "3")).await.unwrap();
            assert_eq!(
                b.get("k").cached().await.unwrap().as_deref(),
                Some(&b"3"[..]),
                "{at}"
            );
            let _: Value = a
                .eval("return redis.call('SET', KEYS[1], ARGV[1])")
                .key("k")
                .arg("4")
                .await
                .unwrap();
            assert_eq!(
                b.get("k").cached().await.unwrap().as_deref(),
                Some(&b"4"[..]),
                "{at}"
            );
            a.call::<Value>(cmd!("EVAL", "return redis.call('SET', KEYS[1], 5)", 1, "k"))
                .await
                .unwrap();
            assert_eq!(
                b.get("k").cached().await.unwrap().as_deref(),
                Some(&b"5"[..]),
                "{at}"
            );
            // A hand-built read drops nothing.
            let before = b.cache_stats().unwrap();
            let _: Value = a.call(cmd!("GET", "k")).await.unwrap();
            assert_eq!(
                b.cache_stats().unwrap().invalidations,
                before.invalidations,
                "{at}"
            );
        });
    }
}

/// The byte budget: a tiny one stores nothing, a small one evicts, a huge value is served
/// from memory, one bigger than the budget is answered and not kept.
#[test]
fn budgets_and_big_values() {
    for server in servers() {
        runtime().block_on(async {
            let at = server.kind().to_string();
            let cfg = |cache: Cache| {
                Client::new(Config::from_url(&server.url()).unwrap().cache(cache)).unwrap()
            };
            let admin = Client::open(&server.url()).unwrap();
            admin.set("k", "v").await.unwrap();

            let tiny = cfg(Cache::new().max_bytes(100));
            for _ in 0..3 {
                assert_eq!(
                    tiny.get("k").cached().await.unwrap().as_deref(),
                    Some(&b"v"[..])
                );
            }
            let s = tiny.cache_stats().unwrap();
            assert_eq!(
                (s.misses, s.hits, s.entries, s.bytes),
                (3, 0, 0, 0),
                "{at}: {s:?}"
            );
            assert_eq!(s.oversized, 3, "{at}: why nothing is kept: {s:?}");

            let small = cfg(Cache::new().max_bytes(1000));
            for k in ["a", "b", "c", "d", "e"] {
                admin.set(k, "x".repeat(100)).await.unwrap();
                let _ = small.get(k).cached().await.unwrap();
                let s = small.cache_stats().unwrap();
                assert!(s.bytes <= 1000, "{at}: {s:?}");
            }
            let s = small.cache_stats().unwrap();
            assert!(
                s.evictions >= 2 && s.entries + s.evictions == 5,
                "{at}: {s:?}"
            );
            // The most recent is kept, the oldest went.
            let _ = small.get("e").cached().await.unwrap();
            assert_eq!(small.cache_stats().unwrap().hits, 1, "{at}");

            let db = cfg(Cache::new().max_bytes(12 << 20));
            let big = "v".repeat(8 << 20);
            admin.set("big", big.as_str()).await.unwrap();
            for _ in 0..2 {
                let v = db.get("big").cached().await.unwrap().unwrap();
                assert_eq!(v.len(), big.len(), "{at}");
            }
            let s = db.cache_stats().unwrap();
            assert_eq!((s.misses, s.hits), (1, 1), "{at}: {s:?}");
            assert!(s.bytes > 8 << 20 && s.bytes <= 12 << 20, "{at}: {s:?}");
            let bigger = "w".repeat(16 << 20);
            admin.set("bigger", bigger.as_str()).await.unwrap();
            for _ in 0..2 {
                let v = db.get("bigger").cached().await.unwrap().unwrap();
                assert_eq!(v.len(), bigger.len(), "{at}");
            }
            let s = db.cache_stats().unwrap();
            assert_eq!(
                (s.misses, s.hits, s.evictions, s.oversized),
                (3, 1, 0, 2),
                "{at}: {s:?}"
            );
            // What was there stays.
            let _ = db.get("big").cached().await.unwrap();
            assert_eq!(db.cache_stats().unwrap().hits, 2, "{at}");
        });
    }
}
