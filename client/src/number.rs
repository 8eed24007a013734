//! How numbers in replies are read: one set of rules for every reply type and both protocols.
//!
//! A number reaches the client as a RESP integer (`:`), a RESP3 double (`,`) or big number (`(`),
//! a RESP3 boolean (RESP2 sends the same values as `:1`/`:0`), or as text in a bulk, simple or
//! verbatim string (RESP2 sends every double as text, and hash fields are always text). The rules:
//!
//! - **Integer text** (`[+-]digits`) is the integer it spells, exactly.
//! - **Floating-point text** (with a `.` or an exponent, or a libc spelling of infinity or NaN:
//!   `inf`, `-inf`, `Infinity`, `INF`, `nan`, `-nan`, `NaN`, `nan(0x1)`, …) is the double it
//!   spells, rounded to nearest: servers print a double with enough digits to read it back, so
//!   `"1.0000000000000001e+300"` (Redis 7.0) and `"1e+300"` (Valkey) are both the double 1e300,
//!   the same value a RESP3 `,` frame carries. Text that overflows a double (`1e400`) is not a
//!   number.
//! - **Into an integer type**: an integer must fit the type; a double must be finite, have no
//!   fractional part and fit the type. Anything else is a decode error, never a saturated or
//!   truncated value.
//! - **Into `f64`**: a double as it is; a RESP integer (`:`) only when the double holds it
//!   exactly (`2^53 + 1` is refused: a counter is exact, and a rounded one is a wrong one); text
//!   of any spelling, integer digits and big numbers included, as the nearest double, as `"0.1"`
//!   is (decimal text is what servers print doubles as: `INCRBYFLOAT` prints its long double in
//!   full, `1e23` as 24 digits, and that result must read back as the double it is nearest to).
//!   RESP2 sends as text what RESP3 sends as a double or big number, so this keeps the two
//!   protocols in agreement.
//! - **Into `f32`**: the `f64`, rounded to the nearest `f32` when it has a fractional part; an
//!   integral value must be held exactly (`16777217`, `1e300` are refused), so an integer, a
//!   RESP3 double and a RESP2 score text of the same value all agree.
//!
//! Leading or trailing spaces, hexadecimal, digit separators and empty text are not numbers.

use crate::Value;

/// An integer of any width that fits 128 bits, signed or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Integer {
    /// Below zero.
    Negative(i128),
    /// Zero or above.
    NonNegative(u128),
}

/// 2^127 and 2^128 as doubles (both exact).
const TWO_127: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;
const TWO_128: f64 = 2.0 * TWO_127;

impl Integer {
    /// The integer as `T`, if it fits.
    pub(crate) fn to<T: TryFrom<i128> + TryFrom<u128>>(self) -> Option<T> {
        match self {
            Integer::Negative(i) => T::try_from(i).ok(),
            Integer::NonNegative(u) => T::try_from(u).ok(),
        }
    }

    /// The integer a double holds: `None` when it is not finite, has a fractional part or lies
    /// beyond 128 bits.
    pub(crate) fn from_f64(d: f64) -> Option<Integer> {
        if !d.is_finite() || d.fract() != 0.0 {
            return None;
        }
        if d < 0.0 {
            // In range, the cast is exact: `d` is integral.
            (d >= -TWO_127).then_some(Integer::Negative(d as i128))
        } else {
            (d < TWO_128).then_some(Integer::NonNegative(d as u128))
        }
    }

    /// The double that holds exactly this integer, if there is one.
    pub(crate) fn to_f64(self) -> Option<f64> {
        match self {
            Integer::Negative(i) => {
                let d = i as f64;
                (d >= -TWO_127 && d as i128 == i).then_some(d)
            }
            Integer::NonNegative(u) => {
                let d = u as f64;
                (d < TWO_128 && d as u128 == u).then_some(d)
            }
        }
    }
}

impl From<i64> for Integer {
    fn from(i: i64) -> Integer {
        if i < 0 {
            Integer::Negative(i as i128)
        } else {
            Integer::NonNegative(i as u128)
        }
    }
}

