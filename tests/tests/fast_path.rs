//! Calls on an idle connection (issue #12, "cheaper calls"): on the task engine a caller whose
//! connection has nothing in flight writes its own call instead of waking the connection's
//! task. Replies still reach the right callers in order, and such a call still times out on
//! time when the server stops answering, whether the connection's timer was armed by the
//! previous call or had already fired. On every engine and runtime.

mod support;

use ringdis::{cmd, Client, Error, Protocol, Value};
use ringdis_tests::Server;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::{config, run_on, servers, PROTOCOLS, RUNTIMES};

const TIMEOUT: Duration = Duration::from_millis(300);

/// A server stopped for at most [`PAUSE_AT_MOST`]: resumed when the guard drops, however the
/// test ends, or by a watchdog when that long has passed, so a call that fails to time out
/// gets its reply (and the assertion on its timeout fails) instead of hanging.
struct Paused<'a> {
    server: &'a Server,
    done: Option<mpsc::Sender<()>>,
    watchdog: Option<std::thread::JoinHandle<()>>,
}

const PAUSE_AT_MOST: Duration = Duration::from_secs(3);

impl<'a> Paused<'a> {
    fn new(server: &'a Server) -> Paused<'a> {
        server.pause();
        let (done, wait) = mpsc::channel::<()>();
        let pid = server.pid().expect("the server runs").to_string();
        let watchdog = std::thread::spawn(move || {
            let _ = wait.recv_timeout(PAUSE_AT_MOST);
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &pid])
                .status();
        });
        Paused {
            server,
            done: Some(done),
            watchdog: Some(watchdog),
        }
    }
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(w) = self.watchdog.take() {
            let _ = w.join();
        }
        self.server.resume();
    }
}

/// Sequential calls for longer than the command timeout (so the connection's timer fires and
/// is moved while calls keep coming), each reply checked against its own call; then, with
/// the server stopped, one call right after another (the timer armed by the previous call)
/// and one on a connection whose timer has fired with no call left: both time out within the
/// command timeout plus a margin, not when the server comes back.
async fn idle_calls(server: &Server, c: Client, at: &str) {
    let key = ringdis_tests::unique("fast");
    let until = Instant::now() + 2 * TIMEOUT;
    let mut i = 0u64;
    while Instant::now() < until || i < 50 {
        let set: Value = c.call(cmd!("SET", &key, i)).await.expect(at);
        assert!(
            matches!(&set, Value::Simple(s) if s == "OK"),
            "{at}: SET {i}: {set:?}"
        );
        let got: Option<u64> = c.call(cmd!("GET", &key)).await.expect(at);
        assert_eq!(got, Some(i), "{at}: GET after SET {i}");
        i += 1;
        assert!(i < 1_000_000, "{at}: the loop is bounded");
    }

    // The timer still armed for the last call's deadline.
    let paused = Paused::new(server);
    let start = Instant::now();
    let r = c.call::<Value>(cmd!("GET", &key)).await;
    let took = start.elapsed();
    assert_eq!(r.unwrap_err(), Error::Timeout, "{at}: right after a call");
    assert!(took < TIMEOUT * 4, "{at}: timed out after {took:?}");

    // Past every deadline: the timer fired with nothing left to wait for.
    let quiet = Instant::now() + 2 * TIMEOUT;
    while Instant::now() < quiet {
        // Keeps the runtime turning (a current-thread runtime runs the connection's task
        // only while this test's future yields).
        support::yield_now().await;
    }
    let start = Instant::now();
    let r = c.call::<Value>(cmd!("GET", &key)).await;
    let took = start.elapsed();
    assert_eq!(
        r.unwrap_err(),
        Error::Timeout,
        "{at}: after the timer fired"
    );
    assert!(took < TIMEOUT * 4, "{at}: timed out after {took:?}");
    drop(paused);

    // The late replies are dropped; the next call gets its own.
    let echo: String = c.call(cmd!("ECHO", "after")).await.expect(at);
    assert_eq!(echo, "after", "{at}: the call after the timeouts");
}

#[test]
fn calls_on_an_idle_connection_keep_their_order_and_time_out_on_time() {
    let servers = servers();
    for (runtime, engine) in RUNTIMES {
        for server in &servers {
            for protocol in PROTOCOLS {
                let at = format!("{}/{engine:?}/{protocol:?} on {runtime:?}", server.kind());
                run_on(runtime, async {
                    let c = Client::new(
                        config(server, engine)
                            .protocol(protocol)
                            .command_timeout(Some(TIMEOUT))
                            .max_silent_timeouts(None),
                    )
                    .expect("client");
                    assert_eq!(c.engine(), engine, "{at}");
                    idle_calls(server, c, &at).await;
                });
            }
        }
    }
}

/// Many callers at once on one connection (the first finds it idle, the rest queue behind
/// it): every reply reaches its own caller.
#[test]
fn concurrent_callers_get_their_own_replies() {
    let servers = servers();
    for (runtime, engine) in RUNTIMES {
        for server in &servers {
            let at = format!("{}/{engine:?} on {runtime:?}", server.kind());
            run_on(runtime, async {
                let c =
                    Client::new(config(server, engine).protocol(Protocol::Resp3)).expect("client");
                for round in 0..20 {
                    let calls = (0..16).map(|i| {
                        let (c, at) = (&c, &at);
                        async move {
                            let want = format!("{round}:{i}");
                            let got: String = c.call(cmd!("ECHO", &want)).await.expect(at);
                            assert_eq!(got, want, "{at}");
                        }
                    });
                    futures::future::join_all(calls).await;
                }
            });
        }
    }
}
