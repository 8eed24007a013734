//! The connections of a cluster client: one [`Client`] per node, all made from the shared
//! [`Config`] (auth, protocol, timeouts, TLS) with the node's host and port, all on one
//! placement, so a ring engine drives every node from its one thread.

use crate::cache::Shared;
use crate::config::{Addr, Config};
use crate::engine::placement::Placement;
use crate::engine::Link;
use crate::route::topology::NodeAddr;
use crate::{Client, Result, Stats};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Every node's client, made on first use.
pub(super) struct Nodes {
    /// The configuration each node's is made from (its address replaced).
    config: Config,
    /// The cache every node's connection keeps true (`Config::cache`), one for the cluster.
    cache: Option<Arc<Shared>>,
    /// Where every node's connection goes. A `RingOrEpoll` placement becomes the engine that
    /// took the first node, so the others follow it.
    placement: Mutex<Placement>,
    live: Mutex<HashMap<NodeAddr, Client>>,
    /// The counters of the nodes let go.
    retired: Mutex<Retired>,
}

/// Nodes dropped from the map: their links while a call may still run on them, then their
/// counts.
#[derive(Default)]
struct Retired {
    links: Vec<Arc<Link>>,
    stats: Stats,
}

impl Nodes {
    pub(super) fn new(config: Config, placement: Placement) -> Nodes {
        Nodes {
            cache: config.cache.clone().map(Shared::new),
            config,
            placement: Mutex::new(placement),
            live: Mutex::default(),
            retired: Mutex::default(),
        }
    }

    /// The shared configuration.
    pub(super) fn config(&self) -> &Config {
        &self.config
    }

    /// The cache of the nodes' connections.
    pub(super) fn cache(&self) -> Option<&Arc<Shared>> {
        self.cache.as_ref()
    }

    /// Where the nodes' connections and timers live.
    pub(super) fn placement(&self) -> Placement {
        self.placement
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The client of the node at `addr`, made now if there is none (it connects at its first
    /// call).
    ///
    /// # Errors
    ///
    /// As [`Client::new`]: the engine cannot take another connection.
    pub(super) fn get(&self, addr: &NodeAddr) -> Result<Client> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = live.get(addr) {
            return Ok(c.clone());
        }
        let mut config = self.config.clone();
        config.addr = Addr::Tcp {
            host: addr.host().to_owned(),
            port: addr.port(),
        };
        let client = {
            let mut placement = self.placement.lock().unwrap_or_else(|p| p.into_inner());
            let client = Client::build_cached(config, &placement, self.cache.clone())?;
            *placement = client.placement().clone();
            client
        };
        live.insert(addr.clone(), client.clone());
        Ok(client)
    }

    /// The clients made so far, by address.
    pub(super) fn all(&self) -> Vec<(NodeAddr, Client)> {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(a, c)| (a.clone(), c.clone()))
            .collect()
    }

    /// Lets go of the nodes not in `keep` (gone from the map): their calls in flight carry on
    /// to their end, their counters stay in [`Nodes::stats`].
    pub(super) fn keep_only(&self, keep: &HashSet<&NodeAddr>) {
        let gone: Vec<Client> = {
            let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            let gone: Vec<NodeAddr> = live.keys().filter(|a| !keep.contains(a)).cloned().collect();
            gone.iter().filter_map(|a| live.remove(a)).collect()
        };
        if gone.is_empty() {
            return;
        }
        let mut retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
        retired.prune();
        retired.links.extend(gone.iter().map(|c| c.link().clone()));
    }

    /// The sum of every node's counters, those let go included.
    pub(super) fn stats(&self) -> Stats {
        let live: Stats = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(Client::stats)
            .sum();
        let mut retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
        retired.prune();
        let links: Stats = retired.links.iter().map(|l| l.stats()).sum();
        live + links + retired.stats
    }
}

impl Retired {
    /// Folds the links no client holds any more into `stats` (their calls still in flight
    /// counted as dropped, as a client does for its dedicated connections).
    fn prune(&mut self) {
        let stats = &mut self.stats;
        self.links.retain(|link| {
            if Arc::strong_count(link) > 1 {
                return true;
            }
            let mut counts = link.stats();
            counts.dropped += std::mem::take(&mut counts.in_flight);
            *stats += counts;
            false
        });
    }
}
