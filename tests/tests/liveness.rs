//! Connections whose server stops answering and clients dropped while the server hangs (issue
//! #11, kinds 8 and 10; kind 9, user code that panics, is in `engines.rs`, on every runtime),
//! against real servers that are stopped (SIGSTOP) or cut off by a network partition (a
//! namespace and nftables), on every engine.
//!
//! The tests in this file run one at a time (they count the process's threads and descriptors,
//! and stop servers).

mod support;

use ringdis::{cmd, Client, Engine, Error, Protocol, Value};
use ringdis_tests::{NetNs, Server, ServerKind};
use std::time::{Duration, Instant};
use support::{bounded, config, engines, is_child, label, matrix, process, run_child};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Held for the whole of each test in this file.
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().await
}

/// Waits until `cond` holds, at most `limit`; panics saying `what` otherwise.
async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < until, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A server that is resumed when the test ends, however it ends.
struct Paused<'a>(&'a Server);

impl<'a> Paused<'a> {
    fn new(server: &'a Server) -> Paused<'a> {
        server.pause();
        Paused(server)
    }
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.0.resume();
    }
}

/// Calls time out fast; the liveness rule gives the server up after `n` of them.
fn short(server: &Server, engine: Engine, protocol: Protocol, n: Option<u32>) -> Client {
    let c = Client::new(
        config(server, engine)
            .protocol(protocol)
            .command_timeout(Some(Duration::from_millis(300)))
            .connect_timeout(Duration::from_secs(1))
            .max_silent_timeouts(n),
    )
    .expect("client");
    assert_eq!(c.engine(), engine);
    c
}

/// The liveness rule against a stopped server: after 2 timeouts in a row with nothing
/// received, the connection is closed, the call still in flight fails with `Error::Connection`,
/// nothing stays queued, and once the server runs again the next call reconnects.
async fn the_rule_gives_up_a_silent_server_and_recovers(
    c: &Client,
    at: &str,
    resume: impl FnOnce(),
) {
    let first = bounded(Duration::from_secs(5), at, c.call::<Value>(cmd!("PING"))).await;
    assert_eq!(first.unwrap_err(), Error::Timeout, "{at}: 1 of 2");
    assert!(
        c.is_connected(),
        "{at}: one timeout does not give the server up"
    );
    let second = c.call::<Value>(cmd!("ECHO", "second"));
    let in_flight = c.call::<Value>(cmd!("ECHO", "in flight"));
    let second = bounded(Duration::from_secs(5), at, second).await;
    assert_eq!(second.unwrap_err(), Error::Timeout, "{at}: 2 of 2");
    let err = bounded(Duration::from_secs(5), at, in_flight)
        .await
        .unwrap_err();
    assert!(err.is_connection(), "{at}: {err}");
    assert!(err.to_string().contains("stopped answering"), "{at}: {err}");
    assert!(!c.is_connected(), "{at}: the connection was closed");
    wait_until(
        &format!("{at}: queue emptied"),
        Duration::from_secs(2),
        || c.queued_calls() == 0,
    )
    .await;
    resume();
    let back: String = bounded(Duration::from_secs(10), at, c.call(cmd!("ECHO", "back")))
        .await
        .unwrap_or_else(|e| panic!("{at}: the next call reconnects: {e}"));
    assert_eq!(back, "back", "{at}");
    assert!(c.is_connected(), "{at}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_is_given_up_after_the_timeouts_and_the_next_call_reconnects() {
    let _one = one_at_a_time().await;
    // The cells run at once, each stopping a server of its own (each waits out its timeouts).
    let cells = matrix().into_iter().flat_map(|(kind, engine)| {
        support::PROTOCOLS.map(|protocol| async move {
            let server = Server::start(kind);
            let at = label(kind, engine, protocol);
            let c = short(&server, engine, protocol, Some(2));
            let _: Value = c.call(cmd!("PING")).await.unwrap();
            let paused = Paused::new(&server);
            the_rule_gives_up_a_silent_server_and_recovers(&c, &at, || drop(paused)).await;
        })
    });
    futures::future::join_all(cells).await;
}

/// Without the rule the same connection stays up while calls keep timing out (the rule is what
/// closes it), and the late replies are still delivered to nobody when the server resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_rule_off_a_stopped_server_only_times_calls_out() {
    let _one = one_at_a_time().await;
    // The cells run at once, each stopping a server of its own.
    futures::future::join_all(matrix().into_iter().map(|(kind, engine)| async move {
        let server = Server::start(kind);
        let at = label(kind, engine, Protocol::Resp3);
        let c = short(&server, engine, Protocol::Resp3, None);
        let _: Value = c.call(cmd!("PING")).await.unwrap();
        let paused = Paused::new(&server);
        for i in 0..4 {
            let r = bounded(
                Duration::from_secs(5),
                &at,
                c.call::<Value>(cmd!("ECHO", i)),
            )
            .await;
            assert_eq!(r.unwrap_err(), Error::Timeout, "{at}");
        }
        assert!(c.is_connected(), "{at}");
        drop(paused);
        let back: String = c.call(cmd!("ECHO", "mine")).await.unwrap();
        assert_eq!(
            back, "mine",
            "{at}: late replies never reach a later caller"
        );
    }))
    .await;
}

