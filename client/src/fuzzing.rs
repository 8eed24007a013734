//! The checks the fuzz targets run, in one place, so the `cargo fuzz` targets (nightly, `fuzz/`)
//! and the corpus replay test (stable, `client/tests/fuzz_corpus.rs`) assert exactly the same
//! things. Each check takes the fuzzer's bytes and panics when a property fails.
//!
//! Not a public API: compiled only with the `fuzzing` feature, hidden from the docs.
//!
//! * [`resp_parse`]: the RESP parser on arbitrary bytes fed in arbitrary chunks never panics, fails
//!   only with [`Error::Protocol`], gives the same replies and the same outcome whatever the
//!   split, keeps every reply within the configured [`Limits`], and allocates in proportion to the
//!   bytes it was given, never to a length a header announces.
//! * [`decode_value`]: [`FromRedis`] into the common types and derived types (and, with the
//!   `serde`/`json` features, through serde), from arbitrary [`Value`]s, is `Ok` or
//!   [`Error::Decode`] ([`Error::Server`] only when the value holds an error reply), never a
//!   panic, and the conversions agree with one another.
//! * [`config_url`]: [`Config::from_url`] on any text is `Ok` or [`Error::Client`].

use crate::{Bytes, Config, Error, FromRedis, Limits, Parser, ServerError, Value};
use arbitrary::Unstructured;
use bytes::BytesMut;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Runs a closure and returns how many bytes the current thread allocated meanwhile (the fuzz
/// target and the replay test pass `allocation_counter::measure(f).bytes_total`, which needs
/// that crate's counting allocator in the binary).
pub type AllocMeter = fn(&mut dyn FnMut()) -> u64;

/// Limits that let a header announce far more than any fuzz input holds (the defaults: 512 MiB
/// bulks, 2^32 elements), so allocating what a header announces shows up as a blown allocation
/// budget.
pub const ROOMY: Limits = Limits {
    max_depth: 128,
    max_bulk_len: 512 * 1024 * 1024,
    max_aggregate_len: 1 << 32,
    max_line_len: 1024 * 1024,
};

/// Limits small enough for the fuzzer to reach every one of them.
pub const TIGHT: Limits = Limits {
    max_depth: 3,
    max_bulk_len: 16,
    max_aggregate_len: 4,
    max_line_len: 16,
};

/// Most bytes one `Parser::parse` call may allocate per byte in the buffer, plus [`ALLOC_SLACK`].
/// A reply element is at least 3 bytes on the wire (`_\r\n`) and costs at most one
/// `(Value, Value)` slot in its aggregate, plus copies of its text (at most 3 bytes per byte after
/// UTF-8 replacement) and a few growing vectors, well under this.
pub const ALLOC_PER_BYTE: u64 = 64;

/// Fixed allowance per `Parser::parse` call: the parser's own stack of open aggregates and the
/// text of an error message.
pub const ALLOC_SLACK: u64 = 4096;

/// The RESP parser check. Input layout:
///
/// * byte 0: bit 7 picks the limits ([`TIGHT`] when set, [`ROOMY`] otherwise); bits 0–5 are `n`,
///   how many chunk-size bytes follow;
/// * the next `n` bytes: the sizes of the chunks the stream is fed in, used in turn (a 0 feeds
///   nothing and parses again); with none, or all zero, the stream is fed one byte at a time;
/// * the rest: the byte stream, as a server would send it.
///
/// The stream is parsed once whole and once in chunks; the two runs must give equal replies and
/// end the same way (both waiting for more with the same bytes left over, or both broken with a
/// protocol error).
///
/// # Panics
/// When a property fails (that is the point).
pub fn resp_parse(data: &[u8], meter: AllocMeter) {
    check_meter(meter);
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let limits = if head & 0x80 != 0 { TIGHT } else { ROOMY };
    let (chunks, stream) = rest.split_at(usize::from(head & 0x3f).min(rest.len()));

    let whole = run_parser(limits, meter, stream, None);
    let fed = run_parser(limits, meter, stream, Some(chunks));
    assert_eq!(
        whole.values.len(),
        fed.values.len(),
        "reply count: whole {whole:?}, chunked {fed:?}"
    );
    for (i, (a, b)) in whole.values.iter().zip(&fed.values).enumerate() {
        assert!(same(a, b), "reply {i} differs: whole {a:?}, chunked {b:?}");
    }
    match (&whole.end, &fed.end) {
        (End::Waiting { left: a }, End::Waiting { left: b }) => {
            assert_eq!(a, b, "bytes left over: whole {a}, chunked {b}")
        }
        (End::Broken(_), End::Broken(_)) => {}
        (a, b) => panic!("the runs end differently: whole {a:?}, chunked {b:?}"),
    }
    for v in &whole.values {
        within_limits(v, &limits, 1);
    }
}

/// How a run of the parser over a stream ended.
#[derive(Debug)]
enum End {
    /// `Ok(None)` with every byte fed: `left` bytes of an incomplete reply remain.
    Waiting { left: usize },
    /// A protocol error (read through `Debug` in failure messages).
    Broken(#[allow(dead_code)] Error),
}

#[derive(Debug)]
struct Run {
    values: Vec<Value>,
    end: End,
}

/// Feeds `stream` to a fresh parser: all at once for `None`, else in chunks of the given sizes,
/// used in turn (one byte at a time when there are none, or all are zero). After each feed,
/// parses until it waits or breaks.
fn run_parser(limits: Limits, meter: AllocMeter, stream: &[u8], chunks: Option<&[u8]>) -> Run {
    let mut parser = Parser::new(limits);
    let mut buf = BytesMut::new();
    let mut values = Vec::new();
    let one_by_one = chunks.is_some_and(|c| c.iter().all(|&c| c == 0));
    let mut fed = 0;
    let mut turn = 0;
    loop {
        let size = match chunks {
            None => stream.len() - fed,
            Some(_) if one_by_one => 1,
            Some(c) => usize::from(c[turn % c.len()]),
        };
        turn += 1;
        let end = (fed + size).min(stream.len());
        buf.extend_from_slice(&stream[fed..end]);
        fed = end;
        loop {
            let held = buf.len();
            let mut result = None;
            let used = meter(&mut || result = Some(parser.parse(&mut buf)));
            let budget = ALLOC_PER_BYTE * held as u64 + ALLOC_SLACK;
            assert!(
                used <= budget,
                "one parse of a {held}-byte buffer allocated {used} bytes (budget {budget})"
            );
            match result.expect("the meter runs the closure") {
                Ok(Some(v)) => values.push(v),
                Ok(None) => break,
                Err(e) => {
                    assert!(
                        matches!(e, Error::Protocol { .. }),
                        "not a protocol error: {e:?}"
                    );
                    assert_eq!(
                        buf.len(),
                        held,
                        "a failed parse must leave the buffer as it is"
                    );
                    let _ = e.to_string();
                    return Run {
                        values,
                        end: End::Broken(e),
                    };
                }
            }
        }
        if fed == stream.len() {
            return Run {
                values,
                end: End::Waiting { left: buf.len() },
            };
        }
    }
}

/// Fails unless `meter` really counts allocations (a meter that always says 0 would make the
/// allocation budget a check that cannot fail).
fn check_meter(meter: AllocMeter) {
    let used = meter(&mut || drop(std::hint::black_box(vec![0u8; 100])));
    assert!(
        used >= 100,
        "the allocation meter counts nothing: is the counting allocator installed?"
    );
}

/// Structural equality with doubles compared bit for bit (so NaN equals NaN).
fn same(a: &Value, b: &Value) -> bool {
    let all =
        |x: &[Value], y: &[Value]| x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y));
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(x), Value::Array(y))
        | (Value::Set(x), Value::Set(y))
        | (Value::Push(x), Value::Push(y)) => all(x, y),
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k, v), (l, w))| same(k, l) && same(v, w))
        }
        _ => a == b,
    }
}

