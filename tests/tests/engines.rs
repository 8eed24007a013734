//! Issue #12: what the engines promise beyond the behaviour the rest of the suite checks on each
//! of them. A ring engine (io_uring, and its epoll twin) drives a crowd of connections (64
//! clients, a Pool of 64, a Spread of 8, a subscriber and 8 blocking calls in flight, every reply
//! its caller's own) on its one engine thread, at most 3 OS threads in all; the task engine
//! drives the same crowd on the caller's runtime with no thread of its own; dropping the crowd
//! releases every descriptor, thread and io_uring ring mapping. User code that panics in a push
//! handler or an `async_call` callback never stops a connection, on any engine and runtime.
//! (Which engine `Auto` picks where is in `task_engine.rs`.)
//!
//! The counting tests run in a child process of their own (`support::run_child`), where no other
//! test opens descriptors or starts threads meanwhile.

mod support;

use futures::FutureExt;
use ringdis::{cmd, Call, Client, Config, Engine, Pool, Protocol, Spread, Tracking, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{each_runtime, is_child, process, run_child, run_on, until_blocked, Runtime};

/// What the process holds, from /proc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Held {
    /// Open descriptors (`/proc/self/fd`).
    fds: usize,
    /// OS threads (`/proc/self/task`), the timer thread left out.
    threads: usize,
    /// Whether the timer thread runs.
    timer: bool,
    /// Mappings of io_uring rings (`/proc/self/maps` lines naming io_uring).
    rings: usize,
}

impl Held {
    fn now() -> Held {
        let fds = process::fds();
        let names = process::thread_names();
        let timers = names.iter().filter(|n| *n == process::TIMER_THREAD).count();
        Held {
            fds,
            threads: names.len() - timers,
            timer: timers > 0,
            rings: process::io_uring_maps(),
        }
    }

    /// OS threads started since `before`, the timer thread included if it started meanwhile.
    fn new_threads_since(&self, before: &Held) -> usize {
        (self.threads + usize::from(self.timer))
            .saturating_sub(before.threads + usize::from(before.timer))
    }
}

/// Waits until the process holds no more than it did `before` (descriptors, threads, rings):
/// polled with a deadline, yielding to whatever drives the connections meanwhile.
async fn until_released(before: Held, at: &str) {
    // The abandoned BLPOPs end on the server within their 2 s timeout at the latest.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = Held::now();
        if now.fds <= before.fds && now.threads <= before.threads && now.rings <= before.rings {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{at}: not released within 15 s: before {before:?}, now {now:?}"
        );
        support::yield_now().await;
    }
}

/// How many connections the server has (`CLIENT LIST`).
async fn connections(c: &Client) -> usize {
    let list: String = c.call(cmd!("CLIENT", "LIST")).await.unwrap();
    list.lines().count()
}

/// Writes a key only this call uses and reads it back, and echoes a text only it sends: a reply
/// that went to another caller would show.
async fn own_replies(c: &Client, at: &str) {
    let key = ringdis_tests::unique("crowd:own");
    let value = format!("{key}:value");
    c.call::<()>(cmd!("SET", &key, &value)).await.unwrap();
    let got: String = c.call(cmd!("GET", &key)).await.unwrap();
    assert_eq!(got, value, "{at}: a reply reached the wrong caller");
    let echoed: String = c.call(cmd!("ECHO", &key)).await.unwrap();
    assert_eq!(echoed, key, "{at}: a reply reached the wrong caller");
}

/// The name of the engine thread of `engine` (`None`: it has none).
fn engine_thread(engine: Engine) -> Option<&'static str> {
    match engine {
        Engine::IoUring => Some("ringdis-ring"),
        Engine::Epoll => Some("ringdis-epoll"),
        _ => None,
    }
}

/// The threads a crowd on `engine` may have added since `before`: a ring engine exactly its one
/// engine thread beside the timer thread, at most 3 OS threads in all; the task engine none (the
/// timer thread, started on demand by a subscriber's timeout, is the process's, no engine's).
#[track_caller]
fn threads_added(engine: Engine, before: &Held, now: &Held, at: &str) {
    let added = now.new_threads_since(before);
    let shown = format!("before {before:?}, now {now:?}");
    match engine_thread(engine) {
        Some(name) => {
            assert!(added <= 3, "{at}: {added} OS threads added: {shown}");
            let engines = process::threads_named(|n| n == name);
            assert_eq!(engines, 1, "{at}: one {name} thread drives them all");
            assert_eq!(
                now.threads,
                before.threads + 1,
                "{at}: the engine thread is the only thread added but the timer: {shown}"
            );
        }
        None => assert_eq!(
            now.threads, before.threads,
            "{at}: a thread added (the timer thread aside): {shown}"
        ),
    }
}

