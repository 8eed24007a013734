//! A timer for the few waits users make that are not a command's (a subscriber's
//! `next_message` timeout, a pool checkout) and for the pool's idle sweep: one lazily started
//! thread serves them all, so nothing needs an async runtime. Command and connect timeouts run in
//! the drivers instead.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The longest wait ringdis schedules: 100 years. A longer duration given by the user
/// (`Duration::MAX` for "no limit", a block time of `1e300` seconds) is read as this, so that
/// adding it to an [`Instant`] never overflows (which panics).
pub(crate) const LONGEST_WAIT: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// `d`, at most [`LONGEST_WAIT`].
pub(crate) fn bounded(d: Duration) -> Duration {
    d.min(LONGEST_WAIT)
}
use tokio::sync::oneshot;

/// What happens when an entry is due.
enum Wake {
    /// Resolve a sleep.
    Signal(oneshot::Sender<()>),
    /// Run a short job on the timer thread.
    Call(Box<dyn FnOnce() + Send>),
}

impl Wake {
    /// Nobody waits for it any more.
    fn is_stale(&self) -> bool {
        match self {
            Wake::Signal(tx) => tx.is_closed(),
            Wake::Call(_) => false,
        }
    }
}

struct Entry {
    at: Instant,
    seq: u64,
    wake: Wake,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Default)]
struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    /// How many entries the last sweep kept.
    kept: usize,
}

impl Timers {
    /// Drops the sleeps nobody waits for any more once the heap has doubled since the last
    /// sweep: abandoned sleeps (a checkout that got a client at once) never hold more than the
    /// live ones, at an amortized constant cost per timer.
    fn sweep_if_grown(&mut self) {
        if self.heap.len() <= 64.max(2 * self.kept) {
            return;
        }
        let heap = std::mem::take(&mut self.heap);
        self.heap = heap
            .into_iter()
            .filter(|Reverse(e)| !e.wake.is_stale())
            .collect();
        self.kept = self.heap.len();
    }
}

struct Wheel {
    timers: Mutex<Timers>,
    changed: Condvar,
}

fn wheel() -> &'static Wheel {
    static WHEEL: OnceLock<Wheel> = OnceLock::new();
    WHEEL.get_or_init(|| {
        // If the thread cannot be spawned, sleeps fire at once (via the dropped sender): a
        // timeout then ends early instead of never.
        let _ = std::thread::Builder::new()
            .name("ringdis-timer".to_owned())
            .spawn(run);
        Wheel {
            timers: Mutex::new(Timers::default()),
            changed: Condvar::new(),
        }
    })
}

fn run() {
    let w = wheel();
    let mut timers = w.timers.lock().unwrap_or_else(|p| p.into_inner());
    let mut jobs: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
    loop {
        let now = Instant::now();
        while timers.heap.peek().is_some_and(|Reverse(e)| e.at <= now) {
            if let Some(Reverse(e)) = timers.heap.pop() {
                match e.wake {
                    Wake::Signal(tx) => {
                        let _ = tx.send(());
                    }
                    Wake::Call(job) => jobs.push(job),
                }
            }
        }
        if !jobs.is_empty() {
            // Jobs run without the lock: they may set timers themselves. A panicking one is
            // contained, so the thread keeps serving everyone else.
            drop(timers);
            for job in jobs.drain(..) {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
            timers = w.timers.lock().unwrap_or_else(|p| p.into_inner());
            continue;
        }
        // Fired entries leave: the bound follows the timers that are still live.
        timers.kept = timers.kept.min(timers.heap.len());
        timers.sweep_if_grown();
        timers = match timers.heap.peek().map(|Reverse(e)| e.at) {
            Some(at) => {
                let wait = at.saturating_duration_since(now);
                w.changed
                    .wait_timeout(timers, wait)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0)
            }
            None => w.changed.wait(timers).unwrap_or_else(|p| p.into_inner()),
        };
    }
}

/// Resolves at `at` (or just after).
pub(crate) fn sleep_until(at: Instant) -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    add(at, Wake::Signal(tx));
    rx
}

/// Runs `job` on the timer thread at `at` (or just after). It must be short and never block:
/// every other timer waits for it. (If the timer thread could not be started it never runs, so
/// a job may only ever save work that something else would also do.)
pub(crate) fn call_at(at: Instant, job: impl FnOnce() + Send + 'static) {
    add(at, Wake::Call(Box::new(job)));
}

fn add(at: Instant, wake: Wake) {
    let w = wheel();
    let mut timers = w.timers.lock().unwrap_or_else(|p| p.into_inner());
    timers.seq += 1;
    let seq = timers.seq;
    let earliest = timers.heap.peek().is_none_or(|Reverse(e)| at < e.at);
    timers.heap.push(Reverse(Entry { at, seq, wake }));
    timers.sweep_if_grown();
    drop(timers);
    if earliest {
        w.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sleeps_fire_in_order_and_not_early() {
        let t0 = Instant::now();
        let late = sleep_until(t0 + Duration::from_millis(60));
        let early = sleep_until(t0 + Duration::from_millis(20));
        futures::executor::block_on(early).unwrap();
        let e = t0.elapsed();
        assert!(e >= Duration::from_millis(20), "{e:?}");
        futures::executor::block_on(late).unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(60));
    }

    #[test]
    fn jobs_run_when_due_and_may_set_timers() {
        let t0 = Instant::now();
        let (tx, rx) = std::sync::mpsc::channel();
        call_at(t0 + Duration::from_millis(20), move || {
            let ran = Instant::now();
            // A job that sets another timer must not deadlock the wheel.
            call_at(ran + Duration::from_millis(10), move || {
                tx.send((ran, Instant::now())).unwrap_or(())
            });
        });
        let (first, second) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(first >= t0 + Duration::from_millis(20));
        assert!(second >= first + Duration::from_millis(10));
    }

    /// A sleep given up before it is due (a pool checkout that got a client at once, a
    /// `next_message` that got a message) must not stay queued until its deadline: a hot loop
    /// of `pool.get()` with a 60 s checkout timeout grew the process by 117 MiB per million.
    #[test]
    fn abandoned_sleeps_do_not_pile_up() {
        let far = Instant::now() + Duration::from_secs(3600);
        for _ in 0..100_000 {
            drop(sleep_until(far));
        }
        let held = wheel()
            .timers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .heap
            .len();
        assert!(
            held < 10_000,
            "{held} timers held for 100000 abandoned sleeps"
        );
    }
}