fn rss_kib() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm has a resident size");
    pages * 4
}

/// 200,000 calls against a stopped server (futures, pipelines and fire-and-forget calls) all
/// end, and the connection keeps none of them once they have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_thousand_timed_out_calls_leave_nothing_queued() {
    let _one = one_at_a_time().await;
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        let at = label(kind, engine, Protocol::Resp3);
        // The default rule (3 timeouts).
        let c = Client::new(
            config(&server, engine)
                .command_timeout(Some(Duration::from_millis(500)))
                .connect_timeout(Duration::from_millis(500)),
        )
        .unwrap();
        let _: Value = c.call(cmd!("PING")).await.unwrap();
        let before = rss_kib();
        let paused = Paused::new(&server);
        let mut calls = Vec::with_capacity(150_000);
        for i in 0..150_000u32 {
            if i % 1000 == 0 {
                let mut p = c.pipeline();
                p.add(cmd!("INCR", "n")).add(cmd!("GET", "n"));
                calls.push(c.call::<Value>(&p));
            } else {
                calls.push(c.call::<Value>(cmd!("SET", format!("k{i}"), i)));
            }
        }
        for _ in 0..50_000 {
            c.async_call(cmd!("INCR", "fire-and-forget"), None::<fn(_)>);
        }
        let results = bounded(
            Duration::from_secs(60),
            &at,
            futures::future::join_all(calls),
        )
        .await;
        let peak = rss_kib();
        for r in &results {
            let err = r.as_ref().expect_err("the server is stopped");
            assert!(*err == Error::Timeout || err.is_connection(), "{at}: {err}");
        }
        wait_until(
            &format!("{at}: every call dropped from the queue"),
            Duration::from_secs(5),
            || c.queued_calls() == 0,
        )
        .await;
        eprintln!(
            "{at}: 200,000 calls against a stopped server: RSS {before} KiB before, {peak} KiB \
             when they had all failed, queue empty after"
        );
        drop(paused);
        let _: Value = c.call(cmd!("PING")).await.unwrap();
    }
}

/// Threads of this process named like a driver (`ringdis-epoll`, `ringdis-ring`).
fn driver_threads() -> usize {
    process::threads_named(|name| name.starts_with("ringdis-"))
}

/// Dropping the last handle releases the driver thread, the socket and every descriptor within
/// a bounded time, though the server never answers: calls that timed out, fire-and-forget calls
/// past their deadline, and calls whose caller dropped the future hold nothing. Run in a process
/// of its own, where nothing else opens descriptors or starts threads meanwhile.
#[test]
fn a_client_dropped_against_a_stopped_server_releases_its_thread_and_descriptors() {
    run_child("child_dropped_client", &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by a_client_dropped_against_a_stopped_server_releases_its_thread_and_descriptors"]
async fn child_dropped_client() {
    if !is_child("child_dropped_client") {
        return;
    }
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        let at = label(kind, engine, Protocol::Resp3);
        let (fds, threads) = (process::fds(), driver_threads());
        // The rule is off, so the stopped server's connection stays up with the calls on it.
        let timed_out = short(&server, engine, Protocol::Resp3, None);
        let no_deadline = Client::new(
            config(&server, engine)
                .command_timeout(None)
                .max_silent_timeouts(None),
        )
        .unwrap();
        let _: Value = timed_out.call(cmd!("PING")).await.unwrap();
        let _: Value = no_deadline.call(cmd!("PING")).await.unwrap();
        // Two connections: no thread of its own on the task engine; the ring engine's one
        // thread for both on the others.
        let started = driver_threads() - threads;
        let expected = if engine == Engine::Task { 0 } else { 1 };
        assert_eq!(started, expected, "{at}");
        let paused = Paused::new(&server);
        for i in 0..3 {
            let r = timed_out.call::<Value>(cmd!("ECHO", i)).await;
            assert_eq!(r.unwrap_err(), Error::Timeout, "{at}");
        }
        timed_out.async_call(cmd!("INCR", "n"), None::<fn(_)>);
        let abandoned = no_deadline.call::<Value>(cmd!("GET", "k"));
        assert!(
            tokio::time::timeout(Duration::from_millis(100), abandoned)
                .await
                .is_err(),
            "{at}: no reply from a stopped server"
        );
        drop(timed_out);
        drop(no_deadline);
        wait_until(
            &format!("{at}: driver threads ended and descriptors closed"),
            Duration::from_secs(5),
            || driver_threads() == threads && process::fds() == fds,
        )
        .await;
        drop(paused);
    }
}

/// A server in a network namespace, cut off by a partition (every packet dropped, no reset):
/// the liveness rule closes the connection after 2 timeouts, and once the partition heals the
/// next call reconnects. Every engine, both protocols.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_partition_is_detected_by_the_liveness_rule_and_healed() {
    let _one = one_at_a_time().await;
    for kind in ServerKind::ALL {
        let ns = NetNs::create();
        let server = Server::builder(kind)
            .bind(ns.addr())
            .command_prefix(&ns.exec_prefix())
            .start();
        for engine in engines() {
            for protocol in support::PROTOCOLS {
                let at = format!("{} in {}", label(kind, engine, protocol), ns.name());
                let c = short(&server, engine, protocol, Some(2));
                let _: Value = c.call(cmd!("PING")).await.unwrap();
                ns.partition();
                let healed = Healer(&ns);
                the_rule_gives_up_a_silent_server_and_recovers(&c, &at, || drop(healed)).await;
            }
        }
        drop(server);
    }
}

