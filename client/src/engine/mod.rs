//! Engines: what moves bytes between sockets and the connection core, runs timers and wakes
//! callers. They know sockets, timers and wake-ups, never RESP.
//!
//! A [`Client`](crate::Client) talks to its driver through a [`Shared`] mailbox: callers push
//! messages and wake the driver only when it is not already awake. The driver owns the socket
//! and the [`Core`]; it knows sockets and timers, never RESP.

mod current;
mod deadlines;
pub(crate) mod epoll;
mod keepalive;
pub(crate) mod link;
mod resolve;
pub(crate) mod ring;
mod runtime;
pub(crate) mod task;

pub(crate) use link::Link;

use crate::config::{Config, Engine};
pub(crate) use crate::conn::Want;
use crate::conn::{Core, InboxTx, PushHandler, Request};
use crate::{Error, Result};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A message from a client handle to its driver.
pub(crate) enum Msg {
    Call(Request),
    Connect(oneshot::Sender<Result<bool>>),
    Disconnect(oneshot::Sender<()>),
    SetPushHandler(Option<PushHandler>),
    /// Makes the connection a subscriber; sent before anything else.
    MakeSubscriber(InboxTx),
}

/// Wakes a parked driver.
pub(crate) trait Wake: Send + Sync {
    fn wake(&self);
}

#[derive(Default)]
struct Mailbox {
    msgs: Vec<Msg>,
    /// The driver has stopped: nothing will read the mailbox again.
    closed: bool,
}

/// What client handles and their driver share.
pub(crate) struct Shared {
    mailbox: Mutex<Mailbox>,
    /// Set by a sender that found the driver not yet notified; cleared by the driver before it
    /// drains the mailbox. While it is set, further senders skip the wake-up.
    notified: AtomicBool,
    /// The core's own flag ([`Core::connected_flag`]).
    connected: Arc<AtomicBool>,
    shutdown: AtomicBool,
    /// How many calls the core held when the driver last parked ([`Core::queue_len`]).
    queued: AtomicUsize,
    waker: Box<dyn Wake>,
}

impl Shared {
    pub fn new(waker: Box<dyn Wake>, connected: Arc<AtomicBool>) -> Shared {
        Shared {
            mailbox: Mutex::new(Mailbox::default()),
            notified: AtomicBool::new(false),
            connected,
            shutdown: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
            waker,
        }
    }

    /// Hands a message to the driver. A driver that has stopped fails it at once.
    pub fn send(&self, msg: Msg) {
        {
            let mut mb = self.mailbox.lock().unwrap_or_else(|p| p.into_inner());
            if !mb.closed {
                mb.msgs.push(msg);
                drop(mb);
                self.notify();
                return;
            }
        }
        fail_msg(msg, &Error::connection("the client's driver has stopped"));
    }

    fn notify(&self) {
        // SeqCst: a driver that parks re-reads `notified` after announcing it parks, and the
        // waker reads the driver's announcement after this; one of the two sees the other.
        if !self.notified.swap(true, Ordering::SeqCst) {
            self.waker.wake();
        }
    }

    /// Takes every pending message (the driver side).
    pub fn drain(&self, into: &mut Vec<Msg>) {
        self.notified.store(false, Ordering::Release);
        let mut mb = self.mailbox.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::swap(&mut mb.msgs, into);
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// The last client handle is gone: the driver answers the callers still waiting (each until
    /// its deadline at most), then stops; calls that timed out or whose caller is gone do not
    /// hold it, so it stops within a bounded time whatever the server does.
    pub fn shut_down(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.waker.wake();
    }

    fn is_shut_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// How many calls the connection held when its driver last parked.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// The cause given when the server ends the stream (a read of 0 bytes).
pub(crate) fn server_closed() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the server closed the connection",
    )
}

fn fail_msg(msg: Msg, err: &Error) {
    match msg {
        Msg::Call(req) => req.sink.deliver(Err(err.clone())),
        Msg::Connect(tx) => {
            let _ = tx.send(Err(err.clone()));
        }
        Msg::Disconnect(tx) => {
            let _ = tx.send(());
        }
        Msg::SetPushHandler(_) | Msg::MakeSubscriber(_) => {}
    }
}

/// Closes the mailbox when the driver thread ends, however it ends (a panic included), and
/// fails what is left in it, so no caller waits for a driver that is gone.
pub(crate) struct CloseOnExit<'a>(pub &'a Shared);

impl Drop for CloseOnExit<'_> {
    fn drop(&mut self) {
        let left = {
            let mut mb = self.0.mailbox.lock().unwrap_or_else(|p| p.into_inner());
            mb.closed = true;
            std::mem::take(&mut mb.msgs)
        };
        self.0.connected.store(false, Ordering::Release);
        let err = Error::connection("the client's driver has stopped");
        for msg in left {
            fail_msg(msg, &err);
        }
    }
}

