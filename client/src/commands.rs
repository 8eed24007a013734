//! The typed command API, generated from `commands.json` (see `codegen/README.md`).
//!
//! [`Commands`] has one method per command of the spec. It is implemented for `&Client` (and
//! every other [`Redis`]: `&Pool`, `&Spread`, the mock), where awaiting a built command sends
//! it and decodes its default reply, and for `&mut Pipeline`, where a built command is added to
//! the pipeline. One generated copy serves both.
//!
//! ```no_run
//! use ringdis::{Client, Commands};
//!
//! # async fn demo(client: Client) -> ringdis::Result<()> {
//! client.set("greeting", "hello").ex(60).await?;
//! let greeting = client.get("greeting").await?;           // Option<Bytes>
//! let n = client.incr("hits").await?;                       // i64
//! client.hset("user:1", "name", "ada").and("born", 1815).await?;
//! client.mset([("a", 1), ("b", 2)]).await?;
//! let born: Option<i64> = client.hget("user:1", "born").decode().await?;
//! // Options that change the reply's shape change the type awaiting gives:
//! let popped = client.lpop("queue").count(10).await?;       // Option<Vec<Bytes>>
//! let top = client.zrange("board", 0, 2).withscores().await?; // Vec<(Bytes, f64)>
//! let old = client.set("greeting", "hi").get().await?;      // Option<Bytes>
//!
//! let mut p = client.pipeline();
//! p.incr("hits").get("greeting").send();
//! let (hits, greeting): (i64, Option<String>) = p.query().await?;
//! // Or end the chain with the query itself:
//! let (hits, greeting): (i64, Option<String>) =
//!     client.pipeline().incr("hits").get("greeting").query().await?;
//! # Ok(()) }
//! ```
//!
//! Naming: subcommands flatten (`config_get`, `client_kill`); names that are Rust keywords get a
//! trailing underscore (`type_`, `move_`). Required arguments are positional; optional ones
//! are chained methods, written in the spec's order whatever order they are called in.
//!
//! Each builder has `decode::<T>()` (any [`FromRedis`] type), `send()` (the default reply
//! type), `cmd()` (the [`Cmd`] it would send: arguments, keys, flags) and `into_cmd()`. A
//! builder's second type parameter is its reply type (`Lpop<T, Reply = Option<Bytes>>`): an
//! option that changes the reply's shape (`COUNT` on the pops and random picks, `WITHSCORES`,
//! `WITHVALUES`, `WITHDIST`/`WITHHASH`/`WITHCOORD` → [`GeoMatch`], `SET … GET`, `ZADD … INCR`,
//! `JUSTID`, `XPENDING`'s range, `STORE`, `LCS … IDX`/`LEN`, the forms of `CLIENT KILL`)
//! returns the builder re-typed, so awaiting it decodes what the server sends, the same in both
//! protocols. An option that only makes sense after another (`WITHVALUES` after a count) can
//! only be called after it. The method docs list each command's such options. A
//! builder on a pipeline is itself [`Commands`], so calls chain: `p.incr("n").get("k")`.
//!
//! Building a command has no side effect, on drop or otherwise. On a client nothing is sent
//! until the builder is awaited (or `send`/`decode` is called); a dropped builder did nothing,
//! and the compiler says so: builders are `#[must_use]`. On a pipeline the method call adds the
//! command at once and chained options edit it in place, so the statement ends with `.send()`
//! (which gives the pipeline back) or with the next command's method: `p.get("k").send();`,
//! `p.set("k", "v").ex(10).incr("n").send();` each add their commands and warn about nothing.
//! (A bare `p.get("k");` adds the command too, but is warned about: the attribute is on the
//! builder type, which clients and pipelines share, and a client's unsent command is a bug.)
//! `cmd()` shows a copy and leaves the pipeline alone, and `into_cmd()` takes the command back
//! out.
//!
//! ```
//! #![deny(unused_must_use)] // the documented pipeline statements compile without a warning
//! use ringdis::{Client, Commands};
//!
//! let client = Client::open("redis://127.0.0.1:1")?;
//! let mut p = client.pipeline();
//! p.get("k").send();
//! p.set("k", "v").ex(10).incr("n").send();
//! for key in ["a", "b"] {
//!     p.del(key).send();
//! }
//! assert_eq!(p.len(), 5);
//! # Ok::<(), ringdis::Error>(())
//! ```
//!
//! A command built on a client and never awaited is refused by the same lint:
//!
//! ```compile_fail
//! #![deny(unused_must_use)]
//! use ringdis::{Client, Commands};
//!
//! let client = Client::open("redis://127.0.0.1:1").unwrap();
//! client.set("k", "v"); // never sent: the builder was not awaited
//! ```
//!
//! A read-only command whose reply depends on its keys alone (`GET`, `HGETALL`, `SMEMBERS`,
//! `ZRANGE`…: the list is in [`Commands`] and [`CACHEABLE_COMMANDS`]) has `.cached()` and
//! `.cached_for(ttl)` when built on a client: awaited, it is served from the client's cache
//! (`Config::cache`, with a [`Cache`](crate::Cache)) while the server has not invalidated its
//! keys, with the same reply type (`client.get("k").cached().await?` is an `Option<Bytes>`). See
//! [`Cached`] for the rule and what a cached read does; other commands, and every builder on a
//! pipeline, have no such method (a compile error).
//!
//! [`Client::call`](crate::Client::call) remains for anything the spec does not list (module commands).
//!
//! Types: the arguments' types come from the spec, with the corrections of
//! `codegen/overrides.json` (ZINCRBY's increment is an `f64`, score bounds take
//! [`ScoreBound`](crate::ScoreBound) or `"(1.5"`, cursors any integer). Default replies are
//! typed (`geodist` → `Option<f64>`, `scan` → `(u64, Vec<Bytes>)`, `blpop` →
//! `Option<(Bytes, Bytes)>`…); the few that stay [`Value`] say why in their docs. To walk a
//! SCAN without handling the cursor, [`Client::scan_iter`](crate::Client::scan_iter) and its kin give a
//! [`ScanStream`](crate::ScanStream).
//!
//! ```
//! use ringdis::{Client, Commands};
//!
//! let client = Client::open("redis://127.0.0.1:1")?; // nothing connects until a call is awaited
//! let cmd = client.zadd("board", 1.5, "ada").and(2.0, "bob").ch().into_cmd();
//! assert_eq!(cmd.to_string(), "ZADD board CH 1.5 ada 2.0 bob");
//! assert_eq!(cmd.keys().collect::<Vec<_>>(), [b"board"]);
//! assert!(cmd.flags().write);
//!
//! let cmd = client.eval("return KEYS[1]").key("k").arg("x").into_cmd();
//! assert_eq!(cmd.to_string(), "EVAL return KEYS[1] 1 k x");
//! # Ok::<(), ringdis::Error>(())
//! ```