/// Every reply the parser returns respects the limits it was given. `depth` is the nesting level
/// of `v` (1 at the top).
fn within_limits(v: &Value, limits: &Limits, depth: usize) {
    let aggregate = |len: usize| {
        assert!(
            depth <= limits.max_depth,
            "aggregate at depth {depth} > {}",
            limits.max_depth
        );
        assert!(
            len <= limits.max_aggregate_len,
            "aggregate of {len} > {}",
            limits.max_aggregate_len
        );
    };
    let longest = limits.max_line_len.max(limits.max_bulk_len);
    match v {
        Value::Simple(s) | Value::BigNumber(s) => {
            assert!(
                s.len() <= limits.max_line_len,
                "line of {} > {}",
                s.len(),
                limits.max_line_len
            )
        }
        Value::Bulk(b) => assert!(b.len() <= limits.max_bulk_len, "bulk of {}", b.len()),
        Value::Verbatim { format, text } => {
            assert!(format.len() <= 9, "format {format:?}"); // 3 bytes, each at most U+FFFD
            assert!(
                text.len() + 4 <= limits.max_bulk_len,
                "verbatim of {}",
                text.len()
            )
        }
        // Simple or blob error; invalid UTF-8 in a blob error becomes U+FFFD (3 bytes per byte).
        Value::Error(e) => assert!(e.kind.len() + e.message.len() <= 3 * longest, "error {e:?}"),
        Value::Array(items) | Value::Set(items) | Value::Push(items) => {
            aggregate(items.len());
            items
                .iter()
                .for_each(|i| within_limits(i, limits, depth + 1));
        }
        Value::Map(pairs) => {
            aggregate(pairs.len());
            for (k, v) in pairs {
                within_limits(k, limits, depth + 1);
                within_limits(v, limits, depth + 1);
            }
        }
        Value::Nil | Value::Int(_) | Value::Double(_) | Value::Boolean(_) => {}
    }
}

