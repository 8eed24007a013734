//! The sans-IO connection core: protocol state, reply matching, handshake and reconnect logic,
//! as a pure state machine. Inputs go in with the time; bytes, deadlines and [`Event`]s come
//! out. No threads, no locks, no callbacks, no async runtime.

mod backoff;
mod core;
mod deadlines;
mod event;
mod handshake;
mod pubsub;
mod queue;

pub(crate) use self::core::{Core, Want};
pub(crate) use event::Event;
pub(crate) use handshake::Role;
pub(crate) use pubsub::{invalidation, Invalidation};
pub use pubsub::{Message, SubKind, INVALIDATE_CHANNEL};
pub(crate) use queue::Payload;
