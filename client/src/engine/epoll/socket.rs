//! One link's socket on the epoll engine: connecting (every resolved address in order), reading
//! (a bounded amount per turn) and writing what the link has to send, with the same error texts
//! as the io_uring engine.

use super::hub::{Hub, Key, Resolved};
use crate::config::Addr;
use crate::engine::link::LinkSocketry;
use crate::engine::resolve;
use crate::engine::{keepalive, server_closed, Link, Want};
use crate::Error;
use bytes::{Buf, Bytes};
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Reads per link per turn at most: a link with more waiting is served again next turn, after
/// every other link had its turn.
const READS_PER_TURN: usize = 4;

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

/// What a socket operation needs from the engine.
pub(super) struct Env<'a> {
    pub registry: &'a Registry,
    pub hub: &'a Arc<Hub>,
}

/// The socket side of one link.
pub(super) struct Sock {
    key: Key,
    stream: Option<Stream>,
    connecting: bool,
    /// The connect attempt whose host name is being resolved.
    resolving: Option<u64>,
    /// Connect attempts started, to tell a resolution's result from a stale one.
    attempts: u64,
    /// The addresses of this connect attempt not tried yet, in order: when a connect to one
    /// fails, the next is tried (a name with an IPv6 and an IPv4 address, the server on one).
    next_addrs: VecDeque<SocketAddr>,
    /// Bytes taken from the link and not yet written.
    unsent: Bytes,
    /// Readiness seen and not yet used up (edge-triggered: nothing reports it again).
    readable: bool,
    writable: bool,
    /// The peer has closed or the socket has an error: read until the end, whatever the sizes.
    hup: bool,
}

impl Sock {
    pub fn new(key: Key) -> Sock {
        Sock {
            key,
            stream: None,
            connecting: false,
            resolving: None,
            attempts: 0,
            next_addrs: VecDeque::new(),
            unsent: Bytes::new(),
            readable: false,
            writable: false,
            hup: false,
        }
    }

    /// Records a readiness event; true if there is something for [`Sock::service`] to do.
    pub fn ready(&mut self, ev: &mio::event::Event) -> bool {
        if ev.is_error() || ev.is_read_closed() {
            self.hup = true;
        }
        self.readable |= ev.is_readable() || ev.is_read_closed() || ev.is_error();
        self.writable |= ev.is_writable() || ev.is_write_closed() || ev.is_error();
        self.stream.is_some() && (self.readable || self.writable)
    }

