//! Pub/sub on a subscriber connection: which frames are messages, which confirm a
//! (un)subscribe, and what the connection is subscribed to (so a reconnect can restore it).
//!
//! On RESP3 messages and confirmations are push frames. On RESP2 they are plain arrays, which an
//! `LRANGE` reply could also be; that is why they are only read this way on a connection that
//! does nothing but pub/sub.

use crate::{Cmd, FromRedis, Result, Value};
use bytes::Bytes;
use std::collections::BTreeSet;

/// The channel client-side caching invalidations are published on (`CLIENT TRACKING … REDIRECT`
/// to a RESP2 subscriber). A RESP3 subscriber gets them as `invalidate` push frames instead;
/// they are delivered as messages on this channel too, so both protocols look the same.
pub const INVALIDATE_CHANNEL: &str = "__redis__:invalidate";

/// Which family a subscription belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubKind {
    /// `SUBSCRIBE`: channels by name.
    Channel,
    /// `PSUBSCRIBE`: channels by glob pattern.
    Pattern,
    /// `SSUBSCRIBE`: shard channels (Redis 7+).
    Shard,
}

impl SubKind {
    pub(crate) fn subscribe(self) -> &'static str {
        match self {
            SubKind::Channel => "SUBSCRIBE",
            SubKind::Pattern => "PSUBSCRIBE",
            SubKind::Shard => "SSUBSCRIBE",
        }
    }

    pub(crate) fn unsubscribe(self) -> &'static str {
        match self {
            SubKind::Channel => "UNSUBSCRIBE",
            SubKind::Pattern => "PUNSUBSCRIBE",
            SubKind::Shard => "SUNSUBSCRIBE",
        }
    }
}

/// A message delivered to a subscriber.
///
/// `PUBLISH` (and `SPUBLISH`) always deliver a bulk string: read it with
/// [`Message::payload_bytes`] or [`Message::payload_str`], which are `None` for any other shape.
/// Messages the server sends on its own may carry other shapes, which is why `payload` is a
/// [`Value`]: a client-side caching invalidation on [`INVALIDATE_CHANNEL`] carries an array of
/// the invalidated keys, or [`Value::Nil`] when every key was invalidated at once (`FLUSHALL`,
/// `FLUSHDB`). [`Message::decode`] reads any shape as a Rust type, e.g. `Option<Vec<String>>`
/// for an invalidation.
///
/// ```
/// use ringdis::{Message, SubKind, Value};
/// let m = Message {
///     channel: "__redis__:invalidate".into(),
///     pattern: None,
///     payload: Value::Array(vec![Value::Bulk("user:1".into())]),
///     kind: SubKind::Channel,
/// };
/// assert_eq!(m.payload_str(), None, "not a bulk string");
/// assert_eq!(m.decode::<Option<Vec<String>>>()?, Some(vec!["user:1".to_owned()]));
/// # Ok::<(), ringdis::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The channel it was published to.
    pub channel: Bytes,
    /// The pattern that matched, for pattern subscriptions.
    pub pattern: Option<Bytes>,
    /// What was published: a [`Value::Bulk`] for `PUBLISH`; see the type's docs for the others.
    pub payload: Value,
    /// Which kind of subscription delivered it.
    pub kind: SubKind,
}

impl Message {
    /// The payload's bytes, if it is a string (always, for a message sent with `PUBLISH`).
    pub fn payload_bytes(&self) -> Option<&Bytes> {
        match &self.payload {
            Value::Bulk(b) | Value::Verbatim { text: b, .. } => Some(b),
            _ => None,
        }
    }

    /// The payload as text, if it is a string and UTF-8.
    pub fn payload_str(&self) -> Option<&str> {
        std::str::from_utf8(self.payload.as_bytes()?).ok()
    }

