//! Issue #11, kind 11: the generated methods' argument and reply types match what the servers
//! take and send (Valkey 9 and Redis 7.0, RESP2 and RESP3, epoll and io_uring): the corrected
//! argument types of `codegen/overrides.json`, the typed default replies of `replies.json`
//! checked for their values (commands_live.rs checks every command's shape), and the
//! SCAN-family streams.

mod support;

use futures::StreamExt;
use ringdis::commands::{LeftOrRight, MinOrMax, OverflowBlock};
use ringdis::{cmd, Bytes, Commands, Error, Pool, ScoreBound, Spread, Value};
use ringdis_tests::{Server, ServerKind};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Runs `$body` once per server kind × engine × protocol, with `$c` a client on a flushed
/// server, `$at` the cell's label and `$kind` the server kind.
macro_rules! each_cell {
    (|$c:ident, $at:ident, $kind:ident| $body:block) => {
        for $kind in ServerKind::ALL {
            let server = Server::start($kind);
            for engine in support::engines() {
                for protocol in support::PROTOCOLS {
                    let $at = support::label($kind, engine, protocol);
                    let $c = support::client(&server, engine, protocol);
                    $c.flushall().await.unwrap();
                    $body
                }
            }
        }
    };
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn close(a: f64, b: f64, eps: f64) -> bool {
    (a - b).abs() < eps
}

/// `zincrby("z", 1.5, "a")` compiles and adds 1.5 (the spec says integer); WEIGHTS are floats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zincrby_and_weights_take_floats() {
    each_cell!(|c, at, _kind| {
        c.zadd("z", 1.0, "a").await.unwrap();
        let score: f64 = c.zincrby("z", 1.5, "a").await.unwrap();
        assert_eq!(score, 2.5, "{at}");
        let score = c.zincrby("z", -0.25, "a").await.unwrap();
        assert_eq!(score, 2.25, "{at}");
        let n = c
            .zunionstore("u", ["z", "z"])
            .weights([0.5, 1.5])
            .await
            .unwrap();
        assert_eq!(n, 1, "{at}");
        assert_eq!(c.zscore("u", "a").await.unwrap(), Some(4.5), "{at}");
        let inter: Vec<(Bytes, f64)> = c
            .zinter(["z", "u"])
            .weights([2.0, 0.5])
            .withscores()
            .decode()
            .await
            .unwrap();
        assert_eq!(inter, [(b("a"), 6.75)], "{at}");
        assert_eq!(c.zscore("z", "nope").await.unwrap(), None, "{at}");
        // Infinite scores go out as `inf`/`-inf` and come back as infinities.
        c.zadd("z", f64::INFINITY, "top")
            .and(f64::NEG_INFINITY, "bottom")
            .await
            .unwrap();
        assert_eq!(
            c.zscore("z", "top").await.unwrap(),
            Some(f64::INFINITY),
            "{at}"
        );
        assert_eq!(
            c.zincrby("z", 1.0, "bottom").await.unwrap(),
            f64::NEG_INFINITY,
            "{at}"
        );
        c.zrem("z", ["top", "bottom"]).await.unwrap();
        assert_eq!(c.zrank("z", "a").await.unwrap(), Some(0), "{at}");
        assert_eq!(c.zrank("z", "nope").await.unwrap(), None, "{at}");
    });
}

/// Score bounds: exclusive and infinite, as `ScoreBound` or the server's own spellings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn score_bounds_are_exclusive_or_infinite() {
    each_cell!(|c, at, _kind| {
        c.zadd("z", 1.0, "a")
            .and(2.0, "b")
            .and(3.0, "c")
            .await
            .unwrap();
        let above_one = c
            .zrangebyscore("z", ScoreBound::Exclusive(1.0), ScoreBound::PosInf)
            .await
            .unwrap();
        assert_eq!(above_one, [b("b"), b("c")], "{at}");
        let down = c
            .zrevrangebyscore("z", ScoreBound::Exclusive(3.0), ScoreBound::NegInf)
            .await
            .unwrap();
        assert_eq!(down, [b("b"), b("a")], "{at}");
        let n = c
            .zcount("z", ScoreBound::NegInf, ScoreBound::Exclusive(3.0))
            .await
            .unwrap();
        assert_eq!(n, 2, "{at}");
        assert_eq!(c.zcount("z", "(1", "+inf").await.unwrap(), 2, "{at}");
        assert_eq!(c.zcount("z", 1.0, 2.0).await.unwrap(), 2, "{at}");
        let removed = c
            .zremrangebyscore("z", ScoreBound::Inclusive(2.0), ScoreBound::PosInf)
            .await
            .unwrap();
        assert_eq!(removed, 2, "{at}");
        let err = c
            .zcount("z", ScoreBound::Exclusive(f64::NAN), ScoreBound::PosInf)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Client { .. }), "{at}: {err}");
    });
}

