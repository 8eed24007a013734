//! A Sentinel-managed primary (`Config::sentinel`, `redis+sentinel://`): the client asks the
//! sentinels where the primary is, checks it with `ROLE`, and follows a failover.
//!
//! One deployment per server kind (a primary, a replica, three sentinels: `SentinelSetup`),
//! shared by every check of that kind, run one after the other, the failover last; every
//! protocol and engine is a client on it at once.

mod support;

use ringdis::{cmd, Client, Commands, Config, Engine, Error, Protocol, Value};
use ringdis_tests::{unique, FaultConn, FaultServer, SentinelSetup, ServerKind, MASTER};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::runtime;
use support::{engines, PROTOCOLS};

/// The command timeout of the clients under test.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How much later than its timeout a call may end (a loaded 2-core machine).
const SLACK: Duration = Duration::from_millis(1500);

/// Every (protocol, engine) cell.
fn cells() -> Vec<(Protocol, Engine)> {
    PROTOCOLS
        .into_iter()
        .flat_map(|p| engines().into_iter().map(move |e| (p, e)))
        .collect()
}

fn sentinel_config(setup: &SentinelSetup, protocol: Protocol, engine: Engine) -> Config {
    Config::sentinel(MASTER, setup.sentinel_addrs())
        .protocol(protocol)
        .engine(engine)
        .command_timeout(Some(COMMAND_TIMEOUT))
        .connect_timeout(Duration::from_secs(3))
}

/// The TCP port of the server `client` is connected to (`INFO server`).
async fn server_port(client: &Client) -> ringdis::Result<u16> {
    let info: String = client.call(cmd!("INFO", "server")).await?;
    let port = info
        .lines()
        .find_map(|l| l.strip_prefix("tcp_port:"))
        .and_then(|p| p.trim().parse().ok());
    port.ok_or_else(|| Error::client("no tcp_port in INFO"))
}

/// The first element of `ROLE` on the server `client` is connected to.
async fn role(client: &Client) -> ringdis::Result<String> {
    let role: Value = client.call(cmd!("ROLE")).await?;
    match role {
        Value::Array(items) => items
            .first()
            .and_then(|r| r.as_bytes())
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .ok_or_else(|| Error::client("empty ROLE")),
        other => Err(Error::client(format!("ROLE gave {other:?}"))),
    }
}

#[test]
fn redis_resolve_use_and_follow_a_failover_under_load() {
    suite(ServerKind::Redis);
}

#[test]
fn valkey_resolve_use_and_follow_a_failover_under_load() {
    suite(ServerKind::Valkey);
}

fn suite(kind: ServerKind) {
    let mut setup = SentinelSetup::start(kind);
    let rt = runtime();
    rt.block_on(resolves_and_serves_every_cell(&setup));
    rt.block_on(dropping_the_client_closes_its_sentinel_connections(&setup));
    rt.block_on(a_pool_and_a_spread_share_one_watcher(&setup));
    rt.block_on(replica_reads_go_to_the_replica_and_writes_never(&setup));
    rt.block_on(the_url_form_reaches_the_primary(&setup));
    rt.block_on(a_wrong_master_name_fails_in_time_naming_it(&setup));
    rt.block_on(a_replica_named_as_primary_is_never_used(&setup));
    failover_under_load(&mut setup, &rt);
}

/// Typed calls, a pipeline and pub/sub go to the primary Sentinel names, on every protocol and
/// engine.
async fn resolves_and_serves_every_cell(setup: &SentinelSetup) {
    let primary = setup.first_primary().port();
    for (protocol, engine) in cells() {
        let at = format!("{}/{protocol:?}/{engine:?}", setup.kind());
        let client = Client::new(sentinel_config(setup, protocol, engine)).expect("client");
        assert_eq!(client.engine(), engine, "{at}");
        let key = unique("sentinel:use");
        client
            .set(&key, "v1")
            .await
            .unwrap_or_else(|e| panic!("{at}: {e}"));
        let got: Option<String> = client.get(&key).decode().await.unwrap();
        assert_eq!(got.as_deref(), Some("v1"), "{at}");
        assert_eq!(server_port(&client).await.unwrap(), primary, "{at}");
        assert_eq!(role(&client).await.unwrap(), "master", "{at}");
        let mut p = client.pipeline();
        p.add(cmd!("INCR", &key_n(&key)))
            .add(cmd!("INCR", &key_n(&key)))
            .add(cmd!("GET", &key));
        let (a, b, v): (i64, i64, String) = p.query().await.unwrap();
        assert_eq!((a, b, v.as_str()), (1, 2, "v1"), "{at}");
        // A subscriber made from the client finds the primary too.
        let mut sub = client.subscriber().unwrap();
        let channel = unique("sentinel:news");
        sub.subscribe([&channel]).await.unwrap();
        let n: i64 = client
            .call(cmd!("PUBLISH", &channel, "hello"))
            .await
            .unwrap();
        assert_eq!(n, 1, "{at}: the subscriber is on the primary");
        let m = sub
            .next_message(Some(Duration::from_secs(5)))
            .await
            .unwrap()
            .expect("a message");
        assert_eq!(m.payload_str(), Some("hello"), "{at}");
    }
}

