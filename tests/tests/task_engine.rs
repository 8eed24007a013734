//! The task engine (`Engine::Task`): connections run as tasks on the caller's tokio runtime.
//! Calls, pipelines, pub/sub, blocking calls and reconnects work on it under both runtime
//! flavours; `Engine::Auto` picks it inside a runtime and a ring engine outside; a client whose
//! runtime is gone fails its calls instead of leaving them hanging; host names and unix sockets
//! connect. (That it adds no OS thread is `engines.rs`'s crowd test; that its idle tasks use no
//! CPU and that it works inside tokio-uring are `transports.rs`'s.)
//!
//! Cases that need a process of their own (thread counts, the engine `Auto` picks, which the
//! `RINGDIS_ENGINE` override would change) re-run this binary on one `child_*` test.

mod support;

use futures::future::join_all;
use ringdis::{cmd, Client, Config, Engine, Error, Protocol, Value};
use ringdis_tests::{Server, ServerKind};
use std::time::{Duration, Instant};
use support::{is_child, label, run_child, until_blocked, PROTOCOLS};
use tokio::runtime::{Builder, Runtime};

/// Both tokio flavours, each with its IO and time drivers on (as `#[tokio::main]` makes them).
fn runtimes() -> Vec<(&'static str, Runtime)> {
    vec![
        (
            "current-thread",
            Builder::new_current_thread().enable_all().build().unwrap(),
        ),
        (
            "multi-thread",
            Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
        ),
    ]
}

/// `RINGDIS_ENGINE` overrides every client's engine: these tests are about one engine and
/// leave such runs to the rest of the suite.
fn overridden() -> bool {
    std::env::var_os("RINGDIS_ENGINE").is_some()
}

/// A task-engine client for `server`; call it inside a runtime.
fn task_client(server: &Server, protocol: Protocol) -> Client {
    support::client(server, Engine::Task, protocol)
}

