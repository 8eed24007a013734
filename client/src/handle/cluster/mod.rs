//! [`ClusterClient`]: a Redis Cluster (or Valkey cluster) as one handle.
//!
//! Modules: `core` (the shared state: nodes, map, refresh), `nodes` (a [`Client`] per node, on
//! one placement), `topology` (the map in use, coalesced refreshes, asking nodes for the map),
//! `send` (one command: redirects and retries), `pipeline` (pipelines split per node,
//! single-slot transactions), `fanout` (commands sent to several nodes by the spec's tips, and
//! their replies made one), `scan` (the walk of a cluster-wide `SCAN` over the primaries),
//! `drive` (futures run with no runtime). The pure parts (reading
//! `CLUSTER SHARDS`/`CLUSTER SLOTS` and `MOVED`/`ASK`) are in `crate::route`.
//!
//! # Where the other cluster features plug in
//!
//! [`ClusterClient::call`] sends a single command through [`ClusterClient::plan`]: it decides
//! the [`Target`] (today: the slot of the keys, `COMMAND GETKEYS` for a command the spec does
//! not list and whose keys are not marked, else any primary). Fan-out of keyless commands by their spec tips,
//! split multi-key commands and replica reads replace or extend that decision there, and send
//! each part with [`ClusterClient::send`] (redirects followed, never resending what may have
//! run).

mod cached;
mod core;
mod drive;
mod fanout;
mod nodes;
mod pipeline;
pub(crate) mod scan;
mod send;
pub(crate) mod subscriber;
mod topology;
mod watch;