/// How many connections named `name` the server on `port` has (`CLIENT LIST`).
fn named_connections(port: u16, name: &str) -> usize {
    let mut raw = ringdis_tests::RawConn::connect(port, false);
    let list = match raw.call(&cmd!("CLIENT", "LIST")) {
        Value::Bulk(b) | Value::Verbatim { text: b, .. } => {
            String::from_utf8_lossy(&b).into_owned()
        }
        other => panic!("CLIENT LIST gave {other:?}"),
    };
    let needle = format!(" name={name} ");
    list.lines().filter(|l| l.contains(&needle)).count()
}

/// The client's connections to the sentinels (a question connection, a `+switch-master`
/// subscriber on each) close once the client and everything made from it is dropped.
async fn dropping_the_client_closes_its_sentinel_connections(setup: &SentinelSetup) {
    let sentinel_ports: Vec<u16> = setup.sentinel_addrs().iter().map(|(_, p)| *p).collect();
    for engine in engines() {
        let name = unique("sentinel-drop").replace(':', "-");
        let config = sentinel_config(setup, Protocol::Resp3, engine).client_name(&name);
        let client = Client::new(config).unwrap();
        let sub = client.subscriber().unwrap();
        sub.subscribe(["sentinel:drop"]).await.unwrap();
        client.ping().await.unwrap();
        let count = || -> usize {
            sentinel_ports
                .iter()
                .map(|&p| named_connections(p, &name))
                .sum()
        };
        // A subscriber on every sentinel, and one that was asked.
        wait_for(Duration::from_secs(5), "the sentinel connections", || {
            count() > sentinel_ports.len()
        });
        drop(sub);
        drop(client);
        wait_for(
            Duration::from_secs(5),
            "the sentinel connections close after the client is dropped",
            || count() == 0,
        );
    }
}

/// The clients of a pool (and of a `Spread`) share one sentinel watcher: the sentinels see one
/// question connection and one subscriber each, however many clients there are.
async fn a_pool_and_a_spread_share_one_watcher(setup: &SentinelSetup) {
    let sentinel_ports: Vec<u16> = setup.sentinel_addrs().iter().map(|(_, p)| *p).collect();
    let primary = setup.first_primary().port();
    let count = |name: &str| -> usize {
        sentinel_ports
            .iter()
            .map(|&p| named_connections(p, name))
            .sum()
    };
    let name = unique("sentinel-pool").replace(':', "-");
    let config = sentinel_config(setup, Protocol::Resp3, Engine::Epoll).client_name(&name);
    let pool = ringdis::Pool::new(config, 4);
    let members = futures::future::join_all((0..4).map(|_| pool.get())).await;
    for m in &members {
        let m = m.as_ref().expect("a pool client");
        assert_eq!(server_port(m).await.unwrap(), primary);
    }
    wait_for(
        Duration::from_secs(5),
        "the pool's sentinel connections",
        || count(&name) == sentinel_ports.len() + 1,
    );
    assert_eq!(named_connections(primary, &name), 4, "four pool clients");

    let name = unique("sentinel-spread").replace(':', "-");
    let config = sentinel_config(setup, Protocol::Resp2, Engine::Epoll).client_name(&name);
    let spread = ringdis::Spread::new(config, 3).unwrap();
    for c in spread.clients() {
        assert_eq!(server_port(c).await.unwrap(), primary);
    }
    wait_for(
        Duration::from_secs(5),
        "the spread's sentinel connections",
        || count(&name) == sentinel_ports.len() + 1,
    );
}

