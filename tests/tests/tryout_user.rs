//! What a new user met trying the crate (issue #13's tryout): a client, a subscriber or a pool
//! member closed because its handles were dropped is not reported as a lost connection, on any
//! engine (it used to be a `connection lost` warning and a `connections_lost` count each time a
//! service dropped a client).

mod support;

use futures::StreamExt;
use ringdis::{Commands, Protocol};
use ringdis_tests::{Server, ServerKind};
use std::time::{Duration, Instant};
use support::{capture, engines};

/// Waits (at most 10 s) until `n` connections to `addr` were closed, for whatever reason, and
/// gives how many of those were reported lost.
async fn closed(n: usize, addr: &str, at: &str) -> usize {
    let lost = || {
        capture::count("connection lost", addr)
            + capture::count("a subscriber lost its connection", addr)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let dropped = capture::count("every handle dropped", addr);
        if dropped + lost() >= n {
            return lost();
        }
        assert!(
            Instant::now() < deadline,
            "{at}: {dropped} of {n} closes seen"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_clients_and_subscribers_is_not_a_lost_connection() {
    capture::install();
    let server = Server::start(ServerKind::Redis);
    let addr = format!("127.0.0.1:{}", server.port());
    let mut closes = 0;
    for engine in engines() {
        let at = format!("{engine:?}");
        let client = support::client(&server, engine, Protocol::Resp3);
        client.set("tryout:k", 1).await.unwrap();
        let mut sub = client.subscriber().unwrap();
        sub.subscribe(["tryout:news"]).await.unwrap();
        let published = client.publish("tryout:news", "hi").await.unwrap();
        assert_eq!(published, 1, "{at}");
        let msg = sub.next().await.expect("a message").unwrap();
        assert_eq!(msg.payload_str(), Some("hi"), "{at}");
        assert_eq!(client.stats().connections_lost, 0, "{at}");
        drop(sub);
        drop(client);
        closes += 2;
        assert_eq!(closed(closes, &addr, &at).await, 0, "{at}: reported lost");
    }
}