/// The decode check. The bytes are used twice: parsed as a RESP stream (real replies, as in the
/// seed corpus), every complete reply decoded; and read as a recipe for an arbitrary [`Value`]
/// (any shape, including ones no parser produces), decoded too.
///
/// # Panics
/// When a decode panics, fails with an error other than [`Error::Decode`] (or [`Error::Server`]
/// for a value holding an error reply), or two conversions disagree.
pub fn decode_value(data: &[u8]) {
    let mut parser = Parser::new(ROOMY);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(v)) = parser.parse(&mut buf) {
        decode_all(&v);
    }
    let mut u = Unstructured::new(data);
    if let Ok(v) = arbitrary_value(&mut u, 0) {
        decode_all(&v);
    }
}

/// Text the decoders give meaning to: numbers at the edges of every type, the spellings of
/// infinities and NaN, booleans, and the field and variant names of the derived types below.
const WORDS: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "+1",
    "01",
    " 1",
    "1 ",
    "1.5",
    "-0",
    "-0.0",
    "1e3",
    "1e300",
    "1e-300",
    "1E5",
    "inf",
    "+inf",
    "-inf",
    "infinity",
    "Infinity",
    "nan",
    "NaN",
    "-nan",
    "nan(0x1)",
    "0x10",
    "127",
    "128",
    "-129",
    "255",
    "256",
    "32767",
    "32768",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "170141183460469231731687303715884105727",
    "170141183460469231731687303715884105728",
    "340282366920938463463374607431768211455",
    "340282366920938463463374607431768211456",
    "9007199254740993",
    "true",
    "false",
    "OK",
    "QUEUED",
    "\u{fffd}",
    "é",
    "name",
    "age",
    "plan",
    "email",
    "born",
    "visits",
    "items",
    "next",
    "id",
    "free",
    "pro",
    "Free",
    "maxmemory-policy",
    "inner",
    "score",
];

/// Doubles at the edges: what decoders into integers must refuse or take exactly.
const DOUBLES: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    1.5,
    1e300,
    -1e300,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    f64::MIN_POSITIVE,
    f64::MAX,
    f64::MIN,
    9007199254740993.0,
    9223372036854775807.0,
    -9223372036854775808.0,
    18446744073709551615.0,
    1.7014118346046923e38,
    3.402823669209385e38,
    65535.0,
    65536.0,
    4294967296.0,
];

/// Deepest aggregate [`arbitrary_value`] builds, and most elements in one.
const MAX_DEPTH: usize = 4;
const MAX_ITEMS: usize = 8;

