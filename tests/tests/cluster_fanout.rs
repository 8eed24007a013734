//! `ClusterClient` commands that run on more than one node, against real clusters
//! (`ringdis_tests::Cluster`: 3 primaries, 1 replica each) on Redis 7.0 and Valkey 9: multi-key
//! commands split by slot and merged in the caller's order (alone and inside a 1000-command
//! pipeline), keyless commands sent to every primary or every node and their replies made one
//! by the spec's response policy, the special ones (`RANDOMKEY`, `INFO`, `SCAN`), and the
//! cluster-wide `scan_iter`. Each test function starts one cluster and runs its cells (engines ×
//! protocols) on it one after another, `FLUSHALL` between them.

mod support;

use bytes::Bytes;
use ringdis::{cmd, ClusterClient, Commands, Engine, Error, Protocol, Value};
use ringdis_tests::{Cluster, ClusterNode, ServerKind};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use support::runtime;
use support::{cells, cluster_client as client_within};

fn client(cluster: &Cluster, engine: Engine, protocol: Protocol) -> ClusterClient {
    client_within(cluster, engine, protocol, Duration::from_secs(10))
}

/// A node's integer reply to `args`, asked over the harness's own connection.
fn node_int(node: &ClusterNode, args: &[&str]) -> i64 {
    match node.call(args) {
        Ok(Value::Int(n)) => n,
        other => panic!("{args:?} on {}: {other:?}", node.addr()),
    }
}

/// A key named from `prefix` that `primary` serves.
fn key_on(cluster: &Cluster, primary: &ClusterNode, prefix: &str) -> String {
    (0..10_000)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| cluster.primary_of_key(k).port() == primary.port())
        .expect("a key for every primary")
}

fn text(v: &Value) -> String {
    match v {
        Value::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    }
}

