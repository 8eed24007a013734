//! `--all` (issue #6): every client on every workload, interleaved rounds, tables, the goals, and
//! `docs/benchmarks.md` with its chart.

use crate::clients::{BenchClient, Fred, RedisRs, Ringdis};
use crate::report::{self, Kind, Row};
use crate::server::BenchServer;
use crate::workloads::{self, Data, Sample, Workload};
use crate::{chart, kernel, refbench, Options};
use ringdis::Transport;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tokio::runtime::Runtime;

/// Analysis written by hand after looking at profiles (`benches/findings.md`), read when the
/// report is written and appended to it.
fn findings() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("findings.md"))
        .unwrap_or_default()
}

/// One client under test (an enum, so each workload runs monomorphized code for its client:
/// no boxing or dynamic dispatch per call).
enum Any {
    Ringdis(Ringdis),
    RedisRs(RedisRs),
    Fred(Fred),
}

impl Any {
    fn name(&self) -> String {
        match self {
            Any::Ringdis(c) => c.name(),
            Any::RedisRs(c) => c.name(),
            Any::Fred(c) => c.name(),
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Any::Ringdis(_) => Kind::Ours,
            _ => Kind::Peer,
        }
    }

    fn run(&self, rt: &Runtime, data: &Arc<Data>, w: Workload, opts: &Options) -> Sample {
        let (warm, win) = (opts.warmup, opts.window);
        match self {
            Any::Ringdis(c) => workloads::run(rt, c, data, w, warm, win, None),
            Any::RedisRs(c) => workloads::run(rt, c, data, w, warm, win, None),
            Any::Fred(c) => workloads::run(rt, c, data, w, warm, win, None),
        }
    }
}

fn selected(opts: &Options, number: usize, w: Workload) -> bool {
    opts.only_workload
        .as_deref()
        .is_none_or(|o| o == number.to_string() || o == w.short())
}

pub fn all(opts: &Options) {
    let started = Instant::now();
    let server = BenchServer::start();
    let rt = if opts.multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    let runtime = if opts.multi_thread {
        "one tokio multi-thread runtime (2 workers)"
    } else {
        "one tokio current-thread runtime"
    };
    let url = server.url();
    let clients: Vec<Any> = rt.block_on(async {
        vec![
            Any::Ringdis(Ringdis::connect(&url, Transport::IoUring).await),
            Any::Ringdis(Ringdis::connect(&url, Transport::Epoll).await),
            Any::RedisRs(RedisRs::multiplexed(&url).await),
            Any::RedisRs(RedisRs::manager(&url).await),
            Any::Fred(Fred::connect(&url).await),
        ]
    });
    let clients: Vec<Any> = clients
        .into_iter()
        .filter(|c| {
            opts.only_client
                .as_deref()
                .is_none_or(|o| c.name().contains(o))
        })
        .collect();
    let reference_on = opts
        .only_client
        .as_deref()
        .is_none_or(|o| "redis-benchmark".contains(o));
    let data = Data::new();
    let setup = Ringdis::connect(&url, Transport::Epoll);
    workloads::prepare(&rt, &rt.block_on(setup), &data);

    let header = format!(
        "{}; {} rounds × {:?} windows (+{:?} warm-up), clients interleaved (rotating order); \
         callers are tasks on {runtime}; {} CPUs ({}); kernel {}",
        server.describe(),
        opts.rounds,
        opts.window,
        opts.warmup,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
        kernel()
    );
    println!("# ringdis vs peers\n\n{header}");

    let mut tables: Vec<(Workload, Vec<Row>)> = Workload::ALL
        .iter()
        .map(|&w| {
            let mut rows: Vec<Row> = clients
                .iter()
                .map(|c| Row {
                    client: c.name(),
                    kind: c.kind(),
                    samples: Vec::new(),
                    syscalls_per_op: None,
                })
                .collect();
            if reference_on && refbench::args(w).is_some() {
                rows.push(Row {
                    client: "redis-benchmark".to_owned(),
                    kind: Kind::Reference,
                    samples: Vec::new(),
                    syscalls_per_op: None,
                });
            }
            (w, rows)
        })
        .collect();
    let port = server.port();
    let mut reference_rate = [50_000.0f64; 6];
    for round in 0..opts.rounds {
        for (i, (w, rows)) in tables.iter_mut().enumerate() {
            if !selected(opts, i + 1, *w) {
                continue;
            }
            // Rotate who goes first, so no client always runs on a warmer (or busier) machine.
            let n = rows.len();
            for j in 0..n {
                let r = (j + round) % n;
                let sample = if r < clients.len() {
                    Some(clients[r].run(&rt, &data, *w, opts))
                } else {
                    let s = refbench::run(port, *w, opts.window, reference_rate[i]);
                    if let Some(s) = &s {
                        reference_rate[i] = s.ops_per_sec();
                    }
                    s
                };
                if let Some(s) = sample {
                    rows[r].samples.push(s);
                }
            }
        }
        eprintln!(
            "round {}/{} done ({:.0} s)",
            round + 1,
            opts.rounds,
            started.elapsed().as_secs_f64()
        );
    }

    let mut body = String::new();
    for (i, (w, rows)) in tables.iter().enumerate() {
        if rows.iter().any(|r| !r.samples.is_empty()) {
            body.push_str(&report::peer_table(i + 1, *w, rows));
        }
    }
    let goals = report::goals(&tables);
    print!("{body}{goals}");

    // Only a full run on the default runtime replaces the published report.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = match (opts.quick, opts.multi_thread) {
        (false, false) => root.join("docs"),
        (true, false) => root.join("target/bench-quick"),
        (_, true) => root.join("target/bench-multi-thread"),
    };
    if let Err(e) = write_docs(&dir, &header, &body, &goals, &tables) {
        eprintln!("ringdis-bench: writing {}: {e}", dir.display());
        std::process::exit(1);
    }
    eprintln!(
        "wrote {} and benchmarks.svg ({:.0} s in all)",
        dir.join("benchmarks.md").display(),
        started.elapsed().as_secs_f64()
    );
}

