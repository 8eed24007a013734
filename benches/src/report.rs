//! Medians and the markdown table.

use crate::workloads::{Sample, Workload};

/// The median of `xs` (mean of the middle two for an even count).
pub fn median(xs: &mut [f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// What a row is, for choosing the baseline of the ratios.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// ringdis itself.
    Ours,
    /// Another Rust client (the "best peer" is the fastest of these).
    Peer,
    /// The C reference (`redis-benchmark`).
    Reference,
}

/// What one client did in one workload: samples from every round, plus the syscall window.
pub struct Row {
    pub client: String,
    pub kind: Kind,
    pub samples: Vec<Sample>,
    pub syscalls_per_op: Option<f64>,
}

impl Row {
    pub fn ops_per_sec(&self) -> f64 {
        median(
            &mut self
                .samples
                .iter()
                .map(Sample::ops_per_sec)
                .collect::<Vec<_>>(),
        )
    }

    pub fn cpu_us_per_op(&self) -> f64 {
        median(
            &mut self
                .samples
                .iter()
                .map(Sample::cpu_us_per_op)
                .collect::<Vec<_>>(),
        )
    }

    fn median_of(&self, f: fn(&Sample) -> f64) -> f64 {
        median(&mut self.samples.iter().map(f).collect::<Vec<_>>())
    }

    /// The most OS threads the client added in any round (workload 7), if counted.
    pub fn threads_added(&self) -> Option<usize> {
        self.samples.iter().filter_map(|s| s.threads_added).max()
    }

    pub fn spread(&self) -> (f64, f64) {
        let v: Vec<f64> = self.samples.iter().map(Sample::ops_per_sec).collect();
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(0.0, f64::max);
        (lo, hi)
    }
}

/// The median over rounds of `row`'s ops/s divided by `base`'s in the same round: paired, so
/// a round where the whole machine was slower (other load) cancels out.
pub fn paired_ratio(row: &Row, base: &Row, f: fn(&Sample) -> f64) -> f64 {
    let mut r: Vec<f64> = row
        .samples
        .iter()
        .zip(&base.samples)
        .map(|(a, b)| f(a) / f(b))
        .collect();
    median(&mut r)
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}"))
}

/// One table per workload: every client's medians, and each client's ratio to the baseline
/// (the first row).
pub fn table(workload: Workload, rows: &[Row]) -> String {
    let mut out = format!(
        "\n### {}\n\n| client | median ops/s | min–max ops/s | CPU µs/op | syscalls/op | ops/s vs {} (paired) | CPU/op vs {} (paired) |\n|---|---:|---:|---:|---:|---:|---:|\n",
        workload.label(),
        rows[0].client,
        rows[0].client
    );
    let base = &rows[0];
    for r in rows {
        let (lo, hi) = r.spread();
        out.push_str(&format!(
            "| {} | {:.0} | {:.0}–{:.0} | {:.2} | {} | {:.2}× | {:.2}× |\n",
            r.client,
            r.ops_per_sec(),
            lo,
            hi,
            r.cpu_us_per_op(),
            fmt_opt(r.syscalls_per_op),
            paired_ratio(r, base, Sample::ops_per_sec),
            paired_ratio(r, base, Sample::cpu_us_per_op),
        ));
    }
    out
}

/// The fastest peer (by median ops/s) among `rows`, if any ran.
pub fn best_peer(rows: &[Row]) -> Option<&Row> {
    rows.iter()
        .filter(|r| r.kind == Kind::Peer && !r.samples.is_empty())
        .max_by(|a, b| a.ops_per_sec().total_cmp(&b.ops_per_sec()))
}

/// The reference row (redis-benchmark), if it ran on this workload.
pub fn reference(rows: &[Row]) -> Option<&Row> {
    rows.iter()
        .find(|r| r.kind == Kind::Reference && !r.samples.is_empty())
}

/// The peer comparison table of one workload: medians over rounds, and every row's ratios to
/// the best peer, paired by round (and the OS threads each client added, where counted). Where
/// redis-benchmark ran, a line gives ringdis against it.
pub fn peer_table(number: usize, workload: Workload, rows: &[Row]) -> String {
    peer_table_titled(&format!("{number}. {}", workload.label()), rows)
}

