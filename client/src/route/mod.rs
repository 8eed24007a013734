//! The routing gate: where a request may run, decided once for every path a request can take.
//!
//! A [`Client`](crate::Client)'s connection is shared by every caller, and replies are matched to
//! callers by order alone. So a command that changes how the connection answers (`CLIENT REPLY`,
//! `MULTI`, `SUBSCRIBE`, `MONITOR`…) would hand replies to the wrong callers, a command that
//! blocks (`BLPOP q 0`) would stall them all, and a command that sets connection state (`SELECT`,
//! `AUTH`, `CLIENT SETNAME`…) would change every caller's session and be lost, silently, on the
//! next reconnect (and never reach the dedicated connections of blocking calls).
//!
//! Every request passes here before it is sent: [`Client::call`](crate::Client::call) (and so
//! every generated method, [`Pool`](crate::Pool) clients, [`Spread`](crate::Spread),
//! [`Client::dedicated`](crate::Client::dedicated) clients, the connection a
//! [`watch_transaction`](crate::Client::watch_transaction) closure gets and
//! [`Subscriber::connection`](crate::Subscriber::connection)),
//! [`Client::async_call`](crate::Client::async_call), pipelines and transactions. Only the
//! library's own connection handling (the handshake, `WATCH` in `watch_transaction`, a
//! transaction's `MULTI`/`EXEC`, the subscriber's (un)subscribes) goes around it.
//!
//! The gate gives one of three answers:
//!
//! * **shared connection**: everything else;
//! * **dedicated connection**: a command that blocks (the spec's `blocking` flag: `BLPOP`,
//!   `BRPOP`, `BRPOPLPUSH`, `BLMOVE`, `BLMPOP`, `BZPOPMIN`, `BZPOPMAX`, `BZMPOP`, `XREAD`/
//!   `XREADGROUP` with `BLOCK`) runs on a connection of its own, with a reply deadline of its own
//!   block time plus the command timeout, and the connection goes back to a small idle set when
//!   the reply came. A pipeline holding blocking commands (or `WAIT`/`WAITAOF`) runs there as a
//!   whole, with the sum of their block times (they run one after another). Inside a transaction
//!   nothing blocks, so a transaction stays on the shared connection;
//! * **refused** with [`Error::Client`] naming what to use instead. In a pipeline or transaction
//!   a refused command refuses the whole of it, and the error says which command, at which
//!   position (from 1).
//!
//! | commands | why | use instead |
//! | --- | --- | --- |
//! | `MULTI`, `EXEC`, `DISCARD` | other callers' commands would be queued into the transaction | [`Client::transaction`](crate::Client::transaction) |
//! | `WATCH`, `UNWATCH` | connection state, lost on reconnect | [`Client::watch_transaction`](crate::Client::watch_transaction) |
//! | `SUBSCRIBE`, `PSUBSCRIBE`, `SSUBSCRIBE`, and their `UN…` (spec: `pubsub` + `noscript`) | the connection turns into a message feed | [`Client::subscriber`](crate::Client::subscriber) |
//! | `CLIENT REPLY` | calls wait for replies that never come; later replies shift to the wrong callers | `async_call(cmd, None)` to ignore a reply |
//! | `MONITOR` | the connection turns into a feed of every command | not supported (`redis-cli monitor`) |
//! | `SCRIPT DEBUG` | the connection's next `EVAL` opens a Lua debugger session on it: later callers' commands are read as debugger commands | not supported (`redis-cli --ldb`) |
//! | `SYNC`, `PSYNC`, `REPLCONF` | the replication protocol | not supported |
//! | `QUIT`, `RESET` (spec: `no_auth`) | closes or resets the shared connection | [`Client::disconnect`](crate::Client::disconnect) |
//! | `HELLO` with arguments, `AUTH` (spec: `no_auth`) | the protocol and the user are connection state | [`Config::protocol`](crate::Config::protocol), [`Config::username`](crate::Config::username), [`Config::password`](crate::Config::password), [`Config::client_name`](crate::Config::client_name) (`HELLO` alone, which changes nothing, is allowed) |
//! | `SELECT` | switches every caller's database; lost on reconnect | [`Config::db`](crate::Config::db), a client per database |
//! | `CLIENT SETNAME` | connection state | [`Config::client_name`](crate::Config::client_name) |
//! | `CLIENT TRACKING` | connection state, lost on reconnect | [`Config::tracking`](crate::Config::tracking) |
//! | `CLIENT CACHING` | applies to the connection's next command, which may be another caller's | a pipeline, right before the command it is for |
//! | `CLIENT SETINFO`, `CLIENT NO-EVICT`, `CLIENT NO-TOUCH`, `CLIENT CAPA`, `CLIENT IMPORT-SOURCE` | connection state, lost on reconnect | no `Config` option yet: not supported |
//! | `READONLY`, `READWRITE`, `ASKING` | cluster connection state: `READONLY` would let every later caller's reads on the connection go to a replica's stale data, `ASKING` would let the connection's next command (maybe another caller's) reach a slot being imported | [`ClusterClient`](crate::ClusterClient), which sends `ASKING` itself, in the same write as the redirected command, and [`ClusterBuilder::read_from_replicas`](crate::ClusterBuilder::read_from_replicas) |
//! | `WAIT`, `WAITAOF` | wait for the connection's own earlier writes (a dedicated connection has none) | a pipeline: the writes, then `WAIT` |
//!
//! The spec's flags (`blocking`, `pubsub` with `noscript`, `no_auth`) are read from
//! `commands.json` at build time, so a command the spec adds to those families is routed the same
//! way; the rest of the table is the short list in [`listed`]. A hand-built command the spec does
//! not list (a module's) runs on the shared connection unless its
//! [`CmdFlags::blocking`](crate::CmdFlags::blocking) says it blocks: then, like `BLPOP`, on a
//! dedicated connection with no reply deadline. Names are matched
//! case-insensitively with their subcommand, so `cmd!("client", "reply", "skip")` built by hand is
//! treated exactly like the generated `client_reply`.
//!
//! # Cluster routing
//!
//! The pure decisions a cluster client makes per command, from the same build-time table (no
//! IO): [`slot`] (a key's slot, a command's one slot or CROSSSLOT), [`keys`] (a hand-built
//! command's keys from the spec's key specs), [`tips`] (the `request_policy`/`response_policy`
//! tips), [`split`] (a `multi_shard` command split by slot and its replies merged),
//! [`aggregate`] (the replies of a fan-out made one) and [`plan`] (which of these applies);
//! [`topology`] (a cluster's slot map from `CLUSTER SHARDS`/`CLUSTER SLOTS`) and [`redirect`]
//! (`MOVED`/`ASK` read).

