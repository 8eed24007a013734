//! Sharded pub/sub (`ClusterClient::subscriber`) and replica reads
//! (`ClusterBuilder::read_from_replicas`) against real clusters (`ringdis_tests::Cluster`: 3
//! primaries, 1 replica each) on Redis 7.0 and Valkey 9, every engine and both protocols.
//!
//! One cluster per server kind. Replica reads run cell by cell; the pub/sub part runs every
//! cell's subscriber at once through each event (a slot migration, a killed connection, a
//! failover), so each event happens once per cluster; the replica fallback comes last.
//! Nothing sleeps to synchronise: every wait publishes or reads again until a condition holds,
//! within a deadline.

mod support;

use ringdis::{
    cmd, ClusterClient, ClusterSubscriber, CmdFlags, Commands, Config, Engine, Error, FromRedis,
    Protocol,
};
use ringdis_tests::{Cluster, ClusterNode, ServerKind};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use support::cells;
use support::runtime;

/// How long any one condition may take to hold (a failover included).
const WAIT: Duration = Duration::from_secs(30);

fn client(cluster: &Cluster, engine: Engine, protocol: Protocol, replicas: bool) -> ClusterClient {
    let seeds = cluster.seed_urls();
    let config = Config::from_url(&seeds[0])
        .expect("seed URL")
        .engine(engine)
        .protocol(protocol)
        .command_timeout(Some(Duration::from_secs(5)))
        .connect_timeout(Duration::from_secs(1));
    ClusterClient::builder(config)
        .seeds(&seeds)
        .read_from_replicas(replicas)
        .build()
        .expect("cluster client")
}

/// `cmdstat_<command>`'s `calls` on `node` (0 before its first call).
fn calls(node: &ClusterNode, command: &str) -> u64 {
    let info = node
        .call(&["INFO", "commandstats"])
        .unwrap_or_else(|e| panic!("INFO commandstats on {node}: {e}"));
    let text = String::from_redis(info).expect("INFO is text");
    let prefix = format!("cmdstat_{command}:calls=");
    text.lines()
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

/// The only replica of `primary`.
fn replica_of<'a>(cluster: &'a Cluster, primary: &ClusterNode) -> &'a ClusterNode {
    cluster
        .replicas_of(primary)
        .into_iter()
        .find(|r| r.is_alive())
        .unwrap_or_else(|| panic!("{primary} has no live replica"))
}

// ----- replica reads -------------------------------------------------------------------------

