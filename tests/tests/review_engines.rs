//! Issue #12, an adversarial review of the engines: faults users can cause or meet, on every
//! engine (`support::engines()`), each found as a failing test first.

mod support;

use ringdis::{cmd, Client, Config, Engine, Protocol};
use ringdis_tests::{FaultServer, Server, ServerKind};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{bounded, engines};

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A fake server that accepts and then never reads (until the returned sender is dropped): a
/// client writing to it soon finds its socket buffers full.
fn deaf_server() -> (FaultServer, mpsc::Sender<()>) {
    let (release, held) = mpsc::channel::<()>();
    let held = Arc::new(Mutex::new(held));
    let server = FaultServer::start(move |conn| {
        // Holds the connection open, unread, until the test is over.
        let _ = held.lock().unwrap_or_else(|p| p.into_inner()).recv();
        drop(conn);
    });
    (server, release)
}

/// A connection whose server stopped reading (its socket buffers fill up, its last small send
/// never completes) holds up no other connection on the same engine: a PING to a healthy server
/// keeps answering at once, before, while and after the deaf one's buffers fill.
///
/// (The ring engine waited for two completions after a single small send, counting on the send
/// completing during the submit; a send stuck on a full socket buffer left the thread blocked
/// until an unrelated deadline, or for ever without one.)
#[test]
fn a_server_that_stopped_reading_stalls_no_other_connection() {
    deaf_beside_healthy(&engines());
}

fn deaf_beside_healthy(engines: &[Engine]) {
    let healthy = Server::start(ServerKind::Redis);
    for &engine in engines {
        let (deaf, release) = deaf_server();
        multi_thread().block_on(async {
            let at = format!("{engine:?}");
            let stuck = Client::new(
                Config::from_url(&deaf.url())
                    .unwrap()
                    .engine(engine)
                    .protocol(Protocol::Resp2)
                    .command_timeout(None),
            )
            .unwrap();
            let fine = Client::new(
                Config::from_url(&healthy.url())
                    .unwrap()
                    .engine(engine)
                    .protocol(Protocol::Resp2),
            )
            .unwrap();
            bounded(Duration::from_secs(10), &at, stuck.connect())
                .await
                .unwrap();
            // Small writes, one per engine turn: each below the ring engine's "small send"
            // size. ~12 MB in all, far more than the loopback socket buffers of a reader that
            // never reads.
            let value = vec![b'x'; 3000];
            for i in 0..4000 {
                stuck.async_call(cmd!("SET", "k", &value[..]), None::<fn(_)>);
                // Until its engine has turned it, alone (so its write is the turn's only one).
                let taken = async {
                    while stuck.queued_calls() <= i {
                        support::yield_now().await;
                    }
                };
                bounded(Duration::from_secs(5), &format!("{at}: SET {i}"), taken).await;
                let pong: String = bounded(
                    Duration::from_secs(2),
                    &format!("{at}: PING {i} beside the deaf connection"),
                    fine.call(cmd!("PING")),
                )
                .await
                .unwrap();
                assert_eq!(pong, "PONG", "{at}");
            }
        });
        drop(release);
    }
}

/// Calls, pipelines and transactions dropped at every point of their flight (before the write,
/// after it, with the reply half read) never hand a reply to another caller: each task, after
/// dropping its calls, still reads back exactly its own values, on every engine.
#[test]
fn dropped_calls_pipelines_and_transactions_never_misroute_a_reply() {
    dropped_calls(&engines());
}

