//! Calls waiting for replies, in the order their replies will arrive.

use crate::{Cmd, Error, Result, Value};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;
use tokio::sync::oneshot;

/// A callback for [`Client::async_call`](crate::Client::async_call).
pub(crate) type Callback = Box<dyn FnOnce(Result<Value>) + Send + 'static>;

/// Where a reply goes.
pub(crate) enum Sink {
    /// A waiting future.
    Oneshot(oneshot::Sender<Result<Value>>),
    /// A user callback, run on the driver thread.
    Callback(Callback),
    /// Nobody: the reply is read and dropped (fire-and-forget, or the caller timed out).
    Discard,
    /// A handshake step of the connection itself.
    Internal(super::handshake::Step),
}

impl Sink {
    /// Hands a result to its receiver. A receiver that has gone away is not an error: the
    /// result is dropped. A panicking callback is caught so it cannot take the driver down.
    pub(crate) fn deliver(self, result: Result<Value>) {
        match self {
            Sink::Oneshot(tx) => {
                let _ = tx.send(result);
            }
            Sink::Callback(cb) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(result)));
            }
            Sink::Discard | Sink::Internal(_) => {}
        }
    }
}

/// What [`Queue::expire_one`] found past its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expired {
    /// A call whose commands were written: its reply is still due from the server.
    Written,
    /// A call still waiting for a connection.
    Waiting,
}

/// What a call sends: one command, or several whose replies come back as one array.
pub(crate) enum Payload {
    One(Cmd),
    /// Several commands, already encoded for the wire back to back (see [`Payload::batch`]);
    /// their `count` replies are delivered as one array.
    Many {
        wire: bytes::Bytes,
        count: usize,
    },
    /// A (un)subscribe on a subscriber connection: one confirmation per name, delivered as one
    /// array.
    Subscribe {
        kind: super::pubsub::SubKind,
        subscribe: bool,
        names: Vec<bytes::Bytes>,
    },
}

impl Payload {
    /// True when the call would get no reply at all (an empty batch).
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Payload::Many { count: 0, .. })
    }

    /// Several commands as one call, encoded once into one buffer (no copy of each command).
    pub(crate) fn batch<'a>(cmds: impl IntoIterator<Item = &'a Cmd> + Clone) -> Payload {
        let size: usize = cmds
            .clone()
            .into_iter()
            .map(|c| c.args().encoded().len() + 16)
            .sum();
        let mut wire = bytes::BytesMut::with_capacity(size);
        let mut count = 0;
        for c in cmds {
            crate::resp::write_command(&mut wire, c.args().len(), c.args().encoded());
            count += 1;
        }
        Payload::Many {
            wire: wire.freeze(),
            count,
        }
    }
}

/// A call as the client hands it to the connection.
pub(crate) struct Request {
    pub payload: Payload,
    pub sink: Sink,
    /// When the caller gives up; `None` waits for ever.
    pub deadline: Option<Instant>,
}

/// A call whose commands have been written and whose replies are awaited.
pub(crate) struct Entry {
    pub id: u64,
    pub sink: Sink,
    pub deadline: Option<Instant>,
    /// Replies still to come.
    pub left: usize,
    /// Replies so far, for calls of several commands (`None` for a single command, whose reply
    /// is delivered as it is).
    pub collected: Option<Vec<Value>>,
    /// Past its deadline: the caller was told, the late reply is still due.
    pub expired: bool,
    /// For a subscribe: its kind and the names it adds, given back if the server refuses it
    /// (one error reply instead of a confirmation per name).
    pub subscribe: Option<(super::pubsub::SubKind, Vec<bytes::Bytes>)>,
}

/// The in-flight entries (replies awaited, in wire order), the requests still waiting to be
/// written, and the deadlines of both.
#[derive(Default)]
pub(crate) struct Queue {
    pub inflight: VecDeque<Entry>,
    pub waiting: VecDeque<(u64, Request)>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    next_id: u64,
}

impl Queue {
    /// Assigns an id to a new request and registers its deadline.
    pub fn enqueue_waiting(&mut self, req: Request) {
        let id = self.alloc(req.deadline);
        self.waiting.push_back((id, req));
    }

    /// Registers an entry whose commands were just written.
    /// `replies` is how many replies the call gets; with `collect` they are delivered as one
    /// array, without it there must be exactly one and it is delivered as it is.
    pub fn push_inflight(
        &mut self,
        id: u64,
        sink: Sink,
        deadline: Option<Instant>,
        replies: usize,
        collect: bool,
    ) {
        self.inflight.push_back(Entry {
            id,
            sink,
            deadline,
            left: replies,
            collected: collect.then(|| Vec::with_capacity(replies)),
            expired: false,
            subscribe: None,
        });
    }

    /// Registers a subscribe just written: `replies` confirmations, delivered as one array, or
    /// one error that ends it.
    pub fn push_subscribe(
        &mut self,
        id: u64,
        sink: Sink,
        deadline: Option<Instant>,
        replies: usize,
        added: (super::pubsub::SubKind, Vec<bytes::Bytes>),
    ) {
        self.push_inflight(id, sink, deadline, replies, true);
        if let Some(e) = self.inflight.back_mut() {
            e.subscribe = Some(added);
        }
    }

