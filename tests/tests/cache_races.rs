//! Client-side caching (#15) under races, on real servers (Redis 7.0, Valkey 9; RESP3) and every
//! engine: an invalidation that overtakes the read it invalidates (forced with [`Proxy`], which
//! holds the read's reply behind the server's push, or the push behind the reply, or a command
//! from the server), a read after an invalidation never joining the older read, a connection
//! lost with a read in flight, the client's own writes (in flight and read back with every push
//! held), every cacheable command group against a write from another client,
//! FLUSHALL/FLUSHDB, key and hash-field expiry and `cached_for`/`Cache::ttl`, 10,000 random
//! interleavings of writes, cached reads and given-up reads from 64 tasks checked against an
//! oracle (on a `Client`; 5,000 on a `Spread` and a `Pool`), a dropped leader, shared round
//! trips, and the byte budget. Two ignored `finding_*` tests record what the cache does not
//! guarantee yet (run them with `--ignored`).
//!
//! Waits are bounded loops on a condition (a counter of the cache, a frame the proxy holds),
//! never a sleep.

mod support;

use futures::future::BoxFuture;
use ringdis::{cmd, Cache, CacheStats, Client, Cmd, Commands, Config, Engine, Value};
use ringdis_tests::{Proxy, Server, ServerKind};
use std::future::{Future, IntoFuture};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long any wait for a condition may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// The tracking modes a cache can use.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Default,
    Optin,
    /// `BCAST` with the prefix every key of these tests has.
    Bcast,
}

const MODES: [Mode; 3] = [Mode::Default, Mode::Optin, Mode::Bcast];

/// Every key of this file starts with it (so `BCAST` covers them all).
const PREFIX: &str = "cr:";

fn settings(mode: Mode) -> Cache {
    match mode {
        Mode::Default => Cache::new(),
        Mode::Optin => Cache::new().optin(),
        Mode::Bcast => Cache::new().bcast([PREFIX]),
    }
}

/// A caching client for `url`.
fn caching(url: &str, engine: Engine, cache: Cache) -> Client {
    let config = Config::from_url(url)
        .expect("harness URL")
        .engine(engine)
        .command_timeout(Some(PATIENCE))
        .cache(cache);
    Client::new(config).expect("a caching client")
}

/// A plain client (no cache) for `server`: the "other client" that writes.
fn plain(server: &Server, engine: Engine) -> Client {
    Client::new(support::config(server, engine)).expect("client")
}

fn stats(client: &Client) -> CacheStats {
    client.cache_stats().expect("a caching client has stats")
}

/// `GET k` through the cache (`.cached()`), its reply as the server sent it.
async fn get_cached(client: &Client, k: &str) -> Value {
    get_cached_for(client, k, None).await
}

/// `GET k` through the cache, `.cached_for(ttl)` when `ttl` is given.
async fn get_cached_for(client: &Client, k: &str, ttl: Option<Duration>) -> Value {
    let get = client.get(k);
    let reply = match ttl {
        Some(ttl) => get.cached_for(ttl).decode::<Value>().await,
        None => get.cached().decode::<Value>().await,
    };
    reply.unwrap_or_else(|e| panic!("cached GET {k}: {e}"))
}

/// A cached `GET k` on its own task (for a read the proxy holds).
fn spawn_get(client: &Client, k: &str) -> tokio::task::JoinHandle<Value> {
    let (client, k) = (client.clone(), k.to_owned());
    tokio::spawn(async move { get_cached(&client, &k).await })
}

/// The same read, uncached.
async fn uncached(client: &Client, cmd: Cmd) -> Value {
    let what = format!("{cmd:?}");
    client
        .call::<Value>(cmd)
        .await
        .unwrap_or_else(|e| panic!("uncached {what}: {e}"))
}

async fn run(client: &Client, cmd: Cmd) {
    let what = format!("{cmd:?}");
    client
        .call::<Value>(cmd)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
}

/// Waits (bounded by [`PATIENCE`]) until `ready()`: polled, not slept on.
async fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ready() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Awaits `f`, which must end within [`PATIENCE`].
async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    support::bounded(PATIENCE, what, f).await
}

fn bulk(s: &str) -> Value {
    Value::Bulk(s.to_owned().into())
}

fn servers() -> Vec<Server> {
    ServerKind::ALL.into_iter().map(Server::start).collect()
}

/// The key `name` for the test cell `at` (every key under [`PREFIX`]).
fn key(at: &str, name: &str) -> String {
    format!("{PREFIX}{at}:{name}")
}

// ---------------------------------------------------------------------------------------------
// 1. The invalidation overtakes the read's reply (and the mirror case).
// ---------------------------------------------------------------------------------------------

/// The harness itself, with user-level tracking (no cache): the proxy holds a real client's
/// reply while the server's invalidation push, sent after it, reaches the client first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_puts_the_push_ahead_of_the_held_reply() {
    let server = Server::start(ServerKind::Redis);
    let proxy = Proxy::start(server.port());
    for engine in support::engines() {
        let at = format!("{engine:?}");
        let writer = plain(&server, engine);
        let k = key(&at, "k");
        run(&writer, cmd!("SET", &k, "old")).await;
        let config = Config::from_url(&proxy.url())
            .expect("URL")
            .engine(engine)
            .tracking(ringdis::Tracking::new());
        let reader = Client::new(config).expect("client");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        reader.on_push(move |p| {
            let _ = tx.send(p);
        });
        run(&reader, cmd!("PING")).await;
        proxy.hold_reply(&["GET", &k]);
        let read = {
            let (reader, k) = (reader.clone(), k.clone());
            tokio::spawn(async move { reader.get(&k).decode::<Value>().await })
        };
        wait_for(&format!("{at}: held"), || proxy.held_replies() == 1).await;
        run(&writer, cmd!("SET", &k, "new")).await;
        let push = bounded(&at, rx.recv()).await.expect("a push");
        assert!(
            matches!(&push, Value::Push(p) if p.first() == Some(&bulk("invalidate"))),
            "{at}: {push:?}"
        );
        assert!(!read.is_finished(), "{at}: the reply was not held");
        proxy.release();
        let got = bounded(&at, read).await.expect("task").expect("GET");
        assert_eq!(got, bulk("old"), "{at}: the held reply");
    }
}

