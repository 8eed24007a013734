//! ringdis's side of the cluster workload (`ringdis-bench cluster`): its [`ClusterClient`] on
//! one engine, behind [`BenchClient`], used through the generated typed methods as a user would.

use crate::clients::{engine_name, BenchClient, Record};
use ringdis::{ClusterClient, Commands, Config, Engine, Pipeline};
use std::future::Future;

/// ringdis's `ClusterClient` on one engine.
#[derive(Clone)]
pub struct RingdisCluster {
    client: ClusterClient,
    engine: Engine,
}

impl RingdisCluster {
    /// A cluster client on `engine` (forced) from `seeds`, the slots discovered (by one GET)
    /// before it is measured, as the peers' constructors discover them.
    pub async fn connect(seeds: &[String], engine: Engine) -> RingdisCluster {
        let config = Config::from_url(&seeds[0])
            .expect("benchmark URL parses")
            .engine(engine);
        let client = ClusterClient::builder(config)
            .seeds(seeds)
            .build()
            .expect("ringdis cluster client");
        let _: Option<bytes::Bytes> = (&client)
            .get("bench:key:0")
            .await
            .expect("ringdis cluster: first call");
        RingdisCluster { client, engine }
    }
}

impl BenchClient for RingdisCluster {
    type Value = bytes::Bytes;

    fn name(&self) -> String {
        engine_name(self.engine)
    }

    fn get(&mut self, key: &str) -> impl Future<Output = Option<bytes::Bytes>> + Send {
        let call = (&self.client).get(key);
        async move { call.await.expect("GET") }
    }

    fn set(&mut self, key: &str, value: &[u8]) -> impl Future<Output = ()> + Send {
        let call = (&self.client).set(key, value);
        async move {
            call.await.expect("SET");
        }
    }

    fn get_pipelined(&mut self, keys: &[String]) -> impl Future<Output = ()> + Send {
        let mut p: Pipeline = self.client.pipeline();
        for k in keys {
            p.get(k.as_str()).send();
        }
        let call = p.query::<Vec<Option<Vec<u8>>>>();
        async move {
            call.await.expect("pipeline");
        }
    }

    fn set_pipelined(
        &mut self,
        kvs: &[(String, bytes::Bytes)],
    ) -> impl Future<Output = usize> + Send {
        let mut p: Pipeline = self.client.pipeline();
        for (k, v) in kvs {
            p.set(k.as_str(), v).send();
        }
        let call = p.query::<Vec<String>>();
        async move {
            let oks = call.await.expect("pipeline");
            oks.iter().filter(|s| *s == "OK").count()
        }
    }

    fn hgetall_record(&mut self, key: &str) -> impl Future<Output = Record> + Send {
        let call = (&self.client).hgetall(key).decode::<Record>();
        async move { call.await.expect("HGETALL") }
    }
}