/// GEODIST is `Option<f64>`, GEOPOS `Vec<Option<(f64, f64)>>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geo_replies_are_numbers() {
    each_cell!(|c, at, _kind| {
        c.geoadd("geo", 13.361389, 38.115556, "Palermo")
            .and(15.087269, 37.502669, "Catania")
            .await
            .unwrap();
        let d: Option<f64> = c.geodist("geo", "Palermo", "Catania").await.unwrap();
        assert!(
            d.is_some_and(|d| close(d, 166274.1516, 0.01)),
            "{at}: {d:?}"
        );
        let km = c.geodist("geo", "Palermo", "Catania").km().await.unwrap();
        assert!(
            km.is_some_and(|d| close(d, 166.2742, 0.001)),
            "{at}: {km:?}"
        );
        assert_eq!(
            c.geodist("geo", "Palermo", "Atlantis").await.unwrap(),
            None,
            "{at}"
        );
        let pos = c
            .geopos("geo")
            .member(["Palermo", "Atlantis"])
            .await
            .unwrap();
        assert_eq!(pos.len(), 2, "{at}");
        let (lon, lat) = pos[0].unwrap_or_else(|| panic!("{at}: no position"));
        assert!(
            close(lon, 13.361389, 1e-5) && close(lat, 38.115556, 1e-5),
            "{at}"
        );
        assert_eq!(pos[1], None, "{at}");
    });
}

/// SCAN, SSCAN, HSCAN and ZSCAN reply `(cursor, items)` with typed items.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_family_replies_are_typed() {
    each_cell!(|c, at, _kind| {
        c.mset([("k1", 1), ("k2", 2)]).await.unwrap();
        c.hset("h", "f", "v").and("g", "w").await.unwrap();
        c.sadd("s", ["x", "y"]).await.unwrap();
        c.zadd("z", 1.5, "m").and(-2.0, "n").await.unwrap();

        // A scan of a few keys: follow the cursor by hand, with the u64 the reply gave.
        let mut keys = BTreeSet::new();
        let mut cursor = 0u64;
        loop {
            let (next, page): (u64, Vec<Bytes>) = c.scan(cursor).count(2).await.unwrap();
            keys.extend(page);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let want: BTreeSet<Bytes> = ["k1", "k2", "h", "s", "z"].map(b).into();
        assert_eq!(keys, want, "{at}");

        let (cursor, fields) = c.hscan("h", 0).await.unwrap();
        assert_eq!(cursor, 0, "{at}");
        let fields: HashMap<Bytes, Bytes> = fields.into_iter().collect();
        assert_eq!(
            fields,
            HashMap::from([(b("f"), b("v")), (b("g"), b("w"))]),
            "{at}"
        );

        let (_, members) = c.sscan("s", "0").match_("x*").await.unwrap();
        assert_eq!(members, [b("x")], "{at}");

        let (_, mut scored): (u64, Vec<(Bytes, f64)>) = c.zscan("z", 0).await.unwrap();
        scored.sort_by(|a, b| a.1.total_cmp(&b.1));
        assert_eq!(scored, [(b("n"), -2.0), (b("m"), 1.5)], "{at}");
    });
}

/// Two sets of keys are equal; on failure, says which keys differ (not all 1000).
fn same(got: &HashSet<Bytes>, want: &HashSet<Bytes>, at: &str) {
    let missing: Vec<_> = want.difference(got).take(10).collect();
    let extra: Vec<_> = got.difference(want).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{at}: missing {missing:?}, unexpected {extra:?}"
    );
}

