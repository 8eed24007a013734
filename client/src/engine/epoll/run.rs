//! The epoll engine thread: one `mio::Poll` for the sockets of every link on it, the hub's
//! waker, and one timer (the poll timeout) for all their deadlines.
//!
//! Each loop turn: take the new links, the woken ones and the finished name resolutions from
//! the hub; mark the links whose deadline passed; serve the sockets that reported readiness
//! (reads bounded per link, so one busy link cannot starve the rest); then turn every marked
//! link (`turn`, `obey`, flush), and wait for the next event, wake-up or deadline. Whatever one
//! link does (an error, a panic) ends that link only: it is closed and stopped, the others go on.
//! When the last link is finished the thread exits and releases its descriptors; if it ever
//! ends otherwise (a panic outside any link, a broken poll), every link it had is stopped so no
//! caller waits for it.

use super::hub::{self, Adopt, Hub, Key, Resolved};
use super::socket::{Env, Sock, SockIo};
use crate::engine::deadlines::Deadlines;
use crate::engine::Link;
use mio::{Events, Poll};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Set by a unit test to make the thread panic outside any link at its next loop turn.
#[cfg(test)]
static PANIC_NEXT_TURN: AtomicBool = AtomicBool::new(false);

/// The read buffer the thread shares among its links.
const SCRATCH: usize = 64 * 1024;
/// Readiness events taken per wait.
const EVENTS: usize = 256;

/// One link on the engine.
struct Slot {
    key: Key,
    link: Arc<Link>,
    /// Shared with the link's wake: set while the link is on the hub's ready list.
    mark: Arc<AtomicBool>,
    sock: Sock,
    /// The link's deadline as the heap knows it.
    deadline: Option<Instant>,
    /// On the `due` list.
    due: bool,
    /// On the `io` list.
    io: bool,
}

/// The thread's state. Dropping it (on any exit, a panic included) stops every link it has.
struct Runner {
    poll: Poll,
    hub: Arc<Hub>,
    slots: Vec<Option<Slot>>,
    live: usize,
    deadlines: Deadlines<Key>,
    /// Links to turn this loop turn.
    due: Vec<u32>,
    /// Links whose socket has readiness to serve.
    io: Vec<u32>,
    scratch: Box<[u8]>,
    /// Taken from the hub: reused buffers.
    new: Vec<Adopt>,
    ready: Vec<Key>,
    resolved: Vec<Resolved>,
    /// The hub no longer hands this thread links.
    retired: bool,
}

/// Starts the engine thread for `hub`, polling `poll` (which holds the hub's waker).
pub(super) fn spawn(poll: Poll, hub: Arc<Hub>) -> std::io::Result<()> {
    let runner = Runner {
        poll,
        hub,
        slots: Vec::new(),
        live: 0,
        deadlines: Deadlines::default(),
        due: Vec::new(),
        io: Vec::new(),
        scratch: vec![0u8; SCRATCH].into_boxed_slice(),
        new: Vec::new(),
        ready: Vec::new(),
        resolved: Vec::new(),
        retired: false,
    };
    std::thread::Builder::new()
        .name("ringdis-epoll".to_owned())
        .spawn(move || runner.run())
        .map(drop)
}

fn slot_mut(slots: &mut [Option<Slot>], key: Key) -> Option<&mut Slot> {
    slots
        .get_mut(key.slot as usize)
        .and_then(Option::as_mut)
        .filter(|s| s.gen() == key.gen)
}

impl Slot {
    fn gen(&self) -> u32 {
        self.key.gen
    }
}

fn mark_due(due: &mut Vec<u32>, slot: &mut Slot) {
    if !slot.due {
        slot.due = true;
        due.push(slot.key.slot);
    }
}

