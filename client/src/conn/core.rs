//! The protocol state of one connection, with no I/O, no clock, no threads and no callbacks:
//! a pure state machine in the quinn-proto / rustls style. Its owner feeds it inputs (each with
//! the time `now`) and polls what comes out.
//!
//! The socket side, in the order things happen:
//!
//! 1. [`Core::want`] says [`Want::Open`]: call [`Core::handle_opening`] and start connecting;
//!    when the socket is up call [`Core::handle_open`], or [`Core::handle_closed`] if connecting
//!    failed.
//! 2. Whenever [`Core::poll_transmit`] has bytes, write them, in order.
//! 3. Bytes read from the socket go to [`Core::handle_input`]. An error from it means the stream
//!    is broken: close the socket and report [`Core::handle_closed`].
//! 4. [`Want::Close`] asks to close the socket and report [`Core::handle_closed`].
//! 5. At [`Core::poll_timeout`] at the latest, call [`Core::handle_timeout`].
//!
//! The callers' side: [`Core::submit`] with an id the caller chose, [`Core::connect`],
//! [`Core::disconnect`], [`Core::abandon`] and [`Core::make_subscriber`]. After any input, take
//! every [`Event`] from [`Core::poll_event`]: replies by id, pushes, published messages, and the
//! answers to connect and disconnect requests. The core decides when to connect, what to send
//! on connect, which reply belongs to which call, when a call has timed out and when to retry a
//! lost connection; its owner never looks at RESP.

use super::backoff::Backoff;
use super::event::Event;
use super::handshake::{Credentials, Handshake, Outcome, Step};
use super::pubsub::{classify, Frame, SubKind, Subscriptions};
use super::queue::{Expired, Owner, Payload, Queue, Request};
use crate::config::{Addr, Config};
use crate::resp::{write_command, Parser};
use crate::{Cmd, Error, Result, Value};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

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

