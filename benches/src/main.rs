//! `ringdis-bench`: benchmarks against a Redis server it starts itself.
//!
//! ```text
//! cargo run -p ringdis-bench --release -- --all [--quick] [--rounds N] [--secs S] [--workload W]
//! cargo run -p ringdis-bench --release -- cluster [--quick] [--rounds N] [--secs S] [--workload c64|c1024]
//! cargo run -p ringdis-bench --release -- transports [--rounds N] [--secs S] [--no-perf]
//! cargo run -p ringdis-bench --release -- callgrind --workload seq|set-p64 --client C --ops N
//! ```
//!
//! `--all` (issues #6 and #12) runs ringdis on each engine (task, io_uring, epoll), redis-rs
//! (`MultiplexedConnection`, `ConnectionManager`), fred and `redis-benchmark` on seven workloads
//! in interleaved rounds, prints a markdown table per workload and writes them, with an SVG
//! chart, to `docs/benchmarks.md`.
//!
//! `--all --tls` runs workloads 1, 2 and 4 over TLS: ringdis on each engine and redis-rs
//! (`tokio-rustls-comp`), against a `redis-server` serving TLS only with a throwaway CA; results
//! go to `target/bench-tls/`.
//!
//! `cluster` (issue #14) runs workloads 2 and 3's mix (64 and 1024 tasks, 80% GET / 20% SET)
//! against a throwaway 3-primary Redis Cluster: ringdis's `ClusterClient` on each engine,
//! redis-rs `cluster-async` and fred's clustered client; results go to `target/bench-cluster/`.
//!
//! `cache` (issue #15) runs a read-heavy workload (1,000 hot keys, 95% GET / 5% SET, 64 and 1024
//! tasks) on ringdis and redis-rs, each with and without its client-side cache, counts stale
//! reads, and writes `target/bench-cache/benchmarks.md` (`--valkey`: against Valkey).
//!
//! `callgrind` runs a fixed number of operations for `scripts/callgrind`, which counts the
//! instructions per operation under valgrind (see the `callgrind` module).
//!
//! `transports` compares ringdis's io_uring and epoll transports on three workloads, in
//! interleaved rounds (each round runs every workload on every client, in alternating order), and
//! prints medians as a markdown table: ops/s, process CPU µs per op (getrusage over the window)
//! and syscalls per op (a separate window counted by `perf stat -e raw_syscalls:sys_enter`,
//! when perf can attach). Callers run as tasks on a tokio current-thread runtime.

mod all;
mod cache;
mod cache_clients;
mod callgrind;
mod chart;
mod clients;
mod cluster;
mod cluster_ringdis;
mod measure;
mod refbench;
mod report;
mod server;
mod workloads;

use clients::{BenchClient, Ringdis};
use report::{Kind, Row};
use ringdis::Engine;
use std::sync::Arc;
use std::time::Duration;
use workloads::{Data, Workload};

pub struct Options {
    rounds: usize,
    window: Duration,
    warmup: Duration,
    perf: bool,
    /// Run only this client (`epoll` or `io_uring`), e.g. under a profiler.
    only_client: Option<String>,
    /// Run only this workload (`seq`, `c64` or `p64`; for `--all`, a short name or 1–7; for
    /// `callgrind`, `seq` or `set-p64`).
    only_workload: Option<String>,
    /// `callgrind --ops N`: how many operations to run.
    ops: Option<u64>,
    /// `callgrind --url U`: the server to use instead of starting one.
    url: Option<String>,
    /// `--quick`: 3 rounds of 150 ms, results under `target/` instead of `docs/`.
    quick: bool,
    /// `--current-thread` / `--multi-thread`: measure on that tokio runtime only (default:
    /// both, one after the other).
    runtime: Option<all::RuntimeKind>,
    /// `--all --tls`: workloads 1, 2 and 4 over TLS (ringdis and redis-rs), against a server
    /// serving TLS only, results under `target/bench-tls/`.
    tls: bool,
    /// `cache --valkey`: against Valkey instead of Redis.
    valkey: bool,
    /// `cache --sets P`: P% of the operations are SETs (default 5).
    sets_percent: Option<u64>,
}

