//! Decoding replies from real servers (Redis 7.0 and Valkey 9, RESP2 and RESP3, epoll and
//! io_uring): numbers are exact or an `Error::Decode`, in every spelling a server sends, and
//! maps decode from every shape either protocol uses, at every depth. What a real server cannot
//! send (the libc spellings of NaN and infinity that servers before 7.2 may print) comes from a
//! scripted `FaultServer`.

mod support;

use ringdis::{
    cmd, Client, Commands, Config, Error, FromRedis, Pool, Protocol, Result, Spread, Value,
};
use ringdis_tests::{FaultConn, FaultServer, Server, ServerKind};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use support::{client, engines, label, PROTOCOLS};

/// Every (server, engine, protocol) cell, one server per kind: `f` runs once per cell.
async fn on_every_cell<F, Fut>(mut f: F)
where
    F: FnMut(Client, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for kind in ServerKind::ALL {
        let server = Server::start(kind);
        for engine in engines() {
            for protocol in PROTOCOLS {
                let c = client(&server, engine, protocol);
                c.call::<()>(cmd!("FLUSHALL")).await.unwrap();
                f(c, label(kind, engine, protocol)).await;
            }
        }
    }
}

#[track_caller]
fn assert_decode<T: Debug>(r: Result<T>, at: &str, what: &str) {
    assert!(
        matches!(r, Err(Error::Decode { .. })),
        "{at}: {what}: expected a decode error, got {r:?}"
    );
}

