//! The io_uring transport: a driver thread that owns one ring and the client's socket.
//!
//! It follows the epoll driver turn for turn (the same [`Link`] calls, the same error texts), but every socket operation is a ring operation: `IORING_OP_CONNECT`, one `SEND` of
//! everything the core has queued, a multishot `RECV` drawing from a provided-buffer ring
//! (single-shot `RECV` where the kernel has none), timers as `IORING_OP_TIMEOUT`, and user
//! wake-ups as a multishot `POLL_ADD` on an eventfd that callers write only while the driver is
//! parked.
//! Each loop turn ends in one `io_uring_enter` that both submits and waits.
//!
//! Ownership: every buffer an operation points at (send bytes, receive buffers, the socket
//! address, the eventfd counter) belongs to the driver and is freed only after the operation's
//! last completion has been reaped. A closed connection is retired: its operations are
//! cancelled, and its socket and buffers are dropped when their completions are all in. On every
//! exit of the driver, an orderly stop or a panic unwinding through it, `Io`'s `Drop` cancels
//! everything and waits (at most [`EXIT_GRACE`]) for every completion; whatever the kernel may
//! still touch after that is leaked, never freed.

mod ring;
mod sock;

use super::{server_closed, Link, LinkSocketry, StopOnDrop, Wake};
use crate::config::Config;
use crate::{Error, Result};
use bytes::{Buf, Bytes};
use io_uring::types::{CancelBuilder, Fd, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};
use ring::{BufRing, Enter, Mode};
use sock::{RawAddr, Target};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Operation kinds, in the low byte of `user_data`; the rest is a generation number.
const K_WAKE: u64 = 1;
const K_TIMER: u64 = 2;
const K_TIMER_REMOVE: u64 = 3;
const K_CONNECT: u64 = 4;
const K_SEND: u64 = 5;
const K_RECV: u64 = 6;
const K_CANCEL: u64 = 7;

fn ud(kind: u64, gen: u64) -> u64 {
    (gen << 8) | kind
}

const RING_ENTRIES: u32 = 64;
/// Provided buffers: 16 of 16 KiB, handed back as soon as they are copied out.
const BUF_COUNT: u16 = 16;
const BUF_SIZE: usize = 16 * 1024;
/// The single-shot receive buffer (one per connection).
const SINGLE_BUF: usize = 64 * 1024;
/// Sends are capped so the length fits the SQE; the rest goes in the next one.
const MAX_SEND: usize = 1 << 30;
/// A send at most this long fits an empty socket buffer (the kernel's smallest, `tcp_wmem`'s
/// minimum, is 4 KiB), so it completes during the submit; with a non-empty buffer, the commands
/// already in it bring replies that wake the driver. See `Io::park`.
const SMALL_SEND: usize = 4 * 1024;
/// How long the exit path waits for cancelled operations before it leaks their buffers.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// What callers and the driver share to decide whether a wake-up needs a syscall.
struct Parking {
    /// True while the driver is (about to be) blocked in `io_uring_enter`.
    parked: AtomicBool,
    eventfd: OwnedFd,
}

struct UringWake(Arc<Parking>);

impl Wake for UringWake {
    fn wake(&self) {
        // Pairs with the fence in `Io::park`: either the driver sees our message (or shutdown)
        // after it set `parked`, or we see `parked` here and write the eventfd.
        fence(Ordering::SeqCst);
        if self.0.parked.load(Ordering::SeqCst) {
            let one: u64 = 1;
            // SAFETY: write(2) of 8 bytes from a live u64 to an eventfd we own. A failure can
            // only be a saturated counter, which already means "wake up".
            unsafe {
                libc::write(
                    self.0.eventfd.as_raw_fd(),
                    (&one as *const u64).cast(),
                    std::mem::size_of::<u64>(),
                );
            }
        }
    }
}

