//! Engines: what moves bytes between sockets and the connection core, runs timers and wakes
//! callers. They know sockets, timers and wake-ups, never RESP.
//!
//! Each connection is a [`Link`]: client handles submit into it and wake its engine through
//! the engine's [`Wake`]; the engine drives it through the link's engine-facing methods only.
//!
//! Engines: `task` (a future on the caller's tokio runtime), `ring` (io_uring, Linux with the
//! `io-uring` feature only) and `epoll`, which is mio's poll: epoll on Linux, kqueue on macOS
//! and the BSDs (the name stays `epoll`, as [`Engine::Epoll`](crate::Engine::Epoll) does).

mod current;
mod deadlines;
pub(crate) mod epoll;
mod keepalive;
pub(crate) mod link;
pub(crate) mod placement;
mod resolve;
// The io_uring engine: Linux only, and only with the `io-uring` feature (on by default).
#[cfg(all(feature = "io-uring", target_os = "linux"))]
pub(crate) mod ring;
mod runtime;
pub(crate) mod source;
pub(crate) mod task;
#[cfg(feature = "tls")]
mod tls;

pub(crate) use link::{Link, Wake};

use crate::config::Config;
pub(crate) use crate::conn::Want;
use crate::Result;
use std::sync::Arc;

/// The cause given when the server ends the stream (a read of 0 bytes).
pub(crate) fn server_closed() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the server closed the connection",
    )
}

/// An engine: drives many connections (issue #12). Each one is a [`Link`] it made and keeps
/// driving until [`Link::turn`] says the connection is finished.
pub(crate) trait Driver: Send + Sync {
    /// Starts driving a new connection for `config`.
    ///
    /// # Errors
    ///
    /// [`Error::Client`](crate::Error::Client) when the engine cannot take connections (it
    /// failed to start).
    fn attach(&self, config: Arc<Config>) -> Result<Arc<Link>>;
}

/// Calls [`Link::stopped`] when dropped: an engine keeps one for each link it drives, so
/// however it stops driving it (a panic included), no caller waits for it.
pub(crate) struct StopOnDrop(pub Arc<Link>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stopped();
    }
}
