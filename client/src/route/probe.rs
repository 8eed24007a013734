//! Not a public API (`ringdis::__route`, `#[doc(hidden)]`): the crate-internal routing
//! decisions, for the integration tests that check them against a real cluster node
//! (tests/tests/cluster_spec.rs). May change with any release.

use crate::{Cmd, Result};

/// [`cmd_slot`](super::slot::cmd_slot): the slot of a command, `None` without keys, CROSSSLOT
/// across slots.
///
/// # Errors
///
/// As `cmd_slot`.
pub fn cmd_slot(cmd: &Cmd) -> Result<Option<u16>> {
    super::slot::cmd_slot(cmd)
}

/// The spec's tips of a command, as `(request_policy, response_policy)` in the spec's words
/// (`("all_shards", "agg_sum")`; `"default"` without a tip).
pub fn tips(cmd: &Cmd) -> (&'static str, &'static str) {
    use super::tips::{RequestPolicy as Rq, ResponsePolicy as Rs};
    let t = super::tips::tips(cmd);
    let request = match t.request {
        Rq::Default => "default",
        Rq::AllNodes => "all_nodes",
        Rq::AllShards => "all_shards",
        Rq::MultiShard => "multi_shard",
        Rq::Special => "special",
    };
    let response = match t.response {
        Rs::Default => "default",
        Rs::OneSucceeded => "one_succeeded",
        Rs::AllSucceeded => "all_succeeded",
        Rs::AggLogicalAnd => "agg_logical_and",
        Rs::AggLogicalOr => "agg_logical_or",
        Rs::AggMin => "agg_min",
        Rs::AggMax => "agg_max",
        Rs::AggSum => "agg_sum",
        Rs::Special => "special",
    };
    (request, response)
}

/// [`aggregate`](super::aggregate::aggregate) for the policy of `cmd`'s `response_policy` tip.
///
/// # Errors
///
/// As `aggregate`.
pub fn aggregate(cmd: &Cmd, replies: Vec<Result<crate::Value>>) -> Result<crate::Value> {
    super::aggregate::aggregate(super::tips::tips(cmd).response, replies)
}
