//! [`Stats`]: a connection's counters, for a service to export; and the atomics a connection
//! keeps them in.

use crate::{Error, Result, Value};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of one connection (from [`Client::stats`](crate::Client::stats)) or the sum over
/// several ([`Pool::stats`](crate::Pool::stats), [`Spread::stats`](crate::Spread::stats),
/// `a + b`): a snapshot, taken without stopping the connection.
///
/// Every field but `in_flight` counts from when the connection was made and never goes down.
/// A call is one request: a pipeline or a transaction counts once. Each call ends exactly once,
/// so `calls = ok + server_errors + timeouts + connection_errors + protocol_errors +
/// other_errors + dropped + in_flight` (fields read one by one while calls go on may be a few
/// apart). A reply that arrived but does not decode into the type asked for
/// ([`Error::Decode`]) was received as `ok`: decoding happens in the caller.
///
/// ```
/// # async fn demo(client: ringdis::Client) {
/// let stats = client.stats();
/// println!("{} calls, {} timed out, {} now", stats.calls, stats.timeouts, stats.in_flight);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Calls submitted (a pipeline or transaction counts once), including the client's own
    /// background calls on this connection (none today but blocking-call bookkeeping).
    pub calls: u64,
    /// Calls answered with a reply (a pipeline's reply counts as ok even when some of its
    /// commands failed: their errors are in the reply).
    pub ok: u64,
    /// Calls answered with a server error ([`Error::Server`]: `-ERR ...`, `WRONGTYPE`, ...,
    /// `MOVED`/`ASK` included).
    pub server_errors: u64,
    /// Of `server_errors`, the `MOVED` and `ASK` redirects.
    pub redirects: u64,
    /// Calls that failed with [`Error::Timeout`]: sent, and no reply within their timeout.
    pub timeouts: u64,
    /// Calls that failed with [`Error::Connection`]: the connection was lost while they were
    /// in flight, or could not be made in time, or the engine stopped.
    pub connection_errors: u64,
    /// Calls that failed with [`Error::Protocol`]: the server sent bytes that are not RESP.
    pub protocol_errors: u64,
    /// Calls that failed with any other error ([`Error::Client`]: refused before sending).
    pub other_errors: u64,
    /// Calls whose caller stopped waiting before the reply (a dropped future, or an
    /// `async_call` with neither callback nor timeout): their replies are read and discarded.
    pub dropped: u64,
    /// Calls submitted and not answered yet (a gauge: it goes down as replies come). Not kept
    /// apart: it is `calls` less the calls that ended.
    pub in_flight: u64,
    /// Times the connection became ready (socket up and handshake done), the first included.
    pub connects: u64,
    /// Of `connects`, those after the first: reconnects after a lost connection.
    pub reconnects: u64,
    /// Connect attempts that failed (the socket did not open, or the handshake failed or
    /// timed out); each retry counts.
    pub connects_failed: u64,
    /// Times a ready connection was lost (closed by the server, broken, or closed for being
    /// unresponsive; not a `disconnect` the client asked for).
    pub connections_lost: u64,
    /// Bytes handed to the socket (with TLS, the encrypted bytes, its handshake included).
    pub bytes_sent: u64,
    /// Bytes read from the socket (with TLS, the encrypted bytes, its handshake included).
    pub bytes_received: u64,
    /// Panics caught in user code the connection ran: `async_call` callbacks and push
    /// handlers (and their drops). The connection carries on after each.
    pub callback_panics: u64,
}

