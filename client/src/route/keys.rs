//! The keys of a command found from the spec's key specs, as the server finds them
//! (`COMMAND GETKEYS`): for a hand-built command (`cmd!("GET", "k")`) whose keys were not
//! marked. Specs of kind `unknown` (`SORT`'s `STORE`) are not in the table, so those keys are
//! not found; a spec whose arguments do not fit (a key count that is not a number, too few
//! arguments) finds nothing, and the others still count.

use super::{flag, spec_entry, Begin, Find, KeySpec, ROUTING};
use crate::Cmd;

/// The positions of the keys `specs` find in `args` (the name is position 0), in the specs'
/// order; with `not_keys`, the shard channels of `not_key` specs (`SPUBLISH`) too. An empty
/// argument that stands for no key (`MIGRATE`'s `""` before `KEYS`) is left out.
pub(crate) fn spec_keys(args: &[&[u8]], specs: &[KeySpec], not_keys: bool) -> Vec<usize> {
    let mut out = Vec::new();
    for spec in specs {
        if spec.not_key && !not_keys {
            continue;
        }
        if let Some((first, last, step)) = range(args, spec) {
            out.extend(
                (first..=last)
                    .step_by(step)
                    .filter(|i| !(spec.empty_is_none && args[*i].is_empty())),
            );
        }
    }
    out
}

/// The first and last key of one spec, and the step between keys: `None` when it finds none.
fn range(args: &[&[u8]], spec: &KeySpec) -> Option<(usize, usize, usize)> {
    let argc = args.len() as i64;
    let first = match spec.begin {
        Begin::Index(i) => i64::from(i),
        Begin::Keyword { keyword, from } => {
            let from = i64::from(from);
            let at = |i: &i64| args[*i as usize].eq_ignore_ascii_case(keyword);
            // From `from` to the end, or from `argc + from` back to argument 2 (the server's
            // bounds: a keyword as the very last or first argument has no key after it).
            let found = if from > 0 {
                (from..argc - 1).find(at)
            } else {
                (2..=argc + from).rev().find(at)
            };
            found? + 1
        }
    };
    let (first, last, step) = match spec.find {
        Find::Range { last, step, limit } => {
            let last = i64::from(last);
            let end = if last >= 0 {
                first + last
            } else if limit == 0 {
                argc + last
            } else {
                first + ((argc - first) / i64::from(limit) + last)
            };
            (first, end, i64::from(step))
        }
        Find::Keynum {
            index,
            first: f,
            step,
        } => {
            let count = args.get(usize::try_from(first + i64::from(index)).ok()?)?;
            let n: i64 = std::str::from_utf8(count).ok()?.parse().ok()?;
            let start = first + i64::from(f);
            let step = i64::from(step);
            (start, start + n.checked_sub(1)?.checked_mul(step)?, step)
        }
    };
    if first < 1 || first >= argc || last < first || last >= argc {
        return None;
    }
    Some((first as usize, last as usize, step as usize))
}