/// How the driver watches the eventfd.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WakeMode {
    /// A multishot poll, armed once: a completion for every write, no read, no re-arming. The
    /// counter is never drained; it would take 2^64 wake-ups to fill it.
    Poll,
    /// A read per wake-up, re-armed after each (kernels before 5.13).
    Read,
}

/// How receives are done.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RecvMode {
    /// Multishot receive from the provided-buffer ring.
    Multi,
    /// One receive at a time into the connection's own buffer.
    Single,
}

/// One socket and the operations in flight on it.
struct Conn {
    gen: u64,
    fd: OwnedFd,
    /// The address being connected to; the kernel may read it until CONNECT completes.
    addr: Box<RawAddr>,
    /// Addresses still to try if this one fails.
    rest: Vec<Target>,
    /// A TCP socket (keepalive applies), not a unix one.
    tcp: bool,
    open: bool,
    /// The bytes of the send in flight (or left over from a short one).
    unsent: Bytes,
    send_inflight: bool,
    recv_armed: bool,
    /// The single-shot receive buffer; the kernel writes into it while a receive is armed.
    rbuf: Option<Box<[u8]>>,
    /// Operations whose last completion has not been reaped yet.
    ops: u32,
}

/// The socket side of the io_uring driver.
struct Io {
    ring: IoUring,
    enter: Enter,
    mode: Mode,
    parking: Arc<Parking>,
    config: Arc<Config>,
    bufs: Option<BufRing>,
    recv_mode: RecvMode,
    conn: Option<Conn>,
    /// Closed connections waiting for their operations to complete.
    retired: Vec<Conn>,
    next_gen: u64,
    /// Every operation in flight, connection ones included.
    inflight: u32,
    /// The eventfd watch in flight, how it watches, and the counter a read-mode watch reads into.
    wake_armed: bool,
    wake_mode: WakeMode,
    wake_buf: Box<u64>,
    /// The timer in flight: its deadline and generation.
    timer_at: Option<Instant>,
    timer_gen: u64,
    timer_spec: Box<Timespec>,
    cqes: Vec<cqueue::Entry>,
    /// Sends queued since the last `io_uring_enter`.
    fresh_sends: u32,
    /// One of them is larger than [`SMALL_SEND`].
    big_send: bool,
    /// How long the teardown waits for cancelled operations before it leaks their buffers.
    exit_grace: Duration,
    /// Where the teardown reports what it did (tests).
    #[cfg(test)]
    teardown_report: Option<Arc<std::sync::Mutex<Option<Teardown>>>>,
}

/// Starts an io_uring driver thread for one connection. Fails (so the caller can fall back to
/// epoll) when the kernel refuses a ring.
pub(crate) fn spawn(config: Arc<Config>) -> Result<Arc<Link>> {
    // Blocking on purpose: some kernels complete a ring read of an O_NONBLOCK file with EAGAIN
    // instead of waiting for it to become readable. (A write can block only at a counter of
    // 2^64 - 2, which wake-ups of 1 that the driver drains never reach.)
    // SAFETY: a plain eventfd(2) call; the result is checked before use.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if efd < 0 {
        let e = io::Error::last_os_error();
        return Err(Error::client_io(format!("eventfd: {e}"), e));
    }
    let parking = Arc::new(Parking {
        parked: AtomicBool::new(false),
        // SAFETY: `efd` is a fresh descriptor that nothing else owns.
        eventfd: unsafe { OwnedFd::from_raw_fd(efd) },
    });
    let link = Link::new(config.clone(), Box::new(UringWake(parking.clone())));
    let stop = StopOnDrop(link.clone());
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<io::Result<()>>(1);
    // The ring is built on the driver thread: with SINGLE_ISSUER only its creator may submit.
    std::thread::Builder::new()
        .name("ringdis-uring".to_owned())
        .spawn(move || {
            let io = match Io::new(config, parking) {
                Ok(io) => {
                    let _ = ready_tx.send(Ok(()));
                    io
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            run(stop, io);
        })
        .map_err(|e| Error::client_io(format!("spawning the driver thread: {e}"), e))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(link),
        Ok(Err(e)) => Err(Error::client_io(
            format!("io_uring is not available: {e}"),
            e,
        )),
        Err(_) => Err(Error::client(
            "io_uring is not available: the driver thread ended during setup",
        )),
    }
}

