//! What a caching handle ([`Config::cache`](crate::Config::cache)) does around the cache: the
//! cached read that was not a hit (join the same read in flight, or lead it: send the cache's
//! bundle in one write and hand its replies to the cache), and the local invalidation of the
//! keys a write names before it is sent. How a request reaches a connection is the caller's
//! (a client's connection, a pool's checkout): this module is handed a way to send.

use crate::cache::{Plan, Shared};
use crate::conn::Payload;
use crate::{Cmd, Error, Result, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Drops the cached entries of every key the writes among `cmds` name (a command the spec
/// flags `write`, its keys marked), before they are sent: the client reads its own writes
/// without waiting for the server's invalidation (which still comes, and is harmless).
#[inline]
pub(crate) fn invalidate_writes(cache: &Shared, cmds: &[Cmd]) {
    for cmd in cmds {
        if cmd.flags().write {
            cache.invalidate(cmd.keys());
        }
    }
}

/// A cached read that was not a hit: `plan` ([`Plan::Join`] or [`Plan::Lead`]) carried out,
/// planning `cmd` again (in database `db`, with the call's `ttl`) when the read it joined was
/// given up. `send` puts a payload on a caching connection (one that applies its
/// invalidations to `cache`) and resolves to its reply; a bundle goes as one batch: one write,
/// its replies collected into one array (not a transaction).
///
/// Cancel safety: dropping the future drops what it holds, a [`Fill`](crate::cache::Fill)
/// included, which lets the reads that joined it plan again: nothing waits for it.
pub(crate) async fn miss<S, F>(
    cache: Arc<Shared>,
    db: i64,
    cmd: Cmd,
    ttl: Option<Duration>,
    mut plan: Plan,
    send: S,
) -> Result<Value>
where
    S: Fn(Payload) -> F,
    F: Future<Output = Result<Value>>,
{
    loop {
        match plan {
            Plan::Hit(value) => return Ok(value),
            Plan::Uncacheable(cmd) => return send(Payload::One(cmd)).await,
            Plan::Lead { fill, bundle } => {
                if bundle.is_empty() {
                    return fill.finish(Err(Error::client("a cached read's bundle is empty")));
                }
                let reply = send(Payload::batch(&bundle)).await;
                return fill.finish(reply);
            }
            Plan::Join(waiter) => {
                if let Some(reply) = waiter.await {
                    return reply;
                }
                // The leading read was given up (its caller dropped it): lead or join anew.
            }
        }
        plan = cache.plan(db, cmd.clone(), ttl);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;

    /// With no cache entry at all (the skeleton plans every read uncacheable) a miss sends the
    /// command as it is, once.
    #[test]
    fn an_uncacheable_read_is_sent_as_it_is() {
        let cache = Shared::new(Cache::new());
        let cmd = Cmd::new("GET").key("k");
        let plan = Plan::Uncacheable(cmd.clone());
        let sent = std::sync::Mutex::new(Vec::new());
        let reply = futures::executor::block_on(miss(cache, 0, cmd, None, plan, |p| {
            sent.lock().unwrap().push(matches!(p, Payload::One(_)));
            std::future::ready(Ok(Value::Int(1)))
        }));
        assert_eq!(reply.unwrap(), Value::Int(1));
        assert_eq!(*sent.lock().unwrap(), [true]);
    }
}