/// Builds an arbitrary [`Value`] from the fuzzer's bytes.
fn arbitrary_value(u: &mut Unstructured<'_>, depth: usize) -> arbitrary::Result<Value> {
    let kinds = if depth < MAX_DEPTH { 13 } else { 9 };
    Ok(match u.choose_index(kinds)? {
        0 => Value::Nil,
        1 => Value::Simple(text(u)?.into()),
        2 => Value::Bulk(Bytes::from(bytes(u)?)),
        3 => Value::Verbatim {
            format: if u.arbitrary()? {
                "txt".to_owned()
            } else {
                text(u)?
            },
            text: Bytes::from(bytes(u)?),
        },
        4 => Value::Int(if u.arbitrary()? {
            *u.choose(&[0, 1, -1, i64::MAX, i64::MIN, 255, 256, 65536, 1 << 53])?
        } else {
            u.arbitrary()?
        }),
        5 => Value::Double(if u.arbitrary()? {
            *u.choose(DOUBLES)?
        } else {
            u.arbitrary()?
        }),
        6 => Value::Boolean(u.arbitrary()?),
        7 => Value::BigNumber(text(u)?.into()),
        8 => Value::Error(ServerError {
            kind: text(u)?,
            message: text(u)?,
        }),
        9 => Value::Array(items(u, depth)?),
        10 => Value::Set(items(u, depth)?),
        11 => Value::Push(items(u, depth)?),
        _ => {
            let n = u.int_in_range(0..=MAX_ITEMS)?;
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                pairs.push((
                    arbitrary_value(u, depth + 1)?,
                    arbitrary_value(u, depth + 1)?,
                ));
            }
            Value::Map(pairs)
        }
    })
}

fn items(u: &mut Unstructured<'_>, depth: usize) -> arbitrary::Result<Vec<Value>> {
    let n = u.int_in_range(0..=MAX_ITEMS)?;
    (0..n).map(|_| arbitrary_value(u, depth + 1)).collect()
}

fn text(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    if u.arbitrary()? {
        Ok((*u.choose(WORDS)?).to_owned())
    } else {
        u.arbitrary()
    }
}

fn bytes(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    if u.arbitrary()? {
        Ok(text(u)?.into_bytes())
    } else {
        u.arbitrary()
    }
}

/// True when an error reply is nested anywhere in `v`: decoding it may then be `Error::Server`.
fn holds_error(v: &Value) -> bool {
    match v {
        Value::Error(_) => true,
        Value::Array(items) | Value::Set(items) | Value::Push(items) => {
            items.iter().any(holds_error)
        }
        Value::Map(pairs) => pairs.iter().any(|(k, v)| holds_error(k) || holds_error(v)),
        _ => false,
    }
}

/// Decodes `v` into `T`: `Some` on success, `None` on an allowed error, a panic on anything else.
fn decode<T: FromRedis>(v: &Value) -> Option<T> {
    match T::from_redis(v.clone()) {
        Ok(t) => Some(t),
        Err(e @ Error::Decode { .. }) => {
            let _ = e.to_string();
            None
        }
        Err(e @ Error::Server { .. }) if holds_error(v) => {
            let _ = e.to_string();
            None
        }
        Err(e) => panic!("decoding {v:?} into {}: {e:?}", std::any::type_name::<T>()),
    }
}

// Derived types covering the derive's shapes and attributes.

#[derive(FromRedis, Debug)]
#[redis(rename_all = "lowercase")]
enum Plan {
    Free,
    Pro,
}

#[derive(FromRedis, Debug)]
#[allow(dead_code)] // read only through Debug
struct User {
    name: String,
    age: u32,
    plan: Plan,
    email: Option<String>,
    #[redis(rename = "born")]
    birth_year: i64,
    #[redis(default)]
    visits: u64,
    #[redis(flatten)]
    other: HashMap<String, String>,
}

#[derive(FromRedis, Debug)]
#[allow(dead_code)]
struct Scored(String, f64);

#[derive(FromRedis, Debug)]
#[allow(dead_code)]
struct Id(u64);