/// The pub/sub side of a subscriber connection.
struct PubSub {
    subs: Subscriptions,
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
    /// The master name of a Sentinel-managed primary ([`Config::sentinel`]): its address is
    /// the engine's to find ([`Core::set_addr`] once known), and messages name it.
    service: Option<String>,
    /// [`Core::set_addr`] was called: `addr` is the primary's, not the configuration's.
    addr_known: bool,
    /// Why the handshake asked for the socket to close and another attempt ([`Outcome::Retry`]):
    /// the cause the calls get if the attempts run out.
    retry_reason: Option<Error>,
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
    /// The socket is up and the transport's TLS handshake under way ([`Core::handle_securing`]).
    securing: bool,
    /// The last attempt's socket, plain TCP, was closed by the server during the handshake:
    /// what a TLS port does with plain text (the hint [`Core::connect_failed`] adds).
    cut_in_handshake: bool,
    last_error: Option<Error>,
    /// What an attempt held for its address waits for ([`Core::hold`]): a call that times out
    /// meanwhile says it.
    held_for: Option<Error>,
    /// Someone asked to connect and has not been answered yet ([`Event::Connected`] or
    /// [`Event::ConnectFailed`]).
    connect_waiting: bool,
    /// Someone asked to disconnect and has not been answered yet ([`Event::Disconnected`]).
    disconnect_waiting: bool,
    resp3: bool,
    /// The ready connection has `CLIENT TRACKING` on (from the `Config`) and gets
    /// invalidations as RESP3 pushes: when it is lost, the keys the server tracked for it are
    /// forgotten, and the push handler is told to flush (see `handle_closed`).
    tracking_pushes: bool,
    pubsub: Option<PubSub>,
    /// What happened, for [`Core::poll_event`].
    events: VecDeque<Event>,
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
                readonly: config.readonly,
                tracking: config.tracking.as_ref().map(|t| t.cmd()),
                cache: false,
                verify_role: config.sentinel.as_ref().map(|s| {
                    if s.for_replica {
                        super::Role::Replica
                    } else {
                        super::Role::Primary
                    }
                }),
            },
            autoconnect: config.autoconnect,
            connect_timeout: config.connect_timeout,
            max_silent_timeouts: config.max_silent_timeouts,
            silent_timeouts: 0,
            securing: false,
            cut_in_handshake: false,
            health_check: config.health_check,
            last_received: Instant::now(),
            probe_sent: None,
            addr: config.addr.clone(),
            service: config.sentinel.as_ref().map(|s| {
                if s.for_replica {
                    format!("{} (a replica, for reads)", s.master)
                } else {
                    s.master.clone()
                }
            }),
            addr_known: false,
            retry_reason: None,
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
            held_for: None,
            connect_waiting: false,
            disconnect_waiting: false,
            resp3: false,
            tracking_pushes: false,
            pubsub: None,
            events: VecDeque::new(),
        }
    }

    fn set_state(&mut self, state: State) {
        self.state = state;
    }

    /// This connection keeps a client-side cache true: its handshake turns tracking on with
    /// `tracking` (the cache's `CLIENT TRACKING ON …`) on every (re)connect, and refuses a
    /// server that will not speak RESP3. Set before the first attempt.
    pub fn track_for_cache(&mut self, tracking: Cmd) {
        self.creds.tracking = Some(tracking);
        self.creds.cache = true;
    }

    /// The address the transport connects to now, when it is not the configuration's (a
    /// Sentinel-managed primary's): error messages name it.
    pub fn set_addr(&mut self, addr: &Addr) {
        self.held_for = None;
        if !self.addr_known || self.addr != *addr {
            self.addr = addr.clone();
        }
        self.addr_known = true;
    }

    /// What error messages call the server: its address, or the Sentinel master name.
    fn target(&self) -> String {
        match (&self.service, self.addr_known) {
            (Some(name), true) => format!("the primary {name:?} (last at {})", self.addr),
            (Some(name), false) => format!("the primary {name:?}"),
            (None, _) => self.addr.to_string(),
        }
    }

    /// The transport has no address to connect to yet (Sentinel has not answered): the attempt
    /// that was due waits, until the run's connect deadline at most. True if it waits; false
    /// when the deadline has come (the transport then fails the attempt, saying why). `why`
    /// says what is awaited: a call whose timeout comes first fails saying it.
    pub fn hold(&mut self, now: Instant, why: &Error) -> bool {
        let State::Backoff { .. } = self.state else {
            return false;
        };
        let until = self.attempts_since.unwrap_or(now) + self.connect_timeout;
        if until <= now {
            return false;
        }
        self.held_for = Some(why.clone());
        self.set_state(State::Backoff { until });
        true
    }

    /// The address to connect to changed (a failover), or the one awaited is known: an
    /// attempt that waits starts now, and with `moved` a connection (or attempt) to the old
    /// address closes with `reason`, its calls in flight failing with it, and connects again.
    pub fn follow(&mut self, moved: bool, reason: Error, now: Instant) {
        match self.state {
            State::Backoff { until } if until > now => {
                self.set_state(State::Backoff { until: now })
            }
            State::Connecting | State::Handshaking(_) | State::Ready if moved => {
                self.set_state(State::Closing { reason })
            }
            _ => {}
        }
    }

    /// The next thing that happened, in order (`None` when there is nothing more).
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Makes this a subscriber connection: published messages come out as [`Event::Message`],
    /// subscriptions are restored on every reconnect, and a connection holding subscriptions
    /// reconnects by itself, without waiting for a call, for as long as it lives (each loss
    /// reported once, as [`Event::Lost`]).
    pub fn make_subscriber(&mut self) {
        self.pubsub = Some(PubSub {
            subs: Subscriptions::default(),
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

    /// Takes a call; its reply comes out as [`Event::Reply`] with `id` (chosen by the caller,
    /// unique among its calls in flight). It is written at once when the connection is ready,
    /// otherwise it waits for the connection (which this may start), or fails at once when
    /// autoconnect is off. `deadline` is when the caller gives up (`None`: never).
    pub fn submit(&mut self, id: u64, payload: Payload, deadline: Option<Instant>, now: Instant) {
        let reply = |result| Event::Reply { id, result };
        if payload.is_empty() {
            self.events.push_back(reply(Ok(Value::Array(Vec::new()))));
            return;
        }
        let req = Request {
            owner: Owner::Caller(id),
            payload,
            deadline,
        };
        match self.state {
            State::Ready => {
                let seq = self.queue.alloc(req.deadline);
                self.write_request(seq, req);
            }
            State::Idle if !self.autoconnect => self.events.push_back(reply(Err(
                Error::connection("not connected (autoconnect is off: call connect() first)")
                    .unsent(),
            ))),
            State::Idle => {
                self.queue.enqueue_waiting(req);
                self.start_attempts(now);
            }
            _ => self.queue.enqueue_waiting(req),
        }
    }

    /// [`Core::submit`] of one command the caller keeps (a cluster call, which may send it
    /// again after a redirect): written from `cmd` at once when the connection is ready, so
    /// nothing is copied but into the output; a copy waits for the connection otherwise. `now`
    /// is asked only then.
    pub fn submit_kept(
        &mut self,
        id: u64,
        cmd: &Cmd,
        deadline: Option<Instant>,
        now: impl FnOnce() -> Instant,
    ) {
        if matches!(self.state, State::Ready) {
            let seq = self.queue.alloc(deadline);
            self.write_cmd(cmd);
            self.queue
                .push_inflight(seq, Owner::Caller(id), deadline, 1, false);
        } else {
            self.submit(id, Payload::One(cmd.clone()), deadline, now());
        }
    }

    /// The caller of `id` is gone: the reply is still read (the stream stays in step) and
    /// dropped, no [`Event::Reply`] comes for it, and it no longer counts for
    /// [`Core::is_quiet`]. An id already answered is ignored.
    pub fn abandon(&mut self, id: u64) {
        self.queue.abandon(id);
    }

    /// A request to connect: answered with [`Event::Connected`] once the connection is ready
    /// (at once if it already is), or with [`Event::ConnectFailed`].
    pub fn connect(&mut self, now: Instant) {
        match self.state {
            State::Ready => self.events.push_back(Event::Connected),
            State::Idle => {
                self.connect_waiting = true;
                self.start_attempts(now);
            }
            _ => self.connect_waiting = true,
        }
    }

    /// A request to disconnect: calls in flight and calls waiting for a connection fail with
    /// [`Error::Connection`]; answered with [`Event::Disconnected`] once the socket is closed
    /// (at once if there is none).
    pub fn disconnect(&mut self, _now: Instant) {
        let reason = Error::connection("disconnected by the client");
        self.queue.fail_waiting(&reason, &mut self.events);
        self.fail_connect_waiters(&reason);
        match self.state {
            State::Idle | State::Backoff { .. } => {
                self.set_state(State::Idle);
                self.attempts_since = None;
                self.events.push_back(Event::Disconnected);
            }
            State::Closing { .. } => self.disconnect_waiting = true,
            State::Connecting | State::Handshaking(_) | State::Ready => {
                self.disconnect_waiting = true;
                self.set_state(State::Closing { reason });
            }
        }
    }

    fn start_attempts(&mut self, now: Instant) {
        self.attempts_since = Some(now);
        self.last_error = None;
        self.held_for = None;
        self.set_state(State::Backoff { until: now });
    }

    fn write_cmd(&mut self, cmd: &Cmd) {
        write_command(&mut self.output, cmd.args().len(), cmd.args().encoded());
    }

    fn write_request(&mut self, seq: u64, req: Request) {
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
                    if let Owner::Caller(id) = req.owner {
                        self.events.push_back(Event::Reply {
                            id,
                            result: Err(Error::client(
                                "subscribe and unsubscribe need a subscriber connection \
                                 (Client::subscriber)",
                            )),
                        });
                    }
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
                        .push_subscribe(seq, req.owner, req.deadline, replies, added);
                    return;
                }
                if *kind == SubKind::Shard {
                    self.queue
                        .push_inflight(seq, req.owner, req.deadline, replies, true);
                    if let Some(e) = self.queue.inflight.back_mut() {
                        e.sunsubscribe = Some(names.clone());
                    }
                    return;
                }
                (replies, true)
            }
        };
        self.queue
            .push_inflight(seq, req.owner, req.deadline, replies, collect);
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
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.output.is_empty() {
            None
        } else {
            let out = self.output.split().freeze();
            let_go_if_huge(&mut self.output);
            Some(out)
        }
    }

    /// [`Core::poll_transmit`] by an engine at `now`: the calls written so far count as sent
    /// then, for the liveness rule (a call handed to the engine only after its deadline, as
    /// when the runtime driving it stalled, says nothing about the server).
    pub fn poll_transmit_at(&mut self, now: Instant) -> Option<Bytes> {
        let bytes = self.poll_transmit()?;
        self.queue.mark_sent(now);
        Some(bytes)
    }

    /// True when the connection is ready for calls.
    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Ready)
    }

    /// True while a connect attempt is under way: the socket opening, or the handshake.
    pub fn is_opening(&self) -> bool {
        matches!(self.state, State::Connecting | State::Handshaking(_))
    }

    /// True while the handshake is under way.
    pub fn is_handshaking(&self) -> bool {
        matches!(self.state, State::Handshaking(_))
    }

    /// Why the core asked for the socket to be closed ([`Want::Close`]), if it did: the calls
    /// in flight fail with this reason, whatever error the transport reports.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub fn closing_reason(&self) -> Option<&Error> {
        match &self.state {
            State::Closing { reason } => Some(reason),
            _ => None,
        }
    }

    /// True when a `disconnect` request waits for the socket to close.
    pub fn is_disconnecting(&self) -> bool {
        self.disconnect_waiting
    }

    /// True when the connection agreed on RESP3.
    #[allow(dead_code)]
    pub fn is_resp3(&self) -> bool {
        self.resp3
    }

    /// True when no call still needs the connection (see [`Queue::has_live_callers`]: written
    /// calls that timed out or were abandoned do not count, whatever the server does; calls not
    /// written yet do). Whoever holds connect and disconnect requests counts those itself.
    pub fn is_quiet(&self) -> bool {
        !self.queue.has_live_callers()
    }

    /// How many calls are queued, written or not (for tests and diagnostics).
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// When [`Core::handle_timeout`] must be called at the latest.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
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
    pub fn handle_timeout(&mut self, now: Instant) {
        loop {
            let addr = self.target();
            // Why there is no connection yet, when known: what the attempt waits for, or how
            // the last one failed (a Sentinel master name no sentinel knows, a refused port).
            let (held_for, last_error) = (&self.held_for, &self.last_error);
            let tls_pending = matches!(self.state, State::Connecting) && self.securing;
            // A call still waiting for the connection was never sent: not a reply timeout.
            let unsent = || {
                let why = match (held_for, last_error) {
                    _ if tls_pending => {
                        " (the TLS handshake has not completed: is the port a TLS port?)".into()
                    }
                    (Some(Error::Connection { message, .. }), _)
                    | (None, Some(Error::Connection { message, .. })) => format!(" ({message})"),
                    (Some(e), _) | (None, Some(e)) => format!(" ({e})"),
                    (None, None) => String::new(),
                };
                Error::connection(format!(
                    "not connected to {addr} before the call's timeout{why}; the request was not \
                     sent"
                ))
                .unsent()
            };
            let Some(expired) = self.queue.expire_one(now, unsent, &mut self.events) else {
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
                    State::Connecting if self.securing => {
                        "the TLS handshake did not complete (is the port a TLS port?)"
                    }
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
            self.target()
        );
        let hint = if self.cut_in_handshake {
            " (the server closed the connection during the handshake: if this port serves \
             TLS, connect with TLS: rediss://, or Config::tls with the `tls` feature)"
        } else {
            ""
        };
        match last {
            Some(Error::Connection {
                source: Some(io), ..
            }) => Error::Connection {
                message: format!("{head}: {io}{hint}"),
                source: Some(io),
                sent: true,
            },
            Some(Error::Connection { message, .. }) => {
                Error::connection(format!("{head}: {message}{hint}"))
            }
            Some(other) => Error::connection(format!("{head}: {other}{hint}")),
            None => Error::connection(format!("{head}{hint}")),
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
                self.queue.push_inflight(0, Owner::Nobody, None, 1, false);
                self.probe_sent = Some(now);
            }
            None => {}
        }
    }

    /// The socket side starts opening a connection.
    ///
    /// Handles change the core between the engine's steps: a disconnect may land between the
    /// engine reading [`Want::Open`] and this call, or while the socket connects. The socket
    /// then opens into [`Want::Close`], and is closed again without carrying anything.
    pub fn handle_opening(&mut self) {
        match self.state {
            // The transport opens when the backoff ends: that is when the attempt starts.
            State::Backoff { until } => self.attempt_since = Some(until),
            State::Idle => {
                self.set_state(State::Closing {
                    reason: Error::connection("disconnected by the client"),
                });
                return;
            }
            State::Closing { .. } => return,
            State::Connecting | State::Handshaking(_) | State::Ready => {}
        }
        self.set_state(State::Connecting);
        self.securing = false;
        self.cut_in_handshake = false;
        self.silent_timeouts = 0;
        self.probe_sent = None;
        self.parser.reset();
        self.input.clear();
        self.output.clear();
    }

    /// The socket is up and the transport's TLS handshake starts: [`Core::handle_open`] follows
    /// once it is done, within the same connect timeout.
    #[cfg(feature = "tls")]
    pub fn handle_securing(&mut self) {
        self.securing = true;
    }

    /// The socket is up: the handshake goes out (or, with nothing to say, calls do).
    ///
    /// Ignored unless the core is connecting (a disconnect came first: it wants the socket
    /// closed, see [`Core::handle_opening`]).
    pub fn handle_open(&mut self, now: Instant) {
        if !matches!(self.state, State::Connecting) {
            return;
        }
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
    pub fn handle_closed(&mut self, err: Error, now: Instant) {
        self.closed(err, now, false);
    }

    /// An attempt that could not even start: the transport never learnt where to connect
    /// (`err` says why). As [`Core::handle_closed`], except that an earlier attempt's cause,
    /// if any, stays the one the calls get if the run ends (it says more than "still asking").
    pub fn handle_unresolved(&mut self, err: Error, now: Instant) {
        self.closed(err, now, true);
    }

    fn closed(&mut self, err: Error, now: Instant, keep_cause: bool) {
        let retried = self.retry_reason.take();
        self.cut_in_handshake = matches!(self.state, State::Handshaking(_)) && !self.securing;
        let reason = match std::mem::replace(&mut self.state, State::Idle) {
            State::Closing { reason } => reason,
            _ => err.clone(),
        };
        self.queue.fail_inflight(&reason, &mut self.events);
        self.parser.reset();
        self.input.clear();
        self.output.clear();
        self.resp3 = false;
        if std::mem::take(&mut self.tracking_pushes) {
            // The server forgot what it tracked for this connection: a key read before and
            // changed from now on is never invalidated. Tell the handler to drop everything,
            // with the push servers send for that themselves (after FLUSHALL).
            self.events.push_back(Event::Push(Value::Push(vec![
                Value::Bulk(Bytes::from_static(b"invalidate")),
                Value::Nil,
            ])));
        }
        if std::mem::take(&mut self.disconnect_waiting) {
            self.events.push_back(Event::Disconnected);
        }
        self.attempt_since = None;
        let anyone_waiting = !self.queue.waiting.is_empty() || self.connect_waiting;
        let subscribed = self.reconnects_by_itself();
        if subscribed {
            self.events.push_back(Event::Lost(reason));
        }
        if !anyone_waiting && !subscribed {
            self.attempts_since = None;
            return;
        }
        let since = *self.attempts_since.get_or_insert(now);
        let cause = retried.unwrap_or(err);
        self.last_error = match self.last_error.take() {
            Some(earlier) if keep_cause => Some(earlier),
            _ => Some(cause),
        };
        let deadline = since + self.connect_timeout;
        let until = now + self.backoff.next_delay();
        // A retry that could only start at the deadline or after it would end as "the server
        // did not accept the connection", losing this attempt's cause: the run ends now.
        if now >= deadline || (until >= deadline && !subscribed) {
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
        self.set_state(State::Backoff { until });
    }

    /// Fails everything waiting for a connection and ends the run of attempts. A subscriber
    /// holding subscriptions goes on reconnecting: there a call with a deadline of its own (the
    /// command timeout) waits for the reconnect until then.
    fn give_up(&mut self, err: Error) {
        if self.reconnects_by_itself() {
            self.queue
                .fail_waiting_without_deadline(&err, &mut self.events);
        } else {
            self.queue.fail_waiting(&err, &mut self.events);
        }
        self.fail_connect_waiters(&err);
        self.attempts_since = None;
    }

    fn fail_connect_waiters(&mut self, err: &Error) {
        if std::mem::take(&mut self.connect_waiting) {
            // A connect request sends no command: trying again cannot run one twice.
            self.events
                .push_back(Event::ConnectFailed(err.clone().unsent()));
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
            self.events.push_back(Event::Restored);
            for (cmd, confirmations, held) in pubsub.subs.restore() {
                self.write_cmd(&cmd);
                self.queue
                    .push_subscribe(0, Owner::Nobody, None, confirmations, held);
            }
        }
        while let Some((seq, req)) = self.queue.waiting.pop_front() {
            self.write_request(seq, req);
        }
        if std::mem::take(&mut self.connect_waiting) {
            self.events.push_back(Event::Connected);
        }
    }

    /// Bytes read from the socket: parses them and hands each reply to its call. An error
    /// means the stream is broken; the socket side must close the connection and report it
    /// with [`Core::handle_closed`] (the error is the reason to pass).
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) -> Result<()> {
        self.input.extend_from_slice(bytes);
        if !self.input.is_empty() {
            // The server is alive, however slow.
            self.silent_timeouts = 0;
            self.last_received = now;
            self.probe_sent = None;
        }
        while let Some(value) = self.parser.parse(&mut self.input)? {
            self.dispatch(value, now)?;
        }
        let_go_if_huge(&mut self.input);
        Ok(())
    }

    fn dispatch(&mut self, value: Value, now: Instant) -> Result<()> {
        let value = match &self.pubsub {
            Some(_) => match classify(value) {
                Frame::Message(m) => {
                    self.events.push_back(Event::Message(m));
                    return Ok(());
                }
                // A confirmation is the reply to the (un)subscribe that asked for it, but for a
                // `sunsubscribe` the server sent on its own.
                Frame::Confirmation(v) if self.dropped_by_server(&v) => return Ok(()),
                Frame::Confirmation(v) => Value::Array(match v {
                    Value::Push(items) | Value::Array(items) => items,
                    other => vec![other],
                }),
                Frame::Other(v) => v,
            },
            None => value,
        };
        if let Value::Push(_) = value {
            self.events.push_back(Event::Push(value));
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
        match entry.owner {
            Owner::Internal(step) => self.on_handshake_reply(step, result, now),
            Owner::Caller(id) => self.events.push_back(Event::Reply { id, result }),
            Owner::Nobody => {}
        }
        Ok(())
    }

    /// True when `v`, a confirmation, is a `sunsubscribe` no call asked for: the server
    /// unsubscribed the channel itself because its slot moved (Redis 7+). The channel is no
    /// longer held (a reconnect does not restore it) and the owner hears of it.
    fn dropped_by_server(&mut self, v: &Value) -> bool {
        let (Value::Push(items) | Value::Array(items)) = v else {
            return false;
        };
        let [word, channel, _] = &items[..] else {
            return false;
        };
        if !word
            .as_bytes()
            .is_some_and(|w| w.eq_ignore_ascii_case(b"sunsubscribe"))
        {
            return false;
        }
        let Some(channel) = channel.as_bytes().map(Bytes::copy_from_slice) else {
            return false;
        };
        // Asked for: the oldest call in flight is a SUNSUBSCRIBE still due this channel's
        // confirmation (or one from all).
        if let Some(due) = self
            .queue
            .inflight
            .front_mut()
            .and_then(|e| e.sunsubscribe.as_mut())
        {
            if due.is_empty() {
                return false;
            }
            if let Some(i) = due.iter().position(|n| *n == channel) {
                due.swap_remove(i);
                return false;
            }
        }
        let Some(pubsub) = &mut self.pubsub else {
            return false;
        };
        let names = vec![channel];
        pubsub.subs.forget(SubKind::Shard, &names);
        let reason = Error::Server {
            kind: "MOVED".into(),
            message: format!(
                "the server unsubscribed shard channel {} (its slot moved to another node); \
                 no longer subscribed",
                String::from_utf8_lossy(&names[0])
            ),
        };
        self.events.push_back(Event::Dropped { names, reason });
        true
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
            if entry.seq == 0 {
                let listed: Vec<_> = names.iter().map(|n| String::from_utf8_lossy(n)).collect();
                let reason = Error::Server {
                    kind: e.kind.clone(),
                    message: format!(
                        "{} (restoring {} {} after a reconnect: no longer subscribed)",
                        e.message,
                        kind.subscribe(),
                        listed.join(" ")
                    ),
                };
                self.events.push_back(match kind {
                    SubKind::Shard => Event::Dropped { names, reason },
                    _ => Event::Report(reason),
                });
            }
        }
        if let Owner::Caller(id) = entry.owner {
            self.events.push_back(Event::Reply {
                id,
                result: Err(e.into()),
            });
        }
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
            Outcome::Fail(err) => self.handle_refused(err),
            Outcome::Retry(err) => {
                self.retry_reason = Some(err.clone());
                self.set_state(State::Closing { reason: err });
            }
        }
    }

    /// The server refused us (`AUTH` failed, or the transport's TLS refused the server or was
    /// refused by it): every call waiting for the connection hears why, at once, and the
    /// socket closes. Attempts start again only with a new call.
    pub fn handle_refused(&mut self, err: Error) {
        self.queue.fail_waiting(&err, &mut self.events);
        self.give_up(err.clone());
        self.set_state(State::Closing { reason: err });
    }
}

