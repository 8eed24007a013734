//! The generated command methods against real servers (Valkey 9 and Redis 7.0, RESP2 and
//! RESP3): every call below goes through a generated method, its reply must have the shape
//! `replies.json` gives the command (checked strictly on the raw reply, so the data cannot
//! drift) and decode into the default reply type, and the key positions the generator computed
//! must equal what the server's `COMMAND GETKEYS` answers. Options that change a reply's shape
//! (`reply_options` in `codegen/overrides.json`) are checked the same way against the shape
//! declared there, each entry at least once.

#![allow(deprecated)]

use ringdis::commands::{
    Aggregate, Dispatch, LeftOrRight, MinOrMax, Strategy, Unit, Wherefrom, Whereto,
};
use ringdis::{cmd, Client, Cmd, Commands, Config, Error, FromRedis, Protocol, Value};
use ringdis_tests::{Server, ServerKind};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::Mutex;

/// A `Dispatch` target that hands the built command back, with its default reply type.
struct Rec {
    client: Client,
    /// The server's port and the protocol, for [`raw_call`].
    port: u16,
    resp3: bool,
    label: String,
    redis_7_0: bool,
    replies: BTreeMap<String, String>,
    /// (command, option) → (entry of `reply_options`, shape).
    reply_options: BTreeMap<(String, String), (usize, String)>,
    in_redis_7_0: BTreeSet<String>,
    ran: Mutex<BTreeSet<String>>,
    /// The `reply_options` entries exercised.
    options_ran: Mutex<BTreeSet<usize>>,
    failures: Mutex<Vec<String>>,
}

struct Check<R> {
    cmd: Cmd,
    _reply: PhantomData<R>,
}

impl Dispatch for &Rec {
    type Output<R: FromRedis> = Check<R>;
    fn dispatch<R: FromRedis>(self, cmd: Cmd) -> Check<R> {
        Check {
            cmd,
            _reply: PhantomData,
        }
    }
}

impl<'a> Commands for &'a Rec {
    type Target = &'a Rec;
    fn into_target(self) -> &'a Rec {
        self
    }
}

fn is_text(v: &Value) -> bool {
    matches!(
        v,
        Value::Bulk(_) | Value::Simple(_) | Value::Verbatim { .. }
    )
}

fn is_float(v: &Value) -> bool {
    match v {
        Value::Double(_) => true,
        Value::Bulk(b) => std::str::from_utf8(b).is_ok_and(|s| s.parse::<f64>().is_ok()),
        _ => false,
    }
}

fn is_bool(v: &Value) -> bool {
    matches!(v, Value::Int(0 | 1) | Value::Boolean(_))
}

fn items(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(a) | Value::Set(a) => Some(a),
        _ => None,
    }
}

