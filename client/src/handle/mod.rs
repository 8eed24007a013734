//! The user-facing handles: what users hold and call through ([`Client`](crate::Client),
//! pipelines and transactions, pools, `Spread`, [`ClusterClient`](crate::ClusterClient),
//! subscribers, SCAN streams, scripts). Each
//! request they make passes the route (`crate::route`) to a connection's link
//! (`crate::engine::link`).

pub(crate) mod cached;
pub(crate) mod caching;
pub(crate) mod callable;
pub(crate) mod client;
pub(crate) mod cluster;
pub(crate) mod inbox;
pub(crate) mod pipeline;
pub(crate) mod pool;
pub(crate) mod redis;
pub(crate) mod scan;
pub(crate) mod script;
pub(crate) mod sentinel;
pub(crate) mod spread;
pub(crate) mod subscriber;
