//! A cluster's slot map, read from `CLUSTER SHARDS` (Redis 7 and later, Valkey) or `CLUSTER
//! SLOTS` (older servers), in either protocol's shape: which shard (a primary and its
//! replicas) serves each of the 16384 hash slots.
//!
//! Pure: a reply in, a map out. Where the server gives no usable endpoint for a node (`?`, or
//! empty, per its `cluster-preferred-endpoint-type`), the node is taken to be on the host the
//! reply came from.

use crate::{Error, Result, Value};
use std::fmt;
use std::sync::Arc;

pub(crate) use super::slot::SLOTS;

/// No shard serves the slot (yet).
const UNSERVED: u16 = u16::MAX;

/// A node's address: a host name or IP (IPv6 without brackets) and a port.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeAddr {
    host: Arc<str>,
    port: u16,
}

impl NodeAddr {
    /// `host` (an IPv6 address without brackets) and `port`.
    pub(crate) fn new(host: &str, port: u16) -> NodeAddr {
        NodeAddr {
            host: host.into(),
            port,
        }
    }

    /// The host name or IP.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for NodeAddr {
    /// `host:port`, an IPv6 address in brackets (`[::1]:7000`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Where a cluster command goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The primary serving this slot (`0..16384`).
    Slot(u16),
    /// This node, whatever it serves (a command for one node: `CLUSTER INFO` on each, a
    /// replica read). A `MOVED` from it is still followed.
    #[allow(dead_code)] // for the fan-out and replica-read features
    Node(NodeAddr),
    /// Any primary (a command with no key), in turn.
    AnyPrimary,
}

/// One node as the map knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Node {
    pub addr: NodeAddr,
    /// Its cluster node id, when the reply gave one.
    pub id: Option<String>,
    /// False when the reply said it failed (`CLUSTER SHARDS`' `health` other than `online`
    /// and `loading`: `failed` on Redis, `fail` on Valkey; `loading` counts as healthy: Redis
    /// 7.0 says it of fresh replicas); `CLUSTER SLOTS` says nothing, so true there.
    pub healthy: bool,
}

/// A primary and its replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Shard {
    pub primary: Node,
    pub replicas: Vec<Node>,
}

/// Which shard serves each slot.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SlotMap {
    /// Per slot, the index of its shard in `shards` (or `UNSERVED`).
    owner: Box<[u16]>,
    shards: Vec<Shard>,
}

impl fmt::Debug for SlotMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotMap")
            .field("shards", &self.shards)
            .field("served", &self.served())
            .finish()
    }
}

impl Default for SlotMap {
    fn default() -> SlotMap {
        SlotMap {
            owner: vec![UNSERVED; SLOTS as usize].into_boxed_slice(),
            shards: Vec::new(),
        }
    }
}

impl SlotMap {
    /// The index (into [`SlotMap::shards`]) of the shard serving `slot`.
    #[inline]
    pub fn shard_index(&self, slot: u16) -> Option<usize> {
        match self.owner.get(usize::from(slot)) {
            Some(&i) if i != UNSERVED => Some(usize::from(i)),
            _ => None,
        }
    }

    /// The shard serving `slot`.
    pub fn shard_of(&self, slot: u16) -> Option<&Shard> {
        self.shard_index(slot).map(|i| &self.shards[i])
    }

    /// Every shard, those serving no slot included.
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// How many slots some shard serves.
    pub fn served(&self) -> usize {
        self.owner.iter().filter(|&&i| i != UNSERVED).count()
    }

    /// True when no slot is served (nothing known yet).
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// This map with `slot` served by the primary at `to` (a `MOVED`): see
    /// [`SlotMap::set_owner`].
    pub fn moved(&self, slot: u16, to: &NodeAddr) -> SlotMap {
        let mut map = self.clone();
        map.set_owner(slot, to);
        map
    }

    /// `slot` is served by the primary at `to` from now on (a `MOVED`): the shard whose
    /// primary it is, else a new shard of it alone (its replicas come with the next refresh).
    pub fn set_owner(&mut self, slot: u16, to: &NodeAddr) {
        if slot >= SLOTS {
            return;
        }
        let i = match self.shards.iter().position(|s| s.primary.addr == *to) {
            Some(i) => i,
            None => {
                self.shards.push(Shard {
                    primary: Node {
                        addr: to.clone(),
                        id: None,
                        healthy: true,
                    },
                    replicas: Vec::new(),
                });
                self.shards.len() - 1
            }
        };
        self.owner[usize::from(slot)] = i as u16;
    }

