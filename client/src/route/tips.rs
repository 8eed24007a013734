//! The spec's command tips for a cluster: where a command goes (`request_policy`) and how the
//! replies of the nodes it went to become one (`response_policy`).
//!
//! Read per command and subcommand from `commands.json` at build time (the `ROUTING` table of
//! `generated/spec_flags.rs`). A command the spec does not list, and one without these tips,
//! has [`RequestPolicy::Default`] and [`ResponsePolicy::Default`]: a command with keys goes to
//! the slot of its keys, one without to any node (see [`RequestPolicy::Default`]).

pub(crate) use super::policy::{RequestPolicy, ResponsePolicy, Tips};
use super::{spec_entry, Routing, ROUTING};
use crate::Cmd;

/// The spec's routing of `cmd` (the subcommand's for a container command such as
/// `SCRIPT EXISTS`; names in any letter case): the default one for a command the spec does not
/// list.
pub(crate) fn routing(cmd: &Cmd) -> &'static Routing {
    let mut args = cmd.args().iter();
    let entry = args
        .next()
        .and_then(|name| spec_entry(name, || args.next()));
    // The generator's indices are into its own table: never out of range.
    entry
        .and_then(|e| ROUTING.get(usize::from(e.routing)))
        .unwrap_or(&ROUTING[0])
}

/// The spec's tips of `cmd` (see [`routing`]).
pub(crate) fn tips(cmd: &Cmd) -> Tips {
    let r = routing(cmd);
    Tips {
        request: r.request,
        response: r.response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd;
    use RequestPolicy as Rq;
    use ResponsePolicy as Rs;

    fn t(request: RequestPolicy, response: ResponsePolicy) -> Tips {
        Tips { request, response }
    }

    #[test]
    fn the_tips_of_commands_and_subcommands() {
        assert_eq!(tips(&cmd!("GET", "k")), t(Rq::Default, Rs::Default));
        assert_eq!(tips(&cmd!("dbsize")), t(Rq::AllShards, Rs::AggSum));
        assert_eq!(tips(&cmd!("KEYS", "*")), t(Rq::AllShards, Rs::Default));
        assert_eq!(tips(&cmd!("FLUSHALL")), t(Rq::AllShards, Rs::AllSucceeded));
        assert_eq!(tips(&cmd!("PING")), t(Rq::AllShards, Rs::AllSucceeded));
        assert_eq!(
            tips(&cmd!("mget", "a", "b")),
            t(Rq::MultiShard, Rs::Default)
        );
        assert_eq!(
            tips(&cmd!("MSET", "a", 1)),
            t(Rq::MultiShard, Rs::AllSucceeded)
        );
        for n in ["DEL", "EXISTS", "TOUCH", "UNLINK"] {
            assert_eq!(tips(&cmd!(n, "a")), t(Rq::MultiShard, Rs::AggSum), "{n}");
        }
        assert_eq!(tips(&cmd!("MSETNX", "a", 1)), t(Rq::Default, Rs::Default));
        assert_eq!(tips(&cmd!("SCAN", 0)), t(Rq::Special, Rs::Special));
        assert_eq!(tips(&cmd!("WAIT", 1, 0)), t(Rq::AllShards, Rs::AggMin));
        // Subcommands, in any letter case.
        assert_eq!(
            tips(&cmd!("script", "exists", "abc")),
            t(Rq::AllShards, Rs::AggLogicalAnd)
        );
        assert_eq!(
            tips(&cmd!("SCRIPT", "LOAD", "return 1")),
            t(Rq::AllNodes, Rs::AllSucceeded)
        );
        assert_eq!(
            tips(&cmd!("CONFIG", "SET", "a", "b")),
            t(Rq::AllNodes, Rs::AllSucceeded)
        );
        assert_eq!(
            tips(&cmd!("CONFIG", "GET", "a")),
            t(Rq::Default, Rs::Default)
        );
        assert_eq!(
            tips(&cmd!("FUNCTION", "LOAD", "x")),
            t(Rq::AllShards, Rs::AllSucceeded)
        );
        assert_eq!(tips(&cmd!("INFO")), t(Rq::AllShards, Rs::Special));
        // Not in the spec, no name, an unknown subcommand.
        assert_eq!(tips(&cmd!("MODULE.X", "k")), Tips::default());
        assert_eq!(tips(&crate::Cmd::empty()), Tips::default());
        assert_eq!(tips(&cmd!("SCRIPT", "NOPE")), Tips::default());
    }

    /// The routing index fits in the gate's entries without growing them.
    #[test]
    fn entries_keep_their_size() {
        assert_eq!(std::mem::size_of::<super::super::Entry>(), 64);
    }

    /// Every `multi_shard` command can be split (codegen fails otherwise), and the split ones
    /// are the commands the issue names.
    #[test]
    fn the_splittable_commands() {
        let mut split = Vec::new();
        for c in super::super::COMMANDS {
            for e in std::iter::once(c).chain(c.subs) {
                let r = &ROUTING[usize::from(e.routing)];
                assert_eq!(r.request == Rq::MultiShard, r.split.is_some(), "{}", e.spec);
                if r.split.is_some() {
                    split.push(e.spec);
                }
            }
        }
        for n in ["del", "exists", "mget", "mset", "touch", "unlink"] {
            assert!(split.contains(&n), "{n}: {split:?}");
        }
        assert!(!split.contains(&"msetnx"));
    }
}
