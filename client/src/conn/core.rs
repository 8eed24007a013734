//! The protocol state of one connection, with no I/O: a transport feeds it events and bytes and
//! asks it what to do next.
//!
//! The transport's side of the contract, in the order things happen:
//!
//! 1. [`Core::want`] says [`Want::Open`]: the transport calls [`Core::on_opening`] and starts
//!    connecting; when the socket is up it calls [`Core::on_open`], or [`Core::on_closed`] if
//!    connecting failed.
//! 2. Whenever [`Core::take_output`] has bytes, the transport writes them, in order.
//! 3. Bytes read from the socket go into [`Core::input`], then [`Core::on_input`] parses them and
//!    hands replies to their callers. An error from it means the stream is broken: close the
//!    socket and report [`Core::on_closed`].
//! 4. [`Want::Close`] asks the transport to close the socket and report [`Core::on_closed`].
//! 5. The transport wakes at [`Core::next_deadline`] at the latest and calls [`Core::on_timer`].
//!
//! Calls arrive through [`Core::submit`], [`Core::connect`] and [`Core::disconnect`]. The core
//! decides when to connect, what to send on connect, which reply belongs to which call, when a
//! call has timed out and when to retry a lost connection. The transport never looks at RESP.

use super::backoff::Backoff;
use super::handshake::{Credentials, Handshake, Outcome, Step};
use super::inbox::InboxTx;
use super::pubsub::{classify, Frame, Subscriptions};
use super::queue::{Expired, Payload, Queue, Request, Sink};
use crate::config::{Addr, Config};
use crate::resp::{write_command, Parser};
use crate::{Cmd, Error, Result, Value};
use bytes::{Bytes, BytesMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// What the core needs the transport to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    /// Nothing beyond reading, writing and waiting.
    Nothing,
    /// Open a connection now.
    Open,
    /// Close the connection now.
    Close,
}

#[derive(Debug)]
enum State {
    /// No connection and nobody waiting for one.
    Idle,
    /// Waiting to (re)try connecting at `until`.
    Backoff { until: Instant },
    /// The transport is opening the socket.
    Connecting,
    /// The socket is up; the handshake is running.
    Handshaking(Handshake),
    /// Carrying calls.
    Ready,
    /// Waiting for the transport to close the socket; calls in flight then fail with `reason`.
    Closing { reason: Error },
}

/// A handler for RESP3 push frames that are not replies (client-side caching invalidations,
/// pub/sub messages on a RESP3 connection).
pub(crate) type PushHandler = Box<dyn FnMut(Value) + Send>;

/// The pub/sub side of a subscriber connection.
struct PubSub {
    subs: Subscriptions,
    inbox: InboxTx,
}

/// The protocol state of one connection.
pub(crate) struct Core {
    creds: Credentials,
    autoconnect: bool,
    connect_timeout: Duration,
    /// The liveness rule ([`Config::max_silent_timeouts`]).
    max_silent_timeouts: Option<u32>,
    /// Written calls that have timed out since the server last sent a byte.
    silent_timeouts: u32,
    /// Health checks of an idle connection ([`Config::health_check`]).
    health_check: Option<Duration>,
    /// When the server last sent a byte (or the connection opened).
    last_received: Instant,
    /// When the health-check `PING` in flight was sent.
    probe_sent: Option<Instant>,
    /// Where it connects, for error messages.
    addr: Addr,
    state: State,
    parser: Parser,
    input: BytesMut,
    output: BytesMut,
    queue: Queue,
    backoff: Backoff,
    /// When the current run of connect attempts began; it gives up after `connect_timeout`.
    attempts_since: Option<Instant>,
    /// When the current attempt began. A connection that reconnects by itself (a subscriber
    /// holding subscriptions) gives each attempt `connect_timeout`, however long it has been
    /// trying; any other gives the whole run that long.
    attempt_since: Option<Instant>,
    last_error: Option<Error>,
    connect_waiters: Vec<oneshot::Sender<Result<bool>>>,
    disconnect_waiters: Vec<oneshot::Sender<()>>,
    resp3: bool,
    /// The ready connection has `CLIENT TRACKING` on (from the `Config`) and gets
    /// invalidations as RESP3 pushes: when it is lost, the keys the server tracked for it are
    /// forgotten, and the push handler is told to flush (see `on_closed`).
    tracking_pushes: bool,
    push_handler: Option<PushHandler>,
    pubsub: Option<PubSub>,
    /// Mirrors `state == Ready` for client handles, updated before any reply of a new
    /// connection is delivered, so a caller that got a reply never sees "not connected".
    connected: Arc<AtomicBool>,
}