#[derive(FromRedis, Debug)]
#[redis(rename_all = "kebab-case")]
#[allow(dead_code)]
struct Page<T> {
    items: Vec<T>,
    next: Option<u64>,
    #[redis(default)]
    maxmemory_policy: Option<Plan>,
    #[redis(flatten)]
    inner: Inner,
}

#[derive(FromRedis, Debug)]
#[allow(dead_code)]
struct Inner {
    #[redis(default)]
    score: f64,
    #[redis(default)]
    id: Option<Id>,
}

#[derive(FromRedis, Debug)]
#[redis(deny_unknown_fields)]
#[allow(dead_code)]
struct Strict {
    id: i64,
    #[redis(default)]
    name: Option<String>,
}

#[derive(FromRedis, Debug)]
#[allow(dead_code)]
struct Unit;

/// Decodes `v` into every type the check covers, and checks the conversions agree.
fn decode_all(v: &Value) {
    // Integers: one that fits a narrower type decodes to the same number in every wider one.
    let i8_ = decode::<i8>(v);
    let i16_ = decode::<i16>(v);
    let i32_ = decode::<i32>(v);
    let i64_ = decode::<i64>(v);
    let i128_ = decode::<i128>(v);
    let isize_ = decode::<isize>(v);
    let u16_ = decode::<u16>(v);
    let u32_ = decode::<u32>(v);
    let u64_ = decode::<u64>(v);
    let u128_ = decode::<u128>(v);
    let usize_ = decode::<usize>(v);
    let wide = i128_.map(|n| n as f64); // for messages only
    let agree = |narrow: Option<i128>, what: &str| {
        if let Some(n) = narrow {
            assert_eq!(
                i128_,
                Some(n),
                "{v:?}: {what} is {n} but i128 is {i128_:?} ({wide:?})"
            );
        }
    };
    agree(i8_.map(i128::from), "i8");
    agree(i16_.map(i128::from), "i16");
    agree(i32_.map(i128::from), "i32");
    agree(i64_.map(i128::from), "i64");
    agree(isize_.map(|n| n as i128), "isize");
    agree(u16_.map(i128::from), "u16");
    agree(u32_.map(i128::from), "u32");
    agree(u64_.map(i128::from), "u64");
    agree(usize_.map(|n| n as i128), "usize");
    if let (Some(n), Some(m)) = (i128_, u128_) {
        assert_eq!(
            Some(n),
            i128::try_from(m).ok(),
            "{v:?}: i128 {n} but u128 {m}"
        );
    }
    // Exact or an error: a double decodes only to the integer it is, never a saturated one.
    if let Value::Double(d) = v {
        let ints = [i128_.map(|n| n as f64), u128_.map(|n| n as f64)];
        for n in ints.into_iter().flatten() {
            assert_eq!(n, *d, "{v:?} decoded as the integer {n}");
        }
    }

    let _ = decode::<f32>(v);
    let _ = decode::<f64>(v);
    let _ = decode::<bool>(v);
    let _ = decode::<()>(v);
    let _ = decode::<Cow<'_, str>>(v);
    let _ = decode::<Box<i64>>(v);

    // Text: a value that decodes as a string decodes as the same bytes.
    let string = decode::<String>(v);
    let bytes = decode::<Bytes>(v);
    let vec = decode::<Vec<u8>>(v);
    if let Some(s) = &string {
        assert_eq!(
            bytes.as_deref(),
            Some(s.as_bytes()),
            "{v:?}: String {s:?} but Bytes {bytes:?}"
        );
    }
    assert_eq!(
        bytes.as_deref(),
        vec.as_deref(),
        "{v:?}: Bytes and Vec<u8> differ"
    );

    // `Value` is the identity; `Option` is `None` for nil and the inner type otherwise.
    let same_value = decode::<Value>(v).expect("every value decodes into Value");
    assert!(
        same(&same_value, v),
        "Value decode changed {v:?} into {same_value:?}"
    );
    let opt = decode::<Option<i64>>(v);
    if v.is_nil() {
        assert!(matches!(opt, Some(None)), "{v:?}: Option<i64> is {opt:?}");
    } else {
        assert_eq!(opt, i64_.map(Some), "{v:?}: Option<i64> disagrees with i64");
    }
    let _ = decode::<Option<String>>(v);
    let _ = decode::<Option<Vec<Option<String>>>>(v);

    // Aggregates.
    let _ = decode::<Vec<i64>>(v);
    let _ = decode::<Vec<f64>>(v);
    let _ = decode::<Vec<String>>(v);
    let _ = decode::<Vec<Option<Bytes>>>(v);
    let _ = decode::<Vec<Value>>(v);
    let _ = decode::<Vec<Vec<String>>>(v);
    let _ = decode::<Vec<(String, f64)>>(v);
    let _ = decode::<Vec<(Bytes, Bytes)>>(v);
    let _ = decode::<Vec<(i64, String, f64)>>(v);
    let _ = decode::<HashMap<String, String>>(v);
    let _ = decode::<HashMap<String, i64>>(v);
    let _ = decode::<HashMap<String, f64>>(v);
    let _ = decode::<HashMap<Bytes, Vec<String>>>(v);
    let _ = decode::<HashMap<String, HashMap<String, String>>>(v);
    let _ = decode::<BTreeMap<String, Option<f64>>>(v);
    let _ = decode::<HashSet<String>>(v);
    let _ = decode::<BTreeSet<i64>>(v);
    let _ = decode::<(i64,)>(v);
    let _ = decode::<(String, i64)>(v);
    let _ = decode::<(Option<String>, Vec<i64>, f64)>(v);
    let _ = decode::<(
        i8,
        u16,
        i32,
        i64,
        String,
        Bytes,
        f32,
        f64,
        bool,
        Value,
        (),
        Id,
    )>(v);

    // Derived types.
    let _ = decode::<User>(v);
    let _ = decode::<Option<User>>(v);
    let _ = decode::<Vec<User>>(v);
    let _ = decode::<HashMap<String, User>>(v);
    let _ = decode::<Scored>(v);
    let _ = decode::<Vec<Scored>>(v);
    let _ = decode::<Id>(v);
    let _ = decode::<Plan>(v);
    let _ = decode::<Page<Scored>>(v);
    let _ = decode::<Page<Page<Id>>>(v);
    let _ = decode::<Strict>(v);
    let _ = decode::<Unit>(v);

    #[cfg(feature = "serde")]
    decode_serde(v);
}

