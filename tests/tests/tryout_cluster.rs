//! A new user's service moved from one Redis to Redis Cluster and to Sentinel: the program such
//! a user writes from the public docs, kept as a test so it keeps working. One throwaway
//! cluster (or Sentinel deployment) per test function; Redis 7.0, both protocols.

mod support;

use ringdis::prelude::*;
use ringdis::{cmd, slot, ClusterClient, Config, Error, Protocol, Script, ToRedis, Value};
use ringdis_tests::{Cluster, SentinelSetup, Server, ServerKind, MASTER};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::runtime;
use support::PROTOCOLS;

#[derive(Debug, PartialEq, FromRedis, ToRedis)]
struct User {
    name: String,
    born: i64,
    email: Option<String>,
}

/// Code written once against `&impl Redis`, run on a single node and on a cluster.
async fn bump_visits(db: &impl Redis, user: &str) -> ringdis::Result<i64> {
    let key = format!("visits:{{{user}}}");
    let (n, _): (i64, bool) = db.pipeline().incr(&key).expire(&key, 60).query().await?;
    Ok(n)
}

/// Everything a service does on a cluster, with both protocols.
#[test]
fn a_service_on_a_cluster() {
    let cluster = Cluster::start(ServerKind::Redis);
    let rt = runtime();
    for protocol in PROTOCOLS {
        rt.block_on(service_day(&cluster, protocol));
    }
    // A WATCH transaction whose slot moved since the client last saw the map.
    rt.block_on(async {
        let db = ClusterClient::open(cluster.seed_urls()).expect("open");
        db.set("{moving}:n", 1).await.expect("SET");
        let s = slot(b"moving");
        let from = cluster.primary_of_slot(s).port();
        let to = cluster
            .primaries()
            .into_iter()
            .find(|p| p.port() != from)
            .expect("another primary");
        cluster.migrate_slot(s, to);
        let (n,): (i64,) = db
            .watch_transaction("{moving}:n", |conn| async move {
                let mut tx = conn.transaction();
                tx.add(cmd!("INCR", "{moving}:n"));
                Ok(tx)
            })
            .await
            .expect("WATCH on the slot's new node");
        assert_eq!(n, 2);
        assert!(db.stats().redirects >= 1, "the old node said MOVED");
        assert_eq!(db.del("{moving}:n").await.expect("DEL"), 1);
    });
}