impl Runner {
    fn run(mut self) {
        let mut events = Events::with_capacity(EVENTS);
        loop {
            #[cfg(test)]
            if PANIC_NEXT_TURN.swap(false, Ordering::SeqCst) {
                panic!("a panic on the engine thread, injected by a test");
            }
            let now = Instant::now();
            self.take_inbox(now);
            self.expire(now);
            self.serve(now);
            self.turn_due(now);
            if self.live == 0 {
                if hub::retire(&self.hub, false).is_some() {
                    self.retired = true;
                    return;
                }
                continue; // a link was attached meanwhile
            }
            let busy = !self.io.is_empty() || !self.due.is_empty();
            let parked = !busy && self.hub.park();
            let timeout = if parked {
                self.next_deadline()
                    .map(|at| at.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            let polled = self.poll.poll(&mut events, timeout);
            if parked {
                self.hub.unpark();
            }
            if let Err(e) = polled {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    // The poll itself broke: nothing more can be done on this thread; dropping
                    // the runner stops every link.
                    return;
                }
            }
            for ev in events.iter() {
                let Some(key) = Key::of(ev.token()) else {
                    continue; // the waker: the inbox is read at the top of the loop
                };
                if let Some(slot) = slot_mut(&mut self.slots, key) {
                    if slot.sock.ready(ev) && !slot.io {
                        slot.io = true;
                        self.io.push(key.slot);
                    }
                }
            }
        }
    }

    /// New links, woken links and finished resolutions.
    fn take_inbox(&mut self, now: Instant) {
        {
            let mut inbox = self.hub.inbox();
            std::mem::swap(&mut inbox.new, &mut self.new);
            std::mem::swap(&mut inbox.ready, &mut self.ready);
            std::mem::swap(&mut inbox.resolved, &mut self.resolved);
        }
        for adopt in self.new.drain(..) {
            let i = adopt.key.slot as usize;
            if self.slots.len() <= i {
                self.slots.resize_with(i + 1, || None);
            }
            let mut slot = Slot {
                key: adopt.key,
                link: adopt.link,
                mark: adopt.mark,
                sock: Sock::new(adopt.key),
                deadline: None,
                due: false,
                io: false,
            };
            mark_due(&mut self.due, &mut slot);
            if let Some(old) = self.slots[i].replace(slot) {
                // Cannot happen (a slot is reserved once until released); never lose a link.
                old.link.stopped();
            } else {
                self.live += 1;
            }
        }
        for key in self.ready.drain(..) {
            if let Some(slot) = slot_mut(&mut self.slots, key) {
                mark_due(&mut self.due, slot);
            }
        }
        let env = Env {
            registry: self.poll.registry(),
            hub: &self.hub,
        };
        let mut failed = Vec::new();
        for r in self.resolved.drain(..) {
            let key = r.key;
            let Some(slot) = slot_mut(&mut self.slots, key) else {
                continue;
            };
            let (sock, link) = (&mut slot.sock, &slot.link);
            if catch_unwind(AssertUnwindSafe(|| sock.resolved(link, &env, r, now))).is_err() {
                failed.push(key);
                continue;
            }
            mark_due(&mut self.due, slot);
        }
        for key in failed {
            self.finish(key, false, now);
        }
    }

    /// Marks the links whose deadline has come.
    fn expire(&mut self, now: Instant) {
        loop {
            let slots = &self.slots;
            let Some(key) = self
                .deadlines
                .pop_due(now, |k, at| has_deadline(slots, k, at))
            else {
                return;
            };
            if let Some(slot) = slot_mut(&mut self.slots, key) {
                slot.deadline = None;
                mark_due(&mut self.due, slot);
            }
        }
    }

    /// Serves the sockets that reported readiness; a link with more to read stays listed.
    fn serve(&mut self, now: Instant) {
        let list = std::mem::take(&mut self.io);
        let env = Env {
            registry: self.poll.registry(),
            hub: &self.hub,
        };
        let mut failed = Vec::new();
        for &i in &list {
            let Some(slot) = self.slots.get_mut(i as usize).and_then(Option::as_mut) else {
                continue;
            };
            slot.io = false;
            let (sock, link, scratch) = (&mut slot.sock, &slot.link, &mut self.scratch);
            match catch_unwind(AssertUnwindSafe(|| sock.service(link, &env, scratch, now))) {
                Ok(more) => {
                    if more {
                        slot.io = true;
                        self.io.push(i);
                    }
                    mark_due(&mut self.due, slot);
                }
                Err(_) => failed.push(slot.key),
            }
        }
        for key in failed {
            self.finish(key, false, now);
        }
    }

    /// Turns every marked link: its requests and timers, what it wants done with its socket,
    /// its bytes to send, and its next deadline.
    fn turn_due(&mut self, now: Instant) {
        let list = std::mem::take(&mut self.due);
        let mut done = Vec::new();
        {
            let env = Env {
                registry: self.poll.registry(),
                hub: &self.hub,
            };
            for &i in &list {
                let Some(slot) = self.slots.get_mut(i as usize).and_then(Option::as_mut) else {
                    continue;
                };
                slot.due = false;
                // Cleared before the turn drains the link's requests: a wake after this point
                // lists the link again.
                slot.mark.store(false, Ordering::SeqCst);
                let (sock, link) = (&mut slot.sock, &slot.link);
                let turned = catch_unwind(AssertUnwindSafe(|| {
                    if !link.turn(now) {
                        return None;
                    }
                    link.obey(now, &mut SockIo { sock, env: &env });
                    sock.flush(link, &env, now);
                    Some(link.poll_timeout(now))
                }));
                match turned {
                    Ok(Some(deadline)) => {
                        if deadline != slot.deadline {
                            slot.deadline = deadline;
                            if let Some(at) = deadline {
                                self.deadlines.push(at, slot.key);
                            }
                        }
                    }
                    Ok(None) => done.push((slot.key, true)),
                    Err(_) => done.push((slot.key, false)),
                }
            }
        }
        for (key, orderly) in done {
            self.finish(key, orderly, now);
        }
        // The list's allocation is reused, unless marking grew a new one meanwhile.
        if self.due.is_empty() {
            self.due = list;
            self.due.clear();
        }
        let slots = &self.slots;
        self.deadlines.compact(
            self.live,
            slots
                .iter()
                .flatten()
                .filter_map(|s| s.deadline.map(|at| (at, s.key))),
        );
    }

    /// The earliest deadline of any link.
    fn next_deadline(&mut self) -> Option<Instant> {
        let slots = &self.slots;
        self.deadlines.earliest(|k, at| has_deadline(slots, k, at))
    }

    /// Forgets a link: `orderly` when it is finished (what it still has to send goes first,
    /// best effort), otherwise it failed (panicked). Either way its socket is closed, the link
    /// stopped and its slot freed.
    fn finish(&mut self, key: Key, orderly: bool, now: Instant) {
        let Some(mut slot) = self
            .slots
            .get_mut(key.slot as usize)
            .and_then(|s| s.take_if(|s| s.gen() == key.gen))
        else {
            return;
        };
        self.live -= 1;
        let env = Env {
            registry: self.poll.registry(),
            hub: &self.hub,
        };
        let (sock, link) = (&mut slot.sock, &slot.link);
        if orderly {
            let _ = catch_unwind(AssertUnwindSafe(|| {
                sock.flush(link, &env, now);
                sock.close(link, &env, now);
            }));
        }
        sock.drop_stream(&env);
        slot.link.stopped();
        self.hub.release(key.slot);
    }
}

fn has_deadline(slots: &[Option<Slot>], key: Key, at: Instant) -> bool {
    slots
        .get(key.slot as usize)
        .and_then(Option::as_ref)
        .is_some_and(|s| s.gen() == key.gen && s.deadline == Some(at))
}

impl Drop for Runner {
    fn drop(&mut self) {
        // Whatever ended the thread, no link may wait for it: the hub takes no more links, and
        // every link it had or was about to take is stopped.
        let waiting = if self.retired {
            Vec::new()
        } else {
            hub::retire(&self.hub, true).unwrap_or_default()
        };
        for slot in self.slots.drain(..).flatten() {
            slot.link.stopped();
        }
        for adopt in waiting.into_iter().chain(self.new.drain(..)) {
            adopt.link.stopped();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PANIC_NEXT_TURN;
    use crate::{cmd, Client, Config, Engine, Error, Protocol};
    use std::net::TcpListener;
    use std::sync::atomic::Ordering;
    use std::sync::{mpsc, Mutex};
    use std::time::Duration;

    /// The engine is process-wide: these tests take turns on it (the panic would stop the
    /// other's links).
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    /// A configuration for a local listener, on the epoll engine, with no handshake (RESP2):
    /// `connect()` is done once the TCP connection is.
    fn config(listener: &TcpListener) -> Config {
        Config::from_url(&format!("redis://{}", listener.local_addr().unwrap()))
            .unwrap()
            .engine(Engine::Epoll)
            .protocol(Protocol::Resp2)
            .command_timeout(None)
    }

    /// Runs `f` on a thread of its own and returns its result, or `None` after 10 s.
    fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(10)).ok()
    }