fn dropped_calls(engines: &[Engine]) {
    let server = Server::start(ServerKind::Redis);
    for &engine in engines {
        for protocol in support::PROTOCOLS {
            multi_thread().block_on(async {
                let at = format!("{engine:?}/{protocol:?}");
                let c = Client::new(
                    Config::from_url(&server.url())
                        .unwrap()
                        .engine(engine)
                        .protocol(protocol),
                )
                .unwrap();
                let tasks: Vec<_> = (0..16)
                    .map(|t| {
                        let c = c.clone();
                        let at = at.clone();
                        tokio::spawn(async move {
                            let key = ringdis_tests::unique(&format!("drop-{t}"));
                            for i in 0..60u32 {
                                let value = format!("{t}-{i}");
                                let _: () = c.call(cmd!("SET", &key, &value)).await.unwrap();
                                // Dropped at a point that moves with `i`: unpolled, after a
                                // poll or two (written, maybe answered).
                                let polls = i % 4;
                                match i % 3 {
                                    0 => {
                                        let f = c.call::<String>(cmd!("GET", &key));
                                        drop_after(f, polls).await;
                                    }
                                    1 => {
                                        let mut p = c.pipeline();
                                        p.add(cmd!("GET", &key)).add(cmd!("ECHO", "x"));
                                        drop_after(p.query::<(String, String)>(), polls).await;
                                    }
                                    _ => {
                                        let mut p = c.transaction();
                                        p.add(cmd!("GET", &key)).add(cmd!("ECHO", "y"));
                                        drop_after(p.query::<(String, String)>(), polls).await;
                                    }
                                }
                                let got: String = c.call(cmd!("GET", &key)).await.unwrap();
                                assert_eq!(got, value, "{at}: task {t} round {i}");
                                let mut p = c.pipeline();
                                p.add(cmd!("GET", &key)).add(cmd!("ECHO", &value));
                                let (a, b): (String, String) = p.query().await.unwrap();
                                assert_eq!((a.as_str(), b.as_str()), (&value[..], &value[..]));
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    bounded(Duration::from_secs(60), &at, t).await.unwrap();
                }
            });
        }
    }
}

/// Polls `f` `polls` times (yielding between), then drops it.
async fn drop_after<F: std::future::Future + Unpin>(mut f: F, polls: u32) {
    for _ in 0..polls {
        if futures::poll!(&mut f).is_ready() {
            return;
        }
        tokio::task::yield_now().await;
    }
}

/// A callback that calls the client again (a chain of async_calls, each made from the previous
/// one's callback, mixed with awaited calls from other tasks) gets its own replies, and the
/// chain ends, on every engine.
#[test]
fn callbacks_that_call_the_client_again_get_their_own_replies() {
    let server = Server::start(ServerKind::Redis);
    for engine in engines() {
        multi_thread().block_on(async {
            let at = format!("{engine:?}");
            let c = Client::new(Config::from_url(&server.url()).unwrap().engine(engine)).unwrap();
            let (tx, rx) = futures::channel::oneshot::channel();
            fn step(c: Client, n: u32, tx: futures::channel::oneshot::Sender<Result<u32, String>>) {
                let again = c.clone();
                c.async_call(
                    cmd!("ECHO", n),
                    move |r: ringdis::Result<ringdis::Value>| match r {
                        Ok(ringdis::Value::Bulk(b)) if b == n.to_string().as_bytes() => {
                            if n == 300 {
                                let _ = tx.send(Ok(n));
                            } else {
                                step(again, n + 1, tx);
                            }
                        }
                        other => {
                            let _ = tx.send(Err(format!("step {n}: {other:?}")));
                        }
                    },
                );
            }
            step(c.clone(), 0, tx);
            for i in 0..300 {
                let got: String = c.call(cmd!("ECHO", format!("side-{i}"))).await.unwrap();
                assert_eq!(got, format!("side-{i}"), "{at}");
            }
            let end = bounded(Duration::from_secs(20), &at, rx).await;
            assert_eq!(end.unwrap(), Ok(300), "{at}");
        });
    }
}

/// A connect that can never succeed (an address nothing answers, a host name that does not
/// resolve) ends within the connect timeout with a connection error, on every engine; a client
/// dropped while connecting leaves no thread behind.
#[test]
fn connects_to_black_holes_and_bad_names_end_within_the_connect_timeout() {
    for engine in engines() {
        multi_thread().block_on(async {
            for url in [
                "redis://10.255.255.1:6379",
                "redis://no-such-host.invalid:6379",
            ] {
                let at = format!("{engine:?} {url}");
                let c = Client::new(
                    Config::from_url(url)
                        .unwrap()
                        .engine(engine)
                        .connect_timeout(Duration::from_millis(300)),
                )
                .unwrap();
                let r = bounded(Duration::from_secs(5), &at, c.call::<String>(cmd!("PING"))).await;
                assert!(
                    matches!(r, Err(ringdis::Error::Connection { .. })),
                    "{at}: {r:?}"
                );
                let r = bounded(Duration::from_secs(5), &at, c.connect()).await;
                assert!(r.is_err(), "{at}: {r:?}");
            }
        });
    }
}

/// A huge reply on one connection delays no other connection of the same engine by much: PINGs
/// on a second client keep answering while 64 MiB come back on the first.
#[test]
fn a_huge_reply_does_not_stall_the_other_connections() {
    huge_beside_small(&engines());
}

fn huge_beside_small(engines: &[Engine]) {
    let server = Server::start(ServerKind::Redis);
    for &engine in engines {
        multi_thread().block_on(async {
            let at = format!("{engine:?}");
            let cfg = Config::from_url(&server.url()).unwrap().engine(engine);
            let big = Client::new(cfg.clone()).unwrap();
            let small = Client::new(cfg).unwrap();
            let key = ringdis_tests::unique("huge");
            let value = vec![b'v'; 64 << 20];
            let _: () = big.call(cmd!("SET", &key, &value[..])).await.unwrap();
            let mut gets = futures::stream::FuturesUnordered::new();
            for _ in 0..3 {
                gets.push(big.call::<bytes::Bytes>(cmd!("GET", &key)));
            }
            let pings = async {
                for i in 0..200 {
                    let p: String = bounded(
                        Duration::from_secs(5),
                        &format!("{at}: PING {i}"),
                        small.call(cmd!("PING")),
                    )
                    .await
                    .unwrap();
                    assert_eq!(p, "PONG");
                }
            };
            let all = async {
                use futures::StreamExt;
                while let Some(got) = gets.next().await {
                    assert_eq!(got.unwrap().len(), value.len(), "{at}");
                }
            };
            bounded(Duration::from_secs(60), &at, async {
                futures::join!(pings, all)
            })
            .await;
            let _: i64 = big.call(cmd!("DEL", &key)).await.unwrap();
        });
    }
}

/// The runtime a task-engine client lives on shuts down while calls are in flight and while
/// other threads keep using the client, its subscriber and its pool: every call ends with an
/// error (none hangs, none panics), before and after the shutdown.
#[test]
fn the_task_engines_runtime_shutting_down_fails_every_call_and_hangs_none() {
    let server = Server::start(ServerKind::Redis);
    let rt = multi_thread();
    let (c, pool, mut sub, blocked) = rt.block_on(async {
        let cfg = Config::from_url(&server.url())
            .unwrap()
            .engine(ringdis::Engine::Task);
        let c = Client::new(cfg.clone()).unwrap();
        let _: String = c.call(cmd!("PING")).await.unwrap();
        let pool = ringdis::Pool::builder(cfg)
            .max_size(1)
            .checkout_timeout(Some(Duration::from_secs(2)))
            .build();
        let held = pool.get().await.unwrap();
        let sub = c.subscriber().unwrap();
        sub.subscribe(&["review-ch"]).await.unwrap();
        // A call in flight when the runtime goes: a blocking one, answered in 30 s at best.
        let blocked = c.call::<Option<(String, String)>>(cmd!("BLPOP", "review-never", 30));
        std::mem::forget(held);
        (c, pool, sub, blocked)
    });
    drop(rt);
    // From a plain thread, no runtime at all: each must end, with an error.
    let within =
        |what: &str, f: std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    futures::executor::block_on(f)
                }));
                let _ = tx.send(r);
            });
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(Ok(failed)) => assert!(failed, "{what}: succeeded on a dead runtime"),
                Ok(Err(_)) => panic!("{what}: panicked"),
                Err(_) => panic!("{what}: still pending after 10 s"),
            }
        };
    within(
        "the call in flight",
        Box::pin(async move { blocked.await.is_err() }),
    );
    let c2 = c.clone();
    within(
        "a new call",
        Box::pin(async move {
            // The error says why.
            matches!(
                c2.call::<String>(cmd!("PING")).await,
                Err(ringdis::Error::Connection { message, .. }) if message.contains("runtime")
            )
        }),
    );
    let c3 = c.clone();
    within(
        "a blocking call",
        Box::pin(async move {
            c3.call::<Option<(String, String)>>(cmd!("BLPOP", "review-never", 1))
                .await
                .is_err()
        }),
    );
    within(
        "a message",
        Box::pin(async move {
            sub.next_message(Some(Duration::from_millis(100)))
                .await
                .is_err()
        }),
    );
    within(
        "a checkout",
        Box::pin(async move { pool.get().await.is_err() }),
    );
    let (tx, rx) = mpsc::channel();
    c.async_call(cmd!("PING"), move |r: ringdis::Result<ringdis::Value>| {
        let _ = tx.send(r.is_err());
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)),
        Ok(true),
        "a callback"
    );
}

