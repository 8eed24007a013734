//! The epoll engine (#12): one connection's failure is no other's; host names, IP addresses and
//! unix paths connect without stalling the engine. (One thread and one poll driving a crowd of
//! connections, and releasing it, is `engines.rs`'s crowd test, run on every engine.)
//!
//! Every case runs in a child process of this binary: the engine is process-wide, so thread and
//! descriptor counts are only meaningful where no other test runs, and the child is free of a
//! `RINGDIS_ENGINE` override that would move the connections to another engine.

mod support;

use futures::future::join_all;
use ringdis::{cmd, Client, Config, Engine, Error, Protocol};
use ringdis_tests::{unique, Server, ServerKind};
use std::time::Duration;
use support::{bounded, is_child, label, run_child, until_blocked, PROTOCOLS};

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
        // A connection whose end the engine has not read yet when its PING goes out fails that
        // call with the close it then reads; the others are refused on reconnecting.
        use std::io::ErrorKind::{BrokenPipe, ConnectionRefused, ConnectionReset, UnexpectedEof};
        for r in failed {
            let err = r.unwrap_err();
            let kind = err.io_error().map(std::io::Error::kind);
            assert!(
                matches!(err, Error::Connection { .. })
                    && matches!(
                        kind,
                        Some(ConnectionRefused | UnexpectedEof | ConnectionReset | BrokenPipe)
                    ),
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