/// Split multi-key commands, keyless fan-out and the special commands, in one cell.
async fn fanout(cluster: &Cluster, engine: Engine, protocol: Protocol, at: &str) {
    let db = client(cluster, engine, protocol);
    let primaries = cluster.primaries();
    assert_eq!(primaries.len(), 3, "{at}");
    // FLUSHALL goes to every primary (all_succeeded: OK).
    db.flushall()
        .await
        .unwrap_or_else(|e| panic!("{at}: FLUSHALL: {e}"));
    for node in &primaries {
        assert_eq!(
            node_int(node, &["DBSIZE"]),
            0,
            "{at}: {} flushed",
            node.addr()
        );
    }
    assert_eq!(db.dbsize().await, Ok(0), "{at}");
    // RANDOMKEY of an empty cluster: nil.
    assert_eq!(db.randomkey().await, Ok(None), "{at}");

    let p = ringdis_tests::unique("fan");
    let keys: Vec<String> = (0..30).map(|i| format!("{p}:k{i}")).collect();
    let owners: HashSet<u16> = keys
        .iter()
        .map(|k| cluster.primary_of_key(k).port())
        .collect();
    assert_eq!(owners.len(), 3, "{at}: the keys are on every primary");

    // MSET across slots: split, every part OK.
    let pairs: Vec<(String, i64)> = keys.iter().cloned().zip(0..).collect();
    db.mset(pairs.clone())
        .await
        .unwrap_or_else(|e| panic!("{at}: MSET: {e}"));
    for (k, v) in &pairs {
        let on_node = cluster.primary_of_key(k).call(&["GET", k]).unwrap();
        assert_eq!(text(&on_node), v.to_string(), "{at}: {k} on its node");
    }
    // MGET across slots: the caller's order, duplicates and missing keys in place.
    let missing = format!("{p}:missing");
    let asked = [&keys[0], &missing, &keys[17], &keys[0], &keys[29], &keys[3]];
    let got: Vec<Option<i64>> = db.mget(asked).decode().await.unwrap();
    assert_eq!(
        got,
        [Some(0), None, Some(17), Some(0), Some(29), Some(3)],
        "{at}"
    );
    let all: Vec<Option<i64>> = db.mget(&keys).decode().await.unwrap();
    assert_eq!(all, (0..30).map(Some).collect::<Vec<_>>(), "{at}");
    // Counting commands add up (a key named twice counts twice, as on one node).
    assert_eq!(
        db.exists([&keys[0], &keys[0], &missing, &keys[1]]).await,
        Ok(3),
        "{at}"
    );
    assert_eq!(
        db.touch([&keys[4], &missing, &keys[5]]).await,
        Ok(2),
        "{at}"
    );
    assert_eq!(db.del([&keys[0], &missing, &keys[1]]).await, Ok(2), "{at}");
    assert_eq!(db.unlink(&keys[2..12]).await, Ok(10), "{at}");
    let after: Vec<Option<i64>> = db.mget(&keys[..13]).decode().await.unwrap();
    assert_eq!(after[..12], [None; 12], "{at}");
    assert_eq!(after[12], Some(12), "{at}");
    // A hand-built MGET splits the same.
    let hand: Vec<Option<i64>> = db.call(cmd!("MGET", &keys[29], &keys[12])).await.unwrap();
    assert_eq!(hand, [Some(29), Some(12)], "{at}");

    // DBSIZE sums every primary's; KEYS concatenates them.
    let expected: i64 = primaries.iter().map(|n| node_int(n, &["DBSIZE"])).sum();
    assert_eq!(expected, 18, "{at}");
    assert_eq!(db.dbsize().await, Ok(18), "{at}");
    let listed: HashSet<String> = db.keys(format!("{p}:k*")).decode().await.unwrap();
    let want: HashSet<String> = keys[12..].iter().cloned().collect();
    assert_eq!(listed, want, "{at}: KEYS");
    assert_eq!(db.ping().await.as_deref(), Ok("PONG"), "{at}");

    // A part that fails fails the call, and says the others ran: one primary refuses writes.
    let refusing = cluster.primary_of_key(&keys[12]);
    let one_each: Vec<String> = primaries
        .iter()
        .map(|n| key_on(cluster, n, &format!("{p}:part")))
        .collect();
    refusing
        .call(&["CONFIG", "SET", "min-replicas-to-write", "3"])
        .unwrap();
    let r = db.mset(one_each.iter().map(|k| (k.as_str(), "v"))).await;
    refusing
        .call(&["CONFIG", "SET", "min-replicas-to-write", "0"])
        .unwrap();
    match r {
        Err(Error::Server { kind, message }) => {
            assert_eq!(kind, "NOREPLICAS", "{at}: {message}");
            assert!(message.contains("2 of 3 succeeded"), "{at}: {message}");
        }
        other => panic!("{at}: {other:?}"),
    }
    let written: Vec<Option<String>> = db.mget(&one_each).decode().await.unwrap();
    assert_eq!(
        written.iter().filter(|v| v.is_some()).count(),
        2,
        "{at}: {written:?}"
    );

    // SCRIPT LOAD reaches every node (replicas too); EVALSHA then runs on every primary.
    let sha: String = db
        .script_load("return redis.call('GET', KEYS[1])")
        .decode()
        .await
        .unwrap_or_else(|e| panic!("{at}: SCRIPT LOAD: {e}"));
    for node in cluster.nodes().iter().filter(|n| n.is_alive()) {
        assert_eq!(
            node.call(&["SCRIPT", "EXISTS", &sha]),
            Ok(Value::Array(vec![Value::Int(1)])),
            "{at}: the script on {}",
            node.addr()
        );
    }
    for n in &primaries {
        let k = key_on(cluster, n, &format!("{p}:script"));
        db.set(&k, n.port()).await.unwrap();
        let v: u16 = db.evalsha(&sha).key(&k).decode().await.unwrap();
        assert_eq!(v, n.port(), "{at}: EVALSHA on {}", n.addr());
    }
    let bogus = "0".repeat(40);
    assert_eq!(
        db.script_exists([&sha, &bogus]).await,
        Ok(vec![true, false]),
        "{at}"
    );
    db.script_flush().await.unwrap();
    assert_eq!(db.script_exists([&sha]).await, Ok(vec![false]), "{at}");

    // FUNCTION LOAD on every primary; FCALL on a key of each.
    db.function_flush().await.unwrap();
    let lib = "#!lua name=fanlib\nredis.register_function('fan_get', \
               function(keys) return redis.call('GET', keys[1]) end)";
    let name: String = db.function_load(lib).decode().await.unwrap();
    assert_eq!(name, "fanlib", "{at}");
    for n in &primaries {
        let k = key_on(cluster, n, &format!("{p}:script"));
        let v: u16 = db.fcall("fan_get").key([&k]).decode().await.unwrap();
        assert_eq!(v, n.port(), "{at}: FCALL on {}", n.addr());
    }
    db.function_flush().await.unwrap();

    // CONFIG SET on every node; CONFIG GET from one.
    db.config_set([("maxmemory-samples", "7")]).await.unwrap();
    for node in cluster.nodes().iter().filter(|n| n.is_alive()) {
        let v = node.call(&["CONFIG", "GET", "maxmemory-samples"]).unwrap();
        assert!(
            format!("{v:?}").contains("\"7\""),
            "{at}: {}: {v:?}",
            node.addr()
        );
    }
    let got: HashMap<String, String> = db.config_get("maxmemory-samples").decode().await.unwrap();
    assert_eq!(
        got.get("maxmemory-samples").map(String::as_str),
        Some("7"),
        "{at}"
    );
    db.config_set([("maxmemory-samples", "5")]).await.unwrap();

    // RANDOMKEY: a key of whichever primary has one.
    db.flushall().await.unwrap();
    let only = key_on(cluster, primaries[2], &format!("{p}:only"));
    db.set(&only, 1).await.unwrap();
    for _ in 0..6 {
        let k: Option<String> = db.randomkey().decode().await.unwrap();
        assert_eq!(k.as_ref(), Some(&only), "{at}");
    }
    // INFO: every primary's, by address; routed by hand, one node's.
    let info: HashMap<String, String> = db.info().decode().await.unwrap();
    let addrs: HashSet<String> = primaries.iter().map(|n| n.addr()).collect();
    assert_eq!(info.keys().cloned().collect::<HashSet<_>>(), addrs, "{at}");
    for (addr, text) in &info {
        let port = addr.rsplit(':').next().unwrap();
        assert!(text.contains(&format!("tcp_port:{port}")), "{at}: {addr}");
    }
    let owner = cluster.primary_of_slot(0);
    let one: String = db.call(cmd!("INFO", "server").route_slot(0)).await.unwrap();
    assert!(one.contains(&format!("tcp_port:{}", owner.port())), "{at}");

    // Keyless commands inside a pipeline, between keyed ones; a split MGET too.
    let mut pipe = db.pipeline();
    pipe.set(&keys[20], "a").send();
    pipe.dbsize().send();
    pipe.ping().send();
    pipe.mget([&keys[20], &only]).send();
    pipe.randomkey().send();
    let r: ((), i64, String, Vec<String>, Option<String>) = pipe.query().await.unwrap();
    assert_eq!(r.1, 2, "{at}: DBSIZE in a pipeline");
    assert_eq!(r.2, "PONG", "{at}");
    assert_eq!(r.3, ["a", "1"], "{at}");
    assert!(
        r.4 == Some(keys[20].clone()) || r.4 == Some(only.clone()),
        "{at}"
    );

    // SCAN as one call: refused (each primary has its own cursor); by hand on one node: fine.
    let scan: ringdis::Result<Value> = db.scan(0).decode().await;
    assert!(
        scan.is_err_and(|e| e.is_client() && e.to_string().contains("scan_iter")),
        "{at}"
    );
    let page: (u64, Vec<String>) = db
        .call(cmd!("SCAN", 0, "COUNT", 1000).route_slot(0))
        .await
        .unwrap();
    assert_eq!(page.0, 0, "{at}");
}