/// The serde path (`Value` as a `serde::Deserializer`), when the crate is built with it.
#[cfg(feature = "serde")]
fn decode_serde(v: &Value) {
    use crate::Serde;
    let _ = decode::<Serde<i64>>(v);
    let _ = decode::<Serde<u8>>(v);
    let _ = decode::<Serde<f64>>(v);
    let _ = decode::<Serde<bool>>(v);
    let _ = decode::<Serde<char>>(v);
    let _ = decode::<Serde<String>>(v);
    let _ = decode::<Serde<()>>(v);
    let _ = decode::<Serde<Option<Vec<Option<f64>>>>>(v);
    let _ = decode::<Serde<(String, i64)>>(v);
    let _ = decode::<Serde<HashMap<String, String>>>(v);
    let _ = decode::<Serde<BTreeMap<String, Vec<u64>>>>(v);
    #[cfg(feature = "json")]
    {
        // `deserialize_any`: whatever shape the value has.
        let _ = decode::<Serde<serde_json::Value>>(v);
        let _ = decode::<crate::Json<serde_json::Value>>(v);
    }
}

/// The URL check. The bytes are used twice: as URL text (invalid UTF-8 replaced), for which
/// [`Config::from_url`] must be `Ok` or [`Error::Client`] and the result must format; and as a
/// recipe for a configuration (credentials of any text, host, port, db, protocol) written as a
/// percent-encoded `redis://` URL, which must parse back to exactly that configuration.
///
/// # Panics
/// When parsing panics, fails with another error kind, or loses or changes a part of the URL.
pub fn config_url(data: &[u8]) {
    let url = String::from_utf8_lossy(data);
    match Config::from_url(&url) {
        Ok(config) => {
            let _ = format!("{config:?} {}", config.addr());
        }
        Err(e @ Error::Client { .. }) => {
            let _ = e.to_string();
        }
        Err(e) => panic!("{url:?}: not a client error: {e:?}"),
    }
    if let Ok(parts) = UrlParts::arbitrary(&mut Unstructured::new(data)) {
        parts.round_trip();
    }
}

