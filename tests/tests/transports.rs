//! What the engines themselves must get right, on each: large values crossing many receive
//! buffers, closing with operations in flight, no leaked sockets or threads, the choice of
//! engine (forced, from the environment, and the fallback when io_uring setup fails).
//!
//! Some cases need a different process environment (`RINGDIS_ENGINE`, the io_uring setup
//! failure switch, single-shot receives): they re-run this test binary on one `child_*` test with
//! that environment, so no test changes the environment of the others.

mod support;

use ringdis::{cmd, Client, Config, Engine, Protocol, Value};
use ringdis_tests::{FaultServer, Server, ServerKind};
use std::time::{Duration, Instant};
use support::{client, engines, is_child, process, run_child};

/// A value of `len` bytes whose content depends on `seed` and the position, so a misplaced or
/// dropped chunk shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

/// Values from 1 byte to 12 MiB, alone and several in flight at once, round-trip exactly.
async fn large_values_roundtrip(c: &Client, at: &str) {
    for (i, len) in [
        1usize,
        16 * 1024,
        16 * 1024 + 1,
        1 << 20,
        (3 << 20) + 7,
        12 << 20,
    ]
    .into_iter()
    .enumerate()
    {
        let key = ringdis_tests::unique("big");
        let value = pattern(len, i as u8);
        c.call::<()>(cmd!("SET", key.as_str(), value.as_slice()))
            .await
            .unwrap_or_else(|e| panic!("{at}: SET {len}: {e}"));
        let got: Vec<u8> = c.call(cmd!("GET", key.as_str())).await.unwrap();
        assert!(got == value, "{at}: {len}-byte value came back different");
    }
    // Eight 2 MiB replies in flight together, from concurrent callers and one pipeline.
    let keys: Vec<String> = (0..8).map(|_| ringdis_tests::unique("big8")).collect();
    for (i, k) in keys.iter().enumerate() {
        c.call::<()>(cmd!("SET", k.as_str(), pattern(2 << 20, i as u8)))
            .await
            .unwrap();
    }
    let calls: Vec<_> = keys
        .iter()
        .map(|k| c.call::<Vec<u8>>(cmd!("GET", k.as_str())))
        .collect();
    let mut p = c.pipeline();
    for k in &keys {
        p.add(cmd!("GET", k.as_str()));
    }
    let piped = p.query::<Vec<Vec<u8>>>();
    for (i, call) in calls.into_iter().enumerate() {
        assert!(
            call.await.unwrap() == pattern(2 << 20, i as u8),
            "{at}: #{i}"
        );
    }
    let piped = piped.await.unwrap();
    for (i, v) in piped.iter().enumerate() {
        assert!(*v == pattern(2 << 20, i as u8), "{at}: pipelined #{i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_values_cross_many_receive_buffers() {
    let server = Server::start(ServerKind::Redis);
    for engine in engines() {
        let c = client(&server, engine, Protocol::Resp3);
        large_values_roundtrip(&c, &format!("{engine:?}")).await;
    }
}

/// Disconnecting (or dropping the client) while a large send and a large receive are in flight:
/// the calls fail with a connection error, nothing crashes, the next call reconnects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_with_large_transfers_in_flight() {
    let server = Server::start(ServerKind::Redis);
    for engine in engines() {
        let c = client(&server, engine, Protocol::Resp2);
        let key = ringdis_tests::unique("inflight");
        let value = pattern(8 << 20, 7);
        c.call::<()>(cmd!("SET", key.as_str(), value.as_slice()))
            .await
            .unwrap();
        for round in 0..20 {
            let get = c.call::<Vec<u8>>(cmd!("GET", key.as_str()));
            let set = c.call::<()>(cmd!("SET", "other", value.as_slice()));
            if round % 2 == 1 {
                tokio::time::sleep(Duration::from_micros(200 * round)).await;
            }
            c.disconnect().await;
            // Each either completed before the close or failed with a connection error.
            match get.await {
                Ok(v) => assert!(v == value, "{engine:?}: a wrong value"),
                Err(e) => assert!(e.is_connection(), "{engine:?}: {e}"),
            }
            if let Err(e) = set.await {
                assert!(e.is_connection(), "{engine:?}: {e}");
            }
        }
        let got: Vec<u8> = c.call(cmd!("GET", key.as_str())).await.unwrap();
        assert!(got == value, "{engine:?}");
        // Dropped with a transfer in flight: the driver finishes it, then stops.
        let get = c.call::<Vec<u8>>(cmd!("GET", key.as_str()));
        drop(c);
        assert!(get.await.unwrap() == value, "{engine:?}");
    }
}

/// A timer set for later gives way to an earlier deadline: the reconnect backoff (milliseconds)
/// is not held up by the connect-timeout timer (seconds) armed before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_deadline_replaces_a_later_timer() {
    for engine in engines() {
        let fault = FaultServer::start(|mut conn| {
            if conn.number() < 3 {
                return conn.close();
            }
            if conn.handshake_resp2().is_some() {
                conn.write(b"+PONG\r\n");
                conn.stall();
            }
        });
        let c = Client::new(
            Config::from_url(&fault.url())
                .unwrap()
                .engine(engine)
                // HELLO first: the call waits for the handshake, so a lost connection retries it.
                .protocol(Protocol::Resp3)
                .connect_timeout(Duration::from_secs(20))
                .reconnect_backoff(Duration::from_millis(5), Duration::from_millis(20)),
        )
        .unwrap();
        let t0 = std::time::Instant::now();
        let pong: String = c.call(cmd!("PING")).await.unwrap();
        assert_eq!(pong, "PONG");
        assert_eq!(fault.accepted(), 4, "{engine:?}");
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "{engine:?}: three retries took {:?}",
            t0.elapsed()
        );
    }
}

