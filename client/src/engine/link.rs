//! [`Link`]: one connection as its engine and its client handles share it.
//!
//! The link holds the connection's [`Core`] (a pure state machine) behind one lock, with what
//! the core cannot hold: the pending-reply slots of the callers (a waiting future's [`Waker`],
//! an `async_call` callback, or nothing for a fire-and-forget call), the callers of `connect`
//! and `disconnect`, the push handler and a subscriber's inbox. Client handles submit straight
//! into it ([`Link::submit`]) and wake the engine through its [`Wake`] only when it is not
//! already awake. Whoever feeds the core (an engine reading a socket, a caller submitting)
//! takes the core's [`Event`]s under the lock, and wakes wakers and runs user code (callbacks,
//! push handlers) after releasing it: user code may call the client again. A panic in user code
//! is caught (counted, and reported with `tracing` when the feature is on); it never stops the
//! connection.
//!
//! The link keeps the connection's [`Stats`](crate::Stats) counters, and, with the `tracing`
//! feature, turns what the core does into spans and events (see [`crate::trace`]): it sees
//! every call's result, every socket opened and closed, and every byte. A subscriber is user
//! code too: what to report is noted under the lock (`Note`) and reported after it, so
//! a subscriber may call the client and a slow one holds up no other caller.
//!
//! The engine side of the contract, in the order things happen:
//!
//! 1. [`Link::turn`] at every loop turn: runs the timers; `false` means the connection is
//!    finished (every handle gone, no caller left): close it and forget the link.
//! 2. [`Link::want`] says [`Want::Open`]: call [`Link::handle_opening`], start connecting to
//!    [`Link::config`]'s address; then [`Link::handle_open`] once the socket is up, or
//!    [`Link::handle_closed`] if it failed.
//! 3. Whenever [`Link::poll_transmit`] has bytes, write them, in order.
//! 4. Bytes read go to [`Link::handle_input`]; an error from it means the stream is broken:
//!    close the socket and report [`Link::handle_closed`] with that error.
//! 5. [`Want::Close`]: close the socket, report [`Link::handle_closed`].
//! 6. Wake at [`Link::poll_timeout`] at the latest (and whenever the link's [`Wake`] fires).
//! 7. When the engine stops driving the link for any reason (a panic included), it calls
//!    [`Link::stopped`] so no caller waits for an engine that is gone.
//!
//! With TLS (`tls` feature, `Config::tls`), the bytes of steps 3 and 4 are ciphertext: the
//! session's TLS layer (`engine/tls.rs`) sits between them and the core, so every engine does
//! TLS without knowing it. Input may release bytes to send (the TLS handshake's), so engines
//! write after reading, as they do for the core's own handshake.

use super::source::{Follower, Lookup, Source};
use crate::cache::Shared;
use crate::config::{Addr, Config};
use crate::conn::{invalidation, Core, Event, Invalidation, Payload, Want};
use crate::inbox::InboxTx;
use crate::stats::{Counters, Stats};
use crate::trace::{self, Span};
use crate::{Cmd, Error, Result, Value};
use bytes::Bytes;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Wakes a parked engine: what an engine gives each link it drives, for the link's handles to
/// call when they have put work in it.
pub(crate) trait Wake: Send + Sync {
    fn wake(&self);

    /// The fast path of a caller that submitted a call to a connection that was ready with
    /// nothing in flight: the engine may write what `link` has to send right away, on the
    /// caller's thread, instead of being woken. True if it did and needs no wake-up for this
    /// call: every byte is written and the engine will run its timers by `deadline` (the
    /// call's) without being woken. False (the default) and the handle wakes the engine.
    ///
    /// Called outside the link's lock; it may call [`Link::poll_transmit`].
    fn transmit(&self, _link: &Link, _deadline: Option<Instant>) -> bool {
        false
    }
}

/// A callback for [`Client::async_call`](crate::Client::async_call).
pub(crate) type Callback = Box<dyn FnOnce(Result<Value>) + Send + 'static>;

/// A handler for RESP3 push frames that are not replies (client-side caching invalidations).
pub(crate) type PushHandler = Box<dyn FnMut(Value) + Send>;

/// Where the reply to a call submitted with [`Link::submit`] goes (a call a future awaits is
/// made with [`Link::reply`]).
pub(crate) enum To {
    /// A user callback, run by whoever hands the reply over, outside the link's lock.
    Callback(Callback),
    /// Nobody: the reply is read and dropped. With a deadline the call still counts as a
    /// caller until then (a dropped client's connection waits for it at most that long).
    Discard,
}

/// After the last handle is gone, how often the engine looks again whether any caller is left
/// (a caller that drops its future sends no wake-up).
const SHUTDOWN_POLL: Duration = Duration::from_millis(50);

/// One connection: its protocol state and everything waiting on it.
pub(crate) struct Link {
    session: Mutex<Session>,
    config: Arc<Config>,
    waker: Box<dyn Wake>,
    /// Set by a handle that found the engine not yet notified; cleared by the engine at each
    /// [`Link::turn`]. While it is set, further handles skip the wake-up.
    notified: AtomicBool,
    /// Every client handle is gone ([`Link::shut_down`]).
    shutdown: AtomicBool,
    /// Mirrors the core's readiness for handles, updated under the lock before any reply of a
    /// new connection is handed over, so a caller that got a reply never sees "not connected".
    connected: AtomicBool,
    /// How many calls the core held when the engine last asked for its timeout.
    queued: AtomicUsize,
    stats: Counters,
}

/// What the lock guards.
struct Session {
    core: Core,
    slots: Slots,
    /// Slots of the callers of `connect` not answered yet.
    connecting: Vec<u64>,
    /// Slots of the callers of `disconnect` not answered yet.
    disconnecting: Vec<u64>,
    pushes: Pushes,
    /// The client-side cache this connection's invalidations keep true ([`Link::set_cache`]):
    /// applied here, under the lock, in order with the replies.
    cache: Option<Arc<Shared>>,
    inbox: Option<InboxTx>,
    /// The engine is gone ([`Link::stopped`]): every request fails at once.
    stopped: bool,
    /// How many replies the last bytes read answered: more than one means several callers
    /// are at work, and their next calls are best written together by the engine.
    replies_read: usize,
    /// The open socket's TLS session, between it and the core ([`Config::tls`]).
    #[cfg(feature = "tls")]
    tls: Option<super::tls::TlsSession>,
    /// The socket is a connection that became ready (until it is closed).
    ready: bool,
    /// A connection was ready once: the next one is a reconnect.
    was_ready: bool,
    /// A connect attempt is under way (socket opening or handshake).
    attempting: bool,
    /// Connect attempts since the connection was last ready.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    attempts: u32,
    /// Every handle is gone and nothing waits ([`Link::turn`] said so): the engine closes the
    /// socket because the link is done, which is no lost connection.
    finished: bool,
    /// The `connect`/`reconnect` span of the attempt under way, and its `handshake` span: made
    /// and let go of (which calls the subscriber) outside the lock, only moved under it.
    attempt_span: Span,
    handshake_span: Span,
    /// The address of the attempt under way or the last one, when the configuration's
    /// [`Source`] gave it (`None`: the configuration's own address).
    target: Option<Addr>,
    /// An attempt waits for the source's address ([`Core::hold`]).
    holding: bool,
    /// The link closed its connection to follow the source to a new address: that close asks
    /// the source for nothing (it just said where to go).
    following: bool,
}

/// The push handler and the pushes waiting for it. One thread at a time runs the handler
/// (`running`), outside the lock, on the pushes in order.
#[derive(Default)]
struct Pushes {
    handler: Option<PushHandler>,
    /// Bumped by every [`Link::set_push_handler`], so a runner knows whether the handler it
    /// took out was replaced meanwhile.
    generation: u64,
    queue: VecDeque<Value>,
    running: bool,
}

/// What to do once the lock is released.
#[derive(Default)]
struct After {
    wakers: Wakers,
    callbacks: Vec<(Callback, Result<Value>)>,
    /// User values to drop outside the lock (replaced push handlers, a closed inbox).
    drops: Vec<Box<dyn Send>>,
    pushes: bool,
    /// What to report through `tracing`, in order (nothing is allocated until something is).
    #[cfg(feature = "tracing")]
    notes: Vec<Note>,
}

