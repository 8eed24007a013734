//! The queue between a subscriber connection and whoever reads its messages.
//!
//! The connection reads eagerly (so a reply to `PING` or a (un)subscribe is never stuck behind
//! unread messages); what bounds memory is this queue. It holds at most `limit` bytes of
//! messages (as [`Message::size`] counts them). A message that arrives while it is full is
//! dropped and counted; the reader hears of the drops, in order, as one [`Error::Lagged`] where
//! they happened. A lost connection is reported once, as an [`Error::Connection`] in order with
//! the messages, and the queue remembers that the connection is down until it is restored.

use crate::conn::Message;
use crate::{Error, Result};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// The default limit: the same as the servers' default hard limit for a pub/sub client's output
/// buffer (`client-output-buffer-limit pubsub 32mb`).
pub(crate) const DEFAULT_LIMIT: usize = 32 * 1024 * 1024;

enum Event {
    /// A message and the size it counts for.
    Message(Message, usize),
    /// This many messages were dropped here.
    Dropped(u64),
    /// The connection was lost here, or a subscription could not be restored.
    Error(Error),
}

#[derive(Default)]
struct State {
    events: VecDeque<Event>,
    /// Bytes of the queued messages.
    bytes: usize,
    messages: usize,
    /// Messages dropped since the last [`Event::Dropped`] was queued.
    unreported: u64,
    /// Messages dropped in all.
    dropped: u64,
    /// While the connection is down: the last reason.
    down: Option<Error>,
    /// The connection's driver has stopped: nothing more will come.
    closed: bool,
    waker: Option<Waker>,
    /// Set for a cluster's sharded subscriber: channels the server dropped go to its watcher
    /// (which subscribes them again where they now live) instead of the reader.
    watch: Option<Watch>,
}

/// What the watcher of a shared inbox ([`shared_inbox`]) has to act on.
#[derive(Default)]
pub(crate) struct Watch {
    /// Shard channels the server unsubscribed or refused to restore.
    pub dropped: Vec<bytes::Bytes>,
    /// A connection was lost since the watcher last looked.
    pub lost: bool,
    /// The reader is gone: the watcher ends.
    pub stopped: bool,
    waker: Option<Waker>,
}

impl Watch {
    fn has_news(&self) -> bool {
        !self.dropped.is_empty() || self.lost || self.stopped
    }
}

impl State {
    /// Queues the drops counted so far, so what comes next is reported after them.
    fn mark_drops(&mut self) {
        if self.unreported > 0 {
            let n = std::mem::take(&mut self.unreported);
            self.events.push_back(Event::Dropped(n));
        }
    }

    /// The reader's waker, to wake once the connection's lock is released.
    fn wake(&mut self) -> Option<Waker> {
        self.waker.take()
    }
}

struct Shared {
    state: Mutex<State>,
    limit: usize,
    /// The connections' ends alive: the reader's stream ends once none is.
    senders: std::sync::atomic::AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A new queue holding at most `limit` bytes of messages: the connection's end and the reader's.
pub(crate) fn inbox(limit: usize) -> (InboxTx, InboxRx) {
    let shared = Arc::new(Shared {
        state: Mutex::default(),
        limit,
        senders: 1.into(),
    });
    (InboxTx(shared.clone()), InboxRx(shared))
}

/// A queue fed by several connections (a cluster's sharded subscriber: one per node), with a
/// watcher: shard channels a server drops and lost connections are for the watcher to act on
/// ([`InboxRx::poll_watch`]), not reported to the reader as errors.
pub(crate) fn shared_inbox(limit: usize) -> (InboxTx, InboxRx) {
    let (tx, rx) = inbox(limit);
    rx.0.lock().watch = Some(Watch::default());
    (tx, rx)
}

/// The connection's end. Dropping it (the driver stopped) ends the reader's stream.
///
/// Each method returns the reader's waker, if it must be woken: the caller wakes it after
/// releasing its own locks.
pub(crate) struct InboxTx(Arc<Shared>);

impl InboxTx {
    /// Another end for another connection feeding the same queue.
    pub fn share(&self) -> InboxTx {
        self.0
            .senders
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        InboxTx(self.0.clone())
    }

    /// Shard channels the server dropped (`reason`: why): for the watcher when there is one
    /// (it wakes), else reported to the reader. Returns the wakers to wake.
    pub fn dropped(&self, names: Vec<bytes::Bytes>, reason: Error) -> Option<Waker> {
        let mut s = self.0.lock();
        if let Some(watch) = &mut s.watch {
            watch.dropped.extend(names);
            return watch.waker.take();
        }
        drop(s);
        self.report(reason)
    }

