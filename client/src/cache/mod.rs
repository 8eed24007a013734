//! Client-side caching (`Config::cache`): the store of cached replies, the reads in flight that
//! may fill it, and the invalidations that empty it.
//!
//! SKELETON (issue #15): the API below is fixed; the `store` lane replaces the bodies.
//! Nothing here knows what drives a connection: callers hand it commands, replies and
//! invalidated keys; it never calls into a client or a link.

#![allow(dead_code)] // SKELETON: the plumb lane uses it, the store lane fills it

mod settings;

pub use settings::{Cache, CacheStats};

use crate::{Cmd, Result, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// One cache, shared by every connection whose invalidations keep it true: a `Client`'s
/// connection, or all of a `Pool`'s, a `Spread`'s or a `ClusterClient`'s nodes'.
pub(crate) struct Shared {
    settings: Cache,
}

/// What a cached read does, as [`Shared::plan`] decides.
pub(crate) enum Plan {
    /// A live entry: the reply, as the server sent it.
    Hit(Value),
    /// The same command is in flight already: wait for its reply.
    Join(Waiter),
    /// Send `bundle` (in one write, its replies collected into one array), then hand that
    /// array to [`Fill::finish`].
    Lead { fill: Fill, bundle: Vec<Cmd> },
    /// Not cacheable here (no keys, or a key outside every `BCAST` prefix): send the command
    /// as usual.
    Uncacheable(Cmd),
}

/// A read in flight that may fill an entry. Dropping it without [`Fill::finish`] (the caller
/// gave up) lets its waiters go: they get `None` and plan again.
pub(crate) struct Fill {
    _shared: Arc<Shared>,
}

/// A cached read waiting for the same read already in flight.
pub(crate) struct Waiter {
    _shared: Arc<Shared>,
}

impl Shared {
    pub(crate) fn new(settings: Cache) -> Arc<Shared> {
        Arc::new(Shared { settings })
    }

    pub(crate) fn settings(&self) -> &Cache {
        &self.settings
    }

    /// Looks `cmd` up (by its exact encoded arguments and `db`); on a miss, registers the read
    /// in flight (before anything is sent, so an invalidation that arrives from now on reaches
    /// it) and says what to send. `ttl` is the call's own lifetime (`cached_for`), else the
    /// settings'.
    pub(crate) fn plan(self: &Arc<Self>, db: i64, cmd: Cmd, ttl: Option<Duration>) -> Plan {
        let _ = (db, ttl);
        Plan::Uncacheable(cmd)
    }

    /// The server (or a write sent through this cache's clients) changed these keys: their
    /// entries go, and reads of them in flight will not be stored.
    pub(crate) fn invalidate<'a>(&self, keys: impl IntoIterator<Item = &'a [u8]>) {
        let _ = keys.into_iter().count();
    }

    /// Everything goes (a nil invalidation, tracking lost, a reconnect), reads in flight
    /// included.
    pub(crate) fn flush(&self) {}

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats::default()
    }
}

impl Fill {
    /// The collected replies of the bundle (or why it failed): stores the read's reply unless
    /// an invalidation or flush reached this read meanwhile, hands it to the waiters, and
    /// returns it.
    pub(crate) fn finish(self, bundle_reply: Result<Value>) -> Result<Value> {
        bundle_reply
    }
}

impl Future for Waiter {
    /// `None`: the leading read was given up; plan again.
    type Output = Option<Result<Value>>;
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(None)
    }
}