/// The transport-independent half of one driver loop turn: hands the mailbox to the core and
/// runs its timers. Returns `false` when the driver should stop.
pub(crate) fn turn(shared: &Shared, core: &mut Core, scratch: &mut Vec<Msg>, now: Instant) -> bool {
    shared.drain(scratch);
    for msg in scratch.drain(..) {
        match msg {
            Msg::Call(req) => core.submit(req, now),
            Msg::Connect(tx) => core.connect(tx, now),
            Msg::Disconnect(tx) => core.disconnect(tx),
            Msg::SetPushHandler(h) => core.set_push_handler(h),
            Msg::MakeSubscriber(tx) => core.make_subscriber(tx),
        }
    }
    core.on_timer(now);
    !(shared.is_shut_down() && core.is_quiet(now))
}

/// After the last handle is gone, how often the driver looks again whether any caller is left
/// (a caller that drops its future sends no wake-up).
const SHUTDOWN_POLL: Duration = Duration::from_millis(50);

/// When the driver must wake up at the latest: the core's next deadline, and after shutdown at
/// least every [`SHUTDOWN_POLL`], so a driver whose callers have all gone stops within a bounded
/// time whatever the server does. Also publishes the queue length ([`Shared::queued`]); call it
/// right before parking.
pub(crate) fn wake_at(shared: &Shared, core: &mut Core, now: Instant) -> Option<Instant> {
    shared.queued.store(core.queue_len(), Ordering::Relaxed);
    let due = core.next_deadline();
    if shared.is_shut_down() {
        let poll = now + SHUTDOWN_POLL;
        return Some(due.map_or(poll, |d| d.min(poll)));
    }
    due
}

/// Carries out what a link's core wants until it wants nothing more right now.
#[allow(dead_code)]
pub(crate) fn obey_link(link: &Link, io: &mut impl link::LinkSocketry, now: Instant) {
    // Bounded: each round either opens (which ends in a state that waits) or closes.
    for _ in 0..8 {
        match link.want(now) {
            Want::Nothing => return,
            Want::Open => io.open(link, now),
            Want::Close => io.close(link, now),
        }
    }
}

/// An engine: drives many connections (issue #12). Each one is a [`Link`] it made and keeps
/// driving until [`Link::turn`] says the connection is finished.
#[allow(dead_code)]
pub(crate) trait Driver: Send + Sync {
    /// Starts driving a new connection for `config`.
    ///
    /// # Errors
    ///
    /// [`Error::Client`] when the engine cannot take connections (it failed to start).
    fn attach(&self, config: Arc<Config>) -> Result<Arc<Link>>;
}

/// Attaches a new connection for `config` to the engine `choice` names, and says which engine
/// took it ([`Engine::Auto`] resolved: the task engine inside a tokio runtime; elsewhere the
/// io_uring engine where the kernel gives a ring, the epoll engine where it does not).
///
/// # Errors
///
/// [`Error::Client`](crate::Error::Client) when the chosen engine cannot run here:
/// [`Engine::Task`] outside a tokio runtime, [`Engine::IoUring`] where the kernel refuses a ring.
pub(crate) fn attach(choice: Engine, config: &Arc<Config>) -> Result<(Arc<Link>, Engine)> {
    let on_runtime = |handle| task::TaskEngine::tokio(handle).attach(config.clone());
    match choice {
        Engine::Task => match tokio::runtime::Handle::try_current() {
            Ok(handle) => Ok((on_runtime(handle)?, Engine::Task)),
            Err(_) => Err(crate::Error::client(
                "Engine::Task runs connections on the current tokio runtime, and there is none: \
                 create the client inside one, or choose Engine::Auto, Engine::IoUring or \
                 Engine::Epoll",
            )),
        },
        Engine::Epoll => Ok((epoll::Epoll.attach(config.clone())?, Engine::Epoll)),
        Engine::IoUring => Ok((ring::RingEngine.attach(config.clone())?, Engine::IoUring)),
        Engine::Auto => {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                return Ok((on_runtime(handle)?, Engine::Task));
            }
            // Any ring setup failure (EPERM, ENOSYS, kernel.io_uring_disabled, a seccomp
            // filter) falls back to epoll.
            match ring::RingEngine.attach(config.clone()) {
                Ok(link) => Ok((link, Engine::IoUring)),
                Err(_) => Ok((epoll::Epoll.attach(config.clone())?, Engine::Epoll)),
            }
        }
    }
}