/// A 1000-command pipeline of split commands: replies in the caller's order.
async fn split_pipeline(cluster: &Cluster, engine: Engine, protocol: Protocol, at: &str) {
    let db = client(cluster, engine, protocol);
    let p = ringdis_tests::unique("pipe");
    let mut pipe = db.pipeline();
    for i in 0..250 {
        let (a, b, c) = (
            format!("{p}:a{i}"),
            format!("{p}:b{i}"),
            format!("{p}:c{i}"),
        );
        pipe.mset([(&a, i), (&b, i + 1), (&c, i + 2)]).send();
        pipe.mget([&a, &b, &format!("{p}:none"), &c, &a]).send();
        pipe.del([&b, &format!("{p}:none")]).send();
        pipe.exists([&a, &b, &c]).send();
    }
    let replies: Vec<Value> = pipe.query().await.unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!(replies.len(), 1000, "{at}");
    let int = |v: &Value| match v {
        Value::Bulk(b) => std::str::from_utf8(b).unwrap().parse::<i64>().unwrap(),
        other => panic!("{at}: {other:?}"),
    };
    for i in 0..250i64 {
        let r = &replies[i as usize * 4..i as usize * 4 + 4];
        assert!(
            matches!(&r[0], Value::Simple(s) if s == "OK"),
            "{at}: {:?}",
            r[0]
        );
        let Value::Array(got) = &r[1] else {
            panic!("{at}: {:?}", r[1])
        };
        assert_eq!(got.len(), 5, "{at}");
        assert_eq!(
            [int(&got[0]), int(&got[1]), int(&got[3]), int(&got[4])],
            [i, i + 1, i + 2, i]
        );
        assert_eq!(got[2], Value::Nil, "{at}");
        assert_eq!(r[2], Value::Int(1), "{at}");
        assert_eq!(r[3], Value::Int(2), "{at}");
    }
}