impl Core {
    pub fn new(config: &Config) -> Core {
        Core {
            creds: Credentials {
                protocol: config.protocol,
                username: config.username.clone(),
                password: config.password.clone(),
                client_name: config.client_name.clone(),
                db: config.db,
                tracking: config.tracking.as_ref().map(|t| t.cmd()),
            },
            autoconnect: config.autoconnect,
            connect_timeout: config.connect_timeout,
            max_silent_timeouts: config.max_silent_timeouts,
            silent_timeouts: 0,
            health_check: config.health_check,
            last_received: Instant::now(),
            probe_sent: None,
            addr: config.addr.clone(),
            state: State::Idle,
            parser: Parser::new(config.limits),
            input: BytesMut::with_capacity(16 * 1024),
            output: BytesMut::with_capacity(16 * 1024),
            queue: Queue::default(),
            backoff: Backoff::new(
                config.backoff_min,
                config.backoff_max,
                config.backoff_seed.get(),
            ),
            attempts_since: None,
            attempt_since: None,
            last_error: None,
            connect_waiters: Vec::new(),
            disconnect_waiters: Vec::new(),
            resp3: false,
            tracking_pushes: false,
            push_handler: None,
            pubsub: None,
            connected: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The flag that says whether the connection is ready, for client handles to read.
    pub fn connected_flag(&self) -> Arc<AtomicBool> {
        self.connected.clone()
    }

    fn set_state(&mut self, state: State) {
        self.connected
            .store(matches!(state, State::Ready), Ordering::Release);
        self.state = state;
    }

    /// Makes this a subscriber connection: published messages go to `inbox`, subscriptions
    /// are restored on every reconnect, and a connection holding subscriptions reconnects by
    /// itself, without waiting for a call, for as long as it lives (each loss reported to the
    /// inbox once).
    pub fn make_subscriber(&mut self, inbox: InboxTx) {
        self.pubsub = Some(PubSub {
            subs: Subscriptions::default(),
            inbox,
        });
    }

    /// True for a subscriber holding subscriptions: it reconnects by itself, for ever.
    fn reconnects_by_itself(&self) -> bool {
        self.pubsub.as_ref().is_some_and(|p| !p.subs.is_empty())
    }

    /// When the connect attempt under way must be abandoned.
    fn attempt_deadline(&self) -> Option<Instant> {
        let since = if self.reconnects_by_itself() {
            self.attempt_since
        } else {
            self.attempts_since
        };
        since.map(|t| t + self.connect_timeout)
    }

    /// Takes a call. It is written at once when the connection is ready, otherwise it waits for
    /// the connection (which this may start), or fails at once when autoconnect is off.
    pub fn submit(&mut self, req: Request, now: Instant) {
        if req.payload.is_empty() {
            req.sink.deliver(Ok(Value::Array(Vec::new())));
            return;
        }
        match self.state {
            State::Ready => {
                let id = self.queue.alloc(req.deadline);
                self.write_request(id, req);
            }
            State::Idle if !self.autoconnect => req.sink.deliver(Err(Error::connection(
                "not connected (autoconnect is off: call connect() first)",
            ))),
            State::Idle => {
                self.queue.enqueue_waiting(req);
                self.start_attempts(now);
            }
            _ => self.queue.enqueue_waiting(req),
        }
    }

    /// A request to connect: resolved with `Ok(true)` once the connection is ready (at once if
    /// it already is), or with the error that stopped it.
    pub fn connect(&mut self, done: oneshot::Sender<Result<bool>>, now: Instant) {
        match self.state {
            State::Ready => {
                let _ = done.send(Ok(true));
            }
            State::Idle => {
                self.connect_waiters.push(done);
                self.start_attempts(now);
            }
            _ => self.connect_waiters.push(done),
        }
    }

    /// A request to disconnect: calls in flight and calls waiting for a connection fail with
    /// [`Error::Connection`]; resolved once the socket is closed (at once if there is none).
    pub fn disconnect(&mut self, done: oneshot::Sender<()>) {
        let reason = Error::connection("disconnected by the client");
        self.queue.fail_waiting(&reason);
        self.fail_connect_waiters(&reason);
        match self.state {
            State::Idle | State::Backoff { .. } => {
                self.set_state(State::Idle);
                self.attempts_since = None;
                let _ = done.send(());
            }
            State::Closing { .. } => self.disconnect_waiters.push(done),
            State::Connecting | State::Handshaking(_) | State::Ready => {
                self.disconnect_waiters.push(done);
                self.set_state(State::Closing { reason });
            }
        }
    }

    /// Hands a push to the handler, if there is one.
    fn push(&mut self, value: Value) {
        if let Some(handler) = &mut self.push_handler {
            // User code must never take the connection down: a panic is caught here (the panic
            // hook still reports it) and the handler stays installed for the next push. The
            // value is moved into the handler, so nothing is left half-used.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(value)));
        }
    }

    /// Sets the handler for RESP3 push frames.
    pub fn set_push_handler(&mut self, handler: Option<PushHandler>) {
        let old = std::mem::replace(&mut self.push_handler, handler);
        // User code (the closure's captures) runs on drop too.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(old)));
    }

    fn start_attempts(&mut self, now: Instant) {
        self.attempts_since = Some(now);
        self.last_error = None;
        self.set_state(State::Backoff { until: now });
    }

    fn write_cmd(&mut self, cmd: &Cmd) {
        write_command(&mut self.output, cmd.args().len(), cmd.args().encoded());
    }

    fn write_request(&mut self, id: u64, req: Request) {
        let (replies, collect) = match &req.payload {
            Payload::One(cmd) => {
                self.write_cmd(cmd);
                (1, false)
            }
            Payload::Many { wire, count } => {
                self.output.extend_from_slice(wire);
                (*count, true)
            }
            Payload::Subscribe {
                kind,
                subscribe,
                names,
            } => {
                let Some(pubsub) = &mut self.pubsub else {
                    req.sink.deliver(Err(Error::client(
                        "subscribe and unsubscribe need a subscriber connection (Client::subscriber)",
                    )));
                    return;
                };
                let added = subscribe.then(|| (*kind, pubsub.subs.new_names(*kind, names)));
                let replies = pubsub.subs.apply(*kind, *subscribe, names);
                let word = if *subscribe {
                    kind.subscribe()
                } else {
                    kind.unsubscribe()
                };
                let mut cmd = Cmd::new(word);
                for n in names {
                    cmd.push_arg(n);
                }
                self.write_cmd(&cmd);
                if let Some(added) = added {
                    self.queue
                        .push_subscribe(id, req.sink, req.deadline, replies, added);
                    return;
                }
                (replies, true)
            }
        };
        self.queue
            .push_inflight(id, req.sink, req.deadline, replies, collect);
    }

    // ----- what the transport asks -----------------------------------------------------------

    /// What the transport should do now.
    pub fn want(&self, now: Instant) -> Want {
        match self.state {
            State::Backoff { until } if until <= now => Want::Open,
            State::Closing { .. } => Want::Close,
            _ => Want::Nothing,
        }
    }

    /// The bytes to write next, in order (`None` when there are none).
    pub fn take_output(&mut self) -> Option<Bytes> {
        if self.output.is_empty() {
            None
        } else {
            Some(self.output.split().freeze())
        }
    }

    /// The buffer the transport appends received bytes to before calling [`Core::on_input`].
    pub fn input(&mut self) -> &mut BytesMut {
        &mut self.input
    }

    /// True when the connection is ready for calls.
    #[cfg(test)]
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// True when the connection agreed on RESP3.
    #[allow(dead_code)]
    pub fn is_resp3(&self) -> bool {
        self.resp3
    }

    /// True when no caller is waiting for anything: no call still has a caller to answer
    /// within its deadline (see [`Queue::has_live_callers`]: calls that timed out or whose
    /// caller is gone do not count, whatever the server does) and nobody awaits a connect or
    /// a disconnect.
    pub fn is_quiet(&self, now: Instant) -> bool {
        !self.queue.has_live_callers(now)
            && self.connect_waiters.iter().all(|w| w.is_closed())
            && self.disconnect_waiters.iter().all(|w| w.is_closed())
    }

    /// How many calls are queued, written or not (for tests and diagnostics).
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// When the transport must call [`Core::on_timer`] at the latest.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        let attempt_deadline = match self.state {
            State::Backoff { until } => Some(until),
            State::Connecting | State::Handshaking(_) => self.attempt_deadline(),
            State::Ready => self.health_deadline(),
            _ => None,
        };
        match (attempt_deadline, self.queue.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ----- events from the transport ---------------------------------------------------------

    /// Time has passed: fail calls past their deadline, give up connecting when it takes too
    /// long, and close a connection whose server has stopped answering (the liveness rule,
    /// [`Config::max_silent_timeouts`]).
    pub fn on_timer(&mut self, now: Instant) {
        loop {
            let addr = &self.addr;
            // A call still waiting for the connection was never sent: not a reply timeout.
            let Some(expired) = self.queue.expire_one(now, || {
                Error::connection(format!(
                    "not connected to {addr} before the call's timeout; the request was not sent"
                ))
            }) else {
                break;
            };
            if expired != Expired::Written || !matches!(self.state, State::Ready) {
                continue;
            }
            self.silent_timeouts += 1;
            if let Some(max) = self.max_silent_timeouts {
                if self.silent_timeouts >= max {
                    // The calls still in flight fail with this reason, not a timeout: the
                    // connection is what failed them.
                    let reason = Error::connection(format!(
                        "the server stopped answering: {max} calls in a row timed out with \
                         nothing received; the connection was closed"
                    ));
                    self.set_state(State::Closing { reason });
                    break;
                }
            }
        }
        self.check_health(now);
        if let (State::Connecting | State::Handshaking(_), Some(deadline)) =
            (&self.state, self.attempt_deadline())
        {
            if now >= deadline {
                let stage = match self.state {
                    State::Connecting => "the server did not accept the connection",
                    _ => "the server did not answer the handshake",
                };
                let err = self.connect_failed(Some(Error::connection(stage)));
                self.give_up(err.clone());
                self.set_state(State::Closing { reason: err });
            }
        }
    }

    /// The error for the calls that waited the whole connect timeout: it names the address and
    /// the limit, says why the last attempt failed, and keeps that attempt's cause.
    fn connect_failed(&self, last: Option<Error>) -> Error {
        let head = format!(
            "could not connect within {} to {}",
            fmt_duration(self.connect_timeout),
            self.addr
        );
        match last {
            Some(Error::Connection {
                source: Some(io), ..
            }) => Error::Connection {
                message: format!("{head}: {io}"),
                source: Some(io),
            },
            Some(Error::Connection { message, .. }) => {
                Error::connection(format!("{head}: {message}"))
            }
            Some(other) => Error::connection(format!("{head}: {other}")),
            None => Error::connection(head),
        }
    }

    /// When the health check next has something to do: give up on the `PING` in flight, or
    /// send one on a connection idle since `last_received`.
    fn health_deadline(&self) -> Option<Instant> {
        let interval = self.health_check?;
        match self.probe_sent {
            Some(sent) => Some(sent + interval),
            None if self.queue.only_own_inflight() => Some(self.last_received + interval),
            None => None,
        }
    }

    /// The health check ([`Config::health_check`]) on a ready connection.
    fn check_health(&mut self, now: Instant) {
        let (Some(interval), State::Ready) = (self.health_check, &self.state) else {
            return;
        };
        match self.probe_sent {
            Some(sent) if now >= sent + interval => {
                let reason = Error::connection(format!(
                    "the server stopped answering: the health-check PING got nothing back \
                     within {interval:?}; the connection was closed"
                ));
                self.set_state(State::Closing { reason });
            }
            Some(_) => {}
            None if self.queue.only_own_inflight() && now >= self.last_received + interval => {
                // Id 0 like the connection's other own entries, behind only such entries, so
                // the ids stay in order. Its reply is read and dropped; any byte clears the
                // probe.
                self.write_cmd(&Cmd::new("PING"));
                self.queue.push_inflight(0, Sink::Discard, None, 1, false);
                self.probe_sent = Some(now);
            }
            None => {}
        }
    }

    /// The transport starts opening a connection.
    pub fn on_opening(&mut self) {
        // The transport opens when the backoff ends: that is when the attempt starts.
        if let State::Backoff { until } = self.state {
            self.attempt_since = Some(until);
        }
        self.set_state(State::Connecting);
        self.silent_timeouts = 0;
        self.probe_sent = None;
        self.parser.reset();
        self.input.clear();
        self.output.clear();
    }

    /// The socket is up: the handshake goes out (or, with nothing to say, calls do).
    pub fn on_open(&mut self, now: Instant) {
        self.last_received = now;
        self.probe_sent = None;
        let (hs, cmds) = Handshake::start(&self.creds);
        for (cmd, step) in cmds {
            self.write_cmd(&cmd);
            self.queue.push_internal(step);
        }
        if hs.is_done() {
            let resp3 = hs.resp3();
            self.become_ready(resp3);
        } else {
            self.set_state(State::Handshaking(hs));
        }
    }

    /// The socket is gone: it failed to open, the server closed it, an I/O error broke it, or
    /// the core asked for it ([`Want::Close`]). Calls in flight fail; calls waiting for a
    /// connection get another attempt after a backoff, until the connect timeout.
    pub fn on_closed(&mut self, err: Error, now: Instant) {
        let reason = match std::mem::replace(&mut self.state, State::Idle) {
            State::Closing { reason } => reason,
            _ => err.clone(),
        };
        // Before any call hears of the loss.
        self.connected.store(false, Ordering::Release);
        self.queue.fail_inflight(&reason);
        self.parser.reset();
        self.input.clear();
        self.output.clear();
        self.resp3 = false;
        if std::mem::take(&mut self.tracking_pushes) {
            // The server forgot what it tracked for this connection: a key read before and
            // changed from now on is never invalidated. Tell the handler to drop everything,
            // with the push servers send for that themselves (after FLUSHALL).
            self.push(Value::Push(vec![
                Value::Bulk(Bytes::from_static(b"invalidate")),
                Value::Nil,
            ]));
        }
        for done in self.disconnect_waiters.drain(..) {
            let _ = done.send(());
        }
        self.attempt_since = None;
        let anyone_waiting = !self.queue.waiting.is_empty() || !self.connect_waiters.is_empty();
        let subscribed = self.reconnects_by_itself();
        if let Some(pubsub) = &self.pubsub {
            if subscribed {
                pubsub.inbox.lost(&reason);
            }
        }
        if !anyone_waiting && !subscribed {
            self.attempts_since = None;
            return;
        }
        let since = *self.attempts_since.get_or_insert(now);
        self.last_error = Some(err);
        if now >= since + self.connect_timeout {
            // The run is over: what waits for it fails (see `give_up`)...
            if anyone_waiting {
                let last = self.last_error.take();
                self.give_up(self.connect_failed(last));
            }
            // ... and a subscriber holding subscriptions starts another, for as long as it lives.
            if !subscribed {
                self.set_state(State::Idle);
                return;
            }
            self.attempts_since = Some(now);
        }
        let until = now + self.backoff.next_delay();
        self.set_state(State::Backoff { until });
    }

    /// Fails everything waiting for a connection and ends the run of attempts. A subscriber
    /// holding subscriptions goes on reconnecting: there a call with a deadline of its own (the
    /// command timeout) waits for the reconnect until then.
    fn give_up(&mut self, err: Error) {
        if self.reconnects_by_itself() {
            self.queue.fail_waiting_without_deadline(&err);
        } else {
            self.queue.fail_waiting(&err);
        }
        self.fail_connect_waiters(&err);
        self.attempts_since = None;
    }

    fn fail_connect_waiters(&mut self, err: &Error) {
        for done in self.connect_waiters.drain(..) {
            let _ = done.send(Err(err.clone()));
        }
    }

    fn become_ready(&mut self, resp3: bool) {
        self.set_state(State::Ready);
        self.resp3 = resp3;
        self.tracking_pushes = resp3 && self.creds.tracking.is_some();
        self.backoff.reset();
        self.attempts_since = None;
        self.attempt_since = None;
        self.last_error = None;
        if let Some(pubsub) = &self.pubsub {
            pubsub.inbox.restored();
            for (cmd, confirmations, held) in pubsub.subs.restore() {
                self.write_cmd(&cmd);
                self.queue
                    .push_subscribe(0, Sink::Discard, None, confirmations, held);
            }
        }
        while let Some((id, req)) = self.queue.waiting.pop_front() {
            self.write_request(id, req);
        }
        for done in self.connect_waiters.drain(..) {
            let _ = done.send(Ok(true));
        }
    }

    /// Parses what [`Core::input`] holds and hands each reply to its call. An error means the
    /// stream is broken; the transport must close the connection and report it with
    /// [`Core::on_closed`] (the error is the reason to pass).
    pub fn on_input(&mut self, now: Instant) -> Result<()> {
        if !self.input.is_empty() {
            // The server is alive, however slow.
            self.silent_timeouts = 0;
            self.last_received = now;
            self.probe_sent = None;
        }
        while let Some(value) = self.parser.parse(&mut self.input)? {
            self.dispatch(value, now)?;
        }
        Ok(())
    }

    fn dispatch(&mut self, value: Value, now: Instant) -> Result<()> {
        let value = match &self.pubsub {
            Some(pubsub) => match classify(value) {
                Frame::Message(m) => {
                    pubsub.inbox.message(m);
                    return Ok(());
                }
                // A confirmation is the reply to the (un)subscribe that asked for it.
                Frame::Confirmation(v) => Value::Array(match v {
                    Value::Push(items) | Value::Array(items) => items,
                    other => vec![other],
                }),
                Frame::Other(v) => v,
            },
            None => value,
        };
        if let Value::Push(_) = value {
            self.push(value);
            return Ok(());
        }
        let Some(entry) = self.queue.inflight.front_mut() else {
            return Err(Error::protocol(format!(
                "the server sent a reply no call was waiting for: {}",
                value.describe()
            )));
        };
        if let (Value::Error(_), Some(_)) = (&value, &entry.subscribe) {
            self.on_refused_subscribe(value);
            return Ok(());
        }
        entry.left -= 1;
        let value = match &mut entry.collected {
            Some(replies) => {
                replies.push(value);
                if entry.left > 0 {
                    return Ok(());
                }
                None
            }
            None => Some(value),
        };
        let Some(entry) = self.queue.inflight.pop_front() else {
            return Ok(());
        };
        // Several commands: one array of their replies, errors included in place. One command:
        // its reply, or the server's error as the call's error.
        let result = match (value, entry.collected) {
            (Some(Value::Error(e)), _) => Err(e.into()),
            (Some(v), _) => Ok(v),
            (None, replies) => Ok(Value::Array(replies.unwrap_or_default())),
        };
        match entry.sink {
            Sink::Internal(step) => self.on_handshake_reply(step, result, now),
            sink => sink.deliver(result),
        }
        Ok(())
    }

    /// The server refused a subscribe (an ACL `NOPERM`, say): one error instead of a
    /// confirmation per name. The call fails with it and the names it would have added are not
    /// held; when it was the restore after a reconnect, the reader hears of it.
    fn on_refused_subscribe(&mut self, error: Value) {
        let Some(entry) = self.queue.inflight.pop_front() else {
            return;
        };
        let Value::Error(e) = error else { return };
        if let (Some(pubsub), Some((kind, names))) = (&mut self.pubsub, entry.subscribe) {
            pubsub.subs.forget(kind, &names);
            if entry.id == 0 {
                let names: Vec<_> = names.iter().map(|n| String::from_utf8_lossy(n)).collect();
                pubsub.inbox.report(Error::Server {
                    kind: e.kind.clone(),
                    message: format!(
                        "{} (restoring {} {} after a reconnect: no longer subscribed)",
                        e.message,
                        kind.subscribe(),
                        names.join(" ")
                    ),
                });
            }
        }
        entry.sink.deliver(Err(e.into()));
    }

    fn on_handshake_reply(&mut self, step: Step, result: Result<Value>, _now: Instant) {
        let State::Handshaking(hs) = &mut self.state else {
            return;
        };
        match hs.on_reply(step, result, &self.creds) {
            Outcome::Continue => {}
            Outcome::Send(cmds) => {
                for (cmd, step) in cmds {
                    self.write_cmd(&cmd);
                    self.queue.push_internal(step);
                }
            }
            Outcome::Done { resp3 } => self.become_ready(resp3),
            Outcome::Fail(err) => {
                // The server refused us: every call waiting for the connection hears why.
                self.queue.fail_waiting(&err);
                self.give_up(err.clone());
                self.set_state(State::Closing { reason: err });
            }
        }
    }
}

/// `500 ms`, `5 s`, `1500 ms`: a duration as people write a limit.
fn fmt_duration(d: Duration) -> String {
    if d >= Duration::from_secs(1) && d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else if d >= Duration::from_millis(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{d:?}")
    }
}

#[cfg(test)]
mod tests {
    //! The core driven by hand: events and bytes in, bytes and replies out. No sockets.

    use super::*;
    use crate::config::Protocol;
    use crate::{cmd, Config};
    use tokio::sync::oneshot::error::TryRecvError;

    type Rx = oneshot::Receiver<Result<Value>>;

    fn config() -> Config {
        Config::new()
            .protocol(Protocol::Resp2)
            .connect_timeout(Duration::from_secs(5))
            .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(40))
    }

    fn call(core: &mut Core, c: Cmd, now: Instant, timeout: Option<Duration>) -> Rx {
        let (tx, rx) = oneshot::channel();
        core.submit(
            Request {
                payload: Payload::One(c),
                sink: Sink::Oneshot(tx),
                deadline: timeout.map(|t| now + t),
            },
            now,
        );
        rx
    }

    fn output(core: &mut Core) -> String {
        let mut all = Vec::new();
        while let Some(b) = core.take_output() {
            all.extend_from_slice(&b);
        }
        String::from_utf8_lossy(&all).into_owned()
    }

    fn feed(core: &mut Core, bytes: &[u8], now: Instant) -> Result<()> {
        core.input().extend_from_slice(bytes);
        core.on_input(now)
    }

    fn got(rx: &mut Rx) -> Result<Value> {
        match rx.try_recv() {
            Ok(r) => r,
            Err(TryRecvError::Empty) => panic!("no reply delivered yet"),
            Err(TryRecvError::Closed) => panic!("sink dropped without a reply"),
        }
    }

    fn pending(rx: &mut Rx) -> bool {
        matches!(rx.try_recv(), Err(TryRecvError::Empty))
    }

    /// A core connected (RESP2, no handshake) at `now`.
    fn ready(cfg: Config, now: Instant) -> Core {
        let mut core = Core::new(&cfg);
        let (tx, mut rx) = oneshot::channel();
        core.connect(tx, now);
        assert_eq!(core.want(now), Want::Open);
        core.on_opening();
        core.on_open(now);
        assert!(core.is_connected());
        assert!(matches!(rx.try_recv(), Ok(Ok(true))));
        core
    }

    fn subscriber(cfg: &Config) -> (Core, crate::conn::InboxRx) {
        let mut core = Core::new(cfg);
        let (tx, rx) = crate::conn::inbox(crate::conn::DEFAULT_QUEUE_LIMIT);
        core.make_subscriber(tx);
        (core, rx)
    }

    fn subscribe(core: &mut Core, name: &str, now: Instant, timeout: Option<Duration>) -> Rx {
        let (tx, rx) = oneshot::channel();
        core.submit(
            Request {
                payload: Payload::Subscribe {
                    kind: crate::conn::SubKind::Channel,
                    subscribe: true,
                    names: vec![Bytes::copy_from_slice(name.as_bytes())],
                },
                sink: Sink::Oneshot(tx),
                deadline: timeout.map(|t| now + t),
            },
            now,
        );
        rx
    }

    fn next_event(inbox: &crate::conn::InboxRx) -> Option<Result<crate::conn::Message>> {
        let waker = std::task::Waker::noop();
        match inbox.poll_next(&mut std::task::Context::from_waker(waker)) {
            std::task::Poll::Ready(item) => item,
            std::task::Poll::Pending => None,
        }
    }

    const HELLO_REPLY: &[u8] = b"%1\r\n+proto\r\n:3\r\n";

    /// Issue #11: with RESP3 (a handshake to wait for) and a connect timeout no longer than the
    /// backoff cap, a subscriber whose server was down for longer than the connect timeout never
    /// came back: every later attempt was cut off the moment it started, because attempts were
    /// timed from the start of the whole run.
    #[test]
    fn a_subscriber_reconnects_whatever_the_connect_timeout() {
        let t0 = Instant::now();
        let cfg = Config::new()
            .protocol(Protocol::Resp3)
            .connect_timeout(Duration::from_secs(1));
        let (mut core, inbox) = subscriber(&cfg);
        let mut first = subscribe(&mut core, "news", t0, Some(Duration::from_secs(10)));
        core.on_opening();
        core.on_open(t0);
        feed(&mut core, HELLO_REPLY, t0).unwrap();
        assert!(output(&mut core).ends_with("*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n"));
        feed(&mut core, b">3\r\n+subscribe\r\n+news\r\n:1\r\n", t0).unwrap();
        assert!(got(&mut first).is_ok());

        // The server goes away for 2 s: attempts are refused at once.
        core.on_closed(Error::connection("connection reset"), t0);
        let lost = next_event(&inbox)
            .expect("the loss is reported")
            .unwrap_err();
        assert!(
            lost.is_connection() && lost.to_string().contains("reset"),
            "{lost}"
        );
        let mut now = t0;
        let mut during = None;
        let back = t0 + Duration::from_secs(2);
        while now < back {
            if during.is_none() && now >= t0 + Duration::from_millis(500) {
                // A subscribe made while it is down waits for the reconnect.
                during = Some(subscribe(
                    &mut core,
                    "more",
                    now,
                    Some(Duration::from_secs(10)),
                ));
            }
            core.on_timer(now);
            if core.want(now) == Want::Open {
                core.on_opening();
                core.on_closed(Error::connection("connection refused"), now);
            }
            let at = core.next_deadline().expect("it keeps retrying");
            assert!(at - now <= Duration::from_secs(1), "the backoff is capped");
            now = at;
        }
        let mut during = during.expect("made while down");
        assert!(
            pending(&mut during),
            "still waiting, within its own timeout"
        );
        assert!(next_event(&inbox).is_none(), "one report per loss");

        // The server is back: the handshake gets its full connect timeout.
        core.on_timer(now);
        assert_eq!(core.want(now), Want::Open);
        core.on_opening();
        core.on_open(now);
        assert!(output(&mut core).contains("HELLO"));
        let later = now + Duration::from_millis(900);
        core.on_timer(later);
        assert_eq!(
            core.want(later),
            Want::Nothing,
            "the handshake is not cut off"
        );
        feed(&mut core, HELLO_REPLY, later).unwrap();
        assert!(core.is_connected());
        assert_eq!(
            output(&mut core),
            "*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nmore\r\n",
            "restored, then the waiting call"
        );
        feed(
            &mut core,
            b">3\r\n+subscribe\r\n+news\r\n:1\r\n>3\r\n+subscribe\r\n+more\r\n:2\r\n",
            later,
        )
        .unwrap();
        assert!(got(&mut during).is_ok());
        feed(
            &mut core,
            b">3\r\n+message\r\n+news\r\n$5\r\nafter\r\n",
            later,
        )
        .unwrap();
        let m = next_event(&inbox).expect("a message").unwrap();
        assert_eq!(m.payload_str(), Some("after"));
    }

    #[test]
    fn a_stalled_reconnect_attempt_of_a_subscriber_gets_its_own_connect_timeout() {
        let t0 = Instant::now();
        let cfg = config().connect_timeout(Duration::from_millis(100));
        let (mut core, inbox) = subscriber(&cfg);
        let mut rx = subscribe(&mut core, "news", t0, None);
        core.on_opening();
        core.on_open(t0);
        feed(
            &mut core,
            b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n",
            t0,
        )
        .unwrap();
        assert!(got(&mut rx).is_ok());
        core.on_closed(Error::connection("reset"), t0);
        assert!(next_event(&inbox).is_some_and(|e| e.is_err()));
        // Refused for 250 ms, then an attempt that hangs.
        let mut now = t0;
        let mut undated = None;
        while now < t0 + Duration::from_millis(250) {
            if undated.is_none() {
                undated = Some(subscribe(&mut core, "x", now, None));
            }
            if core.want(now) == Want::Open {
                core.on_opening();
                core.on_closed(Error::connection("refused"), now);
            }
            now = core.next_deadline().unwrap();
        }
        let err = got(undated.as_mut().unwrap()).unwrap_err();
        assert!(
            err.is_connection() && err.to_string().contains("could not connect"),
            "a call with no deadline of its own fails when the run ends: {err}"
        );
        assert_eq!(core.want(now), Want::Open);
        core.on_opening();
        let started = now;
        assert_eq!(
            core.next_deadline(),
            Some(started + Duration::from_millis(100))
        );
        core.on_timer(started + Duration::from_millis(99));
        assert_eq!(core.want(now), Want::Nothing);
        core.on_timer(started + Duration::from_millis(100));
        assert_eq!(core.want(now), Want::Close);
        core.on_closed(
            Error::connection("closed"),
            started + Duration::from_millis(100),
        );
        assert!(core.next_deadline().is_some(), "and it tries again");
        assert!(
            next_event(&inbox).is_none(),
            "still one report for the one loss"
        );
    }

    #[test]
    fn a_refused_subscribe_fails_alone_and_is_not_held() {
        let now = Instant::now();
        let (mut core, inbox) = subscriber(&config());
        let mut ok = subscribe(&mut core, "a", now, None);
        core.on_opening();
        core.on_open(now);
        feed(
            &mut core,
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n",
            now,
        )
        .unwrap();
        assert!(got(&mut ok).is_ok());
        // `SUBSCRIBE a secret` refused as a whole (ACL): one error, not two confirmations.
        let (tx, mut refused) = oneshot::channel();
        core.submit(
            Request {
                payload: Payload::Subscribe {
                    kind: crate::conn::SubKind::Channel,
                    subscribe: true,
                    names: vec!["a".into(), "secret".into()],
                },
                sink: Sink::Oneshot(tx),
                deadline: None,
            },
            now,
        );
        let mut ping = call(&mut core, cmd!("PING"), now, None);
        output(&mut core);
        feed(
            &mut core,
            b"-NOPERM no\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n",
            now,
        )
        .unwrap();
        assert_eq!(got(&mut refused).unwrap_err().server_kind(), Some("NOPERM"));
        assert!(
            got(&mut ping).is_ok(),
            "the next reply reaches its own caller"
        );
        // After a reconnect only `a` is restored (it was held before the refusal).
        core.on_closed(Error::connection("reset"), now);
        assert!(next_event(&inbox).is_some_and(|e| e.is_err()));
        core.on_opening();
        core.on_open(now);
        assert_eq!(output(&mut core), "*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n");
        // Refused on restore too (the ACL changed): the reader hears of it, nothing is held.
        feed(&mut core, b"-NOPERM no\r\n", now).unwrap();
        let err = next_event(&inbox).expect("reported").unwrap_err();
        assert_eq!(err.server_kind(), Some("NOPERM"), "{err}");
        assert!(err.to_string().contains("SUBSCRIBE a"), "{err}");
        core.on_closed(Error::connection("reset"), now);
        assert_eq!(core.want(now), Want::Nothing, "nothing left to restore");
    }

    #[test]
    fn first_call_connects_and_waits_for_the_socket() {
        let now = Instant::now();
        let mut core = Core::new(&config());
        assert_eq!(core.want(now), Want::Nothing);
        let mut rx = call(&mut core, cmd!("PING"), now, None);
        assert_eq!(core.want(now), Want::Open);
        core.on_opening();
        assert_eq!(
            output(&mut core),
            "",
            "nothing goes out before the socket is up"
        );
        core.on_open(now);
        assert_eq!(output(&mut core), "*1\r\n$4\r\nPING\r\n");
        feed(&mut core, b"+PONG\r\n", now).unwrap();
        assert_eq!(got(&mut rx).unwrap(), Value::Simple("PONG".into()));
    }

    #[test]
    fn replies_go_to_callers_in_order_across_any_split() {
        let now = Instant::now();
        let mut core = ready(config(), now);
        let mut rxs: Vec<Rx> = (0..3)
            .map(|i| call(&mut core, cmd!("GET", i), now, None))
            .collect();
        assert_eq!(
            output(&mut core),
            "*2\r\n$3\r\nGET\r\n$1\r\n0\r\n*2\r\n$3\r\nGET\r\n$1\r\n1\r\n*2\r\n$3\r\nGET\r\n$1\r\n2\r\n",
            "queued calls leave in one write"
        );
        let replies = b"$1\r\na\r\n-ERR boom\r\n$-1\r\n";
        for &byte in replies.iter() {
            feed(&mut core, &[byte], now).unwrap();
        }
        assert_eq!(got(&mut rxs[0]).unwrap(), Value::Bulk("a".into()));
        assert_eq!(got(&mut rxs[1]).unwrap_err().server_kind(), Some("ERR"));
        assert_eq!(got(&mut rxs[2]).unwrap(), Value::Nil);
    }

    #[test]
    fn several_commands_reply_as_one_array_with_errors_in_place() {
        let now = Instant::now();
        let mut core = ready(config(), now);
        let (tx, mut rx) = oneshot::channel();
        let payload = Payload::batch(&[cmd!("INCR", "n"), cmd!("LPOP", "n"), cmd!("GET", "n")]);
        core.submit(
            Request {
                payload,
                sink: Sink::Oneshot(tx),
                deadline: None,
            },
            now,
        );
        let mut single = call(&mut core, cmd!("PING"), now, None);
        feed(
            &mut core,
            b":1\r\n-WRONGTYPE no\r\n$1\r\n1\r\n+PONG\r\n",
            now,
        )
        .unwrap();
        let Value::Array(items) = got(&mut rx).unwrap() else {
            panic!()
        };
        assert_eq!(items.len(), 3);
        assert!(matches!(&items[1], Value::Error(e) if e.kind == "WRONGTYPE"));
        assert_eq!(got(&mut single).unwrap(), Value::Simple("PONG".into()));
        // A batch of one is still an array.
        let (tx, mut rx) = oneshot::channel();
        core.submit(
            Request {
                payload: Payload::batch(&[cmd!("PING")]),
                sink: Sink::Oneshot(tx),
                deadline: None,
            },
            now,
        );
        feed(&mut core, b"+PONG\r\n", now).unwrap();
        assert_eq!(
            got(&mut rx).unwrap(),
            Value::Array(vec![Value::Simple("PONG".into())])
        );
    }

    #[test]
    fn a_timed_out_call_fails_and_its_late_reply_is_discarded() {
        let t0 = Instant::now();
        let mut core = ready(config(), t0);
        let mut slow = call(
            &mut core,
            cmd!("GET", "slow"),
            t0,
            Some(Duration::from_millis(100)),
        );
        let mut next = call(
            &mut core,
            cmd!("GET", "next"),
            t0,
            Some(Duration::from_secs(10)),
        );
        assert_eq!(core.next_deadline(), Some(t0 + Duration::from_millis(100)));
        core.on_timer(t0 + Duration::from_millis(99));
        assert!(pending(&mut slow));
        core.on_timer(t0 + Duration::from_millis(100));
        assert_eq!(got(&mut slow).unwrap_err(), Error::Timeout);
        assert_eq!(core.next_deadline(), Some(t0 + Duration::from_secs(10)));
        // The late reply to `slow` arrives first and must not reach `next`.
        feed(&mut core, b"$4\r\nlate\r\n$4\r\nmine\r\n", t0).unwrap();
        assert_eq!(got(&mut next).unwrap(), Value::Bulk("mine".into()));
    }

    #[test]
    fn a_dropped_caller_loses_nothing_for_others() {
        let now = Instant::now();
        let mut core = ready(config(), now);
        let gone = call(&mut core, cmd!("GET", "a"), now, None);
        drop(gone);
        let mut kept = call(&mut core, cmd!("GET", "b"), now, None);
        feed(&mut core, b"$1\r\na\r\n$1\r\nb\r\n", now).unwrap();
        assert_eq!(got(&mut kept).unwrap(), Value::Bulk("b".into()));
    }

    #[test]
    fn the_deadline_heap_stays_proportional_to_live_calls() {
        let now = Instant::now();
        let mut core = ready(config(), now);
        for _ in 0..10_000 {
            let mut rx = call(&mut core, cmd!("PING"), now, Some(Duration::from_secs(30)));
            feed(&mut core, b"+PONG\r\n", now).unwrap();
            got(&mut rx).unwrap();
            core.next_deadline();
        }
        assert!(
            core.queue.timer_count() <= 64,
            "{} stale timers kept",
            core.queue.timer_count()
        );
    }

    #[test]
    fn losing_the_connection_fails_calls_in_flight_and_the_next_call_reconnects() {
        let t0 = Instant::now();
        let mut core = ready(config(), t0);
        let mut a = call(&mut core, cmd!("GET", "a"), t0, None);
        let mut b = call(&mut core, cmd!("GET", "b"), t0, None);
        output(&mut core);
        feed(&mut core, b"$1\r\na\r\n$5\r\nhal", t0).unwrap();
        core.on_closed(Error::connection("connection reset"), t0);
        assert_eq!(got(&mut a).unwrap(), Value::Bulk("a".into()));
        assert!(got(&mut b).unwrap_err().is_connection());
        assert!(!core.is_connected());
        assert_eq!(
            core.want(t0),
            Want::Nothing,
            "no reconnect until a call needs it"
        );
        let mut c = call(&mut core, cmd!("GET", "c"), t0, None);
        assert_eq!(core.want(t0), Want::Open);
        core.on_opening();
        core.on_open(t0);
        assert_eq!(
            output(&mut core),
            "*2\r\n$3\r\nGET\r\n$1\r\nc\r\n",
            "the half reply is forgotten"
        );
        feed(&mut core, b"$1\r\nc\r\n", t0).unwrap();
        assert_eq!(got(&mut c).unwrap(), Value::Bulk("c".into()));
    }

    #[test]
    fn failed_connects_back_off_exponentially_until_the_connect_timeout() {
        let t0 = Instant::now();
        let cfg = config().connect_timeout(Duration::from_millis(100));
        let mut core = Core::new(&cfg);
        let mut rx = call(&mut core, cmd!("PING"), t0, None);
        let mut now = t0;
        let mut delays = Vec::new();
        loop {
            assert_eq!(core.want(now), Want::Open);
            core.on_opening();
            core.on_closed(Error::connection("connection refused"), now);
            match core.next_deadline() {
                Some(at) => {
                    delays.push((at - now).as_millis());
                    assert_eq!(
                        core.want(now),
                        Want::Nothing,
                        "no retry before the backoff ends"
                    );
                    now = at;
                }
                None => break,
            }
        }
        let window = |i: usize| if i == 0 { 10..=20 } else { 20..=40 };
        assert!(
            delays.len() >= 3
                && delays
                    .iter()
                    .enumerate()
                    .all(|(i, d)| window(i).contains(d)),
            "{delays:?}"
        );
        let err = got(&mut rx).unwrap_err();
        assert!(err.is_connection(), "{err}");
        assert!(err.to_string().contains("connection refused"), "{err}");
    }

    #[test]
    fn a_stalled_connect_times_out() {
        let t0 = Instant::now();
        let cfg = config().connect_timeout(Duration::from_millis(50));
        let mut core = Core::new(&cfg);
        let mut rx = call(&mut core, cmd!("PING"), t0, None);
        core.on_opening();
        assert_eq!(core.next_deadline(), Some(t0 + Duration::from_millis(50)));
        core.on_timer(t0 + Duration::from_millis(50));
        let err = got(&mut rx).unwrap_err();
        assert_eq!(
            err.to_string(),
            "connection error: could not connect within 50 ms to 127.0.0.1:6379: \
             the server did not accept the connection"
        );
        assert_eq!(core.want(t0), Want::Close);
        core.on_closed(Error::connection("closed"), t0);
        assert_eq!(core.want(t0), Want::Nothing);

        // Accepted, but the handshake gets no answer: a connection error too, never a timeout.
        let cfg = Config::new()
            .password("pw")
            .connect_timeout(Duration::from_millis(50));
        let mut core = Core::new(&cfg);
        let (tx, mut done) = oneshot::channel();
        core.connect(tx, t0);
        core.on_opening();
        core.on_open(t0);
        core.on_timer(t0 + Duration::from_millis(50));
        let err = done.try_recv().unwrap().unwrap_err();
        assert!(err.is_connection(), "{err}");
        assert!(
            err.to_string().ends_with(
                "within 50 ms to 127.0.0.1:6379: the server did not answer the handshake"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_call_waiting_for_the_connection_past_its_deadline_is_a_connection_error() {
        let t0 = Instant::now();
        let mut core = Core::new(&config());
        let mut rx = call(&mut core, cmd!("PING"), t0, Some(Duration::from_millis(20)));
        core.on_opening();
        core.on_timer(t0 + Duration::from_millis(20));
        let err = got(&mut rx).unwrap_err();
        assert!(err.is_connection(), "{err}");
        assert!(err.to_string().contains("was not sent"), "{err}");
    }

    #[test]
    fn giving_up_keeps_the_last_cause_and_says_each_thing_once() {
        let t0 = Instant::now();
        let cfg = config().connect_timeout(Duration::from_millis(10));
        let mut core = Core::new(&cfg);
        let mut rx = call(&mut core, cmd!("PING"), t0, None);
        let refused = || {
            let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
            Error::connection_io(format!("connect to 127.0.0.1:6379: {io}"), io)
        };
        core.on_opening();
        core.on_closed(refused(), t0);
        let at = core.next_deadline().unwrap();
        core.on_opening();
        core.on_closed(refused(), at.max(t0 + Duration::from_millis(10)));
        let err = got(&mut rx).unwrap_err();
        assert_eq!(
            err.to_string(),
            "connection error: could not connect within 10 ms to 127.0.0.1:6379: connection refused"
        );
        assert_eq!(
            err.io_error().map(|e| e.kind()),
            Some(std::io::ErrorKind::ConnectionRefused)
        );
        let source = std::error::Error::source(&err).expect("a source");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
    }

    #[test]
    fn without_autoconnect_calls_fail_fast_until_connect() {
        let now = Instant::now();
        let mut core = Core::new(&config().autoconnect(false));
        let mut rx = call(&mut core, cmd!("PING"), now, None);
        assert!(got(&mut rx).unwrap_err().is_connection());
        assert_eq!(core.want(now), Want::Nothing);
        let (tx, mut done) = oneshot::channel();
        core.connect(tx, now);
        let mut during = call(&mut core, cmd!("PING"), now, None);
        core.on_opening();
        core.on_open(now);
        assert!(matches!(done.try_recv(), Ok(Ok(true))));
        feed(&mut core, b"+PONG\r\n", now).unwrap();
        assert!(
            got(&mut during).is_ok(),
            "a call made while connect() runs waits for it"
        );
        core.on_closed(Error::connection("reset"), now);
        let mut after = call(&mut core, cmd!("PING"), now, None);
        assert!(got(&mut after).unwrap_err().is_connection());
    }

    #[test]
    fn disconnect_fails_in_flight_calls_and_is_idempotent() {
        let now = Instant::now();
        let mut core = ready(config(), now);
        let mut a = call(&mut core, cmd!("GET", "a"), now, None);
        let (tx, mut done) = oneshot::channel();
        core.disconnect(tx);
        assert_eq!(core.want(now), Want::Close);
        core.on_closed(Error::connection("closed"), now);
        assert!(done.try_recv().is_ok());
        let err = got(&mut a).unwrap_err();
        assert!(
            err.to_string().contains("disconnected by the client"),
            "{err}"
        );
        let (tx, mut done) = oneshot::channel();
        core.disconnect(tx);
        assert!(
            done.try_recv().is_ok(),
            "disconnect when not connected resolves at once"
        );
        assert_eq!(core.want(now), Want::Nothing);
    }

    #[test]
    fn resp3_handshake_reapplies_auth_and_db_and_holds_calls_until_done() {
        let now = Instant::now();
        let cfg = Config::new().username("app").password("pw").db(2);
        let mut core = Core::new(&cfg);
        let mut rx = call(&mut core, cmd!("GET", "k"), now, None);
        for round in 0..2 {
            core.on_opening();
            core.on_open(now);
            assert_eq!(
                output(&mut core),
                "*5\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$3\r\napp\r\n$2\r\npw\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n",
                "round {round}"
            );
            feed(&mut core, b"%1\r\n+proto\r\n:3\r\n", now).unwrap();
            assert!(!core.is_connected());
            feed(&mut core, b"+OK\r\n", now).unwrap();
            assert!(core.is_connected() && core.is_resp3());
            if round == 0 {
                assert_eq!(output(&mut core), "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
                core.on_closed(Error::connection("reset"), now);
                assert!(got(&mut rx).unwrap_err().is_connection());
                rx = call(&mut core, cmd!("GET", "k"), now, None);
            }
        }
    }

    #[test]
    fn a_server_without_hello_gets_resp2() {
        let now = Instant::now();
        let mut core = Core::new(&Config::new().password("pw"));
        let mut rx = call(&mut core, cmd!("PING"), now, None);
        core.on_opening();
        core.on_open(now);
        output(&mut core);
        feed(&mut core, b"-ERR unknown command 'HELLO'\r\n", now).unwrap();
        assert_eq!(output(&mut core), "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n");
        feed(&mut core, b"+OK\r\n", now).unwrap();
        assert!(core.is_connected() && !core.is_resp3());
        feed(&mut core, b"+PONG\r\n", now).unwrap();
        assert!(got(&mut rx).is_ok());
    }

    #[test]
    fn refused_credentials_fail_the_waiting_calls_with_the_server_error() {
        let now = Instant::now();
        let mut core = Core::new(&Config::new().password("bad"));
        let mut rx = call(&mut core, cmd!("PING"), now, None);
        core.on_opening();
        core.on_open(now);
        feed(
            &mut core,
            b"-WRONGPASS invalid username-password pair\r\n",
            now,
        )
        .unwrap();
        assert_eq!(got(&mut rx).unwrap_err().server_kind(), Some("WRONGPASS"));
        assert_eq!(core.want(now), Want::Close);
        core.on_closed(Error::connection("closed"), now);
        assert_eq!(
            core.want(now),
            Want::Nothing,
            "no retry loop on bad credentials"
        );
    }

    #[test]
    fn garbage_is_a_protocol_error_that_fails_the_calls_in_flight() {
        let now = Instant::now();
        let mut core = ready(config(), now);
        let mut a = call(&mut core, cmd!("GET", "a"), now, None);
        let err = feed(&mut core, b"@@garbage\r\n", now).unwrap_err();
        assert!(matches!(err, Error::Protocol { .. }));
        core.on_closed(err, now);
        assert!(matches!(got(&mut a).unwrap_err(), Error::Protocol { .. }));
    }

    #[test]
    fn an_unsolicited_reply_is_a_protocol_error() {
        let now = Instant::now();
        let mut core = ready(config(), now);
        let err = feed(&mut core, b"+OK\r\n", now).unwrap_err();
        assert!(err.to_string().contains("no call was waiting"), "{err}");
    }

    #[test]
    fn push_frames_never_disturb_reply_matching() {
        let now = Instant::now();
        let mut core = ready(config(), now);
        let (tx, rx) = std::sync::mpsc::channel();
        core.set_push_handler(Some(Box::new(move |v| tx.send(v).unwrap_or(()))));
        let mut a = call(&mut core, cmd!("GET", "a"), now, None);
        feed(
            &mut core,
            b">2\r\n+invalidate\r\n*1\r\n$1\r\na\r\n$1\r\nv\r\n",
            now,
        )
        .unwrap();
        assert_eq!(got(&mut a).unwrap(), Value::Bulk("v".into()));
        assert!(matches!(rx.try_recv(), Ok(Value::Push(_))));
    }

    #[test]
    fn callbacks_get_replies_and_a_panicking_one_is_contained() {
        let now = Instant::now();
        let mut core = ready(config(), now);
        let (tx, rx) = std::sync::mpsc::channel();
        let submit = |core: &mut Core, sink| {
            core.submit(
                Request {
                    payload: Payload::One(cmd!("PING")),
                    sink,
                    deadline: None,
                },
                now,
            )
        };
        submit(&mut core, Sink::Callback(Box::new(|_| panic!("user bug"))));
        submit(&mut core, Sink::Discard);
        submit(
            &mut core,
            Sink::Callback(Box::new(move |r| tx.send(r).unwrap_or(()))),
        );
        feed(&mut core, b"+A\r\n+B\r\n+C\r\n", now).unwrap();
        assert_eq!(rx.try_recv().unwrap().unwrap(), Value::Simple("C".into()));
    }

    /// The test configuration with the liveness rule at `n`.
    fn silent_rule(n: Option<u32>) -> Config {
        config().max_silent_timeouts(n)
    }

    #[test]
    fn the_liveness_rule_closes_a_silent_connection_after_n_timeouts_and_the_next_call_reconnects()
    {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut core = ready(silent_rule(Some(3)), t0);
        let mut a = call(&mut core, cmd!("GET", "a"), t0, Some(ms(100)));
        let mut b = call(&mut core, cmd!("GET", "b"), t0 + ms(10), Some(ms(100)));
        core.on_timer(t0 + ms(110));
        assert_eq!(got(&mut a).unwrap_err(), Error::Timeout);
        assert_eq!(got(&mut b).unwrap_err(), Error::Timeout);
        assert_eq!(core.want(t0 + ms(110)), Want::Nothing, "2 of 3: still up");
        let mut c = call(&mut core, cmd!("GET", "c"), t0 + ms(110), Some(ms(100)));
        let mut d = call(&mut core, cmd!("GET", "d"), t0 + ms(111), Some(ms(100)));
        let mut e = call(&mut core, cmd!("GET", "e"), t0 + ms(150), Some(ms(100)));
        // The driver wakes late: c's and d's deadlines have both passed.
        let t1 = t0 + ms(215);
        core.on_timer(t1);
        assert_eq!(got(&mut c).unwrap_err(), Error::Timeout);
        assert_eq!(
            core.want(t1),
            Want::Close,
            "the third timeout gives the server up"
        );
        core.on_closed(Error::connection("closed"), t1);
        for rx in [&mut d, &mut e] {
            let err = got(rx).unwrap_err();
            assert!(err.is_connection(), "{err}");
            assert!(err.to_string().contains("stopped answering"), "{err}");
        }
        assert!(!core.is_connected());
        assert_eq!(
            core.queue_len(),
            0,
            "nothing kept for the replies that never came"
        );
        let mut f = call(&mut core, cmd!("GET", "f"), t1, Some(ms(100)));
        assert_eq!(core.want(t1), Want::Open, "the next call reconnects");
        core.on_opening();
        core.on_open(t1);
        output(&mut core);
        feed(&mut core, b"$1\r\nf\r\n", t1).unwrap();
        assert_eq!(got(&mut f).unwrap(), Value::Bulk("f".into()));
    }

    #[test]
    fn any_byte_from_the_server_resets_the_liveness_count() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut core = ready(silent_rule(Some(2)), t0);
        let mut slow = call(&mut core, cmd!("GET", "slow"), t0, Some(ms(100)));
        let mut next = call(&mut core, cmd!("GET", "next"), t0 + ms(50), Some(ms(500)));
        core.on_timer(t0 + ms(100));
        assert_eq!(got(&mut slow).unwrap_err(), Error::Timeout);
        // The late reply (a part of it is enough) shows the server is alive.
        feed(&mut core, b"$4\r\nla", t0 + ms(200)).unwrap();
        let mut third = call(&mut core, cmd!("GET", "x"), t0 + ms(200), Some(ms(100)));
        core.on_timer(t0 + ms(300));
        assert_eq!(got(&mut third).unwrap_err(), Error::Timeout);
        assert_eq!(
            core.want(t0 + ms(300)),
            Want::Nothing,
            "1 since the last byte"
        );
        assert!(pending(&mut next));
        feed(&mut core, b"te\r\n$4\r\nmine\r\n", t0 + ms(310)).unwrap();
        assert_eq!(got(&mut next).unwrap(), Value::Bulk("mine".into()));
    }

    #[test]
    fn without_the_liveness_rule_a_silent_connection_stays_up() {
        let t0 = Instant::now();
        let mut core = ready(silent_rule(None), t0);
        for i in 0..10u64 {
            let at = t0 + Duration::from_millis(i * 10);
            let mut rx = call(&mut core, cmd!("PING"), at, Some(Duration::from_millis(5)));
            core.on_timer(at + Duration::from_millis(5));
            assert_eq!(got(&mut rx).unwrap_err(), Error::Timeout);
        }
        assert_eq!(core.want(t0 + Duration::from_secs(1)), Want::Nothing);
        assert!(core.is_connected());
    }

    #[test]
    fn fire_and_forget_calls_count_for_the_liveness_rule() {
        let t0 = Instant::now();
        let mut core = ready(silent_rule(Some(2)), t0);
        for _ in 0..2 {
            core.submit(
                Request {
                    payload: Payload::One(cmd!("INCR", "n")),
                    sink: Sink::Discard,
                    deadline: Some(t0 + Duration::from_millis(100)),
                },
                t0,
            );
        }
        assert_eq!(core.next_deadline(), Some(t0 + Duration::from_millis(100)));
        core.on_timer(t0 + Duration::from_millis(100));
        assert_eq!(core.want(t0), Want::Close);
    }

    #[test]
    fn only_live_callers_within_their_deadlines_keep_the_core_busy() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut core = ready(silent_rule(None), t0);
        assert!(core.is_quiet(t0));
        let timed_out = call(&mut core, cmd!("GET", "a"), t0, Some(ms(100)));
        let dropped = call(&mut core, cmd!("GET", "b"), t0, None);
        core.submit(
            Request {
                payload: Payload::One(cmd!("INCR", "n")),
                sink: Sink::Discard,
                deadline: Some(t0 + ms(300)),
            },
            t0,
        );
        assert!(!core.is_quiet(t0), "callers are waiting");
        drop(dropped);
        core.on_timer(t0 + ms(100));
        drop(timed_out);
        assert!(
            !core.is_quiet(t0 + ms(100)),
            "a fire-and-forget call within its deadline"
        );
        core.on_timer(t0 + ms(300));
        assert!(
            core.is_quiet(t0 + ms(300)),
            "nobody is left to answer, whatever the server does"
        );
        assert_eq!(core.queue_len(), 3, "the replies are still due on the wire");
    }

    #[test]
    fn a_panicking_push_handler_is_contained_and_stays_installed() {
        let now = Instant::now();
        let mut core = ready(config(), now);
        let (tx, rx) = std::sync::mpsc::channel();
        core.set_push_handler(Some(Box::new(move |v| {
            tx.send(v).unwrap_or(());
            panic!("user bug in a push handler");
        })));
        let mut a = call(&mut core, cmd!("GET", "a"), now, None);
        let push = b">2\r\n+invalidate\r\n*1\r\n$1\r\na\r\n";
        feed(&mut core, push, now).unwrap();
        feed(&mut core, push, now).unwrap();
        feed(&mut core, b"$1\r\nv\r\n", now).unwrap();
        assert_eq!(got(&mut a).unwrap(), Value::Bulk("v".into()));
        assert_eq!(rx.try_iter().count(), 2, "called for both pushes");
        // Replacing a handler whose drop panics is contained too.
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("user bug in a drop");
            }
        }
        let bomb = Bomb;
        core.set_push_handler(Some(Box::new(move |_| {
            let _ = &bomb;
        })));
        core.set_push_handler(None);
        assert!(core.is_connected());
    }

    #[test]
    fn an_idle_connection_is_pinged_and_given_up_when_the_ping_goes_unanswered() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut core = ready(config().health_check(Some(s(10))), t0);
        assert_eq!(core.next_deadline(), Some(t0 + s(10)));
        core.on_timer(t0 + s(9));
        assert_eq!(output(&mut core), "", "not idle long enough");
        core.on_timer(t0 + s(10));
        assert_eq!(output(&mut core), "*1\r\n$4\r\nPING\r\n");
        assert_eq!(core.next_deadline(), Some(t0 + s(20)));
        // Answered: nothing more until the connection has been idle again for the interval.
        feed(&mut core, b"+PONG\r\n", t0 + s(11)).unwrap();
        assert_eq!(core.next_deadline(), Some(t0 + s(21)));
        core.on_timer(t0 + s(21));
        assert_eq!(output(&mut core), "*1\r\n$4\r\nPING\r\n");
        // A call made meanwhile waits behind the PING; then nothing comes back at all.
        let mut a = call(&mut core, cmd!("GET", "a"), t0 + s(22), None);
        core.on_timer(t0 + s(30));
        assert_eq!(core.want(t0 + s(30)), Want::Nothing);
        core.on_timer(t0 + s(31));
        assert_eq!(core.want(t0 + s(31)), Want::Close);
        core.on_closed(Error::connection("closed"), t0 + s(31));
        let err = got(&mut a).unwrap_err();
        assert!(
            err.is_connection() && err.to_string().contains("health-check"),
            "{err}"
        );
        assert_eq!(core.queue_len(), 0);
        assert_eq!(
            core.next_deadline(),
            None,
            "no health check without a connection"
        );
    }

    #[test]
    fn no_health_ping_while_calls_await_replies_or_when_off() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut core = ready(config().health_check(Some(s(10))), t0);
        let mut slow = call(&mut core, cmd!("BLPOP", "q", 0), t0, None);
        output(&mut core);
        assert_eq!(core.next_deadline(), None);
        core.on_timer(t0 + s(100));
        assert_eq!(
            output(&mut core),
            "",
            "a blocked call is not an idle connection"
        );
        feed(&mut core, b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n", t0 + s(100)).unwrap();
        assert!(got(&mut slow).is_ok());
        assert_eq!(core.next_deadline(), Some(t0 + s(110)));
        let mut off = ready(config(), t0);
        assert_eq!(off.next_deadline(), None);
        off.on_timer(t0 + s(1000));
        assert_eq!(output(&mut off), "");
    }
}