/// Does `v` have `shape`? Strict: only what a server really sends for it.
fn has_shape(shape: &str, v: &Value) -> bool {
    let all = |f: fn(&Value) -> bool| items(v).is_some_and(|a| a.iter().all(f));
    match shape {
        "ok" => matches!(v, Value::Simple(s) if s == "OK"),
        "ok_or_nil" => matches!(v, Value::Simple(s) if s == "OK") || v.is_nil(),
        "simple" => matches!(v, Value::Simple(_)),
        "text" => matches!(v, Value::Bulk(_) | Value::Verbatim { .. }),
        "int" => matches!(v, Value::Int(_)),
        "int_or_nil" => matches!(v, Value::Int(_) | Value::Nil),
        "bool" => is_bool(v),
        "bulk" => matches!(v, Value::Bulk(_)),
        "bulk_or_nil" => matches!(v, Value::Bulk(_) | Value::Nil),
        "double" => is_float(v),
        "double_or_nil" => is_float(v) || v.is_nil(),
        "array_bulk" => all(is_text),
        "array_bulk_or_nil" => all(|x| is_text(x) || x.is_nil()),
        "array_int" => all(|x| matches!(x, Value::Int(_))),
        "array_bool" => all(is_bool),
        "array_double_or_nil" => all(|x| is_float(x) || x.is_nil()),
        "array_any" => items(v).is_some(),
        "map" => match v {
            Value::Map(_) => true,
            Value::Array(a) => {
                a.len() % 2 == 0 && a.iter().all(|x| is_text(x) || matches!(x, Value::Int(_)))
            }
            _ => false,
        },
        "any" => true,
        "string" => is_text(v),
        "pair_int" => items(v).is_some_and(|a| a.len() == 2 && a.iter().all(is_int_text)),
        "array_int_or_nil" => all(|x| matches!(x, Value::Int(_) | Value::Nil)),
        "array_any_or_nil" => items(v).is_some() || v.is_nil(),
        "map_int" => match v {
            Value::Map(m) => m.iter().all(|(k, x)| is_text(k) && matches!(x, Value::Int(_))),
            _ => flat_pairs(v, |x| matches!(x, Value::Int(_))),
        },
        "map_any" => is_map_any(v),
        "map_any_or_nil" => is_map_any(v) || v.is_nil(),
        "array_map_any" => all(is_map_any),
        "scan" | "scan_pairs" | "scan_scores" => items(v).is_some_and(|a| {
            a.len() == 2
                && matches!(&a[0], Value::Bulk(c) if std::str::from_utf8(c).is_ok_and(|c| c.parse::<u64>().is_ok()))
                && match shape {
                    "scan" => items(&a[1]).is_some_and(|i| i.iter().all(is_text)),
                    "scan_pairs" => flat_pairs(&a[1], is_text),
                    _ => flat_pairs(&a[1], is_float),
                }
        }),
        "geo_positions" => all(|p| {
            p.is_nil() || items(p).is_some_and(|c| c.len() == 2 && c.iter().all(is_float))
        }),
        "members_scores" => {
            flat_pairs(v, is_float) || all(|p| items(p).is_some_and(is_member_score))
        }
        "key_member_or_nil" => {
            v.is_nil() || items(v).is_some_and(|a| a.len() == 2 && a.iter().all(is_text))
        }
        "key_member_score_or_nil" => {
            v.is_nil()
                || items(v).is_some_and(|a| {
                    a.len() == 3 && is_text(&a[0]) && is_text(&a[1]) && is_float(&a[2])
                })
        }
        "key_members_or_nil" => {
            v.is_nil()
                || items(v).is_some_and(|a| {
                    a.len() == 2
                        && is_text(&a[0])
                        && items(&a[1]).is_some_and(|m| m.iter().all(is_text))
                })
        }
        "key_members_scores_or_nil" => {
            v.is_nil()
                || items(v).is_some_and(|a| {
                    a.len() == 2
                        && is_text(&a[0])
                        && items(&a[1]).is_some_and(|m| {
                            m.iter().all(|p| items(p).is_some_and(is_member_score))
                        })
                })
        }
        "keys_flags" => all(|p| {
            items(p).is_some_and(|a| {
                a.len() == 2 && is_text(&a[0]) && items(&a[1]).is_some_and(|f| f.iter().all(is_text))
            })
        }),
        "stream_entries" => is_entries(v),
        "streams" => match v {
            Value::Nil => true,
            Value::Map(m) => m.iter().all(|(k, e)| is_text(k) && is_entries(e)),
            _ => all(|s| {
                items(s).is_some_and(|a| a.len() == 2 && is_text(&a[0]) && is_entries(&a[1]))
            }),
        },
        "stream_autoclaim" => items(v).is_some_and(|a| {
            a.len() == 3
                && is_text(&a[0])
                && is_entries(&a[1])
                && items(&a[2]).is_some_and(|d| d.iter().all(is_text))
        }),
        "stream_pending" => items(v).is_some_and(|a| {
            a.len() == 4
                && matches!(a[0], Value::Int(_))
                && (is_text(&a[1]) || a[1].is_nil())
                && (is_text(&a[2]) || a[2].is_nil())
                && (a[3].is_nil()
                    || items(&a[3]).is_some_and(|c| {
                        c.iter().all(|p| {
                            items(p).is_some_and(|p| {
                                p.len() == 2 && is_text(&p[0]) && is_int_text(&p[1])
                            })
                        })
                    }))
        }),
        "opt_array_bulk" => v.is_nil() || all(is_text),
        "pairs" => {
            flat_pairs(v, is_text)
                || all(|p| items(p).is_some_and(|a| a.len() == 2 && a.iter().all(is_text)))
        }
        "geo_matches" => all(|m| {
            items(m).is_some_and(|a| {
                !a.is_empty()
                    && is_text(&a[0])
                    && a[1..].iter().all(|x| {
                        is_float(x)
                            || matches!(x, Value::Int(_))
                            || items(x).is_some_and(|c| c.len() == 2 && c.iter().all(is_float))
                    })
            })
        }),
        "rank_score_or_nil" => {
            v.is_nil()
                || items(v).is_some_and(|a| {
                    a.len() == 2 && matches!(a[0], Value::Int(_)) && is_float(&a[1])
                })
        }
        "stream_autoclaim_ids" => items(v).is_some_and(|a| {
            a.len() == 3
                && is_text(&a[0])
                && items(&a[1]).is_some_and(|d| d.iter().all(is_text))
                && items(&a[2]).is_some_and(|d| d.iter().all(is_text))
        }),
        "stream_pending_entries" => all(|e| {
            items(e).is_some_and(|a| {
                a.len() == 4
                    && is_text(&a[0])
                    && is_text(&a[1])
                    && matches!(a[2], Value::Int(_))
                    && matches!(a[3], Value::Int(_))
            })
        }),
        _ => false,
    }
}

/// An integer, or a string holding one (TIME's fields).
fn is_int_text(v: &Value) -> bool {
    match v {
        Value::Int(_) => true,
        Value::Bulk(b) => std::str::from_utf8(b).is_ok_and(|s| s.parse::<i64>().is_ok()),
        _ => false,
    }
}

