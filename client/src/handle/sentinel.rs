//! The sentinel watcher: where a [`Config::sentinel`] client's connections find the primary.
//!
//! It is the links' [`Source`]: a link asks it at every connect attempt ([`Source::lookup`]),
//! asks it to look again after a lost connection or a failed attempt ([`Source::refresh`]), and
//! is told when the answer changes ([`Follower::follow`]). It finds the primary with ordinary
//! clients to the sentinels and `async_call` callbacks, so it needs no runtime and blocks no
//! engine:
//!
//! * Resolution: `SENTINEL GET-MASTER-ADDR-BY-NAME <master>` to each sentinel in turn (one that
//!   answered moves to the front), each given a share of the connect timeout, until one names
//!   an address. Concurrent requests coalesce into one round. When none answers, the primary
//!   last named (if any) is used again: sentinels that are down do not make a primary that is
//!   up unreachable (the handshake's `ROLE` check refuses it if it is no longer one).
//! * Failovers: a subscriber on every sentinel listens to `+switch-master`; the new address
//!   replaces the old at once (a round already under way that started before it cannot undo
//!   it), and the links follow.
//!
//! It lives as long as a configuration that holds it (the client's, its dedicated connections'
//! and subscribers'); its callbacks hold it only while a round is under way, and its
//! subscribers' readers not at all.

use crate::config::{Addr, Config, Sentinel};
use crate::conn::{Payload, SubKind};
use crate::engine::link::To;
use crate::engine::placement::Placement;
use crate::engine::source::{Follower, Lookup, Source};
use crate::inbox::{inbox, InboxRx};
use crate::{cmd, Client, Error, Result, Value};
use bytes::Bytes;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// The channel sentinels announce a failover's new primary on.
const SWITCH_MASTER: &[u8] = b"+switch-master";

/// The least time given to one sentinel's answer.
const MIN_SHARE: Duration = Duration::from_millis(50);

/// Watches the sentinels of one [`Config::sentinel`] configuration.
pub(crate) struct Watcher {
    /// Itself, for the callbacks of a round.
    me: Weak<Watcher>,
    master: String,
    sentinels: Vec<SentinelConn>,
    state: Mutex<State>,
}

/// One sentinel: a client for questions, a subscriber for `+switch-master`.
struct SentinelConn {
    addr: Addr,
    client: Client,
    sub: Client,
    inbox: Mutex<InboxRx>,
    /// The reader woken by the subscriber's messages (holds the watcher weakly).
    reader: Arc<Reader>,
}

/// What the watcher knows.
enum Known {
    /// Nothing yet, or the last answer is stale: links wait for a round.
    Unknown,
    Ready(Addr),
    Failed(Error),
}

struct State {
    known: Known,
    /// A round of questions is under way.
    resolving: bool,
    /// Bumped by every `+switch-master`: a round that began before one does not undo it.
    epoch: u64,
    /// Which sentinel to ask first, second… (indices into `sentinels`).
    order: Vec<usize>,
    /// The last round's failure, said again while the next round runs.
    last_failure: Option<Error>,
    /// The primary last named (by a round or a `+switch-master`): used again when a round
    /// finds no sentinel that answers (the handshake's `ROLE` check still refuses it if it is
    /// no longer a primary).
    last_known: Option<Addr>,
    /// A subscribe to `+switch-master` is confirmed or under way, per sentinel.
    subscribed: Vec<bool>,
    links: Vec<Weak<dyn Follower>>,
    /// The replica for reads ([`Config::sentinel_replica_reads`]).
    replica: ReplicaState,
}

/// What the watcher knows of the replica that serves reads.
struct ReplicaState {
    known: Known,
    resolving: bool,
    /// Bumped by every round, to take the next healthy replica each time.
    rounds: usize,
    links: Vec<Weak<dyn Follower>>,
}

/// One round of questions.
struct Round {
    order: Vec<usize>,
    pos: usize,
    epoch: u64,
    /// Each sentinel's answer so far, for the error if none names the primary.
    answers: Vec<String>,
}

