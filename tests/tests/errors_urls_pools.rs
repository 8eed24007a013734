//! Issue #11, kinds 6, 7 and 12: errors say what happened and keep their cause (a connect that
//! does not finish is a connection error on every path, a refused one keeps its `io::Error`,
//! nothing prints a password), URLs keep every credential, and pools replace clients with age.

mod support;

use ringdis::{cmd, Client, Commands, Config, Error, Pool, Spread, Subscriber, Value};
use ringdis_tests::{FaultServer, Server};
use std::future::IntoFuture;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use support::{config, engines, label, matrix};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);

/// A loopback listener that never accepts, with its accept queue full: a new connect stays
/// unanswered (the kernel drops its SYN) until the client gives up.
struct Deaf {
    _listener: TcpListener,
    _held: Vec<TcpStream>,
    addr: SocketAddr,
}

fn deaf_listener() -> Deaf {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // Linux lets listen(2) on a listening socket change its backlog: 0 leaves room for one
    // connection in the accept queue.
    // SAFETY: listen(2) on a descriptor the listener owns and keeps open.
    let rc = unsafe { libc::listen(listener.as_raw_fd(), 0) };
    assert_eq!(rc, 0, "listen: {}", std::io::Error::last_os_error());
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..16 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(s) => held.push(s),
            // Unanswered: the queue is full.
            Err(_) => {
                return Deaf {
                    _listener: listener,
                    _held: held,
                    addr,
                }
            }
        }
    }
    panic!("the accept queue never filled");
}

/// Every way a request can wait for a connection, each on a client of its own with `config`,
/// all at once: the error each one ends with.
async fn every_path(config: &Config) -> Vec<(&'static str, Error)> {
    let new = || Client::new(config.clone()).unwrap();
    let (call, method, pipeline, transaction, callback, blocking) =
        (new(), new(), new(), new(), new(), new());
    let spread = Spread::new(config.clone(), 2).unwrap();
    let lazy = Client::new(config.clone().autoconnect(false)).unwrap();
    let sub = Subscriber::new(config.clone()).unwrap();
    let pool = Pool::builder(config.clone()).max_size(1).build();
    let (tx, rx) = std::sync::mpsc::channel();
    callback.async_call(cmd!("PING"), move |r: ringdis::Result<Value>| {
        tx.send(r).unwrap_or(())
    });
    let (a, b, c, d, e, f, g, i, j) = futures::join!(
        call.call::<()>(cmd!("PING")),
        method.incr("n").into_future(),
        pipeline
            .pipeline()
            .incr("n")
            .incr("n")
            .query::<(i64, i64)>(),
        lazy.connect(),
        blocking.call::<Value>(cmd!("BLPOP", "never", 0)),
        sub.subscribe(["ch"]),
        pool.get(),
        transaction.transaction().incr("n").query::<(i64,)>(),
        spread.call::<()>(cmd!("PING")),
    );
    let h = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("the callback ran");
    vec![
        ("call", a.unwrap_err()),
        ("generated method", b.unwrap_err()),
        ("pipeline", c.unwrap_err()),
        ("connect()", d.unwrap_err()),
        ("blocking lease", e.unwrap_err()),
        ("subscriber", f.unwrap_err()),
        ("pool", g.unwrap_err()),
        ("async_call", h.unwrap_err()),
        ("transaction", i.unwrap_err()),
        ("spread", j.unwrap_err()),
    ]
}

fn assert_connect_timed_out(errors: Vec<(&str, Error)>, addr: SocketAddr, why: &str, at: &str) {
    let want = format!("connection error: could not connect within 300 ms to {addr}: {why}");
    for (path, err) in errors {
        assert!(
            err.is_connection() && !err.is_timeout(),
            "{at}, {path}: {err:?}"
        );
        assert_eq!(err.to_string(), want, "{at}, {path}");
    }
}

/// A listener whose accept queue is full: every path fails with a connection error naming the
/// address and the limit, never `Error::Timeout` (no request was sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_that_is_never_accepted_is_a_connection_error_on_every_path() {
    let deaf = deaf_listener();
    for engine in engines() {
        for protocol in support::PROTOCOLS {
            let at = format!("{engine:?}/{protocol:?}");
            let cfg = Config::new()
                .host("127.0.0.1")
                .port(deaf.addr.port())
                .engine(engine)
                .protocol(protocol)
                .connect_timeout(CONNECT_TIMEOUT);
            let errors = every_path(&cfg).await;
            assert_connect_timed_out(
                errors,
                deaf.addr,
                "the server did not accept the connection",
                &at,
            );
        }
    }
}

