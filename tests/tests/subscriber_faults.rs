//! Issue #11, kinds 3 and 10 (first half): messages of every shape reach a subscriber, a
//! subscriber recovers from any outage whatever its timeouts and says when it is down, and one
//! whose reader does not keep up stays within its memory bound. Real servers, both kinds, every
//! engine, both protocols.

mod support;

use futures::StreamExt;
use ringdis::INVALIDATE_CHANNEL;
use ringdis::{cmd, Client, Config, Engine, Error, Protocol, SubKind, Subscriber, Value};
use ringdis_tests::{unique, RawConn, Server, ServerKind};
use std::sync::RwLock;
use std::time::{Duration, Instant};
use support::{client, config, label, matrix, PROTOCOLS};

/// The memory test reads the whole process's RSS: it runs alone, the others side by side. (Each
/// test has a runtime of its own, so holding the guard across awaits blocks only other tests.)
static RSS: RwLock<()> = RwLock::new(());

const LONG: Option<Duration> = Some(Duration::from_secs(10));

async fn message(sub: &mut Subscriber, at: &str) -> ringdis::Message {
    match sub.next_message(LONG).await {
        Ok(Some(m)) => m,
        other => panic!("{at}: expected a message, got {other:?}"),
    }
}

/// `CLIENT TRACKING … REDIRECT` to a subscriber: an invalidation names the keys (an array
/// payload, which RESP2 sends as a `message`), a flush invalidates everything (a nil payload),
/// and neither breaks the subscriber. A RESP3 subscriber gets the same messages (the server sends
/// it `invalidate` pushes). Shard channels deliver too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn tracking_invalidations_reach_a_subscriber_as_messages() {
    let _shared = RSS.read().unwrap_or_else(|p| p.into_inner());
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        for protocol in PROTOCOLS {
            let at = label(kind, engine, protocol);
            let writer = client(&server, engine, protocol);
            let mut sub = writer.subscriber().unwrap();
            let id: i64 = sub.connection().call(cmd!("CLIENT", "ID")).await.unwrap();
            sub.subscribe([INVALIDATE_CHANNEL]).await.unwrap();
            // A channel of its own: the previous protocol's subscriber may still be closing.
            let shard = unique("shard");
            sub.ssubscribe([&shard]).await.unwrap();
            // The client refuses REDIRECT tracking (the id it names changes on a reconnect), so
            // the tracked reads go through a raw connection.
            let mut tracker = RawConn::connect(server.port(), false);
            tracker.call(&cmd!("CLIENT", "TRACKING", "ON", "REDIRECT", id));
            let key = unique("tracked");
            tracker.call(&cmd!("GET", &key));

            writer.call::<()>(cmd!("SET", &key, "v")).await.unwrap();
            let m = message(&mut sub, &at).await;
            assert_eq!(m.channel_str(), Some(INVALIDATE_CHANNEL), "{at}");
            assert_eq!(m.kind, SubKind::Channel, "{at}");
            assert_eq!(m.payload_str(), None, "{at}: the payload is not a string");
            assert_eq!(
                m.decode::<Option<Vec<String>>>().unwrap(),
                Some(vec![key.clone()]),
                "{at}: {m:?}"
            );

            tracker.call(&cmd!("GET", &key));
            writer.call::<()>(cmd!("FLUSHALL")).await.unwrap();
            let m = message(&mut sub, &at).await;
            assert_eq!(m.channel_str(), Some(INVALIDATE_CHANNEL), "{at}");
            assert_eq!(m.payload, Value::Nil, "{at}: everything was invalidated");
            assert_eq!(m.decode::<Option<Vec<String>>>().unwrap(), None, "{at}");

            // Still the same connection, still subscribed.
            assert!(sub.is_connected(), "{at}");
            let n: i64 = writer.call(cmd!("SPUBLISH", &shard, "s1")).await.unwrap();
            assert_eq!(n, 1, "{at}");
            let m = message(&mut sub, &at).await;
            assert_eq!(
                (m.kind, m.channel_str(), m.payload_str()),
                (SubKind::Shard, Some(shard.as_str()), Some("s1")),
                "{at}"
            );
            // Never reconnected: a loss would have been reported here.
            assert_eq!(
                sub.next_message(Some(Duration::from_millis(50)))
                    .await
                    .unwrap(),
                None,
                "{at}"
            );
        }
    }
}