#![allow(
    clippy::too_many_arguments,
    clippy::new_ret_no_self,
    clippy::type_complexity
)]

use crate::{
    Args, Cached, Call, Cmd, CmdFlags, FieldValues, FromRedis, GeoMatch, Pipeline, Redis, Result,
    ToArg, Value,
};
use bytes::Bytes;
use std::collections::HashMap;
use std::future::IntoFuture;
use std::marker::PhantomData;
use std::time::Duration;

/// Something a built command can be sent to: a client (awaiting gives the reply) or a pipeline
/// (the command is added).
///
/// Building a command never does anything by itself, on drop or otherwise: a builder on a
/// client holds its command until it is awaited (or `send`/`decode`/`into_cmd` ends it); a
/// builder on a pipeline adds its command when the method is called (`p.get("k").send()`) and
/// then edits that command in place as options are chained (`p.set("k", "v").ex(10).send()`),
/// so the pipeline holds exactly one command per method call, whatever happens to the builder.
/// Builders are `#[must_use]` (for the client's sake): end a pipeline statement with `.send()`.
///
/// Implement [`dispatch`](Dispatch::dispatch) (and [`Commands`]) to receive the finished
/// commands of the generated methods elsewhere; the hidden methods have defaults for that case.
pub trait Dispatch: Sized {
    /// What sending a command whose reply decodes as `R` gives.
    type Output<R: FromRedis>;
    /// Sends (or adds) the command.
    fn dispatch<R: FromRedis>(self, cmd: Cmd) -> Self::Output<R>;