/// Which reply of the read's bundle (`GET k`, `PTTL k`) the proxy holds behind the push.
#[derive(Clone, Copy, Debug)]
enum Held {
    /// The read's own reply (and the PTTL after it).
    Read,
    /// Only the PTTL: the push lands between the bundle's two replies.
    Pttl,
}

/// A cached read whose reply the server sent before another client's write, but which reaches
/// the client after that write's invalidation: the read may return the old or the new value,
/// but nothing may be stored, and the next read is fresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_overtaking_the_reply_stores_nothing() {
    for server in servers() {
        let proxy = Proxy::start(server.port());
        for engine in support::engines() {
            let writer = plain(&server, engine);
            for mode in MODES {
                for held in [Held::Read, Held::Pttl] {
                    let at = format!("{}/{engine:?}/{mode:?}/{held:?}", server.kind());
                    let k = key(&at, "k");
                    run(&writer, cmd!("SET", &k, "old")).await;
                    let reader = caching(&proxy.url(), engine, settings(mode));
                    run(&reader, cmd!("PING")).await; // connected, tracking on
                    match held {
                        Held::Read => proxy.hold_reply(&["GET", &k]),
                        Held::Pttl => proxy.hold_reply(&["PTTL", &k]),
                    }
                    let read = spawn_get(&reader, &k);
                    wait_for(&format!("{at}: the read's reply held"), || {
                        proxy.held_replies() >= 1
                    })
                    .await;
                    let before = stats(&reader);
                    run(&writer, cmd!("SET", &k, "new")).await;
                    wait_for(&format!("{at}: the invalidation applied"), || {
                        stats(&reader).invalidations > before.invalidations
                            || stats(&reader).flushes > before.flushes
                    })
                    .await;
                    proxy.release();
                    let first = bounded(&at, read).await.expect("the read's task");
                    assert!(
                        first == bulk("old") || first == bulk("new"),
                        "{at}: the overtaken read returned {first:?}"
                    );
                    let after = stats(&reader);
                    assert_eq!(after.entries, 0, "{at}: the overtaken read was stored");
                    let gets = proxy.sent(&["GET", &k]);
                    assert_eq!(
                        get_cached(&reader, &k).await,
                        bulk("new"),
                        "{at}: the read after the invalidation"
                    );
                    assert_eq!(stats(&reader).misses, after.misses + 1, "{at}: not a miss");
                    assert_eq!(proxy.sent(&["GET", &k]), gets + 1, "{at}: not sent");
                    // Stored now, and served without a round trip.
                    assert_eq!(get_cached(&reader, &k).await, bulk("new"), "{at}: the hit");
                    let last = stats(&reader);
                    assert_eq!(last.hits, after.hits + 1, "{at}: not a hit");
                    assert_eq!(last.entries, 1, "{at}");
                    assert_eq!(proxy.sent(&["GET", &k]), gets + 1, "{at}: a hit was sent");
                    assert_eq!(
                        last.invalidations, after.invalidations,
                        "{at}: an invalidation nobody caused"
                    );
                }
            }
        }
    }
}

/// The mirror case: the reply arrives first (the entry is stored and served), the push after
/// it (held by the proxy meanwhile): once the push is in, the entry is gone and the next read
/// is fresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_after_the_reply_removes_the_stored_entry() {
    for server in servers() {
        let proxy = Proxy::start(server.port());
        for engine in support::engines() {
            let writer = plain(&server, engine);
            for mode in MODES {
                let at = format!("{}/{engine:?}/{mode:?}", server.kind());
                let k = key(&at, "k");
                run(&writer, cmd!("SET", &k, "old")).await;
                let reader = caching(&proxy.url(), engine, settings(mode));
                assert_eq!(get_cached(&reader, &k).await, bulk("old"));
                assert_eq!(stats(&reader).entries, 1, "{at}: not stored");
                proxy.hold_pushes();
                run(&writer, cmd!("SET", &k, "new")).await;
                wait_for(&format!("{at}: the push held"), || proxy.held_pushes() >= 1).await;
                // The client has not heard of the write: its entry stands.
                let before = stats(&reader);
                assert_eq!(
                    get_cached(&reader, &k).await,
                    bulk("old"),
                    "{at}: the entry before the push"
                );
                assert_eq!(stats(&reader).hits, before.hits + 1, "{at}: not a hit");
                proxy.release();
                wait_for(&format!("{at}: the invalidation applied"), || {
                    stats(&reader).invalidations > before.invalidations
                })
                .await;
                assert_eq!(
                    stats(&reader).entries,
                    0,
                    "{at}: the entry outlived its push"
                );
                assert_eq!(
                    get_cached(&reader, &k).await,
                    bulk("new"),
                    "{at}: the read after the push"
                );
            }
        }
    }
}

/// A cached read of a key whose invalidation reached the client while the same read was in
/// flight does not join that (older) read: it sends its own and returns the new value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_after_the_invalidation_never_joins_the_older_read() {
    for server in servers() {
        let proxy = Proxy::start(server.port());
        for engine in support::engines() {
            let at = format!("{}/{engine:?}", server.kind());
            let writer = plain(&server, engine);
            let k = key(&at, "k");
            run(&writer, cmd!("SET", &k, "old")).await;
            let reader = caching(&proxy.url(), engine, Cache::new());
            run(&reader, cmd!("PING")).await;
            proxy.hold_reply(&["GET", &k]);
            let spawn_read = || spawn_get(&reader, &k);
            let older = spawn_read();
            wait_for(&format!("{at}: the reply held"), || {
                proxy.held_replies() >= 1
            })
            .await;
            let before = stats(&reader);
            run(&writer, cmd!("SET", &k, "new")).await;
            wait_for(&format!("{at}: the invalidation applied"), || {
                stats(&reader).invalidations > before.invalidations
            })
            .await;
            let newer = spawn_read();
            wait_for(&format!("{at}: the newer read sent"), || {
                proxy.sent(&["GET", &k]) == 2
            })
            .await;
            assert_eq!(stats(&reader).joined, before.joined, "{at}: it joined");
            proxy.release();
            let older = bounded(&at, older).await.expect("task");
            assert!(
                older == bulk("old") || older == bulk("new"),
                "{at}: {older:?}"
            );
            assert_eq!(
                bounded(&at, newer).await.expect("task"),
                bulk("new"),
                "{at}: the read started after the invalidation"
            );
            assert_eq!(get_cached(&reader, &k).await, bulk("new"), "{at}");
        }
    }
}

