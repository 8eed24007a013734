//! The two kinds of command tip a cluster client follows, as the spec names them: where a
//! command goes (`request_policy`) and how the replies of the nodes it went to become one
//! (`response_policy`). `tips` reads them per command; the generated table holds them.

/// Where a command goes in a cluster: the spec's `request_policy` tip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum RequestPolicy {
    /// No tip: a command with keys goes to the node owning their slot; one without keys to any
    /// node (a primary).
    #[default]
    Default,
    /// To every node, primaries and replicas (`CONFIG SET`, `SCRIPT LOAD`, `ACL SETUSER`).
    AllNodes,
    /// To every primary (`DBSIZE`, `KEYS`, `FLUSHALL`, `FUNCTION LOAD`, `PING`).
    AllShards,
    /// Split by slot: each part with the keys of one slot, to its node (`MGET`, `MSET`, `DEL`,
    /// `EXISTS`, `TOUCH`, `UNLINK`); see `route::split`.
    MultiShard,
    /// No general rule: the client handles it by name (`SCAN`).
    Special,
}

/// How the replies of the nodes a command went to become one: the spec's `response_policy` tip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum ResponsePolicy {
    /// No tip: for a split command, the parts' replies in the caller's key order (`MGET`); for
    /// a command sent to many nodes, the array of every node's reply (`KEYS`: see
    /// `route::aggregate`).
    #[default]
    Default,
    /// The first reply that is not an error (`SCRIPT KILL`, `FUNCTION KILL`).
    OneSucceeded,
    /// An error if any node failed, else one reply (`FLUSHALL`, `CONFIG SET`, `MSET`).
    AllSucceeded,
    /// The logical AND of integer (0/1) replies, element-wise for arrays (`SCRIPT EXISTS`).
    AggLogicalAnd,
    /// The logical OR, as `AggLogicalAnd`.
    #[allow(dead_code)] // no command of today's spec has this tip; a later one may
    AggLogicalOr,
    /// The least integer reply (`WAIT`).
    AggMin,
    /// The greatest integer reply.
    #[allow(dead_code)] // no command of today's spec has this tip; a later one may
    AggMax,
    /// The sum of integer replies (`DBSIZE`, `DEL`).
    AggSum,
    /// No general rule: the client handles it by name (`INFO`, `RANDOMKEY`, `MEMORY STATS`).
    Special,
}

/// A command's two tips.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tips {
    /// Where it goes.
    pub request: RequestPolicy,
    /// How the replies become one.
    pub response: ResponsePolicy,
}
