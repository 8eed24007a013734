//! Issue #13, "conventions and friction": URLs read as redis-rs reads them (and really connect
//! that way), the typed `HSET` takes a `#[derive(ToRedis)]` struct, `async_call` needs no type
//! annotation, the documented pipeline statements raise no `must_use` warning (this file denies
//! it), errors say whether a call may simply be sent again, `Pool::try_get` never waits, and
//! decode paths read the same in both protocols.
#![deny(unused_must_use)]

mod support;

use ringdis::{cmd, Client, Commands, Config, Error, FromRedis, Pool, Protocol, ToRedis, Value};
use ringdis_tests::{FaultServer, Server, ServerKind};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::{config, engines, label, matrix, PROTOCOLS};

/// What the server says about the connection a client's calls run on: `CLIENT INFO`'s
/// `name=value` fields.
async fn client_info(c: &Client) -> HashMap<String, String> {
    let info: String = c.call(cmd!("CLIENT", "INFO")).await.unwrap();
    info.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Every URL form connects where it says, as the user it names, to the database and in the
/// protocol it asks for; an unknown parameter is ignored (only warned about).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_url_form_connects_as_it_reads() {
    const PASS: &str = "s3cret+/x";
    const ENC: &str = "s3cret%2B%2Fx";
    for kind in ServerKind::ALL {
        let server = Server::builder(kind)
            .password(PASS)
            .acl_user("app", "app-pw")
            .unix_socket(true)
            .start();
        let v6 = Server::builder(kind).bind("::1").password(PASS).start();
        let (port, v6_port) = (server.port(), v6.port());
        let sock = server.unix_path().unwrap();
        let sock = sock.display();
        // (URL, user, db, RESP version)
        let forms = [
            (format!("redis://:{ENC}@127.0.0.1:{port}"), "default", 0, 3),
            (
                format!("redis://app:app-pw@127.0.0.1:{port}/3?protocol=resp2"),
                "app",
                3,
                2,
            ),
            (
                format!("valkey://app:app-pw@127.0.0.1:{port}/4/?protocol=RESP3"),
                "app",
                4,
                3,
            ),
            (
                format!("redis://127.0.0.1:{port}?password={ENC}&db=5&protocol=2"),
                "default",
                5,
                2,
            ),
            // Written for another client: the unknown parameters are ignored.
            (
                format!("redis://:{ENC}@127.0.0.1:{port}/6?client_name=x&timeout=5&insecure"),
                "default",
                6,
                3,
            ),
            (format!("redis://:{ENC}@[::1]:{v6_port}/7"), "default", 7, 3),
            // redis-rs's unix form: credentials and db in the query.
            (
                format!("unix://{sock}?db=8&user=app&pass=app-pw&protocol=resp2"),
                "app",
                8,
                2,
            ),
            (format!("redis+unix://app:app-pw@{sock}?db=9"), "app", 9, 3),
            (format!("unix://:{ENC}@{sock}"), "default", 0, 3),
            (
                format!("valkey+unix://{sock}?password={ENC}&db=1"),
                "default",
                1,
                3,
            ),
        ];
        for engine in engines() {
            for (url, user, db, resp) in &forms {
                let at = format!("{kind}/{engine:?} {url}");
                let c = Client::new(Config::from_url(url).unwrap().engine(engine)).unwrap();
                let info = client_info(&c).await;
                assert_eq!(info["user"], *user, "{at}");
                assert_eq!(info["db"], db.to_string(), "{at}");
                assert_eq!(info["resp"], resp.to_string(), "{at}");
                // The socket is the one the URL names (Redis shows a unix peer as
                // `/path:0`, Valkey as `[/path:0]:0`).
                let addr = &info["addr"];
                let unix = url.contains("unix://");
                assert_eq!(addr.contains("server.sock"), unix, "{at}: {addr}");
                assert_eq!(addr.contains("::1"), url.contains("[::1]"), "{at}: {addr}");
            }
        }
    }
}

#[derive(ToRedis, FromRedis, Debug, PartialEq, Clone)]
struct User {
    name: String,
    born: i64,
    active: bool,
    email: Option<String>,
}