/// How many times the server ran `command` since the last `CONFIG RESETSTAT`.
async fn calls(c: &ringdis::Client, command: &str) -> u64 {
    let info: String = c.info().section("commandstats").await.unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `scan_iter` follows the cursor over 1000 keys and returns every key (as a set: SCAN may
/// repeat), with MATCH/COUNT/TYPE; the same for HSCAN/SSCAN/ZSCAN, on a client, a pooled client
/// and a `Spread`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_iter_returns_every_element() {
    let names: Vec<String> = (0..1000).map(|i| format!("key:{i}")).collect();
    let all: HashSet<Bytes> = names.iter().map(|n| b(n)).collect();
    each_cell!(|c, at, kind| {
        c.mset(names.iter().map(|n| (n.as_str(), 1))).await.unwrap();
        c.call::<()>(cmd!("CONFIG", "RESETSTAT")).await.unwrap();
        let got: HashSet<Bytes> = c.scan_iter().count(37).collect_all().await.unwrap();
        same(&got, &all, &at);
        assert!(calls(&c, "scan").await > 5, "{at}: SCAN was not followed");

        // MATCH, and the Stream impl.
        let ones: HashSet<Bytes> = c
            .scan_iter()
            .match_("key:1*")
            .count(100)
            .map(|k| k.unwrap())
            .collect()
            .await;
        let want: HashSet<Bytes> = all
            .iter()
            .filter(|k| k.starts_with(b"key:1"))
            .cloned()
            .collect();
        same(&ones, &want, &at);

        // TYPE: only the hash among 1000 strings.
        let fields: Vec<(String, usize)> = (0..1000).map(|i| (format!("f{i}"), i)).collect();
        c.hset("big:hash", "f0", 0).await.unwrap();
        c.call::<()>(cmd!("HSET", "big:hash", fields.clone()))
            .await
            .unwrap();
        let hashes: Vec<Bytes> = c.scan_iter().type_("hash").collect_all().await.unwrap();
        assert_eq!(hashes, [b("big:hash")], "{at}");

        // HSCAN over a hash big enough to take many pages.
        let got: HashMap<Bytes, Bytes> = c
            .hscan_iter("big:hash")
            .count(50)
            .collect_all()
            .await
            .unwrap();
        assert_eq!(got.len(), 1000, "{at}");
        assert_eq!(got[&b("f999")], b("999"), "{at}");

        let members: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
        c.sadd("big:set", members.clone()).await.unwrap();
        let got: HashSet<Bytes> = c
            .sscan_iter("big:set")
            .match_("m1*")
            .collect_all()
            .await
            .unwrap();
        assert_eq!(got.len(), 1 + 10 + 100, "{at}");

        let scored: Vec<(f64, String)> = (0..1000)
            .map(|i| (i as f64 + 0.5, format!("m{i}")))
            .collect();
        c.call::<()>(cmd!("ZADD", "big:zset", scored))
            .await
            .unwrap();
        let got: HashMap<Bytes, f64> = c.zscan_iter("big:zset").collect_all().await.unwrap();
        assert_eq!(got.len(), 1000, "{at}");
        assert_eq!(got[&b("m10")], 10.5, "{at}");

        // A missing key is empty; a key of another type is an error, then the end.
        let none: Vec<(Bytes, Bytes)> = c.hscan_iter("missing").collect_all().await.unwrap();
        assert!(none.is_empty(), "{at}");
        let mut wrong = c.zscan_iter("big:hash");
        let err = wrong.next_item().await.unwrap().unwrap_err();
        assert_eq!(err.server_kind(), Some("WRONGTYPE"), "{at}: {err}");
        assert!(wrong.next_item().await.is_none(), "{at}");
        // TYPE is SCAN's: refused before sending on SSCAN.
        let err = c
            .sscan_iter("big:set")
            .type_("set")
            .collect_all::<Vec<_>>()
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Client { .. }), "{at}: {err}");
        let _ = kind;
    });

    // A pooled client and a Spread: the whole scan runs on one connection.
    for kind in ServerKind::ALL {
        let server = Server::start(kind);
        for engine in support::engines() {
            let config = support::config(&server, engine);
            let pool = Pool::new(config.clone(), 2);
            let pooled = pool.get().await.unwrap();
            pooled.flushall().await.unwrap();
            pooled
                .mset(names.iter().map(|n| (n.as_str(), 1)))
                .await
                .unwrap();
            let got: HashSet<Bytes> = pooled.scan_iter().count(100).collect_all().await.unwrap();
            same(&got, &all, &format!("{kind}/{engine:?} pooled"));
            drop(pooled);
            let spread = Spread::new(config, 3).unwrap();
            let got: HashSet<Bytes> = spread.scan_iter().count(100).collect_all().await.unwrap();
            same(&got, &all, &format!("{kind}/{engine:?} spread"));
            spread.client().hset("h", "a", 1).await.unwrap();
            let h: Vec<(Bytes, Bytes)> = spread.hscan_iter("h").collect_all().await.unwrap();
            assert_eq!(h, [(b("a"), b("1"))], "{kind}/{engine:?} spread");
            spread.client().sadd("s", "x").await.unwrap();
            let s: Vec<Bytes> = spread.sscan_iter("s").collect_all().await.unwrap();
            assert_eq!(s, [b("x")], "{kind}/{engine:?} spread");
            spread.client().zadd("z", 2.5, "x").await.unwrap();
            let z: Vec<(Bytes, f64)> = spread.zscan_iter("z").collect_all().await.unwrap();
            assert_eq!(z, [(b("x"), 2.5)], "{kind}/{engine:?} spread");
        }
    }
}

