//! Issue #11, kinds 1 and 2: no command may change the shared connection's reply stream or
//! session by any path (the routing gate), and the state a user configured holds on every
//! connection, after every reconnect, or the command is refused naming the `Config` option.
//! Every test runs on both servers, both protocols and every engine.

mod support;

use futures::FutureExt;
use ringdis::commands::{Action, Status};
use ringdis::{cmd, Client, Cmd, Commands, Pool, Spread, Tracking, Value};
use ringdis_tests::Server;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::{client, config, label, matrix, refused, until_blocked};

/// Waits until `c` has noticed that its connection is gone (polled; no sleep).
async fn until_disconnected(c: &Client, at: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.is_connected() {
        assert!(
            Instant::now() < deadline,
            "{at}: the client never saw the kill"
        );
        tokio::task::yield_now().await;
    }
}

/// Kills `victim`'s connection from `killer` (`CLIENT KILL ID`).
async fn kill(killer: &Client, victim_id: i64, at: &str) {
    let killed: i64 = killer
        .call(cmd!("CLIENT", "KILL", "ID", victim_id))
        .await
        .unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!(killed, 1, "{at}");
}

/// The shared connection is as configured and in step: none of the refused commands reached
/// it, and concurrent calls each get their own reply.
async fn still_in_step(c: &Client, at: &str) {
    let (a, b, d) = tokio::join!(
        c.call::<String>(cmd!("ECHO", "a")),
        c.call::<String>(cmd!("ECHO", "b")),
        c.call::<String>(cmd!("ECHO", "c")),
    );
    assert_eq!(
        (a.unwrap(), b.unwrap(), d.unwrap()),
        ("a".into(), "b".into(), "c".into()),
        "{at}"
    );
    let info: String = c.call(cmd!("CLIENT", "INFO")).await.unwrap();
    assert!(info.contains(" db=0 "), "{at}: {info}");
    assert!(info.contains(" name= "), "{at}: {info}");
    // No flag: not in MULTI (x), not a subscriber (P) or monitor (O), no tracking (t)...
    assert!(info.contains(" flags=N "), "{at}: {info}");
}

/// Issue example: `client_reply(Skip)` (or `CLIENT REPLY SKIP` by hand), then three concurrent
/// ECHOs: each must get its own reply, and every later call too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reply_is_refused_and_concurrent_echoes_get_their_own_replies() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        for protocol in support::PROTOCOLS {
            let at = label(kind, engine, protocol);
            let c = client(&server, engine, protocol);
            refused(
                c.client_reply(Action::Skip).await,
                "CLIENT REPLY is not allowed",
                &at,
            );
            refused(c.client_reply(Action::Off).await, "async_call", &at);
            refused(
                c.call::<()>(cmd!("CLIENT", "REPLY", "SKIP")).await,
                "CLIENT REPLY",
                &at,
            );
            refused(
                c.call::<()>(cmd!("client", "reply", "skip")).await,
                "CLIENT REPLY",
                &at,
            );
            still_in_step(&c, &at).await;
            // Many more, concurrently, all in step.
            let calls: Vec<_> = (0..200)
                .map(|i| c.call::<String>(cmd!("ECHO", i.to_string())))
                .collect();
            for (i, call) in calls.into_iter().enumerate() {
                assert_eq!(call.await.unwrap(), i.to_string(), "{at}");
            }
        }
    }
}

/// Issue example: a pipeline of `MULTI` + `SET k x` is refused (saying which command), and
/// another caller's `GET k` and writes are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_in_a_pipeline_is_refused_and_other_callers_are_unaffected() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        for protocol in support::PROTOCOLS {
            let at = label(kind, engine, protocol);
            let c = client(&server, engine, protocol);
            let other = c.clone();
            let mut p = c.pipeline();
            p.add(cmd!("MULTI")).add(cmd!("SET", "k", "x"));
            refused(
                p.query::<Value>().await,
                "command 1 of the pipeline: MULTI",
                &at,
            );
            refused(c.call::<Value>(&p).await, "Client::transaction", &at);
            // Built with the generated methods, and with EXEC at the end.
            refused(
                c.pipeline().set("k", "y").multi().query::<Value>().await,
                "command 2 of the pipeline: MULTI",
                &at,
            );
            let mut p = c.pipeline();
            p.add(cmd!("SET", "k", "x")).add(cmd!("EXEC"));
            refused(
                p.query::<Value>().await,
                "command 2 of the pipeline: EXEC",
                &at,
            );
            // Inside a transaction too.
            let mut t = c.transaction();
            t.add(cmd!("SET", "k", "x")).add(cmd!("MULTI"));
            refused(
                t.query::<Value>().await,
                "command 2 of the transaction: MULTI",
                &at,
            );
            // Nothing of it ran, and nobody else's commands are queued anywhere.
            let got: Option<String> = other.call(cmd!("GET", "k")).await.unwrap();
            assert_eq!(got, None, "{at}");
            other.call::<()>(cmd!("SET", "k2", "v")).await.unwrap();
            let reader = client(&server, engine, protocol);
            let seen: Option<String> = reader.call(cmd!("GET", "k2")).await.unwrap();
            assert_eq!(seen.as_deref(), Some("v"), "{at}");
            still_in_step(&c, &at).await;
            c.call::<()>(cmd!("FLUSHALL")).await.unwrap();
        }
    }
}

