//! A new user's check of what README.md and the public docs claim about engines (#12): where
//! `Engine::Auto` puts a client, that everything a client or pool makes later lands on that same
//! engine whatever thread asks, `RINGDIS_ENGINE`, the threads each engine adds (from `/proc`, in
//! child processes so that other tests' engines do not count), `Value::Simple` and the pipeline
//! builders. (`Config::tracking` over RESP2 is `tryout_engines.rs`'s
//! `tracking_over_resp2_is_refused_not_silent`; the jitter bounds are `conn/backoff.rs`'s unit
//! tests.)

mod support;

use ringdis::{cmd, Client, Commands, Engine, Pool, Spread, Value};
use ringdis_tests::{Server, ServerKind};
use std::borrow::Cow;
use std::time::{Duration, Instant};
use support::{is_child, process, run_child};
use tokio::runtime::Builder;

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

fn is_ring(e: Engine) -> bool {
    matches!(e, Engine::IoUring | Engine::Epoll)
}

/// Everything `client` makes later, and a pool and spread built from `config` where `make`
/// runs, are on `expected`: dedicated connections, subscribers, `watch_transaction`'s connection.
async fn all_on(client: &Client, pool: &Pool, spread: &Spread, expected: Engine, at: &str) {
    assert_eq!(client.engine(), expected, "{at}: the client");
    assert_eq!(
        client.dedicated().unwrap().engine(),
        expected,
        "{at}: dedicated()"
    );
    let sub = client.subscriber().unwrap();
    assert_eq!(sub.connection().engine(), expected, "{at}: subscriber()");
    let key = ringdis_tests::unique("docs-watch");
    let got: (i64,) = client
        .watch_transaction(key.as_str(), |c| {
            assert_eq!(c.engine(), expected, "{at}: watch_transaction's connection");
            let key = key.clone();
            async move {
                let mut p = c.transaction();
                p.add(cmd!("INCR", key.as_str()));
                Ok(p)
            }
        })
        .await
        .unwrap();
    assert_eq!(got, (1,), "{at}");
    let pooled = pool.get().await.unwrap();
    assert_eq!(pooled.engine(), expected, "{at}: a pool member");
    let pong: String = pooled.call(cmd!("PING")).await.unwrap();
    assert_eq!(pong, "PONG", "{at}");
    assert!(
        spread.clients().iter().all(|c| c.engine() == expected),
        "{at}: a Spread's connections"
    );
}

