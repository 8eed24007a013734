//! Every `Value` type as real servers send it, in RESP2 and RESP3.

mod support;

use bytes::Bytes;
use ringdis::{cmd, Client, Protocol, ServerError, Tracking, Value};
use ringdis_tests::Server;
use std::time::Duration;
use support::{client, label, matrix, PROTOCOLS};

fn bulk(s: &str) -> Value {
    Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

async fn eval(c: &Client, script: &str) -> ringdis::Result<Value> {
    c.call(cmd!("EVAL", script, 0)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_value_type_from_a_real_server() {
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        for protocol in PROTOCOLS {
            let at = label(kind, engine, protocol);
            let c = client(&server, engine, protocol);
            let resp3 = protocol == Protocol::Resp3;
            let v = |resp3_value: Value, resp2_value: Value| {
                if resp3 {
                    resp3_value
                } else {
                    resp2_value
                }
            };
            c.call::<()>(cmd!("FLUSHALL")).await.unwrap();

            let cases: Vec<(&str, ringdis::Cmd, Value)> = vec![
                ("simple", cmd!("SET", "k", "v"), Value::Simple("OK".into())),
                ("bulk", cmd!("GET", "k"), bulk("v")),
                ("nil", cmd!("GET", "missing"), Value::Nil),
                ("integer", cmd!("INCR", "n"), Value::Int(1)),
                ("array", cmd!("RPUSH", "l", "a", "b"), Value::Int(2)),
                (
                    "array",
                    cmd!("LRANGE", "l", 0, -1),
                    Value::Array(vec![bulk("a"), bulk("b")]),
                ),
                (
                    "empty array",
                    cmd!("LRANGE", "nol", 0, -1),
                    Value::Array(vec![]),
                ),
                ("map", cmd!("HSET", "h", "f", 1), Value::Int(1)),
                (
                    "map",
                    cmd!("HGETALL", "h"),
                    v(
                        Value::Map(vec![(bulk("f"), bulk("1"))]),
                        Value::Array(vec![bulk("f"), bulk("1")]),
                    ),
                ),
                ("set", cmd!("SADD", "s", "x"), Value::Int(1)),
                (
                    "set",
                    cmd!("SMEMBERS", "s"),
                    v(Value::Set(vec![bulk("x")]), Value::Array(vec![bulk("x")])),
                ),
                ("double", cmd!("ZADD", "z", 1.5, "m"), Value::Int(1)),
                (
                    "double",
                    cmd!("ZSCORE", "z", "m"),
                    v(Value::Double(1.5), bulk("1.5")),
                ),
                // A script's booleans are RESP3 booleans only after redis.setresp(3).
                (
                    "boolean",
                    cmd!("EVAL", "redis.setresp(3) return true", 0),
                    v(Value::Boolean(true), Value::Int(1)),
                ),
                (
                    "boolean",
                    cmd!("EVAL", "redis.setresp(3) return false", 0),
                    v(Value::Boolean(false), Value::Int(0)),
                ),
                ("lua false", cmd!("EVAL", "return false", 0), Value::Nil),
                (
                    "double",
                    cmd!("EVAL", "return {double=3.25}", 0),
                    v(Value::Double(3.25), bulk("3.25")),
                ),
                (
                    "big number",
                    cmd!(
                        "EVAL",
                        "return {big_number='1234567890123456789012345678901234567890'}",
                        0
                    ),
                    v(
                        Value::BigNumber("1234567890123456789012345678901234567890".into()),
                        bulk("1234567890123456789012345678901234567890"),
                    ),
                ),
                (
                    "verbatim",
                    cmd!(
                        "EVAL",
                        "return {verbatim_string={format='txt', string='hello'}}",
                        0
                    ),
                    v(
                        Value::Verbatim {
                            format: "txt".into(),
                            text: "hello".into(),
                        },
                        bulk("hello"),
                    ),
                ),
                (
                    "map from a script",
                    cmd!("EVAL", "return {map={a=1}}", 0),
                    v(
                        Value::Map(vec![(bulk("a"), Value::Int(1))]),
                        Value::Array(vec![bulk("a"), Value::Int(1)]),
                    ),
                ),
                (
                    "nested error",
                    cmd!("EVAL", "return {1, redis.error_reply('MYERR boom')}", 0),
                    Value::Array(vec![
                        Value::Int(1),
                        Value::Error(ServerError {
                            kind: "MYERR".into(),
                            message: "boom".into(),
                        }),
                    ]),
                ),
            ];
            for (what, command, want) in cases {
                let shown = command.to_string();
                let got: Value = c
                    .call(command)
                    .await
                    .unwrap_or_else(|e| panic!("{at} {what} {shown}: {e}"));
                assert_eq!(got, want, "{at} {what}: {shown}");
            }

            // inf and nan as doubles.
            let inf = eval(&c, "return {double=1/0}").await.unwrap();
            match (resp3, &inf) {
                (true, Value::Double(d)) => assert!(d.is_infinite() && *d > 0.0, "{at}"),
                (false, Value::Bulk(b)) => assert_eq!(&b[..], b"inf", "{at}"),
                other => panic!("{at}: inf came as {other:?}"),
            }

            // A top-level error is the call's error, with the code kept.
            let err = eval(&c, "return redis.error_reply('MYERR top level')")
                .await
                .unwrap_err();
            assert_eq!(err.server_kind(), Some("MYERR"), "{at}");
            let err = c.call::<Value>(cmd!("LPUSH", "k", "x")).await.unwrap_err();
            assert_eq!(err.server_kind(), Some("WRONGTYPE"), "{at}");

            // Push: a client-side-caching invalidation (RESP3 only: RESP2 needs a redirect).
            if resp3 {
                // Tracking is connection state: configured, so that reconnects keep it.
                let c = Client::new(
                    support::config(&server, engine)
                        .protocol(protocol)
                        .tracking(Tracking::new()),
                )
                .unwrap();
                let (tx, rx) = std::sync::mpsc::channel();
                c.on_push(move |p| {
                    let _ = tx.send(p);
                });
                c.call::<Value>(cmd!("GET", "tracked")).await.unwrap();
                let other = client(&server, engine, protocol);
                other.call::<()>(cmd!("SET", "tracked", "1")).await.unwrap();
                let push =
                    tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(10)))
                        .await
                        .unwrap()
                        .unwrap_or_else(|_| panic!("{at}: no invalidation push"));
                assert_eq!(
                    push,
                    Value::Push(vec![
                        bulk("invalidate"),
                        Value::Array(vec![bulk("tracked")])
                    ]),
                    "{at}"
                );
                // The push did not disturb reply matching.
                assert_eq!(
                    c.call::<String>(cmd!("ECHO", "after")).await.unwrap(),
                    "after",
                    "{at}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_decode_into_rust_types_in_both_protocols() {
    use std::collections::{BTreeSet, HashMap};
    for (kind, engine) in matrix() {
        let server = Server::start(kind);
        for protocol in PROTOCOLS {
            let at = label(kind, engine, protocol);
            let c = client(&server, engine, protocol);
            c.call::<()>(cmd!("HSET", "u", "name", "ada", "age", 36))
                .await
                .unwrap();
            let h: HashMap<String, String> = c.call(cmd!("HGETALL", "u")).await.unwrap();
            assert_eq!(h["age"], "36", "{at}");
            let age: u32 = c.call(cmd!("HGET", "u", "age")).await.unwrap();
            assert_eq!(age, 36, "{at}");
            let pairs: Vec<(String, String)> = c.call(cmd!("HGETALL", "u")).await.unwrap();
            assert_eq!(pairs.len(), 2, "{at}");
            c.call::<()>(cmd!("ZADD", "z", 1, "a", 2.5, "b"))
                .await
                .unwrap();
            let scored: Vec<(String, f64)> = c
                .call(cmd!("ZRANGE", "z", 0, -1, "WITHSCORES"))
                .await
                .unwrap();
            assert_eq!(
                scored,
                [("a".to_owned(), 1.0), ("b".to_owned(), 2.5)],
                "{at}"
            );
            c.call::<()>(cmd!("SADD", "s", 3, 1, 2)).await.unwrap();
            let s: BTreeSet<i64> = c.call(cmd!("SMEMBERS", "s")).await.unwrap();
            assert_eq!(s.into_iter().collect::<Vec<_>>(), [1, 2, 3], "{at}");
            let missing: Option<String> = c.call(cmd!("GET", "nope")).await.unwrap();
            assert_eq!(missing, None, "{at}");
            let e = c.call::<i64>(cmd!("HGET", "u", "name")).await.unwrap_err();
            assert_eq!(
                e.to_string(),
                r#"decode error: expected integer (i64), got bulk string "ada""#,
                "{at}"
            );
        }
    }
}