impl Stats {
    /// Every field as `(name, value)`, in declaration order, named as the fields are: for an
    /// exporter that should pick up counters added later (the struct is `#[non_exhaustive]`).
    /// Each is a counter that never goes down, except `in_flight`, a gauge.
    ///
    /// ```
    /// # fn demo(client: &ringdis::Client) {
    /// for (name, value) in client.stats().iter() {
    ///     println!("redis_client_{name} {value}");   // e.g. a Prometheus text line
    /// }
    /// # }
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
        let s = *self;
        [
            ("calls", s.calls),
            ("ok", s.ok),
            ("server_errors", s.server_errors),
            ("redirects", s.redirects),
            ("timeouts", s.timeouts),
            ("connection_errors", s.connection_errors),
            ("protocol_errors", s.protocol_errors),
            ("other_errors", s.other_errors),
            ("dropped", s.dropped),
            ("in_flight", s.in_flight),
            ("connects", s.connects),
            ("reconnects", s.reconnects),
            ("connects_failed", s.connects_failed),
            ("connections_lost", s.connections_lost),
            ("bytes_sent", s.bytes_sent),
            ("bytes_received", s.bytes_received),
            ("callback_panics", s.callback_panics),
        ]
        .into_iter()
    }
}

impl std::ops::Add for Stats {
    type Output = Stats;

    /// The field-by-field sum (saturating), e.g. of several connections.
    fn add(self, o: Stats) -> Stats {
        Stats {
            calls: self.calls.saturating_add(o.calls),
            ok: self.ok.saturating_add(o.ok),
            server_errors: self.server_errors.saturating_add(o.server_errors),
            redirects: self.redirects.saturating_add(o.redirects),
            timeouts: self.timeouts.saturating_add(o.timeouts),
            connection_errors: self.connection_errors.saturating_add(o.connection_errors),
            protocol_errors: self.protocol_errors.saturating_add(o.protocol_errors),
            other_errors: self.other_errors.saturating_add(o.other_errors),
            dropped: self.dropped.saturating_add(o.dropped),
            in_flight: self.in_flight.saturating_add(o.in_flight),
            connects: self.connects.saturating_add(o.connects),
            reconnects: self.reconnects.saturating_add(o.reconnects),
            connects_failed: self.connects_failed.saturating_add(o.connects_failed),
            connections_lost: self.connections_lost.saturating_add(o.connections_lost),
            bytes_sent: self.bytes_sent.saturating_add(o.bytes_sent),
            bytes_received: self.bytes_received.saturating_add(o.bytes_received),
            callback_panics: self.callback_panics.saturating_add(o.callback_panics),
        }
    }
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        *self = *self + o;
    }
}

impl std::iter::Sum for Stats {
    fn sum<I: Iterator<Item = Stats>>(iter: I) -> Stats {
        iter.fold(Stats::default(), |a, b| a + b)
    }
}

/// A counter kept by one writer at a time (the holder of its connection's lock) and read by
/// anyone: adding is a plain load and store, no read-modify-write, so counting costs a call
/// almost nothing; a reader sees some recent value.
#[derive(Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only under the connection's lock: two writers at once would lose counts.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// One connection's counters (see [`Stats`] for what each counts). Every one but
/// `callback_panics` changes only under the connection's lock; `callback_panics` changes
/// outside it (user code runs there), with an atomic add.
#[derive(Default)]
pub(crate) struct Counters {
    pub calls: Counter,
    pub ok: Counter,
    pub server_errors: Counter,
    pub redirects: Counter,
    pub timeouts: Counter,
    pub connection_errors: Counter,
    pub protocol_errors: Counter,
    pub other_errors: Counter,
    pub dropped: Counter,
    pub connects: Counter,
    pub reconnects: Counter,
    pub connects_failed: Counter,
    pub connections_lost: Counter,
    pub bytes_sent: Counter,
    pub bytes_received: Counter,
    callback_panics: AtomicU64,
}

impl Counters {
    /// A call ended with `result` (under the lock).
    #[inline]
    pub fn answered(&self, result: &Result<Value>) {
        match result {
            Ok(_) => self.ok.add(1),
            Err(e) => self.failed(e),
        }
    }

    /// A call ended with `err` (under the lock).
    #[cold]
    pub fn failed(&self, err: &Error) {
        match err {
            Error::Server { .. } => {
                self.server_errors.add(1);
                if is_redirect(err) {
                    self.redirects.add(1);
                }
            }
            Error::Timeout => self.timeouts.add(1),
            Error::Connection { .. } => self.connection_errors.add(1),
            Error::Protocol { .. } => self.protocol_errors.add(1),
            _ => self.other_errors.add(1),
        }
    }

