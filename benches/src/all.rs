//! `--all` (issues #6 and #12): every client on every workload, interleaved rounds, tables, where
//! the targets stand, and `docs/benchmarks.md` with its chart.

use crate::clients::{engine_name, BenchClient, Fred, RedisRs, Ringdis, ENGINES};
use crate::report::{self, Kind, Row};
use crate::server::BenchServer;
use crate::workloads::{self, Data, Sample, Workload};
use crate::{chart, kernel, measure, refbench, Options};
use ringdis::Engine;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// Analysis written by hand after looking at profiles (`benches/findings.md`), read when the
/// report is written and appended to it.
fn findings() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("findings.md"))
        .unwrap_or_default()
}

/// Instructions per operation under callgrind (`benches/callgrind.md`, written by
/// `scripts/callgrind --write`), appended to the report when present.
fn callgrind() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("callgrind.md"))
        .map(|s| format!("\n{s}"))
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

/// A client of workload 7: made of many connections, connected afresh for each sample (so the
/// OS threads it adds can be counted) and closed after it.
#[derive(Clone, Copy)]
enum ManyKind {
    /// A `Spread` on this engine.
    Ringdis(Engine),
    /// `MultiplexedConnection`s.
    RedisRs,
    /// fred's `Pool`.
    Fred,
}

impl ManyKind {
    fn all() -> Vec<ManyKind> {
        let mut v: Vec<ManyKind> = ENGINES.iter().map(|&e| ManyKind::Ringdis(e)).collect();
        v.extend([ManyKind::RedisRs, ManyKind::Fred]);
        v
    }

    fn name(self) -> String {
        match self {
            ManyKind::Ringdis(e) => engine_name(e),
            ManyKind::RedisRs => "redis-rs/multiplexed".to_owned(),
            ManyKind::Fred => "fred".to_owned(),
        }
    }

    fn kind(self) -> Kind {
        match self {
            ManyKind::Ringdis(_) => Kind::Ours,
            _ => Kind::Peer,
        }
    }

    /// Connects, runs one sample of `w` (a [`Workload::Connections`]), closes, and waits (at most
    /// 5 s) until the threads it added are gone, so the next sample counts only its own.
    fn sample(
        self,
        rt: &Runtime,
        url: &str,
        data: &Arc<Data>,
        w: Workload,
        opts: &Options,
    ) -> Sample {
        let Workload::Connections { connections, .. } = w else {
            unreachable!("only workload 7 runs on many connections")
        };
        let (warm, win) = (opts.warmup, opts.window);
        let before = measure::threads();
        let mut s = match self {
            ManyKind::Ringdis(e) => {
                let c = rt.block_on(Ringdis::spread(url, e, connections));
                workloads::run(rt, &c, data, w, warm, win, None)
            }
            ManyKind::RedisRs => {
                let c = rt.block_on(RedisRs::multiplexed_many(url, connections));
                workloads::run(rt, &c, data, w, warm, win, None)
            }
            ManyKind::Fred => {
                let (pool, c) = rt.block_on(Fred::pool(url, connections));
                let s = workloads::run(rt, &c, data, w, warm, win, None);
                drop(c);
                rt.block_on(Fred::quit_pool(pool));
                s
            }
        };
        s.threads_added = Some(s.threads.saturating_sub(before));
        // Let the closed connections' tasks run (on a current-thread runtime they run only
        // inside `block_on`), then wait for their threads, if any, to end.
        let deadline = Instant::now() + Duration::from_secs(5);
        rt.block_on(async {
            while measure::threads() > before && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        s
    }
}

/// Who fills a row of a table.
#[derive(Clone, Copy)]
enum Who {
    /// `clients[i]`, connected once per runtime.
    Client(usize),
    /// Workload 7's many connections.
    Many(ManyKind),
    /// `redis-benchmark`.
    Reference,
}

fn selected(opts: &Options, number: usize, w: Workload) -> bool {
    // Over TLS: the workloads of issue #13 (1, 2 and 4).
    if opts.tls && ![1, 2, 4].contains(&number) {
        return false;
    }
    opts.only_workload
        .as_deref()
        .is_none_or(|o| o == number.to_string() || o == w.short())
}

/// Which tokio runtime the callers (and the peers' connection tasks) run on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    CurrentThread,
    /// Two workers: what `#[tokio::main]` gives on this 2-CPU machine.
    MultiThread,
}

impl RuntimeKind {
    /// The runtime. Idle threads of its blocking pool (fred resolves host names there) end
    /// after 200 ms instead of tokio's 10 s, so those one workload-7 sample made are gone before
    /// the next counts its own.
    pub fn build(self) -> Runtime {
        match self {
            RuntimeKind::CurrentThread => tokio::runtime::Builder::new_current_thread(),
            RuntimeKind::MultiThread => {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                b.worker_threads(2);
                b
            }
        }
        .enable_all()
        .thread_keep_alive(Duration::from_millis(200))
        .build()
        .expect("tokio runtime")
    }

