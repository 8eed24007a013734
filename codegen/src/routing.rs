//! The cluster routing of each command, from the spec: its `request_policy` and
//! `response_policy` tips, its key specs (where a hand-built command's keys are), and, for a
//! command the tips let the client split across slots (`request_policy:multi_shard`), how its
//! keys are laid out. Emitted into `spec_flags.rs` as the `ROUTING` table, which each `Entry`
//! points into (`Entry::routing`), so the gate's entries keep their size.

use crate::model::{Arg, Command};
use serde_json::Value as Json;

/// `request_policy:…` tips and the client's `RequestPolicy` variant for each.
pub const REQUEST: &[(&str, &str)] = &[
    ("all_nodes", "AllNodes"),
    ("all_shards", "AllShards"),
    ("multi_shard", "MultiShard"),
    ("special", "Special"),
];

/// `response_policy:…` tips and the client's `ResponsePolicy` variant for each.
pub const RESPONSE: &[(&str, &str)] = &[
    ("one_succeeded", "OneSucceeded"),
    ("all_succeeded", "AllSucceeded"),
    ("agg_logical_and", "AggLogicalAnd"),
    ("agg_logical_or", "AggLogicalOr"),
    ("agg_min", "AggMin"),
    ("agg_max", "AggMax"),
    ("agg_sum", "AggSum"),
    ("special", "Special"),
];

/// The variant a `prefix:value` tip names in `table` (`Default` without such a tip).
fn policy(
    spec_name: &str,
    c: &Command,
    prefix: &str,
    table: &[(&str, &'static str)],
) -> Result<&'static str, String> {
    let mut found = "Default";
    for tip in &c.tips {
        let Some(value) = tip.strip_prefix(prefix) else {
            continue;
        };
        found = table
            .iter()
            .find(|(t, _)| *t == value)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("{spec_name}: unknown tip {tip:?}"))?;
    }
    Ok(found)
}

fn int(j: &Json, field: &str) -> Option<i64> {
    j[field].as_i64()
}

/// Where the keys of a splittable command are: `Some("KeyGroups { first, step, numkeys }")` for a
/// `multi_shard` command with one key spec that runs to the end of the arguments (`MGET k…`,
/// `MSET k v…`) or that counts its keys (`MSETEX numkeys k v… [options]`).
///
/// # Errors
///
/// A `multi_shard` command whose keys are laid out otherwise: the client could not split it.
fn split(spec_name: &str, c: &Command) -> Result<String, String> {
    let fail = || {
        format!(
            "{spec_name}: request_policy:multi_shard but its key_specs are not one index \
             begin_search with a range to the end or a keynum: the client cannot split it"
        )
    };
    let [ks] = &c.key_specs[..] else {
        return Err(fail());
    };
    let (begin, find) = (&ks["begin_search"], &ks["find_keys"]);
    if begin["type"] != "index" {
        return Err(fail());
    }
    let at = int(&begin["spec"], "index").ok_or_else(fail)?;
    let spec = &find["spec"];
    let step = int(spec, "keystep").ok_or_else(fail)?;
    let (first, numkeys) = match find["type"].as_str() {
        Some("range") if int(spec, "lastkey") == Some(-1) && int(spec, "limit") == Some(0) => {
            (at, 0)
        }
        Some("keynum") => {
            let idx = at + int(spec, "keynumidx").ok_or_else(fail)?;
            (at + int(spec, "firstkey").ok_or_else(fail)?, idx)
        }
        _ => return Err(fail()),
    };
    if !(1..=255).contains(&first) || !(1..=255).contains(&step) || !(0..=255).contains(&numkeys) {
        return Err(fail());
    }
    Ok(format!(
        "Some(KeyGroups {{ first: {first}, step: {step}, numkeys: {numkeys} }})"
    ))
}

/// `n` as a Rust literal of a type that holds `lo..=hi`.
fn bounded(spec_name: &str, j: &Json, field: &str, lo: i64, hi: i64) -> Result<i64, String> {
    int(j, field)
        .filter(|n| (lo..=hi).contains(n))
        .ok_or_else(|| format!("{spec_name}: key spec {field} is not in {lo}..={hi}: {j}"))
}

