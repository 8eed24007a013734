//! An incremental RESP2/RESP3 reply parser.
//!
//! Parsing runs in two passes over each reply. The *scan* pass walks frame headers, checks the
//! configured [`Limits`] and finds where the reply ends; it allocates nothing and, when the
//! buffer holds only part of a reply, remembers how far it got so the next call resumes there
//! instead of starting over. Once a whole reply is in the buffer, the *build* pass splits it off
//! and turns it into a [`Value`], with bulk strings as zero-copy [`Bytes`] slices. Because
//! aggregates are only built after all their elements have arrived, a header that announces a
//! huge length costs nothing until the bytes are really there.

use crate::{Error, Result, ServerError, Value};
use bytes::{Bytes, BytesMut};
use std::borrow::Cow;

/// Caps that keep a broken or hostile server from exhausting the client. Breaking one is an
/// [`Error::Protocol`]; the connection is then closed.
///
/// ```
/// let limits = ringdis::Limits { max_depth: 8, ..Default::default() };
/// assert_eq!(limits.max_bulk_len, 512 * 1024 * 1024);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of aggregates (arrays, maps, sets, pushes, attributes). Default 128.
    pub max_depth: usize,
    /// Longest bulk string, verbatim string or blob error, in bytes. Default 512 MiB (the
    /// server's own `proto-max-bulk-len` default).
    pub max_bulk_len: usize,
    /// Most elements in one aggregate. Default 2^32.
    pub max_aggregate_len: usize,
    /// Longest line (simple string, error, number, header), in bytes. Default 1 MiB.
    pub max_line_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 128,
            max_bulk_len: 512 * 1024 * 1024,
            max_aggregate_len: 1 << 32,
            max_line_len: 1024 * 1024,
        }
    }
}

/// Incremental reply parser: call [`Parser::parse`] whenever bytes were appended to the buffer.
///
/// ```
/// use bytes::BytesMut;
/// use ringdis::{Parser, Value};
/// let mut parser = Parser::default();
/// let mut buf = BytesMut::from(&b"*2\r\n:1\r\n$3\r\nab"[..]);
/// assert_eq!(parser.parse(&mut buf).unwrap(), None); // not all there yet
/// buf.extend_from_slice(b"c\r\n+OK\r\n");
/// assert_eq!(
///     parser.parse(&mut buf).unwrap(),
///     Some(Value::Array(vec![Value::Int(1), Value::Bulk("abc".into())]))
/// );
/// assert_eq!(parser.parse(&mut buf).unwrap(), Some(Value::Simple("OK".into())));
/// assert!(buf.is_empty());
/// ```
#[derive(Debug, Default)]
pub struct Parser {
    limits: Limits,
    /// Offset in the buffer up to which the current reply has been scanned.
    pos: usize,
    /// For each open aggregate, how many elements are still to come.
    open: Vec<u64>,
}

impl Parser {
    /// A parser with the given limits.
    pub fn new(limits: Limits) -> Parser {
        Parser {
            limits,
            pos: 0,
            open: Vec::new(),
        }
    }

    /// Forgets any partly scanned reply (for a new connection).
    pub fn reset(&mut self) {
        self.pos = 0;
        self.open.clear();
    }

