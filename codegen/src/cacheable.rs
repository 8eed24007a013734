//! Which commands a client may serve from its cache (`.cached()` on their builders): the rule,
//! read from each command's flags, key specs, tips and group in `commands.json`.
//!
//! A command is cacheable when its reply is a function of the keys it names and nothing else,
//! so that the server's invalidation of those keys (`CLIENT TRACKING`) is all a cached reply
//! needs to stay true:
//!
//! - it is `readonly` (it changes nothing) and has key specs (the keys are known, and tracked);
//! - it is not `blocking` (its reply depends on when other clients write);
//! - it has no `nondeterministic_output` tip (`SRANDMEMBER`, `HSCAN`, `TTL`, `OBJECT FREQ`:
//!   a reply that may differ for the same data); `nondeterministic_output_order` is fine (the
//!   same elements, in an order the caller cannot rely on anyway: `SMEMBERS`, `HGETALL`);
//! - it is not in group `scripting` (`EVAL_RO`, `FCALL_RO`: a script may read keys it does not
//!   declare, and its reply may depend on anything);
//! - it is not one of [`NOT_CACHEABLE`], readonly commands the tips do not flag but whose reply
//!   still depends on more than their keys' data, or changes without an invalidation.

use crate::model::{Command, Spec};

/// Commands the rule would admit but that are not cacheable, each with why.
pub const NOT_CACHEABLE: &[(&str, &str)] = &[
    (
        "memory|usage",
        "the bytes a value takes depend on the server's allocator and encoding, not only on the \
         key's data",
    ),
    (
        "touch",
        "its point is the side effect (the key's last access time), which a cached reply skips",
    ),
    (
        "sort_ro",
        "BY and GET read keys the key specs do not declare, so their changes are not tracked",
    ),
    (
        "xinfo|groups",
        "consumer groups change without an invalidation: XREADGROUP, XACK, XCLAIM, XGROUP \
         CREATE/SETID/CREATECONSUMER send none (seen on Redis 7.0 and Valkey 9)",
    ),
    (
        "xinfo|stream",
        "its group count (and FULL's groups, consumers and pending entries) change without an \
         invalidation: consumer group commands send none (seen on Redis 7.0 and Valkey 9)",
    ),
    (
        "httl",
        "the time left changes with time, without a write to invalidate it (HEXPIRETIME does not)",
    ),
    (
        "hpttl",
        "the time left changes with time, without a write to invalidate it (HPEXPIRETIME does \
         not)",
    ),
];

/// Whether `c` (named `name`, `"xinfo|stream"`-style) is cacheable: see the module docs.
pub fn is_cacheable(name: &str, c: &Command) -> bool {
    by_flags(c) && !NOT_CACHEABLE.iter().any(|(n, _)| *n == name)
}

/// The rule without [`NOT_CACHEABLE`]: readonly, with key specs, not blocking, no
/// `nondeterministic_output` tip, not a script.
fn by_flags(c: &Command) -> bool {
    c.has_flag("readonly")
        && !c.key_specs.is_empty()
        && !c.has_flag("blocking")
        && !c.tips.iter().any(|t| t == "nondeterministic_output")
        && c.group != "scripting"
}

/// The cacheable commands among those that get a method ([`Spec::eligible`]), by
/// `"xinfo|stream"`-style name, sorted.
pub fn cacheable(spec: &Spec) -> Vec<String> {
    spec.eligible()
        .into_iter()
        .filter(|(n, c)| is_cacheable(n, c))
        .map(|(n, _)| n)
        .collect()
}

