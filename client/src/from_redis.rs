//! [`FromRedis`]: how replies become Rust values.

use crate::{number, Error, Result, Value};
use bytes::Bytes;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, Hash};

/// A type a reply can be decoded into.
///
/// Conversions follow what servers really send, and never depend on the protocol: the same data
/// decodes to the same result (or the same kind of error) over RESP2 and RESP3.
///
/// **Numbers** are exact or an [`Error::Decode`], never a saturated or truncated value:
/// - integers and floats also decode from strings (hash fields and RESP2 scores arrive as bulk
///   strings): text is read as the number it spells — integer text exactly, floating-point text
///   (`"1.5"`, `"1e+300"`, `"1.0000000000000001e+300"`) as the double it spells, and every libc
///   spelling of infinity and NaN (`inf`, `-inf`, `Infinity`, `nan`, `-nan`, `NaN`, `nan(0x1)`);
///   spaces, hexadecimal and other text are not numbers;
/// - a double (or float text) decodes into an integer type only when it is finite, integral and
///   fits the type (`1e300` into `i128` is an error, `5.0` into `i64` is `5`);
/// - a RESP integer decodes into `f64` only when the double holds it exactly (`2^53 + 1` is an
///   error); text (and a RESP3 big number, which RESP2 sends as text) is the nearest double, as
///   `"0.1"` is, so `INCRBYFLOAT`'s `"100000000000000000000000"` reads as `1e23`; into `f32` a
///   fractional value rounds to nearest, an integral one must be exact;
/// - a RESP3 boolean is `1`/`0` (what RESP2 sends for it), as a number and as a string.
///
/// **Maps** (`HashMap`, `BTreeMap`, derived structs) and **sequences of pairs** (`Vec<(K, V)>`)
/// decode from a RESP3 map, from an array of `[key, value]` arrays (RESP3 `WITHSCORES`,
/// `WITHVALUES`, `XRANGE`, RESP2 `XREAD`) and from a flat array of alternating keys and values
/// (RESP2 `HGETALL`, `WITHSCORES`), at any depth. An array whose elements are all arrays of two
/// is read as pairs, any other array of even length as flat; so a flat array whose every key and
/// value is itself an array of two would read as pairs (no server reply has that shape).
///
/// An error reply nested in an aggregate becomes [`Error::Server`]; anything that does not fit
/// is an [`Error::Decode`] naming what was expected and what came.
///
/// `u8` is not a `FromRedis` type on its own: `Vec<u8>` is always the bytes of one string.
///
/// For your own types, derive it: [`#[derive(FromRedis)]`](macro@crate::FromRedis) decodes structs
/// from hash-like replies by field name, tuple structs by position, and enums from their names.
///
/// ```
/// use ringdis::{FromRedis, Value};
/// use std::collections::HashMap;
///
/// let n = i64::from_redis(Value::Bulk("42".into())).unwrap();
/// assert_eq!(n, 42);
///
/// let flat = Value::Array(vec!["name".into(), "ada".into(), "age".into(), "36".into()]);
/// let h: HashMap<String, String> = FromRedis::from_redis(flat).unwrap();
/// assert_eq!(h["age"], "36");
///
/// let err = i64::from_redis(Value::Bulk("abc".into())).unwrap_err();
/// assert_eq!(err.to_string(), r#"decode error: expected integer (i64), got bulk string "abc""#);
/// ```
pub trait FromRedis: Sized {
    /// How many elements of a flat list one value takes when a list of them is decoded (a flat
    /// RESP2 `[k1, v1, k2, v2]` into pairs): a tuple's or tuple struct's arity; 0 for one
    /// element each.
    #[doc(hidden)]
    const ROWS: usize = 0;

    /// Decodes one reply.
    fn from_redis(value: Value) -> Result<Self>;

    /// Decodes the elements of an aggregate into a `Vec<Self>`. The default decodes each
    /// element; pairs (2-tuples) override it so a flat RESP2 `[k1, v1, k2, v2]` and a RESP3 map
    /// both decode into `Vec<(K, V)>`.
    #[doc(hidden)]
    fn from_redis_items(items: Vec<Value>) -> Result<Vec<Self>> {
        items
            .into_iter()
            .enumerate()
            .map(|(i, v)| Self::from_redis(v).map_err(|e| e.in_field(format_args!("[{i}]"))))
            .collect()
    }

    /// Decodes the pairs of a RESP3 map into a `Vec<Self>`; only pairs accept it.
    #[doc(hidden)]
    fn from_redis_pairs(pairs: Vec<(Value, Value)>) -> Result<Vec<Self>> {
        Err(Error::decode("array", &Value::Map(pairs)))
    }

    /// Decodes a value that is a field of a derived type. The default is
    /// [`FromRedis::from_redis`]; derived types override it to leave their own name out of error
    /// paths, so a nested failure reads `User.address.zip`, not `User.address.Address.zip`.
    #[doc(hidden)]
    fn from_redis_field(value: Value) -> Result<Self> {
        Self::from_redis(value)
    }

    /// The value of a struct field that is absent from the reply: `None` (the field is
    /// required) except for `Option`, which is `None` when missing.
    #[doc(hidden)]
    fn from_redis_missing() -> Option<Self> {
        None
    }
}

/// Turns a nested error reply into `Err(Error::Server)`, passing everything else through.
#[inline]
pub(crate) fn check(value: Value) -> Result<Value> {
    match value {
        Value::Error(e) => Err(e.into()),
        v => Ok(v),
    }
}