    /// Takes one complete reply off the front of `buf`, or returns `Ok(None)` when the buffer
    /// does not hold a whole one yet. An error means the stream is broken: the buffer is left as
    /// it is and the connection should be closed.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Value>> {
        match self.scan(buf) {
            Ok(Some(len)) => {
                self.reset();
                let frame = buf.split_to(len).freeze();
                let mut at = 0;
                build(&frame, &mut at).map(Some).inspect_err(|_| {
                    // The frame was whole but its content is not valid: put it back, so the
                    // buffer is left as it is (a copy, once, on a connection about to close).
                    let rest = std::mem::take(buf);
                    buf.extend_from_slice(&frame);
                    buf.extend_from_slice(&rest);
                })
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.reset();
                Err(e)
            }
        }
    }

    /// Advances the scan; `Some(len)` once a whole reply of `len` bytes is in `buf`.
    fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>> {
        loop {
            let Some(&kind) = buf.get(self.pos) else {
                return Ok(None);
            };
            let Some((line, next)) = read_line(buf, self.pos + 1, &self.limits)? else {
                return Ok(None);
            };
            let children: u64 = match kind {
                b'+' | b'-' | b':' | b',' | b'(' | b'#' | b'_' => 0,
                b'$' | b'!' | b'=' => {
                    let len = parse_len(line, kind)?;
                    if len < 0 {
                        if kind != b'$' || len != -1 {
                            return Err(bad_header(kind, line));
                        }
                        self.pos = next;
                        0
                    } else {
                        let len = len as u64;
                        if len > self.limits.max_bulk_len as u64 {
                            return Err(Error::protocol(format!(
                                "bulk of {len} bytes exceeds the limit of {}",
                                self.limits.max_bulk_len
                            )));
                        }
                        let end = next as u64 + len + 2;
                        if (buf.len() as u64) < end {
                            return Ok(None);
                        }
                        let end = end as usize;
                        if &buf[end - 2..end] != b"\r\n" {
                            return Err(Error::protocol(
                                "bulk string not terminated by CRLF".to_owned(),
                            ));
                        }
                        self.pos = end;
                        0
                    }
                }
                b'*' | b'%' | b'~' | b'>' | b'|' => {
                    let count = parse_len(line, kind)?;
                    if count < 0 {
                        if kind != b'*' || count != -1 {
                            return Err(bad_header(kind, line));
                        }
                        0
                    } else {
                        let count = count as u64;
                        if count > self.limits.max_aggregate_len as u64 {
                            return Err(Error::protocol(format!(
                                "aggregate of {count} elements exceeds the limit of {}",
                                self.limits.max_aggregate_len
                            )));
                        }
                        if self.open.len() >= self.limits.max_depth {
                            return Err(Error::protocol(format!(
                                "replies nested deeper than the limit of {}",
                                self.limits.max_depth
                            )));
                        }
                        match kind {
                            b'%' => count * 2,
                            // An attribute map is followed by the value it annotates.
                            b'|' => count * 2 + 1,
                            _ => count,
                        }
                    }
                }
                other => {
                    return Err(Error::protocol(format!(
                        "invalid reply type byte 0x{other:02x}"
                    )))
                }
            };
            if !matches!(kind, b'$' | b'!' | b'=') {
                self.pos = next;
            }
            if children > 0 {
                self.open.push(children);
                continue;
            }
            // One element finished: close every aggregate it completes.
            loop {
                match self.open.last_mut() {
                    None => return Ok(Some(self.pos)),
                    Some(left) => {
                        *left -= 1;
                        if *left > 0 {
                            break;
                        }
                        self.open.pop();
                    }
                }
            }
        }
    }
}

/// Finds the CRLF-terminated line starting at `start`: `(line, offset after CRLF)`.
fn read_line<'a>(
    buf: &'a [u8],
    start: usize,
    limits: &Limits,
) -> Result<Option<(&'a [u8], usize)>> {
    let rest = buf.get(start..).unwrap_or(&[]);
    match memchr::memchr(b'\n', rest) {
        Some(nl) => {
            if nl == 0 || rest[nl - 1] != b'\r' {
                return Err(Error::protocol("line not terminated by CRLF".to_owned()));
            }
            if nl - 1 > limits.max_line_len {
                return Err(line_too_long(limits));
            }
            Ok(Some((&rest[..nl - 1], start + nl + 1)))
        }
        None if rest.len() > limits.max_line_len + 1 => Err(line_too_long(limits)),
        None => Ok(None),
    }
}

fn line_too_long(limits: &Limits) -> Error {
    Error::protocol(format!(
        "line longer than the limit of {} bytes",
        limits.max_line_len
    ))
}

fn bad_header(kind: u8, line: &[u8]) -> Error {
    Error::protocol(format!(
        "invalid length {:?} after '{}'",
        String::from_utf8_lossy(line),
        kind as char
    ))
}

fn parse_len(line: &[u8], kind: u8) -> Result<i64> {
    if line == b"?" {
        return Err(Error::protocol(
            "streamed RESP3 strings and aggregates are not supported".to_owned(),
        ));
    }
    parse_i64(line).ok_or_else(|| bad_header(kind, line))
}