/// `hset_multiple` writes a derived struct's fields, on a client and in a pipeline, and
/// `HGETALL` reads it back; `hset(key, field, value)` keeps working beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typed_hset_takes_a_derived_struct() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        for protocol in PROTOCOLS {
            let at = label(kind, engine, protocol);
            let c = Client::new(config(&server, engine).protocol(protocol)).unwrap();
            c.call::<()>(cmd!("FLUSHDB")).await.unwrap();
            let ada = User {
                name: "ada".into(),
                born: 1815,
                active: true,
                email: None,
            };
            let added = c.hset_multiple("user:1", &ada).await.unwrap();
            assert_eq!(added, 3, "{at}: three fields written, email left out");
            let back: User = c.hgetall("user:1").decode().await.unwrap();
            assert_eq!(back, ada, "{at}");

            // More fields after the struct, and the one-pair form.
            let added = c
                .hset_multiple("user:1", &ada)
                .and("email", "ada@example.org")
                .await
                .unwrap();
            assert_eq!(added, 1, "{at}: only email is new");
            assert_eq!(c.hset("user:1", "born", 1816).await.unwrap(), 0, "{at}");
            let back: User = c.hgetall("user:1").decode().await.unwrap();
            assert_eq!(back.email.as_deref(), Some("ada@example.org"), "{at}");
            assert_eq!(back.born, 1816, "{at}");

            // A map and pairs; a pipeline, in the statements the docs show (no warning here:
            // this file denies unused_must_use).
            let bob = User {
                name: "bob".into(),
                born: 1900,
                active: false,
                email: Some("b@x".into()),
            };
            let mut p = c.pipeline();
            p.hset_multiple("user:2", &bob).send();
            p.hset_multiple("user:3", HashMap::from([("name", "eve"), ("born", "1")]))
                .hset_multiple("user:3", [("active", "1")])
                .send();
            p.hgetall("user:2").hgetall("user:3").send();
            let (n2, n3a, n3b, u2, u3): (i64, i64, i64, User, User) = p.query().await.unwrap();
            assert_eq!((n2, n3a, n3b), (4, 2, 1), "{at}");
            assert_eq!(u2, bob, "{at}");
            assert_eq!(
                u3,
                User {
                    name: "eve".into(),
                    born: 1,
                    active: true,
                    email: None
                },
                "{at}"
            );
        }
    }
}

/// `async_call` takes a closure as is, or `None` with no type annotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_call_needs_no_annotation() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        let at = format!("{kind}/{engine:?}");
        let c = Client::new(config(&server, engine)).unwrap();
        c.async_call(cmd!("SET", "fire", "forgotten"), None);
        let (tx, rx) = std::sync::mpsc::channel();
        c.async_call(cmd!("INCR", "n"), move |reply| {
            let _ = tx.send(reply);
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        let reply = loop {
            match rx.try_recv() {
                Ok(reply) => break reply,
                Err(_) if Instant::now() < deadline => tokio::task::yield_now().await,
                Err(e) => panic!("{at}: no reply: {e}"),
            }
        };
        assert_eq!(reply.unwrap(), Value::Int(1), "{at}");
        // Sent before the INCR on the same connection: in by now.
        let got: Option<String> = c.get("fire").decode().await.unwrap();
        assert_eq!(got.as_deref(), Some("forgotten"), "{at}");
    }
}

/// `try_get` never waits: `Ok(Some)` while a client is free, `Ok(None)` when all are checked
/// out, `Err(Error::Client)` once the pool is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_get_never_waits() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        let at = format!("{kind}/{engine:?}");
        let pool = Pool::builder(config(&server, engine)).max_size(1).build();
        let first = pool.try_get().unwrap().expect("a free client");
        let pong: String = first.call(cmd!("PING")).await.unwrap();
        assert_eq!(pong, "PONG", "{at}");
        let started = Instant::now();
        assert!(pool.try_get().unwrap().is_none(), "{at}: all checked out");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{at}: did not wait"
        );
        drop(first);
        assert!(pool.try_get().unwrap().is_some(), "{at}: given back");
        pool.close();
        let e = pool.try_get().unwrap_err();
        assert!(e.is_client() && !e.is_retryable(), "{at}: {e:?}");
    }
}