use self::core::Core;
use crate::callable::Request;
use crate::client::{Call, OnReply, Resume};
use crate::config::{Addr, Config};
use crate::conn::Payload;
use crate::engine::placement::Placement;
use crate::handle::caching;
use crate::route::slot::cmd_slot;
pub(crate) use crate::route::topology::{NodeAddr, Target};
use crate::route::Route;
use crate::{Callable, Client, Cmd, Error, FromRedis, Redis, Result, Stats, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The default [`ClusterBuilder::refresh_interval`].
const DEFAULT_REFRESH: Duration = Duration::from_secs(60);

/// A client for a Redis Cluster (or Valkey cluster): every command goes to the node serving its
/// keys' slot, over one multiplexed connection per node.
///
/// It works as a [`Client`] does: the generated command methods ([`Commands`](crate::Commands)),
/// [`call`](ClusterClient::call) with a [`cmd!`](crate::cmd!) or a pipeline,
/// [`async_call`](ClusterClient::async_call), [`pipeline`](ClusterClient::pipeline),
/// [`transaction`](ClusterClient::transaction), [`Script`](crate::Script) and
/// [`Library`](crate::Library), and `#[derive(FromRedis)]` replies; it implements [`Redis`],
/// so code written against `&impl Redis` runs on it unchanged. It is `Clone + Send + Sync` and
/// cheap to clone.
///
/// * **Routing.** A command goes to the primary serving the slot of its keys (CRC16 of the key
///   or of its `{hash tag}`: [`slot`](crate::slot)). Keys in different slots fail before
///   anything is sent with [`Error::Client`] naming `CROSSSLOT`. The generated methods mark
///   their keys from the spec, and a command built by hand (`cmd!("GET", "k")`) has its keys
///   found from the spec's key specs. For a command the spec does not list (a module's), mark
///   them with [`Cmd::key`](crate::Cmd::key) or route it with
///   [`Cmd::route_key`](crate::Cmd::route_key) — otherwise the client asks a node (`COMMAND
///   GETKEYS`, one more round trip; a command the server says has no keys is remembered by
///   name and goes to any primary from then on). A command without keys and without a tip goes
///   to a primary, in turn.
/// * **Several nodes**, as the spec's tips say. A multi-key command the spec lets split
///   (`MGET`, `MSET`, `DEL`, `UNLINK`, `EXISTS`, `TOUCH`) whose keys span slots is split into
///   one command per slot, sent at once (a node's parts in one write), each with its redirects
///   followed, and the replies merged: `MGET`'s in the caller's key order (duplicates and
///   missing keys included), `DEL`'s and the others' counts added, `MSET`'s `OK` once all
///   succeeded. A keyless command whose tip is `all_shards` (`DBSIZE`, `KEYS`, `FLUSHALL`,
///   `PING`, `FUNCTION LOAD`, `SCRIPT EXISTS`…) goes to every primary, one whose tip is
///   `all_nodes` (`CONFIG SET`, `SCRIPT LOAD`, `ACL SETUSER`…) to every node, replicas
///   included (but those the map says have failed), and the replies are made one as the
///   `response_policy` tip says (`DBSIZE` sums, `KEYS` concatenates, `SCRIPT EXISTS` ANDs,
///   `FLUSHALL` succeeds when all did). Where the tips leave it open: `RANDOMKEY` asks every
///   primary and answers one of their keys at random (nil only when the cluster is empty);
///   `INFO` and the other `special` replies (`MEMORY STATS`, `LATENCY …`, `FUNCTION STATS`)
///   are a map of each node's `host:port` to its reply (decode it into a
///   `HashMap<String, String>`); a `SCAN` call is refused with [`Error::Client`]: use
///   [`scan_iter`](ClusterClient::scan_iter). A command routed by hand
///   ([`Cmd::route_slot`](crate::Cmd::route_slot), [`Cmd::route_key`](crate::Cmd::route_key))
///   goes to that one node only: `cmd!("INFO").route_slot(0)` is the `INFO` of one node. These
///   are **not atomic**: when a part fails the call fails with its error (the first, in part
///   order), and when other parts ran (or may have: connection lost after the write, timeout)
///   the message says how many, so a failed `MSET` or `FLUSHALL` may have run on some nodes.
///   The same holds inside a pipeline, where the merged reply takes the command's place; in a
///   transaction every key must be in one slot and keyless commands run on its node only.
/// * **Topology.** Discovered at the first call (or at [`connect`](ClusterClient::connect),
///   to fail fast at startup) from the seeds (any that answers):
///   `CLUSTER SHARDS`, or `CLUSTER SLOTS` on servers before Redis 7. Refreshed when a node
///   answers `MOVED`, when a call fails with a connection error, on `CLUSTERDOWN`, and
///   periodically ([`ClusterBuilder::refresh_interval`], checked as calls come). Refreshes
///   asked at once run once. Nodes gone from the map are closed once their calls end.
/// * **Redirects and retries**, all within the command timeout
///   ([`Config::command_timeout`]): `MOVED` updates the map and sends the command to the new
///   node; `ASK` sends `ASKING` and the command in one write to the importing node; `TRYAGAIN`,
///   `CLUSTERDOWN`, `LOADING`, and a node whose connection could not be made (nothing was
///   sent) are retried after a pause; `READONLY`/`MASTERDOWN` (a node that stopped being a
///   primary) after a refresh. A command that may have run — its connection lost after it was
///   written ([`Error::Connection`] with `sent: true`), or a timeout — is never sent twice: the
///   call fails with that error.
/// * **Pipelines** are split per node and sent to all at once; the replies come back in the
///   order the commands were added. A node that fails fails only its commands: in
///   `query::<Vec<Result<Value>>>()` each of them is an error (a server error as the server
///   sent it; the client's own — connection lost, timeout — as an error whose kind is
///   `CONNECTION`, `TIMEOUT`, `PROTOCOL` or `CLIENT`); when every command failed that way the
///   call fails with the error itself, as on one connection.
/// * **Replica reads** ([`ClusterBuilder::read_from_replicas`], off by default): commands the
///   spec flags `readonly` go to the shard's replicas (stale reads accepted), others to its
///   primary.
/// * **Client-side caching** ([`Config::cache`]): one cache for the whole client, kept true by
///   every node's connection, each of which tracks the reads made on it (`CLIENT TRACKING` in
///   its handshake). A cached read (`cluster.get("k").cached()`) goes to the node of its slot
///   (a replica with replica reads on) with its redirects followed, and is answered from
///   memory from then on until that node says the key changed. A read whose keys span slots
///   (a split `MGET`), or one that meets `ASK` (its slot is migrating), is sent uncached. A
///   write through the client drops its keys from the cache before it is sent. The cache is
///   flushed when a node's connection is lost and when the client learns that a slot changed
///   owner (a `MOVED`, a refreshed map): an entry of a key the old owner did not have (a
///   missing key) is tracked by no node once its slot moved, so until the client learns of
///   the move (its next request to that node for the slot, or the periodic refresh) such an
///   entry may be served although the new owner has the key. [`cache_stats`](ClusterClient::cache_stats)
///   has the counters.
/// * **Sharded pub/sub**: [`ClusterClient::subscriber`] ([`ClusterSubscriber`](crate::ClusterSubscriber)): `SSUBSCRIBE`
///   on the node owning each channel's slot, kept there as slots move and nodes fail over.
///   `PUBLISH` goes to any primary (the cluster forwards it everywhere); `SPUBLISH` goes to
///   the primary of its channel's slot (the spec's `not_key` key spec, read like a key).
/// * **Transactions** must have every key in one slot (else [`Error::Client`] naming
///   `CROSSSLOT`) and run on that node. One whose slot moved (the node redirects its queued
///   commands and aborts it: nothing ran) is sent again whole to the new node; one whose slot
///   is migrating, with a key already moved (`ASK`), runs whole on the importing node after
///   `ASKING`.
/// * **`WATCH`**: [`watch_transaction`](ClusterClient::watch_transaction), on the keys of one
///   slot, run by its node.
/// * `READONLY`, `READWRITE` and `ASKING` stay refused to callers: the client sends `ASKING`
///   itself, and the connection state of the other two would leak to every caller.
///
/// Connections are made from one [`Config`] (credentials, protocol, timeouts, TLS, engine), the
/// host and port changed per node; all of them live on one engine (a ring engine drives every
/// node from its one thread). [`Config::db`] must be 0: a cluster has one database.
///
/// ```no_run
/// use ringdis::{cmd, ClusterClient, Commands};
///
/// # async fn demo() -> ringdis::Result<()> {
/// let cluster = ClusterClient::open(["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"])?;
/// cluster.set("user:1", "ada").await?;
/// let name: Option<String> = cluster.get("user:1").decode().await?;
/// let n: i64 = cluster.call(cmd!("INCR").key("hits")).await?;
/// let (a, b): (i64, i64) = cluster.pipeline().incr("a").incr("b").query().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClusterClient {
    core: Arc<Core>,
}

