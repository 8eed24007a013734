//! Observability: the connection counters (`Client::stats`, `Pool::stats`, `Spread::stats`) move
//! as calls succeed, fail, time out and reconnect, on every engine and runtime; and with the
//! `tracing` feature (which this crate's tests turn on) the connect and handshake spans and the
//! events for failed and timed-out calls reach a subscriber.

mod support;

use ringdis::{cmd, Client, Config, Error, Pool, Spread, Stats};
use ringdis_tests::{FaultServer, Server, ServerKind};
use std::time::{Duration, Instant};
use support::{capture, each_runtime, engines};

/// Every call ends exactly once in the counters.
#[track_caller]
fn balanced(s: &Stats, at: &str) {
    let ended = s.ok
        + s.server_errors
        + s.timeouts
        + s.connection_errors
        + s.protocol_errors
        + s.other_errors
        + s.dropped
        + s.in_flight;
    assert_eq!(s.calls, ended, "{at}: every call ends once: {s:?}");
}

/// Yields until `cond` holds, for at most 10 s.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: never happened");
        support::yield_now().await;
    }
}

/// Ok calls, a pipeline, a server error, bytes both ways, a timeout, a killed connection and
/// the reconnect, on every engine and runtime, both servers and both protocols.
#[test]
fn counters_follow_calls_errors_timeouts_and_reconnects() {
    let servers = support::servers();
    each_runtime(&servers, |cell| async move {
        let (cfg, at) = (cell.config, cell.at);
        let c = Client::new(cfg.clone()).unwrap_or_else(|e| panic!("{at}: {e}"));
        assert_eq!(
            c.stats(),
            Stats::default(),
            "{at}: nothing before the first call"
        );
        c.call::<()>(cmd!("PING")).await.unwrap();
        let s = c.stats();
        assert_eq!(
            (s.connects, s.reconnects, s.calls, s.ok),
            (1, 0, 1, 1),
            "{at}"
        );
        assert_eq!(s.in_flight, 0, "{at}");
        assert!(
            s.bytes_sent > 0 && s.bytes_received > 0,
            "{at}: the handshake and PING"
        );

        // A 10 000-byte value out and back: the byte counters move by about that much.
        let key = ringdis_tests::unique("observe");
        let value = "v".repeat(10_000);
        let before = c.stats();
        c.call::<()>(cmd!("SET", &key, &value)).await.unwrap();
        let mid = c.stats();
        let got: String = c.call(cmd!("GET", &key)).await.unwrap();
        assert_eq!(got.len(), 10_000);
        let after = c.stats();
        let sent = mid.bytes_sent - before.bytes_sent;
        assert!(
            (10_000..10_000 + 100).contains(&sent),
            "{at}: SET sent {sent} bytes"
        );
        let received = after.bytes_received - mid.bytes_received;
        assert!(
            (10_000..10_000 + 20).contains(&received),
            "{at}: GET read {received}"
        );
        assert_eq!(mid.bytes_received - before.bytes_received, 5, "{at}: +OK");

        // A pipeline of three counts as one call; a server error is its own kind.
        let mut p = c.pipeline();
        p.add(cmd!("INCR", ringdis_tests::unique("n")));
        p.add(cmd!("INCR", &key));
        p.add(cmd!("PING"));
        let _: Vec<ringdis::Value> = p.query().await.unwrap();
        let err = c.call::<i64>(cmd!("INCR", &key)).await.unwrap_err();
        assert!(matches!(err, Error::Server { .. }), "{at}: {err}");
        let s = c.stats();
        assert_eq!((s.calls, s.ok, s.server_errors), (5, 4, 1), "{at}");
        assert_eq!((s.redirects, s.timeouts, s.in_flight), (0, 0, 0), "{at}");
        balanced(&s, &at);

        // A timeout: the server is paused past the call's timeout.
        let t = Client::new(
            cfg.clone()
                .command_timeout(Some(Duration::from_millis(200))),
        )
        .unwrap();
        // Connected first: a call waiting for the connection past its timeout would fail as a
        // connection error.
        t.connect().await.unwrap();
        c.call::<()>(cmd!("CLIENT", "PAUSE", 600, "ALL"))
            .await
            .unwrap();
        let err = t
            .call::<Option<String>>(cmd!("GET", &key))
            .await
            .unwrap_err();
        assert_eq!(err, Error::Timeout, "{at}");
        let s = t.stats();
        assert_eq!(
            (s.calls, s.ok, s.timeouts, s.in_flight),
            (1, 0, 1, 0),
            "{at}"
        );
        balanced(&s, &at);
        // The late reply is read (and dropped) once the pause ends.
        let received = s.bytes_received;
        c.call::<()>(cmd!("PING")).await.unwrap();
        until(&format!("{at}: the late reply"), || {
            t.stats().bytes_received > received
        })
        .await;
        assert_eq!(
            t.stats().connections_lost,
            0,
            "{at}: a timeout keeps the connection"
        );

        // A killed connection: noticed, then the next call reconnects.
        let id: i64 = c.call(cmd!("CLIENT", "ID")).await.unwrap();
        let killer = Client::new(cfg.clone()).unwrap();
        let killed: i64 = killer.call(cmd!("CLIENT", "KILL", "ID", id)).await.unwrap();
        assert_eq!(killed, 1, "{at}");
        until(&format!("{at}: the loss"), || !c.is_connected()).await;
        c.call::<()>(cmd!("PING")).await.unwrap();
        let s = c.stats();
        assert_eq!(
            (s.connects, s.reconnects, s.connections_lost),
            (2, 1, 1),
            "{at}"
        );
        assert_eq!(
            (s.connects_failed, s.in_flight, s.callback_panics),
            (0, 0, 0),
            "{at}"
        );
        balanced(&s, &at);
    });
}