    /// A panic on the engine thread outside any link stops every link it drives (their callers
    /// get an error instead of waiting for ever), and the next attach starts a new thread.
    #[test]
    fn a_panic_on_the_thread_stops_every_link_and_a_new_thread_takes_over() {
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        // A server that accepts (in the kernel's backlog) and never answers.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let config = config(&silent);
        let waiting = Client::new(config.clone()).unwrap();
        assert_eq!(waiting.engine(), Engine::Epoll);
        let (tx, rx) = mpsc::channel();
        let caller = waiting.clone();
        std::thread::spawn(move || {
            let _ = tx.send(futures::executor::block_on(
                caller.call::<String>(cmd!("PING")),
            ));
        });
        // Connected: the engine thread is in its loop, with the call queued or sent.
        let connected = waiting.clone();
        let up = within_10s(move || futures::executor::block_on(connected.connect()));
        assert!(matches!(up, Some(Ok(_))), "{up:?}");

        PANIC_NEXT_TURN.store(true, Ordering::SeqCst);
        // Anything that wakes the thread: another connection attached.
        let other = Client::new(config.clone()).unwrap();
        let got = rx.recv_timeout(Duration::from_secs(10));
        assert!(
            matches!(got, Ok(Err(Error::Connection { .. }))),
            "the waiting call: {got:?}"
        );
        let again =
            within_10s(move || futures::executor::block_on(other.call::<String>(cmd!("PING"))));
        assert!(
            matches!(again, Some(Err(Error::Connection { .. }))),
            "{again:?}"
        );

        // A new connection gets a new thread, which serves it.
        let fresh = Client::new(config).unwrap();
        let up = within_10s(move || futures::executor::block_on(fresh.connect()));
        assert!(matches!(up, Some(Ok(true))), "{up:?}");
    }