    /// Queues a message, or drops and counts it when the queue is full. A message is always
    /// taken when no other is queued, whatever its size, so one larger than the limit still
    /// reaches a reader that keeps up.
    pub fn message(&self, m: Message) -> Option<Waker> {
        let size = m.size();
        let mut s = self.0.lock();
        if s.messages > 0 && s.bytes.saturating_add(size) > self.0.limit {
            s.unreported += 1;
            s.dropped += 1;
            return None;
        }
        s.mark_drops();
        s.bytes += size;
        s.messages += 1;
        s.events.push_back(Event::Message(m.detached(), size));
        s.wake()
    }

    /// The connection holding the subscriptions is gone (reconnecting). Reported to the reader
    /// once per loss: until [`InboxTx::restored`], further calls only update the reason.
    /// Returns the wakers to wake (the watcher's, the reader's).
    pub fn lost(&self, reason: &Error) -> [Option<Waker>; 2] {
        // The reason's own words and cause, not its display ("connection error: …" again).
        let (why, source) = match reason {
            Error::Connection {
                message, source, ..
            } => (message.clone(), source.clone()),
            other => (other.to_string(), None),
        };
        let err = Error::Connection {
            sent: true,
            message: format!(
                "the subscriber's connection was lost ({why}); it reconnects and subscribes \
                 again by itself, and messages published meanwhile are lost"
            ),
            source,
        };
        let mut s = self.0.lock();
        let watcher = s.watch.as_mut().and_then(|w| {
            w.lost = true;
            w.waker.take()
        });
        let was_down = s.down.replace(err.clone()).is_some();
        if was_down {
            return [watcher, None];
        }
        s.mark_drops();
        // Two losses with nothing in between read as one: the queue cannot fill with them.
        if !matches!(s.events.back(), Some(Event::Error(_))) {
            s.events.push_back(Event::Error(err));
        }
        [watcher, s.wake()]
    }

    /// Something the reader must hear of, in order with the messages (a subscription that could
    /// not be restored).
    pub fn report(&self, err: Error) -> Option<Waker> {
        let mut s = self.0.lock();
        s.mark_drops();
        s.events.push_back(Event::Error(err));
        s.wake()
    }

