//! Process CPU time (getrusage) and system-call counts (perf, when it can attach).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
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