pub(crate) mod aggregate;
mod blocking;
pub(crate) mod keys;
pub(crate) mod keyslot;
pub(crate) mod plan;
pub(crate) mod policy;
pub mod probe;
pub(crate) mod redirect;
pub(crate) mod slot;
pub(crate) mod split;
pub(crate) mod tips;
pub(crate) mod topology;

use crate::{Cmd, Error, Result};
use policy::{RequestPolicy, ResponsePolicy};
use std::time::Duration;

// Checked in (`scripts/generate` rewrites it; codegen's `checked_in` test keeps it fresh).
include!("../generated/spec_flags.rs");

/// The first 8 bytes of `word`, lower-cased, zero-padded, big-endian (as `Entry::key`).
fn prefix_key(word: &[u8]) -> u64 {
    let mut k = [0u8; 8];
    for (o, c) in k.iter_mut().zip(word) {
        *o = c.to_ascii_lowercase();
    }
    u64::from_be_bytes(k)
}

/// The entry named `word` (any letter case) in `table`: a binary search that compares one
/// integer per step, and whole names only when their first 8 bytes are the same.
fn find(table: &'static [Entry], word: &[u8]) -> Option<&'static Entry> {
    if word.len() > MAX_NAME {
        return None;
    }
    let key = prefix_key(word);
    let lower = word.iter().map(u8::to_ascii_lowercase);
    table
        .binary_search_by(|e| {
            e.key
                .cmp(&key)
                .then_with(|| e.name.iter().copied().cmp(lower.clone()))
        })
        .ok()
        .map(|i| &table[i])
}

/// The spec's entry for a command whose first words are `name` and `sub`: the subcommand's
/// when the spec knows it, else the command's; `None` when the spec does not list `name`.
fn spec_entry<'a>(name: &[u8], sub: impl FnOnce() -> Option<&'a [u8]>) -> Option<&'static Entry> {
    let top = find(COMMANDS, name)?;
    if top.subs.is_empty() {
        return Some(top);
    }
    Some(sub().and_then(|s| find(top.subs, s)).unwrap_or(top))
}