/// `Engine::Auto`: the task engine on a current-thread runtime, a ring engine (io_uring, or
/// epoll where refused) on a multi-thread runtime and outside any; and a client's later
/// connections, a pool's members and a spread's connections follow it.
#[test]
fn auto_picks_by_runtime_and_everything_made_later_follows() {
    if overridden() {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    let config = || support::config(&server, Engine::Auto);

    current_thread().block_on(async {
        let c = Client::new(config()).unwrap();
        let pool = Pool::new(config(), 2);
        let spread = Spread::new(config(), 2).unwrap();
        all_on(&c, &pool, &spread, Engine::Task, "current-thread").await;
    });

    let ring = multi_thread().block_on(async {
        let c = Client::new(config()).unwrap();
        assert!(is_ring(c.engine()), "multi-thread: {:?}", c.engine());
        let pool = Pool::new(config(), 2);
        let spread = Spread::new(config(), 2).unwrap();
        all_on(&c, &pool, &spread, c.engine(), "multi-thread").await;
        c.engine()
    });

    let c = Client::new(config()).unwrap();
    assert_eq!(
        c.engine(),
        ring,
        "outside any runtime: the same ring engine"
    );
    let pool = Pool::new(config(), 2);
    let spread = Spread::new(config(), 2).unwrap();
    futures::executor::block_on(all_on(&c, &pool, &spread, ring, "block_on"));
}

/// "whatever thread later asks": a client and pool made outside any runtime keep their ring
/// engine when a current-thread runtime (where `Auto` would pick the task engine) asks for more;
/// made on a current-thread runtime, they stay on the task engine when a plain thread asks.
#[test]
fn later_connections_keep_the_engine_whatever_thread_asks() {
    if overridden() {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    let config = || support::config(&server, Engine::Auto);

    let c = Client::new(config()).unwrap();
    let pool = Pool::new(config(), 2);
    let spread = Spread::new(config(), 2).unwrap();
    let ring = c.engine();
    assert!(is_ring(ring), "{ring:?}");
    current_thread().block_on(all_on(
        &c,
        &pool,
        &spread,
        ring,
        "made outside, used on tokio",
    ));

    let rt = current_thread();
    let (c, pool, spread) = rt.block_on(async {
        (
            Client::new(config()).unwrap(),
            Pool::new(config(), 2),
            Spread::new(config(), 2).unwrap(),
        )
    });
    // The runtime runs (on another thread) while a plain thread asks for more.
    let (stop, stopped) = futures::channel::oneshot::channel::<()>();
    std::thread::scope(|s| {
        let home = s.spawn(|| rt.block_on(stopped));
        std::thread::spawn(move || {
            futures::executor::block_on(all_on(
                &c,
                &pool,
                &spread,
                Engine::Task,
                "made on current-thread, used from a plain thread",
            ))
        })
        .join()
        .unwrap();
        stop.send(()).unwrap();
        home.join().unwrap().unwrap();
    });
}

/// `RINGDIS_ENGINE` overrides `Config::engine`, also where `Auto` would pick the task engine.
#[test]
fn the_engine_variable_overrides_auto_and_explicit_choices() {
    run_child("child_variable", &[("RINGDIS_ENGINE", "epoll")]);
}

#[test]
#[ignore = "run by the_engine_variable_overrides_auto_and_explicit_choices in a child process"]
fn child_variable() {
    if !is_child("child_variable") {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    current_thread().block_on(async {
        for asked in [Engine::Auto, Engine::Task, Engine::IoUring] {
            let c = Client::new(support::config(&server, asked)).unwrap();
            assert_eq!(c.engine(), Engine::Epoll, "asked {asked:?}");
            let pong: String = c.call(cmd!("PING")).await.unwrap();
            assert_eq!(pong, "PONG");
        }
    });
}

/// `RINGDIS_ENGINE=auto` overrides an explicit choice too: on a current-thread runtime a client
/// configured for epoll goes to the task engine, outside any runtime to a ring engine.
#[test]
fn the_engine_variable_set_to_auto_overrides_an_explicit_choice() {
    run_child("child_variable_auto", &[("RINGDIS_ENGINE", "auto")]);
}

#[test]
#[ignore = "run by the_engine_variable_set_to_auto_overrides_an_explicit_choice in a child process"]
fn child_variable_auto() {
    if !is_child("child_variable_auto") {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    current_thread().block_on(async {
        let c = Client::new(support::config(&server, Engine::Epoll)).unwrap();
        assert_eq!(c.engine(), Engine::Task);
        let pong: String = c.call(cmd!("PING")).await.unwrap();
        assert_eq!(pong, "PONG");
    });
    let c = Client::new(support::config(&server, Engine::Task)).unwrap();
    assert!(is_ring(c.engine()), "{:?}", c.engine());
    let pong: String = futures::executor::block_on(c.call(cmd!("PING"))).unwrap();
    assert_eq!(pong, "PONG");
}

/// Waits (bounded) until `f()` holds.
fn until(what: &str, f: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < end, "{what}: not within 10 s");
        std::thread::yield_now();
    }
}

fn engine_threads() -> usize {
    process::threads_named(|n| n == "ringdis-ring" || n == "ringdis-epoll")
}

/// The task engine adds no OS thread: a client, a pool member, a subscriber and a blocking call
/// in flight on a current-thread runtime leave the thread count as it was.
#[test]
fn the_task_engine_adds_no_thread() {
    run_child("child_task_threads", &[]);
}

#[test]
#[ignore = "run by the_task_engine_adds_no_thread in a child process"]
fn child_task_threads() {
    if !is_child("child_task_threads") {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    let rt = current_thread();
    let before = process::threads();
    rt.block_on(async {
        let config = support::config(&server, Engine::Auto);
        let c = Client::new(config.clone()).unwrap();
        assert_eq!(c.engine(), Engine::Task);
        let pool = Pool::new(config, 4);
        let member = pool.get().await.unwrap();
        let pong: String = member.call(cmd!("PING")).await.unwrap();
        assert_eq!(pong, "PONG");
        let mut sub = c.subscriber().unwrap();
        sub.subscribe(["docs-news"]).await.unwrap();
        let watcher = Client::new(support::config(&server, Engine::Task)).unwrap();
        let list = ringdis_tests::unique("docs-blpop");
        let blocked = c.call::<Option<(String, String)>>(cmd!("BLPOP", list.as_str(), 5));
        let check = async {
            support::until_blocked(&watcher, 1, "task engine").await;
            assert_eq!(
                process::threads(),
                before,
                "the task engine added threads: {:?}",
                process::thread_names()
            );
            assert_eq!(engine_threads(), 0);
            watcher
                .call::<i64>(cmd!("RPUSH", list.as_str(), "x"))
                .await
                .unwrap();
        };
        let (got, ()) = futures::join!(blocked, check);
        assert_eq!(got.unwrap(), Some((list.clone(), "x".to_owned())));
        // A subscriber's timeout is a timer of the runtime on the task engine.
        assert!(sub
            .next_message(Some(Duration::from_millis(20)))
            .await
            .unwrap()
            .is_none());
        assert_eq!(process::threads(), before, "{:?}", process::thread_names());
    });
}

/// The names of the threads this process runs now that it did not run at `before`, sorted.
fn added_since(before: &std::collections::HashSet<String>) -> Vec<String> {
    let mut names: Vec<String> = process::thread_ids()
        .difference(before)
        .map(|t| process::thread_name(t))
        .filter(|n| !n.is_empty())
        .collect();
    names.sort();
    names
}

/// A ring engine is one thread for every connection (clients, a pool, a subscriber, a blocking
/// call in flight), started with the first and gone after the last. A pool's checkouts and a
/// subscriber's `next_message` timeouts add the process's timer thread beside it: ringdis's
/// OS threads on a ring engine are its engine thread and, on demand, `ringdis-timer`.
#[test]
fn a_ring_engine_is_one_thread_from_its_first_connection_to_its_last() {
    run_child("child_ring_threads", &[]);
}

#[test]
#[ignore = "run by a_ring_engine_is_one_thread_from_its_first_connection_to_its_last in a child process"]
fn child_ring_threads() {
    if !is_child("child_ring_threads") {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    assert_eq!(engine_threads(), 0);
    let before = process::thread_ids();
    let config = support::config(&server, Engine::Auto);
    let c = Client::new(config.clone()).unwrap();
    let ring = c.engine();
    assert!(is_ring(ring), "{ring:?}");
    let name = match ring {
        Engine::IoUring => "ringdis-ring",
        _ => "ringdis-epoll",
    };
    futures::executor::block_on(async {
        // Clients, their calls and a blocking call in flight: the engine thread alone.
        let other = Client::new(config.clone()).unwrap();
        for c in [&c, &other] {
            let pong: String = c.call(cmd!("PING")).await.unwrap();
            assert_eq!(pong, "PONG");
        }
        let list = ringdis_tests::unique("docs-blpop");
        let blocked = c.call::<Option<(String, String)>>(cmd!("BLPOP", list.as_str(), 5));
        let check = async {
            let end = Instant::now() + Duration::from_secs(10);
            loop {
                let clients: String = other.call(cmd!("CLIENT", "LIST")).await.unwrap();
                if clients.contains("cmd=blpop") {
                    break;
                }
                assert!(Instant::now() < end, "BLPOP never blocked");
                std::thread::yield_now();
            }
            assert_eq!(added_since(&before), [name], "clients and a blocking call");
            other
                .call::<i64>(cmd!("RPUSH", list.as_str(), "x"))
                .await
                .unwrap();
        };
        let (got, ()) = futures::join!(blocked, check);
        assert_eq!(got.unwrap(), Some((list.clone(), "x".to_owned())));

        // A pool's checkouts (their timeout) and a subscriber's `next_message` timeout run on
        // the process's timer thread.
        let pool = Pool::new(config.clone(), 4);
        let members = futures::future::join_all((0..4).map(|_| pool.get())).await;
        for m in &members {
            let m = m.as_ref().unwrap();
            assert_eq!(m.engine(), ring);
            let pong: String = m.call(cmd!("PING")).await.unwrap();
            assert_eq!(pong, "PONG");
        }
        let mut sub = c.subscriber().unwrap();
        sub.subscribe(["docs-news"]).await.unwrap();
        // Checked while its timeout is pending, so the idle timer thread cannot have left.
        let mut wait = Box::pin(sub.next_message(Some(Duration::from_secs(10))));
        assert!(futures::poll!(wait.as_mut()).is_pending());
        let mut expected = vec![name, process::TIMER_THREAD];
        expected.sort();
        // A thread just spawned carries its parent's name until it has named itself: the
        // names settle within a bounded wait.
        until("the timer thread is named", || {
            added_since(&before) == expected
        });
        assert_eq!(added_since(&before), expected, "a pool and a subscriber");
        drop(wait);
    });
    drop(c);
    // Every connection is gone: the engine thread exits.
    until("the engine thread exits after its last connection", || {
        engine_threads() == 0
    });
    // And a new connection starts it again.
    let c = Client::new(config).unwrap();
    let pong: String = futures::executor::block_on(c.call(cmd!("PING"))).unwrap();
    assert_eq!(pong, "PONG");
    assert_eq!(engine_threads(), 1);
}

/// `Value::Simple` holds a `Cow<'static, str>`, and `Value::Simple(s) if s == "OK"` matches an
/// OK, in both protocols.
#[test]
fn a_simple_string_is_a_cow_and_matches_ok() {
    let _: fn(Cow<'static, str>) -> Value = Value::Simple;
    let server = Server::start(ServerKind::Redis);
    for protocol in support::PROTOCOLS {
        current_thread().block_on(async {
            let c = Client::new(support::config(&server, Engine::Auto).protocol(protocol)).unwrap();
            let v: Value = c.call(cmd!("SET", "docs-simple", "v")).await.unwrap();
            assert!(
                matches!(&v, Value::Simple(s) if s == "OK"),
                "{protocol:?}: {v:?}"
            );
            assert_eq!(v, Value::Simple("OK".into()));
        });
    }
}

/// `p.set("k", "v").ex(10)` adds one command, SET k v EX 10, whether or not the builder is kept.
#[test]
fn a_typed_pipeline_method_adds_one_command_with_its_options() {
    let server = Server::start(ServerKind::Redis);
    current_thread().block_on(async {
        let c = Client::new(support::config(&server, Engine::Auto)).unwrap();
        let key = ringdis_tests::unique("docs-pipe");
        let mut p = c.pipeline();
        let _ = p.set(key.as_str(), "v").ex(10);
        assert_eq!(p.len(), 1);
        let _ = p.ttl(key.as_str());
        assert_eq!(p.len(), 2);
        let (set, ttl): (Value, i64) = p.query().await.unwrap();
        assert!(matches!(&set, Value::Simple(s) if s == "OK"), "{set:?}");
        assert!(
            (1..=10).contains(&ttl),
            "EX 10 reached the server: ttl {ttl}"
        );
    });
}