/// Parses a decimal `i64` with an optional sign; `None` on anything else or overflow.
fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?;
        n = if neg {
            n.checked_sub((d - b'0') as i64)?
        } else {
            n.checked_add((d - b'0') as i64)?
        };
    }
    Some(n)
}

fn utf8(line: &[u8]) -> Result<&str> {
    std::str::from_utf8(line).map_err(|_| Error::protocol("line is not valid UTF-8".to_owned()))
}

/// A simple string: the common replies borrowed from statics (no allocation), any other owned.
fn simple(line: &[u8]) -> Result<Cow<'static, str>> {
    Ok(Cow::Borrowed(match line {
        b"OK" => "OK",
        b"PONG" => "PONG",
        b"QUEUED" => "QUEUED",
        _ => return Ok(Cow::Owned(utf8(line)?.to_owned())),
    }))
}

/// Builds the value starting at `*at` in a frame the scan pass already validated.
fn build(frame: &Bytes, at: &mut usize) -> Result<Value> {
    let kind = frame[*at];
    let start = *at + 1;
    let nl = memchr::memchr(b'\n', &frame[start..])
        .ok_or_else(|| Error::protocol("truncated frame".to_owned()))?;
    let line = &frame[start..start + nl - 1];
    *at = start + nl + 1;
    Ok(match kind {
        b'+' => Value::Simple(simple(line)?),
        b'-' => Value::Error(ServerError::from_line(utf8(line)?)),
        b':' => Value::Int(parse_i64(line).ok_or_else(|| {
            Error::protocol(format!(
                "invalid integer {:?}",
                String::from_utf8_lossy(line)
            ))
        })?),
        b',' => Value::Double(parse_double(line)?),
        b'#' => match line {
            b"t" => Value::Boolean(true),
            b"f" => Value::Boolean(false),
            _ => return Err(Error::protocol("invalid boolean".to_owned())),
        },
        b'_' => Value::Nil,
        // Kept as the server spelled it: a script can make a server send any text as a big
        // number (`redis.setresp(3) return {big_number='1e5'}`), which is a value to decode,
        // not a broken stream. Conversions read it by the rules of `number`.
        b'(' => Value::BigNumber(Cow::Owned(utf8(line)?.to_owned())),
        b'$' | b'!' | b'=' => {
            let len = parse_i64(line).unwrap_or(-1);
            if len < 0 {
                return Ok(Value::Nil);
            }
            let body = frame.slice(*at..*at + len as usize);
            *at += len as usize + 2;
            match kind {
                b'$' => Value::Bulk(body),
                b'!' => Value::Error(ServerError::from_line(&String::from_utf8_lossy(&body))),
                _ => {
                    if body.len() < 4 || body[3] != b':' {
                        return Err(Error::protocol(
                            "verbatim string without a format".to_owned(),
                        ));
                    }
                    Value::Verbatim {
                        format: String::from_utf8_lossy(&body[..3]).into_owned(),
                        text: body.slice(4..),
                    }
                }
            }
        }
        _ => {
            let count = parse_i64(line).unwrap_or(-1);
            if count < 0 {
                return Ok(Value::Nil);
            }
            let count = count as usize;
            match kind {
                b'%' => {
                    let mut pairs = Vec::with_capacity(count);
                    for _ in 0..count {
                        let k = build(frame, at)?;
                        let v = build(frame, at)?;
                        pairs.push((k, v));
                    }
                    Value::Map(pairs)
                }
                b'|' => {
                    for _ in 0..count * 2 {
                        build(frame, at)?;
                    }
                    build(frame, at)?
                }
                _ => {
                    let mut items = Vec::with_capacity(count);
                    for _ in 0..count {
                        items.push(build(frame, at)?);
                    }
                    match kind {
                        b'~' => Value::Set(items),
                        b'>' => Value::Push(items),
                        _ => Value::Array(items),
                    }
                }
            }
        }
    })
}

