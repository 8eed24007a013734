//! # ringdis
//!
//! A Redis client whose command API is generated from the server's own command spec, typed end
//! to end, and driven by io_uring. The project README (packaged with the crate) follows this
//! section; its examples are compiled as doctests so they stay true.
//!
//! ## Getting started
//!
//! ```toml
//! [dependencies]
//! ringdis = { version = "0.1", features = ["tls", "tracing"] }   # features: see below
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//!
//! [dev-dependencies]
//! ringdis = { version = "0.1", features = ["mock"] }   # ringdis::mock, in unit tests only
//! ```
//!
//! ```no_run
//! use ringdis::prelude::*;
//!
//! #[tokio::main]
//! async fn main() -> ringdis::Result<()> {
//!     let client = Client::open("redis://127.0.0.1:6379")?;   // connects at the first call
//!     client.set("greeting", "hello").ex(60).await?;
//!     let greeting: Option<String> = client.get("greeting").decode().await?;
//!     println!("{greeting:?} after {} calls", client.stats().calls);
//!     Ok(())
//! }
//! ```
//!
//! Where to go next: [`Client`] (calls, pipelines, transactions, `subscriber()`), [`Commands`]
//! (every command as a typed method), [`Config`] and [`Config::from_url`] (every setting and
//! URL form; [`Config::sentinel`] for a primary managed by Sentinel), [`Pool`] and [`Spread`],
//! [`ClusterClient`] (a Redis Cluster or Valkey cluster behind one handle), the derives
//! [`FromRedis`](macro@FromRedis) and
//! [`ToRedis`](macro@ToRedis), [`Redis`] (the trait to write your code against, so a mock can
//! stand in for the server in tests), [`Stats`] (counters to export), [`Error`] (what each
//! error means and whether to retry), and the crate's `examples/` folder (`cargo run
//! --example connect`, `typed`, `derive`, `pipeline`, `pubsub`, `pool`, `tls`; each reads
//! `REDIS_URL`; and `cluster`, which reads `REDIS_CLUSTER_URLS`, comma-separated).
//!
//! The Cargo features (`io-uring` on by default; `tls`, `tracing`, `mock`, `serde`, `json`) are
//! in the README's Install section below.
//!
//! ## Tracing
//!
//! With the `tracing` feature every event has a target under `ringdis` (filter with
//! `RUST_LOG=ringdis=info` and `tracing_subscriber::EnvFilter`, or `ringdis=debug`) and the
//! server's `addr` as a field:
//!
//! | level | what |
//! | --- | --- |
//! | span `connect` / `reconnect` (info), `handshake` (debug) | an attempt to (re)connect, with `addr` and `attempt`; the `handshake` span covers `HELLO`/`AUTH`/`SELECT`… |
//! | error | a protocol error (the server sent bytes that are not RESP; the connection is closed) |
//! | warn | a connection lost, a connect attempt failed (with its cause), connecting given up, a call timed out, a callback or push handler panicked, an unknown URL parameter ignored |
//! | info | a connection ready or restored (inside its span), a subscriber's connection lost and back, a call redirected (`MOVED`/`ASK`) |
//! | debug | a call failed with a server error or otherwise, a connection closed by `disconnect()` or by dropping the client |
//!
//! No event is emitted, and no span made or closed, under a connection's lock: the connection
//! notes what to report and reports it once the lock is released, as it runs callbacks. A
//! `tracing` subscriber or layer may call a ringdis client (fire-and-forget or `async_call`
//! from an engine's thread; an awaited call from there waits for that engine, as in any
//! callback), and a slow one holds no lock that callers wait for (it still holds up the
//! thread it runs on, often an engine's).
#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// So `#[derive(FromRedis)]` (which names `::ringdis`) also works inside this crate.
extern crate self as ringdis;

#[doc(hidden)]
#[path = "derive.rs"]
pub mod __private;
mod addr;
mod cache;
mod cmd;
pub mod commands;
mod config;
mod conn;
#[cfg(feature = "serde")]
mod de;
mod engine;
mod error;
mod from_redis;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod geo;
mod handle;
#[cfg(feature = "json")]
mod json;
#[cfg(feature = "mock")]
#[cfg_attr(docsrs, doc(cfg(feature = "mock")))]
pub mod mock;
mod number;
pub mod resp;
mod route;
mod score_bound;
mod secret;
mod stats;
mod timer;
#[cfg(feature = "tls")]
mod tls;
mod to_arg;
mod trace;
mod url;
mod value;

// The handles' modules keep their short paths (`crate::client`, `crate::pipeline`…).
use handle::{
    cached, callable, client, cluster, inbox, pipeline, pool, redis, scan, script, spread,
    subscriber,
};

pub use bytes::Bytes;
pub use cache::{Cache, CacheStats};
pub use cached::Cached;
pub use callable::Callable;
pub use client::{Call, Client, OnReply};
pub use cluster::subscriber::ClusterSubscriber;
pub use cluster::{ClusterBuilder, ClusterClient};
pub use cmd::{Cmd, CmdFlags};
pub use commands::{Commands, Dispatch, UnixTime};
pub use config::{Addr, Config, Engine, Protocol, Tracking};
#[cfg(feature = "serde")]
pub use de::Serde;
pub use error::{Error, Result};
pub use from_redis::FromRedis;
pub use geo::GeoMatch;
#[cfg(feature = "json")]
pub use json::Json;
pub use pipeline::{Pipeline, WATCH_ATTEMPTS};
pub use pool::{Pool, PoolBuilder, Pooled};
pub use redis::Redis;
pub use resp::{Limits, Parser};
#[doc = include_str!("derive_from_redis.md")]
pub use ringdis_macros::FromRedis;
#[doc = include_str!("derive_to_redis.md")]
pub use ringdis_macros::ToRedis;
pub use route::keyslot::slot;
#[doc(hidden)]
pub use route::probe as __route;
#[doc(hidden)]
pub use route::topology::probe as __topology;
pub use scan::ScanStream;
pub use score_bound::ScoreBound;
pub use script::{Invocation, Library, Script};
pub use spread::Spread;
pub use stats::Stats;
pub use subscriber::{Message, SubKind, Subscriber, INVALIDATE_CHANNEL};
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tls::Tls;
pub use to_arg::{Args, ArgsIter, FieldValues, ToArg};
pub use value::{ServerError, Value};

/// `use ringdis::prelude::*;` brings in the client, the command methods, the traits, both
/// derives and [`cmd!`].
///
/// ```
/// use ringdis::prelude::*;
///
/// #[derive(FromRedis, ToRedis)]
/// struct User { name: String, born: i64 }
///
/// let ada = User { name: "ada".into(), born: 1815 };
/// assert_eq!(cmd!("HSET", "user:1", &ada).to_string(), "HSET user:1 name ada born 1815");
/// ```
pub mod prelude {
    pub use crate::{
        cmd, Client, Cmd, Commands, Config, FromRedis, Pipeline, Redis, Result, ToArg, ToRedis,
        Value,
    };
    pub use bytes::Bytes;
}
