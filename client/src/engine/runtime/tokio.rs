//! The tokio implementation of the runtime adapter.

use super::{BoxFuture, Runtime, Stream, Timer};
use std::future::Future;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;
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
            // Started by hand (what `TcpStream::connect` does inside) to look at the socket
            // before the reactor does: a loopback refusal is known at once, on the first poll,
            // as on the ring engines, not one reactor turn later.
            let started = mio::net::TcpStream::connect(addr)?;
            if let Some(e) = started.take_error()? {
                return Err(e);
            }
            let s = TcpStream::from_std(std::net::TcpStream::from(started))?;
            s.writable().await?;
            if let Some(e) = s.take_error()? {
                return Err(e);
            }
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

/// Reads through readiness: `try_read` until it would block, which clears the readiness, so
/// `poll_read_ready` registers the waker.
macro_rules! stream_io {
    ($ty:ident) => {
        impl Stream for $ty {
            fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
                loop {
                    if let Err(e) = ready!(self.0.poll_read_ready(cx)) {
                        return Poll::Ready(Err(e));
                    }
                    match self.0.try_read(buf) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        r => return Poll::Ready(r),
                    }
                }
            }

            fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                loop {
                    if let Err(e) = ready!(self.0.poll_write_ready(cx)) {
                        return Poll::Ready(Err(e));
                    }
                    match self.0.try_write(buf) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        r => return Poll::Ready(r),
                    }
                }
            }

            fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
                self.0.try_write(buf)
            }

            fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
                // Past tokio's readiness, which a read that would block does not clear: the
                // next `poll_read` finds out for itself.
                (&*socket2::SockRef::from(&self.0)).read(buf)
            }

            fn set_nodelay(&self, on: bool) -> io::Result<()> {
                $ty::nodelay(&self.0, on)
            }

            fn set_keepalive(&self, idle: Option<std::time::Duration>) {
                $ty::keepalive(&self.0, idle)
            }
        }

        impl AsRawFd for $ty {
            fn as_raw_fd(&self) -> RawFd {
                self.0.as_raw_fd()
            }
        }
    };
}

struct Tcp(TcpStream);

impl Tcp {
    fn nodelay(s: &TcpStream, on: bool) -> io::Result<()> {
        s.set_nodelay(on)
    }

    fn keepalive(s: &TcpStream, idle: Option<std::time::Duration>) {
        crate::engine::keepalive::apply(s, idle);
    }
}

struct Unix(UnixStream);

impl Unix {
    fn nodelay(_s: &UnixStream, _on: bool) -> io::Result<()> {
        Ok(())
    }

    fn keepalive(_s: &UnixStream, _idle: Option<std::time::Duration>) {}
}

stream_io!(Tcp);
stream_io!(Unix);

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::io::{Read, Write};
    use std::time::Duration;

    fn rt() -> TokioRuntime {
        TokioRuntime(Handle::current())
    }

    #[tokio::test]
    async fn resolves_addresses_and_names() {
        let ip = rt().resolve("127.0.0.1", 7).await.unwrap();
        assert_eq!(ip, vec![SocketAddr::from(([127, 0, 0, 1], 7))]);
        let named = rt().resolve("localhost", 7).await.unwrap();
        assert!(!named.is_empty());
        assert!(named.iter().all(|a| a.ip().is_loopback() && a.port() == 7));
    }

    /// Bytes written through the adapter's stream reach the peer, and the peer's come back.
    async fn echo_once(stream: Box<dyn Stream>, mut peer: impl Read + Write) {
        let n = poll_fn(|cx| stream.poll_write(cx, b"ping")).await.unwrap();
        assert_eq!(n, 4);
        let mut got = [0u8; 4];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
        peer.write_all(b"pong").unwrap();
        let mut buf = [0u8; 16];
        let n = poll_fn(|cx| stream.poll_read(cx, &mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"pong");
        drop(peer);
        let n = poll_fn(|cx| stream.poll_read(cx, &mut buf)).await.unwrap();
        assert_eq!(n, 0, "the end of the stream reads as 0 bytes");
    }

    #[tokio::test]
    async fn tcp_and_unix_streams_carry_bytes_both_ways() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = rt()
            .connect_tcp(listener.local_addr().unwrap())
            .await
            .unwrap();
        stream.set_nodelay(true).unwrap();
        assert!(stream.as_raw_fd() >= 0);
        let (peer, _) = listener.accept().unwrap();
        echo_once(stream, peer).await;

        let dir = std::env::temp_dir().join(format!("ringdis-rt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let stream = rt().connect_unix(&path).await.unwrap();
        let (peer, _) = listener.accept().unwrap();
        echo_once(stream, peer).await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_refused_connect_is_an_error() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = match rt()
            .connect_tcp(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
        {
            Ok(_) => panic!("connected to a closed port"),
            Err(e) => e,
        };
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[tokio::test]
    async fn a_timer_moved_earlier_fires_then() {
        let mut timer = rt().new_timer(Instant::now() + Duration::from_secs(3600));
        let soon = Instant::now() + Duration::from_millis(1);
        timer.reset(soon);
        tokio::time::timeout(Duration::from_secs(10), poll_fn(|cx| timer.poll(cx)))
            .await
            .expect("the timer fired at its new deadline");
        assert!(Instant::now() >= soon);
    }
}
