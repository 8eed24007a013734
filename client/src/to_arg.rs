//! [`ToArg`]: how Rust values become command arguments.

use crate::resp::write_bulk;
use bytes::{Bytes, BytesMut};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The encoded arguments of one command: bulk strings written back to back, and their count.
///
/// Arguments are encoded once, as they are added, straight into one buffer: no per-argument
/// allocation. Numbers are formatted with `itoa` and `ryu`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Args {
    buf: BytesMut,
    count: usize,
    /// Why these arguments cannot be sent, when an argument failed to encode.
    invalid: Option<Box<str>>,
}

impl Args {
    /// Empty arguments.
    pub fn new() -> Args {
        Args::default()
    }

    /// Empty arguments with room for `bytes` of encoded arguments before growing.
    pub fn with_capacity(bytes: usize) -> Args {
        Args {
            buf: BytesMut::with_capacity(bytes),
            ..Args::default()
        }
    }

    /// Appends one argument of raw bytes.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        write_bulk(&mut self.buf, bytes);
        self.count += 1;
    }

    /// Appends one integer argument.
    pub fn push_int(&mut self, n: impl itoa::Integer) {
        let mut b = itoa::Buffer::new();
        self.push_bytes(b.format(n).as_bytes());
    }

    /// Appends one float argument, in the shortest form that reads back to the same value
    /// (`inf`, `-inf` for infinities).
    pub fn push_float(&mut self, f: f64) {
        if f.is_finite() {
            let mut b = ryu::Buffer::new();
            self.push_bytes(b.format_finite(f).as_bytes());
        } else if f.is_nan() {
            self.push_bytes(b"nan");
        } else if f > 0.0 {
            self.push_bytes(b"inf");
        } else {
            self.push_bytes(b"-inf");
        }
    }

    /// Appends all of `other`'s arguments.
    pub fn extend_from(&mut self, other: &Args) {
        self.buf.extend_from_slice(&other.buf);
        self.count += other.count;
        if self.invalid.is_none() {
            self.invalid.clone_from(&other.invalid);
        }
    }

    /// How many bytes the encoded arguments take.
    pub(crate) fn byte_len(&self) -> usize {
        self.buf.len()
    }

    /// Runs `write` so that the arguments it adds land at byte `at` (an argument boundary, at
    /// most [`byte_len`](Args::byte_len)) instead of at the end.
    pub(crate) fn insert_with(&mut self, at: usize, write: impl FnOnce(&mut Args)) {
        let end = self.buf.len();
        write(self);
        // Written at the end, rotated into place: no allocation beyond the buffer's growth.
        if at < end {
            let added = self.buf.len() - end;
            self.buf[at..].rotate_right(added);
        }
    }

    /// Removes the `count` arguments that take the bytes `range` (argument boundaries).
    pub(crate) fn remove(&mut self, range: std::ops::Range<usize>, count: usize) {
        let len = self.buf.len();
        let end = range.end.min(len);
        let start = range.start.min(end);
        self.buf.copy_within(end.., start);
        self.buf.truncate(len - (end - start));
        self.count = self.count.saturating_sub(count);
    }

    /// Removes every argument.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.count = 0;
        self.invalid = None;
    }

    /// Marks the arguments as unsendable, for a [`ToArg`] whose encoding failed (a value that
    /// cannot be serialized, say): a command holding them is not sent, and its call fails with
    /// [`Error::Client`](crate::Error::Client) saying `why`. The first reason is kept.
    ///
    /// ```
    /// use ringdis::{cmd, Args, Client, Error, ToArg};
    ///
    /// struct Broken;
    /// impl ToArg for Broken {
    ///     fn write_args(&self, out: &mut Args) {
    ///         out.set_invalid("Broken cannot be encoded");
    ///     }
    /// }
    ///
    /// let c = cmd!("SET", "k", Broken);
    /// assert_eq!(c.args().invalid(), Some("Broken cannot be encoded"));
    /// # let client = Client::open("redis://127.0.0.1:1")?;
    /// let err = futures::executor::block_on(client.call::<()>(c)).unwrap_err();
    /// assert!(matches!(err, Error::Client { .. }), "{err}");
    /// # Ok::<(), ringdis::Error>(())
    /// ```
    pub fn set_invalid(&mut self, why: impl Into<String>) {
        if self.invalid.is_none() {
            self.invalid = Some(why.into().into_boxed_str());
        }
    }

    /// Why the arguments cannot be sent, if an argument failed to encode.
    pub fn invalid(&self) -> Option<&str> {
        self.invalid.as_deref()
    }

    /// How many arguments there are.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The encoded bulk strings (without the array header).
    pub fn encoded(&self) -> &[u8] {
        &self.buf
    }

    /// Each argument's bytes, in order.
    pub fn iter(&self) -> ArgsIter<'_> {
        ArgsIter { rest: &self.buf }
    }
}

