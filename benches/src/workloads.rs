//! The workloads: what the callers do, independent of whose client they call. Every reply is
//! checked against what the harness wrote (a GET returns exactly the key's value, a pipeline of
//! SETs gets one `OK` per SET, HGETALL decodes to the record written): a wrong reply aborts the run.

use crate::clients::{BenchClient, Record, Ringdis};
use crate::measure::{cpu_time, threads, Histogram, Perf};
use bytes::Bytes;
use ringdis::cmd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// Keys the small-value workloads read and write (filled by [`prepare`]).
pub const KEYS: usize = 1000;
/// Keys of the 16 KiB workload.
pub const BIG_KEYS: usize = 64;
/// The hash of workload 6.
pub const HASH_KEY: &str = "bench:hash";

/// A workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// One task, one GET at a time: latency-bound.
    Sequential,
    /// `tasks` tasks on one client, 80% GET / 20% SET of `value`-byte values.
    Concurrent { tasks: usize, value: usize },
    /// One task sending pipelines of `n` GETs (the transports comparison).
    Pipeline(usize),
    /// One task sending explicit pipelines of `n` SETs of 32-byte values.
    SetPipeline(usize),
    /// One task, `HGETALL` of a 20-field hash decoded into a struct.
    HGetAll,
    /// `connections` connections with `tasks` tasks bound to each (task `t` on connection
    /// `t % connections`, see [`BenchClient::for_task`]), the mix of [`Workload::Concurrent`].
    /// Run on a client made of that many connections (`all::Many`).
    Connections {
        connections: usize,
        tasks: usize,
        value: usize,
    },
}

impl Workload {
    /// The workloads of the transport comparison.
    pub const TRANSPORTS: [Workload; 3] = [
        Workload::Sequential,
        Workload::Concurrent {
            tasks: 64,
            value: 32,
        },
        Workload::Pipeline(64),
    ];

    /// The workloads of the peer comparison (issues #6 and #12), numbered 1–7 in this order.
    pub const ALL: [Workload; 7] = [
        Workload::Sequential,
        Workload::Concurrent {
            tasks: 64,
            value: 32,
        },
        Workload::Concurrent {
            tasks: 1024,
            value: 32,
        },
        Workload::SetPipeline(64),
        Workload::Concurrent {
            tasks: 16,
            value: 16384,
        },
        Workload::HGetAll,
        Workload::Connections {
            connections: 64,
            tasks: 16,
            value: 32,
        },
    ];

    /// A label for the report.
    pub fn label(self) -> String {
        match self {
            Workload::Sequential => "sequential GET (1 task)".to_owned(),
            Workload::Concurrent { tasks, value } => format!(
                "{tasks} concurrent tasks, 80% GET / 20% SET, {} values",
                size(value)
            ),
            Workload::Pipeline(n) => format!("pipeline of {n} GETs"),
            Workload::SetPipeline(n) => format!("explicit pipeline of {n} SETs (32 B values)"),
            Workload::HGetAll => "HGETALL of a 20-field hash into a struct (1 task)".to_owned(),
            Workload::Connections {
                connections,
                tasks,
                value,
            } => format!(
                "{connections} connections × {tasks} tasks each, 80% GET / 20% SET, {} values",
                size(value)
            ),
        }
    }

    /// A short label for the chart and for `--workload`.
    pub fn short(self) -> String {
        match self {
            Workload::Sequential => "seq".to_owned(),
            Workload::Concurrent { tasks, value: 32 } => format!("c{tasks}"),
            Workload::Concurrent { tasks, value } => format!("c{tasks}-{}", size(value)),
            Workload::Pipeline(n) => format!("p{n}"),
            Workload::SetPipeline(n) => format!("set-p{n}"),
            Workload::HGetAll => "hgetall".to_owned(),
            Workload::Connections {
                connections, tasks, ..
            } => format!("{connections}x{tasks}"),
        }
    }

    /// How many tasks call at once.
    fn tasks(self) -> usize {
        match self {
            Workload::Concurrent { tasks, .. } => tasks,
            Workload::Connections {
                connections, tasks, ..
            } => connections * tasks,
            _ => 1,
        }
    }

