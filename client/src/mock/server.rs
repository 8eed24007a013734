//! The scripted server behind a mock client: it reads the RESP the connection core writes,
//! answers each command from the script, and hands the reply bytes back to the link, on the
//! caller's own thread. No socket, no engine thread, no async runtime.
//!
//! It drives each [`Link`] as an engine would (see `engine/link.rs` for the contract): a call
//! wakes it, it runs the link's turn, opens the "connection" when asked, takes every byte the
//! core transmits, and feeds the answers to [`Link::handle_input`]. Timers (reconnect
//! backoff, deadlines) go to ringdis's timer thread, which wakes it again.
//!
//! It speaks for the server where the library, not the user, talks: the handshake (`HELLO`,
//! `AUTH`, `SELECT`, `CLIENT SETNAME`, `CLIENT TRACKING`), and the framing of transactions
//! (`MULTI`, `QUEUED`, `EXEC`'s array). Everything else is the script's.

use super::encode::write_value;
use crate::config::Config;
use crate::engine::{Driver, Link, Wake};
use crate::resp::{Limits, Parser};
use crate::{Cmd, Error, Result, ServerError, Value};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError, Weak};
use std::time::Instant;

/// What the script says to do about one command.
#[derive(Clone, Debug)]
pub(crate) enum Answer {
    /// Send this reply (a [`Value::Error`] is an error reply).
    Reply(Value),
    /// Close the connection instead of answering.
    Disconnect,
}

/// One expected command and its answer.
#[derive(Debug)]
pub(crate) struct Expected {
    pub cmd: Cmd,
    pub answer: Answer,
}

/// Answers commands the script does not expect, when set.
pub(crate) type Fallback = Box<dyn FnMut(&Cmd) -> Option<Value> + Send>;

/// The fallback as the script holds it: shared with whoever runs it, one run at a time, so a
/// connection whose command comes while another's is being answered waits its turn.
pub(crate) type SharedFallback = Arc<Mutex<Fallback>>;

thread_local! {
    /// This thread is running the fallback (which may make a command reach the mock on
    /// another connection): it is not run again inside itself.
    static IN_FALLBACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The script and what happened to it, shared by every connection of the mock.
#[derive(Default)]
pub(crate) struct Script {
    pub expected: VecDeque<Expected>,
    pub fallback: Option<SharedFallback>,
    /// Every command the user's code sent, in order (not the handshake's).
    pub received: Vec<Cmd>,
    /// What went wrong: one line per command nothing in the script answered.
    pub unexpected: Vec<String>,
}

/// The server: clones share the script.
#[derive(Clone, Default)]
pub(crate) struct Server {
    pub script: Arc<Mutex<Script>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let script = self.lock();
        f.debug_struct("MockServer")
            .field("expected", &script.expected.len())
            .field("received", &script.received.len())
            .finish_non_exhaustive()
    }
}