    /// Calls that ended, however.
    fn ended(&self) -> u64 {
        [
            &self.ok,
            &self.server_errors,
            &self.timeouts,
            &self.connection_errors,
            &self.protocol_errors,
            &self.other_errors,
            &self.dropped,
        ]
        .iter()
        .fold(0u64, |n, c| n.wrapping_add(c.get()))
    }

    /// Every call in flight failed with a connection error (under the lock).
    pub fn fail_in_flight(&self) {
        let in_flight = self.calls.get().saturating_sub(self.ended());
        self.connection_errors.add(in_flight);
    }

    /// A panic was caught in user code (anywhere, outside the lock too).
    pub fn callback_panicked(&self) {
        self.callback_panics.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> Stats {
        // `calls` read last: it only grows, so `in_flight` is never short of a call that ended
        // meanwhile (it may count one that started meanwhile).
        let ended = self.ended();
        let calls = self.calls.get();
        Stats {
            calls,
            ok: self.ok.get(),
            server_errors: self.server_errors.get(),
            redirects: self.redirects.get(),
            timeouts: self.timeouts.get(),
            connection_errors: self.connection_errors.get(),
            protocol_errors: self.protocol_errors.get(),
            other_errors: self.other_errors.get(),
            dropped: self.dropped.get(),
            in_flight: calls.saturating_sub(ended),
            connects: self.connects.get(),
            reconnects: self.reconnects.get(),
            connects_failed: self.connects_failed.get(),
            connections_lost: self.connections_lost.get(),
            bytes_sent: self.bytes_sent.get(),
            bytes_received: self.bytes_received.get(),
            callback_panics: self.callback_panics.load(Relaxed),
        }
    }
}

/// True for a `MOVED` or `ASK` server error (a cluster redirect).
pub(crate) fn is_redirect(err: &Error) -> bool {
    matches!(err, Error::Server { kind, .. } if kind == "MOVED" || kind == "ASK")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `iter` names every field, as it is named, in order: checked against `Debug`, which a new
    /// field joins by itself.
    #[test]
    fn iter_gives_every_field_by_its_name() {
        let s = Stats {
            calls: 1,
            ok: 2,
            server_errors: 3,
            redirects: 4,
            timeouts: 5,
            connection_errors: 6,
            protocol_errors: 7,
            other_errors: 8,
            dropped: 9,
            in_flight: 10,
            connects: 11,
            reconnects: 12,
            connects_failed: 13,
            connections_lost: 14,
            bytes_sent: 15,
            bytes_received: 16,
            callback_panics: 17,
        };
        let fields: Vec<String> = s.iter().map(|(n, v)| format!("{n}: {v}")).collect();
        assert_eq!(
            format!("{s:?}"),
            format!("Stats {{ {} }}", fields.join(", "))
        );
    }

    #[test]
    fn answers_are_counted_by_kind_and_leave_in_flight() {
        let c = Counters::default();
        c.calls.add(6);
        c.answered(&Ok(Value::Nil));
        c.answered(&Err(Error::Timeout));
        c.answered(&Err(Error::connection("gone")));
        c.answered(&Err(Error::protocol("garbage")));
        c.answered(&Err(Error::Server {
            kind: "MOVED".into(),
            message: "1 127.0.0.1:7001".into(),
        }));
        c.callback_panicked();
        let s = c.snapshot();
        assert_eq!(
            (
                s.calls,
                s.ok,
                s.timeouts,
                s.connection_errors,
                s.protocol_errors
            ),
            (6, 1, 1, 1, 1)
        );
        assert_eq!((s.server_errors, s.redirects, s.in_flight), (1, 1, 1));
        assert_eq!(s.callback_panics, 1);
        let twice = s + s;
        assert_eq!((twice.calls, twice.in_flight), (12, 2));
        assert_eq!([s, s, s].into_iter().sum::<Stats>().ok, 3);
        c.fail_in_flight();
        let s = c.snapshot();
        assert_eq!((s.connection_errors, s.in_flight), (2, 0));
        c.ok.add(1);
        assert_eq!(c.snapshot().in_flight, 0, "a gauge stops at 0");
    }
}
