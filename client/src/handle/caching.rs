//! What a caching client ([`Config::cache`](crate::Config::cache)) does around the cache: a
//! cached read that joined the same read in flight, the callback that hands a bundle's
//! replies to the cache, and the local invalidation of the keys a write names before it is
//! sent. How a request reaches a connection is the client's: this module is handed a way to
//! send.

use crate::cache::{Fill, Plan, Shared, Waiter};
use crate::engine::link::Callback;
use crate::{Cmd, Error, Result, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A cached read's reply from `cache` (in database `db`) when it holds a live one: tried
/// first, before the routing gate, a pool's checkout or a cluster's slot, none of which a
/// reply from memory needs. `None`: go the whole way (which plans the read and counts it).
///
/// Why the gate need not be asked: an entry is filled only by a read the gate let onto a shared
/// connection, and the gate's verdict depends on nothing but the command's arguments (the very
/// bytes the entry is keyed by) and its `blocking` flag. Unflagged, arguments it once let
/// through are let through again (a flag can only add `Blocking`, and a command blocking by the
/// spec is judged by its arguments either way); a command flagged `blocking` goes the whole way.
#[inline]
pub(crate) fn hit(cache: &Shared, db: i64, cmd: &Cmd) -> Option<Value> {
    if cmd.flags().blocking {
        return None;
    }
    cache.hit(db, cmd)
}

/// Drops the cached entries of every key the writes among `cmds` name, before they are sent,
/// and returns those keys (`None`: no such write) to drop again when the reply is handed over
/// ([`Written::replied`]): the client reads its own writes without waiting for the server's
/// invalidation (which still comes, and is harmless). A write is every command not flagged
/// read-only: the spec's writes, scripts (`EVAL … numkeys key…`, which the spec flags neither
/// way), and hand-built commands (`cmd!("SET", "k", "v")`: no key marked, no flag set), whose
/// keys are those the spec's key specs find in them unless the spec says they only read.
///
/// Both are needed. Before: a read of the old value must not be served while the write is on
/// its way. After: a cached read planned after the first drop but run by the server before the
/// write (on another connection sharing the cache: a pool's, a spread's, a `watch_transaction`'s
/// or a dedicated one; connections are not ordered with each other) is stored with the old
/// value, and that connection's invalidation push may come after the write's reply: without
/// the second drop a read made after the reply would be answered with what the write replaced.
///
/// `FLUSHALL`, `FLUSHDB` and `SWAPDB` (however built) flush the whole cache, before and after
/// the same way: the server's nil invalidation for a flush comes after its reply, and for
/// `SWAPDB` servers send none at all (tracking names keys, not databases).
#[inline]
pub(crate) fn invalidate_writes(cache: &Arc<Shared>, cmds: &[Cmd]) -> Option<Written> {
    let mut written: Option<Written> = None;
    for cmd in cmds {
        if cmd.flags().readonly {
            continue;
        }
        let all = cmd.key_indices().is_empty() && empties_databases(cmd);
        let unmarked = if all || !cmd.key_indices().is_empty() {
            Vec::new()
        } else {
            crate::route::keys::unmarked_changed_keys(cmd)
        };
        if !all && cmd.key_indices().is_empty() && unmarked.is_empty() {
            continue;
        }
        let w = written.get_or_insert_with(|| Written {
            cache: cache.clone(),
            keys: Vec::new(),
            flush: false,
        });
        if all {
            cache.flush();
            w.flush = true;
        } else if unmarked.is_empty() {
            cache.invalidate(cmd.keys());
            w.keys.extend(cmd.keys().map(Box::from));
        } else {
            cache.invalidate(unmarked.iter().map(Vec::as_slice));
            w.keys
                .extend(unmarked.into_iter().map(Vec::into_boxed_slice));
        }
    }
    written
}

/// `FLUSHALL`, `FLUSHDB` or `SWAPDB`: a command that changes keys it does not name.
fn empties_databases(cmd: &Cmd) -> bool {
    named(cmd, &[b"FLUSHALL", b"FLUSHDB", b"SWAPDB"])
}

fn named(cmd: &Cmd, names: &[&[u8]]) -> bool {
    cmd.args()
        .iter()
        .next()
        .is_some_and(|name| names.iter().any(|n| name.eq_ignore_ascii_case(n)))
}

/// The keys of writes sent through a caching client, dropped from its cache once more when
/// their reply is handed over (see [`invalidate_writes`]).
pub(crate) struct Written {
    cache: Arc<Shared>,
    keys: Vec<Box<[u8]>>,
    /// A flush or a swap of databases was among them: everything goes again.
    flush: bool,
}

impl Written {
    /// The write's reply (or its failure: it may have run all the same) is about to be handed
    /// over: its keys go again (everything, after a flush or a swap).
    pub(crate) fn replied(self) {
        if self.flush {
            self.cache.flush();
        } else {
            self.cache
                .invalidate_again(self.keys.iter().map(|k| &k[..]));
        }
    }

    /// `reply`, the keys dropped again before it is handed over. Dropped unfinished, nothing
    /// is dropped again: no one saw the write's reply.
    pub(crate) async fn around(self, reply: impl Future<Output = Result<Value>>) -> Result<Value> {
        let r = reply.await;
        self.replied();
        r
    }
}

/// A cached read that joined the same read in flight (`waiter`): its reply, or when that read
/// was given up, what planning `cmd` again (in database `db`, with the call's `ttl`) says:
/// joining another, leading it (`lead`: the bundle sent, its replies handed to the
/// [`Fill`]), or sending it plainly (`plain`).
///
/// Cancel safety: dropping the future drops the [`Waiter`]; a bundle `lead` sent is finished
/// by its connection whatever becomes of this future (see [`lead_callback`]).
pub(crate) async fn join<L, F, P, G>(
    cache: Arc<Shared>,
    db: i64,
    mut cmd: Cmd,
    ttl: Option<Duration>,
    mut waiter: Waiter,
    lead: L,
    plain: P,
) -> Result<Value>
where
    L: Fn(Fill, Vec<Cmd>) -> F,
    F: Future<Output = Result<Value>>,
    P: Fn(Cmd) -> G,
    G: Future<Output = Result<Value>>,
{
    loop {
        if let Some(reply) = waiter.await {
            return reply;
        }
        // The leading read was given up (its connection went away under it): plan anew.
        match cache.plan(db, cmd, ttl) {
            Plan::Hit(value) => return Ok(value),
            Plan::Join(next, back) => (waiter, cmd) = (next, back),
            Plan::Lead { fill, bundle } => return lead(fill, bundle).await,
            Plan::Uncacheable(cmd) => return plain(cmd).await,
        }
    }
}

/// The callback a cached read's bundle is sent with, and the future of the read's reply: the
/// connection hands the bundle's replies (or why there are none) to the callback, which
/// finishes `fill` there and then (stores the entry, wakes the reads that joined it), whether
/// or not anyone polls the leading call (a caller holding it unpolled strands no one); the
/// future gets what [`Fill::finish`] returned.
pub(crate) fn lead_callback(
    fill: Fill,
) -> (
    Callback,
    impl Future<Output = Result<Value>> + Send + 'static,
) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let callback: Callback = Box::new(move |replies: Result<Value>| {
        let _ = tx.send(fill.finish(replies));
    });
    let reply = async move {
        rx.await.unwrap_or_else(|_| {
            Err(Error::connection(
                "the connection went away before the cached read's reply",
            ))
        })
    };
    (callback, reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;
    use bytes::Bytes;

    fn lead(cache: &Arc<Shared>) -> (Fill, Vec<Cmd>) {
        match cache.plan(0, Cmd::new("GET").key("k"), None) {
            Plan::Lead { fill, bundle } => (fill, bundle),
            _ => panic!("a first read of a key leads"),
        }
    }

    /// The bundle's callback finishes the read where the connection runs it, with no one
    /// polling the leading call: the read that joined it gets the reply, the entry is stored,
    /// and the leader's future gets the reply when polled later.
    #[test]
    fn a_bundle_callback_finishes_the_read_without_its_caller() {
        let cache = Shared::new(Cache::new());
        let (fill, bundle) = lead(&cache);
        assert_eq!(bundle.len(), 2, "GET k, PTTL k");
        let Plan::Join(waiter, _) = cache.plan(0, Cmd::new("GET").key("k"), None) else {
            panic!("the same read joins")
        };
        let (callback, reply) = lead_callback(fill);
        let v = Value::Bulk(Bytes::from_static(b"v"));
        callback(Ok(Value::Array(vec![v.clone(), Value::Int(-1)])));
        let joined = futures::executor::block_on(waiter);
        assert_eq!(joined.map(|r| r.unwrap()), Some(v.clone()));
        assert!(matches!(cache.plan(0, Cmd::new("GET").key("k"), None), Plan::Hit(h) if h == v));
        assert_eq!(futures::executor::block_on(reply).unwrap(), v);
    }

    /// A reply from memory skips the routing gate only for a command not flagged `blocking`
    /// by hand: a flagged one with the same arguments goes the whole way (and is sent).
    #[test]
    fn a_hit_is_served_only_to_a_command_not_flagged_blocking() {
        let cache = Shared::new(Cache::new());
        let (fill, _) = lead(&cache);
        let v = Value::Bulk(Bytes::from_static(b"v"));
        fill.finish(Ok(Value::Array(vec![v.clone(), Value::Int(-1)])))
            .unwrap();
        let get = Cmd::new("GET").key("k");
        assert_eq!(hit(&cache, 0, &get), Some(v));
        let flagged = get.clone().with_flags(crate::CmdFlags {
            blocking: true,
            ..get.flags()
        });
        assert_eq!(hit(&cache, 0, &flagged), None);
        assert_eq!(hit(&cache, 1, &get), None);
        assert_eq!(cache.stats().hits, 1);
    }

    /// A callback dropped unrun (its connection torn down) fails the leader's future instead
    /// of leaving it pending, and lets the joined read plan again.
    #[test]
    fn a_dropped_bundle_callback_strands_no_one() {
        let cache = Shared::new(Cache::new());
        let (fill, _) = lead(&cache);
        let Plan::Join(waiter, _) = cache.plan(0, Cmd::new("GET").key("k"), None) else {
            panic!("the same read joins")
        };
        let (callback, reply) = lead_callback(fill);
        drop(callback);
        assert!(futures::executor::block_on(waiter).is_none());
        let e = futures::executor::block_on(reply).unwrap_err();
        assert!(e.is_connection(), "{e:?}");
        assert!(matches!(
            cache.plan(0, Cmd::new("GET").key("k"), None),
            Plan::Lead { .. }
        ));
    }

    /// A join whose leader was given up plans again and leads, sending the bundle through
    /// `lead`; nothing is sent plainly.
    #[test]
    fn a_join_whose_leader_went_leads_anew() {
        let cache = Shared::new(Cache::new());
        let (fill, _) = lead(&cache);
        let Plan::Join(waiter, _) = cache.plan(0, Cmd::new("GET").key("k"), None) else {
            panic!("the same read joins")
        };
        drop(fill);
        let v = Value::Bulk(Bytes::from_static(b"v"));
        let reply = futures::executor::block_on(join(
            cache.clone(),
            0,
            Cmd::new("GET").key("k"),
            None,
            waiter,
            |fill, bundle| {
                assert_eq!(bundle.len(), 2);
                let v = v.clone();
                async move { fill.finish(Ok(Value::Array(vec![v, Value::Int(-1)]))) }
            },
            |_| async { panic!("a cacheable read is not sent plainly") },
        ));
        assert_eq!(reply.unwrap(), v);
        assert!(matches!(
            cache.plan(0, Cmd::new("GET").key("k"), None),
            Plan::Hit(_)
        ));
    }
}