/// The parts of a TCP connection URL, as [`config_url`] writes and expects them back.
#[derive(Debug)]
struct UrlParts {
    scheme: &'static str,
    username: Option<String>,
    password: Option<String>,
    /// Credentials in the query (`?username=…&password=…`) rather than before the host.
    credentials_in_query: bool,
    host: String,
    port: Option<u16>,
    db: Option<u16>,
    db_in_query: bool,
    protocol: Option<(&'static str, crate::Protocol)>,
}

impl UrlParts {
    fn arbitrary(u: &mut Unstructured<'_>) -> arbitrary::Result<UrlParts> {
        use crate::Protocol::{Resp2, Resp3};
        let password: Option<String> = u.arbitrary()?;
        // A user name needs a password: `redis://name@host` reads `name` as the password.
        let username = match &password {
            Some(_) => u.arbitrary::<Option<String>>()?.filter(|n| !n.is_empty()),
            None => None,
        };
        let host = match u.choose_index(3)? {
            0 => String::new(),
            1 => (*u.choose(&["::1", "fe80::1", "2001:db8::7"])?).to_owned(),
            _ => {
                let n = u.int_in_range(1..=24)?;
                let chars = b"abcdefghijklmnopqrstuvwxyz0123456789.-_";
                (0..n)
                    .map(|_| u.choose(chars).map(|&c| c as char))
                    .collect::<arbitrary::Result<String>>()?
            }
        };
        Ok(UrlParts {
            scheme: u.choose(&["redis", "valkey"])?,
            username,
            password,
            credentials_in_query: u.arbitrary()?,
            host,
            port: u.arbitrary()?,
            db: u.arbitrary()?,
            db_in_query: u.arbitrary()?,
            protocol: u.arbitrary::<bool>()?.then_some(*u.choose(&[
                ("2", Resp2),
                ("resp2", Resp2),
                ("3", Resp3),
                ("resp3", Resp3),
            ])?),
        })
    }

    fn url(&self) -> String {
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        let mut url = format!("{}://", self.scheme);
        let mut query = Vec::new();
        if self.credentials_in_query {
            if let Some(u) = &self.username {
                query.push(format!("username={}", enc(u)));
            }
            if let Some(p) = &self.password {
                query.push(format!("password={}", enc(p)));
            }
        } else if let Some(p) = &self.password {
            let user = self.username.as_deref().map(enc).unwrap_or_default();
            url += &format!("{user}:{}@", enc(p));
        }
        if self.host.contains(':') {
            url += &format!("[{}]", self.host);
        } else {
            url += &self.host;
        }
        if let Some(port) = self.port {
            url += &format!(":{port}");
        }
        match self.db {
            Some(db) if self.db_in_query => query.push(format!("db={db}")),
            Some(db) => url += &format!("/{db}"),
            None => {}
        }
        if let Some((p, _)) = self.protocol {
            query.push(format!("protocol={p}"));
        }
        if !query.is_empty() {
            url += "?";
            url += &query.join("&");
        }
        url
    }

    /// Parses the URL and checks every part came back as written.
    fn round_trip(&self) {
        let url = self.url();
        let config = Config::from_url(&url)
            .unwrap_or_else(|e| panic!("{url:?} (from {self:?}) refused: {e}"));
        let host = if self.host.is_empty() {
            "127.0.0.1"
        } else {
            &self.host
        };
        let want = crate::Addr::Tcp {
            host: host.to_owned(),
            port: self.port.unwrap_or(6379),
        };
        assert_eq!(config.addr, want, "{url:?}: address");
        assert_eq!(config.db, i64::from(self.db.unwrap_or(0)), "{url:?}: db");
        assert_eq!(config.username, self.username, "{url:?}: username");
        assert_eq!(config.password, self.password, "{url:?}: password");
        let protocol = self.protocol.map_or(crate::Protocol::Resp3, |(_, p)| p);
        assert_eq!(config.protocol, protocol, "{url:?}: protocol");
    }
}
