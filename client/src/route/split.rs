//! A multi-key command split by slot, and its parts' replies merged back.
//!
//! Only the commands whose `request_policy` tip is `multi_shard` are split (`MGET`, `MSET`,
//! `DEL`, `EXISTS`, `TOUCH`, `UNLINK`, and Valkey's `MSETEX`): each part is the same command
//! with the keys of one slot (and each key's own arguments: `MSET`'s value), a recomputed key
//! count (`MSETEX`'s `numkeys`) and the same trailing options. Their replies are merged as the
//! `response_policy` tip says: none (`MGET`) puts each part's array back in the caller's key
//! order; `agg_sum` (`DEL`, `EXISTS`…) adds; `all_succeeded` (`MSET`) fails if any part did.
//!
//! A split command is no longer atomic: another client may see some parts done and others
//! not, and a part may fail alone (the merged reply is then its error). Other multi-key
//! commands (`MSETNX`, `SUNION`, `RENAME`…) are never split: their keys must share a slot.

use super::aggregate::aggregate;
use super::slot::slot;
use super::tips::ResponsePolicy;
use super::{KeyGroups, Routing};
use crate::{Cmd, Error, Result, Value};

/// A command split into one command per slot.
#[derive(Debug)]
pub(crate) struct Split {
    /// Each part: the slot of its keys and the command to send there, by ascending slot.
    pub parts: Vec<(u16, Cmd)>,
    /// How their replies become the caller's.
    pub merge: Merge,
}

/// How the replies of a split command's parts become the caller's reply.
#[derive(Debug)]
pub(crate) struct Merge {
    /// For each part, the position of each of its keys among the caller's keys (0 first).
    positions: Vec<Vec<u32>>,
    /// How many keys the caller's command had.
    keys: usize,
    /// The command's `response_policy`.
    response: ResponsePolicy,
}

/// `cmd` split into one command per slot, when its `routing` (see `tips::routing`) lets it
/// be: `None` for a command that cannot be split (no `multi_shard` tip) or that has no key.
/// The keys are found from the spec's layout (not [`Cmd::keys`]), so a hand-built `MGET`
/// splits as well as the generated one. All keys in one slot give one part.
///
/// # Errors
///
/// [`Error::Client`] when the arguments do not fit the layout (`MSET` with a key and no value,
/// `MSETEX` whose `numkeys` is not the count of the pairs that follow).
pub(crate) fn split(cmd: &Cmd, routing: &Routing) -> Result<Option<Split>> {
    let Some(layout) = routing.split else {
        return Ok(None);
    };
    let args: Vec<&[u8]> = cmd.args().iter().collect();
    let (first, step) = (usize::from(layout.first), usize::from(layout.step));
    let Some(keys) = key_count(cmd, &args, layout)? else {
        return Ok(None);
    };
    let end = first + keys * step;
    // Each key's slot, and the keys in slot order (by position within a slot).
    let slots: Vec<u16> = (0..keys).map(|i| slot(args[first + i * step])).collect();
    let mut order: Vec<u32> = (0..keys as u32).collect();
    order.sort_by_key(|&i| slots[i as usize]);
    let mut parts = Vec::new();
    let mut positions: Vec<Vec<u32>> = Vec::new();
    for group in order.chunk_by(|a, b| slots[*a as usize] == slots[*b as usize]) {
        let mut part = Cmd::empty().with_flags(cmd.flags());
        for (at, arg) in args[..first].iter().enumerate() {
            if at != 0 && at == usize::from(layout.numkeys) {
                part.push_arg(group.len());
            } else {
                part.push_arg(*arg);
            }
        }
        for &k in group {
            let at = first + k as usize * step;
            part.push_key(args[at]);
            for arg in &args[at + 1..at + step] {
                part.push_arg(*arg);
            }
        }
        for arg in &args[end..] {
            part.push_arg(*arg);
        }
        parts.push((slots[group[0] as usize], part));
        positions.push(group.to_vec());
    }
    Ok(Some(Split {
        parts,
        merge: Merge {
            positions,
            keys,
            response: routing.response,
        },
    }))
}

