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

use ringdis::__route::{aggregate, cmd_slot, plan, tips, Plan};
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
            checked += 1;
            // One tag: one slot, the server's.
            let slots = keyslots(&c, &ours).await;
            let want = slots.first().copied();
            if slots.iter().any(|s| Some(*s) != want) || cmd_slot(&cmd) != Ok(want) {
                failures.push(format!(
                    "{kind}: `{cmd}`: cmd_slot {:?}, CLUSTER KEYSLOT {slots:?}",
                    cmd_slot(&cmd)
                ));
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
