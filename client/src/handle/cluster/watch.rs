//! [`ClusterClient::watch_transaction`]: an optimistic transaction (`WATCH` … `EXEC`) on the
//! node serving its keys' slot, run by that node's [`Client::watch_transaction`].

use super::ClusterClient;
use crate::route::slot::cmd_slot;
use crate::{Client, Cmd, Error, FromRedis, Pipeline, Result, ToArg};
use std::future::Future;

/// How many times the node is looked up again after it answered that the slot moved.
const MOVED_ATTEMPTS: usize = 3;

impl ClusterClient {
    /// An optimistic transaction, as [`Client::watch_transaction`], on the primary serving the
    /// slot of `keys`: `WATCH keys`, `build` reads with the node's connection it is given and
    /// returns the transaction to run on it (from `conn.transaction()`), then `EXEC`, all again
    /// while a watched key changed in between (up to [`WATCH_ATTEMPTS`](crate::WATCH_ATTEMPTS)
    /// times).
    ///
    /// Every watched key, and every key the transaction touches, must be in one slot (a `{hash
    /// tag}`); `build` gets a [`Client`] of that node only, which follows no redirect. When the
    /// node answers that the slot moved (`MOVED`/`ASK`: nothing ran), the map is refreshed and
    /// it all runs again on the new node, a few times at most.
    ///
    /// # Errors
    ///
    /// [`Error::Client`] before anything is sent for no key or keys in different slots
    /// (`CROSSSLOT`); as [`Client::watch_transaction`] otherwise (what `build` returns, a
    /// connection lost during `EXEC`, too many attempts); the node's `MOVED` when the slot kept
    /// moving.
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
        K: ToArg,
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<Pipeline>>,
        T: FromRedis,
    {
        let Some(slot) = cmd_slot(&Cmd::new("WATCH").key(&keys))? else {
            return Err(Error::client(
                "watch_transaction needs at least one key to watch",
            ));
        };
        let mut moved = None;
        for _ in 0..MOVED_ATTEMPTS {
            let node = match self.core.primary(slot) {
                Some((_, node)) => node,
                None => {
                    self.core.refresh().await?;
                    match self.core.primary(slot) {
                        Some((_, node)) => node,
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
            };
            match node.watch_transaction(&keys, &mut build).await {
                Err(e @ Error::Server { .. }) if is_redirect(&e) => {
                    moved = Some(e);
                    self.core.refresh().await?;
                }
                other => return other,
            }
        }
        Err(moved.unwrap_or_else(|| Error::client("the slot kept moving")))
    }
}

/// `MOVED`/`ASK`, or a transaction the node aborted because its commands were redirected.
fn is_redirect(e: &Error) -> bool {
    match e {
        Error::Server { kind, message } => {
            kind == "MOVED"
                || kind == "ASK"
                || (kind == "EXECABORT" && (message.contains("MOVED") || message.contains("ASK")))
        }
        _ => false,
    }
}