/// The connection is lost with a cached read in flight: the read fails (or, had its reply
/// come, succeeds), its waiters are not stuck, and the reconnect flushes the cache: an entry
/// whose key changed while the client could hear no invalidation is not served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_with_a_read_in_flight_flushes() {
    for server in servers() {
        let proxy = Proxy::start(server.port());
        for engine in support::engines() {
            let at = format!("{}/{engine:?}", server.kind());
            let writer = plain(&server, engine);
            let reader = caching(&proxy.url(), engine, Cache::new());
            let (k1, k2) = (key(&at, "k1"), key(&at, "k2"));
            run(&writer, cmd!("SET", &k1, "old")).await;
            run(&writer, cmd!("SET", &k2, "v")).await;
            assert_eq!(get_cached(&reader, &k1).await, bulk("old"));
            proxy.hold_reply(&["GET", &k2]);
            let spawn_read = || {
                let (reader, k2) = (reader.clone(), k2.clone());
                tokio::spawn(async move { reader.get(&k2).cached().decode::<Value>().await })
            };
            let leader = spawn_read();
            wait_for(&format!("{at}: held"), || proxy.held_replies() >= 1).await;
            let joined = stats(&reader).joined;
            let waiter = spawn_read();
            wait_for(&format!("{at}: joined"), || stats(&reader).joined > joined).await;
            let flushes = stats(&reader).flushes;
            proxy.cut();
            for (name, read) in [("leader", leader), ("waiter", waiter)] {
                match bounded(&format!("{at}: the {name}"), read)
                    .await
                    .expect("task")
                {
                    Ok(v) => assert_eq!(v, bulk("v"), "{at}: the {name}"),
                    Err(e) => assert!(
                        matches!(e, ringdis::Error::Connection { .. }),
                        "{at}: the {name} failed with {e:?}"
                    ),
                }
            }
            // While the client reconnects (or already has: k1 is not tracked on the new
            // connection), k1 changes: only the flush keeps it from being served stale.
            run(&writer, cmd!("SET", &k1, "new")).await;
            wait_for(&format!("{at}: the flush"), || {
                stats(&reader).flushes > flushes
            })
            .await;
            let deadline = Instant::now() + PATIENCE;
            let got = loop {
                match reader.get(&k1).cached().decode::<Value>().await {
                    Ok(v) => break v,
                    Err(e) => assert!(Instant::now() < deadline, "{at}: never reconnected: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            assert_eq!(got, bulk("new"), "{at}: served stale after a reconnect");
            assert_eq!(get_cached(&reader, &k2).await, bulk("v"));
        }
    }
}

/// The client's own write, sent while its cached read of the key is in flight, keeps that read
/// from being stored by itself (the local invalidation at submit), before any push: the proxy
/// holds the read's reply and every push, and lets the replies go first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_own_write_poisons_its_read_in_flight() {
    for server in servers() {
        let proxy = Proxy::start(server.port());
        for engine in support::engines() {
            let at = format!("{}/{engine:?}", server.kind());
            let writer = plain(&server, engine);
            let reader = caching(&proxy.url(), engine, Cache::new());
            let k = key(&at, "k");
            run(&writer, cmd!("SET", &k, "old")).await;
            run(&reader, cmd!("PING")).await;
            proxy.hold_pushes();
            let forwarded = proxy.pushes_forwarded();
            proxy.hold_reply(&["GET", &k]);
            let read = spawn_get(&reader, &k);
            wait_for(&format!("{at}: held"), || proxy.held_replies() >= 1).await;
            let before = stats(&reader);
            let write = {
                let (reader, k) = (reader.clone(), k.clone());
                tokio::spawn(async move { reader.set(&k, "new").await })
            };
            wait_for(&format!("{at}: the local invalidation"), || {
                stats(&reader).invalidations > before.invalidations
            })
            .await;
            proxy.release_replies();
            assert_eq!(bounded(&at, read).await.expect("task"), bulk("old"), "{at}");
            bounded(&at, write).await.expect("task").expect("SET");
            assert_eq!(stats(&reader).entries, 0, "{at}: the read was stored");
            assert_eq!(
                proxy.pushes_forwarded(),
                forwarded,
                "{at}: a push got through"
            );
            assert_eq!(get_cached(&reader, &k).await, bulk("new"), "{at}");
            proxy.release();
        }
    }
}

/// The client reads its own writes (typed: the spec names their keys) at once, with every push
/// held back: a command, a pipeline, a transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_own_typed_writes_need_no_push() {
    for server in servers() {
        let proxy = Proxy::start(server.port());
        for engine in support::engines() {
            let at = format!("{}/{engine:?}", server.kind());
            let reader = caching(&proxy.url(), engine, Cache::new());
            let k = key(&at, "k");
            reader.set(&k, "0").await.expect("SET");
            proxy.hold_pushes();
            let forwarded = proxy.pushes_forwarded();
            assert_eq!(get_cached(&reader, &k).await, bulk("0"));
            reader.set(&k, "1").await.expect("SET");
            assert_eq!(get_cached(&reader, &k).await, bulk("1"), "{at}: a command");
            let _: Value = reader
                .pipeline()
                .set(&k, "2")
                .query()
                .await
                .expect("pipeline");
            assert_eq!(get_cached(&reader, &k).await, bulk("2"), "{at}: a pipeline");
            let _: Value = reader
                .transaction()
                .set(&k, "3")
                .query()
                .await
                .expect("MULTI");
            assert_eq!(
                get_cached(&reader, &k).await,
                bulk("3"),
                "{at}: a transaction"
            );
            assert_eq!(
                proxy.pushes_forwarded(),
                forwarded,
                "{at}: a push got through"
            );
            proxy.release();
        }
    }
}