    /// Operations one call of the workload counts (a pipeline counts each command).
    pub fn ops_per_call(self) -> u64 {
        match self {
            Workload::Pipeline(n) | Workload::SetPipeline(n) => n as u64,
            _ => 1,
        }
    }
}

fn size(bytes: usize) -> String {
    if bytes >= 1024 && bytes % 1024 == 0 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

/// The keys and the values every client reads and writes: each key always holds the same value
/// (SETs write it again), so every GET can be checked exactly.
pub struct Data {
    keys: Vec<String>,
    values: Vec<Bytes>,
    big_keys: Vec<String>,
    big_values: Vec<Bytes>,
    /// `(key, value)` for keys `0..KEYS` and again the first 64, so any 64 in a row are a slice.
    kvs: Vec<(String, Bytes)>,
    record: Record,
}

impl Data {
    pub fn new() -> Arc<Data> {
        let keys: Vec<String> = (0..KEYS).map(|i| format!("bench:key:{i}")).collect();
        let values: Vec<Bytes> = (0..KEYS)
            .map(|i| Bytes::from(format!("{i:0>32}")))
            .collect();
        let big_keys: Vec<String> = (0..BIG_KEYS).map(|i| format!("bench:big:{i}")).collect();
        let big_values: Vec<Bytes> = (0..BIG_KEYS)
            .map(|i| (0..16384).map(|j| b'a' + ((i + j) % 26) as u8).collect())
            .collect();
        let kvs = (0..KEYS + 64)
            .map(|i| (keys[i % KEYS].clone(), values[i % KEYS].clone()))
            .collect();
        Arc::new(Data {
            keys,
            values,
            big_keys,
            big_values,
            kvs,
            record: Record::sample(),
        })
    }

    fn key_value(&self, value_size: usize, r: u64) -> (&str, &Bytes) {
        if value_size > 32 {
            let i = r as usize % BIG_KEYS;
            (&self.big_keys[i], &self.big_values[i])
        } else {
            let i = r as usize % KEYS;
            (&self.keys[i], &self.values[i])
        }
    }
}

/// Writes every key and the hash, so GETs find their values.
pub fn prepare(rt: &Runtime, client: &Ringdis, data: &Data) {
    let mut client = client.clone();
    rt.block_on(async {
        for (k, v) in data.keys.iter().zip(&data.values) {
            client.set(k, v).await;
        }
        for (k, v) in data.big_keys.iter().zip(&data.big_values) {
            client.set(k, v).await;
        }
        let mut hset = cmd!("HSET", HASH_KEY);
        for (f, v) in data.record.pairs() {
            hset = hset.arg(f).arg(v);
        }
        client.call_raw(hset).await;
    });
}

/// Writes the small-value keys (those of workloads 1–4 and 7) through any client: the cluster
/// workload's, where the ringdis helper [`prepare`] uses is a single-node client.
pub fn prepare_keys<C: BenchClient>(rt: &Runtime, client: &C, data: &Data) {
    let mut client = client.clone();
    rt.block_on(async {
        for (k, v) in data.keys.iter().zip(&data.values) {
            client.set(k, v).await;
        }
    });
}

/// One measured window.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub ops: u64,
    pub wall: Duration,
    /// Process CPU time (user + system, every thread) over the window; for redis-benchmark, its
    /// own process's.
    pub cpu: Duration,
    /// Median and 99th-percentile latency of one call (a whole pipeline for the pipelined
    /// workloads), µs.
    pub p50_us: f64,
    pub p99_us: f64,
    /// OS threads of the whole process during the window (the most of its start and end).
    pub threads: usize,
    /// OS threads the client under test added to the process (workload 7, where each sample
    /// connects its own client): [`Sample::threads`] minus the count before it connected.
    pub threads_added: Option<usize>,
}

impl Sample {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64()
    }

    pub fn cpu_us_per_op(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.ops.max(1) as f64
    }

    pub fn p50(&self) -> f64 {
        self.p50_us
    }

    pub fn p99(&self) -> f64 {
        self.p99_us
    }
}

