//! `ClusterClient` against real clusters (`ringdis_tests::Cluster`: 3 primaries, 1 replica
//! each) on Redis 7.0 and Valkey 9: the API a `Client` has (typed methods, `call`, `async_call`,
//! derives, pipelines, transactions, scripts), routing refusals, redirects (`MOVED` after a
//! slot moved, `ASK` and `TRYAGAIN` during a migration), and load while slots move and while a
//! primary dies. Each test function starts one cluster per server kind and runs its cells
//! (engines × protocols) on it one after another.

mod support;

use futures::future::join_all;
use ringdis::{
    cmd, ClusterClient, Commands, Config, Engine, Error, FromRedis, Protocol, Redis, Script, Value,
};
use ringdis_tests::{Cluster, ServerKind};
use std::future::IntoFuture;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{cells, cluster_client as client, engines, PROTOCOLS};
use support::{runtime, steady};

#[derive(FromRedis, Debug, PartialEq)]
struct User {
    name: String,
    born: i64,
}

/// Everything a `Client` offers, on a cluster.
async fn the_client_api(cluster: &Cluster, engine: Engine, protocol: Protocol, at: &str) {
    let db = client(cluster, engine, protocol, Duration::from_secs(5));
    let p = ringdis_tests::unique("api");
    // Typed methods on keys spread over every shard.
    for i in 0..60 {
        db.set(format!("{p}:k{i}"), i)
            .await
            .unwrap_or_else(|e| panic!("{at}: SET: {e}"));
    }
    for i in 0..60 {
        let v: Option<i64> = db.get(format!("{p}:k{i}")).decode().await.unwrap();
        assert_eq!(v, Some(i), "{at}: k{i}");
        assert_eq!(db.incr(format!("{p}:k{i}")).await.unwrap(), i + 1, "{at}");
    }
    // call(cmd!): keys marked, and not marked (found from the spec's key specs).
    let n: i64 = db
        .call(cmd!("INCR").key(format!("{p}:marked")))
        .await
        .unwrap();
    assert_eq!(n, 1, "{at}");
    for i in 0..20 {
        let key = format!("{p}:hand{i}");
        db.call::<()>(cmd!("SET", &key, i))
            .await
            .unwrap_or_else(|e| panic!("{at}: {e}"));
        let v: i64 = db.call(cmd!("GET", &key)).await.unwrap();
        assert_eq!(v, i, "{at}");
    }
    let pong: String = db.call(cmd!("PING")).await.unwrap();
    assert_eq!(pong, "PONG", "{at}");
    let echo: String = db.call(cmd!("ECHO", "hi")).await.unwrap();
    assert_eq!(echo, "hi", "{at}");
    // async_call: the callback gets the reply.
    let (tx, rx) = tokio::sync::oneshot::channel();
    db.async_call(
        cmd!("INCR").key(format!("{p}:async")),
        move |r: ringdis::Result<Value>| {
            let _ = tx.send(r);
        },
    );
    assert_eq!(rx.await.unwrap(), Ok(Value::Int(1)), "{at}");
    // A derive.
    let user = format!("{p}:user");
    db.hset(&user, "name", "ada")
        .and("born", 1815)
        .await
        .unwrap();
    let u: User = db.hgetall(&user).decode().await.unwrap();
    assert_eq!(
        u,
        User {
            name: "ada".into(),
            born: 1815
        },
        "{at}"
    );
    // A pipeline of 1000 mixed commands across slots: replies in the caller's order.
    let mut pipe = db.pipeline();
    for i in 0..250 {
        let key = format!("{p}:pipe{i}");
        pipe.set(&key, i).send();
        pipe.incr(&key).send();
        pipe.get(&key).send();
        pipe.add(cmd!("INCRBY").key(format!("{p}:pipe-n{}", i % 7)).arg(i));
    }
    let replies: Vec<Value> = pipe.query().await.unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!(replies.len(), 1000, "{at}");
    let mut sums = [0i64; 7];
    for i in 0..250 {
        let r = &replies[i * 4..i * 4 + 4];
        assert!(
            matches!(&r[0], Value::Simple(s) if s == "OK"),
            "{at}: {:?}",
            r[0]
        );
        assert_eq!(r[1], Value::Int(i as i64 + 1), "{at}");
        assert_eq!(i64::from_redis(r[2].clone()).unwrap(), i as i64 + 1, "{at}");
        sums[i % 7] += i as i64;
        assert_eq!(r[3], Value::Int(sums[i % 7]), "{at}");
    }
    // Hand-built commands with unmarked keys in a pipeline (found from the key specs).
    let mut pipe = db.pipeline();
    for i in 0..50 {
        pipe.add(cmd!("SET", format!("{p}:hp{i}"), i));
        pipe.add(cmd!("GET", format!("{p}:hp{i}")));
    }
    let replies: Vec<Option<i64>> = pipe
        .query::<Vec<Value>>()
        .await
        .unwrap_or_else(|e| panic!("{at}: {e}"))
        .into_iter()
        .skip(1)
        .step_by(2)
        .map(|v| FromRedis::from_redis(v).unwrap())
        .collect();
    assert_eq!(replies, (0..50).map(Some).collect::<Vec<_>>(), "{at}");
    // A blocking command, on a dedicated connection of its node.
    let q = format!("{p}:queue");
    db.rpush(&q, "job").await.unwrap();
    let popped: Option<(String, String)> = db.blpop(&q, 1.0).decode().await.unwrap();
    assert_eq!(popped, Some((q.clone(), "job".into())), "{at}");
    let none: Option<(String, String)> = db.blpop(&q, 0.05).decode().await.unwrap();
    assert_eq!(none, None, "{at}");
    // Errors stay in place.
    let mut pipe = db.pipeline();
    pipe.set(format!("{p}:s"), "x").send();
    pipe.incr(format!("{p}:s")).send();
    pipe.get(format!("{p}:s")).send();
    let each: Vec<ringdis::Result<Value>> = pipe.query().await.unwrap();
    assert!(each[0].is_ok() && each[2].is_ok(), "{at}: {each:?}");
    assert_eq!(
        each[1].as_ref().unwrap_err().server_kind(),
        Some("ERR"),
        "{at}"
    );
    // A transaction in one slot; refused across slots before anything is sent.
    let tag = format!("{{{p}}}");
    let (a, b): (i64, i64) = db
        .transaction()
        .incr(format!("{tag}:a"))
        .incrby(format!("{tag}:a"), 10)
        .query()
        .await
        .unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!((a, b), (1, 11), "{at}");
    let calls = db.stats().calls;
    let across: ringdis::Result<Value> = db
        .transaction()
        .incr(format!("{p}:x1"))
        .incr(format!("{p}:x2"))
        .query()
        .await;
    match across {
        Err(Error::Client { message, .. }) => {
            assert!(message.contains("CROSSSLOT"), "{at}: {message}")
        }
        other => panic!("{at}: {other:?}"),
    }
    // CROSSSLOT on one command the spec does not let split, before sending.
    let sunion: ringdis::Result<Value> = db
        .sunion([format!("{p}:x1"), format!("{p}:x2")])
        .decode()
        .await;
    assert!(
        sunion.is_err_and(|e| e.is_client() && e.to_string().contains("CROSSSLOT")),
        "{at}"
    );
    assert_eq!(db.stats().calls, calls, "{at}: nothing was sent");
    // Keys in one slot by a hash tag.
    db.mset([(format!("{tag}:m1"), 1), (format!("{tag}:m2"), 2)])
        .await
        .unwrap();
    let both: Vec<i64> = db
        .mget([format!("{tag}:m1"), format!("{tag}:m2")])
        .decode()
        .await
        .unwrap();
    assert_eq!(both, [1, 2], "{at}");
    // Scripts route by their keys.
    let add = Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    for i in 0..10 {
        let n: i64 = add
            .key(format!("{p}:script{i}"))
            .arg(5)
            .invoke(&db)
            .await
            .unwrap_or_else(|e| panic!("{at}: {e}"));
        assert_eq!(n, 5, "{at}");
    }
    // The cluster state commands stay refused.
    for gated in ["READONLY", "READWRITE", "ASKING"] {
        let r: ringdis::Result<Value> = db.call(cmd!(gated)).await;
        assert!(r.is_err_and(|e| e.is_client()), "{at}: {gated}");
    }
    // Generic code over `Redis`.
    async fn bump(db: &impl Redis, key: String) -> i64 {
        db.incr(key).await.unwrap()
    }
    assert_eq!(bump(&db, format!("{p}:generic")).await, 1, "{at}");
    let stats = db.stats();
    assert!(
        stats.calls >= 250 && stats.ok >= 250 && stats.connects >= 3,
        "{at}: {stats:?}"
    );
}