async fn service_day(cluster: &Cluster, protocol: Protocol) {
    let mut urls = cluster.seed_urls();
    urls[0] = format!("{}?protocol={}", urls[0], protocol_name(protocol));
    let db = ClusterClient::open(&urls).expect("open");
    // Fail fast at startup: every primary connected before the first call (on a task: the
    // future is Send).
    let startup = db.clone();
    tokio::spawn(async move { startup.connect().await })
        .await
        .expect("task")
        .expect("connect");
    let primaries = cluster.primaries().len() as u64;
    assert!(db.stats().connects >= primaries, "{:?}", db.stats());

    // Typed calls.
    db.set("greeting", "hello").ex(60).await.expect("SET");
    let g: Option<String> = db.get("greeting").decode().await.expect("GET");
    assert_eq!(g.as_deref(), Some("hello"));

    // A derived struct as a hash.
    let ada = User {
        name: "ada".into(),
        born: 1815,
        email: None,
    };
    db.hset_multiple("user:1", &ada).await.expect("HSET");
    let back: User = db.hgetall("user:1").decode().await.expect("HGETALL");
    assert_eq!(back, ada);

    // MSET / MGET across slots, merged in my order.
    let keys = ["a", "b", "c", "d", "e"];
    assert!(
        keys.iter()
            .map(|k| slot(k.as_bytes()))
            .collect::<HashSet<_>>()
            .len()
            > 1,
        "the keys span slots"
    );
    db.mset(keys.iter().map(|k| (*k, k.to_uppercase())))
        .await
        .expect("MSET");
    let vals: Vec<Option<String>> = db
        .mget(&["e", "a", "missing", "c"][..])
        .decode()
        .await
        .expect("MGET");
    assert_eq!(
        vals,
        [Some("E".into()), Some("A".into()), None, Some("C".into())]
    );

    // A pipeline across slots.
    let (x, y, z): (i64, i64, Option<String>) = db
        .pipeline()
        .incr("counter:x")
        .incr("counter:y")
        .get("b")
        .query()
        .await
        .expect("pipeline");
    assert_eq!((x, y, z.as_deref()), (1, 1, Some("B")));

    // A transaction under a hash tag.
    let (n, m): (i64, i64) = db
        .transaction()
        .incr("{cart:7}:items")
        .incrby("{cart:7}:total", 42)
        .query()
        .await
        .expect("MULTI/EXEC");
    assert_eq!((n, m), (1, 42));

    // An optimistic transaction (WATCH) under a hash tag: a watched key changed by someone
    // else while it builds runs it again.
    db.mset([("{acct}:a", 100), ("{acct}:b", 0)])
        .await
        .expect("MSET");
    let builds = AtomicUsize::new(0);
    let ((), b): ((), i64) = db
        .watch_transaction(&["{acct}:a", "{acct}:b"][..], |conn| {
            let (db, builds) = (&db, &builds);
            async move {
                let a: i64 = conn.call(cmd!("GET", "{acct}:a")).await?;
                if builds.fetch_add(1, Ordering::SeqCst) == 0 {
                    db.incr("{acct}:a").await?; // another writer, between WATCH and EXEC
                }
                let mut tx = conn.transaction();
                tx.add(cmd!("SET", "{acct}:a", a - 10))
                    .add(cmd!("INCRBY", "{acct}:b", 10));
                Ok(tx)
            }
        })
        .await
        .expect("WATCH/MULTI/EXEC");
    assert_eq!(b, 10);
    assert_eq!(
        builds.load(Ordering::SeqCst),
        2,
        "the first EXEC was aborted"
    );
    let a: i64 = db.get("{acct}:a").decode().await.expect("GET");
    assert_eq!(a, 91, "the other writer's INCR counted");
    let e = db
        .watch_transaction(
            &["a", "b"][..],
            |conn| async move { Ok(conn.transaction()) },
        )
        .await
        .map(|(): ()| "ran")
        .expect_err("watched keys across slots");
    assert!(e.is_client() && e.to_string().contains("CROSSSLOT"), "{e}");

    // A Lua script.
    let add = Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    let s: i64 = add
        .key("scripted")
        .arg(5)
        .invoke(&db)
        .await
        .expect("script");
    assert_eq!(s, 5);

    // SCAN over the whole cluster.
    let found: HashSet<Bytes> = db
        .scan_iter()
        .match_("counter:*")
        .collect_all()
        .await
        .expect("scan");
    assert_eq!(found.len(), 2, "{found:?}");

    // Generic code shared with a single-node client.
    assert_eq!(bump_visits(&db, "ada").await.expect("visits"), 1);
    assert_eq!(bump_visits(&db, "ada").await.expect("visits"), 2);

    // A command not in the spec, routed by hand (a module's; here a plain one to prove the
    // route reaches the right node: OBJECT ENCODING needs the key's node).
    let enc: String = db
        .call(cmd!("OBJECT", "ENCODING").key("counter:x"))
        .await
        .expect("OBJECT ENCODING");
    assert_eq!(enc, "int");
    let ttl: i64 = db
        .call(cmd!("TTL", "greeting").route_key("greeting"))
        .await
        .expect("TTL routed");
    assert!(ttl > 0 && ttl <= 60, "{ttl}");

    // Stats.
    let stats = db.stats();
    assert!(stats.calls > 0, "{stats:?}");

    // Errors I provoke.
    let e = db
        .call::<Value>(cmd!("SUNION").key("a").key("b"))
        .await
        .expect_err("cross-slot SUNION");
    assert!(e.is_client() && e.to_string().contains("CROSSSLOT"), "{e}");
    let e = db
        .transaction()
        .incr("a")
        .incr("b")
        .query::<Value>()
        .await
        .expect_err("cross-slot transaction");
    assert!(e.is_client() && e.to_string().contains("CROSSSLOT"), "{e}");
    let e = db
        .call::<Value>(cmd!("SCAN", 0))
        .await
        .expect_err("SCAN on a cluster");
    assert!(e.is_client() && e.to_string().contains("scan_iter"), "{e}");

    // Clean up.
    let n: i64 = db
        .call(cmd!("FLUSHALL"))
        .await
        .map(|()| 0)
        .expect("FLUSHALL");
    assert_eq!(n, 0);
    let left: i64 = db.dbsize().await.expect("DBSIZE");
    assert_eq!(left, 0);
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Resp2 => "2",
        Protocol::Resp3 => "3",
    }
}