/// A RESP3 double: decimal notation or any libc spelling of infinity and NaN (`inf`, `-inf`,
/// `nan`, `-nan`, `NaN`, `nan(0x1)`, …), which servers before Redis 7.2 send as `printf` wrote
/// them.
fn parse_double(line: &[u8]) -> Result<f64> {
    crate::number::parse_double(line).ok_or_else(|| {
        Error::protocol(format!(
            "invalid double {:?}",
            String::from_utf8_lossy(line)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(bytes: &[u8]) -> Result<Vec<Value>> {
        let mut p = Parser::default();
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(v) = p.parse(&mut buf)? {
            out.push(v);
        }
        assert!(buf.is_empty(), "bytes left over: {buf:?}");
        Ok(out)
    }

    /// Every reply type RESP2 and RESP3 define, one frame each, with the value it must parse to.
    fn corpus() -> Vec<(&'static [u8], Value)> {
        vec![
            (b"+OK\r\n", Value::Simple("OK".into())),
            (
                b"-WRONGTYPE Operation against a key\r\n",
                Value::Error(ServerError {
                    kind: "WRONGTYPE".into(),
                    message: "Operation against a key".into(),
                }),
            ),
            (b":-42\r\n", Value::Int(-42)),
            (b"$5\r\nhello\r\n", Value::Bulk("hello".into())),
            (b"$0\r\n\r\n", Value::Bulk("".into())),
            (b"$-1\r\n", Value::Nil),
            (b"*-1\r\n", Value::Nil),
            (b"_\r\n", Value::Nil),
            (b",3.25\r\n", Value::Double(3.25)),
            (b",inf\r\n", Value::Double(f64::INFINITY)),
            (b",-inf\r\n", Value::Double(f64::NEG_INFINITY)),
            (b"#t\r\n", Value::Boolean(true)),
            (b"#f\r\n", Value::Boolean(false)),
            (
                b"(3492890328409238509324850943850943825024385\r\n",
                Value::BigNumber("3492890328409238509324850943850943825024385".into()),
            ),
            (
                b"=15\r\ntxt:Some string\r\n",
                Value::Verbatim {
                    format: "txt".into(),
                    text: "Some string".into(),
                },
            ),
            (
                b"!21\r\nSYNTAX invalid syntax\r\n",
                Value::Error(ServerError {
                    kind: "SYNTAX".into(),
                    message: "invalid syntax".into(),
                }),
            ),
            (b"*0\r\n", Value::Array(vec![])),
            (
                b"*3\r\n:1\r\n*1\r\n$1\r\nx\r\n_\r\n",
                Value::Array(vec![
                    Value::Int(1),
                    Value::Array(vec![Value::Bulk("x".into())]),
                    Value::Nil,
                ]),
            ),
            (
                b"%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n#f\r\n",
                Value::Map(vec![
                    (Value::Simple("first".into()), Value::Int(1)),
                    (Value::Bulk("second".into()), Value::Boolean(false)),
                ]),
            ),
            (
                b"~2\r\n+a\r\n+b\r\n",
                Value::Set(vec![Value::Simple("a".into()), Value::Simple("b".into())]),
            ),
            (
                b">3\r\n+message\r\n+chan\r\n$2\r\nhi\r\n",
                Value::Push(vec![
                    Value::Simple("message".into()),
                    Value::Simple("chan".into()),
                    Value::Bulk("hi".into()),
                ]),
            ),
            (
                b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*2\r\n:2\r\n:3\r\n",
                Value::Array(vec![Value::Int(2), Value::Int(3)]),
            ),
            (
                b"*2\r\n|1\r\n+ttl\r\n:3\r\n:7\r\n:8\r\n",
                Value::Array(vec![Value::Int(7), Value::Int(8)]),
            ),
        ]
    }

    #[test]
    fn every_reply_type_parses() {
        for (bytes, want) in corpus() {
            let got = parse_all(bytes).unwrap();
            assert_eq!(got, vec![want], "{}", String::from_utf8_lossy(bytes));
        }
        // NaN is not equal to itself: check it apart.
        match &parse_all(b",nan\r\n").unwrap()[..] {
            [Value::Double(d)] => assert!(d.is_nan()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn doubles_in_every_spelling_a_server_may_send() {
        let double = |s: &str| match &parse_all(format!(",{s}\r\n").as_bytes()).unwrap()[..] {
            [Value::Double(d)] => *d,
            other => panic!("{s}: {other:?}"),
        };
        for s in [
            "nan",
            "-nan",
            "NaN",
            "NAN",
            "-NaN",
            "nan(0x1)",
            "-nan(0x8000000000000)",
            "+nan",
        ] {
            assert!(double(s).is_nan(), "{s}");
        }
        for s in [
            "inf", "+inf", "Inf", "INF", "infinity", "Infinity", "INFINITY",
        ] {
            assert_eq!(double(s), f64::INFINITY, "{s}");
            assert_eq!(
                double(&format!("-{s}").replace("-+", "-")),
                f64::NEG_INFINITY,
                "{s}"
            );
        }
        for (s, want) in [
            ("1.0000000000000001e+300", 1e300),
            ("1e+300", 1e300),
            ("1E300", 1e300),
            ("-2.5", -2.5),
            ("5", 5.0),
            ("100000000000000000", 1e17),
            ("0.10000000000000001", 0.1),
        ] {
            assert_eq!(double(s), want, "{s}");
        }
        // A NaN in a stream leaves the stream intact: the next reply parses.
        let got = parse_all(b"*2\r\n,NaN\r\n,nan(0x1)\r\n+OK\r\n").unwrap();
        assert!(matches!(&got[0], Value::Array(a) if a.len() == 2));
        assert_eq!(got[1], Value::Simple("OK".into()));
    }

    #[test]
    fn common_simple_replies_are_borrowed_and_others_owned() {
        let got = parse_all(b"+OK\r\n+PONG\r\n+QUEUED\r\n+OKAY\r\n+\r\n+caf\xc3\xa9\r\n").unwrap();
        let texts: Vec<(&str, bool)> = got
            .iter()
            .map(|v| match v {
                Value::Simple(s) => (&**s, matches!(s, Cow::Borrowed(_))),
                other => panic!("not a simple string: {other:?}"),
            })
            .collect();
        assert_eq!(
            texts,
            [
                ("OK", true),
                ("PONG", true),
                ("QUEUED", true),
                ("OKAY", false),
                ("", false),
                ("café", false),
            ]
        );
        // Invalid UTF-8 is still refused, borrowed names or not.
        assert!(parse_all(b"+O\xffK\r\n").is_err());
    }

    #[test]
    fn big_numbers_keep_the_text_a_script_sent() {
        for s in ["1e5", "-0", "+12", "abc", ""] {
            let got = parse_all(format!("({s}\r\n").as_bytes()).unwrap();
            assert_eq!(got, vec![Value::BigNumber(s.to_owned().into())]);
        }
    }

    #[test]
    fn bulk_strings_are_slices_of_the_read_buffer() {
        let mut buf = BytesMut::from(&b"$5\r\nhello\r\n"[..]);
        let base = buf.as_ptr() as usize;
        let v = Parser::default().parse(&mut buf).unwrap().unwrap();
        let Value::Bulk(b) = v else { panic!() };
        assert_eq!(
            b.as_ptr() as usize,
            base + 4,
            "bulk must point into the read buffer"
        );
    }

    #[test]
    fn broken_streams_are_protocol_errors() {
        let cases: &[&[u8]] = &[
            b"?what\r\n",
            b"$3\r\nabcXY",
            b":12a\r\n",
            b":99999999999999999999\r\n",
            b"*-2\r\n",
            b"$-5\r\n",
            b"%-1\r\n",
            b"#x\r\n",
            b",abc\r\n",
            b",\r\n",
            b", 1\r\n",
            b",1e400\r\n",
            b",0x10\r\n",
            b",nan(\r\n",
            b"(\xff\r\n",
            b"+OK\n",
            b"$?\r\n",
            b"=2\r\nab\r\n",
        ];
        for &bytes in cases {
            let err = parse_all(bytes).unwrap_err();
            assert!(
                matches!(err, Error::Protocol { .. }),
                "{bytes:?} -> {err:?}"
            );
        }
    }

    /// Found by the `resp_parse` fuzz target: a reply whose frame is whole but whose content is
    /// invalid (here an integer that is not a number) used to be taken off the buffer although
    /// the error promises to leave it as it is.
    #[test]
    fn a_broken_reply_leaves_the_buffer_as_it_is() {
        for bytes in [
            &b":s://h?dj=464\r\n"[..],
            b"*2\r\n:1\r\n#x\r\n+next\r\n",
            b",1.5.5\r\n",
        ] {
            let mut buf = BytesMut::from(bytes);
            let err = Parser::default().parse(&mut buf).unwrap_err();
            assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
            assert_eq!(&buf[..], bytes, "{err}");
        }
    }

    #[test]
    fn limits_are_enforced_before_anything_is_allocated() {
        let limits = Limits {
            max_depth: 3,
            max_bulk_len: 10,
            max_aggregate_len: 5,
            max_line_len: 24,
        };
        let check = |bytes: &[u8], what: &str| {
            let mut p = Parser::new(limits);
            let err = p.parse(&mut BytesMut::from(bytes)).unwrap_err();
            assert!(err.to_string().contains(what), "{err}");
        };
        check(b"*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", "nested deeper");
        // The announced length alone trips the limit: no data needs to follow.
        check(b"$11\r\n", "bulk of 11 bytes");
        check(b"*6\r\n", "aggregate of 6");
        check(b"*9223372036854775807\r\n", "aggregate of");
        check(b"+0123456789abcdefghijklmnopqrstuvwxyz", "line longer");
        check(b"+0123456789abcdefghijklmnopqrstuvwxyz\r\n", "line longer");
        // At the limits it still parses.
        let mut p = Parser::new(limits);
        let mut buf = BytesMut::from(&b"*1\r\n*1\r\n*1\r\n$10\r\n0123456789\r\n"[..]);
        assert!(p.parse(&mut buf).unwrap().is_some());
    }

    /// One stream with every reply of the corpus, back to back.
    fn stream() -> (Vec<u8>, usize) {
        let c = corpus();
        (
            c.iter().flat_map(|(b, _)| b.iter().copied()).collect(),
            c.len(),
        )
    }

    #[test]
    fn every_cut_of_the_stream_parses_the_same() {
        let (bytes, n) = stream();
        let whole = parse_all(&bytes).unwrap();
        assert_eq!(whole.len(), n);
        for cut in 0..=bytes.len() {
            let mut p = Parser::default();
            let mut buf = BytesMut::from(&bytes[..cut]);
            let mut got = Vec::new();
            while let Some(v) = p.parse(&mut buf).unwrap() {
                got.push(v);
            }
            buf.extend_from_slice(&bytes[cut..]);
            while let Some(v) = p.parse(&mut buf).unwrap() {
                got.push(v);
            }
            assert_eq!(got, whole, "cut at {cut}");
        }
    }

    proptest! {
        /// Feeding the stream in arbitrary chunks (one parse attempt after each) yields the same
        /// replies as feeding it whole.
        #[test]
        fn any_chunking_parses_the_same(cuts in proptest::collection::vec(0usize..400, 0..40)) {
            let (bytes, _) = stream();
            let whole = parse_all(&bytes).unwrap();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.push(bytes.len());
            cuts.sort_unstable();
            let mut p = Parser::default();
            let mut buf = BytesMut::new();
            let mut fed = 0;
            let mut got = Vec::new();
            for cut in cuts {
                buf.extend_from_slice(&bytes[fed..cut]);
                fed = cut;
                while let Some(v) = p.parse(&mut buf).unwrap() {
                    got.push(v);
                }
            }
            prop_assert_eq!(got, whole);
        }

        /// Random bytes never panic the parser: they parse or fail with a protocol error.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut p = Parser::new(Limits { max_line_len: 64, ..Limits::default() });
            let mut buf = BytesMut::from(&bytes[..]);
            loop {
                match p.parse(&mut buf) {
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(Error::Protocol { .. }) => break,
                    Err(e) => panic!("unexpected error {e:?}"),
                }
            }
        }
    }
}