/// The map is asked again every refresh interval, as calls come.
async fn periodic_refresh(cluster: &Cluster, engine: Engine, at: &str) {
    let seeds = cluster.seed_urls();
    let config = Config::from_url(&seeds[0]).unwrap().engine(engine);
    let db = ClusterClient::builder(config)
        .seeds(&seeds)
        .refresh_interval(Some(Duration::from_millis(20)))
        .build()
        .unwrap();
    db.set("periodic", 1).await.unwrap();
    let first = db.refreshes();
    assert_eq!(first, 1, "{at}: the first call discovered the cluster");
    let deadline = Instant::now() + Duration::from_secs(10);
    while db.refreshes() < first + 3 {
        assert!(Instant::now() < deadline, "{at}: no periodic refresh");
        db.get("periodic").await.unwrap();
    }
    // Without an interval, calls cause none.
    let config = Config::from_url(&seeds[0]).unwrap().engine(engine);
    let quiet = ClusterClient::builder(config)
        .seeds(&seeds)
        .refresh_interval(None)
        .build()
        .unwrap();
    for _ in 0..200 {
        quiet.get("periodic").await.unwrap();
    }
    assert_eq!(quiet.refreshes(), 1, "{at}");
}

fn api(kind: ServerKind) {
    let cluster = steady(kind);
    for (engine, protocol) in cells() {
        let at = format!("{kind}/{engine:?}/{protocol:?}");
        runtime().block_on(the_client_api(&cluster, engine, protocol, &at));
    }
    for engine in engines() {
        runtime().block_on(periodic_refresh(
            &cluster,
            engine,
            &format!("{kind}/{engine:?}"),
        ));
    }
}