/// Something for the link to report through `tracing` once the lock is released
/// ([`Link::report`]): the subscriber is user code, it may call the client. Spans are made there
/// too, then kept in the [`Session`] under a short second lock; the ones the session lets go
/// of travel here, to be closed outside the lock.
#[cfg(feature = "tracing")]
enum Note {
    /// A call failed with this error.
    Failed(Error),
    SubscriberLost(Error),
    SubscriberRestored,
    ConnectFailed(Error),
    /// Connect attempt `attempt` started: its `connect` (`reconnect`) span is made.
    Opening {
        attempt: u32,
        reconnect: bool,
    },
    /// Attempt `attempt`'s handshake started: its span is made, in the attempt's.
    Handshake {
        attempt: u32,
    },
    /// The connection is ready: reported in the attempt's span, which then closes.
    Ready {
        spans: (Span, Span),
        attempts: u32,
        reconnect: bool,
    },
    ProtocolError(Error),
    /// The connection closed on request (a disconnect, or every handle gone).
    Closed,
    Lost(Error),
    AttemptFailed {
        spans: (Span, Span),
        attempt: u32,
        error: Error,
    },
    /// Spans let go of: held only to be dropped (closed) after the lock.
    Drop(#[allow(dead_code)] (Span, Span)),
}

/// Notes `$note` in `$after` for `Link::report` once the lock is released. Without the
/// `tracing` feature, or before any subscriber was set, `$note` is not even evaluated.
macro_rules! note {
    ($after:expr, $note:expr) => {
        #[cfg(feature = "tracing")]
        if ::tracing::dispatcher::has_been_set() {
            $after.notes.push($note);
        }
    };
}

/// Wakers to wake once the lock is released, in order. The first is held inline: most
/// hand-overs wake one caller, and then nothing is allocated.
#[derive(Default)]
struct Wakers {
    first: Option<Waker>,
    more: Vec<Waker>,
}

impl Extend<Waker> for Wakers {
    fn extend<I: IntoIterator<Item = Waker>>(&mut self, wakers: I) {
        for w in wakers {
            if self.first.is_none() {
                self.first = Some(w);
            } else {
                self.more.push(w);
            }
        }
    }
}

impl Wakers {
    fn wake(self) {
        if let Some(w) = self.first {
            w.wake();
        }
        for w in self.more {
            w.wake();
        }
    }
}

// ----- pending-reply slots ---------------------------------------------------------------------

/// What a slot holds.
enum Slot {
    Free,
    /// A [`Reply`] future: its waker once polled, and the result once it came.
    Wait {
        waker: Option<Waker>,
        done: Option<Result<Value>>,
    },
    Callback(Callback),
    Discard,
}

/// The pending-reply slots, keyed by id: the low 32 bits index the slab, the high 32 bits are
/// the slot's generation, bumped on every free, so a stale id never reaches a newer caller.
#[derive(Default)]
struct Slots {
    slots: Vec<(u32, Slot)>,
    free: Vec<u32>,
}

impl Slots {
    fn insert(&mut self, slot: Slot) -> u64 {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                // Generations start at 1: no slot ever has id 0, which the link uses for calls
                // it abandons at once.
                self.slots.push((1, Slot::Free));
                (self.slots.len() - 1) as u32
            }
        };
        let entry = &mut self.slots[index as usize];
        entry.1 = slot;
        (u64::from(entry.0) << 32) | u64::from(index)
    }

    fn get(&mut self, id: u64) -> Option<&mut Slot> {
        let (generation, index) = ((id >> 32) as u32, id as u32);
        match self.slots.get_mut(index as usize) {
            Some((g, slot)) if *g == generation && !matches!(slot, Slot::Free) => Some(slot),
            _ => None,
        }
    }

    fn remove(&mut self, id: u64) -> Option<Slot> {
        let slot = std::mem::replace(self.get(id)?, Slot::Free);
        let index = id as u32;
        let entry = &mut self.slots[index as usize];
        entry.0 = entry.0.wrapping_add(1).max(1);
        self.free.push(index);
        Some(slot)
    }

    /// Hands a result to the slot `id`, if it still has a caller.
    fn complete(&mut self, id: u64, result: Result<Value>, after: &mut After) {
        match self.get(id) {
            Some(Slot::Wait { waker, done }) => {
                if done.is_none() {
                    *done = Some(result);
                    after.wakers.extend(waker.take());
                }
            }
            Some(Slot::Callback(_)) => {
                if let Some(Slot::Callback(cb)) = self.remove(id) {
                    after.callbacks.push((cb, result));
                }
            }
            Some(Slot::Discard) => {
                self.remove(id);
            }
            Some(Slot::Free) | None => {}
        }
    }

    /// True while `id` still has a caller waiting for it.
    fn is_waiting(&mut self, id: u64) -> bool {
        matches!(self.get(id), Some(Slot::Wait { done: None, .. }))
    }

    /// Every slot's id, for failing them all.
    fn ids(&self) -> Vec<u64> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, (_, s))| !matches!(s, Slot::Free))
            .map(|(i, (g, _))| (u64::from(*g) << 32) | i as u64)
            .collect()
    }
}

impl Session {
    /// Takes every event of the core and hands it where it goes, counting the calls' results.
    fn pump(&mut self, stats: &Counters, after: &mut After) {
        while let Some(event) = self.core.poll_event() {
            match event {
                Event::Reply { id, result } => {
                    self.replies_read += 1;
                    // Id 0 is a call abandoned as it was submitted (see `Link::submit`), that
                    // the core answered at once: it was counted as dropped then.
                    if id != 0 {
                        stats.answered(&result);
                    }
                    if let Err(_e) = &result {
                        note!(after, Note::Failed(_e.clone()));
                    }
                    self.slots.complete(id, result, after);
                }
                Event::Push(value) => {
                    if let Some(cache) = &self.cache {
                        apply_invalidation(cache, &value);
                    }
                    self.pushes.queue.push_back(value);
                    after.pushes = true;
                }
                Event::Message(m) => {
                    if let Some(inbox) = &self.inbox {
                        after.wakers.extend(inbox.message(m));
                    }
                }
                Event::Lost(err) => {
                    // Not when the subscriber was dropped (its connection closed for that).
                    if !self.finished {
                        note!(after, Note::SubscriberLost(err.clone()));
                    }
                    if let Some(inbox) = &self.inbox {
                        after.wakers.extend(inbox.lost(&err).into_iter().flatten());
                    }
                }
                Event::Restored => {
                    // Also the first connect of a subscriber (its `watch_ready` comes after
                    // this): only a reconnect is news.
                    if self.was_ready {
                        note!(after, Note::SubscriberRestored);
                    }
                    if let Some(inbox) = &self.inbox {
                        after.wakers.extend(inbox.restored());
                    }
                }
                Event::Report(err) => {
                    if let Some(inbox) = &self.inbox {
                        after.wakers.extend(inbox.report(err));
                    }
                }
                Event::Dropped { names, reason } => {
                    if let Some(inbox) = &self.inbox {
                        after.wakers.extend(inbox.dropped(names, reason));
                    }
                }
                Event::Connected => {
                    for id in std::mem::take(&mut self.connecting) {
                        self.slots.complete(id, Ok(Value::Int(1)), after);
                    }
                }
                Event::ConnectFailed(err) => {
                    note!(after, Note::ConnectFailed(err.clone()));
                    for id in std::mem::take(&mut self.connecting) {
                        self.slots.complete(id, Err(err.clone()), after);
                    }
                }
                Event::Disconnected => {
                    for id in std::mem::take(&mut self.disconnecting) {
                        self.slots.complete(id, Ok(Value::Nil), after);
                    }
                }
            }
        }
    }

    /// After each step (under the lock): the connection became ready, or stays as it was.
    #[inline]
    fn watch_ready(&mut self, stats: &Counters, after: &mut After) {
        if !self.ready && !self.stopped && self.core.is_connected() {
            self.became_ready(stats, after);
        }
    }

    /// Has the `handshake` span made once the core starts its handshake (HELLO, AUTH, ...).
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    fn enter_handshake(&mut self, after: &mut After) {
        if self.core.is_handshaking() {
            note!(
                after,
                Note::Handshake {
                    attempt: self.attempts
                }
            );
        }
    }

    /// The attempt's spans, taken out (to be closed outside the lock).
    fn take_spans(&mut self) -> (Span, Span) {
        (
            std::mem::replace(&mut self.attempt_span, Span::none()),
            std::mem::replace(&mut self.handshake_span, Span::none()),
        )
    }

    #[cold]
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    fn became_ready(&mut self, stats: &Counters, after: &mut After) {
        self.ready = true;
        self.attempting = false;
        stats.connects.add(1);
        stats.reconnects.add(u64::from(self.was_ready));
        let _spans = self.take_spans();
        note!(
            after,
            Note::Ready {
                spans: _spans,
                attempts: self.attempts,
                reconnect: self.was_ready,
            }
        );
        self.was_ready = true;
        self.attempts = 0;
    }

    /// True when the connection is ready with no call in it (nothing in flight, nothing
    /// waiting), so a new call's bytes are the only ones to send, and its last read answered
    /// one caller at most: when it answered several, they are likely to call again together,
    /// and one wake-up of the engine writes their calls in one go.
    fn is_idle(&self) -> bool {
        !self.stopped
            && self.replies_read <= 1
            && self.core.is_connected()
            && self.core.queue_len() == 0
    }

    /// True when no caller waits for anything.
    fn is_quiet(&mut self) -> bool {
        let Session {
            core,
            slots,
            connecting,
            disconnecting,
            ..
        } = self;
        core.is_quiet()
            && !connecting.iter().any(|&id| slots.is_waiting(id))
            && !disconnecting.iter().any(|&id| slots.is_waiting(id))
    }
}

impl Follower for Link {
    fn follow(&self, now: Instant) {
        self.follow_source(now);
    }
}

/// How an attempt or a connection ended ([`Link::closed`]).
enum Closed {
    /// Its socket closed or failed.
    Socket(Error),
    /// It never had an address to connect to (the configuration's [`Source`] had none).
    Unresolved(Error),
}

/// Why calls fail once the engine has stopped driving the link. On the task engine that is
/// the runtime the client was made on shutting down (dropping the connection's task), or a
/// runtime without its IO or time driver (the task panics, tokio says which); a ring engine
/// stops only if its thread ends.
fn stopped_error() -> Error {
    Error::connection(
        "the engine driving this client's connection has stopped: on Engine::Task, the tokio \
         runtime the client was made on has shut down (a client cannot outlive it) or cannot \
         run connections (it needs its IO and time drivers: Builder::enable_all); make a new \
         client",
    )
}