/// Issue example: a pipeline holding `BLPOP q 0` runs, as a whole, on a dedicated connection:
/// a PING on the shared connection completes while it is still pending; an LPUSH releases it.
/// The same for `async_call(BLPOP …)` and `call(BLPOP …)` (issue #12's routing cases: the PING
/// answers within the command timeout, 2 s here, and before the blocking call does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_pipelines_and_async_calls_run_on_a_dedicated_connection() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        for protocol in support::PROTOCOLS {
            let at = label(kind, engine, protocol);
            let c = Client::new(
                config(&server, engine)
                    .protocol(protocol)
                    .command_timeout(Some(Duration::from_secs(2))),
            )
            .unwrap();
            let watcher = client(&server, engine, protocol);

            // call(BLPOP): a dedicated connection; the shared one answers a PING meanwhile.
            let mut pending = c.call::<(String, String)>(cmd!("BLPOP", "q0", 0));
            until_blocked(&watcher, 1, &at).await;
            let pong: String = c
                .call(cmd!("PING"))
                .await
                .unwrap_or_else(|e| panic!("{at}: PING behind call(BLPOP): {e}"));
            assert_eq!(pong, "PONG", "{at}");
            assert!((&mut pending).now_or_never().is_none(), "{at}");
            c.call::<i64>(cmd!("LPUSH", "q0", "w")).await.unwrap();
            let popped = pending.await.unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(popped, ("q0".to_string(), "w".to_string()), "{at}");

            let mut p = c.pipeline();
            p.add(cmd!("SET", "before", 1))
                .add(cmd!("BLPOP", "q", 0))
                .add(cmd!("GET", "before"));
            let mut pending = p.query::<((), (String, String), String)>();
            until_blocked(&watcher, 1, &at).await;
            let pong: String = c
                .call(cmd!("PING"))
                .await
                .unwrap_or_else(|e| panic!("{at}: PING behind a blocking pipeline: {e}"));
            assert_eq!(pong, "PONG", "{at}");
            assert!((&mut pending).now_or_never().is_none(), "{at}");
            let pushed: i64 = c.call(cmd!("LPUSH", "q", "x")).await.unwrap();
            assert_eq!(pushed, 1, "{at}");
            let ((), popped, before) = pending.await.unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(popped, ("q".to_string(), "x".to_string()), "{at}");
            assert_eq!(before, "1", "{at}");

            // async_call: the callback gets the reply; the shared connection never stalls.
            let (tx, rx) = mpsc::channel();
            c.async_call(cmd!("BLPOP", "q2", 0), move |r: ringdis::Result<Value>| {
                let _ = tx.send(r);
            });
            until_blocked(&watcher, 1, &at).await;
            let pong: String = c
                .call(cmd!("PING"))
                .await
                .unwrap_or_else(|e| panic!("{at}: PING behind async_call(BLPOP): {e}"));
            assert_eq!(pong, "PONG", "{at}");
            assert!(rx.try_recv().is_err(), "{at}: answered before the push");
            c.call::<i64>(cmd!("LPUSH", "q2", "y")).await.unwrap();
            let got = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(10)))
                .await
                .unwrap()
                .unwrap_or_else(|_| panic!("{at}: no reply"))
                .unwrap_or_else(|e| panic!("{at}: {e}"));
            let got: (String, String) = ringdis::FromRedis::from_redis(got).unwrap();
            assert_eq!(got, ("q2".to_string(), "y".to_string()), "{at}");

            // A generated blocking method in a pipeline goes the same way.
            let mut pending = c.pipeline().blpop("q3", 0.0).query::<Vec<Value>>();
            until_blocked(&watcher, 1, &at).await;
            assert!((&mut pending).now_or_never().is_none(), "{at}");
            c.call::<i64>(cmd!("RPUSH", "q3", "z")).await.unwrap();
            let got = pending.await.unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(got.len(), 1, "{at}");

            // In a transaction nothing blocks: it stays on the shared connection.
            let mut t = c.transaction();
            t.add(cmd!("BLPOP", "empty", 0)).add(cmd!("ECHO", "t"));
            let (none, echo): (Option<(String, String)>, String) = t.query().await.unwrap();
            assert_eq!((none, echo.as_str()), (None, "t"), "{at}");

            // WAIT alone is refused (it is about the connection's own writes); after the
            // writes, in one pipeline, it runs (on a dedicated connection).
            refused(c.wait(0, 100).await, "in a pipeline", &at);
            let mut p = c.pipeline();
            p.add(cmd!("SET", "w", 1)).add(cmd!("WAIT", 0, 100));
            let ((), replicas): ((), i64) = p.query().await.unwrap();
            assert_eq!(replicas, 0, "{at}");
            still_in_step(&c, &at).await;
            c.call::<()>(cmd!("FLUSHALL")).await.unwrap();
        }
    }
}