    pub fn describe(self) -> &'static str {
        match self {
            RuntimeKind::CurrentThread => "tokio current-thread runtime",
            RuntimeKind::MultiThread => {
                "tokio multi-thread runtime, 2 workers (what `#[tokio::main]` gives here)"
            }
        }
    }
}

/// The results on one runtime.
struct Section {
    runtime: RuntimeKind,
    tables: Vec<(Workload, Vec<Row>)>,
    body: String,
    goals: String,
}

pub fn all(opts: &Options) {
    let started = Instant::now();
    let server = if opts.tls {
        let server = BenchServer::start_tls();
        if let Some(ca) = server.ca() {
            let _ = crate::clients::TLS_CA.set(ca.clone());
        }
        server
    } else {
        BenchServer::start()
    };
    let data = Data::new();
    {
        let rt = RuntimeKind::CurrentThread.build();
        let setup = rt.block_on(Ringdis::connect(&server.url(), Engine::Epoll));
        workloads::prepare(&rt, &setup, &data);
    }
    let header = format!(
        "{}; {}; {} rounds × {:?} windows (+{:?} warm-up), clients interleaved (rotating order); \
         {} CPUs ({}); kernel {}",
        server.describe(),
        peer_versions(),
        opts.rounds,
        opts.window,
        opts.warmup,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
        kernel()
    );
    let header = if opts.tls {
        format!("over TLS (rustls, ring provider, both sides; the server's certificate signed by a throwaway CA); {header}")
    } else {
        header
    };
    println!("# ringdis vs peers\n\n{header}");
    let runtimes: Vec<RuntimeKind> = match opts.runtime {
        Some(r) => vec![r],
        None => vec![RuntimeKind::CurrentThread, RuntimeKind::MultiThread],
    };
    let sections: Vec<Section> = runtimes
        .into_iter()
        .map(|r| {
            let s = measure(&server, &data, r, opts, started);
            print!("\n## Callers on a {}\n{}{}", r.describe(), s.body, s.goals);
            s
        })
        .collect();

    // Only a full run of both runtimes replaces the published report.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = if opts.tls {
        root.join("target/bench-tls")
    } else if opts.quick {
        root.join("target/bench-quick")
    } else if opts.runtime.is_some() {
        root.join("target/bench-one-runtime")
    } else {
        root.join("docs")
    };
    if let Err(e) = write_docs(&dir, &header, &sections) {
        eprintln!("ringdis-bench: writing {}: {e}", dir.display());
        std::process::exit(1);
    }
    eprintln!(
        "wrote {} and benchmarks.svg ({:.0} s in all)",
        dir.join("benchmarks.md").display(),
        started.elapsed().as_secs_f64()
    );
}