/// A server that accepts and never answers the handshake (`HELLO` in RESP3, `AUTH` in RESP2):
/// the same connection error on every path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_that_gets_no_answer_is_a_connection_error_on_every_path() {
    let server = FaultServer::start(|conn| conn.stall());
    let addr: SocketAddr = format!("127.0.0.1:{}", server.port()).parse().unwrap();
    for engine in engines() {
        for protocol in support::PROTOCOLS {
            let at = format!("{engine:?}/{protocol:?}");
            let cfg = Config::from_url(&server.url())
                .unwrap()
                .password("pw")
                .engine(engine)
                .protocol(protocol)
                .connect_timeout(CONNECT_TIMEOUT);
            let errors = every_path(&cfg).await;
            assert_connect_timed_out(errors, addr, "the server did not answer the handshake", &at);
        }
    }
}

/// A call whose own deadline passes while it waits for the connection was never sent: a
/// connection error too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_times_out_before_it_was_sent_is_a_connection_error() {
    let deaf = deaf_listener();
    for engine in engines() {
        let c = Client::new(
            Config::new()
                .port(deaf.addr.port())
                .engine(engine)
                .connect_timeout(Duration::from_secs(30))
                .command_timeout(Some(Duration::from_millis(100))),
        )
        .unwrap();
        let err = c.call::<()>(cmd!("PING")).await.unwrap_err();
        assert!(err.is_connection(), "{engine:?}: {err:?}");
        assert!(
            err.to_string().contains("the request was not sent"),
            "{engine:?}: {err}"
        );
    }
}

/// A refused connect says so once and keeps the `io::Error` as its source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connect_keeps_its_io_error() {
    let port = ringdis_tests::free_port();
    for engine in engines() {
        let cfg = Config::new()
            .port(port)
            .engine(engine)
            .connect_timeout(Duration::from_millis(100));
        let by_call = Client::new(cfg.clone())
            .unwrap()
            .call::<()>(cmd!("PING"))
            .await
            .unwrap_err();
        let by_connect = Client::new(cfg.autoconnect(false))
            .unwrap()
            .connect()
            .await
            .unwrap_err();
        for err in [by_call, by_connect] {
            let text = err.to_string();
            assert!(err.is_connection(), "{engine:?}: {err:?}");
            assert_eq!(text.matches("connection error").count(), 1, "{text}");
            assert_eq!(text.matches("127.0.0.1").count(), 1, "{text}");
            assert!(
                text.starts_with(&format!(
                    "connection error: could not connect within 100 ms to 127.0.0.1:{port}: "
                )),
                "{text}"
            );
            assert_eq!(
                err.io_error().map(|e| e.kind()),
                Some(std::io::ErrorKind::ConnectionRefused),
                "{engine:?}: {err:?}"
            );
            let source = std::error::Error::source(&err).expect("a source");
            let io = source
                .downcast_ref::<std::io::Error>()
                .expect("the source is the io::Error");
            assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
            // Clones share the cause and compare equal.
            assert_eq!(err.clone(), err);
        }
    }
}

/// No `Debug` or error message shows a password: configurations, clients, pools, subscribers,
/// URL errors, and the server's refusal of a wrong one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_prints_the_password() {
    const SECRET: &str = "hunter2-secret";
    for (kind, engine) in matrix() {
        let server = Server::builder(kind).password(SECRET).start();
        let at = format!("{kind}/{engine:?}");
        let url = format!("redis://app:{SECRET}@127.0.0.1:{}/1", server.port());
        let cfg = Config::from_url(&url).unwrap().engine(engine);
        let good = config(&server, engine).password(SECRET);
        let c = Client::new(good.clone()).unwrap();
        c.call::<()>(cmd!("PING")).await.unwrap();
        let pool = Pool::builder(good.clone()).max_size(1).build();
        let builder = Pool::builder(good.clone()).max_size(1);
        let pooled = pool.get().await.unwrap();
        let sub = c.subscriber().unwrap();
        let wrong = Client::new(config(&server, engine).password(format!("{SECRET}x")))
            .unwrap()
            .call::<()>(cmd!("PING"))
            .await
            .unwrap_err();
        let bad_urls = [
            format!("redis://:{SECRET}@h?protocol=4"),
            format!("rediss://app:{SECRET}@h/x"),
            format!("redis://h?password={SECRET}&password={SECRET}"),
            format!("unix:///s?pass={SECRET}&user=a&user=b"),
            format!("redis://:{SECRET}@h:port"),
        ]
        .map(|u| Config::from_url(&u).unwrap_err());
        let texts = [
            format!("{cfg:?}"),
            format!("{cfg:#?}"),
            format!("{good:?}"),
            format!("{c:?}"),
            format!("{:?}", c.config()),
            format!("{pool:?}"),
            format!("{builder:?}"),
            format!("{pooled:?}"),
            format!("{sub:?}"),
            format!("{wrong} {wrong:?}"),
            format!("{bad_urls:?}"),
            bad_urls.iter().map(|e| format!("{e}\n")).collect(),
        ];
        for text in texts {
            assert!(!text.contains("hunter2"), "{at}: {text}");
        }
        assert!(format!("{cfg:?}").contains("<redacted>"), "{at}");
    }
}

