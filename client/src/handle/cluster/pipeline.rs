//! Pipelines and transactions on a cluster.
//!
//! A pipeline is split by node (each command by its slot), one batch per node, all sent at
//! once; the replies come back in the caller's order. A command a node redirected or refused
//! for a passing reason is sent again on its own, as a single call would be (in the pipeline's
//! order); a node that fails fails only its commands. A command the spec's tips send to several
//! nodes (`fanout`: a split `MGET`, `DBSIZE`…) goes as sub-requests among the others, and their
//! replies, made one, take its place. A transaction runs on the node of its one
//! slot; when its queued commands were redirected (the server then aborts it: nothing ran) it is
//! sent again whole, to the new node, within the command timeout.

use super::core::{left, Core};
use super::fanout::{self, Fan, Fold, Step};
use super::send::{self, first_node, within};
use crate::callable::Prepared;
use crate::conn::Payload;
use crate::route::redirect::{self, Redirect};
use crate::route::slot::cmd_slot;
use crate::route::topology::{NodeAddr, Target};
use crate::route::Route;
use crate::{Cmd, Error, Result, ServerError, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where each command goes: from its keys, else (hand-built, keys not marked) one batch of
/// `COMMAND GETKEYS` asked of a primary for all such commands. `fan`: a command the spec's
/// tips send to several nodes (split by slot, every primary…) is a [`Step::Fan`] (see
/// `fanout`); else every command goes to one node.
async fn targets(
    core: &Arc<Core>,
    cmds: &[Cmd],
    what: &str,
    deadline: Option<Instant>,
    fan: bool,
) -> Result<Vec<Step>> {
    let mut out = Vec::with_capacity(cmds.len());
    let mut unknown = Vec::new();
    for (i, cmd) in cmds.iter().enumerate() {
        let planned = match cmd_slot(cmd) {
            Ok(Some(s)) => Ok(Some(Target::Slot(s))),
            Ok(None) if send::keys_unknown(cmd) => Ok(None),
            Ok(None) => Ok(Some(Target::AnyPrimary)),
            Err(e) => Err(e),
        };
        let step = match planned {
            Ok(Some(Target::Slot(s))) => Ok(Step::One(Some(Target::Slot(s)))),
            // A command the gate refuses alone (WAIT, WAITAOF: it waits for its connection's
            // own writes) stays on one node, with the writes before it.
            planned if fan && crate::route::route(cmd).is_ok() => fanout::step(cmd, planned),
            planned => planned.map(Step::One),
        };
        out.push(match step.map_err(|e| at(what, i, e))? {
            Step::One(None) => {
                unknown.push(i);
                Step::One(Some(Target::AnyPrimary))
            }
            step => step,
        });
    }
    if !unknown.is_empty() {
        let asked: Vec<&Cmd> = unknown.iter().map(|&i| &cmds[i]).collect();
        let found = send::targets_by_server(core, &asked, deadline)
            .await
            .map_err(|(j, e)| at(what, unknown[j], e))?;
        for (i, t) in unknown.into_iter().zip(found) {
            out[i] = Step::One(Some(t));
        }
    }
    Ok(out)
}

/// `e`, saying which command of the pipeline or transaction it is about.
fn at(what: &str, i: usize, e: Error) -> Error {
    match e {
        Error::Client { message, source } => Error::Client {
            message: format!("command {} of the {what}: {message}", i + 1),
            source,
        },
        other => other,
    }
}

/// How many times a pipeline's commands that a node redirected with `MOVED` go out again as
/// batches (per node, the map updated) before the rest go one by one.
const ROUNDS: usize = 4;

/// A pipeline's commands, each to the node of its slot (a command the tips send to several
/// nodes as sub-requests, their replies made one in its place): one array of their replies
/// (errors in place) in the caller's order.
pub(super) async fn pipeline(
    core: Arc<Core>,
    cmds: Vec<Cmd>,
    deadline: Option<Instant>,
) -> Result<Value> {
    let whole = crate::route::route_pipeline(&cmds, false)?;
    let steps = targets(&core, &cmds, "pipeline", deadline, true).await?;
    if !core.has_map() {
        match within(&core, deadline, core.refresh()).await {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(e),
            None => return Err(send::undiscovered(&core)),
        }
    }
    // The requests to send, and where each command's reply comes from among theirs.
    let mut requests: Vec<Cmd> = Vec::with_capacity(cmds.len());
    let mut targets: Vec<Target> = Vec::with_capacity(cmds.len());
    let mut replies_of: Vec<Reply> = Vec::with_capacity(cmds.len());
    for (i, (cmd, step)) in cmds.into_iter().zip(steps).enumerate() {
        match step {
            Step::One(t) => {
                replies_of.push(Reply::One);
                requests.push(cmd);
                targets.push(t.unwrap_or(Target::AnyPrimary));
            }
            Step::Fan(fan) => {
                let (parts, fold) = fan.parts(&core).map_err(|e| at("pipeline", i, e))?;
                let from = requests.len();
                for (t, part) in parts {
                    targets.push(t);
                    requests.push(part);
                }
                replies_of.push(Reply::Fan(from..requests.len(), fold));
            }
        }
    }
    let mut each = send_all(&core, &requests, &targets, whole, deadline)
        .await?
        .into_iter();
    let mut results: Vec<Result<Value>> = Vec::with_capacity(replies_of.len());
    for reply in replies_of {
        let missing = || Err(Error::client("a pipeline command got no reply"));
        results.push(match reply {
            Reply::One => each.next().unwrap_or_else(missing),
            Reply::Fan(range, fold) => fold.fold(each.by_ref().take(range.len()).collect()),
        });
    }
    // Every command failed the same way a single connection's pipeline fails: that error.
    if let Some(Err(first)) = results.first() {
        if !matches!(first, Error::Server { .. })
            && results.iter().all(|r| r.as_ref().err() == Some(first))
        {
            return Err(first.clone());
        }
    }
    Ok(Value::Array(results.into_iter().map(in_place).collect()))
}

/// Where a pipeline command's reply comes from: one request's reply, or a fan's, folded.
enum Reply {
    One,
    Fan(std::ops::Range<usize>, Fold),
}

/// Sends `cmds`, each to its target (`targets`, index-aligned): grouped by node, one batch
/// per node, all sent at once; those a node moved go again as batches to the nodes the map then
/// names (up to [`ROUNDS`] times), and a command redirected or refused for a passing reason
/// after that is sent again on its own (in order), as a single call would be; a node that fails
/// fails only its commands. Each command's outcome, in order. The map should be known (else
/// every command goes on its own). `whole`: the gate's route for all of them (each node's share
/// runs on the shared connection when they all may).
///
/// # Errors
///
/// [`Error::Timeout`] when the deadline passed before a round was sent.
pub(super) async fn send_all(
    core: &Arc<Core>,
    cmds: &[Cmd],
    targets: &[Target],
    whole: Route,
    deadline: Option<Instant>,
) -> Result<Vec<Result<Value>>> {
    let batch = Batch {
        core,
        cmds,
        targets,
        // One primary for every keyless command.
        any: core.any_primary(),
        whole,
    };
    let mut results: Vec<Option<Result<Value>>> = (0..cmds.len()).map(|_| None).collect();
    // Commands to send again on their own: the node they went to and its answer.
    let mut again: Vec<(usize, NodeAddr, Error)> = Vec::new();
    let mut pending: Vec<usize> = (0..cmds.len()).collect();
    for round in 1..=ROUNDS {
        let mut redirected = Vec::new();
        batch
            .send(&pending, deadline, &mut results, &mut redirected)
            .await?;
        // Those a node moved go again together, to the nodes the map now names.
        pending.clear();
        let mut moved = Vec::new();
        for (i, node, err) in redirected {
            match redirect::redirection(&err, node.host()) {
                Some(r) if r.kind == Redirect::Moved && round < ROUNDS => {
                    moved.push((r.slot, r.to));
                    pending.push(i);
                }
                _ => again.push((i, node, err)),
            }
        }
        if pending.is_empty() {
            break;
        }
        core.moved_all(&moved);
    }
    again.sort_by_key(|(i, ..)| *i);
    for (i, node, err) in again {
        let result = send::run(
            core.clone(),
            targets[i].clone(),
            cmds[i].clone(),
            deadline,
            Some((node, err)),
        )
        .await;
        results[i] = Some(result);
    }
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::client("a pipeline command got no reply"))))
        .collect())
}