impl std::fmt::Debug for ClusterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let view = self.core.topology.view();
        f.debug_struct("ClusterClient")
            .field("seeds", &self.core.seeds)
            .field(
                "primaries",
                &view.primaries.iter().map(|(a, _)| a).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Builds a [`ClusterClient`]: [`ClusterClient::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until build() is called"]
pub struct ClusterBuilder {
    config: Config,
    seeds: Vec<NodeAddr>,
    read_from_replicas: bool,
    refresh_interval: Option<Duration>,
    error: Option<Error>,
}

impl ClusterClient {
    /// A client for the cluster these nodes belong to (any one that answers is enough). The
    /// first URL's settings (credentials, protocol, TLS, timeouts as a URL gives them) apply to
    /// every node; the others give addresses, and may repeat those settings but not give
    /// others. Nothing is connected yet: the first call discovers the cluster
    /// ([`connect`](ClusterClient::connect) to do it now).
    ///
    /// # Errors
    ///
    /// [`Error::Client`] for no URL, a URL [`Config::from_url`] refuses, a later URL that
    /// gives settings other than the first's (it names them), or as [`ClusterBuilder::build`].
    ///
    /// ```
    /// use ringdis::ClusterClient;
    ///
    /// let e = ClusterClient::open(["redis://h1:7000", "redis://:pw@h2:7000/0?protocol=2"])
    ///     .unwrap_err();
    /// assert!(e.to_string().contains("(password, protocol)"), "{e}");
    /// // Addresses only, or the same settings again, are fine.
    /// ClusterClient::open(["redis://:pw@h1:7000?protocol=2", "h2:7000", "redis://:pw@h3:7000"])?;
    /// # Ok::<(), ringdis::Error>(())
    /// ```
    pub fn open<I>(urls: I) -> Result<ClusterClient>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let urls: Vec<String> = urls.into_iter().map(|u| u.as_ref().to_owned()).collect();
        let Some(first) = urls.first() else {
            return Err(Error::client(
                "ClusterClient::open needs at least one node URL",
            ));
        };
        let config = Config::from_url(first)?;
        for url in &urls[1..] {
            differing_settings(&config, url)?;
        }
        ClusterClient::builder(config).seeds(&urls).build()
    }

    /// A builder whose nodes all get `config`'s settings (its address is the seed unless
    /// [`seed`](ClusterBuilder::seed)s are given).
    pub fn builder(config: Config) -> ClusterBuilder {
        ClusterBuilder {
            config,
            seeds: Vec::new(),
            read_from_replicas: false,
            refresh_interval: Some(DEFAULT_REFRESH),
            error: None,
        }
    }

    /// Sends a command (or a [`Pipeline`](crate::Pipeline)) and decodes its reply into `T`: to
    /// the node of its slot, redirects followed (see the type's docs).
    ///
    /// The command leaves at once; the future gives the reply. Cancel safety: dropping the
    /// future abandons the call, as on a [`Client`] (a reply still due is read and discarded,
    /// and no redirect or retry is made after that); a topology refresh it asked for runs to
    /// its end for the other callers.
    ///
    /// # Errors
    ///
    /// [`Error::Client`] before anything is sent for a command the gate refuses (as on a
    /// [`Client`]) and for keys in different slots (`CROSSSLOT`); a node's error after the
    /// redirects and retries above; [`Error::Connection`] when no node could be reached.
    pub fn call<T: FromRedis>(&self, request: impl Callable) -> Call<T> {
        self.call_request(request.into_request())
    }

    fn call_request<T: FromRedis>(&self, request: Request) -> Call<T> {
        match self.invalidate_writes(&request) {
            None => self.send_request(request),
            // The written keys drop again from the cache before the reply is handed over.
            Some(written) => Call::later(written.around(self.send_request::<Value>(request))),
        }
    }

    fn send_request<T: FromRedis>(&self, request: Request) -> Call<T> {
        match request {
            Request::One(cmd) => self.call_one(cmd),
            Request::Many { cmds, transaction } => {
                let deadline = self.core.start_call();
                if transaction {
                    Call::later(pipeline::transaction(self.core.clone(), cmds, deadline))
                } else {
                    Call::later(pipeline::pipeline(self.core.clone(), cmds, deadline))
                }
            }
        }
    }

    /// One command: the node's own call, carried on by `send::then` on an error reply.
    fn call_one<T: FromRedis>(&self, cmd: Cmd) -> Call<T> {
        let core = &self.core;
        let route = match crate::route::route(&cmd) {
            Ok(r) => r,
            Err(e) => return Call::failed(e),
        };
        let planned = match self.plan(&cmd) {
            planned @ Ok(Some(Target::Slot(_))) => planned,
            // Not one slot: the spec's tips may send it to several nodes.
            planned => match fanout::step(&cmd, planned) {
                Ok(fanout::Step::One(t)) => Ok(t),
                Ok(fanout::Step::Fan(fan)) => {
                    let deadline = core.start_call();
                    return Call::later(pipeline::fan(core.clone(), fan, deadline));
                }
                Err(e) => Err(e),
            },
        };
        let target = match planned {
            Ok(Some(t)) => t,
            Ok(None) => {
                let core = core.clone();
                let deadline = core.start_call();
                return Call::later(async move {
                    let target = send::target_by_server(&core, &cmd, deadline).await?;
                    send::run(core, target, cmd, deadline, None).await
                });
            }
            Err(e) => return Call::failed(e),
        };
        let deadline = core.start_call();
        match self.first_node(&cmd, &target) {
            Some((node, client)) => client.call_kept(&cmd, route, deadline).resumable(Resume {
                cmd,
                ctx: core.clone(),
                target,
                node,
                deadline,
                then: send::then,
            }),
            None => Call::later(send::run(core.clone(), target, cmd, deadline, None)),
        }
    }

    /// The node a single command is sent to first, by the map: for a read the spec flags
    /// `readonly` with replica reads on, a replica of the slot's shard (its error hands the
    /// call on to `send::then`, which falls back to the primary when the replica could not be
    /// reached and follows its `MOVED`); else `target`'s primary.
    #[inline]
    fn first_node(&self, cmd: &Cmd, target: &Target) -> Option<(NodeAddr, Client)> {
        send::first_node_for(&self.core, cmd.flags().readonly, target)
    }

    /// Where a single command goes: `Ok(None)` when only the server can say (a command the
    /// spec does not list, with arguments, no marked key and no slot set: `COMMAND GETKEYS` is
    /// asked).
    ///
    /// The seam for the spec-driven features: fan-out by request policy, split multi-key
    /// commands and replica reads decide here (or before it) and send with
    /// [`ClusterClient::send`].
    ///
    /// # Errors
    ///
    /// [`Error::Client`] naming `CROSSSLOT` for keys in different slots, or a slot set by hand
    /// out of range.
    pub(crate) fn plan(&self, cmd: &Cmd) -> Result<Option<Target>> {
        Ok(match cmd_slot(cmd)? {
            Some(s) => Some(Target::Slot(s)),
            None if send::keys_unknown(cmd) => None,
            None => Some(Target::AnyPrimary),
        })
    }

    /// Sends a command (or a pipeline) without waiting; `callback`, a closure or `None`, gets
    /// the reply (see [`Client::async_call`]). The callback runs where the reply is read (an
    /// engine's thread, or the runtime of the task engine); redirects and retries happen
    /// before it runs, with no runtime needed. A command goes where [`call`](ClusterClient::call)
    /// sends it (several nodes, as the spec's tips say, included). A panic in the callback is
    /// caught and counted in [`Stats::callback_panics`].
    pub fn async_call(&self, request: impl Callable, callback: impl OnReply) {
        let callback = callback.into_callback();
        let request = request.into_request();
        if let Request::One(cmd) = request {
            let written = self.invalidate_writes_of(&cmd);
            return self.async_one(cmd, callback, written);
        }
        let call: Call<Value> = self.call_request(request);
        let core = self.core.clone();
        drive::spawn(async move {
            let reply = call.await;
            if let Some(cb) = callback {
                core.answer(cb, reply);
            }
        });
    }

    /// With a cache, the keys `request`'s writes name (every command not flagged read-only,
    /// hand-built ones included: `caching::invalidate_writes`) leave it before anything is sent, and again when the reply is handed over (the
    /// returned [`Written`](caching::Written)): a read after the write's reply is not answered
    /// from what the cache held before it, nor from what a read run before the write (on a
    /// replica, or sent meanwhile) stored, whatever node's invalidation is still on its way.
    /// (With replica reads, a replica that has not applied the write yet still answers with
    /// what it has, cached or not, until it does and sends its own invalidation.)
    fn invalidate_writes(&self, request: &Request) -> Option<caching::Written> {
        match request {
            Request::One(cmd) => self.invalidate_writes_of(cmd),
            Request::Many { cmds, .. } => {
                caching::invalidate_writes(self.core.cache.as_ref()?, cmds)
            }
        }
    }

    /// [`ClusterClient::invalidate_writes`] of one command.
    #[inline]
    fn invalidate_writes_of(&self, cmd: &Cmd) -> Option<caching::Written> {
        caching::invalidate_writes(self.core.cache.as_ref()?, std::slice::from_ref(cmd))
    }

    /// [`ClusterClient::async_call`] of one command: the node's own callback, which hands the
    /// call to `send::then` (run detached) only on an error reply that calls for more.
    /// `written`: the keys to drop from the cache again before the callback gets the reply.
    fn async_one<F>(&self, cmd: Cmd, callback: Option<F>, written: Option<caching::Written>)
    where
        F: FnOnce(Result<Value>) + Send + 'static,
    {
        let on = self.core.clone();
        let answer = move |reply: Result<Value>| {
            if let Some(written) = written {
                written.replied();
            }
            if let Some(cb) = callback {
                on.answer(cb, reply);
            }
        };
        let core = &self.core;
        let planned = match self.plan(&cmd) {
            planned @ Ok(Some(Target::Slot(_))) => planned,
            // Not one slot: as `call_one`, the spec's tips may send it to several nodes (then
            // it takes `call_one`'s way below).
            planned => match fanout::step(&cmd, planned) {
                Ok(fanout::Step::One(t)) => Ok(t),
                Ok(fanout::Step::Fan(_)) => Ok(None),
                Err(e) => Err(e),
            },
        };
        let fast = match (crate::route::route(&cmd), planned) {
            (Ok(Route::Shared), Ok(Some(target))) => {
                self.first_node(&cmd, &target).map(|node| (target, node))
            }
            (Err(e), _) | (_, Err(e)) => return answer(Err(e)),
            _ => None,
        };
        let Some((target, (node, client))) = fast else {
            let call: Call<Value> = self.call_one(cmd);
            return drive::spawn(async move { answer(call.await) });
        };
        let deadline = core.start_call();
        let payload = Payload::One(cmd.clone());
        let resume = Resume {
            cmd,
            ctx: core.clone(),
            target,
            node,
            deadline,
            then: send::then,
        };
        client.submit_callback(
            payload,
            Box::new(move |reply: Result<Value>| match reply {
                Err(e) => match (resume.then)(resume, e) {
                    Ok(rest) => drive::spawn(async move { answer(rest.await) }),
                    Err(e) => answer(Err(e)),
                },
                ok => answer(ok),
            }),
        );
    }

    /// Discovers the cluster now and connects to every primary (handshake included), at
    /// once: for a service that would rather fail at startup than at its first call. Calls
    /// need none of it (the first call discovers the cluster); safe to call again.
    ///
    /// # Errors
    ///
    /// As a first call would: [`Error::Connection`] when no seed answered (each seed asked is
    /// named) or a primary could not be connected within [`Config::connect_timeout`], a
    /// node's error (e.g. `WRONGPASS`), a seed that is not a cluster node.
    ///
    /// ```no_run
    /// use ringdis::ClusterClient;
    ///
    /// # async fn demo() -> ringdis::Result<()> {
    /// let cluster = ClusterClient::open(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"])?;
    /// cluster.connect().await?; // fail fast at startup
    /// # Ok(()) }
    /// ```
    pub async fn connect(&self) -> Result<()> {
        self.core.refresh().await?;
        let primaries: Vec<Client> = self
            .core
            .topology
            .with_view(|v| v.primaries.iter().map(|(_, c)| c.clone()).collect());
        // Every primary at once; the first failure is the answer.
        let mut connecting: Vec<_> = primaries.iter().map(|c| Box::pin(c.connect())).collect();
        std::future::poll_fn(|cx| {
            let mut failed = None;
            connecting.retain_mut(|c| match c.as_mut().poll(cx) {
                std::task::Poll::Pending => true,
                std::task::Poll::Ready(Ok(_)) => false,
                std::task::Poll::Ready(Err(e)) => {
                    failed.get_or_insert(e);
                    false
                }
            });
            match failed {
                Some(e) => std::task::Poll::Ready(Err(e)),
                None if connecting.is_empty() => std::task::Poll::Ready(Ok(())),
                None => std::task::Poll::Pending,
            }
        })
        .await
    }

    /// The sum of every node's connection counters (see [`Stats`]), nodes let go included;
    /// each redirect a node answered counts in its `redirects`. The client's own calls count
    /// too: the `CLUSTER SHARDS` (or `CLUSTER SLOTS`) of each topology refresh, and each part
    /// of a command split or sent to several nodes.
    pub fn stats(&self) -> Stats {
        let mut stats = self.core.nodes.stats();
        stats.callback_panics = stats
            .callback_panics
            .saturating_add(self.core.callback_panics());
        stats
    }

    // ----- the internal API the other cluster features build on ------------------------------

    /// Sends `cmd` to `to`, following redirects and retrying what did not run (see the type's
    /// docs), within the command timeout; never resends what may have run. The command passes
    /// the gate; its slot is not checked against `to`.
    #[allow(dead_code)] // for the fan-out, sharded pub/sub and replica-read features
    pub(crate) fn send(
        &self,
        to: Target,
        cmd: Cmd,
    ) -> impl Future<Output = Result<Value>> + Send + 'static {
        let core = self.core.clone();
        let deadline = core.start_call();
        send::run(core, to, cmd, deadline, None)
    }

    /// The primaries, by the current map (after the first discovery: empty before).
    #[allow(dead_code)]
    pub(crate) fn primaries(&self) -> Vec<NodeAddr> {
        self.core.topology.with_view(|v| {
            v.map
                .shards()
                .iter()
                .map(|s| s.primary.addr.clone())
                .collect()
        })
    }

    /// The replicas of the primary at `primary`, by the current map (healthy ones first).
    #[allow(dead_code)]
    pub(crate) fn replicas_of(&self, primary: &NodeAddr) -> Vec<NodeAddr> {
        self.core.topology.with_view(|v| {
            let mut replicas: Vec<_> = v
                .map
                .shards()
                .iter()
                .filter(|s| s.primary.addr == *primary)
                .flat_map(|s| s.replicas.iter())
                .collect();
            replicas.sort_by_key(|n| !n.healthy);
            replicas.into_iter().map(|n| n.addr.clone()).collect()
        })
    }

    /// The primary serving `slot`, by the current map.
    #[allow(dead_code)]
    pub(crate) fn node_for_slot(&self, slot: u16) -> Option<NodeAddr> {
        self.core.primary(slot).map(|(a, _)| a)
    }

    /// Asks every node's map again, and resolves once a refresh that started after this ask
    /// (or was running: concurrent asks coalesce) has ended, with its outcome.
    #[allow(dead_code)]
    pub(crate) fn refresh(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        self.core.refresh()
    }

    /// The client of the node at `addr` (made now if the cluster client has none: it
    /// connects at its first call). Its calls go only there: no redirect is followed.
    #[allow(dead_code)]
    pub(crate) fn node(&self, addr: &NodeAddr) -> Result<Client> {
        self.core.nodes.get(addr)
    }

    /// Whether replicas may serve read-only commands ([`ClusterBuilder::read_from_replicas`]).
    #[allow(dead_code)]
    pub(crate) fn reads_from_replicas(&self) -> bool {
        self.core.read_from_replicas
    }

    /// The counters of the client's cache ([`Config::cache`]), one cache for every node: `None`
    /// without one.
    pub fn cache_stats(&self) -> Option<crate::CacheStats> {
        self.core.cache.as_ref().map(|c| c.stats())
    }

    /// How many topology refreshes ran (for tests).
    #[doc(hidden)]
    pub fn refreshes(&self) -> u64 {
        self.core.topology.runs()
    }
}