/// True when the spec lists the command `name`.
pub(crate) fn in_spec(name: &[u8]) -> bool {
    find(COMMANDS, name).is_some()
}

/// True when the spec lists `name` as a command with subcommands (`CONFIG`, `CLIENT`…): its
/// second word names what runs.
pub(crate) fn has_subcommands(name: &[u8]) -> bool {
    find(COMMANDS, name).is_some_and(|e| !e.subs.is_empty())
}

/// Where a request runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// On the client's shared, multiplexed connection.
    Shared,
    /// On a dedicated connection, blocking at most this long (`None`: possibly for ever).
    Dedicated(Option<Duration>),
}

/// What the gate does with one command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// Fine anywhere.
    Shared,
    /// Blocks its connection: a dedicated one.
    Blocking,
    /// Waits for the connection's own writes: only in a pipeline after them.
    OwnWrites,
    /// Applies to the connection's next command: only in a pipeline, before another command.
    NextCommand,
    /// `HELLO`: allowed with no arguments (it only reports).
    Hello,
    /// Never on a client connection; the text says what to use instead.
    Refuse(&'static str),
}

const TRANSACTION: &str = "other callers' commands would be queued into the transaction: use \
                           Client::transaction() (or Client::watch_transaction)";
const WATCH: &str = "WATCH is connection state, lost on a reconnect: use \
                     Client::watch_transaction (ClusterClient::watch_transaction on a cluster)";
const SUBSCRIBER: &str = "the connection would become a message feed: use Client::subscriber()";
const SESSION: &str = "it changes the connection's session, which every caller shares: set it \
                       in the Config (Config::protocol, Config::username, Config::password, \
                       Config::client_name)";
const DISCONNECT: &str = "it would close or reset the shared connection: use Client::disconnect()";
const UNSUPPORTED_STATE: &str = "it sets connection state that a reconnect (or a dedicated \
                                 connection) would not have, and no Config option sets it: not \
                                 supported";
const CLUSTER: &str = "cluster connection state that every caller of the connection would \
                       share: use ClusterClient, which sends ASKING itself with the redirected \
                       command, and ClusterBuilder::read_from_replicas for replica reads";
const REPLICATION: &str = "the replication protocol: not supported";
const OWN_WRITES: &str = "it waits for the connection's own earlier writes: send it in a pipeline \
                          after the writes it is for (the pipeline runs on a dedicated connection)";
const NEXT_COMMAND: &str = "it applies to the connection's next command, which may be another \
                            caller's: send it in a pipeline, right before the command it is for";

/// The commands the spec's flags do not single out, by spec name (`"client|reply"`), and what
/// the gate does with them.
fn listed(name: &str) -> Option<Rule> {
    Some(match name {
        "multi" | "exec" | "discard" => Rule::Refuse(TRANSACTION),
        "watch" | "unwatch" => Rule::Refuse(WATCH),
        "client|reply" => Rule::Refuse(
            "CLIENT REPLY OFF/SKIP leaves calls waiting for replies that never come and hands \
             later replies to the wrong callers: to ignore a reply, use async_call(cmd, None)",
        ),
        "monitor" => Rule::Refuse(
            "the connection would become a feed of every command the server runs: not \
             supported (use redis-cli monitor)",
        ),
        "script|debug" => Rule::Refuse(
            "the connection's next EVAL would open a Lua debugger session on it, which reads \
             later callers' commands as debugger commands: not supported (use redis-cli --ldb)",
        ),
        "sync" | "psync" | "replconf" => Rule::Refuse(REPLICATION),
        "quit" | "reset" => Rule::Refuse(DISCONNECT),
        "hello" => Rule::Hello,
        "auth" => Rule::Refuse(
            "the user is connection state, lost on a reconnect: use Config::username and \
             Config::password",
        ),
        "select" => Rule::Refuse(
            "it would switch every caller's database, and a reconnect or a dedicated connection \
             would not have it: use Config::db (a client per database)",
        ),
        "client|setname" => Rule::Refuse(
            "the name is connection state, lost on a reconnect: use Config::client_name",
        ),
        "client|tracking" => {
            Rule::Refuse("tracking is connection state, lost on a reconnect: use Config::tracking")
        }
        "client|caching" => Rule::NextCommand,
        "client|setinfo"
        | "client|no-evict"
        | "client|no-touch"
        | "client|capa"
        | "client|import-source" => Rule::Refuse(UNSUPPORTED_STATE),
        "readonly" | "readwrite" | "asking" => Rule::Refuse(CLUSTER),
        "wait" | "waitaof" => Rule::OwnWrites,
        _ => return None,
    })
}