impl FromRedis for Value {
    fn from_redis(value: Value) -> Result<Self> {
        Ok(value)
    }
}

impl FromRedis for () {
    /// Accepts any reply but a nested error, and ignores it.
    fn from_redis(value: Value) -> Result<Self> {
        check(value).map(drop)
    }
}

fn text_of(value: &Value) -> Option<&[u8]> {
    value.as_bytes()
}

macro_rules! int_from {
    ($($t:ty),*) => {$(
        impl FromRedis for $t {
            /// An integer, a boolean (`1`/`0`), a double with no fractional part, or text
            /// spelling one of those; it must fit the type exactly (never saturated).
            fn from_redis(value: Value) -> Result<Self> {
                let value = check(value)?;
                number::integer(&value)
                    .and_then(number::Integer::to::<$t>)
                    .ok_or_else(|| Error::decode(concat!("integer (", stringify!($t), ")"), &value))
            }
        }
    )*};
}
int_from!(i8, i16, i32, i64, i128, isize, u16, u32, u64, u128, usize);

impl FromRedis for f64 {
    /// A double (`inf`, `-inf` and NaN included), text in any spelling of one, or an integer
    /// the double holds exactly.
    fn from_redis(value: Value) -> Result<Self> {
        let value = check(value)?;
        number::float(&value).ok_or_else(|| Error::decode("float (f64)", &value))
    }
}

impl FromRedis for f32 {
    /// As `f64`, then: a fractional value rounds to the nearest `f32`; an integral value must be
    /// held exactly (`16777217` and `1e300` are refused), whichever reply type it came as.
    fn from_redis(value: Value) -> Result<Self> {
        let value = check(value)?;
        number::float32(&value).ok_or_else(|| Error::decode("float (f32)", &value))
    }
}

impl FromRedis for bool {
    /// `true` from boolean true, a non-zero integer, `"1"`/`"true"` or a `+OK` status; `false`
    /// from boolean false, `0`, `"0"`/`"false"` and nil (a `SET … NX` that did not set). A
    /// double must be `1` or `0`, as its RESP2 text `"1"`/`"0"` must.
    fn from_redis(value: Value) -> Result<Self> {
        let value = check(value)?;
        match &value {
            Value::Boolean(b) => Ok(*b),
            Value::Int(i) => Ok(*i != 0),
            Value::Double(d) if *d == 1.0 || *d == 0.0 => Ok(*d == 1.0),
            Value::Nil => Ok(false),
            Value::Simple(s) if s == "OK" => Ok(true),
            v => match text_of(v) {
                Some(b"1") | Some(b"true") => Ok(true),
                Some(b"0") | Some(b"false") => Ok(false),
                _ => Err(Error::decode("boolean", &value)),
            },
        }
    }
}

impl FromRedis for String {
    /// Any string-like reply (UTF-8 checked), integers in decimal, doubles as servers print them
    /// (`1.5`, `1e+300`, `inf`, `nan`) and booleans as `1`/`0` (what RESP2 sends for them).
    fn from_redis(value: Value) -> Result<Self> {
        match check(value)? {
            Value::Simple(s) | Value::BigNumber(s) => Ok(s.into_owned()),
            Value::Int(i) => Ok(i.to_string()),
            Value::Double(d) => Ok(crate::value::format_double(d)),
            Value::Boolean(b) => Ok(u8::from(b).to_string()),
            v @ (Value::Bulk(_) | Value::Verbatim { .. }) => {
                let bytes = text_of(&v).unwrap_or_default();
                match std::str::from_utf8(bytes) {
                    Ok(s) => Ok(s.to_owned()),
                    Err(_) => Err(Error::decode("UTF-8 string", &v)),
                }
            }
            v => Err(Error::decode("string", &v)),
        }
    }
}

impl FromRedis for Bytes {
    /// Any string-like reply, without a copy for bulk strings; numbers and booleans as `String`
    /// spells them.
    fn from_redis(value: Value) -> Result<Self> {
        match check(value)? {
            Value::Bulk(b) => Ok(b),
            Value::Verbatim { text, .. } => Ok(text),
            Value::Simple(s) | Value::BigNumber(s) => Ok(text_bytes(s)),
            Value::Int(i) => Ok(Bytes::from(i.to_string())),
            Value::Double(d) => Ok(Bytes::from(crate::value::format_double(d))),
            Value::Boolean(b) => Ok(Bytes::from_static(if b { b"1" } else { b"0" })),
            v => Err(Error::decode("bytes", &v)),
        }
    }
}

/// The bytes of a simple string or big number: no copy for one borrowed from a static.
fn text_bytes(s: Cow<'static, str>) -> Bytes {
    match s {
        Cow::Borrowed(s) => Bytes::from_static(s.as_bytes()),
        Cow::Owned(s) => Bytes::from(s),
    }
}

impl FromRedis for Vec<u8> {
    fn from_redis(value: Value) -> Result<Self> {
        Bytes::from_redis(value).map(Vec::from)
    }
}

impl<T: FromRedis> FromRedis for Option<T> {
    /// `None` for nil, otherwise the inner type.
    fn from_redis(value: Value) -> Result<Self> {
        match value {
            Value::Nil => Ok(None),
            v => T::from_redis(v).map(Some),
        }
    }

    fn from_redis_field(value: Value) -> Result<Self> {
        match value {
            Value::Nil => Ok(None),
            v => T::from_redis_field(v).map(Some),
        }
    }