/// True when the argument of key spec `index` is one choice of a `oneof` whose other choice is
/// the empty string (`MIGRATE host port <key | ""> …`): an empty argument there is no key.
fn empty_is_none(args: &[Arg], index: usize) -> bool {
    args.iter().any(|a| {
        let here = a.kind == "oneof"
            && a.arguments.iter().any(|c| c.key_spec_index == Some(index))
            && a.arguments
                .iter()
                .any(|c| c.kind == "pure-token" && c.token.as_deref() == Some(""));
        here || empty_is_none(&a.arguments, index)
    })
}

/// One key spec (the command's `index`-th) as a `KeySpec { … }` literal; `None` for an
/// `unknown` one (`SORT`'s `STORE`, found by the server's own code: the client does not find
/// those keys).
fn key_spec(spec_name: &str, c: &Command, index: usize) -> Result<Option<String>, String> {
    let ks = &c.key_specs[index];
    let (begin, find) = (&ks["begin_search"], &ks["find_keys"]);
    let (b, f) = (&begin["spec"], &find["spec"]);
    let begin = match begin["type"].as_str() {
        Some("index") => format!(
            "Begin::Index({})",
            bounded(spec_name, b, "index", 0, 65535)?
        ),
        Some("keyword") => {
            let keyword = b["keyword"]
                .as_str()
                .filter(|k| k.bytes().all(|c| c.is_ascii_graphic()))
                .ok_or_else(|| format!("{spec_name}: key spec keyword: {b}"))?;
            let from = bounded(spec_name, b, "startfrom", -32768, 32767)?;
            format!("Begin::Keyword {{ keyword: b\"{keyword}\", from: {from} }}")
        }
        Some("unknown") => return Ok(None),
        other => return Err(format!("{spec_name}: begin_search type {other:?}")),
    };
    let find = match find["type"].as_str() {
        Some("range") => format!(
            "Find::Range {{ last: {}, step: {}, limit: {} }}",
            bounded(spec_name, f, "lastkey", -32768, 32767)?,
            bounded(spec_name, f, "keystep", 1, 65535)?,
            bounded(spec_name, f, "limit", 0, 65535)?,
        ),
        Some("keynum") => format!(
            "Find::Keynum {{ index: {}, first: {}, step: {} }}",
            bounded(spec_name, f, "keynumidx", 0, 65535)?,
            bounded(spec_name, f, "firstkey", 0, 65535)?,
            bounded(spec_name, f, "keystep", 1, 65535)?,
        ),
        Some("unknown") => return Ok(None),
        other => return Err(format!("{spec_name}: find_keys type {other:?}")),
    };
    let not_key = ks["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "not_key"));
    let empty_is_none = empty_is_none(&c.arguments, index);
    Ok(Some(format!(
        "KeySpec {{ begin: {begin}, find: {find}, not_key: {not_key}, empty_is_none: \
         {empty_is_none} }}"
    )))
}

/// The `ROUTING` entry of a command:
/// `Routing { request: …, response: …, keys: &[KeySpec …], split: … }`.
///
/// # Errors
///
/// An unknown policy tip, a key spec of an unknown kind or out of range, or a `multi_shard`
/// command the client could not split.
pub fn routing(spec_name: &str, c: &Command) -> Result<String, String> {
    let request = policy(spec_name, c, "request_policy:", REQUEST)?;
    let response = policy(spec_name, c, "response_policy:", RESPONSE)?;
    let split = if request == "MultiShard" {
        split(spec_name, c)?
    } else {
        "None".to_string()
    };
    let mut keys = Vec::new();
    for index in 0..c.key_specs.len() {
        keys.extend(key_spec(spec_name, c, index)?);
    }
    Ok(format!(
        "Routing {{ request: RequestPolicy::{request}, response: ResponsePolicy::{response}, \
         keys: &[{}], split: {split} }}",
        keys.join(", ")
    ))
}

/// The Rust source of the `Routing` and `KeyGroups` types (the policies are the client's own enums,
/// in `route/tips.rs`).
pub const TYPES: &str = "\
/// How a command is routed in a cluster: its tips, where its keys are, and how to split it
/// across slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Routing {
    /// Its `request_policy` tip.
    pub request: RequestPolicy,
    /// Its `response_policy` tip.
    pub response: ResponsePolicy,
    /// Its key specs, but those of kind `unknown` (`SORT`'s `STORE`).
    pub keys: &'static [KeySpec],
    /// How its keys are laid out, for a `multi_shard` command.
    pub split: Option<KeyGroups>,
}

