//! Cluster routing from the spec against real cluster nodes: one `redis-server` (7.0) and one
//! `valkey-server` (9) started with `--cluster-enabled yes`, each owning every slot, so that
//! `CLUSTER KEYSLOT`, `COMMAND GETKEYS` and every command of a split can run on it.
//!
//! * `ringdis::slot` equals `CLUSTER KEYSLOT` for thousands of keys (plain, hash-tagged, the
//!   spec's edge cases, binary);
//! * for every command and subcommand of `commands.json` with key specs, a sample built from
//!   its arguments with its `key` arguments marked (the generator's rule) has the keys the
//!   server's `COMMAND GETKEYS` finds, and its slot (`cmd_slot`) is the one the server gives
//!   them; across slots it is refused (CROSSSLOT) unless the spec lets it be split;
//! * a representative set of generated builders (MSET, EVAL with keys, XREAD STREAMS,
//!   ZUNIONSTORE, SORT … STORE, MIGRATE … KEYS, LMPOP, GEORADIUS … STORE…) mark the keys the
//!   server finds, in the slots it gives;
//! * split commands (MGET, MSET, DEL, EXISTS, TOUCH, UNLINK, MSETEX) run part by part and
//!   merge into what the caller asked for, on both protocols and every engine, and the
//!   response policies aggregate real replies.

mod support;

use ringdis::__route::{aggregate, cmd_slot, cmds_slot, plan, spec_keys, tips, Plan};
use ringdis::{cmd, slot, Client, Cmd, Commands, Error, Protocol, Value};
use ringdis_tests::{Server, ServerKind};
use serde_json::Value as Json;
use std::time::{Duration, Instant};
use support::{bounded, client, engines, label, PROTOCOLS};

/// A cluster node owning every slot, and a client for it.
async fn cluster_node(kind: ServerKind) -> (Server, Client) {
    let server = Server::builder(kind).arg("cluster-enabled", "yes").start();
    let c = client(&server, ringdis::Engine::Task, Protocol::Resp3);
    c.call::<()>(cmd!("CLUSTER", "ADDSLOTSRANGE", 0, 16383))
        .await
        .expect("CLUSTER ADDSLOTSRANGE");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info: String = c.call(cmd!("CLUSTER", "INFO")).await.expect("CLUSTER INFO");
        if info.contains("cluster_state:ok") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{kind}: cluster_state never ok:\n{info}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (server, c)
}