    /// The channel as text, if it is UTF-8.
    pub fn channel_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.channel).ok()
    }

    /// The payload decoded as `T` (any [`FromRedis`] type; the payload is cloned, which for
    /// strings is a reference count, not a copy).
    ///
    /// # Errors
    /// [`Error::Decode`](crate::Error::Decode) when the payload does not fit `T`.
    pub fn decode<T: FromRedis>(&self) -> Result<T> {
        T::from_redis(self.payload.clone())
    }

    /// How many bytes it holds, for the subscriber's queue limit: its strings plus a fixed
    /// allowance for the bookkeeping around each value.
    pub(crate) fn size(&self) -> usize {
        const MESSAGE: usize = 64;
        MESSAGE
            + self.channel.len()
            + self.pattern.as_ref().map_or(0, Bytes::len)
            + value_size(&self.payload)
    }

    /// The same message in allocations of its own. Bulk strings come off the wire as slices of
    /// the read buffer; a queued message that kept one would keep the whole buffer alive, so a
    /// queue bounded by message size would not bound memory.
    pub(crate) fn detached(self) -> Message {
        Message {
            channel: Bytes::copy_from_slice(&self.channel),
            pattern: self.pattern.map(|p| Bytes::copy_from_slice(&p)),
            payload: detach(self.payload),
            kind: self.kind,
        }
    }
}

fn value_size(v: &Value) -> usize {
    const VALUE: usize = std::mem::size_of::<Value>();
    VALUE
        + match v {
            Value::Simple(s) | Value::BigNumber(s) => s.len(),
            Value::Bulk(b) | Value::Verbatim { text: b, .. } => b.len(),
            Value::Error(e) => e.kind.len() + e.message.len(),
            Value::Array(items) | Value::Set(items) | Value::Push(items) => {
                items.iter().map(value_size).sum()
            }
            Value::Map(pairs) => pairs
                .iter()
                .map(|(k, v)| value_size(k) + value_size(v))
                .sum(),
            Value::Nil | Value::Int(_) | Value::Double(_) | Value::Boolean(_) => 0,
        }
}

fn detach(v: Value) -> Value {
    match v {
        Value::Bulk(b) => Value::Bulk(Bytes::copy_from_slice(&b)),
        Value::Verbatim { format, text } => Value::Verbatim {
            format,
            text: Bytes::copy_from_slice(&text),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(detach).collect()),
        Value::Set(items) => Value::Set(items.into_iter().map(detach).collect()),
        Value::Push(items) => Value::Push(items.into_iter().map(detach).collect()),
        Value::Map(pairs) => Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (detach(k), detach(v)))
                .collect(),
        ),
        other => other,
    }
}

/// What an `invalidate` push (RESP3 client-side caching) says.
#[derive(Debug, PartialEq)]
pub(crate) enum Invalidation<'a> {
    /// These keys changed (each element a key; anything else in the array is no key).
    Keys(&'a [Value]),
    /// Every key: a nil payload (`FLUSHALL`, `FLUSHDB`, tracking lost).
    All,
}

/// The invalidation `v` carries, if it is an `invalidate` push (`>2 invalidate <keys | nil>`).
pub(crate) fn invalidation(v: &Value) -> Option<Invalidation<'_>> {
    let Value::Push(items) = v else {
        return None;
    };
    let [kind, payload] = &items[..] else {
        return None;
    };
    if !kind
        .as_bytes()
        .is_some_and(|k| k.eq_ignore_ascii_case(b"invalidate"))
    {
        return None;
    }
    match payload {
        Value::Nil => Some(Invalidation::All),
        Value::Array(keys) | Value::Set(keys) | Value::Push(keys) => Some(Invalidation::Keys(keys)),
        // A lone key: not what servers send, but what it would mean.
        key if key.as_bytes().is_some() => Some(Invalidation::Keys(std::slice::from_ref(key))),
        _ => None,
    }
}

/// What a frame on a subscriber connection is.
pub(crate) enum Frame {
    /// A published message.
    Message(Message),
    /// A (un)subscribe confirmation: a reply to the call that asked for it.
    Confirmation(Value),
    /// Anything else: an ordinary reply (PING, an error) or an unrelated push.
    Other(Value),
}

fn string(v: &Value) -> Option<Bytes> {
    match v {
        Value::Bulk(b) | Value::Verbatim { text: b, .. } => Some(b.clone()),
        Value::Simple(s) => Some(Bytes::copy_from_slice(s.as_bytes())),
        _ => None,
    }
}

