//! The C reference: Debian's `redis-benchmark`, run as a child process on the workloads it can
//! express with one connection (`-c 1`): sequential GET and a pipeline of 64 SETs (`-P 64`). Its
//! ops/s and latencies come from its `--csv` line; its CPU is the child's rusage (the delta of
//! `RUSAGE_CHILDREN` around its `wait`, so it includes its start-up, a few ms).

use crate::measure::children_cpu_time;
use crate::workloads::{Sample, Workload};
use std::process::Command;
use std::time::Duration;

/// What `redis-benchmark` reported for one test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CsvLine {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Parses `redis-benchmark --csv` output: a header naming the columns, then one line per test.
pub fn parse_csv(out: &str) -> Option<CsvLine> {
    let mut lines = out
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('"'))
        .map(|l| {
            l.split(',')
                .map(|f| f.trim_matches('"').to_owned())
                .collect::<Vec<String>>()
        });
    let header = lines.next()?;
    let col = |name: &str| header.iter().position(|h| h == name);
    let (rps, p50, p99) = (col("rps")?, col("p50_latency_ms")?, col("p99_latency_ms")?);
    let row = lines.next()?;
    let num = |i: usize| row.get(i)?.parse::<f64>().ok();
    Some(CsvLine {
        rps: num(rps)?,
        p50_ms: num(p50)?,
        p99_ms: num(p99)?,
    })
}

/// The redis-benchmark arguments for `workload`, if it can express it on one connection.
pub fn args(workload: Workload) -> Option<Vec<&'static str>> {
    match workload {
        Workload::Sequential => Some(vec!["-t", "get", "-c", "1", "-d", "32", "-r", "1000"]),
        Workload::SetPipeline(64) => Some(vec![
            "-t", "set", "-c", "1", "-P", "64", "-d", "32", "-r", "1000",
        ]),
        _ => None,
    }
}

/// One run of redis-benchmark against `port`, sized to last about `window` at `expected_rps`.
/// Returns the sample and the rate it reported (to size the next run).
pub fn run(port: u16, workload: Workload, window: Duration, expected_rps: f64) -> Option<Sample> {
    let args = args(workload)?;
    let n = ((expected_rps * window.as_secs_f64()) as u64).max(2000) / 64 * 64;
    let before = children_cpu_time();
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--csv"])
        .args(["-n", &n.to_string()])
        .args(args)
        .output()
        .ok()?;
    let cpu = children_cpu_time().saturating_sub(before);
    if !out.status.success() {
        eprintln!(
            "redis-benchmark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let line = parse_csv(&String::from_utf8_lossy(&out.stdout))?;
    Some(Sample {
        ops: n,
        wall: Duration::from_secs_f64(n as f64 / line.rps),
        cpu,
        p50_us: line.p50_ms * 1e3,
        p99_us: line.p99_ms * 1e3,
        threads: 0,
        threads_added: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_redis_benchmark_csv() {
        let out = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
                   \"SET\",\"470588.22\",\"0.119\",\"0.088\",\"0.119\",\"0.143\",\"0.167\",\"4.207\"\n";
        assert_eq!(
            parse_csv(out),
            Some(CsvLine {
                rps: 470588.22,
                p50_ms: 0.119,
                p99_ms: 0.167
            })
        );
        assert_eq!(parse_csv("ERROR: connection refused\n"), None);
    }
}