impl Watcher {
    /// A watcher for `config` (which has [`Config::sentinel`]), its clients placed where
    /// `placement` says. Nothing connects until a link asks.
    ///
    /// # Errors
    ///
    /// [`Error::Client`] for an empty list of sentinels, or when the engine cannot take the
    /// sentinels' connections.
    pub(crate) fn new(config: &Config, placement: &Placement) -> Result<Arc<Watcher>> {
        let Some(settings) = &config.sentinel else {
            return Err(Error::client("not a Sentinel configuration"));
        };
        if settings.sentinels.is_empty() {
            return Err(Error::client(format!(
                "Config::sentinel({:?}) needs at least one sentinel address",
                settings.master
            )));
        }
        let share = share(config.connect_timeout, settings.sentinels.len());
        let mut conns = Vec::with_capacity(settings.sentinels.len());
        for addr in &settings.sentinels {
            let c = sentinel_config(config, settings, addr, share);
            let (tx, rx) = inbox(64 * 1024);
            let sub = Client::placed(c.clone(), placement)?;
            sub.link().make_subscriber(tx);
            conns.push((addr.clone(), Client::placed(c, placement)?, sub, rx));
        }
        let n = conns.len();
        Ok(Arc::new_cyclic(|me: &Weak<Watcher>| Watcher {
            me: me.clone(),
            master: settings.master.clone(),
            sentinels: conns
                .into_iter()
                .enumerate()
                .map(|(index, (addr, client, sub, rx))| SentinelConn {
                    addr,
                    client,
                    sub,
                    inbox: Mutex::new(rx),
                    reader: Arc::new(Reader {
                        watcher: me.clone(),
                        index,
                    }),
                })
                .collect(),
            state: Mutex::new(State {
                known: Known::Unknown,
                resolving: false,
                epoch: 0,
                order: (0..n).collect(),
                last_failure: None,
                last_known: None,
                subscribed: vec![false; n],
                links: Vec::new(),
                replica: ReplicaState {
                    known: Known::Unknown,
                    resolving: false,
                    rounds: 0,
                    links: Vec::new(),
                },
            }),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The sentinels' addresses, for messages.
    fn names(&self) -> String {
        let all: Vec<String> = self.sentinels.iter().map(|s| s.addr.to_string()).collect();
        all.join(", ")
    }

    /// Asks the next sentinel of `round`.
    fn ask(self: Arc<Self>, round: Round) {
        let Some(&index) = round.order.get(round.pos) else {
            let err = Error::connection(format!(
                "no sentinel said where the primary {:?} is ({})",
                self.master,
                round.answers.join("; ")
            ));
            return self.finish(round.epoch, Err(err));
        };
        let me = self.clone();
        let question = cmd!("SENTINEL", "GET-MASTER-ADDR-BY-NAME", &self.master);
        self.sentinels[index]
            .client
            .async_call(question, move |reply: Result<Value>| {
                me.answered(round, index, reply)
            });
    }

    /// Sentinel `index` answered `reply`.
    fn answered(self: Arc<Self>, mut round: Round, index: usize, reply: Result<Value>) {
        let addr = &self.sentinels[index].addr;
        match master_addr(reply) {
            Ok(primary) => {
                let mut state = self.lock();
                // The one that answered is asked first next time.
                state.order.retain(|&i| i != index);
                state.order.insert(0, index);
                drop(state);
                self.finish(round.epoch, Ok(primary))
            }
            Err(why) => {
                round.answers.push(format!("{addr}: {why}"));
                round.pos += 1;
                self.ask(round)
            }
        }
    }

    /// A round ended: keep its answer (unless a `+switch-master` came meanwhile) and tell the
    /// links.
    fn finish(&self, epoch: u64, result: std::result::Result<Addr, Error>) {
        let links = {
            let mut state = self.lock();
            state.resolving = false;
            let overtaken = state.epoch != epoch && matches!(state.known, Known::Ready(_));
            if !overtaken {
                state.known = match result {
                    Ok(addr) => {
                        state.last_failure = None;
                        state.last_known = Some(addr.clone());
                        Known::Ready(addr)
                    }
                    // No sentinel answered, but one named a primary before: that one again
                    // (sentinels down do not make a primary that is up unreachable).
                    Err(e) => match state.last_known.clone() {
                        Some(addr) => {
                            crate::trace::warning!(
                                "no sentinel answered; connecting to the primary last named"
                            );
                            state.last_failure = Some(e);
                            Known::Ready(addr)
                        }
                        None => {
                            state.last_failure = Some(e.clone());
                            Known::Failed(e)
                        }
                    },
                };
            }
            live_links(&mut state)
        };
        self.subscribe_all();
        let now = Instant::now();
        for link in links {
            link.follow(now);
        }
    }

    /// Subscribes to `+switch-master` on every sentinel not subscribed yet (a sentinel that
    /// could not be reached before is tried again with every round).
    fn subscribe_all(&self) {
        let todo: Vec<usize> = {
            let mut state = self.lock();
            let todo = (0..self.sentinels.len())
                .filter(|&i| !state.subscribed[i])
                .collect::<Vec<_>>();
            for &i in &todo {
                state.subscribed[i] = true;
            }
            todo
        };
        for index in todo {
            let s = &self.sentinels[index];
            // The reader starts listening before anything can arrive.
            s.reader.read();
            let payload = Payload::Subscribe {
                kind: SubKind::Channel,
                subscribe: true,
                names: vec![Bytes::from_static(SWITCH_MASTER)],
            };
            let deadline = s.sub.config().command_timeout.map(|t| Instant::now() + t);
            // Holds the watcher weakly: a subscribe waiting for an unreachable sentinel must not
            // keep it alive. One that fails is made again with the next round.
            let watcher = self.me.clone();
            let confirmed = move |r: Result<Value>| {
                if let (Err(_), Some(w)) = (r, watcher.upgrade()) {
                    w.lock().subscribed[index] = false;
                }
            };
            s.sub
                .link()
                .submit(payload, deadline, To::Callback(Box::new(confirmed)));
        }
    }

    /// Sentinel `index` said the primary moved to `to`.
    fn switched(&self, index: usize, to: Addr) {
        let links = {
            let mut state = self.lock();
            if matches!(&state.known, Known::Ready(a) if *a == to) {
                return;
            }
            state.epoch += 1;
            state.last_known = Some(to.clone());
            state.known = Known::Ready(to);
            state.last_failure = None;
            state.order.retain(|&i| i != index);
            state.order.insert(0, index);
            // The replica may be the new primary: pick one again.
            state.replica.known = Known::Unknown;
            live_links(&mut state)
        };
        let now = Instant::now();
        for link in links {
            link.follow(now);
        }
        self.refresh_replica();
    }

    /// Asks the sentinels (in order) for the replicas, and picks a healthy one (the next one
    /// each round), for the connections that read from a replica.
    fn refresh_replica(&self) {
        let order = {
            let mut state = self.lock();
            state.replica.links.retain(|l| l.strong_count() > 0);
            // Nobody reads from a replica (or a round is under way): nothing to ask.
            if state.replica.resolving || state.replica.links.is_empty() {
                return;
            }
            state.replica.resolving = true;
            state.replica.known = Known::Unknown;
            state.replica.rounds = state.replica.rounds.wrapping_add(1);
            state.order.clone()
        };
        if let Some(me) = self.me.upgrade() {
            me.ask_replicas(order, 0, Vec::new());
        }
    }

    fn ask_replicas(self: Arc<Self>, order: Vec<usize>, pos: usize, mut answers: Vec<String>) {
        let Some(&index) = order.get(pos) else {
            let err = Error::connection(format!(
                "no sentinel listed a healthy replica of {:?} ({})",
                self.master,
                answers.join("; ")
            ));
            return self.replica_found(Err(err));
        };
        let me = self.clone();
        let question = cmd!("SENTINEL", "REPLICAS", &self.master);
        self.sentinels[index]
            .client
            .async_call(question, move |reply: Result<Value>| {
                let addr = &me.sentinels[index].addr;
                let pick = me.lock().replica.rounds;
                match healthy_replicas(reply) {
                    Ok(replicas) if !replicas.is_empty() => {
                        let chosen = replicas[pick % replicas.len()].clone();
                        me.replica_found(Ok(chosen))
                    }
                    Ok(_) => {
                        answers.push(format!("{addr}: no healthy replica"));
                        me.ask_replicas(order, pos + 1, answers)
                    }
                    Err(why) => {
                        answers.push(format!("{addr}: {why}"));
                        me.ask_replicas(order, pos + 1, answers)
                    }
                }
            });
    }

    fn replica_found(&self, result: std::result::Result<Addr, Error>) {
        let links = {
            let mut state = self.lock();
            state.replica.resolving = false;
            state.replica.known = match result {
                Ok(addr) => Known::Ready(addr),
                Err(e) => Known::Failed(e),
            };
            state.replica.links.retain(|l| l.strong_count() > 0);
            state
                .replica
                .links
                .iter()
                .filter_map(Weak::upgrade)
                .collect::<Vec<_>>()
        };
        let now = Instant::now();
        for link in links {
            link.follow(now);
        }
    }
}

/// The replica side of a [`Watcher`]: the [`Source`] of a client's connection for replica
/// reads.
struct Replicas(Arc<Watcher>);

impl Source for Replicas {
    fn lookup(&self) -> Lookup {
        let state = self.0.lock();
        match &state.replica.known {
            Known::Ready(addr) => Lookup::Ready(addr.clone()),
            Known::Failed(e) if !state.replica.resolving => Lookup::Failed(e.clone()),
            _ => Lookup::Pending(Error::connection(format!(
                "the sentinels ({}) have not listed the replicas of {:?} yet",
                self.0.names(),
                self.0.master
            ))),
        }
    }

    fn refresh(&self) {
        self.0.refresh_replica();
    }

    fn register(&self, link: Weak<dyn Follower>) {
        let mut state = self.0.lock();
        state.replica.links.retain(|l| l.strong_count() > 0);
        state.replica.links.push(link);
    }
}

impl Source for Watcher {
    fn lookup(&self) -> Lookup {
        let state = self.lock();
        match &state.known {
            Known::Ready(addr) => Lookup::Ready(addr.clone()),
            Known::Failed(e) if !state.resolving => Lookup::Failed(e.clone()),
            _ => {
                let mut message = format!(
                    "the sentinels ({}) have not said where the primary {:?} is yet",
                    self.names(),
                    self.master
                );
                if let Some(e) = &state.last_failure {
                    message.push_str(&format!("; the last time they were asked: {e}"));
                }
                Lookup::Pending(Error::connection(message))
            }
        }
    }

    fn refresh(&self) {
        let round = {
            let mut state = self.lock();
            if state.resolving {
                return;
            }
            state.resolving = true;
            state.known = Known::Unknown;
            Round {
                order: state.order.clone(),
                pos: 0,
                epoch: state.epoch,
                answers: Vec::new(),
            }
        };
        // The round holds the watcher until it ends (within the sentinels' timeouts).
        if let Some(me) = self.me.upgrade() {
            me.ask(round);
        }
    }

    fn register(&self, link: Weak<dyn Follower>) {
        let mut state = self.lock();
        state.links.retain(|l| l.strong_count() > 0);
        state.links.push(link);
    }

    fn replicas(&self) -> Option<Arc<dyn Source>> {
        let me = self.me.upgrade()?;
        Some(Arc::new(Replicas(me)))
    }
}

/// Reads one sentinel subscriber's messages as they arrive: the waker its inbox wakes, which
/// drains the inbox on the waking thread (an engine's, after it released the connection's
/// lock). No task, no runtime.
struct Reader {
    watcher: Weak<Watcher>,
    index: usize,
}

impl Reader {
    fn read(self: &Arc<Self>) {
        let Some(watcher) = self.watcher.upgrade() else {
            return;
        };
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        let mut moves = Vec::new();
        {
            let inbox = lock(&watcher.sentinels[self.index].inbox);
            while let Poll::Ready(Some(event)) = inbox.poll_next(&mut cx) {
                let Ok(message) = event else { continue };
                if message.channel.as_ref() != SWITCH_MASTER {
                    continue;
                }
                if let Some(to) = message
                    .payload_str()
                    .and_then(|p| switch_master(p, &watcher.master))
                {
                    moves.push(to);
                }
            }
        }
        for to in moves {
            watcher.switched(self.index, to);
        }
    }
}

impl Wake for Reader {
    fn wake(self: Arc<Self>) {
        self.read();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.read();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The links still alive (the dead ones forgotten).
fn live_links(state: &mut State) -> Vec<Arc<dyn Follower>> {
    state.links.retain(|l| l.strong_count() > 0);
    state.links.iter().filter_map(Weak::upgrade).collect()
}

/// How long one sentinel gets to answer: a share of the connect timeout, so that asking every
/// one of them ends before the calls waiting for the primary give up, with the reason.
fn share(connect_timeout: Duration, sentinels: usize) -> Duration {
    let parts = u32::try_from(sentinels.saturating_add(1)).unwrap_or(u32::MAX);
    (connect_timeout / parts).max(MIN_SHARE)
}

/// The configuration of the connections to the sentinel at `addr`: the data nodes' protocol,
/// engine, socket options, limits and TLS; the sentinels' own credentials; `share` to connect
/// and to answer.
fn sentinel_config(data: &Config, settings: &Sentinel, addr: &Addr, share: Duration) -> Config {
    let mut c = Config::new()
        .protocol(data.protocol)
        .engine(data.engine)
        .limits(data.limits)
        .tcp_nodelay(data.tcp_nodelay)
        .tcp_keepalive(data.tcp_keepalive)
        .health_check(data.health_check)
        .connect_timeout(share)
        .command_timeout(Some(share))
        .reconnect_backoff(data.backoff_min, data.backoff_max);
    c.addr = addr.clone();
    c.username = settings.username.clone();
    c.password = settings.password.clone();
    c.client_name = data.client_name.clone();
    #[cfg(feature = "tls")]
    {
        c.tls = data.tls.clone();
    }
    c
}

/// What a sentinel's failed call says, for the error listing every sentinel's answer (a
/// connection error without its `connection error:` prefix: the whole is one already).
fn said(e: Error) -> String {
    match e {
        Error::Connection { message, .. } => message,
        other => other.to_string(),
    }
}

/// The primary's address in a `SENTINEL GET-MASTER-ADDR-BY-NAME` reply, or what the sentinel
/// said instead.
fn master_addr(reply: Result<Value>) -> std::result::Result<Addr, String> {
    let items = match reply {
        Ok(Value::Array(items)) => items,
        Ok(Value::Nil) => {
            return Err("null (it monitors no master by that name, or does not know it yet)".into())
        }
        Ok(other) => return Err(format!("an unexpected reply: {}", other.describe())),
        Err(e) => return Err(said(e)),
    };
    let text = |v: &Value| {
        v.as_bytes()
            .and_then(|b| std::str::from_utf8(b).ok().map(str::to_owned))
    };
    match items.as_slice() {
        [host, port] => {
            let host = text(host).ok_or("a host that is not text")?;
            let port = match port {
                Value::Int(p) => u16::try_from(*p).ok(),
                other => text(other).and_then(|p| p.parse().ok()),
            }
            .ok_or("a port that is not a port number")?;
            Ok(Addr::Tcp { host, port })
        }
        _ => Err(format!("{} items instead of host and port", items.len())),
    }
}

/// The healthy replicas in a `SENTINEL REPLICAS` reply (each an array of field-value pairs in
/// RESP2, a map in RESP3): not down or disconnected, their link to the primary up.
fn healthy_replicas(reply: Result<Value>) -> std::result::Result<Vec<Addr>, String> {
    let items = match reply {
        Ok(Value::Array(items)) => items,
        Ok(other) => return Err(format!("an unexpected reply: {}", other.describe())),
        Err(e) => return Err(said(e)),
    };
    let text = |v: &Value| {
        v.as_bytes()
            .and_then(|b| std::str::from_utf8(b).ok().map(str::to_owned))
    };
    let mut healthy = Vec::new();
    for item in items {
        let pairs: Vec<(String, String)> = match item {
            Value::Map(pairs) => pairs
                .iter()
                .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
                .collect(),
            Value::Array(flat) => flat
                .chunks(2)
                .filter_map(|kv| match kv {
                    [k, v] => Some((text(k)?, text(v)?)),
                    _ => None,
                })
                .collect(),
            _ => continue,
        };
        let field = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let flags = field("flags").unwrap_or("");
        let down = flags
            .split(',')
            .any(|f| matches!(f, "s_down" | "o_down" | "disconnected"));
        let link_up = field("master-link-status") == Some("ok");
        let (Some(ip), Some(port)) = (field("ip"), field("port").and_then(|p| p.parse().ok()))
        else {
            continue;
        };
        if !down && link_up {
            healthy.push(Addr::Tcp {
                host: ip.to_owned(),
                port,
            });
        }
    }
    Ok(healthy)
}

/// The new primary in a `+switch-master` message (`<master> <old-ip> <old-port> <new-ip>
/// <new-port>`), if it is about `master`.
fn switch_master(payload: &str, master: &str) -> Option<Addr> {
    let words: Vec<&str> = payload.split_ascii_whitespace().collect();
    match words.as_slice() {
        [name, _, _, host, port] if *name == master => Some(Addr::Tcp {
            host: (*host).to_owned(),
            port: port.parse().ok()?,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Addr {
        Addr::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn a_master_address_reply_is_read_or_said_why_not() {
        let bulk = |s: &'static str| Value::Bulk(Bytes::from_static(s.as_bytes()));
        assert_eq!(
            master_addr(Ok(Value::Array(vec![bulk("10.0.0.1"), bulk("6380")]))),
            Ok(tcp("10.0.0.1", 6380))
        );
        assert_eq!(
            master_addr(Ok(Value::Array(vec![bulk("::1"), Value::Int(7000)]))),
            Ok(tcp("::1", 7000))
        );
        assert!(master_addr(Ok(Value::Nil)).unwrap_err().contains("null"));
        assert!(
            master_addr(Ok(Value::Array(vec![bulk("h"), bulk("99999")])))
                .unwrap_err()
                .contains("port")
        );
        assert!(master_addr(Ok(Value::Array(vec![bulk("h")])))
            .unwrap_err()
            .contains("1 items"));
        let refused = Err(Error::connection("connection refused"));
        assert!(master_addr(refused).unwrap_err().contains("refused"));
    }

    #[test]
    fn switch_master_names_the_new_primary_of_this_master_only() {
        assert_eq!(
            switch_master("mymaster 127.0.0.1 6379 127.0.0.1 6380", "mymaster"),
            Some(tcp("127.0.0.1", 6380))
        );
        assert_eq!(
            switch_master("other 127.0.0.1 6379 127.0.0.1 6380", "mymaster"),
            None
        );
        assert_eq!(switch_master("mymaster 1 2 3", "mymaster"), None);
        assert_eq!(switch_master("mymaster a 1 b port", "mymaster"), None);
    }

    #[test]
    fn each_sentinel_gets_a_share_of_the_connect_timeout() {
        assert_eq!(share(Duration::from_secs(4), 3), Duration::from_secs(1));
        assert_eq!(share(Duration::from_millis(10), 3), MIN_SHARE);
    }

    /// The sentinels get the data nodes' protocol, engine and TLS, and their own credentials.
    #[test]
    fn sentinel_connections_take_their_own_credentials_and_the_shared_settings() {
        let data = Config::sentinel("m", [("s1", 26379)])
            .password("data")
            .db(3)
            .protocol(crate::Protocol::Resp2)
            .engine(crate::Engine::Epoll)
            .client_name("svc")
            .sentinel_username("su")
            .sentinel_password("sp");
        #[cfg(feature = "tls")]
        let data = data.tls(crate::Tls::new());
        let settings = data.sentinel.clone().unwrap();
        let share = Duration::from_millis(700);
        let c = sentinel_config(&data, &settings, &tcp("s1", 26379), share);
        assert_eq!(c.addr, tcp("s1", 26379));
        assert_eq!(
            (c.username.as_deref(), c.password.as_deref()),
            (Some("su"), Some("sp"))
        );
        assert_eq!(
            (c.db, c.protocol, c.engine),
            (0, crate::Protocol::Resp2, crate::Engine::Epoll)
        );
        assert_eq!(c.client_name.as_deref(), Some("svc"));
        assert_eq!((c.connect_timeout, c.command_timeout), (share, Some(share)));
        assert!(
            c.sentinel.is_none() && c.source.is_none(),
            "a plain connection"
        );
        #[cfg(feature = "tls")]
        assert!(c.tls.is_some(), "TLS to the sentinels too");
    }

    #[test]
    fn healthy_replicas_are_up_and_linked() {
        let bulk = |s: &str| Value::Bulk(Bytes::copy_from_slice(s.as_bytes()));
        let replica = |ip: &str, port: &str, flags: &str, link: &str| {
            Value::Array(
                [
                    ("name", "x"),
                    ("ip", ip),
                    ("port", port),
                    ("flags", flags),
                    ("master-link-status", link),
                ]
                .iter()
                .flat_map(|(k, v)| [bulk(k), bulk(v)])
                .collect(),
            )
        };
        let reply = Value::Array(vec![
            replica("10.0.0.1", "6379", "slave", "ok"),
            replica("10.0.0.2", "6379", "s_down,slave", "ok"),
            replica("10.0.0.3", "6379", "slave", "err"),
            replica("10.0.0.4", "6379", "slave,disconnected", "ok"),
            Value::Map(vec![
                (bulk("ip"), bulk("10.0.0.5")),
                (bulk("port"), bulk("6380")),
                (bulk("flags"), bulk("slave")),
                (bulk("master-link-status"), bulk("ok")),
            ]),
        ]);
        assert_eq!(
            healthy_replicas(Ok(reply)),
            Ok(vec![tcp("10.0.0.1", 6379), tcp("10.0.0.5", 6380)])
        );
        assert!(healthy_replicas(Ok(Value::Nil)).is_err());
    }
}