/// Cluster-wide SCAN: every key once, with MATCH, COUNT and TYPE; HSCAN by key; a map
/// changed mid-scan (`moved`: a slot with none of the keys moved to another primary and the
/// client told by a MOVED, which updates its map and asks for a refresh) changes nothing.
async fn scan(cluster: &Cluster, engine: Engine, protocol: Protocol, moved: bool, at: &str) {
    let db = client(cluster, engine, protocol);
    db.flushall().await.unwrap();
    let p = ringdis_tests::unique("scan");
    let strings: Vec<String> = (0..5000).map(|i| format!("{p}:s{i}")).collect();
    let hashes: Vec<String> = (0..300).map(|i| format!("{p}:h{i}")).collect();
    let mut pipe = db.pipeline();
    for k in &strings {
        pipe.set(k, 1).send();
    }
    for h in &hashes {
        pipe.hset(h, "f", 1).send();
    }
    pipe.query::<()>().await.unwrap();
    let big = &hashes[0];
    let mut pipe = db.pipeline();
    for f in 0..200 {
        pipe.hset(big, format!("f{f}"), f).send();
    }
    pipe.query::<()>().await.unwrap();

    // Every key exactly once.
    let mut stream = db.scan_iter().count(200);
    let mut seen: Vec<Bytes> = Vec::new();
    while let Some(k) = stream.next_item().await {
        seen.push(k.unwrap_or_else(|e| panic!("{at}: {e}")));
        if moved && seen.len() == 1000 {
            // A slot with none of the keys moves; the client learns it (MOVED, refresh).
            let used: HashSet<u16> = strings
                .iter()
                .chain(&hashes)
                .map(|k| ringdis::slot(k.as_bytes()))
                .collect();
            let slot = (0..16384u16).find(|s| !used.contains(s)).unwrap();
            let from = cluster.primary_of_slot(slot);
            let to = cluster
                .primaries()
                .into_iter()
                .find(|n| n.port() != from.port())
                .unwrap();
            cluster.migrate_slot(slot, to);
            let probe = (0..)
                .map(|i| format!("probe{i}"))
                .find(|k| ringdis::slot(k.as_bytes()) == slot)
                .unwrap();
            let redirects = db.stats().redirects;
            assert_eq!(db.get(&probe).await, Ok(None), "{at}");
            assert!(
                db.stats().redirects > redirects,
                "{at}: the map changed (MOVED)"
            );
        }
    }
    let distinct: HashSet<&Bytes> = seen.iter().collect();
    assert_eq!(
        seen.len(),
        5300,
        "{at}: every key once ({} distinct)",
        distinct.len()
    );
    let want: HashSet<Bytes> = strings
        .iter()
        .chain(&hashes)
        .map(|k| Bytes::from(k.clone()))
        .collect();
    assert_eq!(distinct.len(), want.len(), "{at}");
    assert!(want.iter().all(|k| distinct.contains(k)), "{at}");

    // MATCH and COUNT.
    let ones: Vec<Bytes> = db
        .scan_iter()
        .match_(format!("{p}:s1*"))
        .count(50)
        .collect_all()
        .await
        .unwrap();
    let want_ones: HashSet<Bytes> = strings
        .iter()
        .filter(|k| k.starts_with(&format!("{p}:s1")))
        .map(|k| Bytes::from(k.clone()))
        .collect();
    assert_eq!(ones.len(), want_ones.len(), "{at}");
    assert!(ones.iter().all(|k| want_ones.contains(k)), "{at}");
    // TYPE.
    let h: HashSet<Bytes> = db.scan_iter().type_("hash").collect_all().await.unwrap();
    assert_eq!(
        h,
        hashes
            .iter()
            .map(|k| Bytes::from(k.clone()))
            .collect::<HashSet<_>>(),
        "{at}"
    );
    // HSCAN on the key's node.
    let fields: HashMap<Bytes, Bytes> = db.hscan_iter(big).count(20).collect_all().await.unwrap();
    assert_eq!(fields.len(), 201, "{at}");
    assert_eq!(
        fields.get(&b"f199"[..]).map(|v| &v[..]),
        Some(&b"199"[..]),
        "{at}"
    );
    let members: Vec<Bytes> = db
        .sscan_iter(format!("{p}:nothing"))
        .collect_all()
        .await
        .unwrap();
    assert!(members.is_empty(), "{at}");
}

