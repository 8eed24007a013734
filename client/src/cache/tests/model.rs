//! A randomized model test: seeded sequences of plans, server-side reads and writes,
//! invalidations delivered late, flushes, fills (good, failed, malformed), dropped leaders and
//! waiters, time passing and evictions, checked against a reference model.
//!
//! The model's server gives each key a version; a read's reply is the versions of its keys
//! when the server runs it (some time after it was planned, before its reply is handed over).
//! A write's invalidation reaches the cache later, in order. The oracle: a value the cache
//! hands out (a hit, or a joined read's reply) never holds a version older than one whose
//! invalidation reached the cache before the read was planned (a hit) or joined (a waiter).

use super::super::*;
use crate::Error;
use futures::FutureExt;
use std::collections::{HashMap, VecDeque};

const KEYS: usize = 4;

/// The commands the model reads with: `(command, its keys as indices)`.
fn commands() -> Vec<(Cmd, Vec<usize>)> {
    let key = |i: usize| format!("k{i}");
    let mut cmds = Vec::new();
    for i in 0..KEYS {
        cmds.push((Cmd::new("GET").key(key(i)), vec![i]));
        cmds.push((Cmd::new("HGET").key(key(i)).arg("f"), vec![i]));
        // `MGET k0 k0` too: a key named twice.
        let j = (i * 3) % KEYS;
        cmds.push((Cmd::new("MGET").key(key(i)).key(key(j)), vec![i, j]));
    }
    cmds
}

struct Flight {
    fill: Fill,
    db: i64,
    cmd: usize,
    start: Instant,
    ttl: Duration,
    /// The versions the server read, once it ran the read.
    read: Option<Vec<u64>>,
    poisoned: bool,
    waiters: Vec<(Waiter, Vec<u64>)>,
}

struct Model {
    rng: fastrand::Rng,
    cache: Arc<Shared>,
    cmds: Vec<(Cmd, Vec<usize>)>,
    now: Instant,
    version: [u64; KEYS],
    /// The newest version of each key whose invalidation reached the cache.
    delivered: [u64; KEYS],
    pending: VecDeque<(usize, u64)>,
    flights: Vec<Flight>,
    /// (db, cmd) -> index in `flights` of the flight a new read joins.
    joinable: HashMap<(i64, usize), usize>,
    /// (db, cmd) -> (versions, expiry) of what the cache may hold (it may have evicted it).
    entries: HashMap<(i64, usize), (Vec<u64>, Option<Instant>)>,
    plans: u64,
    /// With a budget nothing exceeds, the model knows every entry exactly.
    exact: bool,
}

fn encode(versions: &[u64]) -> Value {
    Value::Array(versions.iter().map(|&v| Value::Int(v as i64)).collect())
}

fn decode(value: &Value) -> Vec<u64> {
    let Value::Array(items) = value else {
        panic!("not a model value: {value:?}")
    };
    items
        .iter()
        .map(|v| match v {
            Value::Int(n) => *n as u64,
            other => panic!("not a version: {other:?}"),
        })
        .collect()
}

impl Model {
    fn new(seed: u64, max_bytes: usize, exact: bool) -> Model {
        Model {
            rng: fastrand::Rng::with_seed(seed),
            cache: Shared::new(
                Cache::new()
                    .max_bytes(max_bytes)
                    .ttl(Duration::from_secs(2)),
            ),
            cmds: commands(),
            now: Instant::now(),
            version: [0; KEYS],
            delivered: [0; KEYS],
            pending: VecDeque::new(),
            flights: Vec::new(),
            joinable: HashMap::new(),
            entries: HashMap::new(),
            plans: 0,
            exact,
        }
    }

    fn fresh_at_least(&self, cmd: usize) -> Vec<u64> {
        self.cmds[cmd]
            .1
            .iter()
            .map(|&k| self.delivered[k])
            .collect()
    }

    fn assert_fresh(&self, got: &[u64], floor: &[u64], what: &str) {
        for (g, f) in got.iter().zip(floor) {
            assert!(
                g >= f,
                "{what}: stale value {got:?}, invalidated up to {floor:?}"
            );
        }
    }

