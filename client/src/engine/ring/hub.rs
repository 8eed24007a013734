//! The [`Hub`]: what the ring engine's thread shares with the threads around it (the links'
//! wakers, attaches, name lookups), and the registry of the process's running engine, whose
//! start/exit protocol lives here.

use super::sock;
use crate::config::Config;
use crate::engine::current::Current;
use crate::engine::{Link, Wake};
use crate::{Error, Result};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The engine of the process, while its thread runs.
static CURRENT: Current<Hub> = Current::new();

/// Slot indexes fit the 24 bits `user_data` gives them.
const MAX_SLOTS: u32 = 1 << 24;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Attaches a new link for `config` to the running engine, or to one `start` starts.
///
/// The start/exit race: the engine thread leaves only under the registry's lock, after finding
/// no link waiting in its inbox, and marks its hub closed there; an attach hands its link over
/// under the same lock, to an open hub or a new one.
///
/// # Errors
///
/// What `start` fails with; [`Error::Client`] when the engine has no slot left.
pub(super) fn attach(
    config: Arc<Config>,
    start: impl FnOnce() -> Result<Arc<Hub>>,
) -> Result<Arc<Link>> {
    CURRENT.with(|h| !h.is_closed(), start, |hub| hub.attach(config))
}

/// A link's place in the engine: an index in its slot table and the generation of the link
/// that holds it (a freed slot's next link gets the next generation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct SlotId {
    pub index: u32,
    pub gen: u32,
}

/// What reaches the engine thread from other threads.
#[derive(Default)]
pub(super) struct Inbox {
    /// New links, with the slot each was given.
    pub attached: Vec<(SlotId, Arc<Link>)>,
    /// Links whose callers left work (a link may appear more than once).
    pub ready: Vec<SlotId>,
    /// Finished name lookups: the slot, the lookup's ticket, the addresses.
    pub resolved: Vec<(SlotId, u64, io::Result<Vec<sock::Target>>)>,
    /// Slots the engine has freed (with their next generation), for the next attaches.
    free: Vec<SlotId>,
    /// The first slot index never given out.
    next: u32,
    /// The engine thread has ended (or is ending): nothing will read this again.
    closed: bool,
}

/// What the engine thread shares with the links' wakers, attaches and name lookups.
pub(super) struct Hub {
    inbox: Mutex<Inbox>,
    /// Set by whoever fills the inbox; cleared by the engine before it empties it.
    pending: AtomicBool,
    /// True while the engine is (about to be) blocked in `io_uring_enter`.
    parked: AtomicBool,
    eventfd: OwnedFd,
}

impl Hub {
    pub fn new(eventfd: OwnedFd) -> Hub {
        Hub {
            inbox: Mutex::default(),
            pending: AtomicBool::new(false),
            parked: AtomicBool::new(false),
            eventfd,
        }
    }

    fn is_closed(&self) -> bool {
        lock(&self.inbox).closed
    }

    /// Gives `config`'s new link a slot and hands it to the engine thread.
    fn attach(self: &Arc<Hub>, config: Arc<Config>) -> Result<Arc<Link>> {
        let mut inbox = lock(&self.inbox);
        if inbox.closed {
            return Err(Error::client("the ring engine has stopped"));
        }
        let id = match inbox.free.pop() {
            Some(id) => id,
            None if inbox.next < MAX_SLOTS => {
                inbox.next += 1;
                SlotId {
                    index: inbox.next - 1,
                    gen: 0,
                }
            }
            None => {
                return Err(Error::client(format!(
                    "the ring engine already drives {MAX_SLOTS} connections"
                )))
            }
        };
        let waker = LinkWake {
            hub: self.clone(),
            id,
        };
        let link = Link::new(config, Box::new(waker));
        inbox.attached.push((id, link.clone()));
        drop(inbox);
        self.notify();
        Ok(link)
    }

    /// Puts something in the inbox and wakes the engine if it may be parked. Does nothing once
    /// the engine has stopped (its links have all been told).
    pub fn post(&self, put: impl FnOnce(&mut Inbox)) {
        {
            let mut inbox = lock(&self.inbox);
            if inbox.closed {
                return;
            }
            put(&mut inbox);
        }
        self.notify();
    }

    fn notify(&self) {
        self.pending.store(true, Ordering::SeqCst);
        // Pairs with the fence in the engine's park: either the engine sees `pending` after it
        // set `parked`, or we see `parked` here and write the eventfd.
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            let one: u64 = 1;
            // SAFETY: write(2) of 8 bytes from a live u64 to an eventfd this hub owns. A failure
            // can only be a saturated counter, which already means "wake up".
            unsafe {
                libc::write(
                    self.eventfd.as_raw_fd(),
                    (&one as *const u64).cast(),
                    std::mem::size_of::<u64>(),
                );
            }
        }
    }

    /// The engine side: takes what the inbox holds (clearing `pending` first, so anything put
    /// in after this sets it again).
    pub fn take(&self, into: &mut Inbox) {
        self.pending.store(false, Ordering::SeqCst);
        let mut inbox = lock(&self.inbox);
        std::mem::swap(&mut inbox.attached, &mut into.attached);
        std::mem::swap(&mut inbox.ready, &mut into.ready);
        std::mem::swap(&mut inbox.resolved, &mut into.resolved);
    }

    /// The engine side: `id`'s slot is free again; its next link gets the next generation.
    pub fn free(&self, id: SlotId) {
        lock(&self.inbox).free.push(SlotId {
            index: id.index,
            gen: id.gen.wrapping_add(1),
        });
    }

    /// The engine side, with nothing left to drive: ends the engine unless a link arrived
    /// meanwhile (then `false`: drive it).
    pub fn try_exit(self: &Arc<Hub>) -> bool {
        CURRENT
            .leave(self, || {
                let mut inbox = lock(&self.inbox);
                if !inbox.attached.is_empty() {
                    return None;
                }
                inbox.closed = true;
                Some(())
            })
            .is_some()
    }

    /// The engine thread is ending, however it ends: no attach reaches it any more, and links
    /// handed over but never taken are stopped.
    pub fn close(self: &Arc<Hub>) {
        let waiting = CURRENT
            .leave(self, || {
                let mut inbox = lock(&self.inbox);
                inbox.closed = true;
                inbox.ready.clear();
                inbox.resolved.clear();
                Some(std::mem::take(&mut inbox.attached))
            })
            .unwrap_or_default();
        for (_, link) in waiting {
            link.stopped();
        }
    }

    pub fn eventfd(&self) -> &OwnedFd {
        &self.eventfd
    }

    pub fn set_parked(&self, parked: bool) {
        self.parked.store(parked, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    pub fn is_pending(&self) -> bool {
        self.pending.load(Ordering::SeqCst)
    }
}

/// A link's waker: marks its slot ready.
struct LinkWake {
    hub: Arc<Hub>,
    id: SlotId,
}

impl Wake for LinkWake {
    fn wake(&self) {
        self.hub.post(|inbox| inbox.ready.push(self.id));
    }
}
