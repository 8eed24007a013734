//! A timer for the few waits users make that are not a command's (a subscriber's
//! `next_message` timeout, a pool checkout) and for the pool's idle sweep: one thread serves them
//! all, so nothing needs an async runtime. It starts with the first timer and exits once it has
//! had no live timer (one still awaited, or a job whose owner is alive) for [`IDLE`]; the next
//! timer starts it again. Command and connect timeouts run in the drivers instead.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The longest wait ringdis schedules: 100 years. A longer duration given by the user
/// (`Duration::MAX` for "no limit", a block time of `1e300` seconds) is read as this, so that
/// adding it to an [`Instant`] never overflows (which panics).
pub(crate) const LONGEST_WAIT: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// `d`, at most [`LONGEST_WAIT`].
pub(crate) fn bounded(d: Duration) -> Duration {
    d.min(LONGEST_WAIT)
}

/// How long the timer thread stays without a live timer before it exits (a new timer starts it
/// again), so that dropping every client and pool leaves no ringdis thread behind.
const IDLE: Duration = Duration::from_millis(500);

/// A job the timer thread runs when due, unless its owner is gone by then.
trait Job: Send {
    /// Its owner is gone: it would do nothing.
    fn is_stale(&self) -> bool;
    fn run(self: Box<Self>);
}

struct OwnedJob<T, F> {
    owner: Weak<T>,
    job: F,
}

impl<T: Send + Sync, F: FnOnce(Arc<T>) + Send> Job for OwnedJob<T, F> {
    fn is_stale(&self) -> bool {
        self.owner.strong_count() == 0
    }

    fn run(self: Box<Self>) {
        if let Some(owner) = self.owner.upgrade() {
            (self.job)(owner)
        }
    }
}

/// What happens when an entry is due.
enum Wake {
    /// Resolve a sleep.
    Signal(oneshot::Sender<()>),
    /// Run a short job on the timer thread.
    Call(Box<dyn Job>),
}