    fn plan(&mut self) {
        let db = self.rng.i64(0..2);
        let cmd = self.rng.usize(..self.cmds.len());
        let ttl = self
            .rng
            .bool()
            .then(|| Duration::from_millis(self.rng.u64(0..3000)));
        self.plans += 1;
        let live = self
            .entries
            .get(&(db, cmd))
            .filter(|(_, expires)| expires.is_none_or(|at| self.now < at))
            .map(|(v, _)| v.clone());
        // Half the reads try the hit-only lookup first, as the clients do; a miss then plans.
        if self.rng.bool() {
            if let Some(value) = self.cache.hit_at(db, &self.cmds[cmd].0, self.now) {
                let got = decode(&value);
                assert_eq!(live.as_ref(), Some(&got), "a hit the model does not hold");
                self.assert_fresh(&got, &self.fresh_at_least(cmd), "hit");
                return;
            }
            assert!(!self.exact || live.is_none(), "missed a live entry");
        }
        let plan = self
            .cache
            .plan_at(db, self.cmds[cmd].0.clone(), ttl, self.now);
        match plan {
            Plan::Hit(value) => {
                let got = decode(&value);
                assert_eq!(live.as_ref(), Some(&got), "a hit the model does not hold");
                self.assert_fresh(&got, &self.fresh_at_least(cmd), "hit");
            }
            Plan::Join(waiter, back) => {
                assert_eq!(back, self.cmds[cmd].0, "a join hands its command back");
                assert!(!self.exact || live.is_none(), "joined with a live entry");
                let at = *self
                    .joinable
                    .get(&(db, cmd))
                    .expect("joined no joinable flight");
                let floor = self.fresh_at_least(cmd);
                self.flights[at].waiters.push((waiter, floor));
            }
            Plan::Lead { fill, bundle } => {
                assert!(!self.exact || live.is_none(), "led with a live entry");
                assert!(
                    !self.joinable.contains_key(&(db, cmd)),
                    "led past a joinable flight"
                );
                assert_eq!(bundle.len(), 1 + self.cmds[cmd].1.len());
                self.joinable.insert((db, cmd), self.flights.len());
                self.flights.push(Flight {
                    fill,
                    db,
                    cmd,
                    start: self.now,
                    ttl: ttl.unwrap_or(Duration::from_secs(2)),
                    read: None,
                    poisoned: false,
                    waiters: Vec::new(),
                });
            }
            Plan::Uncacheable(cmd) => panic!("{cmd} is cacheable"),
        }
    }

    /// The server runs a read in flight.
    fn run(&mut self) {
        let waiting: Vec<usize> = (0..self.flights.len())
            .filter(|&i| self.flights[i].read.is_none())
            .collect();
        if let Some(&i) = waiting.get(self.rng.usize(..waiting.len().max(1))) {
            let keys = &self.cmds[self.flights[i].cmd].1;
            self.flights[i].read = Some(keys.iter().map(|&k| self.version[k]).collect());
        }
    }

    /// Takes flight `i` out of the model's tables.
    fn take(&mut self, i: usize) -> Flight {
        let flight = self.flights.swap_remove(i);
        let moved = self.flights.len();
        self.joinable.retain(|_, at| *at != i);
        for at in self.joinable.values_mut() {
            if *at == moved {
                *at = i;
            }
        }
        flight
    }

    /// The reply of a read in flight reaches the cache.
    fn finish(&mut self) {
        let ran: Vec<usize> = (0..self.flights.len())
            .filter(|&i| self.flights[i].read.is_some())
            .collect();
        let Some(&i) = ran.get(self.rng.usize(..ran.len().max(1))) else {
            return;
        };
        let flight = self.take(i);
        let read = flight.read.clone().expect("ran");
        let keys = self.cmds[flight.cmd].1.len();
        let pttls: Vec<i64> = (0..keys)
            .map(|_| match self.rng.u8(..10) {
                0 => -2,
                1 | 2 => self.rng.i64(0..2500),
                _ => -1,
            })
            .collect();
        let mut replies: Vec<Value> = vec![encode(&read)];
        replies.extend(pttls.iter().map(|&p| Value::Int(p)));
        let kind = self.rng.u8(..20);
        let reply = match kind {
            0 => Err(Error::connection("lost")),
            1 => Ok(Value::Array(replies[..1].to_vec())),
            2 => {
                replies[0] = Value::Error(crate::value::ServerError::from_line("ERR x"));
                Ok(Value::Array(replies))
            }
            _ => Ok(Value::Array(replies)),
        };
        let got = flight.fill.finish(reply);
        if kind >= 3 {
            assert_eq!(got.as_ref().map(decode).ok(), Some(read.clone()));
            let life = pttls
                .iter()
                .filter(|&&p| p >= 0)
                .map(|&p| Duration::from_millis(p as u64))
                .fold(flight.ttl, Duration::min);
            if !flight.poisoned && !life.is_zero() {
                self.entries.insert(
                    (flight.db, flight.cmd),
                    (read, flight.start.checked_add(life)),
                );
            }
        } else {
            assert!(got.is_err());
        }
        for (waiter, floor) in flight.waiters {
            let reply = waiter.now_or_never().expect("woken").expect("answered");
            assert_eq!(reply.is_ok(), got.is_ok());
            if let Ok(value) = reply {
                self.assert_fresh(&decode(&value), &floor, "joined read");
            }
        }
    }