/// Was a finding, fixed on branch tryout15: a write the client could not see as one, sent
/// through the caching client (`cmd!("SET", …)`, whose keys are not marked; a script's
/// `EVAL`), invalidated nothing locally (it now drops the keys the spec finds in it), and the
/// server sends the invalidation for a connection's own write AFTER the write's reply (Redis 7.0 and Valkey 9 both: checked with a raw connection). So until the
/// client has read that push, a cached read right after the write returns the old value. On
/// loopback the push nearly always arrives with the reply (0 of 2,000 tries); here the proxy
/// delays it, as a slow network or a split segment can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_an_untyped_own_write_is_read_back_before_its_push() {
    let server = Server::start(ServerKind::Redis);
    let proxy = Proxy::start(server.port());
    let reader = caching(&proxy.url(), Engine::Task, Cache::new());
    let k = key("finding", "k");
    reader.set(&k, "0").await.expect("SET");
    proxy.hold_pushes();
    assert_eq!(get_cached(&reader, &k).await, bulk("0"));
    run(&reader, cmd!("SET", &k, "1")).await;
    assert_eq!(get_cached(&reader, &k).await, bulk("1"), "after cmd!(SET)");
    let script = "return redis.call('SET', KEYS[1], ARGV[1])";
    run(&reader, cmd!("EVAL", script, 1, &k, "2")).await;
    assert_eq!(get_cached(&reader, &k).await, bulk("2"), "after EVAL");
}

/// FINDING (reported to the lead): on a `Pool` (or `Spread`) sharing one cache, the pool's own
/// write is not read back. The write invalidates its keys locally when sent; a cached read
/// planned after that, through ANOTHER connection, can still reach the server before the write
/// does (the proxy holds the write's command to make it so): it reads the old value and stores
/// it, and the push that will remove it goes to that other connection, later. The write
/// returns, and a cached read then serves the old value until that push arrives. (One
/// connection orders the two on the server; several do not.) A fix: invalidate the write's keys
/// again when its reply arrives, before the caller is woken. Seen without a proxy too: 4 stale
/// reads in 5,000 on a `Spread` of 3 in `interleavings_on_a_spread_and_a_pool_are_never_stale`
/// with the pool's own writes counted in the oracle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "finding: a Pool's own write is not read back while another connection's read of \
            the key, sent after the write but run before it, is cached"]
async fn finding_a_pools_own_write_is_read_back_stale() {
    let server = Server::start(ServerKind::Redis);
    let proxy = Proxy::start(server.port());
    let config = Config::from_url(&proxy.url())
        .expect("URL")
        .engine(Engine::Task)
        .command_timeout(Some(PATIENCE))
        .cache(Cache::new());
    let pool = ringdis::Pool::new(config, 2);
    let k = key("finding-pool", "k");
    Commands::set(&pool, &k, "old").await.expect("SET");
    proxy.hold_pushes();
    proxy.hold_command(&["SET", &k]);
    let write = {
        let (pool, k) = (pool.clone(), k.clone());
        tokio::spawn(async move { Commands::set(&pool, &k, "new").await })
    };
    wait_for("the write held", || proxy.holding_commands()).await;
    // Through the pool's other connection, after the write was sent: the old value, stored.
    let read = Commands::get(&pool, &k).cached().decode::<Value>().await;
    assert_eq!(read.expect("GET"), bulk("old"));
    proxy.release_commands();
    bounded("the write", write)
        .await
        .expect("task")
        .expect("SET");
    // The write has returned: the pool must read it back.
    let read = Commands::get(&pool, &k).cached().decode::<Value>().await;
    assert_eq!(
        read.expect("GET"),
        bulk("new"),
        "the pool's own write, read back"
    );
    proxy.release();
}

// ---------------------------------------------------------------------------------------------
// 2. Every cacheable command group against a write from another client.
// ---------------------------------------------------------------------------------------------

/// One group's case: what the other client sets up, the cached reads, and a write that changes
/// every one of those reads' replies.
struct Case {
    group: &'static str,
    setup: Vec<Cmd>,
    reads: Vec<Read>,
    write: Cmd,
}

/// A read of a case: its builder, sent through the cache (`.cached()`) or not.
struct Read {
    name: &'static str,
    send: SendRead,
}

type SendRead = Box<dyn for<'c> Fn(&'c Client, bool) -> BoxFuture<'c, ringdis::Result<Value>>>;

fn read(
    name: &'static str,
    send: impl for<'c> Fn(&'c Client, bool) -> BoxFuture<'c, ringdis::Result<Value>> + 'static,
) -> Read {
    Read {
        name,
        send: Box::new(send),
    }
}

/// `read!(c => c.get(k))`: the read of that builder, cached or not, its reply as sent.
macro_rules! read {
    ($c:ident => $build:expr) => {
        read(stringify!($build), move |$c: &Client, cache: bool| {
            if cache {
                Box::pin($build.cached().decode::<Value>().into_future())
            } else {
                Box::pin($build.decode::<Value>())
            }
        })
    };
}

impl Read {
    async fn cached(&self, client: &Client, at: &str) -> Value {
        (self.send)(client, true)
            .await
            .unwrap_or_else(|e| panic!("{at}: cached {}: {e}", self.name))
    }

    async fn uncached(&self, client: &Client, at: &str) -> Value {
        (self.send)(client, false)
            .await
            .unwrap_or_else(|e| panic!("{at}: {}: {e}", self.name))
    }
}

/// A key that lives as long as the test (the reads' closures capture it by copy).
fn leaked(at: &str, name: &str) -> &'static str {
    Box::leak(key(at, name).into_boxed_str())
}