#[test]
fn the_client_api_on_redis() {
    api(ServerKind::Redis);
}

#[test]
fn the_client_api_on_valkey() {
    api(ServerKind::Valkey);
}

/// Another live primary than `than`.
fn other_primary<'a>(
    cluster: &'a Cluster,
    than: &ringdis_tests::ClusterNode,
) -> &'a ringdis_tests::ClusterNode {
    cluster
        .primaries()
        .into_iter()
        .find(|p| p.id() != than.id())
        .expect("another primary")
}

/// Waits (bounded) until `cond` holds.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// `MOVED` after a slot moved (the map learns it: one redirect, then none), `ASK` during a
/// migration (every time: the map stays), `TRYAGAIN` for a multi-key command on a slot half
/// moved (retried until the migration ends).
async fn redirects(cluster: &Cluster, engine: Engine, protocol: Protocol, at: &str) {
    let db = client(cluster, engine, protocol, Duration::from_secs(10));
    let p = ringdis_tests::unique("redirect");

    let key = format!("{{{p}:moved}}");
    db.set(&key, "v").await.unwrap();
    let slot = cluster.keyslot(&key);
    let to = other_primary(cluster, cluster.primary_of_slot(slot));
    cluster.migrate_slot(slot, to);
    let before = db.stats().redirects;
    let v: String = db
        .get(&key)
        .decode()
        .await
        .unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!(v, "v", "{at}");
    assert_eq!(db.stats().redirects, before + 1, "{at}: one MOVED");
    let v: String = db.get(&key).decode().await.unwrap();
    assert_eq!(v, "v", "{at}");
    db.set(&key, "w").await.unwrap();
    assert_eq!(
        db.stats().redirects,
        before + 1,
        "{at}: the map learned the move"
    );
    // Fire and forget through a MOVED (another slot moved): it lands on the new owner.
    let other = format!("{{{p}:moved-ff}}");
    db.set(&other, 0).await.unwrap();
    let slot = cluster.keyslot(&other);
    cluster.migrate_slot(slot, other_primary(cluster, cluster.primary_of_slot(slot)));
    let before = db.stats().redirects;
    db.async_call(cmd!("INCR").key(&other), None);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = db.get(&other).decode().await.unwrap();
        if n == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{at}: the fire-and-forget INCR never landed"
        );
    }
    assert!(db.stats().redirects > before, "{at}: through a MOVED");

    let (k1, k2) = (format!("{{{p}:ask}}:1"), format!("{{{p}:ask}}:2"));
    db.set(&k1, "1").await.unwrap();
    db.set(&k2, "2").await.unwrap();
    let slot = cluster.keyslot(&k1);
    let to = other_primary(cluster, cluster.primary_of_slot(slot));
    let mut migration = cluster.start_migration(slot, to).expect("a migration");
    assert!(migration.move_key(&k1));
    let before = db.stats().redirects;
    for round in 1..=2 {
        let v: String = db
            .get(&k1)
            .decode()
            .await
            .unwrap_or_else(|e| panic!("{at}: {e}"));
        assert_eq!(v, "1", "{at}");
        let v: String = db.get(&k2).decode().await.unwrap();
        assert_eq!(v, "2", "{at}");
        assert_eq!(
            db.stats().redirects,
            before + round,
            "{at}: one ASK per call to the moved key"
        );
    }
    // async_call follows the redirect too (on the engine, with no runtime needed).
    let (tx, rx) = tokio::sync::oneshot::channel();
    db.async_call(cmd!("GET").key(&k1), move |r: ringdis::Result<Value>| {
        let _ = tx.send(r);
    });
    let v = rx.await.unwrap().unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!(
        String::from_redis(v).as_deref(),
        Ok("1"),
        "{at}: async_call through ASK"
    );
    // Written on the importing node through ASK.
    assert_eq!(db.incr(format!("{{{p}:ask}}:new")).await, Ok(1), "{at}");

    // A pipeline meets the ASK too: the redirected commands are sent again on their own.
    let mut pipe = db.pipeline();
    pipe.get(&k1)
        .get(&k2)
        .incr(format!("{{{p}:ask}}:new"))
        .send();
    let (a, b, n): (String, String, i64) =
        pipe.query().await.unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!((a.as_str(), b.as_str(), n), ("1", "2", 2), "{at}");

    // TRYAGAIN: one key moved, the other not; retried until the slot has moved.
    let errors = db.stats().server_errors;
    let mget = tokio::spawn(db.mget([k1.clone(), k2.clone()]).decode::<Vec<String>>());
    until(&format!("{at}: TRYAGAIN seen"), || {
        db.stats().server_errors > errors
    })
    .await;
    assert!(
        !mget.is_finished(),
        "{at}: the MGET waits for the migration"
    );
    migration.finish();
    let both = mget.await.unwrap().unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!(both, ["1", "2"], "{at}");

    // A transaction whose slot moved since the map was read: its commands are redirected, the
    // server aborts it (nothing ran), and it is sent again whole to the new owner.
    let tag = format!("{{{p}:tx}}");
    db.set(format!("{tag}:a"), 1).await.unwrap();
    let slot = cluster.keyslot(&tag[1..tag.len() - 1]);
    cluster.migrate_slot(slot, other_primary(cluster, cluster.primary_of_slot(slot)));
    let before = db.stats().redirects;
    let (a, b): (i64, i64) = db
        .transaction()
        .incr(format!("{tag}:a"))
        .incr(format!("{tag}:a"))
        .query()
        .await
        .unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!((a, b), (2, 3), "{at}: the transaction ran once");
    assert_eq!(
        db.get(format!("{tag}:a")).decode::<i64>().await,
        Ok(3),
        "{at}"
    );
    assert!(
        db.stats().redirects == before,
        "{at}: a queued command's MOVED is not a call's"
    );

    // A pipeline with commands for a slot that moved: those are sent again to the new owner.
    let key = format!("{p}:pipe-moved");
    db.set(&key, "p").await.unwrap();
    let slot = cluster.keyslot(&key);
    cluster.migrate_slot(slot, other_primary(cluster, cluster.primary_of_slot(slot)));
    let mut pipe = db.pipeline();
    for i in 0..20 {
        pipe.get(&key).incr(format!("{p}:pipe-n{i}")).send();
    }
    let replies: Vec<Value> = pipe.query().await.unwrap_or_else(|e| panic!("{at}: {e}"));
    for (i, r) in replies.chunks(2).enumerate() {
        assert_eq!(
            String::from_redis(r[0].clone()).as_deref(),
            Ok("p"),
            "{at}: {i}"
        );
        assert_eq!(r[1], Value::Int(1), "{at}: {i}");
    }
}

