//! [`Waiter`]: a cached read waiting for the same read already in flight.

use crate::{Result, Value};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::oneshot;

/// Where a read in flight leaves its reply for one waiter.
pub(super) type Slot = oneshot::Sender<Result<Value>>;

/// A cached read waiting for the same read already in flight ([`Plan::Join`](super::Plan)).
///
/// Resolves to `Some(reply)` (a clone of the leading read's reply, or its error) or `None` when
/// the leading read was given up (its `Fill` dropped unfinished): plan again. Cancel safe:
/// dropping it leaves nothing behind but a closed slot, which the flight prunes.
/// `Unpin`; any executor.
pub(crate) struct Waiter {
    rx: oneshot::Receiver<Result<Value>>,
}

impl Waiter {
    pub(super) fn new() -> (Slot, Waiter) {
        let (tx, rx) = oneshot::channel();
        (tx, Waiter { rx })
    }
}

impl Future for Waiter {
    /// `None`: the leading read was given up; plan again.
    type Output = Option<Result<Value>>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(|r| r.ok())
    }
}