/// Reads land on the slot's replica (its `cmdstat_get` grows, the primary's does not), writes
/// on primaries (no redirect), and the replica connection's `READONLY` holds after the server
/// closed it (it is said again in the reconnect's handshake).
async fn replica_reads(cluster: &Cluster, engine: Engine, protocol: Protocol, at: &str) {
    let db = client(cluster, engine, protocol, true);
    let key = ringdis_tests::unique("rr");
    let primary = cluster.primary_of_key(&key);
    let replica = replica_of(cluster, primary);
    // A write goes to the primary: no redirect, and the primary ran it.
    let sets = calls(primary, "set");
    db.set(&key, "v1")
        .await
        .unwrap_or_else(|e| panic!("{at}: SET: {e}"));
    assert_eq!(
        calls(primary, "set"),
        sets + 1,
        "{at}: the write ran on the primary"
    );
    assert_eq!(db.stats().redirects, 0, "{at}: no redirect for the write");
    // The replica has it once replication caught up (reads there may be stale: that is the
    // deal); then count.
    let deadline = Instant::now() + WAIT;
    loop {
        let v: Option<String> = db
            .get(&key)
            .decode()
            .await
            .unwrap_or_else(|e| panic!("{at}: {e}"));
        if v.as_deref() == Some("v1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{at}: the replica never got the write"
        );
    }
    let (on_replica, on_primary) = (calls(replica, "get"), calls(primary, "get"));
    for _ in 0..20 {
        let v: Option<String> = db.get(&key).decode().await.unwrap();
        assert_eq!(v.as_deref(), Some("v1"), "{at}");
    }
    assert_eq!(
        calls(replica, "get"),
        on_replica + 20,
        "{at}: reads on the replica"
    );
    assert_eq!(
        calls(primary, "get"),
        on_primary,
        "{at}: no read on the primary"
    );
    assert_eq!(
        db.stats().redirects,
        0,
        "{at}: the replica served them (READONLY)"
    );
    // async_call and a hand-built command flagged readonly: the replica too.
    let on_replica = calls(replica, "get");
    let read = cmd!("GET").key(&key).with_flags(CmdFlags {
        readonly: true,
        ..CmdFlags::default()
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    db.async_call(read, move |r: ringdis::Result<ringdis::Value>| {
        let _ = tx.send(r);
    });
    let v = rx
        .await
        .expect("the callback ran")
        .unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!(String::from_redis(v).unwrap(), "v1", "{at}");
    assert_eq!(
        calls(replica, "get"),
        on_replica + 1,
        "{at}: async_call read on the replica"
    );
    // A command without the spec's readonly flag stays on the primary.
    let on_primary = calls(primary, "get");
    let v: Option<String> = db.call(cmd!("GET").key(&key)).await.unwrap();
    assert_eq!(v.as_deref(), Some("v1"), "{at}");
    assert_eq!(
        calls(primary, "get"),
        on_primary + 1,
        "{at}: an unflagged GET is not a read"
    );

    // The replica closes our connections: the next read reconnects, says READONLY again, and
    // is served by the replica (without READONLY it would answer MOVED to the primary).
    let readonly = calls(replica, "readonly");
    replica
        .call(&["CLIENT", "KILL", "TYPE", "normal"])
        .unwrap_or_else(|e| panic!("{at}: CLIENT KILL: {e}"));
    let deadline = Instant::now() + WAIT;
    loop {
        match db.get(&key).decode::<Option<String>>().await {
            Ok(v) => {
                assert_eq!(v.as_deref(), Some("v1"), "{at}");
                break;
            }
            // The read that meets the closed connection may fail (it may have been sent).
            Err(e) if e.is_connection() => assert!(Instant::now() < deadline, "{at}: {e}"),
            Err(e) => panic!("{at}: after CLIENT KILL: {e}"),
        }
    }
    assert!(
        calls(replica, "readonly") > readonly,
        "{at}: READONLY said again on reconnect"
    );
    let (on_replica, on_primary) = (calls(replica, "get"), calls(primary, "get"));
    let redirects = db.stats().redirects;
    for _ in 0..10 {
        let v: Option<String> = db.get(&key).decode().await.unwrap();
        assert_eq!(v.as_deref(), Some("v1"), "{at}");
    }
    assert_eq!(
        calls(replica, "get"),
        on_replica + 10,
        "{at}: still on the replica"
    );
    assert_eq!(calls(primary, "get"), on_primary, "{at}");
    assert_eq!(db.stats().redirects, redirects, "{at}");
    // Without replica reads, the same read goes to the primary.
    let plain = client(cluster, engine, protocol, false);
    let on_primary = calls(primary, "get");
    let _: Option<String> = plain.get(&key).decode().await.unwrap();
    assert_eq!(calls(primary, "get"), on_primary + 1, "{at}");
}

/// A killed replica: reads of its shard fall back to the primary and succeed.
async fn replica_fallback(
    cluster: &Cluster,
    key: &str,
    engine: Engine,
    protocol: Protocol,
    at: &str,
) {
    let db = client(cluster, engine, protocol, true);
    let primary = cluster.primary_of_key(key);
    let before = calls(primary, "get");
    for _ in 0..10 {
        let v: Option<String> = db
            .get(key)
            .decode()
            .await
            .unwrap_or_else(|e| panic!("{at}: a read with the replica dead: {e}"));
        assert_eq!(v.as_deref(), Some("kept"), "{at}");
    }
    assert_eq!(
        calls(primary, "get"),
        before + 10,
        "{at}: served by the primary"
    );
}

// ----- sharded pub/sub -----------------------------------------------------------------------

struct Cell {
    at: String,
    sub: ClusterSubscriber,
    /// Per channel, the payloads received.
    got: BTreeMap<String, Vec<String>>,
}

impl Cell {
    /// Takes what arrived within `wait` (lost connections are reported and tolerated: the
    /// subscriber restores itself).
    async fn drain(&mut self, wait: Duration) {
        loop {
            match self.sub.next_message(Some(wait)).await {
                Ok(Some(m)) => {
                    let channel = m.channel_str().expect("UTF-8").to_owned();
                    let payload = m.payload_str().expect("a string").to_owned();
                    self.got.entry(channel).or_default().push(payload);
                }
                // Nothing more, or a lost connection (reported once, or again while it is
                // down): the next round reads on.
                Ok(None) | Err(Error::Connection { .. }) => return,
                Err(e) => panic!("{}: the stream reported {e}", self.at),
            }
        }
    }

    fn has(&self, channel: &str, payload: &str) -> bool {
        self.got
            .get(channel)
            .is_some_and(|p| p.iter().any(|x| x == payload))
    }
}

/// Publishes on `channel` (a fresh payload each round, `SPUBLISH` through the cluster client)
/// until every cell received one published in this call and the server counted every cell
/// as a receiver.
async fn publish_until_all_see(
    publisher: &ClusterClient,
    cells: &mut [Cell],
    channel: &str,
    what: &str,
) {
    let deadline = Instant::now() + WAIT;
    let mut sent = Vec::new();
    for round in 0.. {
        let payload = format!("{what}-{round}");
        let receivers: i64 = publisher
            .spublish(channel, &payload)
            .await
            .unwrap_or_else(|e| panic!("{what}: SPUBLISH {channel}: {e}"));
        sent.push(payload);
        for cell in cells.iter_mut() {
            cell.drain(Duration::from_millis(20)).await;
        }
        let all = cells.iter().all(|c| sent.iter().any(|p| c.has(channel, p)));
        if all && receivers == cells.len() as i64 {
            return;
        }
        let missing: Vec<&str> = cells
            .iter()
            .filter(|c| !sent.iter().any(|p| c.has(channel, p)))
            .map(|c| c.at.as_str())
            .collect();
        assert!(
            Instant::now() < deadline,
            "{what}: {channel} not received by {missing:?} ({receivers} receivers)"
        );
    }
}

/// A channel name with `prefix` whose slot's primary is `node`.
fn channel_on(cluster: &Cluster, prefix: &str, node: &ClusterNode) -> String {
    (0..)
        .map(|i| format!("{prefix}:{i}"))
        .find(|c| cluster.primary_of_key(c).id() == node.id())
        .expect("a channel")
}

async fn placement_of(cell: &Cell, channel: &str) -> Option<String> {
    cell.sub.placement().await.get(channel.as_bytes()).cloned()
}

/// SSUBSCRIBE on channels over the three primaries; a slot migration, the server closing the
/// subscriber connections, a failover, an unsubscribe — every cell's subscriber at once.
async fn sharded_pubsub(cluster: &Cluster) {
    let publisher = client(cluster, Engine::Epoll, Protocol::Resp3, false);
    let primaries = cluster.primaries();
    let p = ringdis_tests::unique("sp");
    // One channel per primary, plus two sharing a slot (one unsubscribed later).
    let moving = channel_on(cluster, &format!("{p}:move"), primaries[0]);
    let failing = channel_on(cluster, &format!("{p}:fail"), primaries[1]);
    let stay_tag = channel_on(cluster, &format!("{p}:tag"), primaries[2]);
    let stay = format!("{{{stay_tag}}}:stay");
    let dropped = format!("{{{stay_tag}}}:dropped");
    let all = [
        moving.clone(),
        failing.clone(),
        stay.clone(),
        dropped.clone(),
    ];

    let every_cell = cells();
    let mut cells = Vec::new();
    let mut clients = Vec::new();
    for (engine, protocol) in every_cell {
        let at = format!("{:?}/{engine:?}/{protocol:?}", cluster.kind());
        let db = client(cluster, engine, protocol, false);
        let sub = db.subscriber().expect("a subscriber");
        sub.ssubscribe(&all)
            .await
            .unwrap_or_else(|e| panic!("{at}: SSUBSCRIBE: {e}"));
        // Each channel on the primary owning its slot: one connection per node in use.
        let placed = sub.placement().await;
        for c in &all {
            let node = placed
                .get(c.as_bytes())
                .unwrap_or_else(|| panic!("{at}: {c} not placed"));
            assert_eq!(*node, cluster.primary_of_key(c).addr(), "{at}: {c}");
        }
        assert_eq!(placed.values().collect::<BTreeSet<_>>().len(), 3, "{at}");
        cells.push(Cell {
            at,
            sub,
            got: BTreeMap::new(),
        });
        clients.push(db);
    }
    for c in &all {
        publish_until_all_see(&publisher, &mut cells, c, "first").await;
    }
    // SPUBLISH went straight to each channel's node (the spec's `not_key` channel routes it).
    assert_eq!(publisher.stats().redirects, 0, "SPUBLISH was redirected");

    // The slot of `moving` goes to another primary: the old owner drops the subscriptions
    // (sunsubscribe) and every subscriber follows it to the new owner.
    let to = primaries[2];
    cluster.migrate_slot(cluster.keyslot(&moving), to);
    publish_until_all_see(&publisher, &mut cells, &moving, "moved").await;
    for cell in &cells {
        assert_eq!(
            placement_of(cell, &moving).await,
            Some(to.addr()),
            "{}",
            cell.at
        );
    }

    // A slot that moved while nobody held a channel in it: the clients' maps are stale, the
    // old owner answers MOVED to SSUBSCRIBE, and the subscription goes to the new owner.
    let late = channel_on(cluster, &format!("{p}:late"), primaries[1]);
    cluster.migrate_slot(cluster.keyslot(&late), primaries[0]);
    for cell in &cells {
        cell.sub
            .ssubscribe([&late])
            .await
            .unwrap_or_else(|e| panic!("{}: SSUBSCRIBE {late}: {e}", cell.at));
        assert_eq!(
            placement_of(cell, &late).await,
            Some(primaries[0].addr()),
            "{}",
            cell.at
        );
    }
    publish_until_all_see(&publisher, &mut cells, &late, "late").await;

    // Unsubscribed: never again, even when its slot moves (its slot-mate comes back).
    for cell in &cells {
        cell.sub
            .sunsubscribe([&dropped])
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", cell.at));
        let held = cell.sub.channels().await;
        assert!(!held.iter().any(|c| c == dropped.as_bytes()), "{}", cell.at);
        assert_eq!(held.len(), 4, "{}", cell.at);
    }
    let none: i64 = publisher
        .spublish(&dropped, "after-unsubscribe")
        .await
        .unwrap();
    assert_eq!(none, 0, "nobody is subscribed to {dropped} any more");
    cluster.migrate_slot(cluster.keyslot(&stay), primaries[0]);
    publish_until_all_see(&publisher, &mut cells, &stay, "stay-moved").await;
    let none: i64 = publisher.spublish(&dropped, "after-move").await.unwrap();
    assert_eq!(
        none, 0,
        "{dropped} was not subscribed again after its slot moved"
    );
    for cell in &mut cells {
        cell.drain(Duration::from_millis(20)).await;
        let late: Vec<&String> = cell
            .got
            .get(&dropped)
            .into_iter()
            .flatten()
            .filter(|p| p.starts_with("after"))
            .collect();
        assert!(late.is_empty(), "{}: {late:?}", cell.at);
    }

    // The servers close every subscriber connection: each reconnects and subscribes again.
    for node in cluster.primaries() {
        node.call(&["CLIENT", "KILL", "TYPE", "pubsub"])
            .unwrap_or_else(|e| panic!("{e}"));
    }
    for c in [&moving, &failing, &stay, &late] {
        publish_until_all_see(&publisher, &mut cells, c, "reconnected").await;
    }

    // The primary of `failing` dies: once its replica is promoted, the subscribers are there.
    let old = cluster.primary_of_key(&failing);
    let new = cluster.kill_primary(old);
    publish_until_all_see(&publisher, &mut cells, &failing, "failed-over").await;
    for cell in &cells {
        assert_eq!(
            placement_of(cell, &failing).await,
            Some(new.addr()),
            "{}",
            cell.at
        );
    }
    // The others never stopped.
    publish_until_all_see(&publisher, &mut cells, &stay, "after-failover").await;
    drop(clients);
}

fn run(kind: ServerKind) {
    let cluster = Cluster::start(kind);
    let rt = runtime();
    for (engine, protocol) in cells() {
        let at = format!("{kind:?}/{engine:?}/{protocol:?}");
        rt.block_on(replica_reads(&cluster, engine, protocol, &at));
    }
    rt.block_on(sharded_pubsub(&cluster));
    // A replica dies (in a shard that kept one): reads of its shard go to the primary.
    let key = (0..)
        .map(|i| format!("{}:{i}", ringdis_tests::unique("fallback")))
        .find(|k| {
            cluster
                .replicas_of(cluster.primary_of_key(k))
                .iter()
                .any(|r| r.is_alive())
        })
        .expect("a shard with a live replica");
    let primary = cluster.primary_of_key(&key);
    let replica = replica_of(&cluster, primary);
    primary
        .call(&["SET", &key, "kept"])
        .expect("SET on the primary");
    cluster.kill(replica);
    for (engine, protocol) in cells() {
        let at = format!("{kind:?}/{engine:?}/{protocol:?} fallback");
        rt.block_on(replica_fallback(&cluster, &key, engine, protocol, &at));
    }
}

#[test]
fn sharded_pubsub_and_replica_reads_on_redis() {
    run(ServerKind::Redis);
}

#[test]
fn sharded_pubsub_and_replica_reads_on_valkey() {
    run(ServerKind::Valkey);
}