/// Every selected client on every selected workload, `opts.rounds` interleaved rounds, callers
/// on a fresh runtime of kind `runtime` (the clients connect on it).
fn measure(
    server: &BenchServer,
    data: &Arc<Data>,
    runtime: RuntimeKind,
    opts: &Options,
    started: Instant,
) -> Section {
    let rt = runtime.build();
    let url = server.url();
    // Over TLS: ringdis and redis-rs (fred and redis-benchmark are not set up for it).
    let client_on = |name: &str| {
        opts.only_client.as_deref().is_none_or(|o| name.contains(o))
            && !(opts.tls && (name == "fred" || name == "redis-benchmark"))
    };
    // Only what some selected workload runs is connected.
    let single_on = Workload::ALL
        .iter()
        .enumerate()
        .any(|(i, &w)| selected(opts, i + 1, w) && !matches!(w, Workload::Connections { .. }));
    let clients: Vec<Any> = if single_on {
        rt.block_on(async {
            let mut v = Vec::new();
            for e in ENGINES {
                if client_on(&engine_name(e)) {
                    v.push(Any::Ringdis(Ringdis::connect(&url, e).await));
                }
            }
            if client_on("redis-rs/multiplexed") {
                v.push(Any::RedisRs(RedisRs::multiplexed(&url).await));
            }
            if client_on("redis-rs/manager") {
                v.push(Any::RedisRs(RedisRs::manager(&url).await));
            }
            if client_on("fred") {
                v.push(Any::Fred(Fred::connect(&url).await));
            }
            v
        })
    } else {
        Vec::new()
    };
    let row = |client: String, kind: Kind| Row {
        client,
        kind,
        samples: Vec::new(),
        syscalls_per_op: None,
    };
    // Per workload: its rows, and who fills each.
    let mut tables: Vec<(Workload, Vec<Row>)> = Vec::new();
    let mut who: Vec<Vec<Who>> = Vec::new();
    for &w in Workload::ALL.iter() {
        let mut rows = Vec::new();
        let mut by = Vec::new();
        if matches!(w, Workload::Connections { .. }) {
            for m in ManyKind::all().into_iter().filter(|m| client_on(&m.name())) {
                rows.push(row(m.name(), m.kind()));
                by.push(Who::Many(m));
            }
        } else {
            for (i, c) in clients.iter().enumerate() {
                rows.push(row(c.name(), c.kind()));
                by.push(Who::Client(i));
            }
            if client_on("redis-benchmark") && refbench::args(w).is_some() {
                rows.push(row("redis-benchmark".to_owned(), Kind::Reference));
                by.push(Who::Reference);
            }
        }
        tables.push((w, rows));
        who.push(by);
    }
    let port = server.port();
    let mut reference_rate = [50_000.0f64; Workload::ALL.len()];
    for round in 0..opts.rounds {
        for (i, (w, rows)) in tables.iter_mut().enumerate() {
            if !selected(opts, i + 1, *w) {
                continue;
            }
            // Rotate who goes first, so no client always runs on a warmer (or busier) machine.
            let n = rows.len();
            for j in 0..n {
                let r = (j + round) % n;
                let sample = match who[i][r] {
                    Who::Client(c) => Some(clients[c].run(&rt, data, *w, opts)),
                    Who::Many(m) => Some(m.sample(&rt, &url, data, *w, opts)),
                    Who::Reference => {
                        let s = refbench::run(port, *w, opts.window, reference_rate[i]);
                        if let Some(s) = &s {
                            reference_rate[i] = s.ops_per_sec();
                        }
                        s
                    }
                };
                if let Some(s) = sample {
                    rows[r].samples.push(s);
                }
            }
        }
        eprintln!(
            "{}: round {}/{} done ({:.0} s)",
            runtime.describe(),
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
    let goals = report::goals(runtime == RuntimeKind::CurrentThread, &tables);
    drop(clients);
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    Section {
        runtime,
        tables,
        body,
        goals,
    }
}

fn write_docs(dir: &Path, header: &str, sections: &[Section]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let charts: Vec<chart::Panel> = sections
        .iter()
        .map(|s| (s.runtime.describe(), &s.tables[..]))
        .collect();
    chart::write(&dir.join("benchmarks.svg"), &charts)?;
    let mut results = String::new();
    for s in sections {
        results.push_str(&format!(
            "\n## Results: callers on a {}\n{}{}",
            s.runtime.describe(),
            s.body,
            s.goals
        ));
    }
    let doc = format!(
        "# Benchmarks: ringdis vs redis-rs, fred and redis-benchmark\n\n\
         <!-- Generated by `cargo run -p ringdis-bench --release -- --all`; edit \
         benches/src/all.rs or benches/findings.md, not this file. -->\n\n\
         ## Reproduce\n\n\
         ```sh\n\
         bash scripts/setup                                  # redis-server + redis-tools\n\
         cargo run -p ringdis-bench --release -- --all       # ~10 min; rewrites this file\n\
         cargo run -p ringdis-bench --release -- --all --quick   # < 1 min, to target/bench-quick/\n\
         cargo run -p ringdis-bench --release -- --all --quick --workload 2 --client ringdis/epoll\n\
         scripts/callgrind --write                           # instructions/op, workloads 1 and 4\n\
         ```\n\n\
         The harness starts its own `redis-server` (no persistence) on a free loopback port, \
         connects every client once (one connection / client object each; workload 7 connects \
         64 per client for each of its samples and closes them after), writes the keys, \
         then runs every client on every workload in rounds, rotating the order each round. \
         It does this twice: with the callers on a tokio current-thread runtime, then on a \
         2-worker multi-thread runtime (each on its own connections). The runtime matters: \
         redis-rs and fred do their socket I/O in tasks on the caller's runtime; ringdis does on \
         its task engine (`ringdis/task`), and on a driver thread of its own on the io_uring and \
         epoll engines. \
         Every reply is checked (a GET must return exactly the value written for its key; a \
         pipeline of SETs must get one OK per SET; HGETALL must decode to the record written).\n\n\
         Columns: median over rounds of ops/s; min–max over rounds; median p50/p99 latency of \
         one call (one whole pipeline in workload 4); CPU µs per op = this process's \
         user+system time over the window (every thread: caller runtime, ringdis's driver \
         thread, the peers' tasks) divided by ops — for redis-benchmark, its own process's \
         rusage, start-up included; ratios to the best Rust peer are medians of per-round \
         ratios (paired, so a round where the machine was busier cancels out); OS threads \
         added (workload 7) = the most threads in `/proc/self/task` during the window minus \
         the count before the client connected, over rounds.\n\n\
         Measured: {header}.\n\n\
         The runtimes were measured one after the other, so compare ratios within a runtime, \
         not rates across them.\n\n\
         Peers at their default configuration: redis-rs and fred speak RESP2, ringdis its \
         default RESP3; fred's automatic pipelining is on (its default).\n\n\
         ![ops/s relative to the best peer, per runtime](benchmarks.svg)\n\n\
         ## What these numbers do not say\n\n\
         - Loopback only: no network latency, so per-call CPU dominates; over a real network \
         the latency-bound workloads (1, 6) converge on the RTT.\n\
         - The server runs on the same 2 cores as the client: a client that burns more CPU also \
         slows the server it waits for, and vice versa. CPU µs/op is the client process only.\n\
         - One connection per client except workload 7; clusters are not measured, and TLS \
         only by `--all --tls` (workloads 1, 2 and 4, its report in target/bench-tls/). \
         redis-benchmark is a C event loop, not a library: it is a floor for \
         per-request cost, not a peer.\n\
         - The machine is shared and noisy (±30% between rounds); trust the paired ratios over \
         the absolute rates, and rerun with `--rounds 9 --secs 2` when they disagree.\n\
         - Each peer is used through its ordinary API with its defaults; none was tuned.\n\n\
         {results}{}\n{}",
        callgrind(),
        findings()
    );
    std::fs::write(dir.join("benchmarks.md"), doc).map_err(|e| e.to_string())
}

/// The peers' versions, as locked in the workspace's `Cargo.lock`.
fn peer_versions() -> String {
    let lock = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"))
        .unwrap_or_default();
    let version = |name: &str| {
        let marker = format!("name = \"{name}\"\nversion = \"");
        lock.find(&marker)
            .and_then(|i| lock[i + marker.len()..].split('"').next())
            .unwrap_or("?")
            .to_owned()
    };
    format!(
        "redis-rs {} (tokio-comp), fred {}, {}",
        version("redis"),
        version("fred"),
        redis_benchmark_version()
    )
}

fn redis_benchmark_version() -> String {
    std::process::Command::new("redis-benchmark")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "redis-benchmark (version unknown)".to_owned())
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
