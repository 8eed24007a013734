//! Commands a cluster runs on more than one node, as the spec's tips say (`crate::route::plan`):
//!
//! * **split** (`request_policy:multi_shard`: `MGET`, `MSET`, `DEL`, `UNLINK`, `EXISTS`,
//!   `TOUCH`, Valkey's `MSETEX`) when the keys span slots: one part per slot
//!   (`crate::route::split`), every part sent at once (the parts of one node in one write),
//!   each with its redirects followed; the replies merged in the caller's key order (`MGET`)
//!   or as the response policy says (`DEL` adds up, `MSET` all succeeded);
//! * **every primary** (`request_policy:all_shards`: `DBSIZE`, `KEYS`, `FLUSHALL`, `PING`,
//!   `FUNCTION LOAD`, `SCRIPT EXISTS`…) or **every node**, replicas included but those the
//!   map says have failed (`request_policy:all_nodes`: `CONFIG SET`, `SCRIPT LOAD`,
//!   `ACL SETUSER`…), the replies
//!   made one by the response policy (`crate::route::aggregate`: `DBSIZE` sums, `KEYS`
//!   concatenates, `FLUSHALL` all succeeded, `SCRIPT EXISTS` ANDs element-wise);
//! * what the tips leave open (`special`): `RANDOMKEY` goes to every primary and answers one
//!   of their keys at random (nil only when every primary is empty); the other special replies
//!   (`INFO`, `MEMORY STATS`, `LATENCY …`, `FUNCTION STATS`) are a map of each node's address
//!   (`host:port`) to its reply; a `SCAN` call is refused (each primary has its own cursor: use
//!   `ClusterClient::scan_iter`, or route the `SCAN` to one node with
//!   [`Cmd::route_slot`](crate::Cmd::route_slot)).
//!
//! A command routed by hand ([`Cmd::route_slot`](crate::Cmd::route_slot),
//! [`Cmd::route_key`](crate::Cmd::route_key)) goes to that one node only, whatever its tips.
//! A keyless command with no tip goes to one primary.
//!
//! When a part fails, the call fails with that part's error (the first one, in part order);
//! when other parts succeeded (or may have run: their connection was lost after the write, or
//! they timed out), the error's message says how many: **a split or fanned-out write is not
//! atomic**, and a failed `MSET` or `FLUSHALL` may have run on some nodes.

use super::core::Core;
use crate::route::aggregate::aggregate;
use crate::route::plan::{plan, Plan};
use crate::route::split::{Merge, Split};
use crate::route::tips::{RequestPolicy, ResponsePolicy};
use crate::route::topology::{NodeAddr, Target};
use crate::{Cmd, Error, Result, Value};

/// Where a command goes: one node, or several.
pub(super) enum Step {
    /// One node (`None`: only the server can say: `COMMAND GETKEYS` is asked).
    One(Option<Target>),
    /// Several.
    Fan(Fan),
}

/// A command that runs on more than one node.
pub(super) struct Fan {
    /// The command's name (and subcommand), upper-case, for messages.
    name: String,
    how: How,
}

