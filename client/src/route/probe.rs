//! Not a public API (`ringdis::__route`, `#[doc(hidden)]`): the crate-internal routing
//! decisions, for the integration tests that check them against a real cluster node
//! (tests/tests/cluster_spec.rs). May change with any release.

use crate::{Cmd, Result};

/// `route::slot::cmd_slot`: the slot of a command, `None` without keys, CROSSSLOT
/// across slots.
///
/// # Errors
///
/// As `cmd_slot`.
pub fn cmd_slot(cmd: &Cmd) -> Result<Option<u16>> {
    super::slot::cmd_slot(cmd)
}

/// `route::slot::cmds_slot`: the one slot of a transaction's commands.
///
/// # Errors
///
/// As `cmds_slot`.
pub fn cmds_slot(cmds: &[Cmd]) -> Result<Option<u16>> {
    super::slot::cmds_slot(cmds)
}

/// The spec's tips of a command, as `(request_policy, response_policy)` in the spec's words
/// (`("all_shards", "agg_sum")`; `"default"` without a tip).
pub fn tips(cmd: &Cmd) -> (&'static str, &'static str) {
    words(super::tips::tips(cmd))
}

fn words(t: super::tips::Tips) -> (&'static str, &'static str) {
    use super::tips::{RequestPolicy as Rq, ResponsePolicy as Rs};
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

/// `route::aggregate::aggregate` for the policy of `cmd`'s `response_policy` tip.
///
/// # Errors
///
/// As `aggregate`.
pub fn aggregate(cmd: &Cmd, replies: Vec<Result<crate::Value>>) -> Result<crate::Value> {
    super::aggregate::aggregate(super::tips::tips(cmd).response, replies)
}

/// How the replies of a split command's parts become one.
#[derive(Debug)]
pub struct Merge(super::split::Merge);

impl Merge {
    /// The caller's reply from the parts' replies, in the order of the parts.
    ///
    /// # Errors
    ///
    /// As `split::Merge::merge`.
    pub fn merge(&self, replies: Vec<Result<crate::Value>>) -> Result<crate::Value> {
        self.0.merge(replies)
    }
}

/// Where a command goes in a cluster (`plan::Plan`).
#[derive(Debug)]
pub enum Plan {
    /// To this slot.
    Slot(u16),
    /// Split: each part to its slot, the replies merged.
    Split(Vec<(u16, Cmd)>, Merge),
    /// No key: where the tips say, in the spec's words (`"default"` without a tip).
    Keyless {
        /// The request policy.
        request: &'static str,
        /// The response policy.
        response: &'static str,
    },
}

/// `route::plan::plan`.
///
/// # Errors
///
/// As `plan`.
pub fn plan(cmd: &Cmd) -> Result<Plan> {
    Ok(match super::plan::plan(cmd)? {
        super::plan::Plan::Slot(s) => Plan::Slot(s),
        super::plan::Plan::Split(s) => Plan::Split(s.parts, Merge(s.merge)),
        super::plan::Plan::Keyless(t) => {
            let (request, response) = words(t);
            Plan::Keyless { request, response }
        }
    })
}

/// The keys the spec's key specs find in `cmd`'s arguments (`keys::spec_keys`), whatever is
/// marked; with `shard_channels`, those of `not_key` specs (`SPUBLISH`'s channel) too.
pub fn spec_keys(cmd: &Cmd, shard_channels: bool) -> Vec<Vec<u8>> {
    let args: Vec<&[u8]> = cmd.args().iter().collect();
    super::keys::spec_keys(&args, super::tips::routing(cmd).keys, shard_channels)
        .into_iter()
        .map(|i| args[i].to_vec())
        .collect()
}