impl Link {
    /// A new connection for `config`; `waker` wakes the engine driving it.
    pub fn new(config: Arc<Config>, waker: Box<dyn Wake>) -> Arc<Link> {
        let source = config.source.clone();
        let link = Arc::new(Link {
            session: Mutex::new(Session {
                core: Core::new(&config),
                slots: Slots::default(),
                connecting: Vec::new(),
                disconnecting: Vec::new(),
                pushes: Pushes::default(),
                cache: None,
                inbox: None,
                stopped: false,
                replies_read: 0,
                #[cfg(feature = "tls")]
                tls: None,
                ready: false,
                was_ready: false,
                attempting: false,
                finished: false,
                attempts: 0,
                attempt_span: Span::none(),
                handshake_span: Span::none(),
                target: None,
                holding: false,
                following: false,
            }),
            config,
            waker,
            notified: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
            stats: Counters::default(),
        });
        if let Some(source) = source {
            let follower: Arc<dyn Follower> = link.clone();
            source.register(Arc::downgrade(&follower));
        }
        link
    }

    /// The address to connect to: the one the configuration's [`Source`] gave for the attempt
    /// under way (or the last one), or the configuration's. Engines read it when they open the
    /// socket ([`Want::Open`]).
    pub fn addr(&self) -> Addr {
        self.lock()
            .target
            .clone()
            .unwrap_or_else(|| self.config.addr.clone())
    }

    /// A snapshot of the connection's counters.
    pub fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    /// The connection's configuration (address, socket options).
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the session, hands the core's events over, and does what must wait for the
    /// lock to be released.
    fn with<R>(&self, f: impl FnOnce(&mut Session, &mut After) -> R) -> R {
        let mut after = After::default();
        let r = {
            let mut session = self.lock();
            let r = f(&mut session, &mut after);
            // Published before the events go out too: a subscriber's reader polling on another
            // thread may take a loss from its inbox as soon as `pump` puts it there, and must
            // then find the link down.
            self.publish_connected(&session);
            session.pump(&self.stats, &mut after);
            session.watch_ready(&self.stats, &mut after);
            self.publish_connected(&session);
            r
        };
        self.finish(after);
        r
    }

    /// What [`Link::is_connected`] reads, from the session (under its lock).
    fn publish_connected(&self, session: &Session) {
        self.connected.store(
            !session.stopped && session.core.is_connected(),
            Ordering::Release,
        );
    }

    /// Wakes, runs and drops what the lock held back. User code runs here, each piece caught.
    fn finish(&self, after: After) {
        after.wakers.wake();
        #[cfg(feature = "tracing")]
        for note in after.notes {
            self.report(note);
        }
        for (cb, result) in after.callbacks {
            let run = std::panic::AssertUnwindSafe(move || cb(result));
            if std::panic::catch_unwind(run).is_err() {
                self.stats.callback_panicked();
                trace::warning!("an async_call callback panicked; the connection carries on");
            }
        }
        for d in after.drops {
            self.drop_user(d);
        }
        if after.pushes {
            self.run_pushes();
        }
    }

    /// Reports `note` through `tracing`, the lock released: the subscriber may call the client.
    /// A span made here is kept in the session if the attempt it is for is still the one under
    /// way (the engine drives attempts from one thread, one step after the other: it is), and
    /// closed here otherwise.
    #[cfg(feature = "tracing")]
    #[cold]
    fn report(&self, note: Note) {
        let addr = &self.addr();
        match note {
            Note::Failed(err) => match &err {
                Error::Timeout => {
                    trace::warning!(%addr, "a call timed out: no reply within its timeout")
                }
                Error::Server { kind, message } if crate::stats::is_redirect(&err) => {
                    trace::info!(%addr, %kind, to = %message, "the server redirected a call")
                }
                Error::Server { .. } => {
                    trace::debug!(%addr, error = %err, "a call failed with a server error")
                }
                _ => trace::debug!(%addr, error = %err, "a call failed"),
            },
            Note::SubscriberLost(err) => trace::info!(
                %addr,
                error = %err,
                "a subscriber lost its connection; it reconnects by itself"
            ),
            Note::SubscriberRestored => trace::info!(
                %addr,
                "a subscriber's connection is back, its subscriptions sent again"
            ),
            Note::ConnectFailed(err) => trace::warning!(%addr, error = %err, "could not connect"),
            Note::Opening { attempt, reconnect } => {
                let span = if reconnect {
                    tracing::info_span!(parent: None, "reconnect", %addr, attempt)
                } else {
                    tracing::info_span!(parent: None, "connect", %addr, attempt)
                };
                let mut session = self.lock();
                if session.attempting
                    && session.attempts == attempt
                    && session.attempt_span.is_none()
                {
                    session.attempt_span = span;
                } else {
                    drop(session);
                    drop(span);
                }
            }
            Note::Handshake { attempt } => {
                // The attempt's span, out of the session while its child is made.
                let parent = {
                    let mut session = self.lock();
                    if !(session.attempting && session.attempts == attempt) {
                        return;
                    }
                    std::mem::replace(&mut session.attempt_span, Span::none())
                };
                let span = tracing::debug_span!(parent: &parent, "handshake");
                let mut session = self.lock();
                if session.attempting
                    && session.attempts == attempt
                    && session.attempt_span.is_none()
                    && session.handshake_span.is_none()
                {
                    session.attempt_span = parent;
                    session.handshake_span = span;
                } else {
                    drop(session);
                    drop((span, parent));
                }
            }
            Note::Ready {
                spans,
                attempts,
                reconnect,
            } => {
                // In the attempt's span, which closes after it.
                trace::info!(
                    parent: &spans.0,
                    %addr,
                    attempts,
                    reconnect,
                    "{}",
                    if reconnect { "connection restored" } else { "connection ready" }
                );
            }
            Note::ProtocolError(err) => trace::error!(
                %addr,
                error = %err,
                "protocol error: the connection is closed"
            ),
            Note::Closed => trace::debug!(
                %addr,
                "connection closed (disconnect, or every handle dropped)"
            ),
            Note::Lost(err) => trace::warning!(%addr, error = %err, "connection lost"),
            Note::AttemptFailed {
                spans,
                attempt,
                error,
            } => trace::warning!(
                parent: &spans.0,
                %addr,
                attempt,
                %error,
                "connect attempt failed"
            ),
            Note::Drop(_) => {}
        }
    }

    /// Hands the queued pushes to the handler, one at a time and in order, outside the lock;
    /// returns at once if another thread is doing it.
    fn run_pushes(&self) {
        let mut session = self.lock();
        if session.pushes.running {
            return;
        }
        session.pushes.running = true;
        while let Some(value) = session.pushes.queue.pop_front() {
            // No handler: the push is dropped.
            let Some(mut handler) = session.pushes.handler.take() else {
                continue;
            };
            let generation = session.pushes.generation;
            drop(session);
            let run = std::panic::AssertUnwindSafe(|| handler(value));
            if std::panic::catch_unwind(run).is_err() {
                self.stats.callback_panicked();
                trace::warning!(
                    "a push handler panicked; the push is lost, the handler stays \
                     installed and the connection carries on"
                );
            }
            session = self.lock();
            if session.pushes.generation == generation {
                session.pushes.handler = Some(handler);
            } else {
                // Replaced while it ran.
                drop(session);
                self.drop_user(Box::new(handler));
                session = self.lock();
            }
        }
        session.pushes.running = false;
    }

    /// After a call was submitted: lets the engine write it from here if the connection was
    /// ready and idle (`direct`), otherwise wakes the engine.
    fn kick(&self, direct: bool, deadline: Option<Instant>) {
        if !(direct && self.waker.transmit(self, deadline)) {
            self.notify();
        }
    }

    /// Wakes the engine, unless it was already notified since its last turn.
    fn notify(&self) {
        // SeqCst: an engine that parks re-reads `notified` after announcing it parks, and the
        // waker reads the engine's announcement after this; one of the two sees the other.
        if !self.notified.swap(true, Ordering::SeqCst) {
            self.waker.wake();
        }
    }

    // ----- the client handles' side ------------------------------------------------------------

    /// Submits a call whose reply goes to a callback or nowhere (for one a caller awaits, see
    /// [`Link::reply`]); `deadline` is when its caller gives up (`None`: never). Once the engine
    /// has stopped the call fails at once with [`Error::Connection`].
    pub fn submit(&self, payload: Payload, deadline: Option<Instant>, to: To) {
        let (live, direct) = self.with(|session, after| {
            let direct = session.is_idle();
            let slot = match to {
                To::Callback(cb) => Slot::Callback(cb),
                To::Discard if deadline.is_none() => {
                    self.stats.calls.add(1);
                    if session.stopped {
                        self.stats.connection_errors.add(1);
                        return (false, false);
                    }
                    // Nobody to answer and no deadline: it holds the connection only until it
                    // is written; its reply is dropped.
                    session.core.submit(0, payload, None, Instant::now());
                    session.core.abandon(0);
                    self.stats.dropped.add(1);
                    return (true, direct);
                }
                To::Discard => Slot::Discard,
            };
            let id = session.slots.insert(slot);
            self.stats.calls.add(1);
            if session.stopped {
                self.stats.connection_errors.add(1);
                session.slots.complete(id, Err(stopped_error()), after);
                return (false, false);
            }
            session.core.submit(id, payload, deadline, Instant::now());
            (true, direct)
        });
        if live {
            self.kick(direct, deadline);
        }
    }

    /// Submits a call a caller awaits: the [`Reply`] resolves to its reply. Once the engine has
    /// stopped it fails at once with [`Error::Connection`].
    pub fn reply(self: &Arc<Self>, payload: Payload, deadline: Option<Instant>) -> Reply {
        self.request(Err(stopped_error()), Some(deadline), |session, id| {
            session.core.submit(id, payload, deadline, Instant::now());
        })
    }