/// 64 clients, a Pool of 64 (every client checked out and connected), a Spread of 8, a
/// subscriber and 8 blocking calls in flight (BLPOP on keys nobody else pushes), on `cfg`'s
/// engine, driven by whatever runs this future. Every connection then calls at once and gets
/// its own replies; 4 of the blocking calls are answered, each with its own list's element.
/// While all of it is live and after the calls, the threads are checked ([`threads_added`]).
/// Then everything is dropped (4 blocking calls, 2 s, still in flight) and every descriptor,
/// thread and ring mapping must be released.
async fn crowd(cfg: Config, engine: Engine, at: &str) {
    let before = Held::now();
    let c = Client::new(cfg.clone()).unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!(c.engine(), engine, "{at}");
    let watcher = Client::new(cfg.clone()).unwrap();
    let at_start = connections(&watcher).await;

    let clients: Vec<Client> = (0..64).map(|_| Client::new(cfg.clone()).unwrap()).collect();
    for r in futures::future::join_all(clients.iter().map(|c| c.connect())).await {
        r.unwrap_or_else(|e| panic!("{at}: connect: {e}"));
    }
    let pool = Pool::new(cfg.clone(), 64);
    let pooled: Vec<_> = futures::future::join_all((0..64).map(|_| pool.get()))
        .await
        .into_iter()
        .map(|p| p.unwrap_or_else(|e| panic!("{at}: pool checkout: {e}")))
        .collect();
    for r in futures::future::join_all(pooled.iter().map(|p| p.call::<String>(cmd!("PING")))).await
    {
        assert_eq!(r.unwrap(), "PONG", "{at}: pooled");
    }
    let spread = Spread::new(cfg.clone(), 8).unwrap();
    let members = spread
        .clients()
        .iter()
        .map(|m| m.call::<String>(cmd!("PING")));
    for r in futures::future::join_all(members).await {
        assert_eq!(r.unwrap(), "PONG", "{at}: spread member");
    }
    let mut sub = c.subscriber().unwrap();
    let ch = ringdis_tests::unique("crowd");
    sub.subscribe([&ch]).await.unwrap();
    let _: i64 = c.call(cmd!("PUBLISH", &ch, "hi")).await.unwrap();
    let heard = sub
        .next_message(Some(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(
        heard.as_ref().and_then(|m| m.payload_str()),
        Some("hi"),
        "{at}"
    );
    // Each blocking call gets a dedicated connection of `c`'s.
    let lists: Vec<String> = (0..4)
        .map(|_| ringdis_tests::unique("crowd:list"))
        .collect();
    let answered: Vec<Call<Option<(String, String)>>> = lists
        .iter()
        .map(|list| c.call(cmd!("BLPOP", list, 10)))
        .collect();
    let mut abandoned: Vec<Call<Option<(String, String)>>> = (0..4)
        .map(|_| c.call(cmd!("BLPOP", ringdis_tests::unique("nobody"), 2)))
        .collect();
    until_blocked(&watcher, 8, at).await;

    // All of it is live: 64 clients + 64 + 8 + the subscriber + 8 blocking connections, beside
    // the shared connection and the watcher.
    let live = connections(&watcher).await;
    assert!(
        live >= at_start + 64 + 64 + 8 + 1 + 8,
        "{at}: only {live} connections (from {at_start})"
    );
    let during = Held::now();
    threads_added(
        engine,
        &before,
        &during,
        &format!("{at}, {live} connections live"),
    );
    match engine {
        Engine::IoUring => assert!(during.rings > before.rings, "{at}: no ring mapped"),
        Engine::Epoll => assert_eq!(during.rings, before.rings, "{at}: a ring on epoll"),
        _ => {}
    }
    for call in &mut abandoned {
        assert!(call.now_or_never().is_none(), "{at}: a BLPOP answered");
    }

    // Every connection at once, so the replies of different connections interleave.
    let everyone: Vec<&Client> = std::iter::once(&c)
        .chain(&clients)
        .chain(pooled.iter().map(|p| &**p))
        .chain(spread.clients())
        .collect();
    futures::future::join_all(everyone.iter().map(|c| own_replies(c, at))).await;
    for (list, blpop) in lists.iter().zip(answered) {
        let value = format!("{list}:value");
        let _: i64 = watcher.call(cmd!("RPUSH", list, &value)).await.unwrap();
        let got = blpop.await.unwrap();
        assert_eq!(got, Some((list.clone(), value)), "{at}: a blocking call");
    }
    threads_added(
        engine,
        &before,
        &Held::now(),
        &format!("{at}, after the calls"),
    );

    drop(abandoned);
    drop(sub);
    drop(pooled);
    drop(pool);
    drop(spread);
    drop(clients);
    drop(c);
    drop(watcher);
    until_released(before, at).await;
}

/// A ring engine runs the crowd on at most 3 OS threads in all, under `block_on` on this
/// (plain) thread: no runtime worker is counted.
fn ring_crowd(engine: Engine) {
    let servers = support::servers();
    for server in &servers {
        for protocol in support::PROTOCOLS {
            let at = format!("{}/{engine:?}/{protocol:?}", server.kind());
            let cfg = support::config(server, engine).protocol(protocol);
            futures::executor::block_on(crowd(cfg, engine, &at));
        }
    }
}

/// Issue #12: on the io_uring ring engine 64 clients + a Pool of 64 + a Spread of 8 + a
/// subscriber + 8 blocking calls in flight run on one engine thread (at most 3 OS threads in
/// all), each caller getting its own replies; dropping them releases every descriptor, thread and
/// ring mapping.
#[test]
fn io_uring_runs_a_crowd_on_at_most_three_threads_and_releases_it() {
    run_child("child_crowd_io_uring", &[]);
}

#[test]
#[ignore = "run by io_uring_runs_a_crowd_on_at_most_three_threads_and_releases_it"]
fn child_crowd_io_uring() {
    if !is_child("child_crowd_io_uring") {
        return;
    }
    ring_crowd(Engine::IoUring);
}

/// The same on the epoll twin (and it maps no io_uring ring).
#[test]
fn epoll_runs_a_crowd_on_at_most_three_threads_and_releases_it() {
    run_child("child_crowd_epoll", &[]);
}

#[test]
#[ignore = "run by epoll_runs_a_crowd_on_at_most_three_threads_and_releases_it"]
fn child_crowd_epoll() {
    if !is_child("child_crowd_epoll") {
        return;
    }
    ring_crowd(Engine::Epoll);
}

/// Issue #12: the task engine runs the same crowd on the caller's runtime, current-thread or
/// multi-thread, with no OS thread of its own (the runtime's workers exist before the count
/// starts); dropping it releases every descriptor and thread.
#[test]
fn the_task_engine_runs_a_crowd_on_no_thread_of_its_own() {
    run_child("child_crowd_task", &[]);
}

#[test]
#[ignore = "run by the_task_engine_runs_a_crowd_on_no_thread_of_its_own"]
fn child_crowd_task() {
    if !is_child("child_crowd_task") {
        return;
    }
    let servers = support::servers();
    for runtime in [Runtime::CurrentThread, Runtime::MultiThread] {
        for server in &servers {
            for protocol in support::PROTOCOLS {
                let at = format!("{}/Task/{protocol:?} on {runtime:?}", server.kind());
                let cfg = support::config(server, Engine::Task).protocol(protocol);
                run_on(runtime, async {
                    // The multi-thread runtime's workers are up once it runs this task.
                    tokio::task::yield_now().await;
                    crowd(cfg, Engine::Task, &at).await;
                });
            }
        }
    }
}

/// A push handler that panics on every push (RESP3 tracking invalidations) and an `async_call`
/// callback that panics leave the connection serving the next calls, on every engine and
/// runtime; the handler is neither removed nor skipped afterwards.
#[test]
fn a_panicking_push_handler_or_callback_never_takes_the_connection_down() {
    let servers = support::servers();
    each_runtime(&servers, |cell| async move {
        let (cfg, at) = (cell.config, cell.at);
        let resp3 = cell.protocol == Protocol::Resp3;
        // Invalidations without REDIRECT are RESP3 pushes.
        let c = if resp3 {
            Client::new(cfg.clone().tracking(Tracking::new()))
        } else {
            Client::new(cfg.clone())
        }
        .unwrap_or_else(|e| panic!("{at}: {e}"));
        let other = Client::new(cfg).unwrap();
        if resp3 {
            let pushes = Arc::new(AtomicUsize::new(0));
            let seen = pushes.clone();
            c.on_push(move |_| {
                seen.fetch_add(1, Ordering::SeqCst);
                panic!("a bug in the user's push handler");
            });
            for round in 1..=2 {
                let key = ringdis_tests::unique("tracked");
                let _: Option<String> = c.call(cmd!("GET", &key)).await.unwrap();
                let _: () = other.call(cmd!("SET", &key, "v")).await.unwrap();
                let deadline = Instant::now() + Duration::from_secs(10);
                while pushes.load(Ordering::SeqCst) < round {
                    assert!(
                        Instant::now() < deadline,
                        "{at}: invalidation push {round} never reached the handler"
                    );
                    support::yield_now().await;
                }
                let echo: String = c
                    .call(cmd!("ECHO", "still here"))
                    .await
                    .unwrap_or_else(|e| panic!("{at}: after panic {round}: {e}"));
                assert_eq!(echo, "still here", "{at}");
                assert!(c.is_connected(), "{at}");
            }
        }
        for round in 0..2 {
            c.async_call(cmd!("PING"), |_: ringdis::Result<Value>| {
                panic!("a bug in the user's callback")
            });
            let (tx, rx) = futures::channel::oneshot::channel();
            c.async_call(cmd!("ECHO", "after"), move |r: ringdis::Result<Value>| {
                let _ = tx.send(r);
            });
            let after = rx
                .await
                .unwrap_or_else(|_| panic!("{at} round {round}: the next callback never ran"));
            assert_eq!(after.unwrap(), Value::Bulk("after".into()), "{at}");
            let echo: String = c
                .call(cmd!("ECHO", "last"))
                .await
                .unwrap_or_else(|e| panic!("{at} round {round}: {e}"));
            assert_eq!(echo, "last", "{at}");
        }
    });
}
