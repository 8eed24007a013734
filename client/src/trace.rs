//! Crate-internal tracing: macros that forward to [`tracing`](https://docs.rs/tracing) with the
//! `tracing` feature, and expand to nothing without it (their arguments are not even
//! evaluated), so an event or span costs nothing in a build without the feature. Used as
//! `trace::warning!(...)` (`warn` would clash with the built-in attribute), `trace::info!`...,
//! with `tracing`'s own syntax.
//!
//! Spans: `connect` (the first connection) and `reconnect` (every later one), each with the
//! server's `addr` and the `attempt` number, and `handshake` inside them. Events: connection
//! lost and restored, connect attempts failed, calls that timed out or failed, redirects
//! (`MOVED`/`ASK` replies), protocol errors, and panics caught in user callbacks.
//!
//! None is emitted, and no span made or closed, with a connection's lock held: the link notes
//! what to report under it and reports after it (`engine/link.rs`, `Note`), as it runs
//! callbacks, so a subscriber may call the client, and a slow one holds no lock callers wait for.

#[cfg(feature = "tracing")]
pub(crate) use tracing::Span;

/// Without the `tracing` feature: a span that is nothing.
#[cfg(not(feature = "tracing"))]
#[derive(Debug, Default)]
pub(crate) struct Span;

#[cfg(not(feature = "tracing"))]
impl Span {
    pub fn none() -> Span {
        Span
    }

    /// As `tracing::Span::is_none`: nothing records this span (always, here).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub fn is_none(&self) -> bool {
        true
    }
}

#[cfg(feature = "tracing")]
macro_rules! error {
    ($($t:tt)*) => { ::tracing::error!($($t)*) };
}
#[cfg(not(feature = "tracing"))]
#[allow(unused_macros)] // With the feature only: the link reports its events then (`Link::report`).
macro_rules! error {
    ($($t:tt)*) => {
        ()
    };
}
#[allow(unused_imports)]
pub(crate) use error;

#[cfg(feature = "tracing")]
macro_rules! warning {
    ($($t:tt)*) => { ::tracing::warn!($($t)*) };
}
#[cfg(not(feature = "tracing"))]
macro_rules! warning {
    ($($t:tt)*) => {
        ()
    };
}
pub(crate) use warning;

#[cfg(feature = "tracing")]
macro_rules! info {
    ($($t:tt)*) => { ::tracing::info!($($t)*) };
}
#[cfg(not(feature = "tracing"))]
#[allow(unused_macros)] // With the feature only: the link reports its events then (`Link::report`).
macro_rules! info {
    ($($t:tt)*) => {
        ()
    };
}
#[allow(unused_imports)]
pub(crate) use info;

#[cfg(feature = "tracing")]
macro_rules! debug {
    ($($t:tt)*) => { ::tracing::debug!($($t)*) };
}
#[cfg(not(feature = "tracing"))]
#[allow(unused_macros)] // With the feature only: the link reports its events then (`Link::report`).
macro_rules! debug {
    ($($t:tt)*) => {
        ()
    };
}
#[allow(unused_imports)]
pub(crate) use debug;

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    /// Without the feature nothing of an event is evaluated; with it, `tracing` skips
    /// the arguments unless a subscriber wants the event (none is installed here).
    #[test]
    fn arguments_are_not_evaluated_when_nothing_listens() {
        let evaluated = Cell::new(0);
        let _count = || {
            evaluated.set(evaluated.get() + 1);
            1
        };
        super::warning!(n = _count(), "event");
        super::error!(n = _count(), "event");
        super::info!(n = _count(), "event");
        super::debug!(n = _count(), "event");
        assert_eq!(evaluated.get(), 0);
    }
}