/// With `sentinel_replica_reads`, read-only calls go to the replica (once its connection is
/// up; to the primary until then), everything else to the primary: writes never fail with
/// `READONLY`, `ROLE` (not flagged read-only) answers `master`, and the replica counts the
/// reads.
async fn replica_reads_go_to_the_replica_and_writes_never(setup: &SentinelSetup) {
    let replica = setup.first_replica().port();
    for (protocol, engine) in cells() {
        let at = format!("{}/{protocol:?}/{engine:?}", setup.kind());
        let config = sentinel_config(setup, protocol, engine).sentinel_replica_reads(true);
        let client = Client::new(config).unwrap();
        let key = unique("sentinel:replica");
        client
            .set(&key, "r")
            .await
            .unwrap_or_else(|e| panic!("{at}: {e}"));
        assert_eq!(role(&client).await.unwrap(), "master", "{at}");
        // Reads go to the primary until the replica connection is up, then to the replica,
        // which sees the write once replicated.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let before = calls_on(replica, "get");
            let got: Option<String> = client.get(&key).decode().await.unwrap();
            if got.as_deref() == Some("r") && calls_on(replica, "get") > before {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{at}: no read reached the replica"
            );
        }
        let before = calls_on(replica, "get");
        for _ in 0..20 {
            let v: Option<String> = client.get(&key).decode().await.unwrap();
            assert_eq!(v.as_deref(), Some("r"), "{at}");
            // A write right after a read: on the primary (never READONLY).
            client
                .set(&key, "r")
                .await
                .unwrap_or_else(|e| panic!("{at}: {e}"));
        }
        assert!(
            calls_on(replica, "get") >= before + 20,
            "{at}: the reads went to the replica"
        );
    }
}

fn key_n(key: &str) -> String {
    format!("{key}:n")
}

/// `redis+sentinel://s1,s2,s3/mymaster/3` reaches the primary's database 3.
async fn the_url_form_reaches_the_primary(setup: &SentinelSetup) {
    let url = format!("{}/3?protocol=resp2", setup.url());
    let config = Config::from_url(&url).unwrap();
    assert_eq!(config.sentinel_master(), Some(MASTER));
    assert_eq!(config.sentinels().len(), 3);
    let client = Client::new(config).unwrap();
    let key = unique("sentinel:url");
    client.set(&key, "x").await.unwrap();
    assert_eq!(
        server_port(&client).await.unwrap(),
        setup.first_primary().port()
    );
    let mut raw = ringdis_tests::RawConn::connect(setup.first_primary().port(), false);
    raw.call(&cmd!("SELECT", 3));
    assert_eq!(
        raw.call(&cmd!("GET", &key)),
        Value::Bulk("x".into()),
        "written to db 3"
    );
}

/// A master name no sentinel monitors: every sentinel answers null, and calls fail within the
/// connect timeout with `Error::Connection` naming the master and the sentinels' answers.
async fn a_wrong_master_name_fails_in_time_naming_it(setup: &SentinelSetup) {
    for engine in engines() {
        let config = Config::sentinel("nosuchmaster", setup.sentinel_addrs())
            .engine(engine)
            .connect_timeout(Duration::from_secs(2))
            .command_timeout(Some(Duration::from_secs(10)));
        let client = Client::new(config).unwrap();
        let started = Instant::now();
        let r = client.set("k", "v").await.map(drop);
        let took = started.elapsed();
        let e = r.expect_err("no primary");
        assert!(e.is_connection(), "{engine:?}: {e:?}");
        let text = e.to_string();
        assert!(text.contains("nosuchmaster"), "{engine:?}: {text}");
        assert!(text.contains("null"), "{engine:?}: {text}");
        let (host, port) = &setup.sentinel_addrs()[0];
        assert!(
            text.contains(&format!("{host}:{port}")),
            "{engine:?}: {text}"
        );
        assert!(
            took < Duration::from_secs(2) + SLACK,
            "{engine:?}: took {took:?}"
        );
    }
}

/// A fake sentinel (one thread per connection) that names `port` as the primary of every
/// master and confirms subscriptions.
fn fake_sentinel(port: u16) -> FaultServer {
    FaultServer::start(move |conn| {
        std::thread::spawn(move || serve_switching_sentinel(conn, port, None));
    })
}

