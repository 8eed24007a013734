//! `callgrind`: exactly `--ops N` operations of one workload on one client, the caller on a
//! tokio current-thread runtime, for counting instructions under
//! `valgrind --tool=callgrind`. `scripts/callgrind` runs it for two values of N and divides the
//! difference of the totals by the difference of N, so start-up, connecting, writing the keys
//! and the warm-up cancel out, and what is left is the cost of one operation, every thread of
//! the process counted (the caller's runtime, ringdis's driver thread if any). Instruction counts
//! do not depend on how busy the machine is, unlike ops/s.
//!
//! ```text
//! ringdis-bench callgrind --workload seq|set-p64 --client C --ops N [--url redis://…]
//! ```
//!
//! `C` is `ringdis/task`, `ringdis/io_uring`, `ringdis/epoll`, `redis-rs` (one
//! `MultiplexedConnection`) or `fred`. Without `--url` it starts its own server, as `--all` does
//! (the server is a child process: callgrind does not follow it).
//!
//! `--workload cached-get` (issue #15) counts one cached GET that hits: sequential GETs of the
//! 1,000 keys of `ringdis-bench cache`, no writes, after every key was read once (so a cached
//! client answers every counted GET from memory). Clients: `ringdis/cached` (ringdis with
//! `Config::cache`, `.cached()` reads), `redis-rs/cached` (`cache-aio`, RESP3), and for scale
//! `ringdis` and `redis-rs` uncached (a round trip each).
//!
//! `cluster/task`, `cluster/io_uring`, `cluster/epoll`: ringdis's `ClusterClient` on that engine,
//! seeded with `--url` alone, which must be a cluster node (`scripts/callgrind --cluster` starts a
//! one-node cluster owning every slot, so a `ClusterClient` and a `Client` talk to the same node
//! over one connection each, and the difference of their counts is what the cluster routing
//! costs per call).

use crate::cache;
use crate::cache_clients::{CacheClient, RedisRsCache, RingdisCache};
use crate::clients::{engine_name, BenchClient, Fred, RedisRs, Ringdis, ENGINES};
use crate::cluster_ringdis::RingdisCluster;
use crate::server::BenchServer;
use crate::workloads::{self, Data, Workload};
use crate::Options;
use ringdis::Engine;
use tokio::runtime::Runtime;

/// Calls of warm-up before the counted operations (lazy allocations, the first buffers).
const WARMUP_CALLS: u64 = 100;

/// The workloads it counts: 1 and 4 of `--all`.
fn workload(name: &str) -> Option<Workload> {
    match name {
        "1" | "seq" => Some(Workload::Sequential),
        "4" | "set-p64" => Some(Workload::SetPipeline(64)),
        _ => None,
    }
}

/// Runs the subcommand; `Err` is a usage error.
pub fn callgrind(opts: &Options) -> Result<(), String> {
    if opts.only_workload.as_deref() == Some("cached-get") {
        return cached_get(opts);
    }
    let w = opts
        .only_workload
        .as_deref()
        .and_then(workload)
        .ok_or("callgrind needs --workload seq|set-p64|cached-get")?;
    let client = opts.only_client.as_deref().ok_or(
        "callgrind needs --client ringdis/task|ringdis/io_uring|ringdis/epoll|redis-rs|fred",
    )?;
    let ops = opts.ops.ok_or("callgrind needs --ops N")?;
    // `cluster/<engine>`: the cluster client on that engine.
    let cluster = client.strip_prefix("cluster/");
    let engine = ENGINES.into_iter().find(|&e| {
        engine_name(e) == client
            || cluster.is_some_and(|c| engine_name(e) == format!("ringdis/{c}"))
    });
    if engine.is_none() && !matches!(client, "redis-rs" | "redis-rs/multiplexed" | "fred") {
        return Err(format!("callgrind: unknown client {client:?}"));
    }
    if cluster.is_some() && opts.url.is_none() {
        return Err("callgrind: a cluster/… client needs --url of a cluster node".into());
    }
    let server = opts.url.is_none().then(BenchServer::start);
    let url = opts
        .url
        .clone()
        .or_else(|| server.as_ref().map(BenchServer::url))
        .unwrap_or_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let data = Data::new();
    {
        let setup = rt.block_on(Ringdis::connect(&url, Engine::Epoll));
        workloads::prepare(&rt, &setup, &data);
    }
    match engine {
        Some(e) if cluster.is_some() => {
            let seeds = [url.clone()];
            count(
                &rt,
                rt.block_on(RingdisCluster::connect(&seeds, e)),
                &data,
                w,
                ops,
            )
        }
        Some(e) => count(&rt, rt.block_on(Ringdis::connect(&url, e)), &data, w, ops),
        None if client == "fred" => count(&rt, rt.block_on(Fred::connect(&url)), &data, w, ops),
        None => count(&rt, rt.block_on(RedisRs::multiplexed(&url)), &data, w, ops),
    }
    drop(server);
    Ok(())
}

fn count<C: BenchClient>(rt: &Runtime, client: C, data: &Data, w: Workload, ops: u64) {
    workloads::run_count(rt, &client, data, w, WARMUP_CALLS * w.ops_per_call());
    workloads::run_count(rt, &client, data, w, ops);
    eprintln!(
        "callgrind: {} ops of {} on {}",
        ops.div_ceil(w.ops_per_call()) * w.ops_per_call(),
        w.short(),
        client.name()
    );
}

/// `--workload cached-get`: `--ops` GETs that a cached client answers from memory.
fn cached_get(opts: &Options) -> Result<(), String> {
    let client = opts.only_client.as_deref().ok_or(
        "callgrind --workload cached-get needs --client ringdis/cached|redis-rs/cached|ringdis|redis-rs",
    )?;
    let ops = opts.ops.ok_or("callgrind needs --ops N")?;
    let server = opts.url.is_none().then(BenchServer::start);
    let url = opts
        .url
        .clone()
        .or_else(|| server.as_ref().map(BenchServer::url))
        .unwrap_or_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let state = cache::State::new();
    rt.block_on(async {
        let mut setup = RingdisCache::connect(&url, false).await;
        cache::fill(&mut setup, &state).await;
    });
    match client {
        "ringdis/cached" => count_reads(
            &rt,
            rt.block_on(RingdisCache::connect(&url, true)),
            &state,
            ops,
        ),
        "ringdis" => count_reads(
            &rt,
            rt.block_on(RingdisCache::connect(&url, false)),
            &state,
            ops,
        ),
        "redis-rs/cached" => count_reads(
            &rt,
            rt.block_on(RedisRsCache::connect(&url, true)),
            &state,
            ops,
        ),
        "redis-rs" => count_reads(
            &rt,
            rt.block_on(RedisRsCache::connect(&url, false)),
            &state,
            ops,
        ),
        other => {
            return Err(format!(
                "callgrind --workload cached-get: unknown client {other:?}"
            ))
        }
    }
    drop(server);
    Ok(())
}

fn count_reads<C: CacheClient>(rt: &Runtime, client: C, state: &cache::State, ops: u64) {
    // Every key read twice: the first read fills the cache, the second hits.
    cache::run_reads(rt, &client, state, 2 * cache::KEYS as u64);
    cache::run_reads(rt, &client, state, ops);
    eprintln!("callgrind: {ops} ops of cached-get on {}", client.name());
}