/// Heals a partition when the test ends, however it ends.
struct Healer<'a>(&'a NetNs);

impl Drop for Healer<'_> {
    fn drop(&mut self) {
        self.0.heal();
    }
}

/// TCP keepalive (on by default; 1 s here) finds a partitioned connection that carries no call
/// at all: the client reports itself disconnected, and reconnects once the network heals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_finds_an_idle_partitioned_connection() {
    let _one = one_at_a_time().await;
    for kind in ServerKind::ALL {
        let ns = NetNs::create();
        let server = Server::builder(kind)
            .bind(ns.addr())
            .command_prefix(&ns.exec_prefix())
            .start();
        let clients: Vec<(String, Client)> = engines()
            .into_iter()
            .map(|t| {
                let c = Client::new(config(&server, t).tcp_keepalive(Some(Duration::from_secs(1))))
                    .unwrap();
                (format!("{kind}/{t:?} in {}", ns.name()), c)
            })
            .collect();
        for (_, c) in &clients {
            let _: Value = c.call(cmd!("PING")).await.unwrap();
        }
        ns.partition();
        let healed = Healer(&ns);
        for (at, c) in &clients {
            // 1 s idle, then 3 probes 1 s apart: about 4 s.
            wait_until(
                &format!("{at}: keepalive saw the peer gone"),
                Duration::from_secs(15),
                || !c.is_connected(),
            )
            .await;
        }
        drop(healed);
        for (at, c) in &clients {
            let back: String = bounded(Duration::from_secs(10), at, c.call(cmd!("ECHO", "back")))
                .await
                .unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(back, "back", "{at}");
        }
        drop(server);
    }
}

/// Health checks (`Config::health_check`) find a stopped server on connections that make no
/// calls: an idle client and a subscriber both see the connection given up, and both come back
/// once the server runs again (the subscriber by itself, with its subscription).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_find_a_stopped_server_on_idle_connections() {
    let _one = one_at_a_time().await;
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        for protocol in support::PROTOCOLS {
            let at = label(kind, engine, protocol);
            let checked = config(&server, engine)
                .protocol(protocol)
                .health_check(Some(Duration::from_millis(200)));
            let idle = Client::new(checked.clone()).unwrap();
            let _: Value = idle.call(cmd!("PING")).await.unwrap();
            let mut sub = ringdis::Subscriber::new(checked).unwrap();
            let channel = ringdis_tests::unique("health");
            sub.subscribe([&channel]).await.unwrap();
            let publisher = support::client(&server, engine, protocol);
            let paused = Paused::new(&server);
            wait_until(
                &format!("{at}: idle client and subscriber gave the server up"),
                Duration::from_secs(5),
                || !idle.is_connected() && !sub.is_connected(),
            )
            .await;
            drop(paused);
            let back: String = bounded(Duration::from_secs(10), &at, idle.call(cmd!("ECHO", "x")))
                .await
                .unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(back, "x", "{at}");
            // The subscriber resubscribes by itself; publish until it hears (bounded).
            let until = Instant::now() + Duration::from_secs(10);
            let heard = loop {
                assert!(
                    Instant::now() < until,
                    "{at}: the subscriber never came back"
                );
                let _: i64 = publisher
                    .call(cmd!("PUBLISH", &channel, "again"))
                    .await
                    .unwrap();
                match sub.next_message(Some(Duration::from_millis(100))).await {
                    Ok(Some(m)) => break m,
                    Ok(None) => {}
                    // The loss is reported once, in order with the messages.
                    Err(e) => assert!(
                        e.is_connection() && e.to_string().contains("health-check PING"),
                        "{at}: {e}"
                    ),
                }
            };
            assert_eq!(heard.payload_str(), Some("again"), "{at}");
        }
    }
}