enum How {
    /// Split by slot.
    Split(Split),
    /// The command as it is, to every primary (`replicas`: and every replica).
    Each {
        cmd: Cmd,
        replicas: bool,
        combine: Combine,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Combine {
    Policy(ResponsePolicy),
    /// A map of each node's address to its reply.
    ByNode,
    /// One of the non-nil replies, at random.
    RandomKey,
}

/// Where `cmd` goes, given what the cluster decided from its keys alone (`planned`: a slot, any
/// primary, `None` to ask the server, or `CROSSSLOT`). Only a decision other than a slot is
/// looked at again, so a single-slot command costs nothing more.
///
/// # Errors
///
/// `CROSSSLOT` for keys across slots of a command that cannot be split; a `SCAN` that is not
/// routed by hand; a split command whose arguments do not fit its layout.
pub(super) fn step(cmd: &Cmd, planned: Result<Option<Target>>) -> Result<Step> {
    if let Ok(Some(Target::Slot(_) | Target::Node(_))) = planned {
        return planned.map(Step::One);
    }
    Ok(match plan(cmd)? {
        Plan::Slot(s) => Step::One(Some(Target::Slot(s))),
        Plan::Split(split) => Step::Fan(Fan {
            name: name_of(cmd),
            how: How::Split(split),
        }),
        Plan::Keyless(tips) => {
            let replicas = match tips.request {
                RequestPolicy::AllShards => false,
                RequestPolicy::AllNodes => true,
                RequestPolicy::Special if cmd.name().eq_ignore_ascii_case("scan") => {
                    return Err(Error::client(
                        "SCAN on a cluster: each primary has its own keys and cursor, so a SCAN \
                         call cannot go to the cluster as a whole: use ClusterClient::scan_iter() \
                         (every primary, each cursor walked to 0), or send the SCAN to one node \
                         with Cmd::route_slot",
                    ))
                }
                // No tip (or one the client has no rule for): as decided from the keys.
                _ => return planned.map(Step::One),
            };
            let combine = match tips.response {
                ResponsePolicy::Special if cmd.name().eq_ignore_ascii_case("randomkey") => {
                    Combine::RandomKey
                }
                ResponsePolicy::Special => Combine::ByNode,
                policy => Combine::Policy(policy),
            };
            Step::Fan(Fan {
                name: name_of(cmd),
                how: How::Each {
                    cmd: cmd.clone(),
                    replicas,
                    combine,
                },
            })
        }
    })
}

/// The command's name, with its subcommand, upper-case.
fn name_of(cmd: &Cmd) -> String {
    let mut args = cmd.args().iter();
    let name = args.next().unwrap_or_default();
    let mut out = String::from_utf8_lossy(name).to_ascii_uppercase();
    if crate::route::has_subcommands(name) {
        if let Some(sub) = args.next() {
            out.push(' ');
            out.push_str(&String::from_utf8_lossy(sub).to_ascii_uppercase());
        }
    }
    out
}

impl Fan {
    /// The parts to send (each with its target) and how their replies become one, by the
    /// current map (which must be known for a command sent to every node).
    ///
    /// # Errors
    ///
    /// [`Error::Client`] when the map names no node.
    pub(super) fn parts(self, core: &Core) -> Result<(Vec<(Target, Cmd)>, Fold)> {
        let name = self.name;
        match self.how {
            How::Split(split) => {
                let what = format!("{name} was split by slot into {} parts", split.parts.len());
                let parts = split
                    .parts
                    .into_iter()
                    .map(|(slot, cmd)| (Target::Slot(slot), cmd))
                    .collect();
                Ok((
                    parts,
                    Fold {
                        what,
                        how: FoldHow::Merge(split.merge),
                    },
                ))
            }
            How::Each {
                cmd,
                replicas,
                combine,
            } => {
                let nodes = nodes(core, replicas);
                if nodes.is_empty() {
                    return Err(Error::client(format!(
                        "{name}: the cluster's map names no node to send it to"
                    )));
                }
                let what = format!(
                    "{name} went to {} {}",
                    nodes.len(),
                    if replicas { "nodes" } else { "primaries" }
                );
                let parts = nodes
                    .iter()
                    .map(|addr| (Target::Node(addr.clone()), cmd.clone()))
                    .collect();
                let how = match combine {
                    Combine::Policy(p) => FoldHow::Policy(p),
                    Combine::ByNode => FoldHow::ByNode(nodes),
                    Combine::RandomKey => FoldHow::RandomKey,
                };
                Ok((parts, Fold { what, how }))
            }
        }
    }
}

/// Every primary, in the map's shard order, and (`replicas`) after each its replicas but those
/// the map says have failed.
fn nodes(core: &Core, replicas: bool) -> Vec<NodeAddr> {
    core.topology.with_view(|v| {
        let mut out = Vec::new();
        for shard in v.map.shards() {
            out.push(shard.primary.addr.clone());
            if replicas {
                out.extend(
                    shard
                        .replicas
                        .iter()
                        .filter(|n| !n.failed)
                        .map(|n| n.addr.clone()),
                );
            }
        }
        out
    })
}

/// How the replies of a fan's parts become the caller's reply.
pub(super) struct Fold {
    /// What was sent where, for the message of a partial failure.
    what: String,
    how: FoldHow,
}

enum FoldHow {
    Merge(Merge),
    Policy(ResponsePolicy),
    ByNode(Vec<NodeAddr>),
    RandomKey,
}

impl Fold {
    /// The caller's reply from the parts' replies (in the order of [`Fan::parts`]).
    ///
    /// # Errors
    ///
    /// A part's error (see the module docs), with a note when other parts ran.
    pub(super) fn fold(self, replies: Vec<Result<Value>>) -> Result<Value> {
        let ran = replies.iter().filter(|r| r.is_ok()).count();
        let maybe = replies
            .iter()
            .filter(|r| match r {
                Err(Error::Connection { sent, .. }) => *sent,
                Err(Error::Timeout) => true,
                _ => false,
            })
            .count();
        let parts = replies.len();
        let out = match self.how {
            FoldHow::Merge(merge) => merge.merge(replies),
            FoldHow::Policy(policy) => aggregate(policy, replies),
            FoldHow::ByNode(nodes) => replies
                .into_iter()
                .zip(nodes)
                .map(|(r, node)| r.map(|v| (Value::Bulk(node.to_string().into()), v)))
                .collect::<Result<Vec<_>>>()
                .map(Value::Map),
            FoldHow::RandomKey => random_key(replies),
        };
        out.map_err(|e| {
            if ran + maybe == 0 || matches!(e, Error::Decode { .. }) {
                return e;
            }
            let mut note = format!(
                "{}: {ran} of {parts} succeeded, so it ran in part",
                self.what
            );
            if maybe > 0 {
                note = format!(
                    "{}: {ran} of {parts} succeeded and {maybe} may have run, so it may have run \
                     in part",
                    self.what
                );
            }
            noted(e, &note)
        })
    }
}

/// One of the non-nil replies at random (nil when all are); a node's error fails it.
fn random_key(replies: Vec<Result<Value>>) -> Result<Value> {
    let mut keys = Vec::new();
    for r in replies {
        match r? {
            Value::Nil => {}
            key => keys.push(key),
        }
    }
    if keys.is_empty() {
        return Ok(Value::Nil);
    }
    // Seeded from the clock and a counter: no shared generator to lock.
    static TURN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let turn = TURN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let at = fastrand::Rng::with_seed(turn ^ u64::from(nanos).rotate_left(32)).usize(..keys.len());
    Ok(keys.swap_remove(at))
}

/// `e` with `note` after its message (an error with no message as it is).
fn noted(e: Error, note: &str) -> Error {
    match e {
        Error::Server { kind, message } => Error::Server {
            kind,
            message: format!("{message} ({note})"),
        },
        Error::Connection {
            message,
            source,
            sent,
        } => Error::Connection {
            message: format!("{message} ({note})"),
            source,
            sent,
        },
        Error::Client { message, source } => Error::Client {
            message: format!("{message} ({note})"),
            source,
        },
        Error::Protocol { message } => Error::Protocol {
            message: format!("{message} ({note})"),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd;

    fn fan(step: Result<Step>) -> Fan {
        match step {
            Ok(Step::Fan(f)) => f,
            Ok(Step::One(t)) => panic!("one node: {t:?}"),
            Err(e) => panic!("{e}"),
        }
    }

    fn each(f: &Fan) -> (bool, Combine) {
        match &f.how {
            How::Each {
                replicas, combine, ..
            } => (*replicas, *combine),
            How::Split(_) => panic!("split"),
        }
    }

    #[test]
    fn where_commands_go() {
        let any = || Ok(Some(Target::AnyPrimary));
        // A slot decided from the keys is kept as it is, even for a command with tips.
        assert!(matches!(
            step(&cmd!("DBSIZE").route_slot(7), Ok(Some(Target::Slot(7)))),
            Ok(Step::One(Some(Target::Slot(7))))
        ));
        // Split across slots, whether the keys were marked or not.
        let cross = Cmd::new("MGET").key("foo").key("bar");
        let planned = crate::route::slot::cmd_slot(&cross).map(|s| s.map(Target::Slot));
        assert!(planned.is_err());
        assert!(matches!(fan(step(&cross, planned)).how, How::Split(_)));
        assert!(matches!(
            fan(step(&cmd!("DEL", "foo", "bar"), Ok(None))).how,
            How::Split(_)
        ));
        // Keys in one slot (unmarked): that slot.
        assert!(matches!(
            step(&cmd!("MGET", "{u}a", "{u}b"), Ok(None)),
            Ok(Step::One(Some(Target::Slot(_))))
        ));
        // Not splittable: the CROSSSLOT error stays.
        let msetnx = Cmd::new("MSETNX").key("foo").arg(1).key("bar").arg(2);
        let planned = crate::route::slot::cmd_slot(&msetnx).map(|s| s.map(Target::Slot));
        assert!(step(&msetnx, planned).is_err_and(|e| e.to_string().contains("CROSSSLOT")));
        // Tips.
        use ResponsePolicy as P;
        for (c, want) in [
            (cmd!("DBSIZE"), (false, Combine::Policy(P::AggSum))),
            (cmd!("KEYS", "*"), (false, Combine::Policy(P::Default))),
            (cmd!("FLUSHALL"), (false, Combine::Policy(P::AllSucceeded))),
            (cmd!("PING"), (false, Combine::Policy(P::AllSucceeded))),
            (
                cmd!("SCRIPT", "EXISTS", "a"),
                (false, Combine::Policy(P::AggLogicalAnd)),
            ),
            (
                cmd!("SCRIPT", "LOAD", "return 1"),
                (true, Combine::Policy(P::AllSucceeded)),
            ),
            (
                cmd!("config", "set", "a", "b"),
                (true, Combine::Policy(P::AllSucceeded)),
            ),
            (cmd!("RANDOMKEY"), (false, Combine::RandomKey)),
            (cmd!("INFO"), (false, Combine::ByNode)),
            (cmd!("MEMORY", "STATS"), (false, Combine::ByNode)),
        ] {
            assert_eq!(each(&fan(step(&c, any()))), want, "{c}");
        }
        // No tip: as decided.
        assert!(matches!(
            step(&cmd!("ECHO", "x"), Ok(None)),
            Ok(Step::One(None))
        ));
        assert!(matches!(
            step(&cmd!("CONFIG", "GET", "x"), any()),
            Ok(Step::One(Some(Target::AnyPrimary)))
        ));
        // SCAN is refused unless routed by hand.
        assert!(step(&cmd!("SCAN", 0), Ok(None))
            .is_err_and(|e| e.is_client() && e.to_string().contains("scan_iter")));
        assert_eq!(name_of(&cmd!("script", "load", "x")), "SCRIPT LOAD");
    }

    #[test]
    fn folds_and_their_errors() {
        let ok = || Ok(Value::Simple("OK".into()));
        let err = || {
            Err(Error::Server {
                kind: "ERR".into(),
                message: "boom".into(),
            })
        };
        let fold = |how| Fold {
            what: "X went to 3 primaries".into(),
            how,
        };
        assert_eq!(
            fold(FoldHow::Policy(ResponsePolicy::AllSucceeded)).fold(vec![ok(), ok(), ok()]),
            ok()
        );
        // One failed, two ran: said so, kind kept.
        let e = fold(FoldHow::Policy(ResponsePolicy::AllSucceeded))
            .fold(vec![ok(), err(), ok()])
            .unwrap_err();
        assert!(
            matches!(&e, Error::Server { kind, message } if kind == "ERR"
                && message.starts_with("boom (X went to 3 primaries: 2 of 3 succeeded")),
            "{e}"
        );
        // None ran: the error as it is.
        assert_eq!(
            fold(FoldHow::Policy(ResponsePolicy::AllSucceeded)).fold(vec![err(), err()]),
            err()
        );
        // A lost connection after the write: may have run.
        let lost = Err(Error::Connection {
            message: "lost".into(),
            source: None,
            sent: true,
        });
        let e = fold(FoldHow::Policy(ResponsePolicy::AggSum))
            .fold(vec![err(), lost])
            .unwrap_err();
        assert!(e.to_string().contains("1 may have run"), "{e}");
        // By node; random key.
        let nodes = vec![NodeAddr::new("h", 1), NodeAddr::new("h", 2)];
        assert_eq!(
            fold(FoldHow::ByNode(nodes)).fold(vec![Ok(Value::Int(1)), Ok(Value::Int(2))]),
            Ok(Value::Map(vec![
                (Value::Bulk("h:1".into()), Value::Int(1)),
                (Value::Bulk("h:2".into()), Value::Int(2)),
            ]))
        );
        let k = Value::Bulk("k".into());
        assert_eq!(
            fold(FoldHow::RandomKey).fold(vec![Ok(Value::Nil), Ok(k.clone()), Ok(Value::Nil)]),
            Ok(k)
        );
        assert_eq!(
            fold(FoldHow::RandomKey).fold(vec![Ok(Value::Nil), Ok(Value::Nil)]),
            Ok(Value::Nil)
        );
    }
}