    /// Where a builder keeps the command it starts: by default the builder holds it (returned
    /// as is) until [`finish`](Dispatch::finish); a pipeline adds it at once and returns an
    /// empty placeholder.
    #[doc(hidden)]
    fn begin(&mut self, cmd: Cmd) -> Cmd {
        cmd
    }
    /// The command being built, when [`begin`](Dispatch::begin) put it in the target.
    #[doc(hidden)]
    fn building(&mut self) -> Option<&mut Cmd> {
        None
    }
    /// [`building`](Dispatch::building), read only.
    #[doc(hidden)]
    fn built(&self) -> Option<&Cmd> {
        None
    }
    /// Ends a builder: dispatches the command it kept (the default); a pipeline, which holds
    /// the command already, gives itself back.
    #[doc(hidden)]
    fn finish<R: FromRedis>(self, kept: Cmd) -> Self::Output<R> {
        self.dispatch(kept)
    }
    /// Ends a builder without sending: its command, or (pipeline) the command taken back out.
    #[doc(hidden)]
    fn take_back(self, kept: Cmd) -> Cmd {
        kept
    }
}

/// A [`Client`](crate::Client), and anything else commands can be sent through ([`Redis`]: pools, `Spread`,
/// the mock): awaiting a built command sends it.
impl<C: Redis + ?Sized> Dispatch for &C {
    type Output<R: FromRedis> = Call<R>;
    fn dispatch<R: FromRedis>(self, cmd: Cmd) -> Call<R> {
        Redis::call(self, cmd)
    }
}

impl<'a> Dispatch for &'a mut Pipeline {
    type Output<R: FromRedis> = &'a mut Pipeline;
    fn dispatch<R: FromRedis>(self, cmd: Cmd) -> &'a mut Pipeline {
        self.add(cmd)
    }
    fn begin(&mut self, cmd: Cmd) -> Cmd {
        self.add(cmd);
        Cmd::empty()
    }
    fn building(&mut self) -> Option<&mut Cmd> {
        self.last_cmd_mut()
    }
    fn built(&self) -> Option<&Cmd> {
        self.cmds().last()
    }
    fn finish<R: FromRedis>(self, _kept: Cmd) -> &'a mut Pipeline {
        self
    }
    fn take_back(self, kept: Cmd) -> Cmd {
        self.pop_cmd().unwrap_or(kept)
    }
}

impl<'a, C: Redis + ?Sized> Commands for &'a C {
    type Target = &'a C;
    fn into_target(self) -> &'a C {
        self
    }
}

impl<'a> Commands for &'a mut Pipeline {
    type Target = &'a mut Pipeline;
    fn into_target(self) -> &'a mut Pipeline {
        self
    }
}

/// A point in time for `unix-time` arguments (`EXPIREAT`, `SET … EXAT`, `PXAT`…): Unix time as
/// an integer, or a [`SystemTime`](std::time::SystemTime). Sent in seconds or milliseconds, as
/// the argument wants.
///
/// ```
/// use ringdis::{Client, Commands};
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
///
/// let client = Client::open("redis://127.0.0.1:1")?;
/// let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
/// assert_eq!(client.expireat("k", at).into_cmd().to_string(), "EXPIREAT k 1700000000");
/// assert_eq!(client.pexpireat("k", at).into_cmd().to_string(), "PEXPIREAT k 1700000000500");
/// assert_eq!(client.set("k", 1).exat(17).into_cmd().to_string(), "SET k 1 EXAT 17");
/// # let _ = SystemTime::now();
/// # Ok::<(), ringdis::Error>(())
/// ```
pub trait UnixTime {
    /// Seconds since the Unix epoch.
    fn unix_seconds(&self) -> i64;
    /// Milliseconds since the Unix epoch.
    fn unix_millis(&self) -> i64;
}

/// Already Unix time, in the unit the argument wants (only `i64`, so that literals such as
/// `4_000_000_000` infer as `i64`).
impl UnixTime for i64 {
    fn unix_seconds(&self) -> i64 {
        *self
    }
    fn unix_millis(&self) -> i64 {
        *self
    }
}

impl UnixTime for std::time::SystemTime {
    fn unix_seconds(&self) -> i64 {
        self.unix_millis().div_euclid(1000)
    }
    fn unix_millis(&self) -> i64 {
        match self.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_millis() as i64,
            Err(e) => -(e.duration().as_millis() as i64),
        }
    }
}

