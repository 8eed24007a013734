//! # ringdis
//!
//! A Redis client whose command API is generated from the server's own command spec, typed end
//! to end, and driven by io_uring. The project README (packaged with the crate) follows; its
//! examples are compiled as doctests so they stay true.
#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// So `#[derive(FromRedis)]` (which names `::ringdis`) also works inside this crate.
extern crate self as ringdis;

#[doc(hidden)]
#[path = "derive.rs"]
pub mod __private;
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
use handle::{callable, client, inbox, pipeline, pool, redis, scan, script, spread, subscriber};

pub use bytes::Bytes;
pub use callable::Callable;
pub use client::{Call, Client, OnReply};
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
