//! Calls waiting for replies, in the order their replies will arrive.

use super::deadlines::Deadlines;
use super::event::Event;
use crate::{Cmd, Error, Result, Value};
use std::collections::VecDeque;
use std::time::Instant;

/// Who gets a reply.
pub(crate) enum Owner {
    /// A caller, known by the id it chose: the reply leaves as [`Event::Reply`].
    Caller(u64),
    /// Nobody: the reply is read and dropped (the caller is gone, or the call is the
    /// connection's own: a health-check `PING`, a restored subscription).
    Nobody,
    /// A handshake step of the connection itself.
    Internal(super::handshake::Step),
}

impl Owner {
    /// Hands a result to its caller, if it has one.
    fn deliver(self, result: Result<Value>, events: &mut VecDeque<Event>) {
        if let Owner::Caller(id) = self {
            events.push_back(Event::Reply { id, result });
        }
    }
}

/// What [`Queue::expire_one`] found past its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expired {
    /// A call whose commands were written and handed to the engine before its deadline: its
    /// reply is still due from the server, and the server had the whole wait to answer.
    Written,
    /// A call whose commands were written, but handed to the engine only at or after its
    /// deadline (the engine ran late: a stalled runtime), or not at all yet: its reply is still
    /// due, and its timeout says nothing about the server.
    WrittenLate,
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

/// A call not written yet: it waits for the connection.
pub(crate) struct Request {
    pub owner: Owner,
    pub payload: Payload,
    /// When the caller gives up; `None` waits for ever.
    pub deadline: Option<Instant>,
}

/// A call whose commands have been written and whose replies are awaited.
pub(crate) struct Entry {
    /// The queue's own sequence number: increasing in wire order, 0 for the connection's own
    /// entries (handshake steps, restored subscriptions, a health-check `PING`).
    pub seq: u64,
    pub owner: Owner,
    pub deadline: Option<Instant>,
    /// Replies still to come.
    pub left: usize,
    /// Replies so far, for calls of several commands (`None` for a single command, whose reply
    /// is delivered as it is).
    pub collected: Option<Vec<Value>>,
    /// Past its deadline: the caller was told, the late reply is still due.
    pub expired: bool,
    /// When its bytes were handed to the engine ([`Queue::mark_sent`]).
    pub sent_at: Option<Instant>,
    /// For a subscribe: its kind and the names it adds, given back if the server refuses it
    /// (one error reply instead of a confirmation per name).
    pub subscribe: Option<(super::pubsub::SubKind, Vec<bytes::Bytes>)>,
    /// For a `SUNSUBSCRIBE`: the channels whose confirmations are still due (empty: from all),
    /// so a `sunsubscribe` the server sends on its own (a slot moved) is told apart.
    pub sunsubscribe: Option<Vec<bytes::Bytes>>,
}

/// The in-flight entries (replies awaited, in wire order), the requests still waiting to be
/// written, and the deadlines of both.
#[derive(Default)]
pub(crate) struct Queue {
    pub inflight: VecDeque<Entry>,
    pub waiting: VecDeque<(u64, Request)>,
    timers: Deadlines,
    next_seq: u64,
}

impl Queue {
    /// Assigns a sequence number to a new request and registers its deadline.
    pub fn enqueue_waiting(&mut self, req: Request) {
        let seq = self.alloc(req.deadline);
        self.waiting.push_back((seq, req));
    }

    /// Registers an entry whose commands were just written.
    /// `replies` is how many replies the call gets; with `collect` they are delivered as one
    /// array, without it there must be exactly one and it is delivered as it is.
    pub fn push_inflight(
        &mut self,
        seq: u64,
        owner: Owner,
        deadline: Option<Instant>,
        replies: usize,
        collect: bool,
    ) {
        self.inflight.push_back(Entry {
            seq,
            owner,
            deadline,
            left: replies,
            collected: collect.then(|| Vec::with_capacity(replies)),
            expired: false,
            sent_at: None,
            subscribe: None,
            sunsubscribe: None,
        });
    }

    /// Everything written so far has been handed to the engine at `now`. The entries not marked
    /// yet are the newest, so this walks back only over those.
    pub fn mark_sent(&mut self, now: Instant) {
        for e in self.inflight.iter_mut().rev() {
            if e.sent_at.is_some() {
                break;
            }
            e.sent_at = Some(now);
        }
    }

    /// Registers a subscribe just written: `replies` confirmations, delivered as one array, or
    /// one error that ends it.
    pub fn push_subscribe(
        &mut self,
        seq: u64,
        owner: Owner,
        deadline: Option<Instant>,
        replies: usize,
        added: (super::pubsub::SubKind, Vec<bytes::Bytes>),
    ) {
        self.push_inflight(seq, owner, deadline, replies, true);
        if let Some(e) = self.inflight.back_mut() {
            e.subscribe = Some(added);
        }
    }

    /// A fresh sequence number, with its deadline registered.
    pub fn alloc(&mut self, deadline: Option<Instant>) -> u64 {
        self.next_seq += 1;
        let seq = self.next_seq;
        if let Some(d) = deadline {
            self.timers.push(d, seq);
        }
        seq
    }

    /// Internal entries (handshake) have sequence 0: they never time out on their own.
    pub fn push_internal(&mut self, step: super::handshake::Step) {
        self.push_inflight(0, Owner::Internal(step), None, 1, false);
    }