/// The example and its neighbours: a score of 1e300 (and of ±inf) is no integer, in
/// either protocol, on every path a reply takes (generated method, `call`, pipeline,
/// transaction); as a float it is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_decode_exactly_or_fail_with_a_decode_error() {
    on_every_cell(|c, at| async move {
        let at = at.as_str();
        c.zadd("z", 1e300, "big").await.unwrap();
        c.zadd("z", f64::INFINITY, "pinf").await.unwrap();
        c.zadd("z", f64::NEG_INFINITY, "ninf").await.unwrap();
        c.zadd("z", 1.5, "half").await.unwrap();
        c.zadd("z", 5.0, "five").await.unwrap();
        c.zadd("z", -1e17, "neg").await.unwrap();
        // 2^53 + 1 is stored as the double 2^53.
        c.call::<()>(cmd!("ZADD", "z", "9007199254740993", "e"))
            .await
            .unwrap();

        // ZSCORE 1e300 into i128: a decode error, never i128::MAX.
        assert_decode(
            c.zscore("z", "big").decode::<i128>().await,
            at,
            "1e300 as i128",
        );
        assert_decode(
            c.call::<i128>(cmd!("ZSCORE", "z", "big")).await,
            at,
            "1e300 as i128 (call)",
        );
        assert_decode(
            c.zscore("z", "big").decode::<u128>().await,
            at,
            "1e300 as u128",
        );
        assert_decode(
            c.zscore("z", "big").decode::<i64>().await,
            at,
            "1e300 as i64",
        );
        assert_decode(
            c.zscore("z", "big").decode::<f32>().await,
            at,
            "1e300 as f32",
        );
        assert_eq!(
            c.zscore("z", "big").decode::<f64>().await.unwrap(),
            1e300,
            "{at}"
        );
        assert_eq!(c.zscore("z", "big").await.unwrap(), Some(1e300), "{at}");
        // The text of it reads back as the same double, whatever the protocol.
        let text: String = c.zscore("z", "big").decode().await.unwrap();
        assert_eq!(text.parse::<f64>().unwrap(), 1e300, "{at}: {text}");

        // Infinities.
        assert_eq!(
            c.zscore("z", "pinf").await.unwrap(),
            Some(f64::INFINITY),
            "{at}"
        );
        assert_eq!(
            c.zscore("z", "ninf").await.unwrap(),
            Some(f64::NEG_INFINITY),
            "{at}"
        );
        assert_eq!(
            c.zscore("z", "pinf").decode::<f32>().await.unwrap(),
            f32::INFINITY,
            "{at}"
        );
        for member in ["pinf", "ninf"] {
            assert_decode(c.zscore("z", member).decode::<i64>().await, at, member);
            assert_decode(c.zscore("z", member).decode::<i128>().await, at, member);
        }

        // Integral scores are integers; fractional ones are not.
        assert_eq!(
            c.zscore("z", "five").decode::<i64>().await.unwrap(),
            5,
            "{at}"
        );
        assert_eq!(
            c.zscore("z", "five").decode::<u16>().await.unwrap(),
            5,
            "{at}"
        );
        assert_eq!(
            c.zscore("z", "five").decode::<i8>().await.unwrap(),
            5,
            "{at}"
        );
        assert_eq!(
            c.zscore("z", "neg").decode::<i64>().await.unwrap(),
            -100_000_000_000_000_000,
            "{at}"
        );
        assert_decode(
            c.zscore("z", "neg").decode::<u64>().await,
            at,
            "-1e17 as u64",
        );
        assert_decode(
            c.zscore("z", "neg").decode::<i32>().await,
            at,
            "-1e17 as i32",
        );
        assert_decode(
            c.zscore("z", "half").decode::<i64>().await,
            at,
            "1.5 as i64",
        );
        assert_eq!(
            c.zscore("z", "half").decode::<f32>().await.unwrap(),
            1.5,
            "{at}"
        );
        // An integral score f32 cannot hold exactly is refused; a fraction rounds.
        c.zadd("z", 16_777_217.0, "f32edge").await.unwrap();
        c.zadd("z", 0.1, "tenth").await.unwrap();
        assert_decode(
            c.zscore("z", "f32edge").decode::<f32>().await,
            at,
            "2^24 + 1 as f32",
        );
        assert_eq!(
            c.zscore("z", "f32edge").decode::<i32>().await.unwrap(),
            16_777_217,
            "{at}"
        );
        assert_eq!(
            c.zscore("z", "tenth").decode::<f32>().await.unwrap(),
            0.1,
            "{at}"
        );
        assert_eq!(
            c.zscore("z", "tenth").decode::<f64>().await.unwrap(),
            0.1,
            "{at}"
        );
        assert_eq!(
            c.zscore("z", "e").decode::<i64>().await.unwrap(),
            9_007_199_254_740_992,
            "{at}"
        );
        assert_eq!(
            c.zscore("z", "missing")
                .decode::<Option<i128>>()
                .await
                .unwrap(),
            None,
            "{at}"
        );

        // The same in a pipeline and in a transaction.
        for transaction in [false, true] {
            let mut p = if transaction {
                c.transaction()
            } else {
                c.pipeline()
            };
            p.zscore("z", "big").send();
            p.zscore("z", "pinf").send();
            p.zscore("z", "five").send();
            let (big, pinf, five): (f64, f64, i64) = p.query().await.unwrap();
            assert_eq!((big, pinf, five), (1e300, f64::INFINITY, 5), "{at}");
            let r = p.query::<(i128, f64, i64)>().await;
            assert_decode(r, at, "1e300 as i128 in a pipeline");
        }

        // The same through a pool and a `Spread`.
        let pool = Pool::new(c.config().clone(), 1);
        let pooled = pool.get().await.unwrap();
        assert_decode(pooled.zscore("z", "big").decode::<i128>().await, at, "pool");
        assert_eq!(
            pooled.zscore("z", "big").await.unwrap(),
            Some(1e300),
            "{at}"
        );
        let spread = Spread::new(c.config().clone(), 2).unwrap();
        assert_decode(
            spread.call::<i128>(cmd!("ZSCORE", "z", "big")).await,
            at,
            "spread",
        );
        assert_eq!(
            spread
                .call::<f64>(cmd!("ZSCORE", "z", "big"))
                .await
                .unwrap(),
            1e300,
            "{at}"
        );

        // Text is the nearest double (as "0.1" is); as an integer it is exact.
        c.call::<()>(cmd!("SET", "n", "9007199254740993"))
            .await
            .unwrap();
        assert_eq!(
            c.get("n").decode::<f64>().await.unwrap(),
            9007199254740992.0,
            "{at}"
        );
        assert_eq!(
            c.get("n").decode::<i64>().await.unwrap(),
            9_007_199_254_740_993,
            "{at}"
        );
        c.call::<()>(cmd!("SET", "n", i64::MAX)).await.unwrap();
        assert_eq!(
            c.get("n").decode::<f64>().await.unwrap(),
            i64::MAX as f64,
            "{at}: text is the nearest double"
        );
        // A RESP integer (INCRBY's reply) is exact or refused.
        assert_decode(
            c.call::<f64>(cmd!("INCRBY", "n", 0)).await,
            at,
            "i64::MAX as f64",
        );
        assert_eq!(c.incrby("n", -1).await.unwrap(), i64::MAX - 1, "{at}");
        assert_decode(c.get("n").decode::<i32>().await, at, "i64 as i32");
        assert_eq!(
            c.call::<u64>(cmd!("INCRBY", "n", 1)).await.unwrap(),
            i64::MAX as u64,
            "{at}"
        );
    })
    .await;
}