impl Wake {
    /// Nobody waits for it any more.
    fn is_stale(&self) -> bool {
        match self {
            Wake::Signal(tx) => tx.is_closed(),
            Wake::Call(job) => job.is_stale(),
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

struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    /// How many entries the last sweep kept.
    kept: usize,
    /// A thread serves this wheel: it looks at the heap again before it exits. Set by the `add`
    /// that starts it, cleared by the thread itself as it leaves, both under the lock, so a timer
    /// added while the thread exits is seen by the thread or starts a new one.
    running: bool,
    /// How many threads were started (so tests see the thread come and go).
    starts: u64,
}

impl Timers {
    /// Drops the sleeps nobody waits for any more once the heap has doubled since the last
    /// sweep: abandoned sleeps (a checkout that got a client at once) never hold more than the
    /// live ones, at an amortized constant cost per timer.
    fn sweep_if_grown(&mut self) -> Vec<Entry> {
        if self.heap.len() <= 64.max(2 * self.kept) {
            return Vec::new();
        }
        self.sweep()
    }

    /// Drops every stale entry now; they are returned, to be dropped without the lock.
    fn sweep(&mut self) -> Vec<Entry> {
        let (live, stale): (Vec<_>, Vec<_>) = std::mem::take(&mut self.heap)
            .into_iter()
            .partition(|Reverse(e)| !e.wake.is_stale());
        self.heap = live.into();
        self.kept = self.heap.len();
        stale.into_iter().map(|Reverse(e)| e).collect()
    }
}

/// A timer heap and the thread that serves it, started on demand and gone when idle.
struct Wheel {
    /// The thread's name.
    name: &'static str,
    /// How long the thread stays with no live timer.
    idle: Duration,
    timers: Mutex<Timers>,
    changed: Condvar,
}

/// The process-wide wheel.
static WHEEL: Wheel = Wheel::new("ringdis-timer", IDLE);

impl Wheel {
    const fn new(name: &'static str, idle: Duration) -> Wheel {
        Wheel {
            name,
            idle,
            timers: Mutex::new(Timers {
                heap: BinaryHeap::new(),
                seq: 0,
                kept: 0,
                running: false,
                starts: 0,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Timers> {
        self.timers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sleep_until(&'static self, at: Instant) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.add(at, Wake::Signal(tx));
        rx
    }

    fn call_at<T, F>(&'static self, at: Instant, owner: &Arc<T>, job: F)
    where
        T: Send + Sync + 'static,
        F: FnOnce(Arc<T>) + Send + 'static,
    {
        let owner = Arc::downgrade(owner);
        self.add(at, Wake::Call(Box::new(OwnedJob { owner, job })));
    }

    fn add(&'static self, at: Instant, wake: Wake) {
        let mut timers = self.lock();
        timers.seq += 1;
        let seq = timers.seq;
        let earliest = timers.heap.peek().is_none_or(|Reverse(e)| at < e.at);
        timers.heap.push(Reverse(Entry { at, seq, wake }));
        let stale = timers.sweep_if_grown();
        let start = !timers.running;
        if start {
            timers.running = true;
            timers.starts += 1;
        }
        drop(timers);
        drop(stale);
        if start {
            self.start();
        } else if earliest {
            self.changed.notify_one();
        }
    }

    /// Starts the thread (`running` is already set).
    fn start(&'static self) {
        let spawned = std::thread::Builder::new()
            .name(self.name.to_owned())
            .spawn(move || self.run());
        if spawned.is_err() {
            // No thread: every sleep fires at once (via its dropped sender), so a timeout ends
            // early instead of never, and jobs never run. The next timer tries again.
            let dropped = {
                let mut timers = self.lock();
                timers.running = false;
                timers.kept = 0;
                std::mem::take(&mut timers.heap)
            };
            drop(dropped);
        }
    }

    fn run(&'static self) {
        let mut timers = self.lock();
        let mut jobs: Vec<Box<dyn Job>> = Vec::new();
        let mut signals: Vec<oneshot::Sender<()>> = Vec::new();
        // The idle check runs when nothing fired for `idle`.
        let mut check_at = Instant::now() + self.idle;
        loop {
            let now = Instant::now();
            let mut fired = false;
            while timers.heap.peek().is_some_and(|Reverse(e)| e.at <= now) {
                if let Some(Reverse(e)) = timers.heap.pop() {
                    fired = true;
                    match e.wake {
                        Wake::Signal(tx) => signals.push(tx),
                        Wake::Call(job) => jobs.push(job),
                    }
                }
            }
            if fired {
                check_at = now + self.idle;
            }
            if !jobs.is_empty() || !signals.is_empty() {
                // Sleeps are woken and jobs run without the lock: both may set timers
                // themselves (a waker may poll its task right here: a cluster client's
                // detached futures do). A panicking job is contained, so the thread keeps
                // serving everyone else.
                drop(timers);
                for tx in signals.drain(..) {
                    let _ = tx.send(());
                }
                for job in jobs.drain(..) {
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run()));
                }
                timers = self.lock();
                continue;
            }
            // Fired entries leave: the bound follows the timers that are still live.
            timers.kept = timers.kept.min(timers.heap.len());
            let mut stale = timers.sweep_if_grown();
            if now >= check_at {
                stale.extend(timers.sweep());
                if timers.heap.is_empty() {
                    // Under the lock: a timer added from here on starts a new thread.
                    timers.running = false;
                    drop(timers);
                    return;
                }
                check_at = now + self.idle;
            }
            if !stale.is_empty() {
                drop(timers);
                drop(stale);
                timers = self.lock();
                continue;
            }
            let until = timers
                .heap
                .peek()
                .map_or(check_at, |Reverse(e)| e.at.min(check_at));
            timers = self
                .changed
                .wait_timeout(timers, until.saturating_duration_since(now))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

/// Resolves at `at` (or just after).
pub(crate) fn sleep_until(at: Instant) -> oneshot::Receiver<()> {
    WHEEL.sleep_until(at)
}

/// Runs `job` on the timer thread at `at` (or just after), unless every `Arc` of `owner` is gone
/// by then: it is then dropped unrun (and keeps the thread alive no longer). It must be short
/// and never block: every other timer waits for it. (If the timer thread could not be started
/// it never runs, so a job may only ever save work that something else would also do.)
pub(crate) fn call_at<T, F>(at: Instant, owner: &Arc<T>, job: F)
where
    T: Send + Sync + 'static,
    F: FnOnce(Arc<T>) + Send + 'static,
{
    WHEEL.call_at(at, owner, job)
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
        let owner = Arc::new(());
        let (tx, rx) = std::sync::mpsc::channel();
        call_at(t0 + Duration::from_millis(20), &owner, move |owner| {
            let ran = Instant::now();
            // A job that sets another timer must not deadlock the wheel.
            call_at(ran + Duration::from_millis(10), &owner, move |_| {
                tx.send((ran, Instant::now())).unwrap_or(())
            });
        });
        let (first, second) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(first >= t0 + Duration::from_millis(20));
        assert!(second >= first + Duration::from_millis(10));
    }

    #[test]
    fn a_job_whose_owner_is_gone_does_not_run() {
        let t0 = Instant::now();
        let (tx, rx) = std::sync::mpsc::channel();
        let gone = Arc::new(());
        let kept = Arc::new(());
        let tx2 = tx.clone();
        call_at(t0 + Duration::from_millis(10), &gone, move |_| {
            tx2.send("gone").unwrap_or(())
        });
        drop(gone);
        // Later than the other: once it ran, the other was due and dropped unrun.
        call_at(t0 + Duration::from_millis(30), &kept, move |_| {
            tx.send("kept").unwrap_or(())
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok("kept"));
        // Every sender is gone: the dropped job's with it, unrun.
        assert!(rx.recv_timeout(Duration::from_secs(10)).is_err());
    }

    /// How many threads of this process carry `name` (read from `/proc`).
    #[cfg(target_os = "linux")]
    fn threads_named(name: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim_end() == name)
            .count()
    }

    /// Waits (bounded) until `name` has `n` threads.
    #[cfg(target_os = "linux")]
    fn wait_for_threads(name: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while threads_named(name) != n {
            assert!(Instant::now() < deadline, "{name} never had {n} threads");
            std::thread::yield_now();
        }
    }

    /// Runs `job` on `wheel` at `at` and waits (bounded) until it ran.
    fn fire(wheel: &'static Wheel, at: Instant) {
        let owner = Arc::new(());
        let (tx, rx) = std::sync::mpsc::channel();
        wheel.call_at(at, &owner, move |_| tx.send(()).unwrap_or(()));
        let fired = rx.recv_timeout(Duration::from_secs(20));
        assert!(fired.is_ok(), "a timer never fired");
    }

    /// A wheel of its own per test (the process-wide one is shared with every other test).
    fn test_wheel(name: &'static str, idle: Duration) -> &'static Wheel {
        Box::leak(Box::new(Wheel::new(name, idle)))
    }

    /// A sleep's waker that sets a timer while it is woken (a task polled on the waking
    /// thread, as a cluster client's detached futures are) gets it: the timer thread wakes
    /// sleeps without holding its lock.
    #[test]
    fn a_wake_may_set_another_timer() {
        struct Again {
            wheel: &'static Wheel,
            next: std::sync::Mutex<Option<std::sync::mpsc::Sender<oneshot::Receiver<()>>>>,
        }
        impl std::task::Wake for Again {
            fn wake(self: Arc<Self>) {
                let next = self.wheel.sleep_until(Instant::now());
                if let Some(tx) = self.next.lock().unwrap().take() {
                    let _ = tx.send(next);
                }
            }
        }
        let wheel = test_wheel("rdtimer-rewake", Duration::from_secs(5));
        let (tx, rx) = std::sync::mpsc::channel();
        let waker = std::task::Waker::from(Arc::new(Again {
            wheel,
            next: std::sync::Mutex::new(Some(tx)),
        }));
        let mut first = wheel.sleep_until(Instant::now() + Duration::from_millis(5));
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(std::future::Future::poll(std::pin::Pin::new(&mut first), &mut cx).is_pending());
        let second = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the wake set its timer (no deadlock)");
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = futures::executor::block_on(second);
            let _ = done_tx.send(());
        });
        done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("and it fired");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_thread_leaves_when_idle_and_comes_back_on_demand() {
        const NAME: &str = "rdtimer-idle";
        let wheel = test_wheel(NAME, Duration::from_millis(30));
        assert_eq!(threads_named(NAME), 0);
        fire(wheel, Instant::now());
        // Nothing left to wait for: it goes.
        wait_for_threads(NAME, 0);
        // A live far timer holds it; an abandoned one (or a job whose owner went) does not.
        let far = Instant::now() + Duration::from_secs(3600);
        let sleep = wheel.sleep_until(far);
        let owner = Arc::new(());
        wheel.call_at(far, &owner, |_| {});
        wait_for_threads(NAME, 1);
        let started = wheel.lock().starts;
        drop(sleep);
        drop(owner);
        wait_for_threads(NAME, 0);
        assert!(wheel.lock().heap.is_empty());
        // And it comes back for the next timer.
        fire(wheel, Instant::now() + Duration::from_millis(5));
        assert_eq!(wheel.lock().starts, started + 1);
        wait_for_threads(NAME, 0);
    }

    /// A timer added while the thread decides to exit is seen by it or starts a new one: never
    /// lost. Timers are added at every phase of the thread's idle period, from two threads.
    #[test]
    fn a_timer_set_while_the_thread_exits_still_fires() {
        const NAME: &str = "rdtimer-race";
        let idle = Duration::from_micros(300);
        let wheel = test_wheel(NAME, idle);
        let adders: Vec<_> = (0..2u32)
            .map(|a| {
                std::thread::spawn(move || {
                    for i in 0..400u32 {
                        // Spin (not sleep) past 0..2 idle periods since the last timer fired.
                        let pause = idle * ((i * 7 + a * 3) % 20) / 10;
                        let t = Instant::now();
                        while t.elapsed() < pause {
                            std::hint::spin_loop();
                        }
                        fire(wheel, Instant::now());
                    }
                })
            })
            .collect();
        for a in adders {
            a.join().unwrap();
        }
        // It did exit and start again during the run (so adds met exits).
        let starts = wheel.lock().starts;
        assert!(starts > 10, "the thread started only {starts} times");
        #[cfg(target_os = "linux")]
        wait_for_threads(NAME, 0);
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
        let held = WHEEL.lock().heap.len();
        assert!(
            held < 10_000,
            "{held} timers held for 100000 abandoned sleeps"
        );
    }
}
