//! [`Value`]: one RESP2 or RESP3 reply, as it came off the wire.

use bytes::Bytes;
use std::borrow::Cow;
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
        let (kind, message) = split_error_line(line);
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
    /// A simple string (`+OK`). The common ones (`OK`, `PONG`, `QUEUED`) are borrowed from
    /// statics, so those replies cost no allocation; any other is owned. Compare it as a string:
    /// `matches!(v, Value::Simple(s) if s == "OK")`; build one with `Value::Simple("OK".into())`.
    Simple(Cow<'static, str>),
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
    /// Always owned when parsed; the same type as [`Value::Simple`] so that one pattern
    /// (`Value::Simple(s) | Value::BigNumber(s)`) binds either.
    BigNumber(Cow<'static, str>),
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
            Value::Double(d) => format!("double {}", format_double(*d)),
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

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Bulk(Bytes::from(s))
    }
}

impl From<Bytes> for Value {
    fn from(b: Bytes) -> Self {
        Value::Bulk(b)
    }
}

impl From<f64> for Value {
    fn from(d: f64) -> Self {
        Value::Double(d)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

/// `None` is [`Value::Nil`].
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Nil, Into::into)
    }
}

/// An array.
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(items: Vec<T>) -> Self {
        Value::Array(items.into_iter().map(Into::into).collect())
    }
}

/// Splits `"KIND rest of message"` into its code and message. A line whose first word is not an
/// upper-case code is kind `ERR`-less: the kind is empty and the message the whole line.
pub(crate) fn split_error_line(line: &str) -> (&str, &str) {
    match line.split_once(' ') {
        Some((kind, rest)) if is_code(kind) => (kind, rest),
        None if is_code(line) => (line, ""),
        _ => ("", line),
    }
}

fn is_code(word: &str) -> bool {
    !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A double as text, the way servers print one: `inf`, `-inf`, `nan`, integral values below
/// 1e21 in full, very large or small magnitudes with an exponent (`1e+300`, `1e-7`), anything
/// else in the shortest decimal that reads back as the same double.
pub(crate) fn format_double(d: f64) -> String {
    if d.is_nan() {
        "nan".to_owned()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else if (9_007_199_254_740_992.0..1e21).contains(&d.abs()) {
        // Rust pads the shortest digits with zeros (`1152921504606847000` for 2^60); servers
        // print the exact integer.
        let sign = if d < 0.0 { "-" } else { "" };
        format!("{sign}{}", exact_decimal(d.abs()))
    } else if d == 0.0 || (1e-6..1e21).contains(&d.abs()) {
        d.to_string()
    } else {
        let s = format!("{d:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    }
}

/// The exact decimal digits of a non-negative integral double of at least 2^53.
pub(crate) fn exact_decimal(d: f64) -> String {
    // d = mantissa * 2^exponent, with exponent > 0 for such doubles.
    let bits = d.to_bits();
    let mut exponent = ((bits >> 52) & 0x7ff) as i32 - 1075;
    let mantissa = (bits & ((1 << 52) - 1)) | (1 << 52);
    // Little-endian limbs of nine decimal digits.
    const LIMB: u64 = 1_000_000_000;
    let mut limbs = vec![
        mantissa % LIMB,
        mantissa / LIMB % LIMB,
        mantissa / LIMB / LIMB,
    ];
    while exponent > 0 {
        let shift = exponent.min(30);
        exponent -= shift;
        let mut carry = 0u64;
        for limb in &mut limbs {
            let v = (*limb << shift) + carry;
            *limb = v % LIMB;
            carry = v / LIMB;
        }
        while carry > 0 {
            limbs.push(carry % LIMB);
            carry /= LIMB;
        }
    }
    while limbs.len() > 1 && limbs.last() == Some(&0) {
        limbs.pop();
    }
    let mut out = String::new();
    for (i, limb) in limbs.iter().rev().enumerate() {
        if i == 0 {
            out.push_str(&limb.to_string());
        } else {
            out.push_str(&format!("{limb:09}"));
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_split_into_code_and_message() {
        assert_eq!(
            split_error_line("ERR unknown command"),
            ("ERR", "unknown command")
        );
        assert_eq!(split_error_line("NOAUTH"), ("NOAUTH", ""));
        assert_eq!(
            split_error_line("MOVED 3999 127.0.0.1:6381"),
            ("MOVED", "3999 127.0.0.1:6381")
        );
        assert_eq!(split_error_line("lowercase text"), ("", "lowercase text"));
        let nested = ServerError::from_line("WRONGTYPE Operation against a key");
        assert_eq!(nested.kind, "WRONGTYPE");
        assert_eq!(nested.to_string(), "WRONGTYPE Operation against a key");
    }
}
