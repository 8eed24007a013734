//! Review of issue #13's merged work: regressions for the faults found.

mod support;

use ringdis::{cmd, Client, Stats};
use ringdis_tests::Server;
use support::{engines, matrix, PROTOCOLS};

/// Every counter but `in_flight` of `now` is at least what it was `before`.
#[track_caller]
fn never_went_down(before: &Stats, now: &Stats, at: &str) {
    let pairs = [
        ("calls", before.calls, now.calls),
        ("ok", before.ok, now.ok),
        ("dropped", before.dropped, now.dropped),
        ("connects", before.connects, now.connects),
        ("bytes_sent", before.bytes_sent, now.bytes_sent),
        ("bytes_received", before.bytes_received, now.bytes_received),
    ];
    for (name, b, n) in pairs {
        assert!(n >= b, "{at}: {name} went down from {b} to {n}: {now:?}");
    }
}

/// A client's counters include its dedicated connections (blocking calls,
/// `watch_transaction`) and keep their counts once those close: a counter never goes down
/// (it went down by each closed dedicated connection's calls and bytes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_counters_keep_what_its_closed_dedicated_connections_counted() {
    let servers: Vec<Server> = ringdis_tests::ServerKind::ALL
        .into_iter()
        .map(Server::start)
        .collect();
    for (kind, engine) in matrix() {
        let server = servers.iter().find(|s| s.kind() == kind).unwrap();
        for protocol in PROTOCOLS {
            let at = support::label(kind, engine, protocol);
            let c = support::client(server, engine, protocol);
            c.call::<()>(cmd!("PING")).await.unwrap();
            // A blocking call, on a dedicated connection kept as a spare.
            let got: Option<(String, String)> =
                c.call(cmd!("BLPOP", "review13:q", 0.01)).await.unwrap();
            assert_eq!(got, None, "{at}");
            // A watch_transaction, on a connection of its own that closes after it.
            let (n,): (i64,) = c
                .watch_transaction("review13:n", |conn: Client| async move {
                    let mut t = conn.transaction();
                    t.add(cmd!("INCR", "review13:n"));
                    Ok(t)
                })
                .await
                .unwrap();
            assert!(n >= 1, "{at}");
            let before = c.stats();
            assert!(before.calls >= 4, "{at}: {before:?}");
            // The spare dedicated connection closes.
            c.disconnect().await;
            let now = c.stats();
            never_went_down(&before, &now, &at);
            assert_eq!(now.in_flight, 0, "{at}: {now:?}");
        }
    }
    let _ = engines();
}

/// A pool's counters never go down while it lets clients go: `destroy` took its clients out
/// of the pool and counted them again only after every disconnect was done, so a `stats` read
/// meanwhile (a metrics scrape) missed all their counts.
#[tokio::test]
async fn a_pools_counters_do_not_dip_while_it_is_destroyed() {
    let servers: Vec<Server> = ringdis_tests::ServerKind::ALL
        .into_iter()
        .map(Server::start)
        .collect();
    for server in &servers {
        let at = server.kind().to_string();
        // The task engine on this current-thread runtime: a disconnect cannot finish while
        // the test holds the thread, so the destroy below is caught half-way, deterministically.
        let config = support::config(server, ringdis::Engine::Task);
        let pool = ringdis::Pool::new(config, 2);
        pool.preconnect().await.unwrap();
        for i in 0..4 {
            let n: i64 = ringdis::Commands::incr(&pool, format!("review13:p{i}"))
                .await
                .unwrap();
            assert!(n >= 1, "{at}");
        }
        let before = pool.stats();
        assert!(before.calls >= 4, "{at}: {before:?}");
        let mut destroy = Box::pin(pool.destroy());
        assert!(
            futures::poll!(destroy.as_mut()).is_pending(),
            "{at}: the disconnects need the runtime"
        );
        never_went_down(&before, &pool.stats(), &format!("{at}, destroying"));
        destroy.await;
        never_went_down(&before, &pool.stats(), &format!("{at}, destroyed"));
    }
}

/// Requests bigger than the piece TLS encrypts at a time (256 KiB), from many callers at once
/// on one connection (their writes interleaved with the callers' own fast-path writes), on
/// every engine: every reply reaches its caller, whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_requests_from_many_callers_over_tls_keep_their_replies() {
    let pki = support::pki::Pki::new();
    let server = pki.server(false);
    for engine in engines() {
        let config = ringdis::Config::from_url(&server.url())
            .unwrap()
            .tls(pki.tls())
            .engine(engine);
        let c = Client::new(config).unwrap();
        let tasks: Vec<_> = (0..12u8)
            .map(|t| {
                let c = c.clone();
                tokio::spawn(async move {
                    for round in 0..3u8 {
                        let value = vec![
                            t.wrapping_mul(31).wrapping_add(round);
                            300 * 1024 + usize::from(t)
                        ];
                        let key = format!("review13:big:{t}");
                        let mut p = c.pipeline();
                        p.add(cmd!("SET", &key, &value[..]))
                            .add(cmd!("GET", &key))
                            .add(cmd!("ECHO", format!("{t}/{round}")));
                        let ((), got, echo): ((), Vec<u8>, String) = p.query().await.unwrap();
                        assert!(
                            got == value,
                            "{engine:?} task {t}: {} bytes back",
                            got.len()
                        );
                        assert_eq!(echo, format!("{t}/{round}"), "{engine:?}");
                    }
                })
            })
            .collect();
        for t in tasks {
            support::bounded(std::time::Duration::from_secs(60), "a TLS caller", t)
                .await
                .unwrap();
        }
    }
}