/// [`peer_table`] under any title (the cluster workloads').
pub fn peer_table_titled(title: &str, rows: &[Row]) -> String {
    let best = best_peer(rows);
    let best_name = best.map_or("—".to_owned(), |b| b.client.clone());
    let threads = rows.iter().any(|r| r.threads_added().is_some());
    let mut out = format!(
        "\n### {title}\n\n| client | median ops/s | min–max ops/s | p50 µs | p99 µs | CPU µs/op | ops/s vs best peer | CPU/op vs best peer |{}\n|---|---:|---:|---:|---:|---:|---:|---:|{}\n",
        if threads { " OS threads added |" } else { "" },
        if threads { "---:|" } else { "" },
    );
    for r in rows.iter().filter(|r| !r.samples.is_empty()) {
        let (lo, hi) = r.spread();
        let (ops_ratio, cpu_ratio) = best.map_or((f64::NAN, f64::NAN), |b| {
            (
                paired_ratio(r, b, Sample::ops_per_sec),
                paired_ratio(r, b, Sample::cpu_us_per_op),
            )
        });
        out.push_str(&format!(
            "| {} | {:.0} | {:.0}–{:.0} | {:.1} | {:.1} | {:.2} | {:.2}× | {:.2}× |",
            r.client,
            r.ops_per_sec(),
            lo,
            hi,
            r.median_of(Sample::p50),
            r.median_of(Sample::p99),
            r.cpu_us_per_op(),
            ops_ratio,
            cpu_ratio,
        ));
        if threads {
            out.push_str(&format!(
                " {} |",
                r.threads_added()
                    .map_or("n/a".to_owned(), |n| n.to_string())
            ));
        }
        out.push('\n');
    }
    out.push_str(&format!("\nBest peer: {best_name}."));
    if let Some(reference) = reference(rows) {
        for r in rows
            .iter()
            .filter(|r| r.kind == Kind::Ours && !r.samples.is_empty())
        {
            out.push_str(&format!(
                " {} vs {}: {:.2}× ops/s, {:.2}× CPU/op.",
                r.client,
                reference.client,
                paired_ratio(r, reference, Sample::ops_per_sec),
                paired_ratio(r, reference, Sample::cpu_us_per_op),
            ));
        }
    }
    out.push('\n');
    out
}