/// The gate's rule for `cmd`, and the name to show for it (`CLIENT REPLY`).
fn rule(cmd: &Cmd) -> std::result::Result<(Rule, &'static str), Error> {
    if let Some(why) = cmd.args().invalid() {
        return Err(Error::client(why));
    }
    let mut args = cmd.args().iter();
    let Some(name) = args.next() else {
        return Err(Error::client("a command needs a name"));
    };
    // A hand-built command says it blocks with `CmdFlags::blocking` (a module's blocking
    // command, which the spec does not list); the spec says so for its own.
    let said_blocking = cmd.flags().blocking;
    let by_flags = if said_blocking {
        Rule::Blocking
    } else {
        Rule::Shared
    };
    // Most commands (GET, SET…) have nothing the gate acts on: settled by one search of a short
    // table of integers, without looking up the command itself.
    if name.len() > MAX_NAME || GATED.binary_search(&prefix_key(name)).is_err() {
        return Ok((by_flags, ""));
    }
    let Some(entry) = spec_entry(name, || args.next()) else {
        // Not in the spec (a module command): only what its flags say.
        return Ok((by_flags, ""));
    };
    let (spec_name, flags) = (entry.spec, entry.flags);
    let rule = if flags & flag::LISTED != 0 {
        listed(spec_name).unwrap_or(Rule::Shared)
    } else if flags & flag::PUBSUB != 0 && flags & flag::NOSCRIPT != 0 {
        Rule::Refuse(SUBSCRIBER)
    } else if flags & flag::NO_AUTH != 0 {
        Rule::Refuse(SESSION)
    } else if flags & flag::BLOCKING != 0 || said_blocking {
        Rule::Blocking
    } else {
        Rule::Shared
    };
    Ok((rule, spec_name))
}

/// `client|reply` as `CLIENT REPLY`.
fn shown(spec_name: &str) -> String {
    spec_name.replace('|', " ").to_ascii_uppercase()
}

fn refused(spec_name: &str, why: &str) -> Error {
    Error::client(format!(
        "{} is not allowed on a client connection: {why}",
        shown(spec_name)
    ))
}

/// Where one command runs, or why it may not.
///
/// # Errors
///
/// [`Error::Client`] for a refused command (see the module docs) or invalid arguments.
pub(crate) fn route(cmd: &Cmd) -> Result<Route> {
    let (rule, name) = rule(cmd)?;
    match rule {
        Rule::Shared => Ok(Route::Shared),
        Rule::Blocking => Ok(match blocking::block_time(cmd, true) {
            Some(block) => Route::Dedicated(block),
            None => Route::Shared,
        }),
        Rule::Hello if cmd.args().len() == 1 => Ok(Route::Shared),
        Rule::Hello => Err(refused(name, SESSION)),
        Rule::OwnWrites => Err(refused(name, OWN_WRITES)),
        Rule::NextCommand => Err(refused(name, NEXT_COMMAND)),
        Rule::Refuse(why) => Err(refused(name, why)),
    }
}

