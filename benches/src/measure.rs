//! Process CPU time (getrusage), OS thread counts (`/proc/self/task`), latency histograms and
//! system-call counts (perf, when it can attach).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// User + system CPU time of the whole process (every thread) so far.
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the zeroed struct we pass; rusage is plain old data.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// How many OS threads this process has now (the entries of `/proc/self/task`); 0 where
/// `/proc` is not mounted.
pub fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// `perf stat -e raw_syscalls:sys_enter` attached to this process, started disabled and switched
/// on and off around one measured window through its control FIFOs; [`Perf::finish`] reads the
/// count.
pub struct Perf {
    child: Child,
    ctl: std::fs::File,
    ack: BufReader<std::fs::File>,
    dir: PathBuf,
}

impl Perf {
    /// Attaches to this process (threads that exist now). `None` when perf is missing or
    /// cannot count syscall tracepoints here.
    pub fn attach() -> Option<Perf> {
        let dir = std::env::temp_dir().join(format!("ringdis-bench-perf-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ok()?;
        let (ctl_path, ack_path) = (dir.join("ctl"), dir.join("ack"));
        for p in [&ctl_path, &ack_path] {
            let c = std::ffi::CString::new(p.to_str()?).ok()?;
            // SAFETY: mkfifo with a NUL-terminated path that outlives the call.
            if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
                return None;
            }
        }
        let child = Command::new("perf")
            .args(["stat", "-x,", "-e", "raw_syscalls:sys_enter", "-D", "-1"])
            .arg("--control")
            .arg(format!(
                "fifo:{},{}",
                ctl_path.display(),
                ack_path.display()
            ))
            .arg("-p")
            .arg(std::process::id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        let ctl = std::fs::OpenOptions::new()
            .write(true)
            .open(&ctl_path)
            .ok()?;
        let ack = BufReader::new(std::fs::File::open(&ack_path).ok()?);
        let mut perf = Perf {
            child,
            ctl,
            ack,
            dir,
        };
        // A round trip through the control FIFO proves it is attached and listening.
        perf.command("disable")?;
        Some(perf)
    }

    fn command(&mut self, cmd: &str) -> Option<()> {
        writeln!(self.ctl, "{cmd}").ok()?;
        self.ctl.flush().ok()?;
        let mut line = String::new();
        self.ack.read_line(&mut line).ok()?;
        line.starts_with("ack").then_some(())
    }

    /// Starts counting.
    pub fn enable(&mut self) {
        let _ = self.command("enable");
    }

    /// Stops counting (the count is read by [`Perf::finish`]).
    pub fn disable(&mut self) {
        let _ = self.command("disable");
    }

    /// Stops perf and returns the total it counted.
    pub fn finish(mut self) -> Option<u64> {
        // SAFETY: SIGINT to the perf child we spawned, whose id we hold.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGINT);
        }
        let mut err = String::new();
        self.child.stderr.take()?.read_to_string(&mut err).ok()?;
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        parse_count(&err)
    }
}

fn parse_count(out: &str) -> Option<u64> {
    out.lines()
        .rev()
        .filter(|l| l.contains("raw_syscalls:sys_enter"))
        .find_map(|l| l.split(',').next()?.trim().parse::<u64>().ok())
}

/// User + system CPU time of this process's waited-for children so far (`RUSAGE_CHILDREN`):
/// the delta around one `wait` of a child is that child's CPU.
pub fn children_cpu_time() -> Duration {
    // SAFETY: as in `cpu_time`.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Sub-buckets per power of two: values are kept to within 1/32 (~3%).
const SUB: u64 = 32;
/// Enough for any u64: the top doubling (2^63..) ends at bucket 59·32 + 31.
const BUCKETS: usize = (60 * SUB) as usize;

/// A latency histogram in nanoseconds, log-linear (exact below 64 ns, then 32 buckets per
/// doubling), shared by the tasks of one window: one uncontended atomic add per call.
pub struct Histogram {
    counts: Vec<AtomicU64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn index(ns: u64) -> usize {
        if ns < 2 * SUB {
            ns as usize
        } else {
            let e = 63 - ns.leading_zeros() as u64; // ≥ 6
            let sub = (ns >> (e - 5)) & (SUB - 1);
            ((e - 5) * SUB + SUB + sub) as usize
        }
    }

    /// The smallest value of bucket `i`.
    fn lower(i: usize) -> u64 {
        let i = i as u64;
        if i < 2 * SUB {
            i
        } else {
            let e = (i - SUB) / SUB + 5;
            (SUB + i % SUB) << (e - 5)
        }
    }

    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.counts[Self::index(ns).min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `other`'s counts to these (a task's own histogram into the window's).
    pub fn merge(&self, other: &Histogram) {
        for (a, b) in self.counts.iter().zip(&other.counts) {
            let n = b.load(Ordering::Relaxed);
            if n > 0 {
                a.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// The value at quantile `q` (0..=1): the midpoint of its bucket; zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, &c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let lo = Self::lower(i);
                let hi = if i + 1 < BUCKETS {
                    Self::lower(i + 1)
                } else {
                    lo
                };
                return Duration::from_nanos((lo + hi) / 2);
            }
        }
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        for i in 0..BUCKETS - 1 {
            assert_eq!(Histogram::index(Histogram::lower(i)), i);
            assert_eq!(Histogram::index(Histogram::lower(i + 1) - 1), i);
        }
        assert_eq!(Histogram::index(u64::MAX), BUCKETS - 1);
        for ns in [1u64, 63, 64, 1000, 12_345, 987_654_321] {
            let lo = Histogram::lower(Histogram::index(ns));
            assert!(lo <= ns && ns - lo <= ns / 32, "{ns} in bucket from {lo}");
        }
    }

    #[test]
    fn quantiles() {
        let h = Histogram::new();
        for us in 1..=100u64 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.quantile(0.5).as_secs_f64() * 1e6;
        let p99 = h.quantile(0.99).as_secs_f64() * 1e6;
        assert!((p50 - 50.0).abs() < 2.0, "{p50}");
        assert!((p99 - 99.0).abs() < 3.5, "{p99}");
        assert_eq!(Histogram::new().quantile(0.5), Duration::ZERO);
        let (a, b) = (Histogram::new(), Histogram::new());
        a.record(Duration::from_micros(10));
        b.record(Duration::from_micros(1000));
        b.record(Duration::from_micros(1000));
        a.merge(&b);
        assert!(a.quantile(0.5) > Duration::from_micros(900));
        assert!(a.quantile(0.3) < Duration::from_micros(11));
    }

    #[test]
    fn perf_count() {
        let out = "# started\n12345,,raw_syscalls:sys_enter,100.00,,\n";
        assert_eq!(parse_count(out), Some(12345));
    }
}
