//! What this test process holds, read from `/proc`: its threads (by id and name), its open
//! descriptors, its io_uring ring mappings and the CPU time its threads used; and a bounded
//! wait for a condition on them.

use std::collections::HashSet;
use std::time::{Duration, Instant};

/// The thread of `ringdis::timer` (`next_message` timeouts, pool checkouts): it serves no
/// connection and belongs to no engine.
pub const TIMER_THREAD: &str = "ringdis-timer";

/// The ids of this process's threads (`/proc/self/task`).
pub fn thread_ids() -> HashSet<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// How many threads this process runs.
pub fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .count()
}

/// The name of thread `tid` (its `comm`), or `""` once it has ended.
pub fn thread_name(tid: &str) -> String {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The names of this process's threads, read in one pass (`""` for one that ended meanwhile).
pub fn thread_names() -> Vec<String> {
    thread_ids().iter().map(|t| thread_name(t)).collect()
}

/// How many threads of this process have a name `named` accepts.
pub fn threads_named(named: impl Fn(&str) -> bool) -> usize {
    thread_names().iter().filter(|n| named(n)).count()
}

/// How many descriptors this process has open (`/proc/self/fd`).
pub fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// How many io_uring rings this process has mapped (`/proc/self/maps` lines naming io_uring).
pub fn io_uring_maps() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .expect("read /proc/self/maps")
        .lines()
        .filter(|l| l.contains("io_uring"))
        .count()
}

/// CPU ticks (user + system) thread `tid` of this process has used (0 once it has ended).
pub fn thread_ticks(tid: &str) -> u64 {
    ticks(&format!("/proc/self/task/{tid}/stat"))
}

/// CPU ticks (user + system) the calling thread has used.
pub fn own_ticks() -> u64 {
    ticks("/proc/thread-self/stat")
}

/// The utime + stime fields of a `stat` file (0 if it cannot be read).
fn ticks(stat: &str) -> u64 {
    let stat = std::fs::read_to_string(stat).unwrap_or_default();
    // The command name, in parentheses, may hold spaces: count fields after its `)`.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// Waits until `cond` holds, for at most `limit`, yielding the thread between polls (never
/// sleeping on it); panics naming `what` otherwise. It blocks the calling thread: what it waits
/// for must progress on other threads.
#[track_caller]
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::yield_now();
    }
}
