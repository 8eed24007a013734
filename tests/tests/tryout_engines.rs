//! A new user's try-out of the engines (#12): clients made and used the ways a Rust service
//! does, on every engine: under `#[tokio::main]` of either flavour, with `block_on` and no
//! runtime, made on one runtime and used on another or from plain threads, kept in a `static`
//! across tests that each run their own runtime, pools and `Spread`, subscribers,
//! `watch_transaction`, blocking calls with callbacks, tracking pushes and `RINGDIS_ENGINE`.
//!
//! What happens when the runtime a task-engine client was made on ends is the same on both
//! servers (it is about the engine, not the protocol): those cases run on Redis 7.0 only.

mod support;

use futures::channel::oneshot;
use ringdis::{cmd, Client, Config, Engine, Error, Pool, Protocol, Spread, Tracking, Value};
use ringdis_tests::{Server, ServerKind};
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;
use support::{is_child, run_child};
use tokio::runtime::Builder;

/// `RINGDIS_ENGINE` overrides every client's engine: the cases about one engine leave such
/// runs to the rest of the suite.
fn overridden() -> bool {
    std::env::var_os("RINGDIS_ENGINE").is_some()
}

fn current_thread() -> tokio::runtime::Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

fn multi_thread() -> tokio::runtime::Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Bounds a future that must not hang (5 s), on a runtime of its own.
fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    current_thread()
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), f).await })
        .unwrap_or_else(|_| panic!("{what}: hangs"))
}

/// Two `#[tokio::test]`s sharing a client kept in a `static`: each test runs its own runtime,
/// and the first one's runtime is gone when the second runs. On a ring engine the client goes
/// on working; on the task engine (what `Engine::Auto` picks under `#[tokio::test]`) every
/// later call fails at once with an `Error::Connection` that says the client's runtime has
/// shut down, so the user knows what to change.
#[test]
fn a_client_in_a_static_outlives_the_first_tests_runtime_only_on_a_ring_engine() {
    if overridden() {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    for engine in [Engine::Auto, Engine::Task, Engine::IoUring, Engine::Epoll] {
        let at = format!("{engine:?}");
        let shared: OnceLock<Client> = OnceLock::new();
        let client =
            || shared.get_or_init(|| Client::new(support::config(&server, engine)).unwrap());
        // "test one"
        current_thread().block_on(async {
            let pong: String = client().call(cmd!("PING")).await.unwrap();
            assert_eq!(pong, "PONG", "{at}");
        });
        // "test two", on a runtime of its own; the first one has ended.
        let r = bounded(&at, async { client().call::<String>(cmd!("PING")).await });
        if client().engine() == Engine::Task {
            match r {
                Err(Error::Connection { message, .. }) => assert!(
                    message.contains("runtime") && message.contains("shut down"),
                    "{at}: the error does not say the runtime is gone: {message}"
                ),
                other => panic!("{at}: {other:?}"),
            }
        } else {
            assert_eq!(r.unwrap(), "PONG", "{at}");
        }
    }
}

/// A client made on one runtime serves calls from another runtime and from plain threads
/// (`block_on`) while the runtime it was made on runs.
#[test]
fn a_client_made_on_one_runtime_serves_other_runtimes_and_plain_threads() {
    if overridden() {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    for engine in support::engines() {
        let at = format!("{engine:?}");
        let home = multi_thread();
        let c = home.block_on(async { Client::new(support::config(&server, engine)).unwrap() });
        assert_eq!(c.engine(), engine, "{at}");
        // Another runtime, of the other flavour.
        current_thread().block_on(async {
            let n: i64 = c.call(cmd!("ECHO", 7)).await.unwrap();
            assert_eq!(n, 7, "{at}");
        });
        // Four plain threads, no runtime at all.
        std::thread::scope(|s| {
            for t in 0..4 {
                let c = c.clone();
                let at = &at;
                s.spawn(move || {
                    for i in 0..50 {
                        let v: String =
                            futures::executor::block_on(c.call(cmd!("ECHO", format!("{t}:{i}"))))
                                .unwrap_or_else(|e| panic!("{at}: {e}"));
                        assert_eq!(v, format!("{t}:{i}"), "{at}");
                    }
                });
            }
        });
        // Its dedicated connections (a blocking call) too, from a plain thread.
        let list = ringdis_tests::unique("tryout");
        let got: Option<(String, String)> = std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                futures::executor::block_on(c.call(cmd!("BLPOP", list.as_str(), 5)))
                    .unwrap_or_else(|e| panic!("{at}: {e}"))
            });
            futures::executor::block_on(async {
                support::until_blocked(&c, 1, &at).await;
                c.call::<()>(cmd!("LPUSH", list.as_str(), "job"))
                    .await
                    .unwrap();
            });
            waiter.join().unwrap()
        });
        assert_eq!(got, Some((list.clone(), "job".to_owned())), "{at}");
        // A subscriber read from a plain thread: its timeout is kept there too.
        let mut sub = c.subscriber().unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                futures::executor::block_on(async {
                    sub.subscribe(["tryout-quiet"]).await.unwrap();
                    let none = sub
                        .next_message(Some(Duration::from_millis(20)))
                        .await
                        .unwrap_or_else(|e| panic!("{at}: {e}"));
                    assert!(none.is_none(), "{at}: {none:?}");
                })
            });
        });
        // A watch_transaction from another runtime: its connection is the client's engine's.
        let key = ringdis_tests::unique("watched");
        let n: i64 = current_thread().block_on(async {
            c.watch_transaction(key.as_str(), |conn| {
                let key = key.clone();
                async move {
                    let mut tx = conn.transaction();
                    tx.add(cmd!("INCRBY", key.as_str(), 5));
                    Ok(tx)
                }
            })
            .await
            .map(|(n,): (i64,)| n)
            .unwrap_or_else(|e| panic!("{at}: {e}"))
        });
        assert_eq!(n, 5, "{at}");
        drop(home);
    }
}

