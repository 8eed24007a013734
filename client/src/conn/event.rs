//! [`Event`]: what the connection core tells its owner, in the order things happened.

use super::pubsub::Message;
use crate::{Error, Result, Value};

/// Something the owner of a [`Core`](super::Core) must act on; taken with
/// [`Core::poll_event`](super::Core::poll_event).
#[derive(Debug)]
pub(crate) enum Event {
    /// The reply to the call submitted with `id` (or why it has none: a timeout, a lost
    /// connection, a refused handshake…). Each id gets exactly one, unless it was abandoned.
    Reply { id: u64, result: Result<Value> },
    /// A RESP3 push frame that is not a reply (a client-side caching invalidation…).
    Push(Value),
    /// A published message, on a subscriber connection.
    Message(Message),
    /// A subscriber holding subscriptions lost its connection (reported once per loss; it
    /// reconnects by itself).
    Lost(Error),
    /// A subscriber's connection is back and its subscriptions have been sent again.
    Restored,
    /// Something a subscriber's reader must hear of, in order with the messages (a
    /// subscription that could not be restored).
    Report(Error),
    /// Shard channels a subscriber no longer holds although nobody asked to unsubscribe: the
    /// server unsubscribed them (their slot moved to another node: a `sunsubscribe` nobody
    /// asked for), or refused to restore them after a reconnect (`MOVED`). `reason` says which.
    Dropped {
        names: Vec<bytes::Bytes>,
        reason: Error,
    },
    /// The connection is ready: every `connect` request so far is answered.
    Connected,
    /// Connecting failed for good: every `connect` request so far fails with this.
    ConnectFailed(Error),
    /// The socket is closed after a `disconnect` request (or there was none): every
    /// `disconnect` request so far is answered.
    Disconnected,
}