/// Calls waiting for their replies are in flight, and leave it as they are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_counts_the_calls_waiting_and_returns_to_zero() {
    let server = Server::start(ServerKind::Redis);
    for engine in engines() {
        let at = format!("{engine:?}");
        let c = Client::new(support::config(&server, engine)).unwrap();
        let pauser = Client::new(support::config(&server, engine)).unwrap();
        c.call::<()>(cmd!("PING")).await.unwrap();
        // The server holds every reply until the pause ends.
        pauser
            .call::<()>(cmd!("CLIENT", "PAUSE", 300, "ALL"))
            .await
            .unwrap();
        let calls: Vec<_> = (0..50).map(|_| c.call::<()>(cmd!("PING"))).collect();
        assert_eq!(c.stats().in_flight, 50, "{at}");
        for call in calls {
            call.await.unwrap();
        }
        let s = c.stats();
        assert_eq!((s.calls, s.ok, s.in_flight), (51, 51, 0), "{at}");
        // A dropped call leaves too.
        pauser
            .call::<()>(cmd!("CLIENT", "PAUSE", 300, "ALL"))
            .await
            .unwrap();
        drop(c.call::<()>(cmd!("PING")));
        let s = c.stats();
        assert_eq!((s.dropped, s.in_flight), (1, 0), "{at}");
        balanced(&s, &at);
        pauser.call::<()>(cmd!("CLIENT", "UNPAUSE")).await.unwrap();
    }
}

/// A pool sums its clients, and keeps the counts of those it let go; a spread sums its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_and_spreads_sum_their_connections() {
    let server = Server::start(ServerKind::Redis);
    for engine in engines() {
        let at = format!("{engine:?}");
        let cfg = support::config(&server, engine);
        let pool = Pool::new(cfg.clone(), 2);
        {
            let (a, b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
            a.call::<()>(cmd!("PING")).await.unwrap();
            b.call::<()>(cmd!("PING")).await.unwrap();
            b.call::<()>(cmd!("PING")).await.unwrap();
            assert_eq!(pool.stats(), a.stats() + b.stats(), "{at}");
        }
        let s = pool.stats();
        assert_eq!((s.calls, s.ok, s.connects), (3, 3, 2), "{at}");
        pool.close();
        let closed = pool.stats();
        assert_eq!(
            (closed.calls, closed.ok, closed.in_flight),
            (3, 3, 0),
            "{at}: kept"
        );

        let spread = Spread::new(cfg, 3).unwrap();
        for _ in 0..6 {
            spread.call::<()>(cmd!("PING")).await.unwrap();
        }
        let total: Stats = spread.clients().iter().map(Client::stats).sum();
        assert_eq!(spread.stats(), total, "{at}");
        assert_eq!((total.calls, total.connects), (6, 3), "{at}");
    }
}