/// Every way a script can make a server send an odd number: NaN (Redis 7.0 prints `-nan`),
/// a double of 1e300, big numbers with text that is not digits. Each decodes the same in both
/// protocols, and the connection stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_numbers_decode_the_same_in_both_protocols() {
    on_every_cell(|c, at| async move {
        let at = at.as_str();
        let eval = |body: &str| cmd!("EVAL", format!("redis.setresp(3) return {body}"), 0);
        let nan: f64 = c.call(eval("{double=0/0}")).await.unwrap();
        assert!(nan.is_nan(), "{at}: {nan}");
        let nan: f64 = c.call(eval("{double=-(0/0)}")).await.unwrap();
        assert!(nan.is_nan(), "{at}: {nan}");
        assert_decode(c.call::<i64>(eval("{double=0/0}")).await, at, "NaN as i64");
        assert_eq!(
            c.call::<f64>(eval("{double=1/0}")).await.unwrap(),
            f64::INFINITY,
            "{at}"
        );
        assert_eq!(
            c.call::<f64>(eval("{double=-1/0}")).await.unwrap(),
            f64::NEG_INFINITY,
            "{at}"
        );
        assert_eq!(
            c.call::<f64>(eval("{double=1e300}")).await.unwrap(),
            1e300,
            "{at}"
        );
        assert_decode(
            c.call::<i128>(eval("{double=1e300}")).await,
            at,
            "1e300 as i128",
        );
        assert_eq!(
            c.call::<i64>(eval("{double=42}")).await.unwrap(),
            42,
            "{at}"
        );

        // Big numbers: digits are exact; a script's other text reads as what it spells.
        let big = "170141183460469231731687303715884105727";
        let n: i128 = c
            .call(eval(&format!("{{big_number='{big}'}}")))
            .await
            .unwrap();
        assert_eq!(n, i128::MAX, "{at}");
        assert_decode(
            c.call::<i64>(eval(&format!("{{big_number='{big}'}}")))
                .await,
            at,
            "i128::MAX as i64",
        );
        // A big number (RESP2: text) is the nearest double in both protocols.
        assert_eq!(
            c.call::<f64>(eval("{big_number='9007199254740993'}"))
                .await
                .unwrap(),
            9007199254740992.0,
            "{at}"
        );
        assert_eq!(
            c.call::<i64>(eval("{big_number='1e5'}")).await.unwrap(),
            100_000,
            "{at}"
        );
        assert_eq!(
            c.call::<f64>(eval("{big_number='1e5'}")).await.unwrap(),
            1e5,
            "{at}"
        );
        assert_decode(
            c.call::<i64>(eval("{big_number='abc'}")).await,
            at,
            "abc as i64",
        );
        assert_eq!(
            c.call::<String>(eval("{big_number='abc'}")).await.unwrap(),
            "abc",
            "{at}"
        );
        // Booleans are integers and strings in both protocols (RESP2 sends :1).
        assert_eq!(c.call::<i64>(eval("true")).await.unwrap(), 1, "{at}");
        assert_eq!(c.call::<f64>(eval("true")).await.unwrap(), 1.0, "{at}");
        assert_eq!(c.call::<String>(eval("true")).await.unwrap(), "1", "{at}");
        // Nothing above broke the connection.
        assert_eq!(
            c.call::<String>(cmd!("PING")).await.unwrap(),
            "PONG",
            "{at}"
        );
    })
    .await;
}