/// Runs `workload` on `client`: `warmup` unmeasured, then a measured `window` (counted by
/// `perf` too, when given).
pub fn run<C: BenchClient>(
    rt: &Runtime,
    client: &C,
    data: &Arc<Data>,
    workload: Workload,
    warmup: Duration,
    window: Duration,
    perf: Option<&mut Perf>,
) -> Sample {
    let ops = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let hist = Arc::new(Histogram::new());
    rt.block_on(async {
        let n = workload.tasks();
        let per_call = workload.ops_per_call();
        let mut tasks = Vec::with_capacity(n);
        for t in 0..n {
            let mut client = client.for_task(t);
            let (ops, stop, measuring, hist, data) = (
                ops.clone(),
                stop.clone(),
                measuring.clone(),
                hist.clone(),
                data.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (t as u64 + 1);
                while !stop.load(Ordering::Relaxed) {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let start = Instant::now();
                    call_once(&mut client, &data, workload, rng).await;
                    if measuring.load(Ordering::Relaxed) {
                        hist.record(start.elapsed());
                    }
                    ops.fetch_add(per_call, Ordering::Relaxed);
                }
            }));
        }
        tokio::time::sleep(warmup).await;
        let mut perf = perf;
        if let Some(p) = perf.as_deref_mut() {
            p.enable();
        }
        measuring.store(true, Ordering::Relaxed);
        let threads0 = threads();
        let (ops0, cpu0, t0) = (ops.load(Ordering::Relaxed), cpu_time(), Instant::now());
        tokio::time::sleep(window).await;
        let (ops1, cpu1, t1) = (ops.load(Ordering::Relaxed), cpu_time(), Instant::now());
        let threads1 = threads();
        measuring.store(false, Ordering::Relaxed);
        if let Some(p) = perf {
            p.disable();
        }
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.expect("workload task");
        }
        Sample {
            ops: ops1 - ops0,
            wall: t1 - t0,
            cpu: cpu1.saturating_sub(cpu0),
            p50_us: hist.quantile(0.50).as_secs_f64() * 1e6,
            p99_us: hist.quantile(0.99).as_secs_f64() * 1e6,
            threads: threads0.max(threads1),
            threads_added: None,
        }
    })
}

/// One call of `workload` (one command, or one pipeline), its reply checked. `rng` picks the key.
async fn call_once<C: BenchClient>(client: &mut C, data: &Data, workload: Workload, rng: u64) {
    match workload {
        Workload::Sequential => {
            let (k, v) = data.key_value(32, rng);
            check_get(k, client.get(k).await, v);
        }
        Workload::Concurrent { value, .. } | Workload::Connections { value, .. } => {
            let (k, v) = data.key_value(value, rng);
            if rng % 5 == 0 {
                client.set(k, v).await;
            } else {
                check_get(k, client.get(k).await, v);
            }
        }
        Workload::Pipeline(n) => {
            let s = rng as usize % KEYS;
            client.get_pipelined(&data.keys[s..(s + n).min(KEYS)]).await;
        }
        Workload::SetPipeline(n) => {
            let s = rng as usize % KEYS;
            let kvs = &data.kvs[s..s + n.min(64)];
            let oks = client.set_pipelined(kvs).await;
            assert_eq!(oks, kvs.len(), "{}: pipeline of SETs", client.name());
        }
        Workload::HGetAll => {
            let r = client.hgetall_record(HASH_KEY).await;
            assert!(r == data.record, "{}: HGETALL gave {r:?}", client.name());
        }
    }
}

/// Runs exactly `ops` operations of `workload` (rounded up to whole calls) from one task, the
/// runtime's own `block_on`, with no clock, histogram or atomics: for counting instructions
/// under callgrind, where two runs with different `ops` differ by those operations only.
pub fn run_count<C: BenchClient>(
    rt: &Runtime,
    client: &C,
    data: &Data,
    workload: Workload,
    ops: u64,
) {
    let mut client = client.clone();
    let calls = ops.div_ceil(workload.ops_per_call());
    rt.block_on(async {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..calls {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            call_once(&mut client, data, workload, rng).await;
        }
    });
}

fn check_get<V: AsRef<[u8]>>(key: &str, got: Option<V>, want: &[u8]) {
    match got {
        Some(v) if v.as_ref() == want => {}
        Some(v) => panic!(
            "GET {key}: wrong value ({} bytes, expected {})",
            v.as_ref().len(),
            want.len()
        ),
        None => panic!("GET {key}: nil, expected {} bytes", want.len()),
    }
}