/// A unix-socket URL with a password (in the user info, `:pw@` and `user:pw@`, or in the query)
/// really authenticates, in both protocols.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_url_with_a_password_authenticates() {
    for (kind, engine) in matrix() {
        let server = Server::builder(kind)
            .password("top secret+1")
            .acl_user("app", "app:pass")
            .unix_socket(true)
            .start();
        let path = server.unix_path().unwrap();
        let path = path.display();
        for protocol in support::PROTOCOLS {
            let at = label(kind, engine, protocol);
            let forms = [
                (format!("unix://:top%20secret%2B1@{path}"), "default", 0),
                (format!("unix://top%20secret%2B1@{path}?db=2"), "default", 2),
                (format!("unix://app:app%3Apass@{path}?db=3"), "app", 3),
                (
                    format!("redis+unix://{path}?password=top+secret%2B1&db=4"),
                    "default",
                    4,
                ),
                (format!("unix://{path}?user=app&pass=app%3Apass"), "app", 0),
                (
                    format!("valkey+unix://{path}?user=app&password=app%3Apass&protocol=resp2"),
                    "app",
                    0,
                ),
            ];
            for (url, user, db) in forms {
                let cfg = Config::from_url(&url)
                    .unwrap_or_else(|e| panic!("{at}: {url}: {e}"))
                    .engine(engine);
                // The URL's own protocol, if it names one; the matrix's otherwise.
                let cfg = if url.contains("protocol=") {
                    cfg
                } else {
                    cfg.protocol(protocol)
                };
                let c = Client::new(cfg).unwrap();
                let info: String = c
                    .call(cmd!("CLIENT", "INFO"))
                    .await
                    .unwrap_or_else(|e| panic!("{at}: {url}: {e}"));
                assert!(info.contains(&format!(" user={user} ")), "{at}: {info}");
                assert!(info.contains(&format!(" db={db} ")), "{at}: {info}");
                let flags = info
                    .split(" flags=")
                    .nth(1)
                    .and_then(|f| f.split(' ').next());
                assert!(
                    flags.is_some_and(|f| f.contains('U')),
                    "{at}: over the socket: {info}"
                );
            }
            // Without the password the server refuses, so the ones above did authenticate.
            let anon = Client::new(
                Config::from_url(&format!("unix://{path}"))
                    .unwrap()
                    .engine(engine)
                    .protocol(protocol),
            )
            .unwrap();
            let err = anon.call::<()>(cmd!("PING")).await.unwrap_err();
            assert_eq!(err.server_kind(), Some("NOAUTH"), "{at}: {err}");
        }
    }
}

/// The connections the server has that carry `name`, by `CLIENT ID`.
async fn ids_named(watcher: &Client, name: &str) -> Vec<i64> {
    let list: String = watcher.call(cmd!("CLIENT", "LIST")).await.unwrap();
    list.lines()
        .filter(|l| l.contains(&format!(" name={name} ")))
        .filter_map(|l| l.strip_prefix("id=")?.split(' ').next()?.parse().ok())
        .collect()
}