/// The listed commands, the text their refusal must contain, and whether a pipeline may hold
/// them (`WAIT` runs after the writes it is for; `CLIENT CACHING` would be last, so refused).
fn table() -> Vec<(Cmd, &'static str, bool)> {
    vec![
        (
            cmd!("CLIENT", "REPLY", "SKIP"),
            "async_call(cmd, None)",
            true,
        ),
        (
            cmd!("client", "reply", "off"),
            "async_call(cmd, None)",
            true,
        ),
        (cmd!("MULTI"), "Client::transaction", true),
        (cmd!("EXEC"), "Client::transaction", true),
        (cmd!("DISCARD"), "Client::transaction", true),
        (cmd!("WATCH", "k"), "watch_transaction", true),
        (cmd!("UNWATCH"), "watch_transaction", true),
        (cmd!("SUBSCRIBE", "ch"), "Client::subscriber", true),
        (cmd!("PSUBSCRIBE", "ch*"), "Client::subscriber", true),
        (cmd!("SSUBSCRIBE", "ch"), "Client::subscriber", true),
        (cmd!("UNSUBSCRIBE"), "Client::subscriber", true),
        (cmd!("PUNSUBSCRIBE"), "Client::subscriber", true),
        (cmd!("SUNSUBSCRIBE"), "Client::subscriber", true),
        (cmd!("MONITOR"), "not supported", true),
        (cmd!("SYNC"), "replication", true),
        (cmd!("PSYNC", "?", -1), "replication", true),
        (cmd!("REPLCONF", "listening-port", 1), "replication", true),
        (cmd!("QUIT"), "Client::disconnect", true),
        (cmd!("RESET"), "Client::disconnect", true),
        (cmd!("HELLO", 2), "Config::protocol", true),
        (
            cmd!("HELLO", 3, "SETNAME", "x"),
            "Config::client_name",
            true,
        ),
        (cmd!("AUTH", "pw"), "Config::password", true),
        (cmd!("AUTH", "user", "pw"), "Config::username", true),
        (cmd!("SELECT", 5), "Config::db", true),
        (cmd!("select", 0), "Config::db", true),
        (cmd!("CLIENT", "SETNAME", "x"), "Config::client_name", true),
        (
            cmd!("CLIENT", "SETINFO", "LIB-NAME", "x"),
            "not supported",
            true,
        ),
        (cmd!("CLIENT", "TRACKING", "ON"), "Config::tracking", true),
        (cmd!("CLIENT", "CACHING", "YES"), "right before", true),
        (cmd!("CLIENT", "NO-EVICT", "ON"), "not supported", true),
        (cmd!("CLIENT", "NO-TOUCH", "ON"), "not supported", true),
        (cmd!("CLIENT", "CAPA", "redirect"), "not supported", true),
        (cmd!("READONLY"), "cluster", true),
        (cmd!("READWRITE"), "cluster", true),
        (cmd!("ASKING"), "cluster", true),
        (cmd!("WAIT", 0, 100), "in a pipeline", false),
        (cmd!("WAITAOF", 0, 0, 100), "in a pipeline", false),
    ]
}