    fn from_redis_missing() -> Option<Self> {
        Some(None)
    }
}

impl<T: FromRedis> FromRedis for Box<T> {
    fn from_redis(value: Value) -> Result<Self> {
        T::from_redis(value).map(Box::new)
    }

    fn from_redis_field(value: Value) -> Result<Self> {
        T::from_redis_field(value).map(Box::new)
    }
}

impl FromRedis for std::borrow::Cow<'_, str> {
    /// As for `String` (always owned), so a struct with `Cow<'a, str>` fields can be written
    /// from borrowed text and read back into the same type.
    fn from_redis(value: Value) -> Result<Self> {
        String::from_redis(value).map(std::borrow::Cow::Owned)
    }
}

impl<T: FromRedis> FromRedis for Vec<T> {
    /// From an array, set or push (nil is empty); from a map when `T` is a pair.
    fn from_redis(value: Value) -> Result<Self> {
        match check(value)? {
            Value::Array(items) | Value::Set(items) | Value::Push(items) => {
                T::from_redis_items(items)
            }
            Value::Map(pairs) => T::from_redis_pairs(pairs),
            Value::Nil => Ok(Vec::new()),
            v => Err(Error::decode("array", &v)),
        }
    }
}

/// True when `items` is an array of `[key, value]` pairs (the RESP3 shape of `WITHSCORES`,
/// `WITHVALUES`, `XRANGE` entries and RESP2 `XREAD`): not empty, and every element an array of
/// two. Otherwise an array read as a map is flat (`[k1, v1, k2, v2]`, the RESP2 shape).
///
/// The rule is what breaks the one ambiguity: a flat array whose keys *and* values are all
/// arrays of two (a map from pairs to pairs) reads as an array of pairs. No server reply has
/// that shape.
pub(crate) fn is_array_of_pairs(items: &[Value]) -> bool {
    !items.is_empty()
        && items
            .iter()
            .all(|v| matches!(v, Value::Array(pair) if pair.len() == 2))
}

/// What a map was expected to be, for decode errors.
pub(crate) const MAP_SHAPES: &str =
    "map (or array of [key, value] pairs, or flat array of keys and values)";

/// The `key value` pairs of a map reply: a RESP3 map, an array of `[key, value]` pairs, or a
/// flat array of even length ([`is_array_of_pairs`] decides between the last two); nil is none.
pub(crate) fn into_pairs(value: Value) -> Result<Vec<(Value, Value)>> {
    match check(value)? {
        Value::Map(pairs) => Ok(pairs),
        Value::Array(items) if is_array_of_pairs(&items) => Ok(items
            .into_iter()
            .filter_map(|pair| match pair {
                Value::Array(kv) => {
                    let mut kv = kv.into_iter();
                    Some((kv.next()?, kv.next()?))
                }
                _ => None,
            })
            .collect()),
        Value::Array(items) if items.len() % 2 == 0 => {
            let mut pairs = Vec::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            Ok(pairs)
        }
        Value::Nil => Ok(Vec::new()),
        v => Err(Error::decode(MAP_SHAPES, &v)),
    }
}

/// The path segment of a map value in a decode error: `[key]` with the key's text (the same
/// for a RESP2 bulk and a RESP3 simple string), `[5]` for an integer key, else what the key is.
pub(crate) fn key_segment(key: &Value) -> String {
    match key {
        Value::Int(n) => format!("[{n}]"),
        k => match k.as_bytes().map(std::str::from_utf8) {
            Some(Ok(text)) => format!("[{text}]"),
            _ => format!("[{}]", k.describe()),
        },
    }
}

fn decode_pair<K: FromRedis, V: FromRedis>(k: Value, v: Value) -> Result<(K, V)> {
    let segment = key_segment(&k);
    let key = K::from_redis(k).map_err(|e| e.in_field(format_args!("{segment}<key>")))?;
    let val = V::from_redis(v).map_err(|e| e.in_field(&segment))?;
    Ok((key, val))
}

impl<K: FromRedis + Eq + Hash, V: FromRedis, S: BuildHasher + Default> FromRedis
    for HashMap<K, V, S>
{
    fn from_redis(value: Value) -> Result<Self> {
        into_pairs(value)?
            .into_iter()
            .map(|(k, v)| decode_pair(k, v))
            .collect()
    }
}

impl<K: FromRedis + Ord, V: FromRedis> FromRedis for BTreeMap<K, V> {
    fn from_redis(value: Value) -> Result<Self> {
        into_pairs(value)?
            .into_iter()
            .map(|(k, v)| decode_pair(k, v))
            .collect()
    }
}