impl ClusterBuilder {
    /// Adds a seed node: a URL (`redis://host:port`, only its address is used: credentials,
    /// TLS and protocol come from the builder's [`Config`]) or `host:port` (`[v6]:port`). One
    /// seed per call; a malformed one is reported by [`build`](ClusterBuilder::build).
    ///
    /// ```
    /// use ringdis::{ClusterClient, Config};
    ///
    /// let e = ClusterClient::builder(Config::new()).seed("h1:7000,h2:7001").build().unwrap_err();
    /// assert!(e.to_string().contains("one seed per string"));
    /// ```
    pub fn seed(mut self, url: impl AsRef<str>) -> ClusterBuilder {
        match parse_seed(url.as_ref()) {
            Ok(addr) => {
                if !self.seeds.contains(&addr) {
                    self.seeds.push(addr);
                }
            }
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Adds seed nodes ([`seed`](ClusterBuilder::seed)).
    pub fn seeds<I>(mut self, urls: I) -> ClusterBuilder
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        for url in urls {
            self = self.seed(url);
        }
        self
    }

    /// Lets replicas serve read-only commands (default `false`: everything goes to primaries).
    ///
    /// With `true`, a single command the spec flags `readonly` (`GET`, `MGET` in one slot,
    /// `HGETALL`, `ZRANGE`…: [`CmdFlags::readonly`](crate::CmdFlags), which the generated
    /// methods set) goes to a replica of its slot's shard, in turn among the replicas the map
    /// says are healthy (connected ones first). Every node connection sends `READONLY` in its
    /// handshake, so it holds after a reconnect (callers cannot send `READONLY` themselves).
    /// The read falls back to the primary when the shard has no healthy replica or the
    /// replica's connection could not be made (nothing was sent); a `MOVED` from a replica is
    /// followed as any other. Writes, commands without the flag (a [`cmd!`](crate::cmd!)
    /// unless [`Cmd::with_flags`](crate::Cmd::with_flags) says so), pipelines and
    /// transactions stay on primaries.
    ///
    /// **Staleness.** Replication is asynchronous: a read from a replica may miss writes the
    /// primary acknowledged a moment ago, including the caller's own (read-your-writes does not
    /// hold), and two reads may go to different replicas and see the data go back in time.
    /// After a failover or while a replica resyncs, its data may lag further (a replica that
    /// is still loading answers `LOADING`, retried). Use it for reads that tolerate that.
    pub fn read_from_replicas(mut self, yes: bool) -> ClusterBuilder {
        self.read_from_replicas = yes;
        self
    }

    /// How often the map is asked again besides the refreshes redirects and errors cause
    /// (default 60 s; `None`: never). Checked as calls come: an idle client asks nothing.
    pub fn refresh_interval(mut self, every: Option<Duration>) -> ClusterBuilder {
        self.refresh_interval = every;
        self
    }

    /// The client. Nothing is connected yet: the first call discovers the cluster.
    ///
    /// # Errors
    ///
    /// [`Error::Client`] for a seed that is not a `host:port` or TCP URL, a [`Config::db`]
    /// other than 0, a Sentinel configuration ([`Config::sentinel`]: Sentinel does not manage
    /// clusters), [`Config::autoconnect`] off, or as [`Client::new`] (the engine, the
    /// configuration).
    pub fn build(self) -> Result<ClusterClient> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.config.sentinel.is_some() {
            return Err(Error::client(
                "a ClusterClient cannot use a Sentinel configuration (Config::sentinel, \
                 redis+sentinel://): a cluster is found from its nodes, not from sentinels; give \
                 its nodes' addresses (redis://host:port) as seeds",
            ));
        }
        if !self.config.autoconnect {
            return Err(Error::client(
                "a ClusterClient connects to each node as it finds it: Config::autoconnect must \
                 be on (with it off no node would ever connect)",
            ));
        }
        if self.config.db != 0 {
            return Err(Error::client(
                "a cluster has one database: Config::db must be 0 for a ClusterClient",
            ));
        }
        let mut seeds = self.seeds;
        if seeds.is_empty() {
            match &self.config.addr {
                Addr::Tcp { host, port } => seeds.push(NodeAddr::new(host, *port)),
                Addr::Unix(_) => {
                    return Err(Error::client(
                        "a cluster's nodes are reached over TCP: give the seeds as host:port",
                    ))
                }
            }
        }
        let placement = Placement::here(self.config.engine)?;
        let mut config = self.config;
        // Every node's connection says READONLY in its handshake (so it is said again on each
        // reconnect): a replica then serves reads; on a primary it changes nothing.
        config.readonly = self.read_from_replicas;
        let nodes = nodes::Nodes::new(config, placement);
        // The seeds' clients now: the configuration and engine are checked here.
        for seed in &seeds {
            nodes.get(seed)?;
        }
        let core = Core::new(nodes, seeds, self.read_from_replicas, self.refresh_interval);
        Ok(ClusterClient {
            core: Arc::new(core),
        })
    }
}

