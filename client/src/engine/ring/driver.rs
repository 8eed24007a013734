//! The ring engine's thread: one loop driving every link of the engine through one ring.
//!
//! Each turn takes new links, ready links and finished name lookups from the [`Hub`], turns
//! every ready link (and every link whose deadline passed): [`Link::turn`], [`Link::obey`], then
//! one `SEND` of what [`Link::poll_transmit`] has; arms ONE ring timeout at the earliest
//! [`Link::poll_timeout`] of all links, and ends in one `io_uring_enter` that submits and waits.
//! Completions are routed by the slot and socket generation in their `user_data`.
//!
//! Socket operations are ring operations: `IORING_OP_CONNECT`, one `SEND` per link at a time, a
//! multishot `RECV` drawing from the engine's provided-buffer ring (single-shot `RECV` into the
//! socket's own buffer where the kernel has none), the timer as `IORING_OP_TIMEOUT`, and wake-ups
//! as a multishot `POLL_ADD` on the hub's eventfd, which wakers write only while the engine is
//! parked.
//!
//! Ownership: every buffer an operation points at (send bytes, receive buffers, the socket
//! address, the eventfd counter) belongs to the engine and is freed only after the operation's
//! last completion has been reaped. A closed socket is retired: its operations are cancelled,
//! and it and its buffers are dropped when their completions are all in; a finished link's slot
//! is freed only then. On every exit of the thread, an orderly one or a panic unwinding through
//! it, `Engine`'s `Drop` stops every link, cancels everything and waits (at most
//! [`EXIT_GRACE`]) for every completion; whatever the kernel may still touch after that is
//! leaked, never freed.

use super::hub::{Hub, Inbox, SlotId};
use super::resolve;
use super::setup::{self, BufRing, Enter, Mode};
use super::sock::{self, RawAddr, Target};
use crate::engine::deadlines::Deadlines;
use crate::engine::link::LinkSocketry;
use crate::engine::{server_closed, Link, Want};
use crate::Error;
use bytes::{Buf, Bytes};
use io_uring::types::{CancelBuilder, Fd, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Operation kinds, in the low byte of `user_data`.
const K_WAKE: u64 = 1;
const K_TIMER: u64 = 2;
const K_TIMER_REMOVE: u64 = 3;
const K_CONNECT: u64 = 4;
const K_SEND: u64 = 5;
const K_RECV: u64 = 6;
const K_CANCEL: u64 = 7;

/// `user_data`: the operation kind (8 bits), the slot index (24 bits) and a generation (32
/// bits): the socket's for socket operations (unique in the engine, so a completion for a
/// socket that is gone, or a slot that holds another link now, is recognised), the timer's for
/// the timer.
fn ud(kind: u64, slot: u32, gen: u32) -> u64 {
    (u64::from(gen) << 32) | (u64::from(slot & 0x00ff_ffff) << 8) | kind
}

fn parse_ud(ud: u64) -> (u64, u32, u32) {
    (
        ud & 0xff,
        ((ud >> 8) & 0x00ff_ffff) as u32,
        (ud >> 32) as u32,
    )
}

const RING_ENTRIES: u32 = 256;
/// Provided buffers, shared by every link: 128 of 16 KiB, handed back as soon as they are
/// copied out (at the end of each reap).
const BUF_COUNT: u16 = 128;
const BUF_SIZE: usize = 16 * 1024;
/// The single-shot receive buffer (one per open socket, only without a provided-buffer ring).
const SINGLE_BUF: usize = 32 * 1024;
/// Sends are capped so the length fits the SQE; the rest goes in the next one.
const MAX_SEND: usize = 1 << 30;
/// A send at most this long fits an empty socket buffer (the kernel's smallest, `tcp_wmem`'s
/// minimum, is 4 KiB), so it completes during the submit. See `Engine::park`.
const SMALL_SEND: usize = 4 * 1024;
/// How long a park that waits for two completions (a small send and what follows it) waits
/// before it looks again: the send may not complete at once after all (its socket buffer is
/// full), and then only this bounds how long the engine's other links wait.
const PAIR_WAIT: Duration = Duration::from_millis(1);
/// How long the exit path waits for cancelled operations before it leaks their buffers.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// How the engine watches the eventfd.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WakeMode {
    /// A multishot poll, armed once: a completion for every write, no read, no re-arming. The
    /// counter is never drained; it would take 2^64 wake-ups to fill it.
    Poll,
    /// A read per wake-up, re-armed after each (kernels before 5.13).
    Read,
}