fn run(stop: StopOnDrop, mut io: Io) {
    let link = &*stop.0;
    loop {
        let now = Instant::now();
        if !link.turn(now) {
            break;
        }
        link.obey(now, &mut io);
        io.flush(link);
        io.arm_wake();
        io.arm_timer(link.poll_timeout(now), now);
        if io.park(link).is_err() {
            // The ring itself broke: nothing more can be done on this thread.
            break;
        }
        let now = Instant::now();
        io.reap(Some(link), now);
    }
    // Best effort: calls handed over just before the last handle went (fire-and-forget ones
    // without a deadline) still leave.
    io.flush(link);
    let _ = io.ring.submit();
    io.close(link, Instant::now());
    // Dropping `io` waits for the kernel to finish with every buffer (see `Io::teardown`).
}

impl Io {
    fn new(config: Arc<Config>, parking: Arc<Parking>) -> io::Result<Io> {
        let (ring, mode) = ring::build(RING_ENTRIES)?;
        ring::probe(&ring)?;
        let multishot = ring::want_multishot();
        let bufs = if multishot {
            BufRing::new(&ring, 0, BUF_COUNT, BUF_SIZE).ok()
        } else {
            None
        };
        let recv_mode = if bufs.is_some() {
            RecvMode::Multi
        } else {
            RecvMode::Single
        };
        Ok(Io {
            enter: Enter::new(&ring),
            ring,
            mode,
            parking,
            config,
            bufs,
            recv_mode,
            conn: None,
            retired: Vec::new(),
            next_gen: 1,
            inflight: 0,
            wake_armed: false,
            wake_mode: if multishot {
                WakeMode::Poll
            } else {
                WakeMode::Read
            },
            wake_buf: Box::new(0),
            timer_at: None,
            timer_gen: 0,
            timer_spec: Box::new(Timespec::new()),
            cqes: Vec::with_capacity(64),
            fresh_sends: 0,
            big_send: false,
            exit_grace: EXIT_GRACE,
            #[cfg(test)]
            teardown_report: None,
        })
    }

    /// Queues one operation, submitting what is queued first if the queue is full.
    ///
    /// Counted as in flight from here on, even in the one case it cannot be queued (the ring
    /// refuses every submit, i.e. it is broken): the teardown then never sees the count reach
    /// zero and leaks the buffers rather than free memory the entry points at.
    ///
    /// # Safety
    ///
    /// Whatever `entry` points at must stay valid until its last completion is reaped.
    unsafe fn push(&mut self, entry: squeue::Entry) {
        self.inflight += 1;
        // Bounded: a ring that keeps refusing submits is broken and the driver is ending.
        for _ in 0..10_000 {
            // SAFETY: forwarded from the caller.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            // Full: hand the queued entries to the kernel to make room.
            if self.ring.submit().is_err() {
                std::thread::yield_now();
            }
        }
    }

    /// Keeps a watch on the eventfd armed, so a caller's write wakes a parked driver.
    fn arm_wake(&mut self) {
        if self.wake_armed {
            return;
        }
        let fd = Fd(self.parking.eventfd.as_raw_fd());
        let entry = match self.wake_mode {
            WakeMode::Poll => opcode::PollAdd::new(fd, libc::POLLIN as u32)
                .multi(true)
                .build(),
            WakeMode::Read => {
                let buf: *mut u64 = &mut *self.wake_buf;
                opcode::Read::new(fd, buf.cast(), std::mem::size_of::<u64>() as u32).build()
            }
        };
        // SAFETY: a poll points at no memory; a read writes into `wake_buf`, a heap u64 owned
        // by `self`. `Io`'s `Drop` (which runs on every exit, unwinding included) frees it only
        // after every completion (this one included) is reaped, and leaks it otherwise.
        unsafe { self.push(entry.user_data(ud(K_WAKE, 0))) };
        self.wake_armed = true;
    }