    /// Without the io_uring engine (the `io-uring` feature off, or not Linux), `Engine::Auto`
    /// outside a runtime is this engine, and it serves calls: a PING to a listener that answers
    /// PONG.
    #[cfg(not(all(feature = "io-uring", target_os = "linux")))]
    #[test]
    fn without_io_uring_auto_runs_on_this_engine() {
        use std::io::{Read, Write};
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let config = config(&listener).engine(Engine::Auto);
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            while !got.ends_with(b"PING\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = conn.write_all(b"+PONG\r\n");
            // Held open until the client is done with it.
            let _ = conn.read(&mut buf);
        });
        let client = Client::new(config).unwrap();
        assert_eq!(client.engine(), Engine::Epoll);
        let pong =
            within_10s(move || futures::executor::block_on(client.call::<String>(cmd!("PING"))));
        assert!(matches!(&pong, Some(Ok(p)) if p == "PONG"), "{pong:?}");
    }

    /// Connections made and dropped one after another, from two threads, keep meeting the
    /// engine thread as it exits (its last link finished) and as a new one starts: every one of
    /// them is served.
    #[test]
    fn attaching_while_the_thread_exits_is_safe() {
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let config = config(&listener);
        // Accepts and closes (the client sees its connection up first).
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                drop(conn);
            }
        });
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let config = config.clone();
                std::thread::spawn(move || {
                    for i in 0..100 {
                        let c = Client::new(config.clone()).unwrap();
                        let up = within_10s(move || futures::executor::block_on(c.connect()));
                        assert!(matches!(up, Some(Ok(true))), "attach {i}: {up:?}");
                    }
                })
            })
            .collect();
        for r in racers {
            r.join().unwrap();
        }
    }

    /// A host name being resolved holds up no other connection: while its resolution waits,
    /// a connection to an IP address is made; once it completes, the name's connects too.
    #[test]
    fn a_slow_name_resolution_stalls_no_other_connection() {
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let by_ip = config(&listener);
        let by_name = Config::from_url(&format!("redis://localhost:{port}"))
            .unwrap()
            .engine(Engine::Epoll)
            .protocol(Protocol::Resp2);
        crate::engine::resolve::held::set(true);
        let named = Client::new(by_name).unwrap();
        let (tx, rx) = mpsc::channel();
        let connecting = named.clone();
        std::thread::spawn(move || {
            let _ = tx.send(futures::executor::block_on(connecting.connect()));
        });
        let ip = Client::new(by_ip).unwrap();
        let up = within_10s(move || futures::executor::block_on(ip.connect()));
        let still_resolving = rx.try_recv().is_err() && !named.is_connected();
        crate::engine::resolve::held::set(false);
        assert!(matches!(up, Some(Ok(true))), "by IP: {up:?}");
        assert!(
            still_resolving,
            "the named connection did not wait for its resolution"
        );
        let named_up = rx.recv_timeout(Duration::from_secs(10));
        assert!(matches!(named_up, Ok(Ok(true))), "by name: {named_up:?}");
    }
}
