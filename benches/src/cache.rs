//! `ringdis-bench cache` (issue #15): a read-heavy workload with and without client-side
//! caching. One throwaway server (Redis 7.0; Valkey with `--valkey`), 1,000 hot keys, 64 or 1024
//! tasks doing 95% GET / 5% SET (uniform keys; `--sets P` for P% SETs, 0 = read-only), on both
//! tokio runtimes, for ringdis without and
//! with its cache (`Config::cache`, `client.get(k).cached()`) and redis-rs without and with
//! `cache-aio` (RESP3, one `MultiplexedConnection`). Clients are interleaved (rotating order) and
//! each sample connects its client afresh (so an idle client's cache is not kept up to date by
//! invalidations during another client's window, on this process's CPU), warms up (filling the
//! cache), and is measured: ops/s, p50/p99 of one call, CPU µs/op (process rusage over the
//! window, as the other workloads), the cache's hit rate, and the paired ratios (ringdis cached
//! / ringdis uncached, ringdis cached / redis-rs cached).
//!
//! **Stale reads.** Every SET writes a new value per key (a 32-digit decimal counter): at most
//! one SET of a key is in flight at a time (a SET that finds its key being written reads it
//! instead), so the values the server holds only grow, and `committed[k]` is the last value
//! whose SET completed. Counted per client, over every read of every sample:
//! - *backwards*: a read older than a value the same client had already returned (to any of
//!   its tasks) before this read started. The client got that newer value from a reply (or an
//!   entry filled by one) that followed, on its one connection, the server's invalidation for
//!   the write that replaced the older value; so an older value can only come from an entry the
//!   client kept, or stored, after it had read that invalidation;
//! - *after settle*: when the sample's writers have stopped, the client makes one round trip
//!   (`PING`: every push ahead of its reply has been applied), then reads every key the way it
//!   reads in the workload and compares with `committed[k]` (itself checked against an
//!   uncached GET through a separate client); keys still wrong are read again for up to 1 s
//!   (*still stale after 1 s*: stale until the entry's TTL or the key's next write).
//!
//! **stale** = backwards + after settle, and must be 0. Reported beside it, not part of it:
//! *behind own writes*, a read that started after a SET of its key through the same client had
//! completed and returned an older value. ringdis invalidates a key locally when a write of it
//! is sent (so it must be 0 for ringdis); redis-rs does not, and Redis sends the writer's own
//! invalidation after the write's reply, so a redis-rs read right after its own write may still
//! hit the old entry before that push is read.

use crate::all::RuntimeKind;
use crate::cache_clients::{CacheClient, Harness, RedisRsCache, RingdisCache};
use crate::measure::{cpu_time, Histogram};
use crate::report::{self, median, Kind, Row};
use crate::workloads::Sample;
use crate::{kernel, Options};
use ringdis_tests::{Server, ServerKind};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// The hot keys.
pub const KEYS: usize = 1000;
/// Bytes of every value: a zero-padded decimal counter.
const VALUE_LEN: usize = 32;
/// The share of operations that are SETs, in percent, unless `--sets P` says otherwise.
const SETS_PERCENT: u64 = 5;
/// The task counts measured, `c64` and `c1024`.
pub const TASKS: [usize; 2] = [64, 1024];
/// How long keys found stale after the settle are read again before counting them stale for
/// good.
const STALE_GRACE: Duration = Duration::from_secs(1);

/// The keys, and per key the last value whose SET completed and whether a SET is in flight.
pub struct State {
    keys: Vec<String>,
    committed: Vec<AtomicU64>,
    writing: Vec<AtomicBool>,
}

impl State {
    /// The last value written to `key` (a key of the workload: `cache:key:<i>`), for
    /// [`Harness`](crate::cache_clients::Harness).
    pub fn value_of(&self, key: &str) -> u64 {
        let k = key
            .strip_prefix("cache:key:")
            .and_then(|i| i.parse::<usize>().ok())
            .filter(|&k| k < KEYS)
            .unwrap_or_else(|| panic!("{key} is no key of the cache workload"));
        self.committed[k].load(Ordering::Acquire)
    }