/// Pops: `Option` of what was popped, nil (a timeout or nothing to pop) as `None`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pops_are_typed() {
    each_cell!(|c, at, _kind| {
        assert_eq!(c.blpop(["q"], 0.05).await.unwrap(), None, "{at}");
        c.rpush("q", ["a", "b", "c"]).await.unwrap();
        assert_eq!(
            c.blpop(["q"], 0.05).await.unwrap(),
            Some((b("q"), b("a"))),
            "{at}"
        );
        assert_eq!(
            c.brpop(["nope", "q"], 0.05).await.unwrap(),
            Some((b("q"), b("c"))),
            "{at}"
        );
        let popped = c
            .lmpop(["nope", "q"], LeftOrRight::Left)
            .count(5)
            .await
            .unwrap();
        assert_eq!(popped, Some((b("q"), vec![b("b")])), "{at}");
        assert_eq!(
            c.lmpop(["q"], LeftOrRight::Left).await.unwrap(),
            None,
            "{at}"
        );
        assert_eq!(
            c.blmpop(0.05, ["q"], LeftOrRight::Right).await.unwrap(),
            None,
            "{at}"
        );

        c.zadd("z", 1.5, "a")
            .and(2.5, "b")
            .and(3.5, "c")
            .and(4.5, "d")
            .await
            .unwrap();
        assert_eq!(c.zpopmin("z").await.unwrap(), [(b("a"), 1.5)], "{at}");
        // With COUNT, RESP3 nests the pairs and RESP2 does not: the same type either way.
        assert_eq!(
            c.zpopmax("z").count(2).await.unwrap(),
            [(b("d"), 4.5), (b("c"), 3.5)],
            "{at}"
        );
        assert!(c.zpopmin("empty").await.unwrap().is_empty(), "{at}");
        assert_eq!(
            c.bzpopmin(["z"], 0.05).await.unwrap(),
            Some((b("z"), b("b"), 2.5)),
            "{at}"
        );
        assert_eq!(c.bzpopmax(["z"], 0.05).await.unwrap(), None, "{at}");
        c.zadd("z", 7.0, "x").and(8.0, "y").await.unwrap();
        let got = c.zmpop(["z"], MinOrMax::Min).count(2).await.unwrap();
        assert_eq!(
            got,
            Some((b("z"), vec![(b("x"), 7.0), (b("y"), 8.0)])),
            "{at}"
        );
        assert_eq!(
            c.bzmpop(0.05, ["z"], MinOrMax::Max).await.unwrap(),
            None,
            "{at}"
        );
    });
}

/// Streams: entries as `(id, [(field, value)])`, XREAD by stream, XPENDING's summary,
/// XAUTOCLAIM's three parts, XINFO STREAM as a map.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_replies_are_typed() {
    each_cell!(|c, at, _kind| {
        c.xadd("st", "f", "1").id("1-0").await.unwrap();
        c.xadd("st", "f", "2")
            .and("g", "x")
            .id("2-0")
            .await
            .unwrap();
        let entries = c.xrange("st", "-", "+").await.unwrap();
        assert_eq!(
            entries,
            [
                (b("1-0"), vec![(b("f"), b("1"))]),
                (b("2-0"), vec![(b("f"), b("2")), (b("g"), b("x"))]),
            ],
            "{at}"
        );
        let back = c.xrevrange("st", "+", "-").count(1).await.unwrap();
        assert_eq!(back[0].0, b("2-0"), "{at}");

        let read = c.xread(["st"], ["1-0"]).await.unwrap();
        assert_eq!(read.len(), 1, "{at}");
        assert_eq!(read[0].0, b("st"), "{at}");
        assert_eq!(read[0].1, entries[1..], "{at}");
        assert!(c.xread(["st"], ["$"]).await.unwrap().is_empty(), "{at}");

        c.xgroup_create("st", "g").id("0").await.unwrap();
        let got = c.xreadgroup("g", "alice", ["st"], [">"]).await.unwrap();
        assert_eq!(got[0].1.len(), 2, "{at}");
        let (count, first, last, consumers) = c.xpending("st", "g").await.unwrap();
        assert_eq!(
            (count, first, last),
            (2, Some(b("1-0")), Some(b("2-0"))),
            "{at}"
        );
        assert_eq!(consumers, [(b("alice"), 2)], "{at}");
        let (next, claimed, deleted) = c.xautoclaim("st", "g", "bob", "0", "0").await.unwrap();
        assert_eq!((next, claimed.len()), (b("0-0"), 2), "{at}");
        assert!(deleted.is_empty(), "{at}");
        let claimed = c.xclaim("st", "g", "carol", "0", ["1-0"]).await.unwrap();
        assert_eq!(claimed, entries[..1], "{at}");
        c.xack("st", "g", ["1-0", "2-0"]).await.unwrap();
        assert_eq!(
            c.xpending("st", "g").await.unwrap(),
            (0, None, None, vec![]),
            "{at}"
        );

        let info = c.xinfo_stream("st").await.unwrap();
        assert_eq!(info.get("length"), Some(&Value::Int(2)), "{at}: {info:?}");
        let groups = c.xinfo_groups("st").await.unwrap();
        assert_eq!(
            groups[0].get("name").map(|n| n.as_bytes()),
            Some(Some(&b"g"[..])),
            "{at}"
        );
    });
}