/// Every listed command is refused on every path a request can take, and none reached a
/// connection: each stays as configured and in step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listed_command_is_refused_on_every_path() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        for protocol in support::PROTOCOLS {
            let at = label(kind, engine, protocol);
            let cfg = || config(&server, engine).protocol(protocol);
            let c = Client::new(cfg()).unwrap();
            let pool = Pool::new(cfg(), 2);
            let pooled = pool.get().await.unwrap();
            let spread = Spread::new(cfg(), 2).unwrap();
            let dedicated = c.dedicated().unwrap();
            let sub = c.subscriber().unwrap();
            for (cmd, needle, pipelined) in table() {
                let at = format!("{at}: `{cmd}`");
                refused(c.call::<Value>(cmd.clone()).await, needle, &at);
                let (tx, rx) = mpsc::channel();
                c.async_call(cmd.clone(), move |r: ringdis::Result<Value>| {
                    let _ = tx.send(r);
                });
                // Refused at once, on the caller's thread: nothing was sent.
                refused(rx.try_recv().expect("refused at once"), needle, &at);
                c.async_call(cmd.clone(), None::<fn(_)>);
                if pipelined {
                    let mut p = c.pipeline();
                    p.add(cmd!("ECHO", "x")).add(cmd.clone());
                    refused(p.query::<Value>().await, "command 2 of the pipeline", &at);
                    refused(c.call::<Value>(&p).await, needle, &at);
                    let (tx, rx) = mpsc::channel();
                    c.async_call(p, move |r: ringdis::Result<Value>| {
                        let _ = tx.send(r);
                    });
                    refused(rx.try_recv().expect("refused at once"), needle, &at);
                }
                if pipelined {
                    let mut t = c.transaction();
                    t.add(cmd!("ECHO", "x")).add(cmd.clone());
                    refused(
                        t.query::<Value>().await,
                        "command 2 of the transaction",
                        &at,
                    );
                }
                refused(pooled.call::<Value>(cmd.clone()).await, needle, &at);
                refused(spread.call::<Value>(cmd.clone()).await, needle, &at);
                refused(dedicated.call::<Value>(cmd.clone()).await, needle, &at);
                refused(
                    sub.connection().call::<Value>(cmd.clone()).await,
                    needle,
                    &at,
                );
                // The connection a watch_transaction closure gets.
                let inner = std::sync::Arc::new(std::sync::Mutex::new(None));
                let seen = inner.clone();
                let watched: ringdis::Result<(String,)> = c
                    .watch_transaction("wk", |conn| {
                        let cmd = cmd.clone();
                        let seen = seen.clone();
                        async move {
                            *seen.lock().unwrap() = Some(conn.call::<Value>(cmd).await);
                            let mut t = conn.transaction();
                            t.add(cmd!("ECHO", "ok"));
                            Ok(t)
                        }
                    })
                    .await;
                assert_eq!(watched.unwrap(), ("ok".to_string(),), "{at}");
                let got = inner.lock().unwrap().take().expect("the closure ran");
                refused(got, needle, &at);
            }
            // The generated methods, as the README shows them.
            refused(c.select(5).await, "Config::db", &at);
            refused(c.multi().await, "Client::transaction", &at);
            refused(c.watch("k").await, "watch_transaction", &at);
            refused(c.subscribe("ch").await, "Client::subscriber", &at);
            refused(c.monitor().await, "not supported", &at);
            refused(c.quit().await, "Client::disconnect", &at);
            refused(c.hello().protover(3).await, "Config::protocol", &at);
            refused(c.auth("pw").await, "Config::password", &at);
            refused(c.client_setname("n").await, "Config::client_name", &at);
            refused(c.client_tracking(Status::On).await, "Config::tracking", &at);
            refused(c.readonly().await, "cluster", &at);
            refused(pooled.select(5).await, "Config::db", &at);
            refused(
                c.pipeline().get("k").select(5).query::<Value>().await,
                "command 2 of the pipeline: SELECT",
                &at,
            );
            // HELLO alone only reports: allowed.
            let hello = c.hello().await.unwrap();
            assert!(hello.contains_key("proto"), "{at}: {hello:?}");
            for conn in [&c, &*pooled, spread.clients().first().unwrap(), &dedicated] {
                still_in_step(conn, &at).await;
            }
        }
    }
}