/// The example: `connect_timeout(1s)`, the server killed, down for 2 s, restarted on
/// the same port. The subscriber reports the loss (to the Stream once, to `next_message` for as
/// long as it is down), a subscribe made meanwhile waits for the reconnect, and afterwards
/// everything it had is restored and messages flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn a_subscriber_recovers_from_an_outage_longer_than_its_connect_timeout() {
    let _shared = RSS.read().unwrap_or_else(|p| p.into_inner());
    let cells: Vec<_> = matrix()
        .into_iter()
        .flat_map(|(k, t)| PROTOCOLS.into_iter().map(move |p| (k, t, p)))
        .map(|(kind, engine, protocol)| tokio::spawn(outage(kind, engine, protocol)))
        .collect();
    for cell in cells {
        cell.await.unwrap();
    }
}

async fn outage(kind: ServerKind, engine: Engine, protocol: Protocol) {
    let at = label(kind, engine, protocol);
    let mut server = Server::start(kind);
    let cfg = config(&server, engine)
        .protocol(protocol)
        .connect_timeout(Duration::from_secs(1))
        .command_timeout(Some(Duration::from_secs(20)));
    let publisher = Client::new(cfg.clone()).unwrap();
    let mut sub = Subscriber::new(cfg).unwrap();
    sub.subscribe(["news"]).await.unwrap();
    let n: i64 = publisher
        .call(cmd!("PUBLISH", "news", "before"))
        .await
        .unwrap();
    assert_eq!(n, 1, "{at}");
    assert_eq!(message(&mut sub, &at).await.payload_str(), Some("before"));

    tokio::task::block_in_place(|| server.kill());
    let killed = Instant::now();
    // The Stream hears of the loss, once.
    let lost = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .unwrap_or_else(|_| panic!("{at}: the loss was never reported"));
    match lost {
        Some(Err(e)) => assert!(e.is_connection(), "{at}: {e}"),
        other => panic!("{at}: expected the loss, got {other:?}"),
    }
    assert!(!sub.is_connected(), "{at}");
    // Down past the connect timeout: next_message says so every time rather than look idle.
    let mut polls = 0;
    while killed.elapsed() < Duration::from_secs(2) {
        match sub.next_message(Some(Duration::from_millis(100))).await {
            Err(e) if e.is_connection() => polls += 1,
            other => panic!("{at}: a down subscriber answered {other:?}"),
        }
    }
    assert!(polls > 0, "{at}");

    // A subscribe made while it is down waits for the reconnect (its command timeout is 20 s).
    {
        let mut more = std::pin::pin!(sub.subscribe(["more"]));
        assert!(futures::poll!(&mut more).is_pending(), "{at}");
        tokio::task::block_in_place(|| server.restart());
        more.await
            .unwrap_or_else(|e| panic!("{at}: subscribe while down: {e}"));
    }
    assert!(sub.is_connected(), "{at}");

    // Everything is restored before the waiting subscribe went out: both channels deliver.
    for channel in ["news", "more"] {
        let n: i64 = publisher
            .call(cmd!("PUBLISH", channel, "after"))
            .await
            .unwrap();
        assert_eq!(n, 1, "{at}: {channel} restored");
        let m = message(&mut sub, &at).await;
        assert_eq!(
            (m.channel_str(), m.payload_str()),
            (Some(channel), Some("after")),
            "{at}"
        );
    }
    assert_eq!(
        sub.next_message(Some(Duration::from_millis(50)))
            .await
            .unwrap(),
        None,
        "{at}: up and idle"
    );
}