/// One of the spec's key specs: where a search for keys begins, and how the keys are found
/// from there (the rules of `COMMAND DOCS`' key specifications).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeySpec {
    /// Where the search begins.
    pub begin: Begin,
    /// How the keys are found from there.
    pub find: Find,
    /// The spec's `not_key` flag: a shard channel (`SPUBLISH`), routed like a key but not one
    /// (`COMMAND GETKEYS` leaves it out).
    pub not_key: bool,
    /// An empty argument where its key would be is no key: the other choice of a `oneof`
    /// (`MIGRATE host port \"\" … KEYS k…`).
    pub empty_is_none: bool,
}

/// Where a key spec's search begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Begin {
    /// At this argument (the name is 0).
    Index(u16),
    /// After the first argument equal to `keyword` (any letter case), searched from argument
    /// `from` towards the end, or, when `from` is negative, from `argc + from` towards the
    /// start.
    Keyword {
        /// The keyword, upper-case.
        keyword: &'static [u8],
        /// Where the search starts.
        from: i16,
    },
}

/// How a key spec's keys are found from where its search began (`first`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Find {
    /// Every `step`-th argument from `first` to `first + last` (`last` ≥ 0), or to the end
    /// (`last` -1, `limit` 0), or over a `limit`-th of the rest (`last` -1, `limit` > 0:
    /// `XREAD`'s keys, half of what follows `STREAMS`).
    Range {
        /// The last key, relative to `first` (≥ 0) or to the end (< 0).
        last: i16,
        /// Arguments from one key to the next.
        step: u16,
        /// With `last` -1, the part of the rest that holds the keys.
        limit: u16,
    },
    /// The argument at `first + index` counts the keys, which start at `first + first` (the
    /// field), `step` arguments apart.
    Keynum {
        /// The key count's position, relative to where the search began.
        index: u16,
        /// The first key's position, relative to where the search began.
        first: u16,
        /// Arguments from one key to the next.
        step: u16,
    },
}