    pub fn new() -> Arc<State> {
        Arc::new(State {
            keys: (0..KEYS).map(|i| format!("cache:key:{i}")).collect(),
            committed: (0..KEYS).map(|_| AtomicU64::new(1)).collect(),
            writing: (0..KEYS).map(|_| AtomicBool::new(false)).collect(),
        })
    }
}

/// Writes every key at its current value (1 on a fresh server) through `client`.
pub async fn fill<C: CacheClient>(client: &mut C, state: &State) {
    for (k, key) in state.keys.iter().enumerate() {
        client
            .set(key, &encode(state.committed[k].load(Ordering::Acquire)))
            .await;
    }
}

/// For `callgrind --workload cached-get`: exactly `ops` GETs from one task, key `i % KEYS` for
/// the `i`th, each checked against the value written (no writes, so after one read of every
/// key a cached client only hits).
pub fn run_reads<C: CacheClient>(rt: &Runtime, client: &C, state: &State, ops: u64) {
    let mut client = client.clone();
    rt.block_on(async {
        for i in 0..ops {
            let k = (i % KEYS as u64) as usize;
            let got = client.get(&state.keys[k]).await;
            let want = state.committed[k].load(Ordering::Acquire);
            assert_eq!(
                got.as_ref().map(AsRef::as_ref).and_then(decode),
                Some(want),
                "GET {}",
                state.keys[k]
            );
        }
    });
}

/// `v` as the 32-digit decimal the workload stores.
pub fn encode(v: u64) -> [u8; VALUE_LEN] {
    let mut out = [b'0'; VALUE_LEN];
    let (mut v, mut i) = (v, VALUE_LEN);
    while v > 0 {
        i -= 1;
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out
}

/// The counter a stored value holds; `None` for anything the workload never writes.
pub fn decode(b: &[u8]) -> Option<u64> {
    if b.len() != VALUE_LEN {
        return None;
    }
    b.iter().try_fold(0u64, |acc, &c| {
        c.is_ascii_digit()
            .then(|| acc.checked_mul(10)?.checked_add(u64::from(c - b'0')))
            .flatten()
    })
}

/// What the checks counted in one sample (or summed over samples).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checks {
    /// GETs checked (the workload's and the settle check's).
    pub reads: u64,
    /// Reads older than one the same task read before.
    pub backwards: u64,
    /// Keys wrong after the writers stopped and the client settled.
    pub after_settle: u64,
    /// Of those, still wrong after [`STALE_GRACE`] of re-reading.
    pub still_stale: u64,
    /// Reads that started after a SET of the key through the same client completed and
    /// returned an older value.
    pub behind_own_writes: u64,
}

impl Checks {
    /// The number that must be 0.
    pub fn stale(&self) -> u64 {
        self.backwards + self.after_settle
    }

    fn add(&mut self, o: &Checks) {
        self.reads += o.reads;
        self.backwards += o.backwards;
        self.after_settle += o.after_settle;
        self.still_stale += o.still_stale;
        self.behind_own_writes += o.behind_own_writes;
    }
}

/// What a GET of key `k` may not return anything older than, taken as it starts.
#[derive(Clone, Copy, Debug)]
struct Floor {
    /// The last value of `k` whose SET had completed (through this client, or before it
    /// connected).
    committed: u64,
    /// The newest value of `k` any read through this client had returned.
    observed: u64,
}

impl Floor {
    fn at(state: &State, observed: &[AtomicU64], k: usize) -> Floor {
        Floor {
            committed: state.committed[k].load(Ordering::Acquire),
            observed: observed[k].load(Ordering::Acquire),
        }
    }
}

/// One task's checks of its GETs; panics on a reply the workload cannot have written.
#[derive(Default)]
struct Reader {
    checks: Checks,
}