/// A fake sentinel that names `port` as the primary and, once a subscriber is there, sends it
/// each `+switch-master` payload `switches` yields.
type Switches = Arc<Mutex<std::sync::mpsc::Receiver<String>>>;

fn serve_switching_sentinel(conn: FaultConn, port: u16, switches: Option<Switches>) {
    serve_sentinel(conn, Some(port), None, switches);
}

/// A fake sentinel: names `port` as the primary (null for `None`), counts the questions in
/// `asked`, sends `switches` to a subscriber.
fn serve_sentinel(
    mut conn: FaultConn,
    port: Option<u16>,
    asked: Option<Arc<std::sync::atomic::AtomicUsize>>,
    switches: Option<Switches>,
) {
    while let Some(cmd) = conn.read_command() {
        let name = String::from_utf8_lossy(&cmd[0]).to_ascii_uppercase();
        match name.as_str() {
            "HELLO" => conn.write(b"-ERR unknown command 'HELLO'\r\n"),
            "SENTINEL" => {
                if let Some(asked) = &asked {
                    asked.fetch_add(1, Ordering::AcqRel);
                }
                let Some(port) = port else {
                    conn.write(b"$-1\r\n");
                    continue;
                };
                let port = port.to_string();
                let reply = format!("*2\r\n$9\r\n127.0.0.1\r\n${}\r\n{port}\r\n", port.len());
                conn.write(reply.as_bytes());
            }
            "SUBSCRIBE" => {
                let ch = &cmd[1];
                let mut reply = format!("*3\r\n$9\r\nsubscribe\r\n${}\r\n", ch.len()).into_bytes();
                reply.extend_from_slice(ch);
                reply.extend_from_slice(b"\r\n:1\r\n");
                conn.write(&reply);
                let Some(switches) = &switches else { continue };
                // Waits for the test (which ends by dropping the sender).
                let next = switches.lock().unwrap().recv();
                if let Ok(payload) = next {
                    let ch = "+switch-master";
                    let message = format!(
                        "*3\r\n$7\r\nmessage\r\n${}\r\n{ch}\r\n${}\r\n{payload}\r\n",
                        ch.len(),
                        payload.len()
                    );
                    conn.write(message.as_bytes());
                }
            }
            _ => conn.reply_ok(),
        }
    }
}

/// A sentinel that names a replica as the primary: the `ROLE` check refuses it at every
/// attempt, calls fail with `Error::Connection` saying so within the connect timeout, and not
/// one command reaches the replica.
async fn a_replica_named_as_primary_is_never_used(setup: &SentinelSetup) {
    let replica = setup.first_replica().port();
    let liar = fake_sentinel(replica);
    let sets_before = sets_on(replica);
    for engine in engines() {
        for protocol in PROTOCOLS {
            let config = Config::sentinel(MASTER, [("127.0.0.1", liar.port())])
                .engine(engine)
                .protocol(protocol)
                .connect_timeout(Duration::from_secs(3))
                .command_timeout(Some(Duration::from_secs(10)));
            let client = Client::new(config).unwrap();
            let started = Instant::now();
            let r = client.set("k", "v").await.map(drop);
            let took = started.elapsed();
            let e = r.expect_err("a replica is no primary");
            let at = format!("{engine:?}/{protocol:?}");
            assert!(e.is_connection(), "{at}: {e:?}");
            assert!(e.to_string().contains("ROLE says slave"), "{at}: {e}");
            assert!(took < Duration::from_secs(3) + SLACK, "{at}: took {took:?}");
            assert!(
                client.stats().connects_failed >= 1,
                "{at}: {:?}",
                client.stats()
            );
        }
    }
    assert_eq!(sets_on(replica), sets_before, "no SET reached the replica");
    assert!(liar.accepted() >= 2, "the fake sentinel was asked");
}