fn redirects_on(kind: ServerKind) {
    let cluster = steady(kind);
    for (engine, protocol) in cells() {
        let at = format!("{kind}/{engine:?}/{protocol:?}");
        runtime().block_on(redirects(&cluster, engine, protocol, &at));
    }
}

#[test]
fn redirects_on_redis() {
    redirects_on(ServerKind::Redis);
}

#[test]
fn redirects_on_valkey() {
    redirects_on(ServerKind::Valkey);
}

/// A hash tag whose slot is in `slots`, unique to `prefix` and `n`.
fn tag_in(prefix: &str, n: usize, slots: &std::ops::RangeInclusive<u16>) -> String {
    (0..)
        .map(|j| format!("{prefix}-{n}-{j}"))
        .find(|t| slots.contains(&ringdis::slot(t.as_bytes())))
        .expect("some tag hashes into the range")
}

/// `len` slots all owned by one primary, starting at or after `from`, and another primary.
fn slots_to_move(
    cluster: &Cluster,
    from: u16,
    len: u16,
) -> (std::ops::RangeInclusive<u16>, &ringdis_tests::ClusterNode) {
    let mut start = from;
    loop {
        let owner = cluster.primary_of_slot(start);
        let range = cluster
            .slots_of(owner)
            .into_iter()
            .find(|r| r.contains(&start))
            .expect("the owner's range");
        if range.end() - start + 1 >= len {
            let slots = start..=start + len - 1;
            return (slots, other_primary(cluster, owner));
        }
        start = range.end() + 1;
    }
}

/// How many tasks run the load.
const TASKS: usize = 64;