/// Fields of a hash decoded into a derived struct, from HGETALL (a RESP3 map, a RESP2 flat
/// array) and from HRANDFIELD … WITHVALUES (RESP3: an array of pairs).
#[derive(FromRedis, Debug, PartialEq)]
struct Point {
    x: f64,
    y: i64,
}

/// A stream entry's fields.
type Fields = HashMap<String, String>;

/// A stream entry: its id and its fields.
#[derive(FromRedis, Debug, PartialEq)]
struct Entry(String, HashMap<String, String>);

/// The examples: ZRANGE … WITHSCORES and HRANDFIELD … WITHVALUES into maps and pairs in
/// both protocols; and the nested shapes servers produce (XRANGE, XREAD, CONFIG GET, HGETALL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maps_decode_from_every_shape_in_both_protocols() {
    on_every_cell(|c, at| async move {
        let at = at.as_str();
        c.zadd("z", 1.5, "a").await.unwrap();
        c.zadd("z", f64::INFINITY, "b").await.unwrap();
        c.zadd("z", -2.0, "c").await.unwrap();
        let want: Vec<(String, f64)> = vec![
            ("c".into(), -2.0),
            ("a".into(), 1.5),
            ("b".into(), f64::INFINITY),
        ];

        let h: HashMap<String, f64> = c.zrange("z", 0, -1).withscores().decode().await.unwrap();
        assert_eq!(h, want.iter().cloned().collect(), "{at}");
        let b: BTreeMap<String, f64> = c.zrange("z", 0, -1).withscores().decode().await.unwrap();
        assert_eq!(b.len(), 3, "{at}");
        let v: Vec<(String, f64)> = c.zrange("z", 0, -1).withscores().decode().await.unwrap();
        assert_eq!(v, want, "{at}");
        // Two members: an array of two pairs, or a flat array of four.
        let two: HashMap<String, f64> = c.zrange("z", 0, 1).withscores().decode().await.unwrap();
        assert_eq!(two.len(), 2, "{at}");
        let one: HashMap<String, i64> = c.zrange("z", 0, 0).withscores().decode().await.unwrap();
        assert_eq!(one["c"], -2, "{at}");
        assert_decode(
            c.zrange("z", 0, -1)
                .withscores()
                .decode::<HashMap<String, i64>>()
                .await,
            at,
            "inf score as i64 in a map",
        );
        let via_call: HashMap<String, f64> = c
            .call(cmd!("ZRANGE", "z", 0, -1, "WITHSCORES"))
            .await
            .unwrap();
        assert_eq!(via_call.len(), 3, "{at}");
        let (m, p): (HashMap<String, f64>, Vec<(String, f64)>) = {
            let mut t = c.transaction();
            t.zrange("z", 0, -1).withscores().send();
            t.zrange("z", 0, -1).withscores().send();
            t.query().await.unwrap()
        };
        assert_eq!((m.len(), p), (3, want.clone()), "{at}");

        // HRANDFIELD … WITHVALUES and HGETALL.
        c.call::<()>(cmd!("HSET", "h", "x", "2.5", "y", "-7"))
            .await
            .unwrap();
        let r: HashMap<String, String> = c
            .hrandfield("h")
            .count(2)
            .withvalues()
            .decode()
            .await
            .unwrap();
        assert_eq!(
            r,
            HashMap::from([("x".into(), "2.5".into()), ("y".into(), "-7".into())]),
            "{at}"
        );
        let r: Vec<(String, String)> = c
            .hrandfield("h")
            .count(2)
            .withvalues()
            .decode()
            .await
            .unwrap();
        assert_eq!(r.len(), 2, "{at}");
        let point = Point { x: 2.5, y: -7 };
        let from_rand: Point = c
            .hrandfield("h")
            .count(2)
            .withvalues()
            .decode()
            .await
            .unwrap();
        assert_eq!(from_rand, point, "{at}");
        let from_all: Point = c.hgetall("h").decode().await.unwrap();
        assert_eq!(from_all, point, "{at}");

        // CONFIG GET, one and several parameters.
        let cfg: HashMap<String, String> = c
            .call(cmd!("CONFIG", "GET", "maxmemory-policy"))
            .await
            .unwrap();
        assert_eq!(cfg["maxmemory-policy"], "noeviction", "{at}");
        let cfg: BTreeMap<String, u64> = c
            .call(cmd!("CONFIG", "GET", "maxmemory", "databases"))
            .await
            .unwrap();
        assert_eq!(cfg["databases"], 16, "{at}");

        // Streams: XRANGE is an array of [id, fields] pairs in both protocols; XREAD is a map in
        // RESP3 and an array of [stream, entries] pairs in RESP2.
        for (id, value) in [("1-1", "one"), ("2-1", "two")] {
            c.call::<()>(cmd!("XADD", "s", id, "f", value, "g", "x"))
                .await
                .unwrap();
        }
        let by_id: HashMap<String, HashMap<String, String>> =
            c.xrange("s", "-", "+").decode().await.unwrap();
        assert_eq!(by_id["2-1"]["f"], "two", "{at}");
        let in_order: Vec<(String, Vec<(String, String)>)> =
            c.xrange("s", "-", "+").decode().await.unwrap();
        assert_eq!(in_order[0].0, "1-1", "{at}");
        assert_eq!(
            in_order[0].1,
            [("f".into(), "one".into()), ("g".into(), "x".into())],
            "{at}"
        );
        let entries: Vec<Entry> = c.xrange("s", "-", "+").decode().await.unwrap();
        assert_eq!(entries[1].1["f"], "two", "{at}");
        let read: HashMap<String, Vec<Entry>> =
            c.call(cmd!("XREAD", "STREAMS", "s", "0")).await.unwrap();
        assert_eq!(read["s"].len(), 2, "{at}");
        assert_eq!(read["s"][0].0, "1-1", "{at}");
        let read: HashMap<String, HashMap<String, BTreeMap<String, String>>> =
            c.call(cmd!("XREAD", "STREAMS", "s", "0")).await.unwrap();
        assert_eq!(read["s"]["1-1"]["g"], "x", "{at}");
        let read: Vec<(String, Vec<(String, Fields)>)> =
            c.call(cmd!("XREAD", "STREAMS", "s", "0")).await.unwrap();
        assert_eq!(read[0].1[1].1["f"], "two", "{at}");

        // A list of maps (one per HGETALL) in a pipeline.
        c.call::<()>(cmd!("HSET", "h2", "x", "1e3", "y", "+4"))
            .await
            .unwrap();
        let mut p = c.pipeline();
        p.hgetall("h").send();
        p.hgetall("h2").send();
        let points: Vec<Point> = p.query().await.unwrap();
        assert_eq!(points[1], Point { x: 1000.0, y: 4 }, "{at}");
        let maps: Vec<HashMap<String, f64>> = p.query().await.unwrap();
        assert_eq!(maps[1]["x"], 1000.0, "{at}");
    })
    .await;
}