/// A flat `[key, value, key, value…]` array of text keys whose values pass `value`.
fn flat_pairs(v: &Value, value: fn(&Value) -> bool) -> bool {
    items(v)
        .is_some_and(|a| a.len() % 2 == 0 && a.chunks(2).all(|p| is_text(&p[0]) && value(&p[1])))
}

/// A RESP3 map, or a RESP2 flat array with text keys, of any values.
fn is_map_any(v: &Value) -> bool {
    match v {
        Value::Map(m) => m.iter().all(|(k, _)| is_text(k)),
        _ => flat_pairs(v, |_| true),
    }
}

/// `[member, score]`.
fn is_member_score(a: &[Value]) -> bool {
    a.len() == 2 && is_text(&a[0]) && is_float(&a[1])
}

/// Stream entries: `[[id, [field, value, …] or nil], …]`.
fn is_entries(v: &Value) -> bool {
    items(v).is_some_and(|es| {
        es.iter().all(|e| {
            items(e).is_some_and(|e| {
                e.len() == 2 && is_text(&e[0]) && (e[1].is_nil() || flat_pairs(&e[1], is_text))
            })
        })
    })
}

impl Rec {
    fn spec_name(&self, cmd: &Cmd) -> String {
        let words: Vec<String> = cmd
            .args()
            .iter()
            .take(2)
            .map(|w| String::from_utf8_lossy(w).to_ascii_lowercase())
            .collect();
        let sub = words.join("|");
        if self.replies.contains_key(&sub) {
            sub
        } else {
            words[0].clone()
        }
    }

    fn fail(&self, msg: String) {
        eprintln!("FAIL {msg}");
        self.failures.lock().unwrap().push(msg);
    }

    /// Runs a built command: key positions, reply shape, default type. `None` when the server
    /// does not have the command.
    async fn run<R: FromRedis + Debug>(&self, check: Check<R>) -> Option<R> {
        self.run_with(None, check).await
    }

    /// [`Rec::run`] for a command built with `option`, a method that changes the reply's shape:
    /// the shape is its `reply_options` entry's.
    async fn run_with<R: FromRedis + Debug>(
        &self,
        option: Option<&str>,
        check: Check<R>,
    ) -> Option<R> {
        let cmd = check.cmd;
        let name = self.spec_name(&cmd);
        if self.redis_7_0 && !self.in_redis_7_0.contains(&name) {
            return None;
        }
        let option_shape = match option {
            None => None,
            Some(o) => match self.reply_options.get(&(name.clone(), o.to_string())) {
                Some((entry, shape)) => {
                    self.options_ran.lock().unwrap().insert(*entry);
                    Some(shape.clone())
                }
                None => {
                    self.fail(format!("`{cmd}`: no reply_options entry for {name} {o}"));
                    return None;
                }
            },
        };
        self.ran.lock().unwrap().insert(name.clone());
        let label = &self.label;
        // Key positions against the server's own.
        let mut getkeys = Cmd::new("COMMAND GETKEYS");
        for a in cmd.args().iter() {
            getkeys.push_arg(a);
        }
        let server_keys: Vec<Vec<u8>> = self
            .client
            .call::<Vec<Vec<u8>>>(getkeys)
            .await
            .unwrap_or_default();
        let ours: Vec<Vec<u8>> = cmd.keys().map(<[u8]>::to_vec).collect();
        if ours != server_keys {
            self.fail(format!(
                "{label}: `{cmd}` keys {:?}, server says {:?}",
                lossy(&ours),
                lossy(&server_keys)
            ));
        }
        let value: Value = match self.client.call(cmd.clone()).await {
            Ok(v) if REFUSED_BY_THE_GATE.contains(&name.as_str()) => {
                self.fail(format!(
                    "{label}: `{cmd}` was not refused by the gate: {v:?}"
                ));
                return None;
            }
            Ok(v) => v,
            // Connection state: refused on a client connection, its reply checked on a raw one.
            Err(Error::Client { .. }) if REFUSED_BY_THE_GATE.contains(&name.as_str()) => {
                raw_call(self.port, self.resp3, &cmd)
            }
            Err(e) => {
                self.fail(format!("{label}: `{cmd}` failed: {e}"));
                return None;
            }
        };
        let (shape, file) = match &option_shape {
            Some(shape) => (shape.as_str(), "overrides.json reply_options"),
            None => (
                self.replies.get(&name).map_or("any", String::as_str),
                "replies.json",
            ),
        };
        if !has_shape(shape, &value) {
            self.fail(format!(
                "{label}: `{cmd}` ({name}) is `{shape}` in {file}, server sent {value:?}"
            ));
        }
        match R::from_redis(value) {
            Ok(r) => Some(r),
            Err(e) => {
                self.fail(format!("{label}: `{cmd}` default type: {e}"));
                None
            }
        }
    }
}

/// The commands below that the routing gate refuses on a client connection (`SELECT`, `CLIENT
/// SETNAME`: connection state set through `Config`; `WAIT` alone: it is about the connection's
/// own writes). Their replies are checked on a raw connection instead.
const REFUSED_BY_THE_GATE: &[&str] = &["client|setname", "select", "wait"];

