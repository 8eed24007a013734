//! The sans-IO connection core: protocol state, reply matching, handshake and reconnect logic,
//! driven by a transport that only moves bytes.

mod backoff;
mod core;
mod handshake;
mod inbox;
mod pubsub;
mod queue;

pub(crate) use self::core::{Core, PushHandler, Want};
pub(crate) use inbox::{inbox, InboxRx, InboxTx, DEFAULT_LIMIT as DEFAULT_QUEUE_LIMIT};
pub use pubsub::{Message, SubKind, INVALIDATE_CHANNEL};
pub(crate) use queue::{Callback, Payload, Request, Sink};