/// Descriptors and OS threads of this process (the timer thread left out: it serves no
/// connection and stays once started).
fn held() -> (usize, usize) {
    let threads = support::process::threads_named(|n| n != support::process::TIMER_THREAD);
    (support::process::fds(), threads)
}

/// Clients made and dropped in loops, each left in a state that holds something: connecting to
/// an address nothing answers, a fire-and-forget `BLPOP q 0` on a dedicated connection, a
/// blocking call dropped in flight, a subscriber whose server is gone, a pool with checkouts
/// dropped while connecting. Once all are dropped every descriptor and thread is released, on
/// every engine. (In a child process: other tests' sockets would blur the count.)
#[test]
fn clients_left_in_every_state_and_dropped_release_everything() {
    support::run_child("child_clients_left_in_every_state_release_everything", &[]);
}

#[test]
#[ignore = "run by clients_left_in_every_state_and_dropped_release_everything"]
fn child_clients_left_in_every_state_release_everything() {
    if !support::is_child("child_clients_left_in_every_state_release_everything") {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    let rt = multi_thread();
    for engine in engines() {
        let at = format!("{engine:?}");
        let round = || async {
            let cfg = Config::from_url(&server.url()).unwrap().engine(engine);
            let c = Client::new(cfg.clone()).unwrap();
            let _: String = c.call(cmd!("PING")).await.unwrap();
            // A fire-and-forget call that blocks for ever on a dedicated connection.
            c.async_call(
                cmd!("BLPOP", ringdis_tests::unique("never"), 0),
                None::<fn(_)>,
            );
            // A blocking call dropped in flight.
            let mut blocked = c.call::<Option<(String, String)>>(cmd!(
                "BLPOP",
                ringdis_tests::unique("never"),
                0
            ));
            assert!(futures::poll!(&mut blocked).is_pending());
            // A subscriber, and a client, whose server is gone (a port nothing listens on).
            let gone =
                Config::from_url(&format!("redis://127.0.0.1:{}", ringdis_tests::free_port()))
                    .unwrap()
                    .engine(engine)
                    .connect_timeout(Duration::from_millis(200));
            let lost = Client::new(gone.clone()).unwrap();
            let _ = lost.call::<String>(cmd!("PING")).await;
            let sub = c.subscriber().unwrap();
            sub.subscribe(&["review-release"]).await.unwrap();
            // Connecting to an address nothing answers.
            let hole = Client::new(
                Config::from_url("redis://10.255.255.1:6379")
                    .unwrap()
                    .engine(engine)
                    .connect_timeout(Duration::from_millis(300)),
            )
            .unwrap();
            let mut connecting = hole.call::<String>(cmd!("PING"));
            assert!(futures::poll!(&mut connecting).is_pending());
            let pool = ringdis::Pool::new(cfg, 4);
            let checked = pool.get().await.unwrap();
            let _: String = checked.call(cmd!("PING")).await.unwrap();
            drop((blocked, connecting, checked, pool, sub, lost, hole, c));
        };
        let before = held();
        for _ in 0..10 {
            rt.block_on(round());
        }
        support::process::wait_until(
            &format!("{at}: released, from {before:?}"),
            Duration::from_secs(20),
            || {
                let now = held();
                now.0 <= before.0 && now.1 <= before.1
            },
        );
    }
}

/// Servers that misbehave in every way a stream can (garbage, a length past every limit, an
/// unsolicited reply, a reply trickled a byte at a time, closing mid-reply): each faulty
/// connection's call ends (a protocol or connection error, or its reply), while another
/// connection on the same engine keeps answering, on every engine.
#[test]
fn misbehaving_servers_fail_only_their_own_calls() {
    let healthy = Server::start(ServerKind::Redis);
    let faults: [(&str, &[u8]); 5] = [
        ("garbage", b"this is not RESP\r\n"),
        ("an endless length", b"$99999999999999\r\n"),
        ("an unsolicited reply", b"+OK\r\n+EXTRA\r\n"),
        ("a trickle", b"$5\r\nhello\r\n"),
        ("a cut reply", b"$10\r\nhel"),
    ];
    for engine in engines() {
        for (what, bytes) in faults {
            let bytes = bytes.to_vec();
            let trickle = what == "a trickle";
            let server = FaultServer::start(move |mut conn| {
                if conn.read_command().is_none() {
                    return;
                }
                if trickle {
                    for b in &bytes {
                        conn.write(std::slice::from_ref(b));
                    }
                } else {
                    conn.write(&bytes);
                }
                if what == "a cut reply" {
                    conn.close();
                } else {
                    conn.stall();
                }
            });
            multi_thread().block_on(async {
                let at = format!("{engine:?}: {what}");
                let bad = Client::new(
                    Config::from_url(&server.url())
                        .unwrap()
                        .engine(engine)
                        .protocol(Protocol::Resp2)
                        .command_timeout(Some(Duration::from_secs(3))),
                )
                .unwrap();
                let fine =
                    Client::new(Config::from_url(&healthy.url()).unwrap().engine(engine)).unwrap();
                let (got, ()) = futures::join!(bad.call::<String>(cmd!("GET", "k")), async {
                    for _ in 0..50 {
                        let p: String =
                            bounded(Duration::from_secs(2), &at, fine.call(cmd!("PING")))
                                .await
                                .unwrap();
                        assert_eq!(p, "PONG", "{at}");
                    }
                });
                match (what, got) {
                    ("a trickle", Ok(v)) => assert_eq!(v, "hello", "{at}"),
                    ("an unsolicited reply", Ok(v)) => assert_eq!(v, "OK", "{at}"),
                    (
                        _,
                        Err(ringdis::Error::Protocol { .. } | ringdis::Error::Connection { .. }),
                    ) => {}
                    (_, other) => panic!("{at}: {other:?}"),
                }
            });
        }
    }
}

/// The ring engine without multishot operations (single-shot receives into each socket's own
/// buffer, an eventfd read per wake-up, as on kernels before 5.19): a deaf server, a huge reply
/// and dropped calls, as above.
#[test]
fn the_ring_engine_without_multishot_holds_the_same() {
    support::run_child(
        "child_ring_without_multishot",
        &[("RINGDIS_URING_NO_BUFRING", "1")],
    );
}

#[test]
#[ignore = "run by the_ring_engine_without_multishot_holds_the_same"]
fn child_ring_without_multishot() {
    if !support::is_child("child_ring_without_multishot") {
        return;
    }
    deaf_beside_healthy(&[Engine::IoUring]);
    huge_beside_small(&[Engine::IoUring]);
    dropped_calls(&[Engine::IoUring]);
}

/// Server restarts while many callers (plain calls, pipelines, callbacks) are in flight on one
/// connection: every call ends, and every reply that comes is the caller's own (ECHO of a value
/// no other call sends), on every engine; after the restarts every caller is served again.
#[test]
fn replies_stay_with_their_callers_across_server_restarts() {
    for engine in engines() {
        let mut server = Server::start(ServerKind::Redis);
        let url = server.url();
        let rt = multi_thread();
        let c = rt.block_on(async {
            Client::new(
                Config::from_url(&url)
                    .unwrap()
                    .engine(engine)
                    .connect_timeout(Duration::from_secs(5))
                    .command_timeout(Some(Duration::from_secs(5))),
            )
            .unwrap()
        });
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let callers: Vec<_> = (0..8)
            .map(|t| {
                let (c, stop) = (c.clone(), stop.clone());
                rt.spawn(async move {
                    let mut n = 0u64;
                    let mut ok = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Acquire) || ok == 0 {
                        n += 1;
                        let mine = format!("{t}:{n}");
                        match n % 3 {
                            0 => {
                                if let Ok(got) = c.call::<String>(cmd!("ECHO", &mine)).await {
                                    assert_eq!(got, mine, "{engine:?}");
                                    ok += 1;
                                }
                            }
                            1 => {
                                let mut p = c.pipeline();
                                p.add(cmd!("ECHO", &mine))
                                    .add(cmd!("ECHO", format!("{mine}b")));
                                if let Ok((a, b)) = p.query::<(String, String)>().await {
                                    assert_eq!((a, b), (mine.clone(), format!("{mine}b")));
                                    ok += 1;
                                }
                            }
                            _ => {
                                let (tx, rx) = futures::channel::oneshot::channel();
                                c.async_call(
                                    cmd!("ECHO", &mine),
                                    move |r: ringdis::Result<ringdis::Value>| {
                                        let _ = tx.send(r);
                                    },
                                );
                                if let Ok(Ok(ringdis::Value::Bulk(b))) = rx.await {
                                    assert_eq!(b, mine.as_bytes(), "{engine:?}");
                                    ok += 1;
                                }
                            }
                        }
                    }
                    ok
                })
            })
            .collect();
        for _ in 0..3 {
            // Let calls flow, then restart under them.
            let served = c.clone();
            rt.block_on(async move {
                for _ in 0..20 {
                    let _ = served.call::<String>(cmd!("PING")).await;
                }
            });
            server.restart();
        }
        stop.store(true, std::sync::atomic::Ordering::Release);
        rt.block_on(async {
            for caller in callers {
                let ok = bounded(Duration::from_secs(30), &format!("{engine:?}"), caller)
                    .await
                    .unwrap();
                assert!(ok > 0, "{engine:?}");
            }
        });
    }
}

