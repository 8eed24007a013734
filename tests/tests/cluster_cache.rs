//! Client-side caching on a `ClusterClient` (`Config::cache`), against real clusters
//! (`ringdis_tests::Cluster`: 3 primaries, 1 replica each) on Redis 7.0 and Valkey 9, RESP3:
//! one cache for every node's connection, each tracking the reads made on it. Cached reads hit
//! after the first on every primary; another client's write reaches the cache through the
//! node that served the read (a replica's too, with replica reads); a key whose slot moved is
//! not served stale; a failover flushes and reads recover. Each test function starts one
//! cluster per server kind and runs its cells (the engines) on it one after another.

mod support;

use ringdis::{Cache, ClusterClient, Cmd, CmdFlags, Config, Engine, FromRedis, Protocol, Redis};
use ringdis_tests::{Cluster, ClusterNode, ServerKind};
use std::time::{Duration, Instant};
use support::{cluster_client, engines};
use support::{runtime, steady};

/// A caching client of `cluster` on `engine` (RESP3), replica reads as `replicas` says.
fn cached_client(cluster: &Cluster, engine: Engine, replicas: bool) -> ClusterClient {
    caching_client(cluster, engine, replicas, Cache::new())
}

/// [`cached_client`] with these cache settings.
fn caching_client(
    cluster: &Cluster,
    engine: Engine,
    replicas: bool,
    cache: Cache,
) -> ClusterClient {
    let seeds = cluster.seed_urls();
    let config = Config::from_url(&seeds[0])
        .expect("seed URL")
        .engine(engine)
        .protocol(Protocol::Resp3)
        .command_timeout(Some(Duration::from_secs(10)))
        .connect_timeout(Duration::from_secs(1))
        .cache(cache);
    ClusterClient::builder(config)
        .seeds(&seeds)
        .read_from_replicas(replicas)
        .build()
        .expect("cluster client")
}

/// A client with no cache, for the other side's writes.
fn writer(cluster: &Cluster, engine: Engine) -> ClusterClient {
    cluster_client(cluster, engine, Protocol::Resp3, Duration::from_secs(10))
}

/// `GET key` as the generated method builds it: its key marked, flagged read-only.
fn get(key: &str) -> Cmd {
    Cmd::new("GET").key(key).with_flags(CmdFlags {
        readonly: true,
        ..CmdFlags::default()
    })
}

/// `SET key value`, flagged as a write.
fn set(key: &str, value: &str) -> Cmd {
    Cmd::new("SET").key(key).arg(value).with_flags(CmdFlags {
        write: true,
        ..CmdFlags::default()
    })
}

/// A cached `GET`.
async fn cached(db: &ClusterClient, key: &str, at: &str) -> Option<String> {
    db.call_cached(get(key), None)
        .await
        .unwrap_or_else(|e| panic!("{at}: cached GET {key}: {e}"))
}

async fn write(db: &ClusterClient, key: &str, value: &str, at: &str) {
    db.call::<()>(set(key, value))
        .await
        .unwrap_or_else(|e| panic!("{at}: SET {key}: {e}"));
}

fn stats(db: &ClusterClient) -> ringdis::CacheStats {
    db.cache_stats().expect("a caching client has cache stats")
}