/// How receives are done.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RecvMode {
    /// Multishot receive from the provided-buffer ring.
    Multi,
    /// One receive at a time into the socket's own buffer.
    Single,
}

/// One socket and the operations in flight on it.
struct Conn {
    /// Unique among the engine's sockets (wrapping after 2^32).
    gen: u32,
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

/// One link's place in the engine.
struct Slot {
    id: SlotId,
    /// `None` once the link is finished (the slot waits for its retired sockets).
    link: Option<Arc<Link>>,
    conn: Option<Conn>,
    /// Closed sockets waiting for their operations to complete.
    retired: Vec<Conn>,
    /// The name lookup in flight, by ticket.
    resolving: Option<u64>,
    /// The deadline recorded in the heap for this link.
    deadline: Option<Instant>,
    /// On the engine's ready list.
    ready: bool,
}

/// The ring engine's state, owned by its thread.
pub(super) struct Engine {
    hub: Arc<Hub>,
    ring: IoUring,
    enter: Enter,
    mode: Mode,
    bufs: Option<BufRing>,
    recv_mode: RecvMode,
    slots: Vec<Option<Slot>>,
    /// Occupied slots.
    live: usize,
    /// Slots to turn this loop turn.
    ready: Vec<u32>,
    deadlines: Deadlines<SlotId>,
    inbox: Inbox,
    next_sock_gen: u32,
    next_ticket: u64,
    /// Every operation in flight.
    inflight: u32,
    /// The eventfd watch in flight, how it watches, and the counter a read-mode watch reads into.
    wake_armed: bool,
    wake_mode: WakeMode,
    wake_buf: Box<u64>,
    /// The timer in flight: its deadline and generation.
    timer_at: Option<Instant>,
    timer_gen: u32,
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

/// Runs the engine until its last link is finished or its ring breaks. Dropping the engine (on
/// the way out, a panic included) stops every link it still has.
pub(super) fn run(mut engine: Engine) {
    loop {
        let now = Instant::now();
        engine.take_inbox(now);
        engine.take_due(now);
        engine.turn_ready(now);
        if engine.live == 0 && engine.hub.try_exit() {
            break;
        }
        engine.arm_wake();
        let next = engine.earliest();
        engine.arm_timer(next, Instant::now());
        if engine.park().is_err() {
            // The ring itself broke: nothing more can be done on this thread.
            break;
        }
        engine.reap(true, Instant::now());
    }
}

/// The socket side of one link, as [`Link::obey`] drives it.
struct SlotIo<'a> {
    engine: &'a mut Engine,
    index: u32,
}

impl LinkSocketry for SlotIo<'_> {
    fn open(&mut self, link: &Link, now: Instant) {
        self.engine.open(self.index, link, now);
    }

    fn close(&mut self, link: &Link, now: Instant) {
        let e = &mut *self.engine;
        let had = e
            .slot(self.index)
            .is_some_and(|s| s.conn.is_some() || s.resolving.is_some());
        e.retire(self.index);
        if let Some(s) = e.slot_mut(self.index) {
            s.resolving = None;
        }
        if had || !link.is_quiet(now) || link.want(now) == Want::Close {
            link.handle_closed(Error::connection("connection closed"), now);
        }
    }
}

impl Engine {
    pub fn new(hub: Arc<Hub>) -> io::Result<Engine> {
        let (ring, mode) = setup::build(RING_ENTRIES)?;
        setup::probe(&ring)?;
        let multishot = setup::want_multishot();
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
        Ok(Engine {
            hub,
            enter: Enter::new(&ring),
            ring,
            mode,
            bufs,
            recv_mode,
            slots: Vec::new(),
            live: 0,
            ready: Vec::new(),
            deadlines: Deadlines::default(),
            inbox: Inbox::default(),
            next_sock_gen: 1,
            next_ticket: 1,
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
            cqes: Vec::with_capacity(256),
            fresh_sends: 0,
            big_send: false,
            exit_grace: EXIT_GRACE,
            #[cfg(test)]
            teardown_report: None,
        })
    }

    fn slot(&self, index: u32) -> Option<&Slot> {
        self.slots.get(index as usize).and_then(Option::as_ref)
    }

    fn slot_mut(&mut self, index: u32) -> Option<&mut Slot> {
        self.slots.get_mut(index as usize).and_then(Option::as_mut)
    }

    /// The slot `id` names, if it still holds that link.
    fn slot_of(&mut self, id: SlotId) -> Option<&mut Slot> {
        self.slot_mut(id.index).filter(|s| s.id == id)
    }

