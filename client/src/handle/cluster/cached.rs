//! Cached reads on a cluster ([`Config::cache`](crate::Config::cache)): one cache for every
//! node's connection, each of which tracks the reads made on it (`CLIENT TRACKING` in its
//! handshake), so an invalidation from any node, or a lost node connection, reaches the one
//! cache.
//!
//! A cached read goes by its keys' slot: answered from the cache, joined to the same read in
//! flight, or sent as the cache's bundle (`[CLIENT CACHING YES] <read> PTTL k…`, one write, all
//! of one slot) to the slot's node (a replica with replica reads on: its connection tracks too),
//! redirects followed as for any command, and the bundle's replies handed to the cache. The
//! leading read's bundle is sent when the call is made and runs on its own (as an `async_call`
//! does): the reads that joined it never wait for its caller to poll it. A read
//! whose keys span slots (a split `MGET`) is sent uncached (counted `uncacheable`). A read that
//! meets `ASK` (its slot is migrating and the key has left) is sent alone after `ASKING` and not
//! stored: `ASKING` holds for the next command only (the bundle's `PTTL`s would be redirected
//! back), and with `OPTIN` it would also end the `CLIENT CACHING YES` before it.
//!
//! A slot that changes owner flushes the cache (see `Core::owners_changed`): a key the old owner
//! never had (an entry of a missing key) is tracked by no node once the slot moved.

use super::core::Core;
use super::drive;
use super::pipeline::retried;
use super::send::{self, Attempt};
use super::ClusterClient;
use crate::cache::{Fill, Plan, Shared};
use crate::callable::Prepared;
use crate::client::Call;
use crate::conn::Payload;
use crate::handle::caching;
use crate::route::slot::cmd_slot;
use crate::route::topology::Target;
use crate::route::Route;
use crate::{Client, Cmd, Error, FromRedis, Result, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

impl ClusterClient {
    /// [`Redis::call_cached`](crate::Redis::call_cached) on a cluster (see the module docs).
    pub(super) fn cached_read<T: FromRedis>(&self, cmd: Cmd, ttl: Option<Duration>) -> Call<T> {
        let Some(shared) = &self.core.cache else {
            return self.call(cmd);
        };
        // A reply from memory needs no slot (see `caching::hit`).
        if let Some(value) = caching::hit(shared, 0, &cmd) {
            return Call::ready(Ok(value));
        }
        let slot = match (crate::route::route(&cmd), cmd_slot(&cmd)) {
            (Ok(Route::Shared), Ok(Some(slot))) => slot,
            // Keys in several slots (or none known, or a command the gate routes elsewhere):
            // sent as a plain call, which splits, refuses or routes it.
            _ => {
                shared.count_uncacheable();
                return self.call(cmd);
            }
        };
        match shared.plan(0, cmd, ttl) {
            Plan::Hit(value) => Call::ready(Ok(value)),
            Plan::Uncacheable(cmd) => self.call(cmd),
            Plan::Lead { fill, bundle } => {
                let deadline = self.core.start_call();
                let optin = shared.settings().optin;
                Call::later(spawn_lead(
                    self.core.clone(),
                    slot,
                    fill,
                    bundle,
                    optin,
                    deadline,
                ))
            }
            plan => {
                let core = self.core.clone();
                let shared = shared.clone();
                Call::later(read(core, shared, slot, ttl, plan))
            }
        }
    }
}

/// [`lead`], run on its own at once ([`drive::spawn`]): the reads that joined it get its
/// reply whether or not its caller polls the returned future (held unpolled, it would hold
/// them up for as long as it is; dropped, the read still fills the cache).
fn spawn_lead(
    core: Arc<Core>,
    slot: u16,
    fill: Fill,
    bundle: Vec<Cmd>,
    optin: bool,
    deadline: Option<Instant>,
) -> impl std::future::Future<Output = Result<Value>> + Send + 'static {
    let (tx, rx) = tokio::sync::oneshot::channel();
    drive::spawn(async move {
        let _ = tx.send(lead(core, slot, fill, bundle, optin, deadline).await);
    });
    async move {
        rx.await.unwrap_or_else(|_| {
            Err(Error::client(
                "a cached read's bundle ended without a reply (it panicked)",
            ))
        })
    }
}