fn write_docs(
    dir: &Path,
    header: &str,
    body: &str,
    goals: &str,
    tables: &[(Workload, Vec<Row>)],
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    chart::write(&dir.join("benchmarks.svg"), tables)?;
    let doc = format!(
        "# Benchmarks: ringdis vs redis-rs, fred and redis-benchmark\n\n\
         <!-- Generated by `cargo run -p ringdis-bench --release -- --all`; edit \
         benches/src/all.rs or benches/findings.md, not this file. -->\n\n\
         ## Reproduce\n\n\
         ```sh\n\
         bash scripts/setup                                  # redis-server + redis-tools\n\
         cargo run -p ringdis-bench --release -- --all       # ~4 min; rewrites this file\n\
         cargo run -p ringdis-bench --release -- --all --quick   # < 1 min, to target/bench-quick/\n\
         ```\n\n\
         The harness starts its own `redis-server` (no persistence) on a free loopback port, \
         connects every client once (one connection / client object each), writes the keys, \
         then runs every client on every workload in rounds, rotating the order each round. \
         Every reply is checked (a GET must return exactly the value written for its key; a \
         pipeline of SETs must get one OK per SET; HGETALL must decode to the record written).\n\n\
         Columns: median over rounds of ops/s; min–max over rounds; median p50/p99 latency of \
         one call (one whole pipeline in workload 4); CPU µs per op = this process's \
         user+system time over the window (every thread: caller runtime, ringdis's driver \
         thread, the peers' tasks) divided by ops — for redis-benchmark, its own process's \
         rusage, start-up included; ratios to the best Rust peer are medians of per-round \
         ratios (paired, so a round where the machine was busier cancels out).\n\n\
         Measured: {header}.\n\n\
         Peers at their default configuration: redis-rs and fred speak RESP2, ringdis its \
         default RESP3; fred's automatic pipelining is on (its default).\n\n\
         ![ops/s relative to the best peer](benchmarks.svg)\n\n\
         ## What these numbers do not say\n\n\
         - Loopback only: no network latency, so per-call CPU dominates; over a real network \
         the latency-bound workloads (1, 6) converge on the RTT.\n\
         - The server runs on the same 2 cores as the client: a client that burns more CPU also \
         slows the server it waits for, and vice versa. CPU µs/op is the client process only.\n\
         - One connection per client; pools, clusters, TLS and many-connection setups are not \
         measured. redis-benchmark is a C event loop, not a library: it is a floor for \
         per-request cost, not a peer.\n\
         - The machine is shared and noisy (±30% between rounds); trust the paired ratios over \
         the absolute rates, and rerun with `--rounds 9 --secs 2` when they disagree.\n\
         - Each peer is used through its ordinary API with its defaults; none was tuned.\n\n\
         ## Results\n{body}{goals}\n{}",
        findings()
    );
    std::fs::write(dir.join("benchmarks.md"), doc).map_err(|e| e.to_string())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}