/// What a user meets when the setup is wrong: dead seeds, a server that is not a cluster, a
/// password the cluster refuses or lacks, a database number.
#[test]
fn cluster_setup_errors() {
    let cluster = Cluster::start(ServerKind::Redis);
    let single = Server::start(ServerKind::Redis);
    let rt = runtime();
    rt.block_on(async {
        // A dead seed first, a live one second: the live one is enough.
        let mut urls = vec!["redis://127.0.0.1:1".to_owned()];
        urls.extend(cluster.seed_urls().into_iter().take(1));
        let db = ClusterClient::open(&urls).expect("open");
        db.set("k", 1).await.expect("SET through the live seed");
        assert_eq!(db.del("k").await.expect("DEL"), 1);

        // Only dead seeds: a connection error, in time, naming every seed asked.
        let config = Config::new()
            .connect_timeout(Duration::from_millis(200))
            .command_timeout(Some(Duration::from_secs(1)));
        let dead = ClusterClient::builder(config)
            .seeds(["127.0.0.1:1", "127.0.0.1:2"])
            .build()
            .expect("build");
        let e = dead.connect().await.expect_err("connect to dead seeds");
        assert!(
            e.is_connection() && e.to_string().contains("127.0.0.1:2"),
            "{e}"
        );
        let started = Instant::now();
        let e = dead.get("k").await.expect_err("no node");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            matches!(&e, Error::Connection { sent: false, message, .. }
                if message.contains("127.0.0.1:1") && message.contains("127.0.0.1:2")),
            "{e}"
        );

        // A single server given as a cluster seed says what to use instead.
        let db = ClusterClient::open([single.url()]).expect("open");
        let e = db.get("k").await.expect_err("not a cluster");
        assert!(
            e.to_string().contains("cluster support disabled")
                && e.to_string().contains("use Client"),
            "{e}"
        );

        // TLS asked of a plain cluster: an unsent connection error in the call's time.
        let tls = cluster.seed_urls()[0].replace("redis://", "rediss://");
        let config = Config::from_url(&tls)
            .expect("rediss URL")
            .command_timeout(Some(Duration::from_millis(500)));
        let db = ClusterClient::builder(config).build().expect("build");
        let e = db.get("k").await.expect_err("TLS to a plain port");
        assert!(e.is_retryable() && e.to_string().contains("TLS"), "{e}");

        // A cluster has one database.
        let e = ClusterClient::open([format!("{}/2", cluster.seed_urls()[0])]).expect_err("db 2");
        assert!(e.is_client() && e.to_string().contains("Config::db"), "{e}");

        // A cluster with a password: the URL's credentials reach every node.
        for node in cluster.nodes() {
            node.call(&["CONFIG", "SET", "masterauth", "pw"])
                .expect("masterauth");
            node.call(&["CONFIG", "SET", "requirepass", "pw"])
                .expect("requirepass");
        }
        let with = |userinfo: &str, protocol: &str| {
            let urls: Vec<String> = cluster
                .seed_urls()
                .iter()
                .map(|u| u.replace("redis://", &format!("redis://{userinfo}")) + protocol)
                .collect();
            ClusterClient::open(&urls).expect("open")
        };
        for protocol in ["?protocol=2", "?protocol=3"] {
            let db = with(":pw@", protocol);
            db.mset([("a", 1), ("b", 2), ("c", 3)]).await.expect("MSET");
            let v: Vec<i64> = db.mget(&["c", "b", "a"][..]).decode().await.expect("MGET");
            assert_eq!(v, [3, 2, 1]);
            assert_eq!(db.del(&["a", "b", "c"][..]).await.expect("DEL"), 3);
            let e = with(":wrong@", protocol)
                .get("a")
                .await
                .expect_err("wrong password");
            assert!(e.to_string().contains("WRONGPASS"), "{e}");
            let e = with(":wrong@", protocol)
                .connect()
                .await
                .expect_err("connect with a wrong password");
            assert!(e.to_string().contains("WRONGPASS"), "{e}");
            let e = with("", protocol).get("a").await.expect_err("no password");
            assert!(e.to_string().contains("NOAUTH"), "{e}");
        }
    });
}

