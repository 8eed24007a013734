//! The cluster routing of each command, from the spec: its `request_policy` and
//! `response_policy` tips, and, for a command the tips let the client split across slots
//! (`request_policy:multi_shard`), where its keys are. Emitted into `spec_flags.rs` as the
//! `ROUTING` table, which each `Entry` points into (`Entry::routing`), so the gate's entries
//! keep their size.

use crate::model::Command;
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

/// The `ROUTING` entry of a command: `Routing { request: …, response: …, split: … }`.
///
/// # Errors
///
/// An unknown policy tip, or a `multi_shard` command the client could not split.
pub fn routing(spec_name: &str, c: &Command) -> Result<String, String> {
    let request = policy(spec_name, c, "request_policy:", REQUEST)?;
    let response = policy(spec_name, c, "response_policy:", RESPONSE)?;
    let split = if request == "MultiShard" {
        split(spec_name, c)?
    } else {
        "None".to_string()
    };
    Ok(format!(
        "Routing {{ request: RequestPolicy::{request}, response: ResponsePolicy::{response}, \
         split: {split} }}"
    ))
}

/// The Rust source of the `Routing` and `KeyGroups` types (the policies are the client's own enums,
/// in `route/tips.rs`).
pub const TYPES: &str = "\
/// How a command is routed in a cluster: its tips, and how to split it across slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Routing {
    /// Its `request_policy` tip.
    pub request: RequestPolicy,
    /// Its `response_policy` tip.
    pub response: ResponsePolicy,
    /// Where its keys are, for a `multi_shard` command.
    pub split: Option<KeyGroups>,
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
            "new": {"tips": ["response_policy:agg_median"]}
            "#,
        );
        let r = |n: &str| routing(n, &s.commands[n]);
        assert_eq!(
            r("dbsize").unwrap(),
            "Routing { request: RequestPolicy::AllShards, response: ResponsePolicy::AggSum, split: None }"
        );
        assert_eq!(
            r("get").unwrap(),
            "Routing { request: RequestPolicy::Default, response: ResponsePolicy::Default, split: None }"
        );
        assert!(r("mset")
            .unwrap()
            .ends_with("split: Some(KeyGroups { first: 1, step: 2, numkeys: 0 }) }"));
        assert!(r("msetex")
            .unwrap()
            .ends_with("split: Some(KeyGroups { first: 2, step: 2, numkeys: 1 }) }"));
        assert!(r("odd").unwrap_err().contains("cannot split"));
        assert!(r("new").unwrap_err().contains("agg_median"));
    }
}
