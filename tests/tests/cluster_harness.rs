//! The throwaway cluster of `ringdis_tests::Cluster` does what the cluster tests rely on: three
//! primaries own every slot, a slot (and a range of slots) moves with its keys, a replica takes
//! over by a manual failover and by an automatic one after its primary is killed. The
//! Redis and Valkey runs assemble their cluster with `redis-cli --cluster create` (the harness
//! reads back the layout it chose); the killed-primary one with the raw admin commands.

use ringdis::Value;
use ringdis_tests::{Cluster, ClusterNode, Role, ServerKind, SLOTS};

fn get(node: &ClusterNode, key: &str) -> Result<Value, String> {
    node.call(&["GET", key])
}

fn bulk(s: &str) -> Value {
    Value::Bulk(s.as_bytes().to_vec().into())
}

fn harness_works(kind: ServerKind) {
    let cluster = Cluster::builder(kind).create_with_redis_cli().start();
    assert_eq!(cluster.nodes().len(), 6);
    assert_eq!(cluster.seed_urls().len(), 6);

    // The layout redis-cli chose, as the harness read it back: the first three nodes are the
    // primaries, node 3 + i replicates node i; every node's non-default bus port is the one the
    // cluster gossips.
    let nodes = cluster.nodes();
    let view = match nodes[0].call(&["CLUSTER", "NODES"]) {
        Ok(Value::Bulk(b)) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("{kind}: CLUSTER NODES: {other:?}"),
    };
    for (i, n) in nodes.iter().enumerate() {
        let addr = format!("{}@{}", n.addr(), n.bus_port());
        assert!(view.contains(&addr), "{kind}: {addr} not in {view}");
        let expected = if i < 3 {
            Role::Primary
        } else {
            Role::Replica {
                of: nodes[i - 3].id().to_owned(),
            }
        };
        assert_eq!(n.role(), expected, "{kind}: node {i}");
    }

    // Three primaries own all 16384 slots, one replica each.
    let primaries = cluster.primaries();
    assert_eq!(primaries.len(), 3, "{kind}: primaries");
    let owned: u32 = primaries
        .iter()
        .flat_map(|p| cluster.slots_of(p))
        .map(|r| u32::from(r.end() - r.start()) + 1)
        .sum();
    assert_eq!(owned, u32::from(SLOTS), "{kind}: slots owned");
    for p in &primaries {
        assert_eq!(p.role(), Role::Primary);
        let replicas = cluster.replicas_of(p);
        assert_eq!(replicas.len(), 1, "{kind}: replicas of {p}");
        assert_eq!(
            replicas[0].role(),
            Role::Replica {
                of: p.id().to_owned()
            }
        );
    }

    // A slot moves with its keys.
    let keys: Vec<String> = (0..250).map(|i| format!("{{harness}}:{i}")).collect();
    let slot = cluster.keyslot(&keys[0]);
    assert_eq!(cluster.keyslot("harness"), slot, "hash tags");
    let from = cluster.primary_of_slot(slot);
    for k in &keys {
        from.call(&["SET", k, k]).expect("SET on the owner");
    }
    let to = primaries
        .iter()
        .copied()
        .find(|p| p.id() != from.id())
        .expect("another primary");
    cluster.migrate_slot(slot, to);
    assert_eq!(cluster.primary_of_slot(slot).id(), to.id());
    for k in &keys {
        assert_eq!(get(to, k), Ok(bulk(k)), "{kind}: {k} on the new owner");
    }
    let moved = get(from, &keys[0]).expect_err("the old owner redirects");
    assert!(
        moved.contains(&format!("MOVED {slot} {}", to.addr())),
        "{kind}: {moved}"
    );

    // A manual failover: the replica of the new owner takes the slot, keys and all.
    let replica = cluster.replicas_of(to)[0];
    cluster.failover(replica);
    assert_eq!(replica.role(), Role::Primary);
    assert_eq!(cluster.primary_of_slot(slot).id(), replica.id());
    assert_eq!(
        to.role(),
        Role::Replica {
            of: replica.id().to_owned()
        }
    );
    assert_eq!(get(replica, &keys[7]), Ok(bulk(&keys[7])));

    // Many slots move at once, with their keys, from another thread.
    let first = cluster.primaries()[0];
    let last = *cluster.primaries().last().expect("primaries");
    let range = *cluster.slots_of(first)[0].start()..=cluster.slots_of(first)[0].start() + 199;
    let spread: Vec<String> = (0..1500)
        .map(|i| format!("spread:{i}"))
        .filter(|k| range.contains(&cluster.keyslot(k)))
        .collect();
    assert!(!spread.is_empty());
    for k in &spread {
        first.call(&["SET", k, k]).expect("SET on the owner");
    }
    std::thread::scope(|s| {
        s.spawn(|| cluster.move_slots(range.clone(), last));
    });
    for slot in [*range.start(), *range.end()] {
        assert_eq!(cluster.primary_of_slot(slot).id(), last.id());
    }
    for k in &spread {
        assert_eq!(get(last, k), Ok(bulk(k)), "{kind}: {k} moved");
    }
    cluster.wait_settled();
}

#[test]
fn redis_cluster_harness() {
    harness_works(ServerKind::Redis);
}

#[test]
fn valkey_cluster_harness() {
    harness_works(ServerKind::Valkey);
}

/// Killing a primary: its replica takes over its slots and the data it had replicated.
#[test]
fn killed_primary_is_replaced() {
    let cluster = Cluster::start(ServerKind::Valkey);
    let primary = cluster.primary_of_key("k");
    primary.call(&["SET", "k", "v"]).expect("SET");
    primary.call(&["WAIT", "1", "5000"]).expect("WAIT");
    let replica = cluster.replicas_of(primary)[0];
    let new = cluster.kill_primary(primary);
    assert!(!primary.is_alive());
    assert_eq!(new.id(), replica.id());
    assert_eq!(get(new, "k"), Ok(bulk("v")));
    assert_eq!(cluster.seed_urls().len(), 5);
    // It comes back as a replica of the node that replaced it.
    cluster.restart(primary);
    assert_eq!(
        primary.role(),
        Role::Replica {
            of: new.id().to_owned()
        }
    );
}
