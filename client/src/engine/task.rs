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
use super::{server_closed, Driver, Link, StopOnDrop, Wake, Want};
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
        let (link, conn) = Conn::new(config, self.runtime.clone());
        self.runtime.spawn(Box::pin(conn));
        Ok(link)
    }
}

impl Conn {
    /// A new link for `config` and the task that drives it on `runtime` (not spawned yet).
    fn new(config: Arc<Config>, runtime: Arc<dyn Runtime>) -> (Arc<Link>, Conn) {
        let signal = Arc::new(Signal::default());
        let link = Link::new(config.clone(), Box::new(signal.clone()));
        let conn = Conn {
            // However the task ends (finished, dropped by a runtime that shut down, or dropped
            // unpolled by one already shutting down), the link hears the engine is done with it.
            link: StopOnDrop(link.clone()),
            signal: signal.clone(),
            io: Io {
                runtime,
                addr: config.addr.clone(),
                config,
                state: State::Idle,
                signal,
                buf: Vec::new(),
            },
            timer: None,
            timer_at: None,
        };
        (link, conn)
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
    /// registered for that instant), or `None`. Stale once past: see [`Wake::transmit`].
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
        // Only an instant still ahead: a timer that has fired may have woken a poll that read
        // the link's deadlines before this call came, and that poll re-arms the timer for
        // later without knowing of it. One still ahead has not fired, so the poll it brings
        // reads the deadlines after this call was submitted.
        let now = Instant::now();
        let timer_covers = match (deadline, out.polled_by) {
            (None, _) => true,
            (Some(d), Some(t)) => now < t && t <= d,
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
            // A deadline due: what the socket holds is read first, past the runtime's
            // readiness, so a runtime stalled past the deadlines (blocking work on its thread)
            // is not taken for a silent server.
            if link.is_due(now) {
                busy |= this.io.read_now(link, now, &mut reads);
            }
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
    /// Where the current attempt connects ([`Link::addr`], read at each open).
    addr: Addr,
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

    /// Reads what the open socket holds now, past the runtime's readiness (at most `reads`
    /// reads, counted down); true if there is more to do right away.
    fn read_now(&mut self, link: &Link, now: Instant, reads: &mut usize) -> bool {
        loop {
            if *reads == 0 {
                return true;
            }
            let State::Open(stream) = &self.state else {
                return false;
            };
            match stream.read_now(&mut self.buf) {
                Ok(0) => {
                    self.failed(link, now, "reading from", server_closed());
                    return true;
                }
                Ok(n) => {
                    *reads -= 1;
                    if let Err(e) = link.handle_input(&self.buf[..n], now) {
                        self.drop_stream();
                        link.handle_closed(e, now);
                        return true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
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
        if let Addr::Tcp { .. } = self.addr {
            // Best effort: a socket without NODELAY or keepalive still works.
            let _ = stream.set_nodelay(self.config.tcp_nodelay);
            stream.set_keepalive(self.config.tcp_keepalive);
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
        let addr = &self.addr;
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

impl Drop for Io {
    /// However the task ends (a runtime that shut down drops it), the socket closes now, not
    /// when the last client handle lets go of the write side the link shares with callers.
    fn drop(&mut self) {
        self.drop_stream();
    }
}

impl super::link::LinkSocketry for Io {
    fn open(&mut self, link: &Link, _now: Instant) {
        self.drop_stream();
        link.handle_opening();
        self.addr = link.addr();
        self.state = match &self.addr {
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

#[cfg(test)]
mod tests {
    //! The task of one connection polled by hand, on a runtime whose socket and timer the test
    //! holds, so a caller can be made to act at an exact point of the task's poll.

    use super::*;
    use crate::config::Protocol;
    use crate::conn::Payload;
    use crate::{cmd, Config};
    use std::os::fd::{AsRawFd, RawFd};
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::task::Waker;
    use std::time::Duration;

    /// A hook a test runs at one point of the task's poll, once.
    type Hook = Arc<Mutex<Option<Box<dyn FnOnce() + Send>>>>;

    /// What the test sees of the task's runtime: the timer's deadline, the bytes written, the
    /// bytes to read next, and a hook run inside the timer's next poll.
    #[derive(Clone, Default)]
    struct Seen {
        timer_at: Arc<Mutex<Option<Instant>>>,
        written: Arc<Mutex<Vec<u8>>>,
        input: Arc<Mutex<Vec<u8>>>,
        in_timer_poll: Hook,
        /// Streams made and not yet dropped.
        streams: Arc<AtomicUsize>,
        /// The runtime has not looked at the OS since the input came: `poll_read` says
        /// `Pending` over it; only `read_now` sees it.
        stale: Arc<AtomicBool>,
    }

    struct FakeRuntime(Seen);
    struct FakeTimer(Seen);
    struct FakeStream(Seen);

    impl Runtime for FakeRuntime {
        fn spawn(&self, _future: BoxFuture<()>) {}
        fn new_timer(&self, deadline: Instant) -> Box<dyn Timer> {
            *self.0.timer_at.lock().unwrap() = Some(deadline);
            Box::new(FakeTimer(self.0.clone()))
        }
        fn resolve(&self, _host: &str, _port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
            Box::pin(async { Err(io::Error::other("no names here")) })
        }
        fn connect_tcp(&self, _addr: SocketAddr) -> BoxFuture<io::Result<Box<dyn Stream>>> {
            Box::pin(async { Err(io::Error::other("no tcp here")) })
        }
        fn connect_unix(&self, _path: &Path) -> BoxFuture<io::Result<Box<dyn Stream>>> {
            self.0.streams.fetch_add(1, Ordering::SeqCst);
            let stream: Box<dyn Stream> = Box::new(FakeStream(self.0.clone()));
            Box::pin(async move { Ok(stream) })
        }
    }

    impl Timer for FakeTimer {
        fn reset(&mut self, deadline: Instant) {
            *self.0.timer_at.lock().unwrap() = Some(deadline);
        }
        fn poll(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
            let hook = self.0.in_timer_poll.lock().unwrap().take();
            if let Some(hook) = hook {
                hook();
            }
            match *self.0.timer_at.lock().unwrap() {
                Some(at) if at <= Instant::now() => Poll::Ready(()),
                _ => Poll::Pending,
            }
        }
    }

    impl Drop for FakeStream {
        fn drop(&mut self) {
            self.0.streams.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl AsRawFd for FakeStream {
        fn as_raw_fd(&self) -> RawFd {
            -1
        }
    }

    impl Stream for FakeStream {
        fn poll_read(&self, _cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            if self.0.stale.load(Ordering::SeqCst) {
                return Poll::Pending;
            }
            match self.read_now(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
                r => Poll::Ready(r),
            }
        }
        fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
            let mut input = self.0.input.lock().unwrap();
            if input.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = input.len().min(buf.len());
            buf[..n].copy_from_slice(&input[..n]);
            input.drain(..n);
            Ok(n)
        }
        fn poll_write(&self, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            Poll::Ready(self.try_write(buf))
        }
        fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
            self.0.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn set_nodelay(&self, _on: bool) -> io::Result<()> {
            Ok(())
        }
        fn set_keepalive(&self, _idle: Option<std::time::Duration>) {}
    }

    fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
        Pin::new(f).poll(&mut Context::from_waker(Waker::noop()))
    }

    /// A connected link (RESP2, no handshake, a health check far away) and its task.
    fn connected(seen: &Seen) -> (Arc<Link>, Pin<Box<dyn Future<Output = ()> + Send>>) {
        let config = Config::new()
            .unix_socket("/nowhere")
            .protocol(Protocol::Resp2)
            .health_check(Some(Duration::from_secs(60)));
        let engine = TaskEngine::new(Arc::new(FakeRuntime(seen.clone())));
        let (link, conn) = Conn::new(Arc::new(config), engine.runtime.clone());
        let mut conn: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(conn);
        let mut connect = Box::pin(link.connect());
        assert!(poll_once(&mut conn).is_pending());
        assert!(matches!(poll_once(&mut connect), Poll::Ready(Ok(_))));
        (link, conn)
    }

    /// A caller whose call takes the fast path while the task is between reading the link's
    /// next deadline and publishing its timer must not count on a timer instant already past:
    /// the task has read the deadlines before the call came, and sleeps past the call's own.
    #[test]
    fn a_fast_call_during_the_tasks_timer_step_still_times_out_on_time() {
        let seen = Seen::default();
        let (link, mut conn) = connected(&seen);
        // A call with a short deadline: its deadline becomes the task's timer, then it is
        // answered, and the timer stays armed for that instant.
        let t0 = Instant::now() + Duration::from_millis(5);
        let mut first = Box::pin(link.reply(Payload::One(cmd!("PING")), Some(t0)));
        assert!(poll_once(&mut conn).is_pending());
        assert_eq!(*seen.timer_at.lock().unwrap(), Some(t0));
        seen.input.lock().unwrap().extend_from_slice(b"+PONG\r\n");
        assert!(poll_once(&mut conn).is_pending());
        assert!(matches!(poll_once(&mut first), Poll::Ready(Ok(_))));
        // The timer's instant passes; the task is polled for it. Between its reading the next
        // deadline (the health check's, a minute away) and publishing its timer, a caller
        // makes a call with a 50 ms deadline.
        while Instant::now() <= t0 {
            std::hint::spin_loop();
        }
        let deadline = Arc::new(Mutex::new(None));
        let call = Arc::new(Mutex::new(None));
        {
            let (link, deadline, call) = (link.clone(), deadline.clone(), call.clone());
            *seen.in_timer_poll.lock().unwrap() = Some(Box::new(move || {
                let d = Instant::now() + Duration::from_millis(50);
                *deadline.lock().unwrap() = Some(d);
                *call.lock().unwrap() = Some(Box::pin(
                    link.reply(Payload::One(cmd!("GET", "k")), Some(d)),
                ));
            }));
        }
        assert!(poll_once(&mut conn).is_pending());
        let d = deadline.lock().unwrap().expect("the caller ran");
        assert!(call.lock().unwrap().is_some());
        let armed = seen.timer_at.lock().unwrap().expect("a timer");
        assert!(
            armed <= d,
            "the task sleeps until {:?} after the call's deadline",
            armed - d
        );
    }

    /// Replies that arrived while the runtime's thread was busy past the calls' deadlines are
    /// in the socket, though the runtime's readiness does not say so yet: the task reads them
    /// before its timers run, so the calls are answered and the connection is not closed as
    /// silent (three timeouts in a row would close it).
    #[test]
    fn replies_a_stalled_runtime_has_not_noticed_are_read_before_the_deadlines_judge() {
        let seen = Seen::default();
        let (link, mut conn) = connected(&seen);
        let deadline = Instant::now() + Duration::from_millis(5);
        let mut calls: Vec<_> = (0..3)
            .map(|_| Box::pin(link.reply(Payload::One(cmd!("PING")), Some(deadline))))
            .collect();
        for call in &mut calls {
            assert!(poll_once(call).is_pending());
        }
        assert!(poll_once(&mut conn).is_pending());
        assert_eq!(
            seen.written.lock().unwrap().len(),
            3 * b"*1\r\n$4\r\nPING\r\n".len()
        );
        seen.stale.store(true, Ordering::SeqCst);
        seen.input
            .lock()
            .unwrap()
            .extend_from_slice(b"+PONG\r\n+PONG\r\n+PONG\r\n");
        while Instant::now() <= deadline {
            std::hint::spin_loop();
        }
        assert!(poll_once(&mut conn).is_pending());
        for call in &mut calls {
            match poll_once(call) {
                Poll::Ready(Ok(v)) => assert_eq!(v, crate::Value::Simple("PONG".into())),
                other => panic!("the reply in the socket was not read: {other:?}"),
            }
        }
        assert!(link.is_connected(), "the connection was taken for silent");
    }

    /// A task dropped with its socket open (the runtime shut down) closes the socket, though
    /// the link, which the client's handles keep, holds the write side it shares with callers.
    #[test]
    fn a_dropped_task_closes_its_socket_while_the_client_lives() {
        let seen = Seen::default();
        let (link, conn) = connected(&seen);
        assert_eq!(seen.streams.load(Ordering::SeqCst), 1);
        drop(conn);
        assert!(!link.is_connected());
        assert_eq!(
            seen.streams.load(Ordering::SeqCst),
            0,
            "the socket stays open for as long as the client lives"
        );
    }
}
