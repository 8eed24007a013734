//! [`ClusterSubscriber`]: sharded pub/sub (`SSUBSCRIBE`) on a cluster. One [`Subscriber`] per
//! node in use, all feeding one queue; a watcher (a [`drive`](super::drive) task) keeps each
//! channel on the node that owns its slot as slots move and primaries fail over.

use super::drive;
use super::ClusterClient;
use crate::inbox::{shared_inbox, InboxRx, InboxTx};
use crate::route::redirect::{self, Redirect};
use crate::route::slot::slot;
use crate::route::topology::NodeAddr;
use crate::subscriber::names;
use crate::{Error, Message, Result, Stats, Subscriber};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How often the watcher looks at the map while a channel has no live home (a node down, a
/// failover not yet in the map, a subscribe refused).
const UNSETTLED_EVERY: Duration = Duration::from_millis(250);
/// Redirects followed for one slot's `SSUBSCRIBE` before it counts as not placed.
const MAX_REDIRECTS: u32 = 5;

/// Sharded pub/sub on a cluster: [`ClusterClient::subscriber`].
///
/// [`ssubscribe`](ClusterSubscriber::ssubscribe) subscribes each shard channel on the primary
/// that owns its slot (one connection per node in use, made from the cluster's [`Config`](crate::Config)
/// (crate::Config), on its engine); messages from every node arrive on one stream of
/// `Result<`[`Message`]`>`, the same items as a [`Subscriber`]'s (read it as a
/// [`Stream`](futures_core::Stream) or with [`next_message`](ClusterSubscriber::next_message)).
/// The queue is bounded as a [`Subscriber`]'s ([`Config::subscriber_queue_limit`](crate::Config::subscriber_queue_limit)
/// (crate::Config::subscriber_queue_limit), [`Error::Lagged`] for drops).
///
/// The subscriber keeps every channel asked for on the node serving it, by itself:
///
/// * **A slot moved** (resharding): the old owner unsubscribes the slot's channels (Redis 7
///   sends a `sunsubscribe` nobody asked for), or answers `MOVED` to `SSUBSCRIBE`; the map is
///   refreshed and the channel subscribed on its new owner.
/// * **A primary failed**: its connection is lost (reported once on the stream as
///   [`Error::Connection`], as a [`Subscriber`] does); the subscriber asks for the map every
///   250 ms until it names a new owner (the promoted replica), then subscribes there.
/// * **A connection lost** to a node that still owns its channels: it reconnects and subscribes
///   again by itself, as a [`Subscriber`] does.
///
/// **What can be missed.** Pub/sub keeps no history: messages published while no connection is
/// subscribed to the channel are lost. That happens between the moment the old owner drops the
/// channel (slot moved, node down) and the moment the new owner confirms the subscription — a
/// map refresh and a round trip after a move; after a failover, until the cluster promotes a
/// replica (its `cluster-node-timeout` and election) and the map shows it. A reader that must
/// not miss anything keeps its own record (a stream, a list) and reads it again after
/// [`Error::Connection`].
///
/// A channel unsubscribed with [`sunsubscribe`](ClusterSubscriber::sunsubscribe) is never
/// subscribed again. Dropping the subscriber closes its connections; its stream does not end
/// while it lives.
///
/// ```no_run
/// use futures::StreamExt;
/// use ringdis::{cmd, ClusterClient, Error};
///
/// # async fn demo() -> ringdis::Result<()> {
/// let cluster = ClusterClient::open(["redis://127.0.0.1:7000"])?;
/// let mut sub = cluster.subscriber()?;
/// sub.ssubscribe(["orders:{eu}", "orders:{us}"]).await?; // on the nodes owning the slots
/// let n: i64 = cluster.call(cmd!("SPUBLISH", "orders:{eu}", "new")).await?; // its slot's node
/// while let Some(item) = sub.next().await {
///     match item {
///         Ok(msg) => println!("{:?} on {:?}", msg.payload_str(), msg.channel_str()),
///         Err(Error::Lagged { dropped }) => eprintln!("{dropped} messages dropped"),
///         Err(e) => eprintln!("{e}"), // a node lost: messages meanwhile are lost
///     }
/// }
/// # Ok(()) }
/// ```
pub struct ClusterSubscriber {
    shared: Arc<Shared>,
    inbox: InboxRx,
}

struct Shared {
    cluster: ClusterClient,
    /// The queue's end the node subscribers' ends are shared from (it keeps the stream open).
    tx: InboxTx,
    rx: InboxRx,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    /// What the user asked for and did not unsubscribe from.
    wanted: BTreeSet<Bytes>,
    /// Per node in use: its subscriber and the channels subscribed there.
    nodes: HashMap<NodeAddr, NodeSub>,
}

struct NodeSub {
    sub: Subscriber,
    channels: BTreeSet<Bytes>,
}

impl std::fmt::Debug for ClusterSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSubscriber")
            .field("cluster", &self.shared.cluster)
            .finish_non_exhaustive()
    }
}