/// Polls the server until `done` holds for the connections named `name` (bounded).
async fn until_named(watcher: &Client, name: &str, what: &str, done: impl Fn(&[i64]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ids = ids_named(watcher, name).await;
        if done(&ids) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: still {ids:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `at` has passed (the condition a lifetime or idle test is about).
async fn until(at: Instant) {
    while Instant::now() < at {
        tokio::time::sleep(at - Instant::now()).await;
    }
}

/// A client past its lifetime is replaced at checkout and closed at return, and its
/// connection ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_client_past_its_lifetime_is_replaced() {
    const LIFETIME: Duration = Duration::from_millis(300);
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        let at = format!("{kind}/{engine:?}");
        let name = "pool-lifetime";
        let watcher = Client::new(config(&server, engine)).unwrap();
        let pool = Pool::builder(config(&server, engine).client_name(name))
            .max_size(1)
            .max_lifetime(Some(LIFETIME))
            .build();

        // Young: the same client comes back.
        let born = Instant::now();
        let first = pool.get().await.unwrap();
        let id1: i64 = first.call(cmd!("CLIENT", "ID")).await.unwrap();
        drop(first);
        let again = pool.get().await.unwrap();
        let id: i64 = again.call(cmd!("CLIENT", "ID")).await.unwrap();
        if born.elapsed() < LIFETIME {
            assert_eq!(id, id1, "{at}: a young client is reused");
        }
        drop(again);

        // Past its lifetime while idle: replaced at checkout (or already by the sweep).
        until(born + LIFETIME).await;
        let young = pool.get().await.unwrap();
        let born2 = Instant::now();
        let id2: i64 = young.call(cmd!("CLIENT", "ID")).await.unwrap();
        assert_ne!(id2, id1, "{at}: an old client is never handed out");
        until_named(&watcher, name, "the old connection closes", |ids| {
            !ids.contains(&id1)
        })
        .await;

        // Past its lifetime while checked out: closed when given back, not kept.
        until(born2 + LIFETIME).await;
        drop(young);
        assert_eq!(pool.idle_count(), 0, "{at}");
        until_named(
            &watcher,
            name,
            "the returned old connection closes",
            |ids| ids.is_empty(),
        )
        .await;
        let fresh = pool.get().await.unwrap();
        let id3: i64 = fresh.call(cmd!("CLIENT", "ID")).await.unwrap();
        assert!(id3 != id1 && id3 != id2, "{at}");
    }
}

/// Idle clients past the idle timeout are closed by the pool itself, with no checkout or
/// return to prompt it; the pool then makes new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_pool_clients_past_the_idle_timeout_are_closed() {
    const IDLE: Duration = Duration::from_millis(200);
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        let at = format!("{kind}/{engine:?}");
        let name = "pool-idle";
        let watcher = Client::new(config(&server, engine)).unwrap();
        let pool = Pool::builder(config(&server, engine).client_name(name))
            .max_size(2)
            .idle_timeout(Some(IDLE))
            .build();
        pool.preconnect().await.unwrap();
        let idle_since = Instant::now();
        assert_eq!(pool.idle_count(), 2, "{at}");
        assert_eq!(ids_named(&watcher, name).await.len(), 2, "{at}");
        until_named(&watcher, name, "idle connections close", |ids| {
            ids.is_empty()
        })
        .await;
        assert!(idle_since.elapsed() >= IDLE, "{at}: closed too early");
        assert_eq!(pool.idle_count(), 0, "{at}");
        assert_eq!(pool.sweep(), 0, "{at}: nothing left to sweep");

        // A client in use is not idle, however long it is out.
        let busy = pool.get().await.unwrap();
        let id: i64 = busy.call(cmd!("CLIENT", "ID")).await.unwrap();
        until(Instant::now() + 2 * IDLE).await;
        assert_eq!(busy.call::<i64>(cmd!("CLIENT", "ID")).await.unwrap(), id);
        drop(busy);
        // Given back, it is idle again, and closed again after the idle timeout.
        until_named(&watcher, name, "the returned client closes", |ids| {
            ids.is_empty()
        })
        .await;
    }
}

/// `try_get` never waits: a client while one is free, `None` when all are checked out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_get_when_every_client_is_checked_out() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        let at = format!("{kind}/{engine:?}");
        let pool = Pool::builder(config(&server, engine))
            .max_size(2)
            .checkout_timeout(None)
            .build();
        let a = pool.try_get().unwrap().expect("a free client");
        let b = pool.try_get().unwrap().expect("a second free client");
        assert!(pool.try_get().unwrap().is_none(), "{at}: all checked out");
        let id_a: i64 = a.call(cmd!("CLIENT", "ID")).await.unwrap();
        let id_b: i64 = b.call(cmd!("CLIENT", "ID")).await.unwrap();
        assert_ne!(id_a, id_b, "{at}");
        drop(a);
        let again = pool.try_get().unwrap().expect("the one given back");
        let id: i64 = again.call(cmd!("CLIENT", "ID")).await.unwrap();
        assert_eq!(id, id_a, "{at}: the idle client is reused");
        assert!(pool.try_get().unwrap().is_none(), "{at}");
        pool.close();
        assert!(
            matches!(pool.try_get().unwrap_err(), Error::Client { .. }),
            "{at}"
        );
    }
}