/// A primary killed while the scan is on it: one error item naming it, then the other
/// primaries' keys, each once.
async fn primary_lost_mid_scan(cluster: &Cluster, engine: Engine, protocol: Protocol, at: &str) {
    let db = client_within(cluster, engine, protocol, Duration::from_secs(2));
    db.flushall().await.unwrap();
    let p = ringdis_tests::unique("lost");
    let keys: Vec<String> = (0..3000).map(|i| format!("{p}:{i}")).collect();
    let mut pipe = db.pipeline();
    for k in &keys {
        pipe.set(k, 1).send();
    }
    pipe.query::<()>().await.unwrap();
    let mut stream = db.scan_iter().count(10);
    let first = stream.next_item().await.unwrap().unwrap();
    // The primary being scanned now goes down.
    let victim = cluster.primary_of_key(&first);
    let lost: Vec<_> = cluster.slots_of(victim);
    cluster.kill(victim);
    let mut seen = vec![first];
    let mut errors = Vec::new();
    while let Some(item) = stream.next_item().await {
        match item {
            Ok(k) => seen.push(k),
            Err(e) => errors.push(e),
        }
    }
    assert_eq!(errors.len(), 1, "{at}: {errors:?}");
    assert!(
        errors[0].to_string().contains(&victim.addr()),
        "{at}: {}",
        errors[0]
    );
    let on_victim = |k: &[u8]| lost.iter().any(|r| r.contains(&ringdis::slot(k)));
    let others: HashSet<&[u8]> = keys
        .iter()
        .map(|k| k.as_bytes())
        .filter(|k| !on_victim(k))
        .collect();
    let seen_others: Vec<&Bytes> = seen.iter().filter(|k| !on_victim(k)).collect();
    assert_eq!(
        seen_others.len(),
        others.len(),
        "{at}: the other primaries' keys, once each"
    );
    assert!(seen_others.iter().all(|k| others.contains(&k[..])), "{at}");
    let from_victim = seen.len() - seen_others.len();
    assert!(
        from_victim < keys.len() - others.len(),
        "{at}: the lost primary's scan was cut"
    );
}

fn run_on(kind: ServerKind) {
    let cluster = Cluster::start(kind);
    for (i, (engine, protocol)) in cells().into_iter().enumerate() {
        let at = format!("{kind}/{engine:?}/{protocol:?}");
        let rt = runtime();
        rt.block_on(fanout(&cluster, engine, protocol, &at));
        rt.block_on(split_pipeline(&cluster, engine, protocol, &at));
        rt.block_on(scan(&cluster, engine, protocol, i == 0, &at));
    }
}

fn lost_on(kind: ServerKind, engine: Engine, protocol: Protocol) {
    let cluster = Cluster::start(kind);
    let at = format!("{kind}/{engine:?}/{protocol:?}");
    runtime().block_on(primary_lost_mid_scan(&cluster, engine, protocol, &at));
}

#[test]
fn a_primary_lost_mid_scan_on_redis() {
    lost_on(ServerKind::Redis, Engine::IoUring, Protocol::Resp2);
}

#[test]
fn a_primary_lost_mid_scan_on_valkey() {
    lost_on(ServerKind::Valkey, Engine::Task, Protocol::Resp3);
}

#[test]
fn fanout_on_redis() {
    run_on(ServerKind::Redis);
}

#[test]
fn fanout_on_valkey() {
    run_on(ServerKind::Valkey);
}