/// Sends `cmd` on a new raw connection (after `HELLO 3` for RESP3) and reads its reply.
fn raw_call(port: u16, resp3: bool, cmd: &Cmd) -> Value {
    ringdis_tests::RawConn::connect(port, resp3).call(cmd)
}

fn lossy(v: &[Vec<u8>]) -> Vec<String> {
    v.iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect()
}

type ReplyOptions = BTreeMap<(String, String), (usize, String)>;

fn spec() -> (
    BTreeMap<String, String>,
    ReplyOptions,
    usize,
    BTreeSet<String>,
) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let replies: BTreeMap<String, String> =
        serde_json_lite(&std::fs::read_to_string(format!("{root}/replies.json")).unwrap());
    let overrides = std::fs::read_to_string(format!("{root}/codegen/overrides.json")).unwrap();
    let (options, entries) = reply_options_lite(&overrides);
    let spec = std::fs::read_to_string(format!("{root}/commands.json")).unwrap();
    (replies, options, entries, names_in_redis_7_0(&spec))
}

/// The `reply_options` of `overrides.json` (one entry a line: `{"command": "lpop", "options":
/// ["count"], …, "reply": "opt_array_bulk", …}`), read without a JSON dependency: (command,
/// option) → (entry, shape), and the number of entries.
fn reply_options_lite(text: &str) -> (ReplyOptions, usize) {
    // A string's text, or a list's inside (`"count", "withscores"`).
    let field = |line: &str, name: &str| -> String {
        let key = format!("\"{name}\": ");
        let rest = &line[line.find(&key).expect("the entry has the field") + key.len()..];
        let end = if rest.starts_with('[') { ']' } else { '"' };
        let rest = &rest[1..];
        rest[..rest.find(end).expect("the field ends")].to_string()
    };
    let mut out = BTreeMap::new();
    let mut entries = 0;
    for line in text
        .lines()
        .filter(|l| l.trim_start().starts_with("{\"command\": "))
    {
        let command = field(line, "command");
        let reply = field(line, "reply");
        for o in field(line, "options").split(',') {
            let o = o.trim().trim_matches('"').to_string();
            out.insert((command.clone(), o), (entries, reply.clone()));
        }
        entries += 1;
    }
    (out, entries)
}

/// `replies.json` is a flat object of strings: read it without a JSON dependency.
fn serde_json_lite(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim().trim_end_matches(',');
            let (k, v) = l.split_once("\": \"")?;
            Some((
                k.trim_start_matches('"').to_string(),
                v.trim_end_matches('"').to_string(),
            ))
        })
        .collect()
}

/// The commands marked `"redis_7_0": true` in commands.json (one key per object, pretty
/// printed with sorted keys: the name is the nearest enclosing `"name": {` line).
fn names_in_redis_7_0(spec: &str) -> BTreeSet<String> {
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut out = BTreeSet::new();
    for line in spec.lines() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        if let Some(name) = t.strip_suffix("\": {").and_then(|n| n.strip_prefix('"')) {
            stack.push((indent, name.to_string()));
        } else if t.starts_with("\"redis_7_0\": true") {
            if let Some((_, n)) = stack.last() {
                out.insert(n.clone());
            }
        }
    }
    out
}