    /// [`Link::reply`] of one command the caller keeps, to send it again (a cluster call
    /// after a redirect): see [`Core::submit_kept`](crate::conn::Core::submit_kept).
    pub fn reply_kept(self: &Arc<Self>, cmd: &Cmd, deadline: Option<Instant>) -> Reply {
        self.request(Err(stopped_error()), Some(deadline), |session, id| {
            session.core.submit_kept(id, cmd, deadline, Instant::now);
        })
    }

    /// Asks to connect: the [`Reply`] is `Ok` once the connection is ready (at once if it is),
    /// or the error that stopped it.
    pub fn connect(self: &Arc<Self>) -> Reply {
        self.request(Err(stopped_error()), None, |session, id| {
            session.connecting.push(id);
            session.core.connect(Instant::now());
        })
    }

    /// Asks to disconnect: calls in flight fail with [`Error::Connection`]; the [`Reply`] is
    /// `Ok` once the socket is closed (at once if there is none, or the engine is gone).
    pub fn disconnect(self: &Arc<Self>) -> Reply {
        self.request(Ok(Value::Nil), None, |session, id| {
            session.disconnecting.push(id);
            session.core.disconnect(Instant::now());
        })
    }

    /// A request a [`Reply`] awaits, made by `ask` with the id of its slot; once the engine has
    /// stopped it gets `when_stopped` at once. `call` is the deadline of a call (which may take
    /// the engine's fast path, see [`Wake::transmit`]), `None` for anything else.
    fn request(
        self: &Arc<Self>,
        when_stopped: Result<Value>,
        call: Option<Option<Instant>>,
        ask: impl FnOnce(&mut Session, u64),
    ) -> Reply {
        let (id, live, direct) = self.with(|session, after| {
            let direct = call.is_some() && session.is_idle();
            let id = session.slots.insert(Slot::Wait {
                waker: None,
                done: None,
            });
            if call.is_some() {
                self.stats.calls.add(1);
            }
            if session.stopped {
                if call.is_some() {
                    self.stats.connection_errors.add(1);
                }
                session.slots.complete(id, when_stopped, after);
                return (id, false, false);
            }
            ask(session, id);
            (id, true, direct)
        });
        if live {
            self.kick(direct, call.flatten());
        }
        Reply {
            link: self.clone(),
            id,
            done: false,
        }
    }