fn cases(at: &str) -> Vec<Case> {
    let k = |name: &str| leaked(at, name);
    let (s, s2, h, l, st, z) = (k("s"), k("s2"), k("h"), k("l"), k("st"), k("z"));
    let (bm, g, p, x, e) = (k("bm"), k("g"), k("p"), k("x"), k("e"));
    let (m1, m2) = (k("m1"), k("m2"));
    vec![
        Case {
            group: "string",
            setup: vec![cmd!("SET", s, "hello world"), cmd!("SET", s2, "two")],
            reads: vec![
                read!(c => c.get(s)),
                read!(c => c.getrange(s, 0, 4)),
                read!(c => c.strlen(s)),
                read!(c => c.mget([s, s2])),
            ],
            write: cmd!("SET", s, "jello worlds"),
        },
        Case {
            group: "string (second key of MGET)",
            setup: vec![],
            reads: vec![read!(c => c.mget([s, s2]))],
            write: cmd!("SET", s2, "deux"),
        },
        Case {
            group: "hash",
            setup: vec![cmd!("HSET", h, "f1", "a", "f2", "b")],
            reads: vec![
                read!(c => c.hget(h, "f1")),
                read!(c => c.hgetall(h)),
                read!(c => c.hmget(h, ["f1", "f2"])),
            ],
            write: cmd!("HSET", h, "f1", "z"),
        },
        Case {
            group: "list",
            setup: vec![cmd!("RPUSH", l, "a", "b", "c")],
            reads: vec![
                read!(c => c.lrange(l, 0, -1)),
                read!(c => c.lindex(l, 0)),
                read!(c => c.llen(l)),
            ],
            write: cmd!("LPUSH", l, "z"),
        },
        Case {
            group: "set",
            setup: vec![cmd!("SADD", st, "a", "b")],
            reads: vec![
                read!(c => c.smembers(st)),
                read!(c => c.sismember(st, "c")),
                read!(c => c.scard(st)),
            ],
            write: cmd!("SADD", st, "c"),
        },
        Case {
            group: "sorted-set",
            setup: vec![cmd!("ZADD", z, 1, "a", 2, "b")],
            reads: vec![
                read!(c => c.zrange(z, 0, -1)),
                read!(c => c.zscore(z, "a")),
                read!(c => c.zrange(z, 0, -1).withscores()),
            ],
            write: cmd!("ZADD", z, 5, "a"),
        },
        Case {
            group: "bitmap",
            setup: vec![cmd!("SETBIT", bm, 3, 1)],
            reads: vec![read!(c => c.getbit(bm, 7)), read!(c => c.bitcount(bm))],
            write: cmd!("SETBIT", bm, 7, 1),
        },
        Case {
            group: "geo",
            setup: vec![cmd!(
                "GEOADD", g, 13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"
            )],
            reads: vec![
                read!(c => c.geopos(g).member("Palermo")),
                read!(c => c.geodist(g, "Palermo", "Catania")),
            ],
            write: cmd!("GEOADD", g, 13.5, 38.2, "Palermo"),
        },
        Case {
            group: "hyperloglog",
            setup: vec![cmd!("PFADD", p, "a", "b", "c")],
            reads: vec![read!(c => c.pfcount(p))],
            write: cmd!("PFADD", p, "d", "e", "f"),
        },
        Case {
            group: "stream",
            setup: vec![cmd!("XADD", x, "1-1", "f", "v")],
            reads: vec![read!(c => c.xrange(x, "-", "+")), read!(c => c.xlen(x))],
            write: cmd!("XADD", x, "2-1", "f", "w"),
        },
        Case {
            // A missing key is cached (and tracked) too.
            group: "generic (missing key)",
            setup: vec![],
            reads: vec![read!(c => c.exists(e)), read!(c => c.type_(e))],
            write: cmd!("SET", e, "now here"),
        },
        Case {
            // One write of several keys: one push naming them all.
            group: "string (one push, two keys)",
            setup: vec![cmd!("MSET", m1, "1", m2, "2")],
            reads: vec![read!(c => c.get(m1)), read!(c => c.get(m2))],
            write: cmd!("MSET", m1, "3", m2, "4"),
        },
        Case {
            group: "generic",
            setup: vec![],
            reads: vec![read!(c => c.exists(e)), read!(c => c.type_(e))],
            write: cmd!("DEL", e),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cacheable_group_sees_another_clients_write() {
    for server in servers() {
        for engine in support::engines() {
            let at = format!("{}/{engine:?}", server.kind());
            let writer = plain(&server, engine);
            let reader = caching(&server.url(), engine, Cache::new());
            for case in cases(&at) {
                let at = format!("{at}/{}", case.group);
                for setup in case.setup {
                    run(&writer, setup).await;
                }
                let mut first = Vec::new();
                for read in &case.reads {
                    let at = format!("{at}: {}", read.name);
                    let value = read.cached(&reader, &at).await;
                    assert_eq!(value, read.uncached(&reader, &at).await, "{at}");
                    // Stored: the same read again is a hit.
                    let hits = stats(&reader).hits;
                    assert_eq!(read.cached(&reader, &at).await, value, "{at}");
                    assert_eq!(stats(&reader).hits, hits + 1, "{at}: not a hit");
                    first.push(value);
                }
                let before = stats(&reader);
                run(&writer, case.write).await;
                wait_for(&format!("{at}: the invalidation"), || {
                    stats(&reader).invalidations > before.invalidations
                })
                .await;
                for (read, old) in case.reads.iter().zip(first) {
                    let at = format!("{at}: {}", read.name);
                    let value = read.cached(&reader, &at).await;
                    assert_eq!(value, read.uncached(&reader, &at).await, "{at}");
                    assert_ne!(value, old, "{at}: the write did not change it");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. FLUSHALL / FLUSHDB, key expiry, cached_for.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushall_and_flushdb_from_another_client_flush_the_cache() {
    for server in servers() {
        for engine in support::engines() {
            let writer = plain(&server, engine);
            let reader = caching(&server.url(), engine, Cache::new());
            for flush in ["FLUSHALL", "FLUSHDB"] {
                let at = format!("{}/{engine:?}/{flush}", server.kind());
                let keys: Vec<String> = (0..5).map(|i| key(&at, &i.to_string())).collect();
                // (The nil replies read after the last flush are entries too.)
                let held = stats(&reader).entries;
                for k in &keys {
                    run(&writer, cmd!("SET", k, "v")).await;
                    assert_eq!(get_cached(&reader, k).await, bulk("v"));
                }
                assert_eq!(stats(&reader).entries, held + 5, "{at}");
                let before = stats(&reader);
                run(&writer, cmd!(flush)).await;
                wait_for(&format!("{at}: the flush"), || {
                    stats(&reader).flushes > before.flushes
                })
                .await;
                assert_eq!(stats(&reader).entries, 0, "{at}: entries outlived {flush}");
                for k in &keys {
                    assert_eq!(get_cached(&reader, k).await, Value::Nil, "{at}: {k}");
                }
            }
        }
    }
}

/// A key with a PTTL: its entry ends when the key does, even though the client never hears of
/// the expiry (the proxy holds every push) and the cache's own TTL is 60 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_lives_no_longer_than_its_keys_pttl() {
    for server in servers() {
        let proxy = Proxy::start(server.port());
        for engine in [Engine::Task, Engine::IoUring] {
            let at = format!("{}/{engine:?}", server.kind());
            let writer = plain(&server, engine);
            let reader = caching(&proxy.url(), engine, Cache::new());
            let k = key(&at, "k");
            run(&writer, cmd!("SET", &k, "v", "PX", 300)).await;
            let get = || reader.get(&k).into_cmd();
            // A miss, then a hit (if the key still lives: the reply says which).
            let first = get_cached(&reader, &k).await;
            proxy.hold_pushes();
            assert!(first == bulk("v") || first == Value::Nil, "{at}: {first:?}");
            // The server's expiry, as the other client sees it.
            let deadline = Instant::now() + PATIENCE;
            while uncached(&writer, get()).await != Value::Nil {
                assert!(Instant::now() < deadline, "{at}: the key never expired");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let gone = Instant::now();
            // The client's entry ends too (within PTTL's millisecond rounding): far sooner than
            // the cache's 60 s.
            loop {
                if get_cached(&reader, &k).await == Value::Nil {
                    break;
                }
                assert!(
                    gone.elapsed() < Duration::from_secs(1),
                    "{at}: still served 1 s after the key expired"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            assert!(stats(&reader).expired >= 1, "{at}: {:?}", stats(&reader));
            proxy.release();
        }
    }
}

/// A hash field's own expiry (Valkey 9's `HPEXPIRE`; Redis 7.0 has none) is not in the key's
/// PTTL: the entry ends because the server invalidates the key when the field expires (its
/// active expiry, with no other client touching the key). Checked, not assumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_fields_expiry_ends_its_entries_on_valkey() {
    let server = Server::start(ServerKind::Valkey);
    for engine in [Engine::Task, Engine::IoUring] {
        let at = format!("valkey/{engine:?}");
        let writer = plain(&server, engine);
        let reader = caching(&server.url(), engine, Cache::new());
        let h = key(&at, "h");
        run(&writer, cmd!("HSET", &h, "f", "v", "g", "w")).await;
        run(&writer, cmd!("HPEXPIRE", &h, 300, "FIELDS", 1, "f")).await;
        let start = Instant::now();
        let hget = || reader.hget(&h, "f").cached().decode::<Value>();
        assert_eq!(hget().await.expect("HGET"), bulk("v"), "{at}");
        loop {
            if hget().await.expect("HGET") == Value::Nil {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{at}: the expired field still served"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let all = reader.hgetall(&h).cached().decode::<Value>().await;
        assert_eq!(
            all.expect("HGETALL"),
            Value::Map(vec![(bulk("g"), bulk("w"))]),
            "{at}"
        );
    }
}

/// `cached_for(short)` and `Cache::ttl(short)` end an entry of a key that never expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_for_and_the_cache_ttl_end_entries() {
    for server in servers() {
        for engine in [Engine::Task, Engine::Epoll] {
            let writer = plain(&server, engine);
            for per_call in [true, false] {
                let at = format!("{}/{engine:?}/per call {per_call}", server.kind());
                let short = Duration::from_millis(200);
                let (cache, ttl) = if per_call {
                    (Cache::new(), Some(short))
                } else {
                    (Cache::new().ttl(short), None)
                };
                let reader = caching(&server.url(), engine, cache);
                let k = key(&at, "k");
                run(&writer, cmd!("SET", &k, "v")).await;
                let read = || get_cached_for(&reader, &k, ttl);
                let start = Instant::now();
                assert_eq!(read().await, bulk("v"));
                let misses = stats(&reader).misses;
                // Hits until the entry ends, then one miss: well before 60 s.
                loop {
                    assert_eq!(read().await, bulk("v"), "{at}");
                    if stats(&reader).misses > misses {
                        break;
                    }
                    assert!(
                        start.elapsed() < Duration::from_secs(5),
                        "{at}: the entry outlived its {short:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                assert!(
                    start.elapsed() >= short,
                    "{at}: the entry ended before its ttl"
                );
                assert!(stats(&reader).expired >= 1, "{at}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. 10,000 random interleavings from 64 tasks.
// ---------------------------------------------------------------------------------------------

/// A small xorshift generator (no dependency; each task seeds its own).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const KEYS: usize = 8;
/// Key `i`'s values are `i * SPAN + n`: a value names its key.
const SPAN: i64 = 1_000_000_000;

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Bulk(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

/// What the interleavings run on: a caching `Client` (one connection), or a `Spread` or a `Pool`
/// sharing one cache over several.
trait Target: ringdis::Redis + Clone + Send + Sync + 'static {
    /// One connection: a `PING` on it proves receipt of the pushes the server wrote before.
    const ONE_CONNECTION: bool;
    fn stats(&self) -> CacheStats;
}

impl Target for Client {
    const ONE_CONNECTION: bool = true;
    fn stats(&self) -> CacheStats {
        stats(self)
    }
}

impl Target for ringdis::Spread {
    const ONE_CONNECTION: bool = false;
    fn stats(&self) -> CacheStats {
        self.cache_stats().expect("a caching spread has stats")
    }
}

impl Target for ringdis::Pool {
    const ONE_CONNECTION: bool = false;
    fn stats(&self) -> CacheStats {
        self.cache_stats().expect("a caching pool has stats")
    }
}

/// The oracle: every key only grows (`INCRBY`, from the caching client and from another one).
/// `floor[i]` is the largest value of key `i` whose write completed AND whose invalidation the
/// caching client has provably received: its own writes invalidate locally when sent; for the
/// other client's, a `PING` on the caching client's connection after the write returned (the
/// server wrote the push to that connection before the PING's reply). A cached read that starts
/// after `floor[i]` was raised must return at least it; it never returns more than an uncached
/// read made after it; its value names its key. On several connections sharing one cache (a
/// `Spread`, a `Pool`), a PING proves nothing about the connection that tracked a key, and the
/// target's own writes are not read back reliably (a finding): there no write raises the floor,
/// and the checks left are: never newer than an uncached read made after, never another key's,
/// and equal to the server's values once quiet.
async fn interleave<R: Target>(reader: R, writer: Client, at: String, ops: usize) {
    let floor: Arc<Vec<AtomicI64>> =
        Arc::new((0..KEYS as i64).map(|i| AtomicI64::new(i * SPAN)).collect());
    let keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(|i| key(&at, &format!("i{i}"))).collect());
    for (i, k) in keys.iter().enumerate() {
        run(&writer, cmd!("SET", k, i as i64 * SPAN)).await;
    }
    let left = Arc::new(AtomicUsize::new(ops));
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut tasks = Vec::new();
    for t in 0..64u64 {
        let (reader, writer, floor, keys, left, violations) = (
            reader.clone(),
            writer.clone(),
            floor.clone(),
            keys.clone(),
            left.clone(),
            violations.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
            let bad = |what: String| violations.lock().unwrap().push(what);
            while left
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok()
            {
                let i = rng.below(KEYS as u64) as usize;
                let by = 1 + rng.below(3) as i64;
                match rng.below(16) {
                    0 | 1 => {
                        // The caching client writes: its own write invalidates at once.
                        let v = reader.incrby(&keys[i], by).await.expect("INCRBY");
                        // (On several connections not even that: see
                        // `finding_a_pools_own_write_is_read_back_stale`.)
                        if R::ONE_CONNECTION {
                            floor[i].fetch_max(v, Ordering::AcqRel);
                        }
                    }
                    2 | 3 => {
                        let v = writer.incrby(&keys[i], by).await.expect("INCRBY");
                        if R::ONE_CONNECTION {
                            let _: Value = reader.call(cmd!("PING")).await.expect("PING");
                            floor[i].fetch_max(v, Ordering::AcqRel);
                        }
                    }
                    6 => {
                        // A cached read given up in flight (or before it was sent): whatever
                        // it leaves behind must strand no one (every task ends, bounded).
                        let limit = Duration::from_micros(rng.below(300));
                        let f = floor[i].load(Ordering::Acquire);
                        let get = reader.get(&keys[i]).cached().decode::<Value>();
                        if let Ok(got) = tokio::time::timeout(limit, get.into_future()).await {
                            let got = got.expect("cached GET");
                            if int(&got).is_none_or(|c| c < f || c / SPAN != i as i64) {
                                bad(format!("GET {i} (timeout) after floor {f}: {got:?}"));
                            }
                        }
                    }
                    4 | 5 => {
                        // A cached MGET of two keys.
                        let j = (i + 1 + rng.below(KEYS as u64 - 1) as usize) % KEYS;
                        let (fi, fj) = (
                            floor[i].load(Ordering::Acquire),
                            floor[j].load(Ordering::Acquire),
                        );
                        let got = reader
                            .mget([&keys[i], &keys[j]])
                            .cached()
                            .decode::<Value>()
                            .await
                            .expect("cached MGET");
                        let ok = match &got {
                            Value::Array(v) if v.len() == 2 => {
                                let (a, b) = (int(&v[0]), int(&v[1]));
                                a.is_some_and(|a| a >= fi && a / SPAN == i as i64)
                                    && b.is_some_and(|b| b >= fj && b / SPAN == j as i64)
                            }
                            _ => false,
                        };
                        if !ok {
                            bad(format!("MGET {i} {j} after floors {fi} {fj}: {got:?}"));
                        }
                    }
                    _ => {
                        let f = floor[i].load(Ordering::Acquire);
                        let got = reader
                            .get(&keys[i])
                            .cached()
                            .decode::<Value>()
                            .await
                            .expect("cached GET");
                        let fresh = uncached(&writer, writer.get(&keys[i]).into_cmd()).await;
                        match (int(&got), int(&fresh)) {
                            (Some(c), Some(u)) if c >= f && c <= u && c / SPAN == i as i64 => {}
                            _ => bad(format!(
                                "GET {i} after floor {f}: cached {got:?}, then uncached {fresh:?}"
                            )),
                        }
                    }
                }
            }
        }));
    }
    for task in tasks {
        bounded(&at, task).await.expect("a task");
    }
    let violations = std::mem::take(&mut *violations.lock().unwrap());
    assert!(
        violations.is_empty(),
        "{at}: {} stale or wrong reads, first: {:?}",
        violations.len(),
        &violations[..violations.len().min(5)]
    );
    let s = reader.stats();
    eprintln!("{at}: {s:?}");
    assert!(
        s.hits > 0 && s.misses > 0 && s.invalidations > 0,
        "{at}: the cache was not exercised: {s:?}"
    );
    // Quiet now: every cached read equals the server's value (on one connection at once; on
    // several, once the last pushes reached the connections that tracked the keys).
    for k in keys.iter() {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let cached = reader.get(k).cached().decode::<Value>().await;
            let cached = cached.expect("cached GET");
            let server = uncached(&writer, writer.get(k).into_cmd()).await;
            if cached == server {
                break;
            }
            assert!(
                !R::ONE_CONNECTION && Instant::now() < deadline,
                "{at}: {k}: cached {cached:?}, the server has {server:?}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_interleavings_of_writes_and_cached_reads_are_never_stale() {
    for server in servers() {
        let mut cells: Vec<(Engine, Mode)> = support::engines()
            .into_iter()
            .map(|e| (e, Mode::Default))
            .collect();
        cells.push((Engine::Task, Mode::Optin));
        cells.push((Engine::IoUring, Mode::Bcast));
        for (engine, mode) in cells {
            let at = format!("{}/{engine:?}/{mode:?}", server.kind());
            let reader = caching(&server.url(), engine, settings(mode));
            let writer = plain(&server, engine);
            interleave(reader, writer, at, 10_000).await;
        }
    }
}

/// The same on a `Spread` of 3 connections and a `Pool` of 4 sharing one cache (with the weaker
/// oracle of several connections).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleavings_on_a_spread_and_a_pool_are_never_stale() {
    for server in servers() {
        for engine in [Engine::Task, Engine::IoUring] {
            let config = || {
                support::config(&server, engine)
                    .command_timeout(Some(PATIENCE))
                    .cache(Cache::new())
            };
            let writer = plain(&server, engine);
            let at = format!("{}/{engine:?}/spread", server.kind());
            let spread = ringdis::Spread::new(config(), 3).expect("spread");
            interleave(spread, writer.clone(), at, 5_000).await;
            let at = format!("{}/{engine:?}/pool", server.kind());
            interleave(ringdis::Pool::new(config(), 4), writer, at, 5_000).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Cancellation and shared round trips.
// ---------------------------------------------------------------------------------------------

/// A leader dropped in flight (its task aborted, or a zero timeout) leaves no stuck waiter: the
/// read that joined it completes, and later reads work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_leader_leaves_no_stuck_waiter() {
    for server in servers() {
        let proxy = Proxy::start(server.port());
        for engine in support::engines() {
            let at = format!("{}/{engine:?}", server.kind());
            let writer = plain(&server, engine);
            let reader = caching(&proxy.url(), engine, Cache::new());
            let k = key(&at, "k");
            run(&writer, cmd!("SET", &k, "v")).await;
            run(&reader, cmd!("PING")).await;
            let spawn_read = || spawn_get(&reader, &k);

            proxy.hold_reply(&["GET", &k]);
            let leader = spawn_read();
            wait_for(&format!("{at}: the leader's reply held"), || {
                proxy.held_replies() >= 1
            })
            .await;
            let joined = stats(&reader).joined;
            let waiter = spawn_read();
            wait_for(&format!("{at}: the waiter joined"), || {
                stats(&reader).joined > joined
            })
            .await;
            leader.abort();
            assert!(bounded(&at, leader).await.is_err_and(|e| e.is_cancelled()));
            proxy.release();
            assert_eq!(
                bounded(&format!("{at}: the waiter"), waiter)
                    .await
                    .expect("task"),
                bulk("v")
            );
            assert_eq!(get_cached(&reader, &k).await, bulk("v"));

            // A zero timeout: the read is planned, maybe sent, then dropped.
            run(&writer, cmd!("SET", &k, "w")).await;
            wait_for(&format!("{at}: the invalidation"), || {
                stats(&reader).entries == 0
            })
            .await;
            proxy.hold_reply(&["GET", &k]);
            let dropped = tokio::time::timeout(Duration::ZERO, get_cached(&reader, &k)).await;
            assert!(dropped.is_err(), "{at}: a held read returned");
            let waiter = spawn_read();
            // Either the dropped read's bundle went out (its connection finishes it; the waiter
            // joins it) or the dropped read let go (the waiter leads): either way one GET's reply
            // is held, and the waiter gets it once released.
            wait_for(&format!("{at}: a GET's reply held"), || {
                proxy.held_replies() >= 1
            })
            .await;
            proxy.release();
            assert_eq!(
                bounded(&format!("{at}: after a zero timeout"), waiter)
                    .await
                    .expect("task"),
                bulk("w")
            );
            assert_eq!(get_cached(&reader, &k).await, bulk("w"));
            // Nothing misattributed: an unrelated read on the same connection is answered right.
            assert_eq!(uncached(&reader, cmd!("ECHO", "x")).await, bulk("x"));
        }
    }
}

/// Concurrent cached reads of one key share one round trip: one GET reaches the server, the
/// others join it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cached_reads_of_one_key_share_one_round_trip() {
    for server in servers() {
        let proxy = Proxy::start(server.port());
        for engine in support::engines() {
            let at = format!("{}/{engine:?}", server.kind());
            let writer = plain(&server, engine);
            let reader = caching(&proxy.url(), engine, Cache::new());
            let k = key(&at, "k");
            run(&writer, cmd!("SET", &k, "v")).await;
            run(&reader, cmd!("PING")).await;
            proxy.hold_reply(&["GET", &k]);
            let before = stats(&reader);
            let reads: Vec<_> = (0..16).map(|_| spawn_get(&reader, &k)).collect();
            wait_for(&format!("{at}: 15 joined"), || {
                stats(&reader).joined >= before.joined + 15
            })
            .await;
            wait_for(&format!("{at}: the reply held"), || {
                proxy.held_replies() >= 1
            })
            .await;
            assert_eq!(proxy.sent(&["GET", &k]), 1, "{at}");
            proxy.release();
            for read in reads {
                assert_eq!(bounded(&at, read).await.expect("task"), bulk("v"), "{at}");
            }
            let after = stats(&reader);
            assert_eq!(after.misses, before.misses + 1, "{at}: {after:?}");
            assert_eq!(after.joined, before.joined + 15, "{at}: {after:?}");
            assert_eq!(
                proxy.sent(&["GET", &k]),
                1,
                "{at}: more than one round trip"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 6. The byte budget.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_budget_evicts_and_stays_correct() {
    const BUDGET: usize = 8 << 10;
    for server in servers() {
        for engine in [Engine::Task, Engine::Epoll] {
            let at = format!("{}/{engine:?}", server.kind());
            let writer = plain(&server, engine);
            let reader = caching(&server.url(), engine, Cache::new().max_bytes(BUDGET));
            let keys: Vec<String> = (0..300).map(|i| key(&at, &format!("b{i}"))).collect();
            let value = |i: usize| format!("{i:0>200}");
            for (i, k) in keys.iter().enumerate() {
                run(&writer, cmd!("SET", k, value(i))).await;
            }
            for round in 0..2 {
                for (i, k) in keys.iter().enumerate() {
                    assert_eq!(
                        get_cached(&reader, k).await,
                        bulk(&value(i)),
                        "{at}: round {round}, {k}"
                    );
                    let s = stats(&reader);
                    assert!(s.bytes <= BUDGET as u64, "{at}: over budget: {s:?}");
                }
            }
            let s = stats(&reader);
            assert!(s.evictions > 0, "{at}: nothing evicted: {s:?}");
            assert!(s.entries > 0 && s.entries < 300, "{at}: {s:?}");
            // The most recent key is still held, and a write still invalidates it.
            let last = keys.last().expect("keys");
            let hits = s.hits;
            assert_eq!(get_cached(&reader, last).await, bulk(&value(299)));
            assert_eq!(
                stats(&reader).hits,
                hits + 1,
                "{at}: the newest entry was evicted"
            );
            let before = stats(&reader);
            run(&writer, cmd!("SET", last, "changed")).await;
            wait_for(&format!("{at}: the invalidation"), || {
                stats(&reader).invalidations > before.invalidations
            })
            .await;
            assert_eq!(get_cached(&reader, last).await, bulk("changed"));
            // A reply larger than the whole budget is answered, never kept.
            let big = key(&at, "big");
            let value = "x".repeat(2 * BUDGET);
            run(&writer, cmd!("SET", &big, &value)).await;
            for _ in 0..2 {
                assert_eq!(get_cached(&reader, &big).await, bulk(&value), "{at}");
                let s = stats(&reader);
                assert!(s.bytes <= BUDGET as u64, "{at}: over budget: {s:?}");
            }
        }
    }
}
