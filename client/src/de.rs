//! `&Value` as a `serde::Deserializer` (feature `serde`), and [`Serde`], a reply type for any
//! `Deserialize` type.

use crate::from_redis::{is_array_of_pairs, MAP_SHAPES};
use crate::{number, Error, FromRedis, Result, Value};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use std::borrow::Cow;
use std::fmt;

/// Any `serde::Deserialize` type as a reply type, through `&Value`'s `Deserializer` (feature
/// `serde`).
///
/// Decoding follows the same rules as [`FromRedis`], so it does not depend on the protocol:
/// numbers and booleans are also read from strings (hash fields are strings) and are exact or a
/// decode error; structs and maps read a RESP3 map, an array of `[key, value]` pairs or a RESP2
/// flat array; a sequence of tuples (`Vec<(K, V)>`) reads an array of arrays, a flat array (cut
/// into tuples) or a RESP3 map; `Option`s are `None` for nil, and fieldless enums read their
/// name.
///
/// ```
/// use ringdis::{FromRedis, Serde, Value};
/// use serde::Deserialize;
///
/// #[derive(Deserialize, Debug, PartialEq)]
/// #[serde(rename_all = "lowercase")]
/// enum Role { Master, Replica }
///
/// #[derive(Deserialize, Debug)]
/// struct Node { role: Role, port: u16, tags: Option<String> }
///
/// // A RESP2 `HGETALL`: a flat array of field/value strings.
/// let reply = Value::Array(vec!["role".into(), "replica".into(), "port".into(), "6380".into()]);
/// let Serde(node) = Serde::<Node>::from_redis(reply)?;
/// assert_eq!((node.role, node.port, node.tags), (Role::Replica, 6380, None));
///
/// // `&Value` is a `Deserializer` on its own too.
/// let port = u16::deserialize(&Value::Bulk("6380".into()))?;
/// assert_eq!(port, 6380);
/// # Ok::<(), ringdis::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub struct Serde<T>(pub T);