fn parse(args: &[String]) -> Result<(String, Options), String> {
    let mut opts = Options {
        rounds: 5,
        window: Duration::from_secs(1),
        warmup: Duration::from_millis(200),
        perf: true,
        only_client: None,
        only_workload: None,
        ops: None,
        url: None,
        quick: false,
        runtime: None,
        tls: false,
        valkey: false,
        sets_percent: None,
    };
    let mut it = args.iter();
    let mut cmd = "transports".to_owned();
    let (mut rounds_set, mut secs_set) = (false, false);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--all" => cmd = "all".to_owned(),
            "--quick" => opts.quick = true,
            "--tls" => opts.tls = true,
            "--valkey" => opts.valkey = true,
            "--sets" => {
                opts.sets_percent = Some(
                    it.next()
                        .and_then(|v| v.parse().ok())
                        .filter(|&p: &u64| p <= 100)
                        .ok_or("--sets takes a percentage, 0 to 100")?,
                );
            }
            "--current-thread" => opts.runtime = Some(all::RuntimeKind::CurrentThread),
            "--multi-thread" => opts.runtime = Some(all::RuntimeKind::MultiThread),
            "--rounds" => {
                opts.rounds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n: &usize| n > 0)
                    .ok_or("--rounds takes a positive number")?;
                rounds_set = true;
            }
            "--secs" => {
                let s: f64 = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&s: &f64| s > 0.0)
                    .ok_or("--secs takes a positive number")?;
                opts.window = Duration::from_secs_f64(s);
                secs_set = true;
            }
            "--no-perf" => opts.perf = false,
            "--ops" => {
                opts.ops = Some(
                    it.next()
                        .and_then(|v| v.parse().ok())
                        .filter(|&n: &u64| n > 0)
                        .ok_or("--ops takes a positive number")?,
                );
            }
            "--url" => opts.url = Some(it.next().ok_or("--url takes a URL")?.clone()),
            "--client" => opts.only_client = it.next().cloned(),
            "--workload" => opts.only_workload = it.next().cloned(),
            other if !other.starts_with('-') => cmd = other.to_owned(),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if opts.quick {
        if !rounds_set {
            opts.rounds = 3;
        }
        if !secs_set {
            opts.window = Duration::from_millis(150);
        }
        opts.warmup = Duration::from_millis(40);
        opts.perf = false;
    }
    Ok((cmd, opts))
}

const USAGE: &str = "usage: ringdis-bench --all [--quick] [--tls] [--current-thread|--multi-thread] [--rounds N] [--secs S] [--workload W] [--client C]
       ringdis-bench cluster [--quick] [--current-thread|--multi-thread] [--rounds N] [--secs S] [--workload c64|c1024] [--client C]
       ringdis-bench cache [--quick] [--valkey] [--sets P] [--current-thread|--multi-thread] [--rounds N] [--secs S] [--workload c64|c1024] [--client 'ringdis,ringdis cached,redis-rs cached,redis-rs']
       ringdis-bench transports [--rounds N] [--secs S] [--no-perf] [--client epoll|io_uring] [--workload seq|c64|p64]
       ringdis-bench callgrind --workload seq|set-p64 --client ringdis/task|ringdis/io_uring|ringdis/epoll|redis-rs|fred|cluster/task|cluster/epoll --ops N [--url U]
       ringdis-bench callgrind --workload cached-get --client ringdis/cached|redis-rs/cached|ringdis|redis-rs --ops N [--url U]";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, opts) = match parse(&args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("ringdis-bench: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    match cmd.as_str() {
        "transports" => transports(&opts),
        "all" => all::all(&opts),
        "cluster" => cluster::cluster(&opts),
        "cache" => cache::cache(&opts),
        "callgrind" => {
            if let Err(e) = callgrind::callgrind(&opts) {
                eprintln!("ringdis-bench: {e}\n{USAGE}");
                std::process::exit(2);
            }
        }
        other => {
            eprintln!(
                "ringdis-bench: unknown benchmark {other:?} (known: --all, cluster, cache, transports, callgrind)"
            );
            std::process::exit(2);
        }
    }
}