/// Issue example: `select(5)` is refused naming `Config::db`; a client configured with db 5
/// keeps it after its connection is killed (the next `SET` lands in db 5, not db 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_db_survives_a_killed_connection() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        for protocol in support::PROTOCOLS {
            let at = label(kind, engine, protocol);
            let cfg = || config(&server, engine).protocol(protocol);
            let c = Client::new(cfg()).unwrap();
            refused(c.select(5).await, "Config::db", &at);
            let c5 = Client::new(cfg().db(5)).unwrap();
            let killer = Client::new(cfg()).unwrap();
            c5.call::<()>(cmd!("SET", "a", 1)).await.unwrap();
            let id: i64 = c5.call(cmd!("CLIENT", "ID")).await.unwrap();
            kill(&killer, id, &at).await;
            until_disconnected(&c5, &at).await;
            c5.call::<()>(cmd!("SET", "b", 1))
                .await
                .unwrap_or_else(|e| panic!("{at}: {e}"));
            let again: i64 = c5.call(cmd!("CLIENT", "ID")).await.unwrap();
            assert_ne!(again, id, "{at}: it reconnected");
            let in_db0: Option<String> = c.call(cmd!("GET", "b")).await.unwrap();
            assert_eq!(in_db0, None, "{at}: the SET landed in db 0");
            let reader5 = Client::new(cfg().db(5)).unwrap();
            let in_db5: Option<String> = reader5.call(cmd!("GET", "b")).await.unwrap();
            assert_eq!(in_db5.as_deref(), Some("1"), "{at}");
            c.call::<()>(cmd!("FLUSHALL")).await.unwrap();
        }
    }
}

