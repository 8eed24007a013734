//! Issue #12, an adversarial review of the engines: faults users can cause or meet, on every
//! engine (`support::engines()`), each found as a failing test first.

mod support;

use ringdis::{cmd, Client, Config, Protocol};
use ringdis_tests::{FaultServer, Server, ServerKind};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{bounded, engines};

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A fake server that accepts and then never reads (until the returned sender is dropped): a
/// client writing to it soon finds its socket buffers full.
fn deaf_server() -> (FaultServer, mpsc::Sender<()>) {
    let (release, held) = mpsc::channel::<()>();
    let held = Arc::new(Mutex::new(held));
    let server = FaultServer::start(move |conn| {
        // Holds the connection open, unread, until the test is over.
        let _ = held.lock().unwrap_or_else(|p| p.into_inner()).recv();
        drop(conn);
    });
    (server, release)
}

/// A connection whose server stopped reading (its socket buffers fill up, its last small send
/// never completes) holds up no other connection on the same engine: a PING to a healthy server
/// keeps answering at once, before, while and after the deaf one's buffers fill.
///
/// (The ring engine waited for two completions after a single small send, counting on the send
/// completing during the submit; a send stuck on a full socket buffer left the thread blocked
/// until an unrelated deadline, or for ever without one.)
#[test]
fn a_server_that_stopped_reading_stalls_no_other_connection() {
    let healthy = Server::start(ServerKind::Redis);
    for engine in engines() {
        let (deaf, release) = deaf_server();
        multi_thread().block_on(async {
            let at = format!("{engine:?}");
            let stuck = Client::new(
                Config::from_url(&deaf.url())
                    .unwrap()
                    .engine(engine)
                    .protocol(Protocol::Resp2)
                    .command_timeout(None),
            )
            .unwrap();
            let fine = Client::new(
                Config::from_url(&healthy.url())
                    .unwrap()
                    .engine(engine)
                    .protocol(Protocol::Resp2),
            )
            .unwrap();
            bounded(Duration::from_secs(10), &at, stuck.connect())
                .await
                .unwrap();
            // Small writes, one per engine turn: each below the ring engine's "small send"
            // size. ~12 MB in all, far more than the loopback socket buffers of a reader that
            // never reads.
            let value = vec![b'x'; 3000];
            for i in 0..4000 {
                stuck.async_call(cmd!("SET", "k", &value[..]), None::<fn(_)>);
                // Until its engine has turned it, alone (so its write is the turn's only one).
                let taken = async {
                    while stuck.queued_calls() <= i {
                        support::yield_now().await;
                    }
                };
                bounded(Duration::from_secs(5), &format!("{at}: SET {i}"), taken).await;
                let pong: String = bounded(
                    Duration::from_secs(2),
                    &format!("{at}: PING {i} beside the deaf connection"),
                    fine.call(cmd!("PING")),
                )
                .await
                .unwrap();
                assert_eq!(pong, "PONG", "{at}");
            }
        });
        drop(release);
    }
}
