//! The sans-IO connection core: protocol state, reply matching, handshake and reconnect logic,
//! driven by a transport that only moves bytes.

mod backoff;
mod core;
mod handshake;
mod pubsub;
mod queue;

pub(crate) use self::core::{Core, PushHandler, Want};
pub use pubsub::{Message, SubKind};
pub(crate) use queue::{Callback, Payload, Request, Sink};