/// Waits (bounded) until `cond` holds, polling.
async fn until(what: &str, at: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "{at}: never: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits (bounded) until a cached read of `key` gives `want`: the invalidation of the old
/// entry arrived (the entry's lifetime, 60 s, is far beyond the bound).
async fn until_fresh(db: &ClusterClient, key: &str, want: &str, at: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = cached(db, key, at).await;
        if got.as_deref() == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{at}: {key} still reads {got:?}, not {want:?}: no invalidation arrived"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A key (with `prefix`) whose slot `node` serves.
fn key_on(cluster: &Cluster, node: &ClusterNode, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}:{i}"))
        .find(|k| cluster.primary_of_slot(ringdis::slot(k)).id() == node.id())
        .expect("a key for every primary")
}

/// Cached reads of keys on all three primaries: a miss, then hits; another client's write to
/// each invalidates it through its node's connection, and the next read is fresh; a write
/// through the caching client itself is read back at once; a read whose keys span slots is
/// served uncached; concurrent reads of one key share one round trip. `cache`: the default
/// tracking mode, or `OPTIN` (each read sent after `CLIENT CACHING YES`).
async fn hits_and_invalidations(cluster: &Cluster, engine: Engine, cache: Cache, at: &str) {
    let db = caching_client(cluster, engine, false, cache);
    let other = writer(cluster, engine);
    let p = ringdis_tests::unique("cc");
    let keys: Vec<String> = cluster
        .primaries()
        .into_iter()
        .map(|n| key_on(cluster, n, &p))
        .collect();
    for k in &keys {
        write(&other, k, "v1", at).await;
    }
    let before = stats(&db);
    for k in &keys {
        assert_eq!(cached(&db, k, at).await.as_deref(), Some("v1"), "{at}: {k}");
    }
    let missed = stats(&db);
    assert_eq!(
        missed.misses - before.misses,
        3,
        "{at}: the first reads miss"
    );
    for _ in 0..3 {
        for k in &keys {
            assert_eq!(cached(&db, k, at).await.as_deref(), Some("v1"), "{at}: {k}");
        }
    }
    let hit = stats(&db);
    assert_eq!(
        hit.hits - missed.hits,
        9,
        "{at}: the reads after the first hit"
    );
    assert_eq!(hit.misses, missed.misses, "{at}: no more misses");
    // Another client writes: each node invalidates through the connection that read it.
    for k in &keys {
        write(&other, k, "v2", at).await;
    }
    until("an invalidation from every node", at, || {
        stats(&db).invalidations >= hit.invalidations + 3
    })
    .await;
    for k in &keys {
        assert_eq!(cached(&db, k, at).await.as_deref(), Some("v2"), "{at}: {k}");
    }
    // A write through the caching client: read back at once, whatever push is still due.
    for k in &keys {
        write(&db, k, "v3", at).await;
        assert_eq!(cached(&db, k, at).await.as_deref(), Some("v3"), "{at}: {k}");
    }
    // The write's keys leave the cache when it is sent, not when the server's push comes: with
    // the node's writes paused, the write waits there (and no push can come), yet its key is
    // gone from the cache already.
    let (k, node) = (&keys[0], cluster.primaries()[0]);
    assert_eq!(cached(&db, k, at).await.as_deref(), Some("v3"), "{at}");
    let held = stats(&db);
    node.call(&["CLIENT", "PAUSE", "5000", "WRITE"])
        .unwrap_or_else(|e| panic!("{at}: CLIENT PAUSE: {e}"));
    let paused = db.call::<()>(set(k, "v4"));
    let now = stats(&db);
    node.call(&["CLIENT", "UNPAUSE"])
        .unwrap_or_else(|e| panic!("{at}: CLIENT UNPAUSE: {e}"));
    assert_eq!(
        now.invalidations,
        held.invalidations + 1,
        "{at}: invalidated at once"
    );
    assert_eq!(
        now.entries,
        held.entries - 1,
        "{at}: its entry gone at once"
    );
    paused
        .await
        .unwrap_or_else(|e| panic!("{at}: the paused SET: {e}"));
    assert_eq!(cached(&db, k, at).await.as_deref(), Some("v4"), "{at}");
    // Keys in several slots: an MGET sent (split) uncached, neither a hit nor a miss.
    let mget = keys
        .iter()
        .fold(Cmd::new("MGET"), |c, k| c.key(k))
        .with_flags(CmdFlags {
            readonly: true,
            ..CmdFlags::default()
        });
    let counted = stats(&db);
    let all: Vec<Option<String>> = db.call_cached(mget, None).await.unwrap();
    let want = |v: &str| Some(v.to_owned());
    assert_eq!(all, vec![want("v4"), want("v3"), want("v3")], "{at}");
    let after = stats(&db);
    assert_eq!(
        (after.hits, after.misses),
        (counted.hits, counted.misses),
        "{at}: a multi-slot read is not cached"
    );
    assert_eq!(after.uncacheable, counted.uncacheable + 1, "{at}");
    // A missing key is cached too, and a write to it reaches it.
    let missing = format!("{p}:missing");
    assert_eq!(cached(&db, &missing, at).await, None, "{at}");
    assert_eq!(cached(&db, &missing, at).await, None, "{at}");
    write(&other, &missing, "now", at).await;
    until_fresh(&db, &missing, "now", at).await;
    // Concurrent reads of one key: one leads (a miss), the others join its round trip (or,
    // its bundle being sent as the call is made, hit what it stored if it was that quick).
    let shared = format!("{p}:shared");
    write(&other, &shared, "s", at).await;
    let before = stats(&db);
    let reads: Vec<_> = (0..16)
        .map(|_| db.call_cached::<Option<String>>(get(&shared), None))
        .collect();
    for r in futures::future::join_all(reads).await {
        assert_eq!(r.unwrap().as_deref(), Some("s"), "{at}");
    }
    let after = stats(&db);
    assert_eq!(after.misses - before.misses, 1, "{at}: one read sent");
    assert_eq!(
        (after.joined - before.joined) + (after.hits - before.hits),
        15,
        "{at}: the others joined it or hit its entry"
    );
}

/// Replica reads: the cached read is served by a replica, whose connection tracks it, and a
/// write on the primary reaches the cache through the replica once it replicated.
async fn replica_reads(cluster: &Cluster, engine: Engine, at: &str) {
    let db = cached_client(cluster, engine, true);
    let other = writer(cluster, engine);
    let p = ringdis_tests::unique("ccr");
    let primary = cluster.primaries()[0];
    let k = key_on(cluster, primary, &p);
    write(&other, &k, "r1", at).await;
    until_fresh(&db, &k, "r1", at).await;
    let hits = stats(&db).hits;
    assert_eq!(cached(&db, &k, at).await.as_deref(), Some("r1"), "{at}");
    assert_eq!(stats(&db).hits, hits + 1, "{at}: a hit");
    // The replica holds a tracking (`t`), read-only (`r`) client: this one.
    let replica = cluster.replicas_of(primary)[0];
    let list = replica
        .call(&["CLIENT", "LIST"])
        .unwrap_or_else(|e| panic!("{at}: CLIENT LIST on {replica}: {e}"));
    let list = String::from_redis(list).expect("CLIENT LIST is text");
    assert!(
        list.lines().any(|l| l.split(' ').any(|f| f
            .strip_prefix("flags=")
            .is_some_and(|f| f.contains('t') && f.contains('r')))),
        "{at}: no tracking read-only client on the replica:\n{list}"
    );
    write(&other, &k, "r2", at).await;
    until_fresh(&db, &k, "r2", at).await;
}

/// A slot moves to another primary. The cached key the old owner had is invalidated by it as
/// it migrates away, so a write on the new owner is read; an entry of a key the old owner did
/// not have (no node tracks it any more) goes when the client learns the slot moved.
async fn migration(cluster: &Cluster, engine: Engine, at: &str) {
    let db = cached_client(cluster, engine, false);
    let other = writer(cluster, engine);
    let p = ringdis_tests::unique("ccm");
    let from = cluster.primaries()[1];
    let to = cluster
        .primaries()
        .into_iter()
        .find(|n| n.id() != from.id())
        .expect("another primary");
    let tag = key_on(cluster, from, &p);
    let (k, absent) = (format!("{{{tag}}}:k"), format!("{{{tag}}}:absent"));
    write(&other, &k, "m1", at).await;
    for _ in 0..2 {
        assert_eq!(cached(&db, &k, at).await.as_deref(), Some("m1"), "{at}");
        assert_eq!(cached(&db, &absent, at).await, None, "{at}");
    }
    let before = stats(&db);
    assert_eq!(before.entries, 2, "{at}: both cached");
    cluster.migrate_slot(ringdis::slot(&k), to);
    // MIGRATE deleted the key on the old owner, which says so to the connection that read it.
    until(
        "the old owner's invalidation of the migrated key",
        at,
        || {
            let now = stats(&db);
            now.invalidations > before.invalidations || now.flushes > before.flushes
        },
    )
    .await;
    write(&other, &k, "m2", at).await;
    write(&other, &absent, "here", at).await;
    // The read goes to the old owner, which answers MOVED: the map learns it, the cache is
    // flushed, and the new owner answers (and tracks).
    assert_eq!(
        cached(&db, &k, at).await.as_deref(),
        Some("m2"),
        "{at}: stale after moving"
    );
    assert!(
        stats(&db).flushes > before.flushes,
        "{at}: a slot that moved flushes"
    );
    assert_eq!(
        cached(&db, &absent, at).await.as_deref(),
        Some("here"),
        "{at}: a missing key's entry outlived its slot's move"
    );
    // The new owner tracks the reads made there.
    assert_eq!(cached(&db, &k, at).await.as_deref(), Some("m2"), "{at}");
    write(&other, &k, "m3", at).await;
    until_fresh(&db, &k, "m3", at).await;
    // The slot goes back, for the next cell.
    cluster.migrate_slot(ringdis::slot(&k), from);
}

/// A read of a key that already left its migrating slot (the owner answers `ASK`) is sent to
/// the importing node after `ASKING` and not stored; a key still on the owner is cached there,
/// and its entry goes when the key migrates.
async fn asked(cluster: &Cluster, engine: Engine, at: &str) {
    let db = cached_client(cluster, engine, false);
    let other = writer(cluster, engine);
    let p = ringdis_tests::unique("cca");
    let from = cluster.primaries()[2];
    let to = cluster.primaries()[0];
    let tag = key_on(cluster, from, &p);
    let (stays, leaves) = (format!("{{{tag}}}:stays"), format!("{{{tag}}}:leaves"));
    write(&other, &stays, "a1", at).await;
    write(&other, &leaves, "b1", at).await;
    let slot = ringdis::slot(&stays);
    let mut migration = cluster.start_migration(slot, to).expect("another primary");
    assert!(migration.move_key(&leaves), "{at}: the key moved");
    let before = stats(&db);
    for _ in 0..2 {
        assert_eq!(
            cached(&db, &leaves, at).await.as_deref(),
            Some("b1"),
            "{at}"
        );
    }
    let after = stats(&db);
    assert_eq!(
        (after.entries, after.hits),
        (before.entries, before.hits),
        "{at}: a read answered after ASK is not kept"
    );
    for _ in 0..2 {
        assert_eq!(cached(&db, &stays, at).await.as_deref(), Some("a1"), "{at}");
    }
    let kept = stats(&db);
    assert_eq!(
        (kept.entries, kept.hits),
        (after.entries + 1, after.hits + 1),
        "{at}: a key still on the owner is cached"
    );
    migration.finish();
    write(&other, &stays, "a2", at).await;
    write(&other, &leaves, "b2", at).await;
    until_fresh(&db, &stays, "a2", at).await;
    assert_eq!(
        cached(&db, &leaves, at).await.as_deref(),
        Some("b2"),
        "{at}"
    );
    cluster.migrate_slot(slot, from);
}

/// A manual failover: the old primary goes on tracking as a replica until the client learns
/// of it (its next request there is redirected), which flushes; reads are fresh after it.
async fn manual_failover(cluster: &Cluster, engine: Engine, cell: usize, at: &str) {
    let db = cached_client(cluster, engine, false);
    let other = writer(cluster, engine);
    let p = ringdis_tests::unique("ccf");
    let primary = cluster.primaries()[cell % 3];
    let k = key_on(cluster, primary, &p);
    write(&other, &k, "f1", at).await;
    assert_eq!(cached(&db, &k, at).await.as_deref(), Some("f1"), "{at}");
    assert_eq!(cached(&db, &k, at).await.as_deref(), Some("f1"), "{at}");
    let before = stats(&db);
    let replica = cluster.replicas_of(primary)[0];
    cluster.failover(replica);
    // The write goes to the old primary, which redirects it: a slot changed owner.
    write(&db, &k, "f2", at).await;
    assert!(
        stats(&db).flushes > before.flushes,
        "{at}: the failover flushed"
    );
    assert_eq!(cached(&db, &k, at).await.as_deref(), Some("f2"), "{at}");
    assert_eq!(cached(&db, &k, at).await.as_deref(), Some("f2"), "{at}");
    write(&other, &k, "f3", at).await;
    until_fresh(&db, &k, "f3", at).await;
}

/// A primary dies: its connection's loss flushes the cache, and cached reads recover on the
/// replica that took over (which tracks them from then on).
async fn primary_killed(cluster: &Cluster, engine: Engine, at: &str) {
    let db = cached_client(cluster, engine, false);
    let other = writer(cluster, engine);
    let p = ringdis_tests::unique("cck");
    let victim = cluster.primaries()[2];
    let k = key_on(cluster, victim, &p);
    write(&other, &k, "d1", at).await;
    assert_eq!(cached(&db, &k, at).await.as_deref(), Some("d1"), "{at}");
    assert_eq!(cached(&db, &k, at).await.as_deref(), Some("d1"), "{at}");
    let before = stats(&db);
    let killed = cluster.kill_primary(victim);
    until("the lost connection's flush", at, || {
        stats(&db).flushes > before.flushes
    })
    .await;
    // The entry went with the flush: the read asks the new primary (after the map's refresh).
    let got = cached(&db, &k, at).await;
    assert!(
        got.as_deref() == Some("d1") || got.is_none(),
        "{at}: {got:?} (the write may be lost with the old primary, nothing else)"
    );
    assert!(
        stats(&db).misses > before.misses,
        "{at}: read again after the flush"
    );
    write(&other, &k, "d2", at).await;
    until_fresh(&db, &k, "d2", at).await;
    cluster.restart(killed);
}

fn run(kind: ServerKind) {
    let cluster = steady(kind);
    for (i, engine) in engines().into_iter().enumerate() {
        let at = format!("{kind}/{engine:?}");
        let rt = runtime();
        rt.block_on(async {
            hits_and_invalidations(&cluster, engine, Cache::new(), &at).await;
            let optin = format!("{at}/optin");
            hits_and_invalidations(&cluster, engine, Cache::new().optin(), &optin).await;
            replica_reads(&cluster, engine, &at).await;
            migration(&cluster, engine, &at).await;
            asked(&cluster, engine, &at).await;
            manual_failover(&cluster, engine, i, &at).await;
        });
    }
    // Once per server kind: it replaces a node.
    let rt = runtime();
    let at = format!("{kind}/killed");
    rt.block_on(primary_killed(&cluster, Engine::Epoll, &at));
}

#[test]
fn cluster_cache_on_redis() {
    run(ServerKind::Redis);
}

#[test]
fn cluster_cache_on_valkey() {
    run(ServerKind::Valkey);
}
