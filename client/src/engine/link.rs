#![allow(dead_code)] // TRANSITIONAL (#12 step 1): the engines that use it land next.
//! [`Link`]: one connection as its engine and its client handles share it.
//!
//! TRANSITIONAL (issue #12, step 1): today the link wraps the mailbox ([`Shared`]) the handles
//! write to and the [`Core`] behind a lock; engines call only the methods below, so the core can
//! become a pure event source behind them without touching any engine. The engine side of the
//! contract, in the order things happen:
//!
//! 1. [`Link::turn`] at every loop turn: takes the handles' requests and runs the timers;
//!    `false` means the connection is finished (every handle gone, no caller left): close it and
//!    forget the link.
//! 2. [`Link::want`] says [`Want::Open`]: call [`Link::handle_opening`], start connecting to
//!    [`Link::config`]'s address; then [`Link::handle_open`] once the socket is up, or
//!    [`Link::handle_closed`] if it failed.
//! 3. Whenever [`Link::poll_transmit`] has bytes, write them, in order.
//! 4. Bytes read go to [`Link::handle_input`]; an error from it means the stream is broken:
//!    close the socket and report [`Link::handle_closed`] with that error.
//! 5. [`Want::Close`]: close the socket, report [`Link::handle_closed`].
//! 6. Wake at [`Link::poll_timeout`] at the latest (and whenever the link's [`Wake`] fires).
//! 7. When the engine stops driving the link for any reason (a panic included), it calls
//!    [`Link::stopped`] so no caller waits for an engine that is gone.

use super::{obey_link, turn, wake_at, CloseOnExit, Shared, Wake, Want};
use crate::config::Config;
use crate::conn::Core;
use crate::{Error, Result};
use bytes::Bytes;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// One connection: what its client handles send, and its protocol state.
pub(crate) struct Link {
    shared: Arc<Shared>,
    core: Mutex<Option<Core>>,
    config: Arc<Config>,
}

impl Link {
    /// A new connection for `config`; `waker` wakes the engine driving it.
    pub fn new(config: Arc<Config>, waker: Box<dyn Wake>) -> Arc<Link> {
        let core = Core::new(&config);
        let shared = Arc::new(Shared::new(waker, core.connected_flag()));
        Arc::new(Link {
            shared,
            core: Mutex::new(Some(core)),
            config,
        })
    }

    /// What the client handles talk to.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// For the thread-per-connection drivers that still own their core directly.
    pub fn take_core(&self) -> Option<Core> {
        self.lock().take()
    }

    /// The connection's configuration (address, socket options).
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, Option<Core>> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with<R>(&self, default: R, f: impl FnOnce(&mut Core) -> R) -> R {
        match self.lock().as_mut() {
            Some(core) => f(core),
            None => default,
        }
    }

    /// Takes the handles' requests and runs the timers; `false` once the connection is finished.
    pub fn turn(&self, now: Instant) -> bool {
        let mut scratch = Vec::new();
        self.with(false, |core| turn(&self.shared, core, &mut scratch, now))
    }

    /// What the engine should do about the socket now.
    pub fn want(&self, now: Instant) -> Want {
        self.with(Want::Nothing, |core| core.want(now))
    }

    /// Carries out the core's wants through `open`/`close` until it wants nothing more.
    pub fn obey(&self, now: Instant, io: &mut impl LinkSocketry) {
        obey_link(self, io, now);
    }

    /// The engine starts opening a socket.
    pub fn handle_opening(&self) {
        self.with((), |core| core.on_opening());
    }

    /// The socket is up.
    pub fn handle_open(&self, now: Instant) {
        self.with((), |core| core.on_open(now));
    }

    /// Bytes read from the socket. An error means the stream is broken.
    ///
    /// # Errors
    ///
    /// The protocol error that broke the stream: close the socket and pass it to
    /// [`Link::handle_closed`].
    pub fn handle_input(&self, bytes: &[u8], now: Instant) -> Result<()> {
        self.with(Ok(()), |core| {
            core.input().extend_from_slice(bytes);
            core.on_input(now)
        })
    }

    /// The socket is gone (failed to open, closed by the server, broken, or closed on request).
    pub fn handle_closed(&self, err: Error, now: Instant) {
        self.with((), |core| core.on_closed(err, now));
    }

    /// The next bytes to write, in order.
    pub fn poll_transmit(&self) -> Option<Bytes> {
        self.with(None, |core| core.take_output())
    }

    /// When the engine must call [`Link::turn`] at the latest.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        self.with(None, |core| wake_at(&self.shared, core, now))
    }

    /// True when no caller waits for anything on this connection.
    pub fn is_quiet(&self, now: Instant) -> bool {
        self.with(true, |core| core.is_quiet(now))
    }

    /// The engine will never drive this link again: every request still in it, and every later
    /// one, fails with [`Error::Connection`].
    pub fn stopped(&self) {
        drop(CloseOnExit(&self.shared));
    }
}

/// What an engine does about a [`Want`] for one link: open or close its socket.
pub(crate) trait LinkSocketry {
    /// Starts opening the connection; reports through the link as it goes.
    fn open(&mut self, link: &Link, now: Instant);
    /// Closes the connection, if any, and reports [`Link::handle_closed`].
    fn close(&mut self, link: &Link, now: Instant);
}