    /// Makes sure a timer fires at `deadline` at the latest. A timer set for later is replaced;
    /// one set for earlier is left to fire (the turn after it simply sets the next one).
    fn arm_timer(&mut self, deadline: Option<Instant>, now: Instant) {
        let Some(deadline) = deadline else {
            return;
        };
        if let Some(at) = self.timer_at {
            if at <= deadline {
                return;
            }
            let entry = opcode::TimeoutRemove::new(ud(K_TIMER, self.timer_gen))
                .build()
                .user_data(ud(K_TIMER_REMOVE, 0));
            // SAFETY: a removal points at no memory.
            unsafe { self.push(entry) };
        }
        self.timer_gen += 1;
        *self.timer_spec = Timespec::from(deadline.saturating_duration_since(now));
        let spec: *const Timespec = &*self.timer_spec;
        let entry = opcode::Timeout::new(spec)
            .build()
            .user_data(ud(K_TIMER, self.timer_gen));
        // SAFETY: the kernel copies the timespec when it takes the entry; `timer_spec` is a
        // heap value owned by `self` and only rewritten by the next `arm_timer`, after this
        // entry has been submitted by the `io_uring_enter` that ends this turn. If a panic
        // unwinds first, `Io`'s `Drop` submits it (or never does) before any field is freed.
        unsafe { self.push(entry) };
        self.timer_at = Some(deadline);
    }

    /// Submits what is queued and waits for at least one completion, unless a caller has
    /// already woken the link since its last turn (then it only collects what is done).
    fn park(&mut self, link: &Link) -> io::Result<()> {
        self.parking.parked.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let busy = link.is_notified();
        // A small send to a connected socket completes during the submit itself, so waiting
        // for it alone would only cost a second enter: wait for it *and* the next event (the
        // reply, a caller's wake-up, a timer). Not after a large send: one that does not fit
        // the socket buffer finishes through retries run as task work, and a thread waiting
        // for two completions is not woken for task work that posts none (DEFER_TASKRUN's lazy
        // wake-up), so the rest of the send would wait for the next timer while the server
        // waits for the rest of the command (a 12 MiB SET hung for its whole timeout).
        let want = match (busy, self.big_send) {
            (true, _) => 0,
            (false, true) => 1,
            (false, false) => 1 + self.fresh_sends,
        };
        if busy {
            self.parking.parked.store(false, Ordering::Relaxed);
        }
        self.fresh_sends = 0;
        self.big_send = false;
        let res = self.enter(want);
        self.parking.parked.store(false, Ordering::Relaxed);
        res
    }