/// Answers a RESP3 handshake (HELLO 3 accepted, everything else `+OK`) and returns the first
/// command after it.
fn handshake_resp3(conn: &mut FaultConn) -> Option<Vec<Vec<u8>>> {
    loop {
        let cmd = conn.read_command()?;
        match &cmd.first()?.to_ascii_uppercase()[..] {
            b"HELLO" => conn.write(b"%2\r\n+server\r\n+fault\r\n+proto\r\n:3\r\n"),
            b"AUTH" | b"SELECT" | b"CLIENT" => conn.reply_ok(),
            _ => return Some(cmd),
        }
    }
}

/// The double spellings printf writes and RESP3 lets servers before 7.2 send, and what each
/// must decode to (`None`: NaN).
const SPELLINGS: [(&str, Option<f64>); 16] = [
    ("nan", None),
    ("-nan", None),
    ("NaN", None),
    ("NAN", None),
    ("-NaN", None),
    ("nan(0x1)", None),
    ("-nan(0x8000000000000)", None),
    ("inf", Some(f64::INFINITY)),
    ("-inf", Some(f64::NEG_INFINITY)),
    ("Inf", Some(f64::INFINITY)),
    ("INF", Some(f64::INFINITY)),
    ("infinity", Some(f64::INFINITY)),
    ("-Infinity", Some(f64::NEG_INFINITY)),
    ("INFINITY", Some(f64::INFINITY)),
    ("1.0000000000000001e+300", Some(1e300)),
    ("1e+300", Some(1e300)),
];