    /// Finishes a connect, reads (at most [`READS_PER_TURN`] times) and writes, as the socket's
    /// readiness allows. True while it may have more to read.
    pub fn service(
        &mut self,
        link: &Link,
        env: &Env<'_>,
        scratch: &mut [u8],
        now: Instant,
    ) -> bool {
        if self.connecting {
            if !(self.readable || self.writable) {
                return false;
            }
            self.finish_connect(link, env, now);
            if self.connecting || self.stream.is_none() {
                return false;
            }
        }
        if std::mem::take(&mut self.writable) {
            self.flush(link, env, now);
        }
        if !self.readable {
            return false;
        }
        for _ in 0..READS_PER_TURN {
            let Some(stream) = &mut self.stream else {
                return false;
            };
            match stream.read(scratch) {
                Ok(0) => {
                    self.failed(link, env, now, "reading from", server_closed());
                    return false;
                }
                Ok(n) => {
                    if let Err(e) = link.handle_input(&scratch[..n], now) {
                        self.drop_stream(env);
                        link.handle_closed(e, now);
                        return false;
                    }
                    // Edge-triggered epoll: a read that did not fill the buffer emptied the
                    // socket, and data arriving later reports readiness again. Not so for the end
                    // of the stream, which is reported once: read on until it shows.
                    if n < scratch.len() && !self.hup {
                        self.readable = false;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.failed(link, env, now, "reading from", e);
                    return false;
                }
            }
        }
        // Replies may have brought more to send (handshake steps).
        self.flush(link, env, now);
        self.readable && self.stream.is_some()
    }

    /// Writes whatever the link has to send, until done or the socket is full.
    pub fn flush(&mut self, link: &Link, env: &Env<'_>, now: Instant) {
        loop {
            if self.connecting {
                return;
            }
            let Some(stream) = &mut self.stream else {
                return;
            };
            if self.unsent.is_empty() {
                match link.poll_transmit() {
                    Some(b) => self.unsent = b,
                    None => return,
                }
                continue;
            }
            match stream.write(&self.unsent) {
                Ok(n) => self.unsent.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.failed(link, env, now, "writing to", e),
            }
        }
    }

    /// A host name resolved (or failed to): connect to its addresses, if this is still the
    /// attempt that asked.
    pub fn resolved(&mut self, link: &Link, env: &Env<'_>, r: Resolved, now: Instant) {
        if self.resolving != Some(r.attempt) {
            return;
        }
        self.resolving = None;
        match r.addrs {
            Ok(addrs) => {
                self.next_addrs = addrs.into();
                self.connect_next(link, env, now);
            }
            Err(e) => self.failed(link, env, now, "connect to", e),
        }
    }

    fn failed(&mut self, link: &Link, env: &Env<'_>, now: Instant, what: &str, e: io::Error) {
        self.drop_stream(env);
        let addr = link.addr();
        link.handle_closed(Error::connection_io(format!("{what} {addr}: {e}"), e), now);
    }

    /// Starts a connect attempt: at once to an IP address or a unix path, after resolving a
    /// host name (off the engine thread).
    fn open(&mut self, link: &Link, env: &Env<'_>, now: Instant) {
        self.drop_stream(env);
        link.handle_opening();
        self.attempts += 1;
        match &link.addr() {
            Addr::Unix(path) => match UnixStream::connect(path) {
                Ok(s) => self.register(Stream::Unix(s), link, env, now),
                Err(e) => self.failed(link, env, now, "connect to", e),
            },
            Addr::Tcp { host, port } => {
                if let Some(addr) = resolve::literal(host, *port) {
                    self.next_addrs.push_back(addr);
                    return self.connect_next(link, env, now);
                }
                let (hub, key, attempt) = (env.hub.clone(), self.key, self.attempts);
                let done = move |addrs| {
                    hub.resolved(Resolved {
                        key,
                        attempt,
                        addrs,
                    })
                };
                match resolve::spawn(host.clone(), *port, done) {
                    Ok(()) => self.resolving = Some(attempt),
                    Err(e) => self.failed(link, env, now, "resolving", e),
                }
            }
        }
    }

    /// Starts a non-blocking connect to the next address of the attempt that takes one.
    fn connect_next(&mut self, link: &Link, env: &Env<'_>, now: Instant) {
        if let Some(mut s) = self.stream.take() {
            let _ = env.registry.deregister(s.source());
        }
        let mut last = None;
        while let Some(addr) = self.next_addrs.pop_front() {
            match TcpStream::connect(addr) {
                Ok(s) => return self.register(Stream::Tcp(s), link, env, now),
                Err(e) => last = Some(e),
            }
        }
        let e = last.unwrap_or_else(|| io::Error::other("host resolved to no address"));
        self.failed(link, env, now, "connect to", e);
    }

    fn register(&mut self, mut stream: Stream, link: &Link, env: &Env<'_>, now: Instant) {
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = env
            .registry
            .register(stream.source(), self.key.token(), interest)
        {
            return self.failed(link, env, now, "registering", e);
        }
        self.stream = Some(stream);
        self.connecting = true;
        self.readable = false;
        self.writable = false;
        self.hup = false;
        // A unix socket (and sometimes loopback TCP) is connected at once.
        self.finish_connect(link, env, now);
    }

    fn finish_connect(&mut self, link: &Link, env: &Env<'_>, now: Instant) {
        let Some(stream) = &mut self.stream else {
            return;
        };
        match stream.connected() {
            Ok(false) => {}
            Ok(true) => {
                self.connecting = false;
                if let Stream::Tcp(s) = stream {
                    let config = link.config();
                    // Best effort: a socket without NODELAY still works, only slower.
                    let _ = s.set_nodelay(config.tcp_nodelay);
                    keepalive::apply(s, config.tcp_keepalive);
                }
                link.handle_open(now);
                self.flush(link, env, now);
            }
            // The next address of this attempt, if there is one.
            Err(_) if !self.next_addrs.is_empty() => self.connect_next(link, env, now),
            Err(e) => self.failed(link, env, now, "connect to", e),
        }
    }

    /// Closes the socket (deregistered first), forgets the attempt and the unsent bytes.
    pub fn drop_stream(&mut self, env: &Env<'_>) {
        if let Some(mut s) = self.stream.take() {
            let _ = env.registry.deregister(s.source());
        }
        self.connecting = false;
        self.resolving = None;
        self.next_addrs.clear();
        self.unsent = Bytes::new();
        self.readable = false;
        self.writable = false;
        self.hup = false;
    }

    /// Closes the socket and reports it, as [`LinkSocketry::close`] does.
    pub fn close(&mut self, link: &Link, env: &Env<'_>, now: Instant) {
        let had = self.stream.is_some() || self.resolving.is_some();
        self.drop_stream(env);
        if had || !link.is_quiet(now) || link.want(now) == Want::Close {
            link.handle_closed(Error::connection("connection closed"), now);
        }
    }
}

/// [`LinkSocketry`] for one link's [`Sock`].
pub(super) struct SockIo<'a, 'e> {
    pub sock: &'a mut Sock,
    pub env: &'a Env<'e>,
}

impl LinkSocketry for SockIo<'_, '_> {
    fn open(&mut self, link: &Link, now: Instant) {
        self.sock.open(link, self.env, now);
    }

    fn close(&mut self, link: &Link, now: Instant) {
        self.sock.close(link, self.env, now);
    }
}