impl Reader {
    /// Checks the reply `got` to a GET of key `k` that started at `floor`, and records it in
    /// `observed` (per key, the newest value the client returned).
    fn check(
        &mut self,
        state: &State,
        observed: &[AtomicU64],
        k: usize,
        floor: Floor,
        got: Option<&[u8]>,
    ) {
        let v = match got.and_then(decode) {
            Some(v) => v,
            None => panic!("GET {}: {:?} is no value of this run", state.keys[k], got),
        };
        // At most one SET of a key is in flight: nothing newer than its value can be read.
        let ceiling = state.committed[k].load(Ordering::Acquire) + 1;
        assert!(
            v <= ceiling,
            "GET {}: {v} was never written (newest {ceiling})",
            state.keys[k]
        );
        self.checks.reads += 1;
        if v < floor.observed {
            self.checks.backwards += 1;
        }
        if v < floor.committed {
            self.checks.behind_own_writes += 1;
        }
        if v > observed[k].load(Ordering::Relaxed) {
            observed[k].fetch_max(v, Ordering::AcqRel);
        }
    }
}

/// The clients, in report order: ringdis uncached, ringdis cached, redis-rs cached, redis-rs
/// uncached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Ringdis,
    RingdisCached,
    RedisRsCached,
    RedisRs,
    /// No client: the harness's own ceiling (only with `--client harness`).
    Harness,
}

impl Who {
    const ALL: [Who; 4] = [
        Who::Ringdis,
        Who::RingdisCached,
        Who::RedisRsCached,
        Who::RedisRs,
    ];

    fn label(self) -> &'static str {
        match self {
            Who::Ringdis => "ringdis",
            Who::RingdisCached => "ringdis cached",
            Who::RedisRsCached => "redis-rs cached",
            Who::RedisRs => "redis-rs",
            Who::Harness => "harness",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Who::Ringdis | Who::RingdisCached => Kind::Ours,
            Who::RedisRsCached | Who::RedisRs => Kind::Peer,
            Who::Harness => Kind::Reference,
        }
    }

    /// Connects a fresh client and runs one sample on it.
    fn sample(self, rt: &Runtime, url: &str, oracle: &RingdisCache, run: &Run) -> Measured {
        match self {
            Who::Harness => sample(rt, Harness::new(run.state.clone()), oracle, run),
            Who::Ringdis => sample(
                rt,
                rt.block_on(RingdisCache::connect(url, false)),
                oracle,
                run,
            ),
            Who::RingdisCached => sample(
                rt,
                rt.block_on(RingdisCache::connect(url, true)),
                oracle,
                run,
            ),
            Who::RedisRsCached => sample(
                rt,
                rt.block_on(RedisRsCache::connect(url, true)),
                oracle,
                run,
            ),
            Who::RedisRs => sample(
                rt,
                rt.block_on(RedisRsCache::connect(url, false)),
                oracle,
                run,
            ),
        }
    }
}

/// Latency histograms per sample (task `t` records into `t % HISTOGRAMS`).
const HISTOGRAMS: usize = 8;

/// One task's operation count, alone on its cache line.
#[derive(Default)]
#[repr(align(64))]
struct Counter(AtomicU64);

/// What one sample runs.
struct Run {
    state: Arc<State>,
    tasks: usize,
    /// The share of SETs, in percent.
    sets: u64,
    warmup: Duration,
    window: Duration,
}

/// One sample's measurements.
struct Measured {
    name: String,
    sample: Sample,
    checks: Checks,
    /// The cache's hits and joined reads over the window as fractions of its cached reads,
    /// if it has counters.
    hit_rate: Option<(f64, f64)>,
}