/// ringdis's best transport at one workload: `(name, ops/s ratio, CPU/op ratio)` against `base`.
pub fn ours_vs(rows: &[Row], base: &Row) -> Option<(String, f64, f64)> {
    rows.iter()
        .filter(|r| r.kind == Kind::Ours && !r.samples.is_empty())
        .map(|r| {
            (
                r.client.clone(),
                paired_ratio(r, base, Sample::ops_per_sec),
                paired_ratio(r, base, Sample::cpu_us_per_op),
            )
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Where the targets of issue #12 stand, from the tables of `ALL`'s workloads (indexed 0..7):
/// on the current-thread runtime its per-workload targets, on the multi-thread one today's
/// ratios at 64 and 1024 tasks (1.42× and 1.54×) as floors. Each line names ringdis's best
/// engine at that workload.
pub fn goals(current_thread: bool, tables: &[(Workload, Vec<Row>)]) -> String {
    let mark = |ok: bool| if ok { "met" } else { "**missed**" };
    let mut out = String::from("\n### Targets (issue #12)\n\n");
    for (i, (_, rows)) in tables.iter().enumerate() {
        let number = i + 1;
        // (minimum ops/s ratio, maximum CPU/op ratio) against the best peer.
        let target = match (current_thread, number) {
            (true, 1 | 5 | 6) => Some((1.0, None)),
            (true, 2) => Some((1.3, Some(0.8))),
            (true, 3) => Some((1.3, None)),
            (false, 2) => Some((1.42, None)),
            (false, 3) => Some((1.54, None)),
            _ => None,
        };
        if let Some((min_ops, max_cpu)) = target {
            let line = best_peer(rows).and_then(|b| {
                let (who, ops, cpu) = ours_vs(rows, b)?;
                let cpu_goal = max_cpu.map_or(String::new(), |m| format!(" at ≤ {m}× its CPU/op"));
                Some(format!(
                    "- Workload {number}: ≥ {min_ops}× best peer's ops/s{cpu_goal} — {who}: {ops:.2}× ops/s, {cpu:.2}× CPU/op vs {}: {}\n",
                    b.client,
                    mark(ops >= min_ops && max_cpu.is_none_or(|m| cpu <= m))
                ))
            });
            out.push_str(&line.unwrap_or_default());
        }
        if current_thread && number == 4 {
            let redis_rs = rows
                .iter()
                .find(|r| r.client == "redis-rs/multiplexed" && !r.samples.is_empty());
            if let Some((who, ops, _)) = redis_rs.and_then(|b| ours_vs(rows, b)) {
                out.push_str(&format!(
                    "- Workload 4: ≥ 1.1× redis-rs — {who}: {ops:.2}×: {}\n",
                    mark(ops >= 1.1)
                ));
            }
            if let Some((who, ops, _)) = reference(rows).and_then(|b| ours_vs(rows, b)) {
                out.push_str(&format!(
                    "- Workload 4: ≥ 0.85× `redis-benchmark -P 64` — {who}: {ops:.2}×: {}\n",
                    mark(ops >= 0.85)
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn row(client: &str, kind: Kind, ops: &[u64]) -> Row {
        Row {
            client: client.to_owned(),
            kind,
            samples: ops
                .iter()
                .map(|&n| Sample {
                    ops: n,
                    wall: Duration::from_secs(1),
                    cpu: Duration::from_millis(500),
                    p50_us: 10.0,
                    p99_us: 20.0,
                    threads: 3,
                    threads_added: None,
                })
                .collect(),
            syscalls_per_op: None,
        }
    }

    #[test]
    fn median_and_paired_ratio() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
        // Round 2 is slow for both: paired ratios stay 2×.
        let a = row("a", Kind::Ours, &[200, 100, 200]);
        let b = row("b", Kind::Peer, &[100, 50, 100]);
        assert_eq!(paired_ratio(&a, &b, Sample::ops_per_sec), 2.0);
    }

    #[test]
    fn best_peer_ignores_ours_and_reference() {
        let rows = vec![
            row("ours", Kind::Ours, &[300]),
            row("slow", Kind::Peer, &[100]),
            row("fast", Kind::Peer, &[200]),
            row("c", Kind::Reference, &[1000]),
        ];
        assert_eq!(best_peer(&rows).unwrap().client, "fast");
        let t = peer_table(1, Workload::Sequential, &rows);
        assert!(
            t.contains("| ours | 300 | 300–300 | 10.0 | 20.0 | 1666.67 | 1.50× | 0.67× |"),
            "{t}"
        );
        assert!(t.contains("ours vs c: 0.30× ops/s"), "{t}");
        assert!(!t.contains("threads"), "{t}");
    }

    #[test]
    fn threads_column_where_counted() {
        let mut ours = row("ours", Kind::Ours, &[300, 300]);
        ours.samples[0].threads_added = Some(64);
        ours.samples[1].threads_added = Some(63);
        let mut peer = row("peer", Kind::Peer, &[100, 100]);
        for s in &mut peer.samples {
            s.threads_added = Some(0);
        }
        let t = peer_table(7, Workload::ALL[6], &[ours, peer]);
        assert!(t.contains("| OS threads added |"), "{t}");
        assert!(t.contains("| 3.00× | 0.33× | 64 |"), "{t}");
        assert!(t.contains("| 1.00× | 1.00× | 0 |"), "{t}");
    }

    #[test]
    fn targets_of_issue_12() {
        let tables: Vec<(Workload, Vec<Row>)> = Workload::ALL
            .iter()
            .map(|&w| {
                (
                    w,
                    vec![
                        row("ringdis/task", Kind::Ours, &[120]),
                        row("redis-rs/multiplexed", Kind::Peer, &[100]),
                    ],
                )
            })
            .collect();
        let current = goals(true, &tables);
        assert!(
            current.contains("- Workload 1: ≥ 1× best peer's ops/s — ringdis/task: 1.20× ops/s, 0.83× CPU/op vs redis-rs/multiplexed: met"),
            "{current}"
        );
        assert!(current.contains("- Workload 2: ≥ 1.3× best peer's ops/s at ≤ 0.8× its CPU/op — ringdis/task: 1.20× ops/s, 0.83× CPU/op vs redis-rs/multiplexed: **missed**"), "{current}");
        assert!(
            current.contains("- Workload 4: ≥ 1.1× redis-rs — ringdis/task: 1.20×: met"),
            "{current}"
        );
        assert!(!current.contains("Workload 7"), "{current}");
        let multi = goals(false, &tables);
        assert!(
            multi.contains("- Workload 3: ≥ 1.54× best peer's ops/s — ringdis/task: 1.20× ops/s, 0.83× CPU/op vs redis-rs/multiplexed: **missed**"),
            "{multi}"
        );
        assert!(!multi.contains("Workload 1"), "{multi}");
    }
}
