//! [`Source`]: where a link finds the address to connect to, when it is not its configuration's
//! (a Sentinel-managed primary's, which the sentinel watcher in `handle/sentinel` keeps).
//!
//! The link asks at every connect attempt (under its lock: [`Source::lookup`] must only read),
//! asks for a fresh address after a lost connection or a failed attempt ([`Source::refresh`],
//! outside its lock), and is told when the address changes or the awaited one is known
//! ([`Follower::follow`]). The engines only ever see the address the link hands
//! them ([`Link::addr`](super::Link::addr)): they know nothing of where it came from.

use crate::addr::Addr;
use crate::Error;
use std::sync::{Arc, Weak};
use std::time::Instant;

/// What a [`Source`] knows now.
#[derive(Debug, Clone)]
pub(crate) enum Lookup {
    /// Connect here.
    Ready(Addr),
    /// Being found: wait (within the connect timeout) for [`Follower::follow`].
    /// The error says what is awaited, for when the wait runs out.
    Pending(Error),
    /// Could not be found: the attempt fails with this error.
    Failed(Error),
}

/// Where the links of a client find the address to connect to.
pub(crate) trait Source: Send + Sync {
    /// What is known now. Called under a link's lock: it must not call into any link.
    fn lookup(&self) -> Lookup;

    /// The address may be stale (a connection to it was lost, or an attempt failed): find it
    /// again, then tell the links ([`Follower::follow`]). Concurrent requests
    /// coalesce into one. Called outside any link's lock.
    fn refresh(&self);

    /// `link` connects through this source: tell it when the address changes.
    fn register(&self, link: Weak<dyn Follower>);

    /// A source of the same deployment's read replicas, if it has one.
    fn replicas(&self) -> Option<Arc<dyn Source>> {
        None
    }
}

/// What a [`Source`] tells of news: a link.
pub(crate) trait Follower: Send + Sync {
    /// The source's address changed, or the one awaited is known.
    fn follow(&self, now: Instant);
}
