//! [`Proxy`]: a TCP proxy between a client and a real server that can hold frames back and so
//! reorder what the client reads: a reply held while the server's push frames (client-tracking
//! invalidations) pass ahead of it, or push frames held while replies pass.
//!
//! It reads RESP on both sides ([`ringdis::Parser`]): the client's commands, to know which reply
//! answers which command (one reply per command, in order; push frames answer none), and the
//! server's frames, to tell pushes (`>`) from replies. Bytes are forwarded exactly as read. It
//! does not follow the pub/sub mode of RESP2 (where messages are not pushes): it is for
//! request/reply connections in RESP3.

use bytes::{Bytes, BytesMut};
use ringdis::{Parser, Value};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A listening proxy to `127.0.0.1:<upstream>`. Every accepted connection gets its own upstream
/// connection; the rules ([`hold_reply`](Proxy::hold_reply), [`hold_pushes`](Proxy::hold_pushes))
/// apply to whichever connection meets them first. Dropping it closes every connection.
#[derive(Debug)]
pub struct Proxy {
    port: u16,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The next command whose arguments start with these has its reply held.
    armed: Option<Vec<Vec<u8>>>,
    /// The next command whose arguments start with these is held (not sent to the server).
    armed_command: Option<Vec<Vec<u8>>>,
    /// Push frames are held, not forwarded.
    hold_pushes: bool,
    /// Every command seen, in order (all connections).
    commands: Vec<Vec<Bytes>>,
    /// Push frames forwarded to the client.
    pushes_forwarded: usize,
    /// The open connections.
    conns: Vec<Arc<Mutex<Conn>>>,
}