/// Where each segment of a command being built lies in the command's one buffer.
///
/// A builder's command is encoded once, into one [`Cmd`]: the name, then one segment per
/// argument slot of the spec (a required argument, an option, a fixed token, a derived count),
/// in wire order. An option set later than a segment after it (`.nx()` after `.ex(10)` on SET)
/// is encoded into its place; choosing another alternative replaces the segment's arguments.
#[derive(Clone, Copy, Debug)]
struct Layout<const N: usize> {
    /// Where the first segment starts: after the name.
    base_args: u32,
    base_bytes: usize,
    spans: [Span; N],
}

/// One segment's size, and how many items it holds (for a derived count such as `numkeys`).
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    args: u32,
    bytes: usize,
    items: usize,
}

impl<const N: usize> Layout<N> {
    fn new(cmd: &Cmd) -> Self {
        Layout {
            base_args: cmd.args().len() as u32,
            base_bytes: cmd.args().byte_len(),
            spans: [Span::default(); N],
        }
    }

    /// Segment `seg` of `cmd`, to write into.
    fn part<'a>(&'a mut self, cmd: &'a mut Cmd, seg: usize) -> Part<'a> {
        let before = &self.spans[..seg];
        let at_arg = self.base_args + before.iter().map(|s| s.args).sum::<u32>();
        let at_byte = self.base_bytes + before.iter().map(|s| s.bytes).sum::<usize>();
        Part {
            cmd,
            at_arg,
            at_byte,
            span: &mut self.spans[seg],
        }
    }

    fn items(&self, seg: usize) -> usize {
        self.spans[seg].items
    }
}

/// One segment of a command being built, borrowed to write into: what the generated option
/// methods call.
struct Part<'a> {
    cmd: &'a mut Cmd,
    at_arg: u32,
    at_byte: usize,
    span: &'a mut Span,
}

#[allow(dead_code)]
impl Part<'_> {
    /// Appends to the segment what `write` encodes.
    fn write(&mut self, key: bool, write: impl FnOnce(&mut Args)) {
        let (args, bytes) = self.cmd.insert_with(
            self.at_arg + self.span.args,
            self.at_byte + self.span.bytes,
            key,
            write,
        );
        self.span.args += args;
        self.span.bytes += bytes;
    }
    /// Empties the segment. An argument that made the command unsendable
    /// ([`Args::set_invalid`]) keeps it unsendable: the reason is the command's, not the
    /// segment's.
    fn clear(&mut self) {
        let bytes = self.at_byte..self.at_byte + self.span.bytes;
        self.cmd.remove_args(self.at_arg, self.span.args, bytes);
        *self.span = Span::default();
    }
    fn is_empty(&self) -> bool {
        self.span.args == 0
    }
    fn token(&mut self, token: &str) {
        self.write(false, |out| out.push_bytes(token.as_bytes()));
    }
    fn arg(&mut self, arg: impl ToArg) {
        self.write(false, |out| arg.write_args(out));
    }
    fn key(&mut self, key: impl ToArg) {
        self.write(true, |out| key.write_args(out));
    }
    /// One value or a collection of them, each an item.
    fn many(&mut self, values: impl ToArg, key: bool) {
        self.span.items += values.arg_count();
        self.write(key, |out| values.write_args(out));
    }
    /// Like `many`, with `token` before each value (`GET p1 GET p2`).
    fn many_each(&mut self, token: &str, values: impl ToArg, key: bool) {
        let mut tmp = Args::new();
        values.write_args(&mut tmp);
        for v in tmp.iter() {
            self.token(token);
            self.write(key, |out| out.push_bytes(v));
            self.span.items += 1;
        }
        if let Some(why) = tmp.invalid() {
            self.write(false, |out| out.set_invalid(why));
        }
    }
    fn item(&mut self) {
        self.span.items += 1;
    }
    /// Values in groups of `width` arguments (`field value` pairs), each group one item.
    #[allow(dead_code)]
    fn grouped(&mut self, values: impl ToArg, width: usize) {
        self.span.items += values.arg_count() / width.max(1);
        self.write(false, |out| values.write_args(out));
    }
}

