//! [`SentinelSetup`]: a throwaway Sentinel deployment: one primary, one replica, three sentinels.

use crate::{RawConn, Server, ServerKind};
use ringdis::{cmd, Value};
use std::time::{Duration, Instant};

/// The master name the sentinels monitor.
pub const MASTER: &str = "mymaster";

/// One primary, one replica (`--replicaof`) and three sentinels (`<conf> --sentinel`, quorum 2,
/// `down-after-milliseconds 1000`) on free loopback ports, of one server kind; dropping it
/// stops every process.
///
/// [`SentinelSetup::start`] returns once replication is up and every sentinel knows the
/// replica and the two other sentinels, so a failover can happen; every wait is bounded.
#[derive(Debug)]
pub struct SentinelSetup {
    kind: ServerKind,
    primary: Server,
    replica: Server,
    sentinels: Vec<Server>,
}

/// How long a setup may take to settle (replication, sentinels meeting, a failover).
const SETTLE: Duration = Duration::from_secs(30);

impl SentinelSetup {
    /// Starts everything and waits until a failover could happen.
    ///
    /// # Panics
    /// When a process does not start, or the deployment does not settle within 30 s.
    pub fn start(kind: ServerKind) -> SentinelSetup {
        let primary = Server::start(kind);
        let replica = Server::builder(kind)
            .arg("replicaof", &format!("127.0.0.1 {}", primary.port()))
            .start();
        wait_until("the replica's link to the primary is up", || {
            info(replica.port(), "replication").contains("master_link_status:up")
        });
        let conf = format!(
            "sentinel monitor {MASTER} 127.0.0.1 {} 2\n\
             sentinel down-after-milliseconds {MASTER} 1000\n\
             sentinel failover-timeout {MASTER} 5000\n\
             sentinel parallel-syncs {MASTER} 1\n\
             sentinel resolve-hostnames no\n",
            primary.port()
        );
        let sentinels: Vec<Server> = (0..3)
            .map(|_| Server::builder(kind).sentinel(&conf).start())
            .collect();
        let setup = SentinelSetup {
            kind,
            primary,
            replica,
            sentinels,
        };
        wait_until(
            "every sentinel knows the replica and the two other sentinels",
            || {
                setup.sentinels.iter().all(|s| {
                    let mut c = RawConn::connect(s.port(), false);
                    let replicas = c.call(&cmd!("SENTINEL", "REPLICAS", MASTER));
                    let others = c.call(&cmd!("SENTINEL", "SENTINELS", MASTER));
                    len(&replicas) == 1 && len(&others) == 2
                })
            },
        );
        setup
    }

    /// Which server program it runs.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// The sentinels' addresses, for `Config::sentinel`.
    pub fn sentinel_addrs(&self) -> Vec<(String, u16)> {
        self.sentinels
            .iter()
            .map(|s| (s.host().to_owned(), s.port()))
            .collect()
    }

    /// `redis+sentinel://127.0.0.1:<p1>,127.0.0.1:<p2>,127.0.0.1:<p3>/mymaster`.
    pub fn url(&self) -> String {
        let list: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("{}:{}", s.host(), s.port()))
            .collect();
        format!("redis+sentinel://{}/{MASTER}", list.join(","))
    }

    /// The server that was started as the primary (it may have been killed or demoted since).
    pub fn first_primary(&self) -> &Server {
        &self.primary
    }

    /// The server that was started as the replica (it may have been promoted since).
    pub fn first_replica(&self) -> &Server {
        &self.replica
    }

    /// The port of the primary every sentinel names now, if they agree.
    pub fn agreed_primary(&self) -> Option<u16> {
        let ports: Vec<Option<u16>> = self
            .sentinels
            .iter()
            .map(|s| {
                let mut c = RawConn::connect(s.port(), false);
                master_port(&c.call(&cmd!("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)))
            })
            .collect();
        let first = ports.first().copied().flatten()?;
        ports.iter().all(|p| *p == Some(first)).then_some(first)
    }

    /// Kills the primary (SIGKILL, as a crash) and returns its port. The sentinels notice
    /// within `down-after-milliseconds` (1 s) and promote the replica:
    /// [`SentinelSetup::wait_for_failover`].
    pub fn kill_primary(&mut self) -> u16 {
        self.primary.kill();
        self.primary.port()
    }

    /// Waits until every sentinel names the first replica as the primary and the replica says
    /// it is one; returns its port.
    ///
    /// # Panics
    /// When that does not happen within 30 s.
    pub fn wait_for_failover(&self) -> u16 {
        let port = self.replica.port();
        wait_until("the sentinels promote the replica", || {
            self.agreed_primary() == Some(port) && info(port, "replication").contains("role:master")
        });
        port
    }
}

/// Waits for `done` (polled every 50 ms) for at most [`SETTLE`].
///
/// # Panics
/// Naming `what`, when the time runs out.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + SETTLE;
    while !done() {
        assert!(Instant::now() < deadline, "not within {SETTLE:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `INFO <section>` of the server on `port`, or nothing if it does not answer.
fn info(port: u16, section: &str) -> String {
    if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        return String::new();
    }
    match RawConn::connect(port, false).call(&cmd!("INFO", section)) {
        Value::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::Verbatim { text, .. } => String::from_utf8_lossy(&text).into_owned(),
        _ => String::new(),
    }
}

fn len(v: &Value) -> usize {
    match v {
        Value::Array(items) => items.len(),
        _ => 0,
    }
}

/// The port in a `SENTINEL GET-MASTER-ADDR-BY-NAME` reply.
fn master_port(v: &Value) -> Option<u16> {
    let Value::Array(items) = v else { return None };
    let port = items.get(1)?.as_bytes()?;
    std::str::from_utf8(port).ok()?.parse().ok()
}