    /// The result for `id`, once it came.
    fn poll_reply(&self, id: u64, cx: &mut Context<'_>) -> Poll<Result<Value>> {
        let mut session = self.lock();
        match session.slots.get(id) {
            Some(Slot::Wait { done: Some(_), .. }) => match session.slots.remove(id) {
                Some(Slot::Wait {
                    done: Some(result), ..
                }) => Poll::Ready(result),
                _ => Poll::Ready(Err(stopped_error())),
            },
            Some(Slot::Wait { waker, .. }) => {
                match waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            _ => Poll::Ready(Err(stopped_error())),
        }
    }

    /// The caller of `id` is gone: its reply is still read, then dropped, and it no longer
    /// counts as a caller.
    fn abandon(&self, id: u64) {
        let mut session = self.lock();
        let Some(slot) = session.slots.remove(id) else {
            return;
        };
        session.core.abandon(id);
        // A call not answered yet (not a `connect` or `disconnect` request): its caller is gone.
        if matches!(slot, Slot::Wait { done: None, .. })
            && !session.connecting.contains(&id)
            && !session.disconnecting.contains(&id)
        {
            self.stats.dropped.add(1);
        }
    }

    /// Drops a value holding user code (a closure's captures), a panic in its drop caught.
    fn drop_user(&self, value: Box<dyn Send>) {
        let run = std::panic::AssertUnwindSafe(move || drop(value));
        if std::panic::catch_unwind(run).is_err() {
            self.stats.callback_panicked();
            trace::warning!("dropping a push handler or callback panicked; ignored");
        }
    }

    /// Sets (or removes) the handler for RESP3 push frames. The old one is dropped outside the
    /// lock, a panic in its drop caught.
    pub fn set_push_handler(&self, handler: Option<PushHandler>) {
        let old = {
            let mut session = self.lock();
            session.pushes.generation += 1;
            std::mem::replace(&mut session.pushes.handler, handler)
        };
        self.drop_user(Box::new(old));
    }

    /// Makes this connection keep `cache` true: its handshake turns `CLIENT TRACKING` on (the
    /// cache's mode) on every (re)connect and refuses a server without RESP3, and every
    /// `invalidate` push it reads is applied to `cache` under the link's lock, before any
    /// reply read after it is handed over (lock order: link, then cache). A lost connection's
    /// nil push flushes it. Set before the connection is first asked to connect.
    pub fn set_cache(&self, cache: Arc<Shared>) {
        let mut session = self.lock();
        session
            .core
            .track_for_cache(cache.settings().tracking_cmd());
        session.cache = Some(cache);
    }

    /// Makes this a subscriber connection whose messages go to `inbox`.
    pub fn make_subscriber(&self, inbox: InboxTx) {
        let mut session = self.lock();
        if session.stopped {
            // The reader hears the end at once.
            drop(session);
            drop(inbox);
            return;
        }
        session.core.make_subscriber();
        session.inbox = Some(inbox);
    }

    /// Every client handle is gone: the engine answers the callers still waiting (each until
    /// its deadline at most), then stops; calls that timed out or whose caller is gone do not
    /// hold it, so it stops within a bounded time whatever the server does.
    pub fn shut_down(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.notified.store(true, Ordering::SeqCst);
        self.waker.wake();
    }

    /// True while the connection is up and ready for calls.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// How many calls the connection held when its bytes were last handed out or its engine last
    /// went to sleep.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    // ----- the engine's side -------------------------------------------------------------------

    /// True when a handle has woken the engine since its last [`Link::turn`] (for an engine
    /// about to sleep: if so, it must not).
    #[cfg(test)]
    pub fn is_notified(&self) -> bool {
        self.notified.load(Ordering::SeqCst)
    }

    /// Runs the timers; `false` once the connection is finished (every handle gone and no
    /// caller left).
    pub fn turn(&self, now: Instant) -> bool {
        self.notified.store(false, Ordering::SeqCst);
        // Read before the calls are looked at: once it is set no handle is left, so every call
        // a handle made is in the core by then. Read after, a call made meanwhile (by a
        // callback this turn runs, holding the last handle, or by a handle on another thread
        // just before it went) would be cut off by a finish decided without it. A shutdown
        // set meanwhile wakes the engine for another turn.
        let shutdown = self.shutdown.load(Ordering::SeqCst);
        let finished = self.with(|session, after| {
            session.core.handle_timeout(now);
            session.pump(&self.stats, after);
            session.finished = shutdown && (session.stopped || session.is_quiet());
            session.finished
        });
        !finished
    }

    /// What the engine should do about the socket now.
    pub fn want(&self, now: Instant) -> Want {
        let want = {
            let session = self.lock();
            if session.stopped {
                return Want::Nothing;
            }
            session.core.want(now)
        };
        match (&self.config.source, want) {
            (Some(source), Want::Open) => self.want_from(source.as_ref(), now),
            _ => want,
        }
    }

    /// An attempt is due on a link whose address comes from `source`: open to the address it
    /// knows, wait for the one it is finding (until the connect deadline), or fail the attempt
    /// with the reason it could not find one. Anything but an address asks it to look again.
    #[cold]
    fn want_from(&self, source: &dyn Source, now: Instant) -> Want {
        let (want, refresh) = self.with(|session, after| {
            if session.stopped {
                return (Want::Nothing, false);
            }
            let want = session.core.want(now);
            if want != Want::Open {
                return (want, false);
            }
            let err = match source.lookup() {
                Lookup::Ready(addr) => {
                    session.core.set_addr(&addr);
                    session.target = Some(addr);
                    session.holding = false;
                    return (Want::Open, false);
                }
                Lookup::Pending(ref why) if session.core.hold(now, why) => {
                    session.holding = true;
                    return (Want::Nothing, true);
                }
                Lookup::Pending(err) | Lookup::Failed(err) => err,
            };
            // The attempt fails without a socket: as if it had failed to connect.
            session.holding = false;
            self.opening(session, after);
            self.closed(session, after, Closed::Unresolved(err), now);
            (session.core.want(now), true)
        });
        if refresh {
            source.refresh();
        }
        want
    }

    /// The configuration's [`Source`] has news: its address changed (a failover) or the one an
    /// attempt waits for is known. A waiting attempt starts now; a connection (or attempt) to
    /// an address that is no longer the source's closes, its calls in flight failing with
    /// [`Error::Connection`], and connects again to the new one.
    fn follow_source(&self, now: Instant) {
        let Some(source) = &self.config.source else {
            return;
        };
        self.with(|session, _after| {
            if session.stopped {
                return;
            }
            let (moved, to) = match source.lookup() {
                Lookup::Ready(addr) => (session.target.as_ref().is_some_and(|t| *t != addr), addr),
                _ => (false, self.config.addr.clone()),
            };
            let held = std::mem::take(&mut session.holding);
            if !(moved || held) {
                return;
            }
            let was_open = session.core.is_opening() || session.core.is_connected();
            let reason = Error::connection(format!(
                "Sentinel named another server, {to} (a failover): the connection to the old \
                 one was closed; a call in flight may or may not have run there"
            ));
            session.core.follow(moved, reason, now);
            if moved && was_open {
                session.following = true;
            }
        });
        self.notify();
    }

    /// Carries out the core's wants through `open`/`close` until it wants nothing more.
    pub fn obey(&self, now: Instant, io: &mut impl LinkSocketry) {
        // Bounded: each round either opens (which ends in a state that waits) or closes.
        for _ in 0..8 {
            match self.want(now) {
                Want::Nothing => return,
                Want::Open => io.open(self, now),
                Want::Close => io.close(self, now),
            }
        }
    }

    /// The engine starts opening a socket.
    pub fn handle_opening(&self) {
        self.with(|session, after| self.opening(session, after));
    }

    /// [`Link::handle_opening`] under the lock.
    fn opening(&self, session: &mut Session, _after: &mut After) {
        #[cfg(feature = "tls")]
        {
            session.tls = None;
        }
        session.core.handle_opening();
        if session.core.is_opening() && !session.attempting {
            session.attempting = true;
            session.attempts = session.attempts.saturating_add(1);
            let _spans = session.take_spans();
            note!(_after, Note::Drop(_spans));
            note!(
                _after,
                Note::Opening {
                    attempt: session.attempts,
                    reconnect: session.was_ready,
                }
            );
        }
    }

    /// The socket is up. With TLS its handshake starts ([`Link::poll_transmit`] has the
    /// `ClientHello`); the core hears of the open socket once the handshake is done.
    pub fn handle_open(&self, now: Instant) {
        self.with(|session, after| {
            #[cfg(feature = "tls")]
            if let Some(tls) = &self.config.tls {
                let addr = session.target.as_ref().unwrap_or(&self.config.addr);
                match super::tls::TlsSession::new(tls, addr) {
                    Ok(s) => {
                        session.tls = Some(s);
                        session.core.handle_securing();
                    }
                    Err(e) => session.core.handle_refused(e),
                }
                return;
            }
            session.core.handle_open(now);
            session.enter_handshake(after);
        });
    }

    /// Bytes read from the socket. An error means the stream is broken.
    ///
    /// # Errors
    ///
    /// The protocol error that broke the stream: close the socket and pass it to
    /// [`Link::handle_closed`].
    pub fn handle_input(&self, bytes: &[u8], now: Instant) -> Result<()> {
        self.with(|session, _after| {
            session.replies_read = 0;
            self.stats.bytes_received.add(bytes.len() as u64);
            #[cfg(feature = "tls")]
            let r = match &mut session.tls {
                Some(tls) => {
                    let r = tls.handle_input(&mut session.core, bytes, now);
                    // The core heard of the open socket once the TLS handshake was done.
                    if session.handshake_span.is_none() {
                        session.enter_handshake(_after);
                    }
                    r
                }
                None => session.core.handle_input(bytes, now),
            };
            #[cfg(not(feature = "tls"))]
            let r = session.core.handle_input(bytes, now);
            // A TLS failure is a connection error, told once by `handle_closed` (a connect
            // attempt failed, or the connection was lost).
            if let Err(_e @ Error::Protocol { .. }) = &r {
                note!(_after, Note::ProtocolError(_e.clone()));
            }
            r
        })
    }

    /// The socket is gone (failed to open, closed by the server, broken, or closed on request).
    pub fn handle_closed(&self, err: Error, now: Instant) {
        let refresh =
            self.with(|session, after| self.closed(session, after, Closed::Socket(err), now));
        if let (true, Some(source)) = (refresh, &self.config.source) {
            source.refresh();
        }
    }

    /// [`Link::handle_closed`] under the lock; true when the configuration's [`Source`] should
    /// look for the address again (the connection was lost, or an attempt failed).
    fn closed(&self, session: &mut Session, _after: &mut After, how: Closed, now: Instant) -> bool {
        let (Closed::Socket(_err) | Closed::Unresolved(_err)) = &how;
        #[cfg(feature = "tls")]
        {
            session.tls = None;
        }
        let _spans = session.take_spans();
        // The calls in flight fail with the core's reason if it asked for the close.
        let requested = session.core.is_disconnecting() || session.finished;
        if std::mem::take(&mut session.ready) {
            if requested {
                note!(_after, Note::Closed);
            } else {
                self.stats.connections_lost.add(1);
                note!(
                    _after,
                    Note::Lost(session.core.closing_reason().unwrap_or(_err).clone())
                );
            }
            note!(_after, Note::Drop(_spans));
        } else if std::mem::take(&mut session.attempting) && !requested {
            self.stats.connects_failed.add(1);
            note!(
                _after,
                Note::AttemptFailed {
                    spans: _spans,
                    attempt: session.attempts,
                    error: session.core.closing_reason().unwrap_or(_err).clone(),
                }
            );
        } else {
            note!(_after, Note::Drop(_spans));
        }
        session.attempting = false;
        match how {
            Closed::Socket(err) => session.core.handle_closed(err, now),
            Closed::Unresolved(err) => session.core.handle_unresolved(err, now),
        }
        let following = std::mem::take(&mut session.following);
        !requested && !following
    }

    /// The next bytes to write, in order.
    pub fn poll_transmit(&self) -> Option<Bytes> {
        let now = Instant::now();
        let mut session = self.lock();
        // Also published here: a caller writing its own call (the task engine's fast path)
        // wakes no engine, so no park would count it.
        self.queued
            .store(session.core.queue_len(), Ordering::Relaxed);
        #[cfg(feature = "tls")]
        let bytes = {
            let s = &mut *session;
            let (bytes, _refused) = match &mut s.tls {
                Some(tls) => (tls.poll_transmit(&mut s.core, now), tls.take_refused()),
                None => (s.core.poll_transmit_at(now), None),
            };
            // Reported outside the lock, as every event (see `Note`).
            drop(session);
            if let Some(_e) = _refused {
                trace::warning!(addr = %self.config.addr, error = %_e, "TLS refused plaintext to send");
            }
            bytes?
        };
        #[cfg(not(feature = "tls"))]
        let bytes = session.core.poll_transmit_at(now)?;
        self.stats.bytes_sent.add(bytes.len() as u64);
        Some(bytes)
    }

    /// True if a deadline has passed: the next [`Link::turn`] fails calls or acts on it.
    pub fn is_due(&self, now: Instant) -> bool {
        self.lock().core.poll_timeout().is_some_and(|at| at <= now)
    }

    /// When the engine must call [`Link::turn`] at the latest.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        let due = {
            let mut session = self.lock();
            self.queued
                .store(session.core.queue_len(), Ordering::Relaxed);
            session.core.poll_timeout()
        };
        if self.shutdown.load(Ordering::SeqCst) {
            let poll = now + SHUTDOWN_POLL;
            return Some(due.map_or(poll, |d| d.min(poll)));
        }
        due
    }

    /// True when no caller waits for anything on this connection.
    pub fn is_quiet(&self, _now: Instant) -> bool {
        let mut session = self.lock();
        session.stopped || session.is_quiet()
    }

    /// The engine will never drive this link again: every request still in it, and every later
    /// one, fails with [`Error::Connection`] (a disconnect resolves: there is nothing left to
    /// close); a subscriber's reader sees the end of its stream.
    pub fn stopped(&self) {
        self.with(|session, after| {
            session.stopped = true;
            let err = stopped_error();
            for id in std::mem::take(&mut session.disconnecting) {
                session.slots.complete(id, Ok(Value::Nil), after);
            }
            for id in session.slots.ids() {
                session.slots.complete(id, Err(err.clone()), after);
            }
            session.connecting.clear();
            // Every call not answered yet has just failed.
            self.stats.fail_in_flight();
            if let Some(inbox) = session.inbox.take() {
                after.drops.push(Box::new(inbox));
            }
            // Nothing more comes from the core; what it held is not handed over.
            while session.core.poll_event().is_some() {}
            // No invalidation will ever arrive again: nothing cached may be trusted.
            if let Some(cache) = &session.cache {
                cache.flush();
            }
        });
        self.connected.store(false, Ordering::Release);
    }
}

/// Applies an `invalidate` push to `cache` (anything else is left alone): its keys' entries
/// go, a nil payload flushes everything.
fn apply_invalidation(cache: &Shared, push: &Value) {
    match invalidation(push) {
        Some(Invalidation::Keys(keys)) => cache.invalidate(keys.iter().filter_map(Value::as_bytes)),
        Some(Invalidation::All) => cache.flush(),
        None => {}
    }
}

/// The reply to one request on a [`Link`]: a future for its pending-reply slot. Dropping it
/// before it resolved abandons the request (its reply is still read, then dropped).
pub(crate) struct Reply {
    link: Arc<Link>,
    id: u64,
    done: bool,
}

impl Future for Reply {
    type Output = Result<Value>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Value>> {
        if self.done {
            return Poll::Ready(Err(Error::client("a call's reply was taken twice")));
        }
        let r = self.link.poll_reply(self.id, cx);
        if r.is_ready() {
            self.done = true;
        }
        r
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if !self.done {
            self.link.abandon(self.id);
        }
    }
}

/// What an engine does about a [`Want`] for one link: open or close its socket.
pub(crate) trait LinkSocketry {
    /// Starts opening the connection; reports through the link as it goes.
    fn open(&mut self, link: &Link, now: Instant);
    /// Closes the connection, if any, and reports [`Link::handle_closed`].
    fn close(&mut self, link: &Link, now: Instant);
}

#[cfg(test)]
mod tests {
    //! A link driven by hand, as an engine would, with no socket.

    use super::*;
    use crate::config::Protocol;
    use crate::{cmd, Config};
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;

    /// Counts the engine wake-ups.
    #[derive(Clone, Default)]
    struct Count(Arc<AtomicUsize>);

