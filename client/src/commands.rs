//! The typed command API, generated from `commands.json` (see `codegen/README.md`).
//!
//! [`Commands`] has one method per command of the spec. It is implemented for `&Client`, where
//! awaiting a built command sends it and decodes its default reply, and for `&mut Pipeline`,
//! where a built command is added to the pipeline. One generated copy serves both.
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
//! builder on a pipeline is itself [`Commands`], so calls chain: `p.incr("n").get("k")`. A
//! builder dropped without being sent does nothing on a client, and is added to a pipeline.
//! [`Client::call`] remains for anything the spec does not list (module commands).
//!
//! Types: the arguments' types come from the spec, with the corrections of
//! `codegen/overrides.json` (ZINCRBY's increment is an `f64`, score bounds take
//! [`ScoreBound`](crate::ScoreBound) or `"(1.5"`, cursors any integer). Default replies are
//! typed (`geodist` → `Option<f64>`, `scan` → `(u64, Vec<Bytes>)`, `blpop` →
//! `Option<(Bytes, Bytes)>`…); the few that stay [`Value`] say why in their docs. To walk a
//! SCAN without handling the cursor, [`Client::scan_iter`] and its kin give a
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
    Args, Call, Client, Cmd, CmdFlags, FromRedis, GeoMatch, Pipeline, Result, ToArg, Value,
};
use bytes::Bytes;
use std::collections::HashMap;
use std::future::IntoFuture;
use std::marker::PhantomData;

/// Something a built command can be sent to: a client (awaiting gives the reply) or a pipeline
/// (the command is added).
pub trait Dispatch: Sized {
    /// What sending a command whose reply decodes as `R` gives.
    type Output<R: FromRedis>;
    /// Sends (or adds) the command.
    fn dispatch<R: FromRedis>(self, cmd: Cmd) -> Self::Output<R>;
    /// Called when a builder is dropped without being dispatched: a pipeline adds the command,
    /// a client does nothing.
    fn abandon(&mut self, _cmd: Cmd) {}
}

impl Dispatch for &Client {
    type Output<R: FromRedis> = Call<R>;
    fn dispatch<R: FromRedis>(self, cmd: Cmd) -> Call<R> {
        self.call(cmd)
    }
}

impl<'a> Dispatch for &'a mut Pipeline {
    type Output<R: FromRedis> = &'a mut Pipeline;
    fn dispatch<R: FromRedis>(self, cmd: Cmd) -> &'a mut Pipeline {
        self.add(cmd)
    }
    fn abandon(&mut self, cmd: Cmd) {
        self.add(cmd);
    }
}

impl<'a> Commands for &'a Client {
    type Target = &'a Client;
    fn into_target(self) -> &'a Client {
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

/// A piece of a command being built: some arguments, which of them are keys, and how many
/// items (for derived counts such as `numkeys`).
#[doc(hidden)]
#[derive(Clone, Debug, Default)]
pub struct Part {
    args: Args,
    keys: Vec<u32>,
    items: usize,
}

#[doc(hidden)]
impl Part {
    pub fn new() -> Part {
        Part::default()
    }
    pub fn clear(&mut self) {
        self.args.clear();
        self.keys.clear();
        self.items = 0;
    }
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }
    pub fn token(&mut self, token: &str) {
        self.args.push_bytes(token.as_bytes());
    }
    pub fn arg(&mut self, arg: impl ToArg) {
        arg.write_args(&mut self.args);
    }
    pub fn key(&mut self, key: impl ToArg) {
        let from = self.args.len() as u32;
        key.write_args(&mut self.args);
        self.keys.extend(from..self.args.len() as u32);
    }
    /// One value or a collection of them, each an item.
    pub fn many(&mut self, values: impl ToArg, key: bool) {
        self.items += values.arg_count();
        if key {
            self.key(values)
        } else {
            self.arg(values)
        }
    }
    /// Like `many`, with `token` before each value (`GET p1 GET p2`).
    pub fn many_each(&mut self, token: &str, values: impl ToArg, key: bool) {
        let mut tmp = Args::new();
        values.write_args(&mut tmp);
        for v in tmp.iter() {
            self.token(token);
            if key {
                self.key(v);
            } else {
                self.arg(v);
            }
            self.items += 1;
        }
    }
    pub fn item(&mut self) {
        self.items += 1;
    }
    pub fn items(&self) -> usize {
        self.items
    }
    pub fn args(&self) -> &Args {
        &self.args
    }
    pub fn key_indices(&self) -> &[u32] {
        &self.keys
    }
}

/// The methods every builder has. `Reply` is the type awaiting the builder gives: the
/// command's default, or what an option that changes the reply's shape re-typed it to.
macro_rules! builder {
    ($name:ident) => {
        impl<T: Dispatch, Reply> $name<T, Reply> {
            /// Sends the command (on a pipeline: adds it), its reply decoded as `R`.
            pub fn decode<R: FromRedis>(mut self) -> T::Output<R> {
                let cmd = self.cmd();
                let target = self.target.take().expect("a builder is dispatched once");
                target.dispatch(cmd)
            }

            /// The command, not sent (nor added to a pipeline).
            pub fn into_cmd(mut self) -> Cmd {
                self.target = None;
                self.cmd()
            }
        }

        impl<T: Dispatch, Reply: FromRedis> $name<T, Reply> {
            /// Sends the command (on a pipeline: adds it), with its reply type: the default,
            /// or the one an option that changes the reply chose.
            pub fn send(self) -> T::Output<Reply> {
                self.decode()
            }
        }

        impl<T: Dispatch, Reply> Drop for $name<T, Reply> {
            fn drop(&mut self) {
                if let Some(mut target) = self.target.take() {
                    let cmd = self.cmd();
                    target.abandon(cmd);
                }
            }
        }

        impl<'a, Reply: FromRedis> IntoFuture for $name<&'a Client, Reply> {
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
            /// Adds the command to the pipeline and sends the whole pipeline: the end of a
            /// chain such as `p.incr("n").get("k").query::<(i64, Option<Bytes>)>()`.
            pub fn query<R: FromRedis>(self) -> Call<R> {
                self.decode::<Value>().query()
            }
        }
    };
}

include!(concat!(env!("OUT_DIR"), "/commands.rs"));