fn set_items(value: Value) -> Result<Vec<Value>> {
    match check(value)? {
        Value::Set(items) | Value::Array(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        v => Err(Error::decode("set", &v)),
    }
}

impl<T: FromRedis + Eq + Hash, S: BuildHasher + Default> FromRedis for HashSet<T, S> {
    fn from_redis(value: Value) -> Result<Self> {
        Ok(T::from_redis_items(set_items(value)?)?
            .into_iter()
            .collect())
    }
}

impl<T: FromRedis + Ord> FromRedis for BTreeSet<T> {
    fn from_redis(value: Value) -> Result<Self> {
        Ok(T::from_redis_items(set_items(value)?)?
            .into_iter()
            .collect())
    }
}

macro_rules! tuple_from {
    ($n:literal; $($i:tt $t:ident),+) => {
        impl<$($t: FromRedis),+> FromRedis for ($($t,)+) {
            const ROWS: usize = $n;

            /// From an array (or set) of exactly this many elements.
            fn from_redis(value: Value) -> Result<Self> {
                match check(value)? {
                    Value::Array(items) | Value::Set(items) | Value::Push(items) if items.len() == $n => {
                        let mut it = items.into_iter();
                        Ok(($(
                            $t::from_redis(it.next().unwrap_or(Value::Nil))
                                .map_err(|e| e.in_field(format_args!("[{}]", $i)))?,
                        )+))
                    }
                    v => Err(Error::decode(concat!("array of ", $n), &v)),
                }
            }

            /// Elements that are themselves aggregates decode one tuple each; a flat list of
            /// scalars is cut into tuples of this size (RESP2 `WITHSCORES`, `HGETALL`).
            #[allow(clippy::modulo_one)] // the 1-tuple returns before the modulo
            fn from_redis_items(items: Vec<Value>) -> Result<Vec<Self>> {
                let nested = items.iter().all(|v| matches!(v, Value::Array(_) | Value::Set(_) | Value::Nil));
                if nested || $n == 1 {
                    return items.into_iter().enumerate()
                        .map(|(i, v)| Self::from_redis(v).map_err(|e| e.in_field(format_args!("[{i}]"))))
                        .collect();
                }
                if items.len() % $n != 0 {
                    return Err(Error::decode(
                        concat!("flat array with a multiple of ", $n, " elements"),
                        &Value::Array(items),
                    ));
                }
                let mut out = Vec::with_capacity(items.len() / $n);
                let mut it = items.into_iter();
                let mut row = 0usize;
                while it.len() > 0 {
                    out.push(($(
                        $t::from_redis(it.next().unwrap_or(Value::Nil))
                            .map_err(|e| e.in_field(format_args!("[{row}][{}]", $i)))?,
                    )+));
                    row += 1;
                }
                Ok(out)
            }

            /// One tuple per pair, numbered as the rows of the RESP2 flat form are.
            fn from_redis_pairs(pairs: Vec<(Value, Value)>) -> Result<Vec<Self>> {
                pairs
                    .into_iter()
                    .enumerate()
                    .map(|(i, (k, v))| {
                        Self::from_redis(Value::Array(vec![k, v]))
                            .map_err(|e| e.in_field(format_args!("[{i}]")))
                    })
                    .collect()
            }
        }
    };
}
tuple_from!(1; 0 A);
tuple_from!(2; 0 A, 1 B);
tuple_from!(3; 0 A, 1 B, 2 C);
tuple_from!(4; 0 A, 1 B, 2 C, 3 D);
tuple_from!(5; 0 A, 1 B, 2 C, 3 D, 4 E);
tuple_from!(6; 0 A, 1 B, 2 C, 3 D, 4 E, 5 F);
tuple_from!(7; 0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G);
tuple_from!(8; 0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H);
tuple_from!(9; 0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I);
tuple_from!(10; 0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J);
tuple_from!(11; 0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K);
tuple_from!(12; 0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K, 11 L);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::map_shapes;
    use crate::ServerError;

    fn bulk(s: &str) -> Value {
        Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    /// Found by the `decode_value` fuzz target on a real RESP3 `ZSCORE` reply of `1e300`: it
    /// decoded into `i128` (and `u128`) as `i128::MAX`.
    #[test]
    fn doubles_decode_to_the_integer_they_are_or_not_at_all() {
        for d in [1e300, -1e300, f64::MAX] {
            let e = i128::from_redis(Value::Double(d)).unwrap_err();
            assert!(matches!(e, Error::Decode { .. }), "{d}: {e:?}");
            assert!(u128::from_redis(Value::Double(d)).is_err(), "{d}");
        }
        // 2^127 is one past i128::MAX, and a u128 exactly.
        let two_127 = 170141183460469231731687303715884105728.0;
        assert!(i128::from_redis(Value::Double(two_127)).is_err());
        assert_eq!(u128::from_redis(Value::Double(two_127)).unwrap(), 1 << 127);
        assert_eq!(
            i128::from_redis(Value::Double(-170141183460469231731687303715884105728.0)).unwrap(),
            i128::MIN
        );
        assert_eq!(
            i128::from_redis(Value::Double(1e20)).unwrap(),
            100_000_000_000_000_000_000
        );
    }

    #[test]
    fn numbers_from_every_shape() {
        assert_eq!(i64::from_redis(Value::Int(-3)).unwrap(), -3);
        assert_eq!(u16::from_redis(bulk("65535")).unwrap(), 65535);
        assert!(u16::from_redis(bulk("65536")).is_err());
        assert!(u32::from_redis(Value::Int(-1)).is_err());
        assert_eq!(i64::from_redis(Value::Double(3.0)).unwrap(), 3);
        assert!(i64::from_redis(Value::Double(3.5)).is_err());
        assert_eq!(
            i128::from_redis(Value::BigNumber(
                "170141183460469231731687303715884105727".into()
            ))
            .unwrap(),
            i128::MAX
        );
        assert_eq!(f64::from_redis(bulk("1.5")).unwrap(), 1.5);
        assert_eq!(f64::from_redis(bulk("-inf")).unwrap(), f64::NEG_INFINITY);
        assert_eq!(f64::from_redis(Value::Int(2)).unwrap(), 2.0);
        assert_eq!(f32::from_redis(Value::Double(0.5)).unwrap(), 0.5);
        let e = i64::from_redis(Value::Nil).unwrap_err();
        assert_eq!(
            e.to_string(),
            "decode error: expected integer (i64), got nil"
        );
    }

    #[test]
    fn strings_and_bytes() {
        assert_eq!(
            String::from_redis(Value::Simple("OK".into())).unwrap(),
            "OK"
        );
        assert_eq!(String::from_redis(Value::Int(5)).unwrap(), "5");
        assert_eq!(
            String::from_redis(Value::Verbatim {
                format: "txt".into(),
                text: "hi".into()
            })
            .unwrap(),
            "hi"
        );
        let e = String::from_redis(Value::Bulk(Bytes::from_static(b"\xff"))).unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "{e}");
        assert_eq!(Vec::<u8>::from_redis(bulk("ab")).unwrap(), b"ab");
        assert_eq!(Bytes::from_redis(bulk("ab")).unwrap(), "ab");
        assert!(String::from_redis(Value::Array(vec![])).is_err());
    }

    #[test]
    fn bools_options_unit() {
        assert!(bool::from_redis(Value::Boolean(true)).unwrap());
        assert!(bool::from_redis(Value::Int(1)).unwrap());
        assert!(!bool::from_redis(Value::Nil).unwrap());
        assert!(bool::from_redis(Value::Simple("OK".into())).unwrap());
        assert!(bool::from_redis(bulk("maybe")).is_err());
        // A double reads as its RESP2 text would.
        assert!(bool::from_redis(Value::Double(1.0)).unwrap());
        assert!(!bool::from_redis(Value::Double(0.0)).unwrap());
        assert!(bool::from_redis(Value::Double(0.5)).is_err());
        assert!(bool::from_redis(bulk("0.5")).is_err());
        assert_eq!(Option::<i64>::from_redis(Value::Nil).unwrap(), None);
        assert_eq!(Option::<i64>::from_redis(Value::Int(1)).unwrap(), Some(1));
        assert!(<()>::from_redis(Value::Array(vec![])).is_ok());
    }

    #[test]
    fn nested_errors_become_server_errors() {
        let v = Value::Array(vec![
            Value::Int(1),
            Value::Error(ServerError {
                kind: "WRONGTYPE".into(),
                message: "no".into(),
            }),
        ]);
        let e = Vec::<i64>::from_redis(v).unwrap_err();
        assert_eq!(e.server_kind(), Some("WRONGTYPE"));
    }

    #[test]
    fn collections() {
        let arr = Value::Array(vec![Value::Int(1), bulk("2")]);
        assert_eq!(Vec::<i64>::from_redis(arr.clone()).unwrap(), [1, 2]);
        assert_eq!(
            Vec::<i64>::from_redis(Value::Nil).unwrap(),
            Vec::<i64>::new()
        );
        let set: BTreeSet<i64> =
            FromRedis::from_redis(Value::Set(vec![Value::Int(2), Value::Int(1)])).unwrap();
        assert_eq!(set.into_iter().collect::<Vec<_>>(), [1, 2]);
        let hs: HashSet<String> = FromRedis::from_redis(arr.clone()).unwrap();
        assert_eq!(hs.len(), 2);

        let map = Value::Map(vec![(bulk("a"), Value::Int(1)), (bulk("b"), Value::Int(2))]);
        let flat = Value::Array(vec![bulk("a"), bulk("1"), bulk("b"), bulk("2")]);
        for v in [map.clone(), flat.clone()] {
            let h: HashMap<String, i64> = FromRedis::from_redis(v.clone()).unwrap();
            assert_eq!(h["b"], 2);
            let b: BTreeMap<String, i64> = FromRedis::from_redis(v.clone()).unwrap();
            assert_eq!(b.len(), 2);
            let pairs: Vec<(String, i64)> = FromRedis::from_redis(v).unwrap();
            assert_eq!(pairs, [("a".to_owned(), 1), ("b".to_owned(), 2)]);
        }
        let e = HashMap::<String, i64>::from_redis(Value::Array(vec![bulk("a")])).unwrap_err();
        assert!(e.to_string().contains("map"), "{e}");
        let e = HashMap::<String, i64>::from_redis(Value::Array(vec![bulk("a"), bulk("x")]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"decode error: [a]: expected integer (i64), got bulk string "x""#
        );

        // RESP3 WITHSCORES: array of [member, score] pairs.
        let nested = Value::Array(vec![
            Value::Array(vec![bulk("m1"), Value::Double(1.0)]),
            Value::Array(vec![bulk("m2"), Value::Double(2.5)]),
        ]);
        let z: Vec<(String, f64)> = FromRedis::from_redis(nested).unwrap();
        assert_eq!(z[1], ("m2".to_owned(), 2.5));
    }

    #[test]
    fn tuples() {
        let v = Value::Array(vec![Value::Int(1), bulk("x"), Value::Nil]);
        let t: (i64, String, Option<String>) = FromRedis::from_redis(v.clone()).unwrap();
        assert_eq!(t, (1, "x".to_owned(), None));
        let e = <(i64, i64)>::from_redis(v.clone()).unwrap_err();
        assert!(e.to_string().contains("array of 2"), "{e}");
        let e = <(i64, i64, i64)>::from_redis(v).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"decode error: [1]: expected integer (i64), got bulk string "x""#
        );
        let twelve = Value::Array((0..12).map(Value::Int).collect());
        let t: (i8, i8, i8, i8, i8, i8, i8, i8, i8, i8, i8, i64) =
            FromRedis::from_redis(twelve).unwrap();
        assert_eq!(t.11, 11);
    }

    fn is_decode<T: std::fmt::Debug>(r: Result<T>) -> bool {
        matches!(r, Err(Error::Decode { .. }))
    }

    /// Every integer type at its edges, from every reply type a number arrives as.
    #[test]
    #[allow(irrefutable_let_patterns)] // `i64::try_from(i64)` in the macro
    fn integers_at_the_edges_of_every_width_from_every_shape() {
        macro_rules! edges {
            ($($t:ty),*) => {$(
                for n in [<$t>::MIN, <$t>::MAX, 0 as $t] {
                    let text = n.to_string();
                    assert_eq!(<$t>::from_redis(bulk(&text)).unwrap(), n, "{text}");
                    assert_eq!(<$t>::from_redis(Value::BigNumber(text.clone().into())).unwrap(), n);
                    if let Ok(i) = i64::try_from(n) {
                        assert_eq!(<$t>::from_redis(Value::Int(i)).unwrap(), n);
                    }
                }
                let past_max = (<$t>::MAX as u128).checked_add(1).map(|p| p.to_string());
                let past_min = (<$t>::MIN as i128).checked_sub(1).map(|p| p.to_string());
                for past in past_max.iter().chain(past_min.iter()) {
                    assert!(is_decode(<$t>::from_redis(bulk(past))), "{} {past}", stringify!($t));
                    assert!(is_decode(<$t>::from_redis(Value::BigNumber(past.clone().into()))));
                    if let Ok(i) = past.parse::<i64>() {
                        assert!(is_decode(<$t>::from_redis(Value::Int(i))), "{past}");
                    }
                }
                for bad in [Value::Double(1e300), Value::Double(-1e300), Value::Double(f64::INFINITY),
                            Value::Double(f64::NEG_INFINITY), Value::Double(f64::NAN), Value::Double(0.5),
                            bulk("1e300"), bulk("1e+300"), bulk("inf"), bulk("-inf"), bulk("nan"),
                            bulk("0.5"), bulk(" 5"), bulk("5 "), bulk("0x5"), bulk(""), bulk("five")] {
                    assert!(is_decode(<$t>::from_redis(bad.clone())), "{} {bad:?}", stringify!($t));
                }
                assert_eq!(<$t>::from_redis(Value::Double(5.0)).unwrap(), 5 as $t);
                assert_eq!(<$t>::from_redis(bulk("5.0")).unwrap(), 5 as $t);
                assert_eq!(<$t>::from_redis(bulk("+5")).unwrap(), 5 as $t);
                assert_eq!(<$t>::from_redis(Value::Boolean(true)).unwrap(), 1 as $t);
            )*};
        }
        edges!(i8, i16, i32, i64, i128, isize, u16, u32, u64, u128, usize);
        // The issue's example: a score of 1e300 is no i128, in either protocol.
        assert!(is_decode(i128::from_redis(Value::Double(1e300))));
        assert!(is_decode(i128::from_redis(bulk("1.0000000000000001e+300"))));
        // No saturation at 2^63 or 2^127.
        assert!(is_decode(i64::from_redis(Value::Double(
            9223372036854775808.0
        ))));
        assert_eq!(
            i64::from_redis(Value::Double(-9223372036854775808.0)).unwrap(),
            i64::MIN
        );
        assert!(is_decode(i128::from_redis(Value::Double(
            1.7014118346046923e38
        ))));
        assert_eq!(
            u128::from_redis(Value::Double(1.7014118346046923e38)).unwrap(),
            1 << 127
        );
        assert!(is_decode(u64::from_redis(Value::Double(-1.0))));
    }

    #[test]
    fn floats_are_exact_from_integers_and_read_every_spelling() {
        assert_eq!(
            f64::from_redis(Value::Int(1 << 53)).unwrap(),
            9007199254740992.0
        );
        assert!(is_decode(f64::from_redis(Value::Int((1 << 53) + 1))));
        assert!(is_decode(f64::from_redis(Value::Int(i64::MAX))));
        assert_eq!(
            f64::from_redis(bulk("9007199254740993")).unwrap(),
            9007199254740992.0
        );
        assert_eq!(
            f64::from_redis(Value::BigNumber("9007199254740993".into())).unwrap(),
            9007199254740992.0
        );
        assert_eq!(f64::from_redis(bulk("1e+300")).unwrap(), 1e300);
        assert_eq!(f64::from_redis(Value::Double(1e300)).unwrap(), 1e300);
        for s in ["inf", "+inf", "Inf", "INFINITY", "infinity"] {
            assert_eq!(f64::from_redis(bulk(s)).unwrap(), f64::INFINITY, "{s}");
            assert_eq!(f32::from_redis(bulk(s)).unwrap(), f32::INFINITY, "{s}");
        }
        for s in ["-inf", "-Inf", "-INFINITY"] {
            assert_eq!(f64::from_redis(bulk(s)).unwrap(), f64::NEG_INFINITY, "{s}");
        }
        for s in ["nan", "-nan", "NaN", "nan(0x1)"] {
            assert!(f64::from_redis(bulk(s)).unwrap().is_nan(), "{s}");
            assert!(f32::from_redis(bulk(s)).unwrap().is_nan(), "{s}");
        }
        assert_eq!(f64::from_redis(Value::Boolean(true)).unwrap(), 1.0);
        assert!(is_decode(f32::from_redis(Value::Double(1e300))));
        assert!(is_decode(f32::from_redis(bulk("1e+300"))));
        assert_eq!(f32::from_redis(Value::Double(0.1)).unwrap(), 0.1f32);
        for bad in [
            bulk(" 1"),
            bulk("1e400"),
            bulk("0x1p3"),
            bulk(""),
            Value::Nil,
        ] {
            assert!(is_decode(f64::from_redis(bad.clone())), "{bad:?}");
        }
        let e = f64::from_redis(bulk("abc")).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"decode error: expected float (f64), got bulk string "abc""#
        );
    }

    #[test]
    fn numbers_as_strings_read_as_servers_print_them() {
        let s = |v: Value| String::from_redis(v).unwrap();
        assert_eq!(s(Value::Double(1e300)), "1e+300");
        assert_eq!(s(Value::Double(1.5)), "1.5");
        assert_eq!(s(Value::Double(f64::INFINITY)), "inf");
        assert_eq!(s(Value::Double(f64::NAN)), "nan");
        assert_eq!(s(Value::Boolean(true)), "1");
        assert_eq!(s(Value::Boolean(false)), "0");
        assert_eq!(Bytes::from_redis(Value::Boolean(true)).unwrap(), "1");
        let e = i128::from_redis(Value::Double(1e300)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "decode error: expected integer (i128), got double 1e+300"
        );
    }

    #[test]
    fn maps_and_pairs_from_every_shape_at_every_depth() {
        let scores = [
            ("a", Value::Double(1.0)),
            ("b", bulk("2.5")),
            ("c", Value::Int(3)),
        ];
        let want: Vec<(String, f64)> =
            vec![("a".into(), 1.0), ("b".into(), 2.5), ("c".into(), 3.0)];
        for shape in map_shapes(&scores) {
            let h: HashMap<String, f64> = FromRedis::from_redis(shape.clone()).unwrap();
            assert_eq!(h.len(), 3, "{shape:?}");
            assert_eq!(h["b"], 2.5);
            let b: BTreeMap<String, f64> = FromRedis::from_redis(shape.clone()).unwrap();
            assert_eq!(b.into_iter().collect::<Vec<_>>(), want);
            let v: Vec<(String, f64)> = FromRedis::from_redis(shape.clone()).unwrap();
            assert_eq!(v, want, "{shape:?}");
        }
        // Two pairs: a flat array of 4 and an array of 2 pairs are told apart.
        for shape in map_shapes(&scores[..2]) {
            let h: HashMap<String, f64> = FromRedis::from_redis(shape.clone()).unwrap();
            assert_eq!(h.len(), 2, "{shape:?}");
        }
        // Nested: every inner shape inside every outer shape.
        for inner in map_shapes(&scores) {
            for outer in map_shapes(&[("x", inner.clone()), ("y", inner.clone())]) {
                let m: HashMap<String, Vec<(String, f64)>> =
                    FromRedis::from_redis(outer.clone()).unwrap();
                assert_eq!(m["y"], want, "{outer:?}");
                let m: BTreeMap<String, HashMap<String, f64>> =
                    FromRedis::from_redis(outer.clone()).unwrap();
                assert_eq!(m["x"]["c"], 3.0, "{outer:?}");
                let v: Vec<(String, BTreeMap<String, f64>)> =
                    FromRedis::from_redis(outer.clone()).unwrap();
                assert_eq!(v[1].1["a"], 1.0, "{outer:?}");
            }
            let list = Value::Array(vec![inner.clone(), inner.clone()]);
            let v: Vec<HashMap<String, f64>> = FromRedis::from_redis(list).unwrap();
            assert_eq!(v.len(), 2);
            assert_eq!(v[1]["b"], 2.5);
        }
        // Derived structs read every shape too.
        #[derive(crate::FromRedis, Debug, PartialEq)]
        struct Abc {
            a: f64,
            b: f32,
            c: u16,
        }
        for shape in map_shapes(&scores) {
            let abc = Abc::from_redis(shape.clone()).unwrap();
            assert_eq!(
                abc,
                Abc {
                    a: 1.0,
                    b: 2.5,
                    c: 3
                },
                "{shape:?}"
            );
            let nested: HashMap<String, Abc> =
                FromRedis::from_redis(Value::Array(vec![Value::Array(vec![bulk("k"), shape])]))
                    .unwrap();
            assert_eq!(nested["k"].c, 3);
        }
        let e = Abc::from_redis(Value::Map(vec![
            (bulk("a"), Value::Double(1e300)),
            (bulk("b"), Value::Double(1e300)),
            (bulk("c"), Value::Int(3)),
        ]))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "decode error: Abc.b: expected float (f32), got double 1e+300"
        );
        // Odd flat arrays and scalars are not maps.
        let e = HashMap::<String, f64>::from_redis(Value::Array(vec![bulk("a")])).unwrap_err();
        assert!(e.to_string().contains("array of [key, value] pairs"), "{e}");
        assert!(is_decode(HashMap::<String, f64>::from_redis(bulk("a"))));
        // A pair that is not two elements is no pair: the array is read flat.
        let three = Value::Array(vec![
            Value::Array(vec![bulk("a"), bulk("1")]),
            Value::Array(vec![bulk("b"), bulk("2"), bulk("x")]),
        ]);
        assert!(is_decode(HashMap::<String, String>::from_redis(three)));
    }

    /// A decode error's path has one segment per level, whatever the position and the
    /// protocol: `.field` for a struct field, `[i]` for an element (of a list, a tuple, a tuple
    /// struct, a row of a flat RESP2 list or of a RESP3 map), `[key]` for a map value; a derived
    /// type names itself where it is entered without a name of its own (the top, an element, a
    /// map value), never after a field name.
    #[test]
    fn decode_paths_read_the_same_in_every_position() {
        #[derive(crate::FromRedis, Debug)]
        #[allow(dead_code)]
        struct Reading {
            temp: f64,
        }
        #[derive(crate::FromRedis, Debug)]
        #[allow(dead_code)]
        struct Entry {
            name: String,
            reading: Reading,
        }
        #[derive(crate::FromRedis, Debug)]
        #[allow(dead_code)]
        struct Sample(String, Reading);
        #[derive(crate::FromRedis, Debug)]
        #[allow(dead_code)]
        struct Wrapped(Reading);
        #[derive(crate::FromRedis, Debug)]
        #[allow(dead_code)]
        struct Row((String, Reading));

        fn path<T: FromRedis + std::fmt::Debug>(v: Value) -> String {
            match T::from_redis(v) {
                Err(Error::Decode { path, .. }) => path,
                other => panic!("{other:?}"),
            }
        }
        let bulk = |s: &str| Value::Bulk(Bytes::copy_from_slice(s.as_bytes()));
        let simple = |s: &str| Value::Simple(s.to_owned().into());
        let reading = |t: &str| Value::Map(vec![(simple("temp"), bulk(t))]);
        let flat_reading = |t: &str| Value::Array(vec![bulk("temp"), bulk(t)]);
        let bad = || reading("hot");

        assert_eq!(path::<Reading>(bad()), "Reading.temp");
        let list = |bad: Value| Value::Array(vec![reading("1"), reading("2"), bad]);
        assert_eq!(path::<Vec<Reading>>(list(bad())), "[2].Reading.temp");
        assert_eq!(
            path::<Vec<Reading>>(list(flat_reading("hot"))),
            "[2].Reading.temp",
            "RESP2"
        );

        let entry =
            |r: Value| Value::Map(vec![(simple("name"), bulk("n")), (simple("reading"), r)]);
        assert_eq!(path::<Entry>(entry(bad())), "Entry.reading.temp");
        let entries = Value::Array(vec![entry(reading("1")), entry(reading("2")), entry(bad())]);
        assert_eq!(path::<Vec<Entry>>(entries), "[2].Entry.reading.temp");

        // A tuple struct: the same at the top and in every form of a list.
        let sample = |r: Value| Value::Array(vec![bulk("s"), r]);
        assert_eq!(path::<Sample>(sample(bad())), "Sample[1].temp");
        let nested = Value::Array(vec![
            sample(reading("1")),
            sample(reading("2")),
            sample(bad()),
        ]);
        assert_eq!(path::<Vec<Sample>>(nested), "[2].Sample[1].temp");
        let flat = Value::Array(vec![
            bulk("a"),
            reading("1"),
            bulk("b"),
            reading("2"),
            bulk("c"),
            bad(),
        ]);
        assert_eq!(
            path::<Vec<Sample>>(flat.clone()),
            "[2].Sample[1].temp",
            "RESP2"
        );
        let map = Value::Map(vec![
            (bulk("a"), reading("1")),
            (bulk("b"), reading("2")),
            (bulk("c"), bad()),
        ]);
        assert_eq!(
            path::<Vec<Sample>>(map.clone()),
            "[2].Sample[1].temp",
            "RESP3"
        );

        // A newtype reads as itself, at the top and in a list, whatever it wraps.
        assert_eq!(path::<Wrapped>(bad()), "Wrapped.temp");
        assert_eq!(path::<Vec<Wrapped>>(list(bad())), "[2].Wrapped.temp");
        assert_eq!(path::<Row>(sample(bad())), "Row[1].Reading.temp");
        assert_eq!(
            path::<Vec<Row>>(flat.clone()),
            "[2].Row[1].Reading.temp",
            "RESP2"
        );
        assert_eq!(
            path::<Vec<Row>>(map.clone()),
            "[2].Row[1].Reading.temp",
            "RESP3"
        );

        // A plain tuple: element 1 of row 2, the derived type entered there names itself.
        assert_eq!(path::<Vec<(String, Reading)>>(flat), "[2][1].Reading.temp");
        assert_eq!(
            path::<Vec<(String, Reading)>>(map.clone()),
            "[2][1].Reading.temp"
        );

        // A map value: its key, the same for a RESP2 bulk and a RESP3 simple string.
        assert_eq!(path::<HashMap<String, Reading>>(map), "[c].Reading.temp");
        let resp3 = Value::Map(vec![(simple("c"), bad())]);
        assert_eq!(path::<BTreeMap<String, Reading>>(resp3), "[c].Reading.temp");
        let int_keys = Value::Map(vec![(Value::Int(7), bad())]);
        assert_eq!(path::<HashMap<i64, Reading>>(int_keys), "[7].Reading.temp");
        let nested_map = Value::Map(vec![(
            simple("x"),
            Value::Map(vec![(simple("c"), entry(bad()))]),
        )]);
        assert_eq!(
            path::<HashMap<String, HashMap<String, Entry>>>(nested_map),
            "[x][c].Entry.reading.temp"
        );
    }
}
