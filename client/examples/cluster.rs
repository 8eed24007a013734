//! A Redis Cluster (or Valkey cluster) behind one handle: typed calls, MGET/MSET and pipelines
//! across slots, a transaction under a `{hash tag}`, a cluster-wide SCAN, and the error a
//! cross-slot command gets.
//!
//! ```text
//! REDIS_CLUSTER_URLS=redis://127.0.0.1:7000,redis://127.0.0.1:7001 cargo run -p ringdis --example cluster
//! ```
//!
//! Any one reachable node is enough; the others are found from it.

use ringdis::prelude::*;
use ringdis::{cmd, slot, ClusterClient, Result, ToRedis};
use std::collections::BTreeSet;

#[derive(Debug, FromRedis, ToRedis)]
struct User {
    name: String,
    born: i64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let urls = std::env::var("REDIS_CLUSTER_URLS")
        .unwrap_or_else(|_| "redis://127.0.0.1:7000,redis://127.0.0.1:7001".into());
    // The first URL's credentials, protocol and TLS apply to every node.
    let cluster = ClusterClient::open(urls.split(','))?;

    // Every generated command works as on a `Client`: it goes to the node of its key's slot.
    cluster.set("example:greeting", "hello").await?;
    let greeting: Option<String> = cluster.get("example:greeting").decode().await?;
    println!("GET example:greeting -> {greeting:?}");

    // A derived struct as a hash.
    let ada = User {
        name: "ada".into(),
        born: 1815,
    };
    cluster.hset_multiple("example:user:1", &ada).await?;
    let user: User = cluster.hgetall("example:user:1").decode().await?;
    println!("HGETALL example:user:1 -> {user:?}");

    // Keys in different slots: MSET and MGET are split per node and merged in your order.
    let keys = ["example:a", "example:b", "example:c"];
    let slots: BTreeSet<u16> = keys.iter().map(slot).collect();
    cluster
        .mset(keys.iter().zip(1..).map(|(k, v)| (*k, v)))
        .await?;
    let values: Vec<Option<i64>> = cluster.mget(&keys[..]).decode().await?;
    println!("MGET over {} slots -> {values:?}", slots.len());

    // A pipeline across slots: one write per node, the replies in the order added.
    let (a, b, c): (i64, i64, i64) = cluster
        .pipeline()
        .incr("example:a")
        .incr("example:b")
        .incr("example:c")
        .query()
        .await?;
    println!("pipeline INCR a, b, c -> {a}, {b}, {c}");

    // A transaction needs every key in one slot: a {hash tag} puts them there.
    let (items, total): (i64, i64) = cluster
        .transaction()
        .incr("example:{cart:7}:items")
        .incrby("example:{cart:7}:total", 42)
        .query()
        .await?;
    println!(
        "MULTI/EXEC on slot {} -> items={items} total={total}",
        slot(b"cart:7")
    );

    // A command that must see both keys at once refuses keys in different slots, before
    // anything is sent.
    match cluster
        .call::<Value>(cmd!("SUNION").key("example:a").key("example:b"))
        .await
    {
        Ok(v) => println!("SUNION unexpectedly answered {v:?}"),
        Err(e) => println!("SUNION across slots: {e}"),
    }

    // SCAN walks every primary.
    let found: BTreeSet<Bytes> = cluster
        .scan_iter()
        .match_("example:*")
        .collect_all()
        .await?;
    println!("SCAN example:* -> {} keys", found.len());

    // DEL is split per slot too; the counts are added up.
    let removed = cluster.del(found.iter().collect::<Vec<_>>()).await?;
    println!("removed {removed} keys");
    Ok(())
}