/// Issue example: with db 6 configured, `LPUSH q x` then `blpop(q, 1)` pops from db 6, on every
/// path that runs a blocking command (each on a dedicated or pooled connection); and every
/// connection has the configured name and protocol too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_calls_use_the_configured_db_on_every_path() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        for protocol in support::PROTOCOLS {
            let at = label(kind, engine, protocol);
            let cfg = || config(&server, engine).protocol(protocol);
            let db0 = Client::new(cfg()).unwrap();
            let cfg6 = || cfg().db(6).client_name("gate");
            let c6 = Client::new(cfg6()).unwrap();
            let pool = Pool::new(cfg6(), 2);
            let pooled = pool.get().await.unwrap();
            let spread = Spread::new(cfg6(), 2).unwrap();
            let dedicated = c6.dedicated().unwrap();
            // Each path pops its own list; db 0 holds a decoy under the same name.
            let mut n = 0;
            let mut next = |db0: &Client| {
                n += 1;
                let q = format!("q{n}");
                let db0 = db0.clone();
                let q2 = q.clone();
                async move {
                    db0.call::<i64>(cmd!("LPUSH", &q2, "db0")).await.unwrap();
                    q
                }
            };
            let want = |q: &str| Some((q.to_string(), "x".to_string()));
            type Popped = Option<(String, String)>;

            let q = next(&db0).await;
            c6.call::<i64>(cmd!("LPUSH", &q, "x")).await.unwrap();
            let got: Popped = c6.blpop(&q, 1.0).decode().await.unwrap();
            assert_eq!(got, want(&q), "{at}: generated");

            let q = next(&db0).await;
            c6.call::<i64>(cmd!("LPUSH", &q, "x")).await.unwrap();
            let got: Popped = c6.call(cmd!("BLPOP", &q, 1)).await.unwrap();
            assert_eq!(got, want(&q), "{at}: call");

            let q = next(&db0).await;
            c6.call::<i64>(cmd!("LPUSH", &q, "x")).await.unwrap();
            let (tx, rx) = mpsc::channel();
            c6.async_call(cmd!("BLPOP", &q, 1), move |r: ringdis::Result<Value>| {
                let _ = tx.send(r);
            });
            let got = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(10)))
                .await
                .unwrap()
                .unwrap();
            let got: Popped = ringdis::FromRedis::from_redis(got.unwrap()).unwrap();
            assert_eq!(got, want(&q), "{at}: async_call");

            let q = next(&db0).await;
            let mut p = c6.pipeline();
            p.add(cmd!("LPUSH", &q, "x")).add(cmd!("BLPOP", &q, 1));
            let (_, got): (i64, Popped) = p.query().await.unwrap();
            assert_eq!(got, want(&q), "{at}: pipeline");

            let q = next(&db0).await;
            let mut t = c6.transaction();
            t.add(cmd!("LPUSH", &q, "x")).add(cmd!("BLPOP", &q, 1));
            let (_, got): (i64, Popped) = t.query().await.unwrap();
            assert_eq!(got, want(&q), "{at}: transaction");

            let q = next(&db0).await;
            pooled.call::<i64>(cmd!("LPUSH", &q, "x")).await.unwrap();
            let got: Popped = pooled.blpop(&q, 1.0).decode().await.unwrap();
            assert_eq!(got, want(&q), "{at}: pooled");

            let q = next(&db0).await;
            c6.call::<i64>(cmd!("LPUSH", &q, "x")).await.unwrap();
            let got: Popped = spread.call(cmd!("BLPOP", &q, 1)).await.unwrap();
            assert_eq!(got, want(&q), "{at}: spread");

            let q = next(&db0).await;
            c6.call::<i64>(cmd!("LPUSH", &q, "x")).await.unwrap();
            let got: Popped = dedicated.call(cmd!("BRPOP", &q, 1)).await.unwrap();
            assert_eq!(got, want(&q), "{at}: dedicated");

            let q = next(&db0).await;
            c6.call::<i64>(cmd!("LPUSH", &q, "x")).await.unwrap();
            let qq = q.clone();
            let got: ((String, String),) = c6
                .watch_transaction("watched", |conn| {
                    let q = qq.clone();
                    async move {
                        // A blocking call from the closure: a dedicated connection, db 6.
                        let popped: Popped = conn.call(cmd!("BLPOP", &q, 1)).await?;
                        let mut t = conn.transaction();
                        t.add(cmd!("ECHO", popped.map(|p| p.1).unwrap_or_default()));
                        t.add(cmd!("CLIENT", "INFO"));
                        Ok(t)
                    }
                })
                .await
                .map(|(echo, info): (String, String)| {
                    let db = info
                        .split(' ')
                        .find(|w| w.starts_with("db="))
                        .unwrap_or("")
                        .to_string();
                    ((echo, db),)
                })
                .unwrap();
            assert_eq!(got.0, ("x".to_string(), "db=6".to_string()), "{at}: watch");

            // The decoys are all still in db 0.
            for i in 1..=n {
                let left: i64 = db0.call(cmd!("LLEN", format!("q{i}"))).await.unwrap();
                assert_eq!(left, 1, "{at}: q{i} in db 0");
            }
            // Every connection those paths opened (shared, dedicated, pooled, spread, watch, and
            // the idle spares) has the whole configured session: db, name, protocol.
            let list: String = db0.call(cmd!("CLIENT", "LIST")).await.unwrap();
            let resp = match protocol {
                ringdis::Protocol::Resp2 => "resp=2",
                ringdis::Protocol::Resp3 => "resp=3",
            };
            let named: Vec<&str> = list.lines().filter(|l| l.contains(" name=gate ")).collect();
            assert!(named.len() >= 6, "{at}: {list}");
            for line in named {
                let has = |word: &str| line.split(' ').any(|w| w == word);
                assert!(has("db=6") && has(resp), "{at}: {line}");
            }
            db0.call::<()>(cmd!("FLUSHALL")).await.unwrap();
        }
    }
}