/// io_uring vs epoll, same server, same workloads, interleaved.
fn transports(opts: &Options) {
    let server = server::BenchServer::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let url = server.url();
    let clients = [
        rt.block_on(Ringdis::connect(&url, Engine::Epoll)),
        rt.block_on(Ringdis::connect(&url, Engine::IoUring)),
    ];
    let data = Data::new();
    workloads::prepare(&rt, &clients[0], &data);
    println!(
        "# ringdis transports: io_uring vs epoll\n\n{}; {} rounds × {:?} windows (+{:?} warm-up); \
         tokio current-thread runtime; {} CPUs; kernel {}",
        server.describe(),
        opts.rounds,
        opts.window,
        opts.warmup,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel()
    );
    let mut rows: Vec<Vec<Row>> = Workload::TRANSPORTS
        .iter()
        .map(|_| {
            clients
                .iter()
                .map(|c| Row {
                    client: c.name(),
                    kind: Kind::Ours,
                    samples: Vec::new(),
                    syscalls_per_op: None,
                })
                .collect()
        })
        .collect();
    let client_on = |c: usize| {
        opts.only_client
            .as_deref()
            .is_none_or(|o| clients[c].name().ends_with(o))
    };
    let workload_on = |w: Workload| {
        opts.only_workload.as_deref().is_none_or(|o| {
            matches!(
                (o, w),
                ("seq", Workload::Sequential)
                    | ("c64", Workload::Concurrent { .. })
                    | ("p64", Workload::Pipeline(_))
            )
        })
    };
    for round in 0..opts.rounds {
        for (w, workload) in Workload::TRANSPORTS.iter().enumerate() {
            // Alternate which client goes first, so neither always runs on a warmer machine.
            for i in 0..clients.len() {
                let c = if round % 2 == 0 {
                    i
                } else {
                    clients.len() - 1 - i
                };
                if !client_on(c) || !workload_on(*workload) {
                    continue;
                }
                let s = workloads::run(
                    &rt,
                    &clients[c],
                    &data,
                    *workload,
                    opts.warmup,
                    opts.window,
                    None,
                );
                rows[w][c].samples.push(s);
            }
        }
        eprintln!("round {}/{} done", round + 1, opts.rounds);
    }
    if opts.perf {
        for (w, workload) in Workload::TRANSPORTS.iter().enumerate() {
            for (c, client) in clients.iter().enumerate() {
                if !client_on(c) || !workload_on(*workload) {
                    continue;
                }
                rows[w][c].syscalls_per_op = syscalls_per_op(&rt, client, &data, *workload, opts);
            }
        }
    }
    for (w, workload) in Workload::TRANSPORTS.iter().enumerate() {
        rows[w].retain(|r| !r.samples.is_empty());
        if rows[w].is_empty() {
            continue;
        }
        print!("{}", report::table(*workload, &rows[w]));
    }
}

/// One extra window with perf counting; `None` when perf cannot attach here.
fn syscalls_per_op<C: BenchClient>(
    rt: &tokio::runtime::Runtime,
    client: &C,
    data: &Arc<Data>,
    workload: Workload,
    opts: &Options,
) -> Option<f64> {
    let mut perf = measure::Perf::attach()?;
    let s = workloads::run(
        rt,
        client,
        data,
        workload,
        opts.warmup,
        opts.window,
        Some(&mut perf),
    );
    let n = perf.finish()?;
    Some(n as f64 / s.ops.max(1) as f64)
}

pub fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".to_owned())
}
