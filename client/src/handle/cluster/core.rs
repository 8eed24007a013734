//! The state every clone of a cluster client shares: the nodes' clients, the topology, the
//! seeds and options; routing a slot to its node, following a `MOVED` in the map, and the
//! coalesced refresh (run detached, so no caller's cancellation stops it).

use super::drive;
use super::nodes::Nodes;
use super::topology::{self, Topology, View, Wait};
use crate::cache::Shared;
use crate::route::topology::{NodeAddr, SlotMap};
use crate::{Client, Error, Result};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The least time between two refreshes nobody waits for (see [`Core::refresh_soon`]).
const REFRESH_GAP: Duration = Duration::from_millis(100);

/// The longest a refresh waits for one node's answer.
const REFRESH_TRY: Duration = Duration::from_secs(2);

pub(super) struct Core {
    pub nodes: Nodes,
    pub topology: Arc<Topology>,
    /// The addresses the client was given, asked when no known node answers.
    pub seeds: Vec<NodeAddr>,
    /// The command timeout of the shared configuration: a call's redirects and retries all
    /// fit in it.
    pub timeout: Option<Duration>,
    pub read_from_replicas: bool,
    tls: bool,
    /// Set once a node answered that it has no `CLUSTER SHARDS`.
    use_slots: Arc<AtomicBool>,
    /// Turns for keyless commands among the primaries.
    next_primary: AtomicUsize,
    /// Turns for reads among a shard's replicas.
    next_replica: AtomicUsize,
    /// Hand-built commands the server said have no key arguments (by name, with their
    /// subcommand), so they are not asked about again.
    pub keyless: Mutex<HashSet<Vec<u8>>>,
    /// `async_call` callbacks that panicked (counted here, not by a node's connection: the
    /// callback may run after a redirect, off every connection).
    callback_panics: AtomicU64,
    /// The last error a node gave while the map was being fetched, until a map is installed:
    /// the cause a call that timed out before any map was known names.
    pub last_fetch_error: Mutex<Option<Error>>,
    /// The cache every node's connection keeps true ([`Config::cache`](crate::Config::cache)),
    /// flushed when a slot changes owner (see `cached`).
    pub cache: Option<Arc<Shared>>,
}

impl Core {
    pub fn new(
        nodes: Nodes,
        seeds: Vec<NodeAddr>,
        read_from_replicas: bool,
        refresh_interval: Option<Duration>,
    ) -> Core {
        let cache = nodes.cache().cloned();
        let config = nodes.config();
        let timeout = config.command_timeout;
        #[cfg(feature = "tls")]
        let tls = config.tls.is_some();
        #[cfg(not(feature = "tls"))]
        let tls = false;
        Core {
            nodes,
            topology: Arc::new(Topology::new(refresh_interval)),
            seeds,
            timeout,
            read_from_replicas,
            tls,
            use_slots: Arc::new(AtomicBool::new(false)),
            next_primary: AtomicUsize::new(0),
            next_replica: AtomicUsize::new(0),
            keyless: Mutex::default(),
            callback_panics: AtomicU64::new(0),
            last_fetch_error: Mutex::default(),
            cache,
        }
    }

    /// Runs an `async_call` callback: a panic in it is caught and counted
    /// ([`Stats::callback_panics`](crate::Stats::callback_panics)), never reaching the thread
    /// that runs it (an engine's, the timer's, a runtime's).
    pub fn answer<F: FnOnce(Result<crate::Value>)>(
        &self,
        callback: F,
        reply: Result<crate::Value>,
    ) {
        let run = std::panic::AssertUnwindSafe(move || callback(reply));
        if std::panic::catch_unwind(run).is_err() {
            self.callback_panics.fetch_add(1, Ordering::Relaxed);
            crate::trace::warning!("a cluster async_call callback panicked; the client carries on");
        }
    }

    /// The callbacks that panicked ([`Core::answer`]).
    pub fn callback_panics(&self) -> u64 {
        self.callback_panics.load(Ordering::Relaxed)
    }

    /// The primary serving `slot`, by the current map.
    #[inline]
    pub fn primary(&self, slot: u16) -> Option<(NodeAddr, Client)> {
        self.topology.with_view(|v| v.primary(slot).cloned())
    }