/// Counts a cached read sent uncached in `shared`'s `uncacheable`: the plan of a read with no
/// key is that, and counted so.
/// A cached read that joined a read in flight: its reply, or when that read was given up, what
/// planning again says (joining another, leading it, sending it uncached).
async fn read(
    core: Arc<Core>,
    shared: Arc<Shared>,
    slot: u16,
    ttl: Option<Duration>,
    mut plan: Plan,
) -> Result<Value> {
    let deadline = core.start_call();
    loop {
        let cmd = match plan {
            Plan::Hit(value) => return Ok(value),
            Plan::Join(waiter, cmd) => match waiter.await {
                Some(reply) => return reply,
                // Its leading read was given up: plan anew.
                None => cmd,
            },
            Plan::Lead { fill, bundle } => {
                let optin = shared.settings().optin;
                return spawn_lead(core, slot, fill, bundle, optin, deadline).await;
            }
            Plan::Uncacheable(cmd) => {
                return send::run(core, Target::Slot(slot), cmd, deadline, None).await
            }
        };
        plan = shared.plan(0, cmd, ttl);
    }
}

/// Sends the bundle to the slot's node (redirects followed) and hands its replies to `fill`.
/// `optin`: the bundle starts with `CLIENT CACHING YES`.
async fn lead(
    core: Arc<Core>,
    slot: u16,
    fill: Fill,
    bundle: Vec<Cmd>,
    optin: bool,
    deadline: Option<Instant>,
) -> Result<Value> {
    let target = Target::Slot(slot);
    let first = send::first_node_for(&core, true, &target);
    let read = usize::from(optin);
    if bundle.len() <= read {
        return fill.finish(Err(Error::client("a cached read's bundle holds no read")));
    }
    match send::run_with(
        core,
        target,
        Bundle { cmds: bundle, read },
        deadline,
        None,
        first,
    )
    .await
    {
        Ok(Sent::Bundle(replies)) => fill.finish(Ok(Value::Array(replies))),
        // Not stored: its waiters plan again.
        Ok(Sent::Alone(value)) => {
            drop(fill);
            Ok(value)
        }
        Err(e) => fill.finish(Err(e)),
    }
}

/// A cached read's bundle: `cmds[read]` is the read.
struct Bundle {
    cmds: Vec<Cmd>,
    read: usize,
}

/// What a [`Bundle`] attempt gave.
enum Sent {
    /// Every command's reply, in order.
    Bundle(Vec<Value>),
    /// The read's own reply, sent alone after `ASKING` (see the module docs).
    Alone(Value),
}

impl Attempt for Bundle {
    type Out = Sent;

    fn readonly(&self) -> bool {
        true
    }

    async fn send(&self, client: &Client, asking: bool, timeout: Option<Duration>) -> Result<Sent> {
        if asking {
            let read = &self.cmds[self.read];
            return send::asked(client, read, Route::Shared, timeout)
                .await
                .map(Sent::Alone);
        }
        let prepared = Prepared {
            payload: Payload::batch(&self.cmds),
            finish: Ok,
            route: Route::Shared,
        };
        match client
            .call_prepared_within::<Value>(prepared, timeout)
            .await?
        {
            Value::Array(replies) if replies.len() == self.cmds.len() => {
                // One slot, one node: a redirect or a passing refusal of any of them sends the
                // whole bundle again.
                let again = replies.iter().find_map(|r| match r {
                    Value::Error(e) if retried(e) => Some(e.clone()),
                    _ => None,
                });
                match again {
                    Some(e) => Err(e.into()),
                    None => Ok(Sent::Bundle(replies)),
                }
            }
            other => Err(Error::protocol(format!(
                "a cached read's bundle of {} commands answered {}",
                self.cmds.len(),
                other.describe()
            ))),
        }
    }
}