    /// The connection is back and its subscriptions have been sent again.
    pub fn restored(&self) -> Option<Waker> {
        self.0.lock().down = None;
        None
    }
}

impl Drop for InboxTx {
    fn drop(&mut self) {
        if self
            .0
            .senders
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel)
            > 1
        {
            return;
        }
        let waker = {
            let mut s = self.0.lock();
            s.closed = true;
            s.wake()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The reader's end.
pub(crate) struct InboxRx(Arc<Shared>);

impl InboxRx {
    /// The next event: a message, a report of drops or of a lost connection, or `None` once the
    /// driver has stopped and everything queued has been read.
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Message>>> {
        let mut s = self.0.lock();
        let event = match s.events.pop_front() {
            Some(e) => e,
            None if s.unreported > 0 => Event::Dropped(std::mem::take(&mut s.unreported)),
            None if s.closed => return Poll::Ready(None),
            None => {
                if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    s.waker = Some(cx.waker().clone());
                }
                return Poll::Pending;
            }
        };
        Poll::Ready(Some(match event {
            Event::Message(m, size) => {
                s.bytes -= size;
                s.messages -= 1;
                Ok(m)
            }
            Event::Dropped(dropped) => Err(Error::Lagged { dropped }),
            Event::Error(e) => Err(e),
        }))
    }

    /// Another reader's end of the same queue (for a connection of a shared inbox; only one
    /// end is read).
    pub fn share(&self) -> InboxRx {
        InboxRx(self.0.clone())
    }

    /// For the watcher of a [`shared_inbox`]: what happened since it last looked, or `Pending`
    /// (it is woken when something does).
    pub fn poll_watch(&self, cx: &mut Context<'_>) -> Poll<Watch> {
        let mut s = self.0.lock();
        let Some(watch) = &mut s.watch else {
            return Poll::Pending;
        };
        if watch.has_news() {
            return Poll::Ready(Watch {
                dropped: std::mem::take(&mut watch.dropped),
                lost: std::mem::take(&mut watch.lost),
                stopped: watch.stopped,
                waker: None,
            });
        }
        watch.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Tells the watcher to end (the reader is gone); returns its waker.
    pub fn stop_watch(&self) -> Option<Waker> {
        let mut s = self.0.lock();
        let watch = s.watch.as_mut()?;
        watch.stopped = true;
        watch.waker.take()
    }

    /// Why the connection is down, while it is.
    pub fn down(&self) -> Option<Error> {
        self.0.lock().down.clone()
    }

    /// Messages waiting to be read, and the bytes they count for.
    pub fn queued(&self) -> (usize, usize) {
        let s = self.0.lock();
        (s.messages, s.bytes)
    }

    /// Messages dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.0.lock().dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::SubKind;
    use crate::Value;
    use std::task::Waker;

    fn msg(payload: &str) -> Message {
        Message {
            channel: "c".into(),
            pattern: None,
            payload: Value::Bulk(bytes::Bytes::copy_from_slice(payload.as_bytes())),
            kind: SubKind::Channel,
        }
    }

    fn next(rx: &InboxRx) -> Poll<Option<Result<Message>>> {
        rx.poll_next(&mut Context::from_waker(Waker::noop()))
    }

    fn payload(p: Poll<Option<Result<Message>>>) -> String {
        match p {
            Poll::Ready(Some(Ok(m))) => m.payload_str().unwrap_or_default().to_owned(),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    #[test]
    fn a_full_queue_drops_and_reports_the_drops_where_they_happened() {
        let one = msg("x").size();
        let (tx, rx) = inbox(3 * one);
        for i in 0..10 {
            tx.message(msg(&i.to_string()));
        }
        assert_eq!(rx.queued(), (3, 3 * one));
        assert_eq!(rx.dropped(), 7);
        assert_eq!(payload(next(&rx)), "0");
        // Room for one more: it comes after the drops.
        tx.message(msg("a"));
        assert_eq!(payload(next(&rx)), "1");
        assert_eq!(payload(next(&rx)), "2");
        assert!(matches!(
            next(&rx),
            Poll::Ready(Some(Err(Error::Lagged { dropped: 7 })))
        ));
        assert_eq!(payload(next(&rx)), "a");
        // Drops at the end are reported once the queue is read.
        for i in 0..5 {
            tx.message(msg(&i.to_string()));
        }
        for _ in 0..3 {
            let _ = next(&rx);
        }
        assert!(matches!(
            next(&rx),
            Poll::Ready(Some(Err(Error::Lagged { dropped: 2 })))
        ));
        assert!(next(&rx).is_pending());
        assert_eq!(rx.dropped(), 9);
        assert_eq!(rx.queued(), (0, 0));
    }

    #[test]
    fn a_message_larger_than_the_limit_passes_an_empty_queue() {
        let (tx, rx) = inbox(1);
        tx.message(msg("big"));
        tx.message(msg("dropped"));
        assert_eq!(payload(next(&rx)), "big");
        assert!(matches!(
            next(&rx),
            Poll::Ready(Some(Err(Error::Lagged { dropped: 1 })))
        ));
    }

    #[test]
    fn a_loss_is_reported_once_in_order_and_the_end_after_everything() {
        let (tx, rx) = inbox(DEFAULT_LIMIT);
        tx.message(msg("before"));
        tx.lost(&Error::connection("reset"));
        tx.lost(&Error::connection("refused"));
        let down = rx.down().expect("down");
        assert!(down.to_string().contains("refused"), "{down}");
        tx.restored();
        assert!(rx.down().is_none());
        tx.message(msg("after"));
        tx.lost(&Error::connection("again"));
        drop(tx);
        assert_eq!(payload(next(&rx)), "before");
        let Poll::Ready(Some(Err(e))) = next(&rx) else {
            panic!()
        };
        assert!(e.is_connection() && e.to_string().contains("reset"), "{e}");
        assert_eq!(payload(next(&rx)), "after");
        assert!(matches!(next(&rx), Poll::Ready(Some(Err(e))) if e.is_connection()));
        assert!(matches!(next(&rx), Poll::Ready(None)));
    }

    /// The report of a loss says "connection error" once and keeps the operating-system error
    /// behind the loss as its `source()`.
    #[test]
    fn a_loss_keeps_its_cause_and_does_not_repeat_itself() {
        let (tx, rx) = inbox(DEFAULT_LIMIT);
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        tx.lost(&Error::connection_io(
            "reading from 127.0.0.1:1: reset",
            reset,
        ));
        let Poll::Ready(Some(Err(e))) = next(&rx) else {
            panic!()
        };
        let text = e.to_string();
        assert_eq!(text.matches("connection error").count(), 1, "{text}");
        assert!(text.contains("reading from 127.0.0.1:1: reset"), "{text}");
        assert_eq!(
            e.io_error().map(std::io::Error::kind),
            Some(std::io::ErrorKind::ConnectionReset)
        );
        assert!(std::error::Error::source(&e).is_some());
    }
}
