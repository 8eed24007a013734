//! Members of issue #11's fault kinds found by a second review: each test first failed, then its
//! fix landed. Every test runs on both servers, both protocols and both transports where it
//! applies.

mod support;

use ringdis::{cmd, Client, Value};
use ringdis_tests::Server;
use std::time::Duration;
use support::{config, label, matrix, until_blocked};

/// Kind 1: `XREADGROUP GROUP <group> <consumer> BLOCK 0 STREAMS …` whose group or consumer is
/// named `streams` blocks like any other: it must run on a dedicated connection, not stall every
/// caller of the shared one (the gate read the group name as the `STREAMS` keyword and stopped
/// looking for `BLOCK`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xreadgroup_with_a_group_named_streams_still_blocks_elsewhere() {
    for (kind, transport) in matrix() {
        let server = Server::start(kind);
        for protocol in support::PROTOCOLS {
            let at = label(kind, transport, protocol);
            let cfg = config(&server, transport)
                .protocol(protocol)
                .command_timeout(Some(Duration::from_secs(2)));
            let c = Client::new(cfg.clone()).unwrap();
            let other = Client::new(cfg).unwrap();
            let _: Value = c.call(cmd!("DEL", "s")).await.unwrap();
            for (group, consumer) in [("streams", "c"), ("g", "STREAMS")] {
                let _: Value = c
                    .call(cmd!("XGROUP", "CREATE", "s", group, "$", "MKSTREAM"))
                    .await
                    .unwrap();
                let reader = c.clone();
                let read = tokio::spawn(async move {
                    reader
                        .call::<Value>(cmd!(
                            "XREADGROUP",
                            "GROUP",
                            group,
                            consumer,
                            "BLOCK",
                            0,
                            "STREAMS",
                            "s",
                            ">"
                        ))
                        .await
                });
                until_blocked(&other, 1, &at).await;
                let echo: ringdis::Result<String> = c.call(cmd!("ECHO", "free")).await;
                assert_eq!(
                    echo.as_deref().ok(),
                    Some("free"),
                    "{at}: group {group} consumer {consumer}: {echo:?}"
                );
                let _: Value = other.call(cmd!("XADD", "s", "*", "f", "v")).await.unwrap();
                read.await.unwrap().unwrap();
                let _: Value = c.call(cmd!("DEL", "s")).await.unwrap();
            }
        }
    }
}

/// Kind 10: dropping the last handle of a client releases everything within a bounded time,
/// whatever the server does, once no caller waits for a reply. A fire-and-forget
/// `async_call(BLPOP q 0, None)` has no caller, yet it kept its dedicated connection (its socket,
/// its driver thread, the server's blocked client) for ever: the call's sink held the only
/// handle to the connection it ran on, inside that connection's own driver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_client_ends_its_fire_and_forget_blocking_calls() {
    for (kind, transport) in matrix() {
        let server = Server::start(kind);
        for protocol in support::PROTOCOLS {
            let at = label(kind, transport, protocol);
            let cfg = config(&server, transport).protocol(protocol);
            let watcher = Client::new(cfg.clone()).unwrap();
            let c = Client::new(cfg).unwrap();
            c.async_call(cmd!("BLPOP", "never", 0), None::<fn(_)>);
            c.async_call(cmd!("BLPOP", "never", 0), None::<fn(_)>);
            until_blocked(&watcher, 2, &at).await;
            drop(c);
            until_blocked(&watcher, 0, &at).await;
        }
    }
}

/// Kind 10 (and #12): a pool holds at most `max_size` clients. `Pool::health_check` took the
/// idle clients out of the pool while it pinged them, so a checkout meanwhile made a new client,
/// and the pinged ones were put back beside it: one more idle connection per checkout, each
/// time, without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_health_check_racing_a_checkout_keeps_the_pool_bounded() {
    use ringdis::Pool;
    for (kind, transport) in matrix() {
        let server = Server::start(kind);
        for protocol in support::PROTOCOLS {
            let at = label(kind, transport, protocol);
            let cfg = config(&server, transport).protocol(protocol);
            let pauser = Client::new(cfg.clone()).unwrap();
            let pool = Pool::new(cfg, 1);
            pool.preconnect().await.unwrap();
            assert_eq!(pool.idle_count(), 1, "{at}");
            for _ in 0..2 {
                // The server holds every command back for a while: the health check's PING is
                // still unanswered when the checkout comes.
                let _: Value = pauser
                    .call(cmd!("CLIENT", "PAUSE", 300, "ALL"))
                    .await
                    .unwrap();
                let mut check = std::pin::pin!(pool.health_check());
                assert!(futures::poll!(check.as_mut()).is_pending(), "{at}");
                let pooled = pool.get().await.unwrap();
                let alive = check.await;
                drop(pooled);
                assert!(alive <= 1, "{at}: {alive} alive in a pool of 1");
                assert_eq!(pool.idle_count(), 1, "{at}: a pool of 1");
            }
        }
    }
}

/// Kinds 2 and 3 (stale caches): with `Config::tracking`, the connection a `watch_transaction`
/// closure reads on tracks those reads, as every dedicated connection does; the client's
/// `on_push` handler must hear of their invalidation (or of the connection's end, as a flush),
/// as it does for the dedicated connections of blocking calls. It heard nothing: a value read
/// there and cached stayed cached for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidations_of_reads_in_a_watch_transaction_reach_on_push() {
    for (kind, transport) in matrix() {
        let server = Server::start(kind);
        // Invalidations without REDIRECT are RESP3 pushes.
        let protocol = ringdis::Protocol::Resp3;
        let at = label(kind, transport, protocol);
        let cfg = || config(&server, transport).protocol(protocol);
        let c = Client::new(cfg().tracking(ringdis::Tracking::new())).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        c.on_push(move |p| {
            let _ = tx.send(p);
        });
        let other = Client::new(cfg()).unwrap();
        other.call::<()>(cmd!("SET", "wk", 1)).await.unwrap();
        let ((), read): ((), i64) = c
            .watch_transaction("wk", |conn| async move {
                let n: i64 = conn.call(cmd!("GET", "wk")).await?;
                let mut tx = conn.transaction();
                tx.add(cmd!("SET", "other", n)).add(cmd!("GET", "other"));
                Ok(tx)
            })
            .await
            .unwrap();
        assert_eq!(read, 1, "{at}");
        other.call::<()>(cmd!("SET", "wk", 2)).await.unwrap();
        let push = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(5)))
            .await
            .unwrap();
        assert!(
            matches!(&push, Ok(Value::Push(items)) if items.first() == Some(&Value::Bulk("invalidate".into()))),
            "{at}: the invalidation of a read made in watch_transaction was lost: {push:?}"
        );
    }
}
