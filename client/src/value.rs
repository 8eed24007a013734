//! [`Value`]: one RESP2 or RESP3 reply, as it came off the wire.

use bytes::Bytes;
use std::fmt;

/// An error reply nested inside another reply (for example one failed command inside the array
/// `EXEC` returns). A top-level error reply never becomes a `Value`: the call fails with
/// [`Error::Server`](crate::Error::Server) instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    /// The error code, e.g. `WRONGTYPE` (empty when the server sent none).
    pub kind: String,
    /// The rest of the error line.
    pub message: String,
}

impl ServerError {
    pub(crate) fn from_line(line: &str) -> ServerError {
        let (kind, message) = crate::error::split_error_line(line);
        ServerError {
            kind: kind.to_owned(),
            message: message.to_owned(),
        }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{} {}", self.kind, self.message)
        }
    }
}

/// A reply from the server.
///
/// RESP3 types map one to one; RESP2 replies use the subset RESP2 has (`Nil`, `Simple`, `Bulk`,
/// `Int`, `Array`, `Error`). RESP3 *attributes* (`|`) are read and dropped: the value they annotate
/// is returned on its own. Bulk strings are [`Bytes`] slices of the read buffer: no copy.
///
/// ```
/// use ringdis::Value;
/// let v = Value::Array(vec![Value::Int(1), Value::Bulk("two".into()), Value::Nil]);
/// assert_eq!(v.describe(), "array of 3");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// RESP3 null, RESP2 null bulk string or null array.
    Nil,
    /// A simple string (`+OK`).
    Simple(String),
    /// A bulk string.
    Bulk(Bytes),
    /// A RESP3 verbatim string: a three-letter format (`txt`, `mkd`) and the text.
    Verbatim {
        /// The format, e.g. `txt`.
        format: String,
        /// The text.
        text: Bytes,
    },
    /// An integer.
    Int(i64),
    /// A RESP3 double (may be infinite or NaN, in any libc spelling the server used).
    Double(f64),
    /// A RESP3 boolean.
    Boolean(bool),
    /// A RESP3 big number, as the server spelled it: decimal digits, or whatever text a script
    /// sent as one (`redis.setresp(3) return {big_number='1e5'}`). Conversions read it as text.
    BigNumber(String),
    /// An error reply nested inside an aggregate (simple or blob error).
    Error(ServerError),
    /// An array.
    Array(Vec<Value>),
    /// A RESP3 map, in the order the server sent it.
    Map(Vec<(Value, Value)>),
    /// A RESP3 set, in the order the server sent it.
    Set(Vec<Value>),
    /// A RESP3 push frame (pub/sub message, client-tracking invalidation, …).
    Push(Vec<Value>),
}

impl Value {
    /// A short human description for error messages: the type and a prefix of the content.
    pub fn describe(&self) -> String {
        fn text(b: &[u8]) -> String {
            const MAX: usize = 40;
            let s = String::from_utf8_lossy(&b[..b.len().min(MAX)]);
            if b.len() > MAX {
                format!("{s:?}…")
            } else {
                format!("{s:?}")
            }
        }
        match self {
            Value::Nil => "nil".to_owned(),
            Value::Simple(s) => format!("simple string {}", text(s.as_bytes())),
            Value::Bulk(b) => format!("bulk string {}", text(b)),
            Value::Verbatim { text: t, .. } => format!("verbatim string {}", text(t)),
            Value::Int(i) => format!("integer {i}"),
            Value::Double(d) => format!("double {}", crate::number::format_double(*d)),
            Value::Boolean(b) => format!("boolean {b}"),
            Value::BigNumber(n) => format!("big number {n}"),
            Value::Error(e) => format!("error reply {}", text(e.to_string().as_bytes())),
            Value::Array(a) => format!("array of {}", a.len()),
            Value::Map(m) => format!("map of {}", m.len()),
            Value::Set(s) => format!("set of {}", s.len()),
            Value::Push(p) => format!("push of {}", p.len()),
        }
    }

    /// The bytes of a string-like value (simple, bulk or verbatim), if it is one.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Simple(s) => Some(s.as_bytes()),
            Value::Bulk(b) => Some(b),
            Value::Verbatim { text, .. } => Some(text),
            _ => None,
        }
    }

    /// True for [`Value::Nil`].
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

/// The three shapes a map arrives in (a RESP3 map, an array of `[key, value]` pairs, a RESP2 flat
/// array), with the same content: for the decoders' tests.
#[cfg(test)]
pub(crate) fn map_shapes(pairs: &[(&str, Value)]) -> [Value; 3] {
    let key = |k: &str| Value::Bulk(bytes::Bytes::copy_from_slice(k.as_bytes()));
    [
        Value::Map(pairs.iter().map(|(k, v)| (key(k), v.clone())).collect()),
        Value::Array(
            pairs
                .iter()
                .map(|(k, v)| Value::Array(vec![key(k), v.clone()]))
                .collect(),
        ),
        Value::Array(
            pairs
                .iter()
                .flat_map(|(k, v)| [key(k), v.clone()])
                .collect(),
        ),
    ]
}