/// Runs the workload on `client` (warm-up, then the measured window), stops, and checks the
/// client's cache against the server.
fn sample<C: CacheClient>(rt: &Runtime, client: C, oracle: &RingdisCache, run: &Run) -> Measured {
    // Per task, its own operation counter (on a cache line of its own), and one of a few
    // latency histograms: hits are fast enough that one shared counter and histogram, bounced
    // between the workers' cores, would be measured instead of the clients (and a histogram
    // per task, 15 KiB each, would not stay in the CPU's caches at 1024 tasks).
    let ops: Arc<[Counter]> = (0..run.tasks).map(|_| Counter::default()).collect();
    let hists: Arc<[Histogram]> = (0..HISTOGRAMS).map(|_| Histogram::new()).collect();
    let observed: Arc<[AtomicU64]> = (0..KEYS).map(|_| AtomicU64::new(0)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let name = client.name();
    let total = |ops: &[Counter]| ops.iter().map(|c| c.0.load(Ordering::Relaxed)).sum::<u64>();
    rt.block_on(async {
        let mut tasks = Vec::with_capacity(run.tasks);
        for t in 0..run.tasks {
            let mut client = client.clone();
            let (ops, stop, measuring, state, hists, observed) = (
                ops.clone(),
                stop.clone(),
                measuring.clone(),
                run.state.clone(),
                hists.clone(),
                observed.clone(),
            );
            let sets = run.sets;
            tasks.push(tokio::spawn(async move {
                let hist = &hists[t % HISTOGRAMS];
                let mut reader = Reader::default();
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (t as u64 + 1);
                while !stop.load(Ordering::Relaxed) {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let k = (rng >> 32) as usize % KEYS;
                    let key = state.keys[k].as_str();
                    let start = Instant::now();
                    let write = rng % 100 < sets;
                    if write && !state.writing[k].swap(true, Ordering::AcqRel) {
                        let v = state.committed[k].load(Ordering::Acquire) + 1;
                        client.set(key, &encode(v)).await;
                        state.committed[k].store(v, Ordering::Release);
                        state.writing[k].store(false, Ordering::Release);
                    } else {
                        let floor = Floor::at(&state, &observed, k);
                        let got = client.get(key).await;
                        let got = got.as_ref().map(AsRef::as_ref);
                        reader.check(&state, &observed, k, floor, got);
                    }
                    if measuring.load(Ordering::Relaxed) {
                        hist.record(start.elapsed());
                    }
                    ops[t].0.fetch_add(1, Ordering::Relaxed);
                    // A cache hit completes without ever returning Pending: let the other tasks
                    // (and, on a current-thread runtime, the timer ending the window) run, as
                    // tokio's own resources do when a task has used up its budget.
                    tokio::task::coop::consume_budget().await;
                }
                reader.checks
            }));
        }
        tokio::time::sleep(run.warmup).await;
        measuring.store(true, Ordering::Relaxed);
        let stats0 = client.stats();
        let (ops0, cpu0, t0) = (total(&ops), cpu_time(), Instant::now());
        tokio::time::sleep(run.window).await;
        let (ops1, cpu1, t1) = (total(&ops), cpu_time(), Instant::now());
        let stats1 = client.stats();
        let described = client.describe_stats();
        measuring.store(false, Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        let mut checks = Checks::default();
        for t in tasks {
            checks.add(&t.await.expect("cache workload task"));
        }
        let hist = Histogram::new();
        for h in hists.iter() {
            hist.merge(h);
        }
        let mut client = client;
        if client.real() {
            checks.add(&settle_check(&mut client, oracle, &run.state).await);
        } else {
            // Its SETs went nowhere: write what the other clients must find.
            fill(&mut oracle.clone(), &run.state).await;
        }
        let hit_rate = match (stats0, stats1) {
            (Some((h0, j0, r0)), Some((h1, j1, r1))) if r1 > r0 => {
                let reads = (r1 - r0) as f64;
                Some(((h1 - h0) as f64 / reads, (j1 - j0) as f64 / reads))
            }
            _ => None,
        };
        let sample = Sample {
            ops: ops1 - ops0,
            wall: t1 - t0,
            cpu: cpu1.saturating_sub(cpu0),
            p50_us: hist.quantile(0.50).as_secs_f64() * 1e6,
            p99_us: hist.quantile(0.99).as_secs_f64() * 1e6,
            threads: 0,
            threads_added: None,
        };
        eprintln!(
            "  {name}, {} tasks: {:.0} ops/s, {:.2} µs CPU/op; at the window's end: {described}",
            run.tasks,
            sample.ops_per_sec(),
            sample.cpu_us_per_op()
        );
        Measured {
            name,
            sample,
            checks,
            hit_rate,
        }
    })
}

/// With the writers stopped: one round trip through `client` (every invalidation sent before
/// its reply applied), then every key read as the workload reads it and compared with the last
/// value written (which an uncached GET through `oracle` confirms); keys still wrong are read
/// again for up to [`STALE_GRACE`].
async fn settle_check<C: CacheClient>(
    client: &mut C,
    oracle: &RingdisCache,
    state: &State,
) -> Checks {
    let mut oracle = oracle.clone();
    client.settle().await;
    let mut checks = Checks::default();
    let mut wrong = Vec::new();
    for (k, key) in state.keys.iter().enumerate() {
        let want = state.committed[k].load(Ordering::Acquire);
        let server = oracle.get(key).await.as_deref().and_then(decode);
        assert_eq!(server, Some(want), "GET {key} through an uncached client");
        checks.reads += 1;
        if client
            .get(key)
            .await
            .as_ref()
            .map(AsRef::as_ref)
            .and_then(decode)
            != Some(want)
        {
            wrong.push(k);
        }
    }
    checks.after_settle = wrong.len() as u64;
    let deadline = Instant::now() + STALE_GRACE;
    while !wrong.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.settle().await;
        let mut still = Vec::new();
        for k in wrong {
            let want = state.committed[k].load(Ordering::Acquire);
            let got = client.get(&state.keys[k]).await;
            if got.as_ref().map(AsRef::as_ref).and_then(decode) != Some(want) {
                still.push(k);
            }
        }
        wrong = still;
    }
    checks.still_stale = wrong.len() as u64;
    checks
}

/// One client's results in one (runtime, task count) cell.
struct Line {
    who: Who,
    row: Row,
    checks: Checks,
    hit_rates: Vec<(f64, f64)>,
}

fn selected_tasks(opts: &Options, tasks: usize) -> bool {
    opts.only_workload
        .as_deref()
        .is_none_or(|o| o == format!("c{tasks}") || o == tasks.to_string())
}

pub fn cache(opts: &Options) {
    let started = Instant::now();
    let kind = if opts.valkey {
        ServerKind::Valkey
    } else {
        ServerKind::Redis
    };
    let sets = opts.sets_percent.unwrap_or(SETS_PERCENT);
    let server = Server::start(kind);
    let url = server.url();
    let state = State::new();
    let header = format!(
        "{kind} {} on {url} (no persistence, loopback); {KEYS} keys, {}% GET / {sets}% SET of \
         {VALUE_LEN}-byte values; {} rounds × {:?} windows (+{:?} warm-up, each sample on a \
         freshly connected client), clients interleaved (rotating order); {} CPUs; kernel {}; \
         load average at start {}",
        server.version(),
        100 - sets,
        opts.rounds,
        opts.window,
        opts.warmup,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel(),
        loadavg(),
    );
    println!("# Client-side caching: ringdis vs redis-rs\n\n{header}");
    let runtimes: Vec<RuntimeKind> = match opts.runtime {
        Some(r) => vec![r],
        None => vec![RuntimeKind::CurrentThread, RuntimeKind::MultiThread],
    };
    let mut doc = format!("# Client-side caching: ringdis vs redis-rs\n\n{header}\n");
    for runtime in runtimes {
        let body = measure(&url, &state, runtime, opts, started);
        let section = format!("\n## Callers on a {}\n{body}", runtime.describe());
        print!("{section}");
        doc.push_str(&section);
    }
    let end = format!("\nLoad average at the end: {}.\n", loadavg());
    print!("{end}");
    doc.push_str(&end);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-cache");
    let path = dir.join("benchmarks.md");
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, doc)) {
        eprintln!("ringdis-bench: writing {}: {e}", path.display());
        std::process::exit(1);
    }
    eprintln!(
        "wrote {} ({:.0} s in all)",
        path.display(),
        started.elapsed().as_secs_f64()
    );
}