impl ClusterClient {
    /// A sharded pub/sub subscriber on this cluster (see [`ClusterSubscriber`]). Nothing is
    /// connected until the first [`ssubscribe`](ClusterSubscriber::ssubscribe), which makes
    /// one connection per node in use, from the cluster's configuration and on its engine.
    ///
    /// # Errors
    ///
    /// None yet: connections are made by `ssubscribe`, whose errors say why (`Result` keeps
    /// the signature of [`Client::subscriber`](crate::Client::subscriber)).
    pub fn subscriber(&self) -> Result<ClusterSubscriber> {
        let limit = self.core.nodes.config().subscriber_queue_limit;
        let (tx, rx) = shared_inbox(limit);
        let shared = Arc::new(Shared {
            cluster: self.clone(),
            tx,
            rx: rx.share(),
            state: tokio::sync::Mutex::default(),
        });
        drive::spawn(watch(Arc::downgrade(&shared), rx.share()));
        Ok(ClusterSubscriber { shared, inbox: rx })
    }
}

impl ClusterSubscriber {
    /// `SSUBSCRIBE`: each channel on the primary owning its slot (one `SSUBSCRIBE` per slot);
    /// resolves once every node confirmed. Channels already subscribed are left as they are.
    ///
    /// # Errors
    ///
    /// [`Error::Client`] for an empty list; a node's refusal (an ACL `NOPERM`; `MOVED` still
    /// after a few redirects) for the channels it refused, which are then not held; as
    /// [`Subscriber::ssubscribe`] for a lost connection or a timeout (the channels are held: the
    /// subscriber restores them by itself).
    pub async fn ssubscribe<I, S>(&self, channels: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let names = names(channels);
        if names.is_empty() {
            return Err(Error::client("ssubscribe needs at least one shard channel"));
        }
        let mut state = self.shared.state.lock().await;
        let new: Vec<Bytes> = names
            .into_iter()
            .filter(|n| state.wanted.insert(n.clone()))
            .collect();
        let (failed, first_error) = self.shared.place(&mut state, new).await;
        for n in &failed {
            state.wanted.remove(n);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// `SUNSUBSCRIBE`: from the given shard channels, or from all with an empty list. They are
    /// never subscribed again (a move or failover does not bring them back).
    ///
    /// # Errors
    ///
    /// As [`Subscriber::sunsubscribe`] ([`Error::Timeout`] when a node did not confirm in
    /// time); the channels are dropped here whatever the outcome.
    pub async fn sunsubscribe<I, S>(&self, channels: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let names = names(channels);
        let mut state = self.shared.state.lock().await;
        let gone: BTreeSet<Bytes> = if names.is_empty() {
            std::mem::take(&mut state.wanted)
        } else {
            names
                .into_iter()
                .filter(|n| state.wanted.remove(n))
                .collect()
        };
        let mut first_error = None;
        let mut empty = Vec::new();
        for (addr, node) in state.nodes.iter_mut() {
            let here: Vec<Bytes> = node.channels.intersection(&gone).cloned().collect();
            if here.is_empty() {
                continue;
            }
            for c in &here {
                node.channels.remove(c);
            }
            if node.channels.is_empty() {
                // Closing the connection unsubscribes from everything on that node.
                empty.push(addr.clone());
                continue;
            }
            for group in by_slot(here).into_values() {
                if let Err(e) = node.sub.sunsubscribe(group).await {
                    first_error.get_or_insert(e);
                }
            }
        }
        for addr in empty {
            state.nodes.remove(&addr);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The next message or report, as [`Subscriber::next_message`]: `Ok(None)` when the
    /// timeout passed with nothing.
    ///
    /// # Errors
    ///
    /// As [`Subscriber::next_message`].
    pub async fn next_message(&mut self, timeout: Option<Duration>) -> Result<Option<Message>> {
        let placement = self.shared.cluster.core.nodes.placement();
        let mut timer = timeout.map(|t| placement.sleep_until(Instant::now() + t));
        poll_fn(|cx| {
            if let Poll::Ready(item) = self.inbox.poll_next(cx) {
                return Poll::Ready(item.map(|r| r.map(Some)).unwrap_or(Ok(None)));
            }
            match timer.as_mut().map(|t| t.as_mut().poll(cx)) {
                Some(Poll::Ready(_)) => Poll::Ready(match self.inbox.down() {
                    Some(down) => Err(down),
                    None => Ok(None),
                }),
                _ => Poll::Pending,
            }
        })
        .await
    }

    /// The shard channels held now (asked for and not unsubscribed), sorted.
    pub async fn channels(&self) -> Vec<Bytes> {
        self.shared
            .state
            .lock()
            .await
            .wanted
            .iter()
            .cloned()
            .collect()
    }

    /// Where each channel is subscribed now: the node's address (`host:port`) per channel;
    /// a channel waiting for a new home (after a move or a failure) is missing.
    pub async fn placement(&self) -> BTreeMap<Bytes, String> {
        let state = self.shared.state.lock().await;
        state
            .nodes
            .iter()
            .flat_map(|(addr, n)| {
                n.channels
                    .iter()
                    .map(move |c| (c.clone(), addr.to_string()))
            })
            .collect()
    }

    /// The sum of the node connections' counters (see [`Stats`]); zeros while an
    /// (un)subscribe or a move is under way (their list is locked then).
    pub fn stats(&self) -> Stats {
        match self.shared.state.try_lock() {
            Ok(state) => state.nodes.values().map(|n| n.sub.stats()).sum(),
            Err(_) => Stats::default(),
        }
    }

    /// How many messages are queued, unread.
    pub fn queued(&self) -> usize {
        self.inbox.queued().0
    }

    /// How many messages were dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.inbox.dropped()
    }
}

/// Messages and reports of every node in order of arrival (see [`ClusterSubscriber`]).
impl futures_core::Stream for ClusterSubscriber {
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Message>>> {
        self.inbox.poll_next(cx)
    }
}

impl Shared {
    /// Subscribes `channels` (none held anywhere) on the owners of their slots, by the map,
    /// following `MOVED`. Returns the channels refused, and the first error.
    async fn place(&self, state: &mut State, channels: Vec<Bytes>) -> (Vec<Bytes>, Option<Error>) {
        let mut failed = Vec::new();
        let mut first_error = None;
        if channels.is_empty() {
            return (failed, first_error);
        }
        if !self.has_map() {
            let _ = self.cluster.refresh().await;
        }
        for (slot, group) in by_slot(channels) {
            let mut to = self.cluster.node_for_slot(slot);
            let mut redirects = 0;
            let outcome = loop {
                let Some(addr) = to.take() else {
                    break Err(Error::Server {
                        kind: "CLUSTERDOWN".into(),
                        message: format!("no node serves slot {slot} (by the cluster's map)"),
                    });
                };
                let node = match self.node_sub(state, &addr) {
                    Ok(n) => n,
                    Err(e) => break Err(e),
                };
                match node.sub.ssubscribe(&group).await {
                    Ok(()) => {
                        node.channels.extend(group.iter().cloned());
                        break Ok(());
                    }
                    Err(e) => {
                        if let Some(r) = redirect::redirection(&e, addr.host()) {
                            redirects += 1;
                            if redirects <= MAX_REDIRECTS {
                                if r.kind == Redirect::Moved {
                                    self.cluster.core.moved(r.slot, &r.to);
                                }
                                to = Some(r.to);
                                continue;
                            }
                        }
                        if matches!(e, Error::Connection { .. } | Error::Timeout) {
                            // Held by that subscriber all the same: restored when it is back.
                            node.channels.extend(group.iter().cloned());
                        }
                        break Err(e);
                    }
                }
            };
            self.drop_idle(state);
            if let Err(e) = outcome {
                if !matches!(e, Error::Connection { .. } | Error::Timeout) {
                    failed.extend(group);
                }
                first_error.get_or_insert(e);
            }
        }
        (failed, first_error)
    }

    fn has_map(&self) -> bool {
        self.cluster.core.has_map()
    }

    /// The subscriber of the node at `addr`, made now if there is none.
    fn node_sub<'a>(&self, state: &'a mut State, addr: &NodeAddr) -> Result<&'a mut NodeSub> {
        if !state.nodes.contains_key(addr) {
            let client = self.cluster.node(addr)?;
            let sub = client.subscriber_into(self.tx.share(), self.rx.share())?;
            state.nodes.insert(
                addr.clone(),
                NodeSub {
                    sub,
                    channels: BTreeSet::new(),
                },
            );
        }
        state
            .nodes
            .get_mut(addr)
            .ok_or_else(|| Error::client("no subscriber for that node"))
    }

    /// Closes the node subscribers that hold nothing.
    fn drop_idle(&self, state: &mut State) {
        state.nodes.retain(|_, n| !n.channels.is_empty());
    }

    /// Brings the subscriptions in line with the map: channels the servers dropped, or held by
    /// a node that no longer owns their slot, go to their owner. Returns true when everything
    /// wanted is held by a connected node that owns it.
    async fn reconcile(&self, dropped: Vec<Bytes>) -> bool {
        let mut state = self.state.lock().await;
        let state = &mut *state;
        for c in &dropped {
            for node in state.nodes.values_mut() {
                node.channels.remove(c);
            }
        }
        let mut homeless: Vec<Bytes> = Vec::new();
        let mut down_moved = Vec::new();
        for (addr, node) in state.nodes.iter_mut() {
            let misplaced: Vec<Bytes> = node
                .channels
                .iter()
                .filter(|c| self.cluster.node_for_slot(slot(c)).as_ref() != Some(addr))
                .cloned()
                .collect();
            if misplaced.is_empty() {
                continue;
            }
            if !node.sub.is_connected() {
                // A node down that lost (some of) its slots: its connection goes, everything
                // it held is placed again.
                down_moved.push(addr.clone());
                continue;
            }
            for c in &misplaced {
                node.channels.remove(c);
            }
            for group in by_slot(misplaced).into_values() {
                let _ = node.sub.sunsubscribe(group).await;
            }
        }
        for addr in down_moved {
            if let Some(node) = state.nodes.remove(&addr) {
                homeless.extend(node.channels);
            }
        }
        self.drop_idle(state);
        let held: BTreeSet<&Bytes> = state.nodes.values().flat_map(|n| &n.channels).collect();
        homeless.extend(
            state
                .wanted
                .iter()
                .filter(|c| !held.contains(c))
                .cloned()
                .collect::<Vec<_>>(),
        );
        homeless.sort();
        homeless.dedup();
        homeless.retain(|c| state.wanted.contains(c));
        let (_failed, error) = self.place(state, homeless).await;
        error.is_none()
            && state.nodes.values().all(|n| n.sub.is_connected())
            && state
                .wanted
                .iter()
                .all(|c| state.nodes.values().any(|n| n.channels.contains(c)))
    }
}

/// The watcher: waits for news from the connections (channels dropped, a connection lost) and
/// reconciles; while something is unsettled, looks again every [`UNSETTLED_EVERY`]. Ends when
/// the subscriber is dropped.
async fn watch(shared: Weak<Shared>, rx: InboxRx) {
    let placement = match shared.upgrade() {
        Some(s) => s.cluster.core.nodes.placement(),
        None => return,
    };
    let mut settled = true;
    let mut timer = None;
    loop {
        if !settled && timer.is_none() {
            timer = Some(placement.sleep_until(Instant::now() + UNSETTLED_EVERY));
        }
        let news = poll_fn(|cx| {
            if let Poll::Ready(w) = rx.poll_watch(cx) {
                if w.stopped {
                    return Poll::Ready(None);
                }
                // While unsettled, a lost connection (a dead node's reconnect attempts fail
                // one after another) waits for the next look; dropped channels do not.
                if settled || !w.dropped.is_empty() {
                    return Poll::Ready(Some(w.dropped));
                }
            }
            match timer.as_mut().map(|t| t.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(Some(Vec::new())),
                _ => Poll::Pending,
            }
        })
        .await;
        let Some(dropped) = news else { return };
        timer = None;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let _ = shared.cluster.refresh().await;
        settled = shared.reconcile(dropped).await;
    }
}

/// Channels grouped by slot (an `SSUBSCRIBE` holds channels of one slot).
fn by_slot(channels: Vec<Bytes>) -> BTreeMap<u16, Vec<Bytes>> {
    let mut groups: BTreeMap<u16, Vec<Bytes>> = BTreeMap::new();
    for c in channels {
        groups.entry(slot(&c)).or_default().push(c);
    }
    groups
}

impl Drop for ClusterSubscriber {
    fn drop(&mut self) {
        if let Some(w) = self.inbox.stop_watch() {
            w.wake();
        }
    }
}
