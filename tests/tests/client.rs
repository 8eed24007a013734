//! The client's promises, against real servers (and a fault server where a real one cannot
//! misbehave on demand), on every transport.

mod support;

use ringdis::{cmd, Client, Config, Engine, Error, Protocol, Value};
use ringdis_tests::{FaultServer, Server, ServerKind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use support::{client, config, label, matrix, transports, until_blocked};

/// 1000 tasks × 100 calls on one client, each checking it got its own reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tasks_share_one_client_without_cross_talk() {
    for (kind, transport) in matrix() {
        let server = Server::start(kind);
        for protocol in support::PROTOCOLS {
            let at = label(kind, transport, protocol);
            let c = client(&server, transport, protocol);
            let tasks: Vec<_> = (0..1000)
                .map(|t| {
                    let c = c.clone();
                    tokio::spawn(async move {
                        for i in 0..100 {
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
            assert_eq!(keys, 1000 * 10, "{at}");
            c.call::<()>(cmd!("FLUSHALL")).await.unwrap();
        }
    }
}

/// Password, ACL user and database are applied on connect, in both protocols.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_acl_user_and_db() {
    for (kind, transport) in matrix() {
        let server = Server::builder(kind)
            .password("top secret")
            .acl_user("app", "app-pass")
            .start();
        for protocol in support::PROTOCOLS {
            let at = label(kind, transport, protocol);
            let base = || config(&server, transport).protocol(protocol);

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
                    .engine(transport)
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
    for (kind, transport) in matrix() {
        for protocol in support::PROTOCOLS {
            let at = label(kind, transport, protocol);
            let mut server = Server::builder(kind)
                .password("pw")
                .acl_user("app", "app-pass")
                .start();
            let cfg = config(&server, transport)
                .protocol(protocol)
                .username("app")
                .password("app-pass")
                .db(5);
            let c = Client::new(cfg).unwrap();
            c.call::<()>(cmd!("SET", "before", 1)).await.unwrap();
            assert!(c.is_connected(), "{at}");

            // A call in flight when the server dies fails with a connection error.
            let in_flight = c.call::<Value>(cmd!("BLPOP", "never", 0));
            let watcher = Client::new(config(&server, transport).password("pw")).unwrap();
            until_blocked(&watcher, 1, &at).await;
            server.kill();
            let err = in_flight.await.unwrap_err();
            assert!(err.is_connection(), "{at}: {err}");
            // While the server is down, a call fails once the connect timeout runs out.
            let short = Client::new(
                config(&server, transport)
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
    for transport in transports() {
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
                .engine(transport)
                .command_timeout(Some(Duration::from_millis(200))),
        )
        .unwrap();
        let err = c.call::<String>(cmd!("GET", "slow")).await.unwrap_err();
        assert_eq!(err, Error::Timeout, "{transport:?}");
        let next = c.call::<String>(cmd!("GET", "next"));
        release_tx.send(()).unwrap();
        assert_eq!(
            next.await.unwrap(),
            "mine",
            "{transport:?}: the late reply went to the wrong caller"
        );
        // Still stalled: the next call times out too, and the client stays usable.
        assert_eq!(
            c.call::<String>(cmd!("GET", "x")).await.unwrap_err(),
            Error::Timeout
        );
        assert_eq!(
            fault.accepted(),
            1,
            "{transport:?}: a timeout must not reconnect"
        );
    }
}

/// Garbage and truncated frames: a clear error, no panic, and the next connection works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_truncated_frames_from_a_fault_server() {
    for transport in transports() {
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
        let c = Client::new(Config::from_url(&fault.url()).unwrap().engine(transport)).unwrap();
        let err = c.call::<Value>(cmd!("PING")).await.unwrap_err();
        assert!(
            matches!(err, Error::Protocol { .. }),
            "{transport:?}: {err}"
        );
        assert!(err.to_string().contains("invalid reply type byte"), "{err}");
        let err = c.call::<Value>(cmd!("PING")).await.unwrap_err();
        assert!(
            err.is_connection(),
            "{transport:?}: truncated frame then close: {err}"
        );
        let err = c.call::<Value>(cmd!("PING")).await.unwrap_err();
        assert!(
            matches!(err, Error::Protocol { .. }),
            "{transport:?}: huge bulk: {err}"
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
    for (kind, transport) in matrix() {
        let server = Server::builder(kind).unix_socket(true).start();
        let path = server.unix_path().expect("socket path").to_owned();
        let c = Client::new(Config::new().unix_socket(&path).db(2).engine(transport)).unwrap();
        c.call::<()>(cmd!("SET", "k", "over unix")).await.unwrap();
        let url = format!("unix://{}?db=2", path.display());
        let c2 = Client::new(Config::from_url(&url).unwrap().engine(transport)).unwrap();
        let got: String = c2.call(cmd!("GET", "k")).await.unwrap();
        assert_eq!(got, "over unix", "{kind}/{transport:?}");
        let info: String = c2.call(cmd!("CLIENT", "INFO")).await.unwrap();
        assert!(info.contains(" db=2 "), "{info}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_and_disconnect_are_idempotent() {
    for (kind, transport) in matrix() {
        let at = format!("{kind}/{transport:?}");
        let server = Server::start(kind);
        let c = Client::new(config(&server, transport).autoconnect(false)).unwrap();
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
        let watcher = client(&server, transport, Protocol::Resp3);
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
        let auto = client(&server, transport, Protocol::Resp3);
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
                .engine(transport)
                .autoconnect(false)
                .connect_timeout(Duration::from_millis(100)),
        )
        .unwrap();
        assert!(dead.connect().await.unwrap_err().is_connection(), "{at}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_call_delivers_to_callbacks_and_discards_without_one() {
    for (kind, transport) in matrix() {
        let server = Server::start(kind);
        let c = client(&server, transport, Protocol::Resp3);
        let (tx, rx) = mpsc::channel();
        c.async_call(cmd!("INCR", "n"), None::<fn(_)>);
        c.async_call(
            cmd!("INCR", "n"),
            Some(move |r: ringdis::Result<Value>| tx.send(r).unwrap_or(())),
        );
        let got = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(10)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            got.unwrap(),
            Value::Int(2),
            "{kind}/{transport:?}: the discarded reply kept the stream in step"
        );
        // A panicking callback does not take the client down.
        c.async_call(
            cmd!("PING"),
            Some(|_: ringdis::Result<Value>| panic!("callback bug")),
        );
        assert_eq!(c.call::<i64>(cmd!("INCR", "n")).await.unwrap(), 3);
    }
}

/// The futures need no particular runtime.
#[test]
fn futures_work_under_any_executor() {
    let server = Server::start(ServerKind::Redis);
    for transport in transports() {
        let c = client(&server, transport, Protocol::Resp3);
        let echo = |c: Client, what: &'static str| async move {
            c.call::<String>(cmd!("ECHO", what)).await
        };

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
}

/// Dropping every handle stops the driver, and a call still in flight completes first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_client_lets_in_flight_calls_finish() {
    for (kind, transport) in matrix() {
        let server = Server::start(kind);
        let c = client(&server, transport, Protocol::Resp3);
        let call = c.call::<String>(cmd!("ECHO", "last words"));
        drop(c);
        assert_eq!(call.await.unwrap(), "last words", "{kind}/{transport:?}");
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