/// 64 tasks run GET/SET/INCR on keys of their own while `slots` move to another primary:
/// no call fails, every reply is the caller's own, the counters are exact.
fn resharding(cluster: &Cluster, engine: Engine, protocol: Protocol, cell: u16, at: &str) {
    let rt = runtime();
    let _in = rt.enter();
    let db = client(cluster, engine, protocol, Duration::from_secs(10));
    let (slots, to) = slots_to_move(cluster, 100 + cell * 1500, 48);
    let p = ringdis_tests::unique("reshard");
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            // Most tasks on the moving slots, a few elsewhere.
            let tag = if t % 8 == 7 {
                format!("{p}-{t}")
            } else {
                tag_in(&p, t, &slots)
            };
            let (db, stop, done, at) = (db.clone(), stop.clone(), done.clone(), at.to_owned());
            // A key in another slot (anywhere), for the pipelines.
            let piped = format!("{p}-{t}-piped");
            rt.spawn(async move {
                let (key, counter) = (format!("{{{tag}}}:v"), format!("{{{tag}}}:n"));
                let mut n = 0i64;
                let mut i = 0u64;
                while !stop.load(Ordering::Acquire) || i < 20 {
                    let value = format!("{t}:{i}");
                    db.set(&key, &value)
                        .await
                        .unwrap_or_else(|e| panic!("{at}: SET: {e}"));
                    let got: String = db
                        .get(&key)
                        .decode()
                        .await
                        .unwrap_or_else(|e| panic!("{at}: GET: {e}"));
                    assert_eq!(got, value.clone(), "{at}: a reply that is not the caller's");
                    n = db
                        .incr(&counter)
                        .await
                        .unwrap_or_else(|e| panic!("{at}: INCR: {e}"));
                    assert_eq!(n as u64, i + 1, "{at}: INCR");
                    // A pipeline of this task's keys and another's, every 4th round.
                    if i % 4 == 0 {
                        let mut pipe = db.pipeline();
                        pipe.get(&key).incr(&piped).get(&counter).send();
                        let (got, m, now): (String, i64, i64) = pipe
                            .query()
                            .await
                            .unwrap_or_else(|e| panic!("{at}: pipeline: {e}"));
                        assert_eq!((got, m, now), (value, (i / 4 + 1) as i64, n), "{at}");
                    }
                    i += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                (counter, n)
            })
        })
        .collect();
    // Load first, then move the slots under it.
    let started = Instant::now();
    while done.load(Ordering::Relaxed) < (TASKS * 4) as u64 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{at}: the load never started"
        );
        std::thread::yield_now();
    }
    let redirects = db.stats().redirects;
    cluster.move_slots(slots.clone(), to);
    stop.store(true, Ordering::Release);
    let results = rt.block_on(join_all(tasks));
    for r in results {
        let (counter, n) = r.unwrap_or_else(|e| panic!("{at}: a task failed: {e}"));
        let stored: i64 = rt.block_on(db.get(&counter).decode()).unwrap();
        assert_eq!(stored, n, "{at}: {counter}");
    }
    assert!(
        db.stats().redirects > redirects,
        "{at}: the load met the moving slots"
    );
    for s in slots {
        assert_eq!(cluster.primary_of_slot(s).id(), to.id(), "{at}");
    }
}

fn resharding_on(kind: ServerKind) {
    let cluster = steady(kind);
    for (i, (engine, protocol)) in cells().into_iter().enumerate() {
        let at = format!("{kind}/{engine:?}/{protocol:?}");
        resharding(&cluster, engine, protocol, i as u16, &at);
    }
}

#[test]
fn resharding_under_load_on_redis() {
    resharding_on(ServerKind::Redis);
}

#[test]
fn resharding_under_load_on_valkey() {
    resharding_on(ServerKind::Valkey);
}