/// A `+switch-master` moves the client at once, with the old primary still up and a sentinel
/// that still names it when asked: the idle connection to the old primary closes with no call
/// made, and the next call goes to the new one.
#[test]
fn a_switch_master_moves_the_client_at_once() {
    let old = ringdis_tests::Server::start(ServerKind::Redis);
    let new = ringdis_tests::Server::start(ServerKind::Redis);
    let rt = runtime();
    for engine in engines() {
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let switches: Switches = Arc::new(Mutex::new(rx));
        let old_port = old.port();
        let stale = FaultServer::start(move |conn| {
            let switches = switches.clone();
            std::thread::spawn(move || serve_switching_sentinel(conn, old_port, Some(switches)));
        });
        let name = unique("sentinel-switch").replace(':', "-");
        let config = Config::sentinel(MASTER, [("127.0.0.1", stale.port())])
            .engine(engine)
            .client_name(&name)
            .command_timeout(Some(COMMAND_TIMEOUT));
        rt.block_on(async {
            let client = Client::new(config).unwrap();
            assert_eq!(
                server_port(&client).await.unwrap(),
                old.port(),
                "{engine:?}"
            );
            // The question connection, then the subscriber.
            wait_for(Duration::from_secs(5), "the subscriber", || {
                stale.accepted() >= 2
            });
            tx.send(format!(
                "{MASTER} 127.0.0.1 {} 127.0.0.1 {}",
                old.port(),
                new.port()
            ))
            .unwrap();
            wait_for(
                Duration::from_secs(5),
                "the connection to the old primary closes with no call made",
                || named_connections(old.port(), &name) == 0,
            );
            assert_eq!(
                server_port(&client).await.unwrap(),
                new.port(),
                "{engine:?}"
            );
            assert_eq!(named_connections(new.port(), &name), 1, "{engine:?}");
        });
        drop(tx);
    }
}

/// How many `SET`s the server on `port` has run (`INFO commandstats`).
fn sets_on(port: u16) -> u64 {
    calls_on(port, "set")
}

