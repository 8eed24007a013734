//! The epoll engine: ONE thread and ONE `mio::Poll` drive every connection attached to it, the
//! twin of the io_uring ring engine for where `io_uring_setup` is refused (and wherever
//! [`Engine::Epoll`](crate::Engine::Epoll) is chosen). mio polls with epoll on Linux and kqueue
//! on macOS and the BSDs, so this is also the ring engine of every build without io_uring (the
//! `io-uring` feature off, or not Linux); the name says what it is on Linux.
//!
//! The engine is process-wide and starts lazily: the first [`attach`](Driver::attach) starts its
//! thread, and the thread exits, releasing its descriptors, once its last connection is
//! finished (the next attach starts a new one). Each connection is a [`Link`] in a slot; its mio
//! token is the slot and a generation, so an event or a wake-up for a link that is gone never
//! reaches the one that took its slot.
//!
//! - [`hub`]: what the thread shares with the rest of the process (attach queue, ready list,
//!   waker, the thread now running).
//! - [`run`]: the thread's loop.
//! - [`socket`]: one link's socket (connect, bounded reads, writes).
//! - [`Deadlines`](crate::engine::deadlines): one heap for every link's next deadline.
//! - host names are resolved off the thread ([`resolve`](crate::engine::resolve)).

mod hub;
mod run;
mod socket;

use super::{Driver, Link};
use crate::config::Config;
use crate::{Error, Result};
use hub::{Adopt, Hub, SlotWake, WAKER};
use mio::{Poll, Waker};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The process-wide epoll engine.
pub(crate) struct Epoll;

impl Driver for Epoll {
    fn attach(&self, config: Arc<Config>) -> Result<Arc<Link>> {
        hub::with_running(start, |hub| {
            let key = hub.reserve()?;
            let mark = Arc::new(AtomicBool::new(false));
            let wake = SlotWake::new(hub.clone(), key, mark.clone());
            let link = Link::new(config, Box::new(wake));
            hub.adopt(Adopt {
                key,
                link: link.clone(),
                mark,
            });
            Ok(link)
        })
    }
}

/// Starts an engine thread with a new poll and waker.
fn start() -> Result<Arc<Hub>> {
    let poll = Poll::new()
        .map_err(|e| Error::client_io(format!("creating the poll (epoll/kqueue): {e}"), e))?;
    let waker = Waker::new(poll.registry(), WAKER)
        .map_err(|e| Error::client_io(format!("creating the poll's waker: {e}"), e))?;
    let hub = Arc::new(Hub::new(waker));
    run::spawn(poll, hub.clone())
        .map_err(|e| Error::client_io(format!("spawning the epoll engine thread: {e}"), e))?;
    Ok(hub)
}