/// A single-node `Client` pointed at a cluster node works for the keys of that node's slots
/// and surfaces `MOVED` for the others: the sign that a `ClusterClient` is needed.
#[test]
fn a_single_node_client_on_a_cluster_sees_moved() {
    let cluster = Cluster::start(ServerKind::Redis);
    let rt = runtime();
    rt.block_on(async {
        let node = cluster.primaries()[0];
        let one = Client::open(&node.url()).expect("open");
        let mine = (0..1000)
            .map(|i| format!("k{i}"))
            .find(|k| cluster.primary_of_key(k).port() == node.port())
            .expect("a key of this node");
        let other = (0..1000)
            .map(|i| format!("k{i}"))
            .find(|k| cluster.primary_of_key(k).port() != node.port())
            .expect("a key of another node");
        assert_eq!(one.get(&mine).await.expect("own slot"), None);
        let e = one.get(&other).await.expect_err("another node's slot");
        assert!(
            matches!(&e, Error::Server { kind, .. } if kind == "MOVED"),
            "{e}"
        );
        assert!(e.to_string().contains("ClusterClient"), "{e}");
    });
}

/// A Sentinel-managed primary by URL: generic code runs on it, a wrong master name says what
/// is wrong, and a service's traffic goes on through a failover (the primary killed): the
/// calls in flight fail with connection errors only (no READONLY, no hang), later ones reach
/// the promoted replica.
#[test]
fn a_service_on_sentinel() {
    let mut setup = SentinelSetup::start(ServerKind::Redis);
    let rt = runtime();
    rt.block_on(async {
        let url = format!("{}?protocol=3", setup.url());
        let config = Config::from_url(&url)
            .expect("sentinel URL")
            .command_timeout(Some(Duration::from_secs(2)));
        assert_eq!(config.sentinel_master(), Some(MASTER));
        let db = Client::new(config).expect("client");
        db.set("before", 1).await.expect("SET");
        assert_eq!(bump_visits(&db, "ada").await.expect("visits"), 1);

        // A master name the sentinels do not monitor: the error says what was awaited.
        let wrong = Config::from_url(&setup.url().replace(MASTER, "nosuch"))
            .expect("URL")
            .command_timeout(Some(Duration::from_millis(500)));
        let e = Client::new(wrong)
            .expect("client")
            .get("k")
            .await
            .expect_err("no such master");
        assert!(
            matches!(&e, Error::Connection { sent: false, message, .. }
                if message.contains("\"nosuch\"") && message.contains("sentinels")),
            "{e}"
        );

        // Traffic through a failover.
        let stop = Arc::new(AtomicBool::new(false));
        let traffic = {
            let (db, stop) = (db.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0u64, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    match db.incr("n").await {
                        Ok(_) => ok += 1,
                        Err(e) => failed.push(e),
                    }
                }
                (ok, failed)
            })
        };
        let old = setup.kill_primary();
        let new = setup.wait_for_failover();
        assert_ne!(old, new);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = None;
        while Instant::now() < deadline {
            match db.set("after", 2).await {
                Ok(_) => {
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        assert!(last.is_none(), "no write reached the new primary: {last:?}");
        stop.store(true, Ordering::Relaxed);
        let (ok, failed) = traffic.await.expect("traffic");
        assert!(ok > 0);
        for e in &failed {
            assert!(e.is_connection(), "a failover surfaced {e}");
        }
        let v: Option<i64> = db.get("before").decode().await.expect("GET");
        assert_eq!(v, Some(1), "the replica had it");
    });
}