/// The process's resident memory (`/proc/self/status`, `VmRSS`).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// 64,000 messages of 1 KiB (more than the 48 MiB of growth allowed) to a subscriber nobody
/// reads: the client keeps at most its queue limit of them, counts the rest as dropped, never
/// loses a reply (a PING behind the flood), and the reader then gets the queued messages, one
/// report of the drops, and what comes next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn a_subscriber_nobody_reads_stays_within_its_queue_limit() {
    const MESSAGES: usize = 64_000;
    const BATCH: usize = 1_000;
    const LIMIT: usize = 4 * 1024 * 1024;
    let _alone = RSS.write().unwrap_or_else(|p| p.into_inner());
    let payload = "x".repeat(1024);
    for (kind, engine) in matrix() {
        // No server-side limit: what bounds the client here is the client.
        let server = Server::builder(kind)
            .arg("client-output-buffer-limit", "pubsub 0 0 0")
            .start();
        for protocol in PROTOCOLS {
            let at = label(kind, engine, protocol);
            let publisher = client(&server, engine, protocol);
            let cfg: Config = config(&server, engine)
                .protocol(protocol)
                .subscriber_queue_limit(LIMIT);
            let mut sub = Subscriber::new(cfg).unwrap();
            // A channel of its own: the previous protocol's subscriber may still be closing.
            let flood = unique("flood");
            sub.subscribe([&flood]).await.unwrap();
            let before = rss_bytes();
            for _ in 0..MESSAGES / BATCH {
                let mut p = publisher.pipeline();
                for _ in 0..BATCH {
                    p.add(cmd!("PUBLISH", &flood, &payload));
                }
                let receivers: Vec<i64> = p.query().await.unwrap();
                assert!(receivers.iter().all(|&n| n == 1), "{at}");
            }
            // The server writes PING's reply after every message published before it.
            let pong: Value = sub.connection().call(cmd!("PING")).await.unwrap();
            assert!(
                matches!(&pong, Value::Simple(s) if s == "PONG")
                    || matches!(&pong, Value::Array(_)),
                "{at}: {pong:?}"
            );
            // A (un)subscribe's confirmations are not messages: the full queue never holds them.
            sub.subscribe(["also"]).await.unwrap();
            sub.unsubscribe(["also"]).await.unwrap();
            let grown = rss_bytes().saturating_sub(before);
            let queued = sub.queued();
            let dropped = sub.dropped();
            assert!(
                queued > 0 && queued <= LIMIT / 1024,
                "{at}: {queued} messages queued"
            );
            assert_eq!(
                queued as u64 + dropped,
                MESSAGES as u64,
                "{at}: all counted"
            );
            assert!(
                grown < 48 * 1024 * 1024,
                "{at}: the client grew by {} MiB",
                grown >> 20
            );

            // The reader catches up: the queued messages, then one report of the drops.
            for i in 0..queued {
                let m = sub
                    .next()
                    .await
                    .unwrap()
                    .unwrap_or_else(|e| panic!("{at}: {i}: {e}"));
                assert_eq!(m.payload_str(), Some(payload.as_str()), "{at}");
            }
            match sub.next_message(LONG).await {
                Err(Error::Lagged { dropped: n }) => assert_eq!(n, dropped, "{at}"),
                other => panic!("{at}: expected the drops, got {other:?}"),
            }
            assert_eq!(
                sub.next_message(Some(Duration::from_millis(50)))
                    .await
                    .unwrap(),
                None,
                "{at}"
            );
            publisher
                .call::<i64>(cmd!("PUBLISH", &flood, "again"))
                .await
                .unwrap();
            assert_eq!(message(&mut sub, &at).await.payload_str(), Some("again"));
            assert_eq!((sub.queued(), sub.dropped()), (0, dropped), "{at}");
        }
    }
}

/// A subscribe the server refuses (ACL) fails with its error and disturbs nothing else; when the
/// ACL changes under a subscriber, the refused restore is reported to its reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn a_refused_subscribe_fails_alone_and_a_refused_restore_is_reported() {
    let _shared = RSS.read().unwrap_or_else(|p| p.into_inner());
    for (kind, engine) in matrix() {
        for protocol in PROTOCOLS {
            let at = label(kind, engine, protocol);
            let server = Server::builder(kind)
                .arg("user", "limited on >pw ~* &open +@all")
                .start();
            let admin = client(&server, engine, protocol);
            let cfg = config(&server, engine)
                .protocol(protocol)
                .username("limited")
                .password("pw");
            let mut sub = Subscriber::new(cfg).unwrap();
            sub.subscribe(["open"]).await.unwrap();
            let err = sub.subscribe(["open", "secret"]).await.unwrap_err();
            assert_eq!(err.server_kind(), Some("NOPERM"), "{at}: {err}");
            let pong: Value = sub.connection().call(cmd!("PING")).await.unwrap();
            assert!(!matches!(pong, Value::Error(_)), "{at}: {pong:?}");
            let n: i64 = admin.call(cmd!("PUBLISH", "open", "m1")).await.unwrap();
            assert_eq!(n, 1, "{at}");
            assert_eq!(message(&mut sub, &at).await.payload_str(), Some("m1"));

            // The channel is taken away: the server drops the subscriber, which reconnects and
            // is refused the restore.
            admin
                .call::<()>(cmd!("ACL", "SETUSER", "limited", "resetchannels", "&other"))
                .await
                .unwrap();
            admin
                .call::<i64>(cmd!("CLIENT", "KILL", "USER", "limited"))
                .await
                .unwrap();
            let lost = sub.next_message(LONG).await.unwrap_err();
            assert!(lost.is_connection(), "{at}: {lost}");
            let refused = sub.next_message(LONG).await.unwrap_err();
            assert_eq!(refused.server_kind(), Some("NOPERM"), "{at}: {refused}");
            assert!(refused.to_string().contains("open"), "{at}: {refused}");
            // Up, holding nothing, and still usable.
            sub.subscribe(["other"]).await.unwrap();
            admin
                .call::<i64>(cmd!("PUBLISH", "other", "m2"))
                .await
                .unwrap();
            assert_eq!(message(&mut sub, &at).await.payload_str(), Some("m2"));
        }
    }
}