/// Where the keys of a command that may be split across slots are: each key at argument
/// `first + i * step` is followed by `step - 1` arguments of its own (`MSET`'s value), up to
/// the end of the arguments, or, with `numkeys` (not 0), for the count that argument holds;
/// any arguments after them (`MSETEX`'s options) go with every part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyGroups {
    /// The position of the first key (the name is 0).
    pub first: u8,
    /// Arguments per key, the key included.
    pub step: u8,
    /// The position of the key count, or 0 when the keys run to the end.
    pub numkeys: u8,
}
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Spec;

    fn spec(json: &str) -> Spec {
        Spec::parse(&format!(r#"{{"source": "test", "commands": {{{json}}}}}"#)).unwrap()
    }

    #[test]
    fn policies_and_splits() {
        let s = spec(
            r#"
            "dbsize": {"tips": ["request_policy:all_shards", "response_policy:agg_sum"]},
            "get": {"tips": ["nondeterministic_output"]},
            "mset": {"tips": ["request_policy:multi_shard", "response_policy:all_succeeded"],
                "key_specs": [{"begin_search": {"type": "index", "spec": {"index": 1}},
                    "find_keys": {"type": "range", "spec": {"lastkey": -1, "keystep": 2, "limit": 0}}}]},
            "msetex": {"tips": ["request_policy:multi_shard"],
                "key_specs": [{"begin_search": {"type": "index", "spec": {"index": 1}},
                    "find_keys": {"type": "keynum", "spec": {"keynumidx": 0, "firstkey": 1, "keystep": 2}}}]},
            "odd": {"tips": ["request_policy:multi_shard"],
                "key_specs": [{"begin_search": {"type": "index", "spec": {"index": 1}},
                    "find_keys": {"type": "range", "spec": {"lastkey": 0, "keystep": 1, "limit": 0}}}]},
            "new": {"tips": ["response_policy:agg_median"]},
            "xread": {"key_specs": [{"begin_search": {"type": "keyword", "spec": {"keyword": "STREAMS", "startfrom": 1}},
                    "find_keys": {"type": "range", "spec": {"lastkey": -1, "keystep": 1, "limit": 2}}}]},
            "sort": {"key_specs": [
                {"begin_search": {"type": "index", "spec": {"index": 1}},
                    "find_keys": {"type": "range", "spec": {"lastkey": 0, "keystep": 1, "limit": 0}}},
                {"begin_search": {"type": "unknown", "spec": {}}, "find_keys": {"type": "unknown", "spec": {}}}]},
            "spublish": {"key_specs": [{"begin_search": {"type": "index", "spec": {"index": 1}},
                    "find_keys": {"type": "range", "spec": {"lastkey": 0, "keystep": 1, "limit": 0}},
                    "flags": ["not_key"]}]},
            "migrate": {"arguments": [{"name": "host", "type": "string"},
                    {"name": "key-selector", "type": "oneof", "arguments": [
                        {"name": "key", "type": "key", "key_spec_index": 0},
                        {"name": "empty-string", "type": "pure-token", "token": ""}]}],
                "key_specs": [{"begin_search": {"type": "index", "spec": {"index": 2}},
                    "find_keys": {"type": "range", "spec": {"lastkey": 0, "keystep": 1, "limit": 0}}}]},
            "bad": {"key_specs": [{"begin_search": {"type": "index", "spec": {"index": -1}},
                    "find_keys": {"type": "range", "spec": {"lastkey": 0, "keystep": 1, "limit": 0}}}]}
            "#,
        );
        let r = |n: &str| routing(n, &s.commands[n]);
        assert_eq!(
            r("dbsize").unwrap(),
            "Routing { request: RequestPolicy::AllShards, response: ResponsePolicy::AggSum, \
             keys: &[], split: None }"
        );
        assert_eq!(
            r("get").unwrap(),
            "Routing { request: RequestPolicy::Default, response: ResponsePolicy::Default, \
             keys: &[], split: None }"
        );
        assert!(r("mset").unwrap().contains(
            "keys: &[KeySpec { begin: Begin::Index(1), find: Find::Range { last: -1, step: 2, \
             limit: 0 }, not_key: false, empty_is_none: false }]"
        ));
        assert!(r("msetex").unwrap().contains(
            "keys: &[KeySpec { begin: Begin::Index(1), find: Find::Keynum { index: 0, first: 1, \
             step: 2 }, not_key: false, empty_is_none: false }]"
        ));
        assert!(r("mset")
            .unwrap()
            .ends_with("split: Some(KeyGroups { first: 1, step: 2, numkeys: 0 }) }"));
        assert!(r("msetex")
            .unwrap()
            .ends_with("split: Some(KeyGroups { first: 2, step: 2, numkeys: 1 }) }"));
        assert!(r("odd").unwrap_err().contains("cannot split"));
        assert!(r("new").unwrap_err().contains("agg_median"));
        assert!(r("xread").unwrap().contains(
            "keys: &[KeySpec { begin: Begin::Keyword { keyword: b\"STREAMS\", from: 1 }, \
             find: Find::Range { last: -1, step: 1, limit: 2 }, not_key: false, \
             empty_is_none: false }]"
        ));
        // An unknown key spec is left out; a shard channel is marked.
        assert_eq!(r("sort").unwrap().matches("KeySpec {").count(), 1);
        assert!(r("spublish").unwrap().contains("not_key: true"));
        assert!(r("migrate").unwrap().contains("empty_is_none: true"));
        assert!(r("spublish").unwrap().contains("empty_is_none: false"));
        assert!(r("bad").unwrap_err().contains("index"));
    }
}