/// A subscriber's connection: its messages' bytes are counted, and a loss and the reconnect it
/// makes by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribers_messages_and_reconnects_are_counted() {
    let server = Server::start(ServerKind::Redis);
    for engine in engines() {
        let at = format!("{engine:?}");
        let c = Client::new(support::config(&server, engine)).unwrap();
        let mut sub = c.subscriber().unwrap();
        sub.subscribe(["observe"]).await.unwrap();
        let before = sub.stats();
        let payload = "m".repeat(5_000);
        let n: i64 = c.call(cmd!("PUBLISH", "observe", &payload)).await.unwrap();
        assert_eq!(n, 1, "{at}");
        let m = support::bounded(Duration::from_secs(10), &at, sub.next_message(None))
            .await
            .unwrap()
            .expect("a message");
        assert_eq!(
            m.payload,
            ringdis::Value::Bulk(payload.clone().into()),
            "{at}"
        );
        let got = sub.stats().bytes_received - before.bytes_received;
        assert!(
            (5_000..5_100).contains(&got),
            "{at}: {got} bytes for the message"
        );

        let killed: i64 = c
            .call(cmd!("CLIENT", "KILL", "TYPE", "pubsub"))
            .await
            .unwrap();
        assert_eq!(killed, 1, "{at}");
        let lost = support::bounded(Duration::from_secs(10), &at, sub.next_message(None)).await;
        assert!(lost.is_err_and(|e| e.is_connection()), "{at}");
        until(&format!("{at}: the reconnect"), || {
            sub.stats().reconnects == 1
        })
        .await;
        let s = sub.stats();
        assert_eq!(
            (s.connects, s.connections_lost, s.in_flight),
            (2, 1, 0),
            "{at}: {s:?}"
        );
    }
}

/// A panicking `async_call` callback is counted; the connection carries on.
#[test]
fn a_panicking_callback_is_counted() {
    let server = Server::start(ServerKind::Redis);
    for engine in support::ring_engines() {
        let c = Client::new(support::config(&server, engine)).unwrap();
        c.async_call(cmd!("PING"), |_: ringdis::Result<ringdis::Value>| {
            panic!("a user bug (expected by the test)")
        });
        let start = Instant::now();
        while c.stats().callback_panics == 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "{engine:?}");
            std::thread::yield_now();
        }
        futures::executor::block_on(c.call::<()>(cmd!("PING"))).unwrap();
        let s = c.stats();
        assert_eq!((s.callback_panics, s.ok, s.calls), (1, 2, 2), "{engine:?}");
    }
}

/// With the `tracing` feature: a `connect` span with the address, a `handshake` span, an event
/// for a call that failed with a server error, one for a call that timed out and one for the
/// connection lost, on every engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracing_reports_connects_handshakes_errors_timeouts_and_losses() {
    capture::install();
    for engine in engines() {
        // The first connection: the handshake, an error reply, then silence past the call's
        // timeout, then closed. The second: the reconnect.
        let (close_tx, close_rx) = std::sync::mpsc::channel::<()>();
        let close_rx = std::sync::Mutex::new(close_rx);
        let fault = FaultServer::start(move |mut conn| {
            if conn.number() == 0 {
                let Some(_) = conn.handshake_resp2() else {
                    return;
                };
                conn.write(b"-WRONGTYPE not a list\r\n");
                let _ = conn.read_command();
                // Closed once the test saw the call time out.
                let _ = close_rx.lock().map(|rx| rx.recv());
                conn.close();
            } else {
                let _ = conn.handshake_resp2();
                conn.reply_ok();
                conn.stall();
            }
        });
        let addr = format!("127.0.0.1:{}", fault.port());
        let at = format!("{engine:?}");
        let c = Client::new(
            Config::from_url(&fault.url())
                .unwrap()
                .engine(engine)
                .command_timeout(Some(Duration::from_millis(300))),
        )
        .unwrap();
        c.connect().await.unwrap();
        let err = c.call::<()>(cmd!("LPUSH", "k", "v")).await.unwrap_err();
        assert!(matches!(err, Error::Server { .. }), "{at}: {err}");
        assert_eq!(
            c.call::<()>(cmd!("GET", "k")).await.unwrap_err(),
            Error::Timeout
        );
        close_tx.send(()).unwrap();
        // The script closes the connection now; the next call reconnects.
        until(&format!("{at}: the loss"), || !c.is_connected()).await;
        c.call::<()>(cmd!("PING")).await.unwrap();

        let seen = capture::seen(&addr);
        let has =
            |kind: &str, name: &str| seen.iter().any(|(k, n, _)| *k == kind && n.contains(name));
        assert!(has("span", "connect"), "{at}: {seen:#?}");
        assert!(has("span", "reconnect"), "{at}: {seen:#?}");
        assert!(has("event", "server error"), "{at}: {seen:#?}");
        assert!(has("event", "timed out"), "{at}: {seen:#?}");
        assert!(has("event", "connection lost"), "{at}: {seen:#?}");
        assert!(has("event", "connection ready"), "{at}: {seen:#?}");
        assert!(has("event", "connection restored"), "{at}: {seen:#?}");
        // The handshake runs in the connect span.
        assert!(
            seen.iter()
                .any(|(k, n, f)| *k == "span" && n == "handshake" && f.contains("connect{")),
            "{at}: {seen:#?}"
        );
        let s = c.stats();
        assert_eq!(
            (s.server_errors, s.timeouts, s.reconnects),
            (1, 1, 1),
            "{at}: {s:?}"
        );
    }
}