    impl Wake for Count {
        fn wake(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A link connected (RESP2, no handshake), and its wake-up count.
    fn ready() -> (Arc<Link>, Count) {
        let wakes = Count::default();
        let config = Config::new().protocol(Protocol::Resp2);
        let link = Link::new(Arc::new(config), Box::new(wakes.clone()));
        let connect = link.connect();
        let now = Instant::now();
        assert_eq!(link.want(now), Want::Open);
        link.handle_opening();
        link.handle_open(now);
        assert!(link.is_connected());
        assert!(matches!(poll_now(connect), Some(Ok(_))));
        (link, wakes)
    }

    fn poll_now<F: Future + Unpin>(mut f: F) -> Option<F::Output> {
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut f).poll(&mut cx) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        }
    }

    fn ping() -> Payload {
        Payload::One(cmd!("PING"))
    }

    /// A subscriber's reader that takes the loss from its inbox (polling on another thread, as
    /// soon as it is there) finds the link down: `is_connected()` is published before the
    /// events go out (it was published after, and a reader in between saw the loss and a link
    /// still up).
    #[test]
    fn a_reader_that_sees_the_loss_sees_the_link_down() {
        for round in 0..300 {
            let config = Config::new().protocol(Protocol::Resp2);
            let link = Link::new(Arc::new(config), Box::new(Count::default()));
            let (tx, rx) = crate::inbox::inbox(1 << 20);
            link.make_subscriber(tx);
            let connect = link.connect();
            let now = Instant::now();
            assert_eq!(link.want(now), Want::Open);
            link.handle_opening();
            link.handle_open(now);
            assert!(matches!(poll_now(connect), Some(Ok(_))), "{round}");
            let payload = Payload::Subscribe {
                kind: crate::conn::SubKind::Channel,
                subscribe: true,
                names: vec![Bytes::from_static(b"c")],
            };
            let mut subscribed = Box::pin(link.reply(payload, None));
            assert!(link.poll_transmit().is_some());
            link.handle_input(b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n", now)
                .unwrap();
            assert!(poll_now(subscribed.as_mut()).is_some(), "{round}");
            let closer = {
                let link = link.clone();
                std::thread::spawn(move || {
                    link.handle_closed(Error::connection("reset"), Instant::now())
                })
            };
            let mut cx = Context::from_waker(Waker::noop());
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match rx.poll_next(&mut cx) {
                    Poll::Ready(Some(Err(e))) if e.is_connection() => break,
                    Poll::Pending => {}
                    other => panic!("{round}: {other:?}"),
                }
                assert!(Instant::now() < deadline, "{round}: the loss never came");
                std::hint::spin_loop();
            }
            assert!(
                !link.is_connected(),
                "{round}: the loss came with the link up"
            );
            closer.join().unwrap();
        }
    }

    #[test]
    fn callbacks_get_replies_and_a_panicking_one_is_contained() {
        let (link, _) = ready();
        let (tx, rx) = mpsc::channel();
        link.submit(ping(), None, To::Callback(Box::new(|_| panic!("user bug"))));
        link.submit(ping(), None, To::Discard);
        link.submit(
            ping(),
            None,
            To::Callback(Box::new(move |r| tx.send(r).unwrap_or(()))),
        );
        let mut a = Box::pin(link.reply(ping(), None));
        link.handle_input(b"+A\r\n+B\r\n+C\r\n+D\r\n", Instant::now())
            .unwrap();
        assert_eq!(rx.try_recv().unwrap().unwrap(), Value::Simple("C".into()));
        assert_eq!(
            poll_now(a.as_mut()).unwrap().unwrap(),
            Value::Simple("D".into())
        );
        assert!(link.is_connected() && link.is_quiet(Instant::now()));
    }