/// The most buffer capacity an empty input or output buffer keeps.
const KEEP_BUFFER: usize = 1 << 20;

/// Lets go of an empty buffer that a huge reply or request grew (it would be reused, at its
/// size, for as long as the connection lives): a connection keeps at most [`KEEP_BUFFER`] per
/// direction once the big message is through. A buffer whose allocation is still shared with
/// a value the caller holds reports only its own tail; it is let go here once it got the whole
/// allocation back.
fn let_go_if_huge(buf: &mut BytesMut) {
    if buf.is_empty() && buf.capacity() > KEEP_BUFFER {
        *buf = BytesMut::with_capacity(16 * 1024);
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
    use crate::inbox::{inbox, InboxRx, InboxTx, DEFAULT_LIMIT};
    use crate::{cmd, Config};
    use std::cell::{Cell, RefCell};

    /// A call's id.
    type Rx = u64;

    thread_local! {
        /// Every event the cores of this test emitted, in order, not yet looked at.
        static SEEN: RefCell<VecDeque<Event>> = RefCell::default();
        static NEXT_ID: Cell<u64> = const { Cell::new(0) };
    }

    fn new_id() -> u64 {
        NEXT_ID.with(|n| {
            n.set(n.get() + 1);
            n.get()
        })
    }

    /// Moves what the core emitted to [`SEEN`].
    fn collect(core: &mut Core) {
        SEEN.with(|seen| {
            let mut seen = seen.borrow_mut();
            while let Some(e) = core.poll_event() {
                seen.push_back(e);
            }
        });
    }

    /// Takes the first event collected that `pick` accepts.
    fn take_event<T>(
        core: &mut Core,
        pick: impl Fn(&Event) -> bool,
        into: impl Fn(Event) -> T,
    ) -> Option<T> {
        collect(core);
        SEEN.with(|seen| {
            let mut seen = seen.borrow_mut();
            let i = seen.iter().position(pick)?;
            seen.remove(i).map(into)
        })
    }

    fn config() -> Config {
        Config::new()
            .protocol(Protocol::Resp2)
            .connect_timeout(Duration::from_secs(5))
            .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(40))
    }

    fn submit(core: &mut Core, payload: Payload, now: Instant, timeout: Option<Duration>) -> Rx {
        let id = new_id();
        core.submit(id, payload, timeout.map(|t| now + t), now);
        id
    }

    fn call(core: &mut Core, c: Cmd, now: Instant, timeout: Option<Duration>) -> Rx {
        submit(core, Payload::One(c), now, timeout)
    }

    fn output(core: &mut Core) -> String {
        let mut all = Vec::new();
        while let Some(b) = core.poll_transmit() {
            all.extend_from_slice(&b);
        }
        String::from_utf8_lossy(&all).into_owned()
    }

    fn feed(core: &mut Core, bytes: &[u8], now: Instant) -> Result<()> {
        core.handle_input(bytes, now)
    }

    fn reply_of(core: &mut Core, rx: Rx) -> Option<Result<Value>> {
        take_event(
            core,
            |e| matches!(e, Event::Reply { id, .. } if *id == rx),
            |e| match e {
                Event::Reply { result, .. } => result,
                _ => unreachable!(),
            },
        )
    }

    fn got(core: &mut Core, rx: &mut Rx) -> Result<Value> {
        let reply = reply_of(core, *rx).expect("no reply delivered yet");
        assert!(reply_of(core, *rx).is_none(), "one reply per call");
        reply
    }

    fn pending(core: &mut Core, rx: &mut Rx) -> bool {
        reply_of(core, *rx).is_none()
    }

    /// The answer to the connect requests, if one came.
    fn connected(core: &mut Core) -> Option<Result<bool>> {
        take_event(
            core,
            |e| matches!(e, Event::Connected | Event::ConnectFailed(_)),
            |e| match e {
                Event::ConnectFailed(err) => Err(err),
                _ => Ok(true),
            },
        )
    }

    fn disconnected(core: &mut Core) -> bool {
        take_event(core, |e| matches!(e, Event::Disconnected), drop).is_some()
    }

    fn pushes(core: &mut Core) -> Vec<Value> {
        std::iter::from_fn(|| {
            take_event(
                core,
                |e| matches!(e, Event::Push(_)),
                |e| match e {
                    Event::Push(v) => v,
                    _ => unreachable!(),
                },
            )
        })
        .collect()
    }

    /// A core connected (RESP2, no handshake) at `now`.
    fn ready(cfg: Config, now: Instant) -> Core {
        let mut core = Core::new(&cfg);
        core.connect(now);
        assert_eq!(core.want(now), Want::Open);
        core.handle_opening();
        core.handle_open(now);
        assert!(core.is_connected());
        assert!(matches!(connected(&mut core), Some(Ok(true))));
        core
    }

    /// A subscriber core, and the inbox its owner would feed (as the link does).
    fn subscriber(cfg: &Config) -> (Core, (InboxTx, InboxRx)) {
        let mut core = Core::new(cfg);
        core.make_subscriber();
        (core, inbox(DEFAULT_LIMIT))
    }

    fn subscribe(core: &mut Core, name: &str, now: Instant, timeout: Option<Duration>) -> Rx {
        let payload = Payload::Subscribe {
            kind: crate::conn::SubKind::Channel,
            subscribe: true,
            names: vec![Bytes::copy_from_slice(name.as_bytes())],
        };
        submit(core, payload, now, timeout)
    }

    /// The next thing the subscriber's reader gets, after the core's subscriber events so far
    /// went to the inbox.
    fn next_event(
        core: &mut Core,
        (tx, rx): &(InboxTx, InboxRx),
    ) -> Option<Result<crate::conn::Message>> {
        let feeds = |e: &Event| {
            matches!(
                e,
                Event::Message(_)
                    | Event::Lost(_)
                    | Event::Restored
                    | Event::Report(_)
                    | Event::Dropped { .. }
            )
        };
        while let Some(e) = take_event(core, feeds, |e| e) {
            let _ = match e {
                Event::Message(m) => tx.message(m),
                Event::Lost(err) => tx.lost(&err)[1].clone(),
                Event::Dropped { names, reason } => tx.dropped(names, reason),
                Event::Restored => tx.restored(),
                Event::Report(err) => tx.report(err),
                _ => None,
            };
        }
        let waker = std::task::Waker::noop();
        match rx.poll_next(&mut std::task::Context::from_waker(waker)) {
            std::task::Poll::Ready(item) => item,
            std::task::Poll::Pending => None,
        }
    }

    const HELLO_REPLY: &[u8] = b"%1\r\n+proto\r\n:3\r\n";

    /// A `sunsubscribe` the server sends on its own (the channel's slot moved away) is no reply:
    /// the call in flight keeps waiting for its own, the channel is no longer held (a reconnect
    /// does not restore it) and the reader hears of it; the confirmations a `SUNSUBSCRIBE`
    /// asked for still answer it.
    /// A command the caller keeps is written as one handed over is, at once when the
    /// connection is ready, and waits for it (connecting it) otherwise; its reply comes as
    /// any call's, timing out at its deadline.
    #[test]
    fn a_kept_command_is_sent_as_a_given_one() {
        let t0 = Instant::now();
        let get = cmd!("GET", "k");
        let mut core = ready(config(), t0);
        let mut given = call(&mut core, get.clone(), t0, None);
        let written = output(&mut core);
        let mut kept = new_id();
        core.submit_kept(kept, &get, None, || unreachable!("ready: no clock asked"));
        assert_eq!(output(&mut core), written);
        assert_eq!(written, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
        feed(&mut core, b"$1\r\na\r\n$1\r\nb\r\n", t0).unwrap();
        assert_eq!(got(&mut core, &mut given).unwrap(), Value::Bulk("a".into()));
        assert_eq!(got(&mut core, &mut kept).unwrap(), Value::Bulk("b".into()));

        // Not connected: the copy waits, the connection starts, and it is written once up.
        let mut core = Core::new(&config());
        let mut waiting = new_id();
        core.submit_kept(waiting, &get, Some(t0 + Duration::from_secs(1)), || t0);
        assert_eq!(core.want(t0), Want::Open);
        core.handle_opening();
        core.handle_open(t0);
        assert_eq!(output(&mut core), written);
        core.handle_timeout(t0 + Duration::from_secs(2));
        assert!(got(&mut core, &mut waiting).is_err_and(|e| e.is_timeout()));
    }

    #[test]
    fn a_sunsubscribe_nobody_asked_for_drops_the_channel() {
        let t0 = Instant::now();
        let cfg = config();
        let (mut core, inbox) = subscriber(&cfg);
        let shard = |names: &[&str], subscribe: bool| Payload::Subscribe {
            kind: SubKind::Shard,
            subscribe,
            names: names
                .iter()
                .map(|n| Bytes::copy_from_slice(n.as_bytes()))
                .collect(),
        };
        let mut sub = submit(&mut core, shard(&["{a}1", "{a}2"], true), t0, None);
        core.handle_opening();
        core.handle_open(t0);
        assert!(output(&mut core).contains("SSUBSCRIBE"));
        feed(
            &mut core,
            b"*3\r\n$10\r\nssubscribe\r\n$4\r\n{a}1\r\n:1\r\n*3\r\n$10\r\nssubscribe\r\n$4\r\n{a}2\r\n:2\r\n",
            t0,
        )
        .unwrap();
        assert!(got(&mut core, &mut sub).is_ok());
        // The server drops {a}1 while a SUNSUBSCRIBE {a}2 is in flight.
        let mut unsub = submit(&mut core, shard(&["{a}2"], false), t0, None);
        let _ = output(&mut core);
        feed(
            &mut core,
            b"*3\r\n$12\r\nsunsubscribe\r\n$4\r\n{a}1\r\n:1\r\n",
            t0,
        )
        .unwrap();
        assert!(pending(&mut core, &mut unsub), "not its confirmation");
        let dropped = next_event(&mut core, &inbox)
            .expect("reported")
            .unwrap_err();
        assert!(dropped.to_string().contains("{a}1"), "{dropped}");
        feed(
            &mut core,
            b"*3\r\n$12\r\nsunsubscribe\r\n$4\r\n{a}2\r\n:0\r\n",
            t0,
        )
        .unwrap();
        assert!(got(&mut core, &mut unsub).is_ok());
        // With nothing in flight too; and nothing is left to restore.
        feed(
            &mut core,
            b"*3\r\n$12\r\nsunsubscribe\r\n$1\r\nz\r\n:0\r\n",
            t0,
        )
        .unwrap();
        assert!(core.pubsub.as_ref().is_some_and(|p| p.subs.is_empty()));
    }

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
        core.handle_opening();
        core.handle_open(t0);
        feed(&mut core, HELLO_REPLY, t0).unwrap();
        assert!(output(&mut core).ends_with("*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n"));
        feed(&mut core, b">3\r\n+subscribe\r\n+news\r\n:1\r\n", t0).unwrap();
        assert!(got(&mut core, &mut first).is_ok());

        // The server goes away for 2 s: attempts are refused at once.
        core.handle_closed(Error::connection("connection reset"), t0);
        let lost = next_event(&mut core, &inbox)
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
            core.handle_timeout(now);
            if core.want(now) == Want::Open {
                core.handle_opening();
                core.handle_closed(Error::connection("connection refused"), now);
            }
            let at = core.poll_timeout().expect("it keeps retrying");
            assert!(at - now <= Duration::from_secs(1), "the backoff is capped");
            now = at;
        }
        let mut during = during.expect("made while down");
        assert!(
            pending(&mut core, &mut during),
            "still waiting, within its own timeout"
        );
        assert!(
            next_event(&mut core, &inbox).is_none(),
            "one report per loss"
        );

        // The server is back: the handshake gets its full connect timeout.
        core.handle_timeout(now);
        assert_eq!(core.want(now), Want::Open);
        core.handle_opening();
        core.handle_open(now);
        assert!(output(&mut core).contains("HELLO"));
        let later = now + Duration::from_millis(900);
        core.handle_timeout(later);
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
        assert!(got(&mut core, &mut during).is_ok());
        feed(
            &mut core,
            b">3\r\n+message\r\n+news\r\n$5\r\nafter\r\n",
            later,
        )
        .unwrap();
        let m = next_event(&mut core, &inbox).expect("a message").unwrap();
        assert_eq!(m.payload_str(), Some("after"));
    }

    #[test]
    fn a_stalled_reconnect_attempt_of_a_subscriber_gets_its_own_connect_timeout() {
        let t0 = Instant::now();
        let cfg = config().connect_timeout(Duration::from_millis(100));
        let (mut core, inbox) = subscriber(&cfg);
        let mut rx = subscribe(&mut core, "news", t0, None);
        core.handle_opening();
        core.handle_open(t0);
        feed(
            &mut core,
            b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n",
            t0,
        )
        .unwrap();
        assert!(got(&mut core, &mut rx).is_ok());
        core.handle_closed(Error::connection("reset"), t0);
        assert!(next_event(&mut core, &inbox).is_some_and(|e| e.is_err()));
        // Refused for 250 ms, then an attempt that hangs.
        let mut now = t0;
        let mut undated = None;
        while now < t0 + Duration::from_millis(250) {
            if undated.is_none() {
                undated = Some(subscribe(&mut core, "x", now, None));
            }
            if core.want(now) == Want::Open {
                core.handle_opening();
                core.handle_closed(Error::connection("refused"), now);
            }
            now = core.poll_timeout().unwrap();
        }
        let err = got(&mut core, undated.as_mut().unwrap()).unwrap_err();
        assert!(
            err.is_connection() && err.to_string().contains("could not connect"),
            "a call with no deadline of its own fails when the run ends: {err}"
        );
        assert_eq!(core.want(now), Want::Open);
        core.handle_opening();
        let started = now;
        assert_eq!(
            core.poll_timeout(),
            Some(started + Duration::from_millis(100))
        );
        core.handle_timeout(started + Duration::from_millis(99));
        assert_eq!(core.want(now), Want::Nothing);
        core.handle_timeout(started + Duration::from_millis(100));
        assert_eq!(core.want(now), Want::Close);
        core.handle_closed(
            Error::connection("closed"),
            started + Duration::from_millis(100),
        );
        assert!(core.poll_timeout().is_some(), "and it tries again");
        assert!(
            next_event(&mut core, &inbox).is_none(),
            "still one report for the one loss"
        );
    }

    #[test]
    fn a_refused_subscribe_fails_alone_and_is_not_held() {
        let now = Instant::now();
        let (mut core, inbox) = subscriber(&config());
        let mut ok = subscribe(&mut core, "a", now, None);
        core.handle_opening();
        core.handle_open(now);
        feed(
            &mut core,
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n",
            now,
        )
        .unwrap();
        assert!(got(&mut core, &mut ok).is_ok());
        // `SUBSCRIBE a secret` refused as a whole (ACL): one error, not two confirmations.
        let payload = Payload::Subscribe {
            kind: crate::conn::SubKind::Channel,
            subscribe: true,
            names: vec!["a".into(), "secret".into()],
        };
        let mut refused = submit(&mut core, payload, now, None);
        let mut ping = call(&mut core, cmd!("PING"), now, None);
        output(&mut core);
        feed(
            &mut core,
            b"-NOPERM no\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n",
            now,
        )
        .unwrap();
        assert_eq!(
            got(&mut core, &mut refused).unwrap_err().server_kind(),
            Some("NOPERM")
        );
        assert!(
            got(&mut core, &mut ping).is_ok(),
            "the next reply reaches its own caller"
        );
        // After a reconnect only `a` is restored (it was held before the refusal).
        core.handle_closed(Error::connection("reset"), now);
        assert!(next_event(&mut core, &inbox).is_some_and(|e| e.is_err()));
        core.handle_opening();
        core.handle_open(now);
        assert_eq!(output(&mut core), "*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n");
        // Refused on restore too (the ACL changed): the reader hears of it, nothing is held.
        feed(&mut core, b"-NOPERM no\r\n", now).unwrap();
        let err = next_event(&mut core, &inbox)
            .expect("reported")
            .unwrap_err();
        assert_eq!(err.server_kind(), Some("NOPERM"), "{err}");
        assert!(err.to_string().contains("SUBSCRIBE a"), "{err}");
        core.handle_closed(Error::connection("reset"), now);
        assert_eq!(core.want(now), Want::Nothing, "nothing left to restore");
    }

    #[test]
    fn first_call_connects_and_waits_for_the_socket() {
        let now = Instant::now();
        let mut core = Core::new(&config());
        assert_eq!(core.want(now), Want::Nothing);
        let mut rx = call(&mut core, cmd!("PING"), now, None);
        assert_eq!(core.want(now), Want::Open);
        core.handle_opening();
        assert_eq!(
            output(&mut core),
            "",
            "nothing goes out before the socket is up"
        );
        core.handle_open(now);
        assert_eq!(output(&mut core), "*1\r\n$4\r\nPING\r\n");
        feed(&mut core, b"+PONG\r\n", now).unwrap();
        assert_eq!(
            got(&mut core, &mut rx).unwrap(),
            Value::Simple("PONG".into())
        );
    }

    /// A huge reply or request is not held on to: once it is through (and its value dropped),
    /// the connection's buffers are back to a small size, however many connections had one.
    #[test]
    fn a_huge_reply_or_request_leaves_no_huge_buffer_behind() {
        let now = Instant::now();
        let mut core = ready(config(), now);
        let huge = vec![b'v'; 8 << 20];
        let mut set = call(&mut core, cmd!("SET", "k", &huge[..]), now, None);
        let sent = output(&mut core);
        assert!(sent.len() > huge.len());
        drop(sent);
        feed(&mut core, b"+OK\r\n", now).unwrap();
        assert!(got(&mut core, &mut set).is_ok());
        let mut get = call(&mut core, cmd!("GET", "k"), now, None);
        let _ = output(&mut core);
        let mut reply = format!("${}\r\n", huge.len()).into_bytes();
        reply.extend_from_slice(&huge);
        reply.extend_from_slice(b"\r\n");
        for chunk in reply.chunks(16 * 1024) {
            feed(&mut core, chunk, now).unwrap();
        }
        assert_eq!(got(&mut core, &mut get).unwrap(), Value::Bulk(huge.into()));
        // The next small call and reply, with the huge value gone.
        let mut ping = call(&mut core, cmd!("PING"), now, None);
        let _ = output(&mut core);
        feed(&mut core, b"+PONG\r\n", now).unwrap();
        assert!(got(&mut core, &mut ping).is_ok());
        assert!(
            core.input.capacity() <= 1 << 20 && core.output.capacity() <= 1 << 20,
            "kept {} bytes of input and {} of output buffer",
            core.input.capacity(),
            core.output.capacity()
        );
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
        assert_eq!(
            got(&mut core, &mut rxs[0]).unwrap(),
            Value::Bulk("a".into())
        );
        assert_eq!(
            got(&mut core, &mut rxs[1]).unwrap_err().server_kind(),
            Some("ERR")
        );
        assert_eq!(got(&mut core, &mut rxs[2]).unwrap(), Value::Nil);
    }

    #[test]
    fn several_commands_reply_as_one_array_with_errors_in_place() {
        let now = Instant::now();
        let mut core = ready(config(), now);
        let payload = Payload::batch(&[cmd!("INCR", "n"), cmd!("LPOP", "n"), cmd!("GET", "n")]);
        let mut rx = submit(&mut core, payload, now, None);
        let mut single = call(&mut core, cmd!("PING"), now, None);
        feed(
            &mut core,
            b":1\r\n-WRONGTYPE no\r\n$1\r\n1\r\n+PONG\r\n",
            now,
        )
        .unwrap();
        let Value::Array(items) = got(&mut core, &mut rx).unwrap() else {
            panic!()
        };
        assert_eq!(items.len(), 3);
        assert!(matches!(&items[1], Value::Error(e) if e.kind == "WRONGTYPE"));
        assert_eq!(
            got(&mut core, &mut single).unwrap(),
            Value::Simple("PONG".into())
        );
        // A batch of one is still an array.
        let mut rx = submit(&mut core, Payload::batch(&[cmd!("PING")]), now, None);
        feed(&mut core, b"+PONG\r\n", now).unwrap();
        assert_eq!(
            got(&mut core, &mut rx).unwrap(),
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
        assert_eq!(core.poll_timeout(), Some(t0 + Duration::from_millis(100)));
        core.handle_timeout(t0 + Duration::from_millis(99));
        assert!(pending(&mut core, &mut slow));
        core.handle_timeout(t0 + Duration::from_millis(100));
        assert_eq!(got(&mut core, &mut slow).unwrap_err(), Error::Timeout);
        assert_eq!(core.poll_timeout(), Some(t0 + Duration::from_secs(10)));
        // The late reply to `slow` arrives first and must not reach `next`.
        feed(&mut core, b"$4\r\nlate\r\n$4\r\nmine\r\n", t0).unwrap();
        assert_eq!(
            got(&mut core, &mut next).unwrap(),
            Value::Bulk("mine".into())
        );
    }

    #[test]
    fn a_dropped_caller_loses_nothing_for_others() {
        let now = Instant::now();
        let mut core = ready(config(), now);
        let gone = call(&mut core, cmd!("GET", "a"), now, None);
        core.abandon(gone);
        let mut kept = call(&mut core, cmd!("GET", "b"), now, None);
        feed(&mut core, b"$1\r\na\r\n$1\r\nb\r\n", now).unwrap();
        assert_eq!(got(&mut core, &mut kept).unwrap(), Value::Bulk("b".into()));
        assert!(
            pending(&mut core, &mut { gone }),
            "no reply for an abandoned call"
        );
    }

    #[test]
    fn the_deadline_heap_stays_proportional_to_live_calls() {
        let now = Instant::now();
        let mut core = ready(config(), now);
        for _ in 0..10_000 {
            let mut rx = call(&mut core, cmd!("PING"), now, Some(Duration::from_secs(30)));
            feed(&mut core, b"+PONG\r\n", now).unwrap();
            got(&mut core, &mut rx).unwrap();
            core.poll_timeout();
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
        core.handle_closed(Error::connection("connection reset"), t0);
        assert_eq!(got(&mut core, &mut a).unwrap(), Value::Bulk("a".into()));
        assert!(got(&mut core, &mut b).unwrap_err().is_connection());
        assert!(!core.is_connected());
        assert_eq!(
            core.want(t0),
            Want::Nothing,
            "no reconnect until a call needs it"
        );
        let mut c = call(&mut core, cmd!("GET", "c"), t0, None);
        assert_eq!(core.want(t0), Want::Open);
        core.handle_opening();
        core.handle_open(t0);
        assert_eq!(
            output(&mut core),
            "*2\r\n$3\r\nGET\r\n$1\r\nc\r\n",
            "the half reply is forgotten"
        );
        feed(&mut core, b"$1\r\nc\r\n", t0).unwrap();
        assert_eq!(got(&mut core, &mut c).unwrap(), Value::Bulk("c".into()));
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
            core.handle_opening();
            core.handle_closed(Error::connection("connection refused"), now);
            match core.poll_timeout() {
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
        let err = got(&mut core, &mut rx).unwrap_err();
        assert!(err.is_connection(), "{err}");
        assert!(err.to_string().contains("connection refused"), "{err}");
        assert!(err.is_retryable(), "never sent: {err:?}");
    }

    /// A call that never left the client fails with `sent: false` (retryable); one written to
    /// a connection that then failed, with `sent: true` (it may have run).
    #[test]
    fn a_connection_error_says_whether_the_request_was_sent() {
        let t0 = Instant::now();
        let mut core = ready(config(), t0);
        let mut written = call(&mut core, cmd!("INCR", "n"), t0, None);
        assert!(output(&mut core).contains("INCR"));
        core.handle_closed(Error::connection("connection reset"), t0);
        let err = got(&mut core, &mut written).unwrap_err();
        assert!(
            matches!(err, Error::Connection { sent: true, .. }) && !err.is_retryable(),
            "{err:?}"
        );

        // Down now: a new call waits for the reconnect, which never comes in time.
        let cfg = config().connect_timeout(Duration::from_millis(50));
        let mut core = Core::new(&cfg);
        let mut waiting = call(&mut core, cmd!("INCR", "n"), t0, None);
        core.handle_opening();
        core.handle_timeout(t0 + Duration::from_millis(50));
        let err = got(&mut core, &mut waiting).unwrap_err();
        assert!(
            matches!(err, Error::Connection { sent: false, .. }) && err.is_retryable(),
            "{err:?}"
        );
        // Its own deadline passes before a connection comes up.
        let mut core = Core::new(&config());
        let mut short = call(
            &mut core,
            cmd!("INCR", "n"),
            t0,
            Some(Duration::from_millis(5)),
        );
        core.handle_opening();
        core.handle_timeout(t0 + Duration::from_millis(5));
        let err = got(&mut core, &mut short).unwrap_err();
        assert!(
            matches!(err, Error::Connection { sent: false, .. }),
            "{err:?}"
        );
        // Autoconnect off and not connected.
        let mut core = Core::new(&config().autoconnect(false));
        let mut off = call(&mut core, cmd!("INCR", "n"), t0, None);
        let err = got(&mut core, &mut off).unwrap_err();
        assert!(
            matches!(err, Error::Connection { sent: false, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_stalled_connect_times_out() {
        let t0 = Instant::now();
        let cfg = config().connect_timeout(Duration::from_millis(50));
        let mut core = Core::new(&cfg);
        let mut rx = call(&mut core, cmd!("PING"), t0, None);
        core.handle_opening();
        assert_eq!(core.poll_timeout(), Some(t0 + Duration::from_millis(50)));
        core.handle_timeout(t0 + Duration::from_millis(50));
        let err = got(&mut core, &mut rx).unwrap_err();
        assert_eq!(
            err.to_string(),
            "connection error: could not connect within 50 ms to 127.0.0.1:6379: \
             the server did not accept the connection"
        );
        assert_eq!(core.want(t0), Want::Close);
        core.handle_closed(Error::connection("closed"), t0);
        assert_eq!(core.want(t0), Want::Nothing);

        // Accepted, but the handshake gets no answer: a connection error too, never a timeout.
        let cfg = Config::new()
            .password("pw")
            .connect_timeout(Duration::from_millis(50));
        let mut core = Core::new(&cfg);
        core.connect(t0);
        core.handle_opening();
        core.handle_open(t0);
        core.handle_timeout(t0 + Duration::from_millis(50));
        let err = connected(&mut core).unwrap().unwrap_err();
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
        core.handle_opening();
        core.handle_timeout(t0 + Duration::from_millis(20));
        let err = got(&mut core, &mut rx).unwrap_err();
        assert!(err.is_connection(), "{err}");
        assert!(err.to_string().contains("was not sent"), "{err}");
    }

    #[test]
    fn a_disconnect_between_the_engine_steps_closes_the_socket_it_opens() {
        let t0 = Instant::now();
        // Between `want` saying Open and `handle_opening`.
        let mut core = Core::new(&config());
        let mut rx = call(&mut core, cmd!("PING"), t0, None);
        assert_eq!(core.want(t0), Want::Open);
        core.disconnect(t0);
        assert!(got(&mut core, &mut rx).unwrap_err().is_connection());
        core.handle_opening();
        assert_eq!(core.want(t0), Want::Close);
        core.handle_open(t0);
        assert_eq!(
            core.want(t0),
            Want::Close,
            "an unwanted socket carries nothing"
        );
        core.handle_closed(Error::connection("connection closed"), t0);
        assert_eq!(core.want(t0), Want::Nothing);
        assert!(!core.is_connected());
        // While the socket connects: the disconnect is answered once it is closed, not lost
        // to a handshake that makes the connection ready again.
        let mut core = Core::new(&config());
        let _rx = call(&mut core, cmd!("PING"), t0, None);
        core.handle_opening();
        core.disconnect(t0);
        core.handle_open(t0);
        assert!(!core.is_connected());
        assert_eq!(core.want(t0), Want::Close);
        core.handle_closed(Error::connection("connection closed"), t0);
        assert!(take_event(&mut core, |e| matches!(e, Event::Disconnected), drop).is_some());
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
        core.handle_opening();
        core.handle_closed(refused(), t0);
        // The first retry could start only at the deadline or after it (the backoff's first
        // delay is at least 10 ms): the run ends now, with this attempt's cause, not later as
        // "the server did not accept the connection".
        assert_eq!(core.poll_timeout(), None);
        let err = got(&mut core, &mut rx).unwrap_err();
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

    /// A TLS port resets a plain-text connection once it reads the handshake: the error says
    /// TLS may be what is missing. A reset before the handshake does not.
    #[test]
    fn a_connection_closed_during_the_handshake_hints_at_tls() {
        let t0 = Instant::now();
        let reset = || {
            let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
            Error::connection_io(format!("reading from 127.0.0.1:6379: {io}"), io)
        };
        for in_handshake in [true, false] {
            let cfg = config()
                .protocol(Protocol::Resp3)
                .connect_timeout(Duration::from_millis(10));
            let mut core = Core::new(&cfg);
            let mut rx = call(&mut core, cmd!("PING"), t0, None);
            core.handle_opening();
            if in_handshake {
                core.handle_open(t0);
                assert!(output(&mut core).contains("HELLO"));
            }
            core.handle_closed(reset(), t0);
            let err = got(&mut core, &mut rx).unwrap_err();
            assert!(err.is_connection());
            assert_eq!(err.to_string().contains("rediss://"), in_handshake, "{err}");
        }
    }

    #[test]
    fn without_autoconnect_calls_fail_fast_until_connect() {
        let now = Instant::now();
        let mut core = Core::new(&config().autoconnect(false));
        let mut rx = call(&mut core, cmd!("PING"), now, None);
        assert!(got(&mut core, &mut rx).unwrap_err().is_connection());
        assert_eq!(core.want(now), Want::Nothing);
        core.connect(now);
        let mut during = call(&mut core, cmd!("PING"), now, None);
        core.handle_opening();
        assert!(connected(&mut core).is_none());
        core.handle_open(now);
        assert!(matches!(connected(&mut core), Some(Ok(true))));
        feed(&mut core, b"+PONG\r\n", now).unwrap();
        assert!(
            got(&mut core, &mut during).is_ok(),
            "a call made while connect() runs waits for it"
        );
        core.handle_closed(Error::connection("reset"), now);
        let mut after = call(&mut core, cmd!("PING"), now, None);
        assert!(got(&mut core, &mut after).unwrap_err().is_connection());
    }

    /// A socket that finishes opening after a disconnect was asked for (the engine reports the
    /// connect's completion before it carries out the close) does not undo the disconnect: the
    /// core still wants the socket closed, and the disconnect is answered once it is.
    #[test]
    fn a_socket_opening_after_a_disconnect_is_closed_not_used() {
        let now = Instant::now();
        let mut core = Core::new(&config());
        core.connect(now);
        assert_eq!(core.want(now), Want::Open);
        core.handle_opening();
        core.disconnect(now);
        assert!(matches!(connected(&mut core), Some(Err(_))));
        core.handle_open(now);
        assert!(!core.is_connected(), "the disconnect was undone");
        assert_eq!(core.want(now), Want::Close);
        core.handle_closed(Error::connection("connection closed"), now);
        assert!(disconnected(&mut core));
        assert_eq!(core.want(now), Want::Nothing);
    }

    #[test]
    fn disconnect_fails_in_flight_calls_and_is_idempotent() {
        let now = Instant::now();
        let mut core = ready(config(), now);
        let mut a = call(&mut core, cmd!("GET", "a"), now, None);
        core.disconnect(now);
        assert_eq!(core.want(now), Want::Close);
        assert!(!disconnected(&mut core), "not before the socket is closed");
        core.handle_closed(Error::connection("closed"), now);
        assert!(disconnected(&mut core));
        let err = got(&mut core, &mut a).unwrap_err();
        assert!(
            err.to_string().contains("disconnected by the client"),
            "{err}"
        );
        core.disconnect(now);
        assert!(
            disconnected(&mut core),
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
            core.handle_opening();
            core.handle_open(now);
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
                core.handle_closed(Error::connection("reset"), now);
                assert!(got(&mut core, &mut rx).unwrap_err().is_connection());
                rx = call(&mut core, cmd!("GET", "k"), now, None);
            }
        }
    }

    #[test]
    fn a_server_without_hello_gets_resp2() {
        let now = Instant::now();
        let mut core = Core::new(&Config::new().password("pw"));
        let mut rx = call(&mut core, cmd!("PING"), now, None);
        core.handle_opening();
        core.handle_open(now);
        output(&mut core);
        feed(&mut core, b"-ERR unknown command 'HELLO'\r\n", now).unwrap();
        assert_eq!(output(&mut core), "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n");
        feed(&mut core, b"+OK\r\n", now).unwrap();
        assert!(core.is_connected() && !core.is_resp3());
        feed(&mut core, b"+PONG\r\n", now).unwrap();
        assert!(got(&mut core, &mut rx).is_ok());
    }

    #[test]
    fn refused_credentials_fail_the_waiting_calls_with_the_server_error() {
        let now = Instant::now();
        let mut core = Core::new(&Config::new().password("bad"));
        let mut rx = call(&mut core, cmd!("PING"), now, None);
        core.handle_opening();
        core.handle_open(now);
        feed(
            &mut core,
            b"-WRONGPASS invalid username-password pair\r\n",
            now,
        )
        .unwrap();
        assert_eq!(
            got(&mut core, &mut rx).unwrap_err().server_kind(),
            Some("WRONGPASS")
        );
        assert_eq!(core.want(now), Want::Close);
        core.handle_closed(Error::connection("closed"), now);
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
        core.handle_closed(err, now);
        assert!(matches!(
            got(&mut core, &mut a).unwrap_err(),
            Error::Protocol { .. }
        ));
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
        let mut a = call(&mut core, cmd!("GET", "a"), now, None);
        feed(
            &mut core,
            b">2\r\n+invalidate\r\n*1\r\n$1\r\na\r\n$1\r\nv\r\n",
            now,
        )
        .unwrap();
        assert_eq!(got(&mut core, &mut a).unwrap(), Value::Bulk("v".into()));
        assert!(matches!(&pushes(&mut core)[..], [Value::Push(_)]));
    }

    /// What `async_call` relies on (the callbacks themselves run in the link): each reply
    /// reaches its own id, whatever was abandoned between.
    #[test]
    fn replies_reach_their_ids_around_an_abandoned_call() {
        let now = Instant::now();
        let mut core = ready(config(), now);
        let mut a = call(&mut core, cmd!("PING"), now, None);
        let b = call(&mut core, cmd!("PING"), now, None);
        let mut c = call(&mut core, cmd!("PING"), now, None);
        core.abandon(b);
        feed(&mut core, b"+A\r\n+B\r\n+C\r\n", now).unwrap();
        assert_eq!(got(&mut core, &mut a).unwrap(), Value::Simple("A".into()));
        assert_eq!(got(&mut core, &mut c).unwrap(), Value::Simple("C".into()));
        assert!(pending(&mut core, &mut { b }));
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
        core.poll_transmit_at(t0 + ms(10));
        core.handle_timeout(t0 + ms(110));
        assert_eq!(got(&mut core, &mut a).unwrap_err(), Error::Timeout);
        assert_eq!(got(&mut core, &mut b).unwrap_err(), Error::Timeout);
        assert_eq!(core.want(t0 + ms(110)), Want::Nothing, "2 of 3: still up");
        let mut c = call(&mut core, cmd!("GET", "c"), t0 + ms(110), Some(ms(100)));
        let mut d = call(&mut core, cmd!("GET", "d"), t0 + ms(111), Some(ms(100)));
        let mut e = call(&mut core, cmd!("GET", "e"), t0 + ms(150), Some(ms(100)));
        core.poll_transmit_at(t0 + ms(150));
        // The driver wakes late: c's and d's deadlines have both passed.
        let t1 = t0 + ms(215);
        core.handle_timeout(t1);
        assert_eq!(got(&mut core, &mut c).unwrap_err(), Error::Timeout);
        assert_eq!(
            core.want(t1),
            Want::Close,
            "the third timeout gives the server up"
        );
        core.handle_closed(Error::connection("closed"), t1);
        for rx in [&mut d, &mut e] {
            let err = got(&mut core, rx).unwrap_err();
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
        core.handle_opening();
        core.handle_open(t1);
        output(&mut core);
        feed(&mut core, b"$1\r\nf\r\n", t1).unwrap();
        assert_eq!(got(&mut core, &mut f).unwrap(), Value::Bulk("f".into()));
    }

    #[test]
    fn any_byte_from_the_server_resets_the_liveness_count() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut core = ready(silent_rule(Some(2)), t0);
        let mut slow = call(&mut core, cmd!("GET", "slow"), t0, Some(ms(100)));
        let mut next = call(&mut core, cmd!("GET", "next"), t0 + ms(50), Some(ms(500)));
        core.handle_timeout(t0 + ms(100));
        assert_eq!(got(&mut core, &mut slow).unwrap_err(), Error::Timeout);
        // The late reply (a part of it is enough) shows the server is alive.
        feed(&mut core, b"$4\r\nla", t0 + ms(200)).unwrap();
        let mut third = call(&mut core, cmd!("GET", "x"), t0 + ms(200), Some(ms(100)));
        core.handle_timeout(t0 + ms(300));
        assert_eq!(got(&mut core, &mut third).unwrap_err(), Error::Timeout);
        assert_eq!(
            core.want(t0 + ms(300)),
            Want::Nothing,
            "1 since the last byte"
        );
        assert!(pending(&mut core, &mut next));
        feed(&mut core, b"te\r\n$4\r\nmine\r\n", t0 + ms(310)).unwrap();
        assert_eq!(
            got(&mut core, &mut next).unwrap(),
            Value::Bulk("mine".into())
        );
    }

    #[test]
    fn without_the_liveness_rule_a_silent_connection_stays_up() {
        let t0 = Instant::now();
        let mut core = ready(silent_rule(None), t0);
        for i in 0..10u64 {
            let at = t0 + Duration::from_millis(i * 10);
            let mut rx = call(&mut core, cmd!("PING"), at, Some(Duration::from_millis(5)));
            core.handle_timeout(at + Duration::from_millis(5));
            assert_eq!(got(&mut core, &mut rx).unwrap_err(), Error::Timeout);
        }
        assert_eq!(core.want(t0 + Duration::from_secs(1)), Want::Nothing);
        assert!(core.is_connected());
    }

    #[test]
    fn fire_and_forget_calls_count_for_the_liveness_rule() {
        let t0 = Instant::now();
        let mut core = ready(silent_rule(Some(2)), t0);
        for _ in 0..2 {
            // As the link submits a fire-and-forget call with a deadline: a caller of its own,
            // which nobody reads.
            call(
                &mut core,
                cmd!("INCR", "n"),
                t0,
                Some(Duration::from_millis(100)),
            );
        }
        core.poll_transmit_at(t0);
        assert_eq!(core.poll_timeout(), Some(t0 + Duration::from_millis(100)));
        core.handle_timeout(t0 + Duration::from_millis(100));
        assert_eq!(core.want(t0), Want::Close);
    }

    /// Calls the engine hands to the socket only after their deadline (the runtime driving it
    /// was stalled, by blocking code on its thread) time out, but say nothing about the server:
    /// the liveness rule leaves the connection up, and the next call is answered.
    #[test]
    fn calls_sent_only_after_their_deadline_do_not_count_for_the_liveness_rule() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut core = ready(silent_rule(Some(2)), t0);
        let mut late: Vec<Rx> = (0..3)
            .map(|_| call(&mut core, cmd!("GET", "a"), t0, Some(ms(100))))
            .collect();
        // The engine runs again 500 ms later: it writes them, then judges the deadlines.
        let t1 = t0 + ms(500);
        assert!(core.poll_transmit_at(t1).is_some());
        core.handle_timeout(t1);
        for rx in &mut late {
            assert_eq!(got(&mut core, rx).unwrap_err(), Error::Timeout);
        }
        assert_eq!(core.want(t1), Want::Nothing, "still up");
        // Never handed out at all before the deadline: the same.
        let mut unsent = call(&mut core, cmd!("GET", "b"), t1, Some(ms(100)));
        let mut unsent2 = call(&mut core, cmd!("GET", "c"), t1, Some(ms(100)));
        core.handle_timeout(t1 + ms(100));
        assert_eq!(got(&mut core, &mut unsent).unwrap_err(), Error::Timeout);
        assert_eq!(got(&mut core, &mut unsent2).unwrap_err(), Error::Timeout);
        assert_eq!(core.want(t1 + ms(100)), Want::Nothing, "still up");
        // The late replies arrive, are dropped, and a new call is answered.
        let mut next = call(&mut core, cmd!("GET", "d"), t1 + ms(100), Some(ms(100)));
        core.poll_transmit_at(t1 + ms(100));
        let replies = "$1\r\nx\r\n".repeat(5) + "$1\r\nd\r\n";
        feed(&mut core, replies.as_bytes(), t1 + ms(101)).unwrap();
        assert_eq!(
            got(&mut core, &mut next).unwrap(),
            Value::Bulk(b"d".to_vec().into())
        );
    }

    #[test]
    fn only_live_callers_within_their_deadlines_keep_the_core_busy() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut core = ready(silent_rule(None), t0);
        assert!(core.is_quiet());
        let timed_out = call(&mut core, cmd!("GET", "a"), t0, Some(ms(100)));
        let dropped = call(&mut core, cmd!("GET", "b"), t0, None);
        // A fire-and-forget call within its deadline (see the test above).
        call(&mut core, cmd!("INCR", "n"), t0, Some(ms(300)));
        assert!(!core.is_quiet(), "callers are waiting");
        core.abandon(dropped);
        core.handle_timeout(t0 + ms(100));
        core.abandon(timed_out);
        assert!(
            !core.is_quiet(),
            "a fire-and-forget call within its deadline"
        );
        core.handle_timeout(t0 + ms(300));
        assert!(
            core.is_quiet(),
            "nobody is left to answer, whatever the server does"
        );
        assert_eq!(core.queue_len(), 3, "the replies are still due on the wire");
    }

    #[test]
    fn an_idle_connection_is_pinged_and_given_up_when_the_ping_goes_unanswered() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut core = ready(config().health_check(Some(s(10))), t0);
        assert_eq!(core.poll_timeout(), Some(t0 + s(10)));
        core.handle_timeout(t0 + s(9));
        assert_eq!(output(&mut core), "", "not idle long enough");
        core.handle_timeout(t0 + s(10));
        assert_eq!(output(&mut core), "*1\r\n$4\r\nPING\r\n");
        assert_eq!(core.poll_timeout(), Some(t0 + s(20)));
        // Answered: nothing more until the connection has been idle again for the interval.
        feed(&mut core, b"+PONG\r\n", t0 + s(11)).unwrap();
        assert_eq!(core.poll_timeout(), Some(t0 + s(21)));
        core.handle_timeout(t0 + s(21));
        assert_eq!(output(&mut core), "*1\r\n$4\r\nPING\r\n");
        // A call made meanwhile waits behind the PING; then nothing comes back at all.
        let mut a = call(&mut core, cmd!("GET", "a"), t0 + s(22), None);
        core.handle_timeout(t0 + s(30));
        assert_eq!(core.want(t0 + s(30)), Want::Nothing);
        core.handle_timeout(t0 + s(31));
        assert_eq!(core.want(t0 + s(31)), Want::Close);
        core.handle_closed(Error::connection("closed"), t0 + s(31));
        let err = got(&mut core, &mut a).unwrap_err();
        assert!(
            err.is_connection() && err.to_string().contains("health-check"),
            "{err}"
        );
        assert_eq!(core.queue_len(), 0);
        assert_eq!(
            core.poll_timeout(),
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
        assert_eq!(core.poll_timeout(), None);
        core.handle_timeout(t0 + s(100));
        assert_eq!(
            output(&mut core),
            "",
            "a blocked call is not an idle connection"
        );
        feed(&mut core, b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n", t0 + s(100)).unwrap();
        assert!(got(&mut core, &mut slow).is_ok());
        assert_eq!(core.poll_timeout(), Some(t0 + s(110)));
        let mut off = ready(config(), t0);
        assert_eq!(off.poll_timeout(), None);
        off.handle_timeout(t0 + s(1000));
        assert_eq!(output(&mut off), "");
    }

    /// A call whose timeout comes during the TLS handshake (a TLS client on a plain port waits
    /// there) asks whether the port is a TLS port.
    #[cfg(feature = "tls")]
    #[test]
    fn a_call_timing_out_in_the_tls_handshake_asks_about_the_port() {
        let t0 = Instant::now();
        let cfg = Config::new()
            .protocol(Protocol::Resp2)
            .connect_timeout(Duration::from_secs(5));
        let mut core = Core::new(&cfg);
        let mut rx = call(
            &mut core,
            cmd!("PING"),
            t0,
            Some(Duration::from_millis(100)),
        );
        assert_eq!(core.want(t0), Want::Open);
        core.handle_opening();
        core.handle_securing();
        core.handle_timeout(t0 + Duration::from_millis(100));
        let err = got(&mut core, &mut rx).unwrap_err();
        assert!(
            matches!(&err, Error::Connection { sent: false, message, .. }
                if message.contains("is the port a TLS port?")),
            "{err:?}"
        );
    }

    /// A call whose timeout comes while its connection's attempt waits for an address says
    /// what is awaited (a Sentinel master name the sentinels do not know), not only that it
    /// was not connected.
    #[test]
    fn a_call_timing_out_while_held_says_what_is_awaited() {
        let t0 = Instant::now();
        let cfg = Config::sentinel("nosuch", [("127.0.0.1", 26379)])
            .protocol(Protocol::Resp2)
            .connect_timeout(Duration::from_secs(5));
        let mut core = Core::new(&cfg);
        let mut rx = call(
            &mut core,
            cmd!("PING"),
            t0,
            Some(Duration::from_millis(100)),
        );
        assert_eq!(core.want(t0), Want::Open);
        let why = Error::connection("no sentinel knows a master named \"nosuch\"");
        assert!(core.hold(t0, &why));
        core.handle_timeout(t0 + Duration::from_millis(100));
        let err = got(&mut core, &mut rx).unwrap_err();
        assert!(
            matches!(&err, Error::Connection { sent: false, .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("before the call's timeout")
                && text.contains("no sentinel knows a master named \"nosuch\""),
            "{text}"
        );
    }

    /// An attempt with no address yet waits (until the run's connect deadline at most), and
    /// starts at once when the address comes; a replica's `ROLE` closes the attempt and the
    /// calls wait for the next one, failing with that cause when the time runs out.
    #[test]
    fn a_held_attempt_waits_for_its_address_and_a_replica_is_retried() {
        let t0 = Instant::now();
        let cfg = Config::sentinel("mymaster", [("127.0.0.1", 26379)])
            .protocol(Protocol::Resp2)
            .connect_timeout(Duration::from_secs(1))
            .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(40));
        let mut core = Core::new(&cfg);
        let mut rx = call(&mut core, cmd!("PING"), t0, None);
        assert_eq!(core.want(t0), Want::Open);
        assert!(
            core.hold(t0, &Error::connection("asking the sentinels")),
            "no address yet: the attempt waits"
        );
        assert_eq!(core.want(t0), Want::Nothing);
        assert_eq!(core.poll_timeout(), Some(t0 + Duration::from_secs(1)));
        let t1 = t0 + Duration::from_millis(30);
        core.follow(false, Error::connection("unused"), t1);
        assert_eq!(core.want(t1), Want::Open, "the address came: go now");
        core.set_addr(&Addr::Tcp {
            host: "10.0.0.2".into(),
            port: 6380,
        });
        core.handle_opening();
        core.handle_open(t1);
        assert_eq!(output(&mut core), "*1\r\n$4\r\nROLE\r\n");
        assert!(
            pending(&mut core, &mut rx),
            "the call waits for the handshake"
        );
        feed(
            &mut core,
            b"*3\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n",
            t1,
        )
        .unwrap();
        assert_eq!(core.want(t1), Want::Close, "a replica: this attempt ends");
        core.handle_closed(Error::connection("connection closed"), t1);
        assert!(
            pending(&mut core, &mut rx),
            "the call waits for the next attempt"
        );
        // The deadline passes with no primary found: the call fails with the replica's cause.
        let late = t0 + Duration::from_secs(1);
        assert_eq!(core.want(late), Want::Open);
        assert!(
            !core.hold(late, &Error::connection("asking the sentinels")),
            "the deadline has come: no more waiting"
        );
        core.handle_opening();
        core.handle_unresolved(Error::connection("still asking the sentinels"), late);
        let err = got(&mut core, &mut rx).unwrap_err();
        assert!(err.is_connection(), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("ROLE says slave"),
            "the earlier cause is kept: {text}"
        );
        assert!(!text.contains("still asking"), "{text}");
        assert!(
            text.contains("the primary \"mymaster\" (last at 10.0.0.2:6380)"),
            "{text}"
        );
    }

    /// Following the source to a new address closes a ready connection: its calls in flight
    /// fail with the reason given, and the next call connects again.
    #[test]
    fn following_a_move_closes_the_connection_with_the_reason() {
        let now = Instant::now();
        let mut core = ready(config(), now);
        let mut rx = call(&mut core, cmd!("GET", "k"), now, None);
        let moved = Error::connection("the primary moved");
        core.follow(false, moved.clone(), now);
        assert!(core.is_connected(), "not moved: nothing to do");
        core.follow(true, moved, now);
        assert_eq!(core.want(now), Want::Close);
        core.handle_closed(Error::connection("closed"), now);
        let err = got(&mut core, &mut rx).unwrap_err();
        assert_eq!(err.to_string(), "connection error: the primary moved");
    }
}