/// One proxied connection's ordering state. Frames are written to the client under its lock,
/// so a release and the reader of the server never interleave.
#[derive(Debug)]
struct Conn {
    client: TcpStream,
    server: TcpStream,
    /// For each command sent and not answered yet: is its reply to be held?
    pending: VecDeque<bool>,
    /// A reply is held: it and every reply after it wait for a release.
    holding: bool,
    held_replies: Vec<Bytes>,
    held_pushes: Vec<Bytes>,
    /// A command is held: it and every command after it wait for a release.
    holding_commands: bool,
    held_commands: Vec<u8>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("bound").port();
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stop.load(Ordering::Acquire) {
                    break;
                }
                let Ok(client) = stream else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (Ok(client_in), Ok(server_in)) = (client.try_clone(), server.try_clone())
                else {
                    continue;
                };
                let conn = Arc::new(Mutex::new(Conn {
                    client,
                    server,
                    pending: VecDeque::new(),
                    holding: false,
                    held_replies: Vec::new(),
                    held_pushes: Vec::new(),
                    holding_commands: false,
                    held_commands: Vec::new(),
                }));
                accepting.lock().conns.push(conn.clone());
                let (up, down) = (accepting.clone(), accepting.clone());
                let up_conn = conn.clone();
                std::thread::spawn(move || upstream_loop(&up, &up_conn, client_in));
                std::thread::spawn(move || downstream_loop(&down, &conn, server_in));
            }
        });
        Proxy { port, shared }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Holds the reply to the next command whose arguments start with `prefix` (the name
    /// compared without case, e.g. `["GET", "k"]`), and every reply after it on that
    /// connection, until [`release`](Proxy::release). Push frames still pass.
    pub fn hold_reply<A: AsRef<[u8]>>(&self, prefix: &[A]) {
        self.shared.lock().armed = Some(prefix.iter().map(|a| a.as_ref().to_vec()).collect());
    }

    /// Holds the next command whose arguments start with `prefix` (as in
    /// [`hold_reply`](Proxy::hold_reply)) and every command after it on that connection: they
    /// reach the server on [`release`](Proxy::release).
    pub fn hold_command<A: AsRef<[u8]>>(&self, prefix: &[A]) {
        self.shared.lock().armed_command =
            Some(prefix.iter().map(|a| a.as_ref().to_vec()).collect());
    }

    /// Whether a command is held now (any connection).
    pub fn holding_commands(&self) -> bool {
        self.each_conn(|c| usize::from(c.holding_commands)) > 0
    }

    /// Holds every push frame from now on (replies still pass) until
    /// [`release`](Proxy::release).
    pub fn hold_pushes(&self) {
        self.shared.lock().hold_pushes = true;
    }

    /// Replies held now (all connections).
    pub fn held_replies(&self) -> usize {
        self.each_conn(|c| c.held_replies.len())
    }

    /// Push frames held now (all connections).
    pub fn held_pushes(&self) -> usize {
        self.each_conn(|c| c.held_pushes.len())
    }

    /// Push frames forwarded to clients so far.
    pub fn pushes_forwarded(&self) -> usize {
        self.shared.lock().pushes_forwarded
    }

    /// How many commands sent through the proxy so far start with `prefix` (as in
    /// [`hold_reply`](Proxy::hold_reply)).
    pub fn sent<A: AsRef<[u8]>>(&self, prefix: &[A]) -> usize {
        let prefix: Vec<&[u8]> = prefix.iter().map(|a| a.as_ref()).collect();
        let state = self.shared.lock();
        state
            .commands
            .iter()
            .filter(|c| starts_with(c, &prefix))
            .count()
    }

    /// Ends every hold: sends the held commands to the server, forwards the held push frames,
    /// then the held replies, in the order the server sent them; disarms a [`hold_reply`](Proxy::hold_reply) not met yet, and one met
    /// whose reply has not come yet.
    pub fn release(&self) {
        let conns = {
            let mut state = self.shared.lock();
            state.armed = None;
            state.armed_command = None;
            state.hold_pushes = false;
            state.conns.clone()
        };
        let mut forwarded = 0;
        for conn in conns {
            let mut c = lock(&conn);
            let commands = std::mem::take(&mut c.held_commands);
            c.holding_commands = false;
            let _ = c.server.write_all(&commands);
            // A held command whose reply has not come yet is released too.
            c.pending.iter_mut().for_each(|hold| *hold = false);
            let pushes = std::mem::take(&mut c.held_pushes);
            let replies = std::mem::take(&mut c.held_replies);
            c.holding = false;
            forwarded += pushes.len();
            for frame in pushes.iter().chain(&replies) {
                let _ = c.client.write_all(frame);
            }
        }
        self.shared.lock().pushes_forwarded += forwarded;
    }

    /// Ends the command holds only: the held commands go to the server; replies and push frames
    /// stay held if they were.
    pub fn release_commands(&self) {
        let conns = {
            let mut state = self.shared.lock();
            state.armed_command = None;
            state.conns.clone()
        };
        for conn in conns {
            let mut c = lock(&conn);
            let commands = std::mem::take(&mut c.held_commands);
            c.holding_commands = false;
            let _ = c.server.write_all(&commands);
        }
    }

    /// Ends the reply holds only: forwards the held replies (a rule not met yet is disarmed);
    /// push frames stay held if they were.
    pub fn release_replies(&self) {
        let conns = {
            let mut state = self.shared.lock();
            state.armed = None;
            state.conns.clone()
        };
        for conn in conns {
            let mut c = lock(&conn);
            c.pending.iter_mut().for_each(|hold| *hold = false);
            let replies = std::mem::take(&mut c.held_replies);
            c.holding = false;
            for frame in &replies {
                let _ = c.client.write_all(frame);
            }
        }
    }

    /// Closes every connection it proxies now (the listener stays: a client may reconnect).
    pub fn cut(&self) {
        let conns = std::mem::take(&mut self.shared.lock().conns);
        for conn in conns {
            let c = lock(&conn);
            let _ = c.client.shutdown(Shutdown::Both);
            let _ = c.server.shutdown(Shutdown::Both);
        }
    }

    fn each_conn(&self, f: impl Fn(&Conn) -> usize) -> usize {
        let conns = self.shared.lock().conns.clone();
        conns.iter().map(|c| f(&lock(c))).sum()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.cut();
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn lock(conn: &Mutex<Conn>) -> MutexGuard<'_, Conn> {
    conn.lock().unwrap_or_else(|p| p.into_inner())
}

fn starts_with(args: &[Bytes], prefix: &[&[u8]]) -> bool {
    args.len() >= prefix.len()
        && args.iter().zip(prefix).enumerate().all(|(i, (a, p))| {
            if i == 0 {
                a.eq_ignore_ascii_case(p)
            } else {
                a[..] == p[..]
            }
        })
}

/// The RESP frames of one direction of a proxied connection, each with its exact bytes: the
/// parser consumes `scan`, and `raw` (the same bytes) gives what to forward.
struct Frames {
    from: TcpStream,
    parser: Parser,
    scan: BytesMut,
    raw: BytesMut,
    chunk: Vec<u8>,
}

impl Frames {
    fn new(from: TcpStream) -> Frames {
        Frames {
            from,
            parser: Parser::default(),
            scan: BytesMut::new(),
            raw: BytesMut::new(),
            chunk: vec![0u8; 64 << 10],
        }
    }

    /// The next whole frame and its bytes; `None` once the socket closed or failed, or sent
    /// bytes that are not RESP.
    fn next(&mut self) -> Option<(Value, BytesMut)> {
        loop {
            let before = self.scan.len();
            match self.parser.parse(&mut self.scan) {
                Ok(Some(value)) => {
                    let frame = self.raw.split_to(before - self.scan.len());
                    return Some((value, frame));
                }
                Ok(None) => {}
                Err(_) => return None,
            }
            let n = match self.from.read(&mut self.chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => n,
            };
            self.scan.extend_from_slice(&self.chunk[..n]);
            self.raw.extend_from_slice(&self.chunk[..n]);
        }
    }
}

/// Client -> server: registers each whole command (held or not) and forwards it, unless
/// commands are held on this connection (then it waits for a release), so its reply always
/// finds it registered.
fn upstream_loop(shared: &Shared, conn: &Mutex<Conn>, from_client: TcpStream) {
    let mut frames = Frames::new(from_client);
    while let Some((value, frame)) = frames.next() {
        let Value::Array(args) = value else {
            // Not a command: stop proxying this connection.
            break;
        };
        let args: Vec<Bytes> = args
            .into_iter()
            .map(|a| match a {
                Value::Bulk(b) => b,
                other => Bytes::from(format!("{other:?}")),
            })
            .collect();
        // Under the connection's lock, then the state's (the order everywhere): a release
        // either comes before (the rule is gone) or after (it clears this hold too).
        let mut c = lock(conn);
        let mut state = shared.lock();
        let matches = |rule: &Option<Vec<Vec<u8>>>| {
            rule.as_ref().is_some_and(|p| {
                let p: Vec<&[u8]> = p.iter().map(|a| &a[..]).collect();
                starts_with(&args, &p)
            })
        };
        let hold = matches(&state.armed);
        if hold {
            state.armed = None;
        }
        if matches(&state.armed_command) {
            state.armed_command = None;
            c.holding_commands = true;
        }
        state.commands.push(args);
        drop(state);
        c.pending.push_back(hold);
        if c.holding_commands {
            c.held_commands.extend_from_slice(&frame);
        } else if c.server.write_all(&frame).is_err() {
            drop(c);
            break;
        }
    }
    close(conn);
}

/// Server -> client: forwards each frame unless it is held.
fn downstream_loop(shared: &Shared, conn: &Mutex<Conn>, from_server: TcpStream) {
    let mut frames = Frames::new(from_server);
    while let Some((value, frame)) = frames.next() {
        let frame = frame.freeze();
        let push = matches!(value, Value::Push(_));
        // The rule is read under the connection's lock (order: connection, then state), so
        // a release never misses a frame held by a rule it already ended.
        let mut c = lock(conn);
        if push {
            if shared.lock().hold_pushes {
                c.held_pushes.push(frame);
                continue;
            }
            let _ = c.client.write_all(&frame);
            shared.lock().pushes_forwarded += 1;
            continue;
        }
        let hold = c.pending.pop_front().unwrap_or(false);
        if hold || c.holding {
            c.holding = true;
            c.held_replies.push(frame);
        } else {
            let _ = c.client.write_all(&frame);
        }
    }
    close(conn);
}

fn close(conn: &Mutex<Conn>) {
    let c = lock(conn);
    let _ = c.client.shutdown(Shutdown::Both);
    let _ = c.server.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Server, ServerKind};
    use std::time::{Duration, Instant};

    fn send(sock: &mut TcpStream, args: &[&str]) {
        let mut out = BytesMut::new();
        ringdis::resp::write_command(&mut out, args.len(), &encoded(args));
        sock.write_all(&out).expect("write");
    }

    fn encoded(args: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for a in args {
            out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        out
    }

    fn frames(sock: &mut TcpStream, n: usize) -> Vec<Value> {
        let mut parser = Parser::default();
        let mut input = BytesMut::new();
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        while out.len() < n {
            if let Some(v) = parser.parse(&mut input).expect("valid RESP") {
                out.push(v);
                continue;
            }
            let got = sock.read(&mut chunk).expect("read within 10 s");
            assert!(got > 0, "closed");
            input.extend_from_slice(&chunk[..got]);
        }
        out
    }

    fn until(what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "never: {what}");
            std::thread::yield_now();
        }
    }

    /// A held reply lets the push the server sent after it pass first; a release sends the
    /// reply; then push holding reorders the other way.
    #[test]
    fn reorders_a_reply_behind_a_push_and_a_push_behind_a_reply() {
        let server = Server::start(ServerKind::Redis);
        let proxy = Proxy::start(server.port());
        let mut reader = TcpStream::connect(("127.0.0.1", proxy.port())).expect("connect");
        reader
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut writer = TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
        send(&mut reader, &["HELLO", "3"]);
        send(&mut reader, &["CLIENT", "TRACKING", "ON"]);
        frames(&mut reader, 2);
        send(&mut writer, &["SET", "k", "old"]);
        frames(&mut writer, 1);

        proxy.hold_reply(&["get", "k"]);
        send(&mut reader, &["GET", "k"]);
        send(&mut reader, &["PTTL", "k"]);
        until("both replies held", || proxy.held_replies() == 2);
        send(&mut writer, &["SET", "k", "new"]);
        frames(&mut writer, 1);
        until("the push forwarded", || proxy.pushes_forwarded() == 1);
        proxy.release();
        let got = frames(&mut reader, 3);
        assert!(matches!(&got[0], Value::Push(p) if p[0] == Value::Bulk("invalidate".into())));
        assert_eq!(got[1], Value::Bulk("old".into()));
        assert_eq!(got[2], Value::Int(-1));
        assert_eq!(proxy.sent(&["GET", "k"]), 1);
        assert_eq!(proxy.sent(&["pttl"]), 1);

        proxy.hold_pushes();
        send(&mut reader, &["GET", "k"]);
        frames(&mut reader, 1);
        send(&mut writer, &["SET", "k", "newer"]);
        frames(&mut writer, 1);
        until("the push held", || proxy.held_pushes() == 1);
        send(&mut reader, &["GET", "k"]);
        assert_eq!(frames(&mut reader, 1)[0], Value::Bulk("newer".into()));
        proxy.release();
        assert!(matches!(&frames(&mut reader, 1)[0], Value::Push(_)));
        assert_eq!(proxy.pushes_forwarded(), 2);
    }
}