/// Every [`NOT_CACHEABLE`] entry must name a command of `spec` that the rule would otherwise
/// admit: one the spec lost, or one the tips now exclude, is stale.
pub fn check_listed(spec: &Spec) -> Result<(), String> {
    for (name, _) in NOT_CACHEABLE {
        let c = spec
            .commands
            .get(*name)
            .or_else(|| {
                let (parent, _) = name.split_once('|')?;
                spec.commands.get(parent)?.subcommands.get(*name)
            })
            .ok_or_else(|| format!("not cacheable: {name:?} is not in the spec"))?;
        if !by_flags(c) {
            return Err(format!(
                "not cacheable: {name:?} is excluded by the rule already: drop it from the list"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        let p = format!("{}/../commands.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
        Spec::parse(&text).unwrap()
    }

    #[test]
    fn known_commands_are_in_or_out() {
        let spec = spec();
        let set = cacheable(&spec);
        let has = |n: &str| set.iter().any(|x| x == n);
        for n in [
            "get",
            "hgetall",
            "hget",
            "smembers",
            "zrange",
            "mget",
            "lrange",
            "geopos",
            "pfcount",
            "xrange",
            "bitcount",
            "exists",
            "strlen",
            "sismember",
            "zscore",
            "hexpiretime",
            "xlen",
            "xrevrange",
        ] {
            assert!(has(n), "{n} should be cacheable");
        }
        for n in [
            "set",             // a write
            "srandmember",     // nondeterministic_output
            "hscan",           // nondeterministic_output
            "ttl",             // nondeterministic_output
            "pttl",            // nondeterministic_output
            "eval_ro",         // scripting
            "fcall_ro",        // scripting
            "xread",           // blocking
            "touch",           // listed
            "sort_ro",         // listed
            "memory|usage",    // listed
            "httl",            // listed
            "hpttl",           // listed
            "object|freq",     // nondeterministic_output
            "dbsize",          // no keys
            "randomkey",       // no keys
            "xinfo|consumers", // nondeterministic_output
            "xinfo|groups",    // listed
            "xinfo|stream",    // listed
        ] {
            assert!(!has(n), "{n} should not be cacheable");
        }
    }

    /// The whole set, so that a refresh of `commands.json` that changes it is a reviewed diff.
    #[test]
    fn the_whole_set() {
        assert_eq!(
            cacheable(&spec()).join(" "),
            "bitcount bitfield_ro bitpos exists expiretime geodist geohash geopos georadius_ro \
             georadiusbymember_ro geosearch get getbit getrange hexists hexpiretime hget hgetall \
             hkeys hlen hmget hpexpiretime hstrlen hvals lcs lindex llen lpos lrange mget \
             pexpiretime pfcount scard sdiff sinter sintercard sismember smembers smismember \
             strlen substr sunion type xlen xrange xrevrange zcard \
             zcount zdiff zinter zintercard zlexcount zmscore zrange zrangebylex zrangebyscore \
             zrank zrevrange zrevrangebylex zrevrangebyscore zrevrank zscore zunion"
        );
    }

    #[test]
    fn the_listed_exceptions_are_live() {
        check_listed(&spec()).unwrap();
        let stale = Spec::parse(
            r#"{"source": "test", "commands": {
                "touch": {"flags": ["readonly"], "key_specs": [{}], "group": "generic"}
            }}"#,
        )
        .unwrap();
        let err = check_listed(&stale).unwrap_err();
        assert!(err.contains("\"memory|usage\" is not in the spec"), "{err}");
    }

    #[test]
    fn each_part_of_the_rule() {
        let spec = Spec::parse(
            r#"{"source": "test", "commands": {
                "get": {"flags": ["readonly", "fast"], "key_specs": [{}], "group": "string"},
                "set": {"flags": ["write"], "key_specs": [{}], "group": "string"},
                "dbsize": {"flags": ["readonly"], "group": "server"},
                "xread": {"flags": ["readonly", "blocking"], "key_specs": [{}], "group": "stream"},
                "ttl": {"flags": ["readonly"], "key_specs": [{}], "group": "generic",
                        "tips": ["nondeterministic_output"]},
                "smembers": {"flags": ["readonly"], "key_specs": [{}], "group": "set",
                             "tips": ["nondeterministic_output_order"]},
                "eval_ro": {"flags": ["readonly"], "key_specs": [{}], "group": "scripting"},
                "touch": {"flags": ["readonly"], "key_specs": [{}], "group": "generic"},
                "object": {"arity": -2, "subcommands": {
                    "object|encoding": {"flags": ["readonly"], "key_specs": [{}],
                                        "group": "generic"}
                }}
            }}"#,
        )
        .unwrap();
        assert_eq!(cacheable(&spec), ["get", "object|encoding", "smembers"]);
    }
}
