//! The client's promises, against real servers (and a fault server where a real one cannot
//! misbehave on demand), on every engine.

mod support;

use futures::FutureExt;
use ringdis::{cmd, Client, Config, Engine, Error, Protocol, Value};
use ringdis_tests::{FaultServer, Server, ServerKind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use support::{client, config, each_runtime, engines, label, matrix, ring_engines, until_blocked};

/// 1000 tasks × 50 calls on one client, each checking it got its own reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tasks_share_one_client_without_cross_talk() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        for protocol in support::PROTOCOLS {
            let at = label(kind, engine, protocol);
            let c = client(&server, engine, protocol);
            let tasks: Vec<_> = (0..1000)
                .map(|t| {
                    let c = c.clone();
                    tokio::spawn(async move {
                        for i in 0..50 {
                            let mine = format!("task{t}-call{i}");
                            if i % 10 == 0 {
                                c.call::<()>(cmd!("SET", &mine, &mine)).await?;
                                let back: String = c.call(cmd!("GET", &mine)).await?;
                                assert_eq!(back, mine);
                            } else {
                                let back: String = c.call(cmd!("ECHO", &mine)).await?;
                                assert_eq!(back, mine);
                            }
                        }
                        Ok::<_, Error>(())
                    })
                })
                .collect();
            for t in tasks {
                t.await
                    .unwrap_or_else(|e| panic!("{at}: {e}"))
                    .unwrap_or_else(|e| panic!("{at}: {e}"));
            }
            let keys: i64 = c.call(cmd!("DBSIZE")).await.unwrap();
            assert_eq!(keys, 1000 * 5, "{at}");
            c.call::<()>(cmd!("FLUSHALL")).await.unwrap();
        }
    }
}

/// Password, ACL user and database are applied on connect, in both protocols.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_acl_user_and_db() {
    for (kind, engine) in matrix() {
        let server = Server::builder(kind)
            .password("top secret")
            .acl_user("app", "app-pass")
            .start();
        for protocol in support::PROTOCOLS {
            let at = label(kind, engine, protocol);
            let base = || config(&server, engine).protocol(protocol);

            // No credentials: the server refuses the call, with its code.
            let anon = Client::new(base()).unwrap();
            let err = anon.call::<()>(cmd!("SET", "k", "v")).await.unwrap_err();
            assert_eq!(err.server_kind(), Some("NOAUTH"), "{at}: {err}");

            // Wrong password: the connect fails with the server's error, not a retry loop.
            let wrong = Client::new(base().password("nope")).unwrap();
            let err = wrong.call::<()>(cmd!("PING")).await.unwrap_err();
            assert!(
                matches!(err.server_kind(), Some("WRONGPASS") | Some("ERR")),
                "{at}: {err}"
            );

            // Default user by password; ACL user by name and password; db selected.
            let by_pass = Client::new(base().password("top secret")).unwrap();
            by_pass
                .call::<()>(cmd!("SET", "where", "db0"))
                .await
                .unwrap();
            let app = Client::new(base().username("app").password("app-pass").db(3)).unwrap();
            app.call::<()>(cmd!("SET", "where", "db3")).await.unwrap();
            let info: String = app.call(cmd!("CLIENT", "INFO")).await.unwrap();
            assert!(info.contains(" db=3 "), "{at}: {info}");
            assert!(info.contains(" user=app "), "{at}: {info}");
            let db0: String = by_pass.call(cmd!("GET", "where")).await.unwrap();
            let db3: String = app.call(cmd!("GET", "where")).await.unwrap();
            assert_eq!((db0.as_str(), db3.as_str()), ("db0", "db3"), "{at}");

            // The same through a URL.
            let url = format!("redis://app:app-pass@127.0.0.1:{}/3", server.port());
            let from_url = Client::new(
                Config::from_url(&url)
                    .unwrap()
                    .engine(engine)
                    .protocol(protocol),
            )
            .unwrap();
            let got: String = from_url.call(cmd!("GET", "where")).await.unwrap();
            assert_eq!(got, "db3", "{at}");
        }
    }
}