/// A number as text spells it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Spelled<'a> {
    /// `[+-]digits`: the sign and the digits.
    Integer { negative: bool, digits: &'a [u8] },
    /// Floating-point notation or a spelling of infinity or NaN, read as the nearest double.
    Float(f64),
}

/// Reads text as a number; `None` when it is not one (or overflows a double).
fn spelled(text: &[u8]) -> Option<Spelled<'_>> {
    let (negative, body) = match text.first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if !body.is_empty() && body.iter().all(u8::is_ascii_digit) {
        return Some(Spelled::Integer {
            negative,
            digits: body,
        });
    }
    if let Some(special) = special(body) {
        return Some(Spelled::Float(if negative { -special } else { special }));
    }
    if !is_decimal_float(body) {
        return None;
    }
    // The grammar is checked: Rust's parser reads it correctly rounded.
    let d: f64 = std::str::from_utf8(text).ok()?.parse().ok()?;
    d.is_finite().then_some(Spelled::Float(d))
}

/// The libc spellings of infinity and NaN (any case; NaN with an optional `(chars)` payload), as
/// `strtod` accepts them and `printf` writes them. Without a sign.
fn special(body: &[u8]) -> Option<f64> {
    if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        return Some(f64::INFINITY);
    }
    let nan = body.get(..3)?.eq_ignore_ascii_case(b"nan");
    let payload = match &body[3..] {
        [] => true,
        [b'(', inner @ .., b')'] => inner
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_'),
        _ => false,
    };
    (nan && payload).then_some(f64::NAN)
}

/// `digits [. digits] [e|E [+-] digits]` with at least one mantissa digit and a `.` or an
/// exponent (without a sign).
fn is_decimal_float(body: &[u8]) -> bool {
    let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
    let int = digits(body);
    let mut at = int;
    let mut frac = 0;
    let dot = body.get(at) == Some(&b'.');
    if dot {
        at += 1;
        frac = digits(&body[at..]);
        at += frac;
    }
    if int + frac == 0 {
        return false;
    }
    let exp = matches!(body.get(at), Some(b'e' | b'E'));
    if exp {
        at += 1;
        if matches!(body.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let n = digits(&body[at..]);
        if n == 0 {
            return false;
        }
        at += n;
    }
    (dot || exp) && at == body.len()
}

/// The integer spelled by `digits`, if it fits 128 bits.
fn integer_of_digits(negative: bool, digits: &[u8]) -> Option<Integer> {
    let magnitude: u128 = if digits.len() <= 19 {
        // Below 10^19 < 2^64: no overflow check needed (the common case).
        u128::from(
            digits
                .iter()
                .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')),
        )
    } else {
        let mut m: u128 = 0;
        for &d in digits {
            m = m.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
        }
        m
    };
    if !negative || magnitude == 0 {
        Some(Integer::NonNegative(magnitude))
    } else if magnitude <= 1 << 127 {
        // 2^127 wraps to i128::MIN, which is -2^127.
        Some(Integer::Negative((magnitude as i128).wrapping_neg()))
    } else {
        None
    }
}

/// The double a RESP3 `,` frame (or any floating-point or integer text) spells; `None` when the
/// text is not a number.
pub(crate) fn parse_double(text: &[u8]) -> Option<f64> {
    match spelled(text)? {
        Spelled::Float(d) => Some(d),
        Spelled::Integer { negative, digits } => {
            let d: f64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
            d.is_finite().then_some(if negative { -d } else { d })
        }
    }
}

/// The text of a string-like reply (a big number is its text too).
fn text(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BigNumber(s) => Some(s.as_bytes()),
        v => v.as_bytes(),
    }
}

/// The integer a reply holds, by the rules of this module; `None` when it holds none, or one
/// beyond 128 bits.
pub(crate) fn integer(value: &Value) -> Option<Integer> {
    match value {
        Value::Int(i) => Some(Integer::from(*i)),
        Value::Boolean(b) => Some(Integer::NonNegative(u128::from(*b))),
        Value::Double(d) => Integer::from_f64(*d),
        v => match spelled(text(v)?)? {
            Spelled::Integer { negative, digits } => integer_of_digits(negative, digits),
            Spelled::Float(d) => Integer::from_f64(d),
        },
    }
}