/// Each spelling as a RESP3 double and as a RESP2 bulk string, from a scripted server: the
/// caller gets the value, the connection stays up (one connection for everything), and both
/// protocols agree, also as an integer (a decode error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_libc_spelling_of_nan_and_inf_from_a_scripted_server() {
    for engine in engines() {
        for protocol in PROTOCOLS {
            let at = format!("{engine:?}/{protocol:?}");
            let fault = FaultServer::start(move |mut conn| {
                let first = match protocol {
                    Protocol::Resp3 => handshake_resp3(&mut conn),
                    _ => conn.handshake_resp2(),
                };
                let mut next = first;
                // GET <spelling> answers that spelling; PING answers PONG.
                while let Some(cmd) = next {
                    match cmd.get(1) {
                        Some(text) if protocol == Protocol::Resp3 => {
                            conn.write(b",");
                            conn.write(text);
                            conn.write(b"\r\n");
                        }
                        Some(text) => {
                            conn.write(format!("${}\r\n", text.len()).as_bytes());
                            conn.write(text);
                            conn.write(b"\r\n");
                        }
                        None => conn.write(b"+PONG\r\n"),
                    }
                    next = conn.read_command();
                }
            });
            let c = Client::new(
                Config::from_url(&fault.url())
                    .unwrap()
                    .engine(engine)
                    .protocol(protocol),
            )
            .unwrap();
            for (spelling, want) in SPELLINGS {
                let got: f64 = c.call(cmd!("GET", spelling)).await.unwrap_or_else(|e| {
                    panic!("{at}: {spelling}: {e}");
                });
                match want {
                    None => assert!(got.is_nan(), "{at}: {spelling} -> {got}"),
                    Some(w) => assert_eq!(got, w, "{at}: {spelling}"),
                }
                assert_decode(c.call::<i64>(cmd!("GET", spelling)).await, &at, spelling);
                let as_f32: f32 = match c.call(cmd!("GET", spelling)).await {
                    Ok(f) => f,
                    Err(e) => {
                        assert!(matches!(e, Error::Decode { .. }), "{at}: {spelling}: {e}");
                        assert_eq!(want, Some(1e300), "{at}: only 1e300 is beyond f32");
                        continue;
                    }
                };
                assert_eq!(as_f32.is_nan(), got.is_nan(), "{at}: {spelling}");
                if !got.is_nan() {
                    assert_eq!(f64::from(as_f32), got, "{at}: {spelling}");
                }
                // In a pipeline, next to other replies.
                let mut p = c.pipeline();
                p.add(cmd!("GET", spelling)).add(cmd!("PING"));
                let (d, pong): (Value, String) = p.query().await.unwrap();
                assert!(
                    matches!(d, Value::Double(_) | Value::Bulk(_)),
                    "{at}: {d:?}"
                );
                assert_eq!(pong, "PONG", "{at}");
            }
            let pong: String = c.call(cmd!("PING")).await.unwrap();
            assert_eq!(pong, "PONG", "{at}");
            assert_eq!(
                fault.accepted(),
                1,
                "{at}: no spelling may close the connection"
            );
        }
    }
}