/// The methods every builder has. `Reply` is the type awaiting the builder gives: the
/// command's default, or what an option that changes the reply's shape re-typed it to.
///
/// A builder holds its target, its command (on a pipeline an empty placeholder: the command is
/// the pipeline's last one) and the [`Layout`] of that command. It has no `Drop`: nothing
/// happens when one is dropped.
macro_rules! builder {
    ($name:ident) => {
        impl<T: Dispatch, Reply> $name<T, Reply> {
            /// Starts the command: kept in the builder (client), or added at once (pipeline).
            fn begin(mut target: T, cmd: Cmd) -> Self {
                let layout = Layout::new(&cmd);
                let kept = target.begin(cmd);
                $name {
                    target,
                    kept,
                    layout,
                    reply: PhantomData,
                }
            }

            /// Segment `seg` of the command, to write into.
            #[allow(dead_code)]
            fn part(&mut self, seg: usize) -> Part<'_> {
                let cmd = match self.target.building() {
                    Some(cmd) => cmd,
                    None => &mut self.kept,
                };
                self.layout.part(cmd, seg)
            }

            /// The same command, with another reply type.
            #[allow(dead_code)]
            fn retype<U>(self) -> $name<T, U> {
                $name {
                    target: self.target,
                    kept: self.kept,
                    layout: self.layout,
                    reply: PhantomData,
                }
            }

            /// A copy of the command as it stands: arguments, key positions and routing flags.
            /// No side effect: on a pipeline, which holds the command from the method call on,
            /// the command stays there.
            pub fn cmd(&self) -> Cmd {
                self.target.built().unwrap_or(&self.kept).clone()
            }

            /// Sends the command, its reply decoded as `R` (on a pipeline, which already holds
            /// the command: gives the pipeline back, to chain).
            pub fn decode<R: FromRedis>(self) -> T::Output<R> {
                self.target.finish(self.kept)
            }

            /// The command, not sent. On a pipeline, which got it when the method was called,
            /// this takes it back out: the pipeline is as it was before.
            pub fn into_cmd(self) -> Cmd {
                self.target.take_back(self.kept)
            }
        }

        impl<T: Dispatch, Reply: FromRedis> $name<T, Reply> {
            /// Sends the command (on a pipeline: ends the chain, the command being in already),
            /// with its reply type: the default, or the one an option that changes the reply
            /// chose.
            pub fn send(self) -> T::Output<Reply> {
                self.decode()
            }
        }

        impl<'a, C: Redis + ?Sized, Reply: FromRedis> IntoFuture for $name<&'a C, Reply> {
            type Output = Result<Reply>;
            type IntoFuture = Call<Reply>;
            fn into_future(self) -> Call<Reply> {
                self.send()
            }
        }

        impl<'a, Reply> Commands for $name<&'a mut Pipeline, Reply> {
            type Target = &'a mut Pipeline;
            fn into_target(self) -> &'a mut Pipeline {
                self.decode::<Value>()
            }
        }
        impl<'a, Reply> $name<&'a mut Pipeline, Reply> {
            /// Sends the whole pipeline, this command included: the end of a chain such as
            /// `p.incr("n").get("k").query::<(i64, Option<Bytes>)>()`.
            pub fn query<R: FromRedis>(self) -> Call<R> {
                self.decode::<Value>().query()
            }
        }
    };
}

/// `.cached()` and `.cached_for(ttl)` on the builder of a cacheable command built on a client
/// (any [`Redis`], never a pipeline): the generated code invokes it beside `builder!` for each
/// command codegen's rule admits (`codegen/src/cacheable.rs`).
macro_rules! cacheable {
    ($name:ident) => {
        impl<'a, C: Redis + ?Sized, Reply> $name<&'a C, Reply> {
            /// Reads it through the client's cache: served from memory while the server has not
            /// invalidated its keys, else sent (and kept). Await it for the same reply as the
            /// command's. See [`Cached`] (and, without a cache, it is simply sent).
            pub fn cached(self) -> Cached<'a, C, Reply> {
                Cached::new(self.target, self.kept, None)
            }

            /// [`cached`](Self::cached), its entry kept at most `ttl` (instead of the cache's
            /// [`Cache::ttl`](crate::Cache::ttl); never past a key's expiry).
            pub fn cached_for(self, ttl: Duration) -> Cached<'a, C, Reply> {
                Cached::new(self.target, self.kept, Some(ttl))
            }
        }
    };
}

// Checked in (`scripts/generate` rewrites it; codegen's `checked_in` test keeps it fresh).
include!("generated/commands.rs");

#[cfg(test)]
mod tests {
    use super::Set;
    use crate::{Client, Commands, Pipeline};