/// The double a reply holds, by the rules of this module; `None` when it holds none, or a RESP
/// integer no double holds exactly.
pub(crate) fn float(value: &Value) -> Option<f64> {
    match value {
        Value::Double(d) => Some(*d),
        Value::Int(i) => Integer::from(*i).to_f64(),
        Value::Boolean(b) => Some(f64::from(u8::from(*b))),
        v => parse_double(text(v)?),
    }
}

/// [`float`] as an `f32`: a value with a fractional part rounds to the nearest `f32`; an integral
/// one must be held exactly (`16777217` and `1e300` are `None`), whether it came as an integer,
/// a double or text, so both protocols agree; infinities and NaN pass.
pub(crate) fn float32(value: &Value) -> Option<f32> {
    let d = float(value)?;
    let f = d as f32;
    if !d.is_finite() {
        Some(f)
    } else if d.fract() == 0.0 {
        (f64::from(f) == d).then_some(f)
    } else {
        // Fractional doubles are below 2^52: rounding cannot overflow.
        f.is_finite().then_some(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{exact_decimal, format_double};
    use bytes::Bytes;

    fn bulk(s: &str) -> Value {
        Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn every_libc_spelling_of_infinity_and_nan() {
        for s in [
            "inf",
            "+inf",
            "Inf",
            "INF",
            "infinity",
            "Infinity",
            "INFINITY",
            "+infinity",
        ] {
            assert_eq!(parse_double(s.as_bytes()), Some(f64::INFINITY), "{s}");
            let neg = format!("-{s}").replace("-+", "-");
            assert_eq!(
                parse_double(neg.as_bytes()),
                Some(f64::NEG_INFINITY),
                "{neg}"
            );
        }
        for s in [
            "nan",
            "-nan",
            "+nan",
            "NaN",
            "NAN",
            "-NaN",
            "nan(0x1)",
            "-nan(0x8000000000000)",
            "NAN(123)",
            "nan()",
            "nan(abc_1)",
        ] {
            assert!(parse_double(s.as_bytes()).is_some_and(f64::is_nan), "{s}");
        }
        for s in [
            "", "-", "+", "in", "infin", "nan(", "nan(0x1", "nan(0 1)", "nan)", " inf", "inf ",
            "--inf", "+-inf", "nanx", "infx",
        ] {
            assert_eq!(parse_double(s.as_bytes()), None, "{s:?}");
        }
    }

    #[test]
    fn decimal_spellings() {
        let cases: &[(&str, f64)] = &[
            ("0", 0.0),
            ("-0", -0.0),
            ("1.5", 1.5),
            ("+5", 5.0),
            ("5.", 5.0),
            (".5", 0.5),
            ("1e300", 1e300),
            ("1e+300", 1e300),
            ("1.0000000000000001e+300", 1e300),
            ("1E-5", 1e-5),
            ("-2.5e3", -2500.0),
            ("0.10000000000000001", 0.1),
            ("9007199254740993", 9007199254740992.0),
        ];
        for &(s, want) in cases {
            let got = parse_double(s.as_bytes()).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(got.to_bits(), want.to_bits(), "{s}");
        }
        for s in [
            " 5", "5 ", "0x10", "1_000", "1e", "1e+", "e5", ".", "-.", "1.2.3", "1e400", "-1e400",
            "five", "5a", "１",
        ] {
            assert_eq!(parse_double(s.as_bytes()), None, "{s:?}");
        }
    }

    #[test]
    fn integers_at_every_width_edge() {
        fn check<T>(min: T, max: T)
        where
            T: TryFrom<i128>
                + TryFrom<u128>
                + std::fmt::Display
                + PartialEq
                + std::fmt::Debug
                + Copy,
        {
            let at = |s: String| integer(&bulk(&s)).and_then(Integer::to::<T>);
            assert_eq!(at(min.to_string()), Some(min));
            assert_eq!(at(max.to_string()), Some(max));
            // One past each edge, as exact text.
            let past_max = (max.to_string().parse::<u128>().unwrap()).checked_add(1);
            if let Some(p) = past_max {
                assert_eq!(at(p.to_string()), None, "max + 1");
            }
            let min_i: i128 = min.to_string().parse().unwrap();
            if let Some(p) = min_i.checked_sub(1) {
                assert_eq!(at(p.to_string()), None, "min - 1");
            }
        }
        check(i8::MIN, i8::MAX);
        check(i16::MIN, i16::MAX);
        check(i32::MIN, i32::MAX);
        check(i64::MIN, i64::MAX);
        check(i128::MIN, i128::MAX);
        check(isize::MIN, isize::MAX);
        check(u8::MIN, u8::MAX);
        check(u16::MIN, u16::MAX);
        check(u32::MIN, u32::MAX);
        check(u64::MIN, u64::MAX);
        check(u128::MIN, u128::MAX);
        check(usize::MIN, usize::MAX);
        // Beyond 128 bits in either direction.
        assert_eq!(
            integer(&bulk("340282366920938463463374607431768211456")),
            None
        );
        assert_eq!(
            integer(&bulk("-170141183460469231731687303715884105729")),
            None
        );
        assert_eq!(
            integer(&bulk("-170141183460469231731687303715884105728")),
            Some(Integer::Negative(i128::MIN))
        );
    }

    #[test]
    fn doubles_into_integers_are_exact_or_refused() {
        let int = |d: f64| Integer::from_f64(d);
        assert_eq!(int(3.0), Some(Integer::NonNegative(3)));
        assert_eq!(int(-0.0), Some(Integer::NonNegative(0)));
        assert_eq!(int(-3.0), Some(Integer::Negative(-3)));
        assert_eq!(int(3.5), None);
        assert_eq!(int(f64::NAN), None);
        assert_eq!(int(f64::INFINITY), None);
        assert_eq!(int(f64::NEG_INFINITY), None);
        assert_eq!(int(1e300), None);
        assert_eq!(int(-1e300), None);
        assert_eq!(int(TWO_128), None);
        assert_eq!(int(-TWO_127), Some(Integer::Negative(i128::MIN)));
        assert_eq!(int(-TWO_127 * 2.0), None);
        // The largest double below 2^128 fits u128 but not i128.
        let below = f64::from_bits(TWO_128.to_bits() - 1);
        assert_eq!(
            int(below).and_then(Integer::to::<u128>),
            Some(below as u128)
        );
        assert_eq!(int(below).and_then(Integer::to::<i128>), None);
        // 2^63 is one past i64::MAX: no saturation.
        assert_eq!(
            int(9223372036854775808.0).and_then(Integer::to::<i64>),
            None
        );
        assert_eq!(
            int(9223372036854775808.0).and_then(Integer::to::<u64>),
            Some(1 << 63)
        );
        assert_eq!(
            int(-9223372036854775808.0).and_then(Integer::to::<i64>),
            Some(i64::MIN)
        );
        assert_eq!(int(256.0).and_then(Integer::to::<u8>), None);
        assert_eq!(int(-1.0).and_then(Integer::to::<u64>), None);
    }

    #[test]
    fn integers_into_doubles_are_exact_or_refused() {
        assert_eq!(float(&Value::Int(1 << 53)), Some(9007199254740992.0));
        assert_eq!(float(&Value::Int((1 << 53) + 1)), None);
        assert_eq!(float(&Value::Int(-(1 << 53) - 1)), None);
        assert_eq!(float(&Value::Int(i64::MAX)), None);
        assert_eq!(float(&Value::Int(i64::MIN)), Some(-9223372036854775808.0));
        // Text is the nearest double, whatever its spelling (what INCRBYFLOAT prints).
        assert_eq!(float(&bulk("9007199254740993")), Some(9007199254740992.0));
        assert_eq!(
            float(&Value::BigNumber("9007199254740993".into())),
            Some(9007199254740992.0)
        );
        assert_eq!(float(&bulk("100000000000000000000000")), Some(1e23));
        assert_eq!(
            float(&bulk("18446744073709551616")),
            Some(18446744073709551616.0)
        );
        assert_eq!(
            float(&bulk("340282366920938463463374607431768211455")),
            Some(340282366920938463463374607431768211455.0)
        );
        // INCRBYFLOAT prints long doubles in full: 1e300 as a long double reads as 1e300.
        let incrbyfloat_1e300 = "1000000000000000000008997324079559193870523944273290747938260082321265646596180935755849152083750497190350372508614274835903592556184672983913096260520748646287327135641843653294084255107606016789726652932370030551382947620994540294772781889620606179267611627097410650567187386105690089424915104006144";
        assert_eq!(float(&bulk(incrbyfloat_1e300)), Some(1e300));
        assert_eq!(exact_decimal(1e300).len(), 301);
        assert_eq!(float(&bulk(&exact_decimal(1e300))), Some(1e300));
        // Beyond a double's range is not a number.
        assert_eq!(float(&bulk(&"9".repeat(400))), None);
    }

    #[test]
    fn the_same_number_in_both_protocols_reads_the_same() {
        // (RESP3 value, RESP2 text the servers send for it)
        let pairs: &[(Value, &str)] = &[
            (Value::Double(1e300), "1e+300"),
            (Value::Double(1e300), "1.0000000000000001e+300"),
            (Value::Double(f64::INFINITY), "inf"),
            (Value::Double(f64::NEG_INFINITY), "-inf"),
            (Value::Double(0.1), "0.10000000000000001"),
            (Value::Double(0.1), "0.1"),
            (Value::Double(5.0), "5"),
            (Value::Double(1e17), "1e+17"),
            (Value::Double(1e17), "100000000000000000"),
            (
                Value::Double(1152921504606846976.0),
                "1.152921504606847e+18",
            ),
            (Value::Double(1152921504606846976.0), "1152921504606846976"),
            (Value::Boolean(true), "1"),
            (Value::Int(-7), "-7"),
            (Value::BigNumber("123".into()), "123"),
            (Value::BigNumber("1e5".into()), "1e5"),
        ];
        for (resp3, text) in pairs {
            let resp2 = bulk(text);
            assert_eq!(integer(resp3), integer(&resp2), "{resp3:?} / {text}");
            assert_eq!(
                float(resp3).map(f64::to_bits),
                float(&resp2).map(f64::to_bits),
                "{resp3:?} / {text}"
            );
            assert_eq!(
                float32(resp3).map(f32::to_bits),
                float32(&resp2).map(f32::to_bits),
                "{resp3:?} / {text}"
            );
        }
        for (resp3, text) in [
            (Value::Double(f64::NAN), "nan"),
            (Value::Double(-f64::NAN), "-nan"),
        ] {
            let resp2 = bulk(text);
            assert!(float(&resp3).is_some_and(f64::is_nan));
            assert!(float(&resp2).is_some_and(f64::is_nan));
            assert_eq!(integer(&resp3), None);
            assert_eq!(integer(&resp2), None);
        }
    }

    #[test]
    fn f32_rounds_fractions_and_holds_integers_exactly() {
        assert_eq!(float32(&Value::Double(0.1)), Some(0.1f32));
        assert_eq!(float32(&bulk("0.1")), Some(0.1f32));
        assert_eq!(float32(&bulk("0.10000000000000001")), Some(0.1f32));
        assert_eq!(float32(&Value::Double(1.5)), Some(1.5));
        assert_eq!(float32(&Value::Int(16_777_216)), Some(16_777_216.0));
        for v in [
            Value::Int(16_777_217),
            Value::Double(16_777_217.0),
            bulk("16777217"),
            bulk("1.6777217e+7"),
            Value::Double(1e300),
            bulk("-1e39"),
            Value::Double(1e30),
        ] {
            assert_eq!(float32(&v), None, "{v:?}");
        }
        assert_eq!(
            float32(&Value::Double(2f64.powi(100))),
            Some(2f32.powi(100))
        );
        assert_eq!(float32(&Value::Double(f64::INFINITY)), Some(f32::INFINITY));
        assert!(float32(&bulk("nan")).is_some_and(f32::is_nan));
    }

    #[test]
    fn what_is_not_a_number() {
        for v in [
            Value::Nil,
            Value::Array(vec![]),
            bulk(""),
            bulk("abc"),
            bulk(" 5"),
            bulk("5 "),
            bulk("0x1f"),
            bulk("1,5"),
            Value::Simple("OK".into()),
            Value::BigNumber(String::new().into()),
        ] {
            assert_eq!(integer(&v), None, "{v:?}");
            assert_eq!(float(&v), None, "{v:?}");
        }
        assert_eq!(integer(&bulk("5.5")), None);
        assert_eq!(integer(&bulk("5.0")), Some(Integer::NonNegative(5)));
        assert_eq!(integer(&bulk("1e3")), Some(Integer::NonNegative(1000)));
        assert_eq!(integer(&bulk("inf")), None);
        assert_eq!(integer(&bulk("nan")), None);
        assert_eq!(integer(&bulk("1e300")), None);
    }

    #[test]
    fn doubles_format_as_servers_print_them() {
        let cases: &[(f64, &str)] = &[
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.0, "0"),
            (5.0, "5"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e17, "100000000000000000"),
            (1152921504606846976.0, "1152921504606846976"),
            (-1152921504606846976.0, "-1152921504606846976"),
            (9007199254740992.0, "9007199254740992"),
            (1e21, "1e+21"),
            (1e300, "1e+300"),
            (-1e300, "-1e+300"),
            (1e-7, "1e-7"),
        ];
        for &(d, want) in cases {
            assert_eq!(format_double(d), want);
            if !d.is_nan() {
                assert_eq!(parse_double(want.as_bytes()), Some(d), "{want}");
            }
        }
    }

    proptest::proptest! {
        /// Any double, as a RESP3 `,` frame would carry it and as the text a server prints for
        /// RESP2 (shortest, as Valkey; 17 significant digits, as Redis 7.0's `%.17g`), reads the
        /// same into every number type.
        #[test]
        fn any_double_reads_the_same_from_both_protocols(bits in proptest::prelude::any::<u64>()) {
            let d = f64::from_bits(bits);
            let resp3 = Value::Double(d);
            let texts = [format_double(d), format!("{d:.16e}")];
            for text in &texts {
                let resp2 = bulk(text);
                if d.is_nan() {
                    proptest::prop_assert!(float(&resp2).is_some_and(f64::is_nan), "{}", text);
                } else {
                    proptest::prop_assert_eq!(float(&resp2).map(f64::to_bits), float(&resp3).map(f64::to_bits), "{}", text);
                }
                proptest::prop_assert_eq!(integer(&resp2), integer(&resp3), "{}", text);
                proptest::prop_assert_eq!(
                    float32(&resp2).map(|f| f.is_nan() || f64::from(f) == d),
                    float32(&resp3).map(|f| f.is_nan() || f64::from(f) == d),
                    "{}", text
                );
            }
        }

        /// Any integer, as a RESP integer and as text, reads the same as an integer; as a double,
        /// text is the nearest one and a RESP integer an exact one or none.
        #[test]
        fn any_integer_reads_the_same_as_text(i in proptest::prelude::any::<i64>()) {
            let text = bulk(&i.to_string());
            proptest::prop_assert_eq!(integer(&text), Some(Integer::from(i)));
            proptest::prop_assert_eq!(integer(&Value::Int(i)), Some(Integer::from(i)));
            // Text is the nearest double; a RESP integer only an exact one, and then the same.
            proptest::prop_assert_eq!(float(&text), Some(i as f64));
            if let Some(d) = float(&Value::Int(i)) {
                proptest::prop_assert_eq!(d as i128, i as i128);
                proptest::prop_assert_eq!(Some(d), float(&text));
            }
        }
    }
}