async fn exercise(r: &Rec) -> usize {
    macro_rules! run {
        ($e:expr) => {
            r.run($e.send()).await
        };
    }
    // A command with an option that changes its reply's shape; `new` when Redis 7.0 lacks it.
    macro_rules! run_with {
        ($o:literal, $e:expr) => {
            r.run_with(Some($o), $e.send()).await
        };
        (new $o:literal, $e:expr) => {
            if !r.redis_7_0 {
                r.run_with(Some($o), $e.send()).await;
            }
        };
    }
    run!(r.flushall());
    // Connection and server.
    run!(r.ping());
    run!(r.echo("hi"));
    run!(r.time());
    run!(r.lastsave());
    run!(r.dbsize());
    run!(r.info());
    run!(r.role());
    run!(r.config_get("maxmemory"));
    run!(r.config_set([("maxmemory-policy", "noeviction")]));
    run!(r.client_id());
    run!(r.client_setname("ringdis-test"));
    run!(r.client_getname());
    run!(r.client_info());
    run!(r.client_list());
    run!(r.command_count());
    run!(r.command_list());
    run!(r.command_info().command_name("get"));
    run!(r.command_docs().command_name("get"));
    run!(r.command_getkeys("get").arg("k"));
    run!(r.slowlog_len());
    run!(r.slowlog_get());
    run!(r.slowlog_reset());
    run!(r.lolwut());
    run!(r.acl_whoami());
    run!(r.acl_cat());
    run!(r.acl_users());
    run!(r.acl_list());
    run!(r.acl_genpass());
    run!(r.acl_getuser("default"));
    run!(r.acl_dryrun("default", "get").arg("k"));
    run!(r.pubsub_channels());
    run!(r.pubsub_numpat());
    run!(r.pubsub_numsub());
    run!(r.publish("chan", "msg"));
    run!(r.spublish("chan", "msg"));
    run!(r.wait(0, 1));
    run!(r.select(0));
    run!(r.memory_usage("nope"));
    run!(r.memory_doctor());
    run!(r.latency_latest());
    run!(r.latency_history("command"));
    run!(r.latency_histogram().command(["set", "get"]));
    run!(r.hello());
    run!(r.memory_stats());
    run!(r.client_trackinginfo());
    run!(r.command());
    run!(r.command_getkeysandflags("set").arg(["k", "v"]));
    run!(r.module_list());
    run!(r.pubsub_shardnumsub());
    run!(r.pubsub_numsub().channel(["chan", "other"]));
    run!(r.migrate("127.0.0.1", 1, 0, 100).key("nokey-for-migrate"));
    run!(r.acl_getuser("nobody"));
    run_with!("reset", r.acl_log().reset());
    run_with!(
        "id",
        r.client_kill()
            .id(999_999_999)
            .skipme(ringdis::commands::Skipme::Yes)
    );
    // The old form kills one address: a raw connection's, kept open until then.
    let mut other = ringdis_tests::RawConn::connect(r.port, r.resp3);
    let info = String::from_redis(other.call(&cmd!("CLIENT", "INFO"))).unwrap();
    let addr = info
        .split(' ')
        .find_map(|f| f.strip_prefix("addr="))
        .unwrap();
    run_with!("old_format", r.client_kill().old_format(addr));
    drop(other);
    for help in [
        r.acl_help().into_cmd(),
        r.client_help().into_cmd(),
        r.config_help().into_cmd(),
        r.object_help().into_cmd(),
        r.xinfo_help().into_cmd(),
    ] {
        r.run(Check::<Vec<String>> {
            cmd: help,
            _reply: PhantomData,
        })
        .await;
    }
    // Strings.
    run!(r.set("s", "v"));
    run!(r.set("s", "v").nx());
    run!(r.set("s", "w").xx().ex(100));
    run_with!("get", r.set("s", "w").get());
    run_with!("get", r.set("fresh", "w").get());
    run!(r.get("s"));
    run!(r.get("missing"));
    run!(r.getset("s", "v"));
    run!(r.append("s", "x"));
    run!(r.strlen("s"));
    run!(r.getrange("s", 0, 1));
    run!(r.substr("s", 0, 1));
    run!(r.setrange("s", 1, "yz"));
    run!(r.set("n", 10));
    run!(r.incr("n"));
    run!(r.incrby("n", 5));
    run!(r.decr("n"));
    run!(r.decrby("n", 2));
    run!(r.incrbyfloat("f", 1.5));
    run!(r.getex("s").px(100_000));
    run!(r.getdel("s"));
    run!(r.mset([("a", 1), ("b", 2)]).and("c", 3));
    run!(r.mget(["a", "b", "nope"]));
    run!(r.msetnx([("d", 1)]));
    run!(r.setnx("e", 1));
    run!(r.setex("g", 100, "v"));
    run!(r.psetex("h", 100_000, "v"));
    run!(r.lcs("a", "b"));
    run_with!("len", r.lcs("a", "b").len());
    run_with!("idx", r.lcs("a", "b").idx().withmatchlen());
    run!(r.delifeq("g", "v"));
    // Keys.
    run!(r.exists(["a", "b", "zz"]));
    run!(r.type_("a"));
    run!(r.expire("a", 100));
    run!(r.pexpire("a", 100_000).gt());
    run!(r.expireat("b", 4_000_000_000));
    run!(r.pexpireat("b", 4_000_000_000_000));
    run!(r.ttl("a"));
    run!(r.pttl("a"));
    run!(r.expiretime("a"));
    run!(r.pexpiretime("a"));
    run!(r.persist("a"));
    run!(r.rename("a", "a2"));
    run!(r.renamenx("a2", "a"));
    run!(r.copy("a", "a3").replace());
    run!(r.dump("a"));
    run!(r.touch(["a", "b"]));
    run!(r.keys("a*"));
    run!(r.scan("0").match_("*").count(10));
    run!(r.randomkey());
    run!(r.object_encoding("a"));
    run!(r.object_refcount("a"));
    run!(r.object_idletime("a"));
    run!(r.move_("a3", 1));
    run!(r.unlink(["a3"]));
    run!(r.del("b"));
    // Hashes.
    run!(r.hset("u", "name", "ada").and("born", 1815));
    run!(r.hget("u", "name"));
    run!(r.hmget("u", ["name", "x"]));
    run!(r.hgetall("u"));
    run!(r.hexists("u", "name"));
    run!(r.hlen("u"));
    run!(r.hkeys("u"));
    run!(r.hvals("u"));
    run!(r.hincrby("u", "born", 1));
    run!(r.hincrbyfloat("u", "f", 0.5));
    run!(r.hsetnx("u", "name", "x"));
    run!(r.hstrlen("u", "name"));
    run!(r.hrandfield("u"));
    run_with!("count", r.hrandfield("u").count(2));
    run_with!("withvalues", r.hrandfield("u").count(-3).withvalues());
    run!(r.hscan("u", "0"));
    run_with!(new "novalues", r.hscan("u", "0").novalues());
    run!(r.hmset("u", "k", "v"));
    run!(r.hexpire("u", 100, ["name", "nope"]));
    run!(r.hpexpire("u", 100_000, ["born"]));
    run!(r.hexpireat("u", 4_000_000_000, ["k"]));
    run!(r.hpexpireat("u", 4_000_000_000_000, ["k"]));
    run!(r.httl("u", ["name"]));
    run!(r.hpttl("u", ["name"]));
    run!(r.hexpiretime("u", ["name"]));
    run!(r.hpexpiretime("u", ["name"]));
    run!(r.hpersist("u", ["name"]));
    run!(r.hgetex("u", ["name"]).ex(100));
    run!(r.hsetex("u", "g", "1").ex(100));
    run!(r.hgetdel("u", ["g"]));
    run!(r.hdel("u", ["f"]));
    // Lists.
    run!(r.rpush("l", ["a", "b", "c", "b"]));
    run!(r.lpush("l", "z"));
    run!(r.lpushx("l", "y"));
    run!(r.rpushx("l", "x"));
    run!(r.lrange("l", 0, -1));
    run!(r.llen("l"));
    run!(r.lindex("l", 0));
    run!(r.lset("l", 0, "y2"));
    run!(r.linsert("l", ringdis::commands::BeforeOrAfter::Before, "a", "a0"));
    run!(r.lpos("l", "b"));
    run_with!("count", r.lpos("l", "b").count(0));
    run!(r.lrem("l", 1, "b"));
    run!(r.lpop("l"));
    run!(r.rpop("l"));
    run_with!("count", r.lpop("l").count(1));
    run_with!("count", r.rpop("l").count(1));
    run_with!("count", r.rpop("nokey").count(1));
    run!(r.lmove("l", "l2", Wherefrom::Left, Whereto::Right));
    run!(r.rpoplpush("l", "l2"));
    run!(r.lmpop(["l", "l2"], LeftOrRight::Left).count(1));
    run!(r.blpop(["l"], 0.1));
    run!(r.brpop(["l2"], 0.1));
    run!(r.blmove("l", "l2", Wherefrom::Left, Whereto::Left, 0.1));
    run!(r.brpoplpush("l", "l2", 0.1));
    run!(r.blmpop(0.1, ["l", "l2"], LeftOrRight::Right));
    run!(r.ltrim("l2", 0, 10));
    // Sets.
    run!(r.sadd("s1", ["a", "b", "c"]));
    run!(r.sadd("s2", ["b", "c", "d"]));
    run!(r.srem("s1", "zz"));
    run!(r.smembers("s1"));
    run!(r.sismember("s1", "a"));
    run!(r.smismember("s1", ["a", "q"]));
    run!(r.scard("s1"));
    run!(r.srandmember("s1"));
    run_with!("count", r.srandmember("s1").count(2));
    run!(r.sdiff(["s1", "s2"]));
    run!(r.sinter(["s1", "s2"]));
    run!(r.sunion(["s1", "s2"]));
    run!(r.sdiffstore("s3", ["s1", "s2"]));
    run!(r.sinterstore("s3", ["s1", "s2"]));
    run!(r.sunionstore("s3", ["s1", "s2"]));
    run!(r.sintercard(["s1", "s2"]).limit(10));
    run!(r.smove("s1", "s2", "a"));
    run!(r.sscan("s1", "0"));
    run!(r.spop("s3"));
    run_with!("count", r.spop("s3").count(2));
    // Sorted sets.
    run!(r.zadd("z", 1.0, "a").and(2.0, "b").and(3.5, "c"));
    run!(r.zadd("z2", 1.0, "b").nx().ch());
    run!(r.zscore("z", "a"));
    run!(r.zscore("z", "nope"));
    run!(r.zincrby("z", 1.5, "a"));
    run!(r.zcard("z"));
    run!(r.zcount("z", "-inf", "+inf"));
    run!(r.zrange("z", "0", "-1"));
    run_with!("withscores", r.zrange("z", "0", "-1").withscores());
    run_with!(
        "withscores",
        r.zrangebyscore("z", "-inf", "+inf").withscores()
    );
    run_with!("withscores", r.zrevrange("z", 0, -1).withscores());
    run_with!(
        "withscores",
        r.zrevrangebyscore("z", "+inf", "-inf").withscores()
    );
    run_with!("withscores", r.zunion(["z", "z2"]).withscores());
    run_with!("withscores", r.zinter(["z", "z2"]).withscores());
    run_with!("withscores", r.zdiff(["z", "z2"]).withscores());
    run_with!(new "withscore", r.zrank("z", "b").withscore());
    run_with!(new "withscore", r.zrevrank("z", "nope").withscore());
    run_with!("count", r.zrandmember("z").count(2));
    run_with!("withscores", r.zrandmember("z").count(2).withscores());
    run_with!("incr", r.zadd("z", 0.5, "a").incr());
    run_with!("incr", r.zadd("z", 0.5, "a").incr().nx());
    run_with!(new "noscores", r.zscan("z", "0").noscores());
    run!(r.zrange("z", "(1", "+inf").byscore().limit(0, 2));
    run!(r.zrangebyscore("z", "-inf", "+inf"));
    run!(r.zrevrange("z", 0, -1));
    run!(r.zrevrangebyscore("z", "+inf", "-inf"));
    run!(r.zrangebylex("z", "-", "+"));
    run!(r.zrevrangebylex("z", "+", "-"));
    run!(r.zlexcount("z", "-", "+"));
    run!(r.zrank("z", "b"));
    run!(r.zrevrank("z", "b"));
    run!(r.zmscore("z", ["a", "nope"]));
    run!(r.zrandmember("z"));
    run!(r
        .zunionstore("z3", ["z", "z2"])
        .weights([1, 2])
        .aggregate(Aggregate::Max));
    run!(r.zinterstore("z3", ["z", "z2"]));
    run!(r.zdiffstore("z3", ["z", "z2"]));
    run!(r.zunion(["z", "z2"]));
    run!(r.zinter(["z", "z2"]));
    run!(r.zdiff(["z", "z2"]));
    run!(r.zintercard(["z", "z2"]));
    run!(r.zrangestore("z4", "z", "0", "-1"));
    run!(r.zscan("z", "0"));
    run!(r.zrem("z", ["nope"]));
    run!(r.zpopmin("z4"));
    run!(r.zpopmax("z4"));
    run!(r.zmpop(["z4", "z"], MinOrMax::Min));
    run!(r.bzpopmin(["z4", "z"], 0.1));
    run!(r.bzpopmax(["z4", "z"], 0.1));
    run!(r.bzmpop(0.1, ["z"], MinOrMax::Max));
    run!(r.zremrangebyrank("z3", 0, 0));
    run!(r.zremrangebyscore("z3", "-inf", "1"));
    run!(r.zremrangebylex("z3", "-", "+"));
    // Bitmaps, HyperLogLog.
    run!(r.setbit("bits", 7, 1));
    run!(r.getbit("bits", 7));
    run!(r.bitcount("bits"));
    run!(r.bitpos("bits", 1));
    run!(r.bitop(ringdis::commands::Operation::Or, "bits2", ["bits"]));
    run!(r.bitfield("bits").incrby(None, "u8", 0, 1).get("u4", 0));
    run!(r.bitfield_ro("bits").get("u8", 0));
    run!(r.pfadd("hll").element(["a", "b"]));
    run!(r.pfcount(["hll"]));
    run!(r.pfmerge("hll2").sourcekey(["hll"]));
    // Geo.
    run!(r
        .geoadd("geo", 13.361389, 38.115556, "Palermo")
        .and(15.087269, 37.502669, "Catania"));
    run!(r.geodist("geo", "Palermo", "Catania"));
    run!(r.geohash("geo").member(["Palermo", "nope"]));
    run!(r.geopos("geo").member(["Palermo"]));
    run!(r
        .geosearch("geo")
        .fromlonlat(15.0, 37.0)
        .byradius(200.0, Unit::Km)
        .asc());
    run!(r
        .geosearchstore("geo2", "geo")
        .frommember("Palermo")
        .bybox(400.0, 400.0, Unit::Km));
    run!(r.georadius("geo", 15.0, 37.0, 200.0, Unit::Km));
    run!(r.georadiusbymember("geo", "Palermo", 200.0, Unit::Km));
    run!(r.georadius_ro("geo", 15.0, 37.0, 200.0, Unit::Km));
    run_with!(
        "withdist",
        r.geosearch("geo")
            .fromlonlat(15.0, 37.0)
            .byradius(200.0, Unit::Km)
            .withdist()
            .withhash()
            .withcoord()
    );
    run_with!(
        "withcoord",
        r.georadius("geo", 15.0, 37.0, 200.0, Unit::Km).withcoord()
    );
    run_with!(
        "store",
        r.georadius("geo", 15.0, 37.0, 200.0, Unit::Km)
            .store("geo3")
    );
    run_with!(
        "withhash",
        r.georadius_ro("geo", 15.0, 37.0, 200.0, Unit::Km)
            .withhash()
    );
    run_with!(
        "withdist",
        r.georadiusbymember("geo", "Palermo", 200.0, Unit::Km)
            .withdist()
    );
    run_with!(
        "storedist",
        r.georadiusbymember("geo", "Palermo", 200.0, Unit::Km)
            .storedist("geo3")
    );
    run_with!(
        "withcoord",
        r.georadiusbymember_ro("geo", "Palermo", 200.0, Unit::Km)
            .withcoord()
    );
    // Streams.
    run!(r.xadd("st", "f", "v").auto_id());
    run!(r.xadd("st", "f", "v").maxlen(100).approximately().auto_id());
    run!(r.xadd("st", "f", "v").id("99999999999999-0"));
    run!(r.xlen("st"));
    run!(r.xrange("st", "-", "+"));
    run!(r.xrevrange("st", "+", "-").count(1));
    run!(r.xread(["st"], ["0"]).count(2));
    run!(r.xgroup_create("st", "g").id("0"));
    run!(r.xgroup_createconsumer("st", "g", "c2"));
    run!(r.xreadgroup("g", "c", ["st"], [">"]).count(1));
    run!(r.xpending("st", "g"));
    run_with!("filters", r.xpending("st", "g").filters("-", "+", 10));
    run!(r.xack("st", "g", ["99999999999999-0"]));
    run!(r.xclaim("st", "g", "c2", "0", ["99999999999999-0"]));
    run!(r.xautoclaim("st", "g", "c2", "0", "0"));
    run_with!(
        "justid",
        r.xclaim("st", "g", "c2", "0", ["99999999999999-0"])
            .justid()
    );
    run_with!("justid", r.xautoclaim("st", "g", "c2", "0", "0").justid());
    run!(r.xinfo_stream("st"));
    run!(r.xinfo_groups("st"));
    run!(r.xinfo_consumers("st", "g"));
    run!(r.xgroup_delconsumer("st", "g", "c2"));
    run!(r.xgroup_setid("st", "g").id("0"));
    run!(r.xgroup_destroy("st", "g"));
    run!(r.xdel("st", ["99999999999999-0"]));
    run!(r.xtrim("st", Strategy::Maxlen, "1"));
    run!(r.xsetid("st", "99999999999999-5"));
    // Sort.
    run!(r.rpush("ids", [3, 1, 2]));
    run!(r.sort("ids").get(["w_*", "#"]).limit(0, 10).desc());
    run!(r.sort_ro("ids").alpha());
    run_with!("store", r.sort("ids").store("ids2"));
    // Scripting and functions.
    run!(r.eval("return #KEYS + #ARGV").key(["k1", "k2"]).arg("x"));
    run!(r.eval_ro("return 1").key("k1"));
    let sha = run!(r.script_load("return 'x'")).expect("SCRIPT LOAD");
    run!(r.evalsha(&sha).key("k"));
    run!(r.evalsha_ro(&sha));
    run!(r.script_exists([&sha, &sha.slice(1..)]));
    run!(r
        .function_load("#!lua name=ringdis\nredis.register_function{function_name='f', callback=function(keys, args) return #keys end, flags={'no-writes'}}")
        .replace());
    run!(r.fcall("f").key(["k1", "k2"]));
    run!(r.fcall_ro("f").key("k1"));
    run!(r.function_list());
    run!(r.function_stats());
    run!(r.function_delete("ringdis"));
    run!(r.script_flush());
    run!(r.flushdb());
    r.ran.lock().unwrap().len()
}

