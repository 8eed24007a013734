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

/// What one client did in one workload: samples from every round, plus the syscall window.
pub struct Row {
    pub client: String,
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