impl<T> Serde<T> {
    /// The wrapped value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned> FromRedis for Serde<T> {
    fn from_redis(value: Value) -> Result<Self> {
        T::deserialize(&value).map(Serde)
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl de::Error for Error {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        Error::Decode {
            path: String::new(),
            expected: Cow::Owned(msg.to_string()),
            got: String::new(),
        }
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Error::Decode {
            path: String::new(),
            expected: Cow::Owned(exp.to_string()),
            got: unexp.to_string(),
        }
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::invalid_type(unexp, exp)
    }

    fn invalid_length(len: usize, exp: &dyn de::Expected) -> Self {
        Error::Decode {
            path: String::new(),
            expected: Cow::Owned(exp.to_string()),
            got: format!("{len} elements"),
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Error::Decode {
            path: String::new(),
            expected: Cow::Owned(one_of(expected)),
            got: format!("{variant:?}"),
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Error::Decode {
            path: String::new(),
            expected: Cow::Owned(format!("one of the fields {}", one_of(expected))),
            got: format!("unknown field {field:?}"),
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Error::Decode {
            path: field.to_owned(),
            expected: Cow::Owned(format!("field {field:?}")),
            got: "no such field".to_owned(),
        }
    }
}

fn one_of(names: &[&str]) -> String {
    let names: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    format!("one of {}", names.join(", "))
}

/// A decode error for `value` when `what` was asked for.
fn mismatch(what: &'static str, value: &Value) -> Error {
    Error::decode(what, value)
}

fn text(value: &Value) -> Option<&str> {
    value.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
}

macro_rules! deserialize_int {
    ($($method:ident $visit:ident $t:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            let v = check_ref(self)?;
            match number::integer(v).and_then(number::Integer::to::<$t>) {
                Some(n) => visitor.$visit(n),
                None => Err(mismatch(concat!("integer (", stringify!($t), ")"), v)),
            }
        }
    )*};
}

fn check_ref(value: &Value) -> Result<&Value> {
    match value {
        Value::Error(e) => Err(e.clone().into()),
        v => Ok(v),
    }
}

/// `&Value` is a [`serde::Deserializer`]: any `Deserialize` type can be read from a reply, and
/// string fields can borrow from it.
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> de::Deserializer<'de> for &'de Value {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match check_ref(self)? {
            Value::Nil => visitor.visit_unit(),
            Value::Simple(s) | Value::BigNumber(s) => visitor.visit_borrowed_str(s),
            v @ (Value::Bulk(_) | Value::Verbatim { .. }) => {
                let b = v.as_bytes().unwrap_or_default();
                match std::str::from_utf8(b) {
                    Ok(s) => visitor.visit_borrowed_str(s),
                    Err(_) => visitor.visit_borrowed_bytes(b),
                }
            }
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Double(d) => visitor.visit_f64(*d),
            Value::Boolean(b) => visitor.visit_bool(*b),
            Value::Array(items) | Value::Set(items) | Value::Push(items) => {
                visitor.visit_seq(Seq::new(items))
            }
            Value::Map(pairs) => visitor.visit_map(Map::pairs(pairs)),
            Value::Error(_) => unreachable!("checked above"),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let v = check_ref(self)?;
        let b = match v {
            Value::Boolean(b) => Some(*b),
            Value::Int(i) => Some(*i != 0),
            Value::Double(d) if *d == 1.0 || *d == 0.0 => Some(*d == 1.0),
            Value::Simple(s) if s == "OK" => Some(true),
            v => match v.as_bytes() {
                Some(b"1") | Some(b"true") => Some(true),
                Some(b"0") | Some(b"false") => Some(false),
                _ => None,
            },
        };
        match b {
            Some(b) => visitor.visit_bool(b),
            None => Err(mismatch("boolean", v)),
        }
    }

    deserialize_int!(
        deserialize_i8 visit_i8 i8, deserialize_i16 visit_i16 i16, deserialize_i32 visit_i32 i32,
        deserialize_i64 visit_i64 i64, deserialize_i128 visit_i128 i128,
        deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16, deserialize_u32 visit_u32 u32,
        deserialize_u64 visit_u64 u64, deserialize_u128 visit_u128 u128
    );

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let v = check_ref(self)?;
        match number::float32(v) {
            Some(f) => visitor.visit_f32(f),
            None => Err(mismatch("float (f32)", v)),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let v = check_ref(self)?;
        match number::float(v) {
            Some(f) => visitor.visit_f64(f),
            None => Err(mismatch("float (f64)", v)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match check_ref(self)? {
            Value::Int(i) => visitor.visit_string(i.to_string()),
            Value::Double(d) => visitor.visit_string(crate::value::format_double(*d)),
            Value::Boolean(b) => visitor.visit_borrowed_str(if *b { "1" } else { "0" }),
            v => match text(v) {
                Some(s) => visitor.visit_borrowed_str(s),
                None if matches!(v, Value::BigNumber(_)) => self.deserialize_any(visitor),
                None => Err(mismatch("string", v)),
            },
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let v = check_ref(self)?;
        match v.as_bytes() {
            Some(b) => visitor.visit_borrowed_bytes(b),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::Nil => visitor.visit_none(),
            v => visitor.visit_some(v),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        check_ref(self)?;
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match check_ref(self)? {
            Value::Array(items) | Value::Set(items) | Value::Push(items) => {
                visitor.visit_seq(Seq::new(items))
            }
            Value::Nil => visitor.visit_seq(Seq::new(&[])),
            // A sequence of pairs (`Vec<(K, V)>`) from a RESP3 map.
            Value::Map(pairs) => visitor.visit_seq(PairSeq {
                pairs: pairs.iter(),
                index: 0,
            }),
            v => Err(mismatch("array", v)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visit_map(self, false, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        visit_map(self, true, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match check_ref(self)? {
            // A fieldless variant by name.
            v if v.as_bytes().is_some() => match text(v) {
                Some(s) => visitor.visit_enum(s.into_deserializer()),
                None => Err(mismatch("variant name", v)),
            },
            // `{variant: content}`, as JSON's externally tagged enums.
            Value::Map(pairs) if pairs.len() == 1 => visitor.visit_enum(Tagged {
                tag: &pairs[0].0,
                content: &pairs[0].1,
            }),
            v => Err(mismatch(
                "variant name (or map of one variant to its content)",
                v,
            )),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> IntoDeserializer<'de, Error> for &'de Value {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

struct Seq<'de> {
    items: std::slice::Iter<'de, Value>,
    index: usize,
}

impl<'de> Seq<'de> {
    fn new(items: &'de [Value]) -> Self {
        Seq {
            items: items.iter(),
            index: 0,
        }
    }
}

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        let Some(v) = self.items.next() else {
            return Ok(None);
        };
        let i = self.index;
        self.index += 1;
        let element = Element {
            first: v,
            rest: &mut self.items,
        };
        seed.deserialize(element)
            .map(Some)
            .map_err(|e| e.in_field(format_args!("[{i}]")))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// One element of a sequence. Asked for a tuple while it is a scalar, it takes the tuple's other
/// elements from the sequence too, so a RESP2 flat `[member, score, member, score]` decodes into
/// `Vec<(String, f64)>` as the RESP3 `[[member, score], …]` does. Anything else is the element.
struct Element<'a, 'de> {
    first: &'de Value,
    rest: &'a mut std::slice::Iter<'de, Value>,
}

impl<'de> Element<'_, 'de> {
    fn tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        let scalar = !matches!(
            self.first,
            Value::Array(_) | Value::Set(_) | Value::Push(_) | Value::Map(_) | Value::Nil
        );
        if !scalar || len < 2 {
            return de::Deserializer::deserialize_tuple(self.first, len, visitor);
        }
        let mut row = Vec::with_capacity(len);
        row.push(self.first);
        row.extend(self.rest.by_ref().take(len - 1));
        if row.len() < len {
            return Err(<Error as de::Error>::invalid_length(
                row.len(),
                &"a flat array with a whole number of tuples",
            ));
        }
        visitor.visit_seq(Refs {
            items: row.into_iter(),
            index: 0,
        })
    }
}

/// Forwards `deserialize_*` methods to the element's value.
macro_rules! forward_to_first {
    ($($method:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value> {
            de::Deserializer::$method(self.first, $($arg,)* visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Element<'_, 'de> {
    type Error = Error;

    forward_to_first!(
        deserialize_any(), deserialize_bool(), deserialize_i8(), deserialize_i16(),
        deserialize_i32(), deserialize_i64(), deserialize_i128(), deserialize_u8(),
        deserialize_u16(), deserialize_u32(), deserialize_u64(), deserialize_u128(),
        deserialize_f32(), deserialize_f64(), deserialize_char(), deserialize_str(),
        deserialize_string(), deserialize_bytes(), deserialize_byte_buf(), deserialize_option(),
        deserialize_unit(), deserialize_unit_struct(name: &'static str),
        deserialize_newtype_struct(name: &'static str), deserialize_seq(), deserialize_map(),
        deserialize_struct(name: &'static str, fields: &'static [&'static str]),
        deserialize_enum(name: &'static str, variants: &'static [&'static str]),
        deserialize_identifier(), deserialize_ignored_any(),
    );

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        self.tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.tuple(len, visitor)
    }
}

/// Elements given by reference: a tuple cut from a flat array, or a map entry as `[key, value]`.
struct Refs<'de> {
    items: std::vec::IntoIter<&'de Value>,
    index: usize,
}

impl<'de> SeqAccess<'de> for Refs<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        let Some(v) = self.items.next() else {
            return Ok(None);
        };
        let i = self.index;
        self.index += 1;
        seed.deserialize(v)
            .map(Some)
            .map_err(|e| e.in_field(format_args!("[{i}]")))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The entries of a RESP3 map as a sequence of `[key, value]` pairs.
struct PairSeq<'de> {
    pairs: std::slice::Iter<'de, (Value, Value)>,
    index: usize,
}

impl<'de> SeqAccess<'de> for PairSeq<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        let Some((k, v)) = self.pairs.next() else {
            return Ok(None);
        };
        let i = self.index;
        self.index += 1;
        seed.deserialize(Pair(k, v))
            .map(Some)
            .map_err(|e| e.in_field(format_args!("[{i}]")))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.pairs.len())
    }
}

/// A map entry, deserialized as the sequence `[key, value]`.
struct Pair<'de>(&'de Value, &'de Value);

impl<'de> de::Deserializer<'de> for Pair<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_seq(Refs {
            items: vec![self.0, self.1].into_iter(),
            index: 0,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

/// A map reply's entries, for a struct (`fields`: a failing value's path segment is `.name`)
/// or a map (`[key]`, as `FromRedis` maps read).
fn visit_map<'de, V: Visitor<'de>>(
    value: &'de Value,
    fields: bool,
    visitor: V,
) -> Result<V::Value> {
    let map = match check_ref(value)? {
        Value::Map(pairs) => Map::pairs(pairs),
        Value::Array(items) if is_array_of_pairs(items) => Map::nested(items),
        Value::Array(items) if items.len() % 2 == 0 => Map::flat(items),
        Value::Nil => Map::flat(&[]),
        v => return Err(mismatch(MAP_SHAPES, v)),
    };
    visitor.visit_map(Map { fields, ..map })
}

/// Map entries from a RESP3 map or a RESP2 flat array; `pending` is the entry whose key was
/// just read.
struct Map<'de> {
    entries: Entries<'de>,
    pending: Option<(&'de Value, &'de Value)>,
    /// The keys are a struct's field names.
    fields: bool,
}

enum Entries<'de> {
    Pairs(std::slice::Iter<'de, (Value, Value)>),
    Flat(std::slice::Iter<'de, Value>),
    /// An array of `[key, value]` arrays.
    Nested(std::slice::Iter<'de, Value>),
}

impl<'de> Map<'de> {
    fn pairs(pairs: &'de [(Value, Value)]) -> Self {
        Map {
            entries: Entries::Pairs(pairs.iter()),
            pending: None,
            fields: false,
        }
    }
    fn flat(items: &'de [Value]) -> Self {
        Map {
            entries: Entries::Flat(items.iter()),
            pending: None,
            fields: false,
        }
    }
    fn nested(items: &'de [Value]) -> Self {
        Map {
            entries: Entries::Nested(items.iter()),
            pending: None,
            fields: false,
        }
    }
}

/// The path segment for a map key in an error: its text, or its description.
fn key_name(key: &Value) -> String {
    match text(key) {
        Some(s) => s.to_owned(),
        None => format!("[{}]", key.describe()),
    }
}

impl<'de> MapAccess<'de> for Map<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        let entry = match &mut self.entries {
            Entries::Pairs(it) => it.next().map(|(k, v)| (k, v)),
            Entries::Flat(it) => match (it.next(), it.next()) {
                (Some(k), Some(v)) => Some((k, v)),
                _ => None,
            },
            Entries::Nested(it) => match it.next() {
                Some(Value::Array(kv)) if kv.len() == 2 => Some((&kv[0], &kv[1])),
                _ => None,
            },
        };
        self.pending = entry;
        match entry {
            Some((k, _)) => seed
                .deserialize(k)
                .map(Some)
                .map_err(|e| e.in_field(format_args!("[{}]", k.describe()))),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        let (k, v) = self
            .pending
            .take()
            .ok_or_else(|| <Error as de::Error>::custom("map value asked for before its key"))?;
        let fields = self.fields;
        seed.deserialize(v).map_err(|e| {
            if fields {
                e.in_field(key_name(k))
            } else {
                e.in_field(crate::from_redis::key_segment(k))
            }
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(match &self.entries {
            Entries::Pairs(it) => it.len(),
            Entries::Flat(it) => it.len() / 2,
            Entries::Nested(it) => it.len(),
        })
    }
}

/// A one-entry map `{variant: content}` as an enum.
struct Tagged<'de> {
    tag: &'de Value,
    content: &'de Value,
}

impl<'de> EnumAccess<'de> for Tagged<'de> {
    type Error = Error;
    type Variant = &'de Value;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, &'de Value)> {
        let v = seed.deserialize(self.tag)?;
        Ok((v, self.content))
    }
}

impl<'de> VariantAccess<'de> for &'de Value {
    type Error = Error;

    fn unit_variant(self) -> Result<()> {
        check_ref(self).map(drop)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        de::Deserializer::deserialize_map(self, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::map_shapes;
    use serde::Deserialize;
    use std::collections::{BTreeMap, HashMap};

    fn bulk(s: &str) -> Value {
        Value::Bulk(bytes::Bytes::copy_from_slice(s.as_bytes()))
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Role {
        Master,
        Replica,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    enum Shape {
        Circle(f64),
        Rect { w: u32, h: u32 },
        Empty,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Replica {
        ip: String,
        port: u16,
        online: bool,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Node<'a> {
        name: &'a str,
        role: Role,
        port: u16,
        ratio: f64,
        tags: Vec<String>,
        labels: HashMap<String, i64>,
        replicas: Vec<Replica>,
        note: Option<String>,
        pair: (String, u8),
        #[serde(default)]
        shapes: Vec<Shape>,
    }

    fn node_reply(flat: bool) -> Value {
        let replica = |ip: &str, port: &str| {
            let pairs = [("ip", ip), ("port", port), ("online", "1")];
            if flat {
                Value::Array(pairs.iter().flat_map(|(k, v)| [bulk(k), bulk(v)]).collect())
            } else {
                Value::Map(pairs.iter().map(|(k, v)| (bulk(k), bulk(v))).collect())
            }
        };
        let pairs = vec![
            (bulk("name"), bulk("n1")),
            (bulk("role"), Value::Simple("master".into())),
            (bulk("port"), bulk("6379")),
            (bulk("ratio"), Value::Double(0.5)),
            (bulk("tags"), Value::Set(vec![bulk("a"), bulk("b")])),
            (
                bulk("labels"),
                Value::Map(vec![(bulk("x"), Value::Int(1)), (bulk("y"), bulk("-2"))]),
            ),
            (
                bulk("replicas"),
                Value::Array(vec![replica("10.0.0.2", "6380")]),
            ),
            (bulk("note"), Value::Nil),
            (bulk("pair"), Value::Array(vec![bulk("p"), Value::Int(7)])),
            (
                bulk("shapes"),
                Value::Array(vec![
                    bulk("Empty"),
                    Value::Map(vec![(bulk("Circle"), bulk("1.5"))]),
                    Value::Map(vec![(
                        bulk("Rect"),
                        Value::Array(vec![bulk("w"), bulk("2"), bulk("h"), bulk("3")]),
                    )]),
                ]),
            ),
            (bulk("ignored"), Value::Int(0)),
        ];
        if flat {
            Value::Array(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect())
        } else {
            Value::Map(pairs)
        }
    }

    #[test]
    fn nested_structs_maps_sequences_options_and_enums() {
        for flat in [false, true] {
            let reply = node_reply(flat);
            let node = Node::deserialize(&reply).unwrap();
            assert_eq!(
                node,
                Node {
                    name: "n1",
                    role: Role::Master,
                    port: 6379,
                    ratio: 0.5,
                    tags: vec!["a".into(), "b".into()],
                    labels: [("x".to_owned(), 1), ("y".to_owned(), -2)].into(),
                    replicas: vec![Replica {
                        ip: "10.0.0.2".into(),
                        port: 6380,
                        online: true
                    }],
                    note: None,
                    pair: ("p".into(), 7),
                    shapes: vec![Shape::Empty, Shape::Circle(1.5), Shape::Rect { w: 2, h: 3 }],
                },
                "flat: {flat}"
            );
        }
    }

    #[test]
    fn scalars_follow_from_redis_rules() {
        assert_eq!(i64::deserialize(&bulk("-5")).unwrap(), -5);
        assert_eq!(u8::deserialize(&Value::Int(255)).unwrap(), 255);
        assert!(u8::deserialize(&Value::Int(256)).is_err());
        assert_eq!(f64::deserialize(&bulk("inf")).unwrap(), f64::INFINITY);
        assert!(bool::deserialize(&Value::Simple("OK".into())).unwrap());
        assert!(!bool::deserialize(&bulk("0")).unwrap());
        assert_eq!(String::deserialize(&Value::Int(3)).unwrap(), "3");
        assert_eq!(
            Option::<i64>::deserialize(&Value::Nil).unwrap(),
            None::<i64>
        );
        assert_eq!(
            serde_bytes_like(&bulk("ab")),
            b"ab".to_vec(),
            "bytes borrow from the value"
        );
        let m = BTreeMap::<String, String>::deserialize(&Value::Nil).unwrap();
        assert!(m.is_empty());
        let e = Role::deserialize(&bulk("leader")).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"decode error: expected one of "master", "replica", got "leader""#
        );
    }

    fn serde_bytes_like(v: &Value) -> Vec<u8> {
        struct B;
        impl<'de> Visitor<'de> for B {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> std::result::Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
        }
        de::Deserializer::deserialize_bytes(v, B).unwrap()
    }

    #[test]
    fn errors_carry_the_path() {
        let mut reply = node_reply(false);
        if let Value::Map(pairs) = &mut reply {
            pairs[6].1 = Value::Array(vec![Value::Map(vec![
                (bulk("ip"), bulk("x")),
                (bulk("port"), bulk("high")),
            ])]);
        }
        let e = Node::deserialize(&reply).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"decode error: replicas[0].port: expected integer (u16), got bulk string "high""#
        );
        let e = Replica::deserialize(&Value::Map(vec![(bulk("ip"), bulk("x"))])).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"decode error: port: expected field "port", got no such field"#
        );
        let e = Replica::deserialize(&Value::Int(1)).unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "{e}");
        let nested_error = Value::Array(vec![Value::Error(crate::ServerError {
            kind: "WRONGTYPE".into(),
            message: "x".into(),
        })]);
        let e = Vec::<i64>::deserialize(&nested_error).unwrap_err();
        assert_eq!(e.server_kind(), Some("WRONGTYPE"));
    }

    /// Serde types read their paths as derived ones do: `.field` in a struct, `[key]` in a map
    /// (the same for a RESP2 bulk and a RESP3 simple-string key), `[i]` in a sequence.
    #[test]
    fn serde_paths_match_the_derived_ones() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Reading {
            temp: f64,
        }
        let bad = || Value::Map(vec![(bulk("temp"), bulk("hot"))]);
        let path = |e: Error| match e {
            Error::Decode { path, .. } => path,
            other => panic!("{other:?}"),
        };
        for key in [bulk("c"), Value::Simple("c".into())] {
            let m = Value::Map(vec![(key, bad())]);
            let e = HashMap::<String, Reading>::deserialize(&m).unwrap_err();
            assert_eq!(path(e), "[c].temp");
        }
        let list = Value::Array(vec![Value::Map(vec![(bulk("temp"), bulk("1"))]), bad()]);
        let e = Vec::<Reading>::deserialize(&list).unwrap_err();
        assert_eq!(path(e), "[1].temp");
        let flat = Value::Array(vec![
            bulk("c"),
            Value::Array(vec![bulk("temp"), bulk("hot")]),
        ]);
        let e = BTreeMap::<String, Reading>::deserialize(&flat).unwrap_err();
        assert_eq!(path(e), "[c].temp");
    }

    #[test]
    fn serde_wrapper_decodes_owned_replies() {
        #[derive(Deserialize, Debug)]
        struct Owned {
            name: String,
        }
        let Serde(o) =
            Serde::<Owned>::from_redis(Value::Array(vec![bulk("name"), bulk("a")])).unwrap();
        assert_eq!(o.name, "a");
        let e = Serde::<Owned>::from_redis(Value::Array(vec![])).unwrap_err();
        assert!(e.to_string().contains(r#"field "name""#), "{e}");
    }

    fn is_decode<T: fmt::Debug>(r: Result<T>) -> bool {
        matches!(r, Err(Error::Decode { .. }))
    }

    #[test]
    fn numbers_follow_the_same_rules_as_from_redis() {
        assert!(is_decode(i128::deserialize(&Value::Double(1e300))));
        assert!(is_decode(i128::deserialize(&bulk("1e+300"))));
        assert!(is_decode(i64::deserialize(&Value::Double(
            9223372036854775808.0
        ))));
        assert_eq!(
            u128::deserialize(&bulk(&u128::MAX.to_string())).unwrap(),
            u128::MAX
        );
        assert_eq!(
            i128::deserialize(&bulk(&i128::MIN.to_string())).unwrap(),
            i128::MIN
        );
        assert_eq!(i64::deserialize(&Value::Double(5.0)).unwrap(), 5);
        assert!(is_decode(i64::deserialize(&Value::Double(5.5))));
        assert!(is_decode(f64::deserialize(&Value::Int((1 << 53) + 1))));
        assert!(is_decode(f32::deserialize(&Value::Double(1e300))));
        assert_eq!(f32::deserialize(&Value::Double(0.1)).unwrap(), 0.1f32);
        for s in ["nan", "-nan", "NaN", "nan(0x1)"] {
            assert!(f64::deserialize(&bulk(s)).unwrap().is_nan(), "{s}");
        }
        for s in ["inf", "Infinity", "INF"] {
            assert_eq!(f64::deserialize(&bulk(s)).unwrap(), f64::INFINITY, "{s}");
        }
        assert_eq!(
            String::deserialize(&Value::Double(1e300)).unwrap(),
            "1e+300"
        );
        assert_eq!(String::deserialize(&Value::Boolean(true)).unwrap(), "1");
        for v in [
            Value::Double(1e300),
            bulk("1e+300"),
            bulk("1.0000000000000001e+300"),
        ] {
            assert_eq!(f64::deserialize(&v).unwrap(), 1e300, "{v:?}");
        }
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
        #[derive(Deserialize, Debug, PartialEq)]
        struct Abc {
            a: f64,
            b: f64,
            c: u8,
        }
        for inner in map_shapes(&scores) {
            let h = HashMap::<String, f64>::deserialize(&inner).unwrap();
            assert_eq!(h["b"], 2.5, "{inner:?}");
            let v = Vec::<(String, f64)>::deserialize(&inner).unwrap();
            assert_eq!(v, want, "{inner:?}");
            let s = Abc::deserialize(&inner).unwrap();
            assert_eq!(
                s,
                Abc {
                    a: 1.0,
                    b: 2.5,
                    c: 3
                },
                "{inner:?}"
            );
            for outer in map_shapes(&[("x", inner.clone()), ("y", inner.clone())]) {
                let m = HashMap::<String, Vec<(String, f64)>>::deserialize(&outer).unwrap();
                assert_eq!(m["y"], want, "{outer:?}");
                let m = BTreeMap::<String, BTreeMap<String, f64>>::deserialize(&outer).unwrap();
                assert_eq!(m["x"]["c"], 3.0, "{outer:?}");
                let v = Vec::<(String, Abc)>::deserialize(&outer).unwrap();
                assert_eq!(v[1].1.c, 3, "{outer:?}");
            }
            let list = Value::Array(vec![inner.clone(), inner.clone()]);
            let v = Vec::<HashMap<String, f64>>::deserialize(&list).unwrap();
            assert_eq!(v[1]["a"], 1.0);
        }
        // A flat array that is not a whole number of tuples.
        let odd = Value::Array(vec![bulk("a"), bulk("1"), bulk("b")]);
        assert!(is_decode(Vec::<(String, f64)>::deserialize(&odd)));
        assert!(is_decode(HashMap::<String, f64>::deserialize(&odd)));
    }
}