/// 64 tasks run SET/GET on keys of their own (most on one primary's slots) while that primary
/// is killed and its replica takes over: a call fails only with `Error::Connection` (its
/// request was in flight on the dead node), none outlives the command timeout, none gets
/// another caller's reply, no `READONLY` or other error reaches a caller, and once the
/// cluster has settled every call succeeds on the new primary.
fn failover(cluster: &Cluster, engine: Engine, protocol: Protocol, at: &str) {
    const TIMEOUT: Duration = Duration::from_secs(10);
    let rt = runtime();
    let _in = rt.enter();
    let db = client(cluster, engine, protocol, TIMEOUT);
    let victim = cluster.primaries()[0];
    let slots = cluster.slots_of(victim)[0].clone();
    // Slots of a primary that stays.
    let elsewhere = cluster.slots_of(cluster.primaries()[1])[0].clone();
    let p = ringdis_tests::unique("failover");
    let stop = Arc::new(AtomicBool::new(false));
    // Set once the cluster has settled on the new primary: calls made after it must succeed.
    let settled = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let tag = if t % 4 == 3 {
                format!("{p}-{t}")
            } else {
                tag_in(&p, t, &slots)
            };
            let (db, stop, settled, done, at) = (
                db.clone(),
                stop.clone(),
                settled.clone(),
                done.clone(),
                at.to_owned(),
            );
            let other = format!("{{{}}}:o", tag_in(&p, t + 1000, &elsewhere));
            rt.spawn(async move {
                let key = format!("{{{tag}}}:v");
                let other_value = format!("other {t}");
                db.set(&other, &other_value).await.unwrap();
                // What GET may answer: the last value surely set, and those whose SET failed
                // (it may have run).
                let mut may: Vec<String> = Vec::new();
                let (mut ok, mut lost) = (0u64, 0u64);
                let mut i = 0u64;
                while !stop.load(Ordering::Acquire) || i < 10 {
                    let after = settled.load(Ordering::Acquire);
                    let value = format!("{t}:{i}");
                    let check = |r: &ringdis::Result<()>, started: Instant, what: &str| {
                        assert!(
                            started.elapsed() < TIMEOUT + Duration::from_secs(2),
                            "{at}: {what} took {:?}",
                            started.elapsed()
                        );
                        match r {
                            Ok(()) => {}
                            Err(Error::Connection { .. }) if !after => {}
                            Err(e) => panic!("{at}: {what} failed with {e:?} (settled: {after})"),
                        }
                    };
                    let started = Instant::now();
                    let set = db.set(&key, &value).await.map(|_| ());
                    check(&set, started, "SET");
                    if set.is_ok() {
                        may.clear();
                    }
                    may.push(value.clone());
                    let started = Instant::now();
                    let got: ringdis::Result<Option<String>> = db.get(&key).decode().await;
                    check(
                        &got.as_ref().map(|_| ()).map_err(Clone::clone),
                        started,
                        "GET",
                    );
                    // A write the dead primary acknowledged may not have reached its replica
                    // (replication is asynchronous): an older value of this task's, or none,
                    // is a lost write, never another caller's reply.
                    let mine = |v: &str| {
                        v.split_once(':').is_some_and(|(who, n)| {
                            who == t.to_string() && n.parse::<u64>().is_ok_and(|n| n <= i)
                        })
                    };
                    match got {
                        Ok(Some(v)) => {
                            assert!(
                                may.contains(&v) || (after && mine(&v)),
                                "{at}: GET {key} gave {v}, not one of {may:?}"
                            );
                            ok += 1;
                        }
                        Ok(None) => {}
                        Err(_) => lost += 1,
                    }
                    // A pipeline over the dying node and a live one: only the dying node's
                    // command may fail, with the connection's error in its place.
                    let mut pipe = db.pipeline();
                    pipe.get(&key).get(&other).send();
                    let started = Instant::now();
                    let both: Vec<ringdis::Result<Value>> = pipe
                        .query()
                        .await
                        .unwrap_or_else(|e| panic!("{at}: the pipeline failed whole: {e}"));
                    assert!(started.elapsed() < TIMEOUT + Duration::from_secs(2), "{at}");
                    assert_eq!(
                        both[1]
                            .as_ref()
                            .map(|v| String::from_redis(v.clone()).unwrap()),
                        Ok(other_value.clone()),
                        "{at}: the live node's command"
                    );
                    if let Err(e) = &both[0] {
                        assert!(
                            !after && e.server_kind() == Some("CONNECTION"),
                            "{at}: the dying node's command: {e:?} (settled: {after})"
                        );
                    }
                    i += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                (ok, lost)
            })
        })
        .collect();
    let started = Instant::now();
    while done.load(Ordering::Relaxed) < (TASKS * 4) as u64 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{at}: the load never started"
        );
        std::thread::yield_now();
    }
    let new = cluster.kill_primary(victim);
    settled.store(true, Ordering::Release);
    // A while more on the new primary.
    let now = done.load(Ordering::Relaxed);
    let started = Instant::now();
    while done.load(Ordering::Relaxed) < now + (TASKS * 10) as u64 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{at}: the load stalled after the failover"
        );
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Release);
    let mut ok = 0;
    for r in rt.block_on(join_all(tasks)) {
        let (o, _lost) = r.unwrap_or_else(|e| panic!("{at}: a task failed: {e}"));
        ok += o;
    }
    assert!(ok > 0, "{at}");
    // The moved slots are served by the new primary, and the client found it.
    let key = format!("{{{}}}:v", tag_in(&p, 0, &slots));
    rt.block_on(db.set(&key, "after").into_future()).unwrap();
    assert_eq!(cluster.primary_of_key(&key).id(), new.id(), "{at}");
    // The old primary comes back as a replica, for the next cell.
    cluster.restart(victim);
}

fn failover_on(kind: ServerKind) {
    let cluster = Cluster::start(kind);
    for (i, engine) in engines().into_iter().enumerate() {
        let protocol = PROTOCOLS[i % 2];
        let at = format!("{kind}/{engine:?}/{protocol:?}");
        failover(&cluster, engine, protocol, &at);
    }
}

