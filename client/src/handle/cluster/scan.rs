//! The walk of a cluster-wide `SCAN`: every primary of the map known when the scan starts, one
//! after another, each one's cursor followed to 0 (the stream itself is
//! [`ScanStream`](crate::ScanStream)).

use super::ClusterClient;
use crate::route::topology::{NodeAddr, Target};
use crate::{Call, Cmd, Error, FromRedis, Result};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Which primaries a cluster-wide scan has left, and the one it is on.
pub(crate) struct NodeWalk<'a> {
    cluster: &'a ClusterClient,
    /// The primaries left, the current one first; `None` until the scan starts.
    nodes: Option<std::collections::VecDeque<NodeAddr>>,
    /// The discovery of the cluster, when the scan starts before any map is known.
    discovery: Option<Call<()>>,
}

impl<'a> NodeWalk<'a> {
    pub(crate) fn new(cluster: &'a ClusterClient) -> NodeWalk<'a> {
        NodeWalk {
            cluster,
            nodes: None,
            discovery: None,
        }
    }

    /// The primary being scanned: `Ready(Ok(None))` once every primary was. At the first poll
    /// the primaries are taken from the map (discovered first if none is known yet).
    pub(crate) fn poll_node(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<NodeAddr>>> {
        if self.nodes.is_none() {
            if !self.cluster.core.has_map() {
                let discovery = self.discovery.get_or_insert_with(|| {
                    let refresh = self.cluster.refresh();
                    Call::later(async move { refresh.await.map(|()| crate::Value::Nil) })
                });
                match Pin::new(discovery).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(r) => {
                        self.discovery = None;
                        r?;
                    }
                }
            }
            self.nodes = Some(self.cluster.primaries().into());
        }
        Poll::Ready(Ok(self.nodes.as_ref().and_then(|n| n.front().cloned())))
    }

    /// One page of `node`: `cmd` (a `SCAN` with its cursor) sent there, retried as a command
    /// to one node is (`ClusterClient::send`).
    pub(crate) fn page<T: FromRedis>(&self, node: &NodeAddr, cmd: Cmd) -> Call<T> {
        let node = node.clone();
        let page = self.cluster.send(Target::Node(node.clone()), cmd);
        Call::later(async move { page.await.map_err(|e| on_node(e, &node)) })
    }

    /// The current primary is done (its cursor came back to 0, or it failed): on to the next.
    pub(crate) fn next_node(&mut self) {
        if let Some(nodes) = &mut self.nodes {
            nodes.pop_front();
        }
    }
}

/// `e`, saying which node it came from (an error with no message as it is).
fn on_node(e: Error, node: &NodeAddr) -> Error {
    let note = |m: String| format!("{m} (SCAN of cluster node {node})");
    match e {
        Error::Server { kind, message } => Error::Server {
            kind,
            message: note(message),
        },
        Error::Connection {
            message,
            source,
            sent,
        } => Error::Connection {
            message: note(message),
            source,
            sent,
        },
        Error::Client { message, source } => Error::Client {
            message: note(message),
            source,
        },
        Error::Protocol { message } => Error::Protocol {
            message: note(message),
        },
        other => other,
    }
}