/// Clients made, used once and dropped from several threads at once, so attaches keep meeting
/// an engine thread that is leaving (its last link finished) or starting: every call is served
/// (none hangs, none fails), on both engines that run threads of their own.
#[test]
fn attaching_while_the_engine_thread_leaves_serves_every_call() {
    let server = Server::start(ServerKind::Redis);
    for engine in support::ring_engines() {
        let url = server.url();
        let racers: Vec<_> = (0..4)
            .map(|r| {
                let url = url.clone();
                std::thread::spawn(move || {
                    for i in 0..150 {
                        let c = Client::new(
                            Config::from_url(&url)
                                .unwrap()
                                .engine(engine)
                                .protocol(Protocol::Resp2),
                        )
                        .unwrap();
                        let (tx, rx) = mpsc::channel();
                        let caller = c.clone();
                        std::thread::spawn(move || {
                            let _ = tx.send(futures::executor::block_on(
                                caller.call::<String>(cmd!("ECHO", format!("{r}-{i}"))),
                            ));
                        });
                        let got = rx.recv_timeout(Duration::from_secs(10));
                        assert_eq!(
                            got.map(|r| r.ok()),
                            Ok(Some(format!("{r}-{i}"))),
                            "{engine:?} racer {r} call {i}"
                        );
                    }
                })
            })
            .collect();
        for r in racers {
            r.join().unwrap();
        }
    }
}