fn lossy(keys: &[Vec<u8>]) -> Vec<String> {
    keys.iter()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

/// The server's `CLUSTER KEYSLOT` of each key, in one pipeline.
async fn keyslots(c: &Client, keys: &[Vec<u8>]) -> Vec<u16> {
    if keys.is_empty() {
        return Vec::new();
    }
    let mut p = c.pipeline();
    for k in keys {
        p.add(cmd!("CLUSTER", "KEYSLOT", &k[..]));
    }
    p.query::<Vec<u16>>().await.expect("CLUSTER KEYSLOT")
}

/// The keys the server's `COMMAND GETKEYS` finds in `cmd`: `None` when it refuses the
/// arguments (other than "no key arguments", which is no keys).
async fn getkeys(c: &Client, cmd: &Cmd) -> Result<Vec<Vec<u8>>, String> {
    let mut getkeys = Cmd::new("COMMAND GETKEYS");
    for a in cmd.args().iter() {
        getkeys.push_arg(a);
    }
    match c.call::<Vec<Vec<u8>>>(getkeys).await {
        Ok(keys) => Ok(keys),
        Err(e) if e.to_string().contains("no key arguments") => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_is_cluster_keyslot() {
    let mut keys: Vec<Vec<u8>> = [
        "foo",
        "bar",
        "",
        "123456789",
        "{user1000}.following",
        "{user1000}.followers",
        "foo{}{bar}",
        "foo{{bar}}zap",
        "foo{bar}{zap}",
        "{}",
        "{",
        "}",
        "}{",
        "a{b",
        "a}b{c}",
        "{a}{b}",
        "{{}}",
    ]
    .iter()
    .map(|k| k.as_bytes().to_vec())
    .collect();
    keys.extend((0..2000).map(|i| format!("key:{i}").into_bytes()));
    keys.extend((0..500).map(|i| format!("x{{t{i}}}y").into_bytes()));
    keys.extend((0..=255u8).map(|b| vec![b, b'{', 255 - b, b'}', b]));
    keys.extend((0..=255u8).map(|b| vec![b; (b % 7) as usize + 1]));
    for kind in ServerKind::ALL {
        let (_server, c) = cluster_node(kind).await;
        let theirs = bounded(Duration::from_secs(30), "KEYSLOT", keyslots(&c, &keys)).await;
        for (k, s) in keys.iter().zip(theirs) {
            assert_eq!(slot(k), s, "{kind}: {:?}", String::from_utf8_lossy(k));
        }
    }
}

/// One sample invocation of a command from its argument tree: the required arguments, and the
/// optional ones [`Mode`] says; one of each `multiple`; a `oneof`'s first alternative with a
/// key (else its first); integers `1`, strings `v`. Its `key` arguments (the generator's rule)
/// are marked, named `{tag}k0`, `{tag}k1`…
struct Sample {
    cmd: Cmd,
    next: usize,
    tag: String,
    mode: Mode,
}

/// Which optional arguments a sample has: tried in this order until the server's
/// `COMMAND GETKEYS` accepts one (`MIGRATE host port key db timeout KEYS k` is refused, so is
/// `GEOSEARCH` without its optional-in-the-spec `FROMMEMBER`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Those that hold a key, and two of each `multiple` argument (`numkeys` 2).
    TwoOfEach,
    /// Those that hold a key.
    WithKeys,
    /// None.
    Required,
    /// All.
    Full,
}

fn has_key(a: &Json) -> bool {
    a["type"] == "key"
        || a["arguments"]
            .as_array()
            .is_some_and(|v| v.iter().any(has_key))
}

fn flag(a: &Json, f: &str) -> bool {
    a["flags"]
        .as_array()
        .is_some_and(|x| x.iter().any(|y| y == f))
}

impl Sample {
    fn arg(&mut self, a: &Json, chosen: bool) {
        let skip = match self.mode {
            Mode::WithKeys | Mode::TwoOfEach => !has_key(a),
            Mode::Required => true,
            Mode::Full => false,
        };
        if !chosen && flag(a, "optional") && skip {
            return;
        }
        let times = if self.mode == Mode::TwoOfEach && flag(a, "multiple") {
            2
        } else {
            1
        };
        for i in 0..times {
            if let Some(token) = a["token"].as_str() {
                if i == 0 || flag(a, "multiple_token") {
                    self.cmd.push_arg(token);
                }
            }
            self.one(a);
        }
    }

    fn one(&mut self, a: &Json) {
        let children = a["arguments"].as_array().cloned().unwrap_or_default();
        match a["type"].as_str().unwrap_or_default() {
            "key" => {
                let key = format!("{{{}}}k{}", self.tag, self.next);
                self.next += 1;
                self.cmd.push_key(key);
            }
            "integer" if self.mode == Mode::TwoOfEach && a["name"] == "numkeys" => {
                self.cmd.push_arg("2");
            }
            "integer" | "double" | "unix-time" => {
                self.cmd.push_arg("1");
            }
            "string" | "pattern" => {
                self.cmd.push_arg("v");
            }
            "oneof" => {
                let pick = children
                    .iter()
                    .find(|c| has_key(c))
                    .or(children.first())
                    .cloned();
                if let Some(c) = pick {
                    self.arg(&c, true);
                }
            }
            "block" => {
                for c in &children {
                    self.arg(c, false);
                }
            }
            _ => {}
        }
    }
}

/// Every command and subcommand of the spec with key specs, as (spec name, its JSON).
fn commands_with_keys() -> Vec<(String, Json)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../commands.json");
    let spec: Json =
        serde_json::from_str(&std::fs::read_to_string(path).expect("commands.json")).unwrap();
    let mut out = Vec::new();
    for (name, c) in spec["commands"].as_object().expect("commands") {
        let subs = c["subcommands"].as_object().cloned().unwrap_or_default();
        for (n, c) in std::iter::once((name.clone(), c.clone())).chain(subs) {
            if c["key_specs"].as_array().is_some_and(|k| !k.is_empty()) {
                out.push((n, c));
            }
        }
    }
    out
}

fn sample(spec_name: &str, c: &Json, tag: &str, mode: Mode) -> Cmd {
    let mut s = Sample {
        cmd: Cmd::new(&spec_name.replace('|', " ")),
        next: 0,
        tag: tag.to_string(),
        mode,
    };
    for a in c["arguments"].as_array().into_iter().flatten() {
        s.arg(a, false);
    }
    s.cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spec_command_with_keys_hashes_where_the_server_says() {
    let commands = commands_with_keys();
    assert!(commands.len() > 150, "{}", commands.len());
    for kind in ServerKind::ALL {
        let (_server, c) = cluster_node(kind).await;
        let mut failures = Vec::new();
        let (mut checked, mut crossed, mut split) = (0, 0, 0);
        for (i, (name, spec)) in commands.iter().enumerate() {
            if kind == ServerKind::Redis && spec["redis_7_0"] == false {
                continue;
            }
            let tag = format!("t{i}");
            let mut tried = Vec::new();
            let mut found = None;
            for mode in [Mode::TwoOfEach, Mode::WithKeys, Mode::Required, Mode::Full] {
                let cmd = sample(name, spec, &tag, mode);
                match getkeys(&c, &cmd).await {
                    Ok(k) => {
                        found = Some((cmd, k));
                        break;
                    }
                    Err(e) => tried.push(format!("`{cmd}`: {e}")),
                }
            }
            let Some((cmd, theirs)) = found else {
                failures.push(format!("{kind}: COMMAND GETKEYS refused {tried:?}"));
                continue;
            };
            let ours: Vec<Vec<u8>> = cmd.keys().map(<[u8]>::to_vec).collect();
            if ours != theirs {
                failures.push(format!(
                    "{kind}: `{cmd}` keys {:?}, COMMAND GETKEYS {:?}",
                    lossy(&ours),
                    lossy(&theirs)
                ));
                continue;
            }
            // The keys the client finds from the key specs (for a hand-built command) too, but
            // those of `unknown` specs, which the server finds with code of its own (SORT's
            // STORE): the keys found are then the first of the server's.
            let found = spec_keys(&cmd, false);
            let unknown = spec["key_specs"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k["begin_search"]["type"] == "unknown"));
            let agree = if unknown {
                theirs.starts_with(&found) && !found.is_empty()
            } else {
                found == theirs
            };
            if !agree {
                failures.push(format!(
                    "{kind}: `{cmd}` key specs find {:?}, COMMAND GETKEYS {:?}",
                    lossy(&found),
                    lossy(&theirs)
                ));
                continue;
            }
            checked += 1;
            // One tag: one slot, the server's, whether the keys are marked or found from the
            // spec (which routes a shard channel like a key).
            let routed = spec_keys(&cmd, true);
            let slots = keyslots(&c, &routed).await;
            let want = slots.first().copied();
            let mut unmarked = Cmd::new(name.split('|').next().unwrap());
            for a in cmd.args().iter().skip(1) {
                unmarked.push_arg(a);
            }
            assert_eq!(unmarked.to_string(), cmd.to_string());
            for c in [&cmd, &unmarked] {
                if slots.iter().any(|s| Some(*s) != want) || cmd_slot(c) != Ok(want) {
                    failures.push(format!(
                        "{kind}: `{c}`: cmd_slot {:?}, CLUSTER KEYSLOT {slots:?}",
                        cmd_slot(c)
                    ));
                }
            }
            // Untagged keys in different slots: refused, unless the tips let it be split.
            if ours.len() < 2 {
                continue;
            }
            let mut spread = Cmd::new("");
            let mut at = 0;
            for (j, a) in cmd.args().iter().enumerate() {
                if j == 0 {
                    spread = Cmd::new(std::str::from_utf8(a).unwrap());
                } else if cmd.key_indices().contains(&(j as u32)) {
                    spread.push_key(["foo", "bar", "zap", "baz"][at % 4]);
                    at += 1;
                } else {
                    spread.push_arg(a);
                }
            }
            let keys: Vec<Vec<u8>> = spread.keys().map(<[u8]>::to_vec).collect();
            crossed += 1;
            let slots = keyslots(&c, &keys).await;
            match (tips(&spread).0, plan(&spread)) {
                ("multi_shard", Ok(Plan::Split(parts, _))) => {
                    split += 1;
                    for (s, part) in &parts {
                        for k in part.keys() {
                            let at = keys.iter().position(|x| x == k).unwrap();
                            assert_eq!(*s, slots[at], "{kind}: `{part}`");
                        }
                    }
                }
                (_, Err(Error::Client { message, .. })) if message.starts_with("CROSSSLOT") => {}
                (t, other) => {
                    failures.push(format!("{kind}: `{spread}` ({t}) across slots: {other:?}"))
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} mismatches:\n{}",
            failures.len(),
            failures.join("\n")
        );
        println!("{kind}: {checked} commands checked, {crossed} across slots, {split} split");
        assert!(checked > 150, "{kind}: only {checked} commands checked");
        assert!(split >= 3, "{kind}: only {split} split");
    }
}

/// The server's keys for `cmd` equal its marked keys, and where it goes (`plan`) agrees with
/// the server's slots: one slot, split by slot (multi_shard), or refused (CROSSSLOT).
async fn check_routing(c: &Client, kind: ServerKind, cmd: &Cmd) -> Result<(), String> {
    let ours: Vec<Vec<u8>> = cmd.keys().map(<[u8]>::to_vec).collect();
    let theirs = getkeys(c, cmd).await?;
    if ours != theirs {
        return Err(format!(
            "{kind}: `{cmd}` keys {:?}, COMMAND GETKEYS {:?}",
            lossy(&ours),
            lossy(&theirs)
        ));
    }
    let slots = keyslots(c, &ours).await;
    for (k, s) in ours.iter().zip(&slots) {
        if slot(k) != *s {
            return Err(format!("{kind}: `{cmd}`: slot of {k:?} is not {s}"));
        }
    }
    let one = slots.windows(2).all(|w| w[0] == w[1]);
    match plan(cmd) {
        Ok(Plan::Slot(s)) if one && slots.first() == Some(&s) => Ok(()),
        Ok(Plan::Split(parts, _)) if !one && tips(cmd).0 == "multi_shard" => {
            for (s, part) in &parts {
                for k in part.keys() {
                    let at = ours.iter().position(|x| x == k).ok_or("a key of nowhere")?;
                    if slots[at] != *s {
                        return Err(format!("{kind}: `{part}` is not all in slot {s}"));
                    }
                }
            }
            Ok(())
        }
        Err(Error::Client { message, .. }) if !one && message.starts_with("CROSSSLOT") => Ok(()),
        other => Err(format!("{kind}: `{cmd}` (slots {slots:?}): plan {other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(unused_must_use)] // a builder on a pipeline is used by the method call itself
async fn generated_builders_mark_the_keys_the_server_finds_in_its_slots() {
    use ringdis::commands::{LeftOrRight, Unit};
    for kind in ServerKind::ALL {
        let (_server, c) = cluster_node(kind).await;
        let mut p = c.pipeline();
        p.mset([("foo", 1), ("bar", 2), ("zap", 3)]);
        p.mset([("{t}a", 1), ("{t}b", 2)]);
        p.mget(["foo", "bar", "zap"]);
        p.del(["foo", "{foo}x"]);
        p.exists(["a", "b", "c"]);
        p.touch(["a"]);
        p.unlink(["foo", "bar"]);
        p.msetnx([("foo", 1), ("bar", 2)]);
        p.eval("return 1").key(["foo", "bar"]).arg("x");
        p.eval("return 1").key(["{t}a", "{t}b"]).arg("x");
        p.fcall("f").key(["foo"]).arg("x");
        p.xread(["s1", "s2"], ["0", "0"]).count(5);
        p.xreadgroup("g", "c", ["{s}1", "{s}2"], [">", ">"]);
        p.zunionstore("dest", ["z1", "z2", "z3"]);
        p.zunionstore("{z}dest", ["{z}1", "{z}2"]);
        p.sort("list").store("dst");
        p.sort("{l}list").store("{l}dst");
        p.migrate("127.0.0.1", 1, 0, 100)
            .empty_string()
            .keys(["m1", "m2"]);
        p.migrate("127.0.0.1", 1, 0, 100).key("m1");
        p.lmpop(["l1", "l2"], LeftOrRight::Left);
        p.blmpop(0.5, ["{b}1", "{b}2"], LeftOrRight::Right);
        p.sintercard(["s1", "s2"]);
        p.georadius("geo", 1.0, 2.0, 3.0, Unit::M).store("gdst");
        p.geosearchstore("gdst", "geo")
            .frommember("m")
            .byradius(1.0, Unit::Km);
        p.lcs("foo", "bar");
        p.smove("foo", "{foo}2", "m");
        p.copy("foo", "bar");
        p.rename("{r}1", "{r}2");
        p.object_freq("foo");
        p.get("foo");
        let mut cmds: Vec<Cmd> = p.cmds().to_vec();
        if kind == ServerKind::Valkey {
            let mut v = c.pipeline();
            v.msetex([("foo", 1), ("bar", 2)]);
            cmds.extend(v.cmds().iter().cloned());
        }
        assert!(cmds.len() >= 30);
        let mut failures = Vec::new();
        for cmd in &cmds {
            if let Err(e) = check_routing(&c, kind, cmd).await {
                failures.push(e);
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        // Explicit routing of a hand-built command the spec does not list.
        assert_eq!(
            cmd_slot(&cmd!("MODULE.X", "user:1", 5).route_key("user:1")),
            Ok(Some(keyslots(&c, &[b"user:1".to_vec()]).await[0]))
        );
        assert_eq!(cmd_slot(&cmd!("MODULE.X", "user:1")), Ok(None));
        // A transaction in one slot runs; across slots the server refuses it, as cmds_slot does.
        let mut t = c.transaction();
        t.add(cmd!("SET", "{foo}x", 1));
        t.add(cmd!("INCR", "foo"));
        t.add(cmd!("PING"));
        assert_eq!(
            cmds_slot(t.cmds()),
            Ok(Some(keyslots(&c, &[b"foo".to_vec()]).await[0]))
        );
        t.query::<Value>().await.unwrap();
        let mut t = c.transaction();
        t.add(cmd!("INCR", "foo"));
        t.add(cmd!("INCR", "bar"));
        assert!(cmds_slot(t.cmds()).is_err());
        let refused = t.query::<Value>().await.unwrap_err();
        assert!(
            refused.to_string().contains("CROSSSLOT"),
            "{kind}: {refused}"
        );
    }
}

/// Runs each part of `cmd`'s split on `c` and merges the replies.
async fn run_split(c: &Client, cmd: &Cmd, at: &str) -> ringdis::Result<Value> {
    let Ok(Plan::Split(parts, merge)) = plan(cmd) else {
        panic!("{at}: `{cmd}` is not split: {:?}", plan(cmd));
    };
    assert!(parts.len() > 1, "{at}: `{cmd}`");
    let mut replies = Vec::new();
    for (_, part) in parts {
        replies.push(c.call::<Value>(part).await);
    }
    merge.merge(replies)
}

fn bulk(s: &str) -> Value {
    Value::Bulk(ringdis::Bytes::copy_from_slice(s.as_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_commands_run_part_by_part_and_merge() {
    for kind in ServerKind::ALL {
        let (server, _admin) = cluster_node(kind).await;
        for engine in engines() {
            for protocol in PROTOCOLS {
                let at = label(kind, engine, protocol);
                let c = client(&server, engine, protocol);
                c.call::<()>(cmd!("FLUSHALL")).await.unwrap();
                let f = async {
                    // The whole command is refused by the node, which owns every slot.
                    let mset = c.mset([("foo", "1"), ("bar", "2"), ("zap", "3")]).cmd();
                    let whole = c.call::<Value>(mset.clone()).await.unwrap_err();
                    assert_eq!(whole.server_kind(), Some("CROSSSLOT"), "{at}: {whole}");
                    // Split, it runs, each key with its own value.
                    let ok = run_split(&c, &mset, &at).await.unwrap();
                    assert!(matches!(&ok, Value::Simple(s) if s == "OK"), "{at}: {ok:?}");
                    let mget = c.mget(["foo", "nothing", "bar", "zap", "foo"]).cmd();
                    assert_eq!(
                        run_split(&c, &mget, &at).await,
                        Ok(Value::Array(vec![
                            bulk("1"),
                            Value::Nil,
                            bulk("2"),
                            bulk("3"),
                            bulk("1")
                        ])),
                        "{at}"
                    );
                    // A hand-built MGET splits the same (keys from the spec).
                    let hand = cmd!("MGET", "zap", "foo");
                    assert_eq!(
                        run_split(&c, &hand, &at).await,
                        Ok(Value::Array(vec![bulk("3"), bulk("1")])),
                        "{at}"
                    );
                    for (cmd, n) in [
                        (c.exists(["foo", "bar", "nothing", "foo"]).cmd(), 3),
                        (c.touch(["foo", "bar", "nothing"]).cmd(), 2),
                        (c.del(["foo", "nothing", "bar"]).cmd(), 2),
                        (c.unlink(["zap", "foo"]).cmd(), 1),
                    ] {
                        let got = run_split(&c, &cmd, &at).await;
                        assert_eq!(got, Ok(Value::Int(n)), "{at}: `{cmd}`");
                    }
                    assert_eq!(c.dbsize().await, Ok(0), "{at}");
                    if kind == ServerKind::Valkey {
                        // A key count recomputed per part, the options sent with each.
                        let msetex = cmd!("MSETEX", 2, "foo", "a", "bar", "b", "PX", 100_000);
                        run_split(&c, &msetex, &at).await.unwrap();
                        let ttl: i64 = c.pttl("bar").await.unwrap();
                        assert!(ttl > 0 && ttl <= 100_000, "{at}: {ttl}");
                        let got = c.mget(["{foo}", "foo"]).decode::<Vec<Option<String>>>();
                        assert_eq!(got.await, Ok(vec![None, Some("a".into())]), "{at}");
                        let got = c.get("bar").decode::<Option<String>>();
                        assert_eq!(got.await, Ok(Some("b".into())), "{at}");
                    }
                };
                bounded(Duration::from_secs(30), &at, f).await;
            }
        }
    }
}

/// The response policies on real replies (one node answering for several): the shapes the
/// aggregation expects are the ones both protocols give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_policies_aggregate_real_replies() {
    for kind in ServerKind::ALL {
        let (server, _admin) = cluster_node(kind).await;
        for protocol in PROTOCOLS {
            let at = label(kind, ringdis::Engine::Task, protocol);
            let c = client(&server, ringdis::Engine::Task, protocol);
            c.call::<()>(cmd!("FLUSHALL")).await.unwrap();
            c.call::<()>(cmd!("SET", "a", 1)).await.unwrap();
            c.call::<()>(cmd!("SET", "b", 1)).await.unwrap();
            let twice = |cmd: Cmd| {
                let c = c.clone();
                async move {
                    let r = vec![
                        c.call::<Value>(cmd.clone()).await,
                        c.call(cmd.clone()).await,
                    ];
                    aggregate(&cmd, r)
                }
            };
            assert_eq!(tips(&cmd!("DBSIZE")), ("all_shards", "agg_sum"));
            assert_eq!(twice(cmd!("DBSIZE")).await, Ok(Value::Int(4)), "{at}");
            let sha: String = c.call(cmd!("SCRIPT", "LOAD", "return 1")).await.unwrap();
            let exists = cmd!(
                "SCRIPT",
                "EXISTS",
                &sha,
                "0000000000000000000000000000000000000000"
            );
            assert_eq!(tips(&exists), ("all_shards", "agg_logical_and"));
            assert_eq!(
                twice(exists).await,
                Ok(Value::Array(vec![Value::Int(1), Value::Int(0)])),
                "{at}"
            );
            assert_eq!(tips(&cmd!("PING")), ("all_shards", "all_succeeded"));
            let pong = twice(cmd!("PING")).await.unwrap();
            assert!(
                matches!(&pong, Value::Simple(s) if s == "PONG"),
                "{at}: {pong:?}"
            );
            // No response policy: every node's keys in one array.
            assert_eq!(tips(&cmd!("KEYS", "*")), ("all_shards", "default"));
            match twice(cmd!("KEYS", "*")).await {
                Ok(Value::Array(keys)) => assert_eq!(keys.len(), 4, "{at}"),
                other => panic!("{at}: {other:?}"),
            }
            // A node's error fails all_succeeded.
            let bad = cmd!("CONFIG", "SET", "no-such-parameter", "1");
            assert_eq!(tips(&bad), ("all_nodes", "all_succeeded"));
            assert!(twice(bad).await.is_err(), "{at}");
        }
    }
}