    /// The caller of `id` is gone: its reply, still due, is read and dropped, and it no longer
    /// counts as a caller. Unknown ids (already answered) are ignored.
    pub fn abandon(&mut self, id: u64) {
        let mine = |owner: &Owner| matches!(owner, Owner::Caller(c) if *c == id);
        if let Some(e) = self.inflight.iter_mut().find(|e| mine(&e.owner)) {
            e.owner = Owner::Nobody;
        } else if let Some((_, r)) = self.waiting.iter_mut().find(|(_, r)| mine(&r.owner)) {
            r.owner = Owner::Nobody;
        }
    }

    /// The earliest deadline of a call still waiting for its reply.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.prune();
        while let Some((at, seq)) = self.timers.peek() {
            if self.is_live(seq) {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    /// Fails the next call whose deadline is `now` or earlier, and says whether there was one
    /// and whether it had been written: a written one with [`Error::Timeout`] (it stays in the
    /// queue with no owner so its late reply is dropped), one still waiting for the connection
    /// with `unsent()`.
    pub fn expire_one(
        &mut self,
        now: Instant,
        unsent: impl Fn() -> Error,
        events: &mut VecDeque<Event>,
    ) -> Option<Expired> {
        while let Some((at, seq)) = self.timers.peek() {
            if at > now {
                return None;
            }
            self.timers.pop();
            if let Ok(i) = self.inflight.binary_search_by_key(&seq, |e| e.seq) {
                let entry = &mut self.inflight[i];
                if entry.expired {
                    continue;
                }
                entry.expired = true;
                // A call whose caller is gone has nobody to tell, but it timed out all the same.
                std::mem::replace(&mut entry.owner, Owner::Nobody)
                    .deliver(Err(Error::Timeout), events);
                return Some(match entry.sent_at {
                    Some(sent) if sent < at => Expired::Written,
                    _ => Expired::WrittenLate,
                });
            } else if let Ok(i) = self.waiting.binary_search_by_key(&seq, |(seq, _)| *seq) {
                if let Some((_, req)) = self.waiting.remove(i) {
                    req.owner.deliver(Err(unsent()), events);
                    return Some(Expired::Waiting);
                }
            }
        }
        None
    }

    /// Fails every in-flight call.
    pub fn fail_inflight(&mut self, err: &Error, events: &mut VecDeque<Event>) {
        for e in self.inflight.drain(..) {
            e.owner.deliver(Err(err.clone()), events);
        }
    }

    /// Fails every call not yet written.
    pub fn fail_waiting(&mut self, err: &Error, events: &mut VecDeque<Event>) {
        for (_, req) in self.waiting.drain(..) {
            req.owner.deliver(Err(err.clone().unsent()), events);
        }
    }

    /// True while some call still needs the connection: a caller's call not yet answered nor
    /// timed out, or any call not written yet (a fire-and-forget one made just before its client
    /// was dropped must still leave; it waits at most until its deadline or the end of the
    /// connect attempts). Written calls that timed out, whose caller is gone, or that belong to
    /// the connection itself do not count.
    pub fn has_live_callers(&self) -> bool {
        let live = |owner: &Owner| matches!(owner, Owner::Caller(_));
        self.inflight.iter().any(|e| !e.expired && live(&e.owner)) || !self.waiting.is_empty()
    }

    /// True when no caller's call awaits a reply: whatever is in flight belongs to the connection
    /// itself (handshake steps, restored subscriptions, a health-check `PING`; sequence 0).
    pub fn only_own_inflight(&self) -> bool {
        self.inflight.iter().all(|e| e.seq == 0)
    }

    /// How many calls the queue holds (written or waiting), for tests and diagnostics.
    pub fn len(&self) -> usize {
        self.inflight.len() + self.waiting.len()
    }

    /// Fails every call not yet written that has no deadline of its own.
    pub fn fail_waiting_without_deadline(&mut self, err: &Error, events: &mut VecDeque<Event>) {
        let (undated, dated): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(_, req)| req.deadline.is_none());
        self.waiting = dated;
        for (_, req) in undated {
            req.owner.deliver(Err(err.clone().unsent()), events);
        }
    }

    fn is_live(&self, seq: u64) -> bool {
        let inflight = self
            .inflight
            .binary_search_by_key(&seq, |e| e.seq)
            .is_ok_and(|i| !self.inflight[i].expired);
        inflight
            || self
                .waiting
                .binary_search_by_key(&seq, |(seq, _)| *seq)
                .is_ok()
    }

    /// Deadlines of answered calls stay until they surface; when they outnumber the live calls,
    /// rebuild the deadlines from the live ones so they stay proportional to them.
    fn prune(&mut self) {
        let live = self.inflight.len() + self.waiting.len();
        if self.timers.len() > 64 && self.timers.len() > 4 * live {
            let inflight = self
                .inflight
                .iter()
                .filter(|e| !e.expired)
                .filter_map(|e| Some((e.deadline?, e.seq)));
            let waiting = self
                .waiting
                .iter()
                .filter_map(|(seq, r)| Some((r.deadline?, *seq)));
            self.timers.reset(inflight.chain(waiting));
        }
    }

    #[cfg(test)]
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }
}