    /// One `io_uring_enter`: submit everything queued and wait for `want` completions.
    fn enter(&mut self, want: u32) -> io::Result<()> {
        let to_submit = self.ring.submission().len() as u32;
        if want == 0 && to_submit == 0 && self.mode != Mode::Deferred {
            // Completions are already in the shared queue: no syscall needed.
            return Ok(());
        }
        match self.enter.enter(to_submit, want) {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Handles every completion that is in. `link` is `None` on the way out, when completions
    /// only release what their operations held.
    fn reap(&mut self, link: Option<&Link>, now: Instant) {
        let mut cqes = std::mem::take(&mut self.cqes);
        cqes.extend(self.ring.completion());
        for cqe in cqes.drain(..) {
            self.complete(&cqe, link, now);
        }
        self.cqes = cqes;
        if let Some(bufs) = &mut self.bufs {
            bufs.publish();
        }
    }

    fn complete(&mut self, cqe: &cqueue::Entry, link: Option<&Link>, now: Instant) {
        let (kind, gen) = (cqe.user_data() & 0xff, cqe.user_data() >> 8);
        let res = cqe.result();
        let flags = cqe.flags();
        let more = cqueue::more(flags);
        if !more {
            self.inflight = self.inflight.saturating_sub(1);
        }
        match kind {
            K_WAKE if !more => {
                self.wake_armed = false;
                if res == -libc::EINVAL && self.wake_mode == WakeMode::Poll {
                    // No multishot poll on this kernel.
                    self.wake_mode = WakeMode::Read;
                }
            }
            K_WAKE => {}
            K_TIMER if gen == self.timer_gen => self.timer_at = None,
            K_TIMER => {}
            K_TIMER_REMOVE | K_CANCEL => {}
            K_CONNECT | K_SEND | K_RECV => {
                // A receive that picked a provided buffer hands it back, whoever it was for.
                let picked = cqueue::buffer_select(flags);
                let is_current = self.conn.as_ref().is_some_and(|c| c.gen == gen);
                match link {
                    Some(link) if is_current => {
                        self.complete_conn(kind, res, more, picked, link, now)
                    }
                    // Retired (on the way out there is no current connection).
                    _ => self.complete_retired(gen, kind, more),
                }
                if let (Some(bid), Some(bufs)) = (picked, &mut self.bufs) {
                    bufs.push(bid);
                }
            }
            _ => {}
        }
    }

    fn complete_retired(&mut self, gen: u64, kind: u64, more: bool) {
        let Some(i) = self.retired.iter().position(|c| c.gen == gen) else {
            return;
        };
        let c = &mut self.retired[i];
        if !more {
            c.ops = c.ops.saturating_sub(1);
        }
        if kind == K_SEND {
            c.send_inflight = false;
        }
        if c.ops == 0 {
            // Nothing points into it any more: close the socket, free its buffers.
            self.retired.swap_remove(i);
        }
    }

    fn complete_conn(
        &mut self,
        kind: u64,
        res: i32,
        more: bool,
        picked: Option<u16>,
        link: &Link,
        now: Instant,
    ) {
        let Some(c) = &mut self.conn else { return };
        if !more {
            c.ops = c.ops.saturating_sub(1);
        }
        match kind {
            K_CONNECT if res >= 0 => {
                c.open = true;
                if c.tcp {
                    crate::engine::keepalive::apply(c.fd.as_raw_fd(), self.config.tcp_keepalive);
                }
                link.handle_open(now);
                self.arm_recv();
            }
            K_CONNECT => {
                let err = io::Error::from_raw_os_error(-res);
                let rest = std::mem::take(&mut c.rest);
                if rest.is_empty() {
                    return self.failed(link, now, "connect to", err);
                }
                self.retire();
                if let Err(e) = self.start_connect(rest) {
                    self.failed(link, now, "connect to", e);
                }
            }
            K_SEND => {
                c.send_inflight = false;
                if res < 0 {
                    let err = io::Error::from_raw_os_error(-res);
                    return self.failed(link, now, "writing to", err);
                }
                c.unsent.advance((res as usize).min(c.unsent.len()));
            }
            K_RECV => {
                if !more {
                    c.recv_armed = false;
                }
                if res > 0 {
                    let n = res as usize;
                    let input = match (picked, &self.bufs, &c.rbuf) {
                        (Some(bid), Some(bufs), _) => link.handle_input(bufs.data(bid, n), now),
                        (None, _, Some(rbuf)) => link.handle_input(&rbuf[..n], now),
                        _ => Ok(()),
                    };
                    if let Err(e) = input {
                        self.retire();
                        link.handle_closed(e, now);
                        return;
                    }
                    if !more {
                        self.arm_recv();
                    }
                } else if res == 0 {
                    self.failed(link, now, "reading from", server_closed());
                } else if res == -libc::ENOBUFS {
                    // Every provided buffer was in use; they are handed back this turn.
                    self.arm_recv();
                } else if res == -libc::EINVAL && self.recv_mode == RecvMode::Multi {
                    // No multishot receive on this kernel: one receive at a time from now on.
                    self.recv_mode = RecvMode::Single;
                    self.arm_recv();
                } else if res != -libc::ECANCELED {
                    let err = io::Error::from_raw_os_error(-res);
                    self.failed(link, now, "reading from", err);
                }
            }
            _ => {}
        }
    }

    /// Arms a receive on the open connection, if none is.
    fn arm_recv(&mut self) {
        let mode = self.recv_mode;
        let bgid = self.bufs.as_ref().map(|b| b.bgid);
        let Some(c) = &mut self.conn else { return };
        if !c.open || c.recv_armed {
            return;
        }
        let fd = Fd(c.fd.as_raw_fd());
        let entry = match (mode, bgid) {
            (RecvMode::Multi, Some(bgid)) => opcode::RecvMulti::new(fd, bgid).build(),
            _ => {
                let buf = c
                    .rbuf
                    .get_or_insert_with(|| vec![0u8; SINGLE_BUF].into_boxed_slice());
                opcode::Recv::new(fd, buf.as_mut_ptr(), buf.len() as u32).build()
            }
        };
        c.recv_armed = true;
        c.ops += 1;
        let entry = entry.user_data(ud(K_RECV, c.gen));
        // SAFETY: a multishot receive writes only into provided buffers, which `Io`'s `Drop`
        // (every exit, unwinding included) frees only after every completion is reaped, and
        // leaks otherwise; a single-shot one writes into `rbuf`, owned by the connection, which
        // is dropped only once its `ops` count is back to zero (or leaked with it by `Drop`).
        unsafe { self.push(entry) };
    }

    /// Sends whatever the core has queued, in one operation, unless a send is in flight.
    fn flush(&mut self, link: &Link) {
        let Some(c) = &mut self.conn else { return };
        if !c.open || c.send_inflight {
            return;
        }
        if c.unsent.is_empty() {
            match link.poll_transmit() {
                Some(b) => c.unsent = b,
                None => return,
            }
        }
        let len = c.unsent.len().min(MAX_SEND) as u32;
        let entry = opcode::Send::new(Fd(c.fd.as_raw_fd()), c.unsent.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL | libc::MSG_WAITALL)
            .build()
            .user_data(ud(K_SEND, c.gen));
        c.send_inflight = true;
        c.ops += 1;
        self.fresh_sends += 1;
        self.big_send |= len as usize > SMALL_SEND;
        // SAFETY: `unsent` is held by the connection (and not advanced) until this send
        // completes; a retired connection keeps it until its `ops` count is back to zero, and
        // `Io`'s `Drop` (every exit, unwinding included) leaks it if that never happens.
        unsafe { self.push(entry) };
    }

    /// Opens a socket to the first of `targets` and queues its CONNECT.
    fn start_connect(&mut self, mut targets: Vec<Target>) -> io::Result<()> {
        if targets.is_empty() {
            return Err(io::Error::other("host resolved to no address"));
        }
        let target = targets.remove(0);
        let (fd, addr) = sock::socket(&target, self.config.tcp_nodelay)?;
        let gen = self.next_gen;
        self.next_gen += 1;
        let entry = opcode::Connect::new(Fd(fd.as_raw_fd()), addr.ptr(), addr.len())
            .build()
            .user_data(ud(K_CONNECT, gen));
        self.conn = Some(Conn {
            gen,
            fd,
            addr,
            tcp: matches!(target, Target::Ip(_)),
            rest: targets,
            open: false,
            unsent: Bytes::new(),
            send_inflight: false,
            recv_armed: false,
            rbuf: None,
            ops: 1,
        });
        // SAFETY: the address is boxed in the connection, which (retired or not) lives until
        // this CONNECT has completed, or is leaked by `Io`'s `Drop` if it never does.
        unsafe { self.push(entry) };
        Ok(())
    }

    fn failed(&mut self, link: &Link, now: Instant, what: &str, e: io::Error) {
        self.retire();
        let addr = &self.config.addr;
        link.handle_closed(Error::connection_io(format!("{what} {addr}: {e}"), e), now);
    }

    /// Takes the connection out of service: cancels its operations, and keeps its socket and
    /// buffers until they have all completed.
    fn retire(&mut self) {
        let Some(c) = self.conn.take() else { return };
        if c.ops == 0 {
            return;
        }
        let _ = &c.addr;
        sock::shutdown(&c.fd);
        let entry = opcode::AsyncCancel2::new(CancelBuilder::fd(Fd(c.fd.as_raw_fd())).all())
            .build()
            .user_data(ud(K_CANCEL, c.gen));
        self.retired.push(c);
        // SAFETY: a cancellation points at no memory.
        unsafe { self.push(entry) };
    }

    /// The driver is stopping, in order or by a panic unwinding through it: cancel everything
    /// and wait (at most `exit_grace`) for every completion before any buffer an operation may
    /// still point at is freed. If the kernel cannot be shown done with them, they are leaked:
    /// leaking is safe, freeing them is not.
    fn teardown(&mut self) -> Teardown {
        let inflight_at_start = self.inflight;
        self.retire();
        let entry = opcode::AsyncCancel2::new(CancelBuilder::any())
            .build()
            .user_data(ud(K_CANCEL, 0));
        // SAFETY: a cancellation points at no memory.
        unsafe { self.push(entry) };
        let until = Instant::now() + self.exit_grace;
        // Bounded by the deadline; each round waits at most 50 ms.
        while self.inflight > 0 && Instant::now() < until {
            let ts = Timespec::from(Duration::from_millis(50));
            let args = io_uring::types::SubmitArgs::new().timespec(&ts);
            match self.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => {}
                Err(_) => break,
            }
            self.reap(None, Instant::now());
        }
        if self.inflight > 0 {
            // Something never completed: the kernel may still write into these buffers (or
            // read the provided-buffer ring), so they are leaked rather than freed. The ring
            // itself is closed when `Io`'s fields drop; the kernel then finishes the rest on
            // memory that stays mapped.
            std::mem::forget(std::mem::take(&mut self.retired));
            std::mem::forget(self.conn.take());
            std::mem::forget(self.bufs.take());
            std::mem::forget(std::mem::replace(&mut self.wake_buf, Box::new(0)));
            return Teardown {
                inflight_at_start,
                inflight_at_free: None,
            };
        }
        if let Some(bufs) = &mut self.bufs {
            bufs.unregister(&self.ring);
        }
        Teardown {
            inflight_at_start,
            inflight_at_free: Some(self.inflight),
        }
    }
}

/// What [`Io::teardown`] found and did (checked by tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Teardown {
    /// Operations in flight when the teardown began.
    inflight_at_start: u32,
    /// Operations still in flight when the buffers were released to be freed: `Some(0)` always,
    /// or `None` when they were leaked because the kernel did not finish within the grace time.
    inflight_at_free: Option<u32>,
}

