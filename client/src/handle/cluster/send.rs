//! One command on a cluster: to the node of its slot, following `MOVED` (the map learns it)
//! and `ASK` (`ASKING` and the command in one write, the map unchanged), retrying what the
//! server refused for a passing reason (`TRYAGAIN`, `CLUSTERDOWN`, `LOADING`; `READONLY` and
//! `MASTERDOWN` from a node that stopped being a primary, after a refresh; a connection that
//! could not be made before anything was sent), all within the command timeout. A command that
//! may have run (a connection lost after it was written, a timeout) is never sent again: the
//! call fails with that error.
//!
//! The first attempt costs what [`Client::call`] costs: the node's own call, wrapped so that an
//! error reply hands the call to [`run`] (boxed from there on) only when it needs more.

use super::core::{left, Core};
use crate::callable::Prepared;
use crate::client::{Later, Resume};
use crate::conn::Payload;
use crate::route::redirect::{self, Redirect};
use crate::route::topology::{NodeAddr, Target};
use crate::{Client, Cmd, Error, Result, Value};
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Redirects followed for one command before its last one is its error (a slot that keeps
/// moving, or nodes that disagree).
const MAX_REDIRECTS: u32 = 16;
/// Retries of one command with no command timeout to bound them.
const MAX_RETRIES: u32 = 64;
/// The first pause before a retry; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const MAX_PAUSE: Duration = Duration::from_millis(200);

/// What a failed attempt calls for.
enum Next {
    /// The call fails with its error.
    Fail,
    /// Follow a redirect.
    Redirect(redirect::Redirection),
    /// Pause and send again: the server refused the command (or no connection came up), so it
    /// did not run. `refresh`: ask for a new map; `first`: wait for it before sending again.
    Retry { refresh: bool, first: bool },
}

fn next(err: &Error, reached: &NodeAddr) -> Next {
    if let Some(r) = redirect::redirection(err, reached.host()) {
        return Next::Redirect(r);
    }
    match err {
        Error::Connection { sent: false, .. } => Next::Retry {
            refresh: true,
            first: false,
        },
        Error::Server { kind, .. } => match kind.as_str() {
            "TRYAGAIN" | "LOADING" => Next::Retry {
                refresh: false,
                first: false,
            },
            "CLUSTERDOWN" => Next::Retry {
                refresh: true,
                first: false,
            },
            // A node that was a primary and is a replica now (a failover the map missed).
            "READONLY" | "MASTERDOWN" => Next::Retry {
                refresh: true,
                first: true,
            },
            _ => Next::Fail,
        },
        _ => Next::Fail,
    }
}

/// True when an error from a node calls for more than failing the call with it.
fn needs_more(err: &Error) -> bool {
    match err {
        Error::Connection { .. } => true,
        Error::Server { kind, .. } => matches!(
            kind.as_str(),
            "MOVED" | "ASK" | "TRYAGAIN" | "LOADING" | "CLUSTERDOWN" | "READONLY" | "MASTERDOWN"
        ),
        _ => false,
    }
}

/// [`Resume::then`] for cluster calls: the node answered `err`.
pub(super) fn then(resume: Resume, err: Error) -> std::result::Result<Later, Error> {
    if !needs_more(&err) {
        return Err(err);
    }
    let Ok(core) = resume.ctx.downcast::<Core>() else {
        return Err(err);
    };
    if let Next::Fail = next(&err, &resume.node) {
        // A connection lost with the command in flight: it may have run, so it is not sent
        // again; the map may be stale.
        core.refresh_soon();
        return Err(err);
    }
    Ok(Box::pin(run(
        core,
        resume.target,
        resume.cmd,
        resume.deadline,
        Some((resume.node, err)),
    )))
}

/// The command's first attempt: on the node of `target` by the current map, `None` when the
/// map has no node for it yet (the caller then goes through [`run`]).
#[inline]
pub(super) fn first_node(core: &Core, target: &Target) -> Option<(NodeAddr, Client)> {
    match target {
        Target::Slot(slot) => core.primary(*slot),
        Target::AnyPrimary => core.any_primary(),
        Target::Node(addr) => core.nodes.get(addr).ok().map(|c| (addr.clone(), c)),
    }
}

/// The node a command's first attempt goes to: with replica reads on, a replica of the slot's
/// shard for a read (`readonly`: a command the spec flags so); else as [`first_node`].
#[inline]
pub(super) fn first_node_for(
    core: &Core,
    readonly: bool,
    target: &Target,
) -> Option<(NodeAddr, Client)> {
    match *target {
        Target::Slot(slot) if core.read_from_replicas && readonly => {
            core.replica(slot).or_else(|| first_node(core, target))
        }
        _ => first_node(core, target),
    }
}

/// What [`run_with`] sends to a node at each attempt: one command ([`run`]), or a cached read's
/// bundle (`cached`).
pub(super) trait Attempt: Send + Sync {
    /// What an answered attempt gives.
    type Out: Send;

    /// True for a read (the spec's `readonly`): with replica reads on, it goes to a replica
    /// once the map is known.
    fn readonly(&self) -> bool;

    /// One attempt on `client`, given `timeout`; `asking`: the node is importing the slot (an
    /// `ASK` led there), so `ASKING` goes first in the same write. An error that calls for a
    /// redirect or a retry (`MOVED`, `ASK`, `TRYAGAIN`…) is given as the error.
    fn send(
        &self,
        client: &Client,
        asking: bool,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Self::Out>> + Send;
}

/// One command, where the gate's `route` says.
struct One {
    cmd: Cmd,
    route: crate::route::Route,
}

impl Attempt for One {
    type Out = Value;

    fn readonly(&self) -> bool {
        self.cmd.flags().readonly
    }

    async fn send(
        &self,
        client: &Client,
        asking: bool,
        timeout: Option<Duration>,
    ) -> Result<Value> {
        if asking {
            return asked(client, &self.cmd, self.route, timeout).await;
        }
        let prepared = Prepared {
            payload: Payload::One(self.cmd.clone()),
            finish: Ok,
            route: self.route,
        };
        client.call_prepared_within(prepared, timeout).await
    }
}

/// Sends `cmd` to `target` until it is answered, redirects followed and retries made as the
/// module docs say, within `deadline`. `failed`: an attempt already made, and its error.
pub(super) async fn run(
    core: Arc<Core>,
    target: Target,
    cmd: Cmd,
    deadline: Option<Instant>,
    failed: Option<(NodeAddr, Error)>,
) -> Result<Value> {
    let route = crate::route::route(&cmd)?;
    run_with(core, target, One { cmd, route }, deadline, failed, None).await
}

/// [`run`] of any [`Attempt`]. `first`: the node of the first attempt, when the caller chose it
/// (a replica, for a read); else the map's.
pub(super) async fn run_with<A: Attempt>(
    core: Arc<Core>,
    target: Target,
    what: A,
    deadline: Option<Instant>,
    mut failed: Option<(NodeAddr, Error)>,
    mut first: Option<(NodeAddr, Client)>,
) -> Result<A::Out> {
    let mut to: Option<NodeAddr> = None;
    let mut asking = false;
    let (mut redirects, mut retries) = (0u32, 0u32);
    let mut pause = FIRST_PAUSE;
    loop {
        if let Some((node, err)) = failed.take() {
            match next(&err, &node) {
                Next::Fail => {
                    if err.is_connection() {
                        core.refresh_soon();
                    }
                    return Err(err);
                }
                Next::Redirect(r) => {
                    redirects += 1;
                    if redirects > MAX_REDIRECTS {
                        return Err(too_many_redirects(err));
                    }
                    asking = r.kind == Redirect::Ask;
                    if !asking {
                        core.moved(r.slot, &r.to);
                    }
                    to = Some(r.to);
                }
                Next::Retry { refresh, first } => {
                    retries += 1;
                    if deadline.is_none() && retries > MAX_RETRIES {
                        return Err(err);
                    }
                    left(deadline, err.clone())?;
                    if first {
                        let _ = within(&core, deadline, core.refresh()).await;
                    } else if refresh {
                        core.refresh_soon();
                    }
                    sleep(&core, deadline, pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                    left(deadline, err)?;
                }
            }
        }
        let (node, client) = match (first.take(), to.take()) {
            (Some(chosen), _) => chosen,
            (None, Some(addr)) => {
                let client = core.nodes.get(&addr)?;
                (addr, client)
            }
            (None, None) => match first_node(&core, &target) {
                Some(found) => found,
                None if core.has_map() => {
                    let Target::Slot(slot) = target else {
                        return Err(Error::client("the cluster has no primary"));
                    };
                    // A map with a hole (a shard with no primary, mid-failover).
                    failed = Some((
                        NodeAddr::new("", 0),
                        Error::Server {
                            kind: "CLUSTERDOWN".into(),
                            message: format!("no node serves slot {slot} (by the cluster's map)"),
                        },
                    ));
                    continue;
                }
                None => {
                    // Nothing known yet: discover the cluster first.
                    match within(&core, deadline, core.refresh()).await {
                        Some(Ok(())) => {}
                        Some(Err(e)) => return Err(e),
                        None => return Err(undiscovered(&core)),
                    }
                    // The first attempt: a read goes to a replica as it would have with
                    // the map known.
                    match first_node_for(&core, what.readonly(), &target) {
                        Some(found) => found,
                        None => {
                            return Err(Error::client(
                                "the cluster's map names no node for this command",
                            ))
                        }
                    }
                }
            },
        };
        let timeout = left(deadline, Error::Timeout)?;
        let result = what
            .send(&client, std::mem::take(&mut asking), timeout)
            .await;
        match result {
            Ok(v) => return Ok(v),
            Err(e) => failed = Some((node, e)),
        }
    }
}

/// The last redirect of a command that kept being redirected, saying so (nodes that disagree,
/// or a slot that keeps moving).
fn too_many_redirects(err: Error) -> Error {
    match err {
        Error::Server { kind, message } => Error::Server {
            message: format!(
                "{message} (the command was redirected {MAX_REDIRECTS} times already: the \
                 nodes disagree on who serves the slot, or it keeps moving; not sent again)"
            ),
            kind,
        },
        other => other,
    }
}

/// The error of a call whose deadline came before the cluster's map was known: nothing was
/// sent, so it is a connection error that may be retried ([`Error::is_retryable`]), naming the
/// seeds (a TLS seed spoken to in plain text, or the reverse, hangs in the handshake until here).
pub(super) fn undiscovered(core: &Core) -> Error {
    let seeds: Vec<String> = core.seeds.iter().map(|s| s.to_string()).collect();
    // What a node said meanwhile, when one failed already (a refused port, a reset handshake).
    let last = match &*core
        .last_fetch_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
    {
        Some(Error::Connection { message, .. }) => format!("; the last node's error: {message}"),
        Some(e) => format!("; the last node's error: {e}"),
        None => String::new(),
    };
    Error::connection(format!(
        "the cluster's map was not known before the call's timeout: no node answered CLUSTER \
         SHARDS/SLOTS in time (seeds: {}; TLS as the URL says: rediss:// for TLS ports, \
         redis:// for plain ones){last}; the request was not sent",
        seeds.join(", ")
    ))
    .unsent()
}

/// `ASKING` and `cmd` in one write (nothing can come between them) where the gate's `route`
/// says `cmd` runs: `client`'s shared connection, or a dedicated one for a blocking command
/// (which would stall every other caller of the node): `cmd`'s reply.
pub(super) async fn asked(
    client: &Client,
    cmd: &Cmd,
    route: crate::route::Route,
    timeout: Option<Duration>,
) -> Result<Value> {
    let asking = Cmd::new("ASKING");
    let prepared = Prepared {
        payload: Payload::batch([&asking, cmd]),
        finish: Ok,
        route,
    };
    match client
        .call_prepared_within::<Value>(prepared, timeout)
        .await?
    {
        Value::Array(mut replies) if replies.len() == 2 => match replies.pop() {
            Some(Value::Error(e)) => Err(e.into()),
            Some(v) => Ok(v),
            None => Err(Error::protocol("ASKING: no reply")),
        },
        other => Err(Error::protocol(format!(
            "ASKING and a command answered {}",
            other.describe()
        ))),
    }
}

/// A pause of `pause`, cut short at `deadline`.
async fn sleep(core: &Core, deadline: Option<Instant>, pause: Duration) {
    let mut at = Instant::now() + pause;
    if let Some(d) = deadline {
        at = at.min(d);
    }
    core.nodes.placement().sleep_until(at).await;
}

/// `fut`'s output, or `None` once `deadline` passed first.
pub(super) async fn within<F: Future>(
    core: &Core,
    deadline: Option<Instant>,
    fut: F,
) -> Option<F::Output> {
    let Some(deadline) = deadline else {
        return Some(fut.await);
    };
    let mut fut = std::pin::pin!(fut);
    let mut timer = core.nodes.placement().sleep_until(deadline);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

/// Where commands whose keys are not marked go: `COMMAND GETKEYS` asked of a primary, for all
/// of them in one batch (a command the server says has no key arguments is remembered as such,
/// by name, and goes to any primary from then on, unasked).
///
/// # Errors
///
/// [`Error::Client`] naming `CROSSSLOT` for a command whose keys span slots (with its index
/// in `cmds`), and [`Error::Timeout`] when `deadline` passed.
pub(super) async fn targets_by_server(
    core: &Arc<Core>,
    cmds: &[&Cmd],
    deadline: Option<Instant>,
) -> std::result::Result<Vec<Target>, (usize, Error)> {
    let names: Vec<Vec<u8>> = cmds.iter().map(|c| command_name(c)).collect();
    let mut out: Vec<Option<Target>> = {
        let known = core.keyless.lock().unwrap_or_else(|p| p.into_inner());
        names
            .iter()
            .map(|n| known.contains(n).then_some(Target::AnyPrimary))
            .collect()
    };
    let ask: Vec<usize> = (0..cmds.len()).filter(|&i| out[i].is_none()).collect();
    if !ask.is_empty() && !core.has_map() {
        let _ = within(core, deadline, core.refresh()).await;
    }
    let replies: Vec<Value> = match (ask.is_empty(), core.any_primary()) {
        (false, Some((_, client))) => {
            let asks: Vec<Cmd> = ask
                .iter()
                .map(|&i| {
                    let mut getkeys = Cmd::new("COMMAND GETKEYS");
                    for a in cmds[i].args().iter() {
                        getkeys.push_arg(a);
                    }
                    getkeys
                })
                .collect();
            let timeout = left(deadline, Error::Timeout).map_err(|e| (0, e))?;
            match client
                .submit_call::<Value>(Payload::batch(&asks), timeout)
                .await
            {
                Ok(Value::Array(replies)) => replies,
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    };
    let mut replies = replies.into_iter();
    for &i in &ask {
        out[i] = Some(match replies.next() {
            Some(Value::Error(e)) if e.message.contains("no key arguments") => {
                let mut known = core.keyless.lock().unwrap_or_else(|p| p.into_inner());
                if known.len() < KEYLESS_KNOWN {
                    known.insert(names[i].clone());
                }
                Target::AnyPrimary
            }
            Some(Value::Array(keys)) => {
                let keys: Vec<bytes::Bytes> = keys
                    .into_iter()
                    .filter_map(|k| match k {
                        Value::Bulk(b) => Some(b),
                        _ => None,
                    })
                    .collect();
                slot_of(cmds[i], &keys).map_err(|e| (i, e))?
            }
            // An unknown command, wrong arguments, a node that did not answer: the command
            // goes to a primary, whose answer (or redirect) is the caller's.
            _ => Target::AnyPrimary,
        });
    }
    Ok(out
        .into_iter()
        .map(|t| t.unwrap_or(Target::AnyPrimary))
        .collect())
}

/// Where one command whose keys are not marked goes ([`targets_by_server`]).
pub(super) async fn target_by_server(
    core: &Arc<Core>,
    cmd: &Cmd,
    deadline: Option<Instant>,
) -> Result<Target> {
    match targets_by_server(core, &[cmd], deadline).await {
        Ok(mut t) => Ok(t.pop().unwrap_or(Target::AnyPrimary)),
        Err((_, e)) => Err(e),
    }
}

/// The slot of `keys` (the keys the server named for `cmd`).
fn slot_of(cmd: &Cmd, keys: &[bytes::Bytes]) -> Result<Target> {
    let mut keys = keys.iter();
    let Some(first) = keys.next() else {
        return Ok(Target::AnyPrimary);
    };
    let at = crate::slot(first);
    for key in keys {
        let other = crate::slot(key);
        if other != at {
            return Err(crate::route::slot::cross_slot(cmd, first, at, key, other));
        }
    }
    Ok(Target::Slot(at))
}

/// How many keyless command names are remembered.
const KEYLESS_KNOWN: usize = 1024;

/// The command's name, lower-case, with its subcommand for a command that has them.
fn command_name(cmd: &Cmd) -> Vec<u8> {
    let mut args = cmd.args().iter();
    let mut name = args.next().unwrap_or_default().to_ascii_lowercase();
    if crate::route::has_subcommands(&name) {
        if let Some(sub) = args.next() {
            name.push(b'|');
            name.extend(sub.to_ascii_lowercase());
        }
    }
    name
}

/// True when `cmd`'s slot must be asked of the server: a command the spec does not list (a
/// module's), with arguments after its name, no key marked and no slot set. (A command the
/// spec lists has its keys found from its key specs: see `route::slot::cmd_slot`.)
pub(super) fn keys_unknown(cmd: &Cmd) -> bool {
    cmd.key_indices().is_empty()
        && cmd.routed_slot().is_none()
        && cmd.args().len() > 1
        && cmd
            .args()
            .iter()
            .next()
            .is_some_and(|name| !crate::route::in_spec(name))
}