/// A blocking `async_call` with a callback on a task-engine client whose runtime shuts down
/// while it waits: the callback hears why, at once.
#[test]
fn a_waiting_callback_hears_that_the_runtime_shut_down() {
    if overridden() {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    let watcher = Client::new(support::config(&server, Engine::Epoll)).unwrap();
    let rt = multi_thread();
    let (tx, rx) = oneshot::channel();
    let c = rt.block_on(async {
        let c = Client::new(support::config(&server, Engine::Task)).unwrap();
        c.async_call(
            cmd!("BLPOP", ringdis_tests::unique("never").as_str(), 0),
            move |r: ringdis::Result<Value>| {
                let _ = tx.send(r);
            },
        );
        c
    });
    futures::executor::block_on(support::until_blocked(&watcher, 1, "callback"));
    drop(rt);
    match bounded("the callback", rx) {
        Ok(Err(Error::Connection { message, .. })) => {
            assert!(message.contains("runtime"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    drop(c);
}

/// A pool kept in a `static` across tests: its clients go where the pool was built. On the
/// task engine, once that runtime is gone, a checkout answers with an error naming the cause
/// instead of a client that fails every call, and nothing hangs.
#[test]
fn a_pool_and_a_subscriber_whose_runtime_ended_fail_fast_and_say_why() {
    if overridden() {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    let (pool, mut sub) = current_thread().block_on(async {
        let pool = Pool::new(support::config(&server, Engine::Task), 2);
        let c = pool.get().await.unwrap();
        let pong: String = c.call(cmd!("PING")).await.unwrap();
        assert_eq!(pong, "PONG");
        let sub = c.subscriber().unwrap();
        sub.subscribe(["tryout-news"]).await.unwrap();
        (pool, sub)
    });
    // The runtime has ended.
    let says_why = |r: ringdis::Result<()>, what: &str| match r {
        Err(Error::Connection { message, .. }) | Err(Error::Client { message, .. }) => assert!(
            message.contains("runtime"),
            "{what}: the error does not name the runtime: {message}"
        ),
        other => panic!("{what}: {other:?}"),
    };
    let r = bounded("checkout", async {
        let c = pool.get().await?;
        c.call::<()>(cmd!("PING")).await
    });
    says_why(r, "a pooled call");
    let r = bounded("next_message", async {
        sub.next_message(Some(Duration::from_secs(1)))
            .await
            .map(drop)
    });
    says_why(r, "next_message");
}

/// Pools and `Spread` on every engine, driven by each way of running futures.
#[test]
fn pools_and_spread_work_on_every_engine_and_runtime() {
    if overridden() {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    for (runtime, engine) in support::RUNTIMES {
        let at = format!("{runtime:?}/{engine:?}");
        support::run_on(runtime, async {
            let config = support::config(&server, engine);
            let spread = Spread::new(config.clone(), 3).unwrap();
            assert!(
                spread.clients().iter().all(|c| c.engine() == engine),
                "{at}"
            );
            let key = ringdis_tests::unique("spread");
            for _ in 0..6 {
                spread
                    .call::<i64>(cmd!("INCR", key.as_str()))
                    .await
                    .unwrap();
            }
            let n: i64 = spread.call(cmd!("GET", key.as_str())).await.unwrap();
            assert_eq!(n, 6, "{at}");

            let pool = Pool::new(config, 2);
            let (a, b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
            assert_eq!(a.engine(), engine, "{at}");
            assert!(pool.try_get().unwrap().is_none(), "{at}: max_size 2");
            let (x, y): (String, String) =
                futures::join!(async { a.call(cmd!("ECHO", "a")).await.unwrap() }, async {
                    b.call(cmd!("ECHO", "b")).await.unwrap()
                });
            assert_eq!((x.as_str(), y.as_str()), ("a", "b"), "{at}");
            drop(a);
            assert!(pool.try_get().unwrap().is_some(), "{at}: given back");
        });
    }
}

/// `async_call` of a blocking command with a callback, on every engine and runtime: the
/// callback gets the reply, even when the client is dropped before it comes.
#[test]
fn a_blocking_async_call_gives_its_callback_the_reply() {
    if overridden() {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    for (runtime, engine) in support::RUNTIMES {
        let at = format!("{runtime:?}/{engine:?}");
        support::run_on(runtime, async {
            let config = support::config(&server, engine);
            let pusher = Client::new(config.clone()).unwrap();
            let c = Client::new(config).unwrap();
            let list = ringdis_tests::unique("cb");
            let (tx, rx) = oneshot::channel();
            c.async_call(
                cmd!("BLPOP", list.as_str(), 5),
                move |r: ringdis::Result<Value>| {
                    let _ = tx.send(r);
                },
            );
            support::until_blocked(&pusher, 1, &at).await;
            drop(c);
            pusher
                .call::<()>(cmd!("LPUSH", list.as_str(), "job"))
                .await
                .unwrap();
            let got = rx.await.expect("the callback ran").unwrap();
            assert_eq!(
                got,
                Value::Array(vec![
                    Value::Bulk(list.clone().into_bytes().into()),
                    Value::Bulk(b"job".to_vec().into())
                ]),
                "{at}"
            );
        });
    }
}

/// `watch_transaction`, and tracking invalidations through `on_push`, on every engine and
/// runtime, both protocols where they apply.
#[test]
fn watch_transactions_and_tracking_pushes_work_on_every_engine() {
    if overridden() {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    for (runtime, engine) in support::RUNTIMES {
        let at = format!("{runtime:?}/{engine:?}");
        support::run_on(runtime, async {
            let config = support::config(&server, engine);
            let c = Client::new(config.clone()).unwrap();
            let key = ringdis_tests::unique("watch");
            c.call::<()>(cmd!("SET", key.as_str(), 21)).await.unwrap();
            let (doubled,): (i64,) = c
                .watch_transaction(key.as_str(), |conn| {
                    let key = key.clone();
                    async move {
                        let n: i64 = conn.call(cmd!("GET", key.as_str())).await?;
                        let mut tx = conn.transaction();
                        tx.add(cmd!("SET", key.as_str(), n * 2))
                            .add(cmd!("GET", key.as_str()));
                        Ok(tx)
                    }
                })
                .await
                .map(|((), n): ((), i64)| (n,))
                .unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(doubled, 42, "{at}");

            let tracked = ringdis_tests::unique("tracked");
            let reader = Client::new(
                config
                    .clone()
                    .protocol(Protocol::Resp3)
                    .tracking(Tracking::new()),
            )
            .unwrap();
            let (tx, mut rx) = futures::channel::mpsc::unbounded();
            reader.on_push(move |p| {
                let _ = tx.unbounded_send(p);
            });
            let _: Option<String> = reader.call(cmd!("GET", tracked.as_str())).await.unwrap();
            c.call::<()>(cmd!("SET", tracked.as_str(), "new"))
                .await
                .unwrap();
            use futures::StreamExt;
            let push = rx.next().await.expect("an invalidation");
            let text = format!("{push:?}");
            assert!(
                text.contains("invalidate") && text.contains(&tracked),
                "{at}: {text}"
            );
        });
    }
}

/// `RINGDIS_ENGINE=task` outside a runtime: the refusal names the variable, since the code
/// asked for another engine and the override is what made it the task engine.
#[test]
fn an_engine_override_outside_a_runtime_names_the_variable() {
    run_child("child_override", &[("RINGDIS_ENGINE", "task")]);
}

/// `RINGDIS_ENGINE=epoll` inside a tokio runtime puts everything a service makes there on
/// the epoll engine, whatever the code asked for: clients, a pool's members, a `Spread`'s
/// connections, subscribers and blocking calls.
#[test]
fn an_engine_override_reaches_pools_spreads_and_subscribers() {
    run_child("child_override_inside", &[("RINGDIS_ENGINE", "epoll")]);
}

#[test]
#[ignore = "run by an_engine_override_reaches_pools_spreads_and_subscribers in a child process"]
fn child_override_inside() {
    if !is_child("child_override_inside") {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    multi_thread().block_on(async {
        let config = support::config(&server, Engine::Task);
        let c = Client::new(config.clone()).unwrap();
        assert_eq!(c.engine(), Engine::Epoll);
        let pooled = Pool::new(config.clone(), 1).get().await.unwrap();
        assert_eq!(pooled.engine(), Engine::Epoll);
        let spread = Spread::new(config, 2).unwrap();
        assert!(spread.clients().iter().all(|c| c.engine() == Engine::Epoll));
        let sub = c.subscriber().unwrap();
        assert_eq!(sub.connection().engine(), Engine::Epoll);
        let list = ringdis_tests::unique("override");
        c.call::<()>(cmd!("RPUSH", list.as_str(), "x"))
            .await
            .unwrap();
        let got: Option<(String, String)> = c.call(cmd!("BLPOP", list.as_str(), 1)).await.unwrap();
        assert_eq!(got, Some((list.clone(), "x".to_owned())));
        let pong: String = pooled.call(cmd!("PING")).await.unwrap();
        assert_eq!(pong, "PONG");
    });
    // The runtime is gone; the epoll engine's clients are not.
    let c = Client::new(support::config(&server, Engine::Task)).unwrap();
    let pong: String = futures::executor::block_on(c.call(cmd!("PING"))).unwrap();
    assert_eq!(pong, "PONG");
}

/// A `RINGDIS_ENGINE` that names no engine is refused quoting the value as it was set.
#[test]
fn a_wrong_engine_override_is_quoted_as_set() {
    run_child("child_bad_override", &[("RINGDIS_ENGINE", "EPOL")]);
}

#[test]
#[ignore = "run by a_wrong_engine_override_is_quoted_as_set in a child process"]
fn child_bad_override() {
    if !is_child("child_bad_override") {
        return;
    }
    support::refused(Client::new(Config::new()), "\"EPOL\"", "EPOL");
    let pool = Pool::new(Config::new(), 1);
    support::refused(
        futures::executor::block_on(pool.get()).map(drop),
        "\"EPOL\"",
        "pool",
    );
}

#[test]
#[ignore = "run by an_engine_override_outside_a_runtime_names_the_variable in a child process"]
fn child_override() {
    if !is_child("child_override") {
        return;
    }
    let config = Config::new().port(1).engine(Engine::Epoll);
    match Client::new(config) {
        Err(Error::Client { message, .. }) => assert!(
            message.contains("RINGDIS_ENGINE"),
            "the refusal does not name the override: {message}"
        ),
        other => panic!("{other:?}"),
    }
}

/// A task-engine pool whose runtime ended, every client checked out: a checkout with a
/// checkout timeout ends in an error when it passes, never in a panic.
#[test]
fn a_full_pool_whose_runtime_ended_times_out_its_checkouts() {
    if overridden() {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    let (pool, held) = current_thread().block_on(async {
        let pool = Pool::builder(support::config(&server, Engine::Task))
            .max_size(1)
            .checkout_timeout(Some(Duration::from_millis(100)))
            .build();
        let held = pool.get().await.unwrap();
        (pool, held)
    });
    let r = std::thread::spawn(move || bounded("checkout", async { pool.get().await.map(drop) }))
        .join()
        .unwrap_or_else(|_| panic!("a checkout panicked"));
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    drop(held);
}

/// A runtime built without its time driver (`enable_io` only) cannot run connection tasks:
/// tokio's panic says so, and the calls fail with an `Error::Connection` that points at the
/// runtime's drivers rather than only at a shutdown that did not happen.
#[test]
fn a_runtime_without_time_fails_calls_naming_the_drivers() {
    if overridden() {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    let rt = Builder::new_current_thread().enable_io().build().unwrap();
    let r = rt.block_on(async {
        let c = Client::new(support::config(&server, Engine::Task)).unwrap();
        c.call::<String>(cmd!("PING")).await
    });
    match r {
        Err(Error::Connection { message, .. }) => {
            assert!(message.contains("enable_all"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

/// Blocking work on a current-thread runtime's thread stalls its task-engine connections:
/// calls made from other threads meanwhile wait, and time out once it runs again if their
/// deadline passed. That is no sign of a silent server: the liveness rule must not close the
/// healthy connection (it did, failing the next call with "the server stopped answering").
#[test]
fn a_stalled_runtime_is_not_taken_for_a_silent_server() {
    if overridden() {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    let rt = current_thread();
    let timeout = Duration::from_millis(100);
    let c = rt.block_on(async {
        let config = support::config(&server, Engine::Task).command_timeout(Some(timeout));
        let c = Client::new(config).unwrap();
        c.call::<()>(cmd!("PING")).await.unwrap();
        c
    });
    // Three calls from plain threads (the liveness rule's default count), each submitted (its
    // first poll) before the runtime's thread gets busy.
    let (submitted, all_submitted) = std::sync::mpsc::channel();
    let callers: Vec<_> = (0..3)
        .map(|_| {
            let c = c.clone();
            let submitted = submitted.clone();
            std::thread::spawn(move || {
                let mut call = Box::pin(c.call::<String>(cmd!("PING")));
                let waker = futures::task::noop_waker();
                let polled = call
                    .as_mut()
                    .poll(&mut std::task::Context::from_waker(&waker));
                assert!(polled.is_pending(), "answered with the runtime idle");
                submitted.send(()).unwrap();
                futures::executor::block_on(call)
            })
        })
        .collect();
    for _ in 0..3 {
        all_submitted.recv().unwrap();
    }
    // The runtime's thread does blocking work past the calls' deadline.
    let busy_until = std::time::Instant::now() + timeout * 3;
    while std::time::Instant::now() < busy_until {
        std::hint::spin_loop();
    }
    rt.block_on(async {
        let pong = c.call::<String>(cmd!("PING")).await;
        assert_eq!(pong.unwrap(), "PONG", "the connection was given up");
        assert!(c.is_connected());
    });
    for t in callers {
        // Answered or timed out, but not failed by a closed connection.
        match t.join().unwrap() {
            Ok(pong) => assert_eq!(pong, "PONG"),
            Err(Error::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

/// `Config::tracking` with RESP2: the server sends RESP2 invalidations only to a `REDIRECT`
/// connection, which `Tracking` does not offer, so such a client would never hear of a change
/// and serve stale caches. It is refused when made, saying what to do, on every engine.
#[test]
fn tracking_over_resp2_is_refused_not_silent() {
    if overridden() {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    for (runtime, engine) in support::RUNTIMES {
        support::run_on(runtime, async {
            let config = support::config(&server, engine)
                .protocol(Protocol::Resp2)
                .tracking(Tracking::new());
            support::refused(
                Client::new(config.clone()),
                "Protocol::Resp3",
                &format!("{runtime:?}/{engine:?}"),
            );
            let pool = Pool::new(config, 1);
            support::refused(pool.get().await.map(drop), "Protocol::Resp3", "pool");
        });
    }
}
