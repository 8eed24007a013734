//! Exact argv, key positions and flags of generated commands for the hard cases of the spec:
//! options written in wire order whatever order they are chained in, oneofs where the last
//! choice wins, `multiple`, derived counts, `multiple_token`, keyword-named methods; and the
//! same methods on a pipeline. No server needed: nothing connects until a call is awaited.

use ringdis::commands::{
    Aggregate, ClientKillClientType, Get, LeftOrRight, OverflowBlock, Skipme, Unit,
};
use ringdis::{Client, Cmd, Commands, Pipeline};

fn client() -> Client {
    Client::open("redis://127.0.0.1:1").expect("a client that never connects")
}

fn keys(c: &Cmd) -> Vec<String> {
    c.keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

#[test]
fn set_options_in_wire_order_last_choice_wins() {
    let c = client();
    assert_eq!(c.set("k", "v").into_cmd().to_string(), "SET k v");
    let cmd = c.set("k", "v").ex(10).get().nx().into_cmd();
    assert_eq!(cmd.to_string(), "SET k v NX GET EX 10");
    assert_eq!(keys(&cmd), ["k"]);
    assert_eq!(cmd.key_indices(), [1]);
    assert!(cmd.flags().write && !cmd.flags().readonly && !cmd.flags().blocking);
    assert_eq!(
        c.set("k", 1).ex(1).px(5).into_cmd().to_string(),
        "SET k 1 PX 5"
    );
    assert_eq!(
        c.set("k", 1).keepttl().xx().into_cmd().to_string(),
        "SET k 1 XX KEEPTTL"
    );
    assert_eq!(
        c.set("k", 1).exat(17).into_cmd().to_string(),
        "SET k 1 EXAT 17"
    );
    assert_eq!(
        c.set("k", 1).pxat(17).into_cmd().to_string(),
        "SET k 1 PXAT 17"
    );
    assert_eq!(
        c.set("k", 1).ifeq("old").into_cmd().to_string(),
        "SET k 1 IFEQ old"
    );
    assert!(c.get("k").into_cmd().flags().readonly);
}

#[test]
fn pairs_positional_or_as_an_iterator() {
    let c = client();
    let cmd = c.hset("user:1", "name", "ada").and("born", 1815).into_cmd();
    assert_eq!(cmd.to_string(), "HSET user:1 name ada born 1815");
    assert_eq!(keys(&cmd), ["user:1"]);
    let cmd = c.mset([("a", 1), ("b", 2)]).into_cmd();
    assert_eq!(cmd.to_string(), "MSET a 1 b 2");
    assert_eq!(keys(&cmd), ["a", "b"]);
    assert_eq!(cmd.key_indices(), [1, 3]);
    let cmd = c.mset(vec![("a", "x")]).and("b", "y").into_cmd();
    assert_eq!(cmd.to_string(), "MSET a x b y");
    assert_eq!(keys(&cmd), ["a", "b"]);
    let cmd = c.del(["a", "b"]).into_cmd();
    assert_eq!(
        (cmd.to_string(), keys(&cmd)),
        ("DEL a b".into(), vec!["a".into(), "b".into()])
    );
    assert_eq!(c.del("a").into_cmd().to_string(), "DEL a");
}

#[test]
fn zadd_flags_and_score_member_pairs() {
    let c = client();
    let cmd = c
        .zadd("z", 1.5, "a")
        .and(2.0, "b")
        .ch()
        .gt()
        .nx()
        .into_cmd();
    assert_eq!(cmd.to_string(), "ZADD z NX GT CH 1.5 a 2.0 b");
    assert_eq!(keys(&cmd), ["z"]);
    let cmd = c.zadd("z", 1.0, "a").incr().xx().lt().into_cmd();
    assert_eq!(cmd.to_string(), "ZADD z XX LT INCR 1.0 a");
}

#[test]
fn xadd_trim_and_id() {
    let c = client();
    let cmd = c
        .xadd("s", "f", "v")
        .auto_id()
        .approximately()
        .maxlen(1000)
        .into_cmd();
    assert_eq!(cmd.to_string(), "XADD s MAXLEN ~ 1000 * f v");
    assert_eq!(keys(&cmd), ["s"]);
    let cmd = c
        .xadd("s", "f", "v")
        .and("g", "w")
        .id("1-1")
        .limit(10)
        .equal()
        .minid("0-1")
        .nomkstream()
        .into_cmd();
    assert_eq!(
        cmd.to_string(),
        "XADD s NOMKSTREAM MINID = 0-1 LIMIT 10 1-1 f v g w"
    );
}

#[test]
fn xread_streams_keys_then_ids() {
    let c = client();
    let cmd = c
        .xread(["a", "b"], ["0", "$"])
        .block(100)
        .count(5)
        .into_cmd();
    assert_eq!(cmd.to_string(), "XREAD COUNT 5 BLOCK 100 STREAMS a b 0 $");
    assert_eq!(keys(&cmd), ["a", "b"]);
    assert!(cmd.flags().blocking && cmd.flags().readonly);
    let cmd = c.xreadgroup("g", "c", "s", ">").noack().into_cmd();
    assert_eq!(cmd.to_string(), "XREADGROUP GROUP g c NOACK STREAMS s >");
    assert_eq!(keys(&cmd), ["s"]);
}

#[test]
fn derived_counts() {
    let c = client();
    let cmd = c
        .eval("return 1")
        .arg(["x", "y"])
        .key(["k1", "k2"])
        .into_cmd();
    assert_eq!(cmd.to_string(), "EVAL return 1 2 k1 k2 x y");
    assert_eq!(keys(&cmd), ["k1", "k2"]);
    assert_eq!(c.eval("return 1").into_cmd().to_string(), "EVAL return 1 0");
    let cmd = c.fcall("f").key("k").key("l").arg(1).into_cmd();
    assert_eq!(cmd.to_string(), "FCALL f 2 k l 1");
    assert_eq!(keys(&cmd), ["k", "l"]);
    let cmd = c.lmpop(["a", "b"], LeftOrRight::Left).count(2).into_cmd();
    assert_eq!(cmd.to_string(), "LMPOP 2 a b LEFT COUNT 2");
    assert_eq!(keys(&cmd), ["a", "b"]);
    let cmd = c
        .zunionstore("d", ["a", "b"])
        .aggregate(Aggregate::Max)
        .weights(1)
        .weights(2.5)
        .into_cmd();
    assert_eq!(
        cmd.to_string(),
        "ZUNIONSTORE d 2 a b WEIGHTS 1 2.5 AGGREGATE MAX"
    );
    assert_eq!(keys(&cmd), ["d", "a", "b"]);
    let cmd = c.hexpire("h", 10, ["a", "b"]).nx().into_cmd();
    assert_eq!(cmd.to_string(), "HEXPIRE h 10 NX FIELDS 2 a b");
    assert_eq!(keys(&cmd), ["h"]);
    let cmd = c.msetex([("a", 1), ("b", 2)]).ex(5).into_cmd();
    assert_eq!(cmd.to_string(), "MSETEX 2 a 1 b 2 EX 5");
    assert_eq!(keys(&cmd), ["a", "b"]);
}

#[test]
fn sort_repeats_get() {
    let c = client();
    let cmd = c
        .sort("ids")
        .store("dst")
        .get("w_*")
        .get("#")
        .desc()
        .limit(0, 10)
        .by("w_*")
        .alpha()
        .into_cmd();
    assert_eq!(
        cmd.to_string(),
        "SORT ids BY w_* LIMIT 0 10 GET w_* GET # DESC ALPHA STORE dst"
    );
    assert_eq!(keys(&cmd), ["ids", "dst"]);
    let cmd = c.sort_ro("ids").get(["a", "b"]).into_cmd();
    assert_eq!(cmd.to_string(), "SORT_RO ids GET a GET b");
}

#[test]
fn bitfield_operations_add_up() {
    let c = client();
    let cmd = c
        .bitfield("k")
        .incrby(Some(OverflowBlock::Sat), "u8", 0, 1)
        .get("u4", 0)
        .set(None, "i5", 100, 1)
        .into_cmd();
    assert_eq!(
        cmd.to_string(),
        "BITFIELD k OVERFLOW SAT INCRBY u8 0 1 GET u4 0 SET i5 100 1"
    );
    assert_eq!(keys(&cmd), ["k"]);
}

#[test]
fn client_kill_filters() {
    let c = client();
    let cmd = c
        .client_kill()
        .id([1, 2])
        .type_(ClientKillClientType::Normal)
        .skipme(Skipme::No)
        .maxage(10)
        .into_cmd();
    assert_eq!(
        cmd.to_string(),
        "CLIENT KILL ID 1 2 TYPE NORMAL SKIPME NO MAXAGE 10"
    );
    assert!(keys(&cmd).is_empty());
    let cmd = c.client_kill().old_format("10.0.0.1:5000").into_cmd();
    assert_eq!(cmd.to_string(), "CLIENT KILL 10.0.0.1:5000");
    // A filter after the old form stays a CLIENT KILL argument (the server refuses the mix):
    // on a pipeline, `.type_()` must not fall to the TYPE command.
    let mut p = c.pipeline();
    let cmd = p
        .client_kill()
        .old_format("10.0.0.1:5000")
        .type_(ClientKillClientType::Normal)
        .into_cmd();
    assert_eq!(cmd.to_string(), "CLIENT KILL 10.0.0.1:5000 TYPE NORMAL");
    assert!(p.is_empty());
}

#[test]
fn geosearch_shapes() {
    let c = client();
    let cmd = c
        .geosearch("g")
        .withdist()
        .byradius(200.0, Unit::Km)
        .count(2)
        .any()
        .fromlonlat(15.0, 37.5)
        .asc()
        .into_cmd();
    assert_eq!(
        cmd.to_string(),
        "GEOSEARCH g FROMLONLAT 15.0 37.5 BYRADIUS 200.0 KM ASC COUNT 2 ANY WITHDIST"
    );
    assert_eq!(keys(&cmd), ["g"]);
    let cmd = c
        .geosearch("g")
        .frommember("m")
        .bybox(1.0, 2.0, Unit::M)
        .into_cmd();
    assert_eq!(cmd.to_string(), "GEOSEARCH g FROMMEMBER m BYBOX 1.0 2.0 M");
    let cmd = c
        .geosearch("g")
        .bypolygon([(1.0, 2.0), (3.0, 4.0), (5.0, 6.5)])
        .into_cmd();
    assert_eq!(
        cmd.to_string(),
        "GEOSEARCH g BYPOLYGON 3 1.0 2.0 3.0 4.0 5.0 6.5"
    );
    let cmd = c
        .geosearchstore("dst", "src")
        .frommember("m")
        .bybox(1.0, 1.0, Unit::Mi)
        .into_cmd();
    assert_eq!(keys(&cmd), ["dst", "src"]);
}

#[test]
fn keyword_names_and_subcommands() {
    let c = client();
    let cmd = c.type_("k").into_cmd();
    assert_eq!(cmd.to_string(), "TYPE k");
    assert_eq!(keys(&cmd), ["k"]);
    assert_eq!(c.move_("k", 2).into_cmd().to_string(), "MOVE k 2");
    assert_eq!(
        c.config_get(["maxmemory", "port"]).into_cmd().to_string(),
        "CONFIG GET maxmemory port"
    );
    assert_eq!(c.config_get("maxmemory").into_cmd().args().len(), 3);
    let cmd = c
        .migrate("h", 6379, 0, 5000)
        .copy()
        .keys(["a", "b"])
        .empty_string()
        .into_cmd();
    assert_eq!(cmd.to_string(), "MIGRATE h 6379  0 5000 COPY KEYS a b");
    assert_eq!(cmd.args().iter().nth(3), Some(&b""[..]));
    assert!(c.blpop(["a"], 1.0).into_cmd().flags().blocking);
    assert_eq!(
        c.object_encoding("k").into_cmd().to_string(),
        "OBJECT ENCODING k"
    );
}

#[test]
fn same_methods_on_a_pipeline() {
    let c = client();
    let mut p = c.pipeline();
    p.incr("n").get("k").send();
    // Dropped without `send()`: still added.
    let _ = p.set("a", 1).nx();
    p.hset("h", "f", "v").and("g", "w").send();
    // `into_cmd` takes a command out without adding it.
    let cmd = p.del("x").into_cmd();
    assert_eq!(cmd.to_string(), "DEL x");
    let cmds: Vec<String> = p.cmds().iter().map(Cmd::to_string).collect();
    assert_eq!(cmds, ["INCR n", "GET k", "SET a 1 NX", "HSET h f v g w"]);
    assert_eq!(keys(&p.cmds()[3]), ["h"]);
}

#[test]
fn builders_are_send() {
    fn send<T: Send>(_: &T) {}
    let c = client();
    let b: Get<&Client> = c.get("k");
    send(&b);
    drop(b);
    let mut p = c.pipeline();
    let b: Get<&mut Pipeline> = p.get("k");
    send(&b);
    send(&c.get("k").send());
}