    /// Assigns `start..=end` to shard `i`.
    fn assign(&mut self, start: i64, end: i64, i: usize) -> Result<()> {
        let ok = |n: i64| (0..i64::from(SLOTS)).contains(&n);
        if !ok(start) || !ok(end) || start > end {
            return Err(bad(format!("slot range {start}-{end}")));
        }
        for s in start..=end {
            self.owner[s as usize] = i as u16;
        }
        Ok(())
    }

    /// Adds a shard, or finds the one with the same primary (`CLUSTER SLOTS` lists a shard once
    /// per slot range).
    fn shard(&mut self, shard: Shard) -> usize {
        if let Some(i) = self
            .shards
            .iter()
            .position(|s| s.primary.addr == shard.primary.addr)
        {
            return i;
        }
        self.shards.push(shard);
        self.shards.len() - 1
    }

    /// The map from a `CLUSTER SHARDS` reply, read from `reached` (the host asked). `tls`: the
    /// client speaks TLS, so a node's `tls-port` is its port when it has one.
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] for a reply of another shape.
    pub fn from_shards(reply: Value, reached: &str, tls: bool) -> Result<SlotMap> {
        let Value::Array(shards) = reply else {
            return Err(bad(format!("CLUSTER SHARDS answered {}", reply.describe())));
        };
        let mut map = SlotMap::default();
        for shard in shards {
            let fields = pairs(shard)?;
            let mut slots = Vec::new();
            let mut nodes = Vec::new();
            for (name, value) in fields {
                match name.as_str() {
                    "slots" => slots = ints(value)?,
                    "nodes" => match value {
                        Value::Array(ns) | Value::Set(ns) => nodes = ns,
                        other => return Err(bad(format!("nodes: {}", other.describe()))),
                    },
                    _ => {}
                }
            }
            // A shard may list two primaries for a while after a failover (Valkey keeps the
            // failed one in its shard until it comes back as a replica): the healthy one
            // serves.
            let mut primaries = Vec::new();
            let mut replicas = Vec::new();
            for node in nodes {
                let (node, is_primary) = shards_node(node, reached, tls)?;
                if is_primary {
                    primaries.push(node);
                } else {
                    replicas.push(node);
                }
            }
            let best = primaries.iter().position(|n| n.healthy).unwrap_or(0);
            let primary = (best < primaries.len()).then(|| primaries.swap_remove(best));
            let Some(primary) = primary else {
                // A shard whose primary is gone and no replica promoted yet: nothing to send
                // its slots to; they stay unserved until the next refresh.
                continue;
            };
            if slots.len() % 2 != 0 {
                return Err(bad("an odd number of slot bounds".into()));
            }
            let i = map.shard(Shard { primary, replicas });
            for pair in slots.chunks(2) {
                map.assign(pair[0], pair[1], i)?;
            }
        }
        Ok(map)
    }

    /// The map from a `CLUSTER SLOTS` reply, read from `reached` (the host asked).
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] for a reply of another shape.
    pub fn from_slots(reply: Value, reached: &str) -> Result<SlotMap> {
        let Value::Array(ranges) = reply else {
            return Err(bad(format!("CLUSTER SLOTS answered {}", reply.describe())));
        };
        let mut map = SlotMap::default();
        for range in ranges {
            let Value::Array(items) = range else {
                return Err(bad(format!("a slot range: {}", range.describe())));
            };
            let mut items = items.into_iter();
            let (Some(start), Some(end)) = (items.next(), items.next()) else {
                return Err(bad("a slot range without its bounds".into()));
            };
            let (start, end) = (int(start)?, int(end)?);
            let mut nodes = items.map(|n| slots_node(n, reached));
            let Some(primary) = nodes.next().transpose()? else {
                continue;
            };
            let replicas = nodes.collect::<Result<Vec<_>>>()?;
            let i = map.shard(Shard { primary, replicas });
            map.assign(start, end, i)?;
        }
        Ok(map)
    }
}

/// Not a public API (`ringdis::__topology`, `#[doc(hidden)]`): the topology parsers, for the
/// integration tests that feed them a real cluster's replies (tests/tests/cluster_client.rs).
/// May change with any release.
pub mod probe {
    use super::SlotMap;
    use crate::{Result, Value};

