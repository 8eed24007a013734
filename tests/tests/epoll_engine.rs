//! The epoll engine (#12): one thread and one poll drive every connection made with
//! `Engine::Epoll` (clients, pool and spread members, subscribers, the dedicated connections of
//! blocking calls); the thread and its descriptors go when the last connection does; one
//! connection's failure is no other's; host names connect without stalling the engine.
//!
//! Every case runs in a child process of this binary: the engine is process-wide, so thread and
//! descriptor counts are only meaningful where no other test runs, and the child is free of a
//! `RINGDIS_ENGINE` override that would move the connections to another engine.

mod support;

use futures::future::join_all;
use ringdis::{cmd, Client, Config, Engine, Error, Pool, Protocol, Spread, Subscriber};
use ringdis_tests::{unique, Server, ServerKind};
use std::time::Duration;
use support::process::{self, fds, threads, until};
use support::{bounded, is_child, label, run_child, until_blocked, PROTOCOLS};

/// Threads of this process running the epoll engine (by their name).
fn engine_threads() -> usize {
    process::threads_named(|name| name == "ringdis-epoll")
}

/// How long a release may take.
const RELEASE: Duration = Duration::from_secs(10);

/// How long a call may take before it counts as hanging.
const HANG: Duration = Duration::from_secs(15);

fn epoll_config(url: &str, protocol: Protocol) -> Config {
    Config::from_url(url)
        .expect("harness URLs parse")
        .engine(Engine::Epoll)
        .protocol(protocol)
}

/// A client on the epoll engine (checked: no override moved it elsewhere).
fn epoll_client(config: &Config) -> Client {
    let c = Client::new(config.clone()).expect("client");
    assert_eq!(c.engine(), Engine::Epoll);
    c
}

/// Writes a key only this call uses and reads it back, and echoes a text only it sends: a reply
/// that went to another caller would show.
async fn own_replies(c: &Client, at: &str) {
    let key = unique("epoll:own");
    let value = format!("{key}:value");
    let () = c.call(cmd!("SET", &key, &value)).await.unwrap();
    let got: String = c.call(cmd!("GET", &key)).await.unwrap();
    assert_eq!(got, value, "{at}");
    let echoed: String = c.call(cmd!("ECHO", &key)).await.unwrap();
    assert_eq!(echoed, key, "{at}");
}