/// A fire-and-forget call made just before the client is dropped, with no command timeout, on
/// a connection not yet open or already open, still reaches the server (the client goes once it
/// is written, not before), on every engine.
#[test]
fn a_fire_and_forget_call_made_before_the_drop_still_reaches_the_server() {
    let server = Server::start(ServerKind::Redis);
    for (engine, open) in engines().into_iter().flat_map(|e| [(e, false), (e, true)]) {
        multi_thread().block_on(async {
            let at = format!("{engine:?}, open: {open}");
            let key = ringdis_tests::unique("fire-and-forget");
            let c = Client::new(
                Config::from_url(&server.url())
                    .unwrap()
                    .engine(engine)
                    .command_timeout(None),
            )
            .unwrap();
            if open {
                c.connect().await.unwrap();
            }
            c.async_call(cmd!("SET", &key, "sent"), None::<fn(_)>);
            drop(c);
            let check =
                Client::new(Config::from_url(&server.url()).unwrap().engine(engine)).unwrap();
            let found = async {
                loop {
                    let v: Option<String> = check.call(cmd!("GET", &key)).await.unwrap();
                    if v.is_some() {
                        return v;
                    }
                    support::yield_now().await;
                }
            };
            let got = bounded(Duration::from_secs(5), &at, found).await;
            assert_eq!(got.as_deref(), Some("sent"), "{at}");
        });
    }
}

