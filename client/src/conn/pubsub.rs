//! Pub/sub on a subscriber connection: which frames are messages, which confirm a
//! (un)subscribe, and what the connection is subscribed to (so a reconnect can restore it).
//!
//! On RESP3 messages and confirmations are push frames. On RESP2 they are plain arrays, which an
//! `LRANGE` reply could also be; that is why they are only read this way on a connection that
//! does nothing but pub/sub.

use crate::{Cmd, Value};
use bytes::Bytes;
use std::collections::BTreeSet;

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The channel it was published to.
    pub channel: Bytes,
    /// The pattern that matched, for pattern subscriptions.
    pub pattern: Option<Bytes>,
    /// What was published.
    pub payload: Bytes,
    /// Which kind of subscription delivered it.
    pub kind: SubKind,
}

impl Message {
    /// The payload as text, if it is UTF-8.
    pub fn payload_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }

    /// The channel as text, if it is UTF-8.
    pub fn channel_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.channel).ok()
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

fn word(v: &Value) -> Option<&[u8]> {
    v.as_bytes()
}

fn bytes(v: Value) -> Option<Bytes> {
    match v {
        Value::Bulk(b) => Some(b),
        Value::Simple(s) => Some(Bytes::from(s)),
        Value::Verbatim { text, .. } => Some(text),
        _ => None,
    }
}

/// Classifies a frame that arrived on a subscriber connection.
pub(crate) fn classify(v: Value) -> Frame {
    let (Value::Push(items) | Value::Array(items)) = &v else {
        return Frame::Other(v);
    };
    let kind = items.first().and_then(word).map(|w| w.to_ascii_lowercase());
    match (kind.as_deref(), items.len()) {
        (Some(b"message"), 3) | (Some(b"smessage"), 3) | (Some(b"pmessage"), 4) => {}
        (
            Some(
                b"subscribe" | b"psubscribe" | b"ssubscribe" | b"unsubscribe" | b"punsubscribe"
                | b"sunsubscribe",
            ),
            3,
        ) => return Frame::Confirmation(v),
        _ => return Frame::Other(v),
    }
    let (Value::Push(items) | Value::Array(items)) = v else {
        unreachable!("matched above")
    };
    let mut it = items.into_iter();
    let kind = it.next().and_then(bytes).unwrap_or_default();
    let message = match &kind[..] {
        b"pmessage" => (|| {
            Some(Message {
                pattern: Some(bytes(it.next()?)?),
                channel: bytes(it.next()?)?,
                payload: bytes(it.next()?)?,
                kind: SubKind::Pattern,
            })
        })(),
        k => {
            let kind = if k.eq_ignore_ascii_case(b"smessage") {
                SubKind::Shard
            } else {
                SubKind::Channel
            };
            (|| {
                Some(Message {
                    channel: bytes(it.next()?)?,
                    pattern: None,
                    payload: bytes(it.next()?)?,
                    kind,
                })
            })()
        }
    };
    match message {
        Some(m) => Frame::Message(m),
        None => Frame::Other(Value::Nil),
    }
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
    /// confirmations each gets.
    pub fn restore(&self) -> Vec<(Cmd, usize)> {
        [
            (SubKind::Channel, &self.channels),
            (SubKind::Pattern, &self.patterns),
            (SubKind::Shard, &self.shards),
        ]
        .into_iter()
        .filter(|(_, set)| !set.is_empty())
        .map(|(kind, set)| {
            let mut cmd = Cmd::new(kind.subscribe());
            for name in set {
                cmd.push_arg(name);
            }
            (cmd, set.len())
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            .map(|(c, n)| (c.to_string(), n))
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
}
