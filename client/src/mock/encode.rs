//! Writes a scripted [`Value`] as a server would send it, in RESP3 or (for a connection that
//! did not say `HELLO 3`) in RESP2, where the RESP3-only types take the shape servers give them.

use crate::value::format_double;
use crate::Value;
use bytes::{BufMut, BytesMut};

/// Appends `value` as one reply.
pub(crate) fn write_value(out: &mut BytesMut, value: &Value, resp3: bool) {
    match value {
        Value::Nil if resp3 => out.put_slice(b"_\r\n"),
        Value::Nil => out.put_slice(b"$-1\r\n"),
        Value::Simple(s) if is_line(s.as_bytes()) => line(out, b'+', s.as_bytes()),
        Value::Simple(s) => bulk(out, s.as_bytes()),
        Value::Bulk(b) => bulk(out, b),
        Value::Verbatim { format, text } if resp3 && format.len() == 3 => {
            header(out, b'=', format.len() + 1 + text.len());
            out.put_slice(format.as_bytes());
            out.put_u8(b':');
            out.put_slice(text);
            out.put_slice(b"\r\n");
        }
        Value::Verbatim { text, .. } => bulk(out, text),
        Value::Int(i) => line(out, b':', itoa::Buffer::new().format(*i).as_bytes()),
        Value::Double(d) if resp3 => line(out, b',', format_double(*d).as_bytes()),
        Value::Double(d) => bulk(out, format_double(*d).as_bytes()),
        Value::Boolean(b) if resp3 => line(out, b'#', if *b { b"t" } else { b"f" }),
        Value::Boolean(b) => line(out, b':', if *b { b"1" } else { b"0" }),
        Value::BigNumber(n) if resp3 && is_line(n.as_bytes()) => line(out, b'(', n.as_bytes()),
        Value::BigNumber(n) => bulk(out, n.as_bytes()),
        Value::Error(e) => {
            let text = e.to_string();
            if is_line(text.as_bytes()) {
                line(out, b'-', text.as_bytes());
            } else if resp3 {
                header(out, b'!', text.len());
                out.put_slice(text.as_bytes());
                out.put_slice(b"\r\n");
            } else {
                line(out, b'-', text.replace(['\r', '\n'], " ").as_bytes());
            }
        }
        Value::Array(items) => many(out, b'*', items, resp3),
        Value::Set(items) => many(out, if resp3 { b'~' } else { b'*' }, items, resp3),
        Value::Push(items) => many(out, if resp3 { b'>' } else { b'*' }, items, resp3),
        Value::Map(pairs) => {
            if resp3 {
                header(out, b'%', pairs.len());
            } else {
                header(out, b'*', pairs.len() * 2);
            }
            for (k, v) in pairs {
                write_value(out, k, resp3);
                write_value(out, v, resp3);
            }
        }
    }
}

/// True when `text` fits on one RESP line.
fn is_line(text: &[u8]) -> bool {
    !text.contains(&b'\r') && !text.contains(&b'\n')
}

fn line(out: &mut BytesMut, kind: u8, text: &[u8]) {
    out.put_u8(kind);
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

fn header(out: &mut BytesMut, kind: u8, len: usize) {
    line(out, kind, itoa::Buffer::new().format(len).as_bytes());
}

fn bulk(out: &mut BytesMut, bytes: &[u8]) {
    header(out, b'$', bytes.len());
    out.put_slice(bytes);
    out.put_slice(b"\r\n");
}

fn many(out: &mut BytesMut, kind: u8, items: &[Value], resp3: bool) {
    header(out, kind, items.len());
    for item in items {
        write_value(out, item, resp3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::{Limits, Parser};
    use crate::ServerError;
    use bytes::Bytes;

    fn roundtrip(value: &Value, resp3: bool) -> Value {
        let mut out = BytesMut::new();
        write_value(&mut out, value, resp3);
        let mut parser = Parser::new(Limits::default());
        let back = parser.parse(&mut out).unwrap().expect("one whole reply");
        assert!(out.is_empty(), "{value:?} left bytes behind");
        back
    }

    /// Every value reads back as itself in RESP3; in RESP2 the RESP3-only types come back in
    /// the shape servers give them there.
    #[test]
    fn values_read_back_through_the_parser() {
        let err = ServerError {
            kind: "WRONGTYPE".into(),
            message: "Operation against a key holding the wrong kind of value".into(),
        };
        let all = Value::Array(vec![
            Value::Nil,
            Value::Simple("OK".into()),
            Value::Bulk(Bytes::from_static(b"bin\r\n\0ary")),
            Value::Verbatim {
                format: "txt".into(),
                text: Bytes::from_static(b"hi"),
            },
            Value::Int(-42),
            Value::Double(1.5),
            Value::Boolean(true),
            Value::BigNumber("123456789012345678901234567890".into()),
            Value::Error(err.clone()),
            Value::Map(vec![("born".into(), 1815.into())]),
            Value::Set(vec!["a".into()]),
        ]);
        assert_eq!(roundtrip(&all, true), all);
        let resp2 = Value::Array(vec![
            Value::Nil,
            Value::Simple("OK".into()),
            Value::Bulk(Bytes::from_static(b"bin\r\n\0ary")),
            "hi".into(),
            Value::Int(-42),
            "1.5".into(),
            Value::Int(1),
            "123456789012345678901234567890".into(),
            Value::Error(err),
            Value::Array(vec!["born".into(), 1815.into()]),
            Value::Array(vec!["a".into()]),
        ]);
        assert_eq!(roundtrip(&all, false), resp2);
    }

    /// Text that cannot go on one line still arrives whole.
    #[test]
    fn multi_line_text_is_sent_as_a_blob() {
        let simple = Value::Simple("two\r\nlines".into());
        assert_eq!(roundtrip(&simple, true), "two\r\nlines".into());
        let err = Value::Error(ServerError {
            kind: "ERR".into(),
            message: "two\nlines".into(),
        });
        assert_eq!(roundtrip(&err, true), err);
    }
}
