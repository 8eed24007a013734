//! [`Source`]: where a link finds the address to connect to, when it is not its configuration's
//! (a Sentinel-managed primary's, which the sentinel watcher in `handle/sentinel` keeps).
//!
//! The link asks at every connect attempt (under its lock: [`Source::lookup`] must only read),
//! asks for a fresh address after a lost connection or a failed attempt ([`Source::refresh`],
//! outside its lock), and is told when the address changes or the awaited one is known
//! ([`Link::follow`](super::Link::follow)). The engines only ever see the address the link hands
//! them ([`Link::addr`](super::Link::addr)): they know nothing of where it came from.

use super::Link;
use crate::config::Addr;
use crate::Error;
use std::sync::Weak;

/// What a [`Source`] knows now.
#[derive(Debug, Clone)]
pub(crate) enum Lookup {
    /// Connect here.
    Ready(Addr),
    /// Being found: wait (within the connect timeout) for [`Link::follow`](super::Link::follow).
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
    /// again, then tell the links ([`Link::follow`](super::Link::follow)). Concurrent requests
    /// coalesce into one. Called outside any link's lock.
    fn refresh(&self);

    /// `link` connects through this source: tell it when the address changes.
    fn register(&self, link: Weak<Link>);
}