/// A later URL of [`ClusterClient::open`] that gives settings other than the first's (which
/// every node gets): refused, naming them, rather than silently ignored. A setting it leaves at
/// its default is not counted: `?protocol=2` on the first URL only is fine.
fn differing_settings(first: &Config, url: &str) -> Result<()> {
    if !url.contains("://") {
        return Ok(());
    }
    let other = Config::from_url(url)?;
    let base = Config::new();
    let mut differ = Vec::new();
    // A setting the URL gives (not the default) that is not the first URL's.
    let mut check = |given: bool, same: bool, name: &'static str| {
        if given && !same {
            differ.push(name);
        }
    };
    check(
        other.username != base.username,
        other.username == first.username,
        "user",
    );
    check(
        other.password != base.password,
        other.password == first.password,
        "password",
    );
    #[cfg(feature = "tls")]
    check(other.tls.is_some(), first.tls.is_some(), "TLS");
    check(
        other.protocol != base.protocol,
        other.protocol == first.protocol,
        "protocol",
    );
    check(other.db != base.db, other.db == first.db, "database");
    check(
        other.client_name != base.client_name,
        other.client_name == first.client_name,
        "client name",
    );
    check(
        other.connect_timeout != base.connect_timeout
            || other.command_timeout != base.command_timeout,
        other.connect_timeout == first.connect_timeout
            && other.command_timeout == first.command_timeout,
        "timeouts",
    );
    if differ.is_empty() {
        return Ok(());
    }
    let at = match &other.addr {
        Addr::Tcp { host, port } => NodeAddr::new(host, *port).to_string(),
        Addr::Unix(path) => path.display().to_string(),
    };
    Err(Error::client(format!(
        "ClusterClient::open: the URL of {at} has other settings than the first URL's ({}); \
         every node gets the first URL's: give every URL the same, or only addresses after \
         the first",
        differ.join(", ")
    )))
}

