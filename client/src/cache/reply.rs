//! A reply as the cache keeps it: [`compact`] copies it out of the connection's read buffer, and
//! [`size`] says what it takes.

use crate::Value;
use bytes::{Bytes, BytesMut};
use std::mem::size_of;

/// The bytes `value` takes: one `Value` per node, plus the text and bulk bytes it owns
/// (vectors' spare capacity is not counted: a compacted reply has none to speak of).
pub(super) fn size(value: &Value) -> usize {
    size_of::<Value>()
        + match value {
            Value::Bulk(b) => b.len(),
            Value::Simple(s) | Value::BigNumber(s) => s.len(),
            Value::Verbatim { format, text } => format.len() + text.len(),
            Value::Error(e) => e.kind.len() + e.message.len(),
            Value::Array(items) | Value::Set(items) | Value::Push(items) => {
                items.iter().map(size).sum()
            }
            Value::Map(pairs) => pairs.iter().map(|(k, v)| size(k) + size(v)).sum(),
            Value::Nil | Value::Int(_) | Value::Double(_) | Value::Boolean(_) => 0,
        }
}

/// A copy of `value` whose bulk strings share one allocation of their own. A parsed reply's
/// bulk strings are slices of the connection's read buffer: kept as they are, a cached 5-byte
/// reply would hold a whole buffer (16 KiB or more) alive, unseen by the byte budget.
pub(super) fn compact(value: &Value) -> Value {
    let mut buf = BytesMut::with_capacity(bulk_bytes(value));
    copy_bulks(value, &mut buf);
    let all = buf.freeze();
    let mut at = 0;
    rebuild(value, &all, &mut at)
}

fn bulk_bytes(value: &Value) -> usize {
    match value {
        Value::Bulk(b) => b.len(),
        Value::Verbatim { text, .. } => text.len(),
        Value::Array(items) | Value::Set(items) | Value::Push(items) => {
            items.iter().map(bulk_bytes).sum()
        }
        Value::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| bulk_bytes(k) + bulk_bytes(v))
            .sum(),
        _ => 0,
    }
}

fn copy_bulks(value: &Value, buf: &mut BytesMut) {
    match value {
        Value::Bulk(b) | Value::Verbatim { text: b, .. } => buf.extend_from_slice(b),
        Value::Array(items) | Value::Set(items) | Value::Push(items) => {
            items.iter().for_each(|v| copy_bulks(v, buf))
        }
        Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
            copy_bulks(k, buf);
            copy_bulks(v, buf);
        }),
        _ => {}
    }
}

fn take(all: &Bytes, at: &mut usize, len: usize) -> Bytes {
    let b = all.slice(*at..*at + len);
    *at += len;
    b
}

fn rebuild(value: &Value, all: &Bytes, at: &mut usize) -> Value {
    match value {
        Value::Bulk(b) => Value::Bulk(take(all, at, b.len())),
        Value::Verbatim { format, text } => Value::Verbatim {
            format: format.clone(),
            text: take(all, at, text.len()),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| rebuild(v, all, at)).collect()),
        Value::Set(items) => Value::Set(items.iter().map(|v| rebuild(v, all, at)).collect()),
        Value::Push(items) => Value::Push(items.iter().map(|v| rebuild(v, all, at)).collect()),
        Value::Map(pairs) => Value::Map(
            pairs
                .iter()
                .map(|(k, v)| (rebuild(k, all, at), rebuild(v, all, at)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(buffer: &Bytes) -> Value {
        Value::Array(vec![
            Value::Bulk(buffer.slice(0..3)),
            Value::Map(vec![(Value::Bulk(buffer.slice(3..5)), Value::Int(1))]),
            Value::Verbatim {
                format: "txt".into(),
                text: buffer.slice(5..9),
            },
            Value::Simple("OK".into()),
            Value::Nil,
        ])
    }

    #[test]
    fn compact_keeps_the_value_and_lets_the_buffer_go() {
        let buffer = Bytes::from(vec![b'x'; 16 * 1024]);
        let value = sample(&buffer);
        let copy = compact(&value);
        assert_eq!(copy, value);
        let Value::Array(items) = &copy else {
            panic!("an array")
        };
        let Value::Bulk(first) = &items[0] else {
            panic!("a bulk")
        };
        // The copy's bulks are not slices of the read buffer.
        let span = buffer.as_ptr() as usize..buffer.as_ptr() as usize + buffer.len();
        assert!(!span.contains(&(first.as_ptr() as usize)));
    }

    #[test]
    fn size_counts_nodes_and_bytes() {
        let node = size_of::<Value>();
        assert_eq!(size(&Value::Int(5)), node);
        assert_eq!(size(&Value::Bulk("abcd".into())), node + 4);
        let buffer = Bytes::from(vec![b'x'; 64]);
        // array + bulk(3) + map(k(2), int) + verbatim(txt, 4) + simple(2) + nil
        assert_eq!(size(&sample(&buffer)), 8 * node + 3 + 2 + 3 + 4 + 2);
    }
}