impl Server {
    pub fn lock(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The script's answer to a user's command: the next expected one if it is this command,
    /// else the fallback's, else an error reply saying what was expected (also recorded).
    /// True if `cmd` is the script's next expected command.
    fn expects_next(&self, cmd: &Cmd) -> bool {
        self.lock()
            .expected
            .front()
            .is_some_and(|e| same(&e.cmd, cmd))
    }

    fn answer(&self, cmd: Cmd) -> Answer {
        let fallback = {
            let mut script = self.lock();
            script.received.push(cmd.clone());
            if script.expected.front().is_some_and(|e| same(&e.cmd, &cmd)) {
                if let Some(e) = script.expected.pop_front() {
                    return e.answer;
                }
            }
            script.fallback.clone()
        };
        // Run outside the lock: the closure may use the mock.
        let mut panicked = false;
        if let Some(fallback) = fallback.filter(|_| !IN_FALLBACK.get()) {
            // A panic in it must not leave the call unanswered: it is reported instead.
            let mut fallback = fallback.lock().unwrap_or_else(|p| p.into_inner());
            IN_FALLBACK.set(true);
            let run = std::panic::AssertUnwindSafe(|| fallback(&cmd));
            let reply = std::panic::catch_unwind(run);
            IN_FALLBACK.set(false);
            drop(fallback);
            match reply {
                Ok(Some(reply)) => return Answer::Reply(reply),
                Ok(None) => {}
                Err(_) => panicked = true,
            }
        }
        let mut script = self.lock();
        let why = match script.expected.front() {
            _ if panicked => format!("the `otherwise` closure panicked on `{cmd}`"),
            Some(e) => format!(
                "unexpected command `{cmd}`: the script expected `{}`",
                e.cmd
            ),
            None => format!("unexpected command `{cmd}`: the script expected nothing more"),
        };
        script.unexpected.push(why.clone());
        Answer::Reply(Value::Error(ServerError {
            kind: "MOCK".into(),
            message: why,
        }))
    }
}

/// True when `a` and `b` send the same arguments (the command name in any case).
pub(crate) fn same(a: &Cmd, b: &Cmd) -> bool {
    let (mut a, mut b) = (a.args().iter(), b.args().iter());
    match (a.next(), b.next()) {
        (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => a.eq(b),
        (None, None) => true,
        _ => false,
    }
}

impl Driver for Server {
    fn attach(&self, config: Arc<Config>) -> Result<Arc<Link>> {
        // The mock speaks plain RESP: a configuration made for TLS (a `rediss://` URL) is
        // served as it is (as its address is ignored), not refused by a TLS handshake.
        #[cfg(feature = "tls")]
        let config = match config.tls {
            Some(_) => Arc::new(Config {
                tls: None,
                ..(*config).clone()
            }),
            None => config,
        };
        let cell = Arc::new(OnceLock::new());
        let wire = Arc::new(Wire {
            server: self.clone(),
            link: cell.clone(),
            conn: Mutex::new(Conn::default()),
            pending: AtomicBool::new(false),
            timer: Mutex::new(None),
        });
        let link = Link::new(config, Box::new(WakeWire(wire)));
        let _ = cell.set(Arc::downgrade(&link));
        Ok(link)
    }
}

/// One connection of the mock: the link it drives and the server side of its session.
struct Wire {
    server: Server,
    link: Arc<OnceLock<Weak<Link>>>,
    /// The session; held by whoever drives the link (one at a time).
    conn: Mutex<Conn>,
    /// Set by every wake-up: the driver goes round again.
    pending: AtomicBool,
    /// When the timer thread is due to wake it.
    timer: Mutex<Option<Instant>>,
}

/// The link's waker: drives it right there.
struct WakeWire(Arc<Wire>);

impl Wake for WakeWire {
    fn wake(&self) {
        Wire::wake(&self.0);
    }
}

impl Wire {
    /// Drives the link until no wake-up is left. A wake-up while another thread (or this one,
    /// from a callback the drive runs) drives it only asks that driver to go round again.
    fn wake(self: &Arc<Self>) {
        self.pending.store(true, Ordering::SeqCst);
        loop {
            let mut conn = match self.conn.try_lock() {
                Ok(c) => c,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            while self.pending.swap(false, Ordering::SeqCst) {
                self.drive(&mut conn);
            }
            drop(conn);
            // A wake-up between the last swap and the unlock found the lock held.
            if !self.pending.load(Ordering::SeqCst) {
                return;
            }
        }
    }

    /// One round, as an engine's loop turn: timers, open/close, every byte out and its answer.
    fn drive(self: &Arc<Self>, conn: &mut Conn) {
        let Some(link) = self.link.get().and_then(Weak::upgrade) else {
            return;
        };
        let now = Instant::now();
        if !link.turn(now) {
            // Finished: every handle gone, no caller left.
            link.stopped();
            return;
        }
        for _ in 0..8 {
            match link.want(now) {
                crate::engine::Want::Open => {
                    link.handle_opening();
                    *conn = Conn::default();
                    link.handle_open(now);
                }
                crate::engine::Want::Close => {
                    *conn = Conn::default();
                    link.handle_closed(Error::connection("closed"), now);
                }
                crate::engine::Want::Nothing => break,
            }
        }
        while let Some(bytes) = link.poll_transmit() {
            let (reply, close) = conn.serve(&bytes, &self.server);
            if !reply.is_empty() {
                if let Err(e) = link.handle_input(&reply, now) {
                    *conn = Conn::default();
                    link.handle_closed(e, now);
                    break;
                }
            }
            if close {
                *conn = Conn::default();
                link.handle_closed(
                    Error::connection(
                        "the mock server closed the connection (the script said `disconnects`)",
                    ),
                    now,
                );
                break;
            }
        }
        self.wake_at(link.poll_timeout(Instant::now()));
    }

    /// Has the timer thread wake this wire at `at`, unless an earlier wake-up is already due.
    fn wake_at(self: &Arc<Self>, at: Option<Instant>) {
        let Some(at) = at else { return };
        {
            let mut timer = self.timer.lock().unwrap_or_else(|p| p.into_inner());
            if timer.is_some_and(|t| t <= at && t > Instant::now()) {
                return;
            }
            *timer = Some(at);
        }
        crate::timer::call_at(at, self, |wire: Arc<Wire>| wire.wake());
    }
}

/// The server side of one connection.
struct Conn {
    input: BytesMut,
    parser: Parser,
    /// `HELLO 3` was said.
    resp3: bool,
    /// Inside `MULTI`: the answers queued for `EXEC`, and whether a command was refused.
    multi: Option<(Vec<Value>, bool)>,
}

impl Default for Conn {
    fn default() -> Self {
        Conn {
            input: BytesMut::new(),
            parser: Parser::new(Limits::default()),
            resp3: false,
            multi: None,
        }
    }
}

impl Conn {
    /// Reads the commands in `bytes` and answers them; `true` when the connection is to be
    /// closed after the answers so far.
    fn serve(&mut self, bytes: &[u8], server: &Server) -> (BytesMut, bool) {
        self.input.extend_from_slice(bytes);
        let mut out = BytesMut::new();
        loop {
            let cmd = match self.parser.parse(&mut self.input) {
                Ok(Some(Value::Array(args))) => to_cmd(args),
                Ok(Some(other)) => Err(format!("a command is an array, not {}", other.describe())),
                Ok(None) => return (out, false),
                Err(e) => Err(e.to_string()),
            };
            let reply = match cmd {
                Ok(cmd) => match self.command(cmd, server) {
                    Answer::Reply(v) => v,
                    Answer::Disconnect => return (out, true),
                },
                Err(why) => {
                    // Not RESP the core would write: the stream cannot be trusted further.
                    let e = ServerError {
                        kind: "MOCK".into(),
                        message: format!("the mock could not read a command: {why}"),
                    };
                    write_value(&mut out, &Value::Error(e), self.resp3);
                    return (out, true);
                }
            };
            // A push is not a reply: a scripted one is sent as the array it holds.
            let reply = match reply {
                Value::Push(items) => Value::Array(items),
                v => v,
            };
            write_value(&mut out, &reply, self.resp3);
        }
    }

    /// The answer to one command.
    fn command(&mut self, cmd: Cmd, server: &Server) -> Answer {
        let ok = || Answer::Reply(Value::Simple("OK".into()));
        let words: Vec<String> = cmd
            .args()
            .iter()
            .take(2)
            .map(|w| String::from_utf8_lossy(w).to_ascii_uppercase())
            .collect();
        match (
            words.first().map(String::as_str),
            words.get(1).map(String::as_str),
        ) {
            // The handshake, which the library sends (the gate refuses these from users).
            (Some("HELLO"), version) => {
                self.resp3 = version == Some("3");
                return Answer::Reply(hello(self.resp3));
            }
            (Some("AUTH" | "SELECT"), _) | (Some("CLIENT"), Some("SETNAME" | "TRACKING")) => {
                return ok();
            }
            _ => {}
        }
        let name = words.first().map(String::as_str);
        match (name, self.multi.take()) {
            (Some("MULTI"), None) => {
                server.lock().received.push(cmd);
                self.multi = Some((Vec::new(), false));
                ok()
            }
            (Some("EXEC"), Some((queued, refused))) => {
                let scripted = server.expects_next(&cmd);
                if scripted {
                    // An EXEC the script answers (nil: a watched key changed).
                    return server.answer(cmd);
                }
                server.lock().received.push(cmd);
                if refused {
                    return Answer::Reply(error(
                        "EXECABORT Transaction discarded because of previous errors.",
                    ));
                }
                Answer::Reply(Value::Array(queued))
            }
            (Some("DISCARD"), Some(_)) => {
                server.lock().received.push(cmd);
                ok()
            }
            (_, Some((mut queued, refused))) => {
                let answer = server.answer(cmd);
                match answer {
                    Answer::Reply(Value::Error(e)) if e.kind == "MOCK" => {
                        // Refused when queued, as a server refuses an unknown command.
                        self.multi = Some((queued, true));
                        Answer::Reply(Value::Error(e))
                    }
                    Answer::Reply(v) => {
                        queued.push(v);
                        self.multi = Some((queued, refused));
                        Answer::Reply(Value::Simple("QUEUED".into()))
                    }
                    Answer::Disconnect => Answer::Disconnect,
                }
            }
            (Some("WATCH" | "UNWATCH" | "PING"), None) => {
                // Answered as a server would unless the script says otherwise.
                let scripted = server.expects_next(&cmd);
                if scripted {
                    return server.answer(cmd);
                }
                let pong = name == Some("PING");
                server.lock().received.push(cmd);
                if pong {
                    Answer::Reply(Value::Simple("PONG".into()))
                } else {
                    ok()
                }
            }
            (_, None) => server.answer(cmd),
        }
    }
}

/// A command read off the wire: an array of bulk strings.
fn to_cmd(args: Vec<Value>) -> std::result::Result<Cmd, String> {
    let mut cmd = Cmd::new("");
    for arg in args {
        match arg {
            Value::Bulk(b) => cmd.push_arg(b.as_ref()),
            other => {
                return Err(format!(
                    "an argument is a bulk string, not {}",
                    other.describe()
                ))
            }
        };
    }
    Ok(cmd)
}

fn error(line: &str) -> Value {
    Value::Error(ServerError::from_line(line))
}

/// `HELLO`'s reply, as Redis 7 gives it.
fn hello(resp3: bool) -> Value {
    let field = |k: &'static str, v: Value| (Value::Bulk(Bytes::from_static(k.as_bytes())), v);
    Value::Map(vec![
        field("server", "redis".into()),
        field("version", "7.0.0".into()),
        field("proto", Value::Int(if resp3 { 3 } else { 2 })),
        field("id", Value::Int(1)),
        field("mode", "standalone".into()),
        field("role", "master".into()),
        field("modules", Value::Array(Vec::new())),
    ])
}