/// Where a pipeline (or, with `transaction`, the commands of a transaction) runs, or why it may
/// not: a refused command anywhere refuses the whole of it.
///
/// # Errors
///
/// [`Error::Client`] for an empty pipeline, invalid arguments, or a refused command (with its
/// position, from 1).
pub(crate) fn route_pipeline(cmds: &[Cmd], transaction: bool) -> Result<Route> {
    let what = if transaction {
        "transaction"
    } else {
        "pipeline"
    };
    if cmds.is_empty() {
        return Err(Error::client(format!(
            "an empty {what} has nothing to send"
        )));
    }
    let at = |i: usize, e: Error| match e {
        Error::Client { message, source } => Error::Client {
            message: format!("command {} of the {what}: {message}", i + 1),
            source,
        },
        other => other,
    };
    // Blocking commands run one after another: the pipeline may block for the sum.
    let mut block: Option<Option<Duration>> = None;
    let mut add = |b: Option<Duration>| {
        block = Some(match (block, b) {
            (None, b) => b,
            (Some(Some(a)), Some(b)) => Some(crate::timer::bounded(a.saturating_add(b))),
            _ => None,
        });
    };
    for (i, cmd) in cmds.iter().enumerate() {
        let (rule, name) = rule(cmd).map_err(|e| at(i, e))?;
        match rule {
            Rule::Shared => {}
            // Inside MULTI nothing blocks: a transaction stays on the shared connection.
            Rule::Blocking | Rule::OwnWrites if transaction => {}
            Rule::Blocking => {
                if let Some(b) = blocking::block_time(cmd, true) {
                    add(b);
                }
            }
            Rule::OwnWrites => add(blocking::block_time(cmd, true).flatten()),
            Rule::NextCommand if i + 1 < cmds.len() => {}
            Rule::NextCommand => return Err(at(i, refused(name, NEXT_COMMAND))),
            Rule::Hello if cmd.args().len() == 1 => {}
            Rule::Hello => return Err(at(i, refused(name, SESSION))),
            Rule::Refuse(why) => return Err(at(i, refused(name, why))),
        }
    }
    Ok(match block {
        Some(b) => Route::Dedicated(b),
        None => Route::Shared,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd;

    fn refused_with(cmd: &Cmd, needle: &str) {
        match route(cmd) {
            Err(Error::Client { message, .. }) => {
                assert!(message.contains(needle), "`{cmd}`: {message}")
            }
            other => panic!("`{cmd}` should be refused, got {other:?}"),
        }
    }

    /// Every member of the table, in any letter case, as a lone command.
    #[test]
    fn the_table() {
        let table: &[(Cmd, &str)] = &[
            (cmd!("MULTI"), "Client::transaction"),
            (cmd!("exec"), "Client::transaction"),
            (cmd!("Discard"), "Client::transaction"),
            (cmd!("WATCH", "k"), "watch_transaction"),
            (cmd!("UNWATCH"), "watch_transaction"),
            (cmd!("SUBSCRIBE", "c"), "Client::subscriber"),
            (cmd!("psubscribe", "c*"), "Client::subscriber"),
            (cmd!("SSUBSCRIBE", "c"), "Client::subscriber"),
            (cmd!("UNSUBSCRIBE"), "Client::subscriber"),
            (cmd!("PUNSUBSCRIBE"), "Client::subscriber"),
            (cmd!("SUNSUBSCRIBE"), "Client::subscriber"),
            (cmd!("MONITOR"), "not supported"),
            (cmd!("SCRIPT", "DEBUG", "YES"), "redis-cli --ldb"),
            (cmd!("script", "debug", "sync"), "redis-cli --ldb"),
            (cmd!("SYNC"), "replication"),
            (cmd!("PSYNC", "?", -1), "replication"),
            (cmd!("REPLCONF", "listening-port", 1), "replication"),
            (cmd!("QUIT"), "Client::disconnect"),
            (cmd!("RESET"), "Client::disconnect"),
            (cmd!("HELLO", 3), "Config::protocol"),
            (cmd!("AUTH", "pw"), "Config::password"),
            (cmd!("AUTH", "u", "pw"), "Config::username"),
            (cmd!("SELECT", 5), "Config::db"),
            (cmd!("select", 0), "Config::db"),
            (cmd!("CLIENT", "SETNAME", "x"), "Config::client_name"),
            (cmd!("CLIENT", "TRACKING", "ON"), "Config::tracking"),
            (cmd!("client", "caching", "yes"), "in a pipeline"),
            (cmd!("CLIENT", "SETINFO", "LIB-NAME", "x"), "not supported"),
            (cmd!("CLIENT", "NO-EVICT", "ON"), "not supported"),
            (cmd!("CLIENT", "NO-TOUCH", "ON"), "not supported"),
            (cmd!("CLIENT", "CAPA", "redirect"), "not supported"),
            (cmd!("CLIENT", "REPLY", "SKIP"), "async_call"),
            (cmd!("client", "reply", "off"), "async_call"),
            (cmd!("CLIENT", "REPLY", "ON"), "async_call"),
            (cmd!("READONLY"), "cluster"),
            (cmd!("READWRITE"), "cluster"),
            (cmd!("ASKING"), "cluster"),
            (cmd!("WAIT", 1, 100), "in a pipeline"),
            (cmd!("WAITAOF", 1, 0, 100), "in a pipeline"),
        ];
        for (cmd, needle) in table {
            refused_with(cmd, needle);
        }
        refused_with(
            &cmd!("client", "reply", "skip"),
            "CLIENT REPLY is not allowed",
        );
    }

    #[test]
    fn blocking_commands_go_to_a_dedicated_connection() {
        let secs = |s| Ok(Route::Dedicated(Some(Duration::from_secs(s))));
        assert_eq!(route(&cmd!("BLPOP", "q", 0)), Ok(Route::Dedicated(None)));
        assert_eq!(route(&cmd!("blpop", "q", 2)), secs(2));
        assert_eq!(route(&cmd!("BRPOP", "q", 2)), secs(2));
        assert_eq!(route(&cmd!("BRPOPLPUSH", "a", "b", 2)), secs(2));
        assert_eq!(route(&cmd!("BLMOVE", "a", "b", "LEFT", "LEFT", 2)), secs(2));
        assert_eq!(route(&cmd!("BLMPOP", 2, 1, "a", "LEFT")), secs(2));
        assert_eq!(route(&cmd!("BZPOPMIN", "z", 2)), secs(2));
        assert_eq!(route(&cmd!("BZPOPMAX", "z", 2)), secs(2));
        assert_eq!(route(&cmd!("BZMPOP", 2, 1, "z", "MIN")), secs(2));
        assert_eq!(
            route(&cmd!("XREAD", "BLOCK", 0, "STREAMS", "s", "$")),
            Ok(Route::Dedicated(None))
        );
        assert_eq!(
            route(&cmd!(
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "BLOCK",
                5,
                "STREAMS",
                "s",
                ">"
            )),
            Ok(Route::Dedicated(Some(Duration::from_millis(5))))
        );
        // A command the spec does not list, flagged blocking by hand: dedicated, no deadline.
        let module = cmd!("MYMODULE.BPOP", "k").with_flags(crate::CmdFlags {
            blocking: true,
            ..Default::default()
        });
        assert_eq!(route(&module), Ok(Route::Dedicated(None)));
        assert_eq!(
            route_pipeline(&[cmd!("GET", "k"), module], false),
            Ok(Route::Dedicated(None))
        );
        // XREAD without BLOCK answers at once.
        assert_eq!(
            route(&cmd!("XREAD", "STREAMS", "s", "0")),
            Ok(Route::Shared)
        );
    }

    #[test]
    fn everything_else_stays_shared() {
        for c in [
            cmd!("GET", "k"),
            cmd!("set", "k", 1),
            cmd!("HELLO"),
            cmd!("PUBLISH", "c", "m"),
            cmd!("SPUBLISH", "c", "m"),
            cmd!("PUBSUB", "CHANNELS"),
            cmd!("CLIENT", "ID"),
            cmd!("CLIENT", "GETNAME"),
            cmd!("CLIENT", "INFO"),
            cmd!("CLIENT", "TRACKINGINFO"),
            cmd!("SCRIPT", "LOAD", "return 1"),
            cmd!("SCRIPT", "EXISTS", "abc"),
            cmd!("CLIENT"),
            cmd!("MYMODULE.CMD", "x"),
            cmd!("A-NAME-LONGER-THAN-ANY-COMMAND-IN-THE-SPEC-AT-ALL"),
        ] {
            assert_eq!(route(&c), Ok(Route::Shared), "`{c}`");
        }
    }

    /// Every name codegen's list marks (`flag::LISTED`) has a rule here and is found under its
    /// spec name (codegen refuses a listed name the spec lacks; the test below holds the bit and
    /// [`listed`] together), and the flag-derived families hold what they should.
    #[test]
    fn every_listed_name_is_in_the_spec() {
        let mut marked = 0;
        for c in COMMANDS {
            for e in std::iter::once(c).chain(c.subs) {
                if e.flags & flag::LISTED == 0 {
                    continue;
                }
                marked += 1;
                assert!(listed(e.spec).is_some(), "{}", e.spec);
                let (cmd, sub) = e
                    .spec
                    .split_once('|')
                    .map_or((e.spec, None), |(c, s)| (c, Some(s)));
                let found = spec_entry(cmd.as_bytes(), || sub.map(str::as_bytes));
                assert_eq!(found.map(|f| f.spec), Some(e.spec));
            }
        }
        assert!(marked >= 29, "only {marked} listed commands");
        // The flag-derived families hold what they should.
        let flags = |n: &str| spec_entry(n.as_bytes(), || None).map_or(0, |e| e.flags);
        for n in ["subscribe", "psubscribe", "ssubscribe", "unsubscribe"] {
            assert_ne!(flags(n) & flag::PUBSUB, 0, "{n}");
            assert_ne!(flags(n) & flag::NOSCRIPT, 0, "{n}");
        }
        assert_eq!(flags("publish") & flag::NOSCRIPT, 0);
        for n in ["auth", "hello", "quit", "reset"] {
            assert_ne!(flags(n) & flag::NO_AUTH, 0, "{n}");
        }
        assert_ne!(flags("blpop") & flag::BLOCKING, 0);
    }

    /// The build-time bits agree with this module: `LISTED` is set exactly on the names
    /// [`listed`] knows, and `GATED` holds exactly the commands with a bit the gate acts on.
    #[test]
    fn the_build_time_table_agrees_with_the_gate() {
        let acts = |e: &Entry| {
            e.flags & (flag::LISTED | flag::BLOCKING | flag::PUBSUB | flag::NO_AUTH) != 0
        };
        let mut keys = Vec::new();
        for c in COMMANDS {
            for e in std::iter::once(c).chain(c.subs) {
                assert_eq!(
                    listed(e.spec).is_some(),
                    e.flags & flag::LISTED != 0,
                    "{}",
                    e.spec
                );
            }
            if acts(c) || c.subs.iter().any(acts) {
                keys.push(c.key);
            }
        }
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(GATED, &keys[..]);
    }

    #[test]
    fn the_spec_table_is_sorted_for_the_binary_search() {
        assert!(COMMANDS.len() > 200);
        let sorted = |t: &[Entry]| {
            t.windows(2)
                .all(|w| (w[0].key, w[0].name) < (w[1].key, w[1].name))
                && t.iter().all(|e| e.key == prefix_key(e.name))
        };
        assert!(sorted(COMMANDS));
        for c in COMMANDS {
            assert!(sorted(c.subs), "{}", c.spec);
            assert!(c.name.len() <= MAX_NAME);
        }
    }

    #[test]
    fn pipelines() {
        let p = |cmds: &[Cmd]| route_pipeline(cmds, false);
        let t = |cmds: &[Cmd]| route_pipeline(cmds, true);
        assert_eq!(
            p(&[cmd!("SET", "k", 1), cmd!("GET", "k")]),
            Ok(Route::Shared)
        );
        // A refused command anywhere refuses the whole, saying where.
        match p(&[cmd!("MULTI"), cmd!("SET", "k", "x")]) {
            Err(Error::Client { message: m, .. }) => {
                assert!(m.starts_with("command 1 of the pipeline: MULTI"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        match t(&[cmd!("GET", "k"), cmd!("exec")]) {
            Err(Error::Client { message: m, .. }) => {
                assert!(m.starts_with("command 2 of the transaction"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        assert!(t(&[cmd!("SELECT", 1), cmd!("GET", "k")]).is_err());
        assert!(p(&[]).is_err());
        // Blocking: the whole pipeline on a dedicated connection, for the sum of block times.
        assert_eq!(
            p(&[cmd!("LPUSH", "q", 1), cmd!("BLPOP", "q", 0)]),
            Ok(Route::Dedicated(None))
        );
        assert_eq!(
            p(&[
                cmd!("BLPOP", "q", 1),
                cmd!("GET", "k"),
                cmd!("BRPOP", "q", 2)
            ]),
            Ok(Route::Dedicated(Some(Duration::from_secs(3))))
        );
        assert_eq!(
            p(&[cmd!("SET", "k", 1), cmd!("WAIT", 0, 100)]),
            Ok(Route::Dedicated(Some(Duration::from_millis(100))))
        );
        // Inside MULTI nothing blocks.
        assert_eq!(
            t(&[cmd!("BLPOP", "q", 0), cmd!("WAIT", 0, 0)]),
            Ok(Route::Shared)
        );
        // CLIENT CACHING before the command it is for, not last.
        assert_eq!(
            p(&[cmd!("CLIENT", "CACHING", "YES"), cmd!("GET", "k")]),
            Ok(Route::Shared)
        );
        assert!(p(&[cmd!("GET", "k"), cmd!("CLIENT", "CACHING", "YES")]).is_err());
    }
}