impl Args {
    /// Each argument as text (binary bytes lossily), secrets (the password of `AUTH`…) as `***`:
    /// what `Debug` and `Display` show.
    pub(crate) fn shown(&self) -> impl Iterator<Item = std::borrow::Cow<'_, str>> {
        let args: Vec<&[u8]> = self.iter().collect();
        let hide = crate::secret::secrets(&args);
        args.into_iter().zip(hide).map(|(a, hide)| {
            if hide {
                std::borrow::Cow::Borrowed(crate::secret::HIDDEN)
            } else {
                String::from_utf8_lossy(a)
            }
        })
    }
}

/// The arguments as text, secrets (the password of `AUTH`…) as `***`.
impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.shown()).finish()
    }
}

/// Iterator over the arguments of an [`Args`].
pub struct ArgsIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for ArgsIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        // The buffer only ever holds what `write_bulk` wrote: `$<len>\r\n<bytes>\r\n`. Every
        // request passes the routing gate, which reads its name through here: a digit loop, no
        // search and no `str` parse.
        let (&b'$', rest) = self.rest.split_first()? else {
            return None;
        };
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let len = rest[..digits].iter().try_fold(0usize, |n, &d| {
            n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
        })?;
        let body = rest.get(digits + 2..)?;
        let arg = body.get(..len)?;
        self.rest = body.get(len + 2..)?;
        Some(arg)
    }
}

/// A value that can be sent as one or more command arguments.
///
/// Strings and byte buffers are sent as they are, numbers in decimal. Collections, tuples and
/// maps send each element in turn (a map sends `key value key value …`), which is what commands
/// taking many arguments expect. `Option` sends nothing for `None`.
///
/// `u8` is deliberately not an argument type, so that `Vec<u8>` and `&[u8]` are always one
/// binary argument and never a list of numbers.
///
/// ```
/// use ringdis::{Args, ToArg};
/// let mut args = Args::new();
/// "user:1".write_args(&mut args);
/// 42u32.write_args(&mut args);
/// 1.5f64.write_args(&mut args);
/// [("a", 1), ("b", 2)].write_args(&mut args);
/// let got: Vec<&[u8]> = args.iter().collect();
/// assert_eq!(got, [&b"user:1"[..], b"42", b"1.5", b"a", b"1", b"b", b"2"]);
/// ```
pub trait ToArg {
    /// Appends this value's arguments.
    fn write_args(&self, out: &mut Args);

    /// How many arguments [`ToArg::write_args`] appends (used to fill in counts such as
    /// `numkeys` without encoding twice).
    fn arg_count(&self) -> usize {
        1
    }
}

impl<T: ToArg + ?Sized> ToArg for &T {
    fn write_args(&self, out: &mut Args) {
        (**self).write_args(out)
    }
    fn arg_count(&self) -> usize {
        (**self).arg_count()
    }
}

impl<T: ToArg + ?Sized> ToArg for Box<T> {
    fn write_args(&self, out: &mut Args) {
        (**self).write_args(out)
    }
    fn arg_count(&self) -> usize {
        (**self).arg_count()
    }
}

macro_rules! bytes_arg {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            fn write_args(&self, out: &mut Args) {
                out.push_bytes(AsRef::<[u8]>::as_ref(self));
            }
        }
    )*};
}
bytes_arg!(str, String, [u8], Vec<u8>, Bytes, BytesMut);

impl<const N: usize> ToArg for [u8; N] {
    fn write_args(&self, out: &mut Args) {
        out.push_bytes(self);
    }
}