/// `disconnect` and `connect` in quick succession, again and again, while other tasks call:
/// every connect ends connected, every call ends with its own reply or a connection error, and
/// the connection serves calls afterwards, on every engine.
#[test]
fn disconnect_and_connect_racing_with_calls_lose_nothing() {
    let server = Server::start(ServerKind::Redis);
    for engine in engines() {
        multi_thread().block_on(async {
            let at = format!("{engine:?}");
            let c = Client::new(Config::from_url(&server.url()).unwrap().engine(engine)).unwrap();
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let side: Vec<_> = (0..4)
                .map(|t| {
                    let (c, stop, at) = (c.clone(), stop.clone(), at.clone());
                    tokio::spawn(async move {
                        let mut n = 0u64;
                        while !stop.load(std::sync::atomic::Ordering::Acquire) {
                            n += 1;
                            let mine = format!("{t}:{n}");
                            match c.call::<String>(cmd!("ECHO", &mine)).await {
                                Ok(got) => assert_eq!(got, mine, "{at}"),
                                Err(ringdis::Error::Connection { .. }) => {}
                                Err(e) => panic!("{at}: {e}"),
                            }
                        }
                    })
                })
                .collect();
            for i in 0..50 {
                bounded(
                    Duration::from_secs(5),
                    &format!("{at}: disconnect {i}"),
                    c.disconnect(),
                )
                .await;
                let up = bounded(
                    Duration::from_secs(5),
                    &format!("{at}: connect {i}"),
                    c.connect(),
                )
                .await;
                assert!(matches!(up, Ok(true)), "{at}: connect {i}: {up:?}");
            }
            stop.store(true, std::sync::atomic::Ordering::Release);
            for s in side {
                bounded(Duration::from_secs(10), &at, s).await.unwrap();
            }
            let last: String = c.call(cmd!("ECHO", "last")).await.unwrap();
            assert_eq!(last, "last", "{at}");
        });
    }
}

