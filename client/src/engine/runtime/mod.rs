//! The runtime adapter of the task engine: what it needs from an async runtime, and nothing
//! more. Shaped like quinn's `Runtime` and hyper's `rt` traits: spawn a `Send` future, a timer
//! that can be reset, a connected byte stream, and name resolution that never blocks the
//! runtime. Tokio is the first implementation ([`tokio::TokioRuntime`]); another runtime (smol,
//! async-std) fits by implementing these traits, without touching `conn/` or the link.

pub(crate) mod tokio;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// A boxed `Send` future, as the adapter hands them out.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// An async runtime the task engine runs its connections on.
pub(crate) trait Runtime: Send + Sync + 'static {
    /// Runs `future` to completion in the background. A runtime that is shutting down may drop
    /// it unpolled; the engine's futures clean up in `Drop` for that.
    fn spawn(&self, future: BoxFuture<()>);

    /// A timer that fires at `deadline`. Called from inside a future this runtime runs.
    fn new_timer(&self, deadline: Instant) -> Box<dyn Timer>;

    /// The addresses of `host`, in the resolver's order, without blocking the runtime.
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>>;

    /// Opens a TCP connection to `addr`.
    fn connect_tcp(&self, addr: SocketAddr) -> BoxFuture<io::Result<Box<dyn Stream>>>;

    /// Opens a connection to the unix socket at `path`.
    fn connect_unix(&self, path: &Path) -> BoxFuture<io::Result<Box<dyn Stream>>>;
}

/// A timer that can be moved to another deadline (quinn's `AsyncTimer`).
pub(crate) trait Timer: Send {
    /// Makes the timer fire at `deadline` instead.
    fn reset(&mut self, deadline: Instant);

    /// Ready once the deadline has passed; otherwise wakes `cx` when it does.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// A connected byte stream (TCP or unix), shared by its connection's task (which reads and
/// writes) and the connection's callers (which may write, see [`Stream::try_write`]).
pub(crate) trait Stream: Send + Sync + AsRawFd {
    /// Reads into `buf`: `Ready(Ok(0))` is the end of the stream.
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;

    /// Writes from `buf`, returning how many bytes were taken.
    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;

    /// Writes from `buf` if the socket takes it now, without registering any waker (from any
    /// thread): how many bytes were taken, or [`io::ErrorKind::WouldBlock`].
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;

    /// Reads what the socket holds now, straight from the OS: `Ok(0)` is the end of the
    /// stream, [`io::ErrorKind::WouldBlock`] that nothing has arrived. A runtime's readiness is
    /// only as fresh as its last look at the OS, so [`Stream::poll_read`] may say `Pending`
    /// over bytes a stalled runtime has not noticed; the task reads this way before it lets
    /// the link's timers judge the server silent.
    fn read_now(&self, buf: &mut [u8]) -> io::Result<usize>;

    /// Sets `TCP_NODELAY` (a no-op on a unix socket).
    fn set_nodelay(&self, on: bool) -> io::Result<()>;

    /// Sets TCP keepalive as [`keepalive::apply`](crate::engine::keepalive::apply) does (a
    /// no-op on a unix socket). Best effort.
    fn set_keepalive(&self, idle: Option<std::time::Duration>);
}
