//! Issue #12, the ring engine: single-shot receives serve many links, host names resolve off
//! the engine thread, attaching while the engine exits loses nothing, and one server's failure
//! touches only its own calls. (One thread and one io_uring ring driving a crowd of connections,
//! and releasing it, is `engines.rs`'s crowd test, run on every engine.)

mod support;

use futures::future::join_all;
use ringdis::{cmd, Client, Config, Engine, Error, Protocol};
use ringdis_tests::{unique, Server, ServerKind};
use std::time::Duration;
use support::{config, is_child, label, run_child, PROTOCOLS};

const RING: Engine = Engine::IoUring;

/// Whether this machine gives out io_uring rings at all (a sandbox may refuse them; the epoll
/// engine is used there and nothing here applies).
fn has_io_uring() -> bool {
    match Client::new(Config::new().engine(RING)) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("skipped: no io_uring here ({e})");
            false
        }
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Two servers on one engine: killing one fails only the calls to it (a connection error or
/// a timeout, never a hang), the other server's callers keep getting their own replies.
#[tokio::test(flavor = "current_thread")]
async fn killing_one_server_fails_only_its_calls() {
    if !has_io_uring() {
        return;
    }
    for (doomed_kind, kept_kind) in [
        (ServerKind::Redis, ServerKind::Valkey),
        (ServerKind::Valkey, ServerKind::Redis),
    ] {
        let kept = Server::start(kept_kind);
        for protocol in PROTOCOLS {
            let at = format!("{doomed_kind} killed, {kept_kind} kept, {protocol:?}");
            let mut doomed = Server::start(doomed_kind);
            let cfg = |s: &Server| {
                config(s, RING)
                    .protocol(protocol)
                    .connect_timeout(Duration::from_secs(1))
                    .command_timeout(Some(Duration::from_secs(5)))
            };
            let on_doomed: Vec<Client> =
                (0..8).map(|_| Client::new(cfg(&doomed)).unwrap()).collect();
            let on_kept: Vec<Client> = (0..8).map(|_| Client::new(cfg(&kept)).unwrap()).collect();
            let prefix = unique("ring-kill");
            let (a, b) = futures::join!(
                round(&on_doomed, &prefix, "a"),
                round(&on_kept, &prefix, "a")
            );
            for r in a.into_iter().chain(b) {
                let (key, got) = r.unwrap_or_else(|e| panic!("{at}: before the kill: {e}"));
                assert_eq!(key, got, "{at}");
            }
            doomed.kill();
            let (lost, fine) = futures::join!(
                round(&on_doomed, &prefix, "b"),
                round(&on_kept, &prefix, "b")
            );
            for r in fine {
                let (key, got) = r.unwrap_or_else(|e| panic!("{at}: the other server's call: {e}"));
                assert_eq!(key, got, "{at}");
            }
            for r in lost {
                match r {
                    Err(Error::Connection { .. }) | Err(Error::Timeout) => {}
                    other => panic!("{at}: a call to the killed server: {other:?}"),
                }
            }
        }
    }
}

/// SET then GET of a key of its own on each client.
async fn round(
    clients: &[Client],
    prefix: &str,
    tag: &str,
) -> Vec<Result<(String, String), Error>> {
    join_all(clients.iter().enumerate().map(|(i, c)| {
        let key = format!("{prefix}:{tag}:{i}");
        async move {
            c.call::<()>(cmd!("SET", &key, &key)).await?;
            let got: String = c.call(cmd!("GET", &key)).await?;
            Ok((key, got))
        }
    }))
    .await
}

/// Without a provided-buffer ring (`RINGDIS_URING_NO_BUFRING=1`: single-shot receives into
/// each socket's own buffer, an eventfd read per wake-up) many links still each get their own
/// replies, large ones included.
#[test]
fn single_shot_receives_serve_many_links() {
    run_child(
        "child_single_shot_many",
        &[("RINGDIS_URING_NO_BUFRING", "1")],
    );
}

#[test]
#[ignore = "run by single_shot_receives_serve_many_links in a child process"]
fn child_single_shot_many() {
    if !is_child("child_single_shot_many") || !has_io_uring() {
        return;
    }
    let rt = current_thread();
    for kind in ServerKind::ALL {
        let server = Server::start(kind);
        for protocol in PROTOCOLS {
            let at = label(kind, RING, protocol);
            rt.block_on(async {
                let clients: Vec<Client> = (0..64)
                    .map(|_| Client::new(config(&server, RING).protocol(protocol)).unwrap())
                    .collect();
                let prefix = unique("ring-single");
                let replies = join_all(clients.iter().enumerate().map(|(i, c)| {
                    let key = format!("{prefix}:{i}");
                    // Every eighth value spans many receives (200 KiB).
                    let value = if i % 8 == 0 {
                        key.repeat(200 * 1024 / key.len())
                    } else {
                        key.clone()
                    };
                    async move {
                        c.call::<()>(cmd!("SET", &key, &value)).await.unwrap();
                        let got: String = c.call(cmd!("GET", &key)).await.unwrap();
                        (value, got)
                    }
                }))
                .await;
                for (want, got) in replies {
                    assert!(want == got, "{at}: a reply reached the wrong caller");
                }
            });
        }
    }
}

/// A host name (not an IP literal) is looked up off the engine thread and connects.
#[tokio::test(flavor = "current_thread")]
async fn host_names_resolve_off_the_engine_thread() {
    if !has_io_uring() {
        return;
    }
    for kind in ServerKind::ALL {
        let server = Server::start(kind);
        for protocol in PROTOCOLS {
            let at = label(kind, RING, protocol);
            let by_name = Client::new(
                Config::new()
                    .host("localhost")
                    .port(server.port())
                    .protocol(protocol)
                    .engine(RING),
            )
            .unwrap();
            let key = unique("ring-name");
            by_name.call::<()>(cmd!("SET", &key, "v")).await.unwrap();
            let got: String = by_name.call(cmd!("GET", &key)).await.unwrap();
            assert_eq!(got, "v", "{at}");
        }
    }
}

/// A host name that does not resolve fails its own client's call with a connection error
/// (within the connect timeout), while a client on another link is served meanwhile.
#[tokio::test(flavor = "current_thread")]
async fn an_unknown_host_fails_only_its_own_calls() {
    if !has_io_uring() {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    let fine = Client::new(config(&server, RING)).unwrap();
    let key = unique("ring-unknown");
    fine.call::<()>(cmd!("SET", &key, "v")).await.unwrap();
    let nowhere = Client::new(
        Config::new()
            .host("ringdis-no-such-host.invalid")
            .connect_timeout(Duration::from_secs(1))
            .engine(RING),
    )
    .unwrap();
    let (lost, got) = futures::join!(
        nowhere.call::<()>(cmd!("PING")),
        fine.call::<String>(cmd!("GET", &key))
    );
    assert_eq!(got.unwrap(), "v");
    match lost {
        Err(Error::Connection { .. }) | Err(Error::Timeout) => {}
        other => panic!("a call to an unknown host: {other:?}"),
    }
}

/// Clients made and dropped from several threads at once, so the engine thread keeps ending
/// (its last link finished) while new clients attach: every attach lands on a running engine
/// (the old one or a new one) and every call is answered.
#[test]
fn attaching_while_the_engine_exits_loses_nothing() {
    if !has_io_uring() {
        return;
    }
    let server = Server::start(ServerKind::Redis);
    let cfg = config(&server, RING).protocol(Protocol::Resp2);
    std::thread::scope(|s| {
        for t in 0..4 {
            let cfg = cfg.clone();
            s.spawn(move || {
                for i in 0..25 {
                    let c = Client::new(cfg.clone()).unwrap();
                    let key = unique(&format!("ring-race:{t}:{i}"));
                    let got: String = futures::executor::block_on(async {
                        c.call::<()>(cmd!("SET", &key, &key)).await.unwrap();
                        c.call(cmd!("GET", &key)).await.unwrap()
                    });
                    assert_eq!(got, key);
                }
            });
        }
    });
}
