//! What a cluster client knows of the cluster: the current slot map with each shard's primary
//! client ([`View`]), the refresh that replaces it (concurrent asks coalesce into one run:
//! [`Topology::begin`]/[`Topology::end`]/[`Topology::wait`]), when the next periodic one is
//! due, and [`fetch`]: asking nodes for the map (`CLUSTER SHARDS`, or `CLUSTER SLOTS` where
//! the server lacks it).

use crate::route::topology::{NodeAddr, SlotMap};
use crate::{Call, Client, Cmd, Error, Result, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The map, and the client of each shard's primary.
pub(super) struct View {
    pub map: SlotMap,
    /// Per shard (as indexed in `map.shards()`), its primary's address and client.
    pub primaries: Vec<(NodeAddr, Client)>,
}

impl View {
    /// Nothing known yet.
    pub fn empty() -> View {
        View {
            map: SlotMap::default(),
            primaries: Vec::new(),
        }
    }

    /// The primary serving `slot`.
    #[inline]
    pub fn primary(&self, slot: u16) -> Option<&(NodeAddr, Client)> {
        self.map
            .shard_index(slot)
            .and_then(|i| self.primaries.get(i))
    }
}

/// The view, and the refresh that replaces it.
pub(super) struct Topology {
    view: RwLock<Arc<View>>,
    refresh: Mutex<Refresh>,
    /// How many refreshes ran.
    runs: AtomicU64,
    /// When the periodic refresh is due: milliseconds after `epoch` (`u64::MAX`: never).
    due: AtomicU64,
    epoch: Instant,
    interval: Option<Duration>,
}

/// The refresh in progress, if any, and the last one's outcome.
struct Refresh {
    running: bool,
    /// When the last one ended.
    ended: Option<Instant>,
    /// How many have ended.
    done: u64,
    last: Result<()>,
    waiters: Vec<Waker>,
}

impl Topology {
    /// An empty view, refreshed every `interval` (when set) as calls come.
    pub fn new(interval: Option<Duration>) -> Topology {
        Topology {
            view: RwLock::new(Arc::new(View::empty())),
            refresh: Mutex::new(Refresh {
                running: false,
                ended: None,
                done: 0,
                last: Ok(()),
                waiters: Vec::new(),
            }),
            runs: AtomicU64::new(0),
            due: AtomicU64::new(u64::MAX),
            epoch: Instant::now(),
            interval,
        }
    }

    /// The current view.
    #[inline]
    pub fn view(&self) -> Arc<View> {
        self.view.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reads the current view under its lock, without cloning it.
    #[inline]
    pub fn with_view<R>(&self, f: impl FnOnce(&View) -> R) -> R {
        f(&self.view.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Makes `view` the current one.
    pub fn set(&self, view: View) {
        *self.view.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(view);
    }

    /// Replaces the view with what `f` makes of the current one (`None`: keeps it). `f` runs
    /// outside the lock (it may make node clients); if the view changed meanwhile, it runs
    /// again on the new one.
    pub fn update(&self, mut f: impl FnMut(&View) -> Option<View>) {
        loop {
            let current = self.view();
            let Some(new) = f(&current) else {
                return;
            };
            let mut view = self.view.write().unwrap_or_else(|p| p.into_inner());
            if Arc::ptr_eq(&view, &current) {
                *view = Arc::new(new);
                return;
            }
        }
    }

    /// Asks for a refresh: the number of ended refreshes to [`wait`](Topology::wait) for, and
    /// whether the caller must run it (`true`: none was running; it calls
    /// [`end`](Topology::end) when done). A refresh asked while one runs joins it.
    pub fn begin(&self) -> (u64, bool) {
        let mut r = self.refresh.lock().unwrap_or_else(|p| p.into_inner());
        let target = r.done + 1;
        if r.running {
            return (target, false);
        }
        r.running = true;
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.push_due();
        (target, true)
    }

    /// [`begin`](Topology::begin) for a refresh nobody waits for: `false` (none started) while
    /// one runs or when the last one ended less than `gap` ago (a storm of `MOVED`s, or of
    /// failed connections, asks for one refresh per `gap` at most; each `MOVED` updates its
    /// own slot meanwhile).
    pub fn begin_unless_recent(&self, gap: Duration) -> bool {
        let mut r = self.refresh.lock().unwrap_or_else(|p| p.into_inner());
        if r.running || r.ended.is_some_and(|at| at.elapsed() < gap) {
            return false;
        }
        r.running = true;
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.push_due();
        true
    }

    /// The refresh ended with `result`: every waiter gets it.
    pub fn end(&self, result: Result<()>) {
        let waiters = {
            let mut r = self.refresh.lock().unwrap_or_else(|p| p.into_inner());
            r.running = false;
            r.ended = Some(Instant::now());
            r.done += 1;
            r.last = result;
            std::mem::take(&mut r.waiters)
        };
        for w in waiters {
            w.wake();
        }
    }

    /// Resolves once `target` refreshes have ended, to the last one's outcome.
    pub fn wait(self: &Arc<Self>, target: u64) -> Wait {
        Wait {
            topology: self.clone(),
            target,
        }
    }

    /// How many refreshes ran.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// True when the periodic refresh is due at `now`.
    #[inline]
    pub fn is_due(&self, now: Instant) -> bool {
        let due = self.due.load(Ordering::Relaxed);
        due != u64::MAX && now.saturating_duration_since(self.epoch).as_millis() as u64 >= due
    }

    /// Puts the next periodic refresh one interval from now.
    fn push_due(&self) {
        if let Some(every) = self.interval {
            let at = self.epoch.elapsed().saturating_add(every).as_millis();
            self.due
                .store(u64::try_from(at).unwrap_or(u64::MAX - 1), Ordering::Relaxed);
        }
    }
}

/// The future of [`Topology::wait`].
pub(super) struct Wait {
    topology: Arc<Topology>,
    target: u64,
}

impl Future for Wait {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut r = self
            .topology
            .refresh
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if r.done >= self.target {
            return Poll::Ready(r.last.clone());
        }
        if !r.waiters.iter().any(|w| w.will_wake(cx.waker())) {
            r.waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// One node's answer, being awaited.
type Asking = Pin<Box<dyn Future<Output = Result<SlotMap>> + Send>>;

/// How long a refresh waits for a node's answer before it also asks the next one (a hedge:
/// one node asked in the common case, a slow or dead one costs this much).
const HEDGE: Duration = Duration::from_millis(300);

/// Asks `candidates` (best first) for the slot map: the first at once, the next when every one
/// asked so far failed or after each [`HEDGE`] without an answer; each within `per_try`. The
/// first good answer wins. `use_slots` turns to true once a server answers that it has no
/// `CLUSTER SHARDS` (Redis before 7): from then on `CLUSTER SLOTS` is asked. `sleep` gives the
/// hedge's timer (the placement's); `failed` hears each node's error as it comes.
///
/// # Errors
///
/// The last node's error when none answered with a map.
pub(super) async fn fetch(
    candidates: Vec<(NodeAddr, Client)>,
    tls: bool,
    use_slots: Arc<AtomicBool>,
    per_try: Duration,
    sleep: impl Fn(Instant) -> crate::engine::placement::Sleep,
    failed: impl Fn(&Error),
) -> Result<SlotMap> {
    let mut last = Error::client("a cluster client needs at least one seed node");
    let mut next = candidates.iter();
    let mut asks: Vec<Option<Asking>> = Vec::new();
    let mut hedge: Option<crate::engine::placement::Sleep> = None;
    std::future::poll_fn(|cx| loop {
        let mut pending = false;
        for slot in asks.iter_mut() {
            let Some(a) = slot else { continue };
            match a.as_mut().poll(cx) {
                Poll::Pending => pending = true,
                Poll::Ready(Ok(map)) => return Poll::Ready(Ok(map)),
                Poll::Ready(Err(e)) => {
                    failed(&e);
                    last = e.clone();
                    *slot = None;
                }
            }
        }
        let due = !pending
            || hedge
                .as_mut()
                .is_some_and(|h| h.as_mut().poll(cx).is_ready());
        if !due {
            return Poll::Pending;
        }
        let Some((addr, client)) = next.next() else {
            if pending {
                // Nobody left to ask: wait for those asked.
                hedge = None;
                return Poll::Pending;
            }
            return Poll::Ready(Err(none_answered(&candidates, last.clone())));
        };
        let ask = ask(
            addr.clone(),
            client.clone(),
            tls,
            use_slots.clone(),
            per_try,
        );
        asks.push(Some(Box::pin(ask) as Asking));
        hedge = Some(sleep(Instant::now() + HEDGE));
    })
    .await
}

/// The error of a fetch no node answered: with several asked, a connection error names them
/// all (a seed list with a typo in one address shows that address too), keeping `sent` and the
/// cause of the last.
fn none_answered(asked: &[(NodeAddr, Client)], last: Error) -> Error {
    match last {
        Error::Connection {
            message,
            source,
            sent,
        } if asked.len() > 1 => {
            let names: Vec<String> = asked.iter().map(|(a, _)| a.to_string()).collect();
            Error::Connection {
                message: format!(
                    "no node of the cluster answered (asked {}); the last: {message}",
                    names.join(", ")
                ),
                source,
                sent,
            }
        }
        other => other,
    }
}

/// A node not in cluster mode says only `ERR This instance has cluster support disabled`: the
/// reply gets what to do instead.
fn not_a_cluster(addr: &NodeAddr, e: Error) -> Error {
    match e {
        Error::Server { kind, message } if message.contains("cluster support disabled") => {
            Error::Server {
                kind,
                message: format!(
                    "{message} ({addr} is not a cluster node: use Client for a single server, \
                     or Config::sentinel for a Sentinel-managed primary)"
                ),
            }
        }
        other => other,
    }
}

/// One node's map.
async fn ask(
    addr: NodeAddr,
    client: Client,
    tls: bool,
    use_slots: Arc<AtomicBool>,
    per_try: Duration,
) -> Result<SlotMap> {
    let query = |cmd: Cmd| -> Call<Value> {
        client.submit_call(crate::conn::Payload::One(cmd), Some(per_try))
    };
    if !use_slots.load(Ordering::Relaxed) {
        match query(Cmd::new("CLUSTER SHARDS")).await {
            Ok(reply) => return non_empty(SlotMap::from_shards(reply, addr.host(), tls)?),
            Err(Error::Server { message, .. })
                if message.to_ascii_lowercase().contains("unknown subcommand") =>
            {
                use_slots.store(true, Ordering::Relaxed);
            }
            Err(e) => return Err(not_a_cluster(&addr, e)),
        }
    }
    let reply = query(Cmd::new("CLUSTER SLOTS"))
        .await
        .map_err(|e| not_a_cluster(&addr, e))?;
    non_empty(SlotMap::from_slots(reply, addr.host())?)
}

/// A node that serves no slot at all knows nothing yet (a node just started, a cluster not
/// made): its map is no answer.
fn non_empty(map: SlotMap) -> Result<SlotMap> {
    if map.served() == 0 {
        return Err(Error::Server {
            kind: "CLUSTERDOWN".into(),
            message: "the node asked serves no slot yet (the cluster is not set up)".into(),
        });
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Many concurrent asks for a refresh while one runs make one run, and every asker gets
    /// its outcome.
    #[test]
    fn concurrent_refreshes_coalesce_into_one() {
        let topology = Arc::new(Topology::new(None));
        let ran = Arc::new(AtomicUsize::new(0));
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let waiters: Vec<_> = (0..32)
            .map(|_| {
                let (topology, ran) = (topology.clone(), ran.clone());
                let go = go_tx.clone();
                std::thread::spawn(move || {
                    let (target, start) = topology.begin();
                    if start {
                        ran.fetch_add(1, Ordering::SeqCst);
                        let _ = go.send(());
                    }
                    futures::executor::block_on(topology.wait(target))
                })
            })
            .collect();
        drop(go_tx);
        // The one that runs it says so; the others joined it (they wait meanwhile).
        go_rx.recv().expect("one asker runs the refresh");
        let deadline = Instant::now() + Duration::from_secs(10);
        while topology.refresh.lock().unwrap().waiters.len() < 32 {
            // Every other asker is waiting on the one refresh (bounded wait).
            assert!(Instant::now() < deadline, "the askers never all waited");
            std::thread::yield_now();
        }
        topology.end(Err(Error::Timeout));
        for w in waiters {
            assert_eq!(w.join().unwrap(), Err(Error::Timeout));
        }
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert_eq!(topology.runs(), 1);
        // The next ask runs a new one.
        let (target, start) = topology.begin();
        assert!(start);
        topology.end(Ok(()));
        assert_eq!(futures::executor::block_on(topology.wait(target)), Ok(()));
        assert_eq!(topology.runs(), 2);
    }

    /// A refresh nobody waits for is not started while one runs, nor right after one ended.
    #[test]
    fn refreshes_nobody_waits_for_are_spaced() {
        let topology = Topology::new(None);
        let long = Duration::from_secs(3600);
        assert!(topology.begin_unless_recent(long), "none ran yet");
        assert!(
            !topology.begin_unless_recent(Duration::ZERO),
            "one is running"
        );
        topology.end(Ok(()));
        assert!(!topology.begin_unless_recent(long), "one ended just now");
        assert!(topology.begin_unless_recent(Duration::ZERO));
        assert_eq!(topology.runs(), 2);
        // An awaited refresh is never held back.
        topology.end(Ok(()));
        assert!(topology.begin().1);
    }

    #[test]
    fn the_periodic_refresh_is_due_after_its_interval() {
        let never = Topology::new(None);
        let (_, start) = never.begin();
        assert!(start && !never.is_due(Instant::now()));
        let soon = Topology::new(Some(Duration::from_millis(1)));
        assert!(
            !soon.is_due(Instant::now()),
            "nothing is due before the first refresh"
        );
        let _ = soon.begin();
        soon.end(Ok(()));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !soon.is_due(Instant::now()) {
            assert!(Instant::now() < deadline);
            std::thread::yield_now();
        }
    }
}