/// How many times the server on `port` has run `command` (`INFO commandstats`).
fn calls_on(port: u16, command: &str) -> u64 {
    let mut raw = ringdis_tests::RawConn::connect(port, false);
    let Value::Bulk(info) = raw.call(&cmd!("INFO", "commandstats")) else {
        return 0;
    };
    String::from_utf8_lossy(&info)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// No sentinel reachable: calls fail within the connect timeout with `Error::Connection`
/// naming the master and every sentinel tried.
#[test]
fn no_sentinel_reachable_fails_in_time_naming_the_master_and_the_sentinels() {
    let ports = [ringdis_tests::free_port(), ringdis_tests::free_port()];
    let rt = runtime();
    rt.block_on(async {
        for engine in engines() {
            let config = Config::sentinel(MASTER, ports.map(|p| ("127.0.0.1", p)))
                .engine(engine)
                .connect_timeout(Duration::from_secs(1))
                .command_timeout(Some(Duration::from_secs(10)));
            let client = Client::new(config).unwrap();
            let started = Instant::now();
            let r: ringdis::Result<Value> = client.call(cmd!("PING")).await;
            let took = started.elapsed();
            let e = r.expect_err("nothing to reach");
            assert!(e.is_connection(), "{engine:?}: {e:?}");
            let text = e.to_string();
            assert!(text.contains(MASTER), "{engine:?}: {text}");
            for p in ports {
                assert!(
                    text.contains(&format!("127.0.0.1:{p}")),
                    "{engine:?}: {text}"
                );
            }
            assert!(
                took < Duration::from_secs(1) + SLACK,
                "{engine:?}: took {took:?}"
            );
        }
    });
    // A configuration with no sentinel at all is refused when the client is made.
    let none: [(&str, u16); 0] = [];
    let e = Client::new(Config::sentinel(MASTER, none).engine(Engine::Epoll)).unwrap_err();
    assert!(e.to_string().contains("at least one sentinel"), "{e}");
}

/// What the load tasks saw.
#[derive(Default, Debug)]
struct Tally {
    ok: u64,
    connection_errors: u64,
    /// Anything else: a wrong reply, another error, a call past its timeout.
    wrong: Vec<String>,
}

/// One load task: `SET`/`GET`/`INCR` on its own keys until `stop`, every reply checked to be
/// its own, every call timed.
async fn load(client: Client, task: String, stop: Arc<AtomicBool>, tally: Arc<Mutex<Tally>>) {
    let key = unique(&format!("sentinel:load:{task}"));
    let counter = key_n(&key);
    let mut seq = 0u64;
    while !stop.load(Ordering::Acquire) {
        seq += 1;
        let value = format!("{task}:{seq}");
        let started = Instant::now();
        let set: ringdis::Result<()> = client.set(&key, &value).await.map(drop);
        let get: Option<ringdis::Result<Option<String>>> = match set {
            Ok(()) => Some(client.get(&key).decode().await),
            Err(_) => None,
        };
        let incr: ringdis::Result<i64> = client.call(cmd!("INCR", &counter)).await;
        let took = started.elapsed();
        let mut t = tally.lock().unwrap();
        if took > 3 * COMMAND_TIMEOUT + SLACK {
            t.wrong.push(format!("{task}: three calls took {took:?}"));
        }
        for r in [set.map(drop), incr.map(drop)].into_iter().chain(
            get.iter()
                .map(|g| g.as_ref().map(drop).map_err(Clone::clone)),
        ) {
            match r {
                Ok(()) => t.ok += 1,
                Err(e) if e.is_connection() => t.connection_errors += 1,
                Err(e) => t.wrong.push(format!("{task}: {e:?}")),
            }
        }
        // A value read back is this task's own (a failover may lose the latest writes, never
        // hand over another caller's reply).
        if let Some(Ok(Some(v))) = &get {
            let own = v
                .strip_prefix(&format!("{task}:"))
                .and_then(|s| s.parse::<u64>().ok())
                .is_some_and(|n| n <= seq);
            if !own {
                t.wrong.push(format!("{task}: GET gave {v:?}"));
            }
        }
    }
}

/// Clients on every protocol and engine run SET/GET/INCR on their own keys; the primary is
/// killed; the sentinels promote the replica; every client follows: calls in flight succeed or
/// fail with `Error::Connection` within their timeouts, none gets another caller's reply, and
/// later calls (and subscribers) work on the new primary.
fn failover_under_load(setup: &mut SentinelSetup, rt: &tokio::runtime::Runtime) {
    let kind = setup.kind();
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut clients = Vec::new();
    let mut tasks = Vec::new();
    let mut subs = Vec::new();
    for (protocol, engine) in cells() {
        let at = format!("{kind}/{protocol:?}/{engine:?}");
        let _guard = rt.enter();
        let client = Client::new(sentinel_config(setup, protocol, engine)).expect("client");
        let channel = unique("sentinel:after");
        let sub = rt.block_on(async {
            client.ping().await.unwrap_or_else(|e| panic!("{at}: {e}"));
            let sub = client.subscriber().unwrap();
            sub.subscribe([&channel]).await.unwrap();
            sub
        });
        subs.push((at.clone(), sub, channel));
        for n in 0..4 {
            tasks.push(rt.spawn(load(
                client.clone(),
                format!("{at}/{n}"),
                stop.clone(),
                tally.clone(),
            )));
        }
        clients.push((at, client));
    }
    // A replica-reads client on the replica before the failover, which leaves no replica.
    let reader = {
        let _guard = rt.enter();
        Client::new(
            sentinel_config(setup, Protocol::Resp3, Engine::Epoll).sentinel_replica_reads(true),
        )
        .unwrap()
    };
    let reader_key = unique("sentinel:reader");
    rt.block_on(async {
        reader.set(&reader_key, "1").await.unwrap();
        let replica = setup.first_replica().port();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let before = calls_on(replica, "get");
            let _: Option<String> = reader.get(&reader_key).decode().await.unwrap();
            if calls_on(replica, "get") > before {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{kind}: no read reached the replica"
            );
        }
    });
    // Some load on the first primary before it dies.
    wait_for(
        Duration::from_secs(10),
        "calls succeed before the kill",
        || tally.lock().unwrap().ok >= 200,
    );
    let before = tally.lock().unwrap().ok;
    let killed = Instant::now();
    let old = setup.kill_primary();
    let new = setup.wait_for_failover();
    let promoted = killed.elapsed();
    assert_ne!(old, new);
    // Every client follows: calls succeed again, on the new primary.
    rt.block_on(async {
        for (at, client) in &clients {
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                match server_port(client).await {
                    Ok(port) if port == new => break,
                    Ok(port) => panic!("{at}: a call reached port {port}, not {new}"),
                    Err(e) if e.is_connection() && Instant::now() < deadline => continue,
                    Err(e) => panic!("{at}: not on the new primary in time: {e:?}"),
                }
            }
            assert_eq!(role(client).await.unwrap(), "master", "{at}");
        }
    });
    let followed = killed.elapsed();
    // Reads fall back to the primary: no replica is left.
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let r: ringdis::Result<Option<String>> = reader.get(&reader_key).decode().await;
            match r {
                Ok(_) => break,
                Err(e) if e.is_connection() && Instant::now() < deadline => continue,
                Err(e) => panic!("{kind}: the reader did not recover: {e:?}"),
            }
        }
        reader.set(&reader_key, "2").await.unwrap();
        let v: Option<String> = reader.get(&reader_key).decode().await.unwrap();
        assert_eq!(
            v.as_deref(),
            Some("2"),
            "{kind}: read back from the new primary"
        );
    });
    let after_failover = tally.lock().unwrap().ok;
    wait_for(
        Duration::from_secs(10),
        "the load goes on after the failover",
        || tally.lock().unwrap().ok >= after_failover + 200,
    );
    stop.store(true, Ordering::Release);
    rt.block_on(async {
        for t in tasks {
            tokio::time::timeout(3 * COMMAND_TIMEOUT + SLACK, t)
                .await
                .expect("a load task ends within its calls' timeouts")
                .expect("a load task does not panic");
        }
        // The subscribers followed the primary too: a message published there reaches each.
        for ((at, client), (_, mut sub, channel)) in clients.iter().zip(subs) {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let n: i64 = client
                    .call(cmd!("PUBLISH", &channel, "moved"))
                    .await
                    .unwrap();
                if n == 1 {
                    break;
                }
                // Not subscribed there yet: it is reconnecting.
                assert!(
                    Instant::now() < deadline,
                    "{at}: the subscriber did not follow"
                );
                let _ = sub.next_message(Some(Duration::from_millis(100))).await;
            }
            loop {
                match sub.next_message(Some(Duration::from_secs(5))).await {
                    Ok(Some(m)) => {
                        assert_eq!(m.payload_str(), Some("moved"), "{at}");
                        break;
                    }
                    // The loss of the old primary, reported once.
                    Err(e) if e.is_connection() => continue,
                    other => panic!("{at}: {other:?}"),
                }
            }
        }
    });
    let t = tally.lock().unwrap();
    assert!(t.wrong.is_empty(), "{kind}: {:#?}", t.wrong);
    assert!(before > 0 && t.ok > after_failover, "{kind}: {t:?}");
    eprintln!(
        "{kind}: {} calls ok ({before} before the kill), {} failed with Error::Connection; \
         the sentinels agreed on the new primary {promoted:?} after the kill, every client \
         was on it {followed:?} after",
        t.ok, t.connection_errors
    );
}

