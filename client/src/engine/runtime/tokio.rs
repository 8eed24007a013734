//! The tokio implementation of the runtime adapter.

use super::{BoxFuture, Runtime, Stream, Timer};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::runtime::Handle;
use tokio::time::Sleep;

/// A tokio runtime, by its [`Handle`]. Its IO and time drivers must be on
/// (`Builder::enable_all`, as `#[tokio::main]` does).
pub(crate) struct TokioRuntime(pub Handle);

impl Runtime for TokioRuntime {
    fn spawn(&self, future: BoxFuture<()>) {
        // The join handle is not needed: the task ends on its own when its link is finished.
        drop(self.0.spawn(future));
    }

    fn new_timer(&self, deadline: Instant) -> Box<dyn Timer> {
        let _in = self.0.enter();
        Box::new(TokioTimer(Box::pin(tokio::time::sleep_until(
            deadline.into(),
        ))))
    }

    fn resolve(&self, host: &str, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
        let host = host.to_owned();
        // An IP address is parsed at once; a name is looked up on tokio's blocking pool.
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        })
    }

    fn connect_tcp(&self, addr: SocketAddr) -> BoxFuture<io::Result<Box<dyn Stream>>> {
        Box::pin(async move {
            let s = TcpStream::connect(addr).await?;
            Ok(Box::new(Tcp(s)) as Box<dyn Stream>)
        })
    }

    fn connect_unix(&self, path: &Path) -> BoxFuture<io::Result<Box<dyn Stream>>> {
        let path = path.to_owned();
        Box::pin(async move {
            let s = UnixStream::connect(path).await?;
            Ok(Box::new(Unix(s)) as Box<dyn Stream>)
        })
    }
}

struct TokioTimer(Pin<Box<Sleep>>);

impl Timer for TokioTimer {
    fn reset(&mut self, deadline: Instant) {
        self.0.as_mut().reset(deadline.into());
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

fn read(
    s: Pin<&mut impl AsyncRead>,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    let mut buf = ReadBuf::new(buf);
    match s.poll_read(cx, &mut buf) {
        Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.filled().len())),
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => Poll::Pending,
    }
}

struct Tcp(TcpStream);

impl AsRawFd for Tcp {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl Stream for Tcp {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        read(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.0.set_nodelay(on)
    }
}

struct Unix(UnixStream);

impl AsRawFd for Unix {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl Stream for Unix {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        read(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn set_nodelay(&self, _on: bool) -> io::Result<()> {
        Ok(())
    }
}