/// `/proc/loadavg`'s three averages.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

/// Every selected client at every selected task count, `opts.rounds` interleaved rounds, on a
/// fresh runtime of kind `runtime`; the section's tables.
fn measure(
    url: &str,
    state: &Arc<State>,
    runtime: RuntimeKind,
    opts: &Options,
    started: Instant,
) -> String {
    let rt = runtime.build();
    let oracle = rt.block_on(async {
        let oracle = RingdisCache::connect(url, false).await;
        fill(&mut oracle.clone(), state).await;
        oracle
    });
    let who: Vec<Who> = Who::ALL
        .into_iter()
        .chain([Who::Harness])
        .filter(|&w| w != Who::Harness || opts.only_client.is_some())
        .filter(|w| {
            opts.only_client
                .as_deref()
                .is_none_or(|o| o.split(',').any(|o| o == w.label()))
        })
        .collect();
    let mut cells: Vec<(usize, Vec<Line>)> = TASKS
        .iter()
        .filter(|&&t| selected_tasks(opts, t))
        .map(|&t| {
            let lines = who
                .iter()
                .map(|&w| Line {
                    who: w,
                    row: Row {
                        client: w.label().to_owned(),
                        kind: w.kind(),
                        samples: Vec::new(),
                        syscalls_per_op: None,
                    },
                    checks: Checks::default(),
                    hit_rates: Vec::new(),
                })
                .collect();
            (t, lines)
        })
        .collect();
    for round in 0..opts.rounds {
        for (tasks, lines) in cells.iter_mut() {
            let run = Run {
                state: state.clone(),
                tasks: *tasks,
                sets: opts.sets_percent.unwrap_or(SETS_PERCENT),
                warmup: opts.warmup,
                window: opts.window,
            };
            let n = lines.len();
            for j in 0..n {
                let c = (j + round) % n;
                let m = lines[c].who.sample(&rt, url, &oracle, &run);
                let line = &mut lines[c];
                line.row.client = m.name;
                line.row.samples.push(m.sample);
                line.checks.add(&m.checks);
                line.hit_rates.extend(m.hit_rate);
            }
        }
        eprintln!(
            "cache, {}: round {}/{} done ({:.0} s, load {})",
            runtime.describe(),
            round + 1,
            opts.rounds,
            started.elapsed().as_secs_f64(),
            loadavg()
        );
    }
    let mut out = String::new();
    for (tasks, lines) in &cells {
        out.push_str(&table(
            *tasks,
            opts.sets_percent.unwrap_or(SETS_PERCENT),
            lines,
        ));
    }
    drop(oracle);
    rt.shutdown_timeout(Duration::from_secs(1));
    out
}

