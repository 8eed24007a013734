//! Pipelines, transactions, pub/sub, pools, blocking commands and scripts, against real servers
//! on every engine, including server restarts in the middle.

mod support;

use futures::{FutureExt, StreamExt};
use ringdis::{cmd, Client, Engine, Error, Library, Pool, Protocol, Result, Script, Value};
use ringdis_tests::{Server, ServerKind};
use std::time::{Duration, Instant};
use support::{client, config, label, matrix, PROTOCOLS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_reply_in_order_while_others_share_the_connection() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        for protocol in PROTOCOLS {
            let at = label(kind, engine, protocol);
            let c = client(&server, engine, protocol);
            // Pipelines from many tasks interleave with single calls on one connection.
            let tasks: Vec<_> = (0..200)
                .map(|t| {
                    let c = c.clone();
                    tokio::spawn(async move {
                        let key = format!("p{t}");
                        let mut p = c.pipeline();
                        p.add(cmd!("SET", &key, t))
                            .add(cmd!("INCR", &key))
                            .add(cmd!("ECHO", &key));
                        let single = c.call::<String>(cmd!("ECHO", format!("single{t}")));
                        let ((), n, echo): ((), i64, String) = p.query().await?;
                        assert_eq!((n, echo), (t + 1, key));
                        assert_eq!(single.await?, format!("single{t}"));
                        Ok::<_, Error>(())
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap().unwrap_or_else(|e| panic!("{at}: {e}"));
            }
            // An error in the middle does not lose the rest.
            let mut p = c.pipeline();
            p.add(cmd!("SET", "s", "x"))
                .add(cmd!("INCR", "s"))
                .add(cmd!("GET", "s"));
            let each: Vec<Result<Value>> = p.query().await.unwrap();
            assert_eq!(each.len(), 3, "{at}");
            assert!(each[0].is_ok());
            assert_eq!(
                each[1].as_ref().unwrap_err().server_kind(),
                Some("ERR"),
                "{at}"
            );
            assert_eq!(each[2].as_ref().unwrap(), &Value::Bulk("x".into()), "{at}");
            // ... while asking for plain values fails on it, with the server's error.
            let err = p.query::<Vec<Value>>().await.unwrap();
            assert!(matches!(err[1], Value::Error(_)), "{at}");
            let err = p.query::<((), i64, String)>().await.unwrap_err();
            assert_eq!(err.server_kind(), Some("ERR"), "{at}");
            // An empty pipeline is refused before anything is sent.
            let err = c.pipeline().query::<Value>().await.unwrap_err();
            assert!(matches!(err, Error::Client { .. }), "{at}");
            let err = c.call::<Value>(c.pipeline()).await.unwrap_err();
            assert!(matches!(err, Error::Client { .. }), "{at}");

            // A pipeline through call() and async_call(), as tornadis allows.
            let mut p = c.pipeline();
            p.add(cmd!("SET", "via", "call")).add(cmd!("GET", "via"));
            let ((), via): ((), String) = c.call(&p).await.unwrap();
            assert_eq!(via, "call", "{at}");
            let (tx, rx) = tokio::sync::oneshot::channel();
            c.async_call(p, move |reply: Result<Value>| drop(tx.send(reply)));
            let reply = rx.await.unwrap().unwrap();
            assert_eq!(
                reply,
                Value::Array(vec![Value::Simple("OK".into()), Value::Bulk("call".into())]),
                "{at}"
            );
            let counter = format!("via:{protocol:?}");
            let mut t = c.transaction();
            t.add(cmd!("INCR", &counter)).add(cmd!("INCR", &counter));
            let (tx, rx) = tokio::sync::oneshot::channel();
            c.async_call(&t, move |reply: Result<Value>| drop(tx.send(reply)));
            assert_eq!(
                rx.await.unwrap().unwrap(),
                Value::Array(vec![Value::Int(1), Value::Int(2)]),
                "{at}"
            );
        }
    }
}

/// The server dies and comes back while many tasks run pipelines and transactions: every
/// batch either gets its own replies or a connection error, none waits for ever, and the
/// client works again after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_in_the_middle_of_pipelines_and_transactions() {
    for (kind, engine) in matrix() {
        for protocol in PROTOCOLS {
            let at = label(kind, engine, protocol);
            let mut server = Server::start(kind);
            let c = client(&server, engine, protocol);
            let ok = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel();
            let tasks: Vec<_> = (0..32)
                .map(|t| {
                    let (c, ok, progress) = (c.clone(), ok.clone(), progress_tx.clone());
                    tokio::spawn(async move {
                        let mut lost = 0;
                        for i in 0..200 {
                            let tag = format!("t{t}:{i}");
                            let mut p = if i % 2 == 0 {
                                c.pipeline()
                            } else {
                                c.transaction()
                            };
                            p.add(cmd!("SET", &tag, i))
                                .add(cmd!("GET", &tag))
                                .add(cmd!("ECHO", &tag));
                            match p.query::<((), i64, String)>().await {
                                Ok((_, got, echo)) => {
                                    assert_eq!(
                                        (got, echo.as_str()),
                                        (i, tag.as_str()),
                                        "a reply reached the wrong caller"
                                    );
                                    ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                }
                                Err(e) => {
                                    assert!(e.is_connection(), "{tag}: {e}");
                                    lost += 1;
                                }
                            }
                            let _ = progress.send(());
                        }
                        lost
                    })
                })
                .collect();
            drop(progress_tx);
            // Kill it once batches are flowing, bring it back, let the rest run.
            for _ in 0..500 {
                progress_rx.recv().await;
            }
            server.kill();
            server.restart();
            let all = futures::future::join_all(tasks);
            let results = tokio::time::timeout(Duration::from_secs(120), all)
                .await
                .unwrap_or_else(|_| panic!("{at}: a batch never finished"));
            let lost: usize = results.into_iter().map(|r| r.unwrap()).sum();
            let done = ok.load(std::sync::atomic::Ordering::Relaxed);
            assert_eq!(done + lost, 32 * 200, "{at}");
            assert!(done >= 500, "{at}: {done} batches succeeded");
            let (n, echo): (i64, String) = {
                let mut t = c.transaction();
                t.add(cmd!("INCR", "after")).add(cmd!("ECHO", "alive"));
                t.query().await.unwrap_or_else(|e| panic!("{at}: {e}"))
            };
            assert_eq!((n, echo.as_str()), (1, "alive"), "{at}");
        }
    }
}

/// A `Spread` sends its calls round robin over its connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spread_uses_every_connection() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        let spread = ringdis::Spread::new(config(&server, engine), 3).unwrap();
        let mut ids = std::collections::BTreeSet::new();
        for _ in 0..9 {
            ids.insert(spread.call::<i64>(cmd!("CLIENT", "ID")).await.unwrap());
        }
        assert_eq!(ids.len(), 3, "{kind}/{engine:?}: {ids:?}");
        assert!(spread.is_connected());
        let tasks: Vec<_> = (0..300)
            .map(|i| {
                let spread = spread.clone();
                tokio::spawn(
                    async move { spread.call::<String>(cmd!("ECHO", i.to_string())).await },
                )
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap().unwrap(), i.to_string());
        }
        spread.disconnect().await;
        assert!(!spread.is_connected());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_one_unit_on_the_shared_connection() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        for protocol in PROTOCOLS {
            let at = label(kind, engine, protocol);
            let c = client(&server, engine, protocol);
            c.call::<()>(cmd!("DEL", "tx")).await.unwrap();
            // 100 transactions racing 100 plain INCRs: each transaction's two INCRs are adjacent.
            let tasks: Vec<_> = (0..100)
                .map(|_| {
                    let c = c.clone();
                    tokio::spawn(async move {
                        let plain = c.call::<i64>(cmd!("INCR", "tx"));
                        let mut t = c.transaction();
                        t.add(cmd!("INCR", "tx")).add(cmd!("INCR", "tx"));
                        let (a, b): (i64, i64) = t.query().await?;
                        assert_eq!(b, a + 1, "nothing landed between a transaction's commands");
                        plain.await?;
                        Ok::<_, Error>(())
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap().unwrap_or_else(|e| panic!("{at}: {e}"));
            }
            assert_eq!(c.call::<i64>(cmd!("GET", "tx")).await.unwrap(), 300, "{at}");
            // A command refused at queue time aborts the transaction, saying which.
            let mut t = c.transaction();
            t.add(cmd!("INCR", "tx")).add(cmd!("SET", "only-a-key"));
            let err = t.query::<Value>().await.unwrap_err();
            assert_eq!(err.server_kind(), Some("EXECABORT"), "{at}: {err}");
            assert!(
                err.to_string().contains("wrong number of arguments"),
                "{at}: {err}"
            );
            assert_eq!(
                c.call::<i64>(cmd!("GET", "tx")).await.unwrap(),
                300,
                "{at}: nothing ran"
            );
            // MULTI through call() is refused: it would capture other callers' commands.
            let err = c.call::<()>(cmd!("MULTI")).await.unwrap_err();
            assert!(matches!(err, Error::Client { .. }), "{at}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_transactions_retry_when_a_watched_key_changes() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        let c = client(&server, engine, Protocol::Resp3);
        let meddler = client(&server, engine, Protocol::Resp3);
        c.call::<()>(cmd!("SET", "balance", 10)).await.unwrap();
        let mut attempts = 0;
        let (n,): (i64,) = c
            .watch_transaction("balance", |conn| {
                attempts += 1;
                let meddler = meddler.clone();
                let first = attempts == 1;
                async move {
                    let bal: i64 = conn.call(cmd!("GET", "balance")).await?;
                    if first {
                        // Someone else changes the key between WATCH and EXEC.
                        meddler.call::<()>(cmd!("INCRBY", "balance", 100)).await?;
                    }
                    let mut tx = conn.transaction();
                    tx.add(cmd!("SET", "balance", bal * 2));
                    tx.add(cmd!("GET", "balance"));
                    Ok(tx)
                }
            })
            .await
            .map(|((), n): ((), i64)| (n,))
            .unwrap();
        assert_eq!(attempts, 2, "{kind}/{engine:?}: the first EXEC was aborted");
        assert_eq!(
            n, 220,
            "{kind}/{engine:?}: doubled the value the meddler left"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_commands_never_stall_the_shared_connection() {
    // The cells run at once (each waits out a 5 s BLPOP), each on its own server.
    let cells: Vec<_> = matrix()
        .into_iter()
        .map(|(kind, engine)| tokio::spawn(blocking_commands_cell(kind, engine)))
        .collect();
    for cell in cells {
        cell.await.unwrap();
    }
}

async fn blocking_commands_cell(kind: ServerKind, engine: Engine) {
    let server = Server::start(kind);
    let c = client(&server, engine, Protocol::Resp3);
    let started = Instant::now();
    let mut blpop = c.call::<Option<(String, String)>>(cmd!("BLPOP", "empty-list", 5));
    let gets: Vec<_> = (0..10_000)
        .map(|i| c.call::<Option<String>>(cmd!("GET", format!("k{i}"))))
        .collect();
    for g in gets {
        assert_eq!(g.await.unwrap(), None);
    }
    assert!(
        (&mut blpop).now_or_never().is_none(),
        "{kind}/{engine:?}: GETs waited for BLPOP"
    );
    assert_eq!(
        blpop.await.unwrap(),
        None,
        "BLPOP timed out empty after its 5 s"
    );
    assert!(started.elapsed() >= Duration::from_secs(5));

    // A blocking call that gets its data, on the dedicated connection, while GETs go on.
    let waiting = c.call::<Option<(String, String)>>(cmd!("BRPOP", "jobs", 0));
    let pusher = client(&server, engine, Protocol::Resp3);
    assert_eq!(
        c.call::<Option<String>>(cmd!("GET", "x")).await.unwrap(),
        None
    );
    pusher
        .call::<i64>(cmd!("LPUSH", "jobs", "job1"))
        .await
        .unwrap();
    assert_eq!(waiting.await.unwrap(), Some(("jobs".into(), "job1".into())));

    // An abandoned blocking call does not leave a connection blocked for the next one.
    drop(c.call::<Value>(cmd!("BLPOP", "never", 0)));
    let next = c.call::<Option<(String, String)>>(cmd!("BLPOP", "jobs2", 0));
    pusher
        .call::<i64>(cmd!("LPUSH", "jobs2", "j"))
        .await
        .unwrap();
    assert_eq!(next.await.unwrap(), Some(("jobs2".into(), "j".into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_messages_flow_and_survive_a_server_restart() {
    for (kind, engine) in matrix() {
        for protocol in PROTOCOLS {
            let at = label(kind, engine, protocol);
            let mut server = Server::start(kind);
            let c = client(&server, engine, protocol);
            let mut sub = c.subscriber().unwrap();
            sub.subscribe(["news", "sports"]).await.unwrap();
            sub.psubscribe(["alerts.*"]).await.unwrap();
            assert_eq!(
                c.call::<i64>(cmd!("PUBLISH", "news", "n1")).await.unwrap(),
                1,
                "{at}"
            );
            c.call::<i64>(cmd!("PUBLISH", "alerts.fire", "a1"))
                .await
                .unwrap();
            let m = sub
                .next_message(Some(Duration::from_secs(10)))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                (m.channel_str(), m.payload_str()),
                (Some("news"), Some("n1")),
                "{at}"
            );
            let m = sub.next().await.unwrap().unwrap();
            assert_eq!(m.pattern.as_deref(), Some(&b"alerts.*"[..]), "{at}");
            assert_eq!(m.channel_str(), Some("alerts.fire"));
            // Nothing more: next_message times out with None.
            assert_eq!(
                sub.next_message(Some(Duration::from_millis(100)))
                    .await
                    .unwrap(),
                None
            );
            sub.unsubscribe(["sports"]).await.unwrap();

            // Kill the server; the subscriber reconnects and re-subscribes by itself.
            server.kill();
            server.restart();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                // Publish until the re-subscribed connection counts as a receiver.
                let receivers: i64 = c.call(cmd!("PUBLISH", "news", "after")).await.unwrap_or(0);
                if receivers == 1 {
                    break;
                }
                assert!(Instant::now() < deadline, "{at}: never re-subscribed");
                let _ = sub.next_message(Some(Duration::from_millis(20))).await;
            }
            let mut m = sub.next_message(Some(Duration::from_secs(10))).await;
            if m.as_ref().is_err_and(Error::is_connection) {
                // The loss is reported once, in order, if the loop above did not read it.
                m = sub.next_message(Some(Duration::from_secs(10))).await;
            }
            let m = m.unwrap().unwrap();
            assert_eq!(m.payload_str(), Some("after"), "{at}");
            let n: i64 = c.call(cmd!("PUBLISH", "alerts.x", "again")).await.unwrap();
            assert_eq!(n, 1, "{at}: the pattern was restored too");
            let n: i64 = c.call(cmd!("PUBLISH", "sports", "no")).await.unwrap();
            assert_eq!(n, 0, "{at}: an unsubscribed channel stays unsubscribed");
            assert!(sub.is_connected());

            // SUBSCRIBE on the shared connection is refused with a pointer to the subscriber.
            let err = c.call::<Value>(cmd!("SUBSCRIBE", "x")).await.unwrap_err();
            assert!(err.to_string().contains("subscriber"), "{at}: {err}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_hands_out_at_most_max_size_clients() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        let pool = Pool::builder(config(&server, engine))
            .max_size(2)
            .checkout_timeout(Some(Duration::from_millis(200)))
            .build();
        pool.preconnect().await.unwrap();
        assert_eq!(pool.idle_count(), 2);
        let a = pool.get().await.unwrap();
        let b = pool.get().await.unwrap();
        let err = pool.get().await.unwrap_err();
        assert_eq!(
            err,
            Error::Timeout,
            "{kind}/{engine:?}: exhausted pool times out"
        );
        let id_a: i64 = a.call(cmd!("CLIENT", "ID")).await.unwrap();
        drop(a);
        let again = pool.get().await.unwrap();
        let id_again: i64 = again.call(cmd!("CLIENT", "ID")).await.unwrap();
        assert_eq!(id_a, id_again, "the given-back connection is reused");
        // A checkout waiting for a client gets the next one given back.
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.map(|c| c.is_connected()) })
        };
        drop(b);
        assert!(waiter.await.unwrap().unwrap());
        assert_eq!(pool.health_check().await, pool.idle_count());
        pool.destroy().await;
        assert!(
            !again.is_connected(),
            "destroy closes checked-out connections too"
        );
        assert!(
            matches!(pool.get().await.unwrap_err(), Error::Client { .. }),
            "closed pool"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_and_functions_load_themselves() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        let c = client(&server, engine, Protocol::Resp3);
        let add = Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
        c.call::<()>(cmd!("SCRIPT", "FLUSH")).await.unwrap();
        assert_eq!(
            add.key("n").arg(5).invoke::<i64>(&c).await.unwrap(),
            5,
            "NOSCRIPT → EVAL"
        );
        assert_eq!(
            add.key("n").arg(2).invoke::<i64>(&c).await.unwrap(),
            7,
            "EVALSHA"
        );
        let exists: Vec<bool> = c.call(cmd!("SCRIPT", "EXISTS", add.sha())).await.unwrap();
        assert_eq!(exists, [true]);
        let err = Script::new("return redis.error_reply('MINE no')")
            .invoke::<Value>(&c)
            .await
            .unwrap_err();
        assert_eq!(err.server_kind(), Some("MINE"));

        let lib = Library::new(
            "#!lua name=counters\nredis.register_function('bump', function(keys, args) \
             return redis.call('INCRBY', keys[1], args[1]) end)",
        );
        let n: i64 = lib.fcall(&c, "bump", ["f"], [3]).await.unwrap();
        assert_eq!(n, 3, "{kind}: loaded on the first FCALL");
        let n: i64 = lib.fcall(&c, "bump", ["f"], [3]).await.unwrap();
        assert_eq!(n, 6);
    }
}

#[test]
fn server_kinds_are_both_tested() {
    assert_eq!(ServerKind::ALL.len(), 2);
    let _: fn(&Client) = |_| {};
}

/// The generated methods work on pipelines and transactions (one generated copy), on pooled
/// clients and on a `Spread`'s clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_methods_on_pipelines_transactions_and_pools() {
    use ringdis::prelude::*;
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        for protocol in PROTOCOLS {
            let at = label(kind, engine, protocol);
            let c = client(&server, engine, protocol);
            c.del(["g:n", "g:k", "g:t"]).await.unwrap();

            let mut p = c.pipeline();
            p.set("g:k", "v").send();
            p.incr("g:n").incrby("g:n", 10).get("g:k").send();
            p.add(cmd!("ECHO", "hand-built"));
            let (set, n1, n2, k, echo): (Option<()>, i64, i64, Option<Bytes>, String) =
                p.query().await.unwrap();
            assert_eq!(
                (set, n1, n2, k.as_deref(), echo.as_str()),
                (Some(()), 1, 11, Some(&b"v"[..]), "hand-built"),
                "{at}"
            );

            // A chain can end in the query itself; a dropped builder still lands in the pipeline.
            let (a, b): (i64, i64) = c.pipeline().incr("g:n").incr("g:n").query().await.unwrap();
            assert_eq!((a, b), (12, 13), "{at}");
            let mut p = c.pipeline();
            let _ = p.incr("g:n");
            assert_eq!(p.len(), 1, "{at}");

            let (x, y, t): (i64, i64, String) = c
                .transaction()
                .incr("g:t")
                .incr("g:t")
                .type_("g:t")
                .query()
                .await
                .unwrap();
            assert_eq!((x, y, t.as_str()), (1, 2, "string"), "{at}");
        }
        let pool = Pool::new(config(&server, engine), 2);
        let conn = pool.get().await.unwrap();
        conn.set("g:pool", 1).await.unwrap();
        assert_eq!(conn.get("g:pool").decode::<i64>().await.unwrap(), 1);
        let spread = ringdis::Spread::new(config(&server, engine), 2).unwrap();
        assert_eq!(spread.client().incr("g:spread").await.unwrap(), 1);
        assert_eq!(spread.client().incr("g:spread").await.unwrap(), 2);
    }
}