#[tokio::test]
async fn generated_methods_against_real_servers() {
    let (replies, reply_options, entries, in_redis_7_0) = spec();
    assert!(entries >= 30, "only {entries} reply_options entries read");
    let mut servers = Vec::new();
    for kind in ServerKind::ALL {
        servers.push((Server::start(kind), kind == ServerKind::Redis));
    }
    let mut failures = Vec::new();
    let mut ran = BTreeSet::new();
    let mut options_ran = BTreeSet::new();
    for (server, redis_7_0) in &servers {
        for protocol in [Protocol::Resp2, Protocol::Resp3] {
            let client = Client::new(Config::new().port(server.port()).protocol(protocol)).unwrap();
            let r = Rec {
                client,
                port: server.port(),
                resp3: protocol == Protocol::Resp3,
                label: format!("{} {} {protocol:?}", server.kind(), server.version()),
                redis_7_0: *redis_7_0,
                replies: replies.clone(),
                reply_options: reply_options.clone(),
                in_redis_7_0: in_redis_7_0.clone(),
                ran: Mutex::default(),
                options_ran: Mutex::default(),
                failures: Mutex::default(),
            };
            let n = exercise(&r).await;
            eprintln!("{}: {n} distinct commands", r.label);
            if !*redis_7_0 {
                assert!(n >= 150, "{}: only {n} distinct commands ran", r.label);
            }
            ran.extend(r.ran.into_inner().unwrap());
            options_ran.extend(r.options_ran.into_inner().unwrap());
            failures.extend(r.failures.into_inner().unwrap());
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(ran.len() >= 150, "only {} distinct commands ran", ran.len());
    let missed: Vec<_> = reply_options
        .iter()
        .filter(|(_, (entry, _))| !options_ran.contains(entry))
        .map(|((c, o), _)| format!("{c} {o}"))
        .collect();
    assert!(
        options_ran.len() == entries,
        "reply_options entries never exercised: {missed:?}"
    );
    // Unused imports stay honest.
    let _ = cmd!("PING");
}
