//! The task engine: every connection is a task on the caller's async runtime, so a call, its
//! write, the read of its reply and the caller's wake-up all happen on the runtime's threads
//! (under a current-thread runtime, on the caller's own thread) and no OS thread is added.
//!
//! Each link gets one hand-written future ([`Conn`]) that, on every poll, takes the handles'
//! requests ([`Link::turn`]), carries out what the link wants (open, close), drives the connect,
//! writes what the link has to send, feeds what it reads back to the link, and sets its timer
//! to the link's next deadline. The runtime itself is behind the [`Runtime`] adapter.

use super::runtime::tokio::TokioRuntime;
use super::runtime::{BoxFuture, Runtime, Stream, Timer};
use super::{keepalive, server_closed, Driver, Link, StopOnDrop, Wake, Want};
use crate::config::{Addr, Config};
use crate::{Error, Result};
use bytes::{Buf, Bytes};
use futures_util::task::AtomicWaker;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

/// Reads per poll before the task yields, so one busy connection cannot starve the runtime
/// (up to this many read buffers of input per poll).
const READS_PER_POLL: usize = 16;

/// Rounds (turn, IO, timer) per poll before the task yields.
const ROUNDS_PER_POLL: usize = 4;

/// The read buffer of a connection, allocated while it is open.
const READ_BUFFER: usize = 32 * 1024;

/// The task engine, on one runtime.
pub(crate) struct TaskEngine {
    runtime: Arc<dyn Runtime>,
}

impl TaskEngine {
    /// An engine whose connections run on `runtime`.
    pub fn new(runtime: Arc<dyn Runtime>) -> TaskEngine {
        TaskEngine { runtime }
    }

    /// An engine on the tokio runtime of `handle`.
    pub fn tokio(handle: tokio::runtime::Handle) -> TaskEngine {
        TaskEngine::new(Arc::new(TokioRuntime(handle)))
    }
}

impl Driver for TaskEngine {
    fn attach(&self, config: Arc<Config>) -> Result<Arc<Link>> {
        let signal = Arc::new(Signal::default());
        let link = Link::new(config.clone(), Box::new(signal.clone()));
        let conn = Conn {
            // However the task ends (finished, dropped by a runtime that shut down, or dropped
            // unpolled by one already shutting down), the link hears the engine is done with it.
            link: StopOnDrop(link.clone()),
            signal: signal.clone(),
            io: Io {
                runtime: self.runtime.clone(),
                config,
                state: State::Idle,
                signal,
                buf: Vec::new(),
            },
            timer: None,
            timer_at: None,
        };
        self.runtime.spawn(Box::pin(conn));
        Ok(link)
    }
}

/// How a link wakes its task: a flag, then the task's waker; and the write side the task
/// shares with the link's callers.
#[derive(Default)]
struct Signal {
    woken: AtomicBool,
    waker: AtomicWaker,
    out: Mutex<Out>,
}

/// The write side of a connection. Every write to the socket is made holding it, of bytes
/// taken from the link holding it, so bytes leave in the order the link gave them, whoever
/// writes them (the task, or a caller on [`Wake::transmit`]'s fast path).
#[derive(Default)]
struct Out {
    /// The open socket.
    stream: Option<Arc<dyn Stream>>,
    /// Bytes taken from the link and not yet written.
    unsent: Bytes,
    /// The task is sure to be polled by then without being woken (its timer is armed and
    /// registered for that instant), or `None`.
    polled_by: Option<Instant>,
}