/// The error kinds a caller meets, classified: `is_client` for refusals, `is_retryable` only
/// where sending again cannot run the command twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_whether_a_call_may_be_sent_again() {
    for engine in engines() {
        let at = format!("{engine:?}");
        // Nothing listens: the request never left the client.
        let dead = FaultServer::start(|_| {});
        let port = dead.port();
        drop(dead);
        let c = Client::new(
            Config::new()
                .port(port)
                .engine(engine)
                .connect_timeout(Duration::from_millis(200)),
        )
        .unwrap();
        let e = c.call::<()>(cmd!("INCR", "n")).await.unwrap_err();
        assert!(
            matches!(e, Error::Connection { sent: false, .. }) && e.is_retryable(),
            "{at}: {e:?}"
        );
        // Autoconnect off, not connected.
        let c = Client::new(
            Config::new()
                .port(port)
                .engine(engine)
                .autoconnect(false)
                .connect_timeout(Duration::from_millis(200)),
        )
        .unwrap();
        let e = c.call::<()>(cmd!("INCR", "n")).await.unwrap_err();
        assert!(e.is_retryable() && !e.is_client(), "{at}: {e:?}");
        // A connect that fails sent no command either.
        let e = c.connect().await.unwrap_err();
        assert!(
            matches!(e, Error::Connection { sent: false, .. }) && e.is_retryable(),
            "{at}: {e:?}"
        );

        // Written, then the connection drops: it may have run.
        let lost = FaultServer::start(|mut conn| {
            if conn.handshake_resp2().is_some() {
                drop(conn);
            }
        });
        let c = Client::new(
            Config::from_url(&lost.url())
                .unwrap()
                .engine(engine)
                .protocol(Protocol::Resp2),
        )
        .unwrap();
        let e = c.call::<()>(cmd!("INCR", "n")).await.unwrap_err();
        assert!(
            matches!(e, Error::Connection { sent: true, .. }) && !e.is_retryable(),
            "{at}: {e:?}"
        );
        // Written, no reply in time: a timeout, not retryable either.
        let (release, stalled) = std::sync::mpsc::channel::<()>();
        let silent = FaultServer::start(move |mut conn| {
            if conn.handshake_resp2().is_some() {
                let _ = stalled.recv_timeout(Duration::from_secs(10));
            }
        });
        let c = Client::new(
            Config::from_url(&silent.url())
                .unwrap()
                .engine(engine)
                .protocol(Protocol::Resp2)
                .command_timeout(Some(Duration::from_millis(100))),
        )
        .unwrap();
        let e = c.call::<()>(cmd!("INCR", "n")).await.unwrap_err();
        assert!(e.is_timeout() && !e.is_retryable(), "{at}: {e:?}");
        drop(release);

        // Refused before sending.
        let e = c.pipeline().query::<()>().await.unwrap_err();
        assert!(e.is_client() && !e.is_retryable(), "{at}: {e:?}");
    }

    // The server refuses for a passing reason (BUSY while a script runs past its limit):
    // retryable; a wrong type is not.
    for kind in ServerKind::ALL {
        let server = Server::builder(kind).arg("lua-time-limit", "50").start();
        let c = Client::new(config(&server, ringdis::Engine::Epoll)).unwrap();
        c.set("s", "x").await.unwrap();
        let e = c.call::<i64>(cmd!("INCR", "s")).await.unwrap_err();
        assert!(!e.is_retryable() && !e.is_client(), "{kind}: {e:?}");

        let busy = Client::new(config(&server, ringdis::Engine::Epoll)).unwrap();
        let script = busy.call::<Value>(cmd!("EVAL", "while true do end", 0));
        let script = tokio::spawn(script);
        let deadline = Instant::now() + Duration::from_secs(10);
        let e = loop {
            match c.call::<Option<String>>(cmd!("GET", "s")).await {
                Err(e) if e.server_kind() == Some("BUSY") => break e,
                _ if Instant::now() < deadline => tokio::task::yield_now().await,
                other => panic!("{kind}: never BUSY: {other:?}"),
            }
        };
        assert!(e.is_retryable(), "{kind}: {e:?}");
        c.call::<()>(cmd!("SCRIPT", "KILL")).await.unwrap();
        let _ = script.await;
        let pong: String = c.call(cmd!("PING")).await.unwrap();
        assert_eq!(pong, "PONG", "{kind}: once the script is killed");
    }
}

#[derive(FromRedis, Debug)]
#[allow(dead_code)]
struct Sample(String, i64);

/// A decode error's path is the same whichever protocol delivered the reply: a RESP2 flat
/// `HGETALL` and a RESP3 map give `[2].Sample[1]` for the third row of a `Vec<Sample>`, and
/// `[c]` for the value under `c` of a map.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_paths_are_the_same_in_both_protocols() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        for protocol in PROTOCOLS {
            let at = label(kind, engine, protocol);
            let c = Client::new(config(&server, engine).protocol(protocol)).unwrap();
            c.del("h").await.unwrap();
            c.hset("h", "a", 1)
                .and("b", 2)
                .and("c", "hot")
                .await
                .unwrap();
            let path = |e: Error| match e {
                Error::Decode { path, .. } => path,
                other => panic!("{at}: {other:?}"),
            };
            let e = c.hgetall("h").decode::<Vec<Sample>>().await.unwrap_err();
            assert_eq!(path(e), "[2].Sample[1]", "{at}");
            let e = c
                .hgetall("h")
                .decode::<HashMap<String, i64>>()
                .await
                .unwrap_err();
            assert_eq!(path(e), "[c]", "{at}");
            let e = c
                .hgetall("h")
                .decode::<Vec<(String, i64)>>()
                .await
                .unwrap_err();
            assert_eq!(path(e), "[2][1]", "{at}");
        }
    }
}