/// Polls `done` every 20 ms until it holds, for at most `limit`.
fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The sentinels' credentials are their own: a sentinel with `requirepass` in front of a
/// primary with another password. The builder and the URL form both reach the primary; without
/// the sentinel password the calls fail in time, saying the sentinel refused.
#[test]
fn sentinel_credentials_are_separate_from_the_data_nodes() {
    let primary = ringdis_tests::Server::builder(ServerKind::Redis)
        .password("data-pw")
        .start();
    let conf = format!(
        "sentinel monitor {MASTER} 127.0.0.1 {} 1\n\
         sentinel auth-pass {MASTER} data-pw\n\
         sentinel resolve-hostnames no\n\
         requirepass sentinel-pw\n",
        primary.port()
    );
    let sentinel = ringdis_tests::Server::builder(ServerKind::Redis)
        .sentinel(&conf)
        .start();
    let rt = runtime();
    rt.block_on(async {
        let built = Config::sentinel(MASTER, [("127.0.0.1", sentinel.port())])
            .password("data-pw")
            .sentinel_password("sentinel-pw");
        let url = format!(
            "redis+sentinel://:data-pw@127.0.0.1:{}/{MASTER}?sentinel_password=sentinel-pw",
            sentinel.port()
        );
        for config in [built, Config::from_url(&url).unwrap()] {
            let client = Client::new(config).unwrap();
            assert_eq!(server_port(&client).await.unwrap(), primary.port());
        }
        let config = Config::sentinel(MASTER, [("127.0.0.1", sentinel.port())])
            .password("data-pw")
            .connect_timeout(Duration::from_secs(3));
        let client = Client::new(config).unwrap();
        let started = Instant::now();
        let e = server_port(&client).await.unwrap_err();
        assert!(e.is_connection(), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("NOAUTH"), "{text}");
        assert!(!text.contains("sentinel-pw"), "{text}");
        assert!(started.elapsed() < Duration::from_secs(3) + SLACK);
    });
}

