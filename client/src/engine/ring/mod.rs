//! The ring engine: ONE driver thread owning one io_uring ring, one provided-buffer ring, one
//! eventfd and one timer for every connection ([`Link`]) of the process.
//!
//! The engine starts with the first [`attach`] and its thread ends (releasing the ring, the
//! buffers and the eventfd) once its last link is finished; a later attach starts a new one.
//! Callers reach the thread through the [`Hub`] (`hub`): a link's
//! [`Wake`](crate::engine::Wake) puts its slot on the ready list and writes the eventfd only
//! while the thread may be parked; new links and finished name lookups arrive the same way. The
//! loop itself is in `driver`, ring setup in `setup`, sockets in `sock`, host name lookups in
//! `resolve`; the links' deadlines share one heap (`engine::deadlines`).

mod driver;
mod hub;
mod resolve;
mod setup;
mod sock;

use super::{Driver, Link};
use crate::config::Config;
use crate::{Error, Result};
use hub::Hub;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;

/// The ring engine as an [`engine::Driver`](Driver).
pub(crate) struct RingEngine;

impl Driver for RingEngine {
    fn attach(&self, config: Arc<Config>) -> Result<Arc<Link>> {
        attach(config)
    }
}

/// Drives a new connection for `config` on the process's ring engine, starting its thread if
/// none runs.
///
/// # Errors
///
/// [`Error::Client`] saying why when the kernel refuses a ring (or `RINGDIS_URING_FAIL_SETUP` is
/// set), so [`Engine::Auto`](crate::Engine::Auto) can fall back to epoll.
pub(crate) fn attach(config: Arc<Config>) -> Result<Arc<Link>> {
    if let Some(e) = setup::refused_on_purpose() {
        return Err(unavailable(e));
    }
    hub::attach(config, start)
}

fn unavailable(e: io::Error) -> Error {
    Error::client_io(format!("io_uring is not available: {e}"), e)
}

/// Starts an engine thread; fails (so the caller can fall back to epoll) when the kernel
/// refuses a ring.
fn start() -> Result<Arc<Hub>> {
    // Blocking on purpose: some kernels complete a ring read of an O_NONBLOCK file with EAGAIN
    // instead of waiting for it to become readable. (A write can block only at a counter of
    // 2^64 - 2, which wake-ups of 1 that the driver drains never reach.)
    // SAFETY: a plain eventfd(2) call; the result is checked before use.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if efd < 0 {
        let e = io::Error::last_os_error();
        return Err(Error::client_io(format!("eventfd: {e}"), e));
    }
    // SAFETY: `efd` is a fresh descriptor that nothing else owns.
    let hub = Arc::new(Hub::new(unsafe { OwnedFd::from_raw_fd(efd) }));
    let thread_hub = hub.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<io::Result<()>>(1);
    // The ring is built on the engine thread: with SINGLE_ISSUER only its creator may submit.
    std::thread::Builder::new()
        .name("ringdis-ring".to_owned())
        .spawn(move || match driver::Engine::new(thread_hub) {
            Ok(engine) => {
                let _ = ready_tx.send(Ok(()));
                driver::run(engine);
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        })
        .map_err(|e| Error::client_io(format!("spawning the ring engine thread: {e}"), e))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(hub),
        Ok(Err(e)) => Err(unavailable(e)),
        Err(_) => Err(Error::client(
            "io_uring is not available: the engine thread ended during setup",
        )),
    }
}