    fn mark_ready(&mut self, index: u32) {
        if let Some(s) = self.slot_mut(index) {
            if !s.ready && s.link.is_some() {
                s.ready = true;
                self.ready.push(index);
            }
        }
    }

    /// New links, wake-ups and finished lookups from other threads.
    fn take_inbox(&mut self, now: Instant) {
        let mut inbox = std::mem::take(&mut self.inbox);
        self.hub.take(&mut inbox);
        for (id, link) in inbox.attached.drain(..) {
            let i = id.index as usize;
            if self.slots.len() <= i {
                self.slots.resize_with(i + 1, || None);
            }
            self.slots[i] = Some(Slot {
                id,
                link: Some(link),
                conn: None,
                retired: Vec::new(),
                resolving: None,
                deadline: None,
                ready: false,
            });
            self.live += 1;
            self.mark_ready(id.index);
        }
        for id in inbox.ready.drain(..) {
            if self.slot_of(id).is_some() {
                self.mark_ready(id.index);
            }
        }
        for (id, ticket, found) in inbox.resolved.drain(..) {
            let Some(slot) = self.slot_of(id) else {
                continue;
            };
            if slot.resolving != Some(ticket) {
                continue;
            }
            slot.resolving = None;
            let Some(link) = slot.link.clone() else {
                continue;
            };
            let started = found.and_then(|t| self.start_connect(id.index, t));
            if let Err(e) = started {
                self.failed(id.index, &link, now, "connect to", e);
            }
            self.mark_ready(id.index);
        }
        self.inbox = inbox;
    }

    /// Links whose deadline has passed.
    fn take_due(&mut self, now: Instant) {
        loop {
            let slots = &self.slots;
            let Some(id) = self
                .deadlines
                .pop_due(now, |id, at| has_deadline(slots, id, at))
            else {
                return;
            };
            if let Some(slot) = self.slot_of(id) {
                slot.deadline = None;
                self.mark_ready(id.index);
            }
        }
    }

    /// Turns every ready link: its requests and timers, its socket, its output, its deadline.
    fn turn_ready(&mut self, now: Instant) {
        let mut ready = std::mem::take(&mut self.ready);
        for index in ready.drain(..) {
            let Some(slot) = self.slot_mut(index) else {
                continue;
            };
            slot.ready = false;
            let Some(link) = slot.link.clone() else {
                continue;
            };
            if !link.turn(now) {
                self.finish(index, &link, now);
                continue;
            }
            link.obey(
                now,
                &mut SlotIo {
                    engine: self,
                    index,
                },
            );
            self.flush(index, &link);
            let next = link.poll_timeout(now);
            self.set_deadline(index, next);
        }
        // Keep the (emptied) allocation; anything marked ready meanwhile waits in `self.ready`.
        if self.ready.is_empty() {
            self.ready = ready;
        }
    }

    fn set_deadline(&mut self, index: u32, next: Option<Instant>) {
        let Some(slot) = self.slot_mut(index) else {
            return;
        };
        if slot.deadline == next {
            return;
        }
        slot.deadline = next;
        let id = slot.id;
        if let Some(at) = next {
            self.deadlines.push(at, id);
        }
        let current = self
            .slots
            .iter()
            .flatten()
            .filter_map(|s| s.deadline.map(|at| (at, s.id)));
        self.deadlines.compact(self.live, current);
    }

    fn earliest(&mut self) -> Option<Instant> {
        let slots = &self.slots;
        self.deadlines
            .earliest(|id, at| has_deadline(slots, id, at))
    }

    /// The link is finished: what it still has to send leaves (best effort: calls handed over
    /// just before the last handle went, fire-and-forget ones without a deadline), its socket
    /// closes and the link hears of it (a tracking connection tells its push handler), and its
    /// slot is freed once the kernel is done with every operation of it.
    fn finish(&mut self, index: u32, link: &Link, now: Instant) {
        let sends = self.fresh_sends;
        self.flush(index, link);
        if self.fresh_sends != sends {
            // The send must reach the kernel before the socket is shut down (an extra enter,
            // once per finished connection).
            let _ = self.ring.submit();
        }
        SlotIo {
            engine: self,
            index,
        }
        .close(link, now);
        if let Some(slot) = self.slot_mut(index) {
            slot.link = None;
            slot.resolving = None;
            slot.deadline = None;
        }
        link.stopped();
        self.free_if_done(index);
    }

    fn free_if_done(&mut self, index: u32) {
        let done = self
            .slot(index)
            .is_some_and(|s| s.link.is_none() && s.conn.is_none() && s.retired.is_empty());
        if done {
            if let Some(slot) = self.slots[index as usize].take() {
                self.live -= 1;
                self.hub.free(slot.id);
            }
        }
    }