    /// Per slot, its primary as `host:port` (`None`: unserved), from a `CLUSTER SHARDS` reply
    /// (`slots` false) or a `CLUSTER SLOTS` one (`slots` true) read from `reached`.
    ///
    /// # Errors
    ///
    /// As the parsers: a reply of another shape.
    pub fn owners(reply: Value, reached: &str, slots: bool) -> Result<Vec<Option<String>>> {
        let map = if slots {
            SlotMap::from_slots(reply, reached)?
        } else {
            SlotMap::from_shards(reply, reached, false)?
        };
        Ok((0..super::SLOTS)
            .map(|s| map.shard_of(s).map(|sh| sh.primary.addr.to_string()))
            .collect())
    }

    /// The replicas' `host:port` of the shard serving `slot`, from a `CLUSTER SHARDS` or
    /// `CLUSTER SLOTS` reply.
    ///
    /// # Errors
    ///
    /// As [`owners`].
    pub fn replicas(reply: Value, reached: &str, slots: bool, slot: u16) -> Result<Vec<String>> {
        let map = if slots {
            SlotMap::from_slots(reply, reached)?
        } else {
            SlotMap::from_shards(reply, reached, false)?
        };
        Ok(map
            .shard_of(slot)
            .map(|s| s.replicas.iter().map(|r| r.addr.to_string()).collect())
            .unwrap_or_default())
    }
}

/// A node of `CLUSTER SHARDS` (a map, or a flat array in RESP2), and whether it is the primary.
fn shards_node(node: Value, reached: &str, tls: bool) -> Result<(Node, bool)> {
    let mut id = None;
    let (mut ip, mut endpoint, mut port, mut tls_port) = (None, None, None, None);
    let mut primary = false;
    let mut healthy = true;
    for (name, value) in pairs(node)? {
        match name.as_str() {
            "id" => id = Some(text(value)?),
            "ip" => ip = Some(text(value)?),
            "endpoint" => endpoint = Some(text(value)?),
            "port" => port = Some(int(value)?),
            "tls-port" => tls_port = Some(int(value)?),
            "role" => primary = text(value)? == "master",
            // `loading` is also what Redis 7.0 says of a replica whose replication offset it has
            // not heard yet (a fresh one, for a while): it serves; a replica that really is
            // loading answers `LOADING`, and the read goes to the primary.
            // Valkey says `fail` of a node it saw die, Redis `failed`: anything else but
            // `online` and `loading` is not serving.
            "health" => healthy = matches!(text(value)?.as_str(), "online" | "loading"),
            _ => {}
        }
    }
    let port = match (tls, tls_port, port) {
        (true, Some(p), _) | (_, _, Some(p)) => p,
        (_, Some(p), None) => p,
        _ => return Err(bad("a node without a port".into())),
    };
    let port = u16::try_from(port).map_err(|_| bad(format!("port {port}")))?;
    let host = [endpoint, ip]
        .into_iter()
        .flatten()
        .find(|h| !h.is_empty() && h != "?")
        .unwrap_or_else(|| reached.to_owned());
    let node = Node {
        addr: NodeAddr::new(&host, port),
        id,
        healthy,
    };
    Ok((node, primary))
}

/// A node of `CLUSTER SLOTS`: `[endpoint, port, id?, metadata?]`.
fn slots_node(node: Value, reached: &str) -> Result<Node> {
    let Value::Array(items) = node else {
        return Err(bad(format!("a node: {}", node.describe())));
    };
    let mut items = items.into_iter();
    let (Some(host), Some(port)) = (items.next(), items.next()) else {
        return Err(bad("a node without its endpoint and port".into()));
    };
    let host = match host {
        Value::Nil => String::new(),
        h => text(h)?,
    };
    let host = if host.is_empty() || host == "?" {
        reached.to_owned()
    } else {
        host
    };
    let port = int(port)?;
    let port = u16::try_from(port).map_err(|_| bad(format!("port {port}")))?;
    let id = items.next().map(text).transpose()?;
    Ok(Node {
        addr: NodeAddr::new(&host, port),
        id,
        healthy: true,
    })
}