impl Signal {
    fn out(&self) -> MutexGuard<'_, Out> {
        self.out.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Wake for Arc<Signal> {
    fn wake(&self) {
        self.woken.store(true, Ordering::SeqCst);
        self.waker.wake();
    }

    /// A caller's call on an idle connection: written from here if the socket takes it all at
    /// once and the task's timer covers the call's deadline. The reply wakes the task, which
    /// already waits to read. Anything else (the task is writing, the socket is full, no timer
    /// early enough) leaves it to the task.
    fn transmit(&self, link: &Link, deadline: Option<Instant>) -> bool {
        // Never wait for the task: if it holds the write side, it writes the call too.
        let Ok(mut out) = self.out.try_lock() else {
            return false;
        };
        let out = &mut *out;
        let Some(stream) = &out.stream else {
            return false;
        };
        let timer_covers = match (deadline, out.polled_by) {
            (None, _) => true,
            (Some(d), Some(t)) => t <= d,
            (Some(_), None) => false,
        };
        if !out.unsent.is_empty() || !timer_covers {
            return false;
        }
        while let Some(mut bytes) = link.poll_transmit() {
            match stream.try_write(&bytes) {
                Ok(n) if n == bytes.len() => {}
                Ok(n) => {
                    bytes.advance(n);
                    out.unsent = bytes;
                    return false;
                }
                // The task writes them and meets the error (or the readiness) itself.
                Err(_) => {
                    out.unsent = bytes;
                    return false;
                }
            }
        }
        true
    }
}

/// The task of one connection.
struct Conn {
    link: StopOnDrop,
    signal: Arc<Signal>,
    io: Io,
    /// Made on first use, from inside the runtime.
    timer: Option<Box<dyn Timer>>,
    /// When `timer` fires.
    timer_at: Option<Instant>,
}

impl Future for Conn {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // Registered before anything is looked at: a wake-up from here on polls the task again.
        this.signal.waker.register(cx.waker());
        let mut reads = READS_PER_POLL;
        for _ in 0..ROUNDS_PER_POLL {
            this.signal.woken.store(false, Ordering::SeqCst);
            let link = &this.link.0;
            let now = Instant::now();
            // What woke the task first (a connect that ended, replies that arrived), so the
            // link's timers never judge a connection on news the socket already holds.
            let mut busy = this.io.poll_io(cx, link, now, &mut reads);
            if !link.turn(now) {
                // Best effort: what the last calls left to send still leaves.
                let _ = this.io.flush(cx, link, now);
                this.io.close_stream(link, now);
                return Poll::Ready(());
            }
            link.obey(now, &mut this.io);
            // Then what the turn released: a connect to start, calls to write.
            busy |= this.io.poll_io(cx, link, now, &mut reads);
            let due = this.poll_timer(cx, Instant::now());
            if !busy && !due && !this.signal.woken.load(Ordering::SeqCst) {
                return Poll::Pending;
            }
        }
        // More to do than one poll's share: let the runtime's other tasks run first.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Conn {
    /// Arms the timer for the link's next deadline; true if that deadline has already passed.
    ///
    /// A timer armed for an earlier instant stays as it is: it fires early, once, and is moved
    /// then. Deadlines mostly move later (each call's reply deadline), so the runtime's timer
    /// is not updated for every call.
    fn poll_timer(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let Some(at) = self.link.0.poll_timeout(now) else {
            // Left as it is: a stale timer costs one poll when it fires.
            self.publish_timer(now, false);
            return false;
        };
        if at <= now {
            self.publish_timer(now, true);
            return true;
        }
        let timer = match &mut self.timer {
            Some(t) => t,
            None => {
                self.timer_at = Some(at);
                self.timer.insert(self.io.runtime.new_timer(at))
            }
        };
        if self.timer_at.is_none_or(|armed| armed > at || armed <= now) {
            timer.reset(at);
            self.timer_at = Some(at);
        }
        let due = timer.poll(cx).is_ready();
        self.publish_timer(now, due);
        due
    }

