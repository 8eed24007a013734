//! The epoll transport: a driver thread with a `mio` poll loop. It is the fallback where
//! io_uring is not available, and the reference the io_uring transport is measured against.

use super::{server_closed, Link, LinkSocketry, StopOnDrop, Wake};
use crate::config::{Addr, Config};
use crate::{Error, Result};
use bytes::{Buf, Bytes};
use mio::net::{TcpStream, UnixStream};
use mio::{Events, Interest, Poll, Token, Waker};
use std::io::{self, Read, Write};
use std::net::ToSocketAddrs;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

const WAKER: Token = Token(0);
const SOCKET: Token = Token(1);

struct MioWake(Waker);

impl Wake for MioWake {
    fn wake(&self) {
        // A failed wake can only mean the poll is gone, i.e. the driver has stopped.
        let _ = self.0.wake();
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
        }
    }

    /// Whether a non-blocking connect has finished: `Ok(true)` connected, `Ok(false)` still
    /// in progress, `Err` failed.
    fn connected(&mut self) -> io::Result<bool> {
        let (err, peer) = match self {
            Stream::Tcp(s) => (s.take_error()?, s.peer_addr().map(drop)),
            Stream::Unix(s) => (s.take_error()?, s.peer_addr().map(drop)),
        };
        if let Some(e) = err {
            return Err(e);
        }
        match peer {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The socket side of the epoll driver.
struct Io {
    poll: Poll,
    config: Arc<Config>,
    stream: Option<Stream>,
    connecting: bool,
    /// The addresses of this connect attempt not tried yet, in order: when a connect to one
    /// fails, the next is tried (a name with an IPv6 and an IPv4 address, the server on one).
    next_addrs: std::collections::VecDeque<std::net::SocketAddr>,
    /// Bytes taken from the link and not yet written.
    unsent: Bytes,
    scratch: Box<[u8]>,
}

/// Starts an epoll driver thread for one connection.
pub(crate) fn spawn(config: Arc<Config>) -> Result<Arc<Link>> {
    let poll = Poll::new().map_err(|e| Error::client_io(format!("epoll_create: {e}"), e))?;
    let waker = Waker::new(poll.registry(), WAKER)
        .map_err(|e| Error::client_io(format!("eventfd: {e}"), e))?;
    let link = Link::new(config, Box::new(MioWake(waker)));
    let io = Io {
        poll,
        config: link.config().clone(),
        stream: None,
        connecting: false,
        next_addrs: Default::default(),
        unsent: Bytes::new(),
        scratch: vec![0u8; 64 * 1024].into_boxed_slice(),
    };
    let stop = StopOnDrop(link.clone());
    std::thread::Builder::new()
        .name("ringdis-epoll".to_owned())
        .spawn(move || run(stop, io))
        .map_err(|e| Error::client_io(format!("spawning the driver thread: {e}"), e))?;
    Ok(link)
}

fn run(stop: StopOnDrop, mut io: Io) {
    let link = &*stop.0;
    let mut events = Events::with_capacity(64);
    loop {
        let now = Instant::now();
        if !link.turn(now) {
            break;
        }
        link.obey(now, &mut io);
        io.flush(link, now);
        let timeout = link
            .poll_timeout(now)
            .map(|d| d.saturating_duration_since(Instant::now()));
        if let Err(e) = io.poll.poll(&mut events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                // The poll itself broke: nothing more can be done on this thread.
                break;
            }
        }
        let now = Instant::now();
        for ev in events.iter() {
            if ev.token() != SOCKET {
                continue;
            }
            if io.connecting {
                io.finish_connect(link, now);
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                io.read(link, now);
            }
        }
    }
    // Best effort: calls handed over just before the last handle went (fire-and-forget ones
    // without a deadline) still leave.
    let now = Instant::now();
    io.flush(link, now);
    io.close(link, now);
}

impl Io {
    /// Starts a non-blocking connect to the next address of the attempt that can take one.
    /// Resolution (on the first) blocks; for IP addresses and /etc/hosts names it is immediate.
    fn connect_stream(&mut self, first: bool) -> io::Result<Stream> {
        match &self.config.addr {
            Addr::Tcp { host, port } => {
                if first {
                    self.next_addrs = (host.as_str(), *port).to_socket_addrs()?.collect();
                    if self.next_addrs.is_empty() {
                        return Err(io::Error::other("host resolved to no address"));
                    }
                }
                let mut last = None;
                while let Some(addr) = self.next_addrs.pop_front() {
                    match TcpStream::connect(addr) {
                        Ok(s) => return Ok(Stream::Tcp(s)),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| io::Error::other("host resolved to no address")))
            }
            Addr::Unix(path) => UnixStream::connect(path).map(Stream::Unix),
        }
    }

    fn failed(&mut self, link: &Link, now: Instant, what: &str, e: io::Error) {
        self.drop_stream();
        let addr = &self.config.addr;
        link.handle_closed(Error::connection_io(format!("{what} {addr}: {e}"), e), now);
    }

    fn finish_connect(&mut self, link: &Link, now: Instant) {
        let Some(stream) = &mut self.stream else {
            return;
        };
        match stream.connected() {
            Ok(false) => {}
            Ok(true) => {
                self.connecting = false;
                if let Stream::Tcp(s) = stream {
                    // Best effort: a socket without NODELAY still works, only slower.
                    let _ = s.set_nodelay(self.config.tcp_nodelay);
                    super::keepalive::apply(s.as_raw_fd(), self.config.tcp_keepalive);
                }
                link.handle_open(now);
                self.flush(link, now);
            }
            // The next address of this attempt, if there is one.
            Err(_) if !self.next_addrs.is_empty() => self.start_connect(link, now, false),
            Err(e) => self.failed(link, now, "connect to", e),
        }
    }

    /// Starts connecting: to the first address of a new attempt, or to the next one.
    fn start_connect(&mut self, link: &Link, now: Instant, first: bool) {
        if let Some(mut s) = self.stream.take() {
            let _ = self.poll.registry().deregister(s.source());
        }
        match self.connect_stream(first) {
            Ok(mut stream) => {
                let interest = Interest::READABLE | Interest::WRITABLE;
                if let Err(e) = self
                    .poll
                    .registry()
                    .register(stream.source(), SOCKET, interest)
                {
                    return self.failed(link, now, "registering", e);
                }
                self.stream = Some(stream);
                self.connecting = true;
                // A unix socket (and sometimes loopback TCP) is connected at once.
                self.finish_connect(link, now);
            }
            Err(e) => self.failed(link, now, "connect to", e),
        }
    }

    fn read(&mut self, link: &Link, now: Instant) {
        loop {
            let Some(stream) = &mut self.stream else {
                return;
            };
            if self.connecting {
                return;
            }
            match stream.read(&mut self.scratch) {
                Ok(0) => {
                    return self.failed(link, now, "reading from", server_closed());
                }
                Ok(n) => {
                    if let Err(e) = link.handle_input(&self.scratch[..n], now) {
                        self.drop_stream();
                        link.handle_closed(e, now);
                        return;
                    }
                    // Replies may have triggered more to send (handshake steps, queued calls).
                    self.flush(link, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.failed(link, now, "reading from", e),
            }
        }
    }

    /// Writes whatever the core has to send, until done or the socket is full.
    fn flush(&mut self, link: &Link, now: Instant) {
        loop {
            if self.stream.is_none() || self.connecting {
                return;
            }
            if self.unsent.is_empty() {
                match link.poll_transmit() {
                    Some(b) => self.unsent = b,
                    None => return,
                }
            }
            let Some(stream) = &mut self.stream else {
                return;
            };
            match stream.write(&self.unsent) {
                Ok(n) => self.unsent.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.failed(link, now, "writing to", e),
            }
        }
    }

    fn drop_stream(&mut self) {
        if let Some(mut s) = self.stream.take() {
            let _ = self.poll.registry().deregister(s.source());
        }
        self.connecting = false;
        self.next_addrs.clear();
        self.unsent = Bytes::new();
    }
}

impl LinkSocketry for Io {
    fn open(&mut self, link: &Link, now: Instant) {
        self.drop_stream();
        link.handle_opening();
        self.start_connect(link, now, true);
    }

    fn close(&mut self, link: &Link, now: Instant) {
        let had = self.stream.is_some();
        self.drop_stream();
        if had || !link.is_quiet(now) || link.want(now) == super::Want::Close {
            link.handle_closed(Error::connection("connection closed"), now);
        }
    }
}