/// `clients` clients, a pool of `pooled` (all checked out), a spread of `spread`, a subscriber
/// and `blocking` BLPOPs in flight, all on the epoll engine; checks that they run on one engine
/// thread (`tasks`: the process's thread count before, when given), that every reply reaches its
/// own caller, then drops them all.
async fn crowd(url: &str, protocol: Protocol, n: [usize; 4], tasks: Option<usize>, at: &str) {
    let [clients, pooled, spread, blocking] = n;
    let config = epoll_config(url, protocol);
    let cs: Vec<Client> = (0..clients).map(|_| epoll_client(&config)).collect();
    let watcher = epoll_client(&config);
    let pool = Pool::new(config.clone(), pooled);
    let members = join_all((0..pooled).map(|_| pool.get())).await;
    let members: Vec<_> = members.into_iter().map(Result::unwrap).collect();
    let spread = Spread::new(config.clone(), spread).unwrap();
    let mut sub = Subscriber::new(config.clone()).unwrap();
    let channel = unique("epoll:channel");
    sub.subscribe([channel.as_str()]).await.unwrap();
    // The blocking calls each get a dedicated connection of `watcher`'s.
    let lists: Vec<String> = (0..blocking).map(|_| unique("epoll:list")).collect();
    let blpops: Vec<_> = lists
        .iter()
        .map(|list| {
            let (c, list) = (watcher.clone(), list.clone());
            tokio::spawn(async move {
                c.call::<Option<(String, String)>>(cmd!("BLPOP", list, 0))
                    .await
            })
        })
        .collect();
    until_blocked(&watcher, blocking, at).await;
    if let Some(tasks) = tasks {
        assert_eq!(engine_threads(), 1, "{at}: one engine thread");
        assert_eq!(
            threads(),
            tasks + 1,
            "{at}: threads before and with the crowd"
        );
    }

    // All at once, so the replies of different connections interleave on the engine.
    let everyone: Vec<&Client> = cs
        .iter()
        .chain(members.iter().map(|m| &**m))
        .chain(spread.clients())
        .collect();
    join_all(everyone.iter().map(|c| own_replies(c, at))).await;
    let payload = format!("{channel}:payload");
    let receivers: i64 = watcher
        .call(cmd!("PUBLISH", &channel, &payload))
        .await
        .unwrap();
    assert_eq!(receivers, 1, "{at}");
    let msg = bounded(HANG, at, sub.next_message(None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.channel, channel.as_bytes(), "{at}");
    assert_eq!(msg.payload_str(), Some(payload.as_str()), "{at}");
    for (list, blpop) in lists.iter().zip(blpops) {
        let value = format!("{list}:value");
        let _: i64 = watcher.call(cmd!("RPUSH", list, &value)).await.unwrap();
        let got = bounded(HANG, at, blpop).await.unwrap().unwrap();
        assert_eq!(got, Some((list.clone(), value)), "{at}");
    }
    if let Some(tasks) = tasks {
        assert_eq!(threads(), tasks + 1, "{at}: threads after the calls");
    }
    drop((cs, watcher, members, pool, spread, sub));
}

/// 64 clients, a pool of 64, a spread of 8, a subscriber and 4 blocking calls in flight run on
/// one engine thread, every reply reaching its caller; dropping them all ends the thread and
/// closes every descriptor.
#[test]
fn a_crowd_of_connections_runs_on_one_thread_and_leaves_nothing() {
    run_child("child_crowd", &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by a_crowd_of_connections_runs_on_one_thread_and_leaves_nothing"]
async fn child_crowd() {
    if !is_child("child_crowd") {
        return;
    }
    for kind in ServerKind::ALL {
        let server = Server::start(kind);
        for protocol in PROTOCOLS {
            let at = label(kind, Engine::Epoll, protocol);
            // The same, small: starts what the process starts once and keeps (the timer thread).
            crowd(&server.url(), protocol, [1, 1, 1, 1], None, &at).await;
            until(
                &format!("{at}: the warm-up's engine thread ends"),
                RELEASE,
                || engine_threads() == 0,
            )
            .await;
            let (tasks, open) = (threads(), fds());
            crowd(&server.url(), protocol, [64, 64, 8, 4], Some(tasks), &at).await;
            until(&format!("{at}: the engine thread ends"), RELEASE, || {
                engine_threads() == 0 && threads() == tasks
            })
            .await;
            until(
                &format!("{at}: every descriptor is closed"),
                RELEASE,
                || fds() == open,
            )
            .await;
        }
    }
}

/// With connections to two servers on the engine, killing one server fails the calls on its
/// connections (in flight and later: connection refused) and no call on the other's.
#[test]
fn killing_one_server_fails_only_its_calls() {
    run_child("child_two_servers", &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by killing_one_server_fails_only_its_calls"]
async fn child_two_servers() {
    if !is_child("child_two_servers") {
        return;
    }
    for protocol in PROTOCOLS {
        let mut doomed = Server::start(ServerKind::Redis);
        let kept = Server::start(ServerKind::Valkey);
        let at = format!("{protocol:?}");
        let short = epoll_config(&doomed.url(), protocol).connect_timeout(Duration::from_secs(1));
        let lost: Vec<Client> = (0..8).map(|_| epoll_client(&short)).collect();
        let stay: Vec<Client> = (0..8)
            .map(|_| epoll_client(&epoll_config(&kept.url(), protocol)))
            .collect();
        join_all(lost.iter().chain(&stay).map(|c| own_replies(c, &at))).await;
        // A blocking call in flight on each server when one dies.
        let blpop = |c: &Client, list: &str| {
            let (c, list) = (c.clone(), list.to_owned());
            tokio::spawn(async move {
                c.call::<Option<(String, String)>>(cmd!("BLPOP", list, 0))
                    .await
            })
        };
        let (lost_list, kept_list) = (unique("epoll:lost"), unique("epoll:kept"));
        let lost_blpop = blpop(&lost[0], &lost_list);
        let kept_blpop = blpop(&stay[0], &kept_list);
        until_blocked(&lost[1], 1, &at).await;
        until_blocked(&stay[1], 1, &at).await;

        doomed.kill();
        let err = bounded(HANG, &at, lost_blpop).await.unwrap().unwrap_err();
        assert!(matches!(err, Error::Connection { .. }), "{at}: {err:?}");
        // The doomed server's connections fail (reconnecting is refused) while the other's
        // serve, all at the same time on the same engine.
        let failing = join_all(lost.iter().map(|c| c.call::<String>(cmd!("PING"))));
        let serving = join_all(stay.iter().map(|c| own_replies(c, &at)));
        let (failed, _) = bounded(HANG, &at, async { futures::join!(failing, serving) }).await;
        for r in failed {
            let err = r.unwrap_err();
            assert!(
                matches!(err, Error::Connection { .. })
                    && err.io_error().map(std::io::Error::kind)
                        == Some(std::io::ErrorKind::ConnectionRefused),
                "{at}: {err:?}"
            );
        }
        let value = format!("{kept_list}:value");
        let _: i64 = stay[1]
            .call(cmd!("RPUSH", &kept_list, &value))
            .await
            .unwrap();
        let got = bounded(HANG, &at, kept_blpop).await.unwrap().unwrap();
        assert_eq!(got, Some((kept_list.clone(), value)), "{at}");
        join_all(stay.iter().map(|c| own_replies(c, &at))).await;
    }
}

/// A host name (resolved off the engine thread), an IP address and a unix socket path all
/// connect, on both servers and protocols.
#[test]
fn host_names_ip_addresses_and_unix_paths_connect() {
    run_child("child_addresses", &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by host_names_ip_addresses_and_unix_paths_connect"]
async fn child_addresses() {
    if !is_child("child_addresses") {
        return;
    }
    for kind in ServerKind::ALL {
        let server = Server::builder(kind).unix_socket(true).start();
        let path = server.unix_path().expect("started with a unix socket");
        let urls = [
            format!("redis://localhost:{}", server.port()),
            format!("redis://127.0.0.1:{}", server.port()),
            format!("unix://{}", path.display()),
        ];
        for protocol in PROTOCOLS {
            for url in &urls {
                let at = format!("{}/{url}", label(kind, Engine::Epoll, protocol));
                let c = epoll_client(&epoll_config(url, protocol));
                bounded(HANG, &at, own_replies(&c, &at)).await;
                assert!(c.is_connected(), "{at}");
            }
        }
    }
}