/// The keys a command with no key marked (a hand-built one: `cmd!("SET", "k", "v")`) may
/// change, found in its arguments by the spec's key specs as the server finds them; none when
/// the spec flags it read-only or does not list it. For a cache's local invalidation of the
/// writes sent through its client (`handle::caching`).
pub(crate) fn unmarked_changed_keys(cmd: &Cmd) -> Vec<Vec<u8>> {
    let mut words = cmd.args().iter();
    let Some(entry) = words
        .next()
        .and_then(|name| spec_entry(name, || words.next()))
    else {
        return Vec::new();
    };
    // The generator's indices are into its own table: never out of range.
    let keys = ROUTING
        .get(usize::from(entry.routing))
        .map_or(&[][..], |r| r.keys);
    if entry.flags & flag::READONLY != 0 || keys.is_empty() {
        return Vec::new();
    }
    let args: Vec<&[u8]> = cmd.args().iter().collect();
    spec_keys(&args, keys, false)
        .into_iter()
        .map(|i| args[i].to_vec())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tips::routing;
    use super::*;
    use crate::cmd;

    /// A hand-built command's keys, as a cache's local invalidation sees them: a write's and a
    /// script's found by the spec, a read's and an unlisted command's none.
    #[test]
    fn unmarked_changed_keys_follow_the_spec() {
        let keys = |c: Cmd| unmarked_changed_keys(&c);
        assert_eq!(keys(cmd!("SET", "k", "v")), [b"k".to_vec()]);
        assert_eq!(
            keys(cmd!("mset", "a", 1, "b", 2)),
            [b"a".to_vec(), b"b".to_vec()]
        );
        assert_eq!(
            keys(cmd!("EVAL", "return 1", 2, "x", "y", "arg")),
            [b"x".to_vec(), b"y".to_vec()]
        );
        assert_eq!(keys(cmd!("OBJECT", "ENCODING", "k")), Vec::<Vec<u8>>::new());
        assert!(keys(cmd!("GET", "k")).is_empty());
        assert!(keys(cmd!("HGETALL", "k")).is_empty());
        assert!(keys(cmd!("PING")).is_empty());
        assert!(keys(cmd!("MODULE.SET", "k", 1)).is_empty());
    }

    /// The keys of a hand-built command, as text.
    fn keys(c: &crate::Cmd) -> Vec<String> {
        let args: Vec<&[u8]> = c.args().iter().collect();
        spec_keys(&args, routing(c).keys, true)
            .into_iter()
            .map(|i| String::from_utf8_lossy(args[i]).into_owned())
            .collect()
    }

    #[test]
    fn keys_found_from_the_spec() {
        assert_eq!(keys(&cmd!("GET", "k")), ["k"]);
        assert_eq!(keys(&cmd!("set", "k", "v", "EX", 10)), ["k"]);
        assert_eq!(keys(&cmd!("MGET", "a", "b", "c")), ["a", "b", "c"]);
        assert_eq!(keys(&cmd!("MSET", "a", 1, "b", 2)), ["a", "b"]);
        assert_eq!(keys(&cmd!("RENAME", "a", "b")), ["a", "b"]);
        assert_eq!(keys(&cmd!("PING")), Vec::<String>::new());
        assert_eq!(keys(&cmd!("MODULE.X", "a")), Vec::<String>::new());
        // Key counts.
        assert_eq!(keys(&cmd!("EVAL", "s", 2, "a", "b", "x")), ["a", "b"]);
        assert_eq!(keys(&cmd!("EVAL", "s", 0, "x")), Vec::<String>::new());
        assert_eq!(
            keys(&cmd!("ZUNIONSTORE", "d", 2, "a", "b", "WEIGHTS", 1, 2)),
            ["d", "a", "b"]
        );
        assert_eq!(keys(&cmd!("LMPOP", 2, "a", "b", "LEFT")), ["a", "b"]);
        assert_eq!(keys(&cmd!("MSETEX", 2, "a", 1, "b", 2, "NX")), ["a", "b"]);
        // A count that is not a number, or too large: nothing from that spec.
        assert_eq!(keys(&cmd!("EVAL", "s", "x", "a")), Vec::<String>::new());
        assert_eq!(keys(&cmd!("EVAL", "s", 5, "a")), Vec::<String>::new());
        // Keywords, searched forwards (XREAD STREAMS: half of the rest) and backwards
        // (MIGRATE … KEYS).
        assert_eq!(
            keys(&cmd!("XREAD", "COUNT", 1, "streams", "s1", "s2", 0, 0)),
            ["s1", "s2"]
        );
        assert_eq!(
            keys(&cmd!("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">")),
            ["s"]
        );
        assert_eq!(
            keys(&cmd!("MIGRATE", "h", 1, "", 0, 5, "KEYS", "a", "b")),
            ["a", "b"]
        );
        assert_eq!(keys(&cmd!("MIGRATE", "h", 1, "k", 0, 5)), ["k"]);
        assert_eq!(keys(&cmd!("SET", "", 1)), [""]);
        assert_eq!(
            keys(&cmd!("GEORADIUS", "g", 1, 2, 3, "m", "STORE", "d")),
            ["g", "d"]
        );
        // SORT's STORE is an `unknown` spec: only the first key.
        assert_eq!(keys(&cmd!("SORT", "l", "STORE", "d")), ["l"]);
        // Subcommands.
        assert_eq!(keys(&cmd!("OBJECT", "ENCODING", "k")), ["k"]);
        assert_eq!(keys(&cmd!("XINFO", "STREAM", "s", "FULL")), ["s"]);
        // A shard channel, only when asked for.
        assert_eq!(keys(&cmd!("SPUBLISH", "ch", "m")), ["ch"]);
        let args: Vec<&[u8]> = vec![b"SPUBLISH", b"ch", b"m"];
        assert!(spec_keys(&args, routing(&cmd!("SPUBLISH")).keys, false).is_empty());
        // Too few arguments: nothing.
        assert_eq!(keys(&cmd!("GET")), Vec::<String>::new());
        assert_eq!(keys(&cmd!("XREAD", "STREAMS")), Vec::<String>::new());
    }
}