    fn client() -> Client {
        // Nothing connects until a call is awaited.
        Client::open("redis://127.0.0.1:1").unwrap()
    }

    fn shown(p: &Pipeline) -> Vec<String> {
        p.cmds().iter().map(ToString::to_string).collect()
    }

    /// `hset_multiple` takes HSET's pairs whole: a derived struct, a map, pairs; `.and(…)` adds
    /// more, on a client and on a pipeline alike; the key stays the only key.
    #[test]
    fn hset_multiple_takes_a_derived_struct_or_pairs() {
        #[derive(crate::ToRedis)]
        struct User<'a> {
            name: &'a str,
            born: i64,
            email: Option<&'a str>,
        }
        let user = User {
            name: "ada",
            born: 1815,
            email: None,
        };
        let c = client();
        let cmd = c.hset_multiple("user:1", &user).into_cmd();
        assert_eq!(cmd.to_string(), "HSET user:1 name ada born 1815");
        assert_eq!(cmd.keys().collect::<Vec<_>>(), [b"user:1"]);
        assert!(cmd.flags().write);
        let cmd = c.hset_multiple("user:1", &user).and("x", 1).into_cmd();
        assert_eq!(cmd.to_string(), "HSET user:1 name ada born 1815 x 1");
        let cmd = c
            .hset_multiple("h", [("a", 1), ("b", 2)])
            .and("c", 3)
            .into_cmd();
        assert_eq!(cmd.to_string(), "HSET h a 1 b 2 c 3");
        let map = std::collections::BTreeMap::from([("f", "v"), ("g", "w")]);
        assert_eq!(
            c.hset_multiple("h", &map).into_cmd().to_string(),
            "HSET h f v g w"
        );
        assert_eq!(
            c.hset_multiple("h", ("f", "v")).into_cmd().to_string(),
            "HSET h f v"
        );
        // The one-pair form is unchanged.
        assert_eq!(
            c.hset("h", "f", "v").into_cmd(),
            c.hset_multiple("h", ("f", "v")).into_cmd()
        );
        let mut p = c.pipeline();
        p.hset_multiple("user:1", &user).incr("n").send();
        assert_eq!(shown(&p), ["HSET user:1 name ada born 1815", "INCR n"]);
    }

    #[test]
    fn options_land_in_spec_order_in_one_buffer() {
        let c = client();
        let cmd = c.set("k", "v").ex(10).nx().get().into_cmd();
        assert_eq!(cmd.to_string(), "SET k v NX GET EX 10");
        assert_eq!(cmd.key_indices(), [1]);
        // Another alternative replaces the first, wherever it sits.
        let cmd = c.set("k", "v").ex(10).xx().px(5).nx().into_cmd();
        assert_eq!(cmd.to_string(), "SET k v NX PX 5");
        // Keys added before other segments move their positions along.
        let cmd = c
            .eval("s")
            .arg("a")
            .key("k1")
            .key(["k2", "k3"])
            .arg("b")
            .into_cmd();
        assert_eq!(cmd.to_string(), "EVAL s 3 k1 k2 k3 a b");
        assert_eq!(cmd.key_indices(), [3, 4, 5]);
        assert_eq!(cmd.keys().collect::<Vec<_>>(), [&b"k1"[..], b"k2", b"k3"]);
        // The same command written in order is byte for byte the same.
        let in_order = crate::cmd!("EVAL", "s", 3, "k1", "k2", "k3", "a", "b");
        assert_eq!(cmd.args(), in_order.args());
        let cmd = c.zadd("z", 1.5, "a").and(2.0, "b").ch().nx().into_cmd();
        assert_eq!(cmd.to_string(), "ZADD z NX CH 1.5 a 2.0 b");
        let cmd = c
            .zunionstore("d", ["a", "b"])
            .weights([1, 2])
            .aggregate(crate::commands::Aggregate::Max)
            .into_cmd();
        assert_eq!(
            cmd.to_string(),
            "ZUNIONSTORE d 2 a b WEIGHTS 1 2 AGGREGATE MAX"
        );
        assert_eq!(cmd.key_indices(), [1, 3, 4]);
    }

    #[test]
    fn cmd_has_no_side_effect_and_dropping_a_builder_does_nothing() {
        let c = client();
        let b = c.set("k", "v").ex(1);
        assert_eq!(b.cmd().to_string(), "SET k v EX 1");
        assert_eq!(b.cmd(), b.cmd());
        drop(b);

        let mut p = c.pipeline();
        let b = p.get("a");
        assert_eq!(b.cmd().to_string(), "GET a");
        assert_eq!(b.cmd().to_string(), "GET a", "cmd() twice is the same copy");
        drop(b);
        assert_eq!(
            shown(&p),
            ["GET a"],
            "the method call added it once; nothing on drop"
        );

        let _ = p.set("k", "v").ex(10);
        assert_eq!(shown(&p), ["GET a", "SET k v EX 10"]);
        p.incr("n").get("k").lpop("l").count(2).send();
        assert_eq!(
            shown(&p),
            ["GET a", "SET k v EX 10", "INCR n", "GET k", "LPOP l 2"]
        );
    }

    #[test]
    #[allow(unused_must_use)]
    fn a_statement_on_a_pipeline_adds_exactly_one_command() {
        let c = client();
        let mut p = c.pipeline();
        p.get("k");
        p.set("k", "v").ex(10);
        p.set("k", "v").ex(10).nx();
        assert_eq!(shown(&p), ["GET k", "SET k v EX 10", "SET k v NX EX 10"]);
        assert_eq!(p.cmds()[1].key_indices(), [1]);
    }

    #[test]
    fn into_cmd_on_a_pipeline_takes_the_command_back_out() {
        let c = client();
        let mut p = c.pipeline();
        p.get("a").send();
        let cmd = p.set("k", "v").px(5).into_cmd();
        assert_eq!(cmd.to_string(), "SET k v PX 5");
        assert_eq!(shown(&p), ["GET a"]);
        assert_eq!(c.get("x").into_cmd().to_string(), "GET x");
    }

    #[test]
    fn any_call_order_encodes_the_same_bytes_as_writing_in_order() {
        type Step = fn(Set<&Client>) -> Set<&Client>;
        let steps: [(&str, Step); 3] = [
            ("condition", |b| b.xx()),
            ("expiration", |b| b.px(1500)),
            ("keepttl-then-ex", |b| b.keepttl().ex(7)),
        ];
        let c = client();
        // Every order of the three option calls (the last two both set the expiration: the
        // later call wins) against the command written by hand.
        for order in [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ] {
            let mut b = c.set("key", "value");
            for &i in &order {
                b = (steps[i].1)(b);
            }
            let expiration: &[&str] =
                if order.iter().position(|&i| i == 1) > order.iter().position(|&i| i == 2) {
                    &["PX", "1500"]
                } else {
                    &["EX", "7"]
                };
            let mut want = crate::cmd!("SET").arg("key").arg("value").arg("XX");
            for a in expiration {
                want.push_arg(*a);
            }
            let got = b.into_cmd();
            assert_eq!(got.args(), want.args(), "{order:?}: {got}");
            assert_eq!(got.key_indices(), [1], "{order:?}");
        }
        // Interleaved keys and arguments of EVAL: keys, count and arguments each in place.
        let mut b = c.eval("s");
        let mut keys = Vec::new();
        let mut args = Vec::new();
        for i in 0..20 {
            if i % 3 == 0 {
                b = b.arg(format!("a{i}"));
                args.push(format!("a{i}"));
            } else {
                b = b.key(format!("k{i}"));
                keys.push(format!("k{i}"));
            }
        }
        let got = b.into_cmd();
        let want = crate::cmd!("EVAL", "s", keys.len(), &keys, &args);
        assert_eq!(got.args(), want.args(), "{got}");
        let key_at: Vec<u32> = (3..3 + keys.len() as u32).collect();
        assert_eq!(got.key_indices(), key_at);
    }

    #[test]
    fn an_invalid_argument_keeps_the_command_unsendable_wherever_it_lands() {
        struct Broken;
        impl crate::ToArg for Broken {
            fn write_args(&self, out: &mut crate::Args) {
                out.set_invalid("broken");
            }
        }
        let c = client();
        let cmd = c.set("k", "v").ex(1).ifeq(Broken).into_cmd();
        assert_eq!(cmd.args().invalid(), Some("broken"));
        let cmd = c.sort("l").get(Broken).into_cmd();
        assert_eq!(cmd.args().invalid(), Some("broken"));
    }
}