impl ToArg for std::borrow::Cow<'_, str> {
    fn write_args(&self, out: &mut Args) {
        out.push_bytes(self.as_bytes());
    }
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            fn write_args(&self, out: &mut Args) {
                out.push_int(*self);
            }
        }
    )*};
}
int_arg!(i8, i16, i32, i64, i128, isize, u16, u32, u64, u128, usize);

impl ToArg for f64 {
    fn write_args(&self, out: &mut Args) {
        out.push_float(*self);
    }
}

impl ToArg for f32 {
    fn write_args(&self, out: &mut Args) {
        // Through the decimal form, so 0.1f32 is sent as "0.1", not 0.10000000149011612.
        if self.is_finite() {
            let mut b = ryu::Buffer::new();
            out.push_bytes(b.format_finite(*self).as_bytes());
        } else {
            out.push_float(*self as f64);
        }
    }
}

impl<T: ToArg> ToArg for Option<T> {
    fn write_args(&self, out: &mut Args) {
        if let Some(v) = self {
            v.write_args(out);
        }
    }
    fn arg_count(&self) -> usize {
        self.as_ref().map_or(0, ToArg::arg_count)
    }
}

macro_rules! seq_arg {
    ($($t:ident <$($g:ident),*> $(: $bound:path)?),*) => {$(
        impl<$($g),*> ToArg for $t<$($g),*> where T: ToArg $(, T: $bound)? {
            fn write_args(&self, out: &mut Args) {
                for v in self {
                    v.write_args(out);
                }
            }
            fn arg_count(&self) -> usize {
                self.iter().map(ToArg::arg_count).sum()
            }
        }
    )*};
}
seq_arg!(Vec<T>, BTreeSet<T>);

impl<T: ToArg> ToArg for [T] {
    fn write_args(&self, out: &mut Args) {
        for v in self {
            v.write_args(out);
        }
    }
    fn arg_count(&self) -> usize {
        self.iter().map(ToArg::arg_count).sum()
    }
}

impl<T: ToArg, const N: usize> ToArg for [T; N] {
    fn write_args(&self, out: &mut Args) {
        self.as_slice().write_args(out)
    }
    fn arg_count(&self) -> usize {
        self.as_slice().arg_count()
    }
}

impl<T: ToArg, S> ToArg for HashSet<T, S> {
    fn write_args(&self, out: &mut Args) {
        for v in self {
            v.write_args(out);
        }
    }
    fn arg_count(&self) -> usize {
        self.iter().map(ToArg::arg_count).sum()
    }
}

impl<K: ToArg, V: ToArg, S> ToArg for HashMap<K, V, S> {
    fn write_args(&self, out: &mut Args) {
        for (k, v) in self {
            k.write_args(out);
            v.write_args(out);
        }
    }
    fn arg_count(&self) -> usize {
        self.iter()
            .map(|(k, v)| k.arg_count() + v.arg_count())
            .sum()
    }
}

impl<K: ToArg, V: ToArg> ToArg for BTreeMap<K, V> {
    fn write_args(&self, out: &mut Args) {
        for (k, v) in self {
            k.write_args(out);
            v.write_args(out);
        }
    }
    fn arg_count(&self) -> usize {
        self.iter()
            .map(|(k, v)| k.arg_count() + v.arg_count())
            .sum()
    }
}

