//! `WATCH` on a cluster: the optimistic transaction of one slot, run by the node serving it.

use super::ClusterClient;
use crate::route::redirect::{self, Redirect};
use crate::route::slot::cmd_slot;
use crate::{Client, Cmd, Error, FromRedis, Pipeline, Result};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How many `MOVED`s of the `WATCH` itself are followed before its error is the call's.
const MOVES: usize = 5;

impl ClusterClient {
    /// An optimistic transaction on the keys of one slot: [`Client::watch_transaction`] run by
    /// the primary serving that slot. `build` gets a [`Client`] of that node alone (its calls
    /// follow no redirect: read only keys of the watched slot with it) and returns the
    /// transaction, whose keys must be in that slot too.
    ///
    /// A `WATCH` the node redirects (`MOVED`: the map was stale; nothing ran, `build` not
    /// called) goes to the new owner. Any other redirect is the call's error (a `MOVED` after
    /// `build` ran, a migrating slot's `ASK`: `WATCH` cannot follow it); the map learns a
    /// `MOVED` either way.
    ///
    /// # Errors
    ///
    /// [`Error::Client`] naming `CROSSSLOT` before anything is sent when the watched keys span
    /// slots, or when none is given; else as [`Client::watch_transaction`].
    ///
    /// ```no_run
    /// use ringdis::{cmd, ClusterClient};
    ///
    /// # async fn demo(cluster: ClusterClient) -> ringdis::Result<()> {
    /// // Move 10 from one balance to another, both under the {acct} hash tag.
    /// let ((), b): ((), i64) = cluster
    ///     .watch_transaction(&["{acct}:a", "{acct}:b"][..], |conn| async move {
    ///         let a: Option<i64> = conn.call(cmd!("GET", "{acct}:a")).await?;
    ///         let mut tx = conn.transaction();
    ///         tx.add(cmd!("SET", "{acct}:a", a.unwrap_or(0) - 10))
    ///             .add(cmd!("INCRBY", "{acct}:b", 10));
    ///         Ok(tx)
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn watch_transaction<K, F, Fut, T>(&self, keys: K, mut build: F) -> Result<T>
    where
        K: crate::ToArg,
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<Pipeline>>,
        T: FromRedis,
    {
        let watch = Cmd::new("WATCH").arg(&keys);
        let Some(slot) = cmd_slot(&watch)? else {
            return Err(Error::client(
                "ClusterClient::watch_transaction: no key to watch",
            ));
        };
        let core = &self.core;
        let mut to = None;
        let mut last = None;
        for _ in 0..MOVES {
            let (addr, node) = match to.take() {
                Some(addr) => {
                    let client = core.nodes.get(&addr)?;
                    (addr, client)
                }
                None => match core.primary(slot) {
                    Some(found) => found,
                    None => {
                        let deadline = core.start_call();
                        match super::send::within(core, deadline, core.refresh()).await {
                            Some(r) => r?,
                            None => return Err(Error::Timeout),
                        }
                        match core.primary(slot) {
                            Some(found) => found,
                            None => {
                                return Err(Error::Server {
                                    kind: "CLUSTERDOWN".into(),
                                    message: format!(
                                        "no node serves slot {slot} (by the cluster's map)"
                                    ),
                                })
                            }
                        }
                    }
                },
            };
            let built = Arc::new(AtomicBool::new(false));
            let seen = built.clone();
            let result = node
                .watch_transaction(&keys, |conn| {
                    seen.store(true, Ordering::Relaxed);
                    build(conn)
                })
                .await;
            let err = match result {
                Err(e) => e,
                ok => return ok,
            };
            match redirect::redirection(&err, addr.host()) {
                Some(r) if r.kind == Redirect::Moved => {
                    core.moved(r.slot, &r.to);
                    if built.load(Ordering::Relaxed) {
                        return Err(err);
                    }
                    to = Some(r.to);
                    last = Some(err);
                }
                _ => {
                    if err.is_connection() {
                        core.refresh_soon();
                    }
                    return Err(err);
                }
            }
        }
        Err(last.unwrap_or(Error::Timeout))
    }
}