    /// A replica of the shard serving `slot`, in turn among its healthy ones, connected ones
    /// first (a replica whose connection is down is tried only when none is up, so one that
    /// died costs a failed connect, not every read); `None` when the shard has no healthy
    /// replica (the read goes to the primary).
    pub fn replica(&self, slot: u16) -> Option<(NodeAddr, Client)> {
        let healthy: Vec<NodeAddr> = self.topology.with_view(|v| {
            let shard = v.map.shards().get(v.map.shard_index(slot)?)?;
            Some(
                shard
                    .replicas
                    .iter()
                    .filter(|n| n.healthy)
                    .map(|n| n.addr.clone())
                    .collect(),
            )
        })?;
        if healthy.is_empty() {
            return None;
        }
        let turn = self.next_replica.fetch_add(1, Ordering::Relaxed);
        let clients: Vec<(NodeAddr, Client)> = healthy
            .into_iter()
            .filter_map(|a| self.nodes.get(&a).ok().map(|c| (a, c)))
            .collect();
        let up: Vec<&(NodeAddr, Client)> =
            clients.iter().filter(|(_, c)| c.is_connected()).collect();
        if !up.is_empty() {
            return up.get(turn % up.len()).map(|&n| n.clone());
        }
        clients.get(turn % clients.len().max(1)).cloned()
    }

    /// A primary, in turn (for a command with no key).
    pub fn any_primary(&self) -> Option<(NodeAddr, Client)> {
        self.topology.with_view(|v| {
            if v.primaries.is_empty() {
                return None;
            }
            let turn = self.next_primary.fetch_add(1, Ordering::Relaxed) % v.primaries.len();
            v.primaries.get(turn).cloned()
        })
    }

    /// A `MOVED`: `slot` is served by `to` from now on. The map changes for that slot at once
    /// and a refresh is asked for the rest.
    pub fn moved(self: &Arc<Self>, slot: u16, to: &NodeAddr) {
        let mut changed = false;
        self.topology.update(|view| {
            if view.primary(slot).is_some_and(|(a, _)| a == to) {
                return None;
            }
            let map = view.map.moved(slot, to);
            changed = true;
            self.view_of(map).ok()
        });
        if changed {
            self.owners_changed();
        }
        self.refresh_soon();
    }

    /// Several `MOVED`s at once ([`Core::moved`]), in one change of the map.
    pub fn moved_all(self: &Arc<Self>, moved: &[(u16, NodeAddr)]) {
        if moved.is_empty() {
            return;
        }
        let mut changed = false;
        self.topology.update(|view| {
            let stale: Vec<&(u16, NodeAddr)> = moved
                .iter()
                .filter(|(slot, to)| view.primary(*slot).is_none_or(|(a, _)| a != to))
                .collect();
            if stale.is_empty() {
                return None;
            }
            let mut map = view.map.clone();
            for (slot, to) in stale {
                map.set_owner(*slot, to);
            }
            changed = true;
            self.view_of(map).ok()
        });
        if changed {
            self.owners_changed();
        }
        self.refresh_soon();
    }

    /// Asks for a refresh and returns at once: it runs detached, unless one runs already or
    /// ended less than [`REFRESH_GAP`] ago.
    pub fn refresh_soon(self: &Arc<Self>) {
        if self.topology.begin_unless_recent(REFRESH_GAP) {
            self.start_refresh();
        }
    }

    /// A refresh: resolves once one that started after this ask (or was running) ends.
    pub fn refresh(self: &Arc<Self>) -> Wait {
        let (target, start) = self.topology.begin();
        if start {
            self.start_refresh();
        }
        self.topology.wait(target)
    }

    /// A call starts: asks for the periodic refresh when it is due (checked as calls come:
    /// no timer, no runtime needed), and returns when the call gives up.
    #[inline]
    pub fn start_call(self: &Arc<Self>) -> Option<Instant> {
        let now = Instant::now();
        if self.topology.is_due(now) {
            self.refresh_soon();
        }
        self.timeout.map(|t| now + t)
    }

    /// True once a map is known.
    pub fn has_map(&self) -> bool {
        self.topology.with_view(|v| !v.map.is_empty())
    }

    fn start_refresh(self: &Arc<Self>) {
        let core = self.clone();
        drive::spawn(async move {
            let result = core.run_refresh().await;
            core.topology.end(result);
        });
    }