    /// Starts opening the link's socket: at once for an IP literal or a unix path, after a
    /// lookup on another thread for a host name.
    fn open(&mut self, index: u32, link: &Link, now: Instant) {
        self.retire(index);
        link.handle_opening();
        let addr = &link.addr();
        let started = match sock::literal(addr) {
            Some(targets) => self.start_connect(index, targets),
            None => {
                let ticket = self.next_ticket;
                self.next_ticket += 1;
                let Some(slot) = self.slot_mut(index) else {
                    return;
                };
                slot.resolving = Some(ticket);
                let id = slot.id;
                resolve::spawn(self.hub.clone(), id, ticket, addr)
            }
        };
        if let Err(e) = started {
            if let Some(slot) = self.slot_mut(index) {
                slot.resolving = None;
            }
            self.failed(index, link, now, "connect to", e);
        }
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
        // Bounded: a ring that keeps refusing submits is broken and the engine is ending.
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

    /// Keeps a watch on the eventfd armed, so a waker's write wakes a parked engine.
    fn arm_wake(&mut self) {
        if self.wake_armed {
            return;
        }
        let fd = Fd(self.hub.eventfd().as_raw_fd());
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
        // by `self`. `Engine`'s `Drop` (which runs on every exit, unwinding included) frees it
        // only after every completion (this one included) is reaped, and leaks it otherwise.
        // The eventfd lives in the hub, which `self` holds until after that.
        unsafe { self.push(entry.user_data(ud(K_WAKE, 0, 0))) };
        self.wake_armed = true;
    }

    /// Makes sure the timer fires at `deadline` at the latest. A timer set for later is
    /// replaced; one set for earlier is left to fire (the turn after it sets the next one).
    fn arm_timer(&mut self, deadline: Option<Instant>, now: Instant) {
        let Some(deadline) = deadline else {
            return;
        };
        if let Some(at) = self.timer_at {
            if at <= deadline {
                return;
            }
            let entry = opcode::TimeoutRemove::new(ud(K_TIMER, 0, self.timer_gen))
                .build()
                .user_data(ud(K_TIMER_REMOVE, 0, 0));
            // SAFETY: a removal points at no memory.
            unsafe { self.push(entry) };
        }
        self.timer_gen = self.timer_gen.wrapping_add(1);
        *self.timer_spec = Timespec::from(deadline.saturating_duration_since(now));
        let spec: *const Timespec = &*self.timer_spec;
        let entry = opcode::Timeout::new(spec)
            .build()
            .user_data(ud(K_TIMER, 0, self.timer_gen));
        // SAFETY: the kernel copies the timespec when it takes the entry; `timer_spec` is a
        // heap value owned by `self` and only rewritten by the next `arm_timer`, after this
        // entry has been submitted by the `io_uring_enter` that ends this turn. If a panic
        // unwinds first, `Engine`'s `Drop` submits it (or never does) before any field is freed.
        unsafe { self.push(entry) };
        self.timer_at = Some(deadline);
    }

    /// Submits what is queued and waits for at least one completion, unless a waker has
    /// already left work in the inbox (then it only collects what is done).
    fn park(&mut self) -> io::Result<()> {
        self.hub.set_parked(true);
        let busy = self.hub.is_pending() || !self.ready.is_empty();
        // A small send to a connected socket usually completes during the submit itself, so
        // waiting for it alone would only cost a second enter: when it is the only one, wait
        // for it *and* the next event (the reply, a wake-up, the timer), for at most
        // `PAIR_WAIT` (its socket buffer may be full after all: the server stopped reading).
        // Not after a large send (one that does not fit the socket buffer finishes through
        // retries run as task work, which posts no completion to wake a thread waiting for
        // two), nor after several (one of them stuck on a full socket buffer would hold back
        // the wake-ups).
        let want = match (busy, self.big_send, self.fresh_sends) {
            (true, _, _) => 0,
            (false, false, 1) => 2,
            (false, _, _) => 1,
        };
        if busy {
            self.hub.set_parked(false);
        }
        self.fresh_sends = 0;
        self.big_send = false;
        let res = self.enter(want);
        self.hub.set_parked(false);
        res
    }

    /// One `io_uring_enter`: submit everything queued and wait for `want` completions.
    fn enter(&mut self, want: u32) -> io::Result<()> {
        let to_submit = self.ring.submission().len() as u32;
        if want == 0 && to_submit == 0 && self.mode != Mode::Deferred {
            // Completions are already in the shared queue: no syscall needed.
            return Ok(());
        }
        let entered = if want > 1 {
            // Bounded: the send that was to make one of the completions may be stuck on a full
            // socket buffer (a server that stopped reading), and a wake-up alone would then not
            // end the wait: every other link would wait with it.
            self.enter.enter_within(to_submit, want, PAIR_WAIT)
        } else {
            self.enter.enter(to_submit, want)
        };
        match entered {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::EBUSY | libc::EAGAIN | libc::ETIME)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Handles every completion that is in. With `active` false (on the way out) completions
    /// only release what their operations held.
    fn reap(&mut self, active: bool, now: Instant) {
        let mut cqes = std::mem::take(&mut self.cqes);
        cqes.extend(self.ring.completion());
        for cqe in cqes.drain(..) {
            self.complete(&cqe, active, now);
        }
        self.cqes = cqes;
        if let Some(bufs) = &mut self.bufs {
            bufs.publish();
        }
    }

    fn complete(&mut self, cqe: &cqueue::Entry, active: bool, now: Instant) {
        let (kind, index, gen) = parse_ud(cqe.user_data());
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
            K_TIMER if gen == self.timer_gen => self.timer_at = None,
            K_CONNECT | K_SEND | K_RECV => {
                // A receive that picked a provided buffer hands it back, whoever it was for.
                let picked = cqueue::buffer_select(flags);
                let current = self
                    .slot(index)
                    .filter(|s| s.conn.as_ref().is_some_and(|c| c.gen == gen))
                    .and_then(|s| s.link.clone());
                match current {
                    Some(link) if active => {
                        self.complete_conn(index, &link, kind, res, more, picked, now);
                        self.mark_ready(index);
                    }
                    _ => self.complete_retired(index, gen, kind, more),
                }
                if let (Some(bid), Some(bufs)) = (picked, &mut self.bufs) {
                    bufs.push(bid);
                }
            }
            _ => {}
        }
    }

    /// A completion for a retired socket, or for any socket on the way out: it only releases
    /// what its operation held.
    fn complete_retired(&mut self, index: u32, gen: u32, kind: u64, more: bool) {
        let Some(slot) = self.slot_mut(index) else {
            return;
        };
        let retired = slot.retired.iter().position(|c| c.gen == gen);
        let c = match retired {
            Some(i) => &mut slot.retired[i],
            None => match slot.conn.as_mut().filter(|c| c.gen == gen) {
                Some(c) => c,
                None => return,
            },
        };
        if !more {
            c.ops = c.ops.saturating_sub(1);
            if kind == K_RECV {
                c.recv_armed = false;
            }
        }
        if kind == K_SEND {
            c.send_inflight = false;
        }
        if let Some(i) = retired.filter(|&i| slot.retired[i].ops == 0) {
            // Nothing points into it any more: close the socket, free its buffers.
            slot.retired.swap_remove(i);
            self.free_if_done(index);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn complete_conn(
        &mut self,
        index: u32,
        link: &Link,
        kind: u64,
        res: i32,
        more: bool,
        picked: Option<u16>,
        now: Instant,
    ) {
        let keepalive = link.config().tcp_keepalive;
        let slot = self.slots.get_mut(index as usize).and_then(Option::as_mut);
        let Some(c) = slot.and_then(|s| s.conn.as_mut()) else {
            return;
        };
        if !more {
            c.ops = c.ops.saturating_sub(1);
        }
        match kind {
            K_CONNECT if res >= 0 => {
                c.open = true;
                if c.tcp {
                    crate::engine::keepalive::apply(&c.fd, keepalive);
                }
                link.handle_open(now);
                self.arm_recv(index);
            }
            K_CONNECT => {
                let err = io::Error::from_raw_os_error(-res);
                let rest = std::mem::take(&mut c.rest);
                if rest.is_empty() {
                    return self.failed(index, link, now, "connect to", err);
                }
                self.retire(index);
                if let Err(e) = self.start_connect(index, rest) {
                    self.failed(index, link, now, "connect to", e);
                }
            }
            K_SEND => {
                c.send_inflight = false;
                if res < 0 {
                    let err = io::Error::from_raw_os_error(-res);
                    return self.failed(index, link, now, "writing to", err);
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
                        (None, _, Some(rbuf)) => link.handle_input(&rbuf[..n.min(rbuf.len())], now),
                        _ => Ok(()),
                    };
                    if let Err(e) = input {
                        self.retire(index);
                        link.handle_closed(e, now);
                        return;
                    }
                    if !more {
                        self.arm_recv(index);
                    }
                } else if res == 0 {
                    self.failed(index, link, now, "reading from", server_closed());
                } else if res == -libc::ENOBUFS {
                    // Every provided buffer was in use; they are handed back this turn.
                    self.arm_recv(index);
                } else if res == -libc::EINVAL && self.recv_mode == RecvMode::Multi {
                    // No multishot receive on this kernel: one receive at a time from now on.
                    self.recv_mode = RecvMode::Single;
                    self.arm_recv(index);
                } else if res != -libc::ECANCELED {
                    let err = io::Error::from_raw_os_error(-res);
                    self.failed(index, link, now, "reading from", err);
                }
            }
            _ => {}
        }
    }

    /// Arms a receive on the link's open socket, if none is.
    fn arm_recv(&mut self, index: u32) {
        let mode = self.recv_mode;
        let bgid = self.bufs.as_ref().map(|b| b.bgid);
        let Some(c) = self.slot_mut(index).and_then(|s| s.conn.as_mut()) else {
            return;
        };
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
        let entry = entry.user_data(ud(K_RECV, index, c.gen));
        // SAFETY: a multishot receive writes only into provided buffers, which `Engine`'s
        // `Drop` (every exit, unwinding included) frees only after every completion is reaped,
        // and leaks otherwise; a single-shot one writes into `rbuf`, owned by the socket's
        // `Conn`, which is dropped only once its `ops` count is back to zero (or leaked with it
        // by `Drop`).
        unsafe { self.push(entry) };
    }

    /// Sends whatever the link has queued, in one operation, unless a send is in flight.
    fn flush(&mut self, index: u32, link: &Link) {
        let Some(c) = self.slot_mut(index).and_then(|s| s.conn.as_mut()) else {
            return;
        };
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
            .user_data(ud(K_SEND, index, c.gen));
        c.send_inflight = true;
        c.ops += 1;
        self.fresh_sends += 1;
        self.big_send |= len as usize > SMALL_SEND;
        // SAFETY: `unsent` is held by the socket's `Conn` (and not advanced) until this send
        // completes; a retired `Conn` keeps it until its `ops` count is back to zero, and
        // `Engine`'s `Drop` (every exit, unwinding included) leaks it if that never happens.
        unsafe { self.push(entry) };
    }

    /// Opens a socket to the first of `targets` for the link in `index` and queues its CONNECT.
    fn start_connect(&mut self, index: u32, mut targets: Vec<Target>) -> io::Result<()> {
        if targets.is_empty() {
            return Err(io::Error::other("host resolved to no address"));
        }
        let Some(link) = self.slot(index).and_then(|s| s.link.clone()) else {
            return Ok(());
        };
        let target = targets.remove(0);
        let (fd, addr) = sock::socket(&target, link.config().tcp_nodelay)?;
        let gen = self.next_sock_gen;
        self.next_sock_gen = self.next_sock_gen.wrapping_add(1);
        let entry = opcode::Connect::new(Fd(fd.as_raw_fd()), addr.ptr(), addr.len())
            .build()
            .user_data(ud(K_CONNECT, index, gen));
        let conn = Conn {
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
        };
        let Some(slot) = self.slot_mut(index) else {
            return Ok(());
        };
        slot.conn = Some(conn);
        // SAFETY: the address is boxed in the `Conn`, which (retired or not) lives until this
        // CONNECT has completed, or is leaked by `Engine`'s `Drop` if it never does.
        unsafe { self.push(entry) };
        Ok(())
    }

    fn failed(&mut self, index: u32, link: &Link, now: Instant, what: &str, e: io::Error) {
        self.retire(index);
        let addr = link.addr();
        link.handle_closed(Error::connection_io(format!("{what} {addr}: {e}"), e), now);
    }

    /// Takes the link's socket out of service: cancels its operations, and keeps it and its
    /// buffers until they have all completed.
    fn retire(&mut self, index: u32) {
        let Some(slot) = self.slot_mut(index) else {
            return;
        };
        let Some(c) = slot.conn.take() else { return };
        if c.ops == 0 {
            return;
        }
        let _ = &c.addr;
        sock::shutdown(&c.fd);
        let entry = opcode::AsyncCancel2::new(CancelBuilder::fd(Fd(c.fd.as_raw_fd())).all())
            .build()
            .user_data(ud(K_CANCEL, index, c.gen));
        slot.retired.push(c);
        // SAFETY: a cancellation points at no memory.
        unsafe { self.push(entry) };
    }

    /// The engine is stopping, in order or by a panic unwinding through it: cancel everything
    /// and wait (at most `exit_grace`) for every completion before any buffer an operation may
    /// still point at is freed. If the kernel cannot be shown done with them, they are leaked:
    /// leaking is safe, freeing them is not.
    fn teardown(&mut self) -> Teardown {
        let inflight_at_start = self.inflight;
        for index in 0..self.slots.len() as u32 {
            self.retire(index);
        }
        let entry = opcode::AsyncCancel2::new(CancelBuilder::any())
            .build()
            .user_data(ud(K_CANCEL, 0, 0));
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
            self.reap(false, Instant::now());
        }
        if self.inflight > 0 {
            // Something never completed: the kernel may still write into these buffers (or
            // read the provided-buffer ring), so they are leaked rather than freed. The ring
            // itself is closed when `Engine`'s fields drop; the kernel then finishes the rest
            // on memory that stays mapped.
            for slot in self.slots.iter_mut().flatten() {
                std::mem::forget(std::mem::take(&mut slot.retired));
                std::mem::forget(slot.conn.take());
            }
            std::mem::forget(self.bufs.take());
            std::mem::forget(std::mem::replace(&mut self.wake_buf, Box::new(0)));
            // The eventfd a read may still target lives in the hub: keep it open too.
            std::mem::forget(self.hub.clone());
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

/// What [`Engine::teardown`] found and did (checked by tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Teardown {
    /// Operations in flight when the teardown began.
    inflight_at_start: u32,
    /// Operations still in flight when the buffers were released to be freed: `Some(0)` always,
    /// or `None` when they were leaked because the kernel did not finish within the grace time.
    inflight_at_free: Option<u32>,
}

/// Whether the link in `id`'s slot is still `id` and still has deadline `at`.
fn has_deadline(slots: &[Option<Slot>], id: SlotId, at: Instant) -> bool {
    slots
        .get(id.index as usize)
        .and_then(Option::as_ref)
        .is_some_and(|s| s.id == id && s.deadline == Some(at))
}

impl Drop for Engine {
    /// Runs on every exit of the engine thread: the orderly one, and a panic unwinding through
    /// it (a bug; user code is caught before it can unwind this far). Every link still driven is
    /// stopped first (its callers fail at once instead of waiting), then the ring's operations
    /// are wound down; the fields (ring, sockets, buffers) drop only after this, and only once
    /// the kernel is done with them.
    fn drop(&mut self) {
        self.hub.close();
        for slot in self.slots.iter_mut().flatten() {
            if let Some(link) = slot.link.take() {
                link.stopped();
            }
        }
        let report = self.teardown();
        #[cfg(test)]
        if let Some(to) = &self.teardown_report {
            *to.lock().unwrap_or_else(|p| p.into_inner()) = Some(report);
        }
        let _ = report;
    }
}

#[cfg(test)]
mod tests {
    //! The engine driven by hand on the test thread: links to a unix listener whose peer never
    //! answers keep a receive in flight, then a panic unwinds through the engine.

    use super::*;
    use crate::engine::Wake;
    use crate::Config;
    use std::os::fd::FromRawFd;
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::sync::Mutex;

    type Report = Arc<Mutex<Option<Teardown>>>;

    /// An engine, its links, the peers of their sockets, where its teardown reports.
    type Connected = (Engine, Vec<Arc<Link>>, Vec<UnixStream>, Report);

    struct NoWake;
    impl Wake for NoWake {
        fn wake(&self) {}
    }

    fn hub() -> Arc<Hub> {
        // SAFETY: a plain eventfd(2) call, checked below before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: `fd` is fresh and owned by nothing else.
        Arc::new(Hub::new(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// An engine with `n` links connected to a unix listener whose peer never answers, each
    /// with a receive armed; also the accepted peers, which must stay open for the receives to
    /// stay in flight.
    fn connected(name: &str, recv_mode: RecvMode, n: u32) -> Option<Connected> {
        let dir = std::env::temp_dir().join(format!("ringdis-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let config = Arc::new(
            Config::new()
                .unix_socket(&path)
                .protocol(crate::Protocol::Resp2),
        );
        let mut engine = match Engine::new(hub()) {
            Ok(e) => e,
            // A kernel without io_uring: the epoll engine is used there, nothing to test.
            Err(e) => {
                eprintln!("skipped: no io_uring here ({e})");
                return None;
            }
        };
        let report = Report::default();
        engine.teardown_report = Some(report.clone());
        if engine.bufs.is_none() && recv_mode == RecvMode::Multi {
            eprintln!("skipped: no provided-buffer ring on this kernel");
            return None;
        }
        engine.recv_mode = recv_mode;
        let mut links = Vec::new();
        for index in 0..n {
            let link = Link::new(config.clone(), Box::new(NoWake));
            engine.slots.push(Some(Slot {
                id: SlotId { index, gen: 7 },
                link: Some(link.clone()),
                conn: None,
                retired: Vec::new(),
                resolving: None,
                deadline: None,
                ready: false,
            }));
            engine.live += 1;
            // A waiting call makes the link want a connection, as the engine's turn would see.
            link.submit(
                crate::conn::Payload::One(crate::Cmd::new("PING")),
                None,
                crate::engine::link::To::Discard,
            );
            let now = Instant::now();
            assert_eq!(link.want(now), Want::Open);
            engine.open(index, &link, now);
            links.push(link);
        }
        let armed = |e: &Engine| {
            (0..n).all(|i| {
                e.slot(i)
                    .and_then(|s| s.conn.as_ref())
                    .is_some_and(|c| c.open && c.recv_armed)
            })
        };
        // Bounded: a local connect completes within a few rounds.
        for _ in 0..200 {
            if armed(&engine) {
                break;
            }
            engine.enter(1).unwrap();
            engine.reap(true, Instant::now());
        }
        assert!(armed(&engine), "every link connected, a receive armed");
        let peers = (0..n).map(|_| listener.accept().unwrap().0).collect();
        let _ = std::fs::remove_dir_all(&dir);
        Some((engine, links, peers, report))
    }

    /// Whether the link's handles see it connected ([`Link::stopped`] ends that for good).
    fn is_up(link: &Link) -> bool {
        link.is_connected()
    }

    #[test]
    fn user_data_carries_kind_slot_and_generation() {
        let u = ud(K_RECV, 0x00ab_cdef, 0xdead_beef);
        assert_eq!(parse_ud(u), (K_RECV, 0x00ab_cdef, 0xdead_beef));
    }

    /// Both receive modes: multishot from the provided-buffer ring, and single-shot into the
    /// socket's own buffer.
    #[test]
    fn a_panic_through_the_engine_frees_buffers_only_after_the_kernel_is_done() {
        for mode in [RecvMode::Multi, RecvMode::Single] {
            let Some((engine, links, peers, report)) = connected("unwind", mode, 3) else {
                continue;
            };
            assert!(links.iter().all(|l| is_up(l)), "connected before the panic");
            let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                let _engine = engine;
                panic!("a bug in the engine");
            }));
            assert!(unwound.is_err());
            let got = report
                .lock()
                .unwrap()
                .expect("the teardown ran during the unwind");
            assert!(
                got.inflight_at_start >= 3,
                "three receives were in flight: {got:?}"
            );
            assert_eq!(
                got.inflight_at_free,
                Some(0),
                "every completion was in before anything was freed"
            );
            assert!(
                links.iter().all(|l| !is_up(l)),
                "the unwinding engine stopped every link (their callers fail, none waits)"
            );
            drop((links, peers));
        }
    }

    #[test]
    fn a_kernel_that_does_not_finish_in_time_gets_leaked_buffers_not_freed_ones() {
        let Some((mut engine, _links, peers, report)) = connected("leak", RecvMode::Multi, 2)
        else {
            return;
        };
        engine.exit_grace = Duration::ZERO;
        drop(engine);
        let got = report.lock().unwrap().expect("the teardown ran");
        assert!(got.inflight_at_start >= 2, "{got:?}");
        assert_eq!(
            got.inflight_at_free, None,
            "nothing completed within no time: the buffers are leaked"
        );
        drop(peers);
    }

    /// A late completion for a socket that was retired (or a slot that holds another link now)
    /// is routed by its generation and touches nothing current.
    #[test]
    fn a_retired_socket_is_freed_once_its_operations_are_in() {
        let Some((mut engine, links, peers, _report)) = connected("retire", RecvMode::Multi, 2)
        else {
            return;
        };
        engine.finish(0, &links[0], Instant::now());
        assert!(
            engine.slot(0).is_some(),
            "kept while its receive is in flight"
        );
        for _ in 0..200 {
            if engine.slot(0).is_none() {
                break;
            }
            engine.enter(1).unwrap();
            engine.reap(true, Instant::now());
        }
        assert!(engine.slot(0).is_none(), "freed once the kernel was done");
        assert_eq!(engine.live, 1);
        let other = engine.slot(1).and_then(|s| s.conn.as_ref());
        assert!(
            other.is_some_and(|c| c.open && c.recv_armed),
            "the other link is untouched"
        );
        drop(peers);
    }
}