/// An idle engine sleeps: no spinning on wake-ups, timers or receives, whether a connection is
/// up, never made, or lost with its server. Measured on the threads that drive the connections:
/// a ring engine's driver thread, the task engine's runtime thread (this one: a current-thread
/// runtime). (In a child process, so no other test's threads are counted.)
#[test]
fn an_idle_engine_uses_no_cpu() {
    run_child("child_idle", &[]);
}

#[test]
#[ignore = "run by an_idle_engine_uses_no_cpu in a child process"]
fn child_idle() {
    if !is_child("child_idle") {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    for engine in engines() {
        let mut gone = Server::start(ServerKind::Redis);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let before = process::thread_ids();
            let connected = client(&server, engine, Protocol::Resp3);
            connected.call::<()>(cmd!("PING")).await.unwrap();
            let _never = client(&server, engine, Protocol::Resp3);
            let lost = client(&gone, engine, Protocol::Resp3);
            lost.call::<()>(cmd!("PING")).await.unwrap();
            gone.kill();
            let deadline = Instant::now() + Duration::from_secs(10);
            while lost.is_connected() {
                assert!(
                    Instant::now() < deadline,
                    "{engine:?}: the loss went unnoticed"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let drivers: Vec<String> = process::thread_ids().difference(&before).cloned().collect();
            if engine != Engine::Task {
                assert!(!drivers.is_empty(), "{engine:?}: no driver thread found");
            }
            let ticks = || {
                process::own_ticks()
                    + drivers
                        .iter()
                        .map(|t| process::thread_ticks(t))
                        .sum::<u64>()
            };
            let t0 = ticks();
            // The measuring window (not a synchronisation): nothing but the engine runs.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let used = ticks() - t0;
            // Clock ticks are 10 ms: a spinning engine would show ~50 here.
            assert!(
                used <= 3,
                "{engine:?}: the idle engine used {used} ticks in 500 ms"
            );
            connected.call::<()>(cmd!("PING")).await.unwrap();
        });
    }
}

/// Clients that connected, reconnected and were dropped leave no socket, ring or thread behind.
/// (In a child process: other tests' clients would move the counts.)
#[test]
fn dropped_clients_leave_no_sockets_or_threads() {
    run_child("child_no_leaks", &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by dropped_clients_leave_no_sockets_or_threads in a child process"]
async fn child_no_leaks() {
    if !is_child("child_no_leaks") {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    for engine in engines() {
        // Warm up whatever the runtime and the harness open once.
        let warm = client(&server, engine, Protocol::Resp2);
        warm.call::<()>(cmd!("PING")).await.unwrap();
        drop(warm);
        let fds = process::fds();
        let threads = process::threads();
        for _ in 0..3 {
            let clients: Vec<Client> = (0..20)
                .map(|_| client(&server, engine, Protocol::Resp2))
                .collect();
            for c in &clients {
                c.call::<()>(cmd!("PING")).await.unwrap();
                c.disconnect().await;
                c.call::<()>(cmd!("PING")).await.unwrap();
            }
            drop(clients);
        }
        let at = format!("{engine:?}: back to {fds} descriptors and {threads} threads");
        process::wait_until(&at, Duration::from_secs(10), || {
            process::fds() <= fds && process::threads() <= threads
        });
    }
}

/// `Client::engine()` reports the live engine; forcing one gives that one.
#[test]
fn forcing_an_engine_gives_that_engine() {
    if std::env::var_os("RINGDIS_ENGINE").is_some() {
        return; // the environment overrides the configuration: see the child tests
    }
    let epoll = Client::new(Config::new().engine(Engine::Epoll)).unwrap();
    assert_eq!(epoll.engine(), Engine::Epoll);
    let auto = Client::new(Config::new()).unwrap();
    match Client::new(Config::new().engine(Engine::IoUring)) {
        // Auto prefers io_uring wherever the kernel gives a ring.
        Ok(uring) => {
            assert_eq!(uring.engine(), Engine::IoUring);
            assert_eq!(auto.engine(), Engine::IoUring);
        }
        // A kernel (or sandbox) without io_uring: a clear error when forced, epoll on Auto.
        Err(e) => {
            assert!(matches!(e, ringdis::Error::Client { .. }), "{e:?}");
            assert_eq!(auto.engine(), Engine::Epoll);
        }
    }
}

#[test]
fn io_uring_setup_failure_falls_back_to_epoll() {
    run_child("child_setup_failure", &[("RINGDIS_URING_FAIL_SETUP", "1")]);
}

#[test]
#[ignore = "run by io_uring_setup_failure_falls_back_to_epoll in a child process"]
fn child_setup_failure() {
    if !is_child("child_setup_failure") {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    let url = server.url();
    // Auto: epoll, behaving exactly as epoll does.
    let c = Client::open(&url).unwrap();
    assert_eq!(c.engine(), Engine::Epoll);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(large_values_roundtrip(&c, "fallback"));
    // Forced io_uring: a clear client error saying why.
    let err = Client::new(Config::from_url(&url).unwrap().engine(Engine::IoUring)).unwrap_err();
    assert!(matches!(err, ringdis::Error::Client { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("io_uring is not available") && msg.contains("io_uring_setup"),
        "{msg}"
    );
    // Forced epoll is unaffected.
    let e = Client::new(Config::from_url(&url).unwrap().engine(Engine::Epoll)).unwrap();
    assert_eq!(e.engine(), Engine::Epoll);
}

#[test]
fn the_environment_overrides_the_configured_engine() {
    run_child("child_env_epoll", &[("RINGDIS_ENGINE", "epoll")]);
    run_child("child_env_io_uring", &[("RINGDIS_ENGINE", "io_uring")]);
    run_child("child_env_task", &[("RINGDIS_ENGINE", "task")]);
}

#[test]
#[ignore = "run by the_environment_overrides_the_configured_engine in a child process"]
fn child_env_task() {
    if !is_child("child_env_task") {
        return;
    }
    // The task engine runs on the caller's runtime: made inside one, every choice becomes it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _inside = rt.enter();
    for e in [Engine::Auto, Engine::IoUring, Engine::Epoll, Engine::Task] {
        let c = Client::new(Config::new().engine(e)).unwrap();
        assert_eq!(c.engine(), Engine::Task, "{e:?}");
    }
}

#[test]
#[ignore = "run by the_environment_overrides_the_configured_engine in a child process"]
fn child_env_epoll() {
    if !is_child("child_env_epoll") {
        return;
    }
    for t in [Engine::Auto, Engine::Task, Engine::IoUring, Engine::Epoll] {
        let c = Client::new(Config::new().engine(t)).unwrap();
        assert_eq!(c.engine(), Engine::Epoll);
    }
}

#[test]
#[ignore = "run by the_environment_overrides_the_configured_engine in a child process"]
fn child_env_io_uring() {
    if !is_child("child_env_io_uring") {
        return;
    }
    for t in [Engine::Auto, Engine::Task, Engine::IoUring, Engine::Epoll] {
        let c = Client::new(Config::new().engine(t)).unwrap();
        assert_eq!(c.engine(), Engine::IoUring);
    }
}

/// The paths for kernels without multishot operations (single-shot receives, an eventfd read per
/// wake-up) carry large values and survive a server restart too.
#[test]
fn single_shot_receives_work() {
    run_child("child_single_shot", &[("RINGDIS_URING_NO_BUFRING", "1")]);
}

#[test]
#[ignore = "run by single_shot_receives_work in a child process"]
fn child_single_shot() {
    if !is_child("child_single_shot") {
        return;
    }
    let mut server = Server::start(ServerKind::Redis);
    let c = Client::new(
        Config::from_url(&server.url())
            .unwrap()
            .engine(Engine::IoUring)
            .connect_timeout(Duration::from_millis(500)),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        large_values_roundtrip(&c, "single-shot").await;
        server.kill();
        let err = c.call::<Value>(cmd!("PING")).await.unwrap_err();
        assert!(err.is_connection(), "{err}");
        server.restart();
        assert_eq!(
            c.call::<String>(cmd!("ECHO", "back")).await.unwrap(),
            "back"
        );
    });
}

/// The client works inside a tokio-uring runtime (a current-thread tokio runtime around its own
/// ring, next to ours), on every engine (the task engine's connection a task of that runtime,
/// and the one `Auto` picks there), with calls from several tasks at once.
#[test]
fn works_inside_tokio_uring() {
    let server = Server::start(ServerKind::Redis);
    // `Auto` is the task engine there too (unless the environment forces an engine).
    if std::env::var_os("RINGDIS_ENGINE").is_none() {
        let auto = tokio_uring::start(async {
            Client::new(support::config(&server, Engine::Auto))
                .unwrap()
                .engine()
        });
        assert_eq!(auto, Engine::Task, "Auto inside tokio-uring");
    }
    for engine in engines() {
        tokio_uring::start(async {
            let c = client(&server, engine, Protocol::Resp3);
            let tasks: Vec<_> = (0..32)
                .map(|i| {
                    let c = c.clone();
                    tokio_uring::spawn(async move {
                        let key = ringdis_tests::unique("tokio-uring");
                        c.call::<()>(cmd!("SET", key.as_str(), i)).await.unwrap();
                        c.call::<i64>(cmd!("GET", key.as_str())).await.unwrap()
                    })
                })
                .collect();
            for (i, t) in tasks.into_iter().enumerate() {
                assert_eq!(t.await.unwrap(), i as i64, "{engine:?}");
            }
            let big = pattern(1 << 20, 3);
            c.call::<()>(cmd!("SET", "tokio-uring-big", big.as_slice()))
                .await
                .unwrap();
            let got: Vec<u8> = c.call(cmd!("GET", "tokio-uring-big")).await.unwrap();
            assert!(got == big, "{engine:?}");
        });
    }
}