/// The server dies with a call in flight and comes back on the same port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_and_restarted() {
    for (kind, engine) in matrix() {
        for protocol in support::PROTOCOLS {
            let at = label(kind, engine, protocol);
            let mut server = Server::builder(kind)
                .password("pw")
                .acl_user("app", "app-pass")
                .start();
            let cfg = config(&server, engine)
                .protocol(protocol)
                .username("app")
                .password("app-pass")
                .db(5);
            let c = Client::new(cfg).unwrap();
            c.call::<()>(cmd!("SET", "before", 1)).await.unwrap();
            assert!(c.is_connected(), "{at}");

            // A call in flight when the server dies fails with a connection error.
            let in_flight = c.call::<Value>(cmd!("BLPOP", "never", 0));
            let watcher = Client::new(config(&server, engine).password("pw")).unwrap();
            until_blocked(&watcher, 1, &at).await;
            server.kill();
            let err = in_flight.await.unwrap_err();
            assert!(err.is_connection(), "{at}: {err}");
            // While the server is down, a call fails once the connect timeout runs out.
            let short = Client::new(
                config(&server, engine)
                    .connect_timeout(Duration::from_millis(200))
                    .password("pw"),
            )
            .unwrap();
            let err = short.call::<()>(cmd!("PING")).await.unwrap_err();
            assert!(err.is_connection(), "{at}: {err}");
            assert!(err.to_string().contains("could not connect"), "{at}: {err}");

            server.restart();
            // The next call reconnects, with the ACL user and the database applied again.
            c.call::<()>(cmd!("SET", "after", 1))
                .await
                .unwrap_or_else(|e| panic!("{at}: {e}"));
            let info: String = c.call(cmd!("CLIENT", "INFO")).await.unwrap();
            assert!(
                info.contains(" db=5 ") && info.contains(" user=app "),
                "{at}: {info}"
            );
            assert!(c.is_connected(), "{at}");

            // A call made while the server is down waits for it, within the connect timeout.
            server.kill();
            // "While down" as the client sees it: a call made before the driver has read the
            // end of the stream would go out on the dead socket and fail, as in flight.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while c.is_connected() {
                assert!(std::time::Instant::now() < deadline, "{at}: loss unnoticed");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let waiting = {
                let c = c.clone();
                tokio::spawn(async move { c.call::<String>(cmd!("ECHO", "back")).await })
            };
            server.restart();
            assert_eq!(
                waiting
                    .await
                    .unwrap()
                    .unwrap_or_else(|e| panic!("{at}: {e}")),
                "back"
            );
        }
    }
}

/// A stalled server: calls time out, a late reply is discarded, the next call gets its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_timeout_against_a_stalled_server() {
    for engine in engines() {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = std::sync::Mutex::new(release_rx);
        let fault = FaultServer::start(move |mut conn| {
            let Some(first) = conn.handshake_resp2() else {
                return;
            };
            assert_eq!(first[0], b"GET");
            // Hold the first reply until the test saw the client give up on it.
            let Some(second) = conn.read_command() else {
                return;
            };
            assert_eq!(second[0], b"GET");
            let _ = release_rx.lock().map(|rx| rx.recv());
            conn.write(b"$4\r\nlate\r\n$4\r\nmine\r\n");
            conn.stall();
        });
        let c = Client::new(
            Config::from_url(&fault.url())
                .unwrap()
                .engine(engine)
                .command_timeout(Some(Duration::from_millis(200))),
        )
        .unwrap();
        let err = c.call::<String>(cmd!("GET", "slow")).await.unwrap_err();
        assert_eq!(err, Error::Timeout, "{engine:?}");
        let next = c.call::<String>(cmd!("GET", "next"));
        release_tx.send(()).unwrap();
        assert_eq!(
            next.await.unwrap(),
            "mine",
            "{engine:?}: the late reply went to the wrong caller"
        );
        // Still stalled: the next call times out too, and the client stays usable.
        assert_eq!(
            c.call::<String>(cmd!("GET", "x")).await.unwrap_err(),
            Error::Timeout
        );
        assert_eq!(
            fault.accepted(),
            1,
            "{engine:?}: a timeout must not reconnect"
        );
    }
}