/// A server that is not there: each attempt that fails is counted and reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_connect_attempts_are_counted_and_reported() {
    capture::install();
    for engine in engines() {
        let port = ringdis_tests::free_port();
        let c = Client::new(
            Config::from_url(&format!("redis://127.0.0.1:{port}"))
                .unwrap()
                .engine(engine)
                .connect_timeout(Duration::from_millis(300)),
        )
        .unwrap();
        let err = c.call::<()>(cmd!("PING")).await.unwrap_err();
        assert!(err.is_connection(), "{engine:?}: {err}");
        let s = c.stats();
        assert!(s.connects_failed >= 1, "{engine:?}: {s:?}");
        assert_eq!(
            (s.connects, s.connection_errors, s.calls),
            (0, 1, 1),
            "{engine:?}"
        );
        let seen = capture::seen(&format!("127.0.0.1:{port}"));
        assert!(
            seen.iter()
                .any(|(k, n, _)| *k == "event" && n.contains("connect attempt failed")),
            "{engine:?}: {seen:#?}"
        );
    }
}

/// A subscriber that calls the client it observes, from its `new_span` and `event`: ringdis
/// reports outside the connection's lock, so the call goes in at once (a subscriber run under
/// the lock would wait for the lock its own thread holds) and is answered, on every engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_may_call_the_client_it_observes() {
    use std::sync::{Arc, Mutex};
    capture::install();
    let server = Server::start(ServerKind::Redis);
    let needle = format!(":{}", server.port());
    /// The client the hook calls, the calls it made, the answers, and what it got stuck on.
    #[derive(Default)]
    struct Hooked {
        client: Option<Client>,
        made: usize,
        stuck: Vec<String>,
    }
    let state = Arc::new(Mutex::new(Hooked::default()));
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (hook_state, hook_answered) = (state.clone(), answered.clone());
    capture::on_each(move |kind, name, fields| {
        if !fields.contains(&needle) {
            return;
        }
        let client = {
            let mut s = hook_state.lock().unwrap_or_else(|p| p.into_inner());
            // Stops at the first call that got stuck (each costs the wait below), and bounded.
            if !s.stuck.is_empty() || s.made >= 40 {
                return;
            }
            let Some(c) = s.client.clone() else { return };
            s.made += 1;
            c
        };
        // The call is made on another thread, bounded: were this thread holding the
        // connection's lock, it would never get in.
        let (tx, rx) = std::sync::mpsc::channel();
        let answered = hook_answered.clone();
        std::thread::spawn(move || {
            // Answered once, `Ok` or (one made as the connection closes) an error.
            client.async_call(cmd!("PING"), move |_: ringdis::Result<ringdis::Value>| {
                answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
            let _ = tx.send(());
        });
        if rx.recv_timeout(Duration::from_secs(2)).is_err() {
            hook_state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .stuck
                .push(format!("{kind} {name}"));
        }
    });
    for engine in engines() {
        let at = format!("{engine:?}");
        let c = Client::new(support::config(&server, engine)).unwrap();
        *state.lock().unwrap() = Hooked {
            client: Some(c.clone()),
            ..Hooked::default()
        };
        // The connect and handshake spans, "connection ready", a server error, the close, the
        // reconnect, "connection restored".
        c.connect().await.unwrap();
        let err = c.call::<()>(cmd!("NO-SUCH-COMMAND")).await.unwrap_err();
        assert!(matches!(err, Error::Server { .. }), "{at}: {err}");
        c.disconnect().await;
        c.call::<()>(cmd!("PING")).await.unwrap();
        let made = {
            let mut s = state.lock().unwrap();
            s.client = None;
            assert!(
                s.stuck.is_empty(),
                "{at}: stuck under the lock on {:?}",
                s.stuck
            );
            s.made
        };
        assert!(made >= 6, "{at}: the hook ran {made} times");
        until(&format!("{at}: the hook's {made} calls answered"), || {
            answered.load(std::sync::atomic::Ordering::SeqCst) == made
        })
        .await;
        answered.store(0, std::sync::atomic::Ordering::SeqCst);
    }
}