/// The name/value pairs of a RESP3 map or a RESP2 flat array, names lower-cased.
fn pairs(value: Value) -> Result<Vec<(String, Value)>> {
    match value {
        Value::Map(pairs) => pairs
            .into_iter()
            .map(|(k, v)| Ok((text(k)?.to_ascii_lowercase(), v)))
            .collect(),
        Value::Array(flat) => {
            if flat.len() % 2 != 0 {
                return Err(bad("a field list of odd length".into()));
            }
            let mut out = Vec::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.push((text(k)?.to_ascii_lowercase(), v));
            }
            Ok(out)
        }
        other => Err(bad(format!("a field list: {}", other.describe()))),
    }
}

fn text(value: Value) -> Result<String> {
    match value {
        Value::Bulk(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Value::Simple(s) | Value::BigNumber(s) => Ok(s.into_owned()),
        Value::Verbatim { text, .. } => Ok(String::from_utf8_lossy(&text).into_owned()),
        Value::Int(n) => Ok(n.to_string()),
        other => Err(bad(format!("expected text, got {}", other.describe()))),
    }
}

fn int(value: Value) -> Result<i64> {
    match value {
        Value::Int(n) => Ok(n),
        Value::Bulk(b) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("expected an integer".into())),
        other => Err(bad(format!(
            "expected an integer, got {}",
            other.describe()
        ))),
    }
}

fn ints(value: Value) -> Result<Vec<i64>> {
    match value {
        Value::Array(items) | Value::Set(items) => items.into_iter().map(int).collect(),
        other => Err(bad(format!("expected integers, got {}", other.describe()))),
    }
}