    #[test]
    fn a_callback_may_call_the_link_again() {
        let (link, _) = ready();
        let (tx, rx) = mpsc::channel();
        let again = link.clone();
        link.submit(
            ping(),
            None,
            To::Callback(Box::new(move |_| {
                // Under the link's lock this would deadlock.
                again.submit(
                    ping(),
                    None,
                    To::Callback(Box::new(move |r| tx.send(r).unwrap_or(()))),
                );
            })),
        );
        link.handle_input(b"+A\r\n", Instant::now()).unwrap();
        assert_eq!(
            link.poll_transmit().as_deref(),
            Some(&b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n"[..])
        );
        link.handle_input(b"+B\r\n", Instant::now()).unwrap();
        assert_eq!(rx.try_recv().unwrap().unwrap(), Value::Simple("B".into()));
    }

    #[test]
    fn a_panicking_push_handler_is_contained_and_stays_installed() {
        let (link, _) = ready();
        let (tx, rx) = mpsc::channel();
        link.set_push_handler(Some(Box::new(move |v| {
            tx.send(v).unwrap_or(());
            panic!("user bug in a push handler");
        })));
        let mut a = Box::pin(link.reply(Payload::One(cmd!("GET", "a")), None));
        let push = b">2\r\n+invalidate\r\n*1\r\n$1\r\na\r\n";
        let now = Instant::now();
        link.handle_input(push, now).unwrap();
        link.handle_input(push, now).unwrap();
        link.handle_input(b"$1\r\nv\r\n", now).unwrap();
        assert_eq!(
            poll_now(a.as_mut()).unwrap().unwrap(),
            Value::Bulk("v".into())
        );
        assert_eq!(rx.try_iter().count(), 2, "called for both pushes");
        // Replacing a handler whose drop panics is contained too.
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("user bug in a drop");
            }
        }
        let bomb = Bomb;
        link.set_push_handler(Some(Box::new(move |_| {
            let _ = &bomb;
        })));
        link.set_push_handler(None);
        assert!(link.is_connected());
    }

    /// A cached `GET a`, stored in `cache`.
    fn cached_a(cache: &Arc<Shared>) {
        let crate::cache::Plan::Lead { fill, .. } = cache.plan(0, Cmd::new("GET").key("a"), None)
        else {
            panic!("a first read leads")
        };
        let stored = fill.finish(Ok(Value::Array(vec![Value::Int(1), Value::Int(-1)])));
        assert_eq!(stored, Ok(Value::Int(1)));
        assert_eq!(cache.stats().entries, 1);
    }

    /// Malformed or hostile `invalidate` pushes (a fake server's) panic nothing, touch no entry
    /// and leave the replies in step; a well-formed one drops its key, a nil one flushes.
    #[test]
    fn hostile_invalidations_are_harmless_and_real_ones_apply() {
        let (link, _) = ready();
        let cache = Shared::new(crate::Cache::new());
        link.set_cache(cache.clone());
        cached_a(&cache);
        let mut reply = Box::pin(link.reply(Payload::One(cmd!("GET", "x")), None));
        let now = Instant::now();
        let hostile: [&[u8]; 7] = [
            b">1\r\n+invalidate\r\n",
            b">2\r\n+invalidate\r\n:5\r\n",
            b">3\r\n+invalidate\r\n*0\r\n*0\r\n",
            b">2\r\n+invalidate\r\n*3\r\n:1\r\n*1\r\n$1\r\na\r\n%1\r\n+k\r\n+v\r\n",
            b">2\r\n+invalidate\r\n%1\r\n+a\r\n+b\r\n",
            b">2\r\n:1\r\n*1\r\n$1\r\na\r\n",
            b">2\r\n+invalidate\r\n*2\r\n$1\r\nb\r\n$0\r\n\r\n",
        ];
        for push in hostile {
            link.handle_input(push, now).unwrap();
        }
        assert_eq!(cache.stats().entries, 1, "no push named `a` well-formed");
        link.handle_input(b">2\r\n+invalidate\r\n*1\r\n$1\r\na\r\n", now)
            .unwrap();
        assert_eq!(cache.stats().entries, 0, "`a` invalidated");
        cached_a(&cache);
        let flushes = cache.stats().flushes;
        link.handle_input(b">2\r\n+invalidate\r\n_\r\n", now)
            .unwrap();
        assert_eq!(cache.stats().entries, 0, "a nil invalidation flushes");
        assert_eq!(cache.stats().flushes, flushes + 1);
        link.handle_input(b"$1\r\nv\r\n", now).unwrap();
        assert_eq!(
            poll_now(reply.as_mut()).unwrap().unwrap(),
            Value::Bulk("v".into()),
            "the reply in step after the pushes"
        );
        assert!(link.is_connected());
    }

    #[test]
    fn pushes_reach_the_handler_in_order_and_a_handler_may_replace_itself() {
        let (link, _) = ready();
        let (tx, rx) = mpsc::channel();
        let again = link.clone();
        let first = tx.clone();
        link.set_push_handler(Some(Box::new(move |v| {
            first.send(("first", v)).unwrap_or(());
            let tx = tx.clone();
            again.set_push_handler(Some(Box::new(move |v| {
                tx.send(("second", v)).unwrap_or(())
            })));
        })));
        let now = Instant::now();
        link.handle_input(b">1\r\n:1\r\n>1\r\n:2\r\n>1\r\n:3\r\n", now)
            .unwrap();
        let got: Vec<_> = rx.try_iter().collect();
        let push = |n| Value::Push(vec![Value::Int(n)]);
        assert_eq!(
            got,
            [("first", push(1)), ("second", push(2)), ("second", push(3))]
        );
    }

    #[test]
    fn a_dropped_reply_abandons_its_call_and_the_next_reply_goes_to_the_next_caller() {
        let (link, _) = ready();
        let gone = link.reply(Payload::One(cmd!("GET", "a")), None);
        let mut kept = Box::pin(link.reply(Payload::One(cmd!("GET", "b")), None));
        assert!(!link.is_quiet(Instant::now()));
        drop(gone);
        link.handle_input(b"$1\r\na\r\n", Instant::now()).unwrap();
        assert!(poll_now(kept.as_mut()).is_none());
        link.handle_input(b"$1\r\nb\r\n", Instant::now()).unwrap();
        assert_eq!(
            poll_now(kept.as_mut()).unwrap().unwrap(),
            Value::Bulk("b".into())
        );
        assert!(link.is_quiet(Instant::now()));
    }

    /// A dropped `connect()` leaves its id in the list of callers to answer; the slot it freed
    /// goes to the next call, whose reply must not be the connect's answer.
    #[test]
    fn a_dropped_connect_never_answers_the_call_that_took_its_slot() {
        let wakes = Count::default();
        let config = Config::new().protocol(Protocol::Resp2);
        let link = Link::new(Arc::new(config), Box::new(wakes));
        drop(link.connect());
        let mut call = Box::pin(link.reply(ping(), None));
        let now = Instant::now();
        assert_eq!(link.want(now), Want::Open);
        link.handle_opening();
        link.handle_open(now);
        assert!(
            poll_now(call.as_mut()).is_none(),
            "the connect's answer reached a call"
        );
        assert_eq!(
            link.poll_transmit().as_deref(),
            Some(&b"*1\r\n$4\r\nPING\r\n"[..])
        );
        link.handle_input(b"+PONG\r\n", now).unwrap();
        assert_eq!(
            poll_now(call.as_mut()).unwrap().unwrap(),
            Value::Simple("PONG".into())
        );
    }

    #[test]
    fn stopped_fails_everything_pending_and_everything_later() {
        let (link, _) = ready();
        let (tx, rx) = mpsc::channel();
        let answered = Box::pin(link.reply(ping(), None));
        let mut waiting = Box::pin(link.reply(ping(), None));
        link.handle_input(b"+PONG\r\n", Instant::now()).unwrap();
        link.submit(
            ping(),
            None,
            To::Callback(Box::new(move |r| tx.send(r).unwrap_or(()))),
        );
        assert!(poll_now(waiting.as_mut()).is_none());
        link.stopped();
        assert!(!link.is_connected());
        let stopped = |r: Result<Value>| r.is_err_and(|e| e.is_connection());
        assert!(stopped(poll_now(waiting.as_mut()).unwrap()));
        assert!(stopped(rx.try_recv().unwrap()));
        assert_eq!(
            poll_now(answered).unwrap().unwrap(),
            Value::Simple("PONG".into()),
            "a reply already in keeps its result"
        );
        assert!(stopped(
            poll_now(Box::pin(link.reply(ping(), None))).unwrap()
        ));
        assert!(stopped(poll_now(Box::pin(link.connect())).unwrap()));
        assert!(poll_now(Box::pin(link.disconnect())).unwrap().is_ok());
        assert_eq!(link.want(Instant::now()), Want::Nothing);
    }

    #[test]
    fn handles_wake_the_engine_once_until_its_next_turn() {
        let (link, wakes) = ready();
        assert!(link.turn(Instant::now()));
        let before = wakes.0.load(Ordering::SeqCst);
        link.submit(ping(), None, To::Discard);
        link.submit(ping(), None, To::Discard);
        assert_eq!(wakes.0.load(Ordering::SeqCst), before + 1);
        assert!(link.is_notified());
        assert!(link.turn(Instant::now()));
        assert!(!link.is_notified());
        link.submit(ping(), None, To::Discard);
        assert_eq!(wakes.0.load(Ordering::SeqCst), before + 2);
    }

    /// An engine with the fast path: writes what the link has to send when asked, counting
    /// wake-ups and fast writes.
    #[derive(Clone, Default)]
    struct Fast {
        wakes: Arc<AtomicUsize>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Wake for Fast {
        fn wake(&self) {
            self.wakes.fetch_add(1, Ordering::SeqCst);
        }

        fn transmit(&self, link: &Link, _deadline: Option<Instant>) -> bool {
            while let Some(b) = link.poll_transmit() {
                self.written.lock().unwrap().extend_from_slice(&b);
            }
            true
        }
    }

    #[test]
    fn only_a_call_on_an_idle_connection_after_one_reply_takes_the_fast_path() {
        let fast = Fast::default();
        let link = Link::new(
            Arc::new(Config::new().protocol(Protocol::Resp2)),
            Box::new(fast.clone()),
        );
        // Not connected: the engine is woken (to connect).
        let mut connect = Box::pin(link.connect());
        assert_eq!(fast.wakes.load(Ordering::SeqCst), 1);
        let now = Instant::now();
        link.handle_opening();
        link.handle_open(now);
        assert!(poll_now(connect.as_mut()).is_some());
        assert!(link.turn(now));
        let wakes = || fast.wakes.load(Ordering::SeqCst);
        let written = || std::mem::take(&mut *fast.written.lock().unwrap());

        // Idle: written by the caller, no wake-up.
        let mut a = Box::pin(link.reply(ping(), None));
        assert_eq!(written(), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(wakes(), 1);
        // One in flight: the next goes through the engine.
        let mut b = Box::pin(link.reply(ping(), None));
        assert_eq!(wakes(), 2);
        assert!(written().is_empty());
        assert!(link.turn(now));
        assert_eq!(
            link.poll_transmit().as_deref(),
            Some(&b"*1\r\n$4\r\nPING\r\n"[..])
        );
        // A read answering two callers: they are likely to call again together.
        link.handle_input(b"+A\r\n+B\r\n", now).unwrap();
        assert_eq!(
            poll_now(a.as_mut()).unwrap().unwrap(),
            Value::Simple("A".into())
        );
        assert_eq!(
            poll_now(b.as_mut()).unwrap().unwrap(),
            Value::Simple("B".into())
        );
        let mut c = Box::pin(link.reply(ping(), None));
        assert_eq!(wakes(), 3);
        assert!(written().is_empty());
        assert!(link.turn(now));
        assert!(link.poll_transmit().is_some());
        // A read answering one: the next call takes the fast path again, replies in order.
        link.handle_input(b"+C\r\n", now).unwrap();
        assert_eq!(
            poll_now(c.as_mut()).unwrap().unwrap(),
            Value::Simple("C".into())
        );
        link.submit(ping(), None, To::Discard);
        assert_eq!(written(), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(wakes(), 3);
    }

    /// A callback run by the engine's turn (a call that timed out) makes another call and
    /// drops the last client handle: that turn must not finish the link under the new call,
    /// which was never a quiet link's.
    #[test]
    fn a_call_made_by_a_callback_during_the_turn_that_sees_the_shutdown_is_answered() {
        let (link, _) = ready();
        let (tx, rx) = mpsc::channel();
        let again = link.clone();
        let now = Instant::now();
        link.submit(
            ping(),
            Some(now + Duration::from_millis(1)),
            To::Callback(Box::new(move |r| {
                assert!(r.is_err_and(|e| e.is_timeout()));
                again.submit(
                    ping(),
                    None,
                    To::Callback(Box::new(move |r| tx.send(r).unwrap_or(()))),
                );
                // The callback held the last handle.
                again.shut_down();
            })),
        );
        assert!(link.poll_transmit().is_some());
        let later = now + Duration::from_millis(2);
        assert!(link.turn(later), "the call made by the callback is waiting");
        assert!(link.poll_transmit().is_some());
        link.handle_input(b"+A\r\n+B\r\n", later).unwrap();
        assert_eq!(rx.try_recv().unwrap().unwrap(), Value::Simple("B".into()));
        assert!(!link.turn(later), "nobody is left");
    }

    /// Every call ends once in the counters: ok, a server error, a redirect, a timeout, a
    /// dropped caller, a lost connection; bytes are counted both ways.
    #[test]
    fn the_counters_follow_every_call_to_its_end() {
        let (link, _) = ready();
        let now = Instant::now();
        let s = link.stats();
        assert_eq!(
            (s.connects, s.reconnects, s.calls, s.in_flight),
            (1, 0, 0, 0)
        );

        let mut ok = Box::pin(link.reply(ping(), None));
        let mut err = Box::pin(link.reply(ping(), None));
        let mut moved = Box::pin(link.reply(ping(), None));
        let (tx, rx) = mpsc::channel();
        link.submit(ping(), None, To::Callback(Box::new(|_| panic!("user bug"))));
        link.submit(
            ping(),
            Some(now + Duration::from_millis(1)),
            To::Callback(Box::new(move |r| tx.send(r).unwrap_or(()))),
        );
        let gone = link.reply(ping(), None);
        link.submit(ping(), None, To::Discard);
        assert_eq!(link.stats().in_flight, 6);
        drop(gone);
        let sent = link.poll_transmit().map_or(0, |b| b.len());
        assert_eq!(sent, 7 * b"*1\r\n$4\r\nPING\r\n".len());
        let input = b"+PONG\r\n-ERR no\r\n-MOVED 1 127.0.0.1:7001\r\n+A\r\n";
        link.handle_input(input, now).unwrap();
        assert!(poll_now(ok.as_mut()).unwrap().is_ok());
        assert!(poll_now(err.as_mut()).unwrap().is_err());
        assert!(poll_now(moved.as_mut()).unwrap().is_err());
        assert!(link.turn(now + Duration::from_millis(2)));
        assert!(rx.try_recv().unwrap().is_err_and(|e| e.is_timeout()));

        let s = link.stats();
        assert_eq!((s.calls, s.ok, s.server_errors, s.redirects), (7, 2, 2, 1));
        assert_eq!((s.timeouts, s.dropped, s.in_flight), (1, 2, 0));
        assert_eq!(s.callback_panics, 1);
        assert_eq!(
            (s.bytes_sent, s.bytes_received),
            (sent as u64, input.len() as u64)
        );

        // Lost with a call in flight, then back: a reconnect.
        let mut lost = Box::pin(link.reply(ping(), None));
        link.poll_transmit();
        link.handle_closed(Error::connection("reset"), now);
        assert!(poll_now(lost.as_mut())
            .unwrap()
            .is_err_and(|e| e.is_connection()));
        let mut again = Box::pin(link.connect());
        let later = now + Duration::from_secs(1);
        assert_eq!(link.want(later), Want::Open);
        link.handle_opening();
        link.handle_closed(Error::connection("refused"), later);
        assert_eq!(link.want(later + Duration::from_secs(1)), Want::Open);
        link.handle_opening();
        link.handle_open(later + Duration::from_secs(1));
        assert!(poll_now(again.as_mut()).unwrap().is_ok());
        let s = link.stats();
        assert_eq!((s.connections_lost, s.connects_failed), (1, 1));
        assert_eq!((s.connects, s.reconnects), (2, 1));
        assert_eq!((s.calls, s.connection_errors, s.in_flight), (8, 1, 0));
    }

    /// Dropping the last handle of an idle client closes its connection: not a lost one (no
    /// `connections_lost`, no "connection lost" warning).
    #[test]
    fn a_connection_closed_because_every_handle_is_gone_is_not_lost() {
        let (link, _) = ready();
        let now = Instant::now();
        link.shut_down();
        assert!(!link.turn(now), "nobody is left");
        link.handle_closed(Error::connection("connection closed"), now);
        let s = link.stats();
        assert_eq!((s.connects, s.connections_lost), (1, 0));
    }

    #[test]
    fn a_protocol_error_and_a_stopped_engine_are_counted() {
        let (link, _) = ready();
        let mut a = Box::pin(link.reply(ping(), None));
        link.poll_transmit();
        let e = link
            .handle_input(b"?garbage\r\n", Instant::now())
            .unwrap_err();
        link.handle_closed(e, Instant::now());
        assert!(poll_now(a.as_mut()).unwrap().is_err());
        let s = link.stats();
        assert_eq!(
            (s.protocol_errors, s.connections_lost, s.in_flight),
            (1, 1, 0)
        );
        let waiting = link.reply(ping(), None);
        assert_eq!(link.stats().in_flight, 1);
        link.stopped();
        drop(link.reply(ping(), None));
        drop(waiting);
        let s = link.stats();
        assert_eq!((s.calls, s.connection_errors, s.in_flight), (3, 2, 0));
    }

    /// A fire-and-forget call (no callback, no deadline) that the core answers at once (not
    /// connected, autoconnect off) ends once: as dropped, not also as a connection error (which
    /// made `in_flight` go below zero, saturating to 0 over a call that really was in flight).
    #[test]
    fn a_discarded_call_answered_at_once_ends_once_in_the_counters() {
        let config = Config::new().autoconnect(false);
        let link = Link::new(Arc::new(config), Box::new(Count::default()));
        link.submit(ping(), None, To::Discard);
        let s = link.stats();
        assert_eq!(
            (s.calls, s.dropped, s.connection_errors, s.in_flight),
            (1, 1, 0, 0),
            "{s:?}"
        );
        // A call waiting for the connection shows as in flight.
        let _connect = link.connect();
        let _call = link.reply(ping(), None);
        assert_eq!(link.stats().in_flight, 1, "{:?}", link.stats());
    }

    /// The link over TLS against an in-process rustls server: bytes moved by hand.
    #[cfg(feature = "tls")]
    mod tls {
        use super::*;
        use rustls::{ServerConfig, ServerConnection};
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        use std::io::{Read, Write};

        const CA: &[u8] = include_bytes!("testdata/tls-ca.pem");
        const CERT: &[u8] = include_bytes!("testdata/tls-server.pem");
        const KEY: &[u8] = include_bytes!("testdata/tls-server.key");

        fn server() -> ServerConnection {
            let chain = CertificateDer::pem_slice_iter(CERT)
                .collect::<std::result::Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(KEY).unwrap();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap();
            ServerConnection::new(Arc::new(config)).unwrap()
        }

        /// A link for `localhost` over TLS with `tls`, opened (its `ClientHello` waiting).
        fn opened(tls: crate::Tls) -> (Arc<Link>, Pin<Box<Reply>>) {
            let config = Config::new()
                .host("localhost")
                .protocol(Protocol::Resp2)
                .tls(tls);
            let link = Link::new(Arc::new(config), Box::new(Count::default()));
            let connect = link.connect();
            let now = Instant::now();
            assert_eq!(link.want(now), Want::Open);
            link.handle_opening();
            link.handle_open(now);
            assert!(!link.is_connected(), "not before the TLS handshake");
            (link, Box::pin(connect))
        }

        /// What the link sends, into the server.
        fn to_server(link: &Link, server: &mut ServerConnection) {
            while let Some(bytes) = link.poll_transmit() {
                let mut rest = &bytes[..];
                while !rest.is_empty() {
                    server.read_tls(&mut rest).unwrap();
                    server.process_new_packets().unwrap();
                }
            }
        }

        /// What the server sends, into the link, `chunk` bytes per read.
        fn to_link(server: &mut ServerConnection, link: &Link, chunk: usize) -> Result<()> {
            let mut out = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut out).unwrap();
            }
            for piece in out.chunks(chunk) {
                link.handle_input(piece, Instant::now())?;
            }
            Ok(())
        }

        #[test]
        fn resp_goes_through_tls_even_one_byte_per_read() {
            let tls = crate::Tls::new().ca_pem(CA).unwrap();
            let (link, mut connect) = opened(tls);
            let mut server = server();
            // TLS 1.3: ClientHello, the server's flight, the client's Finished.
            for _ in 0..3 {
                to_server(&link, &mut server);
                to_link(&mut server, &link, 1).unwrap();
            }
            assert!(link.is_connected() && !server.is_handshaking());
            assert!(matches!(poll_now(connect.as_mut()), Some(Ok(_))));
            let mut reply = Box::pin(link.reply(ping(), None));
            to_server(&link, &mut server);
            let mut plain = [0u8; 64];
            let n = server.reader().read(&mut plain).unwrap();
            assert_eq!(&plain[..n], b"*1\r\n$4\r\nPING\r\n");
            server.writer().write_all(b"+PONG\r\n").unwrap();
            to_link(&mut server, &link, 1).unwrap();
            assert_eq!(
                poll_now(reply.as_mut()).unwrap().unwrap(),
                Value::Simple("PONG".into())
            );
            // The server ending the session ends the stream, saying so.
            server.send_close_notify();
            let e = to_link(&mut server, &link, 1000).unwrap_err();
            assert!(e.to_string().contains("ended the TLS session"), "{e}");
        }

        /// A big request goes into TLS a bounded piece at a time, as the engine takes the
        /// ciphertext, not copied whole into rustls (which held all of it encrypted, then a
        /// second copy in the link's output, before the engine wrote a byte).
        #[test]
        fn a_big_request_is_encrypted_a_bounded_piece_at_a_time() {
            let tls = crate::Tls::new().ca_pem(CA).unwrap();
            let (link, mut connect) = opened(tls);
            let mut server = server();
            for _ in 0..3 {
                to_server(&link, &mut server);
                to_link(&mut server, &link, 4096).unwrap();
            }
            assert!(matches!(poll_now(connect.as_mut()), Some(Ok(_))));
            let value = vec![b'v'; 3 << 20];
            let _reply = link.reply(Payload::One(cmd!("SET", "k", &value[..])), None);
            let mut plain = Vec::new();
            let mut largest = 0;
            while let Some(bytes) = link.poll_transmit() {
                largest = largest.max(bytes.len());
                let mut rest = &bytes[..];
                while !rest.is_empty() {
                    server.read_tls(&mut rest).unwrap();
                    server.process_new_packets().unwrap();
                    server.reader().read_to_end(&mut plain).ok();
                }
            }
            let mut want = Vec::new();
            want.extend_from_slice(
                format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", value.len()).as_bytes(),
            );
            want.extend_from_slice(&value);
            want.extend_from_slice(b"\r\n");
            assert!(
                plain == want,
                "{} bytes of {} arrived",
                plain.len(),
                want.len()
            );
            assert!(
                largest < 1 << 20,
                "{largest} bytes of ciphertext handed out at once"
            );
        }

        #[test]
        fn an_untrusted_certificate_fails_the_connect_at_once_naming_the_cause() {
            // The Mozilla roots do not know the test CA.
            let (link, mut connect) = opened(crate::Tls::new());
            let mut server = server();
            to_server(&link, &mut server);
            let e = to_link(&mut server, &link, 7).unwrap_err();
            assert!(
                e.is_connection() && e.to_string().contains("unknown issuer"),
                "{e}"
            );
            let answered = poll_now(connect.as_mut()).expect("answered at once");
            assert_eq!(answered.unwrap_err().to_string(), e.to_string());
            assert_eq!(link.want(Instant::now()), Want::Close);
            link.handle_closed(e, Instant::now());
            assert!(!link.is_connected());
        }
    }

    #[test]
    fn a_shut_down_link_finishes_once_no_caller_is_left() {
        let (link, _) = ready();
        let call = link.reply(ping(), None);
        link.shut_down();
        let now = Instant::now();
        assert!(link.turn(now), "a caller is waiting");
        assert!(link
            .poll_timeout(now)
            .is_some_and(|t| t <= now + SHUTDOWN_POLL));
        drop(call);
        assert!(!link.turn(now), "nobody is left");
    }
}