#[test]
fn failover_under_load_on_redis() {
    failover_on(ServerKind::Redis);
}

#[test]
fn failover_under_load_on_valkey() {
    failover_on(ServerKind::Valkey);
}

/// 64 tasks run SET/GET/INCR on keys of their own while a replica takes over from its live
/// primary (`CLUSTER FAILOVER`): nothing is lost, so no call fails (the old primary's
/// `MOVED`, or `READONLY`, sends each command to the new one), every reply is the caller's,
/// and the counters are exact.
fn manual_failover(cluster: &Cluster, engine: Engine, protocol: Protocol, cell: usize, at: &str) {
    let rt = runtime();
    let _in = rt.enter();
    let db = client(cluster, engine, protocol, Duration::from_secs(10));
    // A primary of its own per cell: each pair fails over once.
    let primary = cluster.primaries()[cell % 3];
    let slots = cluster.slots_of(primary)[0].clone();
    let replica = cluster.replicas_of(primary)[0];
    let p = ringdis_tests::unique("takeover");
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let tag = tag_in(&p, t, &slots);
            let (db, stop, done, at) = (db.clone(), stop.clone(), done.clone(), at.to_owned());
            let piped = format!("{p}-{t}-piped");
            rt.spawn(async move {
                let (key, counter) = (format!("{{{tag}}}:v"), format!("{{{tag}}}:n"));
                let mut n = 0i64;
                let mut i = 0u64;
                while !stop.load(Ordering::Acquire) || i < 20 {
                    let value = format!("{t}:{i}");
                    db.set(&key, &value)
                        .await
                        .unwrap_or_else(|e| panic!("{at}: SET: {e}"));
                    let got: String = db
                        .get(&key)
                        .decode()
                        .await
                        .unwrap_or_else(|e| panic!("{at}: GET: {e}"));
                    assert_eq!(got, value.clone(), "{at}: a reply that is not the caller's");
                    n = db
                        .incr(&counter)
                        .await
                        .unwrap_or_else(|e| panic!("{at}: INCR: {e}"));
                    assert_eq!(n as u64, i + 1, "{at}: INCR");
                    // A pipeline of this task's keys and another's, every 4th round.
                    if i % 4 == 0 {
                        let mut pipe = db.pipeline();
                        pipe.get(&key).incr(&piped).get(&counter).send();
                        let (got, m, now): (String, i64, i64) = pipe
                            .query()
                            .await
                            .unwrap_or_else(|e| panic!("{at}: pipeline: {e}"));
                        assert_eq!((got, m, now), (value, (i / 4 + 1) as i64, n), "{at}");
                    }
                    i += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                (counter, n)
            })
        })
        .collect();
    let started = Instant::now();
    while done.load(Ordering::Relaxed) < (TASKS * 4) as u64 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{at}: the load never started"
        );
        std::thread::yield_now();
    }
    let redirects = db.stats().redirects;
    cluster.failover(replica);
    let now = done.load(Ordering::Relaxed);
    while done.load(Ordering::Relaxed) < now + (TASKS * 4) as u64 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{at}: the load stalled"
        );
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Release);
    for r in rt.block_on(join_all(tasks)) {
        let (counter, n) = r.unwrap_or_else(|e| panic!("{at}: a task failed: {e}"));
        let stored: i64 = rt.block_on(db.get(&counter).decode()).unwrap();
        assert_eq!(stored, n, "{at}: {counter}");
    }
    assert!(
        db.stats().redirects > redirects,
        "{at}: the load met the takeover (MOVED from the old primary)"
    );
}

fn manual_failover_on(kind: ServerKind) {
    let cluster = steady(kind);
    for (i, engine) in engines().into_iter().enumerate() {
        let protocol = PROTOCOLS[(i + 1) % 2];
        let at = format!("{kind}/{engine:?}/{protocol:?}");
        manual_failover(&cluster, engine, protocol, i, &at);
    }
}

#[test]
fn manual_failover_under_load_on_redis() {
    manual_failover_on(ServerKind::Redis);
}

#[test]
fn manual_failover_under_load_on_valkey() {
    manual_failover_on(ServerKind::Valkey);
}