/// One cell's table, its paired ratios and where the targets of #15 stand.
fn table(tasks: usize, sets: u64, lines: &[Line]) -> String {
    let mut out = format!(
        "\n### {tasks} tasks, {}% GET / {sets}% SET, {KEYS} keys\n\n\
         | client | median ops/s | min–max ops/s | p50 µs | p99 µs | CPU µs/op | hit rate | stale | behind own writes | reads checked |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        100 - sets
    );
    for l in lines.iter().filter(|l| !l.row.samples.is_empty()) {
        let (lo, hi) = l.row.spread();
        let p =
            |f: fn(&Sample) -> f64| median(&mut l.row.samples.iter().map(f).collect::<Vec<_>>());
        let hit = if l.hit_rates.is_empty() {
            "—".to_owned()
        } else {
            let hit = median(&mut l.hit_rates.iter().map(|r| r.0).collect::<Vec<_>>());
            let joined = median(&mut l.hit_rates.iter().map(|r| r.1).collect::<Vec<_>>());
            if joined > 0.0 {
                format!("{:.1}% (+{:.1}% joined)", 100.0 * hit, 100.0 * joined)
            } else {
                format!("{:.1}%", 100.0 * hit)
            }
        };
        let c = &l.checks;
        let stale = if c.stale() == 0 {
            "0".to_owned()
        } else {
            format!(
                "**{}** ({} backwards, {} after settle, {} still after 1 s)",
                c.stale(),
                c.backwards,
                c.after_settle,
                c.still_stale
            )
        };
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0}–{:.0} | {:.1} | {:.1} | {:.2} | {hit} | {stale} | {} | {} |",
            l.row.client,
            l.row.ops_per_sec(),
            lo,
            hi,
            p(Sample::p50),
            p(Sample::p99),
            l.row.cpu_us_per_op(),
            c.behind_own_writes,
            c.reads,
        );
    }
    let find = |w: Who| {
        lines
            .iter()
            .find(|l| l.who == w && !l.row.samples.is_empty())
    };
    let cached = find(Who::RingdisCached);
    let mut goals = Vec::new();
    for (base, target) in [(Who::Ringdis, 5.0), (Who::RedisRsCached, 1.5)] {
        let (Some(a), Some(b)) = (cached, find(base)) else {
            continue;
        };
        let rounds: Vec<String> = a
            .row
            .samples
            .iter()
            .zip(&b.row.samples)
            .map(|(x, y)| format!("{:.2}", x.ops_per_sec() / y.ops_per_sec()))
            .collect();
        let ops = report::paired_ratio(&a.row, &b.row, Sample::ops_per_sec);
        let cpu = report::paired_ratio(&a.row, &b.row, Sample::cpu_us_per_op);
        let p99 = |r: &Row| median(&mut r.samples.iter().map(Sample::p99).collect::<Vec<_>>());
        let _ = write!(
            out,
            "\n{} / {}: **{ops:.2}×** ops/s (per round: {}), {cpu:.2}× CPU/op (paired medians); \
             p99 {:.1} µs vs {:.1} µs.",
            a.row.client,
            b.row.client,
            rounds.join(", "),
            p99(&a.row),
            p99(&b.row),
        );
        goals.push(format!(
            "≥ {target}× {}: {}",
            b.row.client,
            if ops >= target { "met" } else { "**missed**" }
        ));
    }
    if let Some(a) = cached {
        goals.push(format!(
            "0 stale: {}",
            if a.checks.stale() == 0 && a.checks.behind_own_writes == 0 {
                "met".to_owned()
            } else {
                format!(
                    "**missed** ({} stale, {} behind own writes)",
                    a.checks.stale(),
                    a.checks.behind_own_writes
                )
            }
        ));
    }
    if !goals.is_empty() {
        let _ = write!(
            out,
            "\n\nTarget (#15), ringdis cached: {}.",
            goals.join("; ")
        );
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_order() {
        for v in [0u64, 1, 9, 10, 12_345, u64::MAX] {
            assert_eq!(decode(&encode(v)), Some(v));
        }
        assert!(encode(99) < encode(100));
        assert_eq!(decode(b"12"), None);
        assert_eq!(decode(&[b'x'; VALUE_LEN]), None);
        assert_eq!(decode(&[b'9'; VALUE_LEN]), None, "overflows u64");
    }

    #[test]
    fn reader_counts_backwards_and_behind_own_writes() {
        let state = State::new();
        let observed: Vec<AtomicU64> = (0..KEYS).map(|_| AtomicU64::new(0)).collect();
        state.committed[3].store(7, Ordering::Release);
        let mut r = Reader::default();
        // Two reads in flight together: the later one may return the older value.
        let (f1, f2) = (
            Floor::at(&state, &observed, 3),
            Floor::at(&state, &observed, 3),
        );
        r.check(&state, &observed, 3, f1, Some(&encode(8))); // the SET of 8 in flight: allowed
        r.check(&state, &observed, 3, f2, Some(&encode(7)));
        assert_eq!(observed[3].load(Ordering::Acquire), 8);
        let f = Floor::at(&state, &observed, 3);
        r.check(&state, &observed, 3, f, Some(&encode(7))); // started after 8 was read
        state.committed[3].store(8, Ordering::Release);
        observed[3].store(0, Ordering::Release);
        let f = Floor::at(&state, &observed, 3);
        r.check(&state, &observed, 3, f, Some(&encode(7))); // started after the SET of 8 completed
        assert_eq!(
            (
                r.checks.reads,
                r.checks.backwards,
                r.checks.behind_own_writes
            ),
            (4, 1, 1)
        );
    }

    #[test]
    #[should_panic(expected = "was never written")]
    fn reader_rejects_a_value_never_written() {
        let state = State::new();
        let observed = [const { AtomicU64::new(0) }; KEYS];
        let f = Floor::at(&state, &observed, 0);
        Reader::default().check(&state, &observed, 0, f, Some(&encode(3)));
    }

    #[test]
    #[should_panic(expected = "no value of this run")]
    fn reader_rejects_nil() {
        let state = State::new();
        let observed = [const { AtomicU64::new(0) }; KEYS];
        let f = Floor::at(&state, &observed, 0);
        Reader::default().check(&state, &observed, 0, f, None);
    }
}