/// A seed's address from a URL or `host:port`.
fn parse_seed(seed: &str) -> Result<NodeAddr> {
    if seed.contains("://") {
        return match Config::from_url(seed)?.addr {
            Addr::Tcp { host, port } => Ok(NodeAddr::new(&host, port)),
            Addr::Unix(_) => Err(Error::client(format!(
                "cluster seed {seed}: a cluster's nodes are reached over TCP"
            ))),
        };
    }
    let bad = || {
        Error::client(format!(
            "cluster seed {seed:?}: expected host:port or a URL"
        ))
    };
    if seed.contains(',') {
        return Err(Error::client(format!(
            "cluster seed {seed:?}: one seed per string: .seeds([\"h1:7000\", \"h2:7001\"])"
        )));
    }
    let (host, port) = seed.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse().map_err(|_| bad())?;
    let (host, bracketed) = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => (v6, true),
        None => (host, false),
    };
    // An IPv6 address goes in brackets; nothing else has a colon or a space.
    if host.is_empty() || host.contains(char::is_whitespace) || (host.contains(':') && !bracketed) {
        return Err(bad());
    }
    Ok(NodeAddr::new(host, port))
}

impl Redis for ClusterClient {
    fn call<T: FromRedis>(&self, request: impl Callable) -> Call<T> {
        ClusterClient::call(self, request)
    }
    fn pipeline(&self) -> crate::Pipeline {
        ClusterClient::pipeline(self)
    }
    fn transaction(&self) -> crate::Pipeline {
        ClusterClient::transaction(self)
    }
    fn call_cached<T: FromRedis>(&self, cmd: Cmd, ttl: Option<Duration>) -> Call<T> {
        self.cached_read(cmd, ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_in_every_form() {
        assert_eq!(
            parse_seed("127.0.0.1:7000"),
            Ok(NodeAddr::new("127.0.0.1", 7000))
        );
        assert_eq!(parse_seed("[::1]:7000"), Ok(NodeAddr::new("::1", 7000)));
        assert_eq!(
            parse_seed("redis://h.example:7001"),
            Ok(NodeAddr::new("h.example", 7001))
        );
        assert_eq!(
            parse_seed("redis://:pw@10.0.0.1:7002/0"),
            Ok(NodeAddr::new("10.0.0.1", 7002))
        );
        for bad in [
            "h",
            "h:x",
            ":7000",
            "redis+unix:///tmp/s",
            "h1:7000,h2:7001",
            "::1:7000",
            "h 1:7000",
        ] {
            assert!(parse_seed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_cluster_has_one_database() {
        let refused = ClusterClient::builder(Config::new().db(3).engine(crate::Engine::Epoll))
            .seed("127.0.0.1:7000")
            .build();
        assert!(refused.is_err_and(|e| e.is_client()));
        let none = ClusterClient::open(Vec::<String>::new());
        assert!(none.is_err_and(|e| e.is_client()));
        let sentinel = ClusterClient::open(["redis+sentinel://127.0.0.1:26379/mymaster"]);
        assert!(
            sentinel.is_err_and(|e| e.is_client() && e.to_string().contains("not from sentinels"))
        );
    }

    /// A Sentinel configuration is refused: each node's connection would ask the sentinels
    /// for its address and reach the sentinels' primary, whatever node it was made for.
    #[test]
    fn a_sentinel_configuration_is_refused() {
        let url = ClusterClient::open(["redis+sentinel://127.0.0.1:26379/mymaster"]);
        assert!(
            matches!(&url, Err(Error::Client { message, .. }) if message.contains("Sentinel")),
            "{url:?}"
        );
        let config =
            Config::sentinel("mymaster", [("127.0.0.1", 26379)]).engine(crate::Engine::Epoll);
        let built = ClusterClient::builder(config)
            .seed("127.0.0.1:7000")
            .build();
        assert!(
            matches!(&built, Err(Error::Client { message, .. }) if message.contains("Sentinel")),
            "{built:?}"
        );
    }

    /// Autoconnect off is refused: a cluster client makes node connections as it finds the
    /// nodes (after a failover too), so with it off they would never connect.
    #[test]
    fn autoconnect_off_is_refused() {
        let config = Config::new()
            .autoconnect(false)
            .engine(crate::Engine::Epoll);
        let built = ClusterClient::builder(config)
            .seed("127.0.0.1:7000")
            .build();
        assert!(
            matches!(&built, Err(Error::Client { message, .. }) if message.contains("autoconnect")),
            "{built:?}"
        );
    }

    /// With no node reachable, a call fails with a connection error within the command
    /// timeout (nothing was sent), and so does the next one.
    #[test]
    fn no_reachable_node_is_a_connection_error_in_time() {
        let config = Config::new()
            .engine(crate::Engine::Epoll)
            .connect_timeout(Duration::from_millis(100))
            .command_timeout(Some(Duration::from_millis(500)));
        let cluster = ClusterClient::builder(config)
            .seeds(["127.0.0.1:1", "127.0.0.1:2"])
            .build()
            .unwrap();
        for _ in 0..2 {
            let started = std::time::Instant::now();
            let r: Result<Value> =
                futures::executor::block_on(cluster.call(Cmd::new("GET").key("k")));
            assert!(
                matches!(&r, Err(Error::Connection { sent: false, message, .. })
                    if message.contains("127.0.0.1:1") && message.contains("127.0.0.1:2")),
                "every seed asked is named: {r:?}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{:?}",
                started.elapsed()
            );
        }
    }

    /// A seed that takes the connection and never answers (a TLS port spoken to in plain
    /// text does that): the call fails in its time with a connection error saying nothing was
    /// sent and which seeds were asked, not with a timeout (which says it may have run).
    #[test]
    fn a_silent_seed_is_an_unsent_connection_error() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let config = Config::new()
            .engine(crate::Engine::Epoll)
            .connect_timeout(Duration::from_secs(10))
            .command_timeout(Some(Duration::from_millis(300)));
        let cluster = ClusterClient::builder(config)
            .seed(format!("127.0.0.1:{port}"))
            .build()
            .unwrap();
        let seed = format!("127.0.0.1:{port}");
        // One command, a pipeline, a command for every primary.
        let mut p = cluster.pipeline();
        p.add(Cmd::new("GET").key("a"))
            .add(Cmd::new("GET").key("b"));
        let calls: [Call<Value>; 3] = [
            cluster.call(Cmd::new("GET").key("k")),
            cluster.call(p),
            cluster.call(Cmd::new("DBSIZE")),
        ];
        for call in calls {
            let r = futures::executor::block_on(call);
            assert!(
                matches!(&r, Err(e @ Error::Connection { sent: false, message, .. })
                    if e.is_retryable() && message.contains(&seed)),
                "{r:?}"
            );
        }
        drop(silent);
    }

    /// Keys in different slots are refused before anything is sent (no node is reachable
    /// here: a refusal that needed one would be a connection error instead).
    #[test]
    fn crossslot_is_refused_before_sending() {
        let cluster = ClusterClient::builder(Config::new().engine(crate::Engine::Epoll))
            .seed("127.0.0.1:1")
            .build()
            .unwrap();
        let r: Result<Value> =
            futures::executor::block_on(cluster.call(Cmd::new("SUNION").key("a").key("b")));
        assert!(
            matches!(&r, Err(Error::Client { message, .. }) if message.contains("CROSSSLOT")),
            "{r:?}"
        );
        let mut t = cluster.transaction();
        t.add(Cmd::new("SET").key("{x}1").arg(1))
            .add(Cmd::new("SET").key("{y}2").arg(1));
        let r: Result<Value> = futures::executor::block_on(t.query());
        assert!(
            matches!(&r, Err(Error::Client { message, .. }) if message.contains("CROSSSLOT")),
            "{r:?}"
        );
        for gated in ["READONLY", "READWRITE", "ASKING"] {
            let r: Result<Value> = futures::executor::block_on(cluster.call(Cmd::new(gated)));
            assert!(r.is_err_and(|e| e.is_client()), "{gated}");
        }
    }
}