    /// Asks the known nodes (connected primaries first, then the other nodes, then the seeds)
    /// for the map, and installs it.
    async fn run_refresh(&self) -> Result<()> {
        let candidates = self.candidates()?;
        let per_try = self.timeout.map_or(REFRESH_TRY, |t| t.min(REFRESH_TRY));
        let placement = self.nodes.placement();
        let map = topology::fetch(
            candidates,
            self.tls,
            self.use_slots.clone(),
            per_try,
            move |at| placement.sleep_until(at),
            |e| {
                *self
                    .last_fetch_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
            },
        )
        .await?;
        self.install(map)?;
        *self
            .last_fetch_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    /// The nodes to ask, best first.
    fn candidates(&self) -> Result<Vec<(NodeAddr, Client)>> {
        let view = self.topology.view();
        let mut seen: HashSet<NodeAddr> = HashSet::new();
        let mut connected = Vec::new();
        let mut others = Vec::new();
        let known = view.primaries.iter().cloned().chain(self.nodes.all());
        for (addr, client) in known {
            if !seen.insert(addr.clone()) {
                continue;
            }
            if client.is_connected() {
                connected.push((addr, client));
            } else {
                others.push((addr, client));
            }
        }
        let mut seeds = Vec::new();
        for addr in &self.seeds {
            if seen.insert(addr.clone()) {
                seeds.push((addr.clone(), self.nodes.get(addr)?));
            }
        }
        connected.extend(others);
        connected.extend(seeds);
        Ok(connected)
    }

    /// Makes `map` the current one; lets go of the nodes it no longer names (the seeds'
    /// clients are kept: the next refresh may need them).
    fn install(&self, map: SlotMap) -> Result<()> {
        let view = self.view_of(map)?;
        let keep: HashSet<&NodeAddr> = view
            .map
            .shards()
            .iter()
            .flat_map(|s| std::iter::once(&s.primary).chain(&s.replicas))
            .map(|n| &n.addr)
            .chain(&self.seeds)
            .collect();
        self.nodes.keep_only(&keep);
        let moved = {
            let old = self.topology.view();
            !old.map.is_empty() && !same_owners(&old.map, &view.map)
        };
        self.topology.set(view);
        if moved {
            self.owners_changed();
        }
        Ok(())
    }

    /// A slot changed owner (a `MOVED`, a refreshed map: a migration, a failover): the cache
    /// goes whole. The old owner tracked the reads made there, but nothing tells the new one:
    /// a key it never had (an entry of a missing key), written there now, would otherwise stay
    /// cached. (A key the old owner had is invalidated by it as it migrates the key away.)
    fn owners_changed(&self) {
        if let Some(cache) = &self.cache {
            cache.flush();
        }
    }

    /// The view of `map`: each shard's primary with its client.
    fn view_of(&self, map: SlotMap) -> Result<View> {
        let primaries = map
            .shards()
            .iter()
            .map(|s| Ok((s.primary.addr.clone(), self.nodes.get(&s.primary.addr)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(View { map, primaries })
    }
}

/// True when every slot has the same primary in both maps.
fn same_owners(old: &SlotMap, new: &SlotMap) -> bool {
    fn primary(map: &SlotMap, slot: u16) -> Option<&NodeAddr> {
        map.shard_of(slot).map(|s| &s.primary.addr)
    }
    (0..crate::route::keyslot::SLOTS).all(|slot| primary(old, slot) == primary(new, slot))
}

/// What is left of a call's time at `deadline`; `Err(last)` once it is over.
pub(super) fn left(deadline: Option<Instant>, last: Error) -> Result<Option<Duration>> {
    match deadline {
        None => Ok(None),
        Some(d) => match d.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(Some(left)),
            _ => Err(last),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::keyslot::SLOTS;

    /// A map that moved one slot has other owners; the same owners in a new map (a refresh
    /// that changed nothing) do not flush the cache.
    #[test]
    fn owners_compared_slot_by_slot() {
        let (a, b) = (
            NodeAddr::new("10.0.0.1", 7000),
            NodeAddr::new("10.0.0.2", 7000),
        );
        let mut one = SlotMap::default();
        for slot in 0..SLOTS {
            one.set_owner(slot, if slot < 8192 { &a } else { &b });
        }
        assert!(same_owners(&one, &one.clone()));
        assert!(!same_owners(&one, &one.moved(5, &b)));
        assert!(!same_owners(&one, &SlotMap::default()));
        // The shards in another order, the same owners.
        let mut other = SlotMap::default();
        for slot in (0..SLOTS).rev() {
            other.set_owner(slot, if slot < 8192 { &a } else { &b });
        }
        assert!(same_owners(&one, &other));
    }
}
