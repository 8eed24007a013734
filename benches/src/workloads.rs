//! The workloads: what the callers do, independent of whose client they call.

use crate::clients::BenchClient;
use crate::measure::{cpu_time, Perf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// Keys the workloads read and write (filled by [`prepare`]).
pub const KEYS: usize = 1000;
/// The value size SETs write.
pub const VALUE_SIZE: usize = 32;

fn key(i: usize) -> String {
    format!("bench:key:{}", i % KEYS)
}

/// A workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// One task, one GET at a time: latency-bound.
    Sequential,
    /// `n` tasks on one client, 80% GET / 20% SET of 32-byte values.
    Concurrent(usize),
    /// One task sending pipelines of `n` GETs.
    Pipeline(usize),
}

impl Workload {
    /// The workloads of the transport comparison.
    pub const TRANSPORTS: [Workload; 3] = [
        Workload::Sequential,
        Workload::Concurrent(64),
        Workload::Pipeline(64),
    ];

    /// A label for the report.
    pub fn label(self) -> String {
        match self {
            Workload::Sequential => "sequential GET (1 task)".to_owned(),
            Workload::Concurrent(n) => format!("{n} concurrent tasks (80% GET / 20% SET)"),
            Workload::Pipeline(n) => format!("pipeline of {n} GETs"),
        }
    }
}

/// One measured window.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub ops: u64,
    pub wall: Duration,
    /// Process CPU time (user + system, every thread) over the window.
    pub cpu: Duration,
}

impl Sample {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64()
    }

    pub fn cpu_us_per_op(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.ops.max(1) as f64
    }
}

/// Writes every key once, so GETs find 32-byte values.
pub fn prepare<C: BenchClient>(rt: &Runtime, client: &C) {
    let value = vec![b'v'; VALUE_SIZE];
    rt.block_on(async {
        for i in 0..KEYS {
            client.set(&key(i), &value).await;
        }
    });
}

/// Runs `workload` on `client`: `warmup` unmeasured, then a measured `window` (counted by
/// `perf` too, when given).
pub fn run<C: BenchClient>(
    rt: &Runtime,
    client: &C,
    workload: Workload,
    warmup: Duration,
    window: Duration,
    perf: Option<&mut Perf>,
) -> Sample {
    let ops = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    rt.block_on(async {
        let mut tasks = Vec::new();
        let spawn_n = |n: usize, tasks: &mut Vec<tokio::task::JoinHandle<()>>| {
            for t in 0..n {
                let (client, ops, stop) = (client.clone(), ops.clone(), stop.clone());
                tasks.push(tokio::spawn(async move {
                    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (t as u64 + 1);
                    let value = vec![b'w'; VALUE_SIZE];
                    let pipeline_keys: Vec<String> = (0..64).map(|i| key(i * 7 + t)).collect();
                    while !stop.load(Ordering::Relaxed) {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let k = key(rng as usize);
                        match workload {
                            Workload::Sequential => client.get(&k).await,
                            Workload::Concurrent(_) if rng % 5 == 0 => client.set(&k, &value).await,
                            Workload::Concurrent(_) => client.get(&k).await,
                            Workload::Pipeline(n) => {
                                client.get_pipelined(&pipeline_keys[..n.min(64)]).await;
                                ops.fetch_add(n as u64 - 1, Ordering::Relaxed);
                            }
                        }
                        ops.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
        };
        let n = match workload {
            Workload::Concurrent(n) => n,
            Workload::Sequential | Workload::Pipeline(_) => 1,
        };
        spawn_n(n, &mut tasks);
        tokio::time::sleep(warmup).await;
        let mut perf = perf;
        if let Some(p) = perf.as_deref_mut() {
            p.enable();
        }
        let (ops0, cpu0, t0) = (ops.load(Ordering::Relaxed), cpu_time(), Instant::now());
        tokio::time::sleep(window).await;
        let (ops1, cpu1, t1) = (ops.load(Ordering::Relaxed), cpu_time(), Instant::now());
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
        }
    })
}