    /// A fresh id, with its deadline registered.
    pub fn alloc(&mut self, deadline: Option<Instant>) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        if let Some(d) = deadline {
            self.timers.push(Reverse((d, id)));
        }
        id
    }

    /// Internal entries (handshake) have id 0: they never time out on their own.
    pub fn push_internal(&mut self, step: super::handshake::Step) {
        self.inflight.push_back(Entry {
            id: 0,
            sink: Sink::Internal(step),
            deadline: None,
            left: 1,
            collected: None,
            expired: false,
            subscribe: None,
        });
    }

    /// The earliest deadline of a call still waiting for its reply.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.prune();
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if self.is_live(id) {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    /// Fails the next call whose deadline is `now` or earlier, and says whether there was one
    /// and whether it had been written: a written one with [`Error::Timeout`] (it stays in the
    /// queue with a [`Sink::Discard`] so its late reply is dropped), one still waiting for the
    /// connection with `unsent()`.
    pub fn expire_one(&mut self, now: Instant, unsent: impl Fn() -> Error) -> Option<Expired> {
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if at > now {
                return None;
            }
            self.timers.pop();
            if let Ok(i) = self.inflight.binary_search_by_key(&id, |e| e.id) {
                let entry = &mut self.inflight[i];
                if entry.expired {
                    continue;
                }
                entry.expired = true;
                // A fire-and-forget call (already `Discard`) has nobody to tell, but it timed
                // out all the same.
                std::mem::replace(&mut entry.sink, Sink::Discard).deliver(Err(Error::Timeout));
                return Some(Expired::Written);
            } else if let Ok(i) = self.waiting.binary_search_by_key(&id, |(id, _)| *id) {
                if let Some((_, req)) = self.waiting.remove(i) {
                    req.sink.deliver(Err(unsent()));
                    return Some(Expired::Waiting);
                }
            }
        }
        None
    }

    /// Fails every in-flight call.
    pub fn fail_inflight(&mut self, err: &Error) {
        for e in self.inflight.drain(..) {
            e.sink.deliver(Err(err.clone()));
        }
    }

    /// Fails every call not yet written.
    pub fn fail_waiting(&mut self, err: &Error) {
        for (_, req) in self.waiting.drain(..) {
            req.sink.deliver(Err(err.clone()));
        }
    }

    /// True while some call still has a caller to answer: a waiting future (not dropped), a
    /// callback, or a fire-and-forget call within its deadline. Calls that timed out, whose
    /// caller is gone, or that belong to the connection itself do not count.
    pub fn has_live_callers(&self, now: Instant) -> bool {
        let live = |sink: &Sink, deadline: Option<Instant>| match sink {
            Sink::Oneshot(tx) => !tx.is_closed(),
            Sink::Callback(_) => true,
            Sink::Discard => deadline.is_some_and(|d| d > now),
            Sink::Internal(_) => false,
        };
        self.inflight
            .iter()
            .any(|e| !e.expired && live(&e.sink, e.deadline))
            || self.waiting.iter().any(|(_, r)| live(&r.sink, r.deadline))
    }

    /// True when no caller's call awaits a reply: whatever is in flight belongs to the connection
    /// itself (handshake steps, restored subscriptions, a health-check `PING`; id 0).
    pub fn only_own_inflight(&self) -> bool {
        self.inflight.iter().all(|e| e.id == 0)
    }

    /// How many calls the queue holds (written or waiting), for tests and diagnostics.
    pub fn len(&self) -> usize {
        self.inflight.len() + self.waiting.len()
    }

    /// Fails every call not yet written that has no deadline of its own.
    pub fn fail_waiting_without_deadline(&mut self, err: &Error) {
        let (undated, dated): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(_, req)| req.deadline.is_none());
        self.waiting = dated;
        for (_, req) in undated {
            req.sink.deliver(Err(err.clone()));
        }
    }

    fn is_live(&self, id: u64) -> bool {
        let inflight = self
            .inflight
            .binary_search_by_key(&id, |e| e.id)
            .is_ok_and(|i| !self.inflight[i].expired);
        inflight
            || self
                .waiting
                .binary_search_by_key(&id, |(id, _)| *id)
                .is_ok()
    }

    /// Deadlines of answered calls stay in the heap until they surface; when they outnumber the
    /// live calls, rebuild the heap from the live ones so it stays proportional to them.
    fn prune(&mut self) {
        let live = self.inflight.len() + self.waiting.len();
        if self.timers.len() > 64 && self.timers.len() > 4 * live {
            let inflight = self
                .inflight
                .iter()
                .filter(|e| !e.expired)
                .filter_map(|e| Some((e.deadline?, e.id)));
            let waiting = self
                .waiting
                .iter()
                .filter_map(|(id, r)| Some((r.deadline?, *id)));
            self.timers = inflight.chain(waiting).map(Reverse).collect();
        }
    }

    #[cfg(test)]
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }
}
