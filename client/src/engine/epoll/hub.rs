//! What the epoll engine thread shares with everyone else: the attach queue, the ready list its
//! links' [`Wake`]s fill, the results of name resolutions, the slot numbers, and the
//! [`mio::Waker`] that rouses the thread when it is parked. Also the process-wide record of the
//! engine thread now running, so attaching and the thread's exit never race.

use crate::engine::current::Current;
use crate::engine::{Link, Wake};
use crate::{Error, Result};
use mio::{Token, Waker};
use std::net::SocketAddr;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Bits of a [`Token`] for the slot; the rest hold the generation.
const SLOT_BITS: u32 = usize::BITS / 2;
const SLOT_MASK: usize = (1 << SLOT_BITS) - 1;
/// Generations wrap within the bits a token has for them.
const GEN_MASK: u32 = (usize::MAX >> SLOT_BITS) as u32;

/// The waker's token: a slot number no link ever gets.
pub(super) const WAKER: Token = Token(SLOT_MASK);

/// One link's place on the engine: the slot number and the generation that tells this link from
/// the earlier and later ones in the same slot.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(super) struct Key {
    pub slot: u32,
    pub gen: u32,
}

impl Key {
    /// The mio token of this link's socket.
    pub fn token(self) -> Token {
        Token(((self.gen as usize) << SLOT_BITS) | self.slot as usize)
    }

    /// The link a socket event is for (`None` for the waker).
    pub fn of(token: Token) -> Option<Key> {
        let slot = token.0 & SLOT_MASK;
        if slot == SLOT_MASK {
            return None;
        }
        Some(Key {
            slot: slot as u32,
            gen: (token.0 >> SLOT_BITS) as u32,
        })
    }
}

/// A link handed to the engine thread by [`attach`](super::Epoll).
pub(super) struct Adopt {
    pub key: Key,
    pub link: Arc<Link>,
    /// Set while the link is on the ready list (shared with its [`SlotWake`]).
    pub mark: Arc<AtomicBool>,
}

/// The outcome of resolving a host name for one connect attempt of one link.
pub(super) struct Resolved {
    pub key: Key,
    pub attempt: u64,
    pub addrs: std::io::Result<Vec<SocketAddr>>,
}

#[derive(Default)]
pub(super) struct Inbox {
    /// Links attached and not yet taken by the thread.
    pub new: Vec<Adopt>,
    /// Links whose wake fired since the thread last looked.
    pub ready: Vec<Key>,
    pub resolved: Vec<Resolved>,
    /// The current generation of each slot ever used.
    gens: Vec<u32>,
    /// Slots free for the next attach.
    free: Vec<u32>,
}

impl Inbox {
    pub fn is_empty(&self) -> bool {
        self.new.is_empty() && self.ready.is_empty() && self.resolved.is_empty()
    }
}

/// What the engine thread and the rest of the process share.
pub(super) struct Hub {
    inbox: Mutex<Inbox>,
    /// True while the thread is (about to be) blocked in `epoll_wait`.
    parked: AtomicBool,
    waker: Waker,
}

impl Hub {
    pub fn new(waker: Waker) -> Hub {
        Hub {
            inbox: Mutex::default(),
            parked: AtomicBool::new(false),
            waker,
        }
    }