/// On the ring engines a cluster client needs no async runtime: driven by `block_on` on plain
/// threads, it discovers the cluster, follows `MOVED` and `ASK`, retries `TRYAGAIN` after a
/// pause (the timer thread's), splits a pipeline, and runs `async_call` callbacks.
fn without_a_runtime(cluster: &Cluster, engine: Engine, at: &str) {
    use futures::executor::block_on;
    let db = client(cluster, engine, Protocol::Resp3, Duration::from_secs(10));
    let p = ringdis_tests::unique("bare");
    let key = format!("{{{p}}}:a");
    block_on(db.set(&key, "1").into_future()).unwrap_or_else(|e| panic!("{at}: {e}"));
    let slot = cluster.keyslot(&key);
    cluster.migrate_slot(slot, other_primary(cluster, cluster.primary_of_slot(slot)));
    let v: String = block_on(db.get(&key).decode()).unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!(v, "1", "{at}: through MOVED");

    let (k1, k2) = (format!("{{{p}:m}}:1"), format!("{{{p}:m}}:2"));
    block_on(db.mset([(&k1, "1"), (&k2, "2")]).into_future()).unwrap();
    let slot = cluster.keyslot(&k1);
    let mut migration = cluster
        .start_migration(slot, other_primary(cluster, cluster.primary_of_slot(slot)))
        .expect("a migration");
    assert!(migration.move_key(&k1));
    let v: String = block_on(db.get(&k1).decode()).unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!(v, "1", "{at}: through ASK");
    let errors = db.stats().server_errors;
    let mget = {
        let (db, k1, k2) = (db.clone(), k1.clone(), k2.clone());
        std::thread::spawn(move || block_on(db.mget([k1, k2]).decode::<Vec<String>>()))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while db.stats().server_errors == errors {
        assert!(Instant::now() < deadline, "{at}: no TRYAGAIN");
        std::thread::yield_now();
    }
    migration.finish();
    assert_eq!(
        mget.join().unwrap(),
        Ok(vec!["1".to_owned(), "2".to_owned()]),
        "{at}"
    );

    let mut pipe = db.pipeline();
    for i in 0..100 {
        pipe.incr(format!("{p}:n{i}")).send();
    }
    let ns: Vec<i64> = block_on(pipe.query()).unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!(ns, vec![1; 100], "{at}");
    let (tx, rx) = std::sync::mpsc::channel();
    db.async_call(cmd!("GET").key(&k2), move |r: ringdis::Result<Value>| {
        let _ = tx.send(r);
    });
    let v = rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
    assert_eq!(String::from_redis(v).as_deref(), Ok("2"), "{at}");
}

#[test]
fn no_runtime_is_needed_on_the_ring_engines() {
    for kind in ServerKind::ALL {
        let cluster = steady(kind);
        for engine in support::ring_engines() {
            without_a_runtime(&cluster, engine, &format!("{kind}/{engine:?}"));
        }
    }
}

/// The topology parsers read a real cluster's `CLUSTER SHARDS` and `CLUSTER SLOTS` replies, in
/// both protocols, into the same map the cluster reports (the harness's view): every slot's
/// primary and each shard's replica. (Redis 7.0 and Valkey 9 both have `CLUSTER SHARDS`; the
/// client falls back to `CLUSTER SLOTS` on older servers.)
#[test]
fn cluster_shards_and_slots_replies_read_as_the_cluster_says() {
    use ringdis::__topology::{owners, replicas};
    for kind in ServerKind::ALL {
        let cluster = steady(kind);
        let node = cluster.primaries()[0];
        for protocol in PROTOCOLS {
            let at = format!("{kind}/{protocol:?}");
            let config = Config::from_url(&node.url())
                .unwrap()
                .engine(Engine::Epoll)
                .protocol(protocol);
            let plain = ringdis::Client::new(config).unwrap();
            let (shards, slots): (Value, Value) = futures::executor::block_on(async {
                (
                    plain.call(cmd!("CLUSTER", "SHARDS")).await.unwrap(),
                    plain.call(cmd!("CLUSTER", "SLOTS")).await.unwrap(),
                )
            });
            let by_shards = owners(shards.clone(), "127.0.0.1", false).unwrap();
            let by_slots = owners(slots.clone(), "127.0.0.1", true).unwrap();
            assert_eq!(by_shards, by_slots, "{at}");
            for p in cluster.primaries() {
                let addr = format!("127.0.0.1:{}", p.port());
                for range in cluster.slots_of(p) {
                    for s in [*range.start(), *range.end()] {
                        assert_eq!(
                            by_shards[usize::from(s)].as_deref(),
                            Some(addr.as_str()),
                            "{at}: slot {s}"
                        );
                    }
                    let want: Vec<String> = cluster
                        .replicas_of(p)
                        .iter()
                        .map(|r| format!("127.0.0.1:{}", r.port()))
                        .collect();
                    let s = *range.start();
                    assert_eq!(
                        replicas(shards.clone(), "h", false, s).unwrap(),
                        want,
                        "{at}"
                    );
                    // CLUSTER SLOTS leaves out a replica the server deems not synced yet
                    // (Redis 7.0: a replication offset of 0, as in a fresh cluster).
                    let listed = replicas(slots.clone(), "h", true, s).unwrap();
                    assert!(listed.iter().all(|r| want.contains(r)), "{at}: {listed:?}");
                }
            }
            assert!(
                by_shards.iter().all(Option::is_some),
                "{at}: every slot served"
            );
        }
    }
}