/// Issue example: the watching connection is killed between WATCH and EXEC while another
/// client changes the key from 100 to 999; the transaction must never EXEC unwatched (101):
/// the attempt runs again on a new connection (1000), or fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_watch_never_execs_unwatched() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        for protocol in support::PROTOCOLS {
            for wait_for_the_loss in [true, false] {
                let at = format!(
                    "{} (wait for the loss: {wait_for_the_loss})",
                    label(kind, engine, protocol)
                );
                let cfg = || config(&server, engine).protocol(protocol).db(2);
                let c = Client::new(cfg()).unwrap();
                let other = Client::new(cfg()).unwrap();
                c.call::<()>(cmd!("SET", "key", 100)).await.unwrap();
                let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let r = runs.clone();
                let result: ringdis::Result<((), i64)> = c
                    .watch_transaction("key", |conn| {
                        let other = other.clone();
                        let runs = r.clone();
                        let at = at.clone();
                        async move {
                            let n: i64 = conn.call(cmd!("GET", "key")).await?;
                            if runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                                let id: i64 = conn.call(cmd!("CLIENT", "ID")).await?;
                                kill(&other, id, &at).await;
                                other.call::<()>(cmd!("SET", "key", 999)).await?;
                                if wait_for_the_loss {
                                    until_disconnected(&conn, &at).await;
                                    // It does not come back by hand either.
                                    let e = conn.connect().await.unwrap_err();
                                    assert!(e.is_connection(), "{at}: {e}");
                                }
                            }
                            let mut t = conn.transaction();
                            t.add(cmd!("SET", "key", n + 1)).add(cmd!("GET", "key"));
                            Ok(t)
                        }
                    })
                    .await;
                let stored: i64 = other.call(cmd!("GET", "key")).await.unwrap();
                match result {
                    Ok(((), n)) => {
                        assert_eq!(n, 1000, "{at}");
                        assert_eq!(stored, 1000, "{at}");
                        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 2, "{at}");
                    }
                    Err(e) => {
                        assert!(!wait_for_the_loss, "{at}: {e}");
                        assert!(e.is_connection(), "{at}: {e}");
                        assert_eq!(stored, 999, "{at}");
                    }
                }
                c.call::<()>(cmd!("FLUSHALL")).await.unwrap();
            }
        }
    }
}

/// `CLIENT TRACKING` is connection state: as a command it is refused (naming
/// `Config::tracking`); configured, it is on again after the connection is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_tracking_survives_a_killed_connection() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        // Invalidations without REDIRECT are RESP3 pushes.
        let protocol = ringdis::Protocol::Resp3;
        let at = label(kind, engine, protocol);
        let cfg = || config(&server, engine).protocol(protocol);
        let c = Client::new(cfg().tracking(Tracking::new())).unwrap();
        refused(
            c.call::<()>(cmd!("CLIENT", "TRACKING", "ON")).await,
            "Config::tracking",
            &at,
        );
        let (tx, rx) = mpsc::channel();
        c.on_push(move |p| {
            let _ = tx.send(p);
        });
        let other = Client::new(cfg()).unwrap();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for round in 0..2 {
            let at = format!("{at} round {round}");
            let _: Option<String> = c.call(cmd!("GET", "tracked")).await.unwrap();
            other
                .call::<()>(cmd!("SET", "tracked", round))
                .await
                .unwrap();
            let rx = rx.clone();
            let push = tokio::task::spawn_blocking(move || {
                rx.lock().unwrap().recv_timeout(Duration::from_secs(10))
            })
            .await
            .unwrap()
            .unwrap_or_else(|_| panic!("{at}: no invalidation push"));
            assert!(
                matches!(&push, Value::Push(items) if items.first() == Some(&Value::Bulk("invalidate".into()))),
                "{at}: {push:?}"
            );
            // Kill the connection: the reconnect must turn tracking on again.
            let id: i64 = c.call(cmd!("CLIENT", "ID")).await.unwrap();
            kill(&other, id, &at).await;
            until_disconnected(&c, &at).await;
        }

        // OPTIN: CLIENT CACHING YES alone is refused (the next command on a shared connection
        // may be anyone's); in a pipeline, right before the read it is for, it works.
        let optin = Client::new(cfg().tracking(Tracking::new().optin())).unwrap();
        let (tx, opted) = mpsc::channel();
        optin.on_push(move |p| {
            let _ = tx.send(p);
        });
        refused(
            optin.call::<()>(cmd!("CLIENT", "CACHING", "YES")).await,
            "right before",
            &at,
        );
        let mut p = optin.pipeline();
        p.add(cmd!("CLIENT", "CACHING", "YES"))
            .add(cmd!("GET", "opted"));
        let ((), none): ((), Option<String>) = p.query().await.unwrap();
        assert_eq!(none, None, "{at}");
        other.call::<()>(cmd!("SET", "opted", 1)).await.unwrap();
        let push = tokio::task::spawn_blocking(move || opted.recv_timeout(Duration::from_secs(10)))
            .await
            .unwrap()
            .unwrap_or_else(|_| panic!("{at}: no invalidation push for the opted-in read"));
        assert!(
            matches!(&push, Value::Push(items) if items.get(1) == Some(&Value::Array(vec![Value::Bulk("opted".into())]))),
            "{at}: {push:?}"
        );
    }
}