/// Many threads, each with its own client on the same engine thread, call in tight loops under
/// `block_on`, so wake-ups keep arriving while the engine turns, parks and wakes: no call is
/// ever lost (each thread finishes its calls in bounded time) and each gets its own reply.
#[test]
fn wake_ups_racing_with_the_engine_parking_lose_no_call() {
    let server = Server::start(ServerKind::Redis);
    for engine in support::ring_engines() {
        let (done_tx, done_rx) = mpsc::channel();
        for t in 0..8 {
            let url = server.url();
            let done = done_tx.clone();
            std::thread::spawn(move || {
                let c = Client::new(Config::from_url(&url).unwrap().engine(engine)).unwrap();
                let r = futures::executor::block_on(async {
                    for i in 0..1500 {
                        let mine = format!("{t}:{i}");
                        let got: String = c.call(cmd!("ECHO", &mine)).await?;
                        assert_eq!(got, mine, "{engine:?}");
                    }
                    Ok::<_, ringdis::Error>(())
                });
                let _ = done.send(r);
            });
        }
        drop(done_tx);
        for _ in 0..8 {
            let r = done_rx.recv_timeout(Duration::from_secs(60));
            assert!(matches!(r, Ok(Ok(()))), "{engine:?}: {r:?}");
        }
    }
}