fn bad(what: String) -> Error {
    Error::protocol(format!("unexpected cluster topology reply: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::Bulk(s.to_owned().into())
    }

    /// A `CLUSTER SHARDS` node in RESP2 (flat) or RESP3 (map) shape.
    fn node(resp3: bool, fields: &[(&str, Value)]) -> Value {
        if resp3 {
            Value::Map(fields.iter().map(|(k, v)| (bulk(k), v.clone())).collect())
        } else {
            Value::Array(
                fields
                    .iter()
                    .flat_map(|(k, v)| [bulk(k), v.clone()])
                    .collect(),
            )
        }
    }

    fn shards_reply(resp3: bool) -> Value {
        let n = |id: &str, endpoint: &str, port: i64, role: &str, health: &str| {
            node(
                resp3,
                &[
                    ("id", bulk(id)),
                    ("port", Value::Int(port)),
                    ("ip", bulk("10.0.0.1")),
                    ("endpoint", bulk(endpoint)),
                    ("hostname", bulk("")),
                    ("role", bulk(role)),
                    ("replication-offset", Value::Int(72156)),
                    ("health", bulk(health)),
                ],
            )
        };
        let shard = |slots: &[i64], nodes: Vec<Value>| {
            node(
                resp3,
                &[
                    (
                        "slots",
                        Value::Array(slots.iter().map(|s| Value::Int(*s)).collect()),
                    ),
                    ("nodes", Value::Array(nodes)),
                ],
            )
        };
        Value::Array(vec![
            shard(
                &[0, 5460, 10923, 10923],
                vec![
                    n("a", "127.0.0.1", 7000, "master", "online"),
                    n("d", "127.0.0.1", 7003, "replica", "online"),
                ],
            ),
            shard(
                &[5461, 10922],
                vec![
                    // Replica listed first, an unknown endpoint, a failed node.
                    n("e", "?", 7004, "replica", "failed"),
                    n("b", "", 7001, "master", "online"),
                ],
            ),
            // After a failover: the failed primary still in the shard, listed first.
            shard(
                &[10924, 16383],
                vec![
                    n("g", "127.0.0.1", 7006, "master", "fail"),
                    n("c", "::1", 7002, "master", "online"),
                ],
            ),
            // An empty primary (no slots).
            shard(&[], vec![n("f", "127.0.0.1", 7005, "master", "online")]),
        ])
    }

    #[test]
    fn cluster_shards_in_both_protocols() {
        for resp3 in [false, true] {
            let map = SlotMap::from_shards(shards_reply(resp3), "seed.local", false).unwrap();
            assert_eq!(map.served(), SLOTS as usize, "resp3 {resp3}");
            assert_eq!(map.shards().len(), 4);
            let a = map.shard_of(0).unwrap();
            assert_eq!(a.primary.addr, NodeAddr::new("127.0.0.1", 7000));
            assert_eq!(a.primary.id.as_deref(), Some("a"));
            assert_eq!(a.replicas[0].addr.port(), 7003);
            assert_eq!(map.shard_of(10923).unwrap().primary.addr.port(), 7000);
            assert_eq!(map.shard_of(5460).unwrap().primary.addr.port(), 7000);
            let b = map.shard_of(5461).unwrap();
            // Empty endpoint: the ip field; `?`: the ip too.
            assert_eq!(b.primary.addr, NodeAddr::new("10.0.0.1", 7001));
            assert_eq!(b.replicas[0].addr, NodeAddr::new("10.0.0.1", 7004));
            assert!(!b.replicas[0].healthy && b.primary.healthy);
            let c = map.shard_of(16383).unwrap();
            assert_eq!(c.primary.addr.to_string(), "[::1]:7002");
            assert!(map.shards().iter().any(|s| s.primary.addr.port() == 7005));
        }
    }

    #[test]
    fn cluster_shards_without_ip_uses_the_host_reached() {
        let reply = Value::Array(vec![node(
            true,
            &[
                (
                    "slots",
                    Value::Array(vec![Value::Int(0), Value::Int(16383)]),
                ),
                (
                    "nodes",
                    Value::Array(vec![node(
                        true,
                        &[
                            ("port", Value::Int(7000)),
                            ("tls-port", Value::Int(8000)),
                            ("endpoint", bulk("?")),
                            ("role", bulk("master")),
                        ],
                    )]),
                ),
            ],
        )]);
        let plain = SlotMap::from_shards(reply.clone(), "seed.local", false).unwrap();
        assert_eq!(
            plain.shard_of(9).unwrap().primary.addr,
            NodeAddr::new("seed.local", 7000)
        );
        let tls = SlotMap::from_shards(reply, "seed.local", true).unwrap();
        assert_eq!(tls.shard_of(9).unwrap().primary.addr.port(), 8000);
    }

    #[test]
    fn cluster_slots_with_and_without_metadata() {
        let n = |host: Value, port: i64, id: &str| {
            Value::Array(vec![host, Value::Int(port), bulk(id), Value::Map(vec![])])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                n(bulk("127.0.0.1"), 7000, "a"),
                n(bulk("127.0.0.1"), 7003, "d"),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(10922),
                n(bulk("?"), 7001, "b"),
            ]),
            Value::Array(vec![
                Value::Int(10923),
                Value::Int(16383),
                Value::Array(vec![bulk(""), Value::Int(7002)]),
            ]),
            // The first shard again, for a second range.
            Value::Array(vec![
                Value::Int(10923),
                Value::Int(10923),
                n(bulk("127.0.0.1"), 7000, "a"),
            ]),
        ]);
        let map = SlotMap::from_slots(reply, "seed.local").unwrap();
        assert_eq!(map.served(), SLOTS as usize);
        assert_eq!(map.shards().len(), 3);
        assert_eq!(map.shard_of(10923).unwrap().primary.addr.port(), 7000);
        assert_eq!(
            map.shard_of(10924).unwrap().primary.addr,
            NodeAddr::new("seed.local", 7002)
        );
        assert_eq!(
            map.shard_of(6000).unwrap().primary.addr,
            NodeAddr::new("seed.local", 7001)
        );
        assert_eq!(map.shard_of(1).unwrap().replicas.len(), 1);
    }

    #[test]
    fn a_moved_slot_changes_that_slot_only() {
        let map = SlotMap::from_shards(shards_reply(true), "h", false).unwrap();
        let to = NodeAddr::new("10.0.0.1", 7001);
        let moved = map.moved(3, &to);
        assert_eq!(moved.shard_of(3).unwrap().primary.addr, to);
        assert_eq!(moved.shard_of(4).unwrap().primary.addr.port(), 7000);
        let new = NodeAddr::new("10.9.9.9", 9000);
        let moved = moved.moved(4, &new);
        assert_eq!(moved.shard_of(4).unwrap().primary.addr, new);
        assert_eq!(moved.shards().len(), 5);
    }

    #[test]
    fn other_shapes_are_protocol_errors() {
        for reply in [
            Value::Int(1),
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![Value::Array(vec![bulk("slots")])]),
        ] {
            assert!(SlotMap::from_shards(reply.clone(), "h", false).is_err());
            assert!(SlotMap::from_slots(reply, "h").is_err());
        }
        let bad_range = Value::Array(vec![Value::Array(vec![
            Value::Int(5),
            Value::Int(16384),
            Value::Array(vec![bulk("h"), Value::Int(1)]),
        ])]);
        assert!(SlotMap::from_slots(bad_range, "h").is_err());
    }
}