    pub fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the thread if it may be parked. Call it after adding to the inbox.
    fn rouse(&self) {
        // Pairs with the fence in `park`: either the thread sees what was just added to the
        // inbox after announcing it parks, or this sees the announcement and writes the waker.
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            // A failed wake can only mean the poll is gone, i.e. the thread has stopped.
            let _ = self.waker.wake();
        }
    }

    /// The thread is about to block: true if it may (the inbox is empty), false if it must
    /// look at the inbox again first. Call [`Hub::unpark`] once the wait is over.
    pub fn park(&self) -> bool {
        self.parked.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.inbox().is_empty() {
            return true;
        }
        self.unpark();
        false
    }

    pub fn unpark(&self) {
        self.parked.store(false, Ordering::SeqCst);
    }

    /// A slot for a new link, with its generation.
    ///
    /// # Errors
    ///
    /// [`Error::Client`] when every slot a token can name is taken.
    pub fn reserve(&self) -> Result<Key> {
        let mut inbox = self.inbox();
        if let Some(slot) = inbox.free.pop() {
            let gen = inbox.gens[slot as usize];
            return Ok(Key { slot, gen });
        }
        let slot = inbox.gens.len();
        if slot >= SLOT_MASK || slot >= u32::MAX as usize {
            return Err(Error::client(
                "the epoll engine drives as many connections as it can name",
            ));
        }
        inbox.gens.push(0);
        Ok(Key {
            slot: slot as u32,
            gen: 0,
        })
    }

    /// The thread is done with a slot: later wakes and events for its old link are ignored.
    pub fn release(&self, slot: u32) {
        let mut inbox = self.inbox();
        if let Some(gen) = inbox.gens.get_mut(slot as usize) {
            *gen = gen.wrapping_add(1) & GEN_MASK;
            inbox.free.push(slot);
        }
    }

    /// Hands a new link to the thread.
    pub fn adopt(&self, adopt: Adopt) {
        self.inbox().new.push(adopt);
        self.rouse();
    }

    /// Hands the thread the addresses a host name resolved to.
    pub fn resolved(&self, resolved: Resolved) {
        self.inbox().resolved.push(resolved);
        self.rouse();
    }

    fn ready(&self, key: Key) {
        self.inbox().ready.push(key);
        self.rouse();
    }
}

/// A link's [`Wake`]: puts its slot on the ready list (once until the thread takes it) and
/// rouses the thread only if it may be parked.
pub(super) struct SlotWake {
    hub: Arc<Hub>,
    key: Key,
    mark: Arc<AtomicBool>,
}

impl SlotWake {
    pub fn new(hub: Arc<Hub>, key: Key, mark: Arc<AtomicBool>) -> SlotWake {
        SlotWake { hub, key, mark }
    }
}

impl Wake for SlotWake {
    fn wake(&self) {
        // The thread clears the mark before it turns the link, so a wake that finds it set is
        // covered by that turn.
        if !self.mark.swap(true, Ordering::SeqCst) {
            self.hub.ready(self.key);
        }
    }
}

/// The engine thread now running, if any.
static CURRENT: Current<Hub> = Current::new();

/// Runs `f` with the running engine's hub, starting one with `start` if none runs. No thread
/// retires while `f` runs, so whatever `f` adopts is taken by a live thread.
///
/// # Errors
///
/// Those of `start` and `f`.
pub(super) fn with_running<R>(
    start: impl FnOnce() -> Result<Arc<Hub>>,
    f: impl FnOnce(&Arc<Hub>) -> Result<R>,
) -> Result<R> {
    CURRENT.with(|_| true, start, f)
}

/// The thread of `hub` asks to stop: granted (no link is attached to it from then on) unless a
/// link was attached meanwhile. With `force` it is always granted. Returns the links attached and
/// not yet taken (none unless forced), for the thread to stop them.
pub(super) fn retire(hub: &Arc<Hub>, force: bool) -> Option<Vec<Adopt>> {
    CURRENT.leave(hub, || {
        let mut inbox = hub.inbox();
        if !force && !inbox.new.is_empty() {
            return None;
        }
        Some(std::mem::take(&mut inbox.new))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_slot_and_generation() {
        for key in [
            Key { slot: 0, gen: 0 },
            Key { slot: 7, gen: 3 },
            Key {
                slot: (SLOT_MASK - 1) as u32,
                gen: GEN_MASK,
            },
        ] {
            assert_eq!(Key::of(key.token()), Some(key));
            assert_ne!(key.token(), WAKER);
        }
        assert_eq!(Key::of(WAKER), None);
    }

    #[test]
    fn a_released_slot_comes_back_with_a_new_generation() {
        let poll = mio::Poll::new().unwrap();
        let hub = Hub::new(Waker::new(poll.registry(), WAKER).unwrap());
        let a = hub.reserve().unwrap();
        let b = hub.reserve().unwrap();
        assert_ne!(a.slot, b.slot);
        hub.release(a.slot);
        let c = hub.reserve().unwrap();
        assert_eq!(c.slot, a.slot);
        assert_ne!(c.gen, a.gen);
    }

    #[test]
    fn park_refuses_while_the_inbox_holds_something() {
        let poll = mio::Poll::new().unwrap();
        let hub = Hub::new(Waker::new(poll.registry(), WAKER).unwrap());
        assert!(hub.park());
        hub.unpark();
        hub.ready(Key { slot: 0, gen: 0 });
        assert!(!hub.park());
        assert!(!hub.parked.load(Ordering::SeqCst));
    }
}