macro_rules! tuple_arg {
    ($($n:tt $t:ident),+) => {
        impl<$($t: ToArg),+> ToArg for ($($t,)+) {
            fn write_args(&self, out: &mut Args) {
                $(self.$n.write_args(out);)+
            }
            fn arg_count(&self) -> usize {
                0 $(+ self.$n.arg_count())+
            }
        }
    };
}
/// A value written as `field value` pairs: what a typed method that takes a whole block of
/// pairs accepts ([`Commands::hset_multiple`](crate::Commands::hset_multiple)).
///
/// Implemented by `#[derive(ToRedis)]` structs with named fields (each field that writes
/// something is one pair), maps, a pair `(field, value)`, and arrays, slices and `Vec`s of
/// pairs, and references to those. It adds nothing to [`ToArg`] but the promise of pairs, so a
/// lone string is refused at compile time.
///
/// ```no_run
/// use ringdis::{Client, Commands, FromRedis, ToRedis};
/// use std::collections::HashMap;
///
/// #[derive(ToRedis, FromRedis, Debug, PartialEq)]
/// struct User {
///     name: String,
///     born: i64,
/// }
///
/// # async fn demo(client: Client) -> ringdis::Result<()> {
/// let user = User { name: "ada".into(), born: 1815 };
/// client.hset_multiple("user:1", &user).await?;                 // HSET user:1 name ada born 1815
/// let back: User = client.hgetall("user:1").decode().await?;
/// assert_eq!(back, user);
/// client.hset_multiple("user:2", [("name", "bob"), ("born", "1900")]).await?;
/// client.hset_multiple("user:3", &HashMap::from([("name", "eve")])).await?;
/// client.hset("user:1", "name", "ada").and("born", 1815).await?; // one pair at a time
/// # Ok(()) }
/// ```
///
/// A value that is not pairs does not compile:
///
/// ```compile_fail
/// use ringdis::{Client, Commands};
/// let client = Client::open("redis://127.0.0.1:1").unwrap();
/// let _ = client.hset_multiple("h", "not pairs").into_cmd();
/// ```
pub trait FieldValues: ToArg {}

impl<T: FieldValues + ?Sized> FieldValues for &T {}
impl<T: FieldValues + ?Sized> FieldValues for Box<T> {}
impl<F: ToArg, V: ToArg> FieldValues for (F, V) {}
impl<F: ToArg, V: ToArg> FieldValues for [(F, V)] {}
impl<F: ToArg, V: ToArg, const N: usize> FieldValues for [(F, V); N] {}
impl<F: ToArg, V: ToArg> FieldValues for Vec<(F, V)> {}
impl<K: ToArg, V: ToArg, S> FieldValues for HashMap<K, V, S> {}
impl<K: ToArg, V: ToArg> FieldValues for BTreeMap<K, V> {}

tuple_arg!(0 A);
tuple_arg!(0 A, 1 B);
tuple_arg!(0 A, 1 B, 2 C);
tuple_arg!(0 A, 1 B, 2 C, 3 D);
tuple_arg!(0 A, 1 B, 2 C, 3 D, 4 E);
tuple_arg!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F);

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: impl ToArg) -> Vec<String> {
        let mut a = Args::new();
        v.write_args(&mut a);
        assert_eq!(a.len(), v.arg_count());
        a.iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    #[test]
    fn scalars() {
        assert_eq!(args("x"), ["x"]);
        assert_eq!(args(String::from("")), [""]);
        assert_eq!(args(&b"\x00\xff"[..]), ["\u{0}\u{fffd}"]);
        assert_eq!(args(vec![1u8, 2, 3]).len(), 1);
        assert_eq!(args(*b"abc"), ["abc"]);
        assert_eq!(args(-7i64), ["-7"]);
        assert_eq!(args(u64::MAX), ["18446744073709551615"]);
        assert_eq!(args(0.1f64), ["0.1"]);
        assert_eq!(args(0.1f32), ["0.1"]);
        assert_eq!(args(1e100f64), ["1e100"]);
        assert_eq!(args(f64::INFINITY), ["inf"]);
        assert_eq!(args(f64::NEG_INFINITY), ["-inf"]);
    }

    #[test]
    fn collections_flatten() {
        assert_eq!(args(vec!["a", "b"]), ["a", "b"]);
        assert_eq!(args(["a", "b"]), ["a", "b"]);
        assert_eq!(args(&["a", "b"][..]), ["a", "b"]);
        assert_eq!(args(None::<&str>), Vec::<String>::new());
        assert_eq!(args(Some(5)), ["5"]);
        assert_eq!(args(("k", 1, 2.5)), ["k", "1", "2.5"]);
        let m: BTreeMap<&str, i32> = [("a", 1), ("b", 2)].into();
        assert_eq!(args(m), ["a", "1", "b", "2"]);
        assert_eq!(args(vec![("f", "v"), ("g", "w")]), ["f", "v", "g", "w"]);
    }
}