/// Classifies a frame that arrived on a subscriber connection.
///
/// A message's channel (and pattern) must be strings; its payload may be any value. A frame
/// that looks like a message but is not one stays [`Frame::Other`], as it came.
pub(crate) fn classify(v: Value) -> Frame {
    let push = matches!(v, Value::Push(_));
    let (Value::Push(items) | Value::Array(items)) = &v else {
        return Frame::Other(v);
    };
    let kind = items.first().and_then(Value::as_bytes);
    let kind = kind.map(<[u8]>::to_ascii_lowercase);
    let message = match (kind.as_deref(), &items[..]) {
        (Some(b"message"), [_, channel, _]) => string(channel).map(|c| (None, c, SubKind::Channel)),
        (Some(b"smessage"), [_, channel, _]) => string(channel).map(|c| (None, c, SubKind::Shard)),
        (Some(b"pmessage"), [_, pattern, channel, _]) => string(pattern)
            .zip(string(channel))
            .map(|(p, c)| (Some(p), c, SubKind::Pattern)),
        // RESP3 client-side caching: `>2 invalidate <keys | nil>`.
        (Some(b"invalidate"), [_, _]) if push => Some((
            None,
            Bytes::from_static(INVALIDATE_CHANNEL.as_bytes()),
            SubKind::Channel,
        )),
        (
            Some(
                b"subscribe" | b"psubscribe" | b"ssubscribe" | b"unsubscribe" | b"punsubscribe"
                | b"sunsubscribe",
            ),
            [_, _, _],
        ) => return Frame::Confirmation(v),
        _ => None,
    };
    let Some((pattern, channel, kind)) = message else {
        return Frame::Other(v);
    };
    let (Value::Push(mut items) | Value::Array(mut items)) = v else {
        return Frame::Other(v);
    };
    let payload = items.pop().unwrap_or(Value::Nil);
    Frame::Message(Message {
        channel,
        pattern,
        payload,
        kind,
    })
}

/// What a subscriber connection is subscribed to.
#[derive(Default, Debug)]
pub(crate) struct Subscriptions {
    channels: BTreeSet<Bytes>,
    patterns: BTreeSet<Bytes>,
    shards: BTreeSet<Bytes>,
}