/// Garbage and truncated frames: a clear error, no panic, and the next connection works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_truncated_frames_from_a_fault_server() {
    for engine in engines() {
        let fault = FaultServer::start(|mut conn| {
            let n = conn.number();
            let Some(_) = conn.handshake_resp2() else {
                return;
            };
            match n {
                0 => conn.write(b"@this is not RESP\r\n"),
                1 => {
                    conn.write(b"$10\r\nabc");
                    conn.close();
                    return;
                }
                2 => conn.write(b"*1\r\n$99999999999999\r\n"),
                _ => {
                    conn.write(b"+fine\r\n");
                    while let Some(cmd) = conn.read_command() {
                        let echo = cmd.get(1).cloned().unwrap_or_default();
                        conn.write(format!("${}\r\n", echo.len()).as_bytes());
                        conn.write(&echo);
                        conn.write(b"\r\n");
                    }
                    return;
                }
            }
            conn.stall();
        });
        let c = Client::new(Config::from_url(&fault.url()).unwrap().engine(engine)).unwrap();
        let err = c.call::<Value>(cmd!("PING")).await.unwrap_err();
        assert!(matches!(err, Error::Protocol { .. }), "{engine:?}: {err}");
        assert!(err.to_string().contains("invalid reply type byte"), "{err}");
        let err = c.call::<Value>(cmd!("PING")).await.unwrap_err();
        assert!(
            err.is_connection(),
            "{engine:?}: truncated frame then close: {err}"
        );
        let err = c.call::<Value>(cmd!("PING")).await.unwrap_err();
        assert!(
            matches!(err, Error::Protocol { .. }),
            "{engine:?}: huge bulk: {err}"
        );
        assert!(err.to_string().contains("exceeds the limit"), "{err}");
        let fine: String = c.call(cmd!("PING")).await.unwrap();
        assert_eq!(fine, "fine");
        let echoed: String = c.call(cmd!("ECHO", "recovered")).await.unwrap();
        assert_eq!(echoed, "recovered");
        assert_eq!(fault.accepted(), 4);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket() {
    for (kind, engine) in matrix() {
        let server = Server::builder(kind).unix_socket(true).start();
        let path = server.unix_path().expect("socket path").to_owned();
        let c = Client::new(Config::new().unix_socket(&path).db(2).engine(engine)).unwrap();
        c.call::<()>(cmd!("SET", "k", "over unix")).await.unwrap();
        let url = format!("unix://{}?db=2", path.display());
        let c2 = Client::new(Config::from_url(&url).unwrap().engine(engine)).unwrap();
        let got: String = c2.call(cmd!("GET", "k")).await.unwrap();
        assert_eq!(got, "over unix", "{kind}/{engine:?}");
        let info: String = c2.call(cmd!("CLIENT", "INFO")).await.unwrap();
        assert!(info.contains(" db=2 "), "{info}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_and_disconnect_are_idempotent() {
    for (kind, engine) in matrix() {
        let at = format!("{kind}/{engine:?}");
        let server = Server::start(kind);
        let c = Client::new(config(&server, engine).autoconnect(false)).unwrap();
        assert!(!c.is_connected());
        let err = c.call::<()>(cmd!("PING")).await.unwrap_err();
        assert!(
            err.is_connection(),
            "{at}: without autoconnect a call fails fast: {err}"
        );
        c.disconnect().await; // not connected: fine
        assert!(c.connect().await.unwrap(), "{at}");
        assert!(
            c.connect().await.unwrap(),
            "{at}: connect when connected is fine"
        );
        assert!(c.is_connected());
        assert_eq!(c.call::<String>(cmd!("ECHO", "x")).await.unwrap(), "x");
        let in_flight = c.call::<Value>(cmd!("BLPOP", "nothing", 0));
        let watcher = client(&server, engine, Protocol::Resp3);
        until_blocked(&watcher, 1, &at).await;
        c.disconnect().await;
        let err = in_flight.await.unwrap_err();
        assert!(err.is_connection(), "{at}: {err}");
        c.disconnect().await;
        assert!(!c.is_connected());
        assert!(
            c.call::<()>(cmd!("PING"))
                .await
                .unwrap_err()
                .is_connection(),
            "{at}"
        );
        assert!(c.connect().await.unwrap());
        assert_eq!(
            c.call::<String>(cmd!("ECHO", "again")).await.unwrap(),
            "again"
        );

        // With autoconnect, the call after a disconnect reconnects by itself.
        let auto = client(&server, engine, Protocol::Resp3);
        auto.call::<()>(cmd!("PING")).await.unwrap();
        auto.disconnect().await;
        assert!(!auto.is_connected());
        auto.call::<()>(cmd!("PING")).await.unwrap();
        assert!(auto.is_connected(), "{at}");

        // connect() to nothing fails with a connection error within the connect timeout.
        let port = server.port();
        drop(server);
        let dead = Client::new(
            Config::new()
                .port(port)
                .engine(engine)
                .autoconnect(false)
                .connect_timeout(Duration::from_millis(100)),
        )
        .unwrap();
        assert!(dead.connect().await.unwrap_err().is_connection(), "{at}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_call_delivers_to_callbacks_and_discards_without_one() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        let c = client(&server, engine, Protocol::Resp3);
        let (tx, rx) = mpsc::channel();
        c.async_call(cmd!("INCR", "n"), None::<fn(_)>);
        c.async_call(cmd!("INCR", "n"), move |r: ringdis::Result<Value>| {
            tx.send(r).unwrap_or(())
        });
        let got = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(10)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            got.unwrap(),
            Value::Int(2),
            "{kind}/{engine:?}: the discarded reply kept the stream in step"
        );
        // A panicking callback does not take the client down.
        c.async_call(cmd!("PING"), |_: ringdis::Result<Value>| {
            panic!("callback bug")
        });
        assert_eq!(c.call::<i64>(cmd!("INCR", "n")).await.unwrap(), 3);
    }
}

/// The futures need no particular runtime: a ring-engine client made on a plain thread is awaited
/// under `block_on`, tokio's two runtimes and tokio-uring's; a task-engine client, which lives on
/// the runtime it was made on, is awaited from other executors while that runtime runs.
#[test]
fn futures_work_under_any_executor() {
    let server = Server::start(ServerKind::Redis);
    let echo =
        |c: Client, what: &'static str| async move { c.call::<String>(cmd!("ECHO", what)).await };
    for engine in ring_engines() {
        let c = client(&server, engine, Protocol::Resp3);

        let got = futures::executor::block_on(echo(c.clone(), "block_on")).unwrap();
        assert_eq!(got, "block_on");

        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(echo(c.clone(), "current")).unwrap(), "current");

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        rt.block_on(async {
            let tasks: Vec<_> = (0..16)
                .map(|_| {
                    let (c, done) = (c.clone(), done.clone());
                    tokio::spawn(async move {
                        assert_eq!(
                            c.call::<String>(cmd!("ECHO", "multi")).await.unwrap(),
                            "multi"
                        );
                        done.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        assert_eq!(done.load(Ordering::SeqCst), 16);

        // Inside tokio-uring's runtime (its own ring, beside ours), tasks on its local set.
        let c2 = c.clone();
        let got = tokio_uring::start(async move {
            let task = tokio_uring::spawn(echo(c2.clone(), "uring task"));
            let direct = echo(c2, "uring").await;
            (direct, task.await)
        });
        assert_eq!(got.0.unwrap(), "uring");
        assert_eq!(got.1.unwrap().unwrap(), "uring task");
    }

    // The task engine: made inside a multi-thread runtime, its connection runs there; its
    // futures complete under `block_on` on this thread and on another runtime.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let c = {
        let _inside = rt.enter();
        client(&server, Engine::Task, Protocol::Resp3)
    };
    let got = futures::executor::block_on(echo(c.clone(), "task block_on")).unwrap();
    assert_eq!(got, "task block_on");
    // A blocking call made here opens a dedicated connection: on the client's runtime too.
    let popped: Option<(String, String)> =
        futures::executor::block_on(c.call(cmd!("BLPOP", "nothing", 0.01))).unwrap();
    assert_eq!(popped, None);
    let other = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(
        other.block_on(echo(c.clone(), "task current")).unwrap(),
        "task current"
    );
}

/// Dropping every handle stops the driver, and a call still in flight completes first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_client_lets_in_flight_calls_finish() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        let c = client(&server, engine, Protocol::Resp3);
        let call = c.call::<String>(cmd!("ECHO", "last words"));
        drop(c);
        assert_eq!(call.await.unwrap(), "last words", "{kind}/{engine:?}");
    }
}

#[test]
fn bad_configuration_is_a_client_error() {
    let err = Client::open("redis://localhost:notaport").unwrap_err();
    assert!(matches!(err, Error::Client { .. }), "{err}");
    // A user name without a password would never be sent: refused, not silently the default user.
    let err = Client::new(Config::new().username("app")).unwrap_err();
    assert!(
        matches!(&err, Error::Client { message, .. } if message.contains("Config::password")),
        "{err}"
    );
    assert!(Client::new(Config::new().username("app").password("pw")).is_ok());
    let _ = Engine::Auto;
}

/// Waits until `c` has noticed that its connection is gone (polled with a deadline; no sleep).
async fn until_disconnected(c: &Client, at: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c.is_connected() {
        assert!(
            std::time::Instant::now() < deadline,
            "{at}: the loss was never noticed"
        );
        support::yield_now().await;
    }
}

/// The core of the client on every runtime (`support::each_runtime`: the task engine on tokio's
/// current-thread and multi-thread runtimes, the ring engines under `block_on` on a plain
/// thread): single and concurrent calls, pipelines, transactions, WATCHed transactions and
/// fire-and-forget calls.
#[test]
fn calls_pipelines_and_transactions_on_every_runtime() {
    let servers = support::servers();
    each_runtime(&servers, |cell| async move {
        let (cfg, at) = (cell.config, cell.at);
        let c = Client::new(cfg).unwrap_or_else(|e| panic!("{at}: {e}"));
        let key = ringdis_tests::unique("core");
        c.call::<()>(cmd!("SET", &key, "v")).await.unwrap();
        let got: String = c.call(cmd!("GET", &key)).await.unwrap();
        assert_eq!(got, "v", "{at}");

        // Concurrent calls, each getting its own reply.
        let calls = (0..200).map(|i| c.call::<String>(cmd!("ECHO", i.to_string())));
        for (i, r) in futures::future::join_all(calls)
            .await
            .into_iter()
            .enumerate()
        {
            assert_eq!(r.unwrap_or_else(|e| panic!("{at}: {e}")), i.to_string());
        }

        let n = ringdis_tests::unique("n");
        let mut p = c.pipeline();
        p.add(cmd!("INCR", &n))
            .add(cmd!("INCRBY", &n, 10))
            .add(cmd!("GET", &n));
        let got: (i64, i64, String) = p.query().await.unwrap();
        assert_eq!(got, (1, 11, "11".to_string()), "{at}: pipeline");

        let mut t = c.transaction();
        t.add(cmd!("INCR", &n)).add(cmd!("GET", &n));
        let got: (i64, String) = t.query().await.unwrap();
        assert_eq!(got, (12, "12".to_string()), "{at}: transaction");

        let got: ((), i64) = c
            .watch_transaction(&n, |conn| {
                let n = n.clone();
                async move {
                    let now: i64 = conn.call(cmd!("GET", &n)).await?;
                    let mut t = conn.transaction();
                    t.add(cmd!("SET", &n, now * 2)).add(cmd!("GET", &n));
                    Ok(t)
                }
            })
            .await
            .unwrap_or_else(|e| panic!("{at}: {e}"));
        assert_eq!(got.1, 24, "{at}: watch_transaction");

        // Fire-and-forget keeps the stream in step; a callback gets its reply.
        c.async_call(cmd!("INCR", &n), None::<fn(_)>);
        let (tx, rx) = futures::channel::oneshot::channel();
        c.async_call(cmd!("INCR", &n), move |r: ringdis::Result<Value>| {
            let _ = tx.send(r);
        });
        let got = rx.await.expect("the callback ran");
        assert_eq!(got.unwrap(), Value::Int(26), "{at}: async_call");
    });
}

/// Pub/sub on every runtime: a subscriber made from a client hears channel and pattern
/// messages, and stops hearing a channel it left.
#[test]
fn pub_sub_on_every_runtime() {
    let servers = support::servers();
    each_runtime(&servers, |cell| async move {
        let (cfg, at) = (cell.config, cell.at);
        let publisher = Client::new(cfg).unwrap_or_else(|e| panic!("{at}: {e}"));
        let mut sub = publisher.subscriber().unwrap();
        let ch = ringdis_tests::unique("ch");
        sub.subscribe([&ch]).await.unwrap();
        sub.psubscribe([format!("{ch}.*")]).await.unwrap();
        let heard: i64 = publisher.call(cmd!("PUBLISH", &ch, "hello")).await.unwrap();
        assert_eq!(heard, 1, "{at}");
        let m = sub
            .next_message(Some(Duration::from_secs(5)))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{at}: no message"));
        assert_eq!(
            (m.channel_str(), m.payload_str()),
            (Some(ch.as_str()), Some("hello")),
            "{at}"
        );
        let sub_ch = format!("{ch}.x");
        let _: i64 = publisher
            .call(cmd!("PUBLISH", &sub_ch, "by pattern"))
            .await
            .unwrap();
        let m = sub
            .next_message(Some(Duration::from_secs(5)))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{at}: no pattern message"));
        assert_eq!(m.payload_str(), Some("by pattern"), "{at}");
        assert!(m.pattern.is_some(), "{at}: {m:?}");
        sub.unsubscribe([&ch]).await.unwrap();
        let heard: i64 = publisher.call(cmd!("PUBLISH", &ch, "gone")).await.unwrap();
        assert_eq!(heard, 0, "{at}: still subscribed");
    });
}

/// Blocking calls on every runtime, on each path that runs one (`call`, `async_call`, a
/// pipeline holding it): a PING on the shared connection answers while the blocking call still
/// waits, and an LPUSH releases it with the pushed value.
#[test]
fn blocking_calls_on_every_runtime() {
    let servers = support::servers();
    each_runtime(&servers, |cell| async move {
        let (cfg, at) = (cell.config, cell.at);
        let c = Client::new(cfg.clone()).unwrap_or_else(|e| panic!("{at}: {e}"));
        let watcher = Client::new(cfg).unwrap();
        let ping_while_blocked = |what: &'static str| {
            let (c, watcher, at) = (c.clone(), watcher.clone(), at.clone());
            async move {
                until_blocked(&watcher, 1, &format!("{at}: {what}")).await;
                let pong: String = c.call(cmd!("PING")).await.unwrap();
                assert_eq!(pong, "PONG", "{at}: {what}");
            }
        };

        let q = ringdis_tests::unique("q");
        let mut pending = c.call::<(String, String)>(cmd!("BLPOP", &q, 10));
        ping_while_blocked("call").await;
        assert!(
            (&mut pending).now_or_never().is_none(),
            "{at}: call(BLPOP) answered before the push"
        );
        c.call::<i64>(cmd!("LPUSH", &q, "x")).await.unwrap();
        assert_eq!(pending.await.unwrap(), (q.clone(), "x".to_string()), "{at}");

        let (tx, mut rx) = futures::channel::oneshot::channel();
        c.async_call(cmd!("BLPOP", &q, 10), move |r: ringdis::Result<Value>| {
            let _ = tx.send(r);
        });
        ping_while_blocked("async_call").await;
        assert!(
            (&mut rx).now_or_never().is_none(),
            "{at}: async_call(BLPOP) answered before the push"
        );
        c.call::<i64>(cmd!("LPUSH", &q, "y")).await.unwrap();
        let got = rx.await.expect("the callback ran").unwrap();
        let got: (String, String) = ringdis::FromRedis::from_redis(got).unwrap();
        assert_eq!(got, (q.clone(), "y".to_string()), "{at}");

        let mut p = c.pipeline();
        p.add(cmd!("ECHO", "first")).add(cmd!("BLPOP", &q, 10));
        let mut pending = p.query::<(String, (String, String))>();
        ping_while_blocked("pipeline").await;
        assert!(
            (&mut pending).now_or_never().is_none(),
            "{at}: the pipeline answered before the push"
        );
        c.call::<i64>(cmd!("LPUSH", &q, "z")).await.unwrap();
        let (first, popped) = pending.await.unwrap();
        assert_eq!(first, "first", "{at}");
        assert_eq!(popped, (q.clone(), "z".to_string()), "{at}");

        // A blocking call that times out answers nil.
        let none: Option<(String, String)> = c.call(cmd!("BLPOP", &q, 0.05)).await.unwrap();
        assert_eq!(none, None, "{at}");
    });
}

/// Reconnects on every runtime: a killed connection is noticed, the next call reconnects (a new
/// connection), and the configured database is selected again.
#[test]
fn reconnect_on_every_runtime() {
    let servers = support::servers();
    each_runtime(&servers, |cell| async move {
        let (cfg, at) = (cell.config, cell.at);
        let c = Client::new(cfg.clone().db(4)).unwrap_or_else(|e| panic!("{at}: {e}"));
        let killer = Client::new(cfg).unwrap();
        let key = ringdis_tests::unique("reconnect");
        c.call::<()>(cmd!("SET", &key, 1)).await.unwrap();
        for round in 0..2 {
            let id: i64 = c.call(cmd!("CLIENT", "ID")).await.unwrap();
            let killed: i64 = killer.call(cmd!("CLIENT", "KILL", "ID", id)).await.unwrap();
            assert_eq!(killed, 1, "{at}");
            until_disconnected(&c, &format!("{at} round {round}")).await;
            let got: String = c
                .call(cmd!("GET", &key))
                .await
                .unwrap_or_else(|e| panic!("{at} round {round}: {e}"));
            assert_eq!(got, "1", "{at}: db 4 again");
            let again: i64 = c.call(cmd!("CLIENT", "ID")).await.unwrap();
            assert_ne!(again, id, "{at}: a new connection");
            assert!(c.is_connected(), "{at}");
        }
    });
}
