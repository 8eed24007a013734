//! ringdis's side of the cluster workload (`ringdis-bench cluster`): its `ClusterClient` on one
//! engine, behind [`BenchClient`].
//!
//! FILL IN when `ringdis::ClusterClient` is on this branch. Until then [`RingdisCluster`] has no
//! value ([`RingdisCluster::connect`] returns `None`) and the workload runs the peers only. The
//! intended code, on the public API fixed for issue #14:
//!
//! ```text
//! use ringdis::{ClusterClient, Commands, Config, Engine};
//!
//! #[derive(Clone)]
//! pub struct RingdisCluster { client: ClusterClient, engine: Engine }
//!
//! pub async fn connect(seeds: &[String], engine: Engine) -> Option<RingdisCluster> {
//!     let config = Config::from_url(&seeds[0]).expect("seed URL").engine(engine);
//!     let client = ClusterClient::builder(config).seeds(seeds).build().expect("cluster client");
//!     Some(RingdisCluster { client, engine })
//! }
//!
//! fn name(&self) -> String { crate::clients::engine_name(self.engine) }
//! fn get(&mut self, key: &str) -> impl Future<Output = Option<Bytes>> + Send {
//!     let call = (&self.client).get(key);
//!     async move { call.await.expect("GET") }
//! }
//! fn set(&mut self, key: &str, value: &[u8]) -> impl Future<Output = ()> + Send {
//!     let call = (&self.client).set(key, value);
//!     async move { call.await.expect("SET"); }
//! }
//! // get_pipelined / set_pipelined / hgetall_record: as `clients::Ringdis` does, on
//! // `self.client.pipeline()` (the cluster workloads send no pipelines).
//! ```

use crate::clients::{BenchClient, Record};
use ringdis::Engine;

/// ringdis's `ClusterClient` on one engine. No value can exist until the client does (see the
/// module's documentation).
#[derive(Clone)]
pub enum RingdisCluster {}

impl RingdisCluster {
    /// A connected cluster client on `engine` from `seeds`; `None` while ringdis has no cluster
    /// client on this branch.
    pub async fn connect(_seeds: &[String], _engine: Engine) -> Option<RingdisCluster> {
        None
    }
}

impl BenchClient for RingdisCluster {
    type Value = bytes::Bytes;

    fn name(&self) -> String {
        match *self {}
    }

    async fn get(&mut self, _key: &str) -> Option<bytes::Bytes> {
        match *self {}
    }

    async fn set(&mut self, _key: &str, _value: &[u8]) {
        match *self {}
    }

    async fn get_pipelined(&mut self, _keys: &[String]) {
        match *self {}
    }

    async fn set_pipelined(&mut self, _kvs: &[(String, bytes::Bytes)]) -> usize {
        match *self {}
    }

    async fn hgetall_record(&mut self, _key: &str) -> Record {
        match *self {}
    }
}