/// Waits (bounded, 10 s) until `c` has noticed its connection is gone.
async fn until_disconnected(c: &Client, at: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.is_connected() {
        assert!(Instant::now() < deadline, "{at}: the loss went unnoticed");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Calls, concurrent calls, a pipeline, pub/sub and a blocking call on one task-engine client.
async fn exercise(c: &Client, at: &str) {
    let key = ringdis_tests::unique("task");
    c.call::<()>(cmd!("SET", key.as_str(), "v"))
        .await
        .unwrap_or_else(|e| panic!("{at}: {e}"));
    let v: String = c.call(cmd!("GET", key.as_str())).await.unwrap();
    assert_eq!(v, "v", "{at}");

    // 200 calls in flight together, each answered with its own reply.
    let calls: Vec<_> = (0..200)
        .map(|i| c.call::<String>(cmd!("ECHO", format!("m{i}"))))
        .collect();
    for (i, r) in join_all(calls).await.into_iter().enumerate() {
        assert_eq!(r.unwrap(), format!("m{i}"), "{at}: call #{i}");
    }

    // A pipeline of 50 SETs and a GET of each.
    let mut p = c.pipeline();
    for i in 0..50 {
        p.add(cmd!("SET", format!("{key}:{i}"), i));
    }
    for i in 0..50 {
        p.add(cmd!("GET", format!("{key}:{i}")));
    }
    let replies: Vec<Value> = p.query().await.unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!(replies.len(), 100, "{at}");
    for i in 0..50 {
        assert_eq!(
            replies[50 + i],
            Value::Bulk(i.to_string().into_bytes().into()),
            "{at}: piped GET #{i}"
        );
    }

    // Pub/sub: a subscriber (its own task) gets what is published.
    let channel = ringdis_tests::unique("chan");
    let mut sub = c.subscriber().unwrap();
    sub.subscribe([channel.as_str()])
        .await
        .unwrap_or_else(|e| panic!("{at}: subscribe: {e}"));
    let receivers: i64 = c
        .call(cmd!("PUBLISH", channel.as_str(), "hello"))
        .await
        .unwrap();
    assert_eq!(receivers, 1, "{at}");
    let msg = sub
        .next_message(Some(Duration::from_secs(5)))
        .await
        .unwrap_or_else(|e| panic!("{at}: {e}"))
        .unwrap_or_else(|| panic!("{at}: no message"));
    assert_eq!(&msg.channel[..], channel.as_bytes(), "{at}");
    assert_eq!(msg.payload, Value::Bulk(b"hello".to_vec().into()), "{at}");

    // A blocking call runs on its own connection (another task): the shared one keeps
    // answering while it waits, and it gets what is pushed.
    let list = ringdis_tests::unique("list");
    let blocked = c.call::<Option<(String, String)>>(cmd!("BLPOP", list.as_str(), 10));
    let blocked = tokio::spawn(blocked);
    until_blocked(c, 1, at).await;
    let pong: String = c.call(cmd!("PING")).await.unwrap();
    assert_eq!(pong, "PONG", "{at}");
    c.call::<()>(cmd!("LPUSH", list.as_str(), "job"))
        .await
        .unwrap();
    let got = blocked
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!(got, Some((list.clone(), "job".to_owned())), "{at}");
}

#[test]
fn calls_pipelines_pubsub_and_blocking_calls_work_on_both_runtimes() {
    if overridden() {
        return;
    }
    for kind in ServerKind::ALL {
        let server = Server::start(kind);
        for (flavour, rt) in runtimes() {
            for protocol in PROTOCOLS {
                let at = format!("{}/{flavour}", label(kind, Engine::Task, protocol));
                rt.block_on(async {
                    let c = task_client(&server, protocol);
                    exercise(&c, &at).await;
                });
            }
        }
    }
}

#[test]
fn reconnects_after_a_server_restart() {
    if overridden() {
        return;
    }
    for kind in ServerKind::ALL {
        let mut server = Server::start(kind);
        for (flavour, rt) in runtimes() {
            for protocol in PROTOCOLS {
                let at = format!("{}/{flavour}", label(kind, Engine::Task, protocol));
                rt.block_on(async {
                    let c = task_client(&server, protocol);
                    c.call::<()>(cmd!("SET", "before", 1))
                        .await
                        .unwrap_or_else(|e| panic!("{at}: {e}"));
                    server.restart();
                    until_disconnected(&c, &at).await;
                    let v: Option<String> = c
                        .call(cmd!("GET", "missing-after-restart"))
                        .await
                        .unwrap_or_else(|e| panic!("{at}: after restart: {e}"));
                    assert_eq!(v, None, "{at}");
                    assert!(c.is_connected(), "{at}");
                });
            }
        }
    }
}

/// A client whose runtime was shut down fails its calls with `Error::Connection` at once: the
/// one in flight on a blocking connection when it stopped, and any later one.
#[test]
fn a_client_whose_runtime_shut_down_fails_its_calls() {
    if overridden() {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    // Runs the checks after the shutdown, each bounded.
    let helper = Builder::new_current_thread().enable_all().build().unwrap();
    let watcher = Client::new(support::config(&server, Engine::Epoll)).unwrap();
    for (flavour, rt) in runtimes() {
        let at = flavour;
        let c = rt.block_on(async {
            let c = task_client(&server, Protocol::Resp3);
            c.call::<()>(cmd!("PING")).await.unwrap();
            c
        });
        let list = ringdis_tests::unique("never");
        let blocked = {
            let _in = rt.enter();
            c.call::<Value>(cmd!("BLPOP", list.as_str(), 0))
        };
        rt.block_on(until_blocked(&watcher, 1, at));
        drop(rt);

        let bounded = Duration::from_secs(5);
        let r = helper
            .block_on(async { tokio::time::timeout(bounded, blocked).await })
            .unwrap_or_else(|_| panic!("{at}: the call in flight hangs"));
        assert!(matches!(r, Err(Error::Connection { .. })), "{at}: {r:?}");
        let r = helper
            .block_on(async { tokio::time::timeout(bounded, c.call::<()>(cmd!("PING"))).await })
            .unwrap_or_else(|_| panic!("{at}: a later call hangs"));
        assert!(matches!(r, Err(Error::Connection { .. })), "{at}: {r:?}");
        // The server saw the blocked connection go.
        helper.block_on(until_blocked(&watcher, 0, at));
    }
}

#[test]
fn a_host_name_resolves() {
    if overridden() {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    for (flavour, rt) in runtimes() {
        let url = format!("redis://localhost:{}", server.port());
        let config = Config::from_url(&url).unwrap().engine(Engine::Task);
        rt.block_on(async {
            let c = Client::new(config).unwrap();
            let pong: String = c
                .call(cmd!("PING"))
                .await
                .unwrap_or_else(|e| panic!("{flavour}: {e}"));
            assert_eq!(pong, "PONG", "{flavour}");
        });
    }
}

#[test]
fn a_unix_socket_works() {
    if overridden() {
        return;
    }
    for kind in ServerKind::ALL {
        let server = Server::builder(kind).unix_socket(true).start();
        let path = server.unix_path().expect("socket path");
        for (flavour, rt) in runtimes() {
            for protocol in PROTOCOLS {
                let at = format!("{}/{flavour}/unix", label(kind, Engine::Task, protocol));
                let config = Config::new()
                    .unix_socket(path.clone())
                    .protocol(protocol)
                    .engine(Engine::Task);
                rt.block_on(async {
                    let c = Client::new(config).unwrap();
                    assert_eq!(c.engine(), Engine::Task, "{at}");
                    let info: String = c
                        .call(cmd!("CLIENT", "INFO"))
                        .await
                        .unwrap_or_else(|e| panic!("{at}: {e}"));
                    // The server sees the connection arrive on its unix socket.
                    let shown = path.display().to_string();
                    assert!(info.contains(&shown), "{at}: {info}");
                    let calls: Vec<_> = (0..50).map(|i| c.call::<i64>(cmd!("ECHO", i))).collect();
                    for (i, r) in join_all(calls).await.into_iter().enumerate() {
                        assert_eq!(r.unwrap(), i as i64, "{at}");
                    }
                });
            }
        }
    }
}

/// `Engine::Auto` is the task engine on a current-thread tokio runtime, and a ring engine on a
/// multi-thread runtime and outside any; `Engine::Task` outside a runtime is a clear
/// `Error::Client`.
#[test]
fn auto_is_the_task_engine_inside_a_runtime_only() {
    run_child("child_auto", &[]);
}

#[test]
#[ignore = "run by auto_is_the_task_engine_inside_a_runtime_only in a child process"]
fn child_auto() {
    if !is_child("child_auto") {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    let config = || support::config(&server, Engine::Auto);

    // No runtime on this thread: a ring engine, driven from `block_on`.
    let outside = Client::new(config()).unwrap();
    assert!(
        matches!(outside.engine(), Engine::IoUring | Engine::Epoll),
        "{:?}",
        outside.engine()
    );
    let pong: String = futures::executor::block_on(outside.call(cmd!("PING"))).unwrap();
    assert_eq!(pong, "PONG");
    match Client::new(support::config(&server, Engine::Task)) {
        Err(Error::Client { message, .. }) => {
            assert!(message.contains("tokio runtime"), "{message}")
        }
        other => panic!("Engine::Task outside a runtime: {other:?}"),
    }

    for (flavour, rt) in runtimes() {
        rt.block_on(async {
            let inside = Client::new(config()).unwrap();
            let multi = tokio::runtime::Handle::current().runtime_flavor()
                == tokio::runtime::RuntimeFlavor::MultiThread;
            if multi {
                assert!(
                    matches!(inside.engine(), Engine::IoUring | Engine::Epoll),
                    "{flavour}: {:?}",
                    inside.engine()
                );
            } else {
                assert_eq!(inside.engine(), Engine::Task, "{flavour}");
            }
            let pong: String = inside.call(cmd!("PING")).await.unwrap();
            assert_eq!(pong, "PONG", "{flavour}");
        });
    }
}

/// A runtime built without its IO driver cannot run connection tasks: the task stops (tokio
/// reports why: "IO is disabled") and the calls fail with `Error::Connection`, none hangs.
#[test]
fn a_runtime_without_io_fails_calls_instead_of_hanging() {
    if overridden() {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    let rt = Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(async {
        let c = task_client(&server, Protocol::Resp3);
        let r = tokio::time::timeout(Duration::from_secs(5), c.call::<()>(cmd!("PING")))
            .await
            .expect("the call hangs");
        assert!(matches!(r, Err(Error::Connection { .. })), "{r:?}");
        let r = tokio::time::timeout(Duration::from_secs(5), c.call::<()>(cmd!("PING")))
            .await
            .expect("a later call hangs");
        assert!(matches!(r, Err(Error::Connection { .. })), "{r:?}");
    });
}