    /// Tells the link's callers until when the task is sure to be polled without a wake-up:
    /// the armed timer, if it was polled for that instant and has not fired.
    fn publish_timer(&self, now: Instant, due: bool) {
        let by = self.timer_at.filter(|&t| !due && t > now);
        let mut out = self.io.signal.out();
        if out.polled_by != by {
            out.polled_by = by;
        }
    }
}

/// Where the connection's socket is.
enum State {
    Idle,
    Resolving(BoxFuture<io::Result<Vec<SocketAddr>>>),
    /// Connecting to one address; `rest` are the resolved addresses not tried yet, in order.
    Connecting {
        attempt: BoxFuture<io::Result<Box<dyn Stream>>>,
        rest: VecDeque<SocketAddr>,
    },
    Open(Arc<dyn Stream>),
}

/// The socket side of a connection task.
struct Io {
    runtime: Arc<dyn Runtime>,
    config: Arc<Config>,
    state: State,
    /// The write side, shared with the link's callers.
    signal: Arc<Signal>,
    /// The read buffer: allocated when the socket opens, freed when it closes.
    buf: Vec<u8>,
}

impl Io {
    /// Drives the connect, writes and reads (at most `reads` of them, counted down); true if
    /// there is more to do right away (the reads of this poll are used up, or the socket went
    /// away).
    fn poll_io(
        &mut self,
        cx: &mut Context<'_>,
        link: &Link,
        now: Instant,
        reads: &mut usize,
    ) -> bool {
        if self.poll_connect(cx, link, now) {
            return true;
        }
        if !matches!(self.state, State::Open(_)) {
            return false;
        }
        if !self.flush(cx, link, now) {
            return true;
        }
        loop {
            if *reads == 0 {
                return true;
            }
            let State::Open(stream) = &mut self.state else {
                return true;
            };
            match stream.poll_read(cx, &mut self.buf) {
                Poll::Pending => return false,
                Poll::Ready(Ok(0)) => {
                    self.failed(link, now, "reading from", server_closed());
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    *reads -= 1;
                    if let Err(e) = link.handle_input(&self.buf[..n], now) {
                        self.drop_stream();
                        link.handle_closed(e, now);
                        return true;
                    }
                    // Replies may have released more to send (handshake steps, queued calls).
                    if !self.flush(cx, link, now) {
                        return true;
                    }
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => {
                    self.failed(link, now, "reading from", e);
                    return true;
                }
            }
        }
    }

    /// Drives resolution and connect; true if the attempt failed (the link was told).
    fn poll_connect(&mut self, cx: &mut Context<'_>, link: &Link, now: Instant) -> bool {
        loop {
            match &mut self.state {
                State::Idle | State::Open(_) => return false,
                State::Resolving(resolve) => match resolve.as_mut().poll(cx) {
                    Poll::Pending => return false,
                    Poll::Ready(Ok(addrs)) => {
                        let mut rest = VecDeque::from(addrs);
                        let Some(first) = rest.pop_front() else {
                            let e = io::Error::other("host resolved to no address");
                            self.failed(link, now, "resolving", e);
                            return true;
                        };
                        let attempt = self.runtime.connect_tcp(first);
                        self.state = State::Connecting { attempt, rest };
                    }
                    Poll::Ready(Err(e)) => {
                        self.failed(link, now, "resolving", e);
                        return true;
                    }
                },
                State::Connecting { attempt, rest } => match attempt.as_mut().poll(cx) {
                    Poll::Pending => return false,
                    Poll::Ready(Ok(stream)) => {
                        self.opened(stream);
                        link.handle_open(now);
                        return false;
                    }
                    Poll::Ready(Err(e)) => match rest.pop_front() {
                        // The next address of this attempt (a name with an IPv6 and an IPv4
                        // address, the server on one).
                        Some(next) => *attempt = self.runtime.connect_tcp(next),
                        None => {
                            self.failed(link, now, "connect to", e);
                            return true;
                        }
                    },
                },
            }
        }
    }

    fn opened(&mut self, stream: Box<dyn Stream>) {
        let stream: Arc<dyn Stream> = Arc::from(stream);
        if let Addr::Tcp { .. } = self.config.addr {
            // Best effort: a socket without NODELAY or keepalive still works.
            let _ = stream.set_nodelay(self.config.tcp_nodelay);
            keepalive::apply(stream.as_raw_fd(), self.config.tcp_keepalive);
        }
        self.buf.resize(READ_BUFFER, 0);
        let mut out = self.signal.out();
        out.stream = Some(stream.clone());
        out.unsent = Bytes::new();
        drop(out);
        self.state = State::Open(stream);
    }

    /// Writes what the link has to send until done or the socket is full; false if the socket
    /// is not open (any more).
    fn flush(&mut self, cx: &mut Context<'_>, link: &Link, now: Instant) -> bool {
        let State::Open(stream) = &self.state else {
            return false;
        };
        let mut out = self.signal.out();
        let e = loop {
            if out.unsent.is_empty() {
                match link.poll_transmit() {
                    Some(bytes) => out.unsent = bytes,
                    None => return true,
                }
            }
            match stream.poll_write(cx, &out.unsent) {
                Poll::Pending => return true,
                Poll::Ready(Ok(0)) => break io::Error::from(io::ErrorKind::WriteZero),
                Poll::Ready(Ok(n)) => out.unsent.advance(n),
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => break e,
            }
        };
        drop(out);
        self.failed(link, now, "writing to", e);
        false
    }

    fn failed(&mut self, link: &Link, now: Instant, what: &str, e: io::Error) {
        self.drop_stream();
        let addr = &self.config.addr;
        link.handle_closed(Error::connection_io(format!("{what} {addr}: {e}"), e), now);
    }

    fn drop_stream(&mut self) {
        self.state = State::Idle;
        let mut out = self.signal.out();
        out.stream = None;
        out.unsent = Bytes::new();
        drop(out);
        self.buf = Vec::new();
    }

    /// Closes the socket, if any, and tells the link when it has to know.
    fn close_stream(&mut self, link: &Link, now: Instant) {
        let had = !matches!(self.state, State::Idle);
        self.drop_stream();
        if had || !link.is_quiet(now) || link.want(now) == Want::Close {
            link.handle_closed(Error::connection("connection closed"), now);
        }
    }
}

impl super::link::LinkSocketry for Io {
    fn open(&mut self, link: &Link, _now: Instant) {
        self.drop_stream();
        link.handle_opening();
        self.state = match &self.config.addr {
            Addr::Tcp { host, port } => match host.parse::<IpAddr>() {
                Ok(ip) => State::Connecting {
                    attempt: self.runtime.connect_tcp(SocketAddr::new(ip, *port)),
                    rest: VecDeque::new(),
                },
                Err(_) => State::Resolving(self.runtime.resolve(host, *port)),
            },
            Addr::Unix(path) => State::Connecting {
                attempt: self.runtime.connect_unix(path),
                rest: VecDeque::new(),
            },
        };
    }

    fn close(&mut self, link: &Link, now: Instant) {
        self.close_stream(link, now);
    }
}