impl Subscriptions {
    fn set(&mut self, kind: SubKind) -> &mut BTreeSet<Bytes> {
        match kind {
            SubKind::Channel => &mut self.channels,
            SubKind::Pattern => &mut self.patterns,
            SubKind::Shard => &mut self.shards,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.patterns.is_empty() && self.shards.is_empty()
    }

    /// The names a subscribe would add (those not held already).
    pub fn new_names(&mut self, kind: SubKind, names: &[Bytes]) -> Vec<Bytes> {
        let set = self.set(kind);
        let mut added: Vec<Bytes> = names
            .iter()
            .filter(|n| !set.contains(*n))
            .cloned()
            .collect();
        added.sort();
        added.dedup();
        added
    }

    /// Forgets names the server refused to subscribe to.
    pub fn forget(&mut self, kind: SubKind, names: &[Bytes]) {
        let set = self.set(kind);
        for n in names {
            set.remove(n);
        }
    }

    /// Records a (un)subscribe about to be sent; returns how many confirmations it will get.
    pub fn apply(&mut self, kind: SubKind, subscribe: bool, names: &[Bytes]) -> usize {
        let set = self.set(kind);
        if subscribe {
            set.extend(names.iter().cloned());
            names.len()
        } else if names.is_empty() {
            // Unsubscribe from all: one confirmation per name held, or a single one for none.
            let n = set.len().max(1);
            set.clear();
            n
        } else {
            for n in names {
                set.remove(n);
            }
            names.len()
        }
    }

    /// The commands that restore every subscription on a new connection, with the number of
    /// confirmations each gets and what each holds. Shard channels go one `SSUBSCRIBE` per
    /// slot: a cluster node refuses one whose channels span slots (`CROSSSLOT`).
    pub fn restore(&self) -> Vec<(Cmd, usize, (SubKind, Vec<Bytes>))> {
        let mut by_slot: std::collections::BTreeMap<u16, Vec<Bytes>> = Default::default();
        for name in &self.shards {
            by_slot
                .entry(crate::route::keyslot::slot(name))
                .or_default()
                .push(name.clone());
        }
        [
            (SubKind::Channel, self.channels.iter().cloned().collect()),
            (SubKind::Pattern, self.patterns.iter().cloned().collect()),
        ]
        .into_iter()
        .chain(by_slot.into_values().map(|names| (SubKind::Shard, names)))
        .filter(|(_, names): &(SubKind, Vec<Bytes>)| !names.is_empty())
        .map(|(kind, names)| {
            let mut cmd = Cmd::new(kind.subscribe());
            for name in &names {
                cmd.push_arg(name);
            }
            (cmd, names.len(), (kind, names))
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The invalidations an `invalidate` push carries; any other frame carries none.
    #[test]
    fn invalidation_pushes_name_keys_or_everything() {
        let b = |s: &'static str| Value::Bulk(Bytes::from_static(s.as_bytes()));
        let keys = vec![b("a"), b("b")];
        let push = Value::Push(vec![b("invalidate"), Value::Array(keys.clone())]);
        assert_eq!(invalidation(&push), Some(Invalidation::Keys(&keys)));
        let all = Value::Push(vec![b("invalidate"), Value::Nil]);
        assert_eq!(invalidation(&all), Some(Invalidation::All));
        for other in [
            // Not a push: a reply that looks like one.
            Value::Array(vec![b("invalidate"), Value::Nil]),
            Value::Push(vec![b("message"), b("ch"), b("x")]),
            Value::Push(vec![b("invalidate")]),
            Value::Push(vec![b("invalidate"), Value::Int(3)]),
        ] {
            assert_eq!(invalidation(&other), None, "{other:?}");
        }
    }

    fn b(s: &str) -> Value {
        Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn messages_and_confirmations_in_both_protocols() {
        for wrap in [Value::Array as fn(Vec<Value>) -> Value, Value::Push] {
            let Frame::Message(m) = classify(wrap(vec![b("message"), b("news"), b("hi")])) else {
                panic!()
            };
            assert_eq!(
                (m.channel_str(), m.payload_str(), m.kind),
                (Some("news"), Some("hi"), SubKind::Channel)
            );
            let Frame::Message(m) =
                classify(wrap(vec![b("pmessage"), b("n*"), b("news"), b("hi")]))
            else {
                panic!()
            };
            assert_eq!(m.pattern.as_deref(), Some(&b"n*"[..]));
            assert_eq!(m.kind, SubKind::Pattern);
            let Frame::Message(m) = classify(wrap(vec![b("smessage"), b("s"), b("x")])) else {
                panic!()
            };
            assert_eq!(m.kind, SubKind::Shard);
            assert!(matches!(
                classify(wrap(vec![b("subscribe"), b("news"), Value::Int(1)])),
                Frame::Confirmation(_)
            ));
            assert!(matches!(
                classify(wrap(vec![b("unsubscribe"), Value::Nil, Value::Int(0)])),
                Frame::Confirmation(_)
            ));
            assert!(matches!(
                classify(wrap(vec![b("pong"), b("")])),
                Frame::Other(_)
            ));
        }
        assert!(matches!(
            classify(Value::Simple("PONG".into())),
            Frame::Other(_)
        ));
    }

    #[test]
    fn payloads_of_any_shape_are_messages() {
        // RESP2 `CLIENT TRACKING … REDIRECT`: the keys as an array, or nil for a flush.
        let keys = Value::Array(vec![b("key")]);
        for payload in [keys.clone(), Value::Nil] {
            let frame = Value::Array(vec![b("message"), b(INVALIDATE_CHANNEL), payload.clone()]);
            let Frame::Message(m) = classify(frame) else {
                panic!("{payload:?} is a message")
            };
            assert_eq!(m.channel_str(), Some(INVALIDATE_CHANNEL));
            assert_eq!((m.payload, m.kind), (payload, SubKind::Channel));
        }
        let Frame::Message(m) = classify(Value::Array(vec![b("message"), b("k"), keys.clone()]))
        else {
            panic!()
        };
        assert_eq!(m.payload_str(), None);
        assert_eq!(m.payload_bytes(), None);
        assert_eq!(m.decode::<Vec<String>>().unwrap(), ["key"]);
        for wrap in [Value::Array as fn(Vec<Value>) -> Value, Value::Push] {
            let Frame::Message(m) =
                classify(wrap(vec![b("pmessage"), b("k*"), b("k1"), keys.clone()]))
            else {
                panic!()
            };
            assert_eq!(
                (m.pattern.as_deref(), m.kind),
                (Some(&b"k*"[..]), SubKind::Pattern)
            );
            let Frame::Message(m) = classify(wrap(vec![b("smessage"), b("s"), Value::Nil])) else {
                panic!()
            };
            assert_eq!((m.payload, m.kind), (Value::Nil, SubKind::Shard));
        }
        // RESP3 invalidations are pushes of their own; on a subscriber they are messages too.
        for payload in [keys.clone(), Value::Nil] {
            let Frame::Message(m) = classify(Value::Push(vec![b("invalidate"), payload.clone()]))
            else {
                panic!()
            };
            assert_eq!(m.channel_str(), Some(INVALIDATE_CHANNEL));
            assert_eq!(m.payload, payload);
        }
        // ... but an array reply that starts with the word is a reply.
        assert!(matches!(
            classify(Value::Array(vec![b("invalidate"), b("x")])),
            Frame::Other(_)
        ));
        // A channel that is not a string: not a message, and handed on as it came.
        let odd = Value::Push(vec![b("message"), Value::Int(1), b("x")]);
        assert!(matches!(classify(odd.clone()), Frame::Other(v) if v == odd));
    }

    #[test]
    fn a_queued_message_owns_its_bytes() {
        let wire = Bytes::from_static(b"message news hello");
        let m = Message {
            channel: wire.slice(8..12),
            pattern: None,
            payload: Value::Array(vec![Value::Bulk(wire.slice(13..))]),
            kind: SubKind::Channel,
        };
        let size = m.size();
        assert!(size >= 4 + 5 + 64, "{size}");
        let d = m.clone().detached();
        assert_eq!(d, m);
        let Value::Array(items) = &d.payload else {
            panic!()
        };
        let Value::Bulk(hello) = &items[0] else {
            panic!()
        };
        let within = |b: &Bytes| wire.as_ptr_range().contains(&b.as_ptr());
        assert!(
            !within(hello) && !within(&d.channel),
            "copied out of the read buffer"
        );
    }

    #[test]
    fn subscriptions_count_confirmations_and_restore() {
        let mut s = Subscriptions::default();
        let names = |v: &[&str]| {
            v.iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect::<Vec<_>>()
        };
        assert_eq!(s.apply(SubKind::Channel, true, &names(&["a", "b"])), 2);
        assert_eq!(s.apply(SubKind::Pattern, true, &names(&["p*"])), 1);
        let restore: Vec<_> = s
            .restore()
            .into_iter()
            .map(|(c, n, _)| (c.to_string(), n))
            .collect();
        assert_eq!(
            restore,
            [
                ("SUBSCRIBE a b".to_owned(), 2),
                ("PSUBSCRIBE p*".to_owned(), 1)
            ]
        );
        assert_eq!(s.apply(SubKind::Channel, false, &[]), 2);
        assert_eq!(
            s.apply(SubKind::Channel, false, &[]),
            1,
            "unsubscribing from nothing still confirms once"
        );
        assert_eq!(s.apply(SubKind::Pattern, false, &names(&["p*"])), 1);
        assert!(s.is_empty());
    }

    /// Shard channels are restored one `SSUBSCRIBE` per slot (a cluster node refuses one
    /// across slots), channels of one slot together.
    #[test]
    fn shard_channels_restore_per_slot() {
        let mut s = Subscriptions::default();
        let names: Vec<Bytes> = ["{a}1", "{a}2", "{b}1", "c"]
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect();
        s.apply(SubKind::Shard, true, &names);
        let mut restore: Vec<_> = s
            .restore()
            .into_iter()
            .map(|(c, n, (kind, _))| (c.to_string(), n, kind))
            .collect();
        restore.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            restore,
            [
                ("SSUBSCRIBE c".to_owned(), 1, SubKind::Shard),
                ("SSUBSCRIBE {a}1 {a}2".to_owned(), 2, SubKind::Shard),
                ("SSUBSCRIBE {b}1".to_owned(), 1, SubKind::Shard),
            ]
        );
    }
}