/// With TLS set, the client speaks TLS to the sentinels and to the primary alike (a
/// TLS-only primary and sentinel, `tls-replication yes` so the sentinel monitors over TLS),
/// built or from a `rediss+sentinel://` URL.
#[test]
fn tls_applies_to_the_sentinels_and_the_primary() {
    let pki = support::pki::Pki::new();
    let primary = pki.server(false);
    let conf = format!(
        "sentinel monitor {MASTER} 127.0.0.1 {} 1\nsentinel resolve-hostnames no\n",
        primary.port()
    );
    let sentinel = ringdis_tests::Server::builder(ServerKind::Redis)
        .tls(ringdis_tests::ServerTls {
            cert: pki.path("server.pem"),
            key: pki.path("server.key"),
            ca: pki.path("ca.pem"),
            auth_clients: false,
        })
        .arg("tls-replication", "yes")
        .sentinel(&conf)
        .start();
    let rt = runtime();
    rt.block_on(async {
        for engine in engines() {
            let built = Config::sentinel(MASTER, [("127.0.0.1", sentinel.port())])
                .engine(engine)
                .tls(pki.tls());
            let url = format!("rediss+sentinel://127.0.0.1:{}/{MASTER}", sentinel.port());
            let parsed = Config::from_url(&url)
                .unwrap()
                .engine(engine)
                .tls(pki.tls());
            for config in [built, parsed] {
                let client = Client::new(config).unwrap();
                assert_eq!(
                    server_port(&client)
                        .await
                        .unwrap_or_else(|e| panic!("{engine:?}: {e}")),
                    primary.port(),
                    "{engine:?}"
                );
            }
        }
    });
}

/// The sentinels are asked in order, and one that answered is asked first next time: a
/// sentinel that knows nothing (null) before one that knows the primary is asked once, not
/// again when a lost connection makes the client ask where the primary is.
#[test]
fn a_sentinel_that_answered_is_asked_first_next_time() {
    use std::sync::atomic::AtomicUsize;
    let primary = ringdis_tests::Server::start(ServerKind::Redis);
    let fake = |answer: Option<u16>| {
        let asked = Arc::new(AtomicUsize::new(0));
        let counted = asked.clone();
        let server = FaultServer::start(move |conn| {
            let counted = counted.clone();
            std::thread::spawn(move || serve_sentinel(conn, answer, Some(counted), None));
        });
        (server, asked)
    };
    let (ignorant, asked_ignorant) = fake(None);
    let (knowing, asked_knowing) = fake(Some(primary.port()));
    let rt = runtime();
    rt.block_on(async {
        let name = unique("sentinel-order").replace(':', "-");
        let config = Config::sentinel(
            MASTER,
            [
                ("127.0.0.1", ignorant.port()),
                ("127.0.0.1", knowing.port()),
            ],
        )
        .engine(Engine::Epoll)
        .client_name(&name);
        let client = Client::new(config).unwrap();
        assert_eq!(server_port(&client).await.unwrap(), primary.port());
        assert_eq!(asked_ignorant.load(Ordering::Acquire), 1, "asked first");
        assert_eq!(asked_knowing.load(Ordering::Acquire), 1);
        // The connection is lost: the client asks again before reconnecting.
        let mut raw = ringdis_tests::RawConn::connect(primary.port(), false);
        raw.call(&cmd!("CLIENT", "KILL", "SKIPME", "YES", "TYPE", "NORMAL"));
        let deadline = Instant::now() + Duration::from_secs(5);
        while asked_knowing.load(Ordering::Acquire) < 2 {
            // A call may meet the lost connection (Error::Connection), or the new one.
            let _ = server_port(&client).await;
            assert!(Instant::now() < deadline, "the client did not ask again");
        }
        assert_eq!(server_port(&client).await.unwrap(), primary.port());
        assert_eq!(
            asked_ignorant.load(Ordering::Acquire),
            1,
            "the sentinel that answered was asked first"
        );
    });
}
