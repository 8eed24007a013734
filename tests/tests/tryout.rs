//! Faults found by a fresh user's tryout of the issue #11 fixes: other members of its kinds.
//! Every test runs on both servers, both protocols and both transports.

mod support;

use ringdis::commands::YesOrSyncOrNo;
use ringdis::{cmd, Client, Commands, Error, Pool, Spread, Value};
use ringdis_tests::Server;
use std::fmt::Debug;
use std::sync::mpsc;
use std::time::Duration;
use support::{config, label, matrix};

/// `r` is a refusal before sending ([`Error::Client`]) whose message contains `needle`.
#[track_caller]
fn refused<T: Debug>(r: ringdis::Result<T>, needle: &str, at: &str) {
    match r {
        Err(Error::Client { message, .. }) => {
            assert!(
                message.contains(needle),
                "{at}: {message:?} lacks {needle:?}"
            )
        }
        other => panic!("{at}: expected a refusal naming {needle:?}, got {other:?}"),
    }
}

/// Kind 1: `SCRIPT DEBUG YES|SYNC` turns the connection's next `EVAL` into a Lua debugger
/// session (the server forks one that owns the socket, or blocks in it): the `EVAL` answers with
/// debugger output, the next caller's command is read as a debugger command, and the shared
/// connection stays wedged. It must be refused on every path, like `CLIENT REPLY`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_debug_is_refused_on_every_path() {
    for (kind, transport) in matrix() {
        let server = Server::start(kind);
        for protocol in support::PROTOCOLS {
            let at = label(kind, transport, protocol);
            let cfg = || {
                config(&server, transport)
                    .protocol(protocol)
                    .command_timeout(Some(Duration::from_secs(5)))
            };
            let c = Client::new(cfg()).unwrap();
            let needle = "SCRIPT DEBUG";
            for mode in ["YES", "SYNC", "no"] {
                let cmd = cmd!("script", "debug", mode);
                let at = format!("{at}: `{cmd}`");
                refused(c.call::<Value>(cmd.clone()).await, needle, &at);
                let (tx, rx) = mpsc::channel();
                c.async_call(
                    cmd.clone(),
                    Some(move |r: ringdis::Result<Value>| {
                        let _ = tx.send(r);
                    }),
                );
                refused(rx.try_recv().expect("refused at once"), needle, &at);
                c.async_call(cmd.clone(), None::<fn(_)>);
                let mut p = c.pipeline();
                p.add(cmd!("ECHO", "x")).add(cmd.clone());
                refused(p.query::<Value>().await, "command 2 of the pipeline", &at);
                let mut t = c.transaction();
                t.add(cmd.clone());
                refused(t.query::<Value>().await, needle, &at);
            }
            refused(c.script_debug(YesOrSyncOrNo::Yes).await, needle, &at);
            let pool = Pool::new(cfg(), 1);
            let pooled = pool.get().await.unwrap();
            refused(pooled.script_debug(YesOrSyncOrNo::Yes).await, needle, &at);
            let spread = Spread::new(cfg(), 2).unwrap();
            refused(
                spread.call::<Value>(cmd!("SCRIPT", "DEBUG", "YES")).await,
                needle,
                &at,
            );
            let dedicated = c.dedicated().unwrap();
            refused(
                dedicated.script_debug(YesOrSyncOrNo::Sync).await,
                needle,
                &at,
            );
            let sub = c.subscriber().unwrap();
            refused(
                sub.connection().script_debug(YesOrSyncOrNo::Yes).await,
                needle,
                &at,
            );
            // Nothing reached the connection: a script and concurrent calls each get their own
            // reply.
            for conn in [
                &c,
                &*pooled,
                &spread.clients()[0],
                &spread.clients()[1],
                &dedicated,
            ] {
                let (e, a, b) = tokio::join!(
                    conn.call::<i64>(cmd!("EVAL", "return 7", 0)),
                    conn.call::<String>(cmd!("ECHO", "a")),
                    conn.call::<String>(cmd!("ECHO", "b")),
                );
                assert_eq!(
                    (e.unwrap(), a.unwrap(), b.unwrap()),
                    (7, "a".into(), "b".into()),
                    "{at}"
                );
            }
        }
    }
}

/// Kind 6: a subscriber's report of a lost connection says what happened once, not
/// "connection error: … (connection error: …)".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribers_loss_report_does_not_repeat_itself() {
    for (kind, transport) in matrix() {
        let server = Server::start(kind);
        for protocol in support::PROTOCOLS {
            let at = label(kind, transport, protocol);
            let c = Client::new(config(&server, transport).protocol(protocol)).unwrap();
            let mut sub = c.subscriber().unwrap();
            sub.subscribe(["ch"]).await.unwrap();
            let killed: i64 = c
                .call(cmd!("CLIENT", "KILL", "TYPE", "pubsub"))
                .await
                .unwrap();
            assert_eq!(killed, 1, "{at}");
            let report = tokio::time::timeout(Duration::from_secs(10), sub.next_message(None))
                .await
                .unwrap_or_else(|_| panic!("{at}: no report of the loss"));
            let Err(e) = report else {
                panic!("{at}: expected the loss, got {report:?}")
            };
            assert!(e.is_connection(), "{at}: {e:?}");
            let text = e.to_string();
            assert_eq!(text.matches("connection error").count(), 1, "{at}: {text}");
        }
    }
}

/// Kinds 4 and 11 (NOT FIXED, for the lead): `INCRBYFLOAT` and `HINCRBYFLOAT` print the server's
/// long double in full (`%.17Lf`, no exponent), so `incrbyfloat("f", 1e25)` replies
/// `"10000000000000000000000000"`. The number rules refuse integer text no double holds exactly,
/// so the generated method, whose default reply is `f64`, fails with `Error::Decode` after the
/// increment ran (a retry increments again). `"0.1"` decodes, rounded; this must too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incrbyfloat_results_decode_as_their_default_f64() {
    for (kind, transport) in matrix() {
        let server = Server::start(kind);
        for protocol in support::PROTOCOLS {
            let at = label(kind, transport, protocol);
            let c = Client::new(config(&server, transport).protocol(protocol)).unwrap();
            c.del("f").await.unwrap();
            c.del("h").await.unwrap();
            let f = c.incrbyfloat("f", 1e25).await;
            assert_eq!(f.ok(), Some(1e25), "{at}: incrbyfloat");
            let h = c.hincrbyfloat("h", "x", 1e25).await;
            assert_eq!(h.ok(), Some(1e25), "{at}: hincrbyfloat");
        }
    }
}