impl Drop for Io {
    /// Runs on every exit of the driver thread: the orderly one, and a panic unwinding through
    /// it (a bug; user code is caught before it can unwind this far). The fields (ring, socket,
    /// buffers) drop only after this, and only once the kernel is done with them.
    fn drop(&mut self) {
        let report = self.teardown();
        #[cfg(test)]
        if let Some(to) = &self.teardown_report {
            *to.lock().unwrap_or_else(|p| p.into_inner()) = Some(report);
        }
        let _ = report;
    }
}

impl LinkSocketry for Io {
    fn open(&mut self, link: &Link, now: Instant) {
        self.retire();
        link.handle_opening();
        let started = sock::resolve(&self.config.addr).and_then(|t| self.start_connect(t));
        if let Err(e) = started {
            self.failed(link, now, "connect to", e);
        }
    }

    fn close(&mut self, link: &Link, now: Instant) {
        let had = self.conn.is_some();
        self.retire();
        if had || !link.is_quiet(now) || link.want(now) == super::Want::Close {
            link.handle_closed(Error::connection("connection closed"), now);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The ring's teardown, driven by hand on the test thread: a connection to a peer that
    //! never answers keeps a receive in flight, then a panic unwinds through the driver.

    use super::*;
    use crate::conn::Payload;
    use crate::engine::link::To;
    use crate::{cmd, Config};
    use std::os::unix::net::UnixListener;
    use std::sync::Mutex;

    type Report = Arc<Mutex<Option<Teardown>>>;

    /// An `Io` connected to a unix listener whose peer never answers, with a receive armed;
    /// also the accepted peer, which must stay open for the receive to stay in flight.
    fn connected_io(
        name: &str,
        recv_mode: RecvMode,
    ) -> Option<(Io, Arc<Link>, std::os::unix::net::UnixStream, Report)> {
        let dir = std::env::temp_dir().join(format!("ringdis-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let config = Config::new()
            .unix_socket(&path)
            .protocol(crate::Protocol::Resp2);
        let parking = Arc::new(Parking {
            parked: AtomicBool::new(false),
            // SAFETY: a plain eventfd(2) call, checked below before use.
            eventfd: unsafe { OwnedFd::from_raw_fd(libc::eventfd(0, libc::EFD_CLOEXEC)) },
        });
        assert!(parking.eventfd.as_raw_fd() >= 0);
        let mut io = match Io::new(Arc::new(config.clone()), parking) {
            Ok(io) => io,
            // A kernel without io_uring: the epoll transport is used there, nothing to test.
            Err(e) => {
                eprintln!("skipped: no io_uring here ({e})");
                return None;
            }
        };
        let report = Report::default();
        io.teardown_report = Some(report.clone());
        if io.bufs.is_none() && recv_mode == RecvMode::Multi {
            eprintln!("skipped: no provided-buffer ring on this kernel");
            return None;
        }
        io.recv_mode = recv_mode;
        struct NoWake;
        impl Wake for NoWake {
            fn wake(&self) {}
        }
        let link = Link::new(Arc::new(config), Box::new(NoWake));
        link.submit(Payload::One(cmd!("PING")), None, To::Discard);
        let now = Instant::now();
        link.obey(now, &mut io);
        // Bounded: a local connect completes within a few rounds.
        for _ in 0..200 {
            if link.is_connected() && io.conn.as_ref().is_some_and(|c| c.recv_armed) {
                break;
            }
            io.flush(&link);
            io.enter(1).unwrap();
            io.reap(Some(&link), Instant::now());
        }
        assert!(link.is_connected(), "the ring connected");
        assert!(io.conn.as_ref().is_some_and(|c| c.recv_armed));
        let (peer, _) = listener.accept().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        Some((io, link, peer, report))
    }

    /// Both receive modes: multishot from the provided-buffer ring, and single-shot into the
    /// connection's own buffer.
    #[test]
    fn a_panic_through_the_driver_frees_buffers_only_after_the_kernel_is_done() {
        for mode in [RecvMode::Multi, RecvMode::Single] {
            let Some((io, core, peer, report)) = connected_io("unwind", mode) else {
                continue;
            };
            let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                let _io = io;
                let _core = core;
                panic!("a bug in the driver");
            }));
            assert!(unwound.is_err());
            let got = report
                .lock()
                .unwrap()
                .expect("the teardown ran during the unwind");
            assert!(
                got.inflight_at_start >= 1,
                "a receive was in flight: {got:?}"
            );
            assert_eq!(
                got.inflight_at_free,
                Some(0),
                "every completion was in before anything was freed"
            );
            drop(peer);
        }
    }

    #[test]
    fn a_kernel_that_does_not_finish_in_time_gets_leaked_buffers_not_freed_ones() {
        let Some((mut io, core, peer, report)) = connected_io("leak", RecvMode::Multi) else {
            return;
        };
        io.exit_grace = Duration::ZERO;
        drop(io);
        let got = report.lock().unwrap().expect("the teardown ran");
        assert!(got.inflight_at_start >= 1, "{got:?}");
        assert_eq!(
            got.inflight_at_free, None,
            "nothing completed within no time: the buffers are leaked"
        );
        drop((core, peer));
    }
}