/// Server and connection replies that were raw `Value`s or strings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_replies_are_typed() {
    each_cell!(|c, at, kind| {
        let (secs, micros) = c.time().await.unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(
            (secs - now).abs() < 60 && (0..1_000_000).contains(&micros),
            "{at}"
        );

        let hello = c.hello().await.unwrap();
        let proto = if at.ends_with("Resp3") { 3 } else { 2 };
        assert_eq!(
            hello.get("proto"),
            Some(&Value::Int(proto)),
            "{at}: {hello:?}"
        );
        assert!(hello.contains_key("version"), "{at}");
        let stats = c.memory_stats().await.unwrap();
        assert!(stats.contains_key("peak.allocated"), "{at}");
        let tracking = c.client_trackinginfo().await.unwrap();
        assert!(tracking.contains_key("flags"), "{at}");
        let user = c.acl_getuser("default").await.unwrap();
        assert!(user.is_some_and(|u| u.contains_key("flags")), "{at}");
        assert_eq!(c.acl_getuser("nobody").await.unwrap(), None, "{at}");
        assert_eq!(
            c.acl_dryrun("default", "get").arg("k").await.unwrap(),
            "OK",
            "{at}"
        );
        let numsub = c.pubsub_numsub().channel(["a", "b"]).await.unwrap();
        assert_eq!(numsub, HashMap::from([(b("a"), 0), (b("b"), 0)]), "{at}");
        let flags = c
            .command_getkeysandflags("set")
            .arg(["k", "v"])
            .await
            .unwrap();
        assert_eq!(flags.len(), 1, "{at}");
        assert_eq!(flags[0].0, b("k"), "{at}");
        assert!(flags[0].1.contains(&b("OW")), "{at}: {flags:?}");
        assert_eq!(
            c.migrate("127.0.0.1", 1, 0, 100)
                .key("missing")
                .await
                .unwrap(),
            "NOKEY",
            "{at}"
        );

        // BITFIELD: `#N` offsets (the spec says integer), and nil on OVERFLOW FAIL.
        let got = c
            .bitfield("bf")
            .set(None, "u8", "#1", 255)
            .get("u8", "#1")
            .get("u8", 8)
            .await
            .unwrap();
        assert_eq!(got, [Some(0), Some(255), Some(255)], "{at}");
        let got = c
            .bitfield("bf")
            .incrby(Some(OverflowBlock::Fail), "u8", "#1", 1)
            .await
            .unwrap();
        assert_eq!(got, [None], "{at}");
        let ro: Vec<i64> = c.bitfield_ro("bf").get("u8", "#1").await.unwrap();
        assert_eq!(ro, [255], "{at}");

        // HEXPIREAT takes Unix time (the spec says integer): a SystemTime, or seconds.
        if kind == ServerKind::Valkey {
            c.hset("h", "f", "v").await.unwrap();
            let at_time = SystemTime::now() + Duration::from_secs(3600);
            assert_eq!(c.hexpireat("h", at_time, ["f"]).await.unwrap(), [1], "{at}");
            let ms = c.hpexpiretime("h", ["f"]).await.unwrap();
            let want = at_time.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 * 1000;
            assert_eq!(ms, [want], "{at}");
            assert_eq!(
                c.hpexpireat("h", at_time, ["f"]).await.unwrap(),
                [1],
                "{at}"
            );
        }
    });
}