/// A command that runs on several nodes (see `fanout`), called alone: its parts sent as
/// [`send_all`] does, their replies made one.
pub(super) async fn fan(core: Arc<Core>, fan: Fan, deadline: Option<Instant>) -> Result<Value> {
    if !core.has_map() {
        match within(&core, deadline, core.refresh()).await {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(e),
            None => return Err(send::undiscovered(&core)),
        }
    }
    let (parts, fold) = fan.parts(&core)?;
    let (targets, cmds): (Vec<Target>, Vec<Cmd>) = parts.into_iter().unzip();
    fold.fold(send_all(&core, &cmds, &targets, Route::Shared, deadline).await?)
}

/// What every round of a pipeline shares.
struct Batch<'a> {
    core: &'a Arc<Core>,
    cmds: &'a [Cmd],
    targets: &'a [Target],
    any: Option<(NodeAddr, crate::Client)>,
    /// The gate's route for the whole pipeline.
    whole: Route,
}

impl Batch<'_> {
    /// Sends the commands `which` (indices, in order), one batch per node, all at once; puts
    /// their outcomes in `results`, or in `again` those a single call would not fail with.
    async fn send(
        &self,
        which: &[usize],
        deadline: Option<Instant>,
        results: &mut [Option<Result<Value>>],
        again: &mut Vec<(usize, NodeAddr, Error)>,
    ) -> Result<()> {
        let mut groups: Vec<(NodeAddr, crate::Client, Vec<usize>)> = Vec::new();
        let mut index: HashMap<NodeAddr, usize> = HashMap::new();
        for &i in which {
            let node = match &self.targets[i] {
                Target::AnyPrimary => self.any.clone(),
                t => first_node(self.core, t),
            };
            let Some((addr, client)) = node else {
                again.push((i, NodeAddr::new("", 0), unserved()));
                continue;
            };
            let g = *index.entry(addr.clone()).or_insert_with(|| {
                groups.push((addr, client, Vec::new()));
                groups.len() - 1
            });
            groups[g].2.push(i);
        }
        // Every batch goes out now; their replies are awaited one after another.
        let timeout = left(deadline, Error::Timeout)?;
        let calls: Vec<_> = groups
            .into_iter()
            .map(|(addr, client, members)| {
                let group: Vec<&Cmd> = members.iter().map(|&i| &self.cmds[i]).collect();
                let route = match self.whole {
                    Route::Shared => self.whole,
                    _ => group_route(&group),
                };
                let prepared = Prepared {
                    payload: Payload::batch(group.iter().copied()),
                    finish: Ok,
                    route,
                };
                let call = client.call_prepared_within::<Value>(prepared, timeout);
                (addr, members, call)
            })
            .collect();
        for (addr, members, call) in calls {
            match call.await {
                Ok(Value::Array(replies)) if replies.len() == members.len() => {
                    for (i, reply) in members.into_iter().zip(replies) {
                        match reply {
                            Value::Error(e) if retried(&e) => {
                                again.push((i, addr.clone(), e.into()))
                            }
                            Value::Error(e) => results[i] = Some(Err(e.into())),
                            v => results[i] = Some(Ok(v)),
                        }
                    }
                }
                Ok(other) => {
                    let e = Error::protocol(format!("a pipeline's replies: {}", other.describe()));
                    for i in members {
                        results[i] = Some(Err(e.clone()));
                    }
                }
                // Nothing of it was sent: its commands go again.
                Err(e @ Error::Connection { sent: false, .. }) => {
                    for i in members {
                        again.push((i, addr.clone(), e.clone()));
                    }
                }
                Err(e) => {
                    if e.is_connection() {
                        self.core.refresh_soon();
                    }
                    for i in members {
                        results[i] = Some(Err(e.clone()));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The gate's route for one node's share of a pipeline (checked whole already).
fn group_route(group: &[&Cmd]) -> crate::route::Route {
    let cmds: Vec<Cmd> = group.iter().map(|c| (*c).clone()).collect();
    crate::route::route_pipeline(&cmds, false).unwrap_or(crate::route::Route::Shared)
}

/// A reply a single call would not fail with: a redirect or a passing refusal.
pub(super) fn retried(e: &ServerError) -> bool {
    matches!(
        e.kind.as_str(),
        "MOVED" | "ASK" | "TRYAGAIN" | "LOADING" | "CLUSTERDOWN" | "READONLY" | "MASTERDOWN"
    )
}

fn unserved() -> Error {
    Error::Server {
        kind: "CLUSTERDOWN".into(),
        message: "no node serves the slot (by the cluster's map)".into(),
    }
}

/// A command's outcome as an item of the pipeline's array: a server error as the server sent
/// it; an error of the client's (the node's connection lost, a timeout) as an error whose kind
/// says which (`CONNECTION`, `TIMEOUT`, `CLIENT`, `PROTOCOL`) and whose message is the error's
/// text.
fn in_place(result: Result<Value>) -> Value {
    match result {
        Ok(v) => v,
        Err(Error::Server { kind, message }) => Value::Error(ServerError { kind, message }),
        Err(e) => {
            let kind = match &e {
                Error::Connection { .. } => "CONNECTION",
                Error::Timeout => "TIMEOUT",
                Error::Protocol { .. } => "PROTOCOL",
                _ => "CLIENT",
            };
            Value::Error(ServerError {
                kind: kind.into(),
                message: e.to_string(),
            })
        }
    }
}

/// A transaction: every key in one slot, run on its node; sent again whole when its commands
/// were redirected (then nothing of it ran). Its reply is `EXEC`'s.
pub(super) async fn transaction(
    core: Arc<Core>,
    cmds: Vec<Cmd>,
    deadline: Option<Instant>,
) -> Result<Value> {
    let route = crate::route::route_pipeline(&cmds, true)?;
    let steps = targets(&core, &cmds, "transaction", deadline, false).await?;
    let mut slot: Option<(u16, usize)> = None;
    for (i, step) in steps.iter().enumerate() {
        if let Step::One(Some(Target::Slot(s))) = *step {
            match slot {
                None => slot = Some((s, i)),
                Some((first, j)) if first != s => {
                    return Err(Error::client(format!(
                        "CROSSSLOT: a transaction runs on one cluster node, and its commands' \
                         keys are in different slots: command {} (slot {first}) and command {} \
                         (slot {s}); put keys used together in one slot with a hash tag \
                         (`{{user1}}.a`, `{{user1}}.b`)",
                        j + 1,
                        i + 1
                    )))
                }
                Some(_) => {}
            }
        }
    }
    let target = slot.map_or(Target::AnyPrimary, |(s, _)| Target::Slot(s));
    let (multi, exec) = (Cmd::new("MULTI"), Cmd::new("EXEC"));
    let wire = Payload::batch(
        std::iter::once(&multi)
            .chain(&cmds)
            .chain(std::iter::once(&exec)),
    );
    let Payload::Many { wire, count } = wire else {
        return Err(Error::client("a transaction could not be encoded"));
    };
    // The same, after `ASKING` (for a node importing the slot: see the `ASK` below).
    let asking_wire = {
        let mut w = bytes::BytesMut::new();
        if let Payload::Many { wire: a, .. } = Payload::batch([&Cmd::new("ASKING")]) {
            w.extend_from_slice(&a);
        }
        w.extend_from_slice(&wire);
        w.freeze()
    };
    let mut to: Option<NodeAddr> = None;
    let mut asking = false;
    let mut pause = Duration::from_millis(5);
    let mut last = Error::Timeout;
    for _ in 0..64 {
        left(deadline, last.clone())?;
        let (addr, client) = match to.take() {
            Some(a) => {
                let c = core.nodes.get(&a)?;
                (a, c)
            }
            None => match first_node(&core, &target) {
                Some(n) => n,
                None => {
                    match within(&core, deadline, core.refresh()).await {
                        Some(Ok(())) => {}
                        Some(Err(e)) => last = e,
                        None => return Err(last),
                    }
                    match first_node(&core, &target) {
                        Some(n) => n,
                        None => {
                            last = unserved();
                            pause_for(&core, deadline, &mut pause).await;
                            continue;
                        }
                    }
                }
            },
        };
        let asked = std::mem::take(&mut asking);
        let payload = if asked {
            Payload::Many {
                wire: asking_wire.clone(),
                count: count + 1,
            }
        } else {
            Payload::Many {
                wire: wire.clone(),
                count,
            }
        };
        let prepared = Prepared {
            payload,
            finish: Ok,
            route,
        };
        let timeout = left(deadline, last.clone())?;
        let replies = match client
            .call_prepared_within::<Value>(prepared, timeout)
            .await
        {
            // `ASKING`'s own reply is not the transaction's.
            Ok(Value::Array(mut replies)) if asked && !replies.is_empty() => {
                replies.remove(0);
                replies
            }
            Ok(Value::Array(replies)) => replies,
            Ok(other) => {
                return Err(Error::protocol(format!(
                    "a transaction's replies: {}",
                    other.describe()
                )))
            }
            Err(e @ Error::Connection { sent: false, .. }) => {
                core.refresh_soon();
                last = e;
                pause_for(&core, deadline, &mut pause).await;
                continue;
            }
            Err(e) => {
                if e.is_connection() {
                    core.refresh_soon();
                }
                return Err(e);
            }
        };
        // Aborted (EXEC answered an error) because a queued command was redirected or refused
        // for a passing reason: nothing ran; send it again.
        let aborted = matches!(replies.last(), Some(Value::Error(_)));
        let refused = replies[..replies.len().saturating_sub(1)]
            .iter()
            .find_map(|r| match r {
                Value::Error(e) if retried(e) => Some(e.clone()),
                _ => None,
            });
        match (aborted, refused) {
            (true, Some(e)) => {
                let err: Error = e.clone().into();
                match redirect::redirection(&err, addr.host()) {
                    Some(r) if r.kind == Redirect::Moved => {
                        core.moved(r.slot, &r.to);
                        to = Some(r.to);
                    }
                    // The slot is migrating and a key has left: `ASKING` then the whole
                    // transaction on the importing node (`ASKING` holds until `EXEC` there; a
                    // key still on the owner makes it answer `TRYAGAIN`, paused on below).
                    Some(r) => {
                        asking = true;
                        to = Some(r.to);
                    }
                    _ => {
                        if matches!(e.kind.as_str(), "CLUSTERDOWN" | "READONLY" | "MASTERDOWN") {
                            core.refresh_soon();
                        }
                        pause_for(&core, deadline, &mut pause).await;
                    }
                }
                last = err;
            }
            _ => return crate::pipeline::exec_reply(Value::Array(replies)),
        }
    }
    Err(last)
}

async fn pause_for(core: &Core, deadline: Option<Instant>, pause: &mut Duration) {
    let mut at = Instant::now() + *pause;
    if let Some(d) = deadline {
        at = at.min(d);
    }
    core.nodes.placement().sleep_until(at).await;
    *pause = (*pause * 2).min(Duration::from_millis(200));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command's outcome in the pipeline's array: a server error as sent, the client's own
    /// errors under a kind that says which.
    #[test]
    fn outcomes_in_place() {
        assert_eq!(in_place(Ok(Value::Int(1))), Value::Int(1));
        let server = in_place(Err(Error::server_from_line("WRONGTYPE no")));
        assert!(matches!(&server, Value::Error(e) if e.kind == "WRONGTYPE" && e.message == "no"));
        for (err, kind) in [
            (Error::connection("lost"), "CONNECTION"),
            (Error::Timeout, "TIMEOUT"),
            (Error::protocol("bad"), "PROTOCOL"),
            (Error::client("no"), "CLIENT"),
        ] {
            let text = err.to_string();
            match in_place(Err(err)) {
                Value::Error(e) => assert_eq!((e.kind.as_str(), e.message), (kind, text)),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn redirects_and_passing_refusals_are_sent_again() {
        for kind in [
            "MOVED",
            "ASK",
            "TRYAGAIN",
            "LOADING",
            "CLUSTERDOWN",
            "READONLY",
            "MASTERDOWN",
        ] {
            assert!(
                retried(&ServerError {
                    kind: kind.into(),
                    message: String::new()
                }),
                "{kind}"
            );
        }
        for kind in ["ERR", "WRONGTYPE", "EXECABORT", "NOSCRIPT", "CROSSSLOT"] {
            assert!(
                !retried(&ServerError {
                    kind: kind.into(),
                    message: String::new()
                }),
                "{kind}"
            );
        }
    }
}