    /// A leader gives up.
    fn drop_flight(&mut self) {
        if self.flights.is_empty() {
            return;
        }
        let i = self.rng.usize(..self.flights.len());
        let flight = self.take(i);
        drop(flight.fill);
        for (waiter, _) in flight.waiters {
            assert_eq!(waiter.now_or_never(), Some(None));
        }
    }

    fn drop_waiter(&mut self) {
        if let Some(flight) = self.flights.iter_mut().find(|f| !f.waiters.is_empty()) {
            flight.waiters.pop();
        }
    }

    fn write(&mut self) {
        let k = self.rng.usize(..KEYS);
        self.version[k] += 1;
        self.pending.push_back((k, self.version[k]));
    }

    /// The oldest invalidation not yet delivered reaches the cache.
    fn deliver(&mut self) {
        if let Some((k, version)) = self.pending.pop_front() {
            self.invalidated(k, version);
        }
    }

    /// A write through the cache's own client: invalidated at once.
    fn local_write(&mut self) {
        let k = self.rng.usize(..KEYS);
        self.version[k] += 1;
        self.invalidated(k, self.version[k]);
    }

    fn invalidated(&mut self, k: usize, version: u64) {
        let name = format!("k{k}");
        self.cache.invalidate([name.as_bytes()]);
        self.delivered[k] = self.delivered[k].max(version);
        let reads = |cmds: &[(Cmd, Vec<usize>)], cmd: usize| cmds[cmd].1.contains(&k);
        let cmds = &self.cmds;
        self.entries.retain(|&(_, cmd), _| !reads(cmds, cmd));
        for f in &mut self.flights {
            if reads(cmds, f.cmd) {
                f.poisoned = true;
            }
        }
        self.joinable.retain(|&(_, cmd), _| !reads(cmds, cmd));
    }

    /// Everything changed (FLUSHALL, a reconnect).
    fn flush(&mut self) {
        for k in 0..KEYS {
            self.version[k] += 1;
            self.delivered[k] = self.version[k];
        }
        self.cache.flush();
        self.entries.clear();
        self.joinable.clear();
        for f in &mut self.flights {
            f.poisoned = true;
        }
    }

    fn step(&mut self) {
        match self.rng.u16(..1000) {
            0..400 => self.plan(),
            400..600 => self.run(),
            600..800 => self.finish(),
            800..820 => self.drop_flight(),
            820..840 => self.drop_waiter(),
            840..870 => self.write(),
            870..940 => self.deliver(),
            940..960 => self.local_write(),
            960..962 => self.flush(),
            _ => self.now += Duration::from_millis(self.rng.u64(0..400)),
        }
        let state = self.cache.lock();
        state.store.check();
        state.flights.check();
        assert_eq!(state.flights.len(), self.flights.len());
        if self.exact {
            assert_eq!(state.store.evictions, 0);
        }
    }

    fn done(mut self) -> CacheStats {
        while !self.flights.is_empty() {
            let flight = self.take(0);
            drop(flight.fill);
        }
        let stats = self.cache.stats();
        assert_eq!(
            stats.hits + stats.misses + stats.joined + stats.uncacheable,
            self.plans
        );
        assert_eq!(self.cache.lock().flights.len(), 0);
        stats
    }
}

#[test]
fn the_cache_never_serves_what_an_invalidation_reached() {
    for seed in 0..5 {
        let mut model = Model::new(seed, 1 << 20, true);
        for _ in 0..10_000 {
            model.step();
        }
        let stats = model.done();
        assert!(
            stats.hits > 100 && stats.joined > 100,
            "seed {seed}: {stats:?}"
        );
        assert!(
            stats.expired > 0 && stats.flushes > 0,
            "seed {seed}: {stats:?}"
        );
    }
}

#[test]
fn the_model_holds_under_a_small_budget() {
    let one = {
        let cmd = Cmd::new("MGET").key("k0").key("k1");
        let key = ReadKey::new(0, cmd.args().encoded(), cmd.keys()).expect("key");
        store::entry_size(&key, &encode(&[1, 1]))
    };
    for seed in 10..15 {
        let mut model = Model::new(seed, 4 * one, false);
        for _ in 0..10_000 {
            model.step();
        }
        let stats = model.done();
        assert!(
            stats.evictions > 20 && stats.hits > 50,
            "seed {seed}: {stats:?}"
        );
        assert!(stats.bytes <= 4 * one as u64);
    }
}