/// How many keys `cmd` has in `layout`: `None` for none.
fn key_count(cmd: &Cmd, args: &[&[u8]], layout: KeyGroups) -> Result<Option<usize>> {
    let (first, step) = (usize::from(layout.first), usize::from(layout.step));
    let bad = |why: &str| {
        Error::client(format!(
            "{} cannot be sent: {why}",
            cmd.name().to_ascii_uppercase()
        ))
    };
    let keys = if layout.numkeys == 0 {
        let rest = args.len().saturating_sub(first);
        if rest % step != 0 {
            return Err(bad(&format!(
                "its keys come with {} argument(s) each, and {rest} argument(s) follow the \
                 first key",
                step - 1
            )));
        }
        rest / step
    } else {
        let Some(n) = args.get(usize::from(layout.numkeys)) else {
            return Ok(None);
        };
        let n = std::str::from_utf8(n)
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| bad("its key count is not a number"))?;
        let room = args.len().saturating_sub(first) / step;
        if n > room {
            return Err(bad(&format!(
                "its key count says {n}, and there is room for {room} key(s)"
            )));
        }
        n
    };
    Ok((keys > 0).then_some(keys))
}

impl Merge {
    /// The caller's reply from the parts' replies (in the order of [`Split::parts`]).
    ///
    /// # Errors
    ///
    /// A part's error (the first one); [`Error::Decode`] when a part's reply is not the array
    /// of one value per key that `MGET` gives; [`Error::Client`] when the count of replies is
    /// not the count of parts.
    pub(crate) fn merge(&self, replies: Vec<Result<Value>>) -> Result<Value> {
        if replies.len() != self.positions.len() {
            return Err(Error::client(format!(
                "{} replies for the {} parts of a split command",
                replies.len(),
                self.positions.len()
            )));
        }
        if self.response != ResponsePolicy::Default {
            return aggregate(self.response, replies);
        }
        let mut out = vec![Value::Nil; self.keys];
        for (reply, positions) in replies.into_iter().zip(&self.positions) {
            let values = match reply? {
                Value::Array(v) if v.len() == positions.len() => v,
                other => {
                    return Err(Error::decode(
                        format!("an array of {} values (one per key)", positions.len()),
                        &other,
                    ))
                }
            };
            for (v, &at) in values.into_iter().zip(positions) {
                out[at as usize] = v;
            }
        }
        Ok(Value::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tips::routing;
    use super::*;
    use crate::cmd;

    fn split_of(c: &Cmd) -> Split {
        split(c, routing(c)).unwrap().unwrap()
    }
    fn shown(s: &Split) -> Vec<(u16, String)> {
        s.parts.iter().map(|(s, c)| (*s, c.to_string())).collect()
    }
    fn bulk(s: &str) -> Value {
        Value::Bulk(bytes::Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn mget_splits_by_slot_and_merges_in_the_callers_order() {
        // foo: 12182, bar: 5061, {foo}x: 12182.
        let c = cmd!("MGET", "foo", "bar", "{foo}x", "bar");
        let s = split_of(&c);
        assert_eq!(
            shown(&s),
            [
                (5061, "MGET bar bar".to_string()),
                (12182, "MGET foo {foo}x".to_string())
            ]
        );
        // The parts' keys are marked.
        assert_eq!(s.parts[0].1.key_indices(), [1, 2]);
        let merged = s.merge.merge(vec![
            Ok(Value::Array(vec![bulk("B1"), Value::Nil])),
            Ok(Value::Array(vec![bulk("F"), bulk("FX")])),
        ]);
        assert_eq!(
            merged,
            Ok(Value::Array(vec![
                bulk("F"),
                bulk("B1"),
                bulk("FX"),
                Value::Nil
            ]))
        );
        // A part's error, a reply of the wrong shape, a missing reply.
        let e = Error::Server {
            kind: "CLUSTERDOWN".into(),
            message: "m".into(),
        };
        assert_eq!(
            s.merge.merge(vec![
                Ok(Value::Array(vec![Value::Nil, Value::Nil])),
                Err(e.clone())
            ]),
            Err(e)
        );
        assert!(matches!(
            s.merge.merge(vec![Ok(Value::Int(1)), Ok(Value::Int(1))]),
            Err(Error::Decode { .. })
        ));
        assert!(s.merge.merge(vec![Ok(Value::Nil)]).is_err());
    }

    #[test]
    fn mset_keeps_each_value_with_its_key() {
        let c = cmd!("MSET", "foo", 1, "bar", 2, "{bar}y", 3);
        let s = split_of(&c);
        assert_eq!(
            shown(&s),
            [
                (5061, "MSET bar 2 {bar}y 3".to_string()),
                (12182, "MSET foo 1".to_string())
            ]
        );
        assert_eq!(s.parts[0].1.key_indices(), [1, 3]);
        let ok = || Ok(Value::Simple("OK".into()));
        assert_eq!(s.merge.merge(vec![ok(), ok()]), ok());
        // A key without its value.
        assert!(matches!(
            split(&cmd!("MSET", "a", 1, "b"), routing(&cmd!("MSET"))),
            Err(Error::Client { .. })
        ));
    }

    #[test]
    fn counting_commands_add_up() {
        for name in ["DEL", "EXISTS", "TOUCH", "UNLINK"] {
            let c = cmd!(name, "foo", "bar", "foo");
            let s = split_of(&c);
            assert_eq!(
                shown(&s),
                [
                    (5061, format!("{name} bar")),
                    (12182, format!("{name} foo foo"))
                ]
            );
            assert_eq!(
                s.merge.merge(vec![Ok(Value::Int(1)), Ok(Value::Int(2))]),
                Ok(Value::Int(3))
            );
        }
    }

    #[test]
    fn a_key_count_is_recomputed_and_options_go_with_every_part() {
        // Valkey's MSETEX numkeys key value … [NX|XX] [EX …].
        let c = cmd!("MSETEX", 3, "foo", 1, "bar", 2, "zap", 3, "NX", "EX", 10);
        let s = split_of(&c);
        let zap = slot(b"zap");
        let mut want = vec![
            (5061, "MSETEX 1 bar 2 NX EX 10".to_string()),
            (12182, "MSETEX 1 foo 1 NX EX 10".to_string()),
            (zap, "MSETEX 1 zap 3 NX EX 10".to_string()),
        ];
        want.sort();
        assert_eq!(shown(&s), want);
        assert_eq!(s.parts[0].1.key_indices(), [2]);
        // A count that is not one, or larger than the pairs.
        let r = routing(&c);
        assert!(split(&cmd!("MSETEX", "x", "a", 1), r).is_err());
        assert!(split(&cmd!("MSETEX", 2, "a", 1), r).is_err());
    }

    #[test]
    fn what_is_not_split() {
        // One slot: one part, the command as it was.
        let c = cmd!("MGET", "{u}a", "{u}b");
        assert_eq!(shown(&split_of(&c)), [(slot(b"u"), c.to_string())]);
        // Not multi_shard; no keys.
        for c in [
            cmd!("MSETNX", "foo", 1, "bar", 2),
            cmd!("SUNION", "foo", "bar"),
            cmd!("GET", "foo"),
            cmd!("MGET"),
            cmd!("MODULE.MGET", "foo", "bar"),
        ] {
            assert!(split(&c, routing(&c)).unwrap().is_none(), "{c}");
        }
    }

    #[test]
    fn many_keys_in_many_slots() {
        let keys: Vec<String> = (0..2000).map(|i| format!("key:{i}")).collect();
        let c = Cmd::new("MGET").arg(&keys[..]);
        let s = split_of(&c);
        assert!(s.parts.len() > 1000);
        assert!(s.parts.windows(2).all(|w| w[0].0 < w[1].0));
        // Each part's reply echoes its keys: merged, they are the caller's keys in order.
        let replies = s
            .parts
            .iter()
            .map(|(_, p)| {
                Ok(Value::Array(
                    p.keys()
                        .map(|k| bulk(std::str::from_utf8(k).unwrap()))
                        .collect(),
                ))
            })
            .collect();
        let want: Vec<Value> = keys.iter().map(|k| bulk(k)).collect();
        assert_eq!(s.merge.merge(replies), Ok(Value::Array(want)));
    }
}
